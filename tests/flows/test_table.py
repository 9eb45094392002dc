"""Flow table: roles, Zeek-style state and history, port reuse, ICMP errors, UDP, release of ended flows."""

from __future__ import annotations

from pathlib import Path

from analyzer.engine import rebuild_flows
from analyzer.events.base import StreamChunk
from analyzer.flows import table as table_mod
from analyzer.flows.table import FlowTable, server_is_dst
from tests import pcapbuild as pb

C, S = "10.1.0.5", "10.9.0.1"
CP, SP = 51000, 443


def c2s(seq: int, ack: int = 0, flags: int = pb.ACK, data: bytes = b"", sport: int = CP) -> bytes:
    return pb.ether(pb.ipv4(C, S, 6, pb.tcp(sport, SP, seq, ack, flags, data)))


def s2c(seq: int, ack: int = 0, flags: int = pb.ACK, data: bytes = b"", dport: int = CP) -> bytes:
    return pb.ether(pb.ipv4(S, C, 6, pb.tcp(SP, dport, seq, ack, flags, data)))


def run(tmp_path: Path, frames: list[bytes], **callbacks: object):  # type: ignore[no-untyped-def]
    path = tmp_path / "t.pcap"
    path.write_bytes(pb.pcap([(1_000_000_000 * i, f) for i, f in enumerate(frames)]))
    return rebuild_flows(path, **callbacks)  # type: ignore[arg-type]


def handshake(isn_c: int = 100, isn_s: int = 5000) -> list[bytes]:
    return [c2s(isn_c, 0, pb.SYN), s2c(isn_s, isn_c + 1, pb.SYN | pb.ACK), c2s(isn_c + 1, isn_s + 1)]


def test_full_connection_is_sf_with_history_and_streams(tmp_path: Path) -> None:
    chunks: list[StreamChunk] = []
    frames = [
        *handshake(),
        c2s(101, 5001, pb.ACK | pb.PSH, b"hello"),
        s2c(5001, 106, pb.ACK | pb.PSH, b"world!"),
        c2s(106, 5007, pb.FIN | pb.ACK),
        s2c(5007, 107, pb.FIN | pb.ACK),
        c2s(107, 5008),
    ]
    res = run(tmp_path, frames, on_chunk=chunks.append)
    (flow,) = res.flows
    assert (str(flow.client), str(flow.server)) == (f"{C}:{CP}", f"{S}:{SP}")
    assert flow.state == "SF"
    assert flow.history == "ShADdFf"
    assert flow.packets == [5, 3]
    assert flow.payload_bytes == [5, 6]
    assert [(c.direction, c.data, c.frame) for c in chunks] == [(0, b"hello", 4), (1, b"world!", 5)]
    assert flow.anomalies == []


def test_refused_vs_unanswered(tmp_path: Path) -> None:
    refused = run(tmp_path, [c2s(1, 0, pb.SYN), s2c(0, 2, pb.RST | pb.ACK)]).flows[0]
    assert refused.state == "REJ"
    assert refused.history == "Sr"
    silent = run(tmp_path, [c2s(1, 0, pb.SYN), c2s(1, 0, pb.SYN), c2s(1, 0, pb.SYN)]).flows[0]
    assert silent.state == "S0"
    assert silent.syn_retransmits == 2
    (a,) = silent.anomalies
    assert (a.name, a.frame, a.count) == ("tcp.syn_retransmission", 2, 2)


def test_reset_after_establishment(tmp_path: Path) -> None:
    res = run(tmp_path, [*handshake(), s2c(5001, 101, pb.RST | pb.ACK)])
    assert res.flows[0].state == "RSTR"
    res = run(tmp_path, [*handshake(), c2s(101, 5001, pb.RST)])
    assert res.flows[0].state == "RSTO"


def test_roles_from_syn_ack_when_syn_missing(tmp_path: Path) -> None:
    res = run(tmp_path, [s2c(5000, 101, pb.SYN | pb.ACK), c2s(101, 5001)])
    flow = res.flows[0]
    assert str(flow.client) == f"{C}:{CP}"
    assert flow.history == "hA"


