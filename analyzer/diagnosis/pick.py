"""``--charger ID|ADDRESS``: the chargers a user names, among those the diagnosis finds (``find_population``).

A value names a charger by its station id (exactly) or by its address (``2001:db8::1`` and ``2001:DB8:0::1`` are
one address). Used by ``analyze`` (the report keeps only the chargers named) and by ``timeline`` and ``flows``
(only the events and flows with the charger's address at either end).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from analyzer.budgets import CHARGERS_NAMED
from analyzer.diagnosis.chargers import Charger


def same_address(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return ipaddress.ip_address(a.strip("[]")) == ipaddress.ip_address(b.strip("[]"))
    except ValueError:
        return False


def names(ch: Charger, value: str) -> bool:
    """Whether ``value`` names charger ``ch`` (its station id, or its address)."""
    return value == ch.station_id or same_address(value, ch.address)


def pick(chargers: Sequence[Charger], wanted: Sequence[str]) -> tuple[list[Charger], list[str]]:
    """The chargers ``wanted`` names (in ``chargers``' order), and the values that name none of them."""
    chosen = [c for c in chargers if any(names(c, v) for v in wanted)]
    unknown = [v for v in dict.fromkeys(wanted) if not any(names(c, v) for c in chargers)]
    return chosen, unknown


def label(ch: Charger) -> str:
    """``CP001 (10.0.0.5)``, or the address of a charger without a station id (on one line, whatever the id)."""
    return f"{_printable(ch.station_id)} ({ch.address})" if ch.station_id else ch.address


def _printable(s: str) -> str:
    return s if s.isprintable() else s.encode("unicode_escape", "backslashreplace").decode("ascii")


def charger_list(chargers: Sequence[Charger]) -> str:
    """The chargers for a one-line message (the first ``CHARGERS_NAMED``, then how many more)."""
    if not chargers:
        return "it has no charger"
    shown = ", ".join(label(c) for c in chargers[:CHARGERS_NAMED])
    more = len(chargers) - CHARGERS_NAMED
    return f"its chargers: {shown}" + (f" and {more} more" if more > 0 else "")


def unknown_line(capture: str, unknown: Sequence[str], chargers: Sequence[Charger]) -> str:
    """``CAPTURE: no charger CP9; its chargers: CP1 (10.0.0.5), CP2 (10.0.0.6)``."""
    return f"{capture}: no charger {', '.join(unknown)}; {charger_list(chargers)}"
