"""The local back end: a supervisor process driving N long-lived worker processes, one task each at a time.

Each worker is a ``spawn``-ed process that imports the engine once (``worker.worker_main``) and talks to the
supervisor over its own pipe. The supervisor knows which capture each worker holds, so when a worker dies
(exception-proof Python cannot stop ``os._exit`` or a segfault), overruns ``timeout`` or grows past
``max_memory`` of RSS, that capture becomes an error outcome, the worker is killed and replaced, and the batch goes
on. Workers ignore SIGINT: on Ctrl-C the supervisor's ``KeyboardInterrupt`` stops the loop and kills them. A
worker never outlives its supervisor: it is killed with it (``worker.die_with_parent``), even mid-capture.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from analyzer.triage.worker import Outcome, Task, WorkerConfig, worker_main

POLL_S = 0.1
PAGE = os.sysconf("SC_PAGE_SIZE")
MAX_START_FAILURES = 5


class PoolError(RuntimeError):
    """The workers cannot even start."""


@dataclass
class PoolStats:
    """``peak_rss_kb`` per worker slot (the highest of every process that held it), ``replaced`` workers."""

    peak_rss_kb: dict[int, int] = field(default_factory=dict)
    replaced: int = 0


@dataclass
class _Slot:
    n: int
    proc: BaseProcess
    conn: Connection
    ready: bool = False
    task: Task | None = None
    started: float = 0.0


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def death_message(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"worker process died ({name})"
    return f"worker process exited with status {code}"


class LocalPool:
    """``run(tasks, on_outcome)`` analyses every task on ``workers`` processes and calls ``on_outcome(task,
    outcome)`` in the supervisor as each finishes (also for failures the supervisor detects)."""

    def __init__(
        self, workers: int, cfg: WorkerConfig, timeout: float | None = None, max_memory: int | None = None
    ) -> None:
        self.workers = max(1, workers)
        self.cfg = cfg
        self.timeout = timeout
        self.max_memory = max_memory
        self.ctx = mp.get_context("spawn")
        self.slots: list[_Slot] = []
        self.stats = PoolStats()
        self._start_failures = 0

    def _start(self, n: int) -> _Slot:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(
            target=worker_main,
            args=(child, self.cfg, self.max_memory, os.getpid()),
            name=f"ghostcap-triage-{n}",
            daemon=True,
        )
        proc.start()
        child.close()
        return _Slot(n, proc, parent)

    def _replace(self, slot: _Slot) -> None:
        self._stop(slot, kill=True)
        self.stats.replaced += 1
        self.slots[self.slots.index(slot)] = self._start(slot.n)

    def _stop(self, slot: _Slot, kill: bool) -> None:
        if slot.proc.is_alive():
            if kill:
                slot.proc.kill()
            else:
                try:
                    slot.conn.send(None)
                except OSError:
                    slot.proc.kill()
        slot.proc.join(5)
        if slot.proc.is_alive():
            slot.proc.kill()
            slot.proc.join()
        slot.conn.close()

    def _note_rss(self, slot: _Slot, kb: int) -> None:
        self.stats.peak_rss_kb[slot.n] = max(self.stats.peak_rss_kb.get(slot.n, 0), kb)

    def start(self, tasks: int) -> None:
        """Start the workers for at most ``tasks`` captures now (they import the engine while the caller prepares
        the tasks); ``run`` starts them otherwise."""
        if not self.slots:
            self.slots = [self._start(n) for n in range(min(self.workers, max(1, tasks)))]

    def run(
        self,
        tasks: Iterable[Task],
        on_outcome: Callable[[Task, Outcome], None],
        on_idle: Callable[[], None] = lambda: None,
    ) -> PoolStats:
        """Also calls ``on_idle()`` every ``POLL_S`` or so, outcomes or not (the store commits what it holds)."""
        pending = deque(tasks)
        self.start(len(pending))
        try:
            self._loop(pending, on_outcome, on_idle)
        finally:
            self.close()
        return self.stats

    def close(self) -> None:
        """Stop every worker (killing one that holds a capture)."""
        for s in self.slots:
            self._stop(s, kill=s.task is not None)
        self.slots = []

    def _fail(self, slot: _Slot, message: str, on_outcome: Callable[[Task, Outcome], None]) -> None:
        task = slot.task
        slot.task = None
        if task is not None:
            on_outcome(task, Outcome(index=task.index, error=message, pid=slot.proc.pid or 0))
        self._replace(slot)

    def _loop(
        self, pending: deque[Task], on_outcome: Callable[[Task, Outcome], None], on_idle: Callable[[], None]
    ) -> None:
        last_watch = 0.0
        while pending or any(s.task is not None for s in self.slots):
            for s in self.slots:
                self._give(s, pending)
            waitables: list = [s.conn for s in self.slots] + [s.proc.sentinel for s in self.slots]
            ready = set(wait(waitables, timeout=POLL_S))
            for s in list(self.slots):
                dead = s.proc.sentinel in ready
                if s.conn in ready:
                    try:
                        msg = s.conn.recv()
                    except (EOFError, OSError):
                        msg, dead = None, True
                    if msg == "ready":
                        s.ready = True
                        self._start_failures = 0
                        continue
                    if isinstance(msg, Outcome):
                        task, s.task = s.task, None
                        self._note_rss(s, msg.maxrss_kb)
                        if msg.recycle:
                            self._replace(s)
                        else:
                            self._give(s, pending)  # the worker's next capture before this one is stored
                        if task is not None:
                            on_outcome(task, msg)
                        continue
                if dead:
                    s.proc.join(2)
                    if not s.ready:
                        self._start_failures += 1
                        if self._start_failures > MAX_START_FAILURES:
                            raise PoolError(f"worker processes fail to start ({death_message(s.proc.exitcode)})")
                    self._fail(s, death_message(s.proc.exitcode), on_outcome)
            now = time.monotonic()
            if now - last_watch >= POLL_S:
                last_watch = now
                self._watch(now, on_outcome)
                on_idle()

    @staticmethod
    def _give(s: _Slot, pending: deque[Task]) -> None:
        """An idle, ready worker gets the next capture."""
        if s.ready and s.task is None and pending:
            s.task = pending.popleft()
            s.started = time.monotonic()
            s.conn.send(s.task)

    def _watch(self, now: float, on_outcome: Callable[[Task, Outcome], None]) -> None:
        """Kill a worker whose task overran the time limit or whose RSS passed the memory limit."""
        for s in list(self.slots):
            if s.task is None or not s.proc.pid:
                continue
            rss = rss_bytes(s.proc.pid)
            self._note_rss(s, rss // 1024)
            if self.timeout is not None and now - s.started > self.timeout:
                self._fail(s, f"timed out after {self.timeout:g} s (worker killed)", on_outcome)
            elif self.max_memory and rss > self.max_memory:
                mib = self.max_memory / 2**20
                self._fail(
                    s,
                    f"exceeded the memory limit of {mib:.0f} MiB (RSS {rss / 2**20:.0f} MiB; worker killed)",
                    on_outcome,
                )
