#!/usr/bin/env python3
"""Benchmark the whole job a user runs, ``ghostcap analyze --format html,json,md``, against ``tshark -n -r`` on the
synthetic fleet-gateway capture (``make_fleet.py``: 300 chargers among unrelated TLS, DNS and NTP), at 1M and 2M
packets by default, in one run.

Per size it prints seconds, packets/s and peak RSS (``os.wait4``) of each tool, the two ratios against the
targets (ghostcap at least tshark's speed, at most a quarter of its peak memory), the report sizes, the chargers
ghostcap found against the generator's, and at the end how memory grew from the smallest capture to the largest
(target: within 10 %). A bigger capture is a longer one (an hour of the gateway per million packets);
``--same-span`` packs every size into the same hour instead. ``--profile`` runs the job in-process under cProfile
on the first size and prints where the time goes. A report, not a test: exit status 0 unless a tool fails.

Usage: ``python bench/analyze_vs_tshark.py [--packets 1000000,2000000] [--seed 1] [--keep] [--same-span] [--profile]``
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flows_vs_tshark import (
    REPO,
    Run,
    ensure_capture,
    measure,
    remove_capture,
    stdout_to_devnull,
    tshark_argv,
)

SPEED_TARGET = 1.0  # ghostcap packets/s ÷ tshark packets/s, at least (the goal beyond: 5)
MEMORY_TARGET = 0.25  # ghostcap peak RSS ÷ tshark peak RSS, at most
FLAT_TARGET = 0.10  # peak RSS growth from the smallest capture to the largest, at most
FORMATS = "html,json,md"
# a longer capture is a longer stretch of the same gateway: the span grows with the packets (an hour per million
# packets), so that 2M packets are two hours of the same traffic, not the same hour at twice the rate (which would
# double the flows live at once: memory follows the live flows by design)
SECONDS_PER_PACKET = 3600 / 1_000_000


def analyze_argv(capture: Path, out: Path) -> list[str]:
    return [
        str(Path(sys.executable).parent / "ghostcap"),
        "analyze",
        str(capture),
        "-o",
        str(out),
        "--format",
        FORMATS,
        "-q",
    ]


def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def one_size(packets: int, seed: int, keep: bool, same_span: bool) -> tuple[int, Run, Run] | None:
    capture, built = ensure_capture(packets, seed, None if same_span else packets * SECONDS_PER_PACKET)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            g = measure("ghostcap analyze", analyze_argv(capture, out))
            if g.returncode not in (0, 1, 4):
                print(f"ghostcap analyze failed ({g.returncode}): {g.stderr[-2000:]}")
                return None
            sizes = {p.suffix: p.stat().st_size for p in out.iterdir()}
            doc = json.loads((out / (capture.stem + ".json")).read_text())
            t = measure("tshark -n -r", tshark_argv(capture))
            if t.returncode != 0:
                print(f"tshark failed ({t.returncode}): {t.stderr[-2000:]}")
                return None
    finally:
        if built and not keep:
            remove_capture(capture)
    verdicts: dict[str, int] = {}
    for c in doc["chargers"]:
        verdicts[c["verdict"]] = verdicts.get(c["verdict"], 0) + 1
    print(f"\n== {packets:,} packets ({capture.name}) ==")
    print(f"{'run':<18} {'seconds':>8} {'packets/s':>12} {'peak RSS MiB':>13}")
    for r in (g, t):
        print(f"{r.name:<18} {r.seconds:>8.1f} {packets / r.seconds:>12,.0f} {r.peak_mib:>13.0f}")
    speed, memory = t.seconds / g.seconds, g.peak_mib / t.peak_mib
    print(f"speed  ghostcap/tshark packets/s: {speed:.2f}x (target >= {SPEED_TARGET:g}x) {mark(speed >= SPEED_TARGET)}")
    print(
        f"memory ghostcap/tshark peak RSS: {memory:.2f}x (target <= {MEMORY_TARGET:g}x) {mark(memory <= MEMORY_TARGET)}"
    )
    print("reports: " + ", ".join(f"{ext[1:]} {n / 1e6:.1f} MB" for ext, n in sorted(sizes.items())))
    generated = min(300, max(2, packets // 1000))
    found = ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items()))
    print(f"chargers: {len(doc['chargers'])} found ({found}); the generator made {generated}")
    print(f"timeline_complete {doc['timeline_complete']}, timeline_omitted {doc['timeline_omitted']:,}")
    for w in doc["capture"].get("warnings", [])[:4]:
        print(f"  warning: {w[:150]}")
    return packets, g, t


def profile(packets: int, seed: int, keep: bool, top: int) -> int:
    from analyzer.cli import cli

    capture, built = ensure_capture(packets, seed, packets * SECONDS_PER_PACKET)
    try:
        with tempfile.TemporaryDirectory() as tmp, stdout_to_devnull():
            prof = cProfile.Profile()
            prof.enable()
            try:
                cli(["analyze", str(capture), "-o", tmp, "--format", FORMATS, "-q"], standalone_mode=False)
            except SystemExit:  # analyze ends with its exit status
                pass
            finally:
                prof.disable()
        stats = pstats.Stats(prof)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
    finally:
        if built and not keep:
            remove_capture(capture)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--packets", default="1000000,2000000", help="capture sizes, comma-separated")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep", action="store_true", help="keep the generated captures for the next run")
    p.add_argument("--profile", action="store_true", help="profile the job in-process on the first size")
    p.add_argument("--top", type=int, default=30)
    p.add_argument(
        "--same-span",
        action="store_true",
        help="every size spans the generator's default hour (more packets: a higher rate, more live flows)",
    )
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.packets.split(",") if s]
    if args.profile:
        return profile(sizes[0], args.seed, args.keep, args.top)
    done = [r for n in sizes if (r := one_size(n, args.seed, args.keep, args.same_span)) is not None]
    if len(done) < len(sizes):
        return 1
    if len(done) > 1:
        (n0, g0, _), (n1, g1, _) = done[0], done[-1]
        growth = g1.peak_mib / g0.peak_mib - 1
        print(
            f"\nmemory from {n0:,} to {n1:,} packets: {g0.peak_mib:.0f} -> {g1.peak_mib:.0f} MiB "
            f"({growth:+.0%}, target within {FLAT_TARGET:.0%}) {mark(growth <= FLAT_TARGET)}"
        )
    print(f"\n(run from {REPO})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
