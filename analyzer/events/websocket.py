"""WebSocket events (RFC 6455, RFC 7692): whole messages, control frames and per-direction frame counters.

One event per data *message* (not per frame: sessions are long); control frames (ping, pong, close) are events of
their own. ``frame``/``ts_ns`` are those of the packet that completed the item (the last frame of a fragmented
message); violations of the framing rules are ``DecodeAnomaly(decoder="websocket", name="websocket.<snake>")``.
"""

from __future__ import annotations

from typing import ClassVar

from analyzer.events.base import Event, event
from analyzer.redaction import redact_head


@event
class WsMessage(Event):
    """One data message, reassembled from its frames and inflated (permessage-deflate) when it was compressed.

    Fields: ``opcode`` (``"text"`` or ``"binary"``); ``size`` (bytes after decompression; for a message cut by
    the cap, the bytes inflated before the decoder stopped; ``None`` when a compressed message could not be
    inflated at all); ``wire_size`` (payload bytes on the wire, all frames); ``compressed`` (RSV1 set on the first
    frame); ``frames`` (count); ``first_frame`` (the packet carrying the first byte of the first frame);
    ``text_excerpt`` (first characters of a text message, UTF-8 with replacement; ``""`` for binary);
    ``truncated_by_cap`` (decompressed or reassembled size passed the per-message cap: only the first part was
    kept); ``partial`` (bytes of the message are missing from the capture: a gap or a snaplen cut; what is there
    was decoded); ``inflate_error`` (zlib's message when inflating failed, else ``None``).
    """

    kind: ClassVar[str] = "websocket.message"
    layer: ClassVar[str] = "websocket"
    opcode: str
    size: int | None
    wire_size: int
    compressed: bool = False
    frames: int = 1
    first_frame: int = 0
    text_excerpt: str = ""
    truncated_by_cap: bool = False
    partial: bool = False
    inflate_error: str | None = None

    def summary(self) -> str:
        size = "?" if self.size is None else str(self.size)
        text = f" {redact_head(self.text_excerpt, 60)!r}" if self.text_excerpt else ""
        return f"{self.opcode} message, {size} bytes in {self.frames} frame(s){self._flags()}{text}"

    def _flags(self) -> str:
        """`` [compressed] [partial] [truncated] [inflate failed]``, those that apply (most messages: none)."""
        flags = ""
        if self.compressed:
            flags += " [compressed]"
        if self.partial:
            flags += " [partial]"
        if self.truncated_by_cap:
            flags += " [truncated]"
        if self.inflate_error is not None:
            flags += " [inflate failed]"
        return flags


@event
class WsPing(Event):
    """A ping control frame. Fields: ``payload_len``; ``payload_excerpt`` (printable UTF-8 as text, anything else
    as ``hex:``); ``masked``."""

    kind: ClassVar[str] = "websocket.ping"
    layer: ClassVar[str] = "websocket"
    payload_len: int = 0
    payload_excerpt: str = ""
    masked: bool = False

    def summary(self) -> str:
        return f"ping ({self.payload_len} bytes)"


@event
class WsPong(Event):
    """A pong control frame. Fields as ``WsPing``."""

    kind: ClassVar[str] = "websocket.pong"
    layer: ClassVar[str] = "websocket"
    payload_len: int = 0
    payload_excerpt: str = ""
    masked: bool = False

    def summary(self) -> str:
        return f"pong ({self.payload_len} bytes)"


@event
class WsClose(Event):
    """A close control frame. Fields: ``code`` (status code, ``None`` when the payload has none); ``reason``
    (UTF-8 with replacement); ``masked``; ``payload_len``."""

    kind: ClassVar[str] = "websocket.close"
    layer: ClassVar[str] = "websocket"
    code: int | None = None
    reason: str = ""
    masked: bool = False
    payload_len: int = 0

    def summary(self) -> str:
        code = "no status code" if self.code is None else str(self.code)
        return f"close {code}" + (f" {self.reason[:60]!r}" if self.reason else "")


@event
class WsSummary(Event):
    """Frame counters of one direction of a WebSocket connection, emitted when the decoder is closed.

    Fields: ``frames`` (all frame headers parsed); per opcode ``text``, ``binary``, ``continuation``, ``close``,
    ``ping``, ``pong``, ``reserved`` (opcodes 3-7, 0xB-0xF); ``masked``/``unmasked``; ``compressed`` (RSV1 set);
    ``messages`` (data messages emitted); ``payload_bytes`` (frame payload bytes seen); ``lost_bytes`` (bytes not
    decoded: missing from the capture, or skipped while looking for a frame start); ``anomalies`` ((name, count)
    of every ``websocket.*`` anomaly in this direction, including repeats that were not emitted as events).
    """

    kind: ClassVar[str] = "websocket.summary"
    layer: ClassVar[str] = "websocket"
    frames: int = 0
    text: int = 0
    binary: int = 0
    continuation: int = 0
    close: int = 0
    ping: int = 0
    pong: int = 0
    reserved: int = 0
    masked: int = 0
    unmasked: int = 0
    compressed: int = 0
    messages: int = 0
    payload_bytes: int = 0
    lost_bytes: int = 0
    anomalies: tuple[tuple[str, int], ...] = ()

    def summary(self) -> str:
        counts = f"{self.text} text, {self.binary} binary, {self.close} close"
        return f"{self.frames} frames ({counts}), {self.messages} messages"
