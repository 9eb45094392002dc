"""Records passed from the flow layer to decoders and reports.

``StreamChunk`` and ``StreamGap`` are NamedTuples rather than frozen dataclasses: one is made per TCP segment on
the hot path, and a NamedTuple is several times cheaper to build while staying immutable.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple


class Direction(IntEnum):
    """Which way bytes travel: from the client (connection originator) or from the server."""

    TO_SERVER = 0
    TO_CLIENT = 1


class StreamChunk(NamedTuple):
    """In-order bytes of one direction of a TCP stream.

    Fields: ``flow_id``; ``direction``; ``offset`` (of ``data[0]`` in the direction's byte stream, 0 = first byte
    after the SYN, or the first byte seen when the capture starts mid-connection); ``data``; ``frame`` (the frame
    that carried these bytes); ``at_frame`` (the frame whose arrival made them deliverable in order: later than
    ``frame`` when they waited for a missing segment, so a message completed by this chunk completes at
    ``at_frame``); ``ts_ns`` (timestamp of ``at_frame``).
    """

    flow_id: int
    direction: int
    offset: int
    data: bytes
    frame: int
    at_frame: int
    ts_ns: int


class GapReason(IntEnum):
    NOT_CAPTURED = 0  # the bytes crossed the wire (the peer acknowledged them or later data followed) unseen
    SNAPLEN = 1  # the capture cut the packet (captured length < original length)
    BUFFER_LIMIT = 2  # too much out-of-order data waited for a hole; the hole was given up


class StreamGap(NamedTuple):
    """Bytes of a TCP direction that the capture does not have: ``size`` bytes at ``offset``, decided at
    ``frame``. Decoders must not treat what follows as contiguous with what came before."""

    flow_id: int
    direction: int
    offset: int
    size: int
    frame: int
    ts_ns: int
    reason: GapReason


@dataclass(frozen=True, slots=True, kw_only=True)
class Anomaly:
    """A fact worth an analyst's attention, named ``<proto>.<snake_case>`` (never renamed once shipped).

    Fields: ``name``, ``frame`` (first frame that shows it), ``direction`` (or ``None``), ``detail`` (plain text),
    ``count`` (how many times it was seen in this flow).
    """

    name: str
    frame: int
    direction: int | None
    detail: str = ""
    count: int = 1
