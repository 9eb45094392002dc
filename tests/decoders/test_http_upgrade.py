"""Byte-level tests of the HTTP upgrade decoder: heads whole and split anywhere, bodies, pairing, the switch to
WebSocket, credentials. Heads are written one annotated line at a time; direction 0 is the client."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime
from typing import Any

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.decoders import http_upgrade
from analyzer.decoders.base import DecodeError
from analyzer.decoders.http_upgrade import (
    HttpUpgradeDecoder,
    accept_for_key,
    redact_subprotocol,
    starts_like_http,
    station_id_of,
)
from analyzer.events.base import DecodeAnomaly, Event, GapReason, StreamChunk, StreamGap
from analyzer.events.clock import ClockSample
from analyzer.events.http import HttpRequest, HttpResponse
from analyzer.events.websocket import WsClose, WsMessage, WsSummary
from tests.decoders.test_websocket import MASK, client_frame, frame

CLIENT, SERVER = 0, 1

# RFC 6455 §1.2 / §1.3: the handshake example; the accept value for this key is given in the RFC
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

REQUEST = (
    b"GET /ocpp/CP%2D001 HTTP/1.1\r\n"  # request line; the station id is percent-encoded
    b"Host: csms.example.com:9000\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Protocol: ocpp2.0.1, ocpp1.6\r\n"  # offered, in order of preference
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Authorization: Basic Q1AtMDAxOnMzY3JldC1wYXNzd29yZA==\r\n"  # CP-001:s3cret-password
    b"User-Agent: charger-fw/1.2\r\n"
    b"\r\n"  # end of head
)
PASSWORD = "s3cret-password"

RESPONSE_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"Sec-WebSocket-Protocol: ocpp1.6\r\n"  # accepted
    b"Date: Tue, 24 Nov 2026 04:16:35 GMT\r\n"
    b"Server: csms/1.0\r\n"
    b"\r\n"
)

# exactly as python-websockets (the lab's CSMS) rejects a handshake without a common subprotocol
RESPONSE_400 = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"Date: Tue, 24 Nov 2026 04:17:00 GMT\r\n"
    b"Connection: close\r\n"
    b"Content-Length: 85\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Server: ghostcap-lab-csms (python-websockets, ocpp)\r\n"
    b"\r\n"
    b"Failed to open a WebSocket connection: invalid subprotocol; expected one of ocpp1.6.\n"
)

RESPONSE_401 = (
    b"HTTP/1.1 401 Unauthorized\r\n"
    b'WWW-Authenticate: Basic realm="ocpp", charset="UTF-8"\r\n'
    b"Content-Length: 13\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Unauthorized\n"
)


def chunk(data: bytes, direction: int, frame_no: int, offset: int = 0) -> StreamChunk:
    return StreamChunk(3, direction, offset, data, frame_no, frame_no, frame_no * 1_000_000)


def run(parts: list[tuple[int, bytes]], *, close: bool = True, **kw: Any) -> list[Event]:
    """Feed (direction, bytes) pieces as frames 1, 2, ...; then close at frame 99."""
    dec = HttpUpgradeDecoder(3, **kw)
    out: list[Event] = []
    offsets = [0, 0]
    for i, (d, data) in enumerate(parts, start=1):
        out += dec.feed(chunk(data, d, i, offsets[d]))
        offsets[d] += len(data)
    if close:
        out += dec.close(99, 99_000_000)
    return out


def of(events: list[Event], cls: type) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


def anomalies(events: list[Event]) -> list[str]:
    return [e.name for e in events if isinstance(e, DecodeAnomaly)]


def facts(events: list[Event]) -> list[tuple]:
    out = []
    for e in events:
        d = dataclasses.asdict(e)
        for k in ("ts_ns", "frame", "first_frame", "request_frame"):
            d.pop(k, None)
        out.append((e.kind, tuple(sorted(d.items()))))
    return out


# -- heads -----------------------------------------------------------------------------------------------------


def test_request_head() -> None:
    (req,) = of(run([(CLIENT, REQUEST)]), HttpRequest)
    assert (req.method, req.target, req.path, req.station_id, req.version) == (
        "GET",
        "/ocpp/CP%2D001",
        "/ocpp/CP%2D001",
        "CP-001",
        "HTTP/1.1",
    )
    assert (req.host, req.upgrade, req.ws_key, req.ws_version) == ("csms.example.com:9000", "websocket", RFC_KEY, "13")
    assert req.ws_protocols == ("ocpp2.0.1", "ocpp1.6")
    assert req.ws_extensions == "permessage-deflate; client_max_window_bits"
    assert (req.auth_scheme, req.auth_user, req.user_agent) == ("Basic", "CP-001", "charger-fw/1.2")
    assert req.header_names[:3] == ("Host", "Upgrade", "Connection")
    assert len(req.header_names) == 9
    assert (req.frame, req.direction, req.flow_id, req.ts_ns) == (1, CLIENT, 3, 1_000_000)


def test_response_101_and_clock() -> None:
    events = run([(CLIENT, REQUEST), (SERVER, RESPONSE_101)])
    (resp,) = of(events, HttpResponse)
    assert (resp.status, resp.reason, resp.ws_protocol, resp.ws_extensions) == (
        101,
        "Switching Protocols",
        "ocpp1.6",
        None,
    )
    assert (resp.ws_accept, resp.ws_accept_expected, resp.ws_accept_ok) == (RFC_ACCEPT, RFC_ACCEPT, True)
    assert (resp.server, resp.request_frame, resp.frame, resp.direction) == ("csms/1.0", 1, 2, SERVER)
    (clock,) = of(events, ClockSample)
    assert (clock.side, clock.source, clock.raw, clock.frame) == ("csms", "http.date", resp.date, 2)
    assert clock.value_ns == int(datetime(2026, 11, 24, 4, 16, 35, tzinfo=UTC).timestamp()) * 1_000_000_000
    assert [e.kind for e in events] == ["http.request", "clock.sample", "http.response"] + ["websocket.summary"] * 2


def test_accept_for_the_rfc_example_key() -> None:
    assert accept_for_key(RFC_KEY) == RFC_ACCEPT


def test_wrong_accept() -> None:
    wrong = RESPONSE_101.replace(RFC_ACCEPT.encode(), b"N8ntNYkX6Qerw4tK3s/CYzpSZNc=-wrong")
    (resp,) = of(run([(CLIENT, REQUEST), (SERVER, wrong)]), HttpResponse)
    assert (resp.ws_accept, resp.ws_accept_expected, resp.ws_accept_ok) == (
        "N8ntNYkX6Qerw4tK3s/CYzpSZNc=-wrong",
        RFC_ACCEPT,
        False,
    )


def test_response_without_a_captured_request() -> None:
    events = run([(SERVER, RESPONSE_101 + frame(b"hi"))])
    (resp,) = of(events, HttpResponse)
    assert (resp.request_frame, resp.ws_accept_expected, resp.ws_accept_ok) == (None, None, None)
    assert [m.text_excerpt for m in of(events, WsMessage)] == ["hi"]


PLAIN_REQUEST = REQUEST.replace(b"Upgrade: websocket\r\n", b"")  # without Upgrade, later bytes stay HTTP


@pytest.mark.parametrize("cut", range(1, len(PLAIN_REQUEST)))
def test_request_split_at_every_offset(cut: int) -> None:
    trailing = b"GET /second HTTP/1.1\r\nHost: h\r\n\r\n"
    plain = PLAIN_REQUEST
    whole = run([(CLIENT, plain + trailing)])
    split = run([(CLIENT, plain[:cut]), (CLIENT, plain[cut:] + trailing)])
    assert facts(split) == facts(whole)
    assert [r.path for r in of(split, HttpRequest)] == ["/ocpp/CP%2D001", "/second"]
    assert of(split, HttpRequest)[0].frame == 2


@pytest.mark.parametrize("cut", range(1, len(RESPONSE_101) + 5))
def test_response_split_at_every_offset_with_a_frame_behind_it(cut: int) -> None:
    server = RESPONSE_101 + frame(b"ping", 9)
    whole = run([(CLIENT, REQUEST), (SERVER, server)])
    split = run([(CLIENT, REQUEST), (SERVER, server[:cut]), (SERVER, server[cut:])])
    assert facts(split) == facts(whole)
    assert [e.kind for e in split][:4] == ["http.request", "clock.sample", "http.response", "websocket.ping"]


def test_one_byte_at_a_time() -> None:
    parts = [(CLIENT, REQUEST[i : i + 1]) for i in range(len(REQUEST))]
    parts += [(SERVER, RESPONSE_400[i : i + 1]) for i in range(len(RESPONSE_400))]
    events = run(parts)
    assert facts(events) == facts(run([(CLIENT, REQUEST), (SERVER, RESPONSE_400)]))
    req, resp = of(events, HttpRequest)[0], of(events, HttpResponse)[0]
    assert (req.frame, resp.frame, resp.request_frame) == (len(REQUEST), len(parts), len(REQUEST))


# -- error responses -------------------------------------------------------------------------------------------


def test_400_invalid_subprotocol_body() -> None:
    events = run([(CLIENT, REQUEST), (SERVER, RESPONSE_400[:200]), (SERVER, RESPONSE_400[200:])])
    (resp,) = of(events, HttpResponse)
    assert (resp.status, resp.reason, resp.body_size, resp.frame) == (400, "Bad Request", 85, 3)
    assert resp.body_excerpt == "Failed to open a WebSocket connection: invalid subprotocol; expected one of ocpp1.6.\n"
    assert resp.content_type == "text/plain; charset=utf-8"
    assert not of(events, WsSummary)  # no WebSocket after a 400


def test_401_with_body_then_retry_on_the_same_connection() -> None:
    retry = REQUEST.replace(b"Q1AtMDAxOnMzY3JldC1wYXNzd29yZA==", base64.b64encode(b"CP-001:other"))
    events = run([(CLIENT, REQUEST), (CLIENT, retry), (SERVER, RESPONSE_401), (SERVER, RESPONSE_101 + frame(b"ok"))])
    first, second = of(events, HttpRequest)
    r401, r101 = of(events, HttpResponse)
    assert (r401.status, r401.body_excerpt, r401.www_authenticate) == (
        401,
        "Unauthorized\n",
        'Basic realm="ocpp", charset="UTF-8"',
    )
    # the retry was held after the first upgrade request, then parsed as HTTP once the 401 came
    assert (first.frame, second.frame, r401.request_frame, r101.request_frame) == (1, 2, 1, 2)
    assert [m.text_excerpt for m in of(events, WsMessage)] == ["ok"]


def test_101_without_the_offered_subprotocol() -> None:
    made: list[tuple[int, str | None]] = []

    def factory(flow_id: int, subprotocol: str | None) -> None:
        made.append((flow_id, subprotocol))

    no_proto = RESPONSE_101.replace(b"Sec-WebSocket-Protocol: ocpp1.6\r\n", b"")
    close = frame(b"\x03\xeano supported OCPP subprotocol", 8)  # 1002
    events = run([(CLIENT, REQUEST), (SERVER, no_proto + close)], message_factory=factory)
    (resp,) = of(events, HttpResponse)
    assert resp.ws_protocol is None
    assert made == [(3, None)]
    (c,) = of(events, WsClose)
    assert (c.code, c.reason, c.frame) == (1002, "no supported OCPP subprotocol", 2)


def test_chunked_body() -> None:
    body = b"5\r\nHello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    resp = b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    events = run([(CLIENT, REQUEST), (SERVER, resp[:50]), (SERVER, resp[50:70]), (SERVER, resp[70:])])
    (r,) = of(events, HttpResponse)
    assert (r.status, r.body_excerpt, r.body_size, r.frame) == (500, "Hello, world", 12, 4)


def test_body_until_close() -> None:
    resp = b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/html\r\n\r\n<h1>down</h1>"
    events = run([(CLIENT, REQUEST), (SERVER, resp[:40]), (SERVER, resp[40:])])
    (r,) = of(events, HttpResponse)
    assert (r.version, r.status, r.body_excerpt, r.frame) == ("HTTP/1.0", 503, "<h1>down</h1>", 3)


def test_incomplete_body_at_close() -> None:
    events = run([(CLIENT, REQUEST), (SERVER, RESPONSE_401[:-5])])
    (r,) = of(events, HttpResponse)
    assert (r.body_size, r.body_excerpt, r.frame) == (8, "Unauthor", 2)
    assert anomalies(events) == ["http.incomplete_body"]


def test_head_response_and_100_continue_and_pipelining() -> None:
    client = (
        b"HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nbody"
        b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    server = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"  # HEAD: no body despite Content-Length
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\n"
        b"HTTP/1.1 304 Not Modified\r\n\r\n"
    )
    events = run([(CLIENT, client), (SERVER, server)])
    reqs = of(events, HttpRequest)
    assert [(r.method, r.path, r.body_size) for r in reqs] == [("HEAD", "/a", 0), ("POST", "/b", 4), ("GET", "/c", 0)]
    assert [(r.status, r.request_frame) for r in of(events, HttpResponse)] == [(200, 1), (100, 1), (204, 1), (304, 1)]
    assert anomalies(events) == []


def test_upgrade_to_another_protocol_is_not_websocket() -> None:
    req = b"POST /attach HTTP/1.1\r\nHost: docker\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n"
    resp = b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n\x81\x05hello"
    dec = HttpUpgradeDecoder(3)
    events = dec.feed(chunk(req, CLIENT, 1)) + dec.feed(chunk(resp, SERVER, 2))
    events += dec.feed(chunk(b"\x81\x05hello", CLIENT, 3)) + dec.feed(chunk(b"GET / HTTP/1.1\r\n\r\n", CLIENT, 4))
    events += dec.close(5, 0)
    assert [e.kind for e in events] == ["http.request", "http.response"]
    assert dec.websocket is None


def test_client_frames_held_until_the_101_keep_their_frame_numbers() -> None:
    events = run([(CLIENT, REQUEST + client_frame(b"early")), (CLIENT, client_frame(b"later")), (SERVER, RESPONSE_101)])
    early, later = of(events, WsMessage)
    assert (early.text_excerpt, early.frame, later.text_excerpt, later.frame) == ("early", 1, "later", 2)


def test_101_and_first_frame_in_one_segment() -> None:
    events = run([(CLIENT, REQUEST), (SERVER, RESPONSE_101 + frame(b"Hello Zeek!") + frame(b"", 9))])
    (m,) = of(events, WsMessage)
    assert (m.text_excerpt, m.frame, m.direction) == ("Hello Zeek!", 2, SERVER)
    assert [e.kind for e in events][3:5] == ["websocket.message", "websocket.ping"]


def test_negotiated_deflate_reaches_the_websocket_child() -> None:
    import zlib

    c = zlib.compressobj(6, zlib.DEFLATED, -12)
    payload = (c.compress(b'[3,"1",{}]') + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    resp = RESPONSE_101.replace(
        b"Server:", b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12\r\nServer:"
    )
    events = run([(CLIENT, REQUEST), (SERVER, resp + frame(payload, rsv=0x40))])
    (r,) = of(events, HttpResponse)
    assert r.ws_extensions == "permessage-deflate; server_max_window_bits=12"
    (m,) = of(events, WsMessage)
    assert (m.text_excerpt, m.compressed) == ('[3,"1",{}]', True)


# -- credentials -------------------------------------------------------------------------------------------------


def _strings(obj: object, seen: set[int] | None = None) -> list[str]:
    """Every str/bytes reachable from ``obj`` (attributes, slots, containers), as text."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, bytes | bytearray | memoryview):
        return [bytes(obj).decode("latin-1")]
    out: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _strings(k, seen) + _strings(v, seen)
    elif isinstance(obj, list | tuple | set | frozenset) or type(obj).__name__ == "deque":
        for v in obj:  # type: ignore[attr-defined]
            out += _strings(v, seen)
    elif hasattr(obj, "__dict__") or hasattr(type(obj), "__slots__"):
        names = list(getattr(obj, "__dict__", {}))
        for cls in type(obj).__mro__:
            names += list(getattr(cls, "__slots__", ()))
        for n in names:
            if isinstance(n, str) and hasattr(obj, n) and not n.startswith("__"):
                out += _strings(getattr(obj, n), seen)
    return out


