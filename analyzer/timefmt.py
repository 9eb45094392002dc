"""Integer-nanosecond timestamps as ISO-8601 UTC text."""

from __future__ import annotations

import time


def iso_utc(ts_ns: int | None) -> str | None:
    """``1700000000123456789`` → ``2023-11-14T22:13:20.123456789Z`` (nanoseconds kept)."""
    if ts_ns is None:
        return None
    sec, frac = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"
