"""Limits of ``ghostcap triage``: a ``--query`` has a time limit and cannot ATTACH; a worker dies with its
supervisor."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from analyzer.cli import cli
from analyzer.triage import store
from analyzer.triage.store import QueryError, Store, open_readonly, run_query
from analyzer.triage.worker import FAULTS_ENV
from tests.conftest import PROJECT_CAPTURES, ROOT

FOREVER = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "triage.db"
    Store(path).close()
    return path


def test_a_query_that_runs_forever_is_stopped(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = open_readonly(db)
    t0 = time.monotonic()
    with pytest.raises(QueryError, match=r"query stopped after 0.5 s \(the time limit of --query\)"):
        run_query(conn, FOREVER, time_limit=0.5)
    assert time.monotonic() - t0 < 5
    assert run_query(conn, "SELECT count(*) AS n FROM results") == (["n"], [(0,)])  # the connection still works
    monkeypatch.setattr(store, "QUERY_TIME_LIMIT_S", 0.5)
    monkeypatch.setattr(run_query, "__defaults__", (0.5,))
    res = CliRunner().invoke(cli, ["triage", "--db", str(db), "--query", FOREVER])
    assert res.exit_code == 1
    assert "error: query stopped after 0.5 s (the time limit of --query)" in res.output


def test_attach_is_refused(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "created.db"
    target.parent.mkdir()
    for sql in (f"ATTACH DATABASE '{target}' AS x", f"attach '{target}' as x; SELECT 1"):
        res = CliRunner().invoke(cli, ["triage", "--db", str(db), "--query", sql])
        assert res.exit_code == 1
        assert "ATTACH and DETACH are not allowed" in res.output
    assert not target.exists()


SUPERVISOR = """
import sys
from pathlib import Path
from analyzer.triage.command import run_triage
run_triage([sys.argv[1]], Path(sys.argv[2]), workers=1, timeout=None, echo=lambda m: None, tty=False)
"""


def test_a_worker_dies_with_its_killed_supervisor(tmp_path: Path) -> None:
    cap = tmp_path / "hang_here.pcap"
    cap.write_bytes((PROJECT_CAPTURES / "tcp_reset.pcap").read_bytes())
    env = {**os.environ, "PYTHONPATH": str(ROOT), FAULTS_ENV: "hang:hang_here"}
    workers: list[psutil.Process] = []
    sup = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(cap), str(tmp_path / "out")], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not workers:
            time.sleep(0.2)
            workers = [p for p in psutil.Process(sup.pid).children(recursive=True) if "spawn_main" in " ".join(
                p.cmdline())]  # fmt: skip
        assert workers, "the supervisor started no worker"
        time.sleep(1.0)  # the worker is inside its (hanging) task
        sup.send_signal(signal.SIGKILL)
        sup.wait(10)
        _, alive = psutil.wait_procs(workers, timeout=5)
        assert not alive, f"worker(s) {[p.pid for p in alive]} outlived the supervisor"
    finally:
        if sup.poll() is None:
            sup.kill()
        for p in workers:  # only the processes this test started
            with contextlib.suppress(psutil.Error):
                p.kill()
