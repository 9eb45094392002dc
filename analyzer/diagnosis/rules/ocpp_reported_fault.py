"""The charger reports a fault itself: a 1.6 errorCode other than NoError, an MREC code (CXnnn) in
vendorErrorCode, a 2.x NotifyEvent techCode, or an EVgo com.evgo.mrec code.

Field effect: the charger knows something is wrong; follow the reported code's procedure.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.catalogue import cx_label
from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule


@rule("ocpp.reported_fault")
def ocpp_reported_fault(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for e in ch.events:
        if e.kind != "ocpp.reported_code":
            continue
        code = cx_label(e.cx_code) if e.cx_code else e.code
        yield Finding(
            fault="ocpp.reported_fault",
            frame=e.frame,
            ts_ns=e.ts_ns,
            summary=f"The charger reports {code} ({e.source})"
            + (f": {e.description}" if getattr(e, "description", None) else "")
            + ".",
            evidence=(Evidence(e.frame, f"{e.source} = {e.code}"),),
            cx_code=e.cx_code,
            flow_id=e.flow_id,
        )
