"""The compiled reader core (``analyzer/capture/_fastread.pyx``) gives what the pure reader gives, byte for byte:
every case runs through both cores, checked against stated expectations and against the pure core's result."""

from __future__ import annotations

import gzip
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.capture import compiled, container
from analyzer.capture.reader import SKIPPED, SKIPPED_RUN, open_capture
from tests import pcapbuild as pb
from tests.capture.coretest import CORES, check, check_runs, read, use_core

T0 = 1_700_000_000_123_456_000
A, B, C = "10.0.0.1", "10.0.0.2", "192.168.7.9"


@pytest.fixture(params=CORES)
def core(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    use_core(monkeypatch, request.param)
    return request.param


def write(tmp_path: Path, data: bytes, name: str = "c.pcap") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def tcp_pkt(src: str, dst: str, sport: int, dport: int, payload: bytes = b"x", **ip: int) -> bytes:
    return pb.ether(pb.ipv4(src, dst, 6, pb.tcp(sport, dport, 1, payload=payload), **ip))


def udp_pkt(src: str, dst: str, sport: int, dport: int, payload: bytes = b"q") -> bytes:
    return pb.ether(pb.ipv4(src, dst, 17, pb.udp(sport, dport, payload)))


def with_options(src: str, dst: str, payload: bytes) -> bytes:
    """IPv4 with a 4-byte option (IHL 6): off the fast path."""
    hdr = struct.pack("!BBHHHBBH4s4s", 0x46, 0, 24 + len(payload), 9, 0, 64, 17, 0, pb.ip4(src), pb.ip4(dst))
    return pb.ether(hdr + b"\x01\x01\x01\x00" + payload)


def mixed() -> list[bytes]:
    """Every kind of frame: fast-path TCP/UDP/ICMP, and everything the core hands back to Python."""
    udp = pb.udp(5353, 53, b"y" * 40)
    v6 = bytes(15) + b"\x01"
    return [
        tcp_pkt(A, B, 40000, 443, b"hello"),
        tcp_pkt(B, A, 443, 40000, b"world"),
        udp_pkt(A, C, 1000, 53, b"query"),
        udp_pkt(C, A, 53, 1000, b"answer"),
        pb.ether(pb.ipv4(A, B, 1, b"\x08\x00\x00\x00\x00\x01\x00\x01ping")),  # ICMP
        pb.ether(pb.ipv4(A, B, 47, b"gre-ish")),  # another protocol
        with_options(A, B, pb.udp(7, 7, b"opt")),
        pb.ether(pb.ipv4(A, B, 17, udp[:24], ident=77, frag=0x2000)),  # first fragment
        pb.ether(pb.ipv4(A, B, 17, udp[24:], ident=77, frag=3)),  # last fragment (offset 24)
        pb.ether(pb.ipv6(v6, v6[::-1], 17, pb.udp(1, 2, b"six")), ethertype=0x86DD),
        pb.ether(pb.ipv4(A, B, 6, pb.tcp(1, 2, 3, payload=b"vlan")), vlans=(0x8100,)),
        pb.ether(b"\x00\x01\x08\x00\x06\x04\x00\x01" + bytes(20), ethertype=0x0806),  # ARP
        pb.ether(pb.ipv4(A, B, 17, pb.udp(9, 9, b"tso"), total=0)),  # TSO: length field 0
        pb.ether(pb.ipv4(A, B, 17, pb.udp(9, 9, b"short"), total=12)),  # length below the header
        pb.ether(pb.ipv4(A, B, 17, pb.udp(9, 9, b"over"), total=900)),  # length past the frame
        pb.ether(b"\x45" + bytes(10)),  # IPv4 header cut short
        pb.ether(b""),  # no network layer at all
        b"\x00" * 10,  # shorter than an Ethernet header
        tcp_pkt(A, B, 40000, 443, b"bye"),
    ]


def stamped(frames: list[bytes], step: int = 1_000_003_000) -> list[tuple[int, bytes]]:
    return [(T0 + i * step, f) for i, f in enumerate(frames)]


def test_compiled_core_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """``make setup`` builds the core (pip install -e .): it must be importable, current and chosen."""
    assert compiled.core is not None, "analyzer.capture._fastread is not built: `make setup` (gcc, Python headers)"
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    assert compiled.available(), compiled.describe()


def test_compiled_core_runs_where_it_applies(tmp_path: Path, core: str) -> None:
    from analyzer.capture.reader import open_capture

    with open_capture(write(tmp_path, pb.pcap(stamped(mixed())))) as cap:
        fast = compiled.ip_packets(cap, None)
        assert (fast is not None) == (core == "compiled")
    assert compiled.describe() == ("compiled (Cython)" if core == "compiled" else "pure Python (GHOSTCAP_PURE=1)")


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nano", [False, True])
def test_every_kind_of_frame(tmp_path: Path, core: str, big_endian: bool, nano: bool) -> None:
    frames = mixed()
    got = check(write(tmp_path, pb.pcap(stamped(frames), nano=nano, big_endian=big_endian)))
    packets = got["packets"]
    assert packets[0] == (1, T0, 6, pb.ip4(A), pb.ip4(B), pb.tcp(40000, 443, 1, payload=b"hello"), 25)
    assert packets[2][:3] == (3, T0 + 2 * 1_000_003_000, 17)
    assert [p[0] for p in packets] == [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 13, 15, 19]  # 9: the reassembled datagram
    assert packets[7][2] == 17
    assert packets[7][5] == pb.udp(5353, 53, b"y" * 40)
    assert packets[11][5] == pb.udp(9, 9, b"over")  # the transport bytes the frame holds
    stats = got["stats"]
    assert stats["packets"] == len(frames)
    assert stats["first_ns"] == T0
    assert stats["last_ns"] == T0 + (len(frames) - 1) * 1_000_003_000
    assert stats["linktypes"] == [(1, len(frames))]
    assert stats["non_ip"] == 3
    assert got["malformed"] == 2
    assert got["ticks"] == [0]


def test_snaplen_truncated(tmp_path: Path, core: str) -> None:
    frames = [tcp_pkt(A, B, 40000, 443, b"z" * 150) for _ in range(6)]
    cuts = [250, 40, 36, 34, 30, 14]  # whole, within the ports, inside the key, IP header only, cut IP, Ethernet
    data = [f[:n] for f, n in zip(frames, cuts, strict=True)]
    orig = {i: len(frames[i]) for i in range(6)}
    path = write(tmp_path, pb.pcap(stamped(data), snaplen=250, orig_lens=orig))
    got = check(path)
    assert got["stats"]["truncated_packets"] == 5
    assert [len(p[5]) for p in got["packets"]] == [170, 6, 2, 0]
    assert [p[6] for p in got["packets"]] == [170] * 4
    for k in range(3):
        check(path, (k, 3))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_partition_skip(tmp_path: Path, core: str, n: int) -> None:
    frames = []
    for i in range(60):
        client = f"10.1.{i % 7}.{i % 13 + 1}"
        frames += [tcp_pkt(client, B, 30000 + i, 443), tcp_pkt(B, client, 443, 30000 + i)]
        frames.append(udp_pkt(client, C, 20000 + i, 53))
        frames.append(pb.ether(pb.ipv4(client, B, 1, b"\x08\x00\x00\x00\x00\x01\x00\x01")))
    frames += mixed()
    path = write(tmp_path, pb.pcap(stamped(frames, 1000)))
    whole = read(path)["packets"]
    taken: dict[int, int] = {}
    for k in range(n):
        got = check(path, (k, n))
        assert [p[0] for p in got["packets"]] == [p[0] for p in whole]
        for p in got["packets"]:
            if p[2] != SKIPPED:
                assert p[0] not in taken
                taken[p[0]] = k
            else:
                assert p[3:] == (b"", b"", b"", 0)
    assert sorted(taken) == [p[0] for p in whole]


def test_the_core_decides_a_conversation_as_the_owner_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled core decides a TCP or UDP packet's partition itself (``Owner.rule``), never calling ``learn``
    nor asking ``mine`` (a cache of a decision that depends on the key alone): each packet the same way as
    ``Owner.learn`` (``client_of``: service ports, ports under 1024, the ephemeral range, equal ports with either
    address the lower one), both directions of a conversation in the same partition."""
    from analyzer.parallel import Owner

    pairs = [(443, 51000), (51000, 443), (8080, 40000), (80, 80), (123, 123), (1023, 1025), (50000, 49151)]
    pairs += [(30000 + i, 60000 - i) for i in range(20)] + [(1000 + i, 1000 + i) for i in range(20)]
    frames = []
    for i, (sport, dport) in enumerate(pairs):
        a, b = f"10.3.{i}.{i % 9 + 1}", f"10.3.{i}.{(i * 7) % 9 + 1}"
        frames += [tcp_pkt(a, b, sport, dport), udp_pkt(b, a, dport, sport), udp_pkt(a, b, sport, dport)]
    path = write(tmp_path, pb.pcap(stamped(frames, 10)))
    taken: dict[str, list[int]] = {}
    for core in CORES:
        use_core(monkeypatch, core)
        for k in range(3):
            owner = Owner(k, 3)
            if core == "compiled":
                owner.learn = None  # type: ignore[assignment,method-assign]  # the core must not need it
                owner.mine = None  # type: ignore[assignment]  # nor the cache
            with open_capture(path) as cap:
                taken[f"{core} {k}"] = [p[0] for p in cap.ip_packets(owner) if p[2] != SKIPPED]
    for k in range(3):
        assert taken[f"compiled {k}"] == taken[f"pure {k}"]
        for i in range(len(pairs)):  # a conversation's three packets: frames 3i+1 to 3i+3
            assert len({3 * i + j in taken[f"pure {k}"] for j in (1, 2, 3)}) == 1
    assert sorted(f for k in range(3) for f in taken[f"pure {k}"]) == list(range(1, 3 * len(pairs) + 1))
    assert all(taken[f"pure {k}"] for k in range(3))


def test_the_core_s_crc32_is_zlib_s() -> None:
    import zlib

    assert compiled.core is not None
    for n in (0, 1, 3, 4, 5, 12, 100):
        data = os.urandom(n)
        assert compiled.core.crc32(data) == zlib.crc32(data)


def test_conversation_budget(tmp_path: Path, core: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The partition's conversation memory cleared when full (the pure reader's cache; the compiled core decides
    each packet without it)."""
    from analyzer import budgets

    monkeypatch.setattr(budgets, "PARTITION_CONVERSATIONS", 5)
    frames = [udp_pkt(f"10.2.0.{i % 20 + 1}", C, 1000 + i % 20, 53) for i in range(100)]
    path = write(tmp_path, pb.pcap(stamped(frames, 10)))
    for k in range(2):
        check(path, (k, 2))


def test_zero_filled_tail(tmp_path: Path, core: str) -> None:
    frames = mixed()
    data = pb.pcap(stamped(frames)) + bytes(container.ZERO_RUN + 100)
    got = check(write(tmp_path, data))
    assert got["stats"]["packets"] == len(frames)
    assert "zero-filled to the end" in got["warnings"][0]


def test_short_zero_runs_are_empty_records(tmp_path: Path, core: str) -> None:
    frames = mixed()
    data = pb.pcap(stamped(frames[:3])) + bytes(16 * 5) + pb.pcap(stamped(frames[3:]))[24:]
    got = check(write(tmp_path, data))
    assert got["stats"]["packets"] == len(frames) + 5
    assert got["stats"]["non_ip"] == 3 + 5


def test_only_zeros(tmp_path: Path, core: str) -> None:
    got = check(write(tmp_path, pb.pcap([]) + bytes(container.ZERO_RUN * 2)))
    assert "zero-filled file" in got["error"]


@pytest.mark.parametrize("cut", [1, 7, 16, 30, 60])
def test_cut_short(tmp_path: Path, core: str, cut: int) -> None:
    data = pb.pcap(stamped(mixed()))
    got = check(write(tmp_path, data[:-cut]))
    assert "cut short" in got["warnings"][0]


def test_corrupt_length(tmp_path: Path, core: str) -> None:
    frames = mixed()
    data = pb.pcap(stamped(frames[:4])) + struct.pack("<IIII", 1, 2, 300_000, 300_000) + bytes(100)
    got = check(write(tmp_path, data))
    assert got["stats"]["packets"] == 4
    assert "captured length 300000 exceeds the maximum 262144" in got["warnings"][0]


@pytest.mark.parametrize("linktype", [101, 113, 147])
def test_other_link_types(tmp_path: Path, core: str, linktype: int) -> None:
    ip = pb.ipv4(A, B, 17, pb.udp(1, 2, b"raw"))
    frames = [ip] * 3 if linktype == 101 else [bytes(16) + ip] * 3
    got = check(write(tmp_path, pb.pcap(stamped(frames), linktype=linktype)))
    assert got["stats"]["linktypes"] == [(linktype, 3)]


def test_many_read_buffers(tmp_path: Path, core: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records across read buffers (a small CHUNK): the same batches, so the same progress ticks."""
    monkeypatch.setattr(container, "CHUNK", 700)
    monkeypatch.setattr(compiled, "CHUNK", 700)
    frames = [f for _ in range(20) for f in mixed()]
    frames.insert(50, udp_pkt(A, B, 1, 2, b"b" * 2000))  # a record larger than a buffer
    path = write(tmp_path, pb.pcap(stamped(frames, 7)))
    got = check(path)
    assert len(got["ticks"]) > 20
    assert got["stats"]["packets"] == len(frames)
    check(path, (1, 2))
    got = check(write(tmp_path, pb.pcap(stamped(frames, 7))[:-50], "cut.pcap"))
    assert "cut short" in got["warnings"][0]


def test_damaged_gzip(tmp_path: Path, core: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compressed stream that breaks mid-file: ``input unreadable after frame N`` from both cores."""
    monkeypatch.setattr(container, "CHUNK", 4096)
    monkeypatch.setattr(compiled, "CHUNK", 4096)
    frames = [f for _ in range(300) for f in mixed()]
    packed = gzip.compress(pb.pcap(stamped(frames, 7)), mtime=0)
    got = check(write(tmp_path, packed[: len(packed) * 2 // 3], "c.pcap.gz"))
    assert any("unreadable" in w or "cut short" in w for w in got["warnings"])
    assert 0 < got["stats"]["packets"] < len(frames)


@pytest.mark.parametrize("sweep_every", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize("n", [2, 3, 5])
def test_skipped_runs_end_where_sweeps_fall(tmp_path: Path, core: str, n: int, sweep_every: int) -> None:
    """With ``sweep_every``, the compiled core gives runs of skipped packets; every run ends on or before each
    multiple of ``sweep_every`` packets (a sweep falls on its last packet): ``FlowTable.run`` sees the same."""
    frames = []
    for i in range(200):
        client = f"10.3.{i % 11}.{i % 17 + 1}"
        frames.append(tcp_pkt(client, B, 30000 + i % 40, 443))
        if i % 9 == 0:
            frames += mixed()[5:]  # slow packets among them, some skipped
    path = write(tmp_path, pb.pcap(stamped(frames, 1000)))
    for k in range(n):
        got = check_runs(path, (k, n), sweep_every)
        assert got["stats"]["packets"] == len(frames)


def test_skipped_runs_across_read_buffers(tmp_path: Path, core: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(container, "CHUNK", 500)
    monkeypatch.setattr(compiled, "CHUNK", 500)
    frames = [tcp_pkt(f"10.4.0.{i % 30 + 1}", B, 30000 + i % 30, 443) for i in range(600)]
    path = write(tmp_path, pb.pcap(stamped(frames, 1000)))
    for k in range(4):
        check_runs(path, (k, 4), 64)


def test_fewer_tuples_for_skipped_runs(tmp_path: Path, core: str) -> None:
    frames = [tcp_pkt(f"10.5.0.{i % 50 + 1}", B, 30000 + i % 50, 443) for i in range(1000)]
    path = write(tmp_path, pb.pcap(stamped(frames, 1000)))
    per_packet = read(path, (0, 4))["packets"]
    got = read(path, (0, 4), 256)["packets"]
    assert len(per_packet) == 1000
    if core == "compiled":
        assert len(got) < 600
        assert any(p[2] == SKIPPED_RUN for p in got)
        skipped = sum(p[6] if p[2] == SKIPPED_RUN else p[2] == SKIPPED for p in got)
        assert skipped == sum(p[2] == SKIPPED for p in per_packet)
    else:
        assert got == per_packet


def test_mutated_captures(tmp_path: Path, core: str) -> None:
    """Random damage (bytes changed, cut, zeros and lengths written in): both cores read the same out of it."""
    rng = random.Random(7)
    frames = [f for _ in range(4) for f in mixed()]
    clean = pb.pcap(stamped(frames, 999))
    for case in range(150):
        data = bytearray(clean)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(24, len(data))
            kind = rng.randrange(5)
            if kind == 0:
                data[at] = rng.randrange(256)
            elif kind == 1:
                del data[at:]
            elif kind == 2:
                data[at:at] = bytes(rng.choice([16, 32, 100, container.ZERO_RUN]))
            elif kind == 3:
                data[at : at + 4] = struct.pack("<I", rng.choice([0, 1, 33, 34, 37, 38, 60, 262_145, 1 << 31]))
            else:
                data[at : at + 1] = bytes([0x45, 0x46, 0x08, 0x00, 0x20, 0x40])[rng.randrange(6) : rng.randrange(6) + 1]
        path = write(tmp_path, bytes(data), f"m{case}.pcap")
        check(path)
        check_runs(path, (case % 3, 3), 5)


def test_version_names_the_reader(core: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "analyzer", "--version"], capture_output=True, text=True, check=True, env=os.environ
    ).stdout
    assert out.splitlines()[1] == f"capture reader: {compiled.describe()}"
    assert ("compiled" in out) == (core == "compiled")
