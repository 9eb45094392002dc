"""A capture file's sha256, as stored (compressed or not): what names it in reports and in the triage store.

Only the standard library and ``budgets`` are imported: ``engine._sha256_process`` runs ``digest_of`` in a Python of
its own, started isolated and without site packages."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from analyzer.budgets import HASH_BLOCK


def regular(path: str | Path) -> bool:
    """Whether ``path`` is a regular file (not standard input, a pipe or a device: those have one reader)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def file_sha256(path: str | Path) -> str | None:
    """sha256 of the file as stored (compressed or not); None for standard input or a pipe (``<(zcat ...)``:
    its bytes were the capture reader's, and hashing what is left would give the digest of nothing)."""
    if str(path) == "-" or not regular(path):
        return None
    return digest_of(path)


def digest_of(path: str | Path, parent: int | None = None) -> str:
    """sha256 of what ``path`` holds, read in ``HASH_BLOCK`` pieces into one buffer (triage hashes thousands of small
    files); raises ``OSError``. With ``parent`` (a process id), it stops with ``SystemExit(2)`` once that process is
    no longer this one's parent: whoever wanted the digest is gone."""
    h = hashlib.sha256()
    buf = bytearray(HASH_BLOCK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            if parent is not None and os.getppid() != parent:
                raise SystemExit(2)
    return h.hexdigest()
