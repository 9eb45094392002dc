"""Wiring: a capture file through the reader, the flow table and the decoders, into one timeline.

``rebuild_flows`` is what ``ghostcap flows`` runs; ``build_timeline`` hangs the decoders on the same callbacks.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer.budgets import (
    DEFAULT_BUDGETS,
    FLOW_EVENTS_EDGE,
    FLOW_EVENTS_THIN,
    GC_READING_THRESHOLDS,
    GC_THRESHOLDS,
    HASH_NICE,
    HASH_PROCESS_BYTES,
    KEEPER_NAMES,
    PENDING_FLOWS,
    TRIM_EVERY_SWEEPS,
)
from analyzer.capture.linklayer import linktype_name
from analyzer.capture.reader import Partition, open_capture
from analyzer.config import Settings
from analyzer.decoders.base import DecodeError, SkippingDecoder, StreamDecoder
from analyzer.digest import file_sha256, regular
from analyzer.events.base import DecodeAnomaly, Event, StreamChunk, StreamGap
from analyzer.events.tcp import FlowEnd, IcmpError, TcpFin, TcpRst, TcpSyn, TcpSynAck
from analyzer.events.tls import TlsSummary
from analyzer.flows.table import ACK, FIN, NO_SKIP, RST, SYN, Flow, FlowTable
from analyzer.heap import trim_heap
from analyzer.timeline import FlowInfo, Timeline
from analyzer.timeline.keeper import EventKeeper
from analyzer.timeline.timeline import Stream, stream_filter_of

if TYPE_CHECKING:
    from analyzer.diagnosis.chargers import Other
    from analyzer.diagnosis.runner import ChargerResult
    from analyzer.timeline.stream import EventStream
    from analyzer.tls.keylog import KeyLog
    from analyzer.tls.notes import TlsTally


@dataclass(slots=True)
class CaptureInfo:
    """What a report says about the capture itself."""

    file: str
    format: str
    compression: str | None
    link_types: list[str]
    packets: int
    truncated_packets: int
    first_ns: int | None
    last_ns: int | None
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FlowsResult:
    capture: CaptureInfo
    flows: list[Flow]
    orphan_icmp: list[tuple[int, str]]
    tls: dict[int, tuple[str, str]] | None = None  # flow id → TLS decryption (status, detail), with a key log


def rebuild_flows(
    path: str | Path,
    on_chunk: Callable[[StreamChunk], None] | None = None,
    on_gap: Callable[[StreamGap], None] | None = None,
    on_datagram: Callable[[Flow, int, bytes, int, int], None] | None = None,
    table: FlowTable | None = None,
    keys: KeyLog | None = None,
    part: Partition | None = None,
) -> FlowsResult:
    """Read ``path`` once and rebuild every flow; raises ``CaptureError`` if it is not a capture.

    Pass either the callbacks or a ``FlowTable`` built with them (whose live flows, ``by_id``, the callbacks may
    then read while the capture is being read). ``keys`` takes in the capture's Decryption Secrets
    Blocks as they are read. ``part`` (``analyze --workers``): the packets this process takes in
    (``Capture.ip_packets``).
    """
    with open_capture(path, table.budgets if table is not None else DEFAULT_BUDGETS) as cap:
        if keys is not None:
            keys.watch(cap.secrets)
        if table is None:
            table = FlowTable(on_chunk=on_chunk, on_gap=on_gap, on_datagram=on_datagram)
        flows = table.run(cap.ip_packets(part, table.sweep_every, table.bypass))
        st = cap.stats
        warnings = cap.warnings
        warnings.extend(table_warnings(table))
        seen = sorted(st.linktypes) or [i.linktype for i in cap.interfaces]
        info = CaptureInfo(
            file=cap.name,
            format=cap.format,
            compression=cap.compression,
            link_types=list(dict.fromkeys(linktype_name(lt) for lt in seen)),
            packets=st.packets,
            truncated_packets=st.truncated_packets,
            first_ns=st.first_ns,
            last_ns=st.last_ns,
            warnings=warnings,
        )
    return FlowsResult(info, flows, table.orphan_icmp)


def table_warnings(table: FlowTable) -> list[str]:
    """What the flow table could not take in or gave up, one sentence each."""
    out = [f"{table.truncated_headers} packets had a transport header cut short"] if table.truncated_headers else []
    return out + budget_warnings(table)


def budget_warnings(table: FlowTable) -> list[str]:
    """One sentence per budget of ``analyzer.budgets`` the flow table reached: what was given up, and the budget."""
    out = []
    b = table.budgets
    if table.released_early:
        out.append(
            f"{table.released_early} idle flows released early to stay within the flow budget of {b.live_flows} "
            "live flows (each was summarised as if it had timed out; a later packet of one starts a new flow)"
        )
    streams = table.streams
    if streams.forgotten:
        out.append(
            f"{streams.forgotten} ended conversations forgotten to stay within the budget of "
            f"{b.remembered_conversations}: tcp.stream/udp.stream numbers from frame {streams.forgot_at} on may "
            "differ from Wireshark's"
        )
    pool = table.pool
    if pool.limit_gaps:
        out.append(
            f"{pool.limit_gaps} holes in TCP streams ({pool.limit_gap_bytes} bytes) given up as gaps because "
            f"out-of-order data reached the reassembly budget ({b.ooo_segments_per_direction} segments or "
            f"{b.ooo_bytes_per_direction} bytes per direction, {b.ooo_bytes_total} bytes in all)"
        )
    return out


@dataclass(slots=True)
class TimelineResult:
    capture: CaptureInfo
    flows: list[Flow]
    timeline: Timeline
    orphan_icmp: list[tuple[int, str]] = field(default_factory=list)


def tls_status(timeline: Timeline) -> dict[int, tuple[str, str]]:
    """Per TLS flow: whether it was decrypted (``TlsSummary.decryption``; ``encrypted`` without keys at all)."""
    out: dict[int, tuple[str, str]] = {}
    for e in timeline.of_type(TlsSummary):
        if e.flow_id is not None and any(e.encrypted_records):
            out[e.flow_id] = (e.decryption or "encrypted", e.decryption_detail or "no key log")
    return out


class _Dispatch:
    """Feeds the flow table's callbacks to decoders and collects their events (errors become anomalies).

    A decoder that can pass over bytes (``SkippingDecoder``) shares its skip window with its flow when it is made
    (``Flow.skip_until``), and is told where each direction got to before it is closed."""

    def __init__(self, keys: KeyLog | None = None, keeper: EventKeeper | EventStream | None = None) -> None:
        # imported here so that ``ghostcap flows`` does not pay for the protocol libraries
        from analyzer.decoders.detect import is_dns_datagram, stream_decoder
        from analyzer.decoders.dns import DnsDecoder
        from analyzer.tls.notes import TlsTally

        self.stream_decoder = stream_decoder
        self.is_dns_datagram = is_dns_datagram

        self.keys = keys
        self.events: list[Event] = []
        self.keeper = keeper
        self.tally = TlsTally()  # what the key-log warnings need, when the events are not all kept
        # where events go: every one into ``events``, or to ``keeper`` (``analyze`` keeps what it needs of them,
        # ``timeline`` prints them as they come)
        self.emit: Callable[[Event], None] = self.events.append
        self.emit_all: Callable[[Iterable[Event]], None] = self.events.extend
        if keeper is not None:
            self.emit, self.emit_all = _keeper_sinks(keeper, self.tally)

        self.decoders: dict[int, StreamDecoder | None] = {}
        self.dns = DnsDecoder()
        self.syns: dict[int, list[int]] = {}  # per flow: the SYNs each way so far
        self.table = FlowTable(
            on_chunk=self.chunk,
            on_gap=self.gap,
            on_datagram=self.datagram,
            on_finish=self.finish,
            on_control=self.control,
            on_icmp=self.icmp,
            keep_flows=keeper is None,
            on_sweep=self._swept,
        )
        self.keeper_sweep = keeper.sweep if isinstance(keeper, EventKeeper) else None
        self.sweeps = 0
        if isinstance(keeper, EventKeeper):
            keeper.endpoints = self._endpoints
        elif keeper is not None:
            keeper.stream_of = self._stream_of

    def unlink(self) -> None:
        """Take back what refers to this dispatcher (the flow table's callbacks, the keeper's questions), once the
        capture is read: without these cycles the dispatcher, its flow table, its decoders and the keeper's own
        records are freed as soon as the caller lets go of them. With them, a capture's whole analysis was garbage
        for the cyclic collector: 112k objects of the 200k gateway capture; on the 1M capture a 180 ms collection
        when ``analyze`` was done, and a capture's garbage still held while the next one was read."""
        t = self.table
        t.on_sweep = t.on_control = t.on_icmp = t.on_chunk = t.on_gap = t.on_datagram = t.on_finish = None
        keeper = self.keeper
        if isinstance(keeper, EventKeeper):
            keeper.endpoints = lambda fid: None  # the keeper's own default: no live flow to ask about
        elif keeper is not None:
            keeper.stream_of = lambda fid: (None, None)

    def _swept(self) -> None:
        """After the flow table's idle sweep: the keeper releases what finished, and every ``TRIM_EVERY_SWEEPS``
        sweeps the heap gives back what was freed (``analyzer.heap``)."""
        if self.keeper_sweep is not None:
            self.keeper_sweep()
        self.sweeps += 1
        if self.sweeps % TRIM_EVERY_SWEEPS == 0:
            trim_heap()

    # what the keeper asks about a live flow

    def _stream_of(self, fid: int) -> Stream:
        flow = self.table.by_id.get(fid)
        if flow is None:
            return None, None
        return flow.stream, stream_filter_of(flow.proto_name, flow.stream)

    def _endpoints(self, fid: int) -> tuple[str, int, str, int] | None:
        flow = self.table.by_id.get(fid)
        if flow is None:
            return None
        c, s = flow.client, flow.server
        return c.address, c.port, s.address, s.port

    def _failed(self, fid: int, decoder: StreamDecoder, e: DecodeError, frame: int, ts: int) -> None:
        """``decoder`` raised ``e``: it is dropped, and an anomaly says where the connection stopped being decoded."""
        self.decoders[fid] = None
        flow = self.table.by_id.get(fid)
        if flow is not None:
            _no_sink(flow)
        where = f" at stream offset {e.offset}" if e.offset is not None else ""
        self.emit(
            DecodeAnomaly(
                ts_ns=ts,
                frame=frame,
                flow_id=fid,
                decoder=decoder.name,
                name=f"{decoder.name}.parse_error",
                detail=f"{e}{where}; the rest of this connection is not decoded",
            )
        )

    def chunk(self, c: StreamChunk) -> None:
        fid = c.flow_id
        decoder = self.decoders.get(fid, _UNSEEN)
        if decoder is _UNSEEN:
            flow = self.table.by_id[fid]
            opened = "s" in flow.history.lower()
            decoder = self.stream_decoder(fid, c.data, c.direction, *flow.ports, self.keys, opened=opened)
            self.decoders[fid] = decoder
            if decoder is None:
                _no_sink(flow)
            elif _skipping(decoder):
                window = decoder.skip_window()
                if window is not None:
                    flow.skip_until = window
        if decoder is not None:
            try:
                events = decoder.feed(c)
            except DecodeError as e:
                self._failed(fid, decoder, e, c.at_frame, c.ts_ns)
                return
            if events:
                self.emit_all(events)

    def gap(self, g: StreamGap) -> None:
        decoder = self.decoders.get(g.flow_id)
        if decoder is not None and decoder is not _UNSEEN:
            try:
                self.emit_all(decoder.gap(g))
            except DecodeError as e:
                self._failed(g.flow_id, decoder, e, g.frame, g.ts_ns)

    def datagram(self, flow: Flow, d: int, payload: bytes, frame: int, ts: int) -> None:
        if self.is_dns_datagram(*flow.ports):
            self.emit_all(self.dns.datagram(flow.id, d, payload, frame, ts))

    def control(self, flow: Flow, d: int, flags: int, frame: int, ts: int) -> None:
        ends = (str(flow.client), str(flow.server))
        payload = (flow.stream_bytes(0), flow.stream_bytes(1))
        for bit, cls in ((SYN, TcpSynAck if flags & ACK else TcpSyn), (FIN, TcpFin), (RST, TcpRst)):
            if not flags & bit:
                continue
            attempt = 1
            if bit == SYN:
                sent = self.syns.setdefault(flow.id, [0, 0])
                sent[d] += 1
                attempt = sent[d]
            self.emit(
                cls(
                    ts_ns=ts,
                    frame=frame,
                    flow_id=flow.id,
                    direction=d,
                    src=ends[d],
                    dst=ends[1 - d],
                    attempt=attempt,
                    payload=payload,
                )
            )

    def icmp(self, flow: Flow, d: int, frame: int, ts: int, detail: str, unreachable: bool) -> None:
        self.emit(
            IcmpError(ts_ns=ts, frame=frame, flow_id=flow.id, direction=d, detail=detail, unreachable=unreachable)
        )

    def finish(self, flow: Flow) -> None:
        # the flow gets no more callbacks: its decoder and SYN counts go (a SYN flood has a million flows)
        decoder = self.decoders.pop(flow.id, None)
        self.syns.pop(flow.id, None)
        if decoder is not None and decoder is not _UNSEEN:
            if flow.skip_until is not NO_SKIP:  # the decoder shared its skip window (``chunk``)
                for d, half in enumerate(flow.halves):  # type: ignore[arg-type]
                    decoder.passed_over(d, half.nxt)  # segments since its last chunk may have been passed over
            try:
                self.emit_all(decoder.close(flow.last_frame, flow.last_ns))
            except DecodeError as e:
                self._failed(flow.id, decoder, e, flow.last_frame, flow.last_ns)
        info = _flow_info(flow)
        self.emit(
            FlowEnd(
                ts_ns=flow.last_ns,
                frame=flow.last_frame,
                flow_id=flow.id,
                proto=info.proto,
                client=info.client,
                server=info.server,
                state=info.state,
                history=flow.history,
                packets=(flow.packets[0], flow.packets[1]),
                payload_bytes=(flow.payload_bytes[0], flow.payload_bytes[1]),
                anomalies=tuple((a.name, a.count, a.frame) for a in flow.anomalies),
            )
        )
        if self.keeper is not None:
            self.keeper.finish(info)


