"""The engine lets go of a flow's decoder and SYN counts when the flow table finishes the flow."""

from __future__ import annotations

from pathlib import Path

from analyzer.engine import _Dispatch, rebuild_flows
from analyzer.events.tcp import FlowEnd, TcpSyn
from tests import pcapbuild as pb


def test_finished_flows_leave_no_decoder_or_syn_count_behind(tmp_path: Path) -> None:
    c, s = "10.1.0.5", "10.9.0.1"
    frames = []
    for sport in (50001, 50002):
        frames += [
            pb.ether(pb.ipv4(c, s, 6, pb.tcp(sport, 80, 100, 0, pb.SYN))),
            pb.ether(pb.ipv4(s, c, 6, pb.tcp(80, sport, 900, 101, pb.SYN | pb.ACK))),
            pb.ether(pb.ipv4(c, s, 6, pb.tcp(sport, 80, 101, 901, pb.ACK | pb.PSH, b"GET / HTTP/1.1\r\n\r\n"))),
        ]
    path = tmp_path / "t.pcap"
    path.write_bytes(pb.pcap([(1_000_000_000 * i, f) for i, f in enumerate(frames)]))
    dispatch = _Dispatch()
    rebuild_flows(path, table=dispatch.table)
    assert dispatch.decoders == {}
    assert dispatch.syns == {}
    assert [type(e) for e in dispatch.events if isinstance(e, (TcpSyn, FlowEnd))] == [TcpSyn, TcpSyn, FlowEnd, FlowEnd]
