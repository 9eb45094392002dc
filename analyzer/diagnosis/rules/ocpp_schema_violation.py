"""An OCPP message breaks the official JSON schema, whether or not the peer complained.

Field effect: a strict peer answers CALLERROR (FormatViolation, ProtocolError, OccurrenceConstraintViolation...);
a lenient one may accept it and misbehave later.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule
from analyzer.diagnosis.rules._ocpp import cx_for_action, side

MESSAGES = ("ocpp.call", "ocpp.call_result", "ocpp.call_error", "ocpp.send", "ocpp.call_result_error")


@rule("ocpp.schema_violation")
def ocpp_schema_violation(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for e in ch.events:
        if e.kind not in MESSAGES or not getattr(e, "violations", ()):
            continue
        v = e.violations[0]
        if e.kind in ("ocpp.call", "ocpp.send"):
            what = f"{e.action or 'message'}"
        else:
            what = f"response to {e.action}" if e.action else "response"
        version = f"OCPP {e.version} " if e.version else "OCPP "
        yield Finding(
            fault="ocpp.schema_violation",
            frame=e.frame,
            ts_ns=e.ts_ns,
            summary=f"The {side(e.direction)}'s {what} breaks the {version}schema: {v.path or '(message)'} "
            f"{v.message}.",
            evidence=tuple(Evidence(e.frame, f"{x.path or '(message)'} {x.message}") for x in e.violations[:5]),
            cx_code=cx_for_action(e.action),
            flow_id=e.flow_id,
        )