def _keeper_sinks(
    keeper: EventKeeper | EventStream, tally: TlsTally
) -> tuple[Callable[[Event], None], Callable[[Iterable[Event]], None]]:
    """``_Dispatch.emit`` and ``emit_all`` with a keeper: every event to it, the TLS ones to ``tally`` too (every
    event passes here: the two methods are looked up once)."""
    add, count = keeper.add, tally.add

    def emit(e: Event) -> None:
        if e.layer == "tls":
            count(e)
        add(e)

    def emit_all(events: Iterable[Event]) -> None:
        for e in events:
            if e.layer == "tls":
                count(e)
            add(e)

    return emit, emit_all


def _no_sink(flow: Flow) -> None:
    """``flow``'s bytes go to no decoder (none fits its first bytes, or it failed, for good): its directions
    deliver no chunk any more, so the flow table arms its in-order segments to be passed over like those in a skip
    window (``FlowTable._arm``): an unknown protocol, or the rest of a connection that stopped being decoded, costs
    the flow table and its counters, not a chunk and a call per segment."""
    for half in flow.halves or ():
        half.deliver = None  # type: ignore[union-attr]


_SKIPPING: dict[type, bool] = {}  # per decoder class: whether it is a ``SkippingDecoder``


def _skipping(decoder: StreamDecoder) -> bool:
    """``isinstance(decoder, SkippingDecoder)``, asked once per class (a runtime protocol check looks up each of
    its methods every time)."""
    cls = type(decoder)
    known = _SKIPPING.get(cls)
    if known is None:
        known = _SKIPPING[cls] = isinstance(decoder, SkippingDecoder)
    return known


