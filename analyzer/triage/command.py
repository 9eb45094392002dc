"""``ghostcap triage``: analyse many captures in parallel into one results store, exports and a fleet page."""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from analyzer.triage.store import Store

EXIT_DONE, EXIT_SOME_FAILED, EXIT_INTERRUPTED = 0, 3, 130
KEYLOG_SUFFIXES = (".keys.txt", ".keys", ".keylog", ".sslkeylog", ".txt")
SHARED_KEYLOG = re.compile(r"(ssl)?keylog.*", re.IGNORECASE)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)

TRIAGE_HELP = """Exit status: 0 every capture analysed; 3 some captures could not be analysed (their rows say why);
2 usage error; 130 interrupted (every capture finished before Ctrl-C is kept)."""


def parse_size(text: str) -> int:
    """``4GiB``, ``512M``, ``300mib``, ``1073741824`` → bytes (K/M/G/T are powers of 1024)."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a size (e.g. 4GiB, 512M)")
    return int(float(m.group(1)) * 1024 ** " kmgt".index((m.group(2) or " ").lower()))


def shared_keylogs(keylog_dir: Path | None) -> tuple[str, ...]:
    """The key logs in ``keylog_dir`` every capture gets: those named ``sslkeylog*`` or ``keylog*`` (e.g. a
    gateway's SSLKEYLOGFILE)."""
    if keylog_dir is None:
        return ()
    return tuple(str(f) for f in sorted(keylog_dir.iterdir()) if f.is_file() and SHARED_KEYLOG.fullmatch(f.name))


def keylog_names(keylog_dir: Path | None) -> frozenset[str]:
    """The names of the files in ``keylog_dir`` (listed once for a batch: ``keylogs_for(..., names=...)``)."""
    if keylog_dir is None:
        return frozenset()
    with os.scandir(keylog_dir) as entries:
        return frozenset(e.name for e in entries if e.is_file())


def keylogs_for(
    keylog_dir: Path | None, stem: str, shared: Sequence[str] = (), names: frozenset[str] | None = None
) -> tuple[str, ...]:
    """Key logs for a capture: ``DIR/<stem>.keys.txt`` (or ``.keys``, ``.keylog``, ``.sslkeylog``, ``.txt``) and
    the ``shared`` ones. ``names`` (``keylog_names``) saves a file lookup per suffix and capture."""
    if keylog_dir is None:
        return ()
    if names is None:
        names = frozenset(f"{stem}{suf}" for suf in KEYLOG_SUFFIXES if (keylog_dir / f"{stem}{suf}").is_file())
    named = [str(keylog_dir / f"{stem}{suf}") for suf in KEYLOG_SUFFIXES if f"{stem}{suf}" in names]
    return tuple(dict.fromkeys([*named, *shared]))


def sha256_of(path: str) -> str | None:
    try:
        from analyzer.digest import file_sha256

        return file_sha256(path)
    except OSError:
        return None


def _headline(rows: Sequence[dict]) -> str:
    parts = []
    for r in rows:
        who = r.get("charger_id") or r.get("charger_address")
        if r["verdict"] == "no_charger":
            parts.append("no charger found")
        elif r.get("fault"):
            parts.append(f"{who} {r.get('cx_code') or '-'} {r['fault']} @{r.get('frame')}")
        else:
            parts.append(f"{who} {r['verdict']}")
    return "; ".join(parts)


@dataclass
class RunResult:
    """What one batch did: ``done`` captures (of ``total`` dispatched), ``failed`` among them, ``skipped``
    (already stored), ``duplicates`` (same content as another in the batch), per-worker peak RSS (KiB), summed
    analysis/report seconds, wall seconds."""

    total: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    duplicates: int = 0
    interrupted: bool = False
    peak_rss_kb: dict[int, int] = field(default_factory=dict)
    analysis_s: float = 0.0
    report_s: float = 0.0
    wall_s: float = 0.0
    replaced: int = 0


def run_triage(
    paths: Sequence[str],
    out_dir: Path,
    *,
    workers: int | None = None,
    scheduler: str | object | None = None,
    send_bytes: bool = False,
    keylog_dir: Path | None = None,
    csms: tuple[str, int | None] | None = None,
    force: bool = False,
    timeout: float | None = 600.0,
    max_memory: int | None = 4 << 30,
    db_path: Path | None = None,
    echo: Callable[[str], None] | None = None,
    tty: bool | None = None,
    html: str = "failing",
) -> RunResult:
    """Triage ``paths`` into ``out_dir`` (see ``triage``'s help). Raises ``KeyboardInterrupt`` after saving
    exports when interrupted; the ``RunResult`` is then on the exception as ``.result``."""
    from analyzer.report.writer import _write_atomic, report_stem
    from analyzer.triage.discover import discover
    from analyzer.triage.progress import Progress
    from analyzer.triage.store import CaptureMeta, Store
    from analyzer.triage.worker import FORMATS, Outcome, Task, WorkerConfig

    say = echo or (lambda m: click.echo(m, err=True))
    started = time.monotonic()
    found = discover(paths)
    out_dir.mkdir(parents=True, exist_ok=True)
    reports_dir = out_dir / "captures"
    store = Store(db_path or out_dir / "triage.db")
    result = RunResult()
    cfg = WorkerConfig(out_dir=str(reports_dir), csms=csms, html=html)
    pool = None
    try:
        if scheduler is None and found:
            from analyzer.triage.pool import LocalPool

            pool = LocalPool(workers or len(os.sched_getaffinity(0)), cfg, timeout=timeout, max_memory=max_memory)
            pool.start(len(found))  # the workers import the engine while the captures are hashed
        stored = store.known_sha256()
        known = set() if force else stored
        shared = shared_keylogs(keylog_dir)
        names = keylog_names(keylog_dir)
        tasks: list[Task] = []
        batch: dict[str, str] = {}
        for f in found:
            sha = sha256_of(f.path)
            if sha is not None and sha in known:
                result.skipped += 1
                continue
            if sha is not None and sha in batch:
                result.duplicates += 1
                say(f"{f.name}: same content as {batch[sha]}: skipped")
                continue
            if sha is not None:
                batch[sha] = f.name
            stem = report_stem(f.name)
            tag = sha[:12] if sha else "unreadable-" + hashlib.sha256(f.path.encode()).hexdigest()[:8]
            keylogs = keylogs_for(keylog_dir, stem, shared, names)
            tasks.append(Task(len(tasks), f.path, f.name, f"{stem}-{tag}", sha, keylogs))
        result.total = len(tasks)
        if result.skipped:
            say(f"skipping {result.skipped} captures already in {store.path} (--force re-analyses them)")
        progress = Progress(len(tasks), tty=tty, echo=say)

        prefix = str(out_dir) + os.sep

        def on_outcome(task: Task, out: Outcome) -> None:
            rel = {}
            if out.texts:
                reports_dir.mkdir(parents=True, exist_ok=True)
                for fmt, text in out.texts.items():
                    _write_atomic(reports_dir / f"{task.stem}.{fmt}", text)
                out.reports = {fmt: str(reports_dir / f"{task.stem}.{fmt}") for fmt in out.texts}
            for fmt in FORMATS:
                if fmt in out.reports:
                    at = out.reports[fmt]  # relative to the store's directory, as os.path.relpath gives it, cheaply
                    rel[fmt] = at[len(prefix) :] if at.startswith(prefix) else os.path.relpath(at, out_dir)
            meta = CaptureMeta(
                capture=task.name,
                path=task.path,
                sha256=task.sha256,
                first=out.first,
                last=out.last,
                warnings="\n".join(out.warnings) or None,
                report_html=rel.get("html"),
                report_json=rel.get("json"),
                analysis_s=None if out.error else out.analysis_s,
                report_s=None if out.error else out.report_s,
            )
            store.put(meta, out.rows, error=out.error, new=task.sha256 is not None and task.sha256 not in stored)
            result.done += 1
            result.analysis_s += out.analysis_s
            result.report_s += out.report_s
            if out.error:
                result.failed += 1
                error = out.error.removeprefix(f"{task.name}: ")  # a reader's message names the file already
                progress.step(f"{task.name}: error: {error}", failed=True)
            else:
                progress.step(f"{task.name}: {_headline(out.rows)} ({out.analysis_s + out.report_s:.2f} s)")

        try:
            if not tasks:
                stats = None
            elif pool is None:
                from analyzer.triage.dask_run import run_dask

                stats = run_dask(
                    scheduler, tasks, cfg, on_outcome, timeout=timeout, send_bytes=send_bytes, on_idle=store.commit_due
                )
            else:
                stats = pool.run(tasks, on_outcome, on_idle=store.commit_due)
        except KeyboardInterrupt as e:
            progress.close()
            result.interrupted = True
            result.wall_s = time.monotonic() - started
            say(
                f"interrupted: {result.done} of {result.total} captures done and kept in {store.path}, "
                f"{result.total - result.done} not done"
            )
            _finish(store, out_dir, say)
            e.result = result  # type: ignore[attr-defined]
            raise
        progress.close()
        if stats is not None:
            result.peak_rss_kb, result.replaced = stats.peak_rss_kb, stats.replaced
        _finish(store, out_dir, say)
    finally:
        if pool is not None:
            pool.close()
        store.close()
    result.wall_s = time.monotonic() - started
    return result


def _finish(store: Store, out_dir: Path, say: Callable[[str], None]) -> None:
    """Incidents, exports and the fleet page, from everything in the store."""
    from analyzer.extras import missing
    from analyzer.triage.fleet import dispatch
    from analyzer.triage.store import export_csv, export_incidents, export_parquet
    from analyzer.triage.summary import write_fleet_html, write_fleet_json, write_fleet_markdown

    view = dispatch(store.rows())
    store.put_incidents(view.incidents)
    rows = store.rows()  # with their incident ids
    written = [store.path, out_dir / "results.csv"]
    export_csv(rows, written[-1])
    no_parquet = missing("parquet")
    if no_parquet:
        say(f"results.parquet not written: {no_parquet}")
    else:
        written.append(out_dir / "results.parquet")
        export_parquet(rows, written[-1])
    written.append(out_dir / "incidents.csv")
    export_incidents(view.incidents, written[-1])
    written.append(out_dir / "fleet.json")
    write_fleet_json(view, written[-1])
    written.append(out_dir / "fleet.md")
    write_fleet_markdown(view, written[-1])
    written.append(out_dir / "index.html")
    write_fleet_html(rows, written[-1], view)
    say(f"results: {', '.join(str(p) for p in written)}")


def print_query(db: Path, sql: str, fmt: str) -> None:
    """Run ``sql`` on the store opened read-only (no ATTACH, at most ``store.QUERY_TIME_LIMIT_S`` seconds) and
    print the result."""
    import sqlite3

    from analyzer.triage.store import QueryError, open_readonly, run_query

    try:
        conn = open_readonly(db)
    except (FileNotFoundError, sqlite3.Error) as e:
        raise click.ClickException(str(e)) from None
    try:
        names, rows = run_query(conn, sql)
    except QueryError as e:
        raise click.ClickException(str(e)) from None
    finally:
        conn.close()
    if fmt == "json":
        import json

        click.echo(json.dumps([dict(zip(names, r, strict=True)) for r in rows], indent=2, ensure_ascii=False))
    elif fmt == "csv":
        import csv

        from analyzer.triage.store import csv_cell

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow([csv_cell(n) for n in names])
        w.writerows([csv_cell(v) for v in r] for r in rows)
    else:
        click.echo(format_table(names, rows), nl=False)


def format_table(names: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[("" if v is None else str(v)).replace("\n", " ") for v in r] for r in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip() + "\n"  # noqa: E731
    out = [line(names), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    out.append(f"({len(rows)} rows)\n")
    return "".join(out)


@click.command(epilog=TRIAGE_HELP)
@click.argument("paths", metavar="PATH...", nargs=-1)
@click.option("-o", "--output", "out_dir", default="triage", show_default=True, help="Directory for the results.")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (default: one per CPU core).")
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Run on this Dask distributed cluster instead.")
@click.option("--send-bytes", is_flag=True, help="With --scheduler: send each capture's bytes (no shared path).")
@click.option("--keylog-dir", type=click.Path(exists=True, file_okay=False), help="Directory of NSS key logs.")
@click.option("--csms", metavar="HOST[:PORT]", help="The CSMS's host name or address (and port), if known.")
@click.option("--force", is_flag=True, help="Re-analyse captures already in the results store.")
@click.option(
    "--html", "html", type=click.Choice(["failing", "all"]), default="failing", show_default=True,
    help="HTML report for captures with a failing or inconclusive charger (failing), or for every capture (all); "
    "the JSON report is always written.",
)  # fmt: skip
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds per capture (0: none).")
@click.option("--max-memory", default="4GiB", show_default=True, help="Memory per worker, e.g. 4GiB (0: none).")
@click.option("--db", "db", type=click.Path(dir_okay=False), help="Results database (default: DIR/triage.db).")
@click.option("--query", metavar="SQL", help="Print the result of a read-only SQL query on the results and exit.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
    help="Output format of --query.",
)  # fmt: skip
def triage(
    paths: tuple[str, ...],
    out_dir: str,
    workers: int | None,
    scheduler: str | None,
    send_bytes: bool,
    keylog_dir: str | None,
    csms: str | None,
    force: bool,
    html: str,
    timeout: float,
    max_memory: str,
    db: str | None,
    query: str | None,
    fmt: str,
) -> None:
    """Triage a fleet: analyse every capture in PATH... (files, directories searched recursively, globs; pcap and
    pcapng, compressed or not) in parallel, as `ghostcap analyze` would.

    Writes each capture's JSON report (and HTML report, see --html) to DIR/captures/, one row per charger per
    capture to the SQLite store DIR/triage.db (a later run adds to it and skips captures already stored, by
    sha256), DIR/results.csv, DIR/results.parquet, the backend incidents DIR/incidents.csv, and the fleet summary
    (who acts: backend incidents, site visits, network problems, the rest) as DIR/index.html, DIR/fleet.md and
    DIR/fleet.json. A capture that cannot be read, crashes the analysis, or passes --timeout or --max-memory
    becomes an 'error' row; the batch goes on.

    Results table `results`: capture, path, sha256, charger_id, charger_address, verdict (fault, healthy,
    inconclusive, no_charger, error), fault, cx_code, frame, fault_time, capture_first, capture_last, error, warnings,
    report_html, report_json, analysed_at, ghostcap_version, analysis_s, report_s, charger_key, site, fix_side,
    severity, site_visit, connected_at_end, stage, csms_endpoint, signature, signature_detail, resolver, fix,
    incident. Tables `incidents` and `incident_chargers`: the backend incidents and their member chargers.

    Example: ghostcap triage captures/ -o triage/ && ghostcap triage --db triage/triage.db --query "SELECT
    cx_code, count(*) FROM results WHERE verdict = 'fault' GROUP BY cx_code"
    """
    out = Path(out_dir)
    if query is not None:
        print_query(Path(db) if db else out / "triage.db", query, fmt)
        return
    if not paths:
        raise click.UsageError("give at least one PATH (a capture, a directory or a glob), or --query")
    if send_bytes and not scheduler:
        raise click.UsageError("--send-bytes goes with --scheduler")
    if scheduler:
        from analyzer.extras import missing

        if no_dask := missing("dask"):
            raise click.UsageError(f"--scheduler runs on Dask: {no_dask}")
    try:
        limit = parse_size(max_memory)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--max-memory") from None
    settings_csms = None
    if csms:
        from analyzer.config import parse_csms

        try:
            settings_csms = parse_csms(csms)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--csms") from None
    from analyzer.triage.discover import DiscoverError

    try:
        result = run_triage(
            paths,
            out,
            workers=workers,
            scheduler=scheduler,
            send_bytes=send_bytes,
            keylog_dir=Path(keylog_dir) if keylog_dir else None,
            csms=settings_csms,
            force=force,
            timeout=timeout or None,
            max_memory=limit or None,
            db_path=Path(db) if db else None,
            html=html,
        )
    except DiscoverError as e:
        raise click.UsageError(str(e)) from None
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    click.echo(
        f"triaged {result.done} captures in {result.wall_s:.1f} s ({result.failed} could not be analysed), "
        f"{result.skipped} skipped as already stored, {result.duplicates} as duplicates",
        err=True,
    )
    sys.exit(EXIT_SOME_FAILED if result.failed else EXIT_DONE)
