"""The CSMS answered BootNotification Rejected, or Pending and never Accepted later in the capture.

Field effect: the charger is not registered (Rejected) or not provisioned (Pending) and may not start sessions.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule


@rule("ocpp.boot_rejected", "ocpp.boot_pending")
def ocpp_boot_status(ch: Charger, ctx: Context) -> Iterator[Finding]:
    boots = [e for e in ch.events if e.kind == "ocpp.call_result" and e.action == "BootNotification"]
    if not boots or any(b.status == "Accepted" for b in boots):
        return
    bad = next((b for b in boots if b.status in ("Rejected", "Pending")), None)
    if bad is None:
        return
    payload = bad.payload  # parsed on each read: once here
    interval = payload.get("interval") if isinstance(payload, dict) else None
    retry = f"; retry interval {interval} s" if interval is not None else ""
    req = next(
        (e for e in ch.events if e.kind == "ocpp.call" and e.flow_id == bad.flow_id and e.unique_id == bad.unique_id),
        None,
    )
    broken = tuple(getattr(req, "violations", ())) if req is not None else ()
    because = ""
    if broken:
        v = broken[0]
        because = f": the charger's BootNotification breaks the schema at {v.path or '(message)'} ({v.message})"
    yield Finding(
        fault="ocpp.boot_rejected" if bad.status == "Rejected" else "ocpp.boot_pending",
        frame=bad.frame,
        ts_ns=bad.ts_ns,
        summary=f"The CSMS answered the charger's BootNotification {bad.status}{retry}{because}.",
        evidence=tuple(Evidence(b.frame, f"BootNotification → {b.status}") for b in boots[:4])
        + tuple(
            Evidence(req.frame, f"the request breaks the schema: {v.path or '(message)'} {v.message}")
            for v in broken[:3]
        ),
        fix_side="charger" if broken else None,
        fix_reason="the BootNotification it rejected breaks the OCPP schema" if broken else None,
        flow_id=bad.flow_id,
    )
