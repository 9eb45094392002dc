"""The clock analysis of a long connection: its offsets are the medians of every sample the capture showed, not only
of the samples the thinning of its routine middle kept (its first and last events), with one process or two; and the
first reading of a reset clock is kept, however deep in the middle it comes."""

from __future__ import annotations

import base64
import hashlib
import json
import statistics
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analyzer import budgets
from analyzer.diagnosis.clock import Offsets, analyse_clock
from analyzer.engine import analyze, build_timeline
from analyzer.events.clock import ClockSample
from analyzer.events.ocpp import OcppCall, OcppCallResult
from analyzer.events.websocket import WsMessage
from analyzer.parallel import Owner
from analyzer.timeline.keeper import EventKeeper
from tests import pcapbuild as pb
from tests.report.test_hostile_capture import ws_frame

CSMS = "10.3.0.1"
N = 1500  # Heartbeats per charger: 7,500 events, fifteen times the thinning budget
LATE = 300  # the last ones answered by a CSMS clock DRIFT_S ahead
DRIFT_S = 100


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _session(charger: str, sport: int, step_s: int) -> pb.TcpTalk:
    """A charger's session: upgrade, Boot accepted, ``N`` Heartbeats answered with the capture's time, the last
    ``LATE`` with a clock ``DRIFT_S`` ahead of it (``TcpTalk``: a packet every ``step_s`` from 1,800,000,000 s)."""
    talk = pb.TcpTalk(charger, CSMS, sport, 9000, step_ns=step_s * 10**9)
    talk.open(_upgrade(f"CP-{charger}"))

    def call(uid: str, action: str, payload: dict, answer: dict) -> None:
        talk.send(True, pb.ACK | pb.PSH, ws_frame(json.dumps([2, uid, action, payload]).encode(), masked=True))
        talk.send(False, pb.ACK | pb.PSH, ws_frame(json.dumps([3, uid, answer]).encode(), masked=False))

    def now(ahead: int = 0) -> dict:  # the time of the packet about to be sent
        return {"currentTime": _iso(1_800_000_000 + (len(talk.frames) + 1) * step_s + ahead)}

    call("0", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}, {**now(), "interval": 60})
    for i in range(1, N + 1):
        call(f"{charger}-{i}", "Heartbeat", {}, now(DRIFT_S if i > N - LATE else 0))
    return talk


