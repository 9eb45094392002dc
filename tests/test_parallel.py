"""``analyze --workers N``: the partition of packets (byte level), the renumbering of flows and streams, and the
same report as one process on lab, field and gateway captures."""

from __future__ import annotations

import contextlib
import os
import re
import struct
import subprocess
import sys
import time
from array import array
from collections.abc import Iterator
from pathlib import Path

import pytest

from analyzer import parallel
from analyzer.capture.reader import SKIPPED, open_capture
from analyzer.config import Settings
from analyzer.engine import analyze
from analyzer.flows import table
from analyzer.parallel import Owner, client_of, renumber
from analyzer.report.build import report_dict
from analyzer.report.writer import render_report, run_analyze
from tests import pcapbuild as pb
from tests.procs import alive, children, command_line

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "captures"
FIELD = ROOT.parent / "shared" / "captures-external" / "ocpp-field"
CHARGER, CSMS, RESOLVER = bytes([10, 20, 1, 7]), bytes([203, 0, 113, 10]), bytes([10, 20, 0, 1])
TCP, UDP, ICMP = 6, 17, 1


def _ports(sport: int, dport: int, rest: bytes = bytes(16)) -> bytes:
    return struct.pack("!HH", sport, dport) + rest


def test_a_connection_and_a_lookup_follow_the_chargers_address_both_ways() -> None:
    assert client_of(TCP, CHARGER, CSMS, _ports(51000, 443)) == CHARGER
    assert client_of(TCP, CSMS, CHARGER, _ports(443, 51000)) == CHARGER
    assert client_of(UDP, CHARGER, RESOLVER, _ports(40001, 53)) == CHARGER
    assert client_of(UDP, RESOLVER, CHARGER, _ports(53, 40001)) == CHARGER
    # equal ports (NTP 123 <-> 123), no ports, a header cut short: the lower address
    assert client_of(UDP, CSMS, CHARGER, _ports(123, 123)) == CHARGER
    assert client_of(50, CSMS, CHARGER, b"") == CHARGER
    assert client_of(TCP, CSMS, CHARGER, b"\x01") == CHARGER


def test_an_icmp_error_goes_with_the_datagram_it_quotes() -> None:
    quoted_ip = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, UDP, 0, 0]) + CHARGER + RESOLVER
    icmp = bytes([3, 3, 0, 0, 0, 0, 0, 0]) + quoted_ip + struct.pack("!HHHH", 40001, 53, 8, 0)
    # the resolver's router says port unreachable to the charger: the lookup's partition, not the router's
    assert client_of(ICMP, bytes([10, 20, 0, 254]), CHARGER, icmp) == CHARGER
    echo = bytes([8, 0, 0, 0, 0, 1, 0, 1])  # not an error: the lower address
    assert client_of(ICMP, CSMS, CHARGER, echo) == CHARGER


def test_every_packet_has_exactly_one_owner() -> None:
    owners = [Owner(k, 3) for k in range(3)]
    shares = [0, 0, 0]
    for last in range(1, 60):
        ch = bytes([10, 20, 1, last])
        for src, dst, l4 in ((ch, CSMS, _ports(50000 + last, 443)), (CSMS, ch, _ports(443, 50000 + last))):
            assert sum(own(TCP, src, dst, l4) for own in owners) == 1
        lookup = [k for k, own in enumerate(owners) if own(UDP, ch, RESOLVER, _ports(40000 + last, 53))]
        session = [k for k, own in enumerate(owners) if own(TCP, CSMS, ch, _ports(443, 50000 + last))]
        assert lookup == session  # a charger's lookups and sessions: one process
        shares[session[0]] += 1
    assert min(shares) >= 10  # shared out


def test_learn_decides_as_client_of_does() -> None:
    """``Owner.learn`` (the reader's IPv4 key: src + dst + ports) against ``client_of``, on ports of every
    kind: service ports, below 1024, ephemeral, equal; and the memory it keeps is bounded."""
    import random
    from zlib import crc32

    rng = random.Random(7)
    ports = [53, 80, 123, 443, 502, 1024, 8080, 9000, 49152, 50000, 65535]
    for n in (2, 3, 5):
        owners = [Owner(k, n) for k in range(n)]
        for _ in range(400):
            src, dst = bytes(rng.randrange(256) for _ in range(4)), bytes(rng.randrange(256) for _ in range(4))
            sport = rng.choice(ports) if rng.random() < 0.7 else rng.randrange(65536)
            dport = sport if rng.random() < 0.1 else rng.choice(ports)
            key = src + dst + _ports(sport, dport)
            want = crc32(client_of(TCP, src, dst, _ports(sport, dport))) % n
            assert [own.learn(key) for own in owners] == [k == want for k in range(n)]
            assert all(own.mine[key] == (k == want) for k, own in enumerate(owners))
    cut = CHARGER + CSMS + b"\xc3"  # a snaplen cut inside the ports: the lower address decides
    assert [Owner(k, 2).learn(cut) for k in range(2)] == [crc32(min(CHARGER, CSMS)) % 2 == k for k in range(2)]


