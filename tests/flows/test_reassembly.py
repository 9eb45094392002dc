"""HalfStream: in-order delivery, out-of-order arrival, overlaps, gaps, wraparound, keep-alives."""

from __future__ import annotations

import itertools

import pytest

from analyzer.budgets import DEFAULT_BUDGETS, Budgets
from analyzer.events.base import GapReason, StreamChunk, StreamGap
from analyzer.flows.reassembly import BufferPool, HalfStream

STREAM = b"ABCDEFGH"


class Recorder:
    def __init__(self, isn: int = 1000) -> None:
        self.chunks: list[StreamChunk] = []
        self.gaps: list[StreamGap] = []
        self.half = HalfStream(0, 0, self.chunks.append, self.gaps.append)
        self.half.base = isn

    @property
    def data(self) -> bytes:
        return b"".join(c.data for c in self.chunks)

    def offsets_contiguous(self) -> bool:
        pos = 0
        items = sorted([(c.offset, len(c.data)) for c in self.chunks] + [(g.offset, g.size) for g in self.gaps])
        for off, size in items:
            if off != pos:
                return False
            pos += size
        return True


def compositions(n: int, max_parts: int) -> list[list[int]]:
    """Every way to cut ``n`` bytes into at most ``max_parts`` consecutive segments."""
    out = []
    for k in range(1, max_parts + 1):
        for cuts in itertools.combinations(range(1, n), k - 1):
            bounds = [0, *cuts, n]
            out.append([bounds[i + 1] - bounds[i] for i in range(k)])
    return out


def segments_of(sizes: list[int]) -> list[tuple[int, bytes]]:
    out, off = [], 0
    for s in sizes:
        out.append((off, STREAM[off : off + s]))
        off += s
    return out


ALL_ARRIVALS = [
    (sizes, order) for sizes in compositions(len(STREAM), 4) for order in itertools.permutations(range(len(sizes)))
]


def test_every_arrival_order_of_every_split_rebuilds_the_stream() -> None:
    assert len(ALL_ARRIVALS) == 981
    for sizes, order in ALL_ARRIVALS:
        rec = Recorder()
        segs = segments_of(sizes)
        for frame, k in enumerate(order, start=1):
            off, data = segs[k]
            rec.half.segment(1000 + off, data, len(data), frame, frame * 10)
        assert rec.data == STREAM, (sizes, order)
        assert rec.offsets_contiguous()
        assert not rec.gaps
        assert not rec.half.buffered
        # every chunk names the frame that carried it, and is delivered no earlier than its carrier arrived
        frame_of = {k: i for i, k in enumerate(order, start=1)}
        for c in rec.chunks:
            k = next(i for i, (off, _) in enumerate(segs) if off == c.offset)
            assert c.frame == frame_of[k]
            assert c.at_frame >= c.frame
        # the stream completes exactly when its last missing segment arrives: the last arrival
        assert rec.chunks[-1].at_frame == len(order)


def test_at_frame_is_the_frame_that_filled_the_hole() -> None:
    rec = Recorder()
    rec.half.segment(1004, b"EFGH", 4, frame=5, ts=50)
    assert rec.chunks == []
    rec.half.segment(1000, b"ABCD", 4, frame=7, ts=70)
    assert [(c.data, c.frame, c.at_frame, c.ts_ns) for c in rec.chunks] == [
        (b"ABCD", 7, 7, 70),
        (b"EFGH", 5, 7, 70),
    ]


def test_retransmission_and_partial_overlap_deliver_only_new_bytes() -> None:
    rec = Recorder()
    rec.half.segment(1000, b"ABCD", 4, 1, 0)
    rec.half.segment(1000, b"ABCD", 4, 2, 0)  # full retransmission
    rec.half.segment(1002, b"CDEF", 4, 3, 0)  # overlaps 2 bytes
    assert rec.data == b"ABCDEF"
    assert rec.half.retransmissions == 1
    assert rec.half.retransmit_frame == 2
    assert rec.half.mismatches == 0


def test_differing_overlap_first_copy_wins_and_is_counted() -> None:
    rec = Recorder()
    rec.half.segment(1000, b"ABCD", 4, 1, 0)
    rec.half.segment(1002, b"XYEF", 4, 2, 0)
    assert rec.data == b"ABCDEF"
    assert rec.half.mismatches == 1
    assert rec.half.mismatch_frame == 2


