"""The Dask back end on a real ``LocalCluster`` of 2 worker processes: the same rows as the local pool, by shared
path and by sending bytes, errors included, and reports written by the supervisor; a worker that dies and a task
that hangs are error rows."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import cli
from analyzer.triage.command import run_triage
from analyzer.triage.worker import FAULTS_ENV
from tests.conftest import PROJECT_CAPTURES

NAMES = ["gateway_mixed.pcap", "tls_unknown_ca.pcap", "ocpp_boot_callerror.pcap", "dns_refused.pcap"]
SAME = ("capture", "sha256", "charger_id", "charger_address", "verdict", "fault", "cx_code", "frame", "fault_time")
SAME += ("capture_first", "capture_last", "error", "warnings", "report_html", "report_json", "ghostcap_version")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", memory_limit="2GiB"
    ) as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("dask-fleet")
    for n in NAMES:
        shutil.copy(PROJECT_CAPTURES / n, d / n)
    (d / "garbage.pcap").write_text("not a capture")
    return d


def rows(out: Path) -> list[tuple]:
    conn = sqlite3.connect(out / "triage.db")
    got = sorted(conn.execute(f"SELECT {', '.join(SAME)} FROM results"), key=lambda r: tuple(map(str, r)))
    conn.close()
    return got


def test_dask_gives_the_rows_and_reports_of_the_local_pool(cluster: str, fleet: Path, tmp_path: Path) -> None:
    local = run_triage([str(fleet)], tmp_path / "local", workers=2, echo=lambda m: None, tty=False)
    res = CliRunner().invoke(cli, ["triage", str(fleet), "-o", str(tmp_path / "dask"), "--scheduler", cluster])
    assert res.exit_code == 3, res.output  # garbage.pcap could not be analysed
    assert "triaged 5 captures" in res.output
    assert local.done == 5
    got = rows(tmp_path / "dask")
    assert got == rows(tmp_path / "local")
    assert len(got) == 4 + 1 + 1 + 1 + 1
    (err,) = [r for r in got if r[SAME.index("verdict")] == "error"]
    assert "not a packet capture" in err[SAME.index("error")]
    for r in got:
        if r[SAME.index("report_html")]:
            a = (tmp_path / "dask" / r[SAME.index("report_html")]).read_text()
            assert a == (tmp_path / "local" / r[SAME.index("report_html")]).read_text()


def test_dask_with_sent_bytes(cluster: str, fleet: Path, tmp_path: Path) -> None:
    log: list[str] = []
    result = run_triage([str(fleet)], tmp_path / "sent", scheduler=cluster, send_bytes=True, echo=log.append, tty=False)
    assert (result.done, result.failed) == (5, 1)
    assert len(result.peak_rss_kb) == 2  # both worker processes took tasks
    local = run_triage([str(fleet)], tmp_path / "local", workers=1, echo=lambda m: None, tty=False)
    assert local.done == 5
    assert rows(tmp_path / "sent") == rows(tmp_path / "local")


def test_dask_timeout_and_worker_death_are_error_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a real LocalCluster whose workers (and the ones their nannies restart) carry the fault hook. First a
    batch in which every capture hangs (so the time-out is the only way out, and no real analysis races it): each
    is cancelled at the time-out and its worker restarted. Then, on the restarted workers, a batch in which one
    capture's worker process exits: Dask retries it (allowed-failures 1), then it is an error row (KilledWorker),
    and the good capture of the batch is analysed."""
    import dask
    from distributed import Client, LocalCluster

    from analyzer.triage.worker import warm_up

    hangs, deaths = tmp_path / "hangs", tmp_path / "deaths"
    hangs.mkdir()
    deaths.mkdir()
    base = (PROJECT_CAPTURES / "tcp_reset.pcap").read_bytes()
    for i in (1, 2):
        (hangs / f"k{i}_hang.pcap").write_bytes(base + bytes([i]))
    shutil.copy(PROJECT_CAPTURES / NAMES[0], deaths / f"a_{NAMES[0]}")  # dispatched first
    (deaths / "k_exit.pcap").write_bytes(base + b"\x03")
    monkeypatch.setenv(FAULTS_ENV, "exit:k_exit;hang:_hang")  # inherited by the nannies, so by every worker
    # A LocalCluster (SpecCluster) closes a removed worker's nanny for good lost-worker-timeout (15 s) after the
    # removal if no worker of that name is connected at that moment. The hang batch's restarts are removals, so
    # under load the second batch's worker deaths could fall on that instant: both nannies were closed while the
    # good capture, its result lost with the killed worker, was being computed again on them, and it became a
    # KilledWorker. The cluster giving up on workers is the deployment's policy, not what this test is about.
    config = {"distributed.scheduler.allowed-failures": 1, "distributed.deploy.lost-worker-timeout": "1h"}
    with (
        dask.config.set(config),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", memory_limit="2GiB"
        ) as c,
        Client(c) as client,
    ):
        hung = run_triage([str(hangs)], tmp_path / "out1", scheduler=client, timeout=2, echo=lambda m: None)
        client.wait_for_workers(2, timeout=60)
        client.run(warm_up)
        died = run_triage([str(deaths)], tmp_path / "out2", scheduler=client, timeout=None, echo=lambda m: None)
    assert (hung.done, hung.failed) == (2, 2), results(tmp_path / "out1")
    for name, verdict, error in results(tmp_path / "out1"):
        assert (verdict, error) == ("error", "timed out after 2 s (Dask worker restarted)"), name
    assert (died.done, died.failed) == (2, 1), results(tmp_path / "out2")
    got = {name: (verdict, error) for name, verdict, error in results(tmp_path / "out2")}
    assert got["k_exit.pcap"][0] == "error"
    assert got["k_exit.pcap"][1].startswith("worker process died (Dask KilledWorker"), got["k_exit.pcap"]
    assert got[f"a_{NAMES[0]}"][1] is None
    assert {v for v, _ in got.values()} - {"error"} <= {"fault", "healthy"}