def test_midstream_roles_from_ports(tmp_path: Path) -> None:
    res = run(tmp_path, [s2c(9000, 77, pb.ACK | pb.PSH, b"data"), c2s(77, 9004)])
    flow = res.flows[0]
    assert (flow.client.port, flow.server.port) == (CP, SP)
    assert flow.state == "OTH"
    assert [a.name for a in flow.anomalies] == ["tcp.no_handshake"]
    assert server_is_dst(51000, 8080)
    assert not server_is_dst(9000, 50123)
    assert server_is_dst(40000, 123)


def test_port_reuse_starts_a_new_flow(tmp_path: Path) -> None:
    first = [*handshake(100), c2s(101, 5001, pb.RST)]
    second = handshake(90_000, 70_000)
    res = run(tmp_path, first + second)
    assert [(f.first_frame, f.state) for f in res.flows] == [(1, "RSTO"), (5, "S1")]


def test_gap_recorded_as_anomaly_and_callback(tmp_path: Path) -> None:
    gaps = []
    frames = [*handshake(), c2s(101, 5001, pb.ACK, b"AAAA"), c2s(109, 5001, pb.ACK, b"CCCC"), s2c(5001, 113)]
    res = run(tmp_path, frames, on_gap=gaps.append)
    assert [(g.offset, g.size, g.frame) for g in gaps] == [(4, 4, 6)]
    assert [a.name for a in res.flows[0].anomalies] == ["tcp.gap"]


def test_icmp_port_unreachable_attaches_to_the_udp_flow(tmp_path: Path) -> None:
    query = pb.ipv4(C, "10.0.0.53", 17, pb.udp(40001, 53, b"q" * 12))
    icmp = pb.ipv4("10.0.0.53", C, 1, bytes([3, 3, 0, 0, 0, 0, 0, 0]) + query[:28])
    res = run(tmp_path, [pb.ether(query), pb.ether(icmp)])
    (flow,) = res.flows
    assert flow.proto_name == "udp"
    assert flow.state == "S0"
    (a,) = flow.anomalies
    assert (a.name, a.frame) == ("icmp.unreachable", 2)
    assert "port unreachable" in a.detail


def test_icmp_error_quoting_unknown_flow_is_kept(tmp_path: Path) -> None:
    quoted = pb.ipv4(C, "10.0.0.99", 6, pb.tcp(1, 2, 3, flags=pb.SYN))[:28]
    icmp = pb.ipv4("10.0.0.254", C, 1, bytes([3, 1, 0, 0, 0, 0, 0, 0]) + quoted)
    res = run(tmp_path, [pb.ether(icmp)])
    assert res.orphan_icmp == [(1, "destination unreachable (host unreachable) from 10.0.0.254")]


def test_udp_datagrams_reach_the_callback(tmp_path: Path) -> None:
    seen = []
    frames = [
        pb.ether(pb.ipv4(C, S, 17, pb.udp(5000, 123, b"n" * 48))),
        pb.ether(pb.ipv4(S, C, 17, pb.udp(123, 5000, b"m" * 48))),
    ]
    res = run(tmp_path, frames, on_datagram=lambda f, d, data, fr, ts: seen.append((f.id, d, len(data), fr)))
    assert seen == [(0, 0, 48, 1), (0, 1, 48, 2)]
    assert res.flows[0].state == "SF"


def test_idle_flows_are_finished_and_released(monkeypatch: object) -> None:
    monkeypatch.setattr(table_mod, "SWEEP_EVERY", 2)  # type: ignore[attr-defined]
    finished = []
    table = FlowTable(on_finish=finished.append)
    src, dst = pb.ip4(C), pb.ip4(S)
    hour = 3600 * 10**9

    def pkt(i: int, ts: int, sport: int) -> tuple:
        l4 = pb.tcp(sport, SP, 100, 0, pb.ACK | pb.PSH, b"x")
        return (i, ts, 6, src, dst, l4, len(l4))

    table.run([pkt(1, 0, 1111), pkt(2, 0, 2222), pkt(3, hour, 3333), pkt(4, hour, 3333)])
    # the two flows idle for an hour were finished by the sweep, before the end of the capture
    assert [f.id for f in finished] == [0, 1, 2]
    assert len(table.flows) == 3
    assert table.live == {}
