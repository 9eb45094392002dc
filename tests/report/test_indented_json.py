"""``jsontext.dumps(..., indent=2)`` (``ghostcap analyze``'s JSON report, written by ``plain_json`` when it can): the
text ``json``'s own indenting encoder writes, character for character, for plain, hostile and non-finite values,
and its errors for what is not JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from analyzer import jsontext
from analyzer.jsontext import BigNumber, dumps, escape_surrogates, finite
from analyzer.report.writer import render_report
from tests.report import sample_reports as s

SAMPLES = ["tls_cert_not_yet_valid", "ocpp_callerror_schema_violation", "healthy", "inconclusive", "gateway", "hostile"]


def by_json(value: Any) -> str:
    """What ``dumps`` wrote before it used ``plain_json``: json's encoder, non-finite floats as texts."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, indent=2)
    except ValueError:
        text = json.dumps(finite(value), ensure_ascii=False, allow_nan=False, indent=2)
    return escape_surrogates(text)


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_reports_as_json_writes_them(name: str) -> None:
    report = getattr(s, name)()
    assert dumps(report, indent=2) == by_json(report)
    assert render_report(report, "json") == by_json(report) + "\n"


def test_a_bigger_report() -> None:
    report = s.many_events(2500)
    assert dumps(report, indent=2) == by_json(report)


@pytest.mark.parametrize(
    "value",
    [
        {"summary": "lone \ud800 surrogate", "ok": "CP-\u00e9\u2192\u4e2d\U0001f50c"},
        {"n": float("nan"), "inf": [float("inf"), float("-inf")]},  # not plain: json's encoder
        {"big": BigNumber("1e999"), "tiny": 5e-324, "neg": -0.0, "int": -(2**70)},
        {"tuple": (1, 2), "nested": [(3, {"a": (None,)})]},  # tuples: json's encoder writes them as lists
        {1: "int key", "2": True, None: False},  # keys not texts: json's encoder turns them into texts
        {"empty": {}, "list": [], "true": True, "text": "\u2028<&>\"'\\\n\t\x00"},
        [],
        "top-level text",
        3.5,
        None,
    ],
)
def test_values_as_json_writes_them(value: Any) -> None:
    assert dumps(value, indent=2) == by_json(value)


def test_plain_values_take_the_plain_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A report of dicts, lists, texts and numbers never reaches json's encoder."""

    def refuse(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("json.dumps called")

    report = s.gateway()
    expected = by_json(report)
    monkeypatch.setattr(jsontext.json, "dumps", refuse)
    assert dumps(report, indent=2) == expected


def _raised(fn: Any, value: Any) -> type[BaseException] | None:
    try:
        fn(value)
    except (RecursionError, ValueError) as e:
        return type(e)
    return None


def test_too_deep_and_circular_fail_as_json_fails() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    loop: list[Any] = []
    loop.append(loop)
    for value in (deep, loop):
        before = _raised(by_json, value)
        assert before is not None
        assert _raised(lambda v: dumps(v, indent=2), value) is before
