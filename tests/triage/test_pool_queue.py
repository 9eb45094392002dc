"""The local pool's queue: a worker holds the capture it analyses and the next (``budgets.TRIAGE_WORKER_QUEUE``),
so it never waits for the supervisor between two; at the end of a batch no capture is queued behind another while a
worker could take it; a death blames exactly the capture that caused it."""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

import pytest

from analyzer.budgets import TRIAGE_WORKER_QUEUE
from analyzer.triage.pool import LocalPool, _Slot
from analyzer.triage.worker import FAULTS_ENV, Task, WorkerConfig
from tests.conftest import PROJECT_CAPTURES

GOOD = ["tcp_refused.pcap", "dns_nxdomain.pcap", "ocpp_boot_rejected.pcap"]


class _Proc:
    pid = 4242


class _Pipe:
    def __init__(self) -> None:
        self.sent: list[Task] = []

    def send(self, task: Task) -> None:
        self.sent.append(task)


def _tasks(n: int) -> deque[Task]:
    return deque(Task(i, f"c{i}.pcap", f"c{i}.pcap", f"c{i}", None) for i in range(n))


def _pool(slots: int) -> tuple[LocalPool, list[_Slot]]:
    pool = LocalPool(slots, WorkerConfig(out_dir=None))
    pool.slots = [_Slot(n, proc=_Proc(), conn=_Pipe(), ready=True) for n in range(slots)]  # type: ignore[arg-type]
    return pool, pool.slots


def test_a_worker_is_given_the_next_capture_while_there_is_one_for_every_worker() -> None:
    pool, (a, b) = _pool(2)
    pending = _tasks(6)
    pool._give(a, pending)
    pool._give(b, pending)
    assert [t.index for t in a.held] == [0, 1]
    assert [t.index for t in b.held] == [2, 3]
    assert a.conn.sent == list(a.held)  # type: ignore[attr-defined]
    assert len(a.held) == TRIAGE_WORKER_QUEUE
    a.held.popleft()  # a finished 0
    pool._give(a, pending)
    assert [t.index for t in a.held] == [1, 4]
    b.held.popleft()  # b finished 2: one capture left for two workers, so it is not queued behind 3
    pool._give(b, pending)
    assert [t.index for t in b.held] == [3]
    assert [t.index for t in pending] == [5]
    b.held.popleft()  # b finished 3 and is free: it takes 5
    pool._give(b, pending)
    assert [t.index for t in b.held] == [5]
    assert not pending


def test_a_worker_that_is_not_ready_gets_nothing() -> None:
    pool, (a,) = _pool(1)
    a.ready = False
    pending = _tasks(3)
    pool._give(a, pending)
    assert not a.held
    assert len(pending) == 3


def _failing(pool: LocalPool) -> list[tuple[int, str | None]]:
    failed: list[tuple[int, str | None]] = []
    pool._replace = lambda slot: None  # type: ignore[method-assign]  # no process to replace here
    return failed


def test_a_worker_that_dies_holding_two_captures_makes_both_suspects() -> None:
    """It may have been analysing the second while its writer wrote the first: neither is blamed; both go back
    first, in order, and each is then given on its own, with nothing queued behind it."""
    pool, (a, b) = _pool(2)
    pending = _tasks(6)
    pool._give(a, pending)
    failed = _failing(pool)
    pool._fail(a, "worker process died (SIGSEGV)", lambda t, o: failed.append((t.index, o.error)), pending)
    assert failed == []
    assert pool.suspects == {0, 1}
    assert [t.index for t in pending] == [0, 1, 2, 3, 4, 5]
    assert not a.held
    pool._give(a, pending)
    pool._give(b, pending)
    assert ([t.index for t in a.held], [t.index for t in b.held]) == ([0], [1])
    a.held.popleft()  # 0 was analysed: no longer a suspect, and a takes 2 with 3 queued
    pool.suspects.discard(0)
    pool._give(a, pending)
    assert [t.index for t in a.held] == [2, 3]
    pool._give(b, pending)
    assert [t.index for t in b.held] == [1]  # nothing queued behind a suspect


def test_a_suspect_that_kills_its_worker_again_is_blamed() -> None:
    pool, (a,) = _pool(1)
    pending = _tasks(3)
    pool.suspects = {0}
    pool._give(a, pending)
    assert [t.index for t in a.held] == [0]
    failed = _failing(pool)
    pool._fail(a, "worker process exited with status 17", lambda t, o: failed.append((t.index, o.error)), pending)
    assert failed == [(0, "worker process exited with status 17")]
    assert not pool.suspects
    assert [t.index for t in pending] == [1, 2]


def test_a_time_out_blames_the_capture_being_analysed_and_requeues_the_next() -> None:
    """The clock of the first capture a worker holds starts when the one before it came back, so a time-out is
    its own."""
    pool, (a,) = _pool(1)
    pending = _tasks(3)
    pool._give(a, pending)
    assert len(a.held) == 2
    failed = _failing(pool)
    message = "timed out after 2 s (worker killed)"
    pool._fail(a, message, lambda t, o: failed.append((t.index, o.error)), pending, known=True)
    assert failed == [(0, message)]
    assert not pool.suspects
    assert [t.index for t in pending] == [1, 2]


@pytest.mark.parametrize("mode", ["exit", "segv"])
def test_the_capture_queued_behind_one_that_kills_its_worker_is_analysed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """One real worker: it dies holding the dying capture and the next; both are given again on their own, so the
    dying one kills its second worker too and is blamed, and the next is analysed."""
    monkeypatch.setenv(FAULTS_ENV, f"{mode}:dies")
    names = ["dies.pcap", *GOOD]
    d = tmp_path / "in"
    d.mkdir()
    for n in names:
        os.symlink(PROJECT_CAPTURES / ("tcp_reset.pcap" if n == "dies.pcap" else n), d / n)
    tasks = [Task(i, str(d / n), n, f"s{i}", None) for i, n in enumerate(names)]
    seen: list[tuple[str, str | None]] = []
    held: list[int] = []
    pool = LocalPool(1, WorkerConfig(out_dir=str(tmp_path / "out")), timeout=120)
    give = pool._give

    def spy(s: _Slot, pending: deque[Task]) -> None:
        before = len(s.held)
        give(s, pending)
        if len(s.held) > before:
            held.append(len(s.held))  # what the worker held after a capture was given to it

    pool._give = spy  # type: ignore[method-assign]
    stats = pool.run(tasks, lambda t, o: seen.append((t.name, o.error)))
    assert [n for n, _ in seen] == names
    assert seen[0][1] is not None
    assert seen[0][1].startswith("worker process")
    assert [e for _, e in seen[1:]] == [None] * len(GOOD)
    assert stats.replaced == 2
    assert held[0] == 2  # the first worker held the next capture when it died
    assert held[1:3] == [1, 1]  # the suspects, each on its own
    assert not pool.suspects
