"""``timeline`` and ``flows`` seen per charger: the charger each flow belongs to (the timeline's charger column),
and, with ``--charger``, only the flows with a chosen charger's address at either end.

Chargers are those the diagnosis finds (``find_population``), so a station id resolves to its charger's address.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analyzer.config import Settings
from analyzer.diagnosis.chargers import Charger, find_population
from analyzer.diagnosis.pick import pick, same_address, unknown_line
from analyzer.errors import AnalyzerError
from analyzer.timeline import FlowInfo, Timeline


class UnknownCharger(AnalyzerError):
    """``--charger`` names no charger of the capture (the message names those it has): a usage error."""


@dataclass(slots=True)
class ChargerView:
    """``owner``: flow id → the charger it belongs to (station id, else address); ``addresses``: the addresses
    of the chargers ``--charger`` chose (None: every flow is kept)."""

    owner: dict[int, str]
    addresses: list[str] | None = None

    def keeps(self, f: FlowInfo) -> bool:
        if self.addresses is None:
            return True
        return any(same_address(a, f.client_addr) or same_address(a, f.server_addr) for a in self.addresses)


def charger_view(tl: Timeline, capture: str, wanted: Sequence[str] = ()) -> ChargerView:
    """The chargers of ``tl`` and the flows each owns; with ``wanted``, the chargers named (``UnknownCharger``
    when one of them names none)."""
    chargers = find_population(tl, Settings()).chargers
    view = ChargerView(owners(tl, chargers))
    if wanted:
        chosen, unknown = pick(chargers, wanted)
        if unknown:
            raise UnknownCharger(unknown_line(capture, unknown, chargers))
        view.addresses = list(dict.fromkeys(c.address for c in chosen))
    return view


def owners(tl: Timeline, chargers: list[Charger]) -> dict[int, str]:
    """flow id → charger: the flows the diagnosis gave each charger, then any other flow a charger's address
    opened (its NTP, say) when only one charger has that address."""
    out: dict[int, str] = {}
    by_addr: dict[str, list[str]] = {}
    for ch in chargers:
        name = ch.station_id or ch.address
        for fid in ch.flow_ids + ch.dns_flow_ids:
            out[fid] = name
        by_addr.setdefault(ch.address, []).append(name)
    for fid, f in tl.flows.items():
        names = by_addr.get(f.client_addr)
        if fid not in out and names and len(names) == 1:
            out[fid] = names[0]
    return out
