"""A WebSocket session ended with a TCP FIN and no close frame (the peer sees close code 1006).

Field effect: the charger reconnects after its retry interval; often a CSMS restart or a proxy timeout.
A reset (RST) is reported by the tcp.reset rule instead.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import flow_events, upgraded
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule


@rule("ws.dropped")
def ws_dropped(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for fid in ch.flow_ids:
        evs = flow_events(ch, fid)
        ok = upgraded(evs)
        if ok is None:
            continue
        end = next((e for e in evs if e.kind in ("tcp.fin", "tcp.rst") and e.frame > ok.frame), None)
        if end is None or end.kind != "tcp.fin":
            continue
        if any(e.kind == "websocket.close" and e.frame <= end.frame for e in evs):
            continue
        who = "the CSMS" if end.direction == 1 else "the charger"
        yield Finding(
            fault="ws.dropped",
            frame=end.frame,
            ts_ns=end.ts_ns,
            summary=f"The WebSocket to the CSMS was dropped by {who} without a close frame (TCP FIN from {end.src}).",
            evidence=(
                Evidence(ok.frame, "WebSocket upgrade accepted (101)"),
                Evidence(end.frame, f"FIN from {end.src} with no close frame before it"),
            ),
            flow_id=fid,
        )
