"""``analyze --workers auto`` (the default): one process for standard input, a pipe or a small capture file, else
one per core this process may use (its affinity, within a cgroup's CPU quota), at most ``budgets.AUTO_WORKERS``; the
report is the one a single process writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import analyzer.engine as engine
from analyzer import budgets, cores
from analyzer.cli import cli
from analyzer.cores import auto_workers, usable_cores

LAB = Path(__file__).resolve().parents[1] / "captures"
CAPTURE = LAB / "gateway_mixed.pcap"


def _quota(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cpu.max"
    p.write_text(text)
    return p


def test_the_cores_are_the_affinity_within_a_cgroup_quota(tmp_path: Path) -> None:
    mine = len(os.sched_getaffinity(0))
    assert usable_cores(tmp_path / "none") == mine  # no cgroup v2 file: the affinity
    assert usable_cores(_quota(tmp_path, "max 100000\n")) == mine  # no quota
    assert usable_cores(_quota(tmp_path, "100000 100000\n")) == 1  # one CPU's worth
    assert usable_cores(_quota(tmp_path, "6400000 100000\n")) == mine  # 64 CPUs' worth: the affinity is less
    assert usable_cores(_quota(tmp_path, "50000 100000\n")) == 1  # half a CPU: still one process
    assert usable_cores(_quota(tmp_path, "garbage\n")) == mine


def test_a_small_file_standard_input_and_a_pipe_are_read_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cores, "usable_cores", lambda: 8)
    assert CAPTURE.stat().st_size < budgets.AUTO_WORKERS_BYTES
    assert auto_workers(CAPTURE) == 1
    assert auto_workers("-") == 1
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert auto_workers(fifo) == 1
    assert auto_workers(tmp_path / "missing.pcap") == 1
    monkeypatch.setattr(budgets, "AUTO_WORKERS_BYTES", CAPTURE.stat().st_size)
    assert auto_workers(CAPTURE) == budgets.AUTO_WORKERS  # big enough: as many as the cores, at most the budget
    monkeypatch.setattr(cores, "usable_cores", lambda: 2)
    assert auto_workers(CAPTURE) == 2
    monkeypatch.setattr(cores, "usable_cores", lambda: 1)
    assert auto_workers(CAPTURE) == 1


def test_analyze_reads_a_big_capture_with_the_cores_it_has(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's default is auto: each capture gets its own count, and the report is one process's."""
    asked: list[int] = []

    analyze = engine.analyze

    def counting(path: str, settings: object, salvage: bool = False, workers: int = 1, **kw: object) -> object:
        asked.append(workers)
        return analyze(path, settings, salvage=salvage, workers=workers, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "analyze", counting)
    monkeypatch.setattr(cores, "usable_cores", lambda: 2)
    monkeypatch.setattr(budgets, "AUTO_WORKERS_BYTES", CAPTURE.stat().st_size)
    small = LAB / "clock_reset.pcap"
    assert small.stat().st_size < budgets.AUTO_WORKERS_BYTES
    runner = CliRunner()
    auto = runner.invoke(cli, ["analyze", str(CAPTURE), str(small), "-o", str(tmp_path / "auto"), "-q"])
    one = runner.invoke(cli, ["analyze", str(CAPTURE), str(small), "-o", str(tmp_path / "one"), "-q", "-j", "1"])
    assert (auto.exit_code, auto.output) == (one.exit_code, one.output)
    assert asked == [2, 1, 1, 1]  # auto: two processes for the big capture, one for the small; then -j 1
    for fmt in ("json", "md", "html"):
        name = f"{CAPTURE.stem}.{fmt}"
        assert (tmp_path / "auto" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()


def test_workers_takes_a_number_or_auto() -> None:
    runner = CliRunner()
    for bad, why in (("0", "not in the range"), ("lots", "not a number of processes or auto")):
        r = runner.invoke(cli, ["analyze", str(CAPTURE), "-o", "-", "-j", bad])
        assert r.exit_code == 2
        assert why in r.output
