"""``exiting``: the ``ghostcap`` process ends with the status ``sys.exit`` would give, after the ``atexit`` functions
and with its output flushed, without freeing its heap."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from analyzer.exiting import exit_status

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (3, 3), (130, 130), (256, 0), (-1, 255)])
def test_status_of_an_integer_or_none(code: object, status: int) -> None:
    assert exit_status(code) == status


def test_a_text_code_is_written_and_is_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_status("no capture given") == 1
    assert capsys.readouterr().err == "no capture given\n"


def _run(body: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_atexit_functions_run_and_output_is_flushed(tmp_path: Path) -> None:
    done = _run(
        """
        import atexit, sys, tempfile
        from pathlib import Path
        from analyzer.exiting import exit_now
        out = Path(sys.argv[1])
        kept = tempfile.TemporaryDirectory(dir=out)  # removed by its weakref.finalize at exit
        (out / "dir").write_text(kept.name)
        atexit.register(lambda: (out / "atexit").write_text("ran"))
        class Held:
            def __del__(self):
                (out / "freed").write_text("freed")
        held = Held()  # a module's object: freed by the interpreter's teardown, which is skipped
        print("x" * 100_000, end="")  # more than a pipe's buffer, unflushed
        sys.stderr.write("last words")
        exit_now(7)
        """,
        tmp_path,
    )
    assert done.returncode == 7
    assert done.stdout == "x" * 100_000
    assert done.stderr == "last words"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert not Path((tmp_path / "dir").read_text()).exists()
    assert not (tmp_path / "freed").exists()


def test_a_text_code_exits_1_with_the_text(tmp_path: Path) -> None:
    done = _run("from analyzer.exiting import exit_now\nexit_now('bad usage')\n", tmp_path)
    assert (done.returncode, done.stderr) == (1, "bad usage\n")


def test_the_command_exits_with_its_status(tmp_path: Path) -> None:
    """``ghostcap`` (``cli.main``) ends through ``exit_now``: a usage error is status 2, its message kept."""
    done = _run("from analyzer.cli import main\nimport sys\nsys.argv = ['ghostcap', 'nosuch']\nmain()\n", tmp_path)
    assert done.returncode == 2
    assert "No such command 'nosuch'" in done.stderr


def test_a_thread_still_running_is_waited_for(tmp_path: Path) -> None:
    """With a thread that is not a daemon still running, the exit is the interpreter's: it waits for the thread."""
    done = _run(
        """
        import sys, threading, time
        from pathlib import Path
        from analyzer.exiting import exit_now
        out = Path(sys.argv[1])
        threading.Thread(target=lambda: (time.sleep(0.3), (out / "thread").write_text("done"))).start()
        exit_now(4)
        """,
        tmp_path,
    )
    assert done.returncode == 4
    assert (tmp_path / "thread").read_text() == "done"


def test_the_last_capture_s_analysis_is_held_to_the_exit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the process ends with ``exit_now``, ``analyze`` keeps its last capture's analysis and report to the end
    (freeing them is work the exit does not need); the ones before are freed as usual."""
    from analyzer import exiting
    from analyzer.engine import Analysis
    from analyzer.report.writer import run_analyze

    captures = [str(ROOT / "captures" / n) for n in ("tcp_refused.pcap", "ocpp_silent_reboot.pcap")]
    monkeypatch.setattr(exiting, "_held", [])
    run_analyze(captures, str(tmp_path / "a"), ["json"], None, False, echo=lambda m: None)
    assert exiting._held == []  # a process that does not end with exit_now (a test, a library user) holds nothing
    assert gc.isenabled()
    monkeypatch.setattr(exiting, "_leaving", True)
    try:
        run_analyze(captures, str(tmp_path / "b"), ["json"], None, False, echo=lambda m: None)
        assert not gc.isenabled()  # nothing but the exit comes after the last job: no collection on the way
    finally:
        gc.enable()
    analysis, report = exiting._held
    assert isinstance(analysis, Analysis)
    assert analysis.capture.file == "ocpp_silent_reboot.pcap"
    assert report["capture"]["file"] == "ocpp_silent_reboot.pcap"
