"""Flow table: roles, Zeek-style state and history, port reuse, ICMP errors, UDP, release of ended flows."""

from __future__ import annotations

from pathlib import Path

from analyzer.budgets import Budgets
from analyzer.engine import rebuild_flows
from analyzer.events.base import StreamChunk
from analyzer.flows import table as table_mod
from analyzer.flows.table import Endpoint, Flow, FlowTable, format_address, server_is_dst
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


def syn(sport: int, ts: int, frame: int, flags: int = pb.SYN, seq: int = 1) -> tuple:
    l4 = pb.tcp(sport, SP, seq, 0, flags)
    return (frame, ts, 6, pb.ip4(C), pb.ip4(S), l4, len(l4))


def test_live_flow_budget_releases_the_least_recently_active_flows() -> None:
    finished = []
    table = FlowTable(on_finish=lambda f: finished.append((f.id, table.live_count)), budgets=Budgets(live_flows=10))
    packets = [syn(1000 + i, i, i + 1) for i in range(10)]  # flows 0..9
    packets.append(syn(1000, 10, 11, pb.ACK))  # flow 0 is active again: now the newest
    packets.append(syn(2000, 11, 12))  # flow 10: eleven live, past the budget of ten
    table.run(packets[:12])
    # a tenth of the budget (one) under it: the two least recently active flows went, 1 and 2, not 0
    assert [fid for fid, _ in finished[:2]] == [1, 2]
    assert table.released_early == 2
    assert all(f.closed for f in table.flows)
    assert len(table.flows) == 11


def test_a_released_flow_is_summarised_and_its_next_packet_starts_a_new_flow() -> None:
    finished = []
    table = FlowTable(on_finish=finished.append, budgets=Budgets(live_flows=2))
    table.run([syn(1000, 0, 1), syn(1001, 1, 2), syn(1002, 2, 3), syn(1000, 3, 4, pb.ACK)])
    assert table.released_early == 2
    assert [f.id for f in finished] == [0, 1, 2, 3]  # 0 then 1 released early; 2 and 3 at the end of the capture
    first, again = table.flows[0], table.flows[3]
    assert (first.state, first.history, first.packets) == ("S0", "S", [1, 0])
    assert again.client == first.client
    assert [a.name for a in again.anomalies] == ["tcp.no_handshake"]
    assert first.halves == (table_mod.NO_DATA, table_mod.NO_DATA)  # only counters are kept, shared when all 0
    assert first.stream_bytes(0) == 0


def test_closed_flows_are_released_before_open_ones() -> None:
    finished = []
    table = FlowTable(on_finish=finished.append, budgets=Budgets(live_flows=10))
    packets = [syn(1000 + i, i, i + 1) for i in range(10)]
    packets.append(syn(1005, 10, 11, pb.RST))  # flow 5 ends, the most recently active
    packets.append(syn(2000, 11, 12))  # past the budget: two go, the closed one first, then the oldest open one
    table.run(packets)
    assert table.released_early == 2
    assert [(f.id, f.state) for f in finished[:2]] == [(5, "RSTOS0"), (0, "S0")]


class NoScan(dict):  # type: ignore[type-arg]
    """A live table that fails any walk over it: what must be found by key."""

    def items(self):  # type: ignore[no-untyped-def]
        raise AssertionError("the live table was scanned")

    values = keys = __iter__ = items


def test_port_reuse_is_found_by_key_without_scanning_live_flows() -> None:
    table = FlowTable()
    table.live = NoScan()
    for i in range(50):
        table._tcp(i + 1, i, pb.ip4(C), pb.ip4(S), pb.tcp(3000 + i, SP, 7, 0, pb.SYN), 20)
    for n, isn in enumerate((100, 200, 300), start=1):  # the same 5-tuple, new ISNs: three new connections
        table._tcp(100 + n, 100 + n, pb.ip4(C), pb.ip4(S), pb.tcp(3000, SP, isn, 0, pb.SYN), 20)
    assert len(table.flows) == 53
    assert table.live_count == 50
    assert dict.__len__(table.live) == 100
    assert [f.closed for f in table.flows[:1] + table.flows[50:]] == [True, True, True, False]


def test_flow_budget_is_reported_as_a_capture_warning(tmp_path: Path) -> None:
    frames = [c2s(1, 0, pb.SYN, sport=40000 + i) for i in range(6)]
    path = tmp_path / "t.pcap"
    path.write_bytes(pb.pcap([(1_000_000_000 * i, f) for i, f in enumerate(frames)]))
    res = rebuild_flows(path, table=FlowTable(budgets=Budgets(live_flows=4)))
    assert len(res.flows) == 6
    assert "2 idle flows released early to stay within the flow budget of 4 live flows" in res.capture.warnings[0]


