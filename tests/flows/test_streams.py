"""Wireshark's stream numbers (``analyzer.flows.streams``): every flow's ``stream`` is tshark's ``tcp.stream`` /
``udp.stream`` of its first frame, on crafted port-reuse cases, flows the table splits where Wireshark does not
(idle timeouts, the live-flow budget) and the port-reuse reproducer. Every lab and external capture is checked in
``tests/test_differential_tshark.py`` (one tshark run per capture gives the timestamps and the streams)."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import pytest

from analyzer.budgets import Budgets
from analyzer.engine import rebuild_flows
from analyzer.flows import streams
from analyzer.flows import table as table_mod
from analyzer.flows.streams import Ended, StreamNumbers
from analyzer.flows.table import FlowTable
from tests import pcapbuild as pb
from tests.conftest import ROBUSTNESS
from tests.tshark_oracle import frame_streams

C, S, R = "10.0.0.1", "10.0.0.2", "10.0.0.9"
SYN, ACK, RST, FIN = pb.SYN, pb.ACK, pb.RST, pb.FIN


def c2s(sport: int, seq: int, ack: int = 0, flags: int = ACK, data: bytes = b"") -> bytes:
    return pb.ether(pb.ipv4(C, S, 6, pb.tcp(sport, 80, seq, ack, flags, data)))


def s2c(sport: int, seq: int, ack: int = 0, flags: int = ACK, data: bytes = b"") -> bytes:
    return pb.ether(pb.ipv4(S, C, 6, pb.tcp(80, sport, seq, ack, flags, data)))


def udp_out(sport: int, dport: int) -> bytes:
    return pb.ether(pb.ipv4(C, S, 17, pb.udp(sport, dport, b"payload!")))


def udp_back(sport: int, dport: int) -> bytes:
    return pb.ether(pb.ipv4(S, C, 17, pb.udp(dport, sport, b"payload!")))


def icmp_unreachable(quoted_ip: bytes) -> bytes:
    return pb.ether(pb.ipv4(R, C, 1, struct.pack("!BBHI", 3, 3, 0, 0) + quoted_ip[:28]))


def handshake(sport: int, isn: int, sisn: int) -> list[bytes]:
    return [c2s(sport, isn, 0, SYN), s2c(sport, sisn, isn + 1, SYN | ACK), c2s(sport, isn + 1, sisn + 1)]


def closing(sport: int, cseq: int, sseq: int) -> list[bytes]:
    return [c2s(sport, cseq, sseq, FIN | ACK), s2c(sport, sseq, cseq + 1, FIN | ACK), c2s(sport, cseq + 1, sseq + 1)]


# name → (frames, tshark's stream of each frame: what Wireshark 4.0 gives, checked against tshark below)
CASES: dict[str, tuple[list[bytes], list[int]]] = {
    "same SYN after an RST is the same stream": (
        [c2s(1000, 100, 0, SYN), s2c(1000, 0, 101, RST | ACK), c2s(1000, 100, 0, SYN), s2c(1000, 0, 101, RST | ACK)],
        [0, 0, 0, 0],
    ),
    "same SYN after both FINs is the same stream": (
        handshake(1000, 100, 500) + closing(1000, 101, 501) + handshake(1000, 100, 900),
        [0] * 9,
    ),
    "another ISN after both FINs is a new stream": (
        handshake(1000, 100, 500) + closing(1000, 101, 501) + handshake(1000, 7000, 900),
        [0] * 6 + [1] * 3,
    ),
    "another ISN after an RST is a new stream": (
        [*handshake(1000, 100, 500), c2s(1000, 101, 501, RST | ACK), *handshake(1000, 7000, 900)],
        [0] * 4 + [1] * 3,
    ),
    "a SYN one below a data packet's sequence number continues it": (
        [c2s(1000, 101, 501, ACK, b"x"), c2s(1000, 100, 0, SYN)],
        [0, 0],
    ),
    "a SYN far from a data packet's sequence number is new": (
        [c2s(1000, 500, 1, ACK, b"x"), c2s(1000, 100, 0, SYN)],
        [0, 1],
    ),
    "a SYN from the server's side after a close is new": (
        handshake(1000, 100, 500) + closing(1000, 101, 501) + [s2c(1000, 3333, 0, SYN)],
        [0] * 6 + [1],
    ),
    "a SYN sent again, then another ISN": (
        [c2s(1000, 100, 0, SYN), c2s(1000, 100, 0, SYN), c2s(1000, 200, 0, SYN)],
        [0, 0, 1],
    ),
    "a SYN-ACK seen first acknowledges the SYN that follows": (
        [s2c(1000, 500, 101, SYN | ACK), c2s(1000, 100, 0, SYN)],
        [0, 0],
    ),
    "a SYN-ACK seen first, then a SYN with another ISN": (
        [
            s2c(1000, 500, 101, SYN | ACK),
            c2s(1000, 101, 501, ACK, b"x"),
            c2s(1000, 100, 0, SYN),
            c2s(1000, 300, 0, SYN),
        ],
        [0, 0, 0, 1],
    ),
    "ISNs alternating: each change is a new stream": (
        [c2s(1000, 100, 0, SYN), c2s(1000, 300, 0, SYN), c2s(1000, 100, 0, SYN)],
        [0, 1, 2],
    ),
    "an RST first sets the base too": (
        [c2s(1000, 100, 0, RST), c2s(1000, 500, 0, SYN)],
        [0, 1],
    ),
    "data after an RST stays in its stream": (
        [*handshake(1000, 100, 500), c2s(1000, 101, 501, RST | ACK), c2s(1000, 101, 501, ACK, b"abc")],
        [0] * 5,
    ),
}


def _write(tmp_path: Path, frames: list[bytes], gap_s: dict[int, int] | None = None) -> Path:
    path = tmp_path / "case.pcap"
    t, packets = 0, []
    for i, f in enumerate(frames):
        t += (gap_s or {}).get(i, 1) * 10**9
        packets.append((t, f))
    path.write_bytes(pb.pcap(packets))
    return path


def _ours(path: Path, table: FlowTable | None = None) -> dict[int, int | None]:
    """first frame → stream, for every flow ghostcap rebuilds."""
    return {f.first_frame: f.stream for f in rebuild_flows(path, table=table).flows}


def _tsharks(path: Path) -> dict[int, int | None]:
    return {fr: (t if t is not None else u) for fr, (t, u) in frame_streams(path).items()}


def _assert_matches_tshark(path: Path, table: FlowTable | None = None) -> int:
    ours, theirs = _ours(path, table), _tsharks(path)
    assert ours, path
    assert {fr: theirs[fr] for fr in ours} == ours
    return len(ours)


@pytest.mark.parametrize("name", list(CASES))
def test_port_reuse_cases_number_streams_as_wireshark(tmp_path: Path, name: str) -> None:
    frames, expected = CASES[name]
    path = _write(tmp_path, frames)
    assert list(_tsharks(path).values()) == expected  # what Wireshark does, as written above
    flows = rebuild_flows(path).flows
    assert [f.stream for f in flows] == [expected[f.first_frame - 1] for f in flows]


def test_udp_streams_and_an_icmp_error_quoting_an_unknown_datagram(tmp_path: Path) -> None:
    """Wireshark opens a UDP conversation for a datagram an ICMP error quotes (it takes a number); a TCP segment
    quoted so does not."""
    quoted_udp = pb.ipv4(C, S, 17, pb.udp(6000, 53, b"payload!"))
    quoted_tcp = pb.ipv4(C, S, 6, pb.tcp(6001, 80, 1, 0, SYN))
    frames = [
        udp_out(5000, 53),
        icmp_unreachable(quoted_udp),
        icmp_unreachable(quoted_tcp),
        c2s(7000, 1, 0, SYN),
        udp_out(7000, 53),
        udp_out(6000, 53),  # the quoted datagram's conversation: stream 1, opened by the ICMP error
        udp_back(5000, 53),
    ]
    path = _write(tmp_path, frames)
    flows = rebuild_flows(path).flows
    assert [(f.proto_name, f.first_frame, f.stream) for f in flows] == [
        ("udp", 1, 0),
        ("tcp", 4, 0),
        ("udp", 5, 2),
        ("udp", 6, 1),
    ]
    _assert_matches_tshark(path)


def test_flows_split_by_idle_timeouts_keep_their_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A UDP flow idle past its timeout and a TCP connection idle past its own are new flows for ghostcap and the
    same conversation for Wireshark."""
    monkeypatch.setattr(table_mod, "SWEEP_EVERY", 1)
    frames = [
        udp_out(123, 123),
        *handshake(4000, 100, 500),
        c2s(4000, 101, 501, ACK, b"a"),
        udp_out(9999, 53),  # 120 s later: the idle sweep ends the first UDP flow (past UDP's 60 s)
        udp_back(123, 123),
        udp_out(9998, 53),  # 400 s later: the sweep ends the TCP connection (past TCP's 300 s)
        c2s(4000, 102, 501, ACK, b"b"),
    ]
    path = _write(tmp_path, frames, gap_s={5: 120, 7: 400})
    flows = rebuild_flows(path).flows
    assert [(f.proto_name, f.first_frame, f.stream) for f in flows] == [
        ("udp", 1, 0),
        ("tcp", 2, 0),
        ("udp", 6, 1),
        ("udp", 7, 0),
        ("udp", 8, 2),
        ("tcp", 9, 0),
    ]
    _assert_matches_tshark(path)


