"""End to end over every lab capture: each charger's verdict, fault id, failure frame and CX code against the
lab's ground truth (``captures/<name>.truth.json``), analysed with the scenario's key log when it has one, and
every report valid against the published JSON Schema. Without the key log a wss capture must not guess: a TLS
handshake failure is still found, but whatever happens inside the encrypted session is inconclusive."""

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
def report_of(path: str, keylog: str | None = None) -> dict[str, Any]:
    return report_dict(analyze(path, Settings(keylog_files=(keylog,) if keylog else ())))


def keyed_report(truth: dict[str, Any]) -> dict[str, Any]:
    keylog = truth["capture"].get("keylog")
    return report_of(
        str(PROJECT_CAPTURES / truth["capture"]["file"]), str(PROJECT_CAPTURES / keylog) if keylog else None
    )


def match(truth_charger: dict[str, Any], chargers: list[dict[str, Any]], alone: bool) -> dict[str, Any]:
    """The report's charger for a truth charger: by station identity, or the only one when the truth has one."""
    for c in chargers:
        if c["id"] is not None and c["id"] == truth_charger.get("station_id"):
            return c
    unnamed = [c for c in chargers if c["id"] is None]
    if not alone and len(unnamed) == 1:
        return unnamed[0]  # a charger the capture never names (its lookup failed): the only one without an id
    assert alone
    assert len(chargers) == 1, [c["id"] or c["address"] for c in chargers]
    return chargers[0]


@pytest.mark.parametrize("truth_file", TRUTHS, ids=lambda p: p.name.removesuffix(".truth.json"))
def test_lab_capture_diagnosis(truth_file: Path) -> None:
    truth = json.loads(truth_file.read_text())
    report = keyed_report(truth)
    jsonschema.validate(report, SCHEMA)
    assert not [w for w in report["capture"]["warnings"] if "key log" in w and "no usable" not in w]
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
        assert (rc["severity"], rc["fix_side"], c["site_visit"]) == (t["severity"], t["fix_side"], t["site_visit"]), (
            rc,
            c["connected_at_end"],
        )
        also = {f["fault"] for f in c["findings"]}
        assert set(t.get("also") or ()) - {"clock.reset"} <= also, (t.get("also"), also)


def test_reports_name_station_ids_seen_on_the_wire() -> None:
    """Plain-ws captures show the station identity in the upgrade path; the report carries it."""
    report = report_of(str(PROJECT_CAPTURES / "ocpp_boot_callerror.pcap"))
    assert [c["id"] for c in report["chargers"]] == ["CP-WHISKEY-40"]
    assert report["chargers"][0]["ocpp_version"] == "1.6"
    assert report["chargers"][0]["transport"] == "ws"


KEYED = [t for t in TRUTHS if json.loads(t.read_text())["capture"].get("keylog")]


@pytest.mark.parametrize("truth_file", KEYED, ids=lambda p: p.name.removesuffix(".truth.json"))
def test_wss_without_key_log_does_not_guess(truth_file: Path) -> None:
    """Without keys: a handshake failure is the same finding; a session that got through TLS is inconclusive,
    and the reason names --keylog (never "healthy", never an OCPP fault it cannot see)."""
    truth = json.loads(truth_file.read_text())
    report = report_of(str(PROJECT_CAPTURES / truth["capture"]["file"]))
    jsonschema.validate(report, SCHEMA)
    for t in truth["chargers"]:
        c = report["chargers"][0]
        if t["fault_id"] is not None and t["fault_id"].startswith("tls."):
            rc = c["root_cause"]
            assert (rc["fault"], rc["frame"], rc["cx_code"]) == (t["fault_id"], t["failure_frame"], t["cx"]), rc
            continue
        rc = c["root_cause"]
        if rc is not None and rc["layer"] == "tcp":
            # a failure outside the encryption (a TLS proxy's refused upstream connection): same side to act
            assert rc["fix_side"] == t["fix_side"], rc
            continue
        assert c["verdict"] == "inconclusive", (c["verdict"], c["root_cause"])
        assert "--keylog" in c["verdict_reason"]
        assert "encrypted" in c["verdict_reason"]


@pytest.mark.parametrize(
    ("wss", "plain"),
    [
        ("ocpp_boot_callerror_wss_tls13", "ocpp_boot_callerror"),
        ("ocpp_boot_callerror_wss_tls12", "ocpp_boot_callerror"),
        ("healthy_201_wss_tls13_mtls", "healthy_201_ws"),
        ("healthy_16_wss_tls12", "healthy_16_ws"),
    ],
)
def test_wss_with_key_log_diagnoses_like_its_plain_ws_twin(wss: str, plain: str) -> None:
    """Decrypted, the wss capture gives what its plain-ws twin gives: verdict, fault, CX code, the OCPP message
    behind it, and the same summary (up to the station id and frame numbers)."""
    w = report_of(str(PROJECT_CAPTURES / f"{wss}.pcap"), str(PROJECT_CAPTURES / f"{wss}.keys.txt"))["chargers"]
    p = report_of(str(PROJECT_CAPTURES / f"{plain}.pcap"))["chargers"]
    assert len(w) == len(p) == 1
    assert w[0]["verdict"] == p[0]["verdict"]
    assert w[0]["transport"] == "wss"
    assert w[0]["ocpp_version"] == p[0]["ocpp_version"]
    assert [m["action"] for m in w[0]["ocpp_messages"]][:3] == [m["action"] for m in p[0]["ocpp_messages"]][:3]
    if p[0]["root_cause"] is None:
        assert w[0]["root_cause"] is None
        return
    rw, rp = w[0]["root_cause"], p[0]["root_cause"]
    assert (rw["fault"], rw["cx_code"], rw["inferred"]) == (rp["fault"], rp["cx_code"], rp["inferred"])
    assert rw["summary"].replace(w[0]["id"], "ID") == rp["summary"].replace(p[0]["id"], "ID")
