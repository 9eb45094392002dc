"""Choose a decoder for a TCP connection from its first bytes (content first, ports only for DNS).

TLS and HTTP are found by content on any port, as mitmproxy's ``next_layer`` does. A connection whose capture
starts after the WebSocket upgrade is recognised by a plausible WebSocket frame header.
"""

from __future__ import annotations

from analyzer.decoders.base import StreamDecoder
from analyzer.decoders.dns import DnsTcpDecoder
from analyzer.decoders.http_upgrade import HttpUpgradeDecoder, starts_like_http
from analyzer.decoders.ocpp import ocpp_message_factory
from analyzer.decoders.tls import TlsDecoder, starts_like_tls
from analyzer.decoders.websocket import WebSocketDecoder, looks_like_websocket

DNS_PORTS = frozenset({53})  # not mDNS (5353): its answers are unsolicited, with no question


def stream_decoder(
    flow_id: int, data: bytes, direction: int, client_port: int, server_port: int
) -> StreamDecoder | None:
    """A decoder for the connection whose first delivered bytes are ``data`` (sent in ``direction``), or None."""
    if starts_like_tls(data):
        return TlsDecoder(flow_id)
    if starts_like_http(data):
        return HttpUpgradeDecoder(flow_id, ocpp_message_factory)
    if server_port in DNS_PORTS:
        return DnsTcpDecoder(flow_id)
    for client_direction in (0, 1):  # the flow table's role guess may be wrong for a connection seen mid-way
        if looks_like_websocket(data, direction, client_direction):
            return WebSocketDecoder(
                flow_id,
                subprotocol=None,
                extensions=None,
                message_factory=ocpp_message_factory,
                mid_stream=True,
                client_direction=client_direction,
            )
    return None


def is_dns_datagram(client_port: int, server_port: int) -> bool:
    return server_port in DNS_PORTS or client_port in DNS_PORTS
