"""Progress on standard error for work longer than a moment: packets read, rate, elapsed time, chargers seen.

Only when standard error is a terminal and the user did not ask for quiet (``ghostcap analyze --quiet``); silent
otherwise (scripts, CI, pipes). The capture reader calls ``tick`` once per batch of records, so the per-packet path
pays nothing; the line is redrawn at most ``EVERY_S`` seconds and only after ``AFTER_S`` seconds of work.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

AFTER_S = 1.5  # quick jobs print nothing
EVERY_S = 0.5


class Progress:
    def __init__(self, label: str, stream: TextIO) -> None:
        self.label = label
        self.stream = stream
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = False
        self.chargers = 0  # clients seen speaking OCPP so far (``analyze``)
        self.count_chargers = True  # not in a partition of ``analyze --workers`` (it sees a share of them)

    def tick(self, packets: int) -> None:
        now = time.monotonic()
        elapsed = now - self.start
        if elapsed < AFTER_S or now - self.last < EVERY_S:
            return
        self.last = now
        self.shown = True
        rate = packets / elapsed if elapsed else 0.0
        n = self.chargers if self.count_chargers else 0
        seen = f", {n:,} charger{'s' if n != 1 else ''} seen" if n else ""
        self.stream.write(f"\r{self.label}: {packets:,} packets, {rate:,.0f}/s, {elapsed:.0f} s{seen}\x1b[K")
        self.stream.flush()

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


_current: Progress | None = None


def start(label: str, quiet: bool = False, stream: TextIO | None = None) -> None:
    """Show progress for the work that follows when ``stream`` (standard error) is a terminal and not ``quiet``."""
    global _current
    out = stream or sys.stderr
    _current = Progress(label, out) if not quiet and out.isatty() else None


def stop() -> None:
    global _current
    if _current is not None:
        _current.done()
    _current = None


def stop_here() -> None:
    """No progress from this process (a partition of ``analyze --workers`` but the first): the line is the
    first's."""
    global _current
    _current = None


def found_hidden() -> None:
    """Progress without the chargers seen (a partition of ``analyze --workers`` sees a share of them)."""
    if _current is not None:
        _current.count_chargers = False


def found(chargers: int) -> None:
    """How many chargers the work has seen so far (shown with the next line)."""
    if _current is not None:
        _current.chargers = chargers


def tick(packets: int) -> None:
    if _current is not None:
        _current.tick(packets)
