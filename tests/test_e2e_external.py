"""End to end on public captures: the OCPP ones give sensible verdicts, and no capture of any kind makes the
analysis fail or invents chargers out of traffic that is not OCPP."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from analyzer.config import Settings
from analyzer.engine import analyze
from analyzer.report.build import report_dict
from tests.conftest import EXTERNAL, capture_files, capture_id

OCPP = EXTERNAL / "ocpp"


@cache
def report_of(path: Path) -> dict[str, Any]:
    return report_dict(analyze(path, Settings()))


def chargers(name: str) -> dict[str, dict[str, Any]]:
    return {c["id"] or c["address"]: c for c in report_of(OCPP / name)["chargers"]}


def test_checkocpp_sessions_are_healthy_and_the_admin_websocket_is_no_charger() -> None:
    """1.6 and 2.0 sessions with Boot Accepted; a port-9008 WebSocket without subprotocol carrying admin text."""
    got = chargers("checkocpp__capt.pcapng")
    assert {k: (c["verdict"], c["ocpp_version"]) for k, c in got.items()} == {
        "E2507-8420-1275": ("healthy", "1.6"),
        "E2507-8420-1274": ("healthy", "2.0.1"),
    }


@pytest.mark.parametrize(
    ("name", "frame", "path", "then"),
    [
        ("checkocpp__capt_error.pcapng", 8, "chargePointModel", "ocpp.boot_rejected"),
        ("checkocpp__capt_error2.0.pcapng", 49, "chargingStation.model", "ocpp.boot_rejected"),
    ],
)
def test_overlong_model_explains_the_rejected_boot(name: str, frame: int, path: str, then: str) -> None:
    """The CSMS's Boot Rejected blocked the session: it is the root cause, with the over-long model as its evidence,
    and the charger (whose request broke the schema) is who acts."""
    (c,) = chargers(name).values()
    rc = c["root_cause"]
    assert (c["verdict"], rc["fault"], rc["frame"], rc["cx_code"]) == ("fault", then, frame + 1, "CX013")
    assert path in rc["summary"]
    assert "longer than 20" in rc["summary"]
    assert (rc["fix_side"], rc["fix_reason"]) == ("charger", "the BootNotification it rejected breaks the OCPP schema")
    assert any(e["frame"] == frame and path in e["what"] for e in rc["evidence"])
    boot = [m for m in c["ocpp_messages"] if m["action"] == "BootNotification" and m["type"] == "CALL"]
    assert boot[0]["violations"][0]["path"] == path


def test_rejected_install_certificate_names_the_bad_field() -> None:
    (c,) = chargers("checkocpp__capt_error2.0.1.pcapng").values()
    rc = c["root_cause"]
    assert (rc["fault"], rc["frame"], rc["fix_side"]) == ("ocpp.schema_violation", 37, "csms")
    assert "Rejected" in rc["summary"]
    assert "InstallCertificate" in rc["summary"]
    assert "certificateType" in rc["summary"]
    assert c["ocpp_version"] == "2.0.1"


def test_real_openevse_charger_among_laptop_traffic_is_the_only_charger() -> None:
    """The OpenEVSE talks OCPP 1.6 beside the laptop's SSDP, DNS and HTTP connectivity checks: one charger, whose
    only flaws are the CSMS's over-long GetConfiguration key and the answer echoing it: warnings, since the session
    works (healthy)."""
    got = chargers("checkocpp__extralargeOPENEVSE.pcapng")
    assert list(got) == ["782184F83BBCXXX"]
    c = got["782184F83BBCXXX"]
    assert c["transport"] == "ws"
    assert (c["verdict"], c["root_cause"]) == ("healthy", None)
    assert [(w["fault"], w["severity"]) for w in c["warnings"]] == [("ocpp.schema_violation", "warning")] * 2
    assert "GetConfiguration" in c["warnings"][0]["summary"]
    assert c["clock"]["reset_to"] is None
    boot = next(m for m in c["ocpp_messages"] if m["action"] == "BootNotification" and m["type"] == "CALLRESULT")
    assert boot["payload"]["status"] == "Accepted"


NON_OCPP = [p for p in capture_files() if p.parent.name not in ("ocpp",) and p.is_relative_to(EXTERNAL)]


@pytest.mark.parametrize("path", NON_OCPP, ids=capture_id)
def test_no_charger_invented_from_non_ocpp_traffic_with_ocpp_elsewhere(path: Path) -> None:
    """Captures without OCPP: the analysis completes; chargers come only from the 'nothing better' rule, so every
    one of them is a client of the capture and none has a station id."""
    r = report_of(path)
    assert r["capture"]["packets"] > 0
    for c in r["chargers"]:
        assert c["id"] is None or c["ocpp_version"] is not None or c["transport"] == "ws"
        assert c["verdict"] in ("fault", "healthy", "inconclusive")
