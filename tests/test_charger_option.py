"""``--charger ID|ADDRESS`` on ``analyze``, ``timeline`` and ``flows``, end to end on the lab's four-charger
gateway capture; an unknown charger is one line naming the chargers there are, exit status 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from analyzer.diagnosis.pick import same_address
from analyzer.engine import build_timeline
from tests.conftest import PROJECT_CAPTURES

GATEWAY = str(PROJECT_CAPTURES / "gateway_mixed.pcap")  # GW-CP-01 … GW-CP-04 at 127.0.1.1 … 127.0.1.4
DEMO = str(PROJECT_CAPTURES / "demo.pcap")


def run(*args: str) -> Any:
    from analyzer.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def chargers_of(report_dir: Path, stem: str) -> list[tuple[str | None, str]]:
    report = json.loads((report_dir / f"{stem}.json").read_text())
    return [(c["id"], c["address"]) for c in report["chargers"]]


def test_analyze_reports_only_the_chargers_named_by_id_or_address(tmp_path: Path) -> None:
    every = run("analyze", GATEWAY, "-o", str(tmp_path / "all"), "--format", "json")
    assert len(chargers_of(tmp_path / "all", "gateway_mixed")) == 4
    res = run(
        "analyze", GATEWAY, "-o", str(tmp_path), "--format", "json", "--charger", "GW-CP-03", "--charger", "127.0.1.1"
    )
    assert chargers_of(tmp_path, "gateway_mixed") == [("GW-CP-01", "127.0.1.1"), ("GW-CP-03", "127.0.1.3")]
    assert res.exit_code == 1  # GW-CP-03's BootNotification was rejected
    healthy = run("analyze", GATEWAY, "-o", str(tmp_path), "--format", "json", "--charger", "GW-CP-01")
    assert healthy.exit_code == 0
    assert every.exit_code == 1
    report = json.loads((tmp_path / "gateway_mixed.json").read_text())
    assert {row["charger"] for row in report["timeline"]} == {"GW-CP-01"}


def test_an_unknown_charger_is_one_line_naming_those_there_are(tmp_path: Path) -> None:
    for command in (
        ["analyze", GATEWAY, "-o", str(tmp_path)],
        ["timeline", GATEWAY],
        ["flows", GATEWAY],
    ):
        res = run(*command, "--charger", "GW-CP-09")
        assert res.exit_code == 2, command
        (line,) = res.output.splitlines()
        assert line.startswith("error: ")
        assert "no charger GW-CP-09" in line
        assert "GW-CP-01 (127.0.1.1)" in line
        assert "GW-CP-04 (127.0.1.4)" in line
    assert not list(tmp_path.glob("*.json"))


def test_several_captures_skip_those_without_the_charger(tmp_path: Path) -> None:
    res = run("analyze", GATEWAY, DEMO, "-o", str(tmp_path), "--format", "json", "--charger", "127.0.1.2")
    assert res.exit_code == 0
    assert "demo.pcap: no charger 127.0.1.2; its chargers: CP-ALPHA-001 (127.0.0.1): skipped" in res.output
    assert not (tmp_path / "demo.json").exists()
    assert [a for _, a in chargers_of(tmp_path, "gateway_mixed")] == ["127.0.1.2"]
    nowhere = run("analyze", GATEWAY, DEMO, "-o", str(tmp_path), "--charger", "nobody")
    assert nowhere.exit_code == 2
    assert "error: no charger nobody in any of the 2 captures" in nowhere.output


def test_timeline_shows_only_that_chargers_events_with_a_charger_column() -> None:
    full = run("timeline", GATEWAY).output.splitlines()
    header = full[0].split()
    assert header[:7] == ["time", "(UTC)", "frame", "stream", "charger", "layer", "event"]
    named = {line.split()[4] for line in full[1:] if line.split()[2] == "tcp"}
    assert named == {"GW-CP-01", "GW-CS-02", "GW-CP-03", "GW-CP-04"}
    one = run("timeline", GATEWAY, "--charger", "GW-CP-03", "--format", "json")
    rows = [json.loads(x) for x in one.output.splitlines()]
    assert rows
    assert {r["charger"] for r in rows} == {"GW-CP-03"}
    assert {r["stream_filter"] for r in rows} == {"tcp.stream eq 2"}
    built = build_timeline(GATEWAY)
    expected = [
        e.frame
        for e in built.timeline.events
        if e.flow_id in {f.id for f in built.flows if f.client.address == "127.0.1.3"}
    ]
    assert [r["frame"] for r in rows] == expected


def test_flows_shows_only_that_chargers_flows() -> None:
    res = run("flows", GATEWAY, "--charger", "127.0.1.4", "--format", "json")
    assert res.exit_code == 0
    doc = json.loads(res.output)
    assert [(f["client"]["address"], f["proto"], f["stream"]) for f in doc["flows"]] == [("127.0.1.4", "tcp", 3)]
    table = run("flows", GATEWAY, "--charger", "GW-CP-04").output.splitlines()
    assert table[2].split()[:3] == ["#", "stream", "proto"]
    assert [line.split()[1:3] for line in table[3:]] == [["3", "tcp"]]


def test_addresses_compare_as_addresses() -> None:
    assert same_address("2001:db8::1", "2001:DB8:0::1")
    assert same_address("[2001:db8::1]", "2001:db8::1")
    assert not same_address("10.0.0.1", "10.0.0.10")
    assert not same_address("CP-1", "CP-2")