def test_basic_password_is_never_kept() -> None:
    dec = HttpUpgradeDecoder(3)
    events = dec.feed(chunk(REQUEST[:100], CLIENT, 1)) + dec.feed(chunk(REQUEST[100:], CLIENT, 2))
    events += dec.feed(chunk(RESPONSE_401, SERVER, 3)) + dec.close(4, 0)
    (req,) = of(events, HttpRequest)
    assert req.auth_user == "CP-001"
    encoded = "Q1AtMDAxOnMzY3JldC1wYXNzd29yZA=="
    for text in [repr(events), *(e.summary() for e in events), *_strings(events), *_strings(dec)]:
        assert PASSWORD not in text
        assert encoded not in text
        assert "s3cret" not in text


def test_bearer_token_is_never_kept() -> None:
    token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpZCI6IjAxOGNmZWFiIn0.FsquetBp_jsIDzBslWyyTPlS2hcMprVu"
    req = (
        b"GET /v1/events HTTP/1.1\r\nHost: localhost:8888\r\nUpgrade: websocket\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\n"
        b"Sec-WebSocket-Protocol: v1, authorization.bearer." + token.encode() + b"\r\n\r\n"
    )
    dec = HttpUpgradeDecoder(3)
    events = dec.feed(chunk(req, CLIENT, 1)) + dec.close(2, 0)
    (r,) = of(events, HttpRequest)
    assert (r.auth_scheme, r.auth_user) == ("Bearer", None)
    assert r.ws_protocols == ("v1", "authorization.bearer.<redacted>")
    assert not any(token[:20] in text for text in [repr(events), *_strings(events), *_strings(dec)])


