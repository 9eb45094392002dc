"""The local back end: a supervisor process driving N long-lived worker processes.

Each worker is a ``spawn``-ed process that imports the engine once (``worker.worker_main``) and talks to the
supervisor over its own pipe. A worker holds more than the capture it analyses (``_Slot.depth``): at least
``budgets.TRIAGE_WORKER_QUEUE``, so it goes from one to the next without waiting for the supervisor (which, on a
machine with as many cores as workers, has to wait for a core itself), and about ``TRIAGE_WORKER_QUEUE_S`` of work
when its captures are quick. It answers them in order, several outcomes to a message when they are quick
(``TRIAGE_ANSWER_S``), and the supervisor gives it as many new captures in one message: on a fleet of small
captures the supervisor's messages, wake-ups and pickling per capture were a tenth of a worker's work, taken from
the cores the workers need.

A worker can die (exception-proof Python cannot stop ``os._exit`` or a segfault), overrun ``timeout`` or grow past
``max_memory`` of RSS: it is killed and replaced, and the batch goes on. Each worker says in shared memory which
capture it is analysing and since when (``_Slot.now``), so the capture whose time ran out, or that its worker died
or grew on, is known and becomes an error outcome; the others it held, the ones analysed whose outcomes were not
sent yet included, are given again. A worker that dies between captures (sending outcomes, say) blames none: what
it held is given again, each on its own (``LocalPool.suspects``), and one that kills its worker again is the error.
Workers ignore SIGINT: on Ctrl-C the supervisor's ``KeyboardInterrupt`` stops the loop and kills them. A worker
never outlives its supervisor: it is killed with it (``worker.die_with_parent``), even mid-capture.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from analyzer.budgets import TRIAGE_WORKER_QUEUE, TRIAGE_WORKER_QUEUE_MAX, TRIAGE_WORKER_QUEUE_S
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
    held: deque[Task] = field(default_factory=deque)  # sent and not answered, in order
    now: Any = None  # shared with the worker: [index of the capture it analyses, its start in monotonic ns or 0]
    depth: int = TRIAGE_WORKER_QUEUE  # captures to hold (``LocalPool._answered``)

    @property
    def task(self) -> Task | None:
        """The first capture the worker holds (analysed, or being analysed)."""
        return self.held[0] if self.held else None

    def analysing(self) -> tuple[int, int] | None:
        """``(index, start in monotonic ns)`` of the capture the worker is analysing, if it says so."""
        now = self.now
        if now is None:
            return None
        began, index = now[1], now[0]
        return (index, began) if began and now[1] == began else None  # not torn by the worker's next capture


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
        now = self.ctx.RawArray("q", 2)
        proc = self.ctx.Process(
            target=worker_main,
            args=(child, self.cfg, self.max_memory, os.getpid(), now),
            name=f"ghostcap-triage-{n}",
            daemon=True,
        )
        proc.start()
        child.close()
        return _Slot(n, proc, parent, now=now)

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
        culprit: int | None = None,
    ) -> None:
        """``slot``'s worker died or was killed (``message``); it is replaced. The capture it analysed fails with
        ``message``: the ``culprit`` (its index) when known, else the one it held when that was the only one or was
        given to it on its own; else every capture it held is a suspect (``self.suspects``). The others go back to
        the front of ``pending``."""
        held = slot.held
        if culprit is not None:
            task = next((t for t in held if t.index == culprit), None)
        else:
            task = slot.task
            if task is not None and len(held) > 1 and task.index not in self.suspects:
                self.suspects.update(t.index for t in held)
                task = None
        if task is not None:
            held.remove(task)
            self.suspects.discard(task.index)
            on_outcome(task, Outcome(index=task.index, error=message, pid=slot.proc.pid or 0))
        self._requeue(slot, pending)
        self._replace(slot)

    @staticmethod
    def _requeue(slot: _Slot, pending: deque[Task]) -> None:
        pending.extendleft(reversed(slot.held))
        slot.held.clear()

    def _culprit(self, slot: _Slot) -> int | None:
        """The capture ``slot``'s worker was analysing when it stopped, if it said so and still held it."""
        now = slot.analysing()
        return now[0] if now is not None else None

    def _loop(
        self, pending: deque[Task], on_outcome: Callable[[Task, Outcome], None], on_idle: Callable[[], None]
    ) -> None:
        last_watch = 0.0
        while pending or any(s.held for s in self.slots):
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
                    if isinstance(msg, list):
                        self._answered(s, msg, on_outcome, pending)
                        continue
                if dead:
                    s.proc.join(2)
                    if not s.ready:
                        self._start_failures += 1
                        if self._start_failures > MAX_START_FAILURES:
                            raise PoolError(f"worker processes fail to start ({death_message(s.proc.exitcode)})")
                    self._fail(s, death_message(s.proc.exitcode), on_outcome, pending, self._culprit(s))
            now = time.monotonic()
            if now - last_watch >= POLL_S:
                last_watch = now
                self._watch(on_outcome, pending)
                on_idle()

    def _answered(
        self, s: _Slot, outcomes: list[Outcome], on_outcome: Callable[[Task, Outcome], None], pending: deque[Task]
    ) -> None:
        """``s``'s worker sent ``outcomes``, in the order it was given the captures: they leave ``s.held``; its
        depth follows their times; it gets its next captures before these are stored (so it need not wait)."""
        done: list[tuple[Task, Outcome]] = []
        held = s.held
        spent = 0.0
        for out in outcomes:
            while held and held[0].index != out.index:  # never: a worker answers in order
                pending.appendleft(held.popleft())
            if not held:
                break
            task = held.popleft()
            self.suspects.discard(task.index)
            spent += out.analysis_s + out.report_s
            done.append((task, out))
        if done:
            self._note_rss(s, max(out.maxrss_kb for _, out in done))
            s.depth = queue_depth(spent / len(done))
        if any(out.recycle for _, out in done):  # the worker exits: what it still held goes to another
            self._requeue(s, pending)
            self._replace(s)
        else:
            self._give(s, pending)
        for task, out in done:
            on_outcome(task, out)

    def _give(self, s: _Slot, pending: deque[Task]) -> None:
        """A ready worker gets a capture if it holds none, and more up to its depth while there are captures for
        every worker still to give (at the end of a batch, a capture queued behind a long one would wait while
        another worker is idle); one message for all it gets."""
        suspects = self.suspects
        given: list[Task] = []
        held = s.held
        while (
            s.ready
            and pending
            and (
                not held
                or (
                    len(held) < s.depth
                    and len(pending) >= len(self.slots)
                    and not (suspects and (held[0].index in suspects or pending[0].index in suspects))
                )
            )
        ):
            task = pending.popleft()
            held.append(task)
            given.append(task)
        if given:
            # a worker that died since it last answered: its sentinel says so next, and _fail gives these again
            with contextlib.suppress(OSError):
                s.conn.send(given)

    def _watch(self, on_outcome: Callable[[Task, Outcome], None], pending: deque[Task]) -> None:
        """Kill a worker whose capture overran the time limit or whose RSS passed the memory limit."""
        for s in list(self.slots):
            if not s.held or not s.proc.pid:
                continue
            rss = rss_bytes(s.proc.pid)
            self._note_rss(s, rss // 1024)
            now = s.analysing()
            if self.timeout is not None and now is not None and time.monotonic_ns() - now[1] > self.timeout * 1e9:
                self._fail(s, f"timed out after {self.timeout:g} s (worker killed)", on_outcome, pending, now[0])
            elif self.max_memory and rss > self.max_memory:
                mib = self.max_memory / 2**20
                self._fail(
                    s,
                    f"exceeded the memory limit of {mib:.0f} MiB (RSS {rss / 2**20:.0f} MiB; worker killed)",
                    on_outcome,
                    pending,
                    now[0] if now is not None else None,
                )


def queue_depth(seconds: float) -> int:
    """Captures a worker holds when each takes ``seconds`` (see ``budgets.TRIAGE_WORKER_QUEUE_S``)."""
    if seconds <= 0:
        return TRIAGE_WORKER_QUEUE
    return max(TRIAGE_WORKER_QUEUE, min(TRIAGE_WORKER_QUEUE_MAX, int(TRIAGE_WORKER_QUEUE_S / seconds)))
