"""Hostile key logs (``../shared/robustness/keylog``): a problem names the file, the line and what is wrong, never
the line's content; a key log must be a regular file of bounded size, else a usage error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import cli
from analyzer.tls import keylog
from analyzer.tls.keylog import KeyLog, KeyLogError, keylog_file_problem
from tests.conftest import PROJECT_CAPTURES, ROOT

ROBUSTNESS = ROOT.parent / "shared" / "robustness"
KEYLOGS = sorted((ROBUSTNESS / "keylog").glob("*.keys.txt"))
WRAPPED = ROBUSTNESS / "leak_keylog_wrapped_line.keys.txt"
SECRET = "d32d249a0fb8def25787a8e790dcb986f81e112574655796febe4f4a7602b204327f24be4dd42fbf47c9852566bd7e21"
needs_files = pytest.mark.skipif(not WRAPPED.is_file(), reason="../shared/robustness not present")


@needs_files
@pytest.mark.parametrize("path", KEYLOGS, ids=lambda p: p.name)
def test_problems_never_quote_a_line(path: Path) -> None:
    problems = KeyLog.from_files([path]).problem_lines()
    for p in problems:
        assert p.isascii(), p
        assert p.isprintable(), p
        assert not re.search(r"[0-9a-fA-F]{8}", p), p  # no piece of a client random or secret
        assert p.startswith(f"{path.name} line ") or p.endswith("malformed key-log lines skipped"), p


@needs_files
def test_the_wrapped_line_says_where_and_what() -> None:
    assert KeyLog.from_files([WRAPPED]).problem_lines() == [
        f"{WRAPPED.name} line 1: CLIENT_RANDOM needs a client random and a secret, found 1 fields; line skipped",
        f"{WRAPPED.name} line 2: the line starts with 96 hexadecimal digits, not a label (a line wrapped in two, "
        "or fields out of order?); line skipped",
    ]


def test_labels_are_quoted_only_when_they_cannot_be_secret() -> None:
    log = KeyLog()
    log.add_text("CLIENT_RANDOMM a b\nDEADBEEF01 a b\nhello world\n" + SECRET[:20] + "CLIENT_RANDOM a b\n", "k")
    assert log.problems == [
        "k line 1: unknown label 'CLIENT_RANDOMM' (did you mean CLIENT_RANDOM?); line skipped",
        "k line 2: the line starts with 10 hexadecimal digits, not a label (a line wrapped in two, or fields out "
        "of order?); line skipped",
        "k line 3: the line does not start with a key-log label (text, not shown); line skipped",
        "k line 4: the label CLIENT_RANDOM comes after 20 hexadecimal digits (two lines joined, or a line wrapped?); "
        "line skipped",
    ]


@needs_files
def test_the_wrapped_line_leaks_into_no_report(tmp_path: Path) -> None:
    """Reports of ``captures/healthy_16_wss_tls12.pcap`` with the wrapped key log, and the CLI's stderr."""
    cap = PROJECT_CAPTURES / "healthy_16_wss_tls12.pcap"
    res = subprocess.run(
        [sys.executable, "-m", "analyzer", "analyze", str(cap), "--keylog", str(WRAPPED), "-o", str(tmp_path)],
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert "line 2: the line starts with 96 hexadecimal digits" in res.stderr.decode()
    written = [res.stdout, res.stderr] + [p.read_bytes() for p in tmp_path.iterdir()]
    assert len(written) == 5
    for data in written:
        assert SECRET[:16].encode() not in data


def test_a_keylog_must_be_a_bounded_regular_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fifo = tmp_path / "keys.fifo"
    os.mkfifo(fifo)
    assert keylog_file_problem("/dev/zero") == "/dev/zero: a key log must be a regular file, this is a device"
    assert keylog_file_problem(fifo) == f"{fifo}: a key log must be a regular file, this is a FIFO"
    big = tmp_path / "big.keys.txt"
    big.write_bytes(b"#" * 2048)
    monkeypatch.setattr(keylog, "MAX_KEYLOG_BYTES", 1024)
    assert "a key log may be at most" in (keylog_file_problem(big) or "")
    for bad in ("/dev/zero", fifo, big):
        with pytest.raises(KeyLogError):
            KeyLog.from_files([bad])


@pytest.mark.parametrize("command", ["analyze", "timeline", "flows"])
def test_dev_zero_and_a_fifo_are_usage_errors(tmp_path: Path, command: str) -> None:
    fifo = tmp_path / "keys.fifo"
    os.mkfifo(fifo)
    cap = str(PROJECT_CAPTURES / "healthy_16_wss_tls12.pcap")
    for bad, what in (("/dev/zero", "a device"), (str(fifo), "a FIFO")):
        args = [command, cap, "--keylog", bad] + (["-o", str(tmp_path / "out")] if command == "analyze" else [])
        res = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert res.exit_code == 2
        assert f"Invalid value for '--keylog': {bad}: a key log must be a regular file, this is {what}" in res.output
        assert not (tmp_path / "out").exists()
