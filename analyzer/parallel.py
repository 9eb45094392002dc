"""``analyze --workers N``: one capture read by N processes, each taking in the connections of its share of the
chargers, merged into the analysis one process gives.

A charger's traffic never needs another charger's. Every packet belongs to the partition of its client's address:
the side ``server_is_dst`` takes for the client from the ports (the lower address when the ports are equal or
there are none; an ICMP error goes with the datagram it quotes). So a charger's lookups, connections and sessions
are all read by one process. Each process reads the whole file, so frame numbers, timestamps, the reader's own
warnings and the idle sweeps are those of the whole capture, but it takes in only its own packets: the flow table,
reassembly, decoders and keeper, the per-packet cost, are shared out.

The parent merges what the processes kept. Flows and Wireshark's stream numbers are numbered again in the order of
the whole capture (each process records the frame that made each of its flows and numbers). The keeper's counts
and what it learnt of the CSMS, and the key-log tallies, are added up. The diagnosis and the reports then run once,
on the merged timeline.

What can differ from one process on a big capture: a partition's keeper judges finished background flows with what
its own chargers showed of the CSMS, and the budgets (live flows, remembered conversations, names) hold per process.
"""

from __future__ import annotations

import functools
import gc
import multiprocessing as mp
import os
import signal
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NoReturn
from zlib import crc32

from analyzer import budgets, progress
from analyzer.capture.ip import quoted_datagram
from analyzer.config import Settings
from analyzer.diagnosis.clock import Offsets
from analyzer.engine import (
    CaptureInfo,
    TimelineResult,
    _Dispatch,
    keeper_warnings,
    read_capture,
    table_warnings,
)
from analyzer.errors import AnalyzerError
from analyzer.events.base import Event, EventList
from analyzer.flows.table import ICMP, ICMP_ERRORS, ICMPV6, SERVICE_PORTS, TCP, UDP, server_is_dst
from analyzer.heap import trim_heap
from analyzer.lifeline import die_with_parent
from analyzer.timeline import FlowInfo, Timeline
from analyzer.timeline.keeper import EventKeeper, Released
from analyzer.tls.notes import TlsTally, keylog_warnings


def client_of(proto: int, src: bytes, dst: bytes, l4: bytes) -> bytes:
    """The address a packet's partition follows: its connection's client, by the ports (the same for both
    directions of a connection)."""
    if (proto == TCP or proto == UDP) and len(l4) >= 4:
        sport, dport = l4[0] << 8 | l4[1], l4[2] << 8 | l4[3]
        if sport != dport:
            return src if server_is_dst(sport, dport) else dst
    elif (proto == ICMP or proto == ICMPV6) and len(l4) >= 8 and l4[0] in ICMP_ERRORS[proto]:
        quoted = quoted_datagram(l4[8:])
        if quoted is not None and quoted[0] in (TCP, UDP):
            qproto, qsrc, qdst, qsport, qdport = quoted
            return client_of(qproto, qsrc, qdst, bytes((qsport >> 8, qsport & 255, qdport >> 8, qdport & 255)))
    return min(src, dst)


@functools.cache
def _service_ports() -> bytes:
    """A byte per port, 1 for those of ``SERVICE_PORTS`` (``server_is_dst``'s)."""
    table = bytearray(65536)
    for port in SERVICE_PORTS:
        table[port] = 1
    return bytes(table)


class Owner:
    """Which packets are partition ``k``'s of ``n`` (``capture.reader.Partition``): those whose ``client_of``
    hashes (crc32) to ``k``. TCP and UDP conversations are remembered (``mine``, cleared when it holds
    ``budgets.PARTITION_CONVERSATIONS``): a cache, since the decision depends on the key alone."""

    def __init__(self, k: int, n: int) -> None:
        self.k, self.n = k, n
        self.mine: dict[bytes, bool] = {}
        # the rule, for the compiled reader to decide a TCP or UDP packet itself, without a key object, a dict or
        # ``learn`` (every packet of the capture passes there in each partition's process): ``SERVICE_PORTS`` as a
        # byte per port, k, n
        self.rule = (_service_ports(), k, n)

    def learn(self, key: bytes) -> bool:
        """``key``: a TCP or UDP packet's IPv4 src + dst + ports."""
        return self._remember(key, TCP, key[:4], key[4:8], key[8:])

    def __call__(self, proto: int, src: bytes, dst: bytes, l4: bytes) -> bool:
        if proto == TCP or proto == UDP:
            key = src + dst + l4[:4]
            taken = self.mine.get(key)
            return self._remember(key, proto, src, dst, l4) if taken is None else taken
        return crc32(client_of(proto, src, dst, l4)) % self.n == self.k

    def _remember(self, key: bytes, proto: int, src: bytes, dst: bytes, l4: bytes) -> bool:
        """Whose ``key``'s conversation is, remembered for both its directions (``client_of`` picks the same
        client either way round)."""
        mine = self.mine
        if len(mine) >= budgets.PARTITION_CONVERSATIONS:
            mine.clear()
        taken = mine[key] = crc32(client_of(proto, src, dst, l4)) % self.n == self.k
        if len(l4) >= 4:
            mine[dst + src + l4[2:4] + l4[:2]] = taken
        return taken


