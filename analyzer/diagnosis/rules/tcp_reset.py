"""An established connection to the CSMS was reset (RST) without a preceding WebSocket close.

Field effect: the charger drops offline mid-session; a middlebox idle timeout or a CSMS restart is typical.
Resets that only end a handshake already failed above TCP (TLS, HTTP) belong to those layers' rules.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import flow_events, upgraded
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule


@rule("tcp.reset")
def tcp_reset(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for fid in ch.flow_ids:
        evs = flow_events(ch, fid)
        if not any(e.kind == "tcp.syn_ack" for e in evs) and not any(e.kind == "tcp.flow_end" for e in evs):
            continue
        rst = next((e for e in evs if e.kind == "tcp.rst"), None)
        if rst is None or not any(e.kind == "tcp.syn_ack" and e.frame < rst.frame for e in evs):
            continue
        before = [e for e in evs if e.frame <= rst.frame]
        if any(e.kind in ("websocket.close", "tcp.fin") for e in before if e.frame < rst.frame):
            continue  # closing was already under way
        tls = any(e.kind.startswith("tls.") for e in before)
        if tls and not _tls_established(before):
            continue  # the TLS rules explain a handshake cut by RST
        if any(e.kind == "http.response" for e in before) and upgraded(before) is None:
            continue  # the HTTP rules explain a refused upgrade
        who = "the CSMS" if rst.direction == 1 else "the charger"
        yield Finding(
            fault="tcp.reset",
            frame=rst.frame,
            ts_ns=rst.ts_ns,
            summary=f"The established connection to the CSMS was reset by {who} (RST from {rst.src}) "
            f"without a WebSocket close.",
            evidence=(Evidence(rst.frame, f"RST {rst.src} → {rst.dst} after {sum(rst.payload)} bytes"),),
            flow_id=fid,
        )


def _tls_established(events: list) -> bool:
    dirs = {e.direction for e in events if e.kind == "tls.encrypted" and getattr(e, "content_type", 23) == 23}
    ccs = {e.direction for e in events if e.kind == "tls.change_cipher_spec"}
    return len(dirs) == 2 or len(ccs) == 2 or any(getattr(e, "app_data_both_ways", False) for e in events)
