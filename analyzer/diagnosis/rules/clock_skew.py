"""The charger's clock is far from the CSMS's (or the capture's) time, but not at a default date. A skew of whole
time-zone steps (an hour, say) is local time sent without a UTC offset: a warning, not a failure.

Field effect: transactions and meter values carry wrong times; certificates may look expired or not yet valid.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule


@rule("clock.skew")
def clock_skew(ch: Charger, ctx: Context) -> Iterator[Finding]:
    c = ctx.clock
    skew = c.skew_ns
    if c.reset is not None or skew is None or abs(skew) / 1e9 < ctx.settings.clock_skew_s:
        return
    s = c.charger[0]
    ref = "the CSMS's clock" if c.csms else "the capture's clock"
    direction = "ahead of" if skew > 0 else "behind"
    zone = _time_zone(skew)
    yield Finding(
        fault="clock.skew",
        frame=s.frame,
        ts_ns=s.ts_ns,
        summary=f"The charger's clock is {abs(skew) / 1e9:,.0f} s {direction} {ref}"
        + (
            f": a whole {zone} time zone, so most likely local time sent without a UTC offset (nothing broke)."
            if zone
            else "."
        ),
        severity="warning" if zone else None,
        evidence=tuple(Evidence(x.frame, f"{x.side} clock {x.raw} ({x.source})") for x in (c.charger + c.csms)[:4]),
        flow_id=s.flow_id,
    )


def _time_zone(skew_ns: int) -> str | None:
    """``"UTC+1"``-style name when the skew is within a minute of a whole quarter hour up to 14 h (a time zone,
    not a drifting clock), else None."""
    s = skew_ns / 1e9
    quarters = round(s / 900)
    if quarters == 0 or abs(s) > 14 * 3600 or abs(s - quarters * 900) > 60:
        return None
    h, m = divmod(abs(quarters) * 15, 60)
    return f"UTC{'+' if quarters > 0 else '-'}{h}" + (f":{m:02d}" if m else "")
