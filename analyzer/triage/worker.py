"""Analyse one capture for ``ghostcap triage``: the same engine and the same HTML/JSON reports as
``ghostcap analyze``, timed, with every failure turned into an ``Outcome`` carrying the message.

``run_task`` is what both back ends run (a local pool worker, a Dask task). ``worker_main`` is the loop of a
long-lived local worker process: it imports the engine once, says it is ready, then runs one task per message.
"""

from __future__ import annotations

import os
import resource
import signal
import tempfile
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from analyzer.lifeline import die_with_parent

FORMATS = ("html", "json")
HTML_CHOICES = ("failing", "all")  # --html: only captures with a failing or inconclusive charger (default), all
FAULTS_ENV = "GHOSTCAP_TRIAGE_FAULTS"
"""Test-only fault injection, inert unless set: ``mode:substring[;mode:substring...]`` makes the worker ``hang``,
``exit`` (``os._exit``), ``segv`` (a real segmentation fault), ``alloc`` (allocate until stopped) or ``raise`` on
any capture whose file name contains ``substring``."""


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What every task of one batch shares: where reports go (``None``: return their text instead), the CSMS,
    which captures get an HTML report (``HTML_CHOICES``; the JSON report is always written)."""

    out_dir: str | None
    csms: tuple[str, int | None] | None = None
    html: str = "failing"


@dataclass(frozen=True, slots=True)
class Task:
    """One capture: ``index`` (position in the batch), ``path`` to open, ``name`` shown, ``stem`` of its report
    files, its ``sha256`` (``None`` when unreadable), key logs for it; ``data``/``keylog_data`` carry the bytes
    when the worker cannot read the shared path."""

    index: int
    path: str
    name: str
    stem: str
    sha256: str | None
    keylog_files: tuple[str, ...] = ()
    data: bytes | None = None
    keylog_data: tuple[bytes, ...] = ()


@dataclass(slots=True)
class Outcome:
    """What came of one task: charger ``rows`` (see ``store.charger_rows``) or an ``error``; report paths or
    texts; seconds spent analysing and rendering/writing reports; the worker's pid and peak RSS (KiB); ``recycle``
    when the worker should be replaced (it ran out of memory)."""

    index: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    first: str | None = None
    last: str | None = None
    warnings: list[str] = field(default_factory=list)
    reports: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    analysis_s: float = 0.0
    report_s: float = 0.0
    pid: int = 0
    maxrss_kb: int = 0
    recycle: bool = False


def inject_fault(name: str) -> None:
    """The test hook (see ``FAULTS_ENV``); does nothing unless the variable is set."""
    spec = os.environ.get(FAULTS_ENV)
    if not spec:
        return
    for item in spec.split(";"):
        mode, _, needle = item.partition(":")
        if not needle or needle not in name:
            continue
        if mode == "hang":
            while True:
                time.sleep(3600)
        elif mode == "exit":
            os._exit(17)
        elif mode == "segv":
            import ctypes

            ctypes.string_at(0)
        elif mode == "alloc":
            hog = []
            while True:
                hog.append(bytearray(b"\x01") * (64 << 20))  # written, so every page is resident
        elif mode == "raise":
            raise RuntimeError(f"injected failure for {name}")


def run_task(task: Task, cfg: WorkerConfig) -> Outcome:
    """Analyse ``task``'s capture and write (or return) its reports; never raises for a bad capture."""
    out = Outcome(index=task.index, pid=os.getpid())
    try:
        if task.data is not None:
            _run_sent(task, cfg, out)
        else:
            _run(task, task.path, task.keylog_files, cfg, out)
    except MemoryError:
        out.error, out.recycle = "out of memory (the worker's memory limit)", True
    except Exception as e:  # noqa: BLE001 - the isolation boundary: any failure is this capture's result
        out.error = describe(e)
    out.maxrss_kb = peak_rss_kb()
    return out


def peak_rss_kb() -> int:
    """This process's own peak RSS in KiB: ``VmHWM`` of /proc/self/status, not ``ru_maxrss``, which Linux carries
    over ``execve`` from the process that forked it (a spawned worker would report its supervisor's peak)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def describe(e: BaseException) -> str:
    """One line for a failed capture: the engine's message for an unreadable capture, else the exception and
    where it was raised."""
    from analyzer.errors import AnalyzerError

    if isinstance(e, AnalyzerError):
        return str(e)
    if isinstance(e, OSError):
        return e.strerror or str(e)
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"analysis crashed: {type(e).__name__}: {e}{where}"


def _run_sent(task: Task, cfg: WorkerConfig, out: Outcome) -> None:
    with tempfile.TemporaryDirectory(prefix="ghostcap-triage-") as tmp:
        path = Path(tmp) / Path(task.path).name
        path.write_bytes(task.data or b"")
        keylogs = []
        for i, data in enumerate(task.keylog_data):
            k = Path(tmp) / f"keylog-{i}.txt"
            k.write_bytes(data)
            keylogs.append(str(k))
        _run(task, str(path), tuple(keylogs), cfg, out)


def _run(task: Task, path: str, keylogs: tuple[str, ...], cfg: WorkerConfig, out: Outcome) -> None:
    """Analyse one capture and write (or render) its reports into ``out``, with the garbage collector's thresholds
    of ``ghostcap analyze`` (``engine.collector_thresholds``: measured on 400 fleet captures, 7-9 % less CPU for
    the analysis and the reports alike); a Dask worker's own are restored after."""
    from analyzer.engine import collector_thresholds

    with collector_thresholds():
        _analyse_and_report(task, path, keylogs, cfg, out)