def test_the_reader_hands_another_partitions_packets_on_as_skipped(tmp_path: Path) -> None:
    """Byte level, through both reader paths: plain Ethernet IPv4 (inlined) and VLAN-tagged IPv4 and IPv6
    (decoded): each packet is taken by exactly one of two partitions and skipped, with its frame and time but no
    bytes, by the other."""
    frames = []
    for i in range(1, 41):
        charger = f"10.20.1.{i}"
        frames.append(pb.ether(pb.ipv4(charger, "203.0.113.10", TCP, pb.tcp(50000 + i, 443, 1))))
        frames.append(pb.ether(pb.ipv4("10.20.0.1", charger, UDP, pb.udp(53, 40000 + i, b"x")), vlans=(0x8100,)))
        v6 = bytes(15) + bytes([i])
        frames.append(pb.ether(pb.ipv6(v6, bytes(15) + b"\x01", UDP, pb.udp(40000 + i, 53, b"q")), ethertype=0x86DD))
    path = tmp_path / "mixed.pcap"
    path.write_bytes(pb.pcap([(i * 1000, f) for i, f in enumerate(frames)]))
    whole = _packets(path, None)
    halves = [_packets(path, Owner(k, 2)) for k in range(2)]
    for a, b, full in zip(*halves, whole, strict=True):
        assert a[:2] == b[:2] == full[:2]  # every frame, in order, in both
        taken, skipped = (a, b) if a[2] != SKIPPED else (b, a)
        assert taken == full
        assert skipped[2:] == (SKIPPED, b"", b"", b"", 0)
    assert 20 < sum(p[2] != SKIPPED for p in halves[0]) < 100  # shared out


def _packets(path: Path, part: Owner | None) -> list[tuple]:
    with open_capture(path) as cap:
        return list(cap.ip_packets(part))


def test_renumber_orders_by_first_frame_then_part() -> None:
    assert renumber([array("q", [1, 5, 9]), array("q", [2, 3, 10])]) == [[0, 3, 4], [1, 2, 5]]
    assert renumber([array("q"), array("q", [4, 7])]) == [[], [0, 1]]
    assert renumber([array("q"), array("q")]) == [[], []]
    # the same frame in two parts (never for flows; kept total all the same): by part, then own order
    assert renumber([array("q", [3, 3]), array("q", [3])]) == [[0, 1], [2]]


def _json(path: Path, workers: int) -> str:
    keys = path.with_name(path.name.rsplit(".", 1)[0] + ".keys.txt")
    settings = Settings(keylog_files=(str(keys),) if keys.exists() else ())
    return render_report(report_dict(analyze(path, settings, salvage=True, workers=workers)), "json")


SAMPLES = [
    LAB / n
    for n in (
        "gateway_mixed.pcap",
        "relay_socat.pcap",
        "ocpp_silent_reboot.pcap",
        "healthy_201_wss_tls13_mtls.pcap",
        "dns_nxdomain_typo_gateway.pcap",
        "tcp_unreachable.pcap",
        "proxy_nginx_502.pcap",
    )
] + sorted(FIELD.glob("bobbesnl*.pcap"))[:2]


@pytest.mark.parametrize("capture", SAMPLES, ids=lambda p: p.name)
def test_two_workers_give_the_report_of_one(capture: Path) -> None:
    assert _json(capture, 2) == _json(capture, 1)


