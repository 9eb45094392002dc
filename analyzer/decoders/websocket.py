"""WebSocket decoder (RFC 6455 framing, RFC 7692 permessage-deflate), sans-IO, for captured byte streams.

One frame parser per direction; the direction decides the masking rule (client frames are masked, RFC 6455
§5.1), as wsproto's ``FrameDecoder(client=...)`` does. Payloads are processed as they arrive (a frame may span
any number of TCP segments and is never buffered whole): they are unmasked, inflated when the message is
compressed, and kept up to ``MESSAGE_CAP`` bytes per message. Only a split frame header (at most 14 bytes) and the
bytes examined while looking for a frame start (at most ``RESYNC_LIMIT``) are buffered.

Why not wsproto: its ``FrameProtocol`` stops at the first violation (an unmasked client frame, a control frame
longer than 125 bytes, ...), while an analyzer must record the violation and keep decoding (tshark does); it
cannot continue after missing bytes, and its inflater has no output cap. wsproto is used in the tests as a
second opinion on well-formed streams.

Violations and capture problems are ``DecodeAnomaly(decoder="websocket", name="websocket.<snake>")``. The decoder
never raises ``DecodeError``: every input is either decoded or counted as lost. Each anomaly name is emitted as an
event the first ``ANOMALY_EVENTS_PER_NAME`` times per direction; ``WsSummary`` (from ``close()``) counts them all.

Missing bytes (``gap()``): if the direction is inside a frame payload and the gap is no longer than what is left
of it, the frame boundaries are still known and decoding goes on (the message is marked ``partial``; a compressed
message is inflated up to the gap). Otherwise the direction is *lost*: bytes are discarded until a frame start is
proven. A proof is a chain of plausible frame headers (``looks_like_websocket``'s rules) that begins at the first
byte of a TCP chunk and ends exactly at the end of a later (or the same) chunk, within ``RESYNC_LIMIT`` bytes.
Senders write whole frames per segment in practice, so real streams resynchronise at once; random bytes pass the
test rarely (they need a valid first byte, the right mask bit and a length landing exactly on a segment end).
Frames decoded after a proof carry the frame number of the chunk that completed the proof.

permessage-deflate: one zlib context per direction, kept across messages unless that sender's
``*_no_context_takeover`` was agreed; the ``00 00 ff ff`` tail is appended at the end of each message (RFC 7692
§7.2.2). The agreed ``*_max_window_bits`` are parsed but inflating always uses a 32 KiB window (see
``INFLATE_WINDOW_BITS``): a sender that exceeds the agreed window is not detected. Output is capped per message
(``MESSAGE_CAP``); past the cap, inflating goes on (output discarded) to keep the context in step, up to
``INFLATE_LIMIT``, after which the context is dropped.

Inflating after lost history (a gap, a failed message, or a capture that began after the upgrade) uses a fresh
zlib context. That is safe: raw inflate refuses a back-reference beyond the output it has produced ("invalid
distance too far back"), so a message either inflates correctly or fails with ``websocket.inflate_failed``; it
never inflates to wrong bytes.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from analyzer.capture import compiled
from analyzer.decoders.base import MessageDecoder, MessageDecoderFactory
from analyzer.events.base import DecodeAnomaly, Event, StreamChunk, StreamGap
from analyzer.events.websocket import WsClose, WsMessage, WsPing, WsPong, WsSummary

# RFC 6455 §5.2 base framing: first byte
FIN_BIT = 0x80
RSV1_BIT = 0x40  # RFC 7692 §6: "Per-Message Compressed" bit, on the first frame of a message only
RSV2_BIT = 0x20
RSV3_BIT = 0x10
OPCODE_BITS = 0x0F
# second byte
MASK_BIT = 0x80
LENGTH_BITS = 0x7F
LENGTH_16 = 126  # RFC 6455 §5.2: the length follows in 2 bytes (values 126..65535)
LENGTH_64 = 127  # RFC 6455 §5.2: the length follows in 8 bytes (most significant bit 0, values >= 65536)
MASK_KEY_LEN = 4
MAX_HEADER_LEN = 2 + 8 + MASK_KEY_LEN
MAX_CONTROL_PAYLOAD = 125  # RFC 6455 §5.5: control frames carry at most 125 payload bytes, and are not fragmented
CONTROL_OPCODES_START = 0x8  # RFC 6455 §5.2: opcodes 0x8-0xF are control frames


class Opcode(IntEnum):
    """RFC 6455 §5.2 / §11.8 opcodes (3-7 and 0xB-0xF are reserved)."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


KNOWN_OPCODES = frozenset(int(o) for o in Opcode)

# RFC 7692 §7.2.2: the sender removes this tail from each compressed message; the receiver appends it back
DEFLATE_TAIL = b"\x00\x00\xff\xff"
DEFAULT_WINDOW_BITS = 15  # RFC 7692 §7.1.2: LZ77 window when *_max_window_bits is absent
# Inflating always uses the largest window, whatever was agreed: a larger window decodes any stream a smaller one
# does, and zlib checks a back-reference against its window only across calls (within one call it reaches all the
# output of that call), so enforcing the agreed size would make the result depend on how TCP cut the message.
INFLATE_WINDOW_BITS = 15

