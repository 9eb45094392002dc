"""The charger's clock reads a default date (1970-01-01, 1980-01-06, 2000-01-01): its RTC lost its time.

Field effect: certificates look "not yet valid", timestamps in transactions are wrong; after a power loss with a
flat RTC battery this is the classic ghost charger (CX015 PowerLoss, contributing).
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule
from analyzer.timefmt import iso_utc


@rule("clock.reset")
def clock_reset(ch: Charger, ctx: Context) -> Iterator[Finding]:
    s = ctx.clock.reset
    if s is None:
        return
    ev = [Evidence(s.frame, f"charger clock reads {s.raw or iso_utc(s.value_ns)} ({s.source})")]
    csms = ctx.clock.csms[0] if ctx.clock.csms else None
    if csms is not None:
        ev.append(Evidence(csms.frame, f"CSMS clock reads {csms.raw or iso_utc(csms.value_ns)} ({csms.source})"))
    yield Finding(
        fault="clock.reset",
        frame=s.frame,
        ts_ns=s.ts_ns,
        summary=f"The charger's clock is reset to {ctx.clock.reset_epoch} (it sent {s.raw or iso_utc(s.value_ns)} "
        f"while the capture time is {iso_utc(s.ts_ns)[:19]}Z): its RTC lost power.",
        evidence=tuple(ev),
        cx_code="CX015",
        flow_id=s.flow_id,
    )
