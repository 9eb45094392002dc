"""One direction of a TCP connection rebuilt into an in-order byte stream.

Offsets are unwrapped: sequence numbers are taken relative to the first byte (ISN + 1, or the first byte seen when
the SYN is missing) and unwrapped against the next expected offset, so 32-bit wraparound never shows.

Rules, in the spirit of Wireshark's and Zeek's reassemblers:
- a segment at the next expected offset is delivered at once, then any buffered segments it makes contiguous;
- a later segment waits in a bounded buffer for the hole before it (a dict by start offset, with a heap of those
  offsets, so that each segment costs O(log n) however many wait: never a re-scan);
- an earlier segment (retransmission, overlap) delivers only its new bytes; the first copy wins, and overlapping
  bytes that differ from what was delivered are counted as ``tcp.overlap_mismatch``;
- a hole is given up as a gap (``StreamGap``, never papered over) when the peer acknowledges past it, when the
  direction ends (FIN, RST, end of capture, idle), or when the out-of-order buffer is full (the budgets in
  ``analyzer.budgets``, per direction and for all directions of a flow table together: ``BufferPool``);
- a keep-alive (one byte or none, at next expected - 1) is neither data nor a retransmission.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from heapq import heappop, heappush
from typing import NamedTuple

from analyzer.budgets import DEFAULT_BUDGETS, Budgets
from analyzer.events.base import GapReason, StreamChunk, StreamGap

M32 = 0xFFFFFFFF
HALF = 1 << 31
RECENT_SEGMENTS = 32  # delivered segments kept to compare retransmissions against

RELEASED: deque[tuple[int, bytes]] = deque(maxlen=0)  # shared by finished streams: appending discards

# ``new_tuple(StreamChunk, (...))`` makes the same chunk as ``StreamChunk(...)`` at half the cost: a NamedTuple's
# own ``__new__`` is a Python function around this very call (one chunk per delivered segment)
new_tuple = tuple.__new__

ChunkSink = Callable[[StreamChunk], None]
GapSink = Callable[[StreamGap], None]


class BufferPool:
    """Out-of-order buffering shared by the TCP directions of one flow table: its budgets and its use.

    ``total`` is the out-of-order bytes buffered now; ``limit_gaps`` and ``limit_gap_bytes`` count the holes given
    up because a budget was reached (``GapReason.BUFFER_LIMIT``), for the capture's warnings.
    """

    __slots__ = ("limit_gap_bytes", "limit_gaps", "max_bytes", "max_segments", "max_total", "total")

    def __init__(self, budgets: Budgets = DEFAULT_BUDGETS) -> None:
        self.max_bytes = budgets.ooo_bytes_per_direction
        self.max_segments = budgets.ooo_segments_per_direction
        self.max_total = budgets.ooo_bytes_total
        self.total = 0
        self.limit_gaps = 0
        self.limit_gap_bytes = 0


class HalfSummary(NamedTuple):
    """What a direction keeps once its flow has left the flow table: the counters a flow summary reads.

    A tuple of ints, so the garbage collector stops tracking it (a SYN flood leaves millions)."""

    delivered: int
    gaps: int
    gap_bytes: int
    gap_frame: int
    retransmissions: int
    retransmit_frame: int
    mismatches: int
    mismatch_frame: int
    keepalives: int


class HalfStream:
    """Reassembly state of one direction. ``deliver``/``gap`` are called with chunks and gaps in order."""

    __slots__ = (
        "ack_seq",
        "base",
        "buffered",
        "buffered_bytes",
        "deliver",
        "delivered",
        "direction",
        "fin_off",
        "flow_id",
        "gap",
        "gap_bytes",
        "gap_frame",
        "gaps",
        "keepalives",
        "mismatch_frame",
        "mismatches",
        "nxt",
        "order",
        "pool",
        "recent",
        "retransmissions",
        "retransmit_frame",
    )

    def __init__(
        self,
        flow_id: int,
        direction: int,
        deliver: ChunkSink | None,
        gap: GapSink | None,
        pool: BufferPool | None = None,
    ) -> None:
        self.flow_id = flow_id
        self.direction = direction
        self.deliver = deliver
        self.gap = gap
        self.base: int | None = None  # sequence number of stream offset 0
        self.nxt = 0  # next expected stream offset
        self.ack_seq: int | None = None  # the peer's latest acknowledgement number for this direction
        self.fin_off: int | None = None  # offset of the FIN (end of the stream), once seen
        # made at the first out-of-order segment (most directions never have one; a SYN flood has millions):
        self.buffered: dict[int, tuple[bytes, int, int, int]] | None = None  # offset -> (data, wire len, frame, ts)
        self.order: list[int] | None = None  # heap of the offsets in ``buffered``
        self.buffered_bytes = 0
        self.pool = pool if pool is not None else BufferPool()
        # delivered segments for overlap comparison; made at the first delivery (a SYN-only flow never needs one)
        self.recent: deque[tuple[int, bytes]] | None = None
        self.delivered = 0  # bytes delivered in order
        self.gaps = 0
        self.gap_bytes = 0
        self.gap_frame = 0  # frame at which the first gap was decided
        self.retransmissions = 0
        self.retransmit_frame = 0
        self.mismatches = 0
        self.mismatch_frame = 0
        self.keepalives = 0

    def offset_of(self, seq: int) -> int:
        """Unwrapped stream offset of a sequence number (``base`` must be set)."""
        return self.nxt + (((seq - self.base - self.nxt) & M32) ^ HALF) - HALF  # type: ignore[operator]

    def segment(self, seq: int, data: bytes, wire_len: int, frame: int, ts: int) -> None:
        """Take one segment's payload: ``data`` as captured, ``wire_len`` its length on the wire.

        A segment beyond a hole that the peer has already acknowledged past means the hole was lost from the
        capture, not still on its way: it becomes a gap at once.
        """
        if self.base is None:
            self.base = seq
        d = (((seq - self.base - self.nxt) & M32) ^ HALF) - HALF
        if d == 0:
            self._emit(self.nxt, data, wire_len, frame, frame, ts)
            if self.buffered:
                self._drain(frame, ts)
            return
        off = self.nxt + d
        if d > 0:
            buffered = self.buffered
            if buffered is None:
                buffered = self.buffered = {}
                self.order = []
            held = buffered.get(off)
            if held is None:
                buffered[off] = (data, wire_len, frame, ts)
                heappush(self.order, off)  # type: ignore[arg-type]
                self.buffered_bytes += len(data)
                self.pool.total += len(data)
            else:  # a retransmission of a segment still waiting for the hole before it
                self.retransmissions += 1
                if not self.retransmit_frame:
                    self.retransmit_frame = frame
                if held[0] != data[: len(held[0])]:
                    self.mismatches += 1
                    if not self.mismatch_frame:
                        self.mismatch_frame = frame
            if self.ack_seq is not None and self.offset_of(self.ack_seq) >= off:
                self.give_up_hole(frame, ts, GapReason.NOT_CAPTURED)
            else:
                pool = self.pool
                while buffered and (
                    self.buffered_bytes > pool.max_bytes
                    or len(buffered) > pool.max_segments
                    or pool.total > pool.max_total
                ):
                    self.give_up_hole(frame, ts, GapReason.BUFFER_LIMIT)
            return
        end = off + wire_len
        if d == -1 and wire_len <= 1:
            self.keepalives += 1
            return
        self._compare(off, data, frame)
        if end <= self.nxt:
            self.retransmissions += 1
            if not self.retransmit_frame:
                self.retransmit_frame = frame
            return
        cut = -d
        self._emit(self.nxt, data[cut:], wire_len - cut, frame, frame, ts)
        if self.buffered:
            self._drain(frame, ts)

    def ack(self, seq: int, frame: int, ts: int) -> None:
        """The peer acknowledged up to ``seq``: a hole below it will never be filled in this capture.

        Callers on the hot path may set ``ack_seq`` directly while nothing is buffered.
        """
        self.ack_seq = seq
        if self.buffered and self.base is not None:
            off = self.offset_of(seq)
            if self.fin_off is not None and off > self.fin_off:
                off = self.fin_off  # the FIN's own sequence number is not stream data
            if off > self.nxt:
                self.give_up_hole(frame, ts, GapReason.NOT_CAPTURED, upto=off)

    def fin(self, seq: int, payload_len: int) -> None:
        """A FIN at ``seq`` after ``payload_len`` bytes: the stream ends there."""
        if self.base is None:
            self.base = (seq + payload_len) & M32
        self.fin_off = self.offset_of(seq) + payload_len

    @property
    def complete(self) -> bool:
        """Every byte up to the FIN has been delivered (or given up as a gap)."""
        return self.fin_off is not None and self.nxt >= self.fin_off and not self.buffered

    def give_up_hole(self, frame: int, ts: int, reason: GapReason, upto: int | None = None) -> None:
        """Declare the hole at ``nxt`` a gap (up to the next buffered segment, or ``upto``) and drain."""
        nxt_buffered = self.order[0] if self.order else None
        stop = nxt_buffered if nxt_buffered is not None else upto
        if upto is not None and stop is not None:
            stop = min(stop, upto)
        if stop is None or stop <= self.nxt:
            return
        self._record_gap(self.nxt, stop - self.nxt, frame, ts, reason)
        self.nxt = stop
        self._drain(frame, ts)

    def finish(self, frame: int, ts: int) -> None:
        """The direction ended (RST, both FINs, idle, end of capture): deliver what waits, gaps in between."""
        while self.buffered:
            self.give_up_hole(frame, ts, GapReason.NOT_CAPTURED)
        end_off = self.fin_off
        if end_off is not None and end_off > self.nxt:
            self._record_gap(self.nxt, end_off - self.nxt, frame, ts, GapReason.NOT_CAPTURED)
            self.nxt = end_off
        self.recent = RELEASED  # late retransmissions are still counted, no longer compared

    def summary(self) -> HalfSummary:
        """The counters of a finished direction, to keep in place of it."""
        return HalfSummary(
            self.delivered,
            self.gaps,
            self.gap_bytes,
            self.gap_frame,
            self.retransmissions,
            self.retransmit_frame,
            self.mismatches,
            self.mismatch_frame,
            self.keepalives,
        )

    # -- internals --------------------------------------------------------------------------------------------

    def _emit(self, off: int, data: bytes, wire_len: int, frame: int, at_frame: int, ts: int) -> None:
        n = len(data)
        if n:
            recent = self.recent
            if recent is None:
                recent = self.recent = deque(maxlen=RECENT_SEGMENTS)
            recent.append((off, data))
            self.delivered += n
            if self.deliver is not None:
                self.deliver(new_tuple(StreamChunk, (self.flow_id, self.direction, off, data, frame, at_frame, ts)))
        if n < wire_len:
            self._record_gap(off + n, wire_len - n, at_frame, ts, GapReason.SNAPLEN)
        self.nxt = off + wire_len

    def _drain(self, frame: int, ts: int) -> None:
        buffered, order, pool = self.buffered, self.order, self.pool
        while order:
            off = order[0]
            if off > self.nxt:
                return
            heappop(order)
            data, wire_len, carrier, _ts = buffered.pop(off)  # type: ignore[union-attr]
            self.buffered_bytes -= len(data)
            pool.total -= len(data)
            end = off + wire_len
            if end <= self.nxt:
                self._compare(off, data, carrier)
                continue
            cut = self.nxt - off
            if cut:
                self._compare(off, data, carrier)
            self._emit(self.nxt, data[cut:], wire_len - cut, carrier, frame, ts)

    def _compare(self, off: int, data: bytes, frame: int) -> None:
        """Compare an overlapping copy with the delivered bytes still remembered; count a difference."""
        end = off + len(data)
        for r_off, r_data in self.recent or ():
            r_end = r_off + len(r_data)
            lo, hi = max(off, r_off), min(end, r_end)
            if lo < hi and data[lo - off : hi - off] != r_data[lo - r_off : hi - r_off]:
                self.mismatches += 1
                if not self.mismatch_frame:
                    self.mismatch_frame = frame
                return

    def _record_gap(self, off: int, size: int, frame: int, ts: int, reason: GapReason) -> None:
        if reason == GapReason.BUFFER_LIMIT:
            self.pool.limit_gaps += 1
            self.pool.limit_gap_bytes += size
        if not self.gaps:
            self.gap_frame = frame
        self.gaps += 1
        self.gap_bytes += size
        if self.gap is not None:
            self.gap(StreamGap(self.flow_id, self.direction, off, size, frame, ts, reason))
