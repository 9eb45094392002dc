"""Clock analysis: what each side's clock said, compared with the capture's clock and with each other.

Sources (catalogue): OCPP timestamps the charger sends, the first four bytes of a TLS ClientHello random (only when
they are close to the capture time or to a default date: most stacks fill them with random bytes), versus the
CSMS's ``currentTime`` and HTTP ``Date``. A clock at a default date (1970, 1980, 2000) is a reset clock.
"""

from __future__ import annotations

import statistics
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from analyzer import budgets
from analyzer.events.base import Event
from analyzer.events.clock import ClockSample

DAY_NS = 86_400 * 10**9
# default dates an RTC falls back to, and how long after them a clock still counts as "reset" (it runs on)
DEFAULT_EPOCHS = {
    "1970-01-01": 0,
    "1980-01-06": int(datetime(1980, 1, 6, tzinfo=UTC).timestamp()) * 10**9,
    "2000-01-01": int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()) * 10**9,
}
RESET_WINDOW_NS = 366 * DAY_NS
TLS_RANDOM_NEAR_NS = 2 * DAY_NS


@dataclass(slots=True)
class ClockAnalysis:
    """``charger``/``csms``: samples taken as trustworthy; ``charger_offset_ns``: median of (charger clock − capture
    clock); ``csms_offset_ns`` likewise; ``reset``: the first charger sample at a default date, with ``reset_epoch``
    naming it; ``skew_ns``: charger clock minus CSMS clock (or minus the capture clock when the CSMS shows none)."""

    charger: list[ClockSample] = field(default_factory=list)
    csms: list[ClockSample] = field(default_factory=list)
    charger_offset_ns: int | None = None
    csms_offset_ns: int | None = None
    reset: ClockSample | None = None
    reset_epoch: str | None = None

    @property
    def skew_ns(self) -> int | None:
        if self.charger_offset_ns is None:
            return None
        return self.charger_offset_ns - (self.csms_offset_ns or 0)

    def charger_time(self, ts_ns: int) -> int | None:
        """The charger's clock at capture time ``ts_ns``, when any sample shows it."""
        return None if self.charger_offset_ns is None else ts_ns + self.charger_offset_ns


def reset_epoch_of(value_ns: int) -> str | None:
    for name, start in DEFAULT_EPOCHS.items():
        if start <= value_ns < start + RESET_WINDOW_NS:
            return name
    return None


def reads_reset(s: ClockSample) -> bool:
    """Whether ``s`` shows a clock at a default date (1970, 1980, 2000) far from the capture's time: a reset clock."""
    return abs(s.ts_ns - s.value_ns) > RESET_WINDOW_NS and reset_epoch_of(s.value_ns) is not None


class Offsets:
    """The offsets (clock minus capture time, ns) of one side's clock samples that a long connection's thinning
    dropped (``timeline.keeper``), for the clock analysis's median: every one up to
    ``budgets.CLOCK_OFFSETS_PER_FLOW``; past it every other one goes, and from then on only every other sample is
    taken (then every fourth...), so what is kept stays spread evenly over the connection."""

    __slots__ = ("every", "seen", "values")

    def __init__(self) -> None:
        self.values = array("q")
        self.every = 1  # take one sample in this many
        self.seen = 0

    def extend(self, offsets: list[int]) -> None:
        if self.every == 1 and len(self.values) + len(offsets) <= budgets.CLOCK_OFFSETS_PER_FLOW:
            self.values.extend(offsets)  # under the budget (most connections): all at once
            self.seen += len(offsets)
            return
        for offset_ns in offsets:
            self.add(offset_ns)

    def add(self, offset_ns: int) -> None:
        self.seen += 1
        if (self.seen - 1) % self.every:
            return
        if len(self.values) >= budgets.CLOCK_OFFSETS_PER_FLOW:
            del self.values[1::2]
            self.every *= 2
            if (self.seen - 1) % self.every:
                return
        self.values.append(offset_ns)


def analyse_clock(events: list[Event], dropped: Iterable[dict[str, Offsets]] = ()) -> ClockAnalysis:
    """The clock analysis of one charger's ``events``; ``dropped``: per connection of its that was thinned, the
    offsets of the samples dropped from it, by side (``"charger"``, ``"csms"``): the offsets are the medians of every
    sample the capture showed, not only of those kept (a long connection keeps its first and last events)."""
    out = ClockAnalysis()
    for e in events:
        if not isinstance(e, ClockSample):
            continue
        if not trusted(e):
            continue
        (out.charger if e.side == "charger" else out.csms).append(e)
    offsets: dict[str, list[int]] = {"charger": [], "csms": []}
    for sides in dropped:
        for side, more in sides.items():
            offsets["charger" if side == "charger" else "csms"].extend(more.values)  # as the samples are sorted
    out.charger_offset_ns = _median_offset(out.charger, offsets["charger"])
    out.csms_offset_ns = _median_offset(out.csms, offsets["csms"])
    for s in out.charger:
        if reads_reset(s):
            out.reset, out.reset_epoch = s, reset_epoch_of(s.value_ns)
            break
    return out


def _median_offset(kept: list[ClockSample], dropped: list[int]) -> int | None:
    """The median of the kept samples' offsets and the dropped ones', or None without any."""
    every = [s.value_ns - s.ts_ns for s in kept] + dropped
    return int(statistics.median(every)) if every else None


def trusted(s: ClockSample) -> bool:
    """Whether the clock analysis takes ``s`` as a reading of a clock: an OCPP or HTTP time always; the first four
    bytes of a TLS random only when credible (``_credible_tls_random``). What the reports show as a clock reading:
    a random that reads as 2034 is never shown as the CSMS's clock."""
    return not s.source.startswith("tls.") or _credible_tls_random(s)


def _credible_tls_random(s: ClockSample) -> bool:
    """Four random bytes look like a time in 1990..2100 most of the time; trust them only near the capture time or
    just after a default date (a chance hit there is about one in a thousand)."""
    return abs(s.value_ns - s.ts_ns) < TLS_RANDOM_NEAR_NS or (
        reset_epoch_of(s.value_ns) is not None
        and s.value_ns - DEFAULT_EPOCHS[reset_epoch_of(s.value_ns) or ""] < 30 * DAY_NS
    )