def _endpoints_as_formatted(flow: Flow, client: tuple[bytes, int], server: tuple[bytes, int]) -> None:
    """``flow``'s ends (formatted once, when it was made) are what formatting its raw ends gives now."""
    assert flow.client == Endpoint(format_address(client[0]), client[1])
    assert flow.server == Endpoint(format_address(server[0]), server[1])
    assert flow.ports == (client[1], server[1])


def test_endpoints_stay_the_formatted_ends_in_every_state_of_a_flow() -> None:
    client, server = (pb.ip4(C), CP), (pb.ip4(S), SP)
    seen: list[str] = []

    def control(flow: Flow, d: int, flags: int, frame: int, ts: int) -> None:
        seen.append(flow.state)
        _endpoints_as_formatted(flow, client, server)

    def finish(flow: Flow) -> None:
        seen.append("finished")
        _endpoints_as_formatted(flow, client, server)

    def pkt(frame: int, to_server: bool, seq: int, ack: int, flags: int, data: bytes = b"") -> tuple:
        src, dst = (client, server) if to_server else (server, client)
        l4 = pb.tcp(src[1], dst[1], seq, ack, flags, data)
        return (frame, frame, 6, src[0], dst[0], l4, len(l4))

    table = FlowTable(on_control=control, on_finish=finish)
    table.run(
        [
            pkt(1, True, 100, 0, pb.SYN),
            pkt(2, False, 5000, 101, pb.SYN | pb.ACK),
            pkt(3, True, 101, 5001, pb.ACK | pb.PSH, b"hello"),
            pkt(4, True, 106, 5001, pb.FIN | pb.ACK),
            pkt(5, False, 5001, 107, pb.FIN | pb.ACK),
            pkt(6, True, 107, 5002, pb.ACK),
        ]
    )
    assert seen == ["S0", "S1", "S2", "SF", "finished"]
    (flow,) = table.flows
    assert isinstance(flow.halves, tuple)  # released: the directions' summaries only
    assert flow.keys == ()
    _endpoints_as_formatted(flow, client, server)


def test_endpoints_of_an_ipv6_flow_and_of_a_flow_made_directly() -> None:
    v6a, v6b = bytes.fromhex("20010db8000000000000000000000001"), bytes.fromhex("20010db80000000000000000000000ff")
    flow = Flow(0, 17, (v6a, 40000), (v6b, 53), 1, 0)
    _endpoints_as_formatted(flow, (v6a, 40000), (v6b, 53))
    assert (str(flow.client), str(flow.server)) == ("[2001:db8::1]:40000", "[2001:db8::ff]:53")
    flow.release()
    _endpoints_as_formatted(flow, (v6a, 40000), (v6b, 53))


def test_proto_names() -> None:
    ends = (pb.ip4(C), 0), (pb.ip4(S), 0)
    names = [Flow(0, proto, *ends, 1, 0).proto_name for proto in (6, 17, 1, 58, 47)]
    assert names == ["tcp", "udp", "icmp", "icmpv6", "ip-proto-47"]


def test_anomalies_merge_the_reassembly_counters_in_order_of_first_frame() -> None:
    table = FlowTable()
    client, server = pb.ip4(C), pb.ip4(S)

    def pkt(frame: int, seq: int, data: bytes, to_server: bool = True) -> tuple:
        src, dst, sport, dport = (client, server, CP, SP) if to_server else (server, client, SP, CP)
        l4 = pb.tcp(sport, dport, seq, 5001 if to_server else 101, pb.ACK | pb.PSH, data)
        return (frame, frame, 6, src, dst, l4, len(l4))

    table.run(
        [
            pkt(1, 1, b"AAAA"),
            pkt(2, 1, b"AAAA"),  # a retransmission (no handshake: noted at frame 1)
            pkt(3, 900, b"xy", to_server=False),
            pkt(4, 900, b"xz", to_server=False),  # retransmitted bytes differ
        ]
    )
    (flow,) = table.flows
    # one entry per name: both directions' retransmissions merge into the first direction's
    assert [(a.name, a.frame, a.direction, a.count, a.detail) for a in flow.anomalies] == [
        ("tcp.no_handshake", 1, None, 1, "the capture starts after the connection was set up"),
        ("tcp.retransmission", 2, 0, 2, "1 client→server; 1 server→client"),
        ("tcp.overlap_mismatch", 4, 1, 1, "retransmitted bytes differ from the first copy (server→client)"),
    ]
