"""An OCPP message breaks the official JSON schema.

Field effect: a strict peer answers CALLERROR (FormatViolation, ProtocolError, OccurrenceConstraintViolation...):
that is ocpp.callerror, with this violation as its evidence, so no finding here. A CALLRESULT with status
Rejected makes it the failure of that request (a rejected BootNotification is ocpp.boot_rejected, with this
violation as evidence). A lenient peer that accepts it (a CALLRESULT, or the session simply goes on) makes it a
**warning**: something to fix that broke nothing (a timestamp without a UTC offset, an extra field in a response).
It is a failure only when the session then failed without a CALLERROR: the peer closed, dropped or ignored it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import flow_events
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule
from analyzer.diagnosis.rules._ocpp import cx_for_action, side

MESSAGES = ("ocpp.call", "ocpp.call_result", "ocpp.call_error", "ocpp.send", "ocpp.call_result_error")
ANSWERS = ("ocpp.call_result", "ocpp.call_error", "ocpp.call_result_error")


@rule("ocpp.schema_violation")
def ocpp_schema_violation(ch: Charger, ctx: Context) -> Iterator[Finding]:
    by_flow: dict[int | None, list[Any]] = {}
    for e in ch.events:
        if e.kind not in MESSAGES or not getattr(e, "violations", ()):
            continue
        evs = by_flow.get(e.flow_id)
        if evs is None:
            evs = by_flow[e.flow_id] = flow_events(ch, e.flow_id)  # type: ignore[arg-type]
        outcome = _outcome(e, evs)
        if outcome == "callerror" or (outcome == "rejected" and e.action == "BootNotification"):
            continue  # ocpp.callerror / ocpp.boot_rejected, with this violation as evidence
        v = e.violations[0]
        if e.kind in ("ocpp.call", "ocpp.send"):
            what = f"{e.action or 'message'}"
        else:
            what = f"response to {e.action}" if e.action else "response"
        version = f"OCPP {e.version} " if e.version else "OCPP "
        warning = outcome == "accepted"
        then = {
            "accepted": " The peer accepted it and the session went on.",
            "rejected": " The peer answered Rejected.",
            "ended": " The connection ended right after it, without a CALLERROR.",
            "ignored": " The peer never answered it.",
        }[outcome]
        yield Finding(
            fault="ocpp.schema_violation",
            frame=e.frame,
            ts_ns=e.ts_ns,
            summary=f"The {side(e.direction)}'s {what} breaks the {version}schema: {v.path or '(message)'} "
            f"{v.message}.{then}",
            evidence=tuple(Evidence(e.frame, f"{x.path or '(message)'} {x.message}") for x in e.violations[:5]),
            cx_code=cx_for_action(e.action),
            severity="warning" if warning else "failure",
            fix_side="charger" if e.direction == 0 else "csms",
            flow_id=e.flow_id,
        )


def _outcome(e: Any, evs: list[Any]) -> str:
    """What the peer did with the violating message: ``callerror``, ``accepted`` (answered it, or the session went
    on with more messages), ``ended`` (the connection ended after it with nothing else), ``ignored``."""
    later = [x for x in evs if x.frame > e.frame or (x.frame == e.frame and x is not e)]
    if e.kind in ("ocpp.call", "ocpp.send"):
        answer = next((x for x in later if x.kind in ANSWERS and x.unique_id == e.unique_id), None)
        if answer is not None:
            if answer.kind != "ocpp.call_result":
                return "callerror"
            return "rejected" if getattr(answer, "status", None) == "Rejected" else "accepted"
        if any(x.kind == "ocpp.unanswered" and x.unique_id == e.unique_id for x in later):
            more = any(x.kind in MESSAGES and x.direction != e.direction for x in later)
            if more:
                return "ignored"
            return "ended" if any(x.kind in ("tcp.fin", "tcp.rst", "websocket.close") for x in later) else "ignored"
        return "accepted"
    if any(x.kind in MESSAGES for x in later):
        return "accepted"
    ended = any(x.kind in ("tcp.fin", "tcp.rst", "websocket.close") and x.direction != e.direction for x in later)
    return "ended" if ended else "accepted"
