"""HTTP/1.x decoder for the WebSocket upgrade (RFC 7230 message framing, RFC 6455 §4 opening handshake), sans-IO.

Both directions of one TCP connection: request heads from the client, response heads (and bounded bodies, for
error responses) from the server; keep-alive and pipelined requests are paired with responses in order. On a
``101`` that switches to WebSocket, everything after the response head (bytes that came with the 101, and the
client's bytes after its request, held until the response decided) goes to a ``WebSocketDecoder`` child, and
every later chunk passes through to it. A ``101`` to another protocol (``Upgrade: tcp``) leaves the rest of the
connection undecoded; any other response keeps the connection in HTTP.

Why not h11: used passively, h11 must be *told* the request (``Connection(CLIENT).send(...)``) before it will
parse a response, so it cannot read a 101 whose request the capture lacks ("Received server _SWITCH_UPGRADE event
without a pending proposal"); a server-role connection parses the next pipelined request only after a response
was sent to it; and it refuses heads an analyzer must still describe (HTTP/1.1 without ``Host``, two ``Host``
headers, a space before the colon, a non-ASCII byte in a header). So heads are parsed here, leniently: what was
sent is recorded, and oddities are anomalies. h11 serves the tests as a second opinion on well-formed heads.

Errors: a head whose first line is neither a request line nor a status line raises ``DecodeError`` (the
connection is not HTTP, or not any more). Everything else is an event or a ``DecodeAnomaly(decoder="http")``.
Credentials: the ``Authorization`` value is read for its scheme and Basic user name and then dropped; no event or
anomaly holds it, and buffers that held a head are replaced after parsing. The request target is kept with its
query values hidden (``analyzer.redaction.redact_url``). The credentials and query values are remembered only as
keyed hashes (``redaction.fingerprints``), to hide them in the response's body excerpt (a 401 body may echo what
it refused).
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import re
from collections import deque
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from analyzer.decoders.base import DecodeError, MessageDecoderFactory
from analyzer.decoders.websocket import WebSocketDecoder
from analyzer.events.base import DecodeAnomaly, Event, GapReason, StreamChunk, StreamGap
from analyzer.events.clock import ClockSample
from analyzer.events.http import HttpRequest, HttpResponse
from analyzer.redaction import fingerprints, redact_text, redact_url, scrub, url_secrets

# RFC 6455 §1.3 / §4.2.2: Sec-WebSocket-Accept = base64(SHA-1(Sec-WebSocket-Key + this GUID))
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STATUS_SWITCHING_PROTOCOLS = 101  # RFC 7231 §6.2.2

MAX_HEAD_BYTES = 64 << 10  # request/response head (start line + headers); h11's default limit is 16 KiB
MAX_START_LINE = 8 << 10
MAX_CHUNK_LINE = 1 << 10  # chunk-size line of a chunked body, with extensions
BODY_KEEP = 4 << 10  # body bytes kept (for the excerpt); the rest is counted
BODY_EXCERPT_CHARS = 300
HOLD_LIMIT = 1 << 20  # client bytes held after an upgrade request until the response arrives
MAX_PENDING = 256  # requests waiting for a response (pipelined); beyond, the oldest is forgotten
DECODER = "http"

# RFC 7230 §3.1.1 request-line (method = token, §3.2.6 tchar), §3.1.2 status-line; lenient about repeated spaces
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") +([^\s]+) +HTTP/(\d)\.(\d) *")
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) +(\d{3})(?:[ \t]+(.*))?")
_KNOWN_METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ", b"OPTIONS ", b"PATCH ", b"CONNECT ", b"TRACE ")


def starts_like_http(data: bytes) -> bool:
    """Whether ``data`` (the first bytes of a direction) begins with an HTTP/1.x request line (any method token)
    or status line. A complete first line must match the grammar; an incomplete one must be a known method
    followed by a space, or ``HTTP/1.``."""
    end = data.find(b"\n", 0, MAX_START_LINE)
    if end < 0:
        return data.startswith((b"HTTP/1.", *_KNOWN_METHODS)) and len(data) < MAX_START_LINE
    line = data[:end].rstrip(b"\r")
    return _REQUEST_LINE.fullmatch(line) is not None or _STATUS_LINE.fullmatch(line) is not None


def accept_for_key(key: str) -> str:
    """RFC 6455 §4.2.2 step 5.4: the ``Sec-WebSocket-Accept`` a server must send for ``key``."""
    return base64.b64encode(hashlib.sha1(key.strip().encode("latin-1") + WS_GUID).digest()).decode("ascii")


def redact_subprotocol(value: str) -> str:
    """A subprotocol carrying a bearer token (``authorization.bearer.<token>``, ``base64url.bearer.<...>``) keeps
    its text up to ``bearer.`` and loses the token: ``authorization.bearer.<redacted>``."""
    i = value.lower().find("bearer.")
    if i < 0:
        return value
    return value[: i + len("bearer.")] + "<redacted>"


def station_id_of(path: str) -> str | None:
    """The last non-empty path segment, percent-decoded as UTF-8 (OCPP-J: the charge point identity)."""
    segments = [s for s in path.split("/") if s]
    return unquote(segments[-1], errors="replace") if segments else None


class _Mode(Enum):
    HEAD = 1  # waiting for a message head
    BODY = 2  # inside a message body
    HOLD = 3  # client bytes after an upgrade request, held until the response
    OPAQUE = 4  # not decoded: after a gap (until a chunk starts like HTTP) or after a non-WebSocket upgrade


class _Body(Enum):
    LENGTH = 1
    CHUNKED = 2
    UNTIL_CLOSE = 3


@dataclass(slots=True)
class _Pending:
    """A request waiting for its response."""

    frame: int
    method: str
    ws_key: str | None
    upgrade: str | None
    direction: int
    secrets: tuple[tuple[int, bytes], ...] = ()  # fingerprints of the request's credentials and query values


@dataclass(slots=True)
class _Side:
    mode: _Mode = _Mode.HEAD
    buf: bytearray = field(default_factory=bytearray)
    held: list[StreamChunk | StreamGap] = field(default_factory=list)
    held_bytes: int = 0
    # body in progress
    body: _Body = _Body.LENGTH
    remaining: int = 0
    chunk_state: int = 0  # 0 size line, 1 data, 2 CRLF after data, 3 trailer lines
    kept: bytearray = field(default_factory=bytearray)
    body_size: int = 0
    body_frame: int = 0
    body_ts: int = 0
    pending_event: dict[str, object] | None = None
    resumable: bool = True
    scanned: int = 0  # bytes of ``buf`` already searched for the end of a head
    scrub: tuple[tuple[int, bytes], ...] = ()  # fingerprints of the secrets of the request this body answers


def _headers(lines: list[bytes]) -> tuple[list[tuple[str, str]], int]:
    """(name, value) pairs decoded as Latin-1 (obs-fold joined with a space), and the count of lines that are not
    headers."""
    out: list[tuple[str, str]] = []
    bad = 0
    for raw in lines:
        line = raw.rstrip(b"\r")
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and out:
            name, value = out[-1]
            out[-1] = (name, f"{value} {line.strip().decode('latin-1')}")
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            bad += 1
            continue
        out.append((name.strip().decode("latin-1"), value.strip().decode("latin-1")))
    return out, bad


def _all(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for n, v in headers if n.lower() == name]


def _first(headers: list[tuple[str, str]], name: str) -> str | None:
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


def _joined(headers: list[tuple[str, str]], name: str) -> str | None:
    values = _all(headers, name)
    return ", ".join(values) if values else None


def _path_of(target: str) -> str:
    if target.startswith("/"):
        return target.partition("?")[0].partition("#")[0]
    if "://" in target:
        return urlsplit(target).path or "/"
    return target  # "*" or authority-form


class HttpUpgradeDecoder:
    """Decodes the HTTP/1.x part of a connection and hands the rest to a WebSocket child after a 101.

    ``message_factory`` is passed on to the ``WebSocketDecoder`` (it makes the decoder of whole messages, e.g.
    OCPP, from the flow id and the accepted subprotocol).
    """

    name: ClassVar[str] = "http"

    def __init__(self, flow_id: int, message_factory: MessageDecoderFactory | None = None) -> None:
        self.flow_id = flow_id
        self.message_factory = message_factory
        self._sides = (_Side(), _Side())
        self._pending: deque[_Pending] = deque(maxlen=MAX_PENDING)
        self._ws: WebSocketDecoder | None = None
        self._switched = False  # a 101 was seen: HTTP is over on this connection

    @property
    def websocket(self) -> WebSocketDecoder | None:
        """The WebSocket child, once a 101 switched to WebSocket."""
        return self._ws

    # -- StreamDecoder ---------------------------------------------------------------------------------------

    def feed(self, chunk: StreamChunk) -> list[Event]:
        if self._ws is not None:
            return self._ws.feed(chunk)
        if self._switched:
            return []
        side = self._sides[chunk.direction]
        if side.mode is _Mode.HOLD:
            self._hold(side, chunk)
            return []
        if side.mode is _Mode.OPAQUE:
            if not (side.resumable and starts_like_http(chunk.data)):
                return []
            side.mode = _Mode.HEAD
            side.buf = bytearray()
            side.scanned = 0
        side.buf += chunk.data
        out: list[Event] = []
        self._run(side, chunk, out)
        return out

    def gap(self, gap: StreamGap) -> list[Event]:
        if self._ws is not None:
            return self._ws.gap(gap)
        if self._switched:
            return []
        side = self._sides[gap.direction]
        if side.mode is _Mode.HOLD:
            self._hold_gap(side, gap)
            return []
        if side.mode is _Mode.OPAQUE:
            return []
        in_body = side.mode is _Mode.BODY and not side.buf
        if in_body and (side.body is _Body.UNTIL_CLOSE or (side.body is _Body.LENGTH and gap.size <= side.remaining)):
            side.body_size += gap.size
            side.remaining -= gap.size
            out = [self._anomaly(gap.frame, gap.ts_ns, gap.direction, "http.gap", self._gap_text(gap, "body"))]
            if side.body is _Body.LENGTH and side.remaining == 0:
                self._finish_body(side, gap.frame, gap.ts_ns, out)
            return out
        side.mode = _Mode.OPAQUE
        side.buf = bytearray()
        side.scanned = 0
        return [
            self._anomaly(
                gap.frame,
                gap.ts_ns,
                gap.direction,
                "http.gap",
                self._gap_text(gap, "message") + "; waiting for a chunk that starts like HTTP",
            )
        ]

    def close(self, frame: int, ts_ns: int) -> list[Event]:
        if self._ws is not None:
            return self._ws.close(frame, ts_ns)
        out: list[Event] = []
        for d, side in enumerate(self._sides):
            if side.mode is _Mode.BODY and side.pending_event is not None:
                if side.body is not _Body.UNTIL_CLOSE:
                    out.append(
                        self._anomaly(
                            side.body_frame or frame,
                            side.body_ts or ts_ns,
                            d,
                            "http.incomplete_body",
                            f"the connection ended after {side.body_size} body bytes",
                        )
                    )
                self._finish_body(side, side.body_frame or frame, side.body_ts or ts_ns, out)
            elif side.mode is _Mode.HEAD and side.buf.strip():
                out.append(
                    self._anomaly(
                        frame, ts_ns, d, "http.incomplete_head", f"{len(side.buf)} bytes of an unfinished message head"
                    )
                )
        return out

    # -- parsing ---------------------------------------------------------------------------------------------

    def _run(self, side: _Side, chunk: StreamChunk, out: list[Event]) -> None:
        """Parse what ``side.buf`` holds; ``chunk`` is the chunk that brought the last bytes."""
        d = chunk.direction
        while side.buf:
            if side.mode is _Mode.BODY:
                if not self._body(side, chunk, out):
                    return
                continue
            if side.mode is not _Mode.HEAD:
                return
            buf = side.buf
            skip = 0
            while skip < len(buf) and buf[skip] in b"\r\n":  # RFC 7230 §3.5: empty lines before a request
                skip += 1
            if skip:
                del buf[:skip]
                side.scanned = max(side.scanned - skip, 0)
                continue
            start = max(side.scanned - 2, 0)  # bytes already searched for the end of the head
            end = buf.find(b"\n\r\n", start)
            sep = 3
            alt = buf.find(b"\n\n", start)
            if alt >= 0 and (end < 0 or alt < end):
                end, sep = alt, 2
            if end < 0:
                side.scanned = len(buf)
                if len(buf) > MAX_HEAD_BYTES:
                    side.mode = _Mode.OPAQUE
                    side.buf = bytearray()
                    out.append(
                        self._anomaly(
                            chunk.at_frame,
                            chunk.ts_ns,
                            d,
                            "http.head_too_long",
                            f"no end of head within {MAX_HEAD_BYTES} bytes",
                        )
                    )
                return
            side.scanned = 0
            head = bytes(buf[:end])
            consumed = end + sep
            side.buf = bytearray(buf[consumed:])  # a new buffer: the head (and any credentials) is not kept
            rest_offset = chunk.offset + len(chunk.data) - len(side.buf)
            self._head(side, d, head, chunk, rest_offset, rest_offset - consumed, out)

    def _head(
        self, side: _Side, d: int, head: bytes, chunk: StreamChunk, rest_offset: int, head_offset: int, out: list[Event]
    ) -> None:
        lines = head.split(b"\n")
        first = lines[0].rstrip(b"\r")
        headers, bad = _headers(lines[1:])
        if bad:
            out.append(
                self._anomaly(chunk.at_frame, chunk.ts_ns, d, "http.malformed_header", f"{bad} line(s) without a colon")
            )
        m = _REQUEST_LINE.fullmatch(first)
        if m is not None:
            self._request(side, d, m, headers, chunk, rest_offset, out)
            return
        m = _STATUS_LINE.fullmatch(first)
        if m is not None:
            self._response(side, d, m, headers, chunk, rest_offset, out)
            return
        raise DecodeError(
            f"not an HTTP request or status line ({len(first)} bytes, starting {first[:8].hex()})",
            offset=head_offset,
        )

    def _request(
        self,
        side: _Side,
        d: int,
        m: re.Match[bytes],
        headers: list[tuple[str, str]],
        chunk: StreamChunk,
        rest_offset: int,
        out: list[Event],
    ) -> None:
        method = m.group(1).decode("latin-1")
        target = m.group(2).decode("latin-1")
        path = _path_of(target)
        protocols: list[str] = []
        for value in _all(headers, "sec-websocket-protocol"):
            protocols += [redact_subprotocol(p.strip()) for p in value.split(",") if p.strip()]
        auth_scheme = auth_user = None
        secrets = url_secrets(target)
        authorization = _first(headers, "authorization")
        if authorization is not None:
            scheme, _, credentials = authorization.strip().partition(" ")
            low = scheme.lower()
            auth_scheme = "Basic" if low == "basic" else "Bearer" if low == "bearer" else scheme or None
            secrets.append(credentials.strip())
            if low == "basic":
                auth_user, password = self._basic_user(credentials)
                if auth_user is None:
                    out.append(self._anomaly(chunk.at_frame, chunk.ts_ns, d, "http.malformed_basic_auth", "not base64"))
                else:
                    secrets.append(password)
                del password
            del credentials, authorization
        upgrade = _first(headers, "upgrade")
        ws_key = _first(headers, "sec-websocket-key")
        event: dict[str, object] = {
            "method": method,
            "target": redact_url(target),
            "path": path,
            "station_id": station_id_of(path) if path.startswith("/") else None,
            "version": f"HTTP/{m.group(3).decode()}.{m.group(4).decode()}",
            "host": _first(headers, "host"),
            "upgrade": upgrade,
            "ws_protocols": tuple(protocols),
            "ws_extensions": _joined(headers, "sec-websocket-extensions"),
            "ws_key": ws_key,
            "ws_version": _first(headers, "sec-websocket-version"),
            "auth_scheme": auth_scheme,
            "auth_user": auth_user,
            "user_agent": _first(headers, "user-agent"),
            "header_names": tuple(n for n, _ in headers),
        }
        self._pending.append(_Pending(chunk.at_frame, method, ws_key, upgrade, d, fingerprints(secrets)))
        del secrets, target
        body = self._request_body(headers, d, chunk, out)
        self._start_body(side, body, event, chunk, out)
        if upgrade is not None and side.mode is _Mode.HEAD:
            # RFC 7230 §6.7: after an Upgrade request the client's next bytes depend on the response
            side.mode = _Mode.HOLD
            if side.buf:
                self._hold(side, chunk._replace(data=bytes(side.buf), offset=rest_offset))
                side.buf = bytearray()

    @staticmethod
    def _basic_user(credentials: str) -> tuple[str | None, str]:
        """The user name and password of RFC 7617 Basic credentials (``None`` and ``""`` when not base64); the
        caller keeps the password only to hide it in the response."""
        try:
            raw = base64.b64decode(credentials.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None, ""
        user, _, password = raw.decode("utf-8", "replace").partition(":")
        del raw
        return user, password

    def _response(
        self,
        side: _Side,
        d: int,
        m: re.Match[bytes],
        headers: list[tuple[str, str]],
        chunk: StreamChunk,
        rest_offset: int,
        out: list[Event],
    ) -> None:
        status = int(m.group(3))
        informational = 100 <= status < 200 and status != STATUS_SWITCHING_PROTOCOLS
        request = None
        if self._pending and not informational:
            request = self._pending.popleft()
        elif self._pending:
            request = self._pending[0]
        accept = _first(headers, "sec-websocket-accept")
        expected = accept_for_key(request.ws_key) if request is not None and request.ws_key else None
        protocol = _first(headers, "sec-websocket-protocol")
        date = _first(headers, "date")
        upgrade = _first(headers, "upgrade")
        event: dict[str, object] = {
            "status": status,
            "reason": (m.group(4) or b"").decode("latin-1").strip(),
            "version": f"HTTP/{m.group(1).decode()}.{m.group(2).decode()}",
            "upgrade": upgrade,
            "ws_protocol": redact_subprotocol(protocol.strip()) if protocol is not None else None,
            "ws_extensions": _joined(headers, "sec-websocket-extensions"),
            "ws_accept": accept,
            "ws_accept_expected": expected,
            "ws_accept_ok": (accept.strip() == expected) if accept is not None and expected is not None else None,
            "date": date,
            "server": _first(headers, "server"),
            "content_type": _first(headers, "content-type"),
            "www_authenticate": _joined(headers, "www-authenticate"),
            "request_frame": request.frame if request is not None else None,
            "header_names": tuple(n for n, _ in headers),
        }
        if date is not None:
            sample = self._clock(date, d, chunk)
            if sample is not None:
                out.append(sample)
        if status == STATUS_SWITCHING_PROTOCOLS:
            out.append(self._make(HttpResponse, event, chunk.at_frame, chunk.ts_ns, d))
            offered = request.upgrade if request is not None else None
            self._switch(side, d, upgrade, offered, event, chunk, rest_offset, out)
            return
        no_body = informational or status in (204, 304) or (request is not None and request.method == "HEAD")
        side.scrub = request.secrets if request is not None else ()
        body = None if no_body else self._response_body(headers, d, chunk, out)
        self._start_body(side, body, event, chunk, out)
        if not informational:
            self._release(out)

    def _clock(self, date: str, d: int, chunk: StreamChunk) -> ClockSample | None:
        try:
            when = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        try:
            value_ns = calendar.timegm(when.utctimetuple()) * 1_000_000_000
        except (ValueError, OverflowError):
            return None
        return ClockSample(
            ts_ns=chunk.ts_ns,
            frame=chunk.at_frame,
            flow_id=self.flow_id,
            direction=d,
            side="csms",
            source="http.date",
            value_ns=value_ns,
            raw=date,
        )

    # -- bodies ----------------------------------------------------------------------------------------------

    def _request_body(
        self, headers: list[tuple[str, str]], d: int, chunk: StreamChunk, out: list[Event]
    ) -> tuple[_Body, int] | None:
        te = _joined(headers, "transfer-encoding")
        if te is not None and "chunked" in te.lower():
            return _Body.CHUNKED, 0
        length = self._content_length(headers, d, chunk, out)
        return (_Body.LENGTH, length) if length else None

    def _response_body(
        self, headers: list[tuple[str, str]], d: int, chunk: StreamChunk, out: list[Event]
    ) -> tuple[_Body, int] | None:
        te = _joined(headers, "transfer-encoding")
        if te is not None and "chunked" in te.lower():
            return _Body.CHUNKED, 0
        length = self._content_length(headers, d, chunk, out)
        if length is None:
            return _Body.UNTIL_CLOSE, 0  # RFC 7230 §3.3.3 rule 7
        return (_Body.LENGTH, length) if length else None

    def _content_length(
        self, headers: list[tuple[str, str]], d: int, chunk: StreamChunk, out: list[Event]
    ) -> int | None:
        values = {v.strip() for value in _all(headers, "content-length") for v in value.split(",")}
        if not values:
            return None
        if len(values) == 1:
            (value,) = values
            if value.isascii() and value.isdigit() and len(value) <= 18:  # 1*DIGIT: "²" is a digit to Python
                return int(value)
        out.append(
            self._anomaly(chunk.at_frame, chunk.ts_ns, d, "http.bad_content_length", f"Content-Length {sorted(values)}")
        )
        return None

    def _start_body(
        self,
        side: _Side,
        body: tuple[_Body, int] | None,
        event: dict[str, object],
        chunk: StreamChunk,
        out: list[Event],
    ) -> None:
        cls = HttpRequest if "method" in event else HttpResponse
        if body is None:
            out.append(self._make(cls, event, chunk.at_frame, chunk.ts_ns, chunk.direction))
            return
        side.mode = _Mode.BODY
        side.body, side.remaining = body
        side.chunk_state = 0
        side.kept = bytearray()
        side.body_size = 0
        side.body_frame = chunk.at_frame
        side.body_ts = chunk.ts_ns
        side.pending_event = event

    def _body(self, side: _Side, chunk: StreamChunk, out: list[Event]) -> bool:
        """Consume body bytes from ``side.buf``; True when the body ended (the event is then out)."""
        buf = side.buf
        side.body_frame = chunk.at_frame
        side.body_ts = chunk.ts_ns
        if side.body is _Body.UNTIL_CLOSE:
            self._body_bytes(side, bytes(buf))
            side.buf = bytearray()
            return False
        if side.body is _Body.LENGTH:
            take = min(side.remaining, len(buf))
            self._body_bytes(side, bytes(buf[:take]))
            del buf[:take]
            side.remaining -= take
            if side.remaining:
                return False
            self._finish_body(side, chunk.at_frame, chunk.ts_ns, out)
            return True
        while buf:  # chunked, RFC 7230 §4.1
            if side.chunk_state == 1:
                take = min(side.remaining, len(buf))
                self._body_bytes(side, bytes(buf[:take]))
                del buf[:take]
                side.remaining -= take
                if side.remaining == 0:
                    side.chunk_state = 2
                continue
            nl = buf.find(b"\n", 0, MAX_CHUNK_LINE)
            if nl < 0:
                if len(buf) >= MAX_CHUNK_LINE:
                    out.append(
                        self._anomaly(
                            chunk.at_frame, chunk.ts_ns, chunk.direction, "http.bad_chunk", "chunk line too long"
                        )
                    )
                    self._finish_body(side, chunk.at_frame, chunk.ts_ns, out)
                    side.mode = _Mode.OPAQUE
                    side.buf = bytearray()
                    return True
                return False
            line = bytes(buf[:nl]).strip()
            del buf[: nl + 1]
            if side.chunk_state == 2:
                side.chunk_state = 0
                if not line:
                    continue
            if side.chunk_state == 3:
                if not line:
                    self._finish_body(side, chunk.at_frame, chunk.ts_ns, out)
                    return True
                continue
            size = line.partition(b";")[0].strip()
            try:
                n = int(size, 16)
            except ValueError:
                n = -1
            if n < 0 or len(size) > 15:
                out.append(
                    self._anomaly(chunk.at_frame, chunk.ts_ns, chunk.direction, "http.bad_chunk", "bad chunk size")
                )
                self._finish_body(side, chunk.at_frame, chunk.ts_ns, out)
                side.mode = _Mode.OPAQUE
                side.buf = bytearray()
                return True
            if n == 0:
                side.chunk_state = 3
            else:
                side.chunk_state = 1
                side.remaining = n
        return False

    @staticmethod
    def _body_bytes(side: _Side, data: bytes) -> None:
        side.body_size += len(data)
        room = BODY_KEEP - len(side.kept)
        if room > 0:
            side.kept += data[:room]

    def _finish_body(self, side: _Side, frame: int, ts: int, out: list[Event]) -> None:
        event = side.pending_event
        assert event is not None
        side.pending_event = None
        side.mode = _Mode.HEAD
        event["body_size"] = side.body_size
        if "status" in event:
            text = bytes(side.kept).decode("utf-8", "replace")[: BODY_EXCERPT_CHARS * 2]
            event["body_excerpt"] = redact_text(scrub(text, side.scrub))[:BODY_EXCERPT_CHARS]
            side.scrub = ()
            cls: type[HttpRequest] | type[HttpResponse] = HttpResponse
        else:
            cls = HttpRequest
        side.kept = bytearray()
        d = 1 if side is self._sides[1] else 0
        out.append(self._make(cls, event, frame, ts, d))

    # -- upgrade ---------------------------------------------------------------------------------------------

    def _hold(self, side: _Side, chunk: StreamChunk) -> None:
        """Keep a client chunk until the response decides; past ``HOLD_LIMIT`` it becomes a gap for the child."""
        if side.held_bytes + len(chunk.data) > HOLD_LIMIT:
            c = chunk
            self._hold_gap(
                side,
                StreamGap(c.flow_id, c.direction, c.offset, len(c.data), c.at_frame, c.ts_ns, GapReason.BUFFER_LIMIT),
            )
            return
        side.held.append(chunk)
        side.held_bytes += len(chunk.data)

    @staticmethod
    def _hold_gap(side: _Side, gap: StreamGap) -> None:
        """Held gaps in a row are merged into one, so the held list stays bounded."""
        last = side.held[-1] if side.held else None
        if isinstance(last, StreamGap):
            side.held[-1] = last._replace(size=last.size + gap.size)
        else:
            side.held.append(gap)

    def _release(self, out: list[Event]) -> None:
        """A final non-101 response: a client side held after an upgrade request goes back to HTTP."""
        for side in self._sides:
            if side.mode is not _Mode.HOLD:
                continue
            held, side.held, side.held_bytes = side.held, [], 0
            side.mode = _Mode.HEAD
            for item in held:
                if isinstance(item, StreamGap):
                    out.extend(self.gap(item))
                else:
                    out.extend(self.feed(item))

    def _switch(
        self,
        side: _Side,
        d: int,
        upgrade: str | None,
        offered: str | None,
        event: dict[str, object],
        chunk: StreamChunk,
        rest_offset: int,
        out: list[Event],
    ) -> None:
        self._switched = True
        client = self._sides[1 - d]
        held = client.held
        if client.buf:
            held.append(chunk._replace(direction=1 - d, data=bytes(client.buf), frame=chunk.frame))
        rest = bytes(side.buf)
        for s in self._sides:
            s.buf = bytearray()
            s.held = []
            s.mode = _Mode.OPAQUE
            s.resumable = False
        if "websocket" not in f"{upgrade or ''} {offered or ''}".lower():
            return  # RFC 7230 §6.7: another protocol; not decoded here
        ws_protocol = event["ws_protocol"]
        ws_extensions = event["ws_extensions"]
        self._ws = WebSocketDecoder(
            self.flow_id,
            subprotocol=ws_protocol if isinstance(ws_protocol, str) else None,
            extensions=ws_extensions if isinstance(ws_extensions, str) else None,
            message_factory=self.message_factory,
            client_direction=1 - d,
        )
        for item in held:
            out.extend(self._ws.gap(item) if isinstance(item, StreamGap) else self._ws.feed(item))
        if rest:
            out.extend(self._ws.feed(chunk._replace(data=rest, offset=rest_offset)))

    # -- helpers ---------------------------------------------------------------------------------------------

    def _make(
        self, cls: type[HttpRequest] | type[HttpResponse], event: dict[str, object], frame: int, ts: int, d: int
    ) -> Event:
        return cls(ts_ns=ts, frame=frame, flow_id=self.flow_id, direction=d, **event)  # type: ignore[arg-type]

    def _anomaly(self, frame: int, ts: int, d: int | None, name: str, detail: str) -> DecodeAnomaly:
        return DecodeAnomaly(
            ts_ns=ts, frame=frame, flow_id=self.flow_id, direction=d, decoder=DECODER, name=name, detail=detail
        )

    @staticmethod
    def _gap_text(gap: StreamGap, where: str) -> str:
        return f"{gap.size} bytes missing ({gap.reason.name}) in a {where}"


__all__ = ["HttpUpgradeDecoder", "accept_for_key", "redact_subprotocol", "starts_like_http", "station_id_of"]
