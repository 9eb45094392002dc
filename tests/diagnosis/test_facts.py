"""``facts.flow_events``: a charger's events of one flow, grouped once per charger rather than scanned per flow."""

from __future__ import annotations

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.facts import flow_events
from analyzer.events.tcp import TcpRst, TcpSyn


def _syn(frame: int, fid: int | None) -> TcpSyn:
    return TcpSyn(ts_ns=frame * 1000, frame=frame, flow_id=fid, direction=0, src="10.0.0.1:5000", dst="10.0.0.2:80")


def test_each_flow_s_events_in_capture_order_as_a_new_list() -> None:
    events = [_syn(1, 7), _syn(2, 8), _syn(3, 7), _syn(4, None), _syn(5, 8)]
    ch = Charger(key="cp", station_id="CP-1", address="10.0.0.1", flow_ids=[7, 8], events=events)
    assert flow_events(ch, 7) == [events[0], events[2]]
    assert flow_events(ch, 8) == [events[1], events[4]]
    assert flow_events(ch, 9) == []
    mine = flow_events(ch, 7)
    mine.clear()  # the caller's own list: the next caller still gets the flow's events
    assert flow_events(ch, 7) == [events[0], events[2]]


def test_events_that_changed_are_grouped_again() -> None:
    ch = Charger(key="cp", station_id=None, address="10.0.0.1", events=[_syn(1, 7)])
    assert len(flow_events(ch, 7)) == 1
    ch.events.append(TcpRst(ts_ns=2000, frame=2, flow_id=7, direction=1, src="10.0.0.2:80", dst="10.0.0.1:5000"))
    assert [e.frame for e in flow_events(ch, 7)] == [1, 2]
    ch.events = [_syn(3, 9)]
    assert flow_events(ch, 7) == []
    assert [e.frame for e in flow_events(ch, 9)] == [3]


def test_the_grouping_is_not_part_of_a_charger_s_value() -> None:
    a = Charger(key="cp", station_id=None, address="10.0.0.1", events=[_syn(1, 7)])
    b = Charger(key="cp", station_id=None, address="10.0.0.1", events=[_syn(1, 7)])
    flow_events(a, 7)
    assert a == b
    assert "grouped" not in repr(a)