MESSAGE_CAP = 1 << 20  # bytes of one message kept (and handed to the message decoder); beyond: truncated
INFLATE_LIMIT = 16 << 20  # bytes inflated per message (to keep the LZ77 context in step) before giving up
INFLATE_STEP = 256 << 10  # output bytes per zlib call
CONTROL_KEEP = 1024  # payload bytes of one control frame kept (legal ones have at most 125)
TEXT_EXCERPT_CHARS = 200
CONTROL_EXCERPT_BYTES = 64
RESYNC_LIMIT = 256 << 10  # bytes buffered while proving a frame start
MAX_CANDIDATES = 32  # candidate frame starts (chunk starts) examined at once
ANOMALY_EVENTS_PER_NAME = 5
DECODER = "websocket"

_DISCARD, _DATA, _CONTROL = 0, 1, 2
_TEXT = int(Opcode.TEXT)
# first bytes of a whole, uncompressed data message in one frame: FIN, no RSV bit, TEXT or BINARY
_WHOLE_TEXT = FIN_BIT | Opcode.TEXT
_WHOLE_BINARY = FIN_BIT | Opcode.BINARY


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """Accepted permessage-deflate parameters (RFC 7692 §7.1): per sender, window bits and context takeover."""

    client_no_context_takeover: bool = False
    server_no_context_takeover: bool = False
    client_max_window_bits: int = DEFAULT_WINDOW_BITS
    server_max_window_bits: int = DEFAULT_WINDOW_BITS


def parse_permessage_deflate(extensions: str | None) -> DeflateParams | None:
    """The permessage-deflate parameters of an accepted ``Sec-WebSocket-Extensions`` value, or ``None`` if it has
    no permessage-deflate element. Window bits outside 8..15 or without a value count as 15."""
    if not extensions:
        return None
    for element in extensions.split(","):
        parts = [p.strip() for p in element.split(";")]
        if parts[0].lower() != "permessage-deflate":
            continue
        flags: dict[str, str | None] = {}
        for p in parts[1:]:
            if not p:
                continue
            name, eq, value = p.partition("=")
            flags[name.strip().lower()] = value.strip().strip('"') if eq else None
        return DeflateParams(
            client_no_context_takeover="client_no_context_takeover" in flags,
            server_no_context_takeover="server_no_context_takeover" in flags,
            client_max_window_bits=_window_bits(flags.get("client_max_window_bits")),
            server_max_window_bits=_window_bits(flags.get("server_max_window_bits")),
        )
    return None


def _window_bits(value: str | None) -> int:
    """RFC 7692 §7.1.2: 8..15; a missing or invalid value counts as the default."""
    if value is not None and value.isascii() and value.isdigit() and 8 <= int(value) <= 15:
        return int(value)
    return DEFAULT_WINDOW_BITS


def _header(buf: bytes | bytearray, p: int, end: int) -> tuple[int, int, int, bytes | None] | None:
    """Parse a frame header at ``buf[p:end]``: (first byte, header length, payload length, mask key or None), or
    ``None`` when the header is not complete yet."""
    if end - p < 2:
        return None
    b0 = buf[p]
    b1 = buf[p + 1]
    n = b1 & LENGTH_BITS
    h = 2
    if n == LENGTH_16:
        h = 4
        if end - p < 4:
            return None
        n = (buf[p + 2] << 8) | buf[p + 3]
    elif n == LENGTH_64:
        h = 10
        if end - p < 10:
            return None
        n = int.from_bytes(buf[p + 2 : p + 10], "big")
    if b1 & MASK_BIT:
        if end - p < h + MASK_KEY_LEN:
            return None
        return b0, h + MASK_KEY_LEN, n, bytes(buf[p + h : p + h + MASK_KEY_LEN])
    return b0, h, n, None


def _plausible(b0: int, h: int, n: int, masked: bool, client: bool) -> bool:
    """A header a conforming sender could have written in this direction (used to find frame starts)."""
    op = b0 & OPCODE_BITS
    if op not in KNOWN_OPCODES or b0 & (RSV2_BIT | RSV3_BIT) or masked != client:
        return False
    if op >= CONTROL_OPCODES_START and (not b0 & FIN_BIT or b0 & RSV1_BIT or n > MAX_CONTROL_PAYLOAD):
        return False
    if op == Opcode.CONTINUATION and b0 & RSV1_BIT:
        return False
    base = h - (MASK_KEY_LEN if masked else 0)
    # RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length"; 64-bit MSB must be 0
    return not ((base == 4 and n < LENGTH_16) or (base == 10 and (n < 0x10000 or n >> 63)))


