#!/usr/bin/env python3
"""What a capture's reports cost against its analysis in ``ghostcap triage``, part by part, in one process.

For ``--captures`` captures of a fleet directory (default ``bench/out/fleet-10000``, made by
``bench/triage_fleet.py``; key logs from its ``keys/``), each capture is analysed as the triage worker does it
(``analyze`` and the charger signatures), then each report part is timed as the worker does it: the report dict
(with the store's charger rows), the compact JSON, the HTML when ``wants_html`` (a failing or inconclusive
charger, or none), and writing the files (atomically, into a new directory each round, beside the fleet as
``bench/triage_fleet.py`` writes its run, or in ``--out-dir``: creating files costs more on some file systems and
directories than on others). A warm-up over other captures of the fleet comes first (imports, template
compilation, and whatever the report code keeps between captures: a triage worker lives for thousands of
captures). Then the same captures go through the worker's own ``_run``, whose ``analysis_s``/``report_s`` give the
ratio as triage measures it.

Prints milliseconds per capture for each part (the median of ``--rounds`` rounds over the same captures, and the
spread) and the ratio reports / analysis. The parts are timed in this thread's CPU time by default (``--clock
wall``: wall-clock time, as the worker times itself): on a shared machine a process waiting for a core inflates
wall-clock figures, not CPU time. Compare ratios measured in the same process, not figures across runs.

Usage: ``python bench/report_cost.py [--fleet DIR] [--captures 500] [--warm-up 100] [--rounds 3] [--html all]
[--clock cpu|wall] [--out-dir DIR] [--healthy SHARE]``
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from analyzer.config import Settings  # noqa: E402
from analyzer.engine import analyze  # noqa: E402
from analyzer.report.build import report_dict  # noqa: E402
from analyzer.report.writer import _write_atomic, render_report  # noqa: E402
from analyzer.triage.command import keylogs_for, sha256_of  # noqa: E402
from analyzer.triage.signature import signature_of  # noqa: E402
from analyzer.triage.store import charger_rows  # noqa: E402
from analyzer.triage.worker import Outcome, Task, WorkerConfig, _run, wants_html, warm_up  # noqa: E402

PARTS = ("analysis", "report_dict", "json", "html", "write")
REPORT_PARTS = PARTS[1:]


def pick(fleet: Path, n: int, warm: int, healthy: float | None = None) -> tuple[list[Path], list[Path]]:
    """``n`` captures spread evenly over the fleet (sorted by path), and ``warm`` others for the warm-up. With
    ``healthy`` (a share, 0 to 1), that share of the ``n`` is drawn from the variants of the lab's healthy captures
    (``healthy_*``, ``ocpprpc_client_healthy``) and the rest from the others, each evenly, in the fleet's order."""
    every = sorted(fleet.rglob("*.pcap"))
    if not every:
        raise SystemExit(f"no captures in {fleet} (make the fleet with bench/triage_fleet.py)")
    if healthy is None:
        return _spread(every, n, warm)
    good = [p for p in every if "healthy" in p.stem]
    bad = [p for p in every if "healthy" not in p.stem]
    n_good = round(n * healthy)
    good_chosen, good_warm = _spread(good, n_good, round(warm * healthy))
    bad_chosen, bad_warm = _spread(bad, n - n_good, warm - len(good_warm))
    if len(good_chosen) < n_good or len(bad_chosen) < n - n_good:
        raise SystemExit(f"{fleet} has {len(good)} healthy and {len(bad)} other captures: too few for this mix")
    return sorted(good_chosen + bad_chosen), good_warm + bad_warm


