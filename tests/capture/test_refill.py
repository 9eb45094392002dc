"""``compiled._refill``: the compiled reader's one read buffer. What is left of it moves to the front, then up to
``want`` more bytes are read after it, as ``container._read_some`` reads them: short reads are read on, an error
after some bytes ends the reading (it comes again on the next read), an error before any is raised."""

from __future__ import annotations

import io

import pytest

from analyzer.capture.compiled import _refill


class Dribble(io.RawIOBase):
    """At most ``step`` bytes per read of ``data``; ``OSError`` once ``fail_at`` bytes were read."""

    def __init__(self, data: bytes, step: int, fail_at: int | None = None) -> None:
        self.data, self.step, self.fail_at, self.at = data, step, fail_at, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        if self.fail_at is not None and self.at >= self.fail_at:
            raise OSError("damaged")
        n = min(len(b), self.step, len(self.data) - self.at)
        b[:n] = self.data[self.at : self.at + n]
        self.at += n
        return n


class ReadOnly:
    """A stream with ``read`` and no ``readinto`` (the decompressor's kind)."""

    def __init__(self, data: bytes) -> None:
        self.f = io.BytesIO(data)

    def read(self, n: int) -> bytes:
        return self.f.read(n)


DATA = bytes(range(256)) * 40


def test_the_rest_moves_to_the_front_and_more_is_read_after_it() -> None:
    buf = bytearray(b"0123456789" + bytes(90))
    got, end = _refill(io.BytesIO(DATA), buf, 6, 10, 50)
    assert got is buf
    assert bytes(got[:end]) == b"6789" + DATA[:50]


@pytest.mark.parametrize("stream", [lambda: Dribble(DATA, 7), lambda: ReadOnly(DATA)], ids=["short reads", "read"])
def test_short_reads_are_read_on_to_want(stream) -> None:
    buf, end = _refill(stream(), bytearray(300), 0, 0, 200)
    assert bytes(buf[:end]) == DATA[:200]


def test_the_end_of_the_input() -> None:
    buf, end = _refill(Dribble(DATA[:30], 7), bytearray(b"ab" + bytes(98)), 0, 2, 50)
    assert bytes(buf[:end]) == b"ab" + DATA[:30]
    buf, end = _refill(io.BytesIO(b""), buf, end, end, 50)
    assert end == 0


def test_a_buffer_too_small_grows() -> None:
    buf = bytearray(b"xyz" + bytes(7))
    got, end = _refill(io.BytesIO(DATA), buf, 1, 3, 100)
    assert len(got) >= 102
    assert bytes(got[:end]) == b"yz" + DATA[:100]


def test_an_error_after_some_bytes_ends_the_reading_then_comes_again() -> None:
    stream = Dribble(DATA, 10, fail_at=25)
    buf, end = _refill(stream, bytearray(100), 0, 0, 60)
    assert bytes(buf[:end]) == DATA[:30]  # 10 + 10 + 10, then the error
    with pytest.raises(OSError, match="damaged"):
        _refill(stream, buf, end, end, 60)
