"""A CALLERROR answered a CALL (any error code, any spelling: FormatViolation, FormationViolation, ...).

Field effect: the request did not take effect; for BootNotification the charger never becomes Accepted. The
evidence names the request and, when it breaks the schema, the field path that explains the error; who acts is
the sender of the violating message (the charger when its request broke the schema), else the side that
answered with the error (an InternalError is the answering side's problem).
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
    calls = {(e.flow_id, e.unique_id): e for e in ch.events if e.kind == "ocpp.call"}
    for e in ch.events:
        if e.kind not in ("ocpp.call_error", "ocpp.call_result_error"):
            continue
        action = e.action or "a CALL"
        desc = f" ({e.error_description})" if getattr(e, "error_description", "") else ""
        req = calls.get((e.flow_id, getattr(e, "unique_id", None)))
        ev = []
        if e.call_frame or req is not None:
            at = req.frame if req is not None else e.call_frame
            ev.append(Evidence(at, f"{side(1 - (e.direction or 0))} sent {action} [{e.unique_id}]"))
        violations = getattr(req, "violations", ()) if req is not None else ()
        for v in violations[:3]:
            ev.append(Evidence(req.frame, f"the request breaks the schema: {v.path or '(message)'} {v.message}"))
        ev.append(Evidence(e.frame, f"{side(e.direction)} answered CALLERROR {e.error_code}{desc}"))
        code = getattr(e, "error_code_canonical", None) or e.error_code
        because = ""
        if violations:
            v = violations[0]
            how = "; the request also" if code in INTERNAL + UNSUPPORTED else ": the request"
            because = f"{how} breaks the schema at {v.path or '(message)'} ({v.message})"
        # who acts: the sender of a request that breaks the schema, unless the answer says the answering side itself
        # failed (InternalError, GenericError) or lacks the feature (NotImplemented, NotSupported)
        sender = 1 - (e.direction or 0) if violations and code not in INTERNAL + UNSUPPORTED else e.direction
        yield Finding(
            remediation=_steps(e, action, violations),
            fault="ocpp.callerror",
            frame=e.frame,
            ts_ns=e.ts_ns,
            summary=f"The {side(e.direction)} rejected {action} with CALLERROR {e.error_code}{desc}{because}.",
            evidence=tuple(ev),
            cx_code=cx_for_action(e.action),
            fix_side="charger" if sender == 0 else "csms",
            flow_id=e.flow_id,
        )


INTERNAL = ("InternalError", "GenericError")
UNSUPPORTED = ("NotImplemented", "NotSupported")


def _steps(e: object, action: str, violations: tuple) -> tuple[str, ...]:  # type: ignore[type-arg]
    """What to do, from what the CALLERROR says: the field the schema names, the answering side's own failure, a
    feature one side lacks."""
    answered_by = side(getattr(e, "direction", None))
    asked_by = side(1 - (getattr(e, "direction", None) or 0))
    code = getattr(e, "error_code_canonical", None) or getattr(e, "error_code", "")
    also = ()
    if violations:
        v = violations[0]
        fix = f"Fix {v.path or 'the message'} in the {asked_by}'s {action} ({v.message})."
        if code not in INTERNAL + UNSUPPORTED:
            return (fix,)
        also = (
            f"The {asked_by}'s {action} breaks the schema at {v.path or '(message)'} ({v.message}): maybe what the "
            f"{answered_by} failed on, though its {code} says the failure is its own.",
        )
    if code in INTERNAL:  # the answering side's own failure: no field of the request is named as the cause
        return (
            f"The {answered_by} failed while handling {action}: read its log at that time and fix the cause.",
            *also,
        )
    if code in UNSUPPORTED:
        return (
            f"The {answered_by} does not support {action}: align the feature profiles / firmware of both sides.",
            *also,
        )
    return (f"Fix what the {answered_by}'s error {code} names in the {asked_by}'s {action}.",)
