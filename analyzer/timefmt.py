"""Integer-nanosecond timestamps as ISO-8601 UTC text.

A capture can carry any 64-bit time (a pcapng ``if_tsoffset`` of ±2**62 s, a corrupt record): what ISO 8601 and
``datetime`` cannot write (outside the years 1 to 9999) is shown as ``out of range (+N s from 1970-01-01)``, in the
JSON report, the timeline and the flows alike, instead of a date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

OUT_OF_RANGE = "out of range"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


SECONDS_KEPT = 4096  # the seconds ``_second`` remembers (a capture's events fall on few): emptied when full
_SECONDS: dict[int, str] = {}


def iso_utc(ts_ns: int | None) -> str | None:
    """``1700000000123456789`` → ``2023-11-14T22:13:20.123456789Z`` (nanoseconds kept); a time outside the years
    1 to 9999 → ``out of range (+4611686018427387904 s from 1970-01-01)``. The text up to the second comes from a
    cache of seconds (``_second``: a capture's events fall on few), the nanoseconds are added."""
    if ts_ns is None:
        return None
    sec, frac = divmod(ts_ns, 1_000_000_000)
    head = _SECONDS.get(sec)
    if head is None:
        head = _second(sec)
        if head is None:
            return f"{OUT_OF_RANGE} ({sec:+d} s from 1970-01-01)"
    return f"{head}{frac:09d}Z"


def _second(sec: int) -> str | None:
    """Second ``sec`` since the epoch as ``2023-11-14T22:13:20.`` (remembered in ``_SECONDS``), ``None`` outside the
    years 1 to 9999. The date comes from a cache of days, the time of day is computed."""
    day, rest = divmod(sec, 86_400)
    date = _date(day)
    if date is None:
        return None
    h, rest = divmod(rest, 3_600)
    mi, s = divmod(rest, 60)
    head = f"{date}T{h:02d}:{mi:02d}:{s:02d}."
    if len(_SECONDS) >= SECONDS_KEPT:
        _SECONDS.clear()
    _SECONDS[sec] = head
    return head


@lru_cache(maxsize=1024)
def _date(day: int) -> str | None:
    """Day ``day`` since 1970-01-01 as ``2026-11-24``; ``None`` outside the years 1 to 9999 (every second of a day
    is in range when its start is)."""
    try:
        t = _EPOCH + timedelta(days=day)
    except OverflowError:
        return None
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}"


def clock_utc(ts_ns: int | None) -> str:
    """The time of day with microseconds (``22:13:20.123456``), or ``out of range`` (see ``iso_utc``)."""
    text = iso_utc(ts_ns)
    if text is None:
        return ""
    return OUT_OF_RANGE if text.startswith(OUT_OF_RANGE) else text[11:26]
