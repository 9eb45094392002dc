"""Open a capture source: a path or ``-`` (stdin), decompressed by content (gzip, bzip2, xz, zstd).

The result is a plain binary stream read front to back once; nothing is loaded whole.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from analyzer.errors import CaptureError

_COMPRESSION_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


@dataclass(frozen=True, slots=True)
class Source:
    """An opened capture: ``stream`` yields the (decompressed) capture bytes.

    Fields: ``name`` (file name without directory, or ``-``), ``compression`` (``None`` or the codec name),
    ``stream``.
    """

    name: str
    compression: str | None
    stream: BinaryIO


def open_source(path: str | Path) -> Source:
    """Open ``path`` (or ``-`` for standard input), detecting compression from the first bytes."""
    if str(path) == "-":
        raw: BinaryIO = sys.stdin.buffer
        name = "-"
    else:
        p = Path(path)
        if p.is_dir():
            raise CaptureError(f"{p}: is a directory, not a capture file")
        try:
            raw = open(p, "rb")  # noqa: SIM115 - closed by the reader that consumes it
        except OSError as e:
            raise CaptureError(f"{p}: cannot open: {e.strerror or e}") from None
        name = p.name
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
    head = buffered.peek(8)[:8]
    codec = next((c for magic, c in _COMPRESSION_MAGIC if head.startswith(magic)), None)
    if codec is None:
        return Source(name, None, buffered)
    return Source(name, codec, _decompressor(codec, buffered))


def _decompressor(codec: str, raw: BinaryIO) -> BinaryIO:
    if codec == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if codec == "bzip2":
        return bz2.BZ2File(raw, "rb")  # type: ignore[return-value]
    if codec == "xz":
        return lzma.LZMAFile(raw, "rb")  # type: ignore[return-value]
    import zstandard  # imported lazily: only zstd input pays for it

    return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)  # type: ignore[return-value]


def describe_non_capture(head: bytes) -> str:
    """Say in a few words what a file that is not a capture looks like, from its first bytes."""
    if not head:
        return "an empty file"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    low = stripped[:64].lower()
    if low.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML document"
    if low.startswith(b"<?xml") or low.startswith(b"<"):
        return "XML or HTML text"
    if stripped[:1] in (b"{", b"["):
        return "JSON text"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"\x7fELF"):
        return "an ELF executable"
    if head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8\xff") or head.startswith(b"GIF8"):
        return "an image"
    if head.startswith(b"SQLite format 3"):
        return "an SQLite database"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(ch.isprintable() or ch in "\r\n\t" for ch in text[:-4]):
        first = text.splitlines()[0][:40] if text.splitlines() else ""
        return f"plain text (starts {first!r})"
    return f"unrecognised binary data (first bytes {head[:8].hex(' ')})"
