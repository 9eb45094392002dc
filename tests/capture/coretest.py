"""What the compiled and the pure reader cores are compared on: everything ``Capture.ip_packets`` gives."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from analyzer import progress
from analyzer.capture import compiled
from analyzer.capture.reader import SKIPPED, SKIPPED_RUN, IpPacket, open_capture
from analyzer.errors import CaptureError
from analyzer.parallel import Owner

CORES = ["pure", "compiled"]


def use_core(monkeypatch: pytest.MonkeyPatch, core: str) -> None:
    """Run ``Capture.ip_packets`` through ``core``: the compiled one must be built (``make setup`` builds it with
    ``pip install -e .``; a case of it fails, never skips, when it is not)."""
    if core == "pure":
        monkeypatch.setenv(compiled.PURE_ENV, "1")
        return
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    if not compiled.available():
        pytest.fail(f"compiled reader core: {compiled.describe()}; `make setup` builds it (gcc, Python headers)")


def stats(st: object) -> dict[str, Any]:
    """``CaptureStats`` as a dict; a Counter as its items in order (insertion order is part of the result)."""
    out = {}
    for f in fields(st):  # type: ignore[arg-type]
        value = getattr(st, f.name)
        out[f.name] = list(value.items()) if isinstance(value, Counter) else value
    return out


def read(path: Path, part: tuple[int, int] | None = None, sweep_every: int = 0) -> dict[str, Any]:
    """Everything the reader gives of ``path``: packets, statistics, warnings, interfaces, progress ticks (or the
    error)."""
    seen: list[int] = []
    old = progress.tick
    progress.tick = seen.append  # type: ignore[assignment]
    try:
        with open_capture(path) as cap:
            packets = list(cap.ip_packets(Owner(*part) if part else None, sweep_every))
            out = {
                "packets": packets,
                "stats": stats(cap.stats),
                "warnings": cap.warnings,
                "interfaces": list(cap.interfaces),
                "malformed": cap.ip.malformed,
                "ticks": seen,
            }
    except CaptureError as e:
        out = {"error": str(e), "ticks": seen}
    finally:
        progress.tick = old  # type: ignore[assignment]
    return out


def reference(path: Path, part: tuple[int, int] | None = None, sweep_every: int = 0) -> dict[str, Any]:
    """``read`` through the pure core, whichever core the test runs."""
    saved = os.environ.get(compiled.PURE_ENV)
    os.environ[compiled.PURE_ENV] = "1"
    try:
        return read(path, part, sweep_every)
    finally:
        if saved is None:
            del os.environ[compiled.PURE_ENV]
        else:
            os.environ[compiled.PURE_ENV] = saved


def check(path: Path, part: tuple[int, int] | None = None) -> dict[str, Any]:
    """``read`` through the core the test runs, asserting it gives what the pure core gives; that result."""
    got = read(path, part)
    assert got == reference(path, part)
    return got


def runs(packets: list[IpPacket], sweep_every: int) -> list[tuple[Any, ...]]:
    """``packets`` with consecutive ``SKIPPED`` packets (and ``SKIPPED_RUN``s) merged into runs (count, last frame
    and ts) that end on every multiple of ``sweep_every`` packets: what ``FlowTable.run`` sees of them. Asserts
    that no given run crosses such a multiple (a sweep falls on the last packet of a run, never inside one)."""
    out: list[tuple[Any, ...]] = []
    count = 0
    run: tuple[int, int, int] | None = None
    for p in packets:
        if p[2] == SKIPPED or p[2] == SKIPPED_RUN:
            n = 1 if p[2] == SKIPPED else p[6]
            assert p[3:6] == (b"", b"", b"")
            assert n > 1 if p[2] == SKIPPED_RUN else p[6] == 0  # a run of one is a SKIPPED
            assert (count + n - 1) // sweep_every == count // sweep_every, f"a run crosses a sweep: {p}"
            count += n
            run = (p[0], p[1], (run[2] if run else 0) + n)
            if count % sweep_every == 0:
                out.append(("run", *run))
                run = None
        else:
            if run:
                out.append(("run", *run))
                run = None
            count += 1
            out.append(p)
    if run:
        out.append(("run", *run))
    return out


def check_runs(path: Path, part: tuple[int, int], sweep_every: int) -> dict[str, Any]:
    """``read`` with runs of skipped packets, against the pure core's packet by packet; the result."""
    got = read(path, part, sweep_every)
    want = reference(path, part, sweep_every)
    assert runs(got.pop("packets", []), sweep_every) == runs(want.pop("packets", []), sweep_every)
    assert got == want
    return got
