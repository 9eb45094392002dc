"""The CSMS answered Authorize (or a transaction start) with an idToken status other than Accepted.

Field effect: the driver plugs in and cannot charge (MREC CX009 AuthorizationTimeout).
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule

AUTH = ("Authorize", "StartTransaction")


@rule("ocpp.auth_rejected")
def ocpp_auth_rejected(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for e in ch.events:
        if e.kind == "ocpp.call_result" and e.action in AUTH and e.status and e.status != "Accepted":
            yield Finding(
                fault="ocpp.auth_rejected",
                frame=e.frame,
                ts_ns=e.ts_ns,
                summary=f"The CSMS answered {e.action} with status {e.status}: the driver's idToken was not accepted.",
                evidence=(Evidence(e.frame, f"{e.action} → {e.status}"),),
                cx_code="CX009",
                flow_id=e.flow_id,
            )
            return
