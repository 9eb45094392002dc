"""``ghostcap analyze`` diagnoses and reports a capture with the garbage collector's thresholds of
``budgets.GC_THRESHOLDS`` (its own time on the 1M gateway capture: 2.1 s → 0.1 s) and reads it with those of
``GC_READING_THRESHOLDS``, and restores the caller's after, also when the job fails; so does a triage task."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from analyzer import engine
from analyzer.budgets import GC_READING_THRESHOLDS, GC_THRESHOLDS
from analyzer.diagnosis import runner
from analyzer.report import build
from analyzer.report.writer import run_analyze
from tests.conftest import PROJECT_CAPTURES

CAPTURE = str(PROJECT_CAPTURES / "tcp_refused.pcap")


def _spy(monkeypatch: pytest.MonkeyPatch, module: object, name: str, seen: dict[str, tuple[int, ...]]) -> None:
    real = getattr(module, name)

    def spy(*args: object, **kwargs: object) -> object:
        seen[name] = gc.get_threshold()
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)


def test_the_job_runs_with_the_thresholds_and_restores_the_caller_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, tuple[int, ...]] = {}
    _spy(monkeypatch, runner, "diagnose_all", seen)
    _spy(monkeypatch, build, "report_dict", seen)
    _spy(monkeypatch, engine, "rebuild_flows", seen)
    before = gc.get_threshold()
    assert before not in (GC_THRESHOLDS, GC_READING_THRESHOLDS)
    run_analyze([CAPTURE], str(tmp_path), ["json", "html"], None, False, echo=lambda m: None)
    assert seen == {
        "rebuild_flows": GC_READING_THRESHOLDS,
        "diagnose_all": GC_THRESHOLDS,
        "report_dict": GC_THRESHOLDS,
    }
    assert gc.get_threshold() == before


def test_a_failing_job_restores_them_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "report_dict", boom)
    before = gc.get_threshold()
    with pytest.raises(KeyboardInterrupt):
        run_analyze([CAPTURE], str(tmp_path), ["json"], None, False, echo=lambda m: None)
    assert gc.get_threshold() == before


def test_a_triage_capture_runs_with_them_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A triage task (a local worker's or a Dask worker's process): the same thresholds, the worker's restored."""
    from analyzer.triage.worker import Outcome, Task, WorkerConfig, _run

    seen: dict[str, tuple[int, ...]] = {}
    _spy(monkeypatch, runner, "diagnose_all", seen)
    _spy(monkeypatch, build, "report_dict", seen)
    _spy(monkeypatch, engine, "rebuild_flows", seen)
    before = gc.get_threshold()
    out = Outcome(index=0)
    _run(Task(0, CAPTURE, "tcp_refused.pcap", "tcp_refused", None), CAPTURE, (), WorkerConfig(out_dir=None), out)
    assert out.rows
    assert set(out.texts) == {"json", "html"}
    assert seen == {
        "rebuild_flows": GC_READING_THRESHOLDS,
        "diagnose_all": GC_THRESHOLDS,
        "report_dict": GC_THRESHOLDS,
    }
    assert gc.get_threshold() == before