def _analyse_and_report(task: Task, path: str, keylogs: tuple[str, ...], cfg: WorkerConfig, out: Outcome) -> None:
    from analyzer.config import Settings
    from analyzer.engine import analyze
    from analyzer.report.build import report_dict
    from analyzer.report.writer import _clean, render_report, write_reports
    from analyzer.triage.signature import signature_of
    from analyzer.triage.store import charger_rows

    inject_fault(task.name)
    t0 = time.perf_counter()
    # the supervisor hashed the capture already (to skip those stored before): no second digest, no thread for it
    analysis = analyze(path, Settings(csms=cfg.csms, keylog_files=keylogs), sha256=task.sha256)
    signatures = [signature_of(r, analysis.timeline.flows) for r in analysis.results]
    t1 = time.perf_counter()
    report = report_dict(analysis)
    out.rows = charger_rows(report, signatures)
    out.first, out.last = report["capture"].get("first"), report["capture"].get("last")
    out.warnings = list(report["capture"].get("warnings") or ())
    formats = FORMATS if cfg.html == "all" or wants_html(report) else ("json",)
    if cfg.out_dir is not None:
        written = write_reports(report, cfg.out_dir, task.stem, formats, compact=True)
        out.reports = dict(zip(formats, written, strict=True))
    else:
        out.texts = {fmt: _clean(render_report(report, fmt, compact=True)) for fmt in formats}
    out.analysis_s, out.report_s = t1 - t0, time.perf_counter() - t1


def wants_html(report: dict[str, Any]) -> bool:
    """Someone will open this capture's HTML: a charger failed or is inconclusive, or it holds no charger."""
    return not report["chargers"] or any(c["verdict"] != "healthy" for c in report["chargers"])


def warm_up() -> None:
    """Import everything a task needs and compile the HTML report's template, so the first task's time is analysis
    and reports, not imports."""
    import analyzer.diagnosis.runner
    import analyzer.engine
    import analyzer.report.build
    import analyzer.report.writer  # noqa: F401
    from analyzer.report.html import TEMPLATES
    from analyzer.report.page import template

    template(TEMPLATES, "report.html.j2")


def limit_address_space(max_memory: int | None) -> None:
    """RLIMIT_AS for this process: ``max_memory`` bytes of address space beyond what it maps already (the
    interpreter, numpy and matplotlib map ~250 MB), so an allocation past it raises MemoryError."""
    if not max_memory:
        return
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = mapped + max_memory
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def worker_main(
    conn: Connection,
    cfg: WorkerConfig,
    max_memory: int | None,
    parent: int | None = None,
    now: Any = None,
) -> None:
    """A local pool worker: ignore Ctrl-C (the supervisor decides), exit when the supervisor ``parent`` dies
    (``die_with_parent``), import, say ``ready``, then analyse the ``Task``s it is sent (a list per message), in
    order, until sent ``None`` or the pipe closes; exit after an out-of-memory task.

    Outcomes go back in lists (``answer``): held back while the worker has more to analyse and the first held is
    younger than ``TRIAGE_ANSWER_S``, so quick captures cost the supervisor one message for several. (An outcome
    held back waits for the capture after it to end, a slow one too; if that one kills or hangs this worker, the
    captures answered late are analysed again elsewhere: their reports are written again, the same.) ``now`` (a
    shared ``RawArray('q', 2)``) says which capture is being analysed: its index and when it began
    (``time.monotonic_ns``, 0 between captures), for the supervisor's time limit and, if this process dies, which
    capture it died on.

    An outcome goes out once the task's report files are written. (A writer thread that wrote them while the worker
    analysed the next capture made both slower: the two threads handed the GIL to each other at every system call,
    ~48 futex calls per capture; 4,000 captures on a RAM file system, 1 worker 334-358 -> 372-410 captures/s, 2
    workers 645-655 -> 656-691 without it.)"""
    from analyzer.budgets import TRIAGE_ANSWER_S

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        die_with_parent(parent)
    warm_up()
    limit_address_space(max_memory)
    conn.send("ready")
    queue: deque[Task] = deque()
    answers: list[Outcome] = []
    held_since = 0.0
    while True:
        while not queue or conn.poll():  # what was sent meanwhile; nothing left to do: answer, then wait
            if not queue and answers and not answer(conn, answers):
                return
            try:
                msg = conn.recv()
            except EOFError:
                return
            if msg is None:
                answer(conn, answers)
                return
            queue.extend(msg if isinstance(msg, list) else (msg,))
        task = queue.popleft()
        if now is not None:
            now[0], now[1] = task.index, time.monotonic_ns()
        outcome = run_task(task, cfg)
        if now is not None:
            now[1] = 0
        if not answers:
            held_since = time.monotonic()
        answers.append(outcome)
        if (outcome.recycle or not queue or time.monotonic() - held_since >= TRIAGE_ANSWER_S) and not answer(
            conn, answers
        ):
            return
        if outcome.recycle:
            return


def answer(conn: Connection, answers: list[Outcome]) -> bool:
    """Send ``answers`` (emptied) to the supervisor; False when it is gone (so is this worker then)."""
    if not answers:
        return True
    try:
        conn.send(answers[:])
    except OSError:
        return False
    answers.clear()
    return True
