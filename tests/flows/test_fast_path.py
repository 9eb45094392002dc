"""``FlowTable._tcp``'s fast path (an ACK of a known flow, window open) against its general path.

The general path takes every kind of segment; the fast path is only a quicker way through it for the common one.
The reference here is ``_tcp`` compiled again from its own source with the fast path's condition made false, so
every segment goes the general way: both tables must record the same flows (counters, history, anomalies, streams,
frames) and hand out the same chunks, gaps and control callbacks, on the lab captures and on crafted sequences
(out of order, retransmitted, keep-alives, zero windows, FIN, RST, no handshake, ICMP errors quoting a segment).
"""

from __future__ import annotations

import inspect
import random
import textwrap
from pathlib import Path

import pytest

from analyzer.engine import rebuild_flows
from analyzer.events.base import StreamChunk
from analyzer.flows import table as table_mod
from analyzer.flows.reassembly import new_tuple
from analyzer.flows.table import Flow, FlowTable
from tests import pcapbuild as pb

CAPTURES = sorted((Path(__file__).resolve().parents[2] / "captures").glob("*.pcap"))
FAST_TEST = "if flags & 0x17 == 0x10 and win:"
C, S = "10.1.0.5", "10.9.0.1"


def _general_tcp():  # type: ignore[no-untyped-def]
    """``FlowTable._tcp`` with its fast path switched off (the same source, the condition made false)."""
    source = textwrap.dedent(inspect.getsource(FlowTable._tcp))
    assert source.count(FAST_TEST) == 1, "the fast path's test changed: update FAST_TEST"
    namespace: dict[str, object] = {}
    exec(compile(source.replace(FAST_TEST, "if False:"), table_mod.__file__, "exec"), vars(table_mod), namespace)
    return namespace["_tcp"]


class GeneralTable(FlowTable):
    """A flow table whose every TCP segment takes the general path."""

    _tcp = _general_tcp()


def _flow_record(flow: Flow) -> tuple[object, ...]:
    halves = tuple(h.summary() if hasattr(h, "summary") else h for h in flow.halves or ())
    return (
        flow.id,
        flow.proto,
        str(flow.client),
        str(flow.server),
        flow.first_frame,
        flow.last_frame,
        flow.first_ns,
        flow.last_ns,
        tuple(flow.packets),
        tuple(flow.payload_bytes),
        flow.history,
        flow.state,
        tuple(flow.anomalies),
        halves,
        flow.stream,
        flow.rst_first,
    )


def _record(table_cls: type[FlowTable], path: Path) -> tuple[object, ...]:
    """Everything a table hands out and keeps for one capture."""
    out: list[object] = []

    def control(flow: Flow, d: int, flags: int, frame: int, ts: int) -> None:
        out.append(("control", flow.id, d, flags, frame, ts, flow.history))

    def icmp(flow: Flow, d: int, frame: int, ts: int, detail: str, unreachable: bool) -> None:
        out.append(("icmp", flow.id, d, frame, ts, detail, unreachable))

    table = table_cls(
        on_chunk=lambda c: out.append(("chunk", *c)),
        on_gap=lambda g: out.append(("gap", *g)),
        on_datagram=lambda f, d, p, fr, ts: out.append(("udp", f.id, d, p, fr, ts)),
        on_finish=lambda f: out.append(("finish", _flow_record(f))),
        on_control=control,
        on_icmp=icmp,
    )
    res = rebuild_flows(path, table=table)
    kept = [_flow_record(f) for f in res.flows]
    counters = (table.truncated_headers, table.released_early, table.pool.limit_gaps, table.streams.next)
    return tuple(out), tuple(kept), tuple(res.orphan_icmp), counters, tuple(res.capture.warnings)


def _same(path: Path) -> None:
    fast = _record(FlowTable, path)
    general = _record(GeneralTable, path)
    assert fast == general


@pytest.mark.parametrize("capture", CAPTURES, ids=[c.name for c in CAPTURES])
def test_fast_path_equals_general_path_on_lab_captures(capture: Path) -> None:
    _same(capture)


def c2s(seq: int, ack: int, flags: int = pb.ACK, data: bytes = b"", port: int = 51000, win: int = 65535) -> bytes:
    return pb.ether(pb.ipv4(C, S, 6, pb.tcp(port, 443, seq, ack, flags, data, win)))


def s2c(seq: int, ack: int, flags: int = pb.ACK, data: bytes = b"", port: int = 51000, win: int = 65535) -> bytes:
    return pb.ether(pb.ipv4(S, C, 6, pb.tcp(443, port, seq, ack, flags, data, win)))


