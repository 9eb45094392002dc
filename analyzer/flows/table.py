"""The flow table: bidirectional flows keyed by 5-tuple, client/server roles, TCP state and reassembly.

``FlowTable.run(ip_packets)`` consumes the reader's datagrams in capture order. Flows get ids in order of their
first packet. A flow whose connection ended (RST, both FINs) or that stayed idle past its timeout is finished:
its buffers are flushed (holes become gaps) and released, and its summary is kept in ``flows``.

Live flows are bounded by ``Budgets.live_flows`` (``analyzer.budgets``): past it, the least recently active flows
(closed ones first) are finished early, as an idle timeout would, and released; ``released_early`` counts them.
Each live flow knows its two keys, so port reuse and releases never scan the table.

Skip window: a decoder that passes over bytes it does not need (the body of an encrypted record) shares with its
flow, in ``Flow.skip_until``, per direction the stream offset where those bytes end (``SkippingDecoder`` in
``analyzer.decoders.base``). An in-order segment lying wholly before the last of them is then only counted: the
sequence numbers, delivered bytes, retransmission memory, history and payload counters move on as for any segment,
but no ``StreamChunk`` is made and ``on_chunk`` is not called (one comparison per segment). The segment carrying
that last byte, and every segment of the slow path (out of order, retransmitted, SYN/FIN/RST), is delivered.

Bypass: with the compiled reader, a live TCP flow is armed (``_arm``) so that the reader passes over its routine
packets, pure ACKs and in-order segments in the skip window, in C (``analyzer.capture._fastread.Bypass``): each is
counted as a skipped packet, and what it changes (packets, bytes, next offset, the segments kept for retransmission
checks, the latest acknowledgement, the last frame) comes back as one ``BYPASSED`` tuple (``_took_in``) before the
flow's next packet is handed on, before every sweep, and at the end. Flows, events and reports are the same as
without it; only the Python work per packet goes. Near the live-flow budget the bypass stops (``BYPASS_BATCH``):
choosing which flows to release early needs every flow's last packet, and the reader reads up to a batch ahead.

Roles: the sender of a SYN is the client, the sender of a SYN-ACK the server; without a handshake in the capture,
the side with the service-like port is the server (``server_is_dst``).
"""

from __future__ import annotations

import struct
from array import array
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from analyzer.budgets import DEFAULT_BUDGETS, Budgets
from analyzer.capture import compiled
from analyzer.capture.ip import quoted_datagram
from analyzer.capture.reader import SKIPPED, SKIPPED_RUN
from analyzer.events.base import Anomaly, StreamChunk, StreamGap
from analyzer.flows.reassembly import M32, RECENT_SEGMENTS, BufferPool, HalfStream, HalfSummary, new_tuple
from analyzer.flows.streams import UNSET, Conversation, Key, StreamNumbers, seen, syn_starts_new_stream

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

SERVICE_PORTS = frozenset(
    (
        20,
        21,
        22,
        23,
        25,
        53,
        67,
        68,
        80,
        110,
        123,
        143,
        161,
        443,
        465,
        587,
        853,
        993,
        995,
        1883,
        3306,
        5060,
        5432,
        6379,
        8000,
        8080,
        8180,
        8443,
        8883,
        8887,
        9000,
        9210,
        9220,
    )
)
PROTO_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp", ICMPV6: "icmpv6"}
IDLE_TIMEOUT_NS = {TCP: 300 * 10**9, UDP: 60 * 10**9}
CLOSED_LINGER_NS = 10 * 10**9  # a closed TCP flow stays reachable this long for late retransmissions
SWEEP_EVERY = 1 << 15  # packets between idle sweeps
BYPASSED = -3  # ``_fastread.BYPASSED``: what the compiled reader passed over of one flow (``FlowTable._took_in``)
# while it passes packets over, the compiled reader hands them on in batches of at most this many, and the bypass
# stops this many live flows below the budget: what it passed over is then taken in before any flow is released
BYPASS_BATCH = 4096

ICMP_ERRORS = {
    ICMP: {
        3: "destination unreachable",
        4: "source quench",
        5: "redirect",
        11: "time exceeded",
        12: "parameter problem",
    },
    ICMPV6: {1: "destination unreachable", 2: "packet too big", 3: "time exceeded", 4: "parameter problem"},
}
ICMP_UNREACH_CODES = {
    0: "net unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed",
    9: "net prohibited",
    10: "host prohibited",
    13: "administratively prohibited",
}
ICMPV6_UNREACH_CODES = {
    0: "no route",
    1: "administratively prohibited",
    3: "address unreachable",
    4: "port unreachable",
    5: "source address failed policy",
    6: "reject route",
}

_tcp_header = struct.Struct("!HHIIBBH").unpack_from
NO_DATA = HalfSummary(0, 0, 0, 0, 0, 0, 0, 0, 0)
NO_SKIP = (0, 0)  # ``Flow.skip_until`` of a flow whose decoder needs every byte (no segment ends before 0)
_LAST_NS = attrgetter("last_ns")
RELEASED_LETTERS = ("", "")


