"""The charger's clock is far from the CSMS's (or the capture's) time, but not at a default date.

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
    yield Finding(
        fault="clock.skew",
        frame=s.frame,
        ts_ns=s.ts_ns,
        summary=f"The charger's clock is {abs(skew) / 1e9:,.0f} s {direction} {ref}.",
        evidence=tuple(Evidence(x.frame, f"{x.side} clock {x.raw} ({x.source})") for x in (c.charger + c.csms)[:4]),
        flow_id=s.flow_id,
    )
