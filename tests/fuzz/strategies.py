"""Hypothesis strategies and a checking driver shared by the fuzz property tests.

The budget is small on purpose (``make test`` runs these on 2 workers): ``fuzz(n)`` settings are derandomized so CI
always runs the same examples; ``make fuzz`` is the long campaign.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from analyzer.decoders.base import DecodeError, StreamDecoder
from analyzer.events.base import Event, GapReason, StreamChunk, StreamGap

FID = 7
T0 = 1_700_000_000 * 10**9
STEP_NS = 1_000_000


SCALE = int(os.environ.get("GHOSTCAP_FUZZ_SCALE", "1") or 1)  # e.g. 50 for a deeper local run


def fuzz(examples: int) -> settings:
    """A derandomized budget: the same ``examples`` (times ``GHOSTCAP_FUZZ_SCALE``) on every run, no database."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# bytes that damage structure in interesting ways when inserted: lengths, JSON tokens, HTTP line ends, UTF-8 junk
TOKENS = (
    b"\x00",
    b"\xff",
    b"\xff\xff\xff\xff",
    b"\x7f\xff",
    b"\x80\x00",
    b"\r\n",
    b"\r\n\r\n",
    b"[",
    b"]",
    b"{",
    b'"',
    b",",
    b"1e999",
    b"-0",
    b"\\ud800",
    b"\xed\xa0\x80",
    b"\xc0",
    b"null",
    b"\x16\x03\x03\xff\xff",
    b"\x81\xff\xff\xff\xff\xff\xff\xff\xff\xff",
)

# one edit: (target index, kind, position, value)
EDIT = st.tuples(st.integers(0, 1000), st.integers(0, 6), st.integers(0, 1 << 16), st.integers(0, 255))
EDITS = st.lists(EDIT, max_size=6)
SPLITS = st.lists(st.integers(1, 300), max_size=12)


def mutate(data: bytes, kind: int, pos: int, value: int) -> bytes:
    """One byte-level edit: set, flip a bit, insert a token, delete a run, truncate."""
    if not data:
        return TOKENS[value % len(TOKENS)] if kind == 2 else data
    p = pos % len(data)
    b = bytearray(data)
    if kind == 0:
        b[p] = value
    elif kind == 1:
        b[p] ^= 1 << (value % 8)
    elif kind == 2:
        b[p:p] = TOKENS[value % len(TOKENS)]
    elif kind == 3:
        del b[p : p + 1 + value % 32]
    elif kind == 4:
        del b[p:]
    else:
        b[p] = value ^ 0xFF
    return bytes(b)


Item = tuple[str, int, "bytes | int"]  # ("data", direction, bytes) or ("gap", direction, size)


def damaged_chunks(
    chunks: Sequence[tuple[int, bytes]], edits: list[tuple[int, int, int, int]], splits: list[int]
) -> list[Item]:
    """Real chunks with byte edits (kind 5: the chunk is lost, a gap; kind 6: it is repeated), re-split at
    arbitrary points (``splits`` cycled as piece sizes)."""
    work: list[Item] = [("data", d, data) for d, data in chunks]
    for target, kind, pos, value in edits:
        if not work:
            break
        i = target % len(work)
        what, d, x = work[i]
        if what != "data":
            continue
        assert isinstance(x, bytes)
        if kind == 5:
            work[i] = ("gap", d, max(1, len(x)))
        elif kind == 6:
            work.insert(i, (what, d, x))
        else:
            work[i] = (what, d, mutate(x, kind, pos, value))
    if not splits:
        return work
    out: list[Item] = []
    k = 0
    for what, d, x in work:
        if what != "data":
            out.append((what, d, x))
            continue
        assert isinstance(x, bytes)
        pos = 0
        while pos < len(x):
            n = splits[k % len(splits)]
            k += 1
            out.append(("data", d, x[pos : pos + n]))
            pos += n
    return out


RANDOM_ITEMS = st.lists(
    st.one_of(
        st.tuples(st.just("data"), st.integers(0, 1), st.binary(max_size=300)),
        st.tuples(st.just("gap"), st.integers(0, 1), st.integers(1, 5000)),
    ),
    max_size=20,
)


def check_events(events: list[Event], last_frame: int, last_ts: int) -> None:
    """Events only, each with a sane header: a frame and a timestamp the driver gave, this flow, a direction."""
    for e in events:
        assert isinstance(e, Event), e
        assert 1 <= e.frame <= last_frame, (e, last_frame)
        assert isinstance(e.ts_ns, int), e
        assert T0 <= e.ts_ns <= last_ts, e
        assert e.flow_id in (FID, None), e
        assert e.direction in (None, 0, 1), e
        assert isinstance(e.summary(), str)


def drive_stream(decoder: StreamDecoder, items: list[Item]) -> list[Event]:
    """Feed ``items`` to ``decoder`` as the engine does (one frame each, offsets per direction, then ``close``),
    checking every event; a ``DecodeError`` (the one documented exception) ends the feeding, as in the engine."""
    events: list[Event] = []
    offsets = [0, 0]
    frame = 0
    ts = T0
    try:
        for what, d, x in items:
            frame += 1
            ts = T0 + frame * STEP_NS
            if what == "gap":
                assert isinstance(x, int)
                out = decoder.gap(StreamGap(FID, d, offsets[d], x, frame, ts, GapReason.NOT_CAPTURED))
                offsets[d] += x
            else:
                assert isinstance(x, bytes)
                if not x:
                    continue
                out = decoder.feed(StreamChunk(FID, d, offsets[d], x, frame, frame, ts))
                offsets[d] += len(x)
            check_events(out, frame, ts)
            events += out
        frame += 1
        ts += STEP_NS
        out = decoder.close(frame, ts)
        check_events(out, frame, ts)
        events += out
    except DecodeError:
        pass
    return events


def total_bytes(items: list[Item]) -> int:
    return sum(len(x) for what, _d, x in items if isinstance(x, bytes))
