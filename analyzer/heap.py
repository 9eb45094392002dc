"""Giving the C heap's free pages back to the system while a big capture is read.

Reading a gateway capture makes and frees many objects: finished background flows, their reassembly buffers, the
events the keeper thins. Python hands the freed memory to the C heap, which keeps it, so a process's resident
memory stays near the most it ever held. glibc's ``malloc_trim`` returns the heap's free pages; ``analyze`` calls
it at each idle sweep (``budgets.TRIM_EVERY_SWEEPS``) and a partition of ``analyze --workers`` once more before
it hands its part to the parent. Without glibc (musl, macOS) nothing happens.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
_looked = False


def trim_heap() -> bool:
    """Give the free pages of the C heap back to the system; whether this libc can."""
    global _trim, _looked
    if not _looked:
        _looked = True
        try:
            _trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _trim = None
    if _trim is None:
        return False
    _trim(0)
    return True
