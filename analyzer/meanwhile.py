"""Work done meanwhile in a forked process: after its partitions are read, ``analyze --workers N`` writes its HTML
page (``report.writer``) in one while it writes the other formats (each a few tenths of a second on a gateway
capture, with the other cores idle by then). The diagnosis is not split so (``diagnosis.runner.diagnose_all``):
after a fork each process pays a fault for every page of the shared heap it writes, which took back more than the
split saved.

The process is a fork of this one: it sees the same objects, costs no pickling on the way in, and sends its result
back pickled. Whatever goes wrong there (an exception, a result that does not pickle, the process killed) gives
``None``, and the caller does the work itself: its own exception, if it raises one, is then raised where it would
have been without the process."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Generic, TypeVar

from analyzer.lifeline import die_with_parent

T = TypeVar("T")


class Meanwhile(Generic[T]):
    """``fn()`` started in a forked process; ``result()`` waits for it, ``stop()`` ends it unwaited (a caller that
    met an error first: a process left blocked on sending a result nobody reads would hold up the exit). As a
    context manager it is stopped on the way out."""

    def __init__(self, fn: Callable[[], T]) -> None:
        ctx = mp.get_context("fork")
        self._conn: Connection | None = None
        self._proc: BaseProcess | None = None
        # no pipe or process to be had (memory, process or file limits): ``result()`` is None, the caller does it
        try:
            conn, child = ctx.Pipe(duplex=False)
        except OSError:
            return
        try:
            proc = ctx.Process(target=_run, args=(fn, child, os.getpid()), name="ghostcap-meanwhile", daemon=True)
            proc.start()
        except OSError:
            conn.close()
            return
        finally:
            child.close()
        self._conn, self._proc = conn, proc

    def result(self) -> T | None:
        """``fn()``'s value, or ``None`` when it raised, could not be sent, the process died, never started or was
        stopped."""
        if self._conn is None or self._proc is None:
            return None
        try:
            got = ForkingPickler.loads(self._conn.recv_bytes())
        except Exception:  # noqa: BLE001 - EOF (the process died), a value that does not unpickle: done here instead
            got = None
        finally:
            self.stop()
        return got[0] if isinstance(got, tuple) else None

    def __enter__(self) -> Meanwhile[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """End the process, if it still runs, and close the pipe (after ``result()``, nothing is left to end)."""
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join()
        if self._conn is not None:
            self._conn.close()
        self._conn = self._proc = None


def _run(fn: Callable[[], object], conn: Connection, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's
    die_with_parent(parent)
    try:
        data = ForkingPickler.dumps((fn(),))
    except BaseException:  # noqa: BLE001 - the parent does the work again and meets the error itself
        data = ForkingPickler.dumps(None)
    try:
        conn.send_bytes(data)
        conn.close()
    except OSError:
        os._exit(1)
