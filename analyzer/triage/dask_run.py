"""The distributed back end: the same tasks (``worker.run_task``) on an existing Dask cluster.

Imported only for ``--scheduler`` (Dask costs ~0.4 s to import). Workers open captures at the same path as the
supervisor (a shared file system) or, with ``send_bytes``, receive the capture's bytes; either way they return
the reports' text and the supervisor writes them, so the output directory need not be shared. At most a few
tasks per worker thread are in flight, so the timeout counts from when a task can start and sent bytes stay
bounded. Isolation: an exception is the capture's error row; a worker process that dies is restarted by its
nanny and Dask retries the task elsewhere, up to the scheduler's ``allowed-failures``, then it is an error row;
a finished result lost with its worker is computed again by Dask, and an error row if that fails;
a task past the timeout is cancelled and its worker restarted; memory is the nanny's ``memory_limit``.
"""

from __future__ import annotations

import time
from asyncio import CancelledError
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from analyzer.triage.pool import PoolStats
from analyzer.triage.worker import Outcome, Task, WorkerConfig, run_task

PER_THREAD = 2


def run_dask(
    scheduler: str | Any,
    tasks: Sequence[Task],
    cfg: WorkerConfig,
    on_outcome: Callable[[Task, Outcome], None],
    timeout: float | None = None,
    send_bytes: bool = False,
    on_idle: Callable[[], None] = lambda: None,
) -> PoolStats:
    """Run ``tasks`` on the cluster at ``scheduler`` (an address, or a ``distributed.Client``); ``on_idle()`` is
    called at least every half second."""
    from distributed import Client
    from distributed import wait as dask_wait

    client = Client(scheduler) if isinstance(scheduler, str) else scheduler
    own = isinstance(scheduler, str)
    cfg = replace(cfg, out_dir=None)
    stats = PoolStats()
    pids: dict[int, int] = {}
    try:
        threads = sum(client.nthreads().values()) or 1
        limit = PER_THREAD * threads
        queue = list(reversed(tasks))
        running: dict[Any, tuple[Task, float]] = {}

        def submit(task: Task) -> None:
            sent = _with_bytes(task) if send_bytes else task
            fut = client.submit(run_task, sent, cfg, pure=False, key=f"ghostcap-triage-{task.index}-{time.time_ns()}")
            running[fut] = (task, time.monotonic())

        while queue or running:
            while queue and len(running) < limit:
                submit(queue.pop())
            try:
                done, _ = dask_wait(list(running), timeout=0.5, return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished in this half second
                done = set()
            for fut in done:
                task, _ = running.pop(fut)
                on_outcome(task, _outcome(fut, task, pids, timeout))
            if timeout is not None:
                _expire(client, running, timeout, on_outcome)
            on_idle()
    finally:
        if own:
            client.close()
    stats.peak_rss_kb = dict(enumerate(sorted(pids.values(), reverse=True)))
    return stats


def _with_bytes(task: Task) -> Task:
    keylogs = tuple(Path(k).read_bytes() for k in task.keylog_files)
    return replace(task, data=Path(task.path).read_bytes(), keylog_data=keylogs)


def _outcome(fut: Any, task: Task, pids: dict[int, int], timeout: float | None = None) -> Outcome:
    """``fut`` is done, or was: ``wait`` counts a ``lost`` future (its result gone with its worker's process, Dask
    computing it again) as done, and a result may be lost after ``wait``; ``result()`` waits for it again, at most
    ``timeout`` seconds (the capture's time limit: a cluster left without workers would never compute it)."""
    try:
        out: Outcome = fut.result(timeout=timeout)
    except TimeoutError:
        fut.cancel()
        why = "its result was lost with its worker and not computed again"
        return Outcome(index=task.index, error=f"timed out after {timeout:g} s ({why})")
    except (Exception, CancelledError) as exc:  # noqa: BLE001 - the task's error, KilledWorker included
        return _failed(task, exc)
    pids[out.pid] = max(pids.get(out.pid, 0), out.maxrss_kb)
    return out


def _failed(task: Task, exc: BaseException) -> Outcome:
    name = type(exc).__name__
    if name == "KilledWorker":
        return Outcome(index=task.index, error=f"worker process died (Dask KilledWorker: {exc})")
    return Outcome(index=task.index, error=f"analysis failed on the cluster: {name}: {exc}")


def _expire(
    client: Any, running: dict[Any, tuple[Task, float]], timeout: float, on_outcome: Callable[[Task, Outcome], None]
) -> None:
    """Cancel tasks past the timeout and restart the workers that were running them."""
    now = time.monotonic()
    late = [f for f, (_, t0) in running.items() if now - t0 > timeout]
    if not late:
        return
    keys = {f.key for f in late}
    busy = [w for w, ks in client.processing().items() if keys & set(ks)]
    for fut in late:
        task, _ = running.pop(fut)
        fut.cancel()
        on_outcome(task, Outcome(index=task.index, error=f"timed out after {timeout:g} s (Dask worker restarted)"))
    if busy:
        client.restart_workers(busy, raise_for_error=False)
