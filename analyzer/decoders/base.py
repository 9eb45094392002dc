"""The decoder contract (sans-IO, after h11 and wsproto).

A decoder never does I/O, never reads a clock and never judges: it turns bytes into ``Event``s. Parsing has three
outcomes: "need more" (return ``[]`` and keep the bytes), "malformed" (raise ``DecodeError``; the engine turns it
into a ``DecodeAnomaly`` and stops feeding that flow's decoder) and "done" (return events). Any other exception is
a bug. Buffers are bounded: a decoder that would hold more than its limit says so with a ``DecodeAnomaly`` event.

Events a decoder returns carry the ``frame``/``ts_ns`` of the packet that completed them: for TCP that is
``StreamChunk.at_frame``/``StreamChunk.ts_ns``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Protocol

from analyzer.events.base import Event, StreamChunk, StreamGap


class DecodeError(ValueError):
    """Malformed input: the only exception a decoder may raise. ``offset`` is where in the stream, if known."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class StreamDecoder(Protocol):
    """Decodes one TCP connection, both directions. One instance per flow."""

    name: ClassVar[str]

    def feed(self, chunk: StreamChunk) -> list[Event]:
        """In-order bytes of one direction (``chunk.direction``)."""
        ...

    def gap(self, gap: StreamGap) -> list[Event]:
        """Bytes of one direction are missing; what follows is not contiguous with what came before."""
        ...

    def close(self, frame: int, ts_ns: int) -> list[Event]:
        """The connection ended (or the capture did): emit what is still pending (e.g. unanswered requests)."""
        ...


class DatagramDecoder(Protocol):
    """Decodes datagrams of any number of UDP flows (one instance per capture)."""

    name: ClassVar[str]

    def datagram(self, flow_id: int, direction: int, payload: bytes, frame: int, ts_ns: int) -> list[Event]: ...

    def close(self, frame: int, ts_ns: int) -> list[Event]:
        """The capture ended at ``frame``/``ts_ns``: emit what is still pending (e.g. queries never answered)."""
        ...


class MessageDecoder(Protocol):
    """Consumes whole WebSocket messages (reassembled from fragments and decompressed) of one connection."""

    def message(self, *, direction: int, data: bytes, text: bool, frame: int, ts_ns: int) -> list[Event]: ...

    def close(self, frame: int, ts_ns: int) -> list[Event]: ...


# (flow_id, negotiated subprotocol or None) -> a decoder for the messages, or None to leave them undecoded
MessageDecoderFactory = Callable[[int, "str | None"], "MessageDecoder | None"]
