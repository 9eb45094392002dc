"""The charger sends WebSocket frames on a connection that never did the HTTP upgrade, although the capture holds
the connection's SYN (so the upgrade cannot have happened before the capture).

Field effect: the CSMS cannot read the frames (they are not HTTP), leaves them unanswered and closes the
connection; the charger's messages on it are lost.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import flow_events
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule


@rule("ws.no_upgrade")
def ws_no_upgrade(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for fid in ch.flow_ids:
        evs = flow_events(ch, fid)
        syn = next((e for e in evs if e.kind == "tcp.syn"), None)
        if syn is None or any(e.kind in ("http.request", "http.response") or e.kind.startswith("tls.") for e in evs):
            continue
        frame = next((e for e in evs if e.kind == "websocket.message" and e.direction == 0), None)
        if frame is None:
            continue
        what = next((e for e in evs if e.kind.startswith("ocpp.") and e.frame == frame.frame), None)
        msg = f" ({what.summary()})" if what is not None else ""
        yield Finding(
            fault="ws.no_upgrade",
            frame=frame.frame,
            ts_ns=frame.ts_ns,
            summary="The charger sent WebSocket frames on a connection it never upgraded (no HTTP upgrade "
            "after its SYN): the CSMS cannot read them.",
            evidence=(
                Evidence(syn.frame, f"SYN {syn.src} → {syn.dst}: the connection starts in the capture"),
                Evidence(frame.frame, f"first WebSocket frame, without an upgrade{msg}"),
            ),
            flow_id=fid,
            covers_flows=(fid,),
        )