def _icmp_quoting(segment_frame: bytes) -> bytes:
    """An ICMP port unreachable from the server quoting the IP datagram in ``segment_frame``."""
    quoted = segment_frame[14:42]
    body = bytes((3, 3, 0, 0, 0, 0, 0, 0)) + quoted
    return pb.ether(pb.ipv4(S, C, 1, body))


def _conversation(rng: random.Random, port: int) -> list[bytes]:
    """One connection: a handshake (or none), data both ways cut into segments that are sometimes reordered,
    repeated, dropped or sent with a zero window, keep-alives, and a FIN or RST end (or none)."""
    isn_c, isn_s = rng.randrange(1 << 32), rng.randrange(1 << 32)
    m = 0xFFFFFFFF
    frames: list[bytes] = []
    if rng.random() < 0.8:
        frames += [
            c2s(isn_c, 0, pb.SYN, port=port),
            s2c(isn_s, (isn_c + 1) & m, pb.SYN | pb.ACK, port=port),
            c2s((isn_c + 1) & m, (isn_s + 1) & m, port=port),
        ]
    nc, ns = (isn_c + 1) & m, (isn_s + 1) & m
    for _ in range(rng.randrange(1, 12)):
        to_server = rng.random() < 0.5
        size = rng.choice((0, 1, 10, 100, 1400))
        data = bytes(rng.randrange(256) for _ in range(size))
        win = 0 if rng.random() < 0.05 else 65535
        if to_server:
            segs = [c2s(nc, ns, pb.ACK | pb.PSH, data, port, win)]
            if rng.random() < 0.1:
                segs.append(c2s((nc - 1) & m, ns, pb.ACK, b"", port))  # keep-alive
            nc = (nc + size) & m
            segs.append(s2c(ns, nc, pb.ACK, b"", port))
        else:
            segs = [s2c(ns, nc, pb.ACK | pb.PSH, data, port, win)]
            ns = (ns + size) & m
            segs.append(c2s(nc, ns, pb.ACK, b"", port))
        if rng.random() < 0.15:
            segs.append(segs[0])  # retransmitted
        if rng.random() < 0.1:
            segs.append(_icmp_quoting(segs[0]))
        if rng.random() < 0.1:
            segs.pop(0)  # lost from the capture
        frames += segs
    end = rng.random()
    if end < 0.4:
        frames += [c2s(nc, ns, pb.FIN | pb.ACK, port=port), s2c(ns, (nc + 1) & m, pb.FIN | pb.ACK, port=port)]
        frames.append(c2s((nc + 1) & m, (ns + 1) & m, port=port))
        if rng.random() < 0.3:
            frames.append(c2s(nc, ns, pb.ACK | pb.PSH, b"late", port))
    elif end < 0.6:
        frames.append(s2c(ns, nc, pb.RST | pb.ACK, port=port))
    return frames


@pytest.mark.parametrize("seed", range(12))
def test_fast_path_equals_general_path_on_crafted_sequences(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    frames: list[bytes] = []
    for port in range(51000, 51000 + 8):
        frames += _conversation(rng, port)
        if rng.random() < 0.3:
            frames += _conversation(rng, port)  # the port used again
    for _ in range(len(frames) // 10):  # some segments out of order
        i = rng.randrange(len(frames) - 1)
        frames[i], frames[i + 1] = frames[i + 1], frames[i]
    path = tmp_path / "t.pcap"
    path.write_bytes(pb.pcap([(1_000_000 * i, f) for i, f in enumerate(frames)]))
    _same(path)


def test_icmp_error_quoting_a_tcp_segment_finds_its_flow(tmp_path: Path) -> None:
    """A TCP flow's key is bare bytes in ``live``: the ICMP lookup builds the same one."""
    first = c2s(100, 0, pb.SYN)
    path = tmp_path / "t.pcap"
    path.write_bytes(pb.pcap([(0, first), (1_000_000, _icmp_quoting(first))]))
    res = rebuild_flows(path)
    (flow,) = res.flows
    assert [a.name for a in flow.anomalies] == ["icmp.unreachable"]
    assert res.orphan_icmp == []


def test_new_tuple_makes_the_same_chunk() -> None:
    fields = (3, 1, 70, b"data", 9, 12, 5)
    made = new_tuple(StreamChunk, fields)
    assert type(made) is StreamChunk
    assert made == StreamChunk(*fields)
    assert made.at_frame == 12
