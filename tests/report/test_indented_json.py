"""``jsontext.dumps(..., indent=2)`` (``ghostcap analyze``'s JSON report, written by ``plain_json`` when it can): the
text ``json``'s own indenting encoder writes, character for character, for plain, hostile and non-finite values,
and its errors for what is not JSON."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from analyzer import jsontext
from analyzer.budgets import WRITE_CHUNK
from analyzer.jsontext import BigNumber, NotPlain, dumps, escape_surrogates, finite, indented_parts
from analyzer.report.writer import render_report, write_json_report
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


PLAIN = [
    {"summary": "lone \ud800 surrogate", "ok": "CP-\u00e9\u2192\u4e2d\U0001f50c"},
    {"empty": {}, "list": [], "true": True, "text": "\u2028<&>\"'\\\n\t\x00", "n": [1, 2.5, None, [[], {}]]},
    [],
    {},
    "top-level text",
    3.5,
]


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 6])
def test_indented_parts_join_to_the_whole_text(depth: int) -> None:
    for value in [*PLAIN, *(getattr(s, name)() for name in SAMPLES)]:
        assert "".join(indented_parts(value, depth)) == dumps(value, indent=2)


def test_indented_parts_refuse_what_is_not_plain() -> None:
    for value in ({"ok": [1], "big": BigNumber("1e999")}, {"a": [{1: "int key"}]}, {"t": (1, 2)}):
        with pytest.raises(NotPlain):
            list(indented_parts(value, 3))


@pytest.mark.parametrize("name", [*SAMPLES, "big_number", "a_key_not_text"])
def test_the_json_report_is_written_as_render_report_makes_it(tmp_path: Path, name: str) -> None:
    report = {
        "big_number": lambda: {**s.healthy(), "big": BigNumber("1e999")},  # not plain: written whole, the same
        "a_key_not_text": lambda: {**s.healthy(), 7: "seven"},
    }.get(name, getattr(s, name, None))()
    path = write_json_report(report, tmp_path, "r")
    assert Path(path).read_bytes() == render_report(report, "json").encode("utf-8", "replace")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary file left


def test_the_json_report_is_never_held_whole(tmp_path: Path) -> None:
    one = s.many_events(60)  # a gateway's report: many chargers, a long timeline
    report = {**one, "chargers": one["chargers"] * 300, "timeline": one["timeline"] * 40}
    text = render_report(report, "json")
    tracemalloc.start()
    try:
        write_json_report(report, tmp_path, "big")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (tmp_path / "big.json").read_text() == text
    assert len(text) > 2 * WRITE_CHUNK
    assert peak < len(text) / 4, (peak, len(text))


def test_a_report_that_fails_half_written_leaves_the_last_one(tmp_path: Path) -> None:
    from analyzer.report import writer

    old = write_json_report(s.healthy(), tmp_path, "r")
    before = Path(old).read_bytes()

    def breaks() -> Any:
        yield "x" * (3 * WRITE_CHUNK)  # a first chunk written to the temporary file
        raise ValueError("a bug met halfway")

    with pytest.raises(ValueError, match="halfway"):
        writer._write_atomic_parts(old, breaks())
    assert Path(old).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
