"""Capture lab entry point: ``python -m tests.lab.run (--all | --scenario NAME ... | --list) [--out DIR]``.

Every scenario runs in a fresh network namespace; its capture, key log and ground truth go to ``--out`` only
when the tshark check of the ground truth passes. Failing scenarios are reported and not written.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import readme, truth
from .lab import ensure_node, run_scenario
from .netns import require_root
from .scenarios import DEMO, SCENARIOS, Scenario


@dataclass
class Outcome:
    scenario: str
    passed: bool
    record: dict[str, Any] | None
    error: str = ""
    seconds: float = 0.0


def run_one(sc: Scenario, work: Path, out: Path | None) -> Outcome:
    t0 = time.monotonic()
    try:
        run = run_scenario(sc, work / sc.name)
        record = truth.build_record(run)
    except Exception as exc:
        return Outcome(
            sc.name, False, None, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}", time.monotonic() - t0
        )
    passed = bool(record["check"]["passed"])
    if passed and out is not None:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run.pcap, out / f"{sc.name}.pcap")
        if run.keylog is not None:
            shutil.copyfile(run.keylog, out / f"{sc.name}.keys.txt")
        truth.dump(record, out / f"{sc.name}.truth.json")
        if sc.name == DEMO:
            shutil.copyfile(run.pcap, out / "demo.pcap")
    return Outcome(
        sc.name, passed, record, "" if passed else "; ".join(record["check"]["problems"]), time.monotonic() - t0
    )


def run_many(names: list[str], out: Path | None, jobs: int = 4, keep: Path | None = None) -> list[Outcome]:
    require_root()
    if any(SCENARIOS[n].uses_node for n in names):
        ensure_node()
    work = keep or Path(tempfile.mkdtemp(prefix="ghostcap-lab-"))
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            return list(pool.map(lambda n: run_one(SCENARIOS[n], work, out), names))
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def summary_line(o: Outcome) -> str:
    if o.record is None:
        return f"FAIL  {o.scenario:34} {o.error.splitlines()[0] if o.error else ''}"
    parts = []
    for ch in o.record["chargers"]:
        parts.append(f"{ch['station_id']}: {ch['fault_id'] or 'healthy'} @ {ch['failure_frame'] or '-'}")
    return f"{'ok  ' if o.passed else 'FAIL'}  {o.scenario:34} {'; '.join(parts)}  ({o.seconds:.1f}s)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.lab.run", description=__doc__)
    ap.add_argument("--all", action="store_true", help="run every scenario")
    ap.add_argument("--scenario", action="append", default=[], metavar="NAME", help="run NAME (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--out", type=Path, help="write <scenario>.pcap/.keys.txt/.truth.json here (checked ones only)")
    ap.add_argument("--jobs", type=int, default=4, help="scenarios run in parallel (each in its own namespace)")
    ap.add_argument("--keep", type=Path, help="keep every scenario's work directory (logs, configs) here")
    args = ap.parse_args(argv)
    if args.list:
        for sc in SCENARIOS.values():
            faults = sorted({c.expect.fault_id or "healthy" for c in sc.chargers})
            print(f"{sc.name:34} {', '.join(faults):28} {sc.title}")
        return 0
    names = list(SCENARIOS) if args.all else args.scenario
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        ap.error(f"unknown scenario(s): {', '.join(unknown)}" if unknown else "give --all, --scenario or --list")
    t0 = time.monotonic()
    outcomes = run_many(names, args.out, args.jobs, args.keep)
    if args.out is not None:
        readme.write(args.out)
    for o in outcomes:
        print(summary_line(o))
        if not o.passed:
            print(f"      {o.error.strip()}", file=sys.stderr)
    failed = [o.scenario for o in outcomes if not o.passed]
    print(
        f"{len(outcomes) - len(failed)}/{len(outcomes)} scenarios passed the tshark check in "
        f"{time.monotonic() - t0:.0f}s" + (f"; not shipped: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
