"""``Meanwhile``: work done in a forked process, and ``analyze --workers N`` writing its HTML page there while it
writes its other reports; whatever goes wrong there, the work is done in the process itself."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from analyzer.meanwhile import Meanwhile
from analyzer.report import writer
from analyzer.report.writer import run_analyze

LAB = Path(__file__).resolve().parents[1] / "captures"


def test_the_work_runs_in_another_process() -> None:
    job = Meanwhile(lambda: (os.getpid(), os.getppid(), [1, "two", None]))
    pid, parent, value = job.result()
    assert pid != os.getpid()
    assert parent == os.getpid()
    assert value == [1, "two", None]


def test_a_value_of_none_is_told_from_a_failure() -> None:
    assert Meanwhile(lambda: None).result() is None
    assert Meanwhile(lambda: (None,)).result() == (None,)


def _raise() -> None:
    raise ValueError("broken")


@pytest.mark.parametrize(
    "fn",
    [
        _raise,
        lambda: lambda: 1,  # a result that does not pickle
        lambda: os._exit(3),  # the process ends without a result
        lambda: os.kill(os.getpid(), signal.SIGKILL),
    ],
    ids=["raises", "unpicklable", "exits", "killed"],
)
def test_a_failure_is_none(fn) -> None:
    assert Meanwhile(fn).result() is None


def test_a_process_that_cannot_start_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    from multiprocessing.context import ForkProcess

    def refused(self: object) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(ForkProcess, "start", refused)
    ran = []
    assert Meanwhile(lambda: ran.append(1)).result() is None
    assert ran == []  # nothing was done: the caller does it


def test_stop_ends_a_process_whose_result_nobody_reads() -> None:
    """A caller that met an error first stops the process: one left blocked on sending a result bigger than the
    pipe holds would hold up the exit (``multiprocessing`` joins its children there)."""
    import multiprocessing as mp

    job = Meanwhile(lambda: b"x" * 4_000_000)
    job.stop()
    assert mp.active_children() == []
    assert job.result() is None
    job.stop()  # twice is harmless


def _analyze(capture: Path, out: Path, workers: int, formats: list[str]) -> tuple[int, list[str]]:
    said: list[str] = []
    status = run_analyze(
        [str(capture)], str(out), formats, None, False, echo=said.append, line=said.append, workers=workers
    )
    return status, said


CAPTURE = LAB / "ocpp_silent_reboot.pcap"


def test_two_workers_write_the_html_page_in_another_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    me, render, write_json = os.getpid(), writer.render_report, writer.write_json_report
    pids = tmp_path / "pids"

    def spied(report: dict, fmt: str, compact: bool = False) -> str:
        with open(pids, "a") as f:
            f.write(f"{fmt} {os.getpid() == me}\n")
        return render(report, fmt, compact)

    def spied_json(report: dict, out_dir: str, stem: str) -> str:  # the JSON report is written as it is made
        with open(pids, "a") as f:
            f.write(f"json {os.getpid() == me}\n")
        return write_json(report, out_dir, stem)

    monkeypatch.setattr(writer, "render_report", spied)
    monkeypatch.setattr(writer, "write_json_report", spied_json)
    status, said = _analyze(CAPTURE, tmp_path / "two", 2, ["html", "json", "md"])
    assert sorted(pids.read_text().splitlines()) == ["html False", "json True", "md True"]
    one_status, one_said = _analyze(CAPTURE, tmp_path / "one", 1, ["html", "json", "md"])
    assert (status, [s.replace("/two/", "/") for s in said]) == (
        one_status,
        [s.replace("/one/", "/") for s in one_said],
    )
    two = tmp_path / "two" / "ocpp_silent_reboot"
    assert said[-1] == f"{CAPTURE}: wrote {two}.html, {two}.json, {two}.md"  # in the order asked for
    for fmt in ("html", "json", "md"):
        name = f"ocpp_silent_reboot.{fmt}"
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()


def test_one_worker_or_one_format_forks_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(fn):
        raise AssertionError("no process expected")

    monkeypatch.setattr(writer, "Meanwhile", refused)
    assert _analyze(CAPTURE, tmp_path / "a", 1, ["html", "json"])[0] == 1
    assert _analyze(CAPTURE, tmp_path / "b", 2, ["html"])[0] == 1
    assert _analyze(CAPTURE, tmp_path / "c", 2, ["json", "md"])[0] == 1


def test_a_page_its_process_could_not_write_is_written_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    me, render = os.getpid(), writer.render_report

    def dies_elsewhere(report: dict, fmt: str, compact: bool = False) -> str:
        if os.getpid() != me:
            os._exit(9)
        return render(report, fmt, compact)

    monkeypatch.setattr(writer, "render_report", dies_elsewhere)
    status, said = _analyze(CAPTURE, tmp_path, 2, ["html", "json"])
    assert status == 1
    assert (
        said[-1] == f"{CAPTURE}: wrote {tmp_path / 'ocpp_silent_reboot.html'}, {tmp_path / 'ocpp_silent_reboot.json'}"
    )
    assert (tmp_path / "ocpp_silent_reboot.html").read_text().startswith("<!DOCTYPE html>")


def test_with_no_process_to_be_had_the_job_is_done_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from multiprocessing.context import ForkProcess

    def refused(self: object) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(ForkProcess, "start", refused)
    status, said = _analyze(CAPTURE, tmp_path, 2, ["html", "json"])
    assert status == 1
    warning = "read by one process, not 2: no process could be started (Resource temporarily unavailable)"
    assert f"warning: {CAPTURE}: {warning}" in said
    page, data = tmp_path / "ocpp_silent_reboot.html", tmp_path / "ocpp_silent_reboot.json"
    assert said[-1] == f"{CAPTURE}: wrote {page}, {data}"
    assert page.read_text().startswith("<!DOCTYPE html>")


def test_a_page_that_cannot_be_rendered_is_an_internal_error_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    render = writer.render_report

    def broken_html(report: dict, fmt: str, compact: bool = False) -> str:
        if fmt == "html":
            raise RuntimeError("template broke")
        return render(report, fmt, compact)

    monkeypatch.setattr(writer, "render_report", broken_html)
    status, said = _analyze(CAPTURE, tmp_path, 2, ["html", "json"])
    errors = [s for s in said if "template broke" in s]
    assert len(errors) == 1
    assert "(html report)" in errors[0]
    assert status == writer.EXIT_INTERNAL
    assert said[-1] == f"{CAPTURE}: wrote {tmp_path / 'ocpp_silent_reboot.json'}"
    assert not (tmp_path / "ocpp_silent_reboot.html").exists()


def test_a_format_that_cannot_be_written_leaves_no_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing as mp

    from analyzer.errors import OutputError

    me, render = os.getpid(), writer.render_report

    def full_disk(report: dict, out_dir: str, stem: str) -> str:
        raise OutputError(f"cannot write {stem}.json: No space left on device")

    def slow_page(report: dict, fmt: str, compact: bool = False) -> str:
        if os.getpid() != me:
            time.sleep(30)  # still at work when the parent gives up
        return render(report, fmt, compact)

    monkeypatch.setattr(writer, "write_json_report", full_disk)
    monkeypatch.setattr(writer, "render_report", slow_page)
    started = time.monotonic()
    status, said = _analyze(CAPTURE, tmp_path, 2, ["html", "json"])
    assert time.monotonic() - started < 20
    assert status == writer.EXIT_USAGE
    assert said[-1] == "error: cannot write ocpp_silent_reboot.json: No space left on device"
    assert mp.active_children() == []
