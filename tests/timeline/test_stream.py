"""``ghostcap timeline`` streams: the same events in the same order as the whole timeline, within a bounded
reorder window; and ``analyze`` keeps memory flat on a gateway capture twice as long."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from analyzer import budgets
from analyzer.engine import build_timeline
from analyzer.events.tcp import TcpSyn
from analyzer.report.timeline_out import event_line, table_header, timeline_table
from analyzer.timeline.keeper import EventKeeper
from analyzer.timeline.stream import EventStream

ROOT = Path(__file__).resolve().parents[2]
LAB = sorted((ROOT / "captures").glob("*.pcap*"))


def _syn(frame: int) -> TcpSyn:
    return TcpSyn(ts_ns=frame, frame=frame, flow_id=1, direction=0, src="a", dst="b")


def test_the_window_puts_late_events_in_place_and_counts_what_comes_too_late() -> None:
    out: list[int] = []
    s = EventStream(lambda e, *_: out.append(e.frame), window=3)
    for f in (5, 3, 4, 9, 8, 1, 10, 11, 12):
        s.add(_syn(f))
    s.close()
    assert out == [3, 4, 1, 5, 8, 9, 10, 11, 12]  # 1 came after 3 and 4 had gone
    assert s.late == 1
    assert s.written == 9


@pytest.mark.parametrize("capture", LAB[::4], ids=lambda p: p.name)
def test_streamed_table_is_the_whole_timeline(capture: Path) -> None:
    """The same lines (Wireshark streams included) as the table of the whole timeline; the charger column, which
    streaming fills from the WebSocket upgrades alone, is left out of the comparison."""
    lines: list[str] = []
    stations: set[str] = set()

    def write(e, stream, charger) -> None:  # type: ignore[no-untyped-def]
        lines.append(event_line(e, stream, None))
        if charger:
            stations.add(charger)

    build_timeline(capture, (), EventStream(write))
    whole = build_timeline(capture)
    assert table_header() + "".join(lines) == timeline_table(whole)
    upgrades = {getattr(e, "station_id", None) for e in whole.timeline.events if e.kind == "http.request"}
    assert stations == upgrades - {None}


def test_cli_timeline_ndjson_is_one_object_per_event() -> None:
    cap = ROOT / "captures" / "ocpp_boot_callerror.pcap"
    out = subprocess.run(
        [sys.executable, "-m", "analyzer", "timeline", str(cap), "--format", "ndjson"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.splitlines()
    assert len(out) == len(build_timeline(cap).timeline.events)
    assert all(line.startswith('{"time":') for line in out)


def _kept(path: Path) -> dict[str, int]:
    keeper = EventKeeper(pending_flows=200)
    built = build_timeline(path, (), keeper)
    tl = built.timeline
    pending = set(keeper.pending)
    judged = [e for e in tl.events if e.flow_id not in pending]
    dns = {f.id for f in tl.flows.values() if f.server_port == 53}
    per_flow: dict[int | None, int] = {}
    for e in tl.events:
        per_flow[e.flow_id] = per_flow.get(e.flow_id, 0) + 1
    return {
        "total": keeper.released.events + sum(keeper.released.thinned.values()) + len(tl.events),
        "kept_not_dns": sum(1 for e in judged if e.flow_id not in dns),
        "flows_not_dns": len({e.flow_id for e in judged if e.flow_id not in dns}),
        "thinned": sum(keeper.released.thinned.values()),
        "released": keeper.released.flows,
        "other_names_resolved": sum(
            1 for e in judged if e.kind == "dns.response" and e.qname != "csms.example-cpo.net" and e.addresses
        ),
        "most_per_flow": max(per_flow.values()),
    }


def test_analyze_keeps_memory_flat_on_a_longer_gateway_capture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The live objects (kept events) stay flat while the capture triples: the chargers' sessions are thinned,
    the background released; what grows is the chargers' own lookups of the CSMS name (their attempts). The budgets
    are lowered so that a capture small enough for the test suite reaches them."""
    monkeypatch.setattr(budgets, "FLOW_EVENTS_THIN", 60)
    monkeypatch.setattr(budgets, "FLOW_EVENTS_EDGE", 15)
    monkeypatch.setattr(budgets, "FLOW_EVENTS_HARD", 300)
    sizes = {}
    for n in (12_000, 36_000):
        pcap = tmp_path / f"gw{n}.pcap"
        args = ["--packets", str(n), "--duration", str(n / 40), "--chargers", "8", "--midstream", "1"]
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_fleet.py"), str(pcap), *args], check=True)
        sizes[n] = _kept(pcap)
    small, big = sizes[12_000], sizes[36_000]
    assert big["total"] > 2.5 * small["total"]  # three times the traffic...
    # ...about the same kept per connection (the longer capture holds a few more: later wss sessions, a reconnection)
    assert big["kept_not_dns"] / big["flows_not_dns"] < 1.1 * small["kept_not_dns"] / small["flows_not_dns"]
    assert big["kept_not_dns"] < 1.5 * small["kept_not_dns"]
    # lookups of other names are released (the failed ones are kept while the capture names no CSMS: here the
    # sessions began before the capture, so no upgrade names it)
    assert small["other_names_resolved"] == big["other_names_resolved"] == 0
    assert big["thinned"] > 2 * small["thinned"] > 0
    assert big["released"] > 2 * small["released"] > 0
    for s in (small, big):
        assert s["most_per_flow"] <= 60 + 30  # a connection's events stay near the thinning budget
