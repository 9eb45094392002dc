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


def _walk(root: str, real_root: str) -> Iterable[tuple[str, str]]:
    """``(path, real path)`` of each capture-named file under ``root`` (whose real path is ``real_root``), in the
    order of ``os.walk(root)`` with its names sorted: a directory's files, then its subdirectories. As ``os.walk``
    does, a link to a directory is not followed and a directory that cannot be listed is left out. One real path
    per directory, not per file: a file's is its directory's plus its name, unless the file is a link."""
    try:
        with os.scandir(root) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    dirs = []
    for e in entries:
        try:
            is_dir = e.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            dirs.append(e)
        elif is_capture_name(e.name):
            yield e.path, os.path.realpath(e.path) if e.is_symlink() else os.path.join(real_root, e.name)
    for e in dirs:
        if not e.is_symlink():
            yield from _walk(e.path, os.path.join(real_root, e.name))


def discover(args: Sequence[str]) -> list[Found]:
    """Every capture named by ``args``, each once (by real path), in argument order then name order.

    A file given by name is taken whatever its name (the engine says if it is no capture); a directory or a glob
    contributes only files with capture names. Raises ``DiscoverError`` for an argument that matches nothing."""
    out: list[Found] = []
    seen: set[str] = set()

    def add(p: Path | str, name: str, real: str | None = None, absolute: str | None = None) -> None:
        real = real or os.path.realpath(p)
        if real not in seen:
            seen.add(real)
            out.append(Found(absolute or os.path.abspath(p), name))

    def add_tree(top: Path, shown: str) -> None:
        """Each capture under the directory ``top``, named ``shown/<its path below top>``."""
        root, absolute = str(top), os.path.abspath(top)
        cut = len(root) + (not root.endswith(os.sep))
        for path, real in _walk(root, os.path.realpath(top)):
            rel = path[cut:]
            add(path, os.path.join(shown, rel) if shown not in ("", ".") else rel, real, os.path.join(absolute, rel))

    for arg in args:
        p = Path(arg)
        if p.is_dir():
            add_tree(p, p.name)
        elif p.exists() or p.is_symlink():
            add(p, p.name)
        elif GLOB_CHARS & set(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            before = len(out)
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    add_tree(mp, str(mp))
                elif mp.is_file() and is_capture_name(mp.name):
                    add(mp, m)
            if len(out) == before and not any(os.path.realpath(m) in seen for m in matches):
                raise DiscoverError(f"{arg}: no capture matches")
        else:
            raise DiscoverError(f"{arg}: no such file or directory")
    return out
