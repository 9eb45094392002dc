"""End to end over every lab capture: each charger's verdict, fault id, failure frame and CX code against the
lab's ground truth (``captures/<name>.truth.json``), and every report valid against the published JSON Schema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from analyzer.config import Settings
from analyzer.engine import analyze
from analyzer.report.build import report_dict
from tests.conftest import PROJECT_CAPTURES

SCHEMA = json.loads((Path(__file__).parents[1] / "analyzer/report/schema/report.schema.json").read_text())
TRUTHS = sorted(PROJECT_CAPTURES.glob("*.truth.json"))


@cache
def report_of(path: str) -> dict[str, Any]:
    return report_dict(analyze(path, Settings()))


def match(truth_charger: dict[str, Any], chargers: list[dict[str, Any]], alone: bool) -> dict[str, Any]:
    """The report's charger for a truth charger: by station identity, or the only one when the truth has one."""
    for c in chargers:
        if c["id"] is not None and c["id"] == truth_charger.get("station_id"):
            return c
    assert alone
    assert len(chargers) == 1, [c["id"] or c["address"] for c in chargers]
    return chargers[0]


@pytest.mark.parametrize("truth_file", TRUTHS, ids=lambda p: p.name.removesuffix(".truth.json"))
def test_lab_capture_diagnosis(truth_file: Path) -> None:
    truth = json.loads(truth_file.read_text())
    report = report_of(str(PROJECT_CAPTURES / truth["capture"]["file"]))
    jsonschema.validate(report, SCHEMA)
    assert len(report["chargers"]) == len(truth["chargers"]), [c["id"] or c["address"] for c in report["chargers"]]
    for t in truth["chargers"]:
        c = match(t, report["chargers"], len(truth["chargers"]) == 1)
        if t["fault_id"] is None:
            assert c["verdict"] == "healthy", (c["verdict"], c["root_cause"], c.get("verdict_reason"))
            assert c["findings"] == []
            continue
        rc = c["root_cause"]
        assert c["verdict"] == "fault", (c["verdict"], c.get("verdict_reason"), c.get("undecided"))
        assert rc is not None
        assert (rc["fault"], rc["frame"], rc["cx_code"]) == (t["fault_id"], t["failure_frame"], t["cx"]), rc
        also = {f["fault"] for f in c["findings"]}
        assert set(t.get("also") or ()) - {"clock.reset"} <= also, (t.get("also"), also)


def test_reports_name_station_ids_seen_on_the_wire() -> None:
    """Plain-ws captures show the station identity in the upgrade path; the report carries it."""
    report = report_of(str(PROJECT_CAPTURES / "ocpp_boot_callerror.pcap"))
    assert [c["id"] for c in report["chargers"]] == ["CP-WHISKEY-40"]
    assert report["chargers"][0]["ocpp_version"] == "1.6"
    assert report["chargers"][0]["transport"] == "ws"
