#!/usr/bin/env python3
"""Benchmark ``ghostcap flows`` against ``tshark -n -r`` on a synthetic fleet-gateway capture.

Builds (or reuses) a capture with ``make_fleet.py`` in ``bench/out/``, then runs each tool as a child
process with stdout to /dev/null and reports wall time, packets/s and peak RSS (``ru_maxrss`` from
``os.wait4``), plus a bare-Python pcap record walk as the ceiling for any pure-Python reader.  Targets:
ghostcap at least 5x tshark's packets/s and at most 0.25x its peak memory.  It is a report, not a test:
exit status is 0 unless a tool fails.

``--profile`` instead runs ``ghostcap flows`` in-process under cProfile and prints the top functions.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import importlib
import json
import os
import pstats
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
MAKE_FLEET = BENCH / "make_fleet.py"
SPEED_TARGET = 5.0  # ghostcap packets/s ÷ tshark packets/s, at least
MEMORY_TARGET = 0.25  # ghostcap peak RSS ÷ tshark peak RSS, at most


@dataclass(slots=True)
class Run:
    """One timed child process."""

    name: str
    argv: list[str]
    seconds: float
    peak_mib: float
    returncode: int
    stdout: str
    stderr: str


def measure(name: str, argv: list[str], keep_stdout: bool = False) -> Run:
    """Run ``argv`` to completion; wall time and the child's peak RSS come from ``os.wait4``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out if keep_stdout else subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    return Run(name, argv, seconds, usage.ru_maxrss / 1024, proc.returncode, stdout, stderr)


def chunks(f: BinaryIO, size: int = 8 << 20) -> Iterator[bytes]:
    """Big reads of ``f``."""
    while chunk := f.read(size):
        yield chunk


def walk_pcap(f: BinaryIO, order: str) -> int:
    """Count classic-pcap records by hopping from record header to record header."""
    unpack_from = struct.Struct(order + "IIII").unpack_from
    count, buf = 0, b""
    for chunk in chunks(f):
        buf = buf + chunk if buf else chunk
        off, end = 0, len(buf)
        while off + 16 <= end:
            step = 16 + unpack_from(buf, off)[2]
            if off + step > end:
                break
            off += step
            count += 1
        buf = buf[off:]
    return count


def walk_pcapng(f: BinaryIO, order: str) -> int:
    """Count pcapng packet blocks (enhanced, simple, obsolete) by hopping from block to block."""
    unpack_from = struct.Struct(order + "II").unpack_from
    count, buf = 0, b""
    for chunk in chunks(f):
        buf = buf + chunk if buf else chunk
        off, end = 0, len(buf)
        while off + 8 <= end:
            kind, step = unpack_from(buf, off)
            if off + step > end or step < 12:
                break
            off += step
            count += kind in (6, 3, 2)
        buf = buf[off:]
    return count


