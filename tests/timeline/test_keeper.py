"""The keeper's budgets: long connections thinned by complete routine exchanges only, finished background flows
released (and counted) while a charger's are kept."""

from __future__ import annotations

from analyzer import budgets
from analyzer.events.clock import ClockSample
from analyzer.events.dns import DnsQuery
from analyzer.events.ocpp import OcppCall, OcppCallError, OcppCallResult
from analyzer.events.tcp import TcpSyn
from analyzer.events.websocket import WsMessage
from analyzer.timeline.keeper import EventKeeper, routine_dropped
from analyzer.timeline.timeline import FlowInfo


def _info(fid: int, client: str, server: str, port: int, proto: str = "tcp") -> FlowInfo:
    return FlowInfo(fid, proto, client, 40000 + fid, server, port, 1, 2, 1, 2, "SF", "ShADadFf")


def _exchange(frame: int, uid: str, answered: bool = True) -> list:
    call = OcppCall(
        ts_ns=frame,
        frame=frame,
        flow_id=1,
        direction=0,
        version="1.6",
        unique_id=uid,
        size=20,
        action="Heartbeat",
        payload_text="{}",
        validated=True,
    )
    out = [WsMessage(ts_ns=frame, frame=frame, flow_id=1, direction=0, opcode="text", size=20, wire_size=20), call]
    if answered:
        res = OcppCallResult(
            ts_ns=frame + 1,
            frame=frame + 1,
            flow_id=1,
            direction=1,
            version="1.6",
            unique_id=uid,
            size=40,
            action="Heartbeat",
            payload_text='{"currentTime": "2026-01-01T00:00:00Z"}',
            validated=True,
        )
        out += [
            WsMessage(ts_ns=frame + 1, frame=frame + 1, flow_id=1, direction=1, opcode="text", size=40, wire_size=40),
            res,
            ClockSample(
                ts_ns=frame + 1, frame=frame + 1, flow_id=1, direction=1, side="csms", source="ocpp", value_ns=0
            ),
        ]
    return out


def test_routine_middle_drops_complete_exchanges_only() -> None:
    events = _exchange(10, "a") + _exchange(20, "b", answered=False) + _exchange(30, "c")
    err = OcppCallError(
        ts_ns=41,
        frame=41,
        flow_id=1,
        direction=1,
        version="1.6",
        unique_id="d",
        size=30,
        action=None,
        error_code="InternalError",
        error_code_canonical="InternalError",
        error_description="",
        error_details={},
    )
    kept = routine_dropped([*events, err])
    kinds = [(e.kind, e.frame) for e in kept]
    # the unanswered CALL and its message stay, as does the CALLERROR; the answered exchanges go whole
    assert kinds == [("websocket.message", 20), ("ocpp.call", 20), ("ocpp.call_error", 41)]


def test_a_violating_exchange_is_kept() -> None:
    events = _exchange(10, "a")
    bad = OcppCallResult(
        ts_ns=11,
        frame=11,
        flow_id=1,
        direction=1,
        version="1.6",
        unique_id="a",
        size=40,
        action="Heartbeat",
        payload_text="{}",
        validated=True,
        violations=("currentTime missing",),  # type: ignore[arg-type]
    )
    events[3] = bad
    assert [e for e in routine_dropped(events) if e.kind.startswith("ocpp.")] == [events[1], bad]


