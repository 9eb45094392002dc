"""The charger and the CSMS agreed on no OCPP version: a 101 without (or with another) Sec-WebSocket-Protocol than
the charger offered, or a refused upgrade (400 or other) whose answer names the subprotocol, as the ``websockets``
server's 400 does.

Field effect: the CSMS closes the WebSocket at once or never upgrades; the charger retries forever.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import flow_events
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule
from analyzer.diagnosis.rules.http_status import subprotocol_refusal


@rule("ws.subprotocol_mismatch")
def ws_subprotocol_mismatch(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for fid in ch.flow_ids:
        evs = flow_events(ch, fid)
        req = next((e for e in evs if e.kind == "http.request"), None)
        resp = next((e for e in evs if e.kind == "http.response"), None)
        if req is None or resp is None:
            continue
        offered = tuple(req.ws_protocols)
        if resp.status == 101:
            if not offered or (resp.ws_protocol and resp.ws_protocol in offered):
                continue
            got = f"answered 101 with {resp.ws_protocol!r}" if resp.ws_protocol else "answered 101 with no subprotocol"
        elif subprotocol_refusal(resp):
            body = resp.body_excerpt.strip()[:120]
            got = f"refused the upgrade with HTTP {resp.status} {resp.reason}" + (f": {body!r}" if body else "")
        else:
            continue
        yield Finding(
            fault="ws.subprotocol_mismatch",
            frame=resp.frame,
            ts_ns=resp.ts_ns,
            summary=f"No OCPP version agreed: the charger offered {', '.join(offered) or 'none'} and the CSMS {got}.",
            evidence=(
                Evidence(req.frame, f"offered Sec-WebSocket-Protocol: {', '.join(offered) or '(none)'}"),
                Evidence(resp.frame, f"CSMS {got}"),
            ),
            flow_id=fid,
        )
