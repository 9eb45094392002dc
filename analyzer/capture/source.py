"""Open a capture source: a path or ``-`` (stdin), decompressed by content (gzip, bzip2, xz, zstd).

The result is a plain binary stream read front to back once; nothing is loaded whole.
"""

from __future__ import annotations

import bz2
import io
import lzma
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

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
    return _Decompressing(raw, codec)  # type: ignore[return-value]


class DamagedInput(OSError):
    """A compressed stream that is corrupt, cut short or followed by other bytes; raised after every byte
    decompressed before the damage was returned. The message says where the damage starts (byte offset in the
    file) and how many bytes were decompressed before it."""


_NEXT_MAGIC = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00", "zstd": b"\x28\xb5\x2f\xfd"}
_UNIT = {"gzip": "member", "bzip2": "stream", "xz": "stream", "zstd": "frame"}


def _new_decompressor(codec: str) -> Any:
    if codec == "gzip":
        return zlib.decompressobj(wbits=31)  # one gzip member, header and CRC-32/ISIZE trailer checked
    if codec == "bzip2":
        return bz2.BZ2Decompressor()
    if codec == "xz":
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    import zstandard  # imported lazily: only zstd input pays for it

    return zstandard.ZstdDecompressor().decompressobj()


class _Decompressing:
    """The decompressed bytes of a gzip, bzip2, xz or zstd file, decompressed here piece by piece so that damage
    loses nothing before it.

    A file is a sequence of members (gzip members, bzip2 and xz streams, zstd frames; ``cat a.gz b.gz`` is one
    file), each decompressed with its own decompressor; gzip and xz may pad between them with zero bytes. The
    library readers (``gzip.GzipFile``...) sit behind an ``io.BufferedReader`` that throws away everything a
    ``read`` had gathered when it meets damage, including trailing bytes after the last member (a newline
    appended by a transfer): for a small capture, every packet. Here the bytes decompressed before the damage
    are returned first, then ``DamagedInput`` says where it starts: corrupt data (located to within ``PROBE``
    bytes for gzip), a file that ends inside a member, or bytes after a member that start no other.

    Memory is bounded against bombs: one call to a decompressor returns at most ``OUT`` bytes (zstd, which
    takes no such limit, is given ``FEED_ZSTD`` compressed bytes at a time: at most ~32 MiB).
    """

    FEED = 1 << 16  # compressed bytes read from the file at a time
    FEED_ZSTD = 1 << 10
    OUT = 1 << 16  # most decompressed bytes one decompressor call returns
    PROBE = 256  # compressed bytes per step when gzip damage is located again from a copy of the decompressor

    def __init__(self, raw: BinaryIO, codec: str) -> None:
        self._raw = raw
        self._codec = codec
        self._dec: Any = _new_decompressor(codec)
        self._feed_size = self.FEED_ZSTD if codec == "zstd" else self.FEED
        self._in = b""  # compressed bytes read but not yet consumed by a decompressor
        self._in_at = 0  # file offset of self._in[0]
        self._member_at = 0  # file offset where the current member starts
        self._member_fed = False
        self._drain = False  # the decompressor holds output it could not return yet
        self._out = bytearray()  # decompressed, not yet returned
        self._returned = 0  # decompressed bytes returned so far
        self._error: DamagedInput | None = None
        self._done = False

    def read(self, n: int = -1) -> bytes:
        want = n if n >= 0 else 1 << 62
        while len(self._out) < want and not self._done and self._error is None:
            self._step()
        if not self._out and self._error is not None:
            raise self._error
        k = min(want, len(self._out))
        data = bytes(self._out[:k])
        del self._out[:k]
        self._returned += k
        return data

    def close(self) -> None:
        self._dec = None

    # -- one step: read, decompress, or start the next member ----------------------------------------------------

    def _step(self) -> None:
        if self._drain:
            self._decompress(b"")
            return
        if not self._in:
            self._in = self._raw.read(self._feed_size)
            if not self._in:
                self._at_end()
                return
        if self._dec is None:
            self._next_member()
            return
        data = self._in[: self._feed_size]
        self._in = self._in[len(data) :]
        self._decompress(data)

    def _decompress(self, data: bytes) -> None:
        dec = self._dec
        saved = dec.copy() if self._codec == "gzip" and data else None
        try:
            out, rest = self._call(dec, data)
        except Exception as e:  # noqa: BLE001 - each codec raises its own type (zlib.error, OSError, LZMAError...)
            self._damaged(e, data, saved)
            return
        self._in_at += len(data) - len(rest)
        self._in = rest + self._in
        if data:
            self._member_fed = True
        self._out += out
        if dec.eof:
            self._dec = None
            self._drain = False

    def _call(self, dec: Any, data: bytes) -> tuple[bytes, bytes]:
        """Decompress ``data``: (output, the input bytes not consumed: zlib's unconsumed tail or what follows the
        end of the member)."""
        if self._codec == "zstd":
            out = dec.decompress(data)
            self._drain = False
            return out, dec.unused_data if dec.eof else b""
        out = dec.decompress(data, self.OUT)
        if self._codec == "gzip":
            self._drain = len(out) == self.OUT and not dec.eof
            return out, dec.unused_data if dec.eof else dec.unconsumed_tail
        self._drain = not dec.eof and not dec.needs_input
        return out, dec.unused_data if dec.eof else b""

    def _damaged(self, e: Exception, data: bytes, saved: Any) -> None:
        start = self._in_at
        where = f"between byte offsets {start} and {start + len(data)}"
        if saved is not None:  # gzip: decompress again from before this piece, PROBE bytes at a time
            pos = 0
            try:
                while pos < len(data):
                    piece = data[pos : pos + self.PROBE]
                    while True:
                        out = saved.decompress(piece, self.OUT)
                        self._out += out
                        piece = saved.unconsumed_tail
                        if not piece and len(out) < self.OUT:
                            break
                    pos += self.PROBE
            except Exception:  # noqa: BLE001 - the same damage, now within PROBE bytes
                where = f"between byte offsets {start + pos} and {start + min(pos + self.PROBE, len(data))}"
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        self._fail(f"the {self._codec} stream is damaged {where} of the file ({reason})")

    def _at_end(self) -> None:
        self._done = True
        if self._dec is not None and self._member_fed:
            self._fail(
                f"the {self._codec} stream is cut short: the file ends at byte offset {self._in_at}, inside the "
                f"{self._codec} {_UNIT[self._codec]} that starts at byte offset {self._member_at}"
            )

    def _next_member(self) -> None:
        """Between members, with ``self._in`` not empty: skip padding, then start the next member or stop."""
        if self._codec in ("gzip", "xz"):
            stripped = self._in.lstrip(b"\0")
            self._in_at += len(self._in) - len(stripped)
            self._in = stripped
            if not stripped:
                return
        magic = _NEXT_MAGIC[self._codec]
        while len(self._in) < len(magic):
            more = self._raw.read(self._feed_size)
            if not more:
                break
            self._in += more
        head = self._in[: len(magic)]
        skippable = self._codec == "zstd" and len(head) == 4 and head[0] >> 4 == 5 and head[1:] == b"\x2a\x4d\x18"
        if head == magic or skippable:
            self._dec = _new_decompressor(self._codec)
            self._member_at = self._in_at
            self._member_fed = False
            return
        self._done = True
        self._fail(
            f"the {self._codec} stream is followed by other data at byte offset {self._in_at} (trailing bytes that "
            f"are not another {self._codec} {_UNIT[self._codec]}): the rest of the file is ignored"
        )

    def _fail(self, message: str) -> None:
        decompressed = self._returned + len(self._out)
        self._error = DamagedInput(f"{message}; {decompressed} bytes were decompressed before it")


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