_UNSEEN: Any = object()


def build_timeline(
    path: str | Path, keylog_files: Sequence[str] = (), keeper: EventKeeper | EventStream | None = None
) -> TimelineResult:
    """Read ``path`` once: flows, decoders, and one timeline of every event; raises ``CaptureError`` (and
    ``OSError`` for an unreadable key log).

    TLS is decrypted with the key logs in ``keylog_files`` and the capture's own Decryption Secrets Blocks; what
    the key logs lacked or got wrong becomes capture warnings.

    With a ``keeper`` (``analyze``) the timeline holds what it keeps (long connections thinned, background flows
    released: memory follows the chargers, not the packets) and ``flows`` is empty."""
    from analyzer.tls.keylog import KeyLog
    from analyzer.tls.notes import keylog_warnings

    keys = KeyLog.from_files(keylog_files)
    dispatch = _Dispatch(keys, keeper)
    result = read_capture(path, dispatch)
    cap = result.capture
    end_ns = cap.last_ns or 0
    if keeper is None:
        events, flows = dispatch.events, {f.id: _flow_info(f) for f in result.flows}
    elif isinstance(keeper, EventKeeper):
        events, flows = keeper.events(), keeper.flows
        cap.warnings.extend(keeper_warnings(keeper))
    else:  # a stream: everything was handed on
        keeper.close()
        events, flows = [], {}
    cap.warnings.extend(keylog_warnings(keys, events if keeper is None else dispatch.tally, bool(keylog_files)))
    timeline = Timeline.build(events, flows, cap.first_ns or 0, end_ns, cap.packets)
    if isinstance(keeper, EventKeeper):
        timeline.dropped = {fid: dict(c) for fid, c in keeper.dropped.items()}
        timeline.dropped_clock = keeper.dropped_clock
        timeline.released = keeper.released.clients
    dispatch.unlink()
    return TimelineResult(cap, result.flows, timeline, result.orphan_icmp)


