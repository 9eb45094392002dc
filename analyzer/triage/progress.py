"""Progress of a triage batch on standard error: a redrawn bar on a terminal (done/total, rate, ETA, failures so
far), one plain line per capture otherwise (logs, CI)."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

REDRAW_S = 0.1


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress:
    """``step(line, failed)`` after each capture; ``close()`` at the end. ``tty`` defaults to ``stream.isatty()``;
    off a terminal each line goes to ``echo`` if given, else to ``stream``."""

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        tty: bool | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.echo = echo
        self.tty = self.stream.isatty() if tty is None else tty
        self.total = total
        self.done = 0
        self.failed = 0
        self.start = time.monotonic()
        self._drawn = 0.0
        self._width = 0

    def rate(self) -> float:
        elapsed = time.monotonic() - self.start
        return self.done / elapsed if elapsed > 0 else 0.0

    def status(self) -> str:
        rate = self.rate()
        eta = _clock((self.total - self.done) / rate) if rate > 0 else "?"
        return f"{self.done}/{self.total} {rate:.1f}/s ETA {eta} failures {self.failed}"

    def step(self, line: str, failed: bool = False) -> None:
        self.done += 1
        self.failed += failed
        if not self.tty:
            text = f"[{self.done}/{self.total}] {line}"
            if self.echo is not None:
                self.echo(text)
            else:
                self.stream.write(text + "\n")
                self.stream.flush()
            return
        now = time.monotonic()
        if now - self._drawn >= REDRAW_S or self.done == self.total:
            self._drawn = now
            self._draw()

    def note(self, line: str) -> None:
        """A line that stays (a warning), above the bar on a terminal."""
        if self.tty:
            self.stream.write("\r" + " " * self._width + "\r")
        self.stream.write(line + "\n")
        if self.tty:
            self._draw()
        self.stream.flush()

    def _draw(self) -> None:
        cols = shutil.get_terminal_size((100, 20)).columns
        text = self.status()
        room = max(10, min(40, cols - len(text) - 4))
        filled = room * self.done // max(self.total, 1)
        bar = f"[{'#' * filled}{'.' * (room - filled)}] {text}"[: cols - 1]
        pad = " " * max(0, self._width - len(bar))
        self._width = len(bar)
        self.stream.write("\r" + bar + pad)
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
