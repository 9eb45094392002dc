"""Data to or from the CSMS was retransmitted again and again, the peer went silent, and the connection was
abandoned (reset, or left half-open until the capture ended).

Field effect: a NAT or carrier dropped the session's state; the charger believes it is online until its
keepalive or ping times out (CX007 WeakSignal when this repeats as reconnect churn).
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import flow_events, retransmissions
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule

MIN_RETRANSMISSIONS = 3


@rule("tcp.stalled")
def tcp_stalled(ch: Charger, ctx: Context) -> Iterator[Finding]:
    stalled = 0
    for fid in ch.flow_ids:
        evs = flow_events(ch, fid)
        end = next((e for e in evs if e.kind == "tcp.flow_end"), None)
        if end is None or end.state in ("SF", "S0", "REJ", "S2", "S3"):
            continue
        retx = retransmissions(end)
        if retx is None or retx[0] < MIN_RETRANSMISSIONS:
            continue
        count, frame = retx
        if any(e.kind == "tcp.fin" for e in evs):
            continue
        # the peer said nothing at the application layer after the first retransmission
        if any(e.frame > frame and e.kind.split(".")[0] in ("tls", "websocket", "ocpp", "http") for e in evs):
            continue
        stalled += 1
        at = next((e for e in evs if e.frame >= frame), end)
        yield Finding(
            fault="tcp.stalled",
            frame=frame,
            ts_ns=at.ts_ns,
            summary=f"The connection to the CSMS stalled: {count} retransmissions went unanswered and the "
            f"connection was abandoned ({end.state}).",
            evidence=(
                Evidence(frame, f"first retransmission ({count} in all)"),
                Evidence(end.frame, f"connection ended {end.state} {end.history}"),
            ),
            cx_code="CX007" if stalled > 1 else None,
            flow_id=fid,
        )