def test_redact_subprotocol() -> None:
    assert redact_subprotocol("ocpp1.6") == "ocpp1.6"
    assert redact_subprotocol("base64url.bearer.authorization.k8s.io.abc") == "base64url.bearer.<redacted>"


def test_malformed_basic_credentials() -> None:
    events = run([(CLIENT, b"GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic !!!\r\n\r\n")])
    (r,) = of(events, HttpRequest)
    assert (r.auth_scheme, r.auth_user, r.station_id) == ("Basic", None, None)
    assert anomalies(events) == ["http.malformed_basic_auth"]


# -- targets and detection -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "station"),
    [("/", None), ("/ocpp/CP-1", "CP-1"), ("/ocpp/CP-1/", "CP-1"), ("/a/%E2%82%AC%20x", "€ x"), ("", None)],
)
def test_station_id(path: str, station: str | None) -> None:
    assert station_id_of(path) == station


def test_absolute_form_and_query() -> None:
    events = run([(CLIENT, b"GET ws://h:80/ocpp/CP-9?token=x HTTP/1.1\r\nHost: h\r\n\r\n")])
    (r,) = of(events, HttpRequest)
    assert (r.target, r.path, r.station_id) == ("ws://h:80/ocpp/CP-9?token=«redacted»", "/ocpp/CP-9", "CP-9")