def test_flows_released_by_the_flow_budget_keep_their_stream(tmp_path: Path) -> None:
    frames = [udp_out(5000 + i, 53) for i in range(6)] + [udp_back(5000 + i, 53) for i in range(6)]
    frames += [c2s(7000 + i, 10 * i, 0, SYN) for i in range(4)] + [c2s(7000, 0, 0, SYN), c2s(7001, 99, 0, SYN)]
    path = _write(tmp_path, frames)
    table = FlowTable(budgets=Budgets(live_flows=3))
    flows = rebuild_flows(path, table=table).flows
    assert table.released_early > 0
    assert len(flows) > 12
    _assert_matches_tshark(path, FlowTable(budgets=Budgets(live_flows=3)))


def test_forgetting_past_the_budget_is_counted_and_warned(tmp_path: Path) -> None:
    frames = [udp_out(5000 + i, 53) for i in range(8)] + [udp_back(5000, 53)]
    path = _write(tmp_path, frames)
    table = FlowTable(budgets=Budgets(live_flows=2, remembered_conversations=2))
    res = rebuild_flows(path, table=table)
    assert table.streams.forgotten > 0
    assert any("tcp.stream/udp.stream numbers from frame" in w for w in res.capture.warnings)
    # the returning datagram's conversation was forgotten: a new number where Wireshark reuses 0
    assert res.flows[-1].stream == 8


