"""Ending the ``ghostcap`` process quickly once its work is done.

A normal interpreter exit frees every object the process still holds, one by one: after ``analyze`` on a gateway
capture, a heap of a few hundred MB in millions of objects (0.12 to 0.14 s of the 1M-packet gateway capture's job,
measured, for memory the system takes back at once). ``exit_now`` does what the interpreter's exit does that
anyone can see (waiting for threads that are not daemons, the ``atexit`` functions, among them
``weakref.finalize`` and ``multiprocessing``'s clean-up, then standard output and error flushed) and then ends the
process without the freeing."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading


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