def _spread(every: list[Path], n: int, warm: int) -> tuple[list[Path], list[Path]]:
    step = max(len(every) // max(n, 1), 1)
    chosen = every[::step][:n]
    taken = set(chosen)
    rest = [p for p in every[step // 2 :: step] if p not in taken] or [p for p in every if p not in taken]
    return chosen, rest[:warm]


CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def one(path: Path, keys: Path, out: str, html_all: bool, spent: dict[str, float]) -> None:
    """Analyse ``path`` and write its reports as the triage worker does, adding each part's seconds to ``spent``."""
    keylogs = keylogs_for(keys if keys.is_dir() else None, path.stem)
    digest = sha256_of(str(path))  # the supervisor's, as triage gives it
    t0 = clock()
    analysis = analyze(str(path), Settings(keylog_files=keylogs), sha256=digest)
    signatures = [signature_of(r, analysis.timeline.flows) for r in analysis.results]
    t1 = clock()
    report = report_dict(analysis)
    charger_rows(report, signatures)
    t2 = clock()
    texts = {"json": render_report(report, "json", compact=True)}
    t3 = clock()
    if html_all or wants_html(report):
        texts["html"] = render_report(report, "html", compact=True)
    t4 = clock()
    for fmt, text in texts.items():
        _write_atomic(Path(out) / f"{path.stem}.{fmt}", text)
    t5 = clock()
    for part, dt in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
        spent[part] += dt
    spent["html_reports"] += "html" in texts


def a_round(paths: list[Path], keys: Path, out: str, html_all: bool) -> dict[str, float]:
    spent = dict.fromkeys([*PARTS, "html_reports"], 0.0)
    for p in paths:
        one(p, keys, out, html_all, spent)
    return spent


def worker_round(paths: list[Path], keys: Path, out: str, html_all: bool) -> tuple[float, float]:
    """The same captures through the worker's ``_run``: its analysis and report seconds, summed."""
    cfg = WorkerConfig(out_dir=out, html="all" if html_all else "failing")
    analysis = reports = 0.0
    digests = [sha256_of(str(p)) for p in paths]  # the supervisor's: a worker does not hash (no thread for it)
    for i, p in enumerate(paths):
        keylogs = keylogs_for(keys if keys.is_dir() else None, p.stem)
        task = Task(i, str(p), p.name, p.stem, digests[i], keylogs)
        o = Outcome(index=i)
        _run(task, str(p), keylogs, cfg, o)
        analysis += o.analysis_s
        reports += o.report_s
    return analysis, reports


def cache_note() -> str:
    """What the report code's plot caches hold, when it has them (older code has none)."""
    from analyzer.report import svg

    caches = [getattr(svg, name, None) for name in ("timelines", "ladders", "ladder_rows")]
    return ", ".join(f"{c.__name__}: {c.cache_info()}" for c in caches if c is not None) or "no shape cache"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fleet", type=Path, default=BENCH / "out" / "fleet-10000", help="fleet directory")
    ap.add_argument("--captures", type=int, default=500, help="captures timed (default 500)")
    ap.add_argument("--warm-up", type=int, default=100, help="other captures run first, untimed (default 100)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds over the same captures (default 3)")
    ap.add_argument("--html", choices=("failing", "all"), default="failing", help="as triage --html")
    ap.add_argument("--clock", choices=tuple(CLOCKS), default="cpu", help="time the parts in CPU or wall time")
    ap.add_argument("--out-dir", type=Path, help="where the reports are written (default: beside the fleet)")
    ap.add_argument(
        "--healthy",
        type=float,
        metavar="SHARE",
        help="draw this share of the captures from the healthy lab captures' variants (0.9: a fleet where one in "
        "ten fails); by default the captures are spread over the whole fleet",
    )
    args = ap.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    keys = args.fleet / "keys"
    paths, warm = pick(args.fleet, args.captures, args.warm_up, args.healthy)
    html_all = args.html == "all"
    warm_up()
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-cost-", dir=args.out_dir or args.fleet.parent) as tmp:
        fresh = (str(Path(tmp) / str(i)) for i in itertools.count())  # new files each round, as in a triage run
        a_round(warm, keys, _made(next(fresh)), html_all)
        gc.collect()
        rounds = [a_round(paths, keys, _made(next(fresh)), html_all) for _ in range(args.rounds)]
        runs = [worker_round(paths, keys, _made(next(fresh)), html_all) for _ in range(args.rounds)]
    n = len(paths)
    print(
        f"{n} captures of {args.fleet}{'' if args.healthy is None else f' ({args.healthy:.0%} healthy variants)'} "
        f"({args.warm_up} others first as warm-up), {args.rounds} rounds, "
        f"parts in {args.clock} time"
    )
    print(f"HTML for {rounds[0]['html_reports']:.0f} of {n} captures ({args.html}); {cache_note()}")
    print(f"{'part':<12} {'ms/capture':>10} {'min':>7} {'max':>7}")
    for part in [*PARTS, "reports"]:
        per = [1000 * (sum(r[p] for p in REPORT_PARTS) if part == "reports" else r[part]) / n for r in rounds]
        print(f"{part:<12} {statistics.median(per):>10.3f} {min(per):>7.3f} {max(per):>7.3f}")
    ratios = [sum(r[p] for p in REPORT_PARTS) / r["analysis"] for r in rounds]
    print(f"reports / analysis, part by part: {statistics.median(ratios):.3f} (rounds {_span(ratios)})")
    unwritten = [sum(r[p] for p in REPORT_PARTS if p != "write") / r["analysis"] for r in rounds]
    print(f"reports without the writes / analysis: {statistics.median(unwritten):.3f} (rounds {_span(unwritten)})")
    worker = [rep / ana for ana, rep in runs]
    print(
        f"reports / analysis, the worker's _run (wall time): {statistics.median(worker):.3f} (rounds {_span(worker)}); "
        f"analysis {1000 * statistics.median(a for a, _ in runs) / n:.3f} ms, "
        f"reports {1000 * statistics.median(r for _, r in runs) / n:.3f} ms per capture"
    )


def _made(path: str) -> str:
    Path(path).mkdir()
    return path


def _span(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


if __name__ == "__main__":
    main()