def test_memory_packs_a_number_and_two_bases() -> None:
    s = StreamNumbers(limit=10)
    key, rkey = (6, b"a"), (6, b"b")
    s.remember(key, 7, 0xFFFFFFFF, -1, frame=1)
    assert s.recall(rkey, key) == (7, -1, 0xFFFFFFFF)  # seen from the other side: the bases swap
    assert s.recall(rkey, key) is None  # taken over by the flow that recalled it


@pytest.mark.skipif(not ROBUSTNESS.is_dir(), reason="../shared/robustness not present")
def test_port_reuse_among_fifty_thousand_live_flows_numbers_streams_as_tshark() -> None:
    assert _assert_matches_tshark(ROBUSTNESS / "hang_syn_port_reuse_10k_among_50k_live.pcap.gz") == 60_000


def test_ended_conversations_are_found_by_their_whole_key_across_bucket_growth() -> None:
    ended = Ended(100_000)
    keys = [bytes([6, 7]) + i.to_bytes(10, "big") for i in range(5_000)]  # TCP IPv4 length, 12 bytes
    keys += [bytes([17]) + i.to_bytes(36, "big") for i in range(5_000)]  # UDP IPv6 length, 37 bytes
    for i, k in enumerate(keys):
        ended.put(k, i * 1_000_003)
    assert len(ended) == 10_000
    (generation,) = ended.generations
    assert all(len(t.buckets) > streams.BUCKETS for t in generation.values())  # grown past the first buckets
    assert ended.pop(b"\x00" * 12) is None
    assert ended.pop(b"short") is None
    # bytes that stand across two records (the end of one's value, the start of the next's key) are no key
    table = generation[12]
    table._spread(1)  # every record in one bucket, in which a search finds them
    whole = bytes(table.buckets[0])
    size = table.size
    straddling = [whole[at + size - 6 : at + size + 6] for at in range(0, 40 * size, size)]
    assert not set(straddling) & set(keys)
    assert all(whole.find(k) % size for k in straddling)  # found, but not where a record starts
    assert all(ended.pop(k) is None for k in straddling)
    assert [ended.pop(k) for k in keys[::-1]] == [i * 1_000_003 for i in range(len(keys))][::-1]
    assert len(ended) == 0
    assert ended.pop(keys[0]) is None