def test_query_values_and_echoed_credentials_are_hidden() -> None:
    """``leak_password_in_url_query_timeline_json.pcap``, ``security/secrets/secrets_401.pcap``: the query string
    of the upgrade request, and a 401 body echoing the Basic password or a query value, show no secret."""
    basic = base64.b64encode(b"CP-1:S3cr3t-P4ss").decode()
    req = (
        f"GET ws://u:UrlPass1@h/ocpp/CP-1?password=QueryPass9&token=Tok%2D77&flag#frag HTTP/1.1\r\nHost: h\r\n"
        f"Authorization: Basic {basic}\r\n\r\n"
    ).encode()
    body = b"bad credentials S3cr3t-P4ss, token Tok-77, password QueryPass9"
    resp = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    dec = HttpUpgradeDecoder(3)
    events = dec.feed(chunk(req, CLIENT, 1)) + dec.feed(chunk(resp, SERVER, 2)) + dec.close(3, 0)
    (r,) = of(events, HttpRequest)
    (a,) = of(events, HttpResponse)
    assert r.target == "ws://u:«redacted»@h/ocpp/CP-1?password=«redacted»&token=«redacted»&«redacted»#«redacted»"
    assert r.station_id == "CP-1"
    assert a.body_excerpt == "bad credentials «redacted», token «redacted», password «redacted»"
    for secret in ("S3cr3t-P4ss", "QueryPass9", "Tok%2D77", "Tok-77", "UrlPass1", basic):
        assert not any(secret in text for text in [repr(events), *_strings(events), *_strings(dec)]), secret


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"GET /ocpp/CP1 HTTP/1.1\r\nHost: x\r\n", True),
        (b"GET /ocpp/CP1 HTTP/1.1\n", True),  # bare LF
        (b"M-SEARCH * HTTP/1.1\r\n", True),  # any method token
        (b"HTTP/1.1 101 Switching Protocols\r\n", True),
        (b"HTTP/1.0 200\r\n", True),  # no reason phrase
        (b"GET /ocp", True),  # incomplete first line, known method
        (b"HTTP/1.", True),
        (b"FOO /x", False),  # incomplete, unknown method
        (b"GET /a b HTTP/1.1\r\n", False),  # a space in the target
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", False),  # TLS ClientHello
        (b"\x81\x05Hello", False),  # WebSocket frame
        (b"SSH-2.0-OpenSSH_9.2\r\n", False),
        (b"", False),
    ],
)
def test_starts_like_http(data: bytes, expected: bool) -> None:
    assert starts_like_http(data) is expected


