"""Isolation, with real faults: a worker that hangs, exits, segfaults, allocates without end or raises for one
capture costs that capture only (an error row), its worker is replaced and the batch goes on; Ctrl-C on a real
``ghostcap triage`` keeps every finished capture and says what is not done."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from analyzer.triage.command import run_triage
from analyzer.triage.pool import LocalPool
from analyzer.triage.worker import FAULTS_ENV, Task, WorkerConfig, inject_fault
from tests.conftest import PROJECT_CAPTURES, ROOT

GOOD = ["tcp_refused.pcap", "dns_nxdomain.pcap", "gateway_mixed.pcap", "ocpp_boot_rejected.pcap"]


def rows_by_capture(db: Path) -> dict[str, list[sqlite3.Row]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    out: dict[str, list[sqlite3.Row]] = {}
    for r in conn.execute("SELECT * FROM results ORDER BY id"):
        out.setdefault(Path(r["capture"]).name, []).append(r)
    conn.close()
    return out


def fleet(d: Path, faulty: dict[str, str]) -> None:
    """``d`` holds the good captures and, for each faulty name, a copy of tcp_reset.pcap (distinct bytes each)."""
    d.mkdir()
    for n in GOOD:
        shutil.copy(PROJECT_CAPTURES / n, d / n)
    base = (PROJECT_CAPTURES / "tcp_reset.pcap").read_bytes()
    for i, name in enumerate(faulty):
        (d / name).write_bytes(base + bytes(i))  # trailing bytes: a different sha256 each


def test_the_fault_hook_is_inert_without_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAULTS_ENV, raising=False)
    inject_fault("hang_exit_segv_alloc_raise.pcap")  # returns at once
    monkeypatch.setenv(FAULTS_ENV, "raise:boom")
    inject_fault("quiet.pcap")
    with pytest.raises(RuntimeError, match="injected failure"):
        inject_fault("boom.pcap")


def test_every_kind_of_worker_failure_is_one_error_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that exits, segfaults, allocates without end or raises costs its capture only; the good captures
    of the same batch are analysed. The time-out is generous (a good capture must never hit it, however busy the
    machine): each fault is caught at once, by the worker's death or its message, never by waiting for it."""
    faulty = {
        "f2_exit.pcap": "worker process exited with status 17",
        "f3_segv.pcap": "worker process died (SIGSEGV)",
        "f4_alloc.pcap": "memory",  # RLIMIT_AS in the worker or the supervisor's RSS watch, whichever is first
        "f5_raise.pcap": "analysis crashed: RuntimeError: injected failure for fleet/f5_raise.pcap (at worker.py:",
    }
    fleet(tmp_path / "fleet", faulty)
    monkeypatch.setenv(FAULTS_ENV, "exit:f2_exit;segv:f3_segv;alloc:f4_alloc;raise:f5_raise")
    out = tmp_path / "out"
    timeout = 120
    start = time.monotonic()
    result = run_triage(
        [str(tmp_path / "fleet")], out, workers=2, timeout=timeout, max_memory=600 << 20, echo=lambda m: None, tty=False
    )
    assert time.monotonic() - start < timeout  # no capture, faulty or not, waited for the time-out
    rows = rows_by_capture(out / "triage.db")
    for name, message in faulty.items():
        (r,) = rows[name]
        assert r["verdict"] == "error"
        assert message in r["error"], (name, r["error"])
        if name == "f4_alloc.pcap":
            assert r["error"] == "out of memory (the worker's memory limit)" or r["error"].startswith(
                "exceeded the memory limit of 600 MiB (RSS "
            ), r["error"]
        assert r["sha256"] is not None
    for name in GOOD:
        assert rows[name], name
        assert all(r["verdict"] == "fault" for r in rows[name]) or name == "gateway_mixed.pcap"
        assert all(r["error"] is None for r in rows[name]), [r["error"] for r in rows[name]]
    assert len(rows["gateway_mixed.pcap"]) == 4
    assert (result.done, result.failed) == (len(GOOD) + len(faulty), len(faulty))
    assert result.replaced >= 3  # exit, segv, alloc (raise keeps its worker)


