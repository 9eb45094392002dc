"""The JSON report contract: the published schema accepts real reports and rejects broken ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from analyzer.config import Settings
from analyzer.engine import analyze
from analyzer.report.build import report_dict
from tests.conftest import PROJECT_CAPTURES

SCHEMA = json.loads((Path(__file__).parents[1] / "analyzer/report/schema/report.schema.json").read_text())


@pytest.fixture(scope="module")
def report() -> dict:
    return report_dict(analyze(PROJECT_CAPTURES / "http_unauthorized.pcap", Settings()))


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_real_report_validates(report: dict) -> None:
    jsonschema.validate(report, SCHEMA)
    assert report["capture"]["file"] == "http_unauthorized.pcap"
    assert len(report["capture"]["sha256"]) == 64


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("schema",), "ghostcap.report/2"),
        (("chargers", 0, "verdict"), "broken"),
        (("chargers", 0, "root_cause", "cx_code"), "X13"),
        (("chargers", 0, "root_cause", "layer"), "physical"),
        (("capture", "file"), "/tmp/x.pcap"),
    ],
)
def test_schema_rejects_broken_reports(report: dict, path: tuple, value: object) -> None:
    broken = copy.deepcopy(report)
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_fault_verdict_needs_a_root_cause(report: dict) -> None:
    broken = copy.deepcopy(report)
    broken["chargers"][0]["root_cause"] = None
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_no_password_in_report(report: dict) -> None:
    """The lab charger sends basic auth with a wrong password: the user may appear, the password never."""
    text = json.dumps(report)
    assert "not-the-password" not in text
    assert "CP-QUEBEC-30" in text