@dataclass(slots=True)
class Part:
    """What one process kept of its partition (picklable), with what the merge needs to number it again."""

    capture: CaptureInfo  # its warnings: the reader's only
    counts: dict[str, Any]  # the flow table's, for ``table_warnings``
    events: list[Event]
    flows: dict[int, FlowInfo]
    dropped: dict[int | None, Counter[str]]
    dropped_clock: dict[int, dict[str, Offsets]]
    released: Released
    csms_ends: set[tuple[str, int]]
    csms_names: set[str]
    resolved: dict[str, set[str]]
    tally: TlsTally
    keys: tuple[list[str], int, bool, int, int]  # the key log's problem lines, sessions, whether any secret was
    # used, sessions whose secrets came after their key setup, sessions not remembered for that (the budget)
    made_at: array[int]
    finished_at: array[int]
    stream_firsts: dict[int, array[int]]
    orphan_icmp: list[tuple[int, str]]

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickled with its events in one piece (``EventList``: tens of thousands of events pickle and unpickle in
        a quarter less time); the hand-over to the parent sends them apart, in pieces (``_pieces``)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["events"] = EventList(self.events)
        return _part, (values,)


def _part(values: dict[str, Any]) -> Part:
    values["events"] = values["events"].events()
    return Part(**values)


def read_part(path: str | Path, settings: Settings, k: int, n: int) -> Part:
    """Read partition ``k`` of ``n`` of ``path`` (raises what ``build_timeline`` raises)."""
    from analyzer.tls.keylog import KeyLog

    keys = KeyLog.from_files(settings.keylog_files)
    keeper = EventKeeper(settings.csms)
    dispatch = _Dispatch(keys, keeper)
    table = dispatch.table
    table.record_order()
    result = read_capture(path, dispatch, Owner(k, n))
    cap = result.capture
    ours = len(table_warnings(table))
    cap.warnings = cap.warnings[: len(cap.warnings) - ours]
    counts = {
        "truncated_headers": table.truncated_headers,
        "released_early": table.released_early,
        "forgotten": table.streams.forgotten,
        "forgot_at": table.streams.forgot_at,
        "limit_gaps": table.pool.limit_gaps,
        "limit_gap_bytes": table.pool.limit_gap_bytes,
    }
    dispatch.unlink()
    return Part(
        capture=cap,
        counts=counts,
        events=keeper.events(),
        flows=keeper.flows,
        dropped=keeper.dropped,
        dropped_clock=keeper.dropped_clock,
        released=keeper.released,
        csms_ends=keeper.csms_ends,
        csms_names=keeper.csms_names,
        resolved=dict(keeper.resolved),
        tally=dispatch.tally,
        keys=(keys.problem_lines(), len(keys), bool(keys.used), keys.late(), keys.missed_dropped),
        made_at=table.made_at,  # type: ignore[arg-type]
        finished_at=table.finished_at,  # type: ignore[arg-type]
        stream_firsts=table.streams.firsts,  # type: ignore[arg-type]
        orphan_icmp=result.orphan_icmp,
    )


# -- the processes --------------------------------------------------------------------------------------------


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a part is pickled or unpickled: its tens of thousands of events make no
    cycles, and the collector would walk them again and again as they are made (measured, 66k events of the 1M
    gateway capture: unpickling 0.84 s with it, 0.29 s without; pickling 0.51 s and 0.32 s)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class WorkerDied(AnalyzerError):
    """A partition's process ended without a result."""


PART_EXIT_S = 5.0  # how long the parent waits for a process that sent its part to end before giving the next turn
READY = b"ready"  # a process has its part: it sends this, then waits for its turn (``GO``) to send the part
GO = b"go"


