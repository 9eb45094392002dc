"""A charger's CALL got no CALLRESULT/CALLERROR: the message timeout passed, or the connection ended after it.
(A close that cut the CALL short is the root cause instead: the runner makes the CALL its evidence. A CALL sent
after the CSMS's close frame expects no answer. The CSMS's CALLs the charger ignores are
ocpp.charger_no_response.)

Field effect: the sender gives up after its timeout (for Authorize: the driver cannot charge). A capture that
ends before the timeout could expire, on a connection still open, leaves the finding undecided.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import ends, flow_events
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule
from analyzer.diagnosis.rules._ocpp import cx_for_action, side


@rule("ocpp.no_response")
def ocpp_no_response(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for e in ch.events:
        if e.kind != "ocpp.unanswered" or e.direction != 0:
            continue
        evs = flow_events(ch, e.flow_id)
        if any(x.kind == "websocket.close" and x.direction == 1 and x.frame < e.frame for x in evs):
            continue
        closed = [x for x in ends(evs) if x.frame > e.frame]
        waited = (closed[0].ts_ns - e.ts_ns) / 1e9 if closed else ctx.waited_s(e.ts_ns)
        undecided = not closed and waited < ctx.settings.ocpp_timeout_s
        then = f"the connection ended {waited:.1f} s later" if closed else f"the capture ended {waited:.1f} s later"
        ev = [Evidence(e.frame, f"{side(e.direction)} sent {e.action} [{e.unique_id}]")]
        if closed:
            ev.append(Evidence(closed[0].frame, f"connection ended ({closed[0].kind}) with no answer"))
        yield Finding(
            fault="ocpp.no_response",
            frame=e.frame,
            ts_ns=e.ts_ns,
            summary=f"The {side(1 - (e.direction or 0))} never answered {e.action} [{e.unique_id}]; {then}.",
            evidence=tuple(ev),
            cx_code=cx_for_action(e.action),
            undecided=undecided,
            certain_with=f"a capture that lasts {ctx.settings.ocpp_timeout_s:.0f} s past the CALL"
            if undecided
            else None,
            flow_id=e.flow_id,
        )
