"""``facts.flow_events``, ``flow_kinds`` and ``lookups``: a charger's events of one flow, the kinds of its events and
its lookups by name, found once per charger rather than scanned per flow (again when the events change); and
``Timeline.kinds_of``."""

from __future__ import annotations

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.facts import flow_events, flow_kinds, lookups
from analyzer.events.dns import DnsQuery
from analyzer.events.tcp import TcpRst, TcpSyn
from analyzer.timeline import Timeline


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


def _query(frame: int, fid: int, name: str) -> DnsQuery:
    return DnsQuery(
        ts_ns=frame * 1000, frame=frame, flow_id=fid, direction=0, id=frame, qname=name, qtype="A", transport="udp"
    )


def test_the_kinds_of_each_flow_s_events() -> None:
    rst = TcpRst(ts_ns=3000, frame=3, flow_id=7, direction=1, src="10.0.0.2:80", dst="10.0.0.1:5000")
    ch = Charger(key="cp", station_id=None, address="10.0.0.1", events=[_syn(1, 7), _syn(2, 8), rst])
    assert flow_kinds(ch, 7) == {"tcp.syn", "tcp.rst"}
    assert flow_kinds(ch, 8) == {"tcp.syn"}
    assert flow_kinds(ch, 9) == frozenset()
    ch.events = [_syn(1, 7), _query(2, 7, "csms.example")]  # another list: found again
    assert flow_kinds(ch, 7) == {"tcp.syn", "dns.query"}
    ch.events.append(TcpRst(ts_ns=4000, frame=4, flow_id=8, direction=1, src="10.0.0.2:80", dst="10.0.0.1:5000"))
    assert flow_kinds(ch, 8) == {"tcp.rst"}  # the same list, longer: found again


def test_lookups_by_name_found_once_and_again_when_the_events_change() -> None:
    ch = Charger(key="cp", station_id=None, address="10.0.0.1", events=[_query(1, 5, "CSMS.example")])
    first = lookups(ch)
    assert list(first) == ["csms.example"]
    assert [q.frame for q in first["csms.example"].queries] == [1]
    assert lookups(ch) is first  # every rule asks: not found again
    ch.events.append(_query(2, 5, "ntp.example"))
    again = lookups(ch)
    assert again is not first
    assert list(again) == ["csms.example", "ntp.example"]


def test_a_timeline_gives_each_flow_s_kinds() -> None:
    rst = TcpRst(ts_ns=3000, frame=3, flow_id=7, direction=1, src="10.0.0.2:80", dst="10.0.0.1:5000")
    tl = Timeline.build([rst, _syn(1, 7), _query(2, 8, "a.example")], {}, 0, 3000, 3)
    assert tl.kinds_of(7) == {"tcp.syn", "tcp.rst"}
    assert tl.kinds_of(8) == {"dns.query"}
    assert tl.kinds_of(9) == frozenset()
    assert tl == Timeline.build([rst, _syn(1, 7), _query(2, 8, "a.example")], {}, 0, 3000, 3)
