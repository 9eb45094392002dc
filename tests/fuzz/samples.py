"""Real bytes for the property tests: TCP streams, DNS payloads and OCPP messages taken from the project's sample
captures (``captures/`` of this checkout), read once per test process."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from analyzer.engine import rebuild_flows
from analyzer.events.base import Event, StreamChunk
from analyzer.flows.table import Flow, FlowTable

CAPTURES = Path(__file__).resolve().parent.parent.parent / "captures"

# small captures, each a different path through the decoders
TLS_CAPTURES = (
    "healthy_16_wss_tls12.pcap",  # TLS 1.2, decryptable with its key log
    "healthy_201_wss_tls13_mtls.pcap",  # TLS 1.3 with client certificates, decryptable
    "tls12_cert_not_yet_valid.pcap",  # certificates, an alert
    "tls12_client_cert_required.pcap",  # CertificateRequest
)
WS_CAPTURES = (
    "healthy_16_ws.pcap",  # upgrade, WebSocket, OCPP 1.6
    "healthy_201_ws.pcap",  # OCPP 2.0.1
    "ocpp_boot_callerror.pcap",
    "ocpp_schema_violation.pcap",
    "ws_abnormal_close.pcap",
    "http_unauthorized.pcap",  # an upgrade refused with a body
)
DNS_CAPTURES = ("dns_nxdomain.pcap", "dns_refused.pcap", "dns_no_address.pcap", "dns_nxdomain_typo_gateway.pcap")
READER_CAPTURES = ("healthy_16_ws.pcap", "dns_refused.pcap", "tcp_reset.pcap", "tls_protocol_version.pcap")


@dataclass(frozen=True)
class Stream:
    """One TCP connection as the flow table delivered it: ``chunks`` are (direction, bytes) in delivery order."""

    capture: str
    chunks: tuple[tuple[int, bytes], ...]
    client_port: int
    server_port: int

    def side(self, direction: int) -> bytes:
        return b"".join(d for k, d in self.chunks if k == direction)


@functools.cache
def tcp_streams(capture: str) -> tuple[Stream, ...]:
    chunks: dict[int, list[tuple[int, bytes]]] = {}

    def on_chunk(c: StreamChunk) -> None:
        chunks.setdefault(c.flow_id, []).append((c.direction, c.data))

    table = FlowTable(on_chunk=on_chunk)
    rebuild_flows(CAPTURES / capture, table=table)
    return tuple(
        Stream(capture, tuple(cs), table.flows[fid].client.port, table.flows[fid].server.port)
        for fid, cs in sorted(chunks.items())
        if cs
    )


@functools.cache
def dns_payloads() -> tuple[bytes, ...]:
    """Every UDP/53 payload of the DNS captures (queries and responses)."""
    out: list[bytes] = []

    def on_datagram(flow: Flow, d: int, payload: bytes, frame: int, ts: int) -> None:
        if 53 in (flow.client.port, flow.server.port):
            out.append(payload)

    for name in DNS_CAPTURES:
        rebuild_flows(CAPTURES / name, on_datagram=on_datagram)
    return tuple(dict.fromkeys(out))


@functools.cache
def ocpp_messages() -> tuple[tuple[int, bytes, bool], ...]:
    """(direction, message bytes, text?) of every WebSocket message of the WebSocket captures."""
    from analyzer.decoders.http_upgrade import HttpUpgradeDecoder

    out: list[tuple[int, bytes, bool]] = []

    class Sink:
        def message(self, *, direction: int, data: bytes, text: bool, frame: int, ts_ns: int) -> list[Event]:
            out.append((direction, data, text))
            return []

        def close(self, frame: int, ts_ns: int) -> list[Event]:
            return []

    for name in WS_CAPTURES:
        for s in tcp_streams(name):
            dec = HttpUpgradeDecoder(1, lambda fid, sub: Sink())
            offsets = [0, 0]
            for i, (d, data) in enumerate(s.chunks, 1):
                dec.feed(StreamChunk(1, d, offsets[d], data, i, i, i))
                offsets[d] += len(data)
    return tuple(dict.fromkeys(out))


def keylog_for(capture: str) -> Path | None:
    p = CAPTURES / capture.replace(".pcap", ".keys.txt")
    return p if p.exists() else None
