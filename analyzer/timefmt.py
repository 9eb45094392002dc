"""Integer-nanosecond timestamps as ISO-8601 UTC text.

A capture can carry any 64-bit time (a pcapng ``if_tsoffset`` of ±2**62 s, a corrupt record): what ISO 8601 and
``datetime`` cannot write (outside the years 1 to 9999) is shown as ``out of range (+N s from 1970-01-01)``, in the
JSON report, the timeline and the flows alike, instead of a date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

OUT_OF_RANGE = "out of range"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_utc(ts_ns: int | None) -> str | None:
    """``1700000000123456789`` → ``2023-11-14T22:13:20.123456789Z`` (nanoseconds kept); a time outside the years
    1 to 9999 → ``out of range (+4611686018427387904 s from 1970-01-01)``."""
    if ts_ns is None:
        return None
    sec, frac = divmod(ts_ns, 1_000_000_000)
    try:
        t = _EPOCH + timedelta(seconds=sec)
    except OverflowError:
        return f"{OUT_OF_RANGE} ({sec:+d} s from 1970-01-01)"
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{frac:09d}Z"


def clock_utc(ts_ns: int | None) -> str:
    """The time of day with microseconds (``22:13:20.123456``), or ``out of range`` (see ``iso_utc``)."""
    text = iso_utc(ts_ns)
    if text is None:
        return ""
    return OUT_OF_RANGE if text.startswith(OUT_OF_RANGE) else text[11:26]