def _work(
    conn: Connection,
    turn: Connection,
    path: str,
    settings: Settings,
    k: int,
    n: int,
    parent: int,
    on_read: Callable[[], None] | None,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it ends the processes
    die_with_parent(parent)  # a killed parent does not leave its partitions reading
    progress.stop_here()  # one progress line: the parent's (it reads the first partition, and every packet too)
    try:
        out: object = read_part(path, settings, k, n)
    except BaseException as e:  # noqa: BLE001 - handed to the parent, raised there
        out = e
    if on_read is not None:
        on_read()
    trim_heap()  # before the hand-over, the peak of memory: what reading freed goes back to the system
    try:
        conn.send_bytes(READY)
        turn.recv_bytes()  # GO: the part before this one is in the parent, and its process is ending
        with paused_gc():
            for data in _pieces(out):
                conn.send_bytes(data)
        conn.close()
    except (OSError, EOFError):
        os._exit(1)  # the parent is gone or stopped reading: nobody to tell


def _pieces(out: object) -> Iterator[bytes]:
    """What a process sends the parent, pickled: ``(pieces, part)`` with the part's events left out, then its events
    in ``pieces`` pieces (``EventList``s of ``budgets.PART_PIECE_EVENTS``), each pickled once the parent is taking
    the one before: the parent unpickles a piece while the next is pickled (on the 1M gateway capture the hand-over
    of 66k events was 0.2 s of pickling, then 0.17 s of unpickling). An exception is ``(0, exception)``; what does
    not pickle is sent as a ``RuntimeError`` saying so, in place of the part or of the piece, and ends the sending."""

    def unsent(e: Exception) -> RuntimeError:
        return RuntimeError(f"{type(out).__name__}: {out}; and it could not be sent: {e}")

    events = out.events if isinstance(out, Part) else []
    starts = range(0, len(events), budgets.PART_PIECE_EVENTS)
    try:
        head = (len(starts), replace(out, events=[])) if isinstance(out, Part) else (0, out)
        data = ForkingPickler.dumps(head)
    except Exception as e:  # noqa: BLE001 - handed to the parent, raised there
        yield ForkingPickler.dumps((0, unsent(e)))
        return
    yield data
    for i in starts:
        try:
            data = ForkingPickler.dumps(EventList(events[i : i + budgets.PART_PIECE_EVENTS]))
        except Exception as e:  # noqa: BLE001
            yield ForkingPickler.dumps(unsent(e))
            return
        yield data


class Partitions:
    """``start()`` the processes, then ``collect()`` the parts merged (the caller may work in between).

    The parent reads the first partition itself while ``n - 1`` processes read the others (its part is neither
    pickled nor sent: on the 1M gateway capture that was 0.35 s of CPU, and a process's memory). The processes'
    parts come to the parent one at a time, in the order they finish: a process that has its part says so
    (``READY``) and is given its turn (``GO``) once the parent has read its own and the part before has arrived.
    So one process at a time holds a part and its pickle, and it ends before the next makes its own: on the 1M
    gateway capture the processes often finish within a second of each other, and sending at once made the
    hand-over the peak of memory (so did pickling each part as soon as it was read, measured: the pickler's memo
    and the pickle beside the objects, 82 + 115 → 118 + 119 MiB at the peak)."""

    def __init__(self, path: str | Path, settings: Settings, n: int, on_read: Callable[[], None] | None = None) -> None:
        self.path, self.settings, self.n = str(path), settings, n
        self.on_read = on_read  # called in whichever process has read its part, each time (``engine.Hashing.go``)
        self.procs: dict[int, tuple[BaseProcess, Connection, Connection]] = {}  # by partition (1 to n - 1)

    def start(self) -> None:
        """Fork the processes of partitions 1 to ``n - 1``; if one cannot be started (no memory, no process
        left), those started are ended."""
        ctx = mp.get_context("fork")  # the engine is imported already; nothing to set up again
        try:
            for k in range(1, self.n):
                parent, child = ctx.Pipe(duplex=False)
                their_turn, turn = ctx.Pipe(duplex=False)
                proc = ctx.Process(
                    target=_work,
                    args=(child, their_turn, self.path, self.settings, k, self.n, os.getpid(), self.on_read),
                    name=f"ghostcap-part-{k}",
                )
                proc.start()
                child.close()
                their_turn.close()
                self.procs[k] = (proc, parent, turn)
        except BaseException:
            self.stop()
            raise

    def collect(self) -> TimelineResult:
        """Read the first partition here, then take in the processes' parts; merged."""
        parts: dict[int, Part] = {}
        frozen = gc.get_freeze_count()
        try:
            self._take_in(parts)
        finally:
            self.stop()
            if not frozen:
                gc.unfreeze()  # the parts frozen as they came in go to the collector's oldest generation
        return merge([parts[k] for k in range(self.n)], self.settings)

    def _take_in(self, parts: dict[int, Part]) -> None:
        """Read the first partition, then receive the processes' parts, into ``parts`` by partition."""
        progress.found_hidden()  # this process sees only its share of the chargers
        parts[0] = read_part(self.path, self.settings, 0, self.n)
        if self.on_read is not None:
            self.on_read()
        waiting = {conn: k for k, (_, conn, _) in self.procs.items()}
        ready: list[int] = []  # processes with a part, waiting for their turn
        sending: int | None = None
        while waiting:
            if sending is None and ready:
                sending = ready.pop(0)
                self.procs[sending][2].send_bytes(GO)
            for conn in wait(list(waiting)):
                k = waiting[conn]  # type: ignore[index]
                if k != sending:
                    if self._receive(k, conn) != READY:
                        self._died(k)
                    ready.append(k)
                    continue
                del waiting[conn]  # type: ignore[arg-type]
                sending = None
                with paused_gc():
                    got = self._take(k, conn)
                    # long-lived until the reports are written, with no cycles: out of the young generations
                    # now, so that no young collection walks it on its way to the oldest (``collect``): one
                    # took 0.16 s of the 1M gateway capture's hand-over, measured
                    gc.freeze()
                if isinstance(got, BaseException):
                    raise got
                parts[k] = got

    def _take(self, k: int, conn: Connection) -> Part | BaseException:
        """Process ``k``'s part, piece by piece (``_pieces``), or the exception it sent; the process has ended (its
        memory is given back before the next part is made), or had ``PART_EXIT_S`` to."""
        pieces, got = ForkingPickler.loads(self._receive(k, conn))
        for _ in range(pieces):
            piece = ForkingPickler.loads(self._receive(k, conn))
            if isinstance(piece, BaseException):
                return piece
            got.events += piece.events()
        self.procs[k][0].join(PART_EXIT_S)
        return got

    def _receive(self, k: int, conn: Connection) -> bytes:
        """Process ``k``'s next message (its ``READY``, or a pickled piece of its part: ``_pieces``)."""
        try:
            return conn.recv_bytes()
        except (EOFError, OSError):
            self._died(k)

    def _died(self, k: int) -> NoReturn:
        proc = self.procs[k][0]
        proc.join(5)
        raise WorkerDied(
            f"the process reading part {k + 1} of {self.n} ended without a result (exit status "
            f"{proc.exitcode}); try again with fewer --workers"
        ) from None

    def stop(self) -> None:
        for proc, conn, turn in self.procs.values():
            if proc.is_alive():
                proc.kill()
            proc.join()
            conn.close()
            turn.close()
        self.procs = {}


# -- the merge ------------------------------------------------------------------------------------------------


def renumber(firsts: list[array[int]]) -> list[list[int]]:
    """Per part: its numbers (flows or streams, 0, 1, ... in the order it made them, ``firsts[k][i]`` the frame
    of number ``i``) → numbers in the order of the whole capture (by frame, then part, then its own order).

    One stable sort of the parts' frames end to end keeps ties in part, then own, order (each part's frames are
    already in order, so it merges runs: 26 ms for 120k flows, where numpy took 65 ms to import)."""
    frames = array("q")
    for f in firsts:
        frames.extend(f)
    numbers = [0] * len(frames)
    for rank, i in enumerate(sorted(range(len(frames)), key=frames.__getitem__)):
        numbers[i] = rank
    out, at = [], 0
    for f in firsts:
        out.append(numbers[at : at + len(f)])
        at += len(f)
    return out


def merge(parts: list[Part], settings: Settings) -> TimelineResult:
    """One timeline of the parts, as one process would have built it."""
    flow_ids = renumber([p.made_at for p in parts])
    streams = {proto: renumber([p.stream_firsts[proto] for p in parts]) for proto in (TCP, UDP)}
    stream_of = {"tcp": streams[TCP], "udp": streams[UDP]}

    events: list[Event] = []
    flows: list[tuple[int, int, FlowInfo]] = []
    dropped: dict[int | None, dict[str, int]] = {}
    dropped_clock: dict[int, dict[str, Offsets]] = {}
    for k, p in enumerate(parts):
        ids = flow_ids[k]
        for e in p.events:
            if e.flow_id is not None:
                object.__setattr__(e, "flow_id", ids[e.flow_id])  # a copy from the pipe, ours to change
        events.extend(p.events)
        for fid, info in p.flows.items():
            numbers = stream_of.get(info.proto)
            stream = numbers[k][info.stream] if numbers is not None and info.stream is not None else info.stream
            object.__setattr__(info, "id", ids[fid])  # the part's own, like its events: renumbered in place
            object.__setattr__(info, "stream", stream)
            flows.append((p.finished_at[fid], ids[fid], info))
        for fid, n in p.dropped.items():
            into = dropped.setdefault(None if fid is None else ids[fid], {})
            for kind, count in n.items():
                into[kind] = into.get(kind, 0) + count
        dropped_clock.update((ids[fid], sides) for fid, sides in p.dropped_clock.items())
    flows.sort(key=lambda t: (t[0], t[1]))  # one keeper takes flows in the order they finish

    first = parts[0].capture  # every process read every packet: the reader's figures and warnings are the same
    cap = replace(first, warnings=list(first.warnings))
    cap.warnings.extend(table_warnings(_table_counts(parts)))  # type: ignore[arg-type]
    cap.warnings.extend(keeper_warnings(_keeper(parts, settings)))
    cap.warnings.extend(keylog_warnings(_Keys(parts), _tally(parts, flow_ids), bool(settings.keylog_files)))
    timeline = Timeline.build(
        events, {info.id: info for _, _, info in flows}, cap.first_ns or 0, cap.last_ns or 0, cap.packets
    )
    timeline.dropped = dropped
    timeline.dropped_clock = dropped_clock
    for p in parts:
        timeline.released.merge(p.released.clients)
    orphans = sorted(o for p in parts for o in p.orphan_icmp)
    return TimelineResult(cap, [], timeline, orphans)


def _table_counts(parts: list[Part]) -> SimpleNamespace:
    """The parts' flow-table counts added up, shaped as ``table_warnings`` reads a flow table."""
    total = Counter[str]()
    for p in parts:
        total.update({k: v for k, v in p.counts.items() if k != "forgot_at"})
    forgot = [p.counts["forgot_at"] for p in parts if p.counts["forgot_at"] is not None]
    return SimpleNamespace(
        truncated_headers=total["truncated_headers"],
        released_early=total["released_early"],
        budgets=budgets.DEFAULT_BUDGETS,
        streams=SimpleNamespace(forgotten=total["forgotten"], forgot_at=min(forgot, default=None)),
        pool=SimpleNamespace(limit_gaps=total["limit_gaps"], limit_gap_bytes=total["limit_gap_bytes"]),
    )


def _keeper(parts: list[Part], settings: Settings) -> EventKeeper:
    """A keeper holding what the parts' keepers released and learnt (for ``keeper_warnings``)."""
    k = EventKeeper(settings.csms)
    r = k.released
    for p in parts:
        q = p.released
        r.flows += q.flows
        r.events += q.events
        r.thinned_flows += q.thinned_flows
        r.thinned.update(q.thinned)
        r.other_names += q.other_names
        r.other_servers += q.other_servers
        r.other_names += _add_capped(r.names, q.names)
        r.other_servers += _add_capped(r.servers, q.servers)
        k.csms_ends |= p.csms_ends
        k.csms_names |= p.csms_names
        for name, addrs in p.resolved.items():
            k.resolved.setdefault(name, set()).update(addrs)
    return k


def _add_capped(into: Counter[str], more: Counter[str]) -> int:
    """``more`` added into ``into`` while it holds fewer than ``KEEPER_NAMES`` keys; how many were not."""
    over = 0
    for key, n in more.items():
        if key in into or len(into) < budgets.KEEPER_NAMES:
            into[key] += n
        else:
            over += n
    return over


class _Keys:
    """What ``keylog_warnings`` reads of a key log, from the parts (each read every key log and secrets block)."""

    def __init__(self, parts: list[Part]) -> None:
        self.lines, self.sessions, _, _, _ = parts[0].keys
        self.used = any(p.keys[2] for p in parts)
        self._late = sum(p.keys[3] for p in parts)  # each part's sessions are its own
        self.missed_dropped = sum(p.keys[4] for p in parts)

    def problem_lines(self) -> list[str]:
        return self.lines

    def __len__(self) -> int:
        return self.sessions

    def late(self) -> int:
        return self._late


def _tally(parts: list[Part], flow_ids: list[list[int]]) -> TlsTally:
    """The parts' TLS tallies added up; the failed decryptions named are the first to finish."""
    out = TlsTally()
    failed = []
    for k, p in enumerate(parts):
        t = p.tally
        out.randoms |= t.randoms
        out.statuses.update(t.statuses)
        out.unsupported |= t.unsupported
        out.late += t.late
        for fid, detail in t.failed:
            order = (p.finished_at[fid], flow_ids[k][fid]) if fid is not None else (0, -1)
            failed.append((order, None if fid is None else flow_ids[k][fid], detail))
    failed.sort(key=lambda f: f[0])
    out.failed = [(fid, detail) for _, fid, detail in failed[: TlsTally.FAILED_NAMED + 1]]
    return out
