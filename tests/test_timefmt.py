"""``timefmt.iso_utc`` (its date from a cache of days) against ``datetime``'s own arithmetic, to the nanosecond and
at the edges of the years 1 to 9999."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from analyzer.timefmt import clock_utc, iso_utc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LAST = 253_402_300_799  # 9999-12-31T23:59:59
FIRST = -62_135_596_800  # 0001-01-01T00:00:00


def reference(ts: int) -> str:
    sec, frac = divmod(ts, 10**9)
    try:
        t = EPOCH + timedelta(seconds=sec)
    except OverflowError:
        return f"out of range ({sec:+d} s from 1970-01-01)"
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{frac:09d}Z"


@given(st.integers(min_value=-(2**70), max_value=2**70) | st.integers(min_value=FIRST * 10**9, max_value=LAST * 10**9))
@example(0)
@example(-1)
@example(LAST * 10**9 + 999_999_999)
@example((LAST + 1) * 10**9)
@example(FIRST * 10**9)
@example(FIRST * 10**9 - 1)
def test_iso_utc_is_datetimes(ts: int) -> None:
    assert iso_utc(ts) == reference(ts)


def test_iso_utc_samples() -> None:
    assert iso_utc(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert iso_utc(-1) == "1969-12-31T23:59:59.999999999Z"
    assert iso_utc(None) is None
    assert iso_utc(2**62 * 10**9) == f"out of range (+{2**62} s from 1970-01-01)"
    assert clock_utc(1_700_000_000_123_456_789) == "22:13:20.123456"
    assert clock_utc(2**62 * 10**9) == "out of range"
