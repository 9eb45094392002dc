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
    request = (
        b"GET /ocpp/CP-ERR HTTP/1.1\r\nHost: csms.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )
    response = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )
    seq = {True: 1000, False: 5000}
    frames = []

    def send(to_server: bool, flags: int, data: bytes = b"") -> None:
        src, dst, sport, dport = (CHARGER, CSMS, 40100, 9000) if to_server else (CSMS, CHARGER, 9000, 40100)
        seg = pb.tcp(sport, dport, seq[to_server], seq[not to_server] if flags & pb.ACK else 0, flags, data)
        seq[to_server] += len(data) + (1 if flags & (pb.SYN | pb.FIN) else 0)
        frames.append((1_800_000_000 * 10**9 + len(frames) * 10**6, pb.ether(pb.ipv4(src, dst, 6, seg))))

    send(True, pb.SYN)
    send(False, pb.SYN | pb.ACK)
    send(True, pb.ACK)
    send(True, pb.ACK | pb.PSH, request)
    send(False, pb.ACK | pb.PSH, response)
    send(True, pb.ACK | pb.PSH, ws_frame(boot, masked=True))
    send(False, pb.ACK | pb.PSH, ws_frame(error, masked=False))
    return pb.pcap(frames)


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
