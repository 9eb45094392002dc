"""A local triage worker's writer thread: it writes a capture's report files while the worker analyses the next,
and sends each outcome only once its files are on disk, in task order; a file it cannot write is that capture's
error, as when the worker writes them itself."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from analyzer.triage.worker import Outcome, Task, WorkerConfig, _Writer, run_task, write_files
from tests.conftest import PROJECT_CAPTURES


class _Pipe:
    """Records what was sent and whether every report file it names existed when it was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, bool, str | None]] = []

    def send(self, out: Outcome) -> None:
        written = bool(out.reports) and all(Path(p).is_file() for p in out.reports.values())
        self.sent.append((out.index, written, out.error))


def test_outcomes_are_sent_in_order_after_their_files_are_written(tmp_path: Path) -> None:
    pipe = _Pipe()
    writer = _Writer(pipe)  # type: ignore[arg-type]
    for i in range(5):
        writer.put(Outcome(index=i), [(str(tmp_path / f"c{i}.json"), f'{{"n": {i}}}\n')])
    writer.close()
    assert pipe.sent == [(i, True, None) for i in range(5)]
    assert (tmp_path / "c3.json").read_text() == '{"n": 3}\n'


def test_the_files_of_a_real_task_are_those_run_task_would_write(tmp_path: Path) -> None:
    """Deferred (``files``) and direct writing give the same files, and the same report paths in the outcome."""
    capture = str(PROJECT_CAPTURES / "tls12_cert_not_yet_valid.pcap")
    task = Task(0, capture, "c.pcap", "c", None)
    direct = run_task(task, WorkerConfig(out_dir=str(tmp_path / "direct")))
    files: list[tuple[str, str]] = []
    deferred = run_task(task, WorkerConfig(out_dir=str(tmp_path / "deferred")), files)
    assert deferred.reports == {}
    assert not (tmp_path / "deferred").exists()
    write_files(deferred, files)
    assert sorted(deferred.reports) == sorted(direct.reports) == ["html", "json"]
    for fmt, path in direct.reports.items():
        assert Path(deferred.reports[fmt]).read_bytes() == Path(path).read_bytes()
    assert deferred.error is None
    assert deferred.rows == direct.rows


def test_a_report_it_cannot_write_is_the_capture_s_error(tmp_path: Path) -> None:
    """A path under a regular file (its directory cannot be made: EEXIST), which fails for root too."""
    (tmp_path / "file").write_text("x")
    out = Outcome(index=0, rows=[{"verdict": "fault"}])
    write_files(out, [(str(tmp_path / "file" / "c.json"), "{}")])
    assert out.error == os.strerror(errno.EEXIST)
    assert out.reports == {}
    pipe = _Pipe()
    writer = _Writer(pipe)  # type: ignore[arg-type]
    writer.put(Outcome(index=1), [(str(tmp_path / "file" / "d.json"), "{}")])
    writer.put(Outcome(index=2), [(str(tmp_path / "e.json"), "{}")])
    writer.close()
    assert pipe.sent == [(1, False, os.strerror(errno.EEXIST)), (2, True, None)]