def read_capture(path: str | Path, dispatch: _Dispatch, part: Partition | None = None) -> FlowsResult:
    """Read ``path`` through ``dispatch``'s flow table and decoders, to the DNS lookups left unanswered at the end;
    ``part``: only this partition's packets (``analyze --workers``)."""
    with collector_thresholds(GC_READING_THRESHOLDS):
        result = rebuild_flows(path, table=dispatch.table, keys=dispatch.keys, part=part)
        _age_survivors()
    cap = result.capture
    dispatch.emit_all(dispatch.dns.close(cap.packets, cap.last_ns or 0))
    return result


def _age_survivors() -> None:
    """What the reading leaves alive (the keeper's events, the flows' summaries: alive until the reports) goes to
    the collector's oldest generation unwalked (``gc.freeze`` then ``gc.unfreeze``), before the thresholds drop back
    from ``GC_READING_THRESHOLDS``: as a young generation it was walked for nothing when they did (measured: 0.32 s
    of the 1M gateway capture's job with one process; 0.14 s in each process at the end of a partition of a
    1,200-charger capture). Cyclic garbage among it is still found by
    the oldest generation's collections. Not while something else holds objects frozen (``Partitions.collect``
    freezes the parts it takes in): unfreezing would let go of them too."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


@contextmanager
def collector_thresholds(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> Iterator[None]:
    """The garbage collector's thresholds for analysing a capture (``budgets.GC_THRESHOLDS``; while reading it,
    ``GC_READING_THRESHOLDS``), restored after."""
    before = gc.get_threshold()
    gc.set_threshold(*thresholds)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def keeper_warnings(keeper: EventKeeper) -> list[str]:
    """What the keeper's budgets gave up, one sentence each (``analyzer.budgets``)."""
    r = keeper.released
    out = []
    if r.flows:
        out.append(
            f"{r.flows:,} finished background connections and lookups ({r.events:,} events) were summarised and "
            f"released to keep memory flat: none carried OCPP, reached a CSMS endpoint or asked for a CSMS name "
            f"when it was judged (budget: {PENDING_FLOWS:,} finished flows waiting)"
        )
    if r.thinned_flows:
        top = sorted(r.thinned.items(), key=lambda kn: (-kn[1], kn[0]))[:4]  # ties by name: the same however read
        kinds = ", ".join(f"{k} {n:,}" for k, n in top)
        out.append(
            f"{r.thinned_flows:,} long connection(s) had the routine middle of their traffic dropped "
            f"({sum(r.thinned.values()):,} events: {kinds}): complete clean OCPP exchanges and answered pings "
            f"between their first and last {FLOW_EVENTS_EDGE} events (budget: {FLOW_EVENTS_THIN:,} events per "
            "connection); every unanswered CALL, error, close and anomaly is kept"
        )
    if r.other_names or r.other_servers:
        out.append(
            f"{r.other_names:,} released lookups and {r.other_servers:,} released connections went to names and "
            f"servers past the first {KEEPER_NAMES:,} distinct ones: they were counted, not named (budget "
            "KEEPER_NAMES); the warning about a CSMS released too early cannot name them"
        )
    late = keeper.late_csms()
    if late:
        what = ", ".join(f"{w} ({n:,})" for w, n in late[:5])
        out.append(
            f"connections or lookups released before the capture showed them to be the CSMS's: {what}; run again "
            "with --csms HOST[:PORT] to keep them"
        )
    return out


