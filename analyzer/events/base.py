"""Records passed from the flow layer to decoders and reports.

``StreamChunk`` and ``StreamGap`` are NamedTuples rather than frozen dataclasses: one is made per TCP segment on
the hot path, and a NamedTuple is several times cheaper to build while staying immutable.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum
from operator import attrgetter
from typing import Any, ClassVar, NamedTuple


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


# -- pickling (``analyze --workers`` sends each partition's events to the parent) ----------------------------------
# A frozen dataclass with slots pickles through its generated ``__getstate__``/``__setstate__``, which look its
# fields up again for every object; these take the field names once per class (measured on 60k events of the
# gateway capture, with the collector paused: pickling 0.32 s → 0.21 s, unpickling 0.29 s → 0.18 s).

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_VALUES: dict[type, Any] = {}
_new = object.__new__
_set = object.__setattr__


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _revive(cls: type, values: tuple[Any, ...]) -> Any:
    """The object of ``cls`` whose fields hold ``values`` (in field order), as pickled by ``_reduce``."""
    obj = _new(cls)
    for name, value in zip(_field_names(cls), values, strict=True):
        _set(obj, name, value)
    return obj


def _reduce(self: Any) -> tuple[Any, tuple[type, tuple[Any, ...]]]:
    cls = type(self)
    values = _VALUES.get(cls)
    if values is None:
        names = _field_names(cls)
        get = attrgetter(*names)
        values = _VALUES[cls] = get if len(names) > 1 else (lambda obj: (get(obj),))
    return _revive, (cls, values(self))


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

    __reduce__ = _reduce


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Header shared by every timeline event (never instantiated itself; never subclass a concrete event).

    Fields: ``ts_ns`` (capture timestamp of ``frame``, integer ns since the epoch); ``frame`` (1-based frame number,
    as Wireshark numbers it, of the packet that completed the event); ``flow_id`` (the flow it belongs to, or
    ``None``); ``direction`` (``Direction`` value, or ``None`` when it has none).

    Class constants: ``kind`` (stable name, ``<layer>.<thing>``, never renamed once shipped) and ``layer`` (one of
    ``dns tcp tls http websocket ocpp clock capture``). ``summary()`` gives a one-line, human description built only
    from the event's own fields; it never contains secrets (passwords, key material, idTokens).
    """

    kind: ClassVar[str] = "event"
    layer: ClassVar[str] = "capture"
    ts_ns: int
    frame: int
    flow_id: int | None = None
    direction: int | None = None

    def summary(self) -> str:
        return self.kind

    __reduce__ = _reduce


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeAnomaly(Event):
    """A decoder met bytes it could not decode, or stopped decoding a direction (a documented decode error).

    Fields: ``decoder`` (decoder name: ``dns``, ``tls``, ``http``, ``websocket``, ``ocpp``); ``name`` (anomaly name,
    ``<decoder>.<snake_case>``, e.g. ``tls.parse_error``, ``websocket.mid_stream``); ``detail`` (plain text).
    """

    kind: ClassVar[str] = "decode.anomaly"
    layer: ClassVar[str] = "capture"
    decoder: str
    name: str
    detail: str = ""

    def summary(self) -> str:
        return f"{self.name}: {self.detail}" if self.detail else self.name
