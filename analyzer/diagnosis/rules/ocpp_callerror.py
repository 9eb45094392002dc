"""A CALLERROR answered a CALL (any error code, any spelling: FormatViolation, FormationViolation, ...).

Field effect: the request did not take effect; for BootNotification the charger never becomes Accepted.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule
from analyzer.diagnosis.rules._ocpp import cx_for_action, side


@rule("ocpp.callerror")
def ocpp_callerror(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for e in ch.events:
        if e.kind not in ("ocpp.call_error", "ocpp.call_result_error"):
            continue
        action = e.action or "a CALL"
        desc = f" ({e.error_description})" if getattr(e, "error_description", "") else ""
        ev = []
        if e.call_frame:
            ev.append(Evidence(e.call_frame, f"{side(1 - (e.direction or 0))} sent {action} [{e.unique_id}]"))
        ev.append(Evidence(e.frame, f"{side(e.direction)} answered CALLERROR {e.error_code}{desc}"))
        yield Finding(
            fault="ocpp.callerror",
            frame=e.frame,
            ts_ns=e.ts_ns,
            summary=f"The {side(e.direction)} rejected {action} with CALLERROR {e.error_code}{desc}.",
            evidence=tuple(ev),
            cx_code=cx_for_action(e.action),
            flow_id=e.flow_id,
        )
