"""``analyzer.heap``: the C heap's free pages go back to the system at every ``TRIM_EVERY_SWEEPS``-th idle sweep
of a big capture, and once more in a partition before its hand-over."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer import engine, heap
from analyzer.budgets import TRIM_EVERY_SWEEPS
from analyzer.engine import build_timeline
from analyzer.flows import table
from analyzer.timeline.keeper import EventKeeper

ROOT = Path(__file__).resolve().parents[1]


def _resident_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_freed_memory_goes_back_to_the_system() -> None:
    assert heap.trim_heap()  # glibc here
    blocks = [bytearray(600) for _ in range(200_000)]  # ~130 MiB from the C heap, not from mmap
    for b in blocks:
        b[0] = 1
    keep = blocks[-1]  # the heap's top stays in use: only a trim of the whole heap gives the rest back
    del blocks
    before = _resident_kib()
    heap.trim_heap()
    assert before - _resident_kib() > 50_000
    assert keep[0] == 1


def test_a_libc_without_malloc_trim_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoTrim:
        pass

    monkeypatch.setattr(ctypes, "CDLL", lambda name: NoTrim())
    monkeypatch.setattr(heap, "_looked", False)
    assert not heap.trim_heap()
    assert not heap.trim_heap()
    monkeypatch.setattr(heap, "_looked", False)  # looked up again for the tests after this one


def test_the_heap_is_trimmed_every_few_sweeps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table, "SWEEP_EVERY", 1024)
    trims: list[int] = []
    monkeypatch.setattr(engine, "trim_heap", lambda: trims.append(1) or True)
    pcap = tmp_path / "gw.pcap"
    args = ["--packets", "12000", "--duration", "300", "--chargers", "10"]
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_fleet.py"), str(pcap), *args], check=True)
    build_timeline(str(pcap), (), EventKeeper(None))
    sweeps = 12000 // 1024
    assert len(trims) == sweeps // TRIM_EVERY_SWEEPS
