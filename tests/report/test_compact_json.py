"""``jsontext.dumps(..., tree=True)`` (``ghostcap triage``'s compact JSON report, without json's search for
cycles): the text ``dumps`` writes without it, character for character, for plain, hostile and non-finite
reports."""

from __future__ import annotations

from typing import Any

import pytest

from analyzer.jsontext import BigNumber, dumps
from analyzer.report.writer import render_report
from tests.report import sample_reports as s

SAMPLES = ["tls_cert_not_yet_valid", "ocpp_callerror_schema_violation", "healthy", "inconclusive", "gateway", "hostile"]


def _as_dumps(report: Any) -> str:
    return dumps(report, separators=(",", ":"))


def compact_json(report: Any) -> str:
    return dumps(report, separators=(",", ":"), tree=True)


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_reports_as_dumps_writes_them(name: str) -> None:
    report = getattr(s, name)()
    assert compact_json(report) == _as_dumps(report)
    assert render_report(report, "json", compact=True) == _as_dumps(report) + "\n"


@pytest.mark.parametrize(
    "value",
    [
        {"summary": "lone \ud800 surrogate", "ok": "CP-\u00e9\u2192\u4e2d\U0001f50c"},  # escaped as dumps does
        {"n": float("nan"), "inf": [float("inf"), float("-inf")]},  # non-finite: left to dumps
        {"big": BigNumber("1e999"), "tiny": 5e-324},
        {"shared": (shared := [1, {"a": None}]), "again": shared},  # one list twice is no cycle
        {"empty": {}, "list": [], "true": True, "text": "\u2028<&>\"'"},
    ],
)
def test_values_as_dumps_writes_them(value: dict[str, Any]) -> None:
    assert compact_json(value) == _as_dumps(value)


def test_a_bigger_report() -> None:
    report = s.many_events(2500)
    assert compact_json(report) == _as_dumps(report)