def test_differing_overlap_between_buffered_segments() -> None:
    rec = Recorder()
    rec.half.segment(1004, b"EFGH", 4, 1, 0)
    rec.half.segment(1002, b"CDXX", 4, 2, 0)  # buffered, overlaps EF with different bytes
    rec.half.segment(1000, b"AB", 2, 3, 0)
    assert rec.data == b"ABCDXXGH"  # first arrival at offset 2 was delivered first; EF is the overlap
    assert rec.half.mismatches == 1


def test_keepalive_is_not_data_or_retransmission() -> None:
    rec = Recorder()
    rec.half.segment(1000, b"ABCD", 4, 1, 0)
    rec.half.segment(1003, b"\x00", 1, 2, 0)
    rec.half.segment(1003, b"", 0, 3, 0)
    assert rec.data == b"ABCD"
    assert rec.half.keepalives == 2
    assert rec.half.retransmissions == 0


def test_sequence_wraparound() -> None:
    rec = Recorder(isn=0xFFFFFFFA)
    rec.half.segment(0xFFFFFFFA, b"ABCD", 4, 1, 0)
    rec.half.segment(0x00000000, b"GH", 2, 3, 0)  # after the wrap, out of order
    rec.half.segment(0xFFFFFFFE, b"EF", 2, 2, 0)  # straddles the wrap
    assert rec.data == STREAM
    assert [c.offset for c in rec.chunks] == [0, 4, 6]


def test_long_stream_offsets_keep_growing_past_4_gib() -> None:
    rec = Recorder(isn=0)
    rec.half.nxt = (1 << 32) + 10
    rec.half.segment(10, b"xy", 2, 1, 0)
    assert rec.chunks[0].offset == (1 << 32) + 10


def test_ack_past_a_hole_declares_a_gap_at_once() -> None:
    rec = Recorder()
    rec.half.segment(1000, b"AB", 2, 1, 0)
    rec.half.segment(1004, b"EF", 2, 2, 0)
    rec.half.ack(1006, frame=3, ts=30)
    assert rec.data == b"ABEF"
    assert rec.gaps == [StreamGap(0, 0, 2, 2, 3, 30, GapReason.NOT_CAPTURED)]
    assert rec.offsets_contiguous()


def test_segment_after_an_acked_hole_is_a_gap_at_once() -> None:
    rec = Recorder()
    rec.half.segment(1000, b"AB", 2, 1, 0)
    rec.half.ack(1006, frame=2, ts=0)  # the peer has everything up to F; C..F were never captured
    rec.half.segment(1006, b"GH", 2, 3, 0)
    assert rec.data == b"ABGH"
    assert [(g.offset, g.size) for g in rec.gaps] == [(2, 4)]


def test_finish_flushes_buffered_data_with_gaps_and_a_gap_before_the_fin() -> None:
    rec = Recorder()
    rec.half.segment(1002, b"CD", 2, 1, 0)
    rec.half.segment(1006, b"G", 1, 2, 0)
    rec.half.fin(1009, 0)
    rec.half.finish(frame=9, ts=0)
    assert rec.data == b"CDG"
    assert [(g.offset, g.size) for g in rec.gaps] == [(0, 2), (4, 2), (7, 2)]
    assert rec.half.complete
    assert rec.offsets_contiguous()


def test_snaplen_cut_segment_delivers_what_is_there_and_a_gap() -> None:
    rec = Recorder()
    rec.half.segment(1000, b"ABC", 8, 1, 0)  # 8 bytes on the wire, 3 captured
    rec.half.segment(1008, b"IJ", 2, 2, 0)
    assert rec.data == b"ABCIJ"
    assert rec.gaps == [StreamGap(0, 0, 3, 5, 1, 0, GapReason.SNAPLEN)]


