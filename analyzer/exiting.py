"""Ending the ``ghostcap`` process quickly once its work is done, and not freeing what it will not need again.

A normal interpreter exit frees every object the process still holds, one by one: after ``analyze`` on a gateway
capture, a heap of a few hundred MB in millions of objects (0.12 to 0.14 s of the 1M-packet gateway capture's job,
measured, for memory the system takes back at once). ``exit_now`` does what the interpreter's exit does that
anyone can see (waiting for threads that are not daemons, the ``atexit`` functions, among them
``weakref.finalize`` and ``multiprocessing``'s clean-up, then standard output and error flushed) and then ends the
process without the freeing."""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
import threading
from collections.abc import Iterator

_leaving = False  # this process ends with ``exit_now`` (set by the ``ghostcap`` command)
_holding = False
_held: list[object] = []  # what ``hold`` kept, to the end of the process


def leaving() -> None:
    """This process will end with ``exit_now``: what ``hold`` is given may be kept to the end."""
    global _leaving
    _leaving = True


@contextlib.contextmanager
def holding(last: bool) -> Iterator[None]:
    """Inside it, ``hold`` keeps what it is given when ``last`` (the process's last job: nothing after it needs
    the memory) and the process ends with ``exit_now``. After such a job the garbage collector is off: a caller
    restoring its thresholds would otherwise have it walk the job's young objects on the way out (0.03 s at 1M)."""
    global _holding
    was, _holding = _holding, last and _leaving
    try:
        yield
    finally:
        if _holding:
            gc.disable()
        _holding = was


def hold(*objects: object) -> None:
    """Keep ``objects`` to the end of the process, where ``holding`` says so: the last capture's analysis and report
    would otherwise be freed object by object when the job returns (0.08 s after ``analyze`` of the 1M gateway
    capture), just before an exit that does not need it."""
    if _holding:
        _held.extend(objects)


def exit_status(code: object) -> int:
    """The status the interpreter exits with for ``sys.exit(code)``; a code that is neither ``None`` nor an
    integer is written to standard error, status 1, as the interpreter does."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"{code}\n")
    return 1


def exit_now(code: object) -> None:
    """Exit with ``code`` (as ``sys.exit(code)`` would), skipping the freeing of the heap. It exits the usual way
    while a thread that is not a daemon still runs (the interpreter would wait for it), or where this Python has no
    way to run the ``atexit`` functions first."""
    run_exit_functions = getattr(atexit, "_run_exitfuncs", None)
    main = threading.main_thread()
    if run_exit_functions is None or any(t is not main and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    status = exit_status(code)
    run_exit_functions()
    for stream in (sys.stdout, sys.stderr):
        # a reader that went away (a closed pipe): what the interpreter's exit would lose too
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    os._exit(status)
