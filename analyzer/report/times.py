"""The report's times: nanoseconds as the report's ISO-8601 text (``iso_utc``), that text back to integer
nanoseconds (``ns``), and nanoseconds as the HTML page's clock text (``clock_text``).

A report holds dozens of times; each used to cost a ``datetime`` (with a ``strftime`` or ``calendar.timegm``).
These keep what the times of one month or one day share (a bounded cache) and compute the rest, with the same
results as ``analyzer.timefmt`` and ``datetime`` (the same text or ``None`` for what is out of range).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from analyzer import budgets
from analyzer.timefmt import iso_utc as _iso_utc

_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z?\Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_US = 86_400 * 10**6
CLOCK = "%Y-%m-%d %H:%M:%S.%f UTC"
TIME_OF_DAY = "%H:%M:%S.%f"
# the formats ``clock_text`` writes itself: (with the date, with the microseconds, what follows)
_KNOWN = {
    CLOCK: (True, True, " UTC"),
    "%Y-%m-%d %H:%M:%S.%f": (True, True, ""),
    TIME_OF_DAY: (False, True, ""),
    "%Y-%m-%d %H:%M:%S UTC": (True, False, " UTC"),
}


@lru_cache(maxsize=256)
def _month_start(year: int, month: int) -> int:
    """Seconds since the epoch at the start of ``year``-``month`` (``ValueError`` for no such month)."""
    return calendar.timegm((year, month, 1, 0, 0, 0, 0, 0, 0))


# the texts ``iso_utc`` wrote and the ns each was written from: the HTML page reads the report's times back, and
# ``ns(iso_utc(t)) == t`` for every time written as a date; emptied when it holds ``REPORT_TIME_TEXTS``
_WRITTEN: dict[str, int] = {}


def ns(iso: object) -> int | None:
    """``2026-11-24T04:16:46.655619000Z`` → integer ns since the epoch; ``None`` for anything else.

    A text ``iso_utc`` wrote is known already (``_WRITTEN``). Else ``calendar.timegm``: the start of the month
    plus whole days, hours, minutes and seconds, the month's start kept (``_month_start``), the rest added here."""
    if not isinstance(iso, str):
        return None
    known = _WRITTEN.get(iso)
    if known is not None:
        return known
    m = _ISO.match(iso)
    if not m:
        return None
    y, mo, d, h, mi, s, frac = m.groups()
    try:
        sec = _month_start(int(y), int(mo)) + (int(d) - 1) * 86_400 + int(h) * 3_600 + int(mi) * 60 + int(s)
    except (ValueError, OverflowError):
        return None
    return sec * 1_000_000_000 + int((frac or "0").ljust(9, "0"))


@lru_cache(maxsize=1024)
def _date(day: int) -> str | None:
    """Day ``day`` since 1970-01-01 as ``2026-11-24`` (``strftime``), ``None`` out of ``datetime``'s range."""
    try:
        t = _EPOCH + timedelta(days=day)
    except OverflowError:
        return None
    return t.strftime("%Y-%m-%d")


def clock_text(ns: int | None, fmt: str = CLOCK) -> str | None:
    """ns since the epoch as ``2026-11-24 04:16:46.661378 UTC`` (or ``fmt``), ``None`` when out of range.

    What ``(1970-01-01 + ns // 1000 µs).strftime(fmt)`` writes: the day's date from a cache of days (``_date``,
    which also tells what is out of range), the time of day computed; a format other than ``_KNOWN`` goes
    through ``strftime``."""
    if ns is None:
        return None
    known = _KNOWN.get(fmt)
    if known is None or type(ns) is not int:
        try:
            t = _EPOCH + timedelta(microseconds=ns // 1000)
        except OverflowError:
            return None
        return t.strftime(fmt)
    day, us = divmod(ns // 1000, DAY_US)
    date = _date(day)
    if date is None:
        return None
    with_date, with_us, tail = known
    sec, us = divmod(us, 1_000_000)
    h, sec = divmod(sec, 3_600)
    mi, sec = divmod(sec, 60)
    text = f"{h:02d}:{mi:02d}:{sec:02d}.{us:06d}" if with_us else f"{h:02d}:{mi:02d}:{sec:02d}"
    return f"{date} {text}{tail}" if with_date else text + tail


def iso_utc(ts_ns: int | None) -> str | None:
    """``timefmt.iso_utc``, remembering each date it wrote (``_WRITTEN``) for ``ns`` and ``time_of_day``."""
    text = _iso_utc(ts_ns)
    if type(ts_ns) is int and text[-1] == "Z":  # a date, not ``out of range (...)``
        if len(_WRITTEN) >= budgets.REPORT_TIME_TEXTS:
            _WRITTEN.clear()
        _WRITTEN[text] = ts_ns
    return text


def time_of_day(iso: object, t: int | None) -> str | None:
    """``clock_text(t, "%H:%M:%S.%f")``: taken from the text ``iso`` when ``iso_utc`` wrote it from ``t`` (its
    hours, minutes, seconds and first six digits of the fraction are those), else ``clock_text``."""
    if t is not None and isinstance(iso, str) and _WRITTEN.get(iso) == t:
        return f"{iso[11:19]}.{iso[20:26]}"
    return clock_text(t, TIME_OF_DAY)