def test_a_result_lost_with_its_worker_is_waited_for_and_an_error_row_only_if_it_fails() -> None:
    """A finished task's result lives in its worker's memory: if that worker dies before the supervisor fetched it
    (the killer queued behind it on the same worker), Dask computes it again. ``wait`` counts the ``lost`` future
    as done (a KilledWorker finishing the same ``wait``): it is the capture's outcome once computed again, not an
    error row (``exception()`` waited and gave ``None``); if that fails, ``result()`` raises (KilledWorker): an
    error row, not the whole batch's exception."""
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    from analyzer.triage.dask_run import _outcome
    from analyzer.triage.worker import Outcome, Task

    class Lost:
        status = "lost"

        def __init__(self, result: Outcome | BaseException) -> None:
            self._result = result

        def exception(self) -> None:  # what Future.exception() gives once the lost result is computed again
            return None

        def result(self, timeout: float | None = None) -> Outcome:
            if isinstance(self._result, BaseException):
                raise self._result
            return self._result

        def cancel(self) -> None:
            self.cancelled = True

    task = Task(0, "/x/a.pcap", "a.pcap", "a-0", None)
    pids: dict[int, int] = {}
    good = Outcome(index=0, pid=4321, maxrss_kb=1000)
    assert _outcome(Lost(good), task, pids) is good
    assert pids == {4321: 1000}
    killed = KilledWorker("ghostcap-triage-0-1", type("W", (), {"address": "tcp://127.0.0.1:1"})(), 1)
    out = _outcome(Lost(killed), task, pids)
    assert out.index == 0
    assert out.error is not None
    assert out.error.startswith("worker process died (Dask KilledWorker: Attempted to run")
    out = _outcome(Lost(FutureCancelledError("ghostcap-triage-0-1", "lost")), task, pids)
    assert out.error is not None
    assert out.error.startswith("analysis failed on the cluster: FutureCancelledError")
    assert pids == {4321: 1000}
    never = Lost(TimeoutError())  # a cluster left without workers: the lost result is not computed again
    out = _outcome(never, task, pids, timeout=2)
    assert out.error == "timed out after 2 s (its result was lost with its worker and not computed again)"
    assert never.cancelled


def results(out: Path) -> list[tuple[str, str, str | None]]:
    conn = sqlite3.connect(out / "triage.db")
    got = [(Path(n).name, v, e) for n, v, e in conn.execute("SELECT capture, verdict, error FROM results")]
    conn.close()
    return got