def test_a_hung_worker_is_killed_at_the_time_out_and_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every capture of this batch hangs, so the time-out is the only way out of each: both become error rows,
    each worker is killed and replaced, and the batch goes on to the next (no real analysis is raced against the
    short time-out, which on a busy machine a good capture could lose)."""
    faulty = {"h1_hang.pcap": "", "h2_hang.pcap": "", "h3_hang.pcap": ""}
    d = tmp_path / "fleet"
    d.mkdir()
    base = (PROJECT_CAPTURES / "tcp_reset.pcap").read_bytes()
    for i, name in enumerate(faulty):
        (d / name).write_bytes(base + bytes(i))
    monkeypatch.setenv(FAULTS_ENV, "hang:_hang")
    out = tmp_path / "out"
    result = run_triage([str(d)], out, workers=2, timeout=2, echo=lambda m: None, tty=False)
    assert (result.done, result.failed, result.replaced) == (3, 3, 3)
    rows = rows_by_capture(out / "triage.db")
    assert sorted(rows) == sorted(faulty)
    for name in faulty:
        (r,) = rows[name]
        assert (r["verdict"], r["error"]) == ("error", "timed out after 2 s (worker killed)"), r["error"]
        assert r["sha256"] is not None


def test_the_supervisor_kills_a_worker_over_the_memory_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RSS watched from outside: with a limit below what a worker holds after its imports (~27 MB), a worker stuck
    in a task (so the check cannot race the task's end) is killed for memory, not for time."""
    monkeypatch.setenv(FAULTS_ENV, "hang:.pcap")
    cfg = WorkerConfig(out_dir=str(tmp_path))
    tasks = [Task(i, str(PROJECT_CAPTURES / n), n, f"s{i}", None) for i, n in enumerate(GOOD[:2])]
    seen: list[tuple[str, str | None]] = []
    stats = LocalPool(1, cfg, timeout=60, max_memory=16 << 20).run(tasks, lambda t, o: seen.append((t.name, o.error)))
    assert [n for n, _ in seen] == GOOD[:2]
    for _, error in seen:
        assert error is not None
        assert error.startswith("exceeded the memory limit of 16 MiB (RSS "), error
        assert error.endswith("MiB; worker killed)")
    assert stats.replaced == 2  # a kill each: the worker said which capture it was analysing, so none is suspected
    assert 16_000 < max(stats.peak_rss_kb.values()) < 400_000


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def stored_captures(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT count(DISTINCT sha256) FROM results").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


# runs the command after it with Ctrl-C's default action, as a terminal's foreground job has it: a process inherits
# an ignored SIGINT (a shell without job control starts its background commands so, e.g. ``(make test &)``), and a
# Python started with SIGINT ignored keeps ignoring it, as ``ghostcap`` should there
DEFAULT_SIGINT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])",
]


def test_ctrl_c_keeps_finished_captures_and_exits_130(tmp_path: Path) -> None:
    """A real ``ghostcap triage`` in its own session (like a shell job), SIGINT to the whole process group (as a
    terminal's Ctrl-C does) while both workers hang on the last captures (a worker may hold the next one queued:
    it is not done either)."""
    faulty = {"x1_hang.pcap": "", "x2_hang.pcap": "", "x3_hang.pcap": "", "x4_hang.pcap": ""}
    fleet(tmp_path / "fleet", faulty)
    out = tmp_path / "out"
    env = {**os.environ, FAULTS_ENV: "hang:_hang"}
    ghostcap = str(Path(sys.executable).parent / "ghostcap")
    proc = subprocess.Popen(
        [*DEFAULT_SIGINT, ghostcap, "triage", str(tmp_path / "fleet"), "-o", str(out), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: stored_captures(out / "triage.db") == len(GOOD), 60, "the good captures")
        time.sleep(0.5)  # both workers are now inside the hanging captures
        family = psutil.Process(proc.pid).children(recursive=True)
        assert len(family) >= 2
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):  # a time-out left them open: not a warning in the next test
            pipe.close()  # type: ignore[union-attr]
    assert proc.returncode == 130, err
    total = len(GOOD) + len(faulty)
    assert f"interrupted: {len(GOOD)} of {total} captures done and kept in" in err
    assert f"{len(faulty)} not done" in err
    assert "Traceback" not in err
    rows = rows_by_capture(out / "triage.db")
    assert sorted(rows) == sorted(GOOD)
    assert (out / "results.csv").read_text().count("\n") == 1 + sum(len(v) for v in rows.values())
    assert (out / "index.html").is_file()
    psutil.wait_procs(family, timeout=5)
    assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    # the next run picks up where this one stopped (the hangs are gone now)
    again = run_triage([str(tmp_path / "fleet")], out, workers=2, echo=lambda m: None, tty=False)
    assert (again.done, again.skipped, again.failed) == (len(faulty), len(GOOD), 0)