def _upgrade(station: str) -> tuple[bytes, bytes]:
    """``pcapbuild.ws_upgrade`` with a key of the station's own (one key seen twice is one session relayed)."""
    request, response = pb.ws_upgrade(station)
    key = base64.b64encode(station.encode().ljust(16, b"-")[:16])
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    return (
        request.replace(b"dGhlIHNhbXBsZSBub25jZQ==", key),
        response.replace(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", accept),
    )


def _two_partitions() -> tuple[str, str]:
    """Two charger addresses that ``--workers 2`` reads in different processes."""
    owner = Owner(0, 2)
    port = (40000).to_bytes(2) + (9000).to_bytes(2) + bytes(16)
    first: dict[bool, str] = {}
    for last in range(2, 250):
        address = f"10.3.0.{last}"
        first.setdefault(owner(6, pb.ip4(address), pb.ip4(CSMS), port), address)
        if len(first) == 2:
            return first[True], first[False]
    raise AssertionError("no two addresses in different partitions")


@pytest.fixture(scope="module")
def drifting(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames = [f for i, a in enumerate(_two_partitions()) for f in _session(a, 40000 + i, 1 + i).frames]
    cap = tmp_path_factory.mktemp("clock") / "drifting.pcap"
    cap.write_bytes(pb.pcap(sorted(frames, key=lambda f: f[0])))
    return cap


@pytest.mark.parametrize("workers", [1, 2])
def test_a_thinned_connections_offsets_are_the_medians_of_every_sample(drifting: Path, workers: int) -> None:
    whole = build_timeline(drifting).timeline  # no keeper: every event
    csms: dict[str, list[int]] = {}  # by charger address: every offset of the CSMS's clock
    for e in whole.events:
        if isinstance(e, ClockSample) and e.side == "csms":
            csms.setdefault(whole.flows[e.flow_id].client_addr, []).append(e.value_ns - e.ts_ns)  # type: ignore[index]
    a = analyze(drifting, workers=workers)
    assert len(csms) == 2
    assert {r.charger.address for r in a.results} == set(csms)
    for r in a.results:
        every = csms[r.charger.address]
        assert len(every) == N + 1
        truth = int(statistics.median(every))
        assert truth == 0  # the CSMS's clock was right for four fifths of the session
        assert r.clock.csms_offset_ns == truth
        kept = [s.value_ns - s.ts_ns for s in r.clock.csms]
        assert len(kept) < len(every) // 4  # the samples the thinning kept: the first and last events
        assert int(statistics.median(kept)) != truth  # alone they would say the CSMS's clock is ahead
    assert sum(c.get("clock.sample", 0) for c in a.timeline.dropped.values()) > N


def _exchange(frame: int, uid: str, charger_clock_ns: int) -> list:
    """A StatusNotification answered, with the charger's clock as its timestamp showed it."""
    common = {"flow_id": 1, "version": "1.6", "unique_id": uid, "validated": True, "action": "StatusNotification"}
    return [
        WsMessage(ts_ns=frame, frame=frame, flow_id=1, direction=0, opcode="text", size=90, wire_size=90),
        OcppCall(ts_ns=frame, frame=frame, direction=0, size=90, payload_text="{}", **common),  # type: ignore[arg-type]
        ClockSample(
            ts_ns=frame, frame=frame, flow_id=1, direction=0, side="charger", source="ocpp", value_ns=charger_clock_ns
        ),
        WsMessage(ts_ns=frame + 1, frame=frame + 1, flow_id=1, direction=1, opcode="text", size=20, wire_size=20),
        OcppCallResult(
            ts_ns=frame + 1, frame=frame + 1, direction=1, size=20, payload_text="{}", pairing="paired", **common
        ),  # type: ignore[arg-type]
    ]


def test_the_first_reading_of_a_reset_clock_stays_when_its_exchange_is_thinned() -> None:
    start = 1_800_000_000 * 10**9
    reset = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()) * 10**9
    n = budgets.FLOW_EVENTS_THIN  # exchanges of five events: five times the budget
    at = n // 2  # the clock resets here, in the middle, and reads 2000-01-01 from then on
    events = []
    for i in range(n):
        ts = start + 10 * i
        events += _exchange(ts, f"s{i}", ts if i < at else reset + 10 * i)
    keeper = EventKeeper()
    for e in events:
        keeper.add(e)
    kept = keeper.events()
    first_reset = events[5 * at + 2]
    assert first_reset in kept
    assert len(kept) < len(events) // 10
    clock = analyse_clock(kept, [keeper.dropped_clock[1]])
    assert (clock.reset, clock.reset_epoch) == (first_reset, "2000-01-01")
    offsets = [s.value_ns - s.ts_ns for s in events if isinstance(s, ClockSample)]
    assert clock.charger_offset_ns == int(statistics.median(offsets))


def test_past_the_budget_every_other_offset_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budgets, "CLOCK_OFFSETS_PER_FLOW", 8)
    o = Offsets()
    for v in range(100):
        o.add(v)
    assert (o.seen, o.every) == (100, 16)
    assert list(o.values) == [0, 16, 32, 48, 64, 80, 96]  # spread evenly over the whole connection
    few = Offsets()
    for v in range(8):
        few.add(v)
    assert list(few.values) == list(range(8))  # under the budget: every one
    chunks = Offsets()  # what thinning hands over, a thinning's samples at a time: the same
    for start in range(0, 100, 7):
        chunks.extend(list(range(start, min(start + 7, 100))))
    assert (list(chunks.values), chunks.seen, chunks.every) == (list(o.values), o.seen, o.every)