def test_a_gateway_capture_with_sweeps_and_released_flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle sweeps every 2,048 packets, so the keepers judge and release background flows many times: three
    processes keep, release and number exactly what one does."""
    monkeypatch.setattr(table, "SWEEP_EVERY", 2048)
    pcap = tmp_path / "gw.pcap"
    args = ["--packets", "30000", "--duration", "700", "--chargers", "20"]
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_fleet.py"), str(pcap), *args], check=True)
    one = _json(pcap, 1)
    assert "finished background connections and lookups" in one  # the keeper released flows
    assert _json(pcap, 3) == one


def _run(capture: str, workers: int) -> tuple[int, list[str]]:
    said: list[str] = []
    status = run_analyze([capture], "-", ["json"], None, False, echo=said.append, line=said.append, workers=workers)
    return status, said


def test_standard_input_is_read_by_one_process_and_says_so(tmp_path: Path) -> None:
    with open(LAB / "tcp_refused.pcap", "rb") as f:
        out = subprocess.run(
            [sys.executable, "-m", "analyzer", "analyze", "-", "-j", "2", "-o", str(tmp_path), "--format", "json"],
            stdin=f,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    assert out.returncode == 1, out.stderr
    assert "read by one process, not 2: --workers needs a capture file" in out.stderr


def test_not_a_capture_is_one_error_line(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("hello\n")
    status, said = _run(str(junk), 2)
    assert status == 3
    (line,) = said
    assert line.startswith(f"error: {junk}: not a packet capture")


def test_a_process_that_dies_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    parent, read = os.getpid(), parallel.read_part
    # the forked process inherits it; the parent reads the first partition itself
    monkeypatch.setattr(parallel, "read_part", lambda *a: read(*a) if os.getpid() == parent else os._exit(9))
    status, said = _run(str(LAB / "tcp_refused.pcap"), 2)
    assert status == 3
    (line,) = said
    assert re.fullmatch(
        rf"error: {re.escape(str(LAB / 'tcp_refused.pcap'))}: the process reading part 2 of 2 ended without a "
        r"result \(exit status 9\); try again with fewer --workers",
        line,
    )


def test_a_killed_parent_leaves_no_partition_reading(tmp_path: Path) -> None:
    """SIGKILL to ``analyze --workers 3`` mid-read: its two partitions' processes see it gone and end within a
    second or two, silently."""
    pcap = tmp_path / "gw.pcap"
    args = ["--packets", "150000", "--duration", "600", "--chargers", "30"]
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_fleet.py"), str(pcap), *args], check=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "analyzer", "analyze", str(pcap), "-o", str(tmp_path), "-q", "-j", "3"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    partitions: list[int] = []
    while len(partitions) < 2 and time.monotonic() < deadline:
        partitions = _partitions(proc.pid)
        time.sleep(0.05)
    assert len(partitions) == 2, "the two partitions never started"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 3  # they check every PARENT_POLL_S (0.5 s)
    while any(alive(c) for c in partitions) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(c) for c in partitions)
    with proc.stderr:  # type: ignore[union-attr]
        assert b"Traceback" not in proc.stderr.read()  # type: ignore[union-attr]


def _partitions(pid: int) -> list[int]:
    """The partitions' processes of ``pid`` (not the one hashing the capture: ``tests/test_file_sha256.py``)."""
    return [c for c in children(pid) if b"analyzer.digest" not in command_line(c)]