# -- malformed input, limits, gaps -------------------------------------------------------------------------------------


def test_not_http_raises_decode_error() -> None:
    dec = HttpUpgradeDecoder(3)
    with pytest.raises(DecodeError) as info:
        dec.feed(chunk(b"\x16\x03\x01\x00\x05hello\r\n\r\n", CLIENT, 1, offset=0))
    assert info.value.offset == 0


def test_lenient_heads() -> None:
    head = (
        b"\r\n"  # an empty line before the request (RFC 7230 §3.5)
        b"GET  /x  HTTP/1.1\r\n"  # two spaces
        b"Host : a\r\n"  # a space before the colon
        b"Host: b\r\n"  # a second Host
        b"no colon here\r\n"
        b"X-Folded: one\r\n"
        b"  two\r\n"  # obs-fold
        b"\r\n"
    )
    events = run([(CLIENT, head)])
    (r,) = of(events, HttpRequest)
    assert (r.path, r.host, r.header_names) == ("/x", "a", ("Host", "Host", "X-Folded"))
    assert anomalies(events) == ["http.malformed_header"]


def test_head_too_long() -> None:
    big = b"GET / HTTP/1.1\r\n" + b"X-Filler: " + b"a" * http_upgrade.MAX_HEAD_BYTES
    events = run([(CLIENT, big[:40000]), (CLIENT, big[40000:]), (CLIENT, b"more\r\n\r\n")])
    assert anomalies(events) == ["http.head_too_long"]
    assert not of(events, HttpRequest)


