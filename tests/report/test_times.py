"""``analyzer.report.times`` gives what ``calendar.timegm`` and ``datetime.strftime`` give, for every time a report
can hold, in range or not."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from analyzer import budgets
from analyzer.report import times
from analyzer.report.times import CLOCK, clock_text, ns, time_of_day
from analyzer.report.times import iso_utc as times_iso_utc
from analyzer.timefmt import iso_utc

ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z?\Z")
FORMATS = [CLOCK, "%Y-%m-%d %H:%M:%S.%f", "%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S UTC", "%d/%m/%Y %H.%M"]
MAX_NS = 253_402_300_800 * 10**9  # 10000-01-01


def reference_ns(iso: object) -> int | None:
    if not isinstance(iso, str):
        return None
    m = ISO.match(iso)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        sec = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    return sec * 1_000_000_000 + int((m.group(7) or "0").ljust(9, "0"))


def reference_clock(t: int | None, fmt: str) -> str | None:
    if t is None:
        return None
    try:
        when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=t // 1000)
    except OverflowError:
        return None
    return when.strftime(fmt)


anytime = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-62_135_596_800 * 10**9 - 10**12, max_value=MAX_NS + 10**12),  # around years 1 and 9999
    st.integers(min_value=1_700_000_000 * 10**9, max_value=1_800_000_000 * 10**9),
)


@given(anytime, st.sampled_from(FORMATS))
@example(-1, CLOCK)
@example(0, "%H:%M:%S.%f")
@example(MAX_NS - 1, CLOCK)
@example(MAX_NS, CLOCK)
@example(-62_135_596_800 * 10**9, CLOCK)
@example(-62_135_596_800 * 10**9 - 1, CLOCK)
@example(10**40, CLOCK)
def test_clock_text_is_strftime(t: int, fmt: str) -> None:
    assert clock_text(t, fmt) == reference_clock(t, fmt)


def test_clock_text_of_nothing() -> None:
    assert clock_text(None) is None
    assert clock_text(1_700_000_000_123_456_789) == "2023-11-14 22:13:20.123456 UTC"


@given(anytime)
def test_ns_reads_back_what_the_report_writes(t: int) -> None:
    text = iso_utc(t)
    assert ns(text) == reference_ns(text)


iso_like = st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,12})?Z?\Z")


@given(st.one_of(iso_like, st.text(max_size=40), st.none(), st.integers()))
@example("2026-02-31T25:61:61.5Z")
@example("0000-01-01T00:00:00Z")
@example("2026-13-01T00:00:00Z")
@example("٢٠٢٦-١١-٢٤T04:16:46Z")  # other digits than ASCII: the pattern's \d takes them, so does int()
def test_ns_is_timegm(text: object) -> None:
    assert ns(text) == reference_ns(text)


@given(anytime)
@example(MAX_NS - 1)
@example(MAX_NS)
@example(-62_135_596_800 * 10**9)
@example(-62_135_596_800 * 10**9 - 1)
@example(10**40)
@example(-1)
def test_iso_utc_is_timefmts(t: int) -> None:
    assert times_iso_utc(t) == iso_utc(t)
    assert times_iso_utc(t) == iso_utc(t)  # its second from timefmt's cache
    assert times_iso_utc(t + 1) == iso_utc(t + 1)


def test_iso_utc_of_nothing() -> None:
    assert times_iso_utc(None) is None


@given(anytime)
@example(MAX_NS - 1)
@example(-62_135_596_800 * 10**9)
def test_a_written_time_reads_back_as_itself(t: int) -> None:
    """What ``ns`` takes from the texts ``iso_utc`` remembers is what it would parse."""
    text = times_iso_utc(t)
    assert reference_ns(text) == (t if text in times._WRITTEN else None)
    assert ns(text) == reference_ns(text)


def test_the_written_texts_are_bounded() -> None:
    times._WRITTEN.clear()
    for i in range(budgets.REPORT_TIME_TEXTS + 10):
        times_iso_utc(1_700_000_000 * 10**9 + i)
    assert 0 < len(times._WRITTEN) <= budgets.REPORT_TIME_TEXTS
    assert ns(times_iso_utc(5)) == 5


@given(anytime, anytime)
@example(0, 0)
@example(MAX_NS - 1, MAX_NS - 1)
@example(-62_135_596_800 * 10**9, -62_135_596_800 * 10**9)
def test_time_of_day_from_a_written_text_is_strftime(t: int, other: int) -> None:
    assert time_of_day(times_iso_utc(t), t) == reference_clock(t, "%H:%M:%S.%f")
    assert time_of_day(times_iso_utc(other), t) == reference_clock(t, "%H:%M:%S.%f")
    assert time_of_day(None, t) == reference_clock(t, "%H:%M:%S.%f")
    assert time_of_day(times_iso_utc(t), None) is None