def _flow_info(f: Flow) -> FlowInfo:
    c, s = f.client, f.server
    return FlowInfo(
        id=f.id,
        proto=f.proto_name,
        client_addr=c.address,
        client_port=c.port,
        server_addr=s.address,
        server_port=s.port,
        first_frame=f.first_frame,
        last_frame=f.last_frame,
        first_ns=f.first_ns,
        last_ns=f.last_ns,
        state=f.state,
        history=f.history,
        stream=f.stream,
    )


@dataclass(slots=True)
class Analysis:
    """Everything a report shows about one capture."""

    capture: CaptureInfo
    sha256: str | None
    timeline: Timeline
    results: list[ChargerResult]
    settings: Settings
    others: list[Other] = field(default_factory=list)  # traffic that is not a charger's (ISO 15118, relays...)
    internal_error: BaseException | None = None  # with ``salvage``: the bug that stopped the diagnosis


def analyze(
    path: str | Path,
    settings: Settings | None = None,
    salvage: bool = False,
    workers: int = 1,
    sha256: str | None = None,
) -> Analysis:
    """Read, decode and diagnose one capture; raises ``CaptureError`` when it cannot be read at all.

    With ``salvage`` (``ghostcap analyze``), an unexpected exception in the diagnosis (a bug) still gives the
    analysis of what was read, without chargers, its ``internal_error`` set and a capture warning saying so.
    ``workers`` > 1 reads a capture file with that many processes (``analyzer.parallel``; standard input and
    pipes are read by one, with a capture warning saying so). ``sha256``: the file's digest when the caller has
    it already (``ghostcap triage`` hashed every capture to skip those it stored before), else it is computed while
    the capture is read (``sha256_meanwhile``), or, a big file read by several processes, once the first of them
    has read its part (``Hashing.go``)."""
    from analyzer.diagnosis.runner import diagnose_all
    from analyzer.errors import debugging, internal_error_line

    settings = settings or Settings()
    parts = None
    alone = ""  # why a capture asked to be read by several processes is read by one
    # a big file read by several processes is hashed once one of them has read its part (``Hashing.go``): a core
    # is free from then on, where hashing beside them took its CPU from the reading (started before they are
    # forked, so that they can tell it)
    several = workers > 1 and regular(path)
    hashing = _sha256_process(path, deferred=True) if several and sha256 is None and _big(path) else None
    if several:
        from analyzer.parallel import Partitions

        parts = Partitions(path, settings, workers, on_read=None if hashing is None else hashing.go)
        try:
            parts.start()  # before the digest's thread, if any: the processes are forked
        except OSError as e:  # no process to be had (memory, process limits): read here, with a warning
            parts = None
            alone = f"no process could be started ({e.strerror or e})"
    elif workers > 1:
        alone = "--workers needs a capture file (standard input and pipes have one reader)"
    if hashing is not None and parts is None:
        hashing.go()  # read by this process alone: the other core is free now
    digest = hashing or _digest(path, sha256)
    if parts is not None:
        built = parts.collect()
    else:
        built = build_timeline(path, settings.keylog_files, EventKeeper(settings.csms))
        if alone:
            built.capture.warnings.append(f"read by one process, not {workers}: {alone}")
    try:
        results, others = diagnose_all(built.timeline, settings)
    except Exception as e:
        if not salvage or debugging():
            raise
        built.capture.warnings.append(internal_error_line(e, "diagnosis") + ": no verdict for this capture")
        return Analysis(built.capture, digest(), built.timeline, [], settings, [], internal_error=e)
    return Analysis(built.capture, digest(), built.timeline, results, settings, others)