def test_a_long_session_is_thinned_with_its_edges_and_anomalies_kept() -> None:
    keeper = EventKeeper()
    n = budgets.FLOW_EVENTS_THIN * 3 // 5  # exchanges: 5 events each, three times the budget
    events = []
    for i in range(n):
        events += _exchange(10 + 2 * i, f"id{i}", answered=i != n // 2)
    for e in events:
        keeper.add(e)
    kept = keeper.events()
    assert len(kept) < budgets.FLOW_EVENTS_THIN
    edge = budgets.FLOW_EVENTS_EDGE
    assert kept[:edge] == events[:edge]
    assert kept[-edge:] == events[-edge:]
    unanswered = [e for e in kept if e.kind == "ocpp.call" and e.unique_id == f"id{n // 2}"]
    assert len(unanswered) == 1
    r = keeper.released
    assert r.thinned_flows == 1
    assert sum(r.thinned.values()) == len(events) - len(kept)
    assert r.thinned["ocpp.call"] == r.thinned["ocpp.call_result"]  # whole exchanges only


def test_a_long_session_is_thinned_once_more_at_the_end() -> None:
    """The routine exchanges that came after the last thinning go at the end as the earlier ones did; a flow never
    thinned (under the budget) keeps every event, however many more than its two edges it holds."""
    keeper = EventKeeper()
    edge = budgets.FLOW_EVENTS_EDGE
    thin = budgets.FLOW_EVENTS_THIN
    n = thin // 5 + 40  # exchanges of 5 events: the budget passed once, then 200 events more
    events = []
    for i in range(n):
        events += _exchange(10 + 2 * i, f"id{i}")
    for e in events:
        keeper.add(e)
    before = len(keeper.logs[1].events)
    assert before > 2 * edge + 100  # what came after the thinning is still there
    kept = keeper.events()
    assert len(kept) == 2 * edge  # every exchange of the middle was a clean one
    assert kept[:edge] == events[:edge]
    assert kept[-edge:] == events[-edge:]
    assert sum(keeper.released.thinned.values()) == len(events) - len(kept)
    assert keeper.dropped[1] == keeper.released.thinned
    assert keeper.released.thinned_flows == 1

    short = EventKeeper()
    few = []
    for i in range((thin - 10) // 5):  # under the budget: never thinned, so not at the end either
        few += _exchange(10 + 2 * i, f"s{i}")
    for e in few:
        short.add(e)
    assert len(few) > 2 * edge
    assert short.events() == few
    assert short.released.thinned_flows == 0


def test_the_hard_cap_keeps_one_of_each_kind_of_message() -> None:
    keeper = EventKeeper()
    events = []
    for i in range(budgets.FLOW_EVENTS_HARD * 2 // 2):  # unanswered CALLs: nothing routine to drop
        events += _exchange(10 + 2 * i, f"u{i}", answered=False)
    for e in events:
        keeper.add(e)
    assert len(keeper.events()) <= budgets.FLOW_EVENTS_HARD


def test_finished_background_flows_are_released_and_a_chargers_kept() -> None:
    keeper = EventKeeper(pending_flows=10)
    ends = {1: ("10.0.0.5", 51000, "203.0.113.10", 443)}
    keeper.endpoints = lambda fid: ends.get(fid)
    # a charger's OCPP flow teaches the keeper the CSMS endpoint
    keeper.add(_exchange(5, "x")[1])
    keeper.finish(_info(1, "10.0.0.5", "203.0.113.10", 443))
    # a later failed connection of another charger to the same endpoint, and 30 unrelated downloads
    keeper.add(TcpSyn(ts_ns=6, frame=6, flow_id=2, direction=0, src="10.0.0.6:1", dst="203.0.113.10:443"))
    keeper.finish(_info(2, "10.0.0.6", "203.0.113.10", 443))
    for fid in range(3, 33):
        keeper.add(TcpSyn(ts_ns=fid, frame=fid, flow_id=fid, direction=0, src="x", dst="y"))
        keeper.finish(_info(fid, "192.168.1.9", "198.51.100.7", 443))
    # a lookup for an unrelated name, and one by the charger
    keeper.add(
        DnsQuery(ts_ns=40, frame=40, flow_id=40, direction=0, qname="cdn.example", qtype="A", id=1, transport="udp")
    )
    keeper.finish(_info(40, "192.168.1.9", "192.168.1.1", 53, "udp"))
    keeper._judge()
    assert set(keeper.flows) == {1, 2}
    assert keeper.released.flows == 31
    assert keeper.released.servers == {"198.51.100.7:443": 30}
    assert keeper.released.names == {"cdn.example": 1}
    assert {e.flow_id for e in keeper.events()} == {1, 2}
    assert keeper.late_csms() == []


def test_a_released_server_later_shown_to_be_the_csms_is_named() -> None:
    keeper = EventKeeper(pending_flows=0)
    ends = {9: ("10.0.0.5", 51000, "203.0.113.10", 443)}
    keeper.endpoints = lambda fid: ends.get(fid)
    keeper.add(TcpSyn(ts_ns=1, frame=1, flow_id=1, direction=0, src="x", dst="y"))
    keeper.finish(_info(1, "10.0.0.7", "203.0.113.10", 443))  # judged at once: nothing known yet
    call = _exchange(5, "x")[1]
    keeper.add(type(call)(**{**_fields(call), "flow_id": 9}))
    assert keeper.late_csms() == [("203.0.113.10:443", 1)]


def _fields(e: object) -> dict:
    import dataclasses

    return {f.name: getattr(e, f.name) for f in dataclasses.fields(e)}  # type: ignore[arg-type]


def test_a_finished_background_flow_is_judged_at_the_second_sweep_after_it() -> None:
    """The flow table's idle sweeps (the same packets however ``--workers`` partitions the capture) judge a
    finished flow once it has waited a whole sweep: what comes right after it can still show it to matter."""
    keeper = EventKeeper()
    for fid in (3, 4):
        keeper.add(TcpSyn(ts_ns=fid, frame=fid, flow_id=fid, direction=0, src="x", dst="y"))
    keeper.finish(_info(3, "192.168.1.9", "198.51.100.7", 443))
    keeper.sweep()
    assert (keeper.pending, keeper.released.flows) == ([3], 0)
    keeper.finish(_info(4, "192.168.1.9", "198.51.100.7", 443))
    keeper.sweep()
    assert (keeper.pending, keeper.released.flows) == ([4], 1)
    assert set(keeper.flows) == {4}
