"""The decoder contract (sans-IO, after h11 and wsproto).

A decoder never does I/O, never reads a clock and never judges: it turns bytes into ``Event``s. Parsing has three
outcomes: "need more" (return ``[]`` and keep the bytes), "malformed" (raise ``DecodeError``; the engine turns it
into a ``DecodeAnomaly`` and stops feeding that flow's decoder) and "done" (return events). Any other exception is
a bug. Buffers are bounded: a decoder that would hold more than its limit says so with a ``DecodeAnomaly`` event.

Events a decoder returns carry the ``frame``/``ts_ns`` of the packet that completed them: for TCP that is
``StreamChunk.at_frame``/``StreamChunk.ts_ns``.

A stream decoder may also say which bytes it does not need (``SkippingDecoder``): per direction, a stream offset
up to which it is only passing over bytes (the body of a record it does not keep). The flow layer then delivers no
chunk for a segment that ends before the last byte under that offset, and the decoder counts the bytes it was not
given as passed over when the next chunk, gap or ``passed_over`` call shows where the stream got to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Protocol, runtime_checkable

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


@runtime_checkable
class SkippingDecoder(Protocol):
    """A stream decoder that can let the flow layer pass over bytes it does not need (the skip window)."""

    def skip_window(self) -> list[int] | None:
        """Opt in: the list the flow layer reads, one stream offset per direction that the decoder updates in
        place. A segment of direction ``d`` lying wholly before offset ``window[d] - 1`` may go undelivered (the
        segment carrying byte ``window[d] - 1``, the last one passed over, is always delivered: what completes
        there keeps its frame). ``None``: this decoder needs every byte."""
        ...

    def passed_over(self, direction: int, upto: int) -> None:
        """The flow layer reached stream offset ``upto`` in ``direction``; bytes not delivered before it that lie
        in the window were passed over (called before ``close``, as chunks and gaps do it themselves)."""
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
