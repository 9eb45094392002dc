"""A WebSocket close frame carried a code other than 1000 (normal) or 1001 (going away).

Field effect: one side ended the session on purpose for a reason the code and text name (1002 protocol error,
1008 policy violation, 1011 server error, ...).
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule

NORMAL = (1000, 1001)


@rule("ws.abnormal_close")
def ws_abnormal_close(ch: Charger, ctx: Context) -> Iterator[Finding]:
    seen: set[int | None] = set()
    for e in ch.events:
        if e.kind != "websocket.close" or e.code is None or e.code in NORMAL or e.flow_id in seen:
            continue
        seen.add(e.flow_id)
        who = "the charger" if e.direction == 0 else "the CSMS"
        reason = f" ({e.reason!r})" if e.reason else ""
        yield Finding(
            fault="ws.abnormal_close",
            frame=e.frame,
            ts_ns=e.ts_ns,
            summary=f"{who[0].upper()}{who[1:]} closed the WebSocket with code {e.code}{reason}.",
            evidence=(Evidence(e.frame, f"close frame from {who}: code {e.code}{reason}"),),
            flow_id=e.flow_id,
        )
