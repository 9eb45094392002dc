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
    raw: BinaryIO

    def close(self) -> None:
        """Close the decompressor and the file under it (standard input is left open)."""
        self.stream.close()
        if self.name != "-":
            self.raw.close()


def open_source(path: str | Path) -> Source:
    """Open ``path`` (or ``-`` for standard input), detecting compression from the first bytes."""
    if str(path) == "-":
        raw: BinaryIO = sys.stdin.buffer  # type: ignore[assignment]
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
        return Source(name, None, buffered, buffered)
    return Source(name, codec, _decompressor(codec, buffered), buffered)


def _decompressor(codec: str, raw: BinaryIO) -> BinaryIO:
    if codec == "gzip":
        stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
    elif codec == "bzip2":
        stream = bz2.BZ2File(raw, "rb")  # type: ignore[assignment]
    elif codec == "xz":
        stream = lzma.LZMAFile(raw, "rb")  # type: ignore[assignment]  # noqa: SIM115 - closed by Source.close
    else:
        import zstandard  # imported lazily: only zstd input pays for it

        stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)  # type: ignore[assignment]
    return _Salvaging(stream, codec)  # type: ignore[return-value]


class DamagedInput(OSError):
    """A compressed stream that is corrupt or cut short; raised after every readable byte was returned."""


class _Salvaging:
    """Reads a decompressor in small pieces so that damage loses only the piece it is in.

    The first error is held back until the bytes read before it have been returned.
    """

    PIECE = 1 << 16

    def __init__(self, stream: BinaryIO, codec: str) -> None:
        self._stream = stream
        self._codec = codec
        self._error: DamagedInput | None = None

    def read(self, n: int = -1) -> bytes:
        if self._error is not None:
            raise self._error
        parts: list[bytes] = []
        want = n if n >= 0 else 1 << 62
        got = 0
        while got < want:
            try:
                piece = self._stream.read(min(self.PIECE, want - got))
            except Exception as e:  # noqa: BLE001 - each codec raises its own type (EOFError, OSError, ZstdError)
                self._error = DamagedInput(f"the {self._codec} stream is damaged or cut short ({e})")
                if not parts:
                    raise self._error from None
                break
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)

    def close(self) -> None:
        self._stream.close()


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