def test_bad_content_length() -> None:
    resp = b"HTTP/1.1 400 Bad\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef"
    events = run([(SERVER, resp)])
    assert anomalies(events) == ["http.bad_content_length"]
    (r,) = of(events, HttpResponse)
    assert r.body_excerpt == "abcdef"  # read until close


def test_a_content_length_of_other_than_ascii_digits_is_bad() -> None:
    """``"²85"`` is digits to ``str.isdigit`` but not to ``int`` (nor to RFC 9110's 1*DIGIT): an anomaly, never
    an exception (hypothesis found it, Latin-1 byte 0xB2)."""
    resp = b"HTTP/1.1 400 Bad\r\nContent-Length: \xb285\r\n\r\nabc"
    events = run([(SERVER, resp)])
    assert anomalies(events) == ["http.bad_content_length"]
    (r,) = of(events, HttpResponse)
    assert r.body_excerpt == "abc"  # read until close


def test_incomplete_head_at_close() -> None:
    events = run([(CLIENT, REQUEST[:50])])
    assert anomalies(events) == ["http.incomplete_head"]


def test_gap_in_a_body_and_in_a_head() -> None:
    dec = HttpUpgradeDecoder(3)
    events = dec.feed(chunk(RESPONSE_401[:-10], SERVER, 1))
    events += dec.gap(StreamGap(3, SERVER, len(RESPONSE_401) - 10, 4, 2, 0, GapReason.NOT_CAPTURED))
    events += dec.feed(chunk(RESPONSE_401[-6:], SERVER, 3))
    (r,) = of(events, HttpResponse)
    assert (r.body_size, r.frame) == (13, 3)
    events = dec.feed(chunk(REQUEST[:30], CLIENT, 4))
    events += dec.gap(StreamGap(3, CLIENT, 30, 4, 5, 0, GapReason.NOT_CAPTURED))
    events += dec.feed(chunk(REQUEST[34:], CLIENT, 6))  # not a head start: ignored
    events += dec.feed(chunk(b"GET /again HTTP/1.1\r\nHost: h\r\n\r\n", CLIENT, 7))  # resumes here
    assert anomalies(events) == ["http.gap"]
    assert [r.path for r in of(events, HttpRequest)] == ["/again"]


