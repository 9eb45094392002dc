"""Expand the PATH arguments of ``ghostcap triage`` into capture files: files as given, directories walked
recursively for capture names, glob patterns (``**`` recursive) expanded the same way."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

CAPTURE_EXTS = (".pcap", ".pcapng", ".cap")
COMPRESSED_EXTS = (".gz", ".bz2", ".xz", ".zst", ".zstd")
GLOB_CHARS = frozenset("*?[")


class DiscoverError(ValueError):
    """A PATH argument names nothing."""


@dataclass(frozen=True, slots=True)
class Found:
    """One capture to triage: ``path`` (absolute) and ``name`` (as shown: relative to the argument that found it)."""

    path: str
    name: str


def is_capture_name(name: str) -> bool:
    """``x.pcap``, ``x.pcapng``, ``x.cap``, optionally followed by a compression suffix (``x.pcap.zst``)."""
    low = name.lower()
    for ext in COMPRESSED_EXTS:
        if low.endswith(ext):
            low = low[: -len(ext)]
            break
    return low.endswith(CAPTURE_EXTS)


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for f in sorted(filenames):
            if is_capture_name(f):
                yield Path(dirpath) / f


def discover(args: Sequence[str]) -> list[Found]:
    """Every capture named by ``args``, each once (by real path), in argument order then name order.

    A file given by name is taken whatever its name (the engine says if it is no capture); a directory or a glob
    contributes only files with capture names. Raises ``DiscoverError`` for an argument that matches nothing."""
    out: list[Found] = []
    seen: set[str] = set()

    def add(p: Path, name: str) -> None:
        real = os.path.realpath(p)
        if real not in seen:
            seen.add(real)
            out.append(Found(os.path.abspath(p), name))

    for arg in args:
        p = Path(arg)
        if p.is_dir():
            for f in _walk(p):
                add(f, str(Path(p.name or arg) / f.relative_to(p)) if p.name else str(f.relative_to(p)))
        elif p.exists() or p.is_symlink():
            add(p, p.name)
        elif GLOB_CHARS & set(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            before = len(out)
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    for f in _walk(mp):
                        add(f, str(f))
                elif mp.is_file() and is_capture_name(mp.name):
                    add(mp, m)
            if len(out) == before and not any(os.path.realpath(m) in seen for m in matches):
                raise DiscoverError(f"{arg}: no capture matches")
        else:
            raise DiscoverError(f"{arg}: no such file or directory")
    return out
