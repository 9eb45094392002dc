"""The local back end: a supervisor process driving N long-lived worker processes.

Each worker is a ``spawn``-ed process that imports the engine once (``worker.worker_main``) and talks to the
supervisor over its own pipe. A worker holds up to ``budgets.TRIAGE_WORKER_QUEUE`` captures: the one it analyses and
the next, already in its pipe, so it goes from one to the next without waiting for the supervisor (which, on a
machine with as many cores as workers, has to wait for a core itself). It answers them in order.

A worker can die (exception-proof Python cannot stop ``os._exit`` or a segfault), overrun ``timeout`` or grow past
``max_memory`` of RSS: it is killed and replaced, and the batch goes on. The capture it was analysing becomes an
error outcome: the one whose time ran out; after a death, the one it held alone. A worker that dies holding two
may have died on the second after sending the first's outcome, lost with the pipe, so both are given again, each
on its own (``LocalPool.suspects``), and the one that kills its worker again is the error. Workers ignore SIGINT:
on Ctrl-C the supervisor's ``KeyboardInterrupt`` stops the loop and kills them. A worker never outlives its
supervisor: it is killed with it (``worker.die_with_parent``), even mid-capture.
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

from analyzer.budgets import TRIAGE_WORKER_QUEUE
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
    held: deque[Task] = field(default_factory=deque)  # sent, in order: the first is being analysed
    started: float = 0.0  # when the first began

    @property
    def task(self) -> Task | None:
        """The capture the worker is analysing."""
        return self.held[0] if self.held else None


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
        # captures a worker held when it died with more than one: it may have died on the second after sending the
        # first's outcome (lost with the pipe), so which one killed it is not known; each is given again to a
        # worker on its own (nothing queued behind it), where a death is its own
        self.suspects: set[int] = set()

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

    def _fail(
        self,
        slot: _Slot,
        message: str,
        on_outcome: Callable[[Task, Outcome], None],
        pending: deque[Task],
        known: bool = False,
    ) -> None:
        """``slot``'s worker died or was killed (``message``); it is replaced. The capture it analysed fails with
        ``message`` when that is ``known`` (its time-out), or when the worker held only that one or was given it on
        its own; else every capture it held is a suspect (``self.suspects``). The others go back to the front of
        ``pending``."""
        task = slot.task
        if task is not None and (known or len(slot.held) == 1 or task.index in self.suspects):
            slot.held.popleft()
            self.suspects.discard(task.index)
            on_outcome(task, Outcome(index=task.index, error=message, pid=slot.proc.pid or 0))
        elif task is not None:
            self.suspects.update(t.index for t in slot.held)
        self._requeue(slot, pending)
        self._replace(slot)

    @staticmethod
    def _requeue(slot: _Slot, pending: deque[Task]) -> None:
        pending.extendleft(reversed(slot.held))
        slot.held.clear()

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
                        task = s.held.popleft() if s.held else None
                        if task is not None:
                            self.suspects.discard(task.index)
                        s.started = time.monotonic()  # the next one, already in the pipe, began
                        self._note_rss(s, msg.maxrss_kb)
                        if msg.recycle:  # the worker exits: what it still held goes to another
                            self._requeue(s, pending)
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
                    self._fail(s, death_message(s.proc.exitcode), on_outcome, pending)
            now = time.monotonic()
            if now - last_watch >= POLL_S:
                last_watch = now
                self._watch(now, on_outcome, pending)
                on_idle()

    def _give(self, s: _Slot, pending: deque[Task]) -> None:
        """A ready worker gets a capture if it holds none, and more up to ``TRIAGE_WORKER_QUEUE`` while there are
        captures for every worker still to give (at the end of a batch, a capture queued behind a long one would
        wait while another worker is idle)."""
        suspects = self.suspects
        while (
            s.ready
            and pending
            and (
                not s.held
                or (
                    len(s.held) < TRIAGE_WORKER_QUEUE
                    and len(pending) >= len(self.slots)
                    and not (suspects and (s.held[0].index in suspects or pending[0].index in suspects))
                )
            )
        ):
            task = pending.popleft()
            if not s.held:
                s.started = time.monotonic()
            s.held.append(task)
            s.conn.send(task)

    def _watch(self, now: float, on_outcome: Callable[[Task, Outcome], None], pending: deque[Task]) -> None:
        """Kill a worker whose task overran the time limit or whose RSS passed the memory limit."""
        for s in list(self.slots):
            if s.task is None or not s.proc.pid:
                continue
            rss = rss_bytes(s.proc.pid)
            self._note_rss(s, rss // 1024)
            if self.timeout is not None and now - s.started > self.timeout:
                self._fail(s, f"timed out after {self.timeout:g} s (worker killed)", on_outcome, pending, known=True)
            elif self.max_memory and rss > self.max_memory:
                mib = self.max_memory / 2**20
                self._fail(
                    s,
                    f"exceeded the memory limit of {mib:.0f} MiB (RSS {rss / 2**20:.0f} MiB; worker killed)",
                    on_outcome,
                    pending,
                )
