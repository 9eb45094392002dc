"""Choose a decoder for a TCP connection from its first bytes (content first, ports only for DNS).

TLS and HTTP are found by content on any port, as mitmproxy's ``next_layer`` does. A connection whose capture
starts after the WebSocket upgrade is recognised by a plausible WebSocket frame header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analyzer.decoders.base import StreamDecoder
from analyzer.decoders.dns import DnsTcpDecoder
from analyzer.decoders.http_upgrade import HttpUpgradeDecoder, starts_like_http
from analyzer.decoders.ocpp import ocpp_message_factory
from analyzer.decoders.tls import TlsDecoder, starts_like_tls
from analyzer.decoders.websocket import WebSocketDecoder, looks_like_websocket

if TYPE_CHECKING:
    from analyzer.tls.keylog import KeyLog

DNS_PORTS = frozenset({53})  # not mDNS (5353): its answers are unsolicited, with no question


def stream_decoder(
    flow_id: int,
    data: bytes,
    direction: int,
    client_port: int,
    server_port: int,
    keys: KeyLog | None = None,
    opened: bool = False,
) -> StreamDecoder | None:
    """A decoder for the connection whose first delivered bytes are ``data`` (sent in ``direction``), or None.

    With ``keys`` a TLS connection is decrypted where the key log allows, and its plaintext is decoded as HTTP
    (the WebSocket upgrade) when it starts like HTTP. (Decryption needs the hellos, so the session's start is
    always in the capture: no mid-stream guessing.) ``opened``: the capture holds the connection's SYN, so
    WebSocket frames on it were sent without any upgrade, not after one the capture missed."""
    if starts_like_tls(data):

        def inner(plain: bytes, d: int) -> StreamDecoder | None:
            return HttpUpgradeDecoder(flow_id, ocpp_message_factory) if starts_like_http(plain) else None

        return TlsDecoder(flow_id, keys=keys, inner=inner if keys is not None else None)
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
                no_upgrade=opened,
            )
    return None


def is_dns_datagram(client_port: int, server_port: int) -> bool:
    return server_port in DNS_PORTS or client_port in DNS_PORTS
