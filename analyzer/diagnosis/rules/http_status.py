"""The CSMS answered the WebSocket upgrade with an HTTP status other than 101.

Field effect: the charger never gets a WebSocket; 401 means a wrong basic-auth password (AuthorizationKey),
404 an unknown station identity or path, 403 a charger not allowed, 400 a malformed upgrade.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import flow_events, scheme_mismatch
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule

STATUS_FAULTS = {401: "http.unauthorized", 403: "http.forbidden", 404: "http.not_found", 400: "http.bad_request"}


@rule(*STATUS_FAULTS.values(), "http.error")
def http_status(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for fid in ch.flow_ids:
        evs = flow_events(ch, fid)
        req = next((e for e in evs if e.kind == "http.request"), None)
        resp = next((e for e in evs if e.kind == "http.response"), None)
        if resp is None or resp.status == 101 or subprotocol_refusal(resp):
            continue  # a refusal that names the subprotocol is ws.subprotocol_mismatch
        if scheme_mismatch(ch, ctx, fid) is not None:
            continue  # an HTTP answer to a TLS ClientHello is tls.scheme_mismatch
        fault = STATUS_FAULTS.get(resp.status, "http.error")
        ev = []
        if req is not None:
            who = f" as {req.auth_scheme} user {req.auth_user!r}" if req.auth_scheme else ""
            ev.append(Evidence(req.frame, f"{req.method} {req.target}{who}"))
        body = f": {resp.body_excerpt.strip()[:120]!r}" if resp.body_excerpt.strip() else ""
        ev.append(Evidence(resp.frame, f"HTTP {resp.status} {resp.reason}{body}"))
        station = f" for station {req.station_id}" if req is not None and req.station_id else ""
        yield Finding(
            fault=fault,
            frame=resp.frame,
            ts_ns=resp.ts_ns,
            summary=f"The CSMS refused the WebSocket upgrade{station} with HTTP {resp.status} {resp.reason}.",
            evidence=tuple(ev),
            flow_id=fid,
        )


def subprotocol_refusal(resp: object) -> bool:
    """A refused upgrade whose answer blames the subprotocol (the ``websockets`` server's 400 to an unknown OCPP
    version, a proxy's 426 naming Sec-WebSocket-Protocol)."""
    text = f"{getattr(resp, 'reason', '')} {getattr(resp, 'body_excerpt', '') or ''}".lower()
    return getattr(resp, "status", 101) != 101 and ("subprotocol" in text or "sec-websocket-protocol" in text)
