"""The local pool's queue: a worker holds the capture it analyses and the next (``budgets.TRIAGE_WORKER_QUEUE``),
more when its captures are quick (``queue_depth``), so it never waits for the supervisor between two; at the end of
a batch no capture is queued behind another while a worker could take it; a death blames exactly the capture that
caused it."""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

import pytest

from analyzer.budgets import TRIAGE_WORKER_QUEUE, TRIAGE_WORKER_QUEUE_MAX, TRIAGE_WORKER_QUEUE_S
from analyzer.triage.pool import LocalPool, _Slot, queue_depth
from analyzer.triage.worker import FAULTS_ENV, Outcome, Task, WorkerConfig
from tests.conftest import PROJECT_CAPTURES

GOOD = ["tcp_refused.pcap", "dns_nxdomain.pcap", "ocpp_boot_rejected.pcap"]


class _Proc:
    pid = 4242


class _Pipe:
    def __init__(self) -> None:
        self.sent: list[Task] = []

    def send(self, tasks: list[Task]) -> None:
        self.sent.append(tasks)


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
    assert a.conn.sent == [list(a.held)]  # type: ignore[attr-defined]  # one message
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
    """Without word of the capture it was analysing (it died between two, sending the first's outcome, say):
    neither is blamed; both go back first, in order, and each is then given on its own, with nothing queued behind
    it."""
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


def test_a_time_out_blames_the_capture_being_analysed_and_requeues_the_others() -> None:
    """The worker says which capture it analyses and since when: a time-out is that capture's own, and the ones
    before it, analysed but not answered yet, are given again with the ones after it."""
    pool, (a,) = _pool(1)
    a.depth = 3
    pending = _tasks(4)
    pool._give(a, pending)
    assert len(a.held) == 3
    failed = _failing(pool)
    message = "timed out after 2 s (worker killed)"
    pool._fail(a, message, lambda t, o: failed.append((t.index, o.error)), pending, culprit=1)
    assert failed == [(1, message)]
    assert not pool.suspects
    assert [t.index for t in pending] == [0, 2, 3]


@pytest.mark.parametrize("mode", ["exit", "segv"])
def test_the_capture_queued_behind_one_that_kills_its_worker_is_analysed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """One real worker: it dies holding the dying capture and the next. It had said which one it was analysing, so
    that one is blamed at once (one worker replaced, no suspects), and the next is given again and analysed."""
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
            held.append(len(s.held))  # what the worker held after captures were given to it

    pool._give = spy  # type: ignore[method-assign]
    stats = pool.run(tasks, lambda t, o: seen.append((t.name, o.error)))
    assert sorted(n for n, _ in seen) == sorted(names)
    errors = dict(seen)
    assert errors["dies.pcap"] is not None
    assert errors["dies.pcap"].startswith("worker process")
    assert [errors[n] for n in GOOD] == [None] * len(GOOD)
    assert stats.replaced == 1
    assert held[0] == 2  # the first worker held the next capture when it died
    assert not pool.suspects


def test_outcomes_come_several_to_a_message_and_leave_the_queue_in_order() -> None:
    """A worker answers quick captures together: they leave what it holds in order, it is given its next captures
    in one message before they are stored, and its depth follows their times."""
    pool, (a, b) = _pool(2)
    pending = _tasks(40)
    pool._give(a, pending)
    pool._give(b, pending)
    assert [t.index for t in a.held] == [0, 1]
    stored: list[tuple[int, int]] = []

    def on_outcome(t: Task, o: Outcome) -> None:
        stored.append((t.index, len(a.conn.sent)))  # type: ignore[attr-defined]

    quick = [Outcome(index=i, analysis_s=0.002, report_s=0.001) for i in (0, 1)]
    pool._answered(a, quick, on_outcome, pending)
    assert stored == [(0, 2), (1, 2)]  # given again (a second message) before either was stored
    assert a.depth == queue_depth(0.003) > TRIAGE_WORKER_QUEUE
    assert [t.index for t in a.held] == list(range(4, 4 + a.depth))
    assert a.conn.sent[1] == list(a.held)  # type: ignore[attr-defined]
    slow = [Outcome(index=4, analysis_s=2.0, report_s=0.5)]
    pool._answered(a, slow, on_outcome, pending)
    assert a.depth == TRIAGE_WORKER_QUEUE  # slow captures: the least, and no more given while it holds that many
    assert len(a.held) == queue_depth(0.003) - 1
    assert len(a.conn.sent) == 2  # type: ignore[attr-defined]


def test_the_queue_depth_follows_capture_times_within_its_bounds() -> None:
    assert queue_depth(0.0) == TRIAGE_WORKER_QUEUE  # no time known (errors)
    assert queue_depth(10.0) == TRIAGE_WORKER_QUEUE
    assert queue_depth(TRIAGE_WORKER_QUEUE_S / 5) == 5
    assert queue_depth(1e-6) == TRIAGE_WORKER_QUEUE_MAX


def test_what_a_worker_says_it_analyses_is_read_only_when_untorn() -> None:
    _, (a,) = _pool(1)
    assert a.analysing() is None  # no shared memory: nothing said
    a.now = [7, 0]
    assert a.analysing() is None  # between captures
    a.now = [7, 123]
    assert a.analysing() == (7, 123)

    class Torn(list):
        """The worker moves to its next capture between the reads."""

        reads = 0

        def __getitem__(self, i: int) -> int:  # type: ignore[override]
            self.reads += 1
            return 999 if self.reads > 1 and i == 1 else super().__getitem__(i)

    a.now = Torn([7, 123])
    assert a.analysing() is None


def test_captures_given_to_a_worker_that_just_died_are_given_again() -> None:
    """A worker can die right after it answered (its next capture kills it at once): sending it more fails with a
    broken pipe, which is no error of the batch; its death, seen next, blames the capture it was analysing and
    gives the others again."""

    class Broken(_Pipe):
        def send(self, tasks: list[Task]) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    pool, (a,) = _pool(1)
    a.conn = Broken()  # type: ignore[assignment]
    a.now = [0, 0]
    pending = _tasks(3)
    pool._give(a, pending)  # no exception
    assert [t.index for t in a.held] == [0, 1]
    failed = _failing(pool)
    a.now = [0, 99]  # it said it was analysing 0
    pool._fail(a, "worker process exited with status 17", lambda t, o: failed.append((t.index, o.error)), pending, 0)
    assert failed == [(0, "worker process exited with status 17")]
    assert [t.index for t in pending] == [1, 2]
