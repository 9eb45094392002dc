#!/usr/bin/env python3
"""Benchmark ``ghostcap triage`` on a fleet of small captures: 1 and 2 local worker processes and a 2-worker Dask
LocalCluster.

The fleet (``bench/out/fleet-N/``, git-ignored, reused when complete) is made from the lab captures
(``captures/*.pcap``): variant ``v`` of a capture gets its 127.0.x.y addresses moved to 10.x'.y'.z (also inside
DNS answers, so names still resolve to the address connected to), its station ids rewritten in place with the
same length (``CP-WHISKEY-40`` → ``CP-WHISKEY-47`` for variant 7) and its timestamps shifted by ``v`` hours;
the IPv4 header checksum is recomputed. Key logs (``<stem>.keys.txt``) go beside the variants of the TLS
scenarios, so each run uses ``--keylog-dir``.

Each run triages the whole fleet into a directory of its own (``triage-run-<run>/``), on a RAM file system
(``/dev/shm``) when there is one with room, else in ``bench/out`` (``--out-dir`` chooses), all removed after the last
run. Why not the disk: on this machine's ext4 (no journal), creating files is up to 4x slower in the kernel for some
minutes after many files were removed (the inode allocator passes over recently freed inodes): 2,000 captures with
one worker took 3.6 s of system time after a removal of an earlier run's ~15,000 files, 0.9 s without, and the
measured 2-worker speed-up swung from 1.26x to 2.09x with the order of the runs.

Each run prints captures/s, the speed-up against 1 worker, the peak RSS of each worker process and the split of
the time per capture: analysis (read, decode, diagnose), reports (report dict, JSON, and the HTML with its inline
SVG plots for the captures with a failing or inconclusive charger, written) and overhead (the rest of workers x
wall time: dispatch, pickling, the supervisor's SQLite commits, idle workers at the end), and the
CPU time of the supervisor and its local workers, user and system, per capture. Worker start-up is inside the
wall time. Exports and index.html come after and are timed apart.

Usage: ``python bench/triage_fleet.py [--captures 10000] [--runs 1,2,dask] [--rounds 3] [--keep] [--profile-html]``
(``--runs`` also takes ``dask-noprof``: the Dask workers without their statistical profiler). ``--rounds K`` runs
the local pools K times, alternating, and gives the speed-up of the median rates with the range of the rounds' own
(this VM's speed drifts by a fifth within minutes: one pair of runs can say 1.6x or 2.0x).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import struct
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
CAPTURES = REPO / "captures"
sys.path.insert(0, str(REPO))

from tests.fleetbuild import REC, ip_checksum, ip_offset, renamed, station_ids  # noqa: E402

HOUR = 3600


def variant(data: bytes, v: int, ids: list[bytes]) -> bytes:
    """Variant ``v`` of a classic pcap (see the module docstring)."""
    header = data[:24]
    linktype = struct.unpack("<I", header[20:24])[0]
    a, b = 1 + v // 250 % 250, v % 250
    out = [header]
    pos = 24
    swaps = [(s, renamed(s, v)) for s in ids]
    while pos + 16 <= len(data):
        sec, frac, incl, orig = REC.unpack_from(data, pos)
        frame = bytearray(data[pos + 16 : pos + 16 + incl])
        pos += 16 + incl
        off = ip_offset(linktype, bytes(frame[:64]))
        if off is not None:
            ihl = (frame[off] & 0x0F) * 4
            olds = {bytes(frame[off + 12 : off + 16]), bytes(frame[off + 16 : off + 20])}
            mapping = {o: bytes((10, a, b, o[3])) for o in olds if o[0] == 127}
            for field in (12, 16):
                old = bytes(frame[off + field : off + field + 4])
                if old in mapping:
                    frame[off + field : off + field + 4] = mapping[old]
            frame[off + 10 : off + 12] = b"\0\0"
            frame[off + 10 : off + 12] = ip_checksum(bytes(frame[off : off + ihl])).to_bytes(2, "big")
            if frame[off + 9] == 17 and 53 in struct.unpack("!HH", frame[off + ihl : off + ihl + 4]):
                payload = bytes(frame[off + ihl + 8 :])
                for o in range(1, 256):  # answers name 127.0.0.x addresses: move them too
                    old = bytes((127, 0, 0, o))
                    if old in payload:
                        payload = payload.replace(old, bytes((10, a, b, o)))
                frame[off + ihl + 8 :] = payload
        for old, new in swaps:
            if old in frame:
                frame = bytearray(bytes(frame).replace(old, new))
        out.append(REC.pack(sec + v * HOUR, frac, incl, orig))
        out.append(bytes(frame))
    return b"".join(out)


def make_fleet(n: int) -> Path:
    """``bench/out/fleet-N`` with ``n`` captures (made once; a ``.complete`` marker says it is whole)."""
    fleet = OUT / f"fleet-{n}"
    if (fleet / ".complete").exists():
        return fleet
    shutil.rmtree(fleet, ignore_errors=True)
    bases = sorted(p for p in CAPTURES.glob("*.pcap") if p.name != "demo.pcap")
    keys = fleet / "keys"
    keys.mkdir(parents=True)
    start = time.perf_counter()
    for i in range(n):
        base = bases[i % len(bases)]
        v = i // len(bases) + 1
        stem = f"{base.stem}-v{v:04d}"
        sub = fleet / f"site-{v % 50:02d}"
        sub.mkdir(exist_ok=True)
        (sub / f"{stem}.pcap").write_bytes(variant(base.read_bytes(), v, station_ids(base.stem)))
        key = CAPTURES / f"{base.stem}.keys.txt"
        if key.exists():
            shutil.copy(key, keys / f"{stem}.keys.txt")
    (fleet / ".complete").write_text(str(n))
    print(f"made {n} captures from {len(bases)} lab captures in {time.perf_counter() - start:.1f} s: {fleet}")
    return fleet


RUNS_GLOB = "triage-run-*"
RAM_FS = Path("/dev/shm")
RAM_FS_ROOM = 4 << 30  # bytes free on it to use it (10,000 captures write ~0.5 GB per run)
runs_root = OUT  # where the runs write (main sets it; see the module docstring)


def default_out_dir() -> Path:
    """``/dev/shm/ghostcap-bench`` when it is a RAM file system with room, else ``bench/out``."""
    try:
        st = os.statvfs(RAM_FS)
    except OSError:
        return OUT
    return RAM_FS / "ghostcap-bench" if st.f_bavail * st.f_frsize >= RAM_FS_ROOM else OUT


def run_dir(label: str) -> Path:
    """A directory of its own for the run ``label`` (see the module docstring: no removal between runs)."""
    return runs_root / ("triage-run-" + "".join(c if c.isalnum() else "-" for c in label).strip("-"))


def cpu_s() -> tuple[float, float]:
    """User and system CPU seconds of this process and its ended children (the local pool's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime


def run(
    fleet: Path, label: str, workers: int | None = None, scheduler: object | None = None, round_no: int = 1
) -> dict:
    from analyzer.triage import command

    out = run_dir(f"{label} {round_no}")
    finish = command._finish
    times: dict[str, float] = {}

    def timed_finish(*args: object) -> None:
        t = time.perf_counter()
        finish(*args)  # type: ignore[arg-type]
        times["finish"] = time.perf_counter() - t

    command._finish = timed_finish  # type: ignore[assignment]
    user0, sys0 = cpu_s()
    try:
        r = command.run_triage(
            [str(fleet)],
            out,
            workers=workers,
            scheduler=scheduler,
            keylog_dir=fleet / "keys",
            echo=lambda m: None,
            tty=False,
        )
    finally:
        command._finish = finish  # type: ignore[assignment]
    user1, sys1 = cpu_s()
    wall = r.wall_s - times["finish"]
    n_workers = workers or 2
    busy = r.analysis_s + r.report_s
    return {
        "label": label,
        "captures": r.done,
        "failed": r.failed,
        "wall_s": wall,
        "rate": r.done / wall,
        "analysis_ms": 1000 * r.analysis_s / r.done,
        "report_ms": 1000 * r.report_s / r.done,
        "overhead_ms": 1000 * (n_workers * wall - busy) / r.done,
        "peak_rss_mb": [kb / 1024 for kb in r.peak_rss_kb.values()],
        "finish_s": times["finish"],
        "user_ms": 1000 * (user1 - user0) / r.done,  # with the exports: the workers' time is only known at the end
        "sys_ms": 1000 * (sys1 - sys0) / r.done,
    }


def dask_run(fleet: Path, profiler: bool) -> dict:
    """A 2-process LocalCluster; ``profiler=False`` turns off the workers' statistical profiler (a stack sample
    every 10 ms by default: with matplotlib's deep stacks it costs a good part of a worker's time)."""
    import dask
    from distributed import Client, LocalCluster

    from analyzer.triage.worker import warm_up

    label = "dask LocalCluster, 2 workers" + ("" if profiler else ", no profiler")
    with (
        dask.config.set({"distributed.worker.profile.enabled": profiler}),
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        client.run(warm_up)
        return run(fleet, label, scheduler=client)


def profile_html(n: int) -> None:
    """Where one capture's report time goes: report_dict, the HTML (its plots are inline SVG), the JSON."""
    import glob

    from analyzer.config import Settings
    from analyzer.engine import analyze
    from analyzer.report.build import report_dict
    from analyzer.report.writer import render_report

    caps = sorted(glob.glob(str(CAPTURES / "*.pcap")))
    t = time.perf_counter()
    analyses = [analyze(c, Settings()) for c in caps]
    spent = {"analysis": time.perf_counter() - t, "report_dict": 0.0, "html": 0.0, "json": 0.0}
    for _ in range(n):
        for a in analyses:
            t = time.perf_counter()
            report = report_dict(a)
            spent["report_dict"] += time.perf_counter() - t
            for fmt in ("html", "json"):
                t = time.perf_counter()
                render_report(report, fmt)
                spent[fmt] += time.perf_counter() - t
    k = n * len(analyses)
    print(
        f"per capture over the lab captures: analysis {1000 * spent['analysis'] / len(caps):.1f} ms; "
        f"report_dict {1000 * spent['report_dict'] / k:.1f} ms, HTML {1000 * spent['html'] / k:.1f} ms, "
        f"JSON {1000 * spent['json'] / k:.1f} ms"
    )


def _ceiling_job(rounds: int) -> float:
    """Analyse and render every lab capture ``rounds`` times in this process (no triage): seconds taken."""
    import glob

    from analyzer.config import Settings
    from analyzer.engine import analyze
    from analyzer.report.build import report_dict
    from analyzer.report.writer import render_report

    caps = sorted(glob.glob(str(CAPTURES / "*.pcap")))
    render_report(report_dict(analyze(caps[0], Settings())), "html")  # warm: fonts, caches
    t = time.perf_counter()
    for _ in range(rounds):
        for c in caps:
            report = report_dict(analyze(c, Settings()))
            render_report(report, "html")
            render_report(report, "json")
    return time.perf_counter() - t


def ceiling(rounds: int = 8) -> None:
    """The machine's own scaling of the same work without triage: 1 then 2 processes each doing it in full."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        one = pool.map(_ceiling_job, [rounds])[0]
    with ctx.Pool(2) as pool:
        two = max(pool.map(_ceiling_job, [rounds, rounds]))
    n = rounds * len(list(CAPTURES.glob("*.pcap")))
    print(
        f"ceiling (analyse + render the lab captures, no triage): 1 process {n / one:.1f}/s, 2 processes "
        f"{2 * n / two:.1f}/s = {2 * one / two:.2f}x ({one / two:.0%} of linear)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--captures", type=int, default=10_000, help="fleet size (default 10000)")
    ap.add_argument(
        "--rounds", type=int, default=1, help="run the local pools this many times, alternating (Dask once)"
    )
    ap.add_argument("--runs", default="1,2,dask", help="comma-separated: 1, 2 (local workers), dask, dask-noprof")
    ap.add_argument("--keep", action="store_true", help="keep each run's output (OUT_DIR/triage-run-*)")
    ap.add_argument("--out-dir", type=Path, help="where the runs write (default: /dev/shm/ghostcap-bench or bench/out)")
    ap.add_argument("--profile-html", action="store_true", help="only time report_html over the lab captures")
    ap.add_argument("--ceiling", action="store_true", help="only the machine's 1 vs 2 process scaling, no triage")
    args = ap.parse_args()
    if args.profile_html:
        profile_html(3)
        return
    if args.ceiling:
        ceiling()
        return
    fleet = make_fleet(args.captures)
    global runs_root
    runs_root = args.out_dir or default_out_dir()
    runs_root.mkdir(parents=True, exist_ok=True)
    stale = sorted(runs_root.glob(RUNS_GLOB))
    for d in stale:
        shutil.rmtree(d, ignore_errors=True)
    print(f"runs write to {runs_root}" + (f" (removed {len(stale)} earlier runs)" if stale else ""))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    results = []
    for round_no in range(1, args.rounds + 1):
        for what in args.runs.split(","):
            what = what.strip()
            if what.startswith("dask"):
                if round_no > 1:  # one Dask run is enough to show its scheduling cost
                    continue
                res = dask_run(fleet, profiler=what != "dask-noprof")
            else:
                res = run(fleet, f"local pool, {what} worker(s)", workers=int(what), round_no=round_no)
            res["round"] = round_no
            results.append(res)
            print(
                f"{res['label']} (round {round_no}): {res['captures']} captures ({res['failed']} failed) in "
                f"{res['wall_s']:.1f} s = {res['rate']:.1f} captures/s; exports + index.html {res['finish_s']:.1f} s",
                flush=True,
            )
    print()
    print(
        f"{'run':<32} {'round':>5} {'captures/s':>10} {'speed-up':>9} {'of linear':>9}"
        f"  {'peak RSS per worker (MB)':<26} {'analysis':>9} {'reports':>8} {'overhead':>9} {'CPU user':>9}"
        f" {'CPU sys':>8}  (ms per capture)"
    )
    for r in results:
        n = 1 if r["label"].startswith("local pool, 1 ") else 2
        base = next((b for b in results if b["label"].startswith("local pool, 1 ") and b["round"] == r["round"]), None)
        speed = r["rate"] / base["rate"] if base else float("nan")
        rss = ", ".join(f"{m:.0f}" for m in sorted(r["peak_rss_mb"], reverse=True))
        print(
            f"{r['label']:<32} {r['round']:>5} {r['rate']:>10.1f} {speed:>8.2f}x {speed / n:>8.0%}  {rss:<26}"
            f" {r['analysis_ms']:>9.1f} {r['report_ms']:>8.1f} {r['overhead_ms']:>9.1f}"
            + ("" if r["label"].startswith("dask") else f" {r['user_ms']:>9.1f} {r['sys_ms']:>8.1f}")
        )
    ones = [r["rate"] for r in results if r["label"].startswith("local pool, 1 ")]
    twos = [r["rate"] for r in results if r["label"].startswith("local pool, 2 ")]
    if ones and twos:
        per_round = [t / o for o, t in zip(ones, twos, strict=False)]
        print(
            f"\n2-worker speed-up (local pool): {statistics.median(twos) / statistics.median(ones):.2f}x of the "
            f"medians (1 worker {statistics.median(ones):.1f}, 2 workers {statistics.median(twos):.1f} captures/s); "
            f"per round {min(per_round):.2f}x to {max(per_round):.2f}x over {len(per_round)} round(s) "
            "(target 1.85x on a quiet machine)"
        )
    if not args.keep:  # after the last run (see the module docstring)
        for d in runs_root.glob(RUNS_GLOB):
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