def _plausible_prefix(buf: bytes | bytearray, p: int, end: int, masked: int) -> bool:
    """The rules of ``_plausible`` that the first bytes of an incomplete header already allow to check
    (``masked``: 1 or 0 as the direction requires, -1 when not known yet)."""
    b0 = buf[p]
    op = b0 & OPCODE_BITS
    if op not in KNOWN_OPCODES or b0 & (RSV2_BIT | RSV3_BIT):
        return False
    if op >= CONTROL_OPCODES_START and (not b0 & FIN_BIT or b0 & RSV1_BIT):
        return False
    if op == Opcode.CONTINUATION and b0 & RSV1_BIT:
        return False
    if end - p < 2:
        return True
    b1 = buf[p + 1]
    if masked >= 0 and bool(b1 & MASK_BIT) != bool(masked):
        return False
    return not (op >= CONTROL_OPCODES_START and b1 & LENGTH_BITS > MAX_CONTROL_PAYLOAD)


def _walk(buf: bytes | bytearray, p: int, end: int, masked: int) -> tuple[int, int, int]:
    """Walk plausible frame headers from ``p`` (a header start, or the end of a frame that ends past ``end``).

    ``masked`` is 1 or 0 as the direction requires, or -1 when not known yet (the first header decides, the
    others must agree). Returns (verdict, where the walk goes on, ``masked``): verdict 1 = frames end exactly at
    ``end``; 0 = plausible so far (the walk goes on at an incomplete header, or at the end of a frame that goes
    past ``end``); -1 = an implausible header (or a frame too long to prove a start with).
    """
    while p < end:
        hd = _header(buf, p, end)
        if hd is None:
            return (0 if _plausible_prefix(buf, p, end, masked) else -1), p, masked
        b0, h, n, mask = hd
        if masked < 0:
            masked = int(mask is not None)
        if not _plausible(b0, h, n, mask is not None, bool(masked)) or n > RESYNC_LIMIT:
            return -1, p, masked
        p += h + n
    return (1 if p == end else 0), p, masked


def looks_like_websocket(data: bytes, direction: int, client_direction: int = 0) -> bool:
    """Whether ``data`` (the first bytes seen of one direction of a connection the capture joined late) starts
    with a plausible WebSocket frame: known opcode with FIN set on control frames, no RSV2/RSV3 (RSV1 only on a
    data frame's first frame), masked iff sent by the client, minimally encoded length (<= 125 for control
    frames), and every frame that ends inside ``data`` followed by another plausible header."""
    hd = _header(data, 0, len(data))
    if hd is None:
        return False
    return _walk(data, 0, len(data), int(direction == client_direction))[0] >= 0