def test_gaps_after_the_upgrade_go_to_the_websocket_child() -> None:
    dec = HttpUpgradeDecoder(3)
    dec.feed(chunk(REQUEST, CLIENT, 1))
    dec.feed(chunk(RESPONSE_101, SERVER, 2))
    events = dec.gap(StreamGap(3, SERVER, len(RESPONSE_101), 10, 3, 0, GapReason.NOT_CAPTURED))
    assert anomalies(events) == ["websocket.gap"]


def test_hold_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_upgrade, "HOLD_LIMIT", 110)
    dec = HttpUpgradeDecoder(3)
    dec.feed(chunk(REQUEST, CLIENT, 1))
    dec.feed(chunk(client_frame(b"a" * 90), CLIENT, 2))
    dec.feed(chunk(client_frame(b"b" * 90), CLIENT, 3))  # past the limit: becomes a gap for the child
    dec.feed(chunk(client_frame(b"c"), CLIENT, 4))
    events = dec.feed(chunk(RESPONSE_101, SERVER, 5)) + dec.close(6, 0)
    assert [m.text_excerpt[:1] for m in of(events, WsMessage)] == ["a", "c"]
    assert "websocket.gap" in anomalies(events)


# -- h11 as a second opinion, and fuzzing ----------------------------------------------------------------------------

_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=12)
_VALUE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)


@given(
    st.sampled_from(["GET", "POST", "PUT", "OPTIONS"]),
    st.lists(_TOKEN, max_size=4).map(lambda s: "/" + "/".join(s)),
    st.lists(
        st.tuples(_TOKEN.filter(lambda t: t.lower() not in ("host", "content-length", "transfer-encoding")), _VALUE),
        max_size=6,
    ),
)
@settings(max_examples=150, deadline=None)
def test_requests_agree_with_h11(method: str, target: str, headers: list[tuple[str, str]]) -> None:
    head = f"{method} {target} HTTP/1.1\r\nHost: example\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head.encode())
    theirs = conn.next_event()
    assert isinstance(theirs, h11.Request)
    (ours,) = of(run([(CLIENT, head.encode())]), HttpRequest)
    assert (ours.method, ours.target) == (theirs.method.decode(), theirs.target.decode())
    names = [n.decode() for n, _ in theirs.headers.raw_items()]
    assert list(ours.header_names) == names == ["Host", *(n for n, _ in headers)]
    values = {n.decode().lower(): v.decode() for n, v in theirs.headers.raw_items()}
    assert (ours.user_agent, ours.upgrade) == (values.get("user-agent"), values.get("upgrade"))


@given(st.lists(st.tuples(st.integers(0, 1), st.binary(max_size=120)), max_size=12))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_random_bytes(parts: list[tuple[int, bytes]]) -> None:
    """Events or ``DecodeError`` (documented: a head whose first line is not HTTP), nothing else; bounded."""
    try:
        events = run(parts)
    except DecodeError:
        return
    assert all(isinstance(e, Event) for e in events)
    assert len(events) <= sum(len(p) for _, p in parts) + 10


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_fuzz_mutated_handshakes(data: st.DataObject) -> None:
    client = bytearray(REQUEST + client_frame(b'[2,"1","Heartbeat",{}]'))
    server = bytearray(RESPONSE_400 if data.draw(st.booleans()) else RESPONSE_101 + frame(b"\x03\xe8", 8))
    for buf in (client, server):
        for _ in range(data.draw(st.integers(0, 4))):
            i = data.draw(st.integers(0, len(buf) - 1))
            buf[i] = data.draw(st.integers(0, 255))
    seg = data.draw(st.integers(1, 80))
    parts = [(CLIENT, bytes(client[i : i + seg])) for i in range(0, len(client), seg)]
    parts += [(SERVER, bytes(server[i : i + seg])) for i in range(0, len(server), seg)]
    try:
        events = run(parts)
    except DecodeError:
        return
    assert all(isinstance(e, Event) for e in events)
    assert len(events) <= len(client) + len(server)
    assert MASK  # the client frames above are masked with the RFC key