def test_the_parts_come_to_the_parent_one_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With four workers, three processes of a small capture finish together; each sends its part only once the
    one before is in the parent and its process has ended (the hand-over would otherwise be the peak of memory)."""
    log = tmp_path / "sends.log"
    paused = parallel.paused_gc
    parent = os.getpid()

    @contextlib.contextmanager
    def logged() -> Iterator[None]:
        with paused():
            if os.getpid() != parent:
                with open(log, "a") as f:
                    f.write(f"{os.getpid()} start {time.monotonic()}\n")
            yield
            if os.getpid() != parent:
                time.sleep(0.05)  # the process's exit comes after; the next must not start meanwhile
                with open(log, "a") as f:
                    f.write(f"{os.getpid()} end {time.monotonic()}\n")

    monkeypatch.setattr(parallel, "paused_gc", logged)
    capture = str(LAB / "gateway_mixed.pcap")
    one = render_report(report_dict(analyze(capture, salvage=True)), "json")
    assert render_report(report_dict(analyze(capture, salvage=True, workers=4)), "json") == one
    lines = [line.split() for line in log.read_text().splitlines()]
    assert [what for _, what, _ in lines] == ["start", "end"] * 3  # never two sending at once
    assert len({pid for pid, _, _ in lines}) == 3
    for (pid_a, _, t_start), (pid_b, _, t_end) in zip(lines[::2], lines[1::2], strict=True):
        assert pid_a == pid_b
        assert float(t_start) <= float(t_end)


def test_the_parts_taken_in_skip_the_young_collections(monkeypatch: pytest.MonkeyPatch) -> None:
    """A part is frozen as soon as it is unpickled (no young collection walks its events), and what was frozen
    goes to the oldest generation once every part is in; what a caller froze before stays frozen."""
    import gc

    froze: list[tuple[bool, int]] = []  # (the collector enabled?, tracked objects frozen after)
    freeze = gc.freeze

    def spy() -> None:
        freeze()
        froze.append((gc.isenabled(), gc.get_freeze_count()))

    monkeypatch.setattr(gc, "freeze", spy)
    capture = str(LAB / "tcp_refused.pcap")
    assert gc.get_freeze_count() == 0
    parts = parallel.Partitions(capture, Settings(), 2)
    parts.start()
    parts.collect()
    received = [count for enabled, count in froze if not enabled]
    assert len(received) == 1  # once, for the one part received, while the collector was paused
    assert received[0] > 1000
    assert [enabled for enabled, _ in froze].count(True) == 1  # the parent's own reading's survivors, aged
    assert gc.get_freeze_count() == 0  # and into the oldest generation at the end
    gc.freeze()  # a caller's own frozen objects
    try:
        before = gc.get_freeze_count()
        parts = parallel.Partitions(capture, Settings(), 2)
        parts.start()
        parts.collect()
        assert gc.get_freeze_count() >= before  # not unfrozen by ``collect``
    finally:
        gc.unfreeze()


def test_a_part_comes_to_the_parent_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """A part's events go in pieces of ``PART_PIECE_EVENTS`` after the rest of it; the parent puts them back in
    order: the report of one process."""
    from multiprocessing.reduction import ForkingPickler

    from analyzer import budgets

    capture = str(LAB / "gateway_mixed.pcap")
    monkeypatch.setattr(budgets, "PART_PIECE_EVENTS", 7)  # the forked process inherits it
    part = parallel.read_part(capture, Settings(), 1, 2)
    sent = list(parallel._pieces(part))
    pieces, head = ForkingPickler.loads(sent[0])
    assert len(part.events) > 3 * 7
    assert pieces == len(sent) - 1 == -(-len(part.events) // 7)
    assert head.events == []
    assert head.flows == part.flows
    back = [e for data in sent[1:] for e in ForkingPickler.loads(data).events()]
    assert back == part.events
    one = render_report(report_dict(analyze(capture, salvage=True)), "json")
    assert render_report(report_dict(analyze(capture, salvage=True, workers=2)), "json") == one


def test_a_piece_that_does_not_pickle_is_sent_as_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """An event that cannot be pickled ends the sending with a ``RuntimeError`` in place of its piece, which the
    parent raises: ``analyze`` reports it as an internal error of that capture."""
    from multiprocessing.reduction import ForkingPickler

    from analyzer import budgets

    monkeypatch.setattr(budgets, "PART_PIECE_EVENTS", 7)
    part = parallel.read_part(str(LAB / "gateway_mixed.pcap"), Settings(), 1, 2)
    object.__setattr__(part.events[9], "frame", lambda: None)  # in the second piece
    sent = list(parallel._pieces(part))
    assert len(sent) == 3  # the rest of the part, the first piece, the error
    assert ForkingPickler.loads(sent[1]).events() == part.events[:7]
    error = ForkingPickler.loads(sent[2])
    assert isinstance(error, RuntimeError)
    assert "could not be sent" in str(error)
    (pieces, exc) = ForkingPickler.loads(next(parallel._pieces(ValueError("unpicklable", lambda: None))))
    assert pieces == 0
    assert isinstance(exc, RuntimeError)
    assert "ValueError" in str(exc)
    # the parent's side: the forked process's second piece does not pickle, and ``collect`` raises its error
    parent, read = os.getpid(), parallel.read_part

    def spoiled(*args: object) -> parallel.Part:
        got = read(*args)  # type: ignore[arg-type]
        if os.getpid() != parent:
            object.__setattr__(got.events[9], "frame", lambda: None)
        return got

    monkeypatch.setattr(parallel, "read_part", spoiled)
    parts = parallel.Partitions(str(LAB / "gateway_mixed.pcap"), Settings(), 2)
    parts.start()
    with pytest.raises(RuntimeError, match="could not be sent"):
        parts.collect()
    assert not parts.procs  # its process was ended
