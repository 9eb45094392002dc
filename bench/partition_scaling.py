#!/usr/bin/env python3
"""What ``analyze --workers N`` gives on a machine with N cores, measured on any machine: each of the N partitions
of a gateway capture is read one after the other in this process and timed (CPU seconds), then the parent's share
(merge, diagnosis, the three reports) is timed. On N free cores the partitions run side by side, so the job's wall
time is about the slowest partition plus the parent's share: the figure printed as "on N cores". The capture's
sha256, which a process of its own computes meanwhile, is left out; a first run warms the imports.

Usage: ``python bench/partition_scaling.py [CAPTURE] [--workers 1,2,4,8]`` (default capture: the 1M-packet fleet
capture of ``make bench``, built if missing); ``--tshark`` also times ``tshark -n -r`` for the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from analyzer.config import Settings
from analyzer.diagnosis.runner import diagnose_all
from analyzer.engine import Analysis
from analyzer.parallel import merge, read_part
from analyzer.report.build import report_dict
from analyzer.report.writer import render_report

PACKETS = 1_000_000


def cpu() -> float:
    return time.process_time()


def one(path: Path, n: int) -> tuple[list[float], float, str]:
    """Per partition CPU seconds, the parent's, and the JSON report."""
    settings = Settings()
    parts, times = [], []
    for k in range(n):
        t = cpu()
        parts.append(read_part(path, settings, k, n))
        times.append(cpu() - t)
    t = cpu()
    built = merge(parts, settings)
    results, others = diagnose_all(built.timeline, settings)
    analysis = Analysis(built.capture, None, built.timeline, results, settings, others)
    report = report_dict(analysis)
    texts = {fmt: render_report(report, fmt) for fmt in ("html", "json", "md")}
    return times, cpu() - t, texts["json"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("capture", nargs="?", help="a capture (default: make bench's 1M-packet fleet capture)")
    p.add_argument("--workers", default="1,2,4,8")
    p.add_argument("--tshark", action="store_true", help="time tshark -n -r on the capture too")
    args = p.parse_args(argv)
    if args.capture:
        path = Path(args.capture)
    else:
        from analyze_vs_tshark import SECONDS_PER_PACKET
        from flows_vs_tshark import ensure_capture

        path, _ = ensure_capture(PACKETS, 1, PACKETS * SECONDS_PER_PACKET)
    tshark_s = None
    if args.tshark:
        from flows_vs_tshark import measure, tshark_argv

        tshark_s = measure("tshark -n -r", tshark_argv(path)).seconds
    print(f"{path.name}: partitions read one after the other, CPU seconds")
    head = f"{'workers':>7} {'slowest part':>12} {'all parts':>10} {'parent':>7} {'on N cores':>10} {'speed-up':>8}"
    print(head + (f" {'vs tshark':>9}" if tshark_s else ""))
    one(path, 1)  # warm: imports, templates, the rules
    base = None
    reports = set()
    for n in (int(w) for w in args.workers.split(",") if w):
        times, parent, doc = one(path, n)
        reports.add(doc)
        wall = max(times) + parent
        base = base or wall
        row = f"{n:>7} {max(times):>12.1f} {sum(times):>10.1f} {parent:>7.1f} {wall:>10.1f} {base / wall:>7.2f}x"
        print(row + (f" {tshark_s / wall:>8.2f}x" if tshark_s else ""))
    if tshark_s:
        print(f"tshark -n -r: {tshark_s:.1f} s (wall)")
    print(f"JSON reports identical across worker counts: {len(reports) == 1}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