def _digest(path: str | Path, known: str | None) -> Callable[[], str | None]:
    """The capture's sha256 when it is ready: ``known``, or ``sha256_meanwhile(path)``."""
    return (lambda: known) if known is not None else sha256_meanwhile(path)


def sha256_meanwhile(path: str | Path) -> Callable[[], str | None]:
    """``file_sha256(path)`` computed while the caller reads the capture; the returned function waits for it and
    returns it, or raises what it raised. Only a regular file is read twice: a pipe has one reader.

    A file of ``HASH_PROCESS_BYTES`` or more is hashed by a process of its own (``_sha256_process``), a smaller one
    in a thread. hashlib and file reads release the GIL, but a thread takes it back after each block, beside a
    reading that holds it: with ``--workers 2`` on the 1M gateway capture the parent's partition (the thread's)
    ended 0.5 to 1 s after the other, with the same work to within 0.2 s when read in turn; with the process they
    end within 0.25 s of each other (measured). A process's start, about 10 ms, is more than a small file's
    digest."""
    if not regular(path):
        return lambda: file_sha256(path)
    if _big(path):
        waiting = _sha256_process(path)
        if waiting is not None:
            return waiting
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(file_sha256(path))
        except BaseException as e:  # noqa: BLE001 - handed to the caller, raised there
            result.append(e)

    worker = threading.Thread(target=run, name="ghostcap-sha256", daemon=True)
    worker.start()

    def wait() -> str | None:
        worker.join()
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    return wait


