"""WebSocket pings went unanswered (no pong) until the connection was dropped.

Field effect: a NAT or carrier path silently lost the session; the charger notices only at its ping timeout.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import ends, flow_events
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule


@rule("ws.ping_timeout")
def ws_ping_timeout(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for fid in ch.flow_ids:
        evs = flow_events(ch, fid)
        fin = ends(evs)
        if not fin:
            continue
        pings = [e for e in evs if e.kind == "websocket.ping"]
        unanswered = [
            p
            for p in pings
            if not any(e.kind == "websocket.pong" and e.direction != p.direction and e.frame > p.frame for e in evs)
        ]
        if len(unanswered) < 2 or unanswered[0].frame > fin[0].frame:
            continue
        p = unanswered[0]
        yield Finding(
            fault="ws.ping_timeout",
            frame=p.frame,
            ts_ns=p.ts_ns,
            summary=f"{len(unanswered)} WebSocket pings went unanswered before the connection ended.",
            evidence=(
                *tuple(Evidence(x.frame, "ping, no pong") for x in unanswered[:4]),
                Evidence(fin[0].frame, f"connection ended ({fin[0].kind})"),
            ),
            flow_id=fid,
        )
