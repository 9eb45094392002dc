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
        what = "CALL" if e.kind == "ocpp.call" else "response to"
        yield Finding(
            fault="ocpp.schema_violation",
            frame=e.frame,
            ts_ns=e.ts_ns,
            summary=f"The {side(e.direction)}'s {e.action or 'message'} {what if what != 'CALL' else ''}breaks "
            f"the OCPP {e.version or ''} schema: {v.path or '(message)'} {v.message}.".replace("  ", " "),
            evidence=tuple(Evidence(e.frame, f"{x.path or '(message)'} {x.message}") for x in e.violations[:5]),
            cx_code=cx_for_action(e.action),
            flow_id=e.flow_id,
        )
