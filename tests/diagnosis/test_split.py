"""``diagnose_all`` with ``workers`` > 1: the later half of the chargers is diagnosed meanwhile by a forked process,
and the results are those one process gives, whatever becomes of that process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analyzer.config import Settings
from analyzer.diagnosis import runner
from analyzer.engine import Analysis, TimelineResult, build_timeline
from analyzer.report.build import report_dict
from analyzer.report.writer import render_report
from analyzer.timeline.keeper import EventKeeper

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> TimelineResult:
    """A gateway capture of 12 chargers, read."""
    pcap = tmp_path_factory.mktemp("fleet") / "gw.pcap"
    args = ["--packets", "20000", "--duration", "600", "--chargers", "12"]
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_fleet.py"), str(pcap), *args], check=True)
    return build_timeline(pcap, (), EventKeeper(None))


def _report(built: TimelineResult, workers: int) -> str:
    results, others = runner.diagnose_all(built.timeline, Settings(), workers)
    analysis = Analysis(built.capture, None, built.timeline, results, Settings(), others)
    return render_report(report_dict(analysis), "json")


def test_the_later_half_is_diagnosed_elsewhere_with_the_same_results(
    built: TimelineResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = _report(built, 1)
    monkeypatch.setattr(runner, "DIAGNOSIS_SPLIT_CHARGERS", 4)
    me, diagnose_one, log = os.getpid(), runner._diagnose_one, tmp_path / "where"

    def spied(ch, *args):
        with open(log, "a") as f:
            f.write(f"{ch.address} {os.getpid() == me}\n")
        return diagnose_one(ch, *args)

    monkeypatch.setattr(runner, "_diagnose_one", spied)
    assert _report(built, 2) == one
    rows = [line.split() for line in log.read_text().splitlines()]
    assert len(rows) == 12
    assert [here for _, here in rows].count("True") == 6  # the first half here, the later half elsewhere
    assert sorted(a for a, _ in rows) == sorted(c["address"] for c in json.loads(one)["chargers"])


def test_a_process_that_dies_leaves_the_chargers_to_this_one(
    built: TimelineResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = _report(built, 1)
    monkeypatch.setattr(runner, "DIAGNOSIS_SPLIT_CHARGERS", 4)
    me, diagnose_one = os.getpid(), runner._diagnose_one

    def dies_elsewhere(*args):
        if os.getpid() != me:
            os._exit(1)
        return diagnose_one(*args)

    monkeypatch.setattr(runner, "_diagnose_one", dies_elsewhere)
    assert _report(built, 2) == one


def test_few_chargers_or_one_worker_fork_nothing(built: TimelineResult, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(fn):
        raise AssertionError("no process expected")

    monkeypatch.setattr(runner, "Meanwhile", refused)
    runner.diagnose_all(built.timeline, Settings(), 2)  # 12 chargers, fewer than DIAGNOSIS_SPLIT_CHARGERS
    monkeypatch.setattr(runner, "DIAGNOSIS_SPLIT_CHARGERS", 4)
    runner.diagnose_all(built.timeline, Settings(), 1)


def test_an_error_here_leaves_no_process(built: TimelineResult, monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing as mp

    monkeypatch.setattr(runner, "DIAGNOSIS_SPLIT_CHARGERS", 4)
    me, diagnose_one = os.getpid(), runner._diagnose_one

    def fails_here(*args):
        if os.getpid() == me:
            raise RuntimeError("a bug outside the rules")
        time.sleep(30)  # the other half, still at work when this one fails
        return diagnose_one(*args)

    monkeypatch.setattr(runner, "_diagnose_one", fails_here)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="outside the rules"):
        runner.diagnose_all(built.timeline, Settings(), 2)
    assert mp.active_children() == []
    assert time.monotonic() - started < 20