def _big(path: str | Path) -> bool:
    """A file hashed by a process of its own (``HASH_PROCESS_BYTES``)."""
    try:
        return os.path.getsize(path) >= HASH_PROCESS_BYTES
    except OSError:
        return False


# what ``_sha256_process`` runs: ``digest.digest_of`` (argv: the file, this process's id, the directory holding the
# ``analyzer`` package, and ``deferred`` to wait for a byte or the end of standard input first, at a lower priority:
# ``HASH_NICE``); the digest on standard output, or why the file could not be read on standard error
_HASH_PROGRAM = f"""
import os, sys
sys.path.insert(0, sys.argv[3])
if sys.argv[4:] == ["deferred"]:
    os.nice({HASH_NICE})
    os.read(0, 1)
from analyzer.digest import digest_of
try:
    print(digest_of(sys.argv[1], int(sys.argv[2])))
except OSError as e:
    sys.exit(e.strerror or str(e))
"""
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def _sha256_process(path: str | Path, deferred: bool = False) -> Hashing | None:
    """The file's sha256 computed by this Python in a process of its own (isolated, no site packages: it starts in
    about 10 ms), beside the reading and without its GIL: a ``Hashing`` to wait for it, or None when no process
    can be started (the caller hashes in a thread). ``deferred``: the process starts hashing only when told
    (``Hashing.go``, from this process or one forked from it), or when waited for."""
    if not sys.executable:
        return None
    argv = [sys.executable, "-I", "-S", "-c", _HASH_PROGRAM, os.fspath(path), str(os.getpid()), _PACKAGE_ROOT]
    try:
        proc = subprocess.Popen(
            [*argv, "deferred"] if deferred else argv,
            stdin=subprocess.PIPE if deferred else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError:
        return None
    hashing = Hashing(proc)
    weakref.finalize(hashing, _end_hashing, proc)
    return hashing


class Hashing:
    """A file's sha256 computed by a process (``_sha256_process``): call it to wait for the digest (it raises
    ``OSError`` with the reason the file could not be read)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def go(self) -> None:
        """Let a deferred process start hashing (again: nothing). Called in a process forked from this one too (a
        partition's, which read its part first), where it must not raise: a process that ended is left to
        ``__call__`` to report."""
        if self.proc.stdin is not None:
            with suppress(OSError, ValueError):  # it ended (EPIPE), or its pipe is closed here
                os.write(self.proc.stdin.fileno(), b"g")

    def __call__(self) -> str | None:
        self.go()
        out, err = self.proc.communicate()
        if self.proc.returncode == 0:
            return out.decode("ascii").strip()
        lines = err.decode("utf-8", "replace").strip().splitlines()
        if self.proc.returncode == 1 and lines:
            raise OSError(lines[-1])
        raise OSError(f"hashing it ended with status {self.proc.returncode}")


def _end_hashing(proc: subprocess.Popen[bytes]) -> None:
    """A digest nobody waits for any more (the capture could not be read): its process is ended and reaped."""
    if proc.returncode is None:
        proc.kill()
        proc.communicate()
