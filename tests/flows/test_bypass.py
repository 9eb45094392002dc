"""The compiled reader's flow bypass (``FlowTable._arm``, ``_fastread.Bypass``): pure ACKs and in-order segments in a
skip window of an armed TCP flow are passed over in C and taken in later, in one piece per flow.

Reading with it must give exactly what reading without it gives: every event (decoders included, so the TLS skip
windows are exercised), every flow's counters, history, anomalies and reassembly summary, the warnings. Each case
also checks that packets were in fact passed over, so that it tests something. Cases: a gateway capture
(``bench/make_fleet.py``: bulk TLS, OCPP, DNS, NTP) with sweeps every 1,000 packets and small batches, as it is and
with damaged headers; the pure reader; an armed flow idle past its timeout that resumes in the batch of the sweep
that ends it; the live-flow budget, near which the bypass stops; a flow armed only from the last packet the reader
read. The scanner's side is tested byte by byte.
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from analyzer.budgets import Budgets
from analyzer.capture import compiled
from analyzer.capture.reader import SKIPPED, SKIPPED_RUN
from analyzer.engine import build_timeline, rebuild_flows
from analyzer.flows import table as table_mod
from analyzer.flows.table import BYPASSED, FlowTable
from tests import pcapbuild as pb
from tests.flows.test_fast_path import _flow_record, c2s, s2c

ROOT = Path(__file__).resolve().parents[2]
M = 0xFFFFFFFF


@pytest.fixture(autouse=True)
def _compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    if not compiled.available():
        pytest.fail(f"compiled reader core: {compiled.describe()}; `make setup` builds it")


class Passed:
    """Counts what the flow table took in from the bypass (packets, bytes) while reading."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.packets = self.bytes = 0
        took_in = FlowTable._took_in

        def counting(table: FlowTable, passed: tuple[Any, ...]) -> None:
            if passed[0] is not None:
                self.packets += passed[1] + passed[2]
                self.bytes += passed[3] + passed[4]
            took_in(table, passed)

        monkeypatch.setattr(FlowTable, "_took_in", counting)


def _timeline(path: Path) -> tuple[object, ...]:
    res = build_timeline(path)
    flows = tuple(_flow_record(f) for f in res.flows)
    return tuple(res.timeline.events), flows, tuple(res.capture.warnings), tuple(res.orphan_icmp)


def _without_bypass(monkeypatch: pytest.MonkeyPatch, read: Any, path: Path) -> Any:
    with monkeypatch.context() as m:
        m.setattr(compiled, "bypass_table", lambda batch: None)
        return read(path)


def _same_with_and_without(monkeypatch: pytest.MonkeyPatch, path: Path, read: Any = _timeline) -> Passed:
    passed = Passed(monkeypatch)
    with_bypass = read(path)
    assert passed.packets, "nothing was passed over: the case tests nothing"
    assert _without_bypass(monkeypatch, read, path) == with_bypass
    return passed


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pcap = tmp_path_factory.mktemp("gw") / "gw.pcap"
    args = ["--packets", "30000", "--duration", "700", "--chargers", "20", "--seed", "3"]
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_fleet.py"), str(pcap), *args], check=True)
    return pcap


