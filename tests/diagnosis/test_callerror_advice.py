"""What to do after a CALLERROR follows its error code: the answering side's own failure (InternalError,
GenericError) or a feature it lacks (NotImplemented, NotSupported) never gets "fix the field" advice, even when
the request also breaks the schema; a format error points at the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzer.config import Settings
from analyzer.engine import analyze
from analyzer.report.build import report_dict
from tests import pcapbuild as pb
from tests.report.test_hostile_capture import ws_frame

CHARGER, CSMS = "10.0.4.5", "10.0.4.9"
LAB = Path(__file__).parents[2] / "captures"


def callerror_capture(code: str, with_model: bool) -> bytes:
    """A 1.6 charger's BootNotification (without chargePointModel unless ``with_model``) answered CALLERROR ``code``."""
    payload = {"chargePointVendor": "V", **({"chargePointModel": "M"} if with_model else {})}
    boot = json.dumps([2, "1", "BootNotification", payload]).encode()
    error = json.dumps([4, "1", code, "", {}]).encode()
    talk = pb.TcpTalk(CHARGER, CSMS, 40100, 9000, step_ns=10**6)
    talk.open(pb.ws_upgrade("CP-ERR"))
    talk.send(True, pb.ACK | pb.PSH, ws_frame(boot, masked=True))
    talk.send(False, pb.ACK | pb.PSH, ws_frame(error, masked=False))
    return pb.pcap(talk.frames)


def root_of(tmp_path: Path, code: str, with_model: bool) -> dict:
    path = tmp_path / f"{code}.pcap"
    path.write_bytes(callerror_capture(code, with_model))
    (c,) = report_dict(analyze(str(path), Settings()))["chargers"]
    assert c["root_cause"]["fault"] == "ocpp.callerror"
    return c["root_cause"]


@pytest.mark.parametrize("code", ["InternalError", "GenericError", "NotImplemented", "NotSupported"])
@pytest.mark.parametrize("with_model", [True, False])
def test_the_answering_sides_own_failure_gets_no_fix_the_field_advice(
    tmp_path: Path, code: str, with_model: bool
) -> None:
    rc = root_of(tmp_path, code, with_model)
    assert rc["fix_side"] == "csms"
    assert not [step for step in rc["remediation"] if step.startswith("Fix ")], rc["remediation"]
    first = rc["remediation"][0]
    assert first.startswith("The CSMS failed" if code in ("InternalError", "GenericError") else "The CSMS does not")
    if not with_model:  # the violation is still said, as a fact
        assert any("chargePointModel" in step for step in rc["remediation"])
        assert "also breaks the schema at chargePointModel" in rc["summary"]


def test_a_format_error_on_a_request_that_breaks_the_schema_points_at_the_field(tmp_path: Path) -> None:
    rc = root_of(tmp_path, "FormationViolation", with_model=False)
    assert rc["fix_side"] == "charger"
    assert rc["remediation"][0] == "Fix chargePointModel in the charger's BootNotification (is required)."


def test_the_lab_internal_error_is_the_csms_log_first() -> None:
    (c,) = report_dict(analyze(str(LAB / "ocpp_boot_callerror.pcap"), Settings()))["chargers"]
    rc = c["root_cause"]
    assert rc["remediation"][0] == (
        "The CSMS failed while handling BootNotification: read its log at that time and fix the cause."
    )
    assert rc["fix_side"] == "csms"