def test_buffer_limit_gives_up_the_hole() -> None:
    rec = Recorder(isn=0)
    block = b"z" * 65536
    off = 10
    while not rec.gaps:
        rec.half.segment(off, block, len(block), 1, 0)
        off += len(block)
    assert rec.gaps[0].reason == GapReason.BUFFER_LIMIT
    assert rec.gaps[0].offset == 0
    assert rec.gaps[0].size == 10
    assert rec.half.buffered_bytes <= DEFAULT_BUDGETS.ooo_bytes_per_direction


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_two_segments_split_anywhere_either_order(cut: int) -> None:
    for first, second in ((0, cut), (cut, 0)):
        rec = Recorder()
        for frame, off in enumerate((first, second), start=1):
            data = STREAM[off:cut] if off == 0 else STREAM[off:]
            rec.half.segment(1000 + off, data, len(data), frame, 0)
        assert rec.data == STREAM


def test_retransmission_of_a_buffered_segment_is_counted() -> None:
    rec = Recorder()
    rec.half.segment(1004, b"EFGH", 4, 1, 0)
    rec.half.segment(1004, b"EFGH", 4, 2, 0)
    rec.half.segment(1004, b"EFXX", 4, 3, 0)
    rec.half.segment(1000, b"ABCD", 4, 4, 0)
    assert rec.data == STREAM
    assert (rec.half.retransmissions, rec.half.retransmit_frame) == (2, 2)
    assert (rec.half.mismatches, rec.half.mismatch_frame) == (1, 3)


def test_segments_in_reverse_order_are_delivered_in_order() -> None:
    rec = Recorder(isn=0)
    payload = bytes(i % 251 for i in range(3000))
    for frame, off in enumerate(range(len(payload) - 1, 0, -1), start=1):  # every byte but the first, backwards
        rec.half.segment(off, payload[off : off + 1], 1, frame, 0)
    assert rec.chunks == []
    assert len(rec.half.buffered) == len(rec.half.order) == len(payload) - 1
    rec.half.segment(0, payload[:1], 1, 9999, 0)
    assert rec.data == payload
    assert not rec.half.buffered
    assert not rec.half.order
    assert rec.half.pool.total == 0


def test_segment_budget_gives_up_holes_one_by_one_and_counts_them() -> None:
    pool = BufferPool(Budgets(ooo_segments_per_direction=3))
    chunks: list[StreamChunk] = []
    gaps: list[StreamGap] = []
    half = HalfStream(0, 0, chunks.append, gaps.append, pool)
    half.base = 0
    for frame, off in enumerate(range(10, 30, 2), start=1):  # ten one-byte segments, each after a one-byte hole
        half.segment(off, b"x", 1, frame, frame)
        assert len(half.buffered) <= 3
    assert [(g.offset, g.size, g.reason) for g in gaps] == [(0, 10, GapReason.BUFFER_LIMIT)] + [
        (off, 1, GapReason.BUFFER_LIMIT) for off in range(11, 23, 2)
    ]
    assert gaps[0].frame == 4  # the fourth waiting segment went past the budget of three
    assert [c.offset for c in chunks] == list(range(10, 24, 2))
    assert (pool.limit_gaps, pool.limit_gap_bytes) == (7, 16)
    assert pool.total == 3
    half.finish(99, 0)
    assert pool.total == 0
    assert pool.limit_gaps == 7  # holes given up at the end of the stream are not the budget's doing


def test_byte_budget_across_all_directions_of_a_table() -> None:
    pool = BufferPool(Budgets(ooo_bytes_total=10))
    gaps: list[StreamGap] = []
    a = HalfStream(1, 0, None, gaps.append, pool)
    b = HalfStream(2, 1, None, gaps.append, pool)
    a.base = b.base = 0
    a.segment(5, b"AAAAAA", 6, 1, 0)  # 6 bytes wait in a
    b.segment(5, b"BBBB", 4, 2, 0)  # 10 in all: at the budget, not past it
    assert gaps == []
    b.segment(20, b"CCCCCCC", 7, 3, 0)  # 17: b gives up its holes until the pool is back within budget
    assert [(g.flow_id, g.offset, g.size, g.reason) for g in gaps] == [
        (2, 0, 5, GapReason.BUFFER_LIMIT),
        (2, 9, 11, GapReason.BUFFER_LIMIT),
    ]
    assert (b.delivered, a.delivered, pool.total) == (11, 0, 6)


def test_no_recent_segments_are_kept_before_data_is_delivered() -> None:
    rec = Recorder()
    assert rec.half.recent is None
    rec.half.segment(1000, b"AB", 2, 1, 0)
    assert list(rec.half.recent or ()) == [(0, b"AB")]
