"""The engine lets go of a flow's decoder and SYN counts when the flow table finishes the flow."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.engine import _Dispatch, rebuild_flows
from analyzer.events.tcp import FlowEnd, TcpSyn
from analyzer.tls.notes import random_tag
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


def test_skipping_is_the_protocol_check_per_class() -> None:
    from analyzer.decoders.base import SkippingDecoder
    from analyzer.decoders.dns import DnsTcpDecoder
    from analyzer.decoders.http_upgrade import HttpUpgradeDecoder
    from analyzer.decoders.ocpp import ocpp_message_factory
    from analyzer.decoders.tls import TlsDecoder
    from analyzer.engine import _skipping

    for decoder in (TlsDecoder(1), DnsTcpDecoder(1), HttpUpgradeDecoder(1, ocpp_message_factory)):
        assert _skipping(decoder) == isinstance(decoder, SkippingDecoder)
        assert _skipping(decoder) == isinstance(decoder, SkippingDecoder)  # the remembered answer
    assert _skipping(TlsDecoder(2))


def test_keeper_gets_every_event_and_the_tally_the_tls_ones(tmp_path: Path) -> None:
    from analyzer.events.tls import TlsClientHello
    from analyzer.timeline.keeper import EventKeeper
    from tests.decoders.test_tls import CH_RECORD

    c, s = "10.1.0.5", "10.9.0.1"
    frames = [
        pb.ether(pb.ipv4(c, s, 6, pb.tcp(50001, 443, 100, 0, pb.SYN))),
        pb.ether(pb.ipv4(s, c, 6, pb.tcp(443, 50001, 900, 101, pb.SYN | pb.ACK))),
        pb.ether(pb.ipv4(c, s, 6, pb.tcp(50001, 443, 101, 901, pb.ACK | pb.PSH, CH_RECORD))),
    ]
    path = tmp_path / "t.pcap"
    path.write_bytes(pb.pcap([(1_000_000_000 * i, f) for i, f in enumerate(frames)]))
    plain, kept = _Dispatch(), _Dispatch(keeper=EventKeeper())
    rebuild_flows(path, table=plain.table)
    rebuild_flows(path, table=kept.table)
    assert kept.keeper is not None
    assert kept.keeper.events() == plain.events  # type: ignore[union-attr]
    (hello,) = [e for e in plain.events if isinstance(e, TlsClientHello)]
    assert kept.tally.randoms == {random_tag(hello.random)} == {int(hello.random[-16:], 16)}
    assert [f.id for f in kept.keeper.flows.values()] == [e.flow_id for e in plain.events if isinstance(e, FlowEnd)]  # type: ignore[union-attr]


def _events_alive() -> int:
    import gc

    from analyzer.events.base import Event

    return sum(isinstance(o, Event) for o in gc.get_objects())


@pytest.mark.parametrize("workers", [1, 2])
def test_an_analysis_is_freed_when_dropped_not_by_the_cyclic_collector(workers: int) -> None:
    """Once the capture is read, nothing refers back to the dispatcher (``_Dispatch.unlink``): the analysis, the
    keeper's records and every event are freed as soon as the caller drops them. With the cycles, a capture's whole
    analysis waited for a collection (112k objects of the 200k gateway capture; 180 ms at the end of the 1M job)."""
    import gc

    from analyzer.engine import analyze

    capture = Path(__file__).resolve().parents[1] / "captures" / "ocpp_boot_rejected.pcap"
    gc.collect()
    before = _events_alive()
    gc.disable()
    try:
        analysis = analyze(capture, workers=workers)
        assert len(analysis.timeline.events) > 10
        assert _events_alive() > before
        del analysis
        assert _events_alive() == before
    finally:
        gc.enable()


def test_what_reading_leaves_alive_goes_to_the_oldest_generation_unwalked() -> None:
    """At the end of the reading (``read_capture``), what is alive leaves the young generation without a collection
    walking it (``gc.freeze`` then ``unfreeze``), before the thresholds drop; objects a caller froze stay frozen."""
    import gc

    from analyzer.engine import _Dispatch, read_capture

    capture = Path(__file__).resolve().parents[1] / "captures" / "ocpp_boot_callerror.pcap"
    collections: list[int] = []

    def counted(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 0:
            collections.append(1)

    was = gc.get_threshold()
    gc.set_threshold(10**9, 50, 50)  # no collection of its own during the reading
    gc.callbacks.append(counted)
    try:
        read_capture(capture, _Dispatch())
        young = gc.get_count()[0]
        gc.freeze()
        frozen = gc.get_freeze_count()
        read_capture(capture, _Dispatch())
        still = gc.get_freeze_count()
        gc.unfreeze()
    finally:
        gc.callbacks.remove(counted)
        gc.set_threshold(*was)
    assert collections == []
    assert young < 1000  # aged: the reading's survivors (thousands of objects) left the young generation
    assert still >= frozen  # a caller's frozen objects were not let go