@pytest.mark.parametrize("batch", [4096, 61])
def test_gateway_capture_reads_the_same_with_the_bypass(
    gateway: Path, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sweeps every 1,000 packets and batches of at most ``batch``: every event and flow as without the bypass,
    with a sixth or more of the packets passed over, TLS records' middles among them."""
    monkeypatch.setattr(table_mod, "SWEEP_EVERY", 1000)
    monkeypatch.setattr(table_mod, "BYPASS_BATCH", batch)
    passed = _same_with_and_without(monkeypatch, gateway)
    assert passed.packets > 5_000  # of 30,000
    assert passed.bytes > 1_000_000  # segments in TLS skip windows


def test_the_pure_reader_passes_nothing_over_and_reads_the_same(gateway: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    passed = Passed(monkeypatch)
    fast = _timeline(gateway)
    assert passed.packets
    monkeypatch.setenv(compiled.PURE_ENV, "1")
    before = passed.packets
    assert _timeline(gateway) == fast
    assert passed.packets == before


def _armed_then_idle(port: int = 51000) -> list[tuple[int, bytes]]:
    """A connection that exchanges data and ACKs for a while, is idle 400 s (past the 300 s TCP timeout), then
    sends more ACKs and data on the same ports. Frame 92, the first after the gap, is a UDP packet of another host:
    a sweep that falls on it ends the connection before its next packet."""
    ms = 1_000_000
    out: list[tuple[int, bytes]] = []
    t = 0
    ic, is_ = 1000, 5000
    out.append((t, c2s(ic, 0, pb.SYN, port=port)))
    out.append((t := t + ms, s2c(is_, ic + 1, pb.SYN | pb.ACK, port=port)))
    nc, ns = ic + 1, is_ + 1
    out.append((t := t + ms, c2s(nc, ns, port=port)))
    for i in range(40):
        data = bytes([i]) * 100
        out.append((t := t + ms, s2c(ns, nc, pb.ACK | pb.PSH, data, port=port)))
        ns += 100
        out.append((t := t + ms, c2s(nc, ns, port=port)))
        if i % 5 == 0:
            out.append((t := t + ms, c2s(nc, ns, port=port)))  # a duplicate ACK
    t += 400_000 * ms
    udp = pb.udp(40000, 123, b"x" * 48)
    out.append((t := t + ms, pb.ether(pb.ipv4("10.7.0.9", "10.7.0.1", 17, udp))))
    for _ in range(20):
        out.append((t := t + ms, c2s(nc, ns, port=port)))
        out.append((t := t + ms, s2c(ns, nc, pb.ACK | pb.PSH, b"late", port=port)))
        ns += 4
    return out


@pytest.mark.parametrize("batch", [7, 19, 40])
@pytest.mark.parametrize("sweep_every", [23, 46, 92])
def test_an_armed_flow_idle_past_its_timeout_ends_at_the_sweep(
    tmp_path: Path, sweep_every: int, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader reads up to a batch ahead of the sweep (on frame 92) that ends the idle flow: the packets after
    it must start a new flow (no handshake), not be passed over into the ended one."""
    monkeypatch.setattr(table_mod, "SWEEP_EVERY", sweep_every)
    monkeypatch.setattr(table_mod, "BYPASS_BATCH", batch)
    path = tmp_path / "idle.pcap"
    path.write_bytes(pb.pcap(_armed_then_idle()))

    def flows(p: Path) -> tuple[object, ...]:
        res = rebuild_flows(p)
        return tuple(_flow_record(f) for f in res.flows)

    _same_with_and_without(monkeypatch, path, flows)
    assert [f[2:6] for f in flows(path)] == [
        ("10.1.0.5:51000", "10.9.0.1:443", 1, 91),
        ("10.7.0.9:40000", "10.7.0.1:123", 92, 92),
        ("10.1.0.5:51000", "10.9.0.1:443", 93, 132),
    ]


def test_near_the_flow_budget_the_bypass_stops_and_releases_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 connections that each exchange ACKs, a budget of 24 live flows and batches of 8: the bypass stops at 16
    live flows, and the flows released early to keep within the budget are the same as without it."""
    monkeypatch.setattr(table_mod, "BYPASS_BATCH", 8)
    frames: list[tuple[int, bytes]] = []
    t = 0
    for k in range(60):
        port = 50000 + k
        frames.append((t := t + 1000, c2s(1, 0, pb.SYN, port=port)))
        frames.append((t := t + 1000, s2c(9, 2, pb.SYN | pb.ACK, port=port)))
        for i in range(6):
            frames.append((t := t + 1000, c2s(2, 10, port=port)))
            frames.append((t := t + 1000, s2c(10 + i, 2, pb.ACK | pb.PSH, b"z", port=port)))
    path = tmp_path / "many.pcap"
    path.write_bytes(pb.pcap(frames))

    def read(p: Path) -> tuple[object, ...]:
        table = FlowTable(budgets=Budgets(live_flows=24))
        res = rebuild_flows(p, table=table)
        stopped = table.bypass is not None and table.bypass.stopped
        return tuple(_flow_record(f) for f in res.flows), table.released_early, stopped

    passed = _same_with_and_without(monkeypatch, path, lambda p: read(p)[:2])
    assert passed.packets
    _, released, stopped = read(path)
    assert released > 0
    assert stopped


# -- the scanner's side, byte by byte ----------------------------------------------------------------------------


def _records(frames: list[bytes]) -> bytes:
    """Pcap records (no file header), a millisecond apart."""
    return pb.pcap([(1000 * i, f) for i, f in enumerate(frames)])[24:]


def _scanner(bypass: Any, sweep_every: int = 1 << 15) -> Any:
    return compiled.core.PcapScanner(False, 1000, True, 65535, None, sweep_every, bypass)


def _arm(
    b: Any,
    frame: int,
    acks: tuple[bool, bool] = (False, False),
    expected: tuple[int, int] = (-1, -1),
    nxt: tuple[int, int] = (0, 0),
    skip_end: tuple[int, int] = (0, 0),
    skipping: bool = False,
) -> bool:
    return b.arm(frame, True, skipping, *acks, *expected, *nxt, *skip_end)


def _scan(scanner: Any, buf: bytes, pos: int = 0) -> tuple[list[tuple[Any, ...]], int, int]:
    out: list[tuple[Any, ...]] = []
    pos, why = scanner.scan(bytearray(buf), pos, len(buf), 24, 0, out)
    return out, pos, why


def _one_flow(flow: object = "flow") -> tuple[Any, Any]:
    """A bypass table holding one flow, 10.1.0.5:51000 → 10.9.0.1:443 (``c2s``, ``s2c``), by its two keys."""
    table = compiled.core.BypassTable(4096)
    b = compiled.core.Bypass(flow)
    key = pb.ip4("10.1.0.5") + pb.ip4("10.9.0.1") + (51000).to_bytes(2, "big") + (443).to_bytes(2, "big")
    table.entries[key] = (b, 0)
    table.entries[key[4:8] + key[:4] + key[10:12] + key[8:10]] = (b, 1)
    return table, b


def test_scanner_passes_over_pure_acks_only_once_armed_from_the_last_packet_it_read() -> None:
    flow = object()
    table, b = _one_flow(flow)
    acks = [c2s(100, 7000 + i) for i in range(3)]
    buf = _records([*acks, s2c(7002, 100, pb.ACK | pb.PSH, b"hi")])
    scanner = _scanner(table)
    # not armed: the first ACK is handed on, and the batch ends there (the flow table may arm the flow at once)
    out, pos, why = _scan(scanner, buf)
    assert why == compiled.core.REARM
    assert [p[0] for p in out] == [1]
    assert b.last_seen == 1
    assert not _arm(b, 0, acks=(True, False))  # not the last packet read: ignored
    assert _arm(b, 1, acks=(True, False))
    assert b.armed == (True, False, False, False)
    # armed: the next two ACKs are passed over (a run of 2 skipped packets), then the server's data is handed on,
    # after what the two ACKs changed
    out, pos, why = _scan(scanner, buf, pos)
    passed, run, data = out
    assert run == (3, 2000, SKIPPED_RUN, b"", b"", b"", 2)
    assert passed[:3] == (4, 3000, BYPASSED)
    assert passed[4:] == (b"", b"", 0)
    assert passed[3] == (flow, 2, 0, 0, 0, 7002, -1, 3, 2000, 0, 0, [], [])
    assert data[:3] == (4, 3000, 6)
    assert data[5][-2:] == b"hi"
    assert b.armed == (False, False, False, False)  # data the flow table was not told of: all off
    assert why == compiled.core.REARM
    assert b.last_seen == 4


def test_scanner_passes_over_in_order_segments_inside_the_skip_window_with_their_bytes() -> None:
    table, b = _one_flow()
    segs = [s2c((7000 + 100 * i) & M, 100, pb.ACK, bytes([i]) * 100) for i in range(4)]
    buf = _records([s2c(6900, 100, pb.ACK, b"x" * 100), *segs])
    scanner = _scanner(table)
    out, pos, why = _scan(scanner, buf)
    assert [p[0] for p in out] == [1]
    assert why == compiled.core.REARM
    # the server's next byte is 7000 at stream offset 100; the window ends at offset 350: two segments end before
    assert _arm(b, 1, acks=(True, True), expected=(-1, 7000), nxt=(0, 100), skip_end=(0, 350), skipping=True)
    assert b.armed == (True, True, False, True)
    out, pos, why = _scan(scanner, buf, pos)
    passed, run, third = out[:3]
    assert run[2] == SKIPPED_RUN
    assert run[6] == 2
    _flow, n0, n1, bytes0, bytes1, _ack0, ack1, frame, _ts, _moved0, moved1, recent0, recent1 = passed[3]
    assert (n0, n1, bytes0, bytes1, ack1, frame, moved1) == (0, 2, 0, 200, 100, 3, 300)
    assert recent1 == [(100, bytes([0]) * 100), (200, bytes([1]) * 100)]
    assert recent0 == []
    assert third[0] == 4  # it ends past the window: handed on (the decoder moves the window)
    assert third[2] == 6
    assert b.armed == (True, True, False, False)  # only the data waits for the flow table
    assert why == compiled.core.REARM


def test_scanner_hands_on_what_was_passed_over_before_each_sweep_and_turns_every_flow_off() -> None:
    table, b = _one_flow()
    buf = _records([c2s(100, 7000 + i) for i in range(6)])
    scanner = _scanner(table, sweep_every=4)
    out, pos, _ = _scan(scanner, buf)
    assert _arm(b, 1, acks=(True, False))
    out, pos, _ = _scan(scanner, buf, pos)
    # packets 2 to 4 passed over; the 4th is a sweep's: what they changed, then the run that reaches the sweep
    passed, run = out[:2]
    assert passed[2] == BYPASSED
    assert passed[3][1] == 3
    assert passed[3][7] == 4
    assert run == (4, 3000, SKIPPED_RUN, b"", b"", b"", 3)
    assert b.armed == (False, False, False, False)
    assert [p[0] for p in out[2:]] == [5]  # off after the sweep: handed on
    assert out[2][2] == 6


def test_a_stopped_bypass_hands_on_what_it_passed_over_and_passes_nothing_more() -> None:
    table, b = _one_flow()
    buf = _records([c2s(100, 7000 + i) for i in range(5)])
    scanner = _scanner(table)
    out, pos, _ = _scan(scanner, buf)
    assert _arm(b, 1, acks=(True, False))
    first = _records([c2s(100, 7000 + i) for i in range(3)])
    out, pos2, _ = _scan(scanner, first, pos)
    assert out == []  # 2 and 3 passed over: neither they nor their run handed on yet
    table.stopped = True
    out, _, _ = _scan(scanner, buf, pos2)
    assert out[0][2] == BYPASSED
    assert out[0][3][1] == 2
    assert [p[2] for p in out[1:]] == [SKIPPED_RUN, 6, 6]  # the run of 2 and 3, then 4 and 5 handed on
    assert table.drain() == []


def test_the_batch_ends_after_at_most_its_size_while_passing_over() -> None:
    table = compiled.core.BypassTable(3)
    buf = _records([pb.ether(pb.ipv4("10.7.0.9", "10.7.0.1", 17, pb.udp(40000, 123, b"x"))) for _ in range(7)])
    scanner = _scanner(table)
    seen = []
    pos, why = 0, None
    while why != 0:  # NEED_HEADER: the buffer is read
        out: list[tuple[Any, ...]] = []
        pos, why = scanner.scan(bytearray(buf), pos, len(buf), 24, 0, out)
        seen.append([p[0] for p in out])
        scanner.end_batch(out)
    assert seen == [[1, 2, 3], [4, 5, 6], [7]]
    assert SKIPPED not in {p[2] for p in out}


def _mutated(path: Path, seed: int, records: int = 8000) -> bytes:
    """The first ``records`` records of ``path`` with one in 12 damaged in its IP or TCP header: a byte set at
    random, or the record cut short (its captured length lowered)."""
    rng = random.Random(seed)
    data = path.read_bytes()
    out = [data[:24]]
    pos = 24
    for _ in range(records):
        if pos + 16 > len(data):
            break
        sec, frac, incl, orig = struct.unpack_from("<IIII", data, pos)
        frame = bytearray(data[pos + 16 : pos + 16 + incl])
        pos += 16 + incl
        if rng.random() < 1 / 12 and len(frame) > 54:
            if rng.random() < 0.7:
                frame[rng.randrange(14, 54)] = rng.randrange(256)
            else:
                frame = frame[: rng.randrange(30, len(frame))]
        out.append(struct.pack("<IIII", sec, frac, len(frame), orig) + bytes(frame))
    return b"".join(out)


@pytest.mark.parametrize("seed", range(4))
def test_damaged_headers_read_the_same_with_the_bypass(
    gateway: Path, tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flags, offsets, lengths and sequence numbers set at random, and records cut short, among armed flows: the
    scanner passes over only what the flow table would have taken the same way."""
    monkeypatch.setattr(table_mod, "SWEEP_EVERY", 500)
    monkeypatch.setattr(table_mod, "BYPASS_BATCH", 37)
    path = tmp_path / "damaged.pcap"
    path.write_bytes(_mutated(gateway, seed))
    _same_with_and_without(monkeypatch, path)


@pytest.mark.parametrize("shift", range(8))
def test_a_flow_is_armed_only_from_the_last_packet_the_reader_read(
    tmp_path: Path, shift: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection whose decoder reads every byte (no skip window, as OCPP's): its pure ACKs are passed over, its
    data is handed on without ending the batch. Its last data, then a FIN carrying data after a hole (100 bytes
    never captured), come in one batch: the flow table, taking the data in, must not arm the flow from it (the
    reader has read the FIN already). Else the server's ACKs past the hole, in the next batch, would be passed
    over, and the hole not given up as a gap where the flow table gives it up. ``shift`` UDP packets first move
    the batches."""
    monkeypatch.setattr(table_mod, "BYPASS_BATCH", 8)
    ms = 1_000_000
    frames = [pb.ether(pb.ipv4("10.7.0.9", "10.7.0.1", 17, pb.udp(40000, 123, b"x" * 48)))] * shift
    nc, ns = 1001, 5001
    frames += [c2s(1000, 0, pb.SYN), s2c(5000, nc, pb.SYN | pb.ACK), c2s(nc, ns)]
    for i in range(30):
        frames.append(c2s(nc, ns, pb.ACK | pb.PSH, bytes([i]) * 10))
        nc += 10
        frames.append(s2c(ns, nc))
        frames.append(s2c(ns, nc, pb.ACK | pb.PSH, b"ok"))
        ns += 2
        frames.append(c2s(nc, ns))
    frames.append(c2s(nc, ns, pb.ACK | pb.PSH, b"last"))
    nc += 4
    frames.append(c2s(nc + 100, ns, pb.FIN | pb.ACK | pb.PSH, b"after a hole"))
    nc += 100 + 12
    frames += [s2c(ns, nc + 1)] * 3
    frames += [s2c(ns, nc + 1, pb.FIN | pb.ACK), c2s(nc + 1, ns + 1)]
    path = tmp_path / "hole.pcap"
    path.write_bytes(pb.pcap([(ms * i, f) for i, f in enumerate(frames)]))
    gaps: list[object] = []

    def read(p: Path) -> tuple[object, ...]:
        gaps.clear()
        res = rebuild_flows(p, table=FlowTable(on_chunk=lambda c: None, on_gap=gaps.append))
        return tuple(_flow_record(f) for f in res.flows), tuple(gaps)

    _same_with_and_without(monkeypatch, path, read)
    assert [(g.direction, g.size) for g in gaps] == [(0, 100)]  # type: ignore[attr-defined]


def _unknown_protocol() -> list[tuple[int, bytes]]:
    """A connection whose first bytes no decoder reads (an SSH banner on port 443), then 60 segments of bulk data
    from the server, each acknowledged, then both FINs."""
    ms = 1_000_000
    ic, is_ = 7000, 9000
    out = [(0, c2s(ic, 0, pb.SYN)), (ms, s2c(is_, ic + 1, pb.SYN | pb.ACK)), (2 * ms, c2s(ic + 1, is_ + 1))]
    t = 2 * ms
    banner = b"SSH-2.0-OpenSSH_9.6\r\n"
    out.append((t := t + ms, c2s(ic + 1, is_ + 1, pb.ACK | pb.PSH, banner)))
    nc, ns = ic + 1 + len(banner), is_ + 1
    for i in range(60):
        out.append((t := t + ms, s2c(ns, nc, pb.ACK | pb.PSH, bytes([i]) * 1000)))
        ns += 1000
        out.append((t := t + ms, c2s(nc, ns)))
    out.append((t := t + ms, c2s(nc, ns, pb.FIN | pb.ACK)))
    out.append((t := t + ms, s2c(ns, nc + 1, pb.FIN | pb.ACK)))
    out.append((t + ms, c2s(nc + 1, ns + 1)))
    return out


def test_a_connection_no_decoder_reads_is_passed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No decoder fits the first bytes: the flow's directions deliver no chunk any more (with the bypass or
    without), and its in-order segments are passed over in C like those in a skip window; flows and events as
    without the bypass."""
    from analyzer.engine import _Dispatch

    monkeypatch.setattr(table_mod, "BYPASS_BATCH", 8)  # the reader would read this small capture in one batch
    path = tmp_path / "unknown.pcap"
    path.write_bytes(pb.pcap(_unknown_protocol()))
    chunks: list[int] = []
    chunk = _Dispatch.chunk
    monkeypatch.setattr(_Dispatch, "chunk", lambda self, c: (chunks.append(c.frame), chunk(self, c))[1])
    passed = _same_with_and_without(monkeypatch, path)
    assert chunks == [4, 4]  # in each read the banner only, which no decoder takes: nothing after it
    assert passed.bytes >= 55_000  # the server's segments but the first few (before the flow is armed), passed over
    events = build_timeline(path).timeline.events
    assert [e.kind for e in events if e.kind.startswith("tcp.")][-1] == "tcp.flow_end"