def server_is_dst(sport: int, dport: int) -> bool:
    """Guess, from ports alone, whether the destination of a packet is the server."""
    if (dport in SERVICE_PORTS) != (sport in SERVICE_PORTS):
        return dport in SERVICE_PORTS
    if (dport < 1024) != (sport < 1024):
        return dport < 1024
    if (dport >= 49152) != (sport >= 49152):  # IANA ephemeral range
        return sport >= 49152
    return dport <= sport


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: str
    port: int

    def __str__(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


# what ``format_address`` made: a gateway's flows come from the same few hosts again and again
_ADDRESSES: dict[bytes, str] = {}
ADDRESSES_REMEMBERED = 1 << 14


def format_address(raw: bytes) -> str:
    text = _ADDRESSES.get(raw)
    if text is not None:
        return text
    if len(raw) == 4:
        text = f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"
    else:
        import ipaddress

        text = str(ipaddress.IPv6Address(raw))
    if len(_ADDRESSES) >= ADDRESSES_REMEMBERED:
        _ADDRESSES.clear()
    _ADDRESSES[raw] = text
    return text


class Flow:
    """One bidirectional flow. Index 0 of the per-direction lists is client→server, 1 is server→client."""

    __slots__ = (
        "_anomalies",
        "bypass",
        "client",
        "closed",
        "first_frame",
        "first_ns",
        "flags_seen",
        "halves",
        "history",
        "id",
        "keys",
        "last_frame",
        "last_letters",
        "last_ns",
        "packets",
        "payload_bytes",
        "proto",
        "rst_first",
        "server",
        "skip_until",
        "stream",
        "syn_isn",
        "ws_base",
        "ws_open",
    )

    def __init__(
        self, fid: int, proto: int, client: tuple[bytes, int], server: tuple[bytes, int], frame: int, ts: int
    ) -> None:
        self.id = fid
        self.proto = proto
        # formatted once, here: the ends never change, and every finished flow's summary reads them
        self.client = Endpoint(format_address(client[0]), client[1])
        self.server = Endpoint(format_address(server[0]), server[1])
        self.first_frame = self.last_frame = frame
        self.first_ns = self.last_ns = ts
        self.packets = [0, 0]
        self.payload_bytes = [0, 0]
        self.history = ""
        self.flags_seen = 0  # bit set of history letters already recorded
        # per direction: letters of the last packet (skips re-recording them); shared empty once released
        self.last_letters: list[str] | tuple[str, str] = ["", ""]
        # TCP: the two directions; once the flow has left the table, only their counters (``HalfSummary``)
        self.halves: list[HalfStream] | tuple[HalfSummary, HalfSummary] | None = None
        self.syn_isn: list[int | None] = [None, None]
        self.rst_first: int | None = None  # direction that sent the first RST
        self.closed = False
        self._anomalies: dict[str, Anomaly] | None = None
        self.keys: tuple[Key, ...] = ()  # its keys in ``FlowTable.live`` while it is live
        # Wireshark's tcp.stream / udp.stream (``analyzer.flows.streams``); None for other protocols
        self.stream: int | None = None
        self.ws_base: list[int] | None = None  # TCP: Wireshark's base sequence number per direction
        self.ws_open = False  # a base is still unknown
        # TCP, per direction: segments ending before the last byte under this offset are not delivered; the
        # decoder's own list once it shares one (``analyzer.decoders.base.SkippingDecoder``)
        self.skip_until: list[int] | tuple[int, int] = NO_SKIP
        self.bypass: Any = None  # its ``_fastread.Bypass`` once the flow table offered it to the reader

    @property
    def ports(self) -> tuple[int, int]:
        """(client port, server port) (per datagram: the DNS check)."""
        return self.client.port, self.server.port

    @property
    def syn_retransmits(self) -> int:
        """How many times the client sent its SYN again (same ISN): a refused or unanswered connection's tries."""
        a = (self._anomalies or {}).get("tcp.syn_retransmission")
        return a.count if a else 0

    @property
    def proto_name(self) -> str:
        name = PROTO_NAMES.get(self.proto)
        return f"ip-proto-{self.proto}" if name is None else name

    def note(self, name: str, frame: int, direction: int | None, detail: str = "") -> None:
        """Record an anomaly; a repeat only increments its count (the first frame and detail are kept)."""
        if self._anomalies is None:
            self._anomalies = {}
        old = self._anomalies.get(name)
        if old is None:
            self._anomalies[name] = Anomaly(name=name, frame=frame, direction=direction, detail=detail)
        else:
            self._anomalies[name] = Anomaly(
                name=name, frame=old.frame, direction=old.direction, detail=old.detail, count=old.count + 1
            )

    @property
    def anomalies(self) -> list[Anomaly]:
        """Anomalies in order of their first frame, including the reassembler's counters."""
        out = dict(self._anomalies or {})
        for d, h in enumerate(self.halves or ()):
            if not (h.retransmissions or h.mismatches):
                continue  # most directions: no counter to merge (and no detail to format)
            arrow = "client→server" if d == 0 else "server→client"
            for name, count, frame, detail in (
                ("tcp.retransmission", h.retransmissions, h.retransmit_frame, f"{h.retransmissions} {arrow}"),
                (
                    "tcp.overlap_mismatch",
                    h.mismatches,
                    h.mismatch_frame,
                    f"retransmitted bytes differ from the first copy ({arrow})",
                ),
            ):
                if count:
                    _merge(out, Anomaly(name=name, frame=frame, direction=d, detail=detail, count=count))
        if len(out) < 2:
            return list(out.values())
        return sorted(out.values(), key=_anomaly_order)

    @property
    def state(self) -> str:
        """Zeek's conn_state: S0 S1 SF REJ S2 S3 RSTO RSTR RSTOS0 RSTRH SH SHR OTH (TCP only)."""
        if self.proto != TCP:
            return "S0" if self.packets[1] == 0 else "SF"
        seen = self.history
        syn, synack = "S" in seen, "h" in seen
        # a SYN-ACK answered by the client counts as established even when the SYN itself was not captured
        established = synack and (syn or "A" in seen or "D" in seen)
        if self.rst_first is not None:
            if established:
                return "RSTO" if self.rst_first == 0 else "RSTR"
            if syn and self.rst_first == 1:
                return "REJ"
            if syn:
                return "RSTOS0"
            if synack and self.rst_first == 1:
                return "RSTRH"
            return "RSTO" if self.rst_first == 0 else "RSTR"
        if syn and not synack:
            if "F" in seen:
                return "SH"
            return "S0" if self.packets[1] == 0 else "OTH"
        if synack and not established:
            return "SHR" if "f" in seen else "OTH"
        if not established:
            return "OTH"
        fin_c, fin_s = "F" in seen, "f" in seen
        if fin_c and fin_s:
            return "SF"
        if fin_c:
            return "S2"
        if fin_s:
            return "S3"
        return "S1"

    def release(self) -> None:
        """The flow left the table: keep only what its summary reads (its reassembly state goes; a direction
        that carried nothing shares one summary of zeros, as SYN-flood flows do by the million)."""
        halves = self.halves
        if halves is not None:
            self.halves = (_summary(halves[0]), _summary(halves[1]))  # type: ignore[arg-type]
        self.last_letters = RELEASED_LETTERS
        self.ws_base = None  # a conversation worth remembering was remembered before (``FlowTable._retire``)
        self.ws_open = False
        self.skip_until = NO_SKIP
        self.bypass = None

    def gap_bytes(self, direction: int) -> int:
        return self.halves[direction].gap_bytes if self.halves else 0

    def stream_bytes(self, direction: int) -> int:
        return self.halves[direction].delivered if self.halves else 0


_NO_END = 1 << 62  # the skip window of a direction without a chunk sink: every segment may be passed over


def _expected(h: HalfStream, data_seen: int) -> int:
    """The next in-order sequence number of a direction whose data is in the history, else -1."""
    if not data_seen or h.base is None:
        return -1
    return (h.base + h.nxt) & M32


def _moved(flow: Flow, h: HalfStream, d: int, nbytes: int, offset: int, recent: list[tuple[int, bytes]]) -> None:
    """In-order segments passed over in direction ``d``: ``HalfStream._emit`` without delivering them."""
    flow.payload_bytes[d] += nbytes
    h.delivered += nbytes
    h.nxt = offset
    kept = h.recent
    if kept is None:
        kept = h.recent = deque(maxlen=RECENT_SEGMENTS)
    kept.extend(recent)


def _summary(h: HalfStream) -> HalfSummary:
    if h.delivered or h.gaps or h.retransmissions or h.mismatches or h.keepalives:
        return h.summary()
    return NO_DATA  # every other counter is 0 too


def _anomaly_order(a: Anomaly) -> tuple[int, str]:
    """``Flow.anomalies``' order: by first frame, then name."""
    return a.frame, a.name


def _merge(out: dict[str, Anomaly], a: Anomaly) -> None:
    old = out.get(a.name)
    if old is None:
        out[a.name] = a
    else:
        out[a.name] = Anomaly(
            name=a.name,
            frame=min(a.frame, old.frame),
            direction=old.direction,
            detail=f"{old.detail}; {a.detail}",
            count=old.count + a.count,
        )


# History letters, Zeek style: upper case from the client, lower case from the server.
_LETTERS = "SHADFRTWGIQ"
_BIT = {c: 1 << i for i, c in enumerate(_LETTERS)}
# the fast path's letters, per direction (``_history`` shifts the server's by 16): their bits in ``flags_seen``
_FAST_BITS = tuple({s: sum(_BIT[c] for c in s) << shift for s in ("A", "D", "DT")} for shift in (0, 16))
_ACK_BITS = (_BIT["A"], _BIT["A"] << 16)  # a pure ACK each way in the history (``FlowTable._arm``)
_DATA_BITS = (_BIT["D"], _BIT["D"] << 16)  # data each way


class FlowTable:
    """Consumes IP datagrams, keeps live flows, finishes and releases ended ones.

    Optional callbacks receive what decoders need: ``on_chunk`` (in-order TCP bytes, but for segments in a flow's
    skip window), ``on_gap`` (missing TCP bytes), ``on_datagram(flow, direction, payload, frame, ts_ns)`` (UDP),
    ``on_finish(flow)`` (a flow ended: no more callbacks for it), ``on_control(flow, direction, flags, frame,
    ts_ns)`` (a TCP packet with SYN, FIN or RST, after the flow state took it in) and ``on_icmp(flow, direction,
    frame, ts_ns, detail, unreachable)`` (an ICMP error quoting a packet this flow sent in ``direction``) and
    ``on_sweep()`` (after each idle sweep, every ``SWEEP_EVERY`` packets).
    """

    def __init__(
        self,
        on_chunk: Callable[[StreamChunk], None] | None = None,
        on_gap: Callable[[StreamGap], None] | None = None,
        on_datagram: Callable[[Flow, int, bytes, int, int], None] | None = None,
        on_finish: Callable[[Flow], None] | None = None,
        on_control: Callable[[Flow, int, int, int, int], None] | None = None,
        on_icmp: Callable[[Flow, int, int, int, str, bool], None] | None = None,
        budgets: Budgets = DEFAULT_BUDGETS,
        keep_flows: bool = True,
        on_sweep: Callable[[], None] | None = None,
    ) -> None:
        self.on_sweep = on_sweep
        self.on_control = on_control
        self.on_icmp = on_icmp
        self.on_chunk = on_chunk
        self.on_gap = on_gap
        self.on_datagram = on_datagram
        self.on_finish = on_finish
        # by flow key, each way (``analyzer.flows.streams.Key``: a TCP key is the bare addresses and ports)
        self.live: dict[Key, tuple[Flow, int]] = {}
        # every flow, by id (summaries stay; buffers are released on finish), unless not ``keep_flows``
        # (``analyze`` keeps what it needs of a finished flow through ``on_finish``: memory stays flat)
        self.flows: list[Flow] = []
        self.keep_flows = keep_flows
        self.by_id: dict[int, Flow] = {}  # the live flows, by id
        self.flow_count = 0
        self.orphan_icmp: list[tuple[int, str]] = []  # ICMP errors quoting no flow in the capture
        self.truncated_headers = 0
        self.budgets = budgets
        self.pool = BufferPool(budgets)  # out-of-order TCP buffering, shared by every direction
        self.live_count = 0  # live flows (``live`` holds two keys for most)
        self.released_early = 0  # flows finished early to stay within ``budgets.live_flows``
        self.streams = StreamNumbers(budgets.remembered_conversations)  # Wireshark's stream numbers
        self._next_sweep = SWEEP_EVERY
        self._now = 0
        # with ``analyze --workers`` (``record_order``), by flow id: the frame that made each flow and the frame
        # being read when it finished (``analyzer.parallel`` orders the partitions' flows as one table would)
        self.made_at: array[int] | None = None
        self.finished_at: array[int] | None = None
        # what the compiled reader may pass over (``Capture.ip_packets(..., bypass)``), None without it
        self.bypass: Any = compiled.bypass_table(BYPASS_BATCH)
        self._armed: dict[Key, tuple[Any, int]] | None = None  # its entries, while the reader takes them

    def record_order(self) -> None:
        """Keep the frames ``analyzer.parallel`` needs to number flows and streams across partitions."""
        self.made_at, self.finished_at = array("q"), array("q")
        self.streams.firsts = {TCP: array("q"), UDP: array("q")}

    # -- driving ----------------------------------------------------------------------------------------------

    @property
    def sweep_every(self) -> int:
        """Packets between idle sweeps (``SWEEP_EVERY``): ``Capture.ip_packets(part, sweep_every)``."""
        return SWEEP_EVERY

    def run(self, packets: Iterable[tuple[int, int, int, bytes, bytes, bytes, int]]) -> list[Flow]:
        """Take in every packet; one of protocol ``SKIPPED`` (another partition's, ``analyze --workers``) only
        counts towards the idle sweeps, which so fall on the packets one table's would; ``SKIPPED_RUN`` counts as
        its ``wire`` packets (``Capture.ip_packets``: a run ends where a sweep falls)."""
        bypass = self.bypass
        if bypass is not None and bypass.active and not bypass.stopped:
            self._armed = bypass.entries
        tcp, udp = self._tcp, self._udp
        count = 0
        frame = ts = 0
        next_sweep = self._next_sweep  # a local in the loop, written back at each sweep
        for frame, ts, proto, src, dst, l4, wire in packets:
            if proto == 6:  # TCP (literals: no global looked up per packet)
                tcp(frame, ts, src, dst, l4, wire)
            elif proto == 17:  # UDP
                udp(frame, ts, src, dst, l4, wire)
            elif proto == ICMP or proto == ICMPV6:
                self._icmp(frame, ts, proto, src, dst, l4)
            elif proto != SKIPPED:
                if proto == SKIPPED_RUN:
                    count += wire - 1
                elif proto == BYPASSED:
                    self._took_in(src)  # type: ignore[arg-type]
                    count -= 1  # its packets were counted as skipped
                else:
                    self._other(frame, ts, proto, src, dst, wire)
            count += 1
            if count >= next_sweep:
                next_sweep = self._next_sweep = count + SWEEP_EVERY
                self._sweep(ts, frame)
        self.finish_all(frame, ts)
        return self.flows

    def finish_all(self, frame: int, ts: int) -> None:
        if self.bypass is not None and self.bypass.active:
            for passed in self.bypass.drain():  # what the reader passed over since the last packet handed on
                self._took_in(passed)
            self.bypass.entries.clear()  # every live flow ends here (``Flow.release`` lets go of its bypass)
        self._armed = None
        for flow in {id(f): f for f, _ in self.live.values()}.values():
            self._finish(flow, frame, ts)
            flow.keys = ()
            flow.release()
            self._forget(flow)
        self.live.clear()
        self.live_count = 0

    # -- TCP --------------------------------------------------------------------------------------------------

    def _tcp(self, frame: int, ts: int, src: bytes, dst: bytes, l4: bytes, wire: int) -> None:
        """One TCP segment. Most are an ACK (with or without data) of a known flow with an open window: that path
        reads each attribute once and makes no object but the key (and the chunk it delivers); everything else
        (SYN, FIN, RST, a zero window) takes the general path below it."""
        if len(l4) < 20:
            self.truncated_headers += 1
            return
        _, _, seq, ack, doff, flags, win = _tcp_header(l4)
        key = src + dst + l4[:4]  # a TCP key is the bare bytes (no tuple made per packet; see ``FlowTable.live``)
        hit = self.live.get(key)
        if hit is None or (flags & 0x12 == SYN and self._is_new_connection(hit, seq)):  # 0x12: SYN | ACK
            hit = self._tcp_flow(hit, key, frame, ts, src, dst, l4, flags, seq)
        flow, d = hit
        if flow.ws_open:
            flow.ws_open = not seen(flow.ws_base, d, flags, seq, ack)  # type: ignore[arg-type]
        flow.last_frame = frame
        flow.last_ns = ts
        flow.packets[d] += 1
        halves = flow.halves
        h, other = halves[d], halves[1 - d]  # type: ignore[index]
        hoff = (doff >> 4) * 4
        plen = wire - hoff
        if flags & 0x17 == 0x10 and win:  # fast path: ACK without SYN/FIN/RST (0x17), window open
            if plen > 0:
                flow.payload_bytes[d] += plen
                base = h.base
                data = l4[hoff:]
                if base is not None and not h.buffered and len(data) == plen and not (seq - base - h.nxt) & M32:
                    # in order and complete: HalfStream._emit inlined (keep the two in step), but a segment
                    # in the skip window (before its last byte) is not delivered
                    nxt = h.nxt
                    recent = h.recent
                    if recent is None:
                        recent = h.recent = deque(maxlen=RECENT_SEGMENTS)
                    recent.append((nxt, data))
                    h.delivered += plen
                    end = h.nxt = nxt + plen
                    deliver = h.deliver
                    if deliver is not None and end >= flow.skip_until[d]:
                        deliver(new_tuple(StreamChunk, (flow.id, d, nxt, data, frame, frame, ts)))
                    letters = "D"
                else:
                    before = h.retransmissions
                    h.segment(seq, data, plen, frame, ts)
                    letters = "DT" if h.retransmissions != before else "D"
            else:
                letters = "A"
            if other.buffered:
                other.ack(ack, frame, ts)
            else:
                other.ack_seq = ack
            last = flow.last_letters
            if letters != last[d]:
                last[d] = letters
                bits = _FAST_BITS[d][letters]
                if flow.flags_seen & bits != bits:  # a letter not in the history yet
                    self._history(flow, d, letters)
            if (h.fin_off is not None or other.fin_off is not None) and not flow.closed:
                self._close_if_complete(flow, frame, ts)
            elif self._armed is not None and (
                flow.bypass is None or (flow.bypass.stale and flow.bypass.last_seen == frame)
            ):
                self._arm(flow, frame)  # the last packet of the flow the reader read: it may pass over the next
            return
        letters = ""
        if flags & SYN:
            letters = "H" if flags & ACK else "S"
            if flags & (FIN | RST):
                letters += "Q"
            isn = flow.syn_isn[d]
            if isn is None:
                flow.syn_isn[d] = seq
                h.base = (seq + 1) & 0xFFFFFFFF
            elif isn == seq:
                if not flags & ACK:
                    flow.note("tcp.syn_retransmission", frame, d, "SYN sent again with the same sequence number")
            else:
                flow.note("tcp.syn_changed", frame, d, "a second SYN with a different sequence number")
        if plen > 0:
            flow.payload_bytes[d] += plen
            letters += "D"
            before = h.retransmissions
            h.segment(seq, l4[hoff:], plen, frame, ts)
            if h.retransmissions != before:
                letters += "T"
        if flags & ACK:
            other.ack(ack, frame, ts)
            if not plen and not flags & (SYN | FIN | RST):
                letters += "A"
        if win == 0 and not flags & (RST | SYN):
            letters += "W"
        if flags & FIN:
            letters += "F"
            h.fin(seq, plen)
        if flags & RST:
            letters += "R"
            if flow.rst_first is None:
                flow.rst_first = d
        if letters:
            self._history(flow, d, letters)
        if self.on_control is not None and flags & (SYN | FIN | RST):
            self.on_control(flow, d, flags, frame, ts)
        if flags & RST:
            self._close(flow, frame, ts)
        elif not flow.closed:
            self._close_if_complete(flow, frame, ts)

    def _tcp_flow(
        self,
        hit: tuple[Flow, int] | None,
        key: bytes,
        frame: int,
        ts: int,
        src: bytes,
        dst: bytes,
        l4: bytes,
        flags: int,
        seq: int,
    ) -> tuple[Flow, int]:
        """A segment of no live flow, or a SYN starting a new connection on ``hit``'s 5-tuple: its new flow (and
        direction), which continues the Wireshark stream of the conversation it belongs to."""
        rkey = dst + src + l4[2:4] + l4[:2]
        prior: Conversation | None
        if hit is not None:
            old, od = hit
            prior = (old.stream, old.ws_base[od], old.ws_base[1 - od])  # type: ignore[arg-type,index]
            self._retire(old, frame, ts, remember=False)
        else:
            prior = self.streams.recall(key, rkey)
        syn_ack = flags & (SYN | ACK)
        sport, dport = l4[0] << 8 | l4[1], l4[2] << 8 | l4[3]
        if syn_ack == SYN:
            to_server = True
        elif syn_ack == SYN | ACK:
            to_server = False
        else:
            to_server = server_is_dst(sport, dport)
        hit = self._new_flow(TCP, src, dst, sport, dport, to_server, frame, ts, key, rkey)
        self._tcp_stream(hit, prior, flags, seq)
        if not flags & SYN:
            hit[0].note("tcp.no_handshake", frame, None, "the capture starts after the connection was set up")
        return hit

    def _tcp_stream(self, hit: tuple[Flow, int], prior: Conversation | None, flags: int, seq: int) -> None:
        """A new TCP flow's Wireshark stream: the conversation it continues (``prior``, in the direction of its
        first packet), unless that packet opens a new one."""
        flow, d = hit
        base = [UNSET, UNSET]
        if prior is None or syn_starts_new_stream(flags, seq, prior[1]):
            flow.stream = self.streams.number(TCP, flow.first_frame)
        else:
            flow.stream = prior[0]
            base[d], base[1 - d] = prior[1], prior[2]
        flow.ws_base = base
        flow.ws_open = True

    def _close_if_complete(self, flow: Flow, frame: int, ts: int) -> None:
        halves = flow.halves
        if halves[0].complete and halves[1].complete:  # type: ignore[index]
            self._close(flow, frame, ts)

    @staticmethod
    def _close(flow: Flow, frame: int, ts: int) -> None:
        """The connection ended (RST, or both FINs with every byte before them): flush both directions."""
        if not flow.closed:
            flow.closed = True
            for half in flow.halves:  # type: ignore[union-attr]
                half.finish(frame, ts)

    def _is_new_connection(self, hit: tuple[Flow, int], seq: int) -> bool:
        """Whether a bare SYN on a known 5-tuple starts a new connection: another ISN (port reuse) or reversed
        roles. The same ISN again, even after an RST, is the same attempt retried (as tshark counts it)."""
        flow, d = hit
        return d != 0 or flow.syn_isn[0] != seq

    def _history(self, flow: Flow, d: int, letters: str) -> None:
        seen = flow.flags_seen
        shift = 0 if d == 0 else 16
        for c in letters:
            bit = _BIT[c] << shift
            if not seen & bit:
                seen |= bit
                flow.history += c if d == 0 else c.lower()
        flow.flags_seen = seen

    # -- UDP, ICMP, other -------------------------------------------------------------------------------------

    def _udp(self, frame: int, ts: int, src: bytes, dst: bytes, l4: bytes, wire: int) -> None:
        if len(l4) < 8:
            self.truncated_headers += 1
            return
        key = (UDP, src + dst + l4[:4])
        hit = self.live.get(key)
        if hit is None:
            sport, dport = l4[0] << 8 | l4[1], l4[2] << 8 | l4[3]
            prior = self.streams.recall(key, (UDP, dst + src + l4[2:4] + l4[:2]))
            hit = self._new_flow(UDP, src, dst, sport, dport, server_is_dst(sport, dport), frame, ts, key)
            hit[0].stream = self.streams.number(UDP, frame) if prior is None else prior[0]
        flow, d = hit
        flow.last_frame = frame
        flow.last_ns = ts
        flow.packets[d] += 1
        flow.payload_bytes[d] += wire - 8
        if self.on_datagram is not None:
            self.on_datagram(flow, d, l4[8:], frame, ts)

    def _icmp(self, frame: int, ts: int, proto: int, src: bytes, dst: bytes, l4: bytes) -> None:
        if len(l4) < 8:
            self.truncated_headers += 1
            return
        kind = ICMP_ERRORS[proto].get(l4[0])
        if kind is None:
            self._other(frame, ts, proto, src, dst, len(l4))
            return
        quoted = quoted_datagram(l4[8:])
        codes = ICMP_UNREACH_CODES if proto == ICMP else ICMPV6_UNREACH_CODES
        reason = kind + (f" ({codes.get(l4[1], f'code {l4[1]}')})" if "unreachable" in kind else "")
        reporter = format_address(src)
        if quoted is not None and quoted[0] in (TCP, UDP):
            qproto, qsrc, qdst, qsport, qdport = quoted
            addrs = qsrc + qdst + bytes((qsport >> 8, qsport & 255, qdport >> 8, qdport & 255))
            key: Key = addrs if qproto == TCP else (qproto, addrs)
            hit = self.live.get(key)
            if hit is not None:
                flow, d = hit
                flow.last_frame = frame
                flow.last_ns = ts
                name = "icmp.unreachable" if "unreachable" in kind else "icmp." + kind.replace(" ", "_")
                flow.note(name, frame, d, f"{reason} from {reporter}")
                if self.on_icmp is not None:
                    self.on_icmp(flow, d, frame, ts, f"{reason} from {reporter}", "unreachable" in kind)
                return
            if qproto == UDP:
                rkey = (UDP, qdst + qsrc + addrs[-2:] + addrs[-4:-2])
                self.streams.quoted_udp(key, rkey, frame)
        self.orphan_icmp.append((frame, f"{reason} from {reporter}"))

    def _other(self, frame: int, ts: int, proto: int, src: bytes, dst: bytes, wire: int) -> None:
        key = (proto, src + dst)
        hit = self.live.get(key)
        if hit is None:
            hit = self._new_flow(proto, src, dst, 0, 0, True, frame, ts, key, rkey=(proto, dst + src))
        flow, d = hit
        flow.last_frame = frame
        flow.last_ns = ts
        flow.packets[d] += 1
        flow.payload_bytes[d] += wire

    # -- flow lifecycle ---------------------------------------------------------------------------------------

    def _new_flow(
        self,
        proto: int,
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
        to_server: bool,
        frame: int,
        ts: int,
        key: Key,
        rkey: Key | None = None,
    ) -> tuple[Flow, int]:
        if rkey is None:
            rkey = (proto, dst + src + key[1][-2:] + key[1][-4:-2])  # type: ignore[index]
        a, b = (src, sport), (dst, dport)
        client, server = (a, b) if to_server else (b, a)
        flow = Flow(self.flow_count, proto, client, server, frame, ts)
        self.flow_count += 1
        if self.made_at is not None:
            self.made_at.append(frame)
            self.finished_at.append(0)  # type: ignore[union-attr]
        if proto == TCP:
            flow.halves = [
                HalfStream(flow.id, 0, self.on_chunk, self.on_gap, self.pool),
                HalfStream(flow.id, 1, self.on_chunk, self.on_gap, self.pool),
            ]
        self.by_id[flow.id] = flow
        if self.keep_flows:
            self.flows.append(flow)
        d = 0 if to_server else 1
        self.live[key] = (flow, d)
        self.live[rkey] = (flow, 1 - d)
        flow.keys = (key, rkey)
        self.live_count += 1
        if self._armed is not None and self.live_count >= self.budgets.live_flows - BYPASS_BATCH:
            self._stop_bypass()
        if self.live_count > self.budgets.live_flows:
            self._release_oldest(frame, ts, keep=flow)
        return flow, d

    def _retire(self, flow: Flow, frame: int, ts: int, remember: bool = True) -> None:
        """Finish a live flow and take it out of ``live`` (by its own keys: never a scan of the table); with
        ``remember``, its Wireshark conversation is kept for a later packet of it."""
        self._finish(flow, frame, ts)
        live = self.live
        own = live.get(flow.keys[0]) if flow.keys else None
        if remember and flow.stream is not None and own is not None and own[0] is flow:
            d = own[1]
            base = flow.ws_base or (UNSET, UNSET)
            self.streams.remember(flow.keys[0], flow.stream, base[d], base[1 - d], frame)
        for k in flow.keys:
            hit = live.get(k)
            if hit is not None and hit[0] is flow:
                del live[k]
        if flow.bypass is not None:
            self._unarm(flow)
        flow.keys = ()
        flow.release()
        self._forget(flow)
        self.live_count -= 1

    def _forget(self, flow: Flow) -> None:
        self.by_id.pop(flow.id, None)

    def _release_oldest(self, frame: int, ts: int, keep: Flow) -> None:
        """Over the live-flow budget: finish and release the least recently active flows, closed ones first,
        a tenth of the budget at once (one sort per batch keeps the cost per new flow constant)."""
        budget = self.budgets.live_flows
        excess = self.live_count - (budget - max(1, budget // 10))
        # each flow once: by its entry in its own direction 0 (or its only entry, when both keys are one)
        flows = [f for f, d in self.live.values() if (d == 0 or f.keys[0] == f.keys[1]) and f is not keep]
        oldest = sorted((f for f in flows if f.closed), key=_LAST_NS)[:excess]
        if len(oldest) < excess:
            oldest += sorted((f for f in flows if not f.closed), key=_LAST_NS)[: excess - len(oldest)]
        for flow in oldest:
            self._retire(flow, frame, ts)
        self.released_early += len(oldest)

    # -- bypass (see the module docstring) --------------------------------------------------------------------

    def _arm(self, flow: Flow, frame: int) -> None:
        """After a fast-path packet of ``flow`` (its last one handed on, or the reader ignores it): let the reader
        pass over the flow's pure ACKs each way that already has one in its history, and its in-order segments in
        the skip window, as long as nothing is buffered out of order, no FIN was seen and the Wireshark sequence
        bases are known."""
        b = flow.bypass
        if b is None:
            keys = flow.keys
            if len(keys) != 2 or keys[0] == keys[1] or self._armed is None:
                return
            b = flow.bypass = compiled.core.Bypass(flow)
            d = self.live[keys[0]][1]
            self._armed[keys[0]] = (b, d)
            self._armed[keys[1]] = (b, 1 - d)
            return  # armed from its next packet on: the reader may have handed on later ones of this buffer
        if b.last_seen != frame:
            return
        h0, h1 = flow.halves  # type: ignore[misc]
        skip = flow.skip_until
        ended = h0.fin_off is not None or h1.fin_off is not None
        if flow.ws_open or flow.closed or ended or h0.buffered or h1.buffered:
            b.arm(frame, False, False, False, False, -1, -1, 0, 0, 0, 0)  # nothing now, and no batch ends for it
            return
        seen = flow.flags_seen
        b.arm(
            frame,
            True,
            skip is not NO_SKIP,
            seen & _ACK_BITS[0] != 0,
            seen & _ACK_BITS[1] != 0,
            _expected(h0, seen & _DATA_BITS[0]),
            _expected(h1, seen & _DATA_BITS[1]),
            h0.nxt,
            h1.nxt,
            skip[0] if h0.deliver is not None else _NO_END,
            skip[1] if h1.deliver is not None else _NO_END,
        )

    def _took_in(self, passed: tuple[Any, ...]) -> None:
        """What the reader passed over of one flow (``Bypass.snapshot``), as the fast path would have taken it."""
        flow, n0, n1, bytes0, bytes1, ack0, ack1, frame, ts, moved0, moved1, recent0, recent1 = passed
        if flow is None:  # it ended before what it passed over was handed on (``_unarm``): nothing to take in
            return
        if frame > flow.last_frame:
            flow.last_frame = frame
            flow.last_ns = ts
        packets = flow.packets
        packets[0] += n0
        packets[1] += n1
        h0, h1 = flow.halves
        if bytes0:
            _moved(flow, h0, 0, bytes0, moved0, recent0)
        if bytes1:
            _moved(flow, h1, 1, bytes1, moved1, recent1)
        if ack0 >= 0:  # sent client to server: acknowledges the server's bytes
            h1.ack_seq = ack0
        if ack1 >= 0:
            h0.ack_seq = ack1

    def _unarm(self, flow: Flow) -> None:
        """The flow leaves the table: its keys leave the bypass's entries (stopped or not), and a snapshot of it
        still on its way is ignored (``_took_in``)."""
        armed = self.bypass.entries
        b = flow.bypass
        for k in flow.keys:
            hit = armed.get(k)
            if hit is not None and hit[0] is b:
                del armed[k]
        b.flow = None
        flow.bypass = None

    def _stop_bypass(self) -> None:
        """Near the live-flow budget: the reader hands on what it passed over before its next read buffer, and
        passes nothing over any more; no flow is armed again."""
        self.bypass.stopped = True
        self._armed = None

    def _finish(self, flow: Flow, frame: int, ts: int) -> None:
        if flow.halves is not None:
            for half in flow.halves:
                half.finish(frame, ts)
            for d, half in enumerate(flow.halves):
                if half.gaps:
                    flow.note("tcp.gap", half.gap_frame, d, f"{half.gap_bytes} bytes in {half.gaps} gaps")
        flow.closed = True
        if self.finished_at is not None:
            self.finished_at[flow.id] = frame
        if self.on_finish is not None:
            self.on_finish(flow)

    def _sweep(self, now: int, frame: int) -> None:
        """Finish and drop flows idle past their timeout (closed TCP flows after a short linger)."""
        dead = {}
        for flow, _d in self.live.values():
            idle = now - flow.last_ns
            limit = CLOSED_LINGER_NS if flow.closed else IDLE_TIMEOUT_NS.get(flow.proto, 60 * 10**9)
            if idle > limit:
                dead[flow.id] = flow
        for flow in dead.values():
            self._retire(flow, frame, now)
        if self.on_sweep is not None:
            self.on_sweep()