def walk_records(path: Path) -> int:
    """Packets in an uncompressed pcap or pcapng, walking only the framing (the pure-Python ceiling)."""
    with path.open("rb", buffering=0) as f:
        head = f.read(24)
        if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            return walk_pcap(f, "<" if head[0] in (0xD4, 0x4D) else ">")
        if head[:4] == b"\x0a\x0d\x0d\x0a" and len(head) >= 12:
            f.seek(0)
            return walk_pcapng(f, "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">")
    raise SystemExit(f"{path}: not an uncompressed pcap or pcapng")


def generator_digest() -> str:
    """Hash of make_fleet.py, so a cached capture is rebuilt when the generator changes."""
    return hashlib.sha256(MAKE_FLEET.read_bytes()).hexdigest()[:16]


def ensure_capture(packets: int, seed: int, duration: float | None = None) -> tuple[Path, bool]:
    """The capture for (packets, seed[, duration in seconds]), built unless an identical one is cached; returns
    (path, built)."""
    OUT.mkdir(parents=True, exist_ok=True)
    span = "" if duration is None else f"-{duration:g}s"
    pcap = OUT / f"fleet-{packets}-s{seed}{span}.pcap"
    meta_path = pcap.with_suffix(".json")
    meta = {"packets": packets, "seed": seed, "generator": generator_digest()}
    if duration is not None:
        meta["duration"] = duration
    if pcap.exists() and meta_path.exists() and json.loads(meta_path.read_text()) == meta:
        print(f"reusing {pcap.relative_to(REPO)}")
        return pcap, False
    print(f"building {pcap.relative_to(REPO)} ...", flush=True)
    argv = [sys.executable, str(MAKE_FLEET), str(pcap), "--packets", str(packets), "--seed", str(seed)]
    if duration is not None:
        argv += ["--duration", str(duration)]
    subprocess.run(argv, check=True)
    meta_path.write_text(json.dumps(meta) + "\n")
    return pcap, True


def remove_capture(pcap: Path) -> None:
    """Delete a capture built by this run and its metadata."""
    pcap.unlink(missing_ok=True)
    pcap.with_suffix(".json").unlink(missing_ok=True)


def ghostcap_argv(capture: Path) -> list[str]:
    """The venv's ghostcap console script (next to the running interpreter)."""
    return [str(Path(sys.executable).parent / "ghostcap"), "flows", str(capture), "--format", "json"]


def tshark_argv(capture: Path) -> list[str]:
    """tshark one-line-per-packet dissection, no name resolution."""
    tshark = shutil.which("tshark") or "/usr/bin/tshark"
    return [tshark, "-n", "-r", str(capture)]


def ratio_line(label: str, value: float, target: float, at_least: bool) -> str:
    """One ratio against its target, with PASS/MISS."""
    ok = value >= target if at_least else value <= target
    sign = "≥" if at_least else "≤"
    goal = f"target {sign} {target:g}x"
    return f"  {label:<34} {value:8.2f}x   {goal:<15} {'PASS' if ok else 'MISS'}"


def report(capture: Path, packets: int, runs: list[Run]) -> None:
    """Print the table of runs and the ghostcap/tshark ratios."""
    size_mb = capture.stat().st_size / 1e6
    print(f"\ncapture  {capture}\n         {packets:,} packets, {size_mb:,.1f} MB\n")
    print(f"  {'tool':<34} {'seconds':>8} {'packets/s':>12} {'peak MiB':>9}")
    for run in runs:
        if run.returncode:
            print(f"  {run.name:<34} {'FAILED':>8}   exit status {run.returncode}")
            continue
        print(f"  {run.name:<34} {run.seconds:8.2f} {packets / run.seconds:12,.0f} {run.peak_mib:9.1f}")
    by_name = {run.name: run for run in runs if not run.returncode}
    ghost, shark = by_name.get("ghostcap flows --format json"), by_name.get("tshark -n -r")
    if ghost and shark:
        print("\nratios")
        print(ratio_line("speed   ghostcap pps / tshark pps", shark.seconds / ghost.seconds, SPEED_TARGET, True))
        print(ratio_line("memory  ghostcap peak / tshark peak", ghost.peak_mib / shark.peak_mib, MEMORY_TARGET, False))
    walk = by_name.get("python record walk (ceiling)")
    if ghost and walk:
        print(f"  {'ghostcap time / record walk time':<34} {ghost.seconds / walk.seconds:8.2f}x")


def best_of(repeat: int, name: str, argv: list[str], keep_stdout: bool = False) -> Run:
    """Run ``argv`` ``repeat`` times: the fastest wall time, the highest peak RSS, the first failure."""
    runs = []
    for _ in range(repeat):
        runs.append(measure(name, argv, keep_stdout))
        if runs[-1].returncode:
            return runs[-1]
    best = min(runs, key=lambda run: run.seconds)
    best.peak_mib = max(run.peak_mib for run in runs)
    return best


def benchmark(capture: Path, repeat: int) -> int:
    """Time the ceiling walk, ghostcap and tshark on ``capture``; 1 if a tool failed."""
    walk_argv = [sys.executable, __file__, "--walk", str(capture)]
    walk = best_of(repeat, "python record walk (ceiling)", walk_argv, keep_stdout=True)
    packets = int(walk.stdout.strip() or 0) if not walk.returncode else 0
    runs = [
        walk,
        best_of(repeat, "ghostcap flows --format json", ghostcap_argv(capture)),
        best_of(repeat, "tshark -n -r", tshark_argv(capture)),
    ]
    if repeat > 1:
        print(f"\nbest of {repeat} runs each (peak RSS: the highest seen)")
    report(capture, packets, runs)
    failed = [run for run in runs if run.returncode]
    for run in failed:
        tail = "\n".join(run.stderr.strip().splitlines()[-15:])
        print(f"\n{run.name} failed (exit {run.returncode}): {' '.join(run.argv)}\n{tail}", file=sys.stderr)
    return 1 if failed else 0


@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """Send both ``sys.stdout`` and file descriptor 1 to /dev/null for the duration."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        try:
            with contextlib.redirect_stdout(null):
                yield
        finally:
            null.flush()
            os.dup2(saved, 1)
            os.close(saved)


def profile(capture: Path, top: int, sort: str) -> int:
    """Run ``ghostcap flows CAPTURE --format json`` in-process under cProfile and print the top functions."""
    sys.path.insert(0, str(REPO))
    cli = importlib.import_module("analyzer.cli").cli
    profiler = cProfile.Profile()
    started = time.perf_counter()
    with stdout_to_devnull():
        profiler.enable()
        try:
            cli(["flows", str(capture), "--format", "json"], standalone_mode=False)
        finally:
            profiler.disable()
    print(f"ghostcap flows in-process under cProfile: {time.perf_counter() - started:.2f} s\n")
    pstats.Stats(profiler).strip_dirs().sort_stats(sort).print_stats(top)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=1_000_000, help="capture size (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--capture", type=Path, help="benchmark this pcap instead of a generated one")
    parser.add_argument("--keep", action="store_true", help="keep the generated capture for the next run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool, best time reported (default 1)")
    parser.add_argument("--profile", action="store_true", help="profile ghostcap flows in-process instead")
    parser.add_argument("--top", type=int, default=25, help="functions to show with --profile (default 25)")
    parser.add_argument(
        "--sort", default="tottime", choices=["tottime", "cumulative", "ncalls"], help="--profile sort key"
    )
    parser.add_argument("--walk", type=Path, help=argparse.SUPPRESS)  # internal: the ceiling child process
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    if args.walk:
        print(walk_records(args.walk))
        return 0
    built = False
    if args.capture:
        capture = args.capture
    else:
        capture, built = ensure_capture(args.packets, args.seed)
    try:
        return profile(capture, args.top, args.sort) if args.profile else benchmark(capture, max(1, args.repeat))
    finally:
        if built and not args.keep:
            remove_capture(capture)
            print(f"\nremoved {capture.relative_to(REPO)} (pass --keep to reuse it next time)")


if __name__ == "__main__":
    sys.exit(main())
