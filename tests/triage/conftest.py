"""A triage run over every lab capture plus deliberately broken files, shared by the tests of this package."""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from analyzer.triage.command import RunResult, run_triage
from tests.conftest import PROJECT_CAPTURES

LAB = sorted(PROJECT_CAPTURES.glob("*.pcap"))


def broken_files(d: Path) -> dict[str, str | None]:
    """Write broken captures into ``d``; name → the error expected (``None``: read with a warning, no error)."""
    d.mkdir(parents=True, exist_ok=True)
    reset = (PROJECT_CAPTURES / "tcp_reset.pcap").read_bytes()
    (d / "empty.pcap").write_bytes(b"")
    (d / "notes.pcap").write_text("these are my notes, not a capture\n")
    damaged = bytearray(gzip.compress(reset))
    damaged[30:60] = b"x" * 30
    (d / "damaged.pcap.gz").write_bytes(bytes(damaged))
    (d / "cut_gzip.pcap.gz").write_bytes(gzip.compress(reset)[:200])
    (d / "cut_header.pcap").write_bytes(reset[:30])
    (d / "cut_frame.pcap").write_bytes((PROJECT_CAPTURES / "gateway_mixed.pcap").read_bytes()[:700])
    return {
        "empty.pcap": "looks like an empty file",
        "notes.pcap": "looks like plain text",
        "damaged.pcap.gz": "gzip stream is damaged",
        "cut_gzip.pcap.gz": None,
        "cut_header.pcap": None,
        "cut_frame.pcap": None,
    }


@dataclass
class LabRun:
    out: Path
    lab_dir: Path
    broken_dir: Path
    broken: dict[str, str | None]
    result: RunResult
    log: list[str]


@pytest.fixture(scope="session")
def lab_run(tmp_path_factory: pytest.TempPathFactory) -> LabRun:
    """``triage`` over the lab captures (one also gzip-compressed under another name) and the broken files, on 2
    local worker processes, with the lab's key logs (``--keylog-dir captures``)."""
    base = tmp_path_factory.mktemp("triage-lab")
    lab_dir = base / "lab"
    lab_dir.mkdir()
    for p in LAB:
        shutil.copy(p, lab_dir / p.name)
    (lab_dir / "nested").mkdir()
    (lab_dir / "nested" / "gateway_again.pcap.gz").write_bytes(
        gzip.compress((PROJECT_CAPTURES / "gateway_mixed.pcap").read_bytes())
    )
    broken_dir = base / "broken"
    broken = broken_files(broken_dir)
    out = base / "out"
    log: list[str] = []
    result = run_triage(
        [str(lab_dir), str(broken_dir / "*")],
        out,
        workers=2,
        keylog_dir=PROJECT_CAPTURES,  # <stem>.keys.txt beside each TLS scenario
        echo=log.append,
        tty=False,
    )
    return LabRun(out, lab_dir, broken_dir, broken, result, log)