def test_ended_conversations_forget_the_oldest_first() -> None:
    ended = Ended(per_generation=10)
    keys = [i.to_bytes(13, "big") for i in range(100)]
    for i, k in enumerate(keys):
        ended.put(k, i)
    assert len(ended.generations) == 10
    assert ended.pop(keys[3]) == 3  # taken over: the oldest generation holds 0-2 and 4-9
    assert ended.drop_oldest() == 9
    assert ended.drop_oldest() == 10  # 10-19
    assert [ended.pop(k) for k in keys[:21]] == [None] * 20 + [20]
    assert len(ended) == 100 - 1 - 9 - 10 - 1
    for _ in range(8):
        ended.drop_oldest()
    assert len(ended) == 0
    assert ended.drop_oldest() == 0  # the only generation left is emptied
    ended.put(keys[0], 7)
    assert ended.pop(keys[0]) == 7


def test_ended_conversations_take_under_half_a_dicts_memory() -> None:
    server = bytes([192, 0, 2, 53])
    keys = [bytes([10, 20, i >> 8 & 255, i & 255]) + server + i.to_bytes(4, "big") + b"\x11" for i in range(20_000)]
    values = [i | 0xFFFFFFFF << 40 for i in range(20_000)]

    def grown(make) -> int:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            held = make()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert len(held) == 20_000
        return after - before

    def packed() -> Ended:
        e = Ended(100_000)
        for k, v in zip(keys, values, strict=True):
            e.put(bytes(k), v)
        return e

    as_dict = grown(lambda: {bytes(bytearray(k)): v + 1 for k, v in zip(keys, values, strict=True)})
    as_records = grown(packed)
    assert as_records * 2 < as_dict, (as_records, as_dict)
    assert as_records / 20_000 < 50


def test_past_the_budget_the_oldest_tenth_is_forgotten_a_generation_at_a_time() -> None:
    s = StreamNumbers(limit=1_000)
    keys = [(17, i.to_bytes(12, "big")) for i in range(5_000)]
    for i, k in enumerate(keys):
        s.remember(k, i, -1, -1, frame=i + 1)
    # as a dict dropping its oldest 100 whenever it held 1,001: 4,000 forgotten, the latest 1,000 kept
    assert (s.forgotten, len(s.ended), s.forgot_at) == (4_000, 1_000, 1_001)
    assert len(s.ended.generations) == 10
    assert all(s.recall(k, (17, b"")) is None for k in keys[:4_000])
    assert [s.recall(k, (17, b""))[0] for k in keys[4_000:]] == list(range(4_000, 5_000))