def unmask_python(data: bytes, mask: bytes, offset: int) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` (RFC 6455 §5.3), ``data[0]`` being payload byte ``offset``."""
    n = len(data)
    r = offset & 3
    if r:
        mask = mask[r:] + mask[:r]
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


# the compiled reader core's, where it is built (a client's every frame is masked: one call per OCPP message sent)
_unmask: Callable[[bytes, bytes, int], bytes] = compiled.core.unmask if compiled.available() else unmask_python


def _excerpt(payload: bytes) -> str:
    """Printable UTF-8 as text, anything else as ``hex:``."""
    head = payload[:CONTROL_EXCERPT_BYTES]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + head.hex()
    return text if text.isprintable() else "hex:" + head.hex()


class _Side:
    """State of one direction."""

    __slots__ = (
        "anomalies",
        "binary",
        "client",
        "close_",
        "closed",
        "compressed",
        "continuation",
        "ctrl",
        "deflate",
        "f_fin",
        "f_first_frame",
        "f_kind",
        "f_len",
        "f_mask",
        "f_mask_pos",
        "f_masked",
        "f_op",
        "frames",
        "hdr",
        "hdr_frame",
        "history_lost",
        "in_frame",
        "inflater",
        "lost",
        "lost_bytes",
        "m_active",
        "m_compressed",
        "m_error",
        "m_first_frame",
        "m_frames",
        "m_inflater",
        "m_kept",
        "m_op",
        "m_partial",
        "m_parts",
        "m_size",
        "m_truncated",
        "m_wire",
        "masked",
        "messages",
        "no_takeover",
        "payload_bytes",
        "ping",
        "pong",
        "rbounds",
        "rbuf",
        "remaining",
        "reserved",
        "text",
        "unmasked",
    )

    def __init__(self, client: bool | None, deflate: bool, no_takeover: bool, lost: bool) -> None:
        self.client = client  # frames must be masked; None until learnt (mid-stream)
        self.deflate = deflate  # permessage-deflate agreed (or assumed, mid-stream)
        self.no_takeover = no_takeover  # RFC 7692 §7.1.1: this sender resets its LZ77 window per message
        self.inflater: zlib._Decompress | None = None
        self.history_lost = lost
        self.hdr = b""
        self.hdr_frame = 0
        self.in_frame = False
        self.remaining = 0
        self.f_op = 0
        self.f_fin = False
        self.f_kind = _DISCARD
        self.f_mask: bytes | None = None
        self.f_masked = False
        self.f_mask_pos = 0
        self.f_first_frame = 0
        self.f_len = 0
        self.ctrl = bytearray()
        self.m_active = False
        self.m_op = 0
        self.m_compressed = False
        self.m_inflater: zlib._Decompress | None = None
        self.m_parts: list[bytes] = []
        self.m_kept = 0
        self.m_size = 0
        self.m_wire = 0
        self.m_frames = 0
        self.m_first_frame = 0
        self.m_truncated = False
        self.m_partial = False
        self.m_error: str | None = None
        self.closed = False
        self.lost = lost
        self.rbuf = bytearray()
        self.rbounds: list[list[int]] = []  # candidate frame starts: [start, where its walk goes on, masked]
        self.frames = self.text = self.binary = self.continuation = self.close_ = self.ping = self.pong = 0
        self.reserved = self.masked = self.unmasked = self.compressed = self.messages = 0
        self.payload_bytes = self.lost_bytes = 0
        self.anomalies: dict[str, int] = {}


class WebSocketDecoder:
    """Decodes both directions of a WebSocket connection into messages, control frames and anomalies.

        ``subprotocol`` and ``extensions`` are what the 101 response accepted (``extensions`` raw, e.g.
        ``"permessage-deflate; server_max_window_bits=12"``). ``message_factory(flow_id, subprotocol)`` may return a
        ``MessageDecoder`` that receives every complete message (not partial, not truncated, inflated, and for text
    valid UTF-8); its events follow the ``WsMessage`` they came from, and ``close()`` closes it. With
        ``mid_stream=True`` the capture began after the upgrade: both directions start by looking for a provable frame
        start, and a compressed message is inflated with a fresh context (RSV1 is taken to mean permessage-deflate
        when ``extensions`` is unknown). ``client_direction`` is the direction whose frames must be masked; with
        ``mid_stream=True`` it is not used: the roles are learnt from the masking of the first proven frame start
        (masked = the client), since a capture that began late cannot tell the client from a SYN.
    """

    name: ClassVar[str] = "websocket"

    def __init__(
        self,
        flow_id: int,
        *,
        subprotocol: str | None,
        extensions: str | None,
        message_factory: MessageDecoderFactory | None = None,
        mid_stream: bool = False,
        no_upgrade: bool = False,
        client_direction: int = 0,
    ) -> None:
        self.flow_id = flow_id
        self.subprotocol = subprotocol
        self.extensions = extensions
        self.mid_stream = mid_stream
        self.no_upgrade = no_upgrade  # mid_stream on a connection whose SYN is in the capture: never upgraded
        self.client_direction = client_direction
        params = parse_permessage_deflate(extensions)
        if params is None and mid_stream and extensions is None:
            params = DeflateParams()
        self.deflate = params
        self._sides = [_Side(None, params is not None, False, lost=mid_stream) for _ in (0, 1)]
        if not mid_stream:
            self._set_roles(client_direction, True)
        self._told_mid_stream = False
        self._messages: MessageDecoder | None = message_factory(flow_id, subprotocol) if message_factory else None

    # -- StreamDecoder ---------------------------------------------------------------------------------------

    def feed(self, chunk: StreamChunk) -> list[Event]:
        out: list[Event] = []
        d = chunk.direction
        side = self._sides[d]
        if self.mid_stream and not self._told_mid_stream:
            self._told_mid_stream = True
            if self.no_upgrade:
                name, detail = (
                    "websocket.no_upgrade",
                    "WebSocket frames on a connection that never did the HTTP upgrade (its SYN is in the capture): "
                    "subprotocol and extensions are unknown, frames are decoded from the first provable frame start",
                )
            else:
                name, detail = (
                    "websocket.mid_stream",
                    "the capture began after the WebSocket upgrade: subprotocol and extensions are unknown, frames "
                    "are decoded from the first provable frame start, and a compressed message inflates only if it "
                    "does not refer to history sent before the capture began",
                )
            self._anomaly(out, side, d, name, detail, chunk.at_frame, chunk.ts_ns)
        if side.lost:
            data = self._resync(side, d, chunk, out)
            if data is None:
                return out
            self._parse(side, d, data, chunk.at_frame, chunk.at_frame, chunk.ts_ns, out)
        else:
            self._parse(side, d, chunk.data, chunk.frame, chunk.at_frame, chunk.ts_ns, out)
        return out

    def gap(self, gap: StreamGap) -> list[Event]:
        out: list[Event] = []
        d = gap.direction
        side = self._sides[d]
        side.lost_bytes += gap.size
        where = (gap.frame, gap.ts_ns)
        if side.lost:
            side.lost_bytes += len(side.rbuf)
            side.rbuf = bytearray()
            side.rbounds = []
            self._anomaly(
                out, side, d, "websocket.gap", f"{gap.size} bytes missing while looking for a frame start", *where
            )
            return out
        if side.in_frame and not side.hdr and gap.size <= side.remaining:
            self._anomaly(
                out,
                side,
                d,
                "websocket.gap",
                f"{gap.size} bytes missing inside a frame payload ({gap.reason.name}); frame boundaries still known",
                *where,
            )
            side.remaining -= gap.size
            side.f_mask_pos += gap.size
            side.history_lost = True
            if side.f_kind == _DATA:
                self._message_hole(side)
            if side.remaining == 0:
                self._frame_end(side, d, gap.frame, gap.ts_ns, out)
            return out
        self._anomaly(
            out,
            side,
            d,
            "websocket.gap",
            f"{gap.size} bytes missing ({gap.reason.name}) outside a known frame payload; looking for a frame start",
            *where,
        )
        if side.m_active:
            self._message_hole(side)
            self._message_end(side, d, gap.frame, gap.ts_ns, out)
        side.lost_bytes += len(side.hdr)
        side.hdr = b""
        side.in_frame = False
        side.lost = True
        return out

    def close(self, frame: int, ts_ns: int) -> list[Event]:
        out: list[Event] = []
        for d, side in enumerate(self._sides):
            if side.in_frame and side.f_kind == _DATA:
                side.m_partial = True
            if side.m_active:
                side.m_partial = True
                self._message_end(side, d, frame, ts_ns, out)
            side.lost_bytes += len(side.hdr) + len(side.rbuf)
            side.hdr = b""
            side.rbuf = bytearray()
            side.rbounds = []
        for d, side in enumerate(self._sides):
            out.append(
                WsSummary(
                    ts_ns=ts_ns,
                    frame=frame,
                    flow_id=self.flow_id,
                    direction=d,
                    frames=side.frames,
                    text=side.text,
                    binary=side.binary,
                    continuation=side.continuation,
                    close=side.close_,
                    ping=side.ping,
                    pong=side.pong,
                    reserved=side.reserved,
                    masked=side.masked,
                    unmasked=side.unmasked,
                    compressed=side.compressed,
                    messages=side.messages,
                    payload_bytes=side.payload_bytes,
                    lost_bytes=side.lost_bytes,
                    anomalies=tuple(sorted(side.anomalies.items())),
                )
            )
        if self._messages is not None:
            out.extend(self._messages.close(frame, ts_ns))
        return out

    # -- framing ---------------------------------------------------------------------------------------------

    def _parse(self, side: _Side, d: int, data: bytes, first: int, frame: int, ts: int, out: list[Event]) -> None:
        """Decode ``data`` (contiguous with what came before): ``first`` is the frame that carried it, ``frame`` and
        ``ts`` those of the packet that made it deliverable (events completed here carry them)."""
        pos = 0
        end = len(data)
        while pos < end:
            if side.in_frame:
                take = side.remaining if side.remaining <= end - pos else end - pos
                if side.f_kind != _DISCARD:
                    self._payload(side, data[pos : pos + take])
                else:
                    side.f_mask_pos += take
                side.payload_bytes += take
                pos += take
                side.remaining -= take
                if side.remaining == 0:
                    self._frame_end(side, d, frame, ts, out)
                continue
            if side.hdr:
                carried = len(side.hdr)
                buf = side.hdr + data[pos : pos + MAX_HEADER_LEN]
                hd = _header(buf, 0, len(buf))
                if hd is None:
                    side.hdr = buf
                    return
                side.hdr = b""
                start_frame = side.hdr_frame
                pos += hd[1] - carried
            else:
                b0 = data[pos]
                if b0 == _WHOLE_TEXT or b0 == _WHOLE_BINARY:
                    stop = self._single_frame_message(side, d, data, pos, end, b0, first, frame, ts, out)
                    if stop:
                        pos = stop
                        continue
                hd = _header(data, pos, end)
                if hd is None:
                    side.hdr = data[pos:]
                    side.hdr_frame = first
                    return
                start_frame = first
                pos += hd[1]
            self._frame_start(side, d, hd[0], hd[2], hd[3], start_frame, frame, ts, out)
            if side.remaining == 0:
                self._frame_end(side, d, frame, ts, out)

    def _single_frame_message(
        self,
        side: _Side,
        d: int,
        data: bytes,
        pos: int,
        end: int,
        b0: int,
        first: int,
        frame: int,
        ts: int,
        out: list[Event],
    ) -> int:
        """The common case of ``_parse`` in one step: at ``pos`` (a frame start, first byte ``b0`` = FIN + TEXT or
        BINARY, no RSV bit) a frame that ``data`` holds whole, with a length under 65536, masked as this direction
        requires, on a direction not closed and not inside a fragmented message. Its message is emitted as
        ``_frame_start``, ``_payload`` and ``_frame_end`` would emit it (with no anomaly: those cases have none),
        and the end of the frame is returned; 0 (nothing done) when the frame is not such a one.

        The ``f_*`` fields are left as they were: they are read only inside a frame."""
        if end - pos < 2:
            return 0
        b1 = data[pos + 1]
        n = b1 & LENGTH_BITS
        start = pos + 2
        if n >= LENGTH_16:
            if n == LENGTH_64 or end - pos < 4:
                return 0
            n = (data[pos + 2] << 8) | data[pos + 3]
            start = pos + 4
        if n > MESSAGE_CAP:  # kept whole here: a message past the cap is cut by the frame-by-frame path
            return 0
        masked = b1 & MASK_BIT
        if masked:
            start += MASK_KEY_LEN
        stop = start + n
        if stop > end or bool(masked) != bool(side.client) or side.closed or side.m_active:
            return 0
        side.frames += 1
        payload = data[start:stop]
        if masked:
            side.masked += 1
            payload = _unmask(payload, data[start - MASK_KEY_LEN : start], 0)
        else:
            side.unmasked += 1
        op = b0 & OPCODE_BITS
        if op == _TEXT:
            side.text += 1
        else:
            side.binary += 1
        side.payload_bytes += n
        side.messages += 1
        side.m_op = op
        side.m_compressed = side.m_truncated = side.m_partial = False
        side.m_error = None
        side.m_wire = side.m_size = side.m_kept = n
        side.m_frames = 1
        side.m_first_frame = first
        self._deliver(side, d, payload, n, frame, ts, out)
        return stop

    def _frame_start(
        self,
        side: _Side,
        d: int,
        b0: int,
        length: int,
        mask: bytes | None,
        start_frame: int,
        frame: int,
        ts: int,
        out: list[Event],
    ) -> None:
        op = b0 & OPCODE_BITS
        fin = bool(b0 & FIN_BIT)
        side.frames += 1
        if mask is None:
            side.unmasked += 1
            if side.client:
                self._anomaly(out, side, d, "websocket.unmasked_client_frame", f"opcode {op}", frame, ts)
        else:
            side.masked += 1
            if not side.client:
                self._anomaly(out, side, d, "websocket.masked_server_frame", f"opcode {op}", frame, ts)
        if b0 & RSV1_BIT:
            side.compressed += 1
        if side.closed:
            self._anomaly(out, side, d, "websocket.frame_after_close", f"opcode {op}", frame, ts)
        if b0 & (RSV2_BIT | RSV3_BIT):
            self._anomaly(out, side, d, "websocket.reserved_bits", f"RSV2/RSV3 set (first byte {b0:#04x})", frame, ts)
        side.in_frame = True
        side.remaining = length
        side.f_op = op
        side.f_fin = fin
        side.f_mask = mask
        side.f_masked = mask is not None
        side.f_mask_pos = 0
        side.f_first_frame = start_frame
        side.f_len = length
        if op >= CONTROL_OPCODES_START:
            if op == Opcode.CLOSE:
                side.close_ += 1
            elif op == Opcode.PING:
                side.ping += 1
            elif op == Opcode.PONG:
                side.pong += 1
            else:
                side.reserved += 1
                self._anomaly(out, side, d, "websocket.reserved_opcode", f"opcode {op:#x}", frame, ts)
                side.f_kind = _DISCARD
                return
            side.f_kind = _CONTROL
            side.ctrl = bytearray()
            if not fin:
                self._anomaly(out, side, d, "websocket.control_frame_fragmented", f"opcode {op} without FIN", frame, ts)
            if length > MAX_CONTROL_PAYLOAD:
                self._anomaly(
                    out, side, d, "websocket.control_frame_too_long", f"opcode {op}, {length} > 125 bytes", frame, ts
                )
            if b0 & RSV1_BIT:
                self._anomaly(out, side, d, "websocket.reserved_bits", f"RSV1 on control opcode {op}", frame, ts)
            return
        if op == Opcode.CONTINUATION:
            side.continuation += 1
            if not side.m_active:
                self._anomaly(out, side, d, "websocket.continuation_without_start", "no unfinished message", frame, ts)
                side.f_kind = _DISCARD
                return
            if b0 & RSV1_BIT:
                self._anomaly(out, side, d, "websocket.reserved_bits", "RSV1 on a continuation frame", frame, ts)
            side.f_kind = _DATA
            side.m_frames += 1
            return
        if op == Opcode.TEXT:
            side.text += 1
        elif op == Opcode.BINARY:
            side.binary += 1
        else:
            side.reserved += 1
            self._anomaly(out, side, d, "websocket.reserved_opcode", f"opcode {op:#x}", frame, ts)
            side.f_kind = _DISCARD
            return
        if side.m_active:
            self._anomaly(
                out,
                side,
                d,
                "websocket.message_interrupted",
                "a new data frame began before the fragmented message ended",
                frame,
                ts,
            )
            side.m_partial = True
            self._message_end(side, d, frame, ts, out)
        compressed = bool(b0 & RSV1_BIT)
        if compressed and not side.deflate:
            self._anomaly(
                out, side, d, "websocket.reserved_bits", "RSV1 set but permessage-deflate was not agreed", frame, ts
            )
        side.f_kind = _DATA
        side.m_active = True
        side.m_op = op
        side.m_compressed = compressed
        side.m_parts = []
        side.m_kept = side.m_size = side.m_wire = 0
        side.m_frames = 1
        side.m_first_frame = start_frame
        side.m_truncated = side.m_partial = False
        side.m_error = None
        side.m_inflater = None
        if compressed and side.deflate:
            if side.inflater is None:
                side.inflater = zlib.decompressobj(-INFLATE_WINDOW_BITS)
            side.m_inflater = side.inflater

    def _payload(self, side: _Side, piece: bytes) -> None:
        if side.f_mask is not None:
            piece = _unmask(piece, side.f_mask, side.f_mask_pos)
        side.f_mask_pos += len(piece)
        if side.f_kind == _CONTROL:
            room = CONTROL_KEEP - len(side.ctrl)
            if room > 0:
                side.ctrl += piece[:room]
            return
        side.m_wire += len(piece)
        if not side.m_compressed:
            side.m_size += len(piece)
            self._keep(side, piece)
        elif side.m_inflater is not None:
            self._inflate(side, piece)

    def _keep(self, side: _Side, data: bytes) -> None:
        room = MESSAGE_CAP - side.m_kept
        if len(data) <= room:
            side.m_parts.append(data)
            side.m_kept += len(data)
        else:
            if room > 0:
                side.m_parts.append(data[:room])
                side.m_kept = MESSAGE_CAP
            side.m_truncated = True

    def _inflate(self, side: _Side, data: bytes) -> None:
        z = side.m_inflater
        assert z is not None
        try:
            out = z.decompress(data, INFLATE_STEP)
            while True:
                side.m_size += len(out)
                self._keep(side, out)
                if side.m_size > INFLATE_LIMIT:
                    side.m_error = f"gave up after inflating {INFLATE_LIMIT} bytes of one message"
                    self._inflate_broken(side)
                    return
                if len(out) < INFLATE_STEP and not z.unconsumed_tail:
                    break
                out = z.decompress(z.unconsumed_tail, INFLATE_STEP)
        except zlib.error as e:
            side.m_error = str(e)
            self._inflate_broken(side)
            return
        if z.eof:
            # a final deflate block (BFINAL) ends the zlib stream: the next message starts a new one
            side.inflater = None

    def _inflate_broken(self, side: _Side) -> None:
        side.m_inflater = None
        side.inflater = None
        side.history_lost = True

    def _message_hole(self, side: _Side) -> None:
        """Bytes of the current message are missing: what follows cannot be inflated in context."""
        side.m_partial = True
        if side.m_compressed and side.m_inflater is not None:
            self._inflate_broken(side)

    def _frame_end(self, side: _Side, d: int, frame: int, ts: int, out: list[Event]) -> None:
        side.in_frame = False
        kind = side.f_kind
        if kind == _DATA:
            if side.f_fin:
                self._message_end(side, d, frame, ts, out)
            return
        if kind != _CONTROL:
            return
        op = side.f_op
        payload = bytes(side.ctrl)
        length = side.f_len
        common = {"ts_ns": ts, "frame": frame, "flow_id": self.flow_id, "direction": d, "masked": side.f_masked}
        if op == Opcode.CLOSE:
            code = None
            reason = ""
            if len(payload) >= 2:
                code = int.from_bytes(payload[:2], "big")
                reason = payload[2:].decode("utf-8", "replace")
            elif length == 1:
                self._anomaly(out, side, d, "websocket.close_payload_one_byte", "a 1-byte close payload", frame, ts)
            side.closed = True
            out.append(WsClose(code=code, reason=reason, payload_len=length, **common))
        elif op == Opcode.PING:
            out.append(WsPing(payload_len=length, payload_excerpt=_excerpt(payload), **common))
        else:
            out.append(WsPong(payload_len=length, payload_excerpt=_excerpt(payload), **common))

    def _message_end(self, side: _Side, d: int, frame: int, ts: int, out: list[Event]) -> None:
        side.m_active = False
        side.messages += 1
        size: int | None = side.m_size
        if side.m_compressed:
            if not side.deflate:
                size = None  # RSV1 without an agreed permessage-deflate: not inflated
            else:
                if side.m_inflater is not None and side.m_partial:
                    self._inflate_broken(side)  # the sender's context went on with bytes we do not have
                elif side.m_inflater is not None:
                    self._inflate(side, DEFLATE_TAIL)
                    if side.no_takeover and side.m_error is None:
                        side.inflater = None  # RFC 7692 §7.1.1: a fresh LZ77 window for every message
                if side.m_error is not None or side.m_partial:
                    size = side.m_size or None
                if side.m_error is not None:
                    after = ""
                    if self.mid_stream:
                        after = " (the capture began after the upgrade: earlier history may be needed)"
                    elif side.history_lost:
                        after = " (inflated after lost history: earlier bytes may be needed)"
                    self._anomaly(
                        out,
                        side,
                        d,
                        "websocket.inflate_failed",
                        f"message {side.messages}: {side.m_error}{after}",
                        frame,
                        ts,
                    )
        if side.m_truncated:
            self._anomaly(
                out,
                side,
                d,
                "websocket.message_cap",
                f"message {side.messages} larger than {MESSAGE_CAP} bytes: kept the first {MESSAGE_CAP}",
                frame,
                ts,
            )
        data = b"".join(side.m_parts)
        side.m_parts = []
        self._deliver(side, d, data, size, frame, ts, out)

    def _deliver(
        self, side: _Side, d: int, data: bytes, size: int | None, frame: int, ts: int, out: list[Event]
    ) -> None:
        """The ``WsMessage`` of the message that just ended (its bytes ``data``, its ``size``, the rest from the
        side's ``m_*`` fields), then the message decoder's events when the message is complete."""
        text = side.m_op == _TEXT
        complete = size is not None and not (side.m_partial or side.m_truncated or side.m_error)
        excerpt = ""
        if text:
            if complete:
                try:
                    excerpt = data.decode("utf-8")[:TEXT_EXCERPT_CHARS]
                except UnicodeDecodeError:
                    complete = False
                    self._anomaly(out, side, d, "websocket.invalid_utf8", f"text message {side.messages}", frame, ts)
            if not excerpt:
                excerpt = data[: TEXT_EXCERPT_CHARS * 4].decode("utf-8", "replace")[:TEXT_EXCERPT_CHARS]
        out.append(
            WsMessage(
                ts_ns=ts,
                frame=frame,
                flow_id=self.flow_id,
                direction=d,
                opcode="text" if text else "binary",
                size=size,
                wire_size=side.m_wire,
                compressed=side.m_compressed,
                frames=side.m_frames,
                first_frame=side.m_first_frame,
                text_excerpt=excerpt,
                truncated_by_cap=side.m_truncated,
                partial=side.m_partial,
                inflate_error=side.m_error,
            )
        )
        if complete and self._messages is not None:
            out.extend(self._messages.message(direction=d, data=data, text=text, frame=frame, ts_ns=ts))

    # -- finding a frame start ---------------------------------------------------------------------------------

    def _resync(self, side: _Side, d: int, chunk: StreamChunk, out: list[Event]) -> bytes | None:
        """Add ``chunk`` to the bytes of a lost direction; return the bytes from a proven frame start, or None.

        Candidates are the first bytes of each chunk (at most ``MAX_CANDIDATES``, the oldest dropped first). Each
        keeps where its walk over plausible headers stopped, so every byte is walked once per candidate. The
        earliest candidate whose frames end exactly at the end of this chunk is proven; a candidate whose walk
        meets an implausible header, or that grows past ``RESYNC_LIMIT`` unproven, is dropped. Bytes before the
        oldest remaining candidate are counted as lost.
        """
        if not chunk.data:
            return None
        known = -1 if side.client is None else int(side.client)
        side.rbounds.append([len(side.rbuf), len(side.rbuf), known])
        side.rbuf += chunk.data
        buf = side.rbuf
        end = len(buf)
        waiting: list[list[int]] = []
        for cand in side.rbounds[-MAX_CANDIDATES:]:
            start, p, masked = cand
            if end - start > RESYNC_LIMIT:
                continue
            if p <= end:
                verdict, cand[1], cand[2] = _walk(buf, p, end, masked)
            else:
                verdict = 0
            if verdict == 1:
                if side.client is None:
                    self._set_roles(d, bool(cand[2]))
                side.lost_bytes += start
                side.rbuf = bytearray()
                side.rbounds = []
                side.lost = False
                if not (self.mid_stream and side.frames == 0 and side.lost_bytes == 0):
                    self._anomaly(
                        out,
                        side,
                        d,
                        "websocket.resynchronized",
                        f"frame start proven; {side.lost_bytes} bytes of this direction not decoded so far",
                        chunk.at_frame,
                        chunk.ts_ns,
                    )
                return bytes(buf[start:])
            if verdict == 0:
                waiting.append(cand)
        first = waiting[0][0] if waiting else end
        side.lost_bytes += first
        del buf[:first]
        side.rbounds = [[a - first, b - first, m] for a, b, m in waiting]
        return None

    def _set_roles(self, d: int, client: bool) -> None:
        """Direction ``d`` is the client (its frames are masked) or the server; the other one is the opposite."""
        for direction, is_client in ((d, client), (1 - d, not client)):
            side = self._sides[direction]
            if side.client is None:
                side.client = is_client
                if self.deflate is not None:
                    p = self.deflate
                    side.no_takeover = p.client_no_context_takeover if is_client else p.server_no_context_takeover

    def _anomaly(self, out: list[Event], side: _Side, d: int, name: str, detail: str, frame: int, ts: int) -> None:
        n = side.anomalies.get(name, 0) + 1
        side.anomalies[name] = n
        if n <= ANOMALY_EVENTS_PER_NAME:
            out.append(
                DecodeAnomaly(
                    ts_ns=ts, frame=frame, flow_id=self.flow_id, direction=d, decoder=DECODER, name=name, detail=detail
                )
            )


__all__ = [
    "DeflateParams",
    "Opcode",
    "WebSocketDecoder",
    "looks_like_websocket",
    "parse_permessage_deflate",
]
