"""OCPP-J decoder: message types, pairing, schema violations, reported codes, clocks, redaction, hostile input."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.decoders import ocpp as ocpp_mod
from analyzer.decoders.ocpp import (
    ERROR_CODES,
    MAX_PENDING,
    OcppDecoder,
    ocpp_message_factory,
    parse_timestamp_ns,
    version_for,
)
from analyzer.events import ocpp as ocpp_events
from analyzer.events.base import DecodeAnomaly, Event
from analyzer.events.clock import ClockSample
from analyzer.events.ocpp import (
    REDACTED,
    OcppCall,
    OcppCallError,
    OcppCallResult,
    OcppCallResultError,
    OcppReportedCode,
    OcppSend,
    OcppUnanswered,
    OcppUnparsed,
    SchemaViolation,
    json_loads,
    redact_tokens,
)
from analyzer.jsontext import parse_float

TO_CSMS, TO_CHARGER = 0, 1
SECOND = 1_000_000_000
TOKEN = "04A2B3C4D5E6"


class Conv:
    """Feeds one decoder, numbering frames 1, 2, ... and stepping the clock 10 ms per message."""

    def __init__(self, subprotocol: str | None = "ocpp1.6") -> None:
        self.dec = OcppDecoder(7, subprotocol)
        self.frame = 0
        self.ts = 1_700_000_000 * SECOND

    def send(self, direction: int, msg: Any, *, text: bool = True) -> list[Event]:
        self.frame += 1
        self.ts += 10_000_000
        data = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
        return self.dec.message(direction=direction, data=data, text=text, frame=self.frame, ts_ns=self.ts)

    def close(self, after_ns: int = SECOND) -> list[Event]:
        self.frame += 1
        return self.dec.close(self.frame, self.ts + after_ns)


def one(events: list[Event], cls: type) -> Any:
    found = [e for e in events if isinstance(e, cls)]
    assert len(found) == 1, events
    return found[0]


BOOT16 = {"chargePointModel": "SimCharger-16", "chargePointVendor": "GhostcapLab"}
BOOT201 = {"chargingStation": {"model": "SimCharger-201", "vendorName": "GhostcapLab"}, "reason": "PowerUp"}
BOOT_OK = {"currentTime": "2026-11-24T04:16:35Z", "interval": 300, "status": "Accepted"}


# -- message types ---------------------------------------------------------------------------------------------------


def test_call() -> None:
    c = Conv()
    call = one(c.send(TO_CSMS, [2, "1001", "BootNotification", BOOT16]), OcppCall)
    assert (call.action, call.unique_id, call.payload, call.version) == ("BootNotification", "1001", BOOT16, "1.6")
    assert (call.frame, call.flow_id, call.direction, call.validated, call.violations) == (1, 7, 0, True, ())
    assert call.size == len(json.dumps([2, "1001", "BootNotification", BOOT16]).encode())
    assert (call.kind, call.layer, call.duplicate_of_frame) == ("ocpp.call", "ocpp", None)
    assert call.summary() == "charger→CSMS CALL BootNotification [1001]"


def test_call_result_paired_with_latency_and_status() -> None:
    c = Conv()
    c.send(TO_CSMS, [2, "1001", "BootNotification", BOOT16])
    res = one(c.send(TO_CHARGER, [3, "1001", BOOT_OK]), OcppCallResult)
    assert (res.action, res.pairing, res.call_frame, res.latency_ns, res.status) == (
        "BootNotification",
        "paired",
        1,
        10_000_000,
        "Accepted",
    )
    assert (res.version, res.validated, res.violations, res.direction) == ("1.6", True, (), 1)
    assert res.summary() == "CSMS→charger CALLRESULT BootNotification [1001] Accepted after 10.0 ms"
    assert c.close() == []


def test_csms_initiated_call_is_paired_with_the_chargers_result() -> None:
    c = Conv()
    c.send(TO_CSMS, [2, "1", "Heartbeat", {}])
    c.send(TO_CHARGER, [2, "1", "GetConfiguration", {"key": ["HeartbeatInterval"]}])  # crossing CALLs, same id
    from_csms = one(c.send(TO_CSMS, [3, "1", {"configurationKey": []}]), OcppCallResult)
    assert (from_csms.action, from_csms.call_frame, from_csms.direction) == ("GetConfiguration", 2, 0)
    hb = one(c.send(TO_CHARGER, [3, "1", {"currentTime": "2026-11-24T04:16:35Z"}]), OcppCallResult)
    assert (hb.action, hb.call_frame) == ("Heartbeat", 1)
    assert c.close() == []


def test_call_error_paired() -> None:
    c = Conv()
    c.send(TO_CSMS, [2, "1001", "BootNotification", BOOT16])
    err = one(c.send(TO_CHARGER, [4, "1001", "InternalError", "registry unavailable", {"x": 1}]), OcppCallError)
    assert (err.action, err.error_code, err.error_code_canonical) == (
        "BootNotification",
        "InternalError",
        "InternalError",
    )
    assert (err.error_description, err.error_details, err.call_frame, err.latency_ns) == (
        "registry unavailable",
        {"x": 1},
        1,
        10_000_000,
    )
    assert (err.kind, err.pairing, err.violations) == ("ocpp.call_error", "paired", ())
    assert err.summary() == "CSMS→charger CALLERROR InternalError to BootNotification [1001] after 10.0 ms"
    assert c.close() == []


def test_call_result_error_and_send_in_21() -> None:
    c = Conv("ocpp2.1")
    c.send(TO_CHARGER, [2, "a", "GetVariables", {"getVariableData": []}])
    c.send(TO_CSMS, [3, "a", {"getVariableResult": []}])
    cre = one(c.send(TO_CHARGER, [5, "a", "FormationViolation", "bad result", {}]), OcppCallResultError)
    assert (cre.kind, cre.action, cre.result_frame, cre.error_code_canonical) == (
        "ocpp.call_result_error",
        "GetVariables",
        2,
        "FormatViolation",
    )
    stream = {"id": 1, "pending": 0, "basetime": "2026-11-24T04:16:35Z", "data": [{"t": 0.5, "v": "1"}]}
    send = one(c.send(TO_CSMS, [6, "s1", "NotifyPeriodicEventStream", stream]), OcppSend)
    assert (send.kind, send.action, send.version, send.validated, send.violations) == (
        "ocpp.send",
        "NotifyPeriodicEventStream",
        "2.1",
        True,
        (),
    )
    bad = one(c.send(TO_CSMS, [6, "s2", "NotifyPeriodicEventStream", {"id": 1}]), OcppSend)
    assert [v.path for v in bad.violations] == ["pending", "basetime", "data"]
    assert c.close() == []  # SEND is never answered, never pending


@pytest.mark.parametrize("subprotocol", ["ocpp1.6", "ocpp2.0.1"])
@pytest.mark.parametrize("msg", [[5, "a", "GenericError", "", {}], [6, "a", "NotifyPeriodicEventStream", {}]])
def test_types_5_and_6_exist_only_in_21(subprotocol: str, msg: list[Any]) -> None:
    u = one(Conv(subprotocol).send(TO_CSMS, msg), OcppUnparsed)
    assert u.reason.startswith(f"message type {msg[0]} (")
    assert u.reason.endswith(f"is not defined in OCPP {subprotocol[4:]}")
    assert (u.message_type, u.unique_id) == (msg[0], "a")


# -- pairing edge cases ----------------------------------------------------------------------------------------------


def test_unanswered_at_close_both_directions() -> None:
    c = Conv()
    c.send(TO_CSMS, [2, "1", "BootNotification", BOOT16])
    c.send(TO_CHARGER, [3, "1", BOOT_OK])
    c.send(TO_CSMS, [2, "2", "Authorize", {"idTag": TOKEN}])
    c.send(TO_CHARGER, [2, "x", "Reset", {"type": "Soft"}])
    ends = c.close(after_ns=2 * SECOND)
    assert [(e.action, e.unique_id, e.frame, e.direction) for e in ends] == [
        ("Authorize", "2", 3, 0),
        ("Reset", "x", 4, 1),
    ]
    auth = ends[0]
    assert isinstance(auth, OcppUnanswered)
    assert (auth.kind, auth.close_frame, auth.version, auth.flow_id) == ("ocpp.unanswered", 5, "1.6", 7)
    assert auth.waited_ns == 2 * SECOND + 10_000_000
    assert TOKEN not in auth.summary()
    assert c.close() == []  # nothing left after the first close


def test_duplicate_ids_latest_call_is_answered() -> None:
    c = Conv()
    c.send(TO_CSMS, [2, "9", "Heartbeat", {}])
    dup = one(c.send(TO_CSMS, [2, "9", "Heartbeat", {}]), OcppCall)
    assert dup.duplicate_of_frame == 1
    assert "id reused from frame 1" in dup.summary()
    res = one(c.send(TO_CHARGER, [3, "9", {"currentTime": "2026-11-24T04:16:35Z"}]), OcppCallResult)
    assert (res.call_frame, res.pairing) == (2, "paired")
    assert [(e.frame, e.unique_id) for e in c.close()] == [(1, "9")]


def test_id_reused_after_answer_is_a_duplicate_too() -> None:
    c = Conv()
    c.send(TO_CSMS, [2, "9", "Heartbeat", {}])
    c.send(TO_CHARGER, [3, "9", {"currentTime": "2026-11-24T04:16:35Z"}])
    assert one(c.send(TO_CSMS, [2, "9", "Heartbeat", {}]), OcppCall).duplicate_of_frame == 1
    assert one(c.send(TO_CHARGER, [2, "9", "Reset", {"type": "Hard"}]), OcppCall).duplicate_of_frame is None


def test_unknown_and_already_answered_response_ids() -> None:
    c = Conv()
    res = one(c.send(TO_CHARGER, [3, "nope", {}]), OcppCallResult)
    assert (res.action, res.pairing, res.call_frame, res.latency_ns, res.validated) == (
        None,
        "unknown_id",
        None,
        None,
        False,
    )
    assert res.summary() == "CSMS→charger CALLRESULT (unknown id) [nope]"
    c.send(TO_CSMS, [2, "1", "Heartbeat", {}])
    c.send(TO_CHARGER, [3, "1", {"currentTime": "2026-11-24T04:16:35Z"}])
    again = one(c.send(TO_CHARGER, [4, "1", "GenericError", "", {}]), OcppCallError)
    assert (again.pairing, again.action) == ("already_answered", None)


def test_response_in_the_calls_own_direction_does_not_answer_it() -> None:
    c = Conv()
    c.send(TO_CSMS, [2, "1", "Heartbeat", {}])
    assert one(c.send(TO_CSMS, [3, "1", {}]), OcppCallResult).pairing == "unknown_id"
    assert [e.unique_id for e in c.close()] == ["1"]


def test_pending_table_is_bounded() -> None:
    c = Conv()
    anomalies = []
    for i in range(MAX_PENDING + 10):
        anomalies += [e for e in c.send(TO_CSMS, [2, str(i), "Heartbeat", {}]) if isinstance(e, DecodeAnomaly)]
    assert [a.name for a in anomalies] == ["ocpp.pending_limit"]
    left = c.close()
    assert len(left) == MAX_PENDING
    assert left[0].unique_id == "10"  # the 10 oldest were forgotten


# -- CALLERROR codes -------------------------------------------------------------------------------------------------

SPELLINGS = {
    "FormatViolation": "FormatViolation",
    "FormationViolation": "FormatViolation",
    "OccurrenceConstraintViolation": "OccurrenceConstraintViolation",
    "OccurenceConstraintViolation": "OccurrenceConstraintViolation",
    "ProtocolError": "ProtocolError",
    "PropertyConstraintViolation": "PropertyConstraintViolation",
    "TypeConstraintViolation": "TypeConstraintViolation",
    "SecurityError": "SecurityError",
    "NotImplemented": "NotImplemented",
    "NotSupported": "NotSupported",
    "InternalError": "InternalError",
    "GenericError": "GenericError",
    "RpcFrameworkError": "RpcFrameworkError",
    "MessageTypeNotSupported": "MessageTypeNotSupported",
    "SomethingVendorSpecific": "SomethingVendorSpecific",  # unknown codes are kept as sent
}


@pytest.mark.parametrize("subprotocol", ["ocpp1.6", "ocpp2.0.1", "ocpp2.1"])
@pytest.mark.parametrize(("code", "canonical"), SPELLINGS.items())
def test_every_callerror_spelling_in_every_version(subprotocol: str, code: str, canonical: str) -> None:
    c = Conv(subprotocol)
    c.send(TO_CSMS, [2, "1", "Heartbeat", {}])
    err = one(c.send(TO_CHARGER, [4, "1", code, "", {}]), OcppCallError)
    assert (err.error_code, err.error_code_canonical, err.action) == (code, canonical, "Heartbeat")
    assert (code in ERROR_CODES) == (code != "SomethingVendorSpecific")


def test_callerror_frame_elements_of_the_wrong_type_are_violations() -> None:
    c = Conv("ocpp2.0.1")
    c.send(TO_CSMS, [2, "1", "Heartbeat", {}])
    err = one(c.send(TO_CHARGER, [4, "1", "GenericError", 42, None]), OcppCallError)
    assert err.error_description == ""
    assert [(v.path, v.message) for v in err.violations] == [
        ("@errorDescription", "is not of type 'string'"),
        ("@errorDetails", "is not of type 'object'"),
    ]
    long = one(c.send(TO_CHARGER, [4, "2", "GenericError", "x" * 256, {}]), OcppCallError)
    assert [v.path for v in long.violations] == ["@errorDescription"]
    uid = "u" * 37
    assert one(c.send(TO_CSMS, [2, uid, "Heartbeat", {}]), OcppCall).violations == (
        SchemaViolation("@uniqueId", "is longer than 36 characters", "maxLength"),
    )


# -- schema violations -----------------------------------------------------------------------------------------------


def test_16_boot_without_vendor() -> None:
    call = one(Conv().send(TO_CSMS, [2, "1", "BootNotification", {"chargePointModel": "M"}]), OcppCall)
    assert call.violations == (SchemaViolation("chargePointVendor", "is required", "required"),)
    assert call.summary().endswith("; schema: chargePointVendor is required")


def test_16_boot_overlong_model() -> None:
    boot = dict(BOOT16, chargePointModel="E2507-ERRORERRORERRORERRORERRORERROR")
    call = one(Conv().send(TO_CSMS, [2, "1", "BootNotification", boot]), OcppCall)
    assert call.violations == (SchemaViolation("chargePointModel", "is longer than 20 characters", "maxLength"),)


def test_201_boot_without_vendor_name() -> None:
    boot = {"chargingStation": {"model": "M"}, "reason": "PowerUp"}
    call = one(Conv("ocpp2.0.1").send(TO_CSMS, [2, "1", "BootNotification", boot]), OcppCall)
    assert call.violations == (SchemaViolation("chargingStation.vendorName", "is required", "required"),)


def test_201_boot_reason_not_in_enum() -> None:
    boot = dict(BOOT201, reason="CosmicRay")
    (v,) = one(Conv("ocpp2.0.1").send(TO_CSMS, [2, "1", "BootNotification", boot]), OcppCall).violations
    assert (v.path, v.rule) == ("reason", "enum")
    assert v.message.startswith("is not one of ['ApplicationReset', 'FirmwareUpdate', 'LocalReset', 'PowerUp'")
    assert "CosmicRay" not in v.message


def test_response_validated_against_the_paired_calls_response_schema() -> None:
    c = Conv()
    c.send(TO_CSMS, [2, "1", "BootNotification", BOOT16])
    res = one(c.send(TO_CHARGER, [3, "1", {"currentTime": "2026-11-24T04:16:35Z", "status": "Maybe"}]), OcppCallResult)
    assert [(v.path, v.rule) for v in res.violations] == [("interval", "required")]
    assert res.status == "Maybe"


def test_unknown_action_is_not_validated() -> None:
    call = one(Conv().send(TO_CSMS, [2, "1", "bootnotification", {}]), OcppCall)
    assert (call.validated, call.violations, call.version) == (False, (), "1.6")


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"idTagInfo": {"status": "Blocked"}, "transactionId": 5}, "Blocked"),
        ({"idTokenInfo": {"status": "NoCredit"}}, "NoCredit"),
        ({"status": "Rejected", "idTagInfo": {"status": "Accepted"}}, "Rejected"),
        ({"currentTime": "2026-11-24T04:16:35Z"}, None),
        ([1, 2], None),
    ],
)
def test_status_convenience(payload: Any, status: str | None) -> None:
    c = Conv(None)  # content detection: no validation needed here
    c.send(TO_CSMS, [2, "1", "StartTransaction", {}])
    assert one(c.send(TO_CHARGER, [3, "1", payload]), OcppCallResult).status == status


# -- versions and content detection -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subprotocol", "version", "anomaly"),
    [
        ("ocpp1.6", "1.6", None),
        ("ocpp2.0.1", "2.0.1", None),
        ("ocpp2.1", "2.1", None),
        ("ocpp2.0", "2.0.1", "ocpp.version_assumed"),
        ("ocpp1.6j", "1.6", "ocpp.version_assumed"),
        ("OCPP1.6", "1.6", "ocpp.version_assumed"),
        ("ocpp1.5", None, "ocpp.version_unknown"),
        ("ocpp2.2", None, "ocpp.version_unknown"),
    ],
)
def test_version_from_subprotocol(subprotocol: str, version: str | None, anomaly: str | None) -> None:
    c = Conv(subprotocol)
    first = c.send(TO_CSMS, [2, "1", "Heartbeat", {}])
    assert [a.name for a in first if isinstance(a, DecodeAnomaly)] == ([anomaly] if anomaly else [])
    call = one(first, OcppCall)
    assert (call.version, call.validated) == (version, version is not None)
    assert not [a for a in c.send(TO_CSMS, [2, "2", "Heartbeat", {}]) if isinstance(a, DecodeAnomaly)]  # said once
    assert version_for(subprotocol)[0] == version


def test_ocpp20_is_validated_with_201_schemas() -> None:
    boot = {"chargingStation": {"model": "E2507-EXTRALARGEEXTRALARGE", "vendorName": "V"}, "reason": "PowerUp"}
    call = one(Conv("ocpp2.0").send(TO_CSMS, [2, "1", "BootNotification", boot]), OcppCall)
    assert call.version == "2.0.1"
    assert call.violations == (SchemaViolation("chargingStation.model", "is longer than 20 characters", "maxLength"),)


def test_content_detection_without_subprotocol() -> None:
    c = Conv(None)
    assert c.send(TO_CSMS, b"list") == []  # not OCPP-J, and none seen yet: ignored
    assert c.send(TO_CHARGER, b"Connected Clients: []") == []
    assert c.send(TO_CSMS, b"\x00\x01", text=False) == []
    assert c.send(TO_CSMS, [1, 2, 3]) == []
    first = c.send(TO_CSMS, [2, "1", "BootNotification", {"chargePointVendor": "V"}])
    assert [a.name for a in first if isinstance(a, DecodeAnomaly)] == ["ocpp.detected_by_content"]
    boot = one(first, OcppCall)
    assert (boot.version, boot.validated, boot.violations) == (None, False, ())  # BootNotification is in all versions
    start = one(c.send(TO_CSMS, [2, "2", "StartTransaction", {"connectorId": 1}]), OcppCall)  # 1.6 only
    assert (start.version, start.validated) == ("1.6", True)
    assert {v.path for v in start.violations} >= {"idTag"}
    res = one(c.send(TO_CHARGER, [3, "2", {"transactionId": 1}]), OcppCallResult)
    assert (res.version, res.validated, [v.path for v in res.violations]) == ("1.6", True, ["idTagInfo"])
    assert one(c.send(TO_CSMS, b"list"), OcppUnparsed).reason.startswith("invalid JSON")  # now it is OCPP


@pytest.mark.parametrize(
    ("subprotocol", "decodes"),
    [("ocpp1.6", True), ("ocpp2.0.1", True), ("OCPP2.1", True), (None, True), ("wamp", False), ("", False)],
)
def test_factory(subprotocol: str | None, decodes: bool) -> None:
    dec = ocpp_message_factory(3, subprotocol)
    assert (dec is not None) == decodes
    if dec is not None:
        assert (dec.flow_id, dec.subprotocol, dec.name) == (3, subprotocol, "ocpp")


# -- reported codes --------------------------------------------------------------------------------------------------


def status16(**fields: Any) -> dict[str, Any]:
    return {"connectorId": 1, "errorCode": "NoError", "status": "Available", **fields}


def reported(payload: dict[str, Any], subprotocol: str = "ocpp1.6", action: str = "StatusNotification") -> list[Any]:
    return [e for e in Conv(subprotocol).send(TO_CSMS, [2, "5", action, payload]) if isinstance(e, OcppReportedCode)]


def test_status_notification_cx015() -> None:
    payload = status16(
        errorCode="OtherError",
        status="Faulted",
        vendorId="https://chargex.inl.gov",
        vendorErrorCode="CX015",
        info="mains lost",
    )
    (r,) = reported(payload)
    assert (r.cx_code, r.source, r.code, r.error_code, r.vendor_id) == (
        "CX015",
        "StatusNotification.vendorErrorCode",
        "CX015",
        "OtherError",
        "https://chargex.inl.gov",
    )
    assert (r.connector_id, r.evse_id, r.status, r.description, r.action, r.unique_id, r.version) == (
        1,
        None,
        "Faulted",
        "mains lost",
        "StatusNotification",
        "5",
        "1.6",
    )
    assert (r.kind, r.layer) == ("ocpp.reported_code", "ocpp")
    assert r.summary() == "charger reports CX015 PowerLoss via StatusNotification.vendorErrorCode, connector 1"


def test_several_cx_codes_in_one_field() -> None:
    payload = status16(errorCode="GroundFailure", vendorId="https://chargex.inl.gov", vendorErrorCode="CX002; CX015")
    assert [(r.cx_code, r.code) for r in reported(payload)] == [("CX002", "CX002"), ("CX015", "CX015")]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"errorCode": "GroundFailure"}, [("CX002", "StatusNotification.errorCode", "GroundFailure")]),
        ({"errorCode": "WeakSignal"}, [("CX007", "StatusNotification.errorCode", "WeakSignal")]),
        ({"errorCode": "OtherError"}, [(None, "StatusNotification.errorCode", "OtherError")]),
        ({"errorCode": "NoError"}, []),
        ({"errorCode": "NoError", "vendorErrorCode": "0"}, []),  # a vendor code beside NoError reports nothing
        (
            {"errorCode": "NoError", "vendorErrorCode": "CX002", "info": "Error CX002 resolved"},
            [("CX002", "StatusNotification.vendorErrorCode", "CX002")],
        ),
        (
            {"errorCode": "OverVoltage", "vendorErrorCode": "E42"},
            [("CX005", "StatusNotification.vendorErrorCode", "E42")],
        ),
        (
            {"errorCode": "OtherError", "vendorErrorCode": "CX099"},
            [(None, "StatusNotification.vendorErrorCode", "CX099")],
        ),
    ],
)
def test_status_notification_error_codes(fields: dict[str, Any], expected: list[tuple[Any, ...]]) -> None:
    assert [(r.cx_code, r.source, r.code) for r in reported(status16(**fields))] == expected


def test_evgo_codes_map_to_cx_with_positional_info() -> None:
    payload = status16(
        errorCode="OtherError",
        vendorId="com.evgo.mrec",
        vendorErrorCode="A000,F003,F001",
        info="no auth,pilot 4.9V,prox low",
        timestamp="2026-11-24T04:16:35Z",
    )
    got = [(r.cx_code, r.source, r.code, r.description) for r in reported(payload)]
    assert got == [
        ("CX009", "com.evgo.mrec", "A000", "no auth"),
        ("CX014", "com.evgo.mrec", "F003", "pilot 4.9V"),
        (None, "com.evgo.mrec", "F001", "prox low"),
    ]


def test_notify_event_tech_code() -> None:
    payload = {
        "generatedAt": "2026-11-24T04:16:35Z",
        "seqNo": 0,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": "2026-11-24T04:16:30Z",
                "trigger": "Alerting",
                "actualValue": "true",
                "techCode": "CX002",
                "techInfo": "RCD tripped",
                "cleared": False,
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "EVSE", "evse": {"id": 1, "connectorId": 2}},
                "variable": {"name": "Problem"},
            },
            {
                "eventId": 2,
                "timestamp": "2026-11-24T04:16:31Z",
                "trigger": "Delta",
                "actualValue": "Available",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector"},
                "variable": {"name": "AvailabilityState"},
            },
        ],
    }
    events = Conv("ocpp2.0.1").send(TO_CSMS, [2, "5", "NotifyEvent", payload])
    assert one(events, OcppCall).violations == ()
    (r,) = [e for e in events if isinstance(e, OcppReportedCode)]
    assert (r.cx_code, r.source, r.code, r.evse_id, r.connector_id, r.description, r.cleared, r.version) == (
        "CX002",
        "NotifyEvent.techCode",
        "CX002",
        1,
        2,
        "RCD tripped",
        False,
        "2.0.1",
    )
    assert r.summary() == "charger reports CX002 GroundFailure via NotifyEvent.techCode, evse 1, connector 2"


# -- clocks ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "ns"),
    [
        ("1970-01-01T00:00:00.000Z", 0),
        ("2000-01-01T00:00:05Z", 946_684_805 * SECOND),
        ("2000-01-01T00:00:05+01:00", 946_681_205 * SECOND),
        ("2000-01-01T00:00:05-0130", 946_690_205 * SECOND),
        ("2025-01-22T18:04:19.181Z", 1_737_569_059_181_000_000),
        ("2025-01-22t18:04:19.1234567891z", 1_737_569_059_123_456_789),
        ("2025-01-22 18:04:19Z", 1_737_569_059 * SECOND),
        ("2025-01-22T18:04:19", 1_737_569_059 * SECOND),  # no offset: read as UTC
        ("1969-12-31T23:59:59.5Z", -500_000_000),
        ("0001-01-01T00:00:00Z", -62_135_596_800 * SECOND),
        ("2016-12-31T23:59:60Z", 1_483_228_800 * SECOND),
        ("2024-02-29T00:00:00Z", 1_709_164_800 * SECOND),
    ],
)
def test_parse_timestamp(raw: str, ns: int) -> None:
    assert parse_timestamp_ns(raw) == ns


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "2023-02-29T00:00:00Z",
        "2000-13-01T00:00:00Z",
        "2000-01-01T24:00:00Z",
        "2000-01-01",
        "0000-01-01T00:00:00Z",
        "2000-01-01T00:00:00+25:00",
        "２０００-01-01T00:00:00Z",
        "2000-01-01T00:00:00Z ",
        "yesterday",
    ],
)
def test_parse_timestamp_refuses(raw: str) -> None:
    assert parse_timestamp_ns(raw) is None


def test_remembered_timestamps_are_read_as_the_parser_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """``parse_timestamp_ns`` remembers its answers (valid or not) by text: the same answer as ``read_timestamp_ns``
    the first time and every time after, on valid, invalid and hostile texts (huge fractions, non-ASCII digits,
    lone surrogates); at most ``OCPP_TIMESTAMPS`` texts (emptied when full), none longer than
    ``OCPP_TIMESTAMP_LONGEST`` characters."""
    from analyzer.decoders import ocpp

    monkeypatch.setattr(ocpp, "_TIMESTAMPS", {})
    monkeypatch.setattr(ocpp, "OCPP_TIMESTAMPS", 50)
    texts = [
        "2024-05-14T07:59:41Z",
        "2024-05-14T07:59:41.123456789+01:00",
        "2024-05-14T07:59:41." + "9" * 5000 + "Z",  # valid, too long to keep
        "2024-05-14T07:59:41." + "1" * 21 + "Z",  # valid, 42 characters: not kept
        "2023-02-29T00:00:00Z",
        "２０２４-05-14T07:59:41Z",
        "2024-05-14T07:59:41\ud800Z",
        "\ud800",
        "",
        "9" * 400,
    ] + [f"2024-05-14T07:{m:02d}:{s:02d}Z" for m in range(3) for s in range(60)]
    for _ in range(3):
        for text in texts:
            assert ocpp.parse_timestamp_ns(text) == ocpp.read_timestamp_ns(text), text
            assert len(ocpp._TIMESTAMPS) <= 50
            assert all(len(t) <= ocpp.OCPP_TIMESTAMP_LONGEST for t in ocpp._TIMESTAMPS)
    assert ocpp.read_timestamp_ns(texts[2]) is not None
    assert texts[2] not in ocpp._TIMESTAMPS
    assert texts[3] not in ocpp._TIMESTAMPS


def clocks(events: list[Event]) -> list[tuple[str, str, int, str]]:
    return [(e.side, e.source, e.value_ns, e.raw) for e in events if isinstance(e, ClockSample)]


def test_clock_samples_from_charger_and_csms() -> None:
    c = Conv()
    assert clocks(c.send(TO_CSMS, [2, "1", "BootNotification", BOOT16])) == []
    boot = c.send(TO_CHARGER, [3, "1", {"currentTime": "2026-11-24T04:16:35Z", "interval": 300, "status": "Accepted"}])
    assert clocks(boot) == [
        ("csms", "ocpp.BootNotificationResponse.currentTime", 1_795_493_795 * SECOND, "2026-11-24T04:16:35Z")
    ]
    sample = one(boot, ClockSample)
    assert (sample.frame, sample.ts_ns, sample.flow_id, sample.direction) == (2, c.ts, 7, 1)
    status = c.send(TO_CSMS, [2, "2", "StatusNotification", status16(timestamp="2000-01-01T00:00:05Z")])
    assert clocks(status) == [
        ("charger", "ocpp.StatusNotification.timestamp", 946_684_805 * SECOND, "2000-01-01T00:00:05Z")
    ]
    meter = {
        "connectorId": 1,
        "meterValue": [
            {"timestamp": "1970-01-01T00:00:00.000Z", "sampledValue": [{"value": "1"}]},
            {"timestamp": "1970-01-01T00:00:10.000Z", "sampledValue": [{"value": "2"}]},
        ],
    }
    assert clocks(c.send(TO_CSMS, [2, "3", "MeterValues", meter])) == [
        ("charger", "ocpp.MeterValues.meterValue.timestamp", 0, "1970-01-01T00:00:00.000Z")
    ]
    start = {"connectorId": 1, "idTag": TOKEN, "meterStart": 0, "timestamp": "2000-01-01T00:03:12Z"}
    assert [s[1] for s in clocks(c.send(TO_CSMS, [2, "4", "StartTransaction", start]))] == [
        "ocpp.StartTransaction.timestamp"
    ]
    stop = {"transactionId": 1, "meterStop": 5, "timestamp": "2000-01-01T00:04:00Z", "reason": "PowerLoss"}
    assert [s[1] for s in clocks(c.send(TO_CSMS, [2, "5", "StopTransaction", stop]))] == [
        "ocpp.StopTransaction.timestamp"
    ]
    sec = {"type": "SettingSystemTime", "timestamp": "2000-01-01T00:00:01Z"}
    assert [s[1] for s in clocks(c.send(TO_CSMS, [2, "6", "SecurityEventNotification", sec]))] == [
        "ocpp.SecurityEventNotification.timestamp"
    ]
    hb = c.send(TO_CSMS, [2, "7", "Heartbeat", {}]) + c.send(
        TO_CHARGER, [3, "7", {"currentTime": "2026-11-24T04:16:35Z"}]
    )
    assert [s[:2] for s in clocks(hb)] == [("csms", "ocpp.HeartbeatResponse.currentTime")]
    assert clocks(c.send(TO_CSMS, [2, "8", "StatusNotification", status16(timestamp="not a time")])) == []


def test_clock_samples_20x() -> None:
    c = Conv("ocpp2.0.1")
    tx = {
        "eventType": "Started",
        "timestamp": "2000-01-01T00:00:09Z",
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "t1"},
    }
    assert [s[1:] for s in clocks(c.send(TO_CSMS, [2, "1", "TransactionEvent", tx]))] == [
        ("ocpp.TransactionEvent.timestamp", 946_684_809 * SECOND, "2000-01-01T00:00:09Z")
    ]
    ev = {
        "generatedAt": "2000-01-01T00:00:10Z",
        "seqNo": 0,
        "eventData": [
            {
                "eventId": i,
                "timestamp": f"2000-01-01T00:00:0{i % 3}Z",
                "trigger": "Delta",
                "actualValue": "1",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "C"},
                "variable": {"name": "V"},
            }
            for i in range(20)
        ],
    }
    got = clocks(c.send(TO_CSMS, [2, "2", "NotifyEvent", ev]))
    assert [s[1] for s in got] == ["ocpp.NotifyEvent.generatedAt"] + ["ocpp.NotifyEvent.eventData.timestamp"] * 3
    assert [s[3] for s in got[1:]] == ["2000-01-01T00:00:00Z", "2000-01-01T00:00:01Z", "2000-01-01T00:00:02Z"]


# -- tokens ----------------------------------------------------------------------------------------------------------


def test_redact_tokens() -> None:
    payload = {
        "idTag": TOKEN,
        "idTagInfo": {"status": "Accepted", "parentIdTag": "PARENT", "expiryDate": "2027-01-01T00:00:00Z"},
        "idToken": {
            "idToken": "TOK",
            "type": "ISO14443",
            "additionalInfo": [{"additionalIdToken": "ADD", "type": "x"}],
        },
        "idTokenInfo": {"status": "Accepted", "groupIdToken": {"idToken": "GROUP", "type": "Central"}},
        "localAuthorizationList": [{"idTag": "L1", "idTagInfo": {"status": "Blocked"}}],
        "configurationKey": [
            {"key": "AuthorizationKey", "readonly": True, "value": "48504575"},
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        ],
        "setVariableData": [
            {
                "variable": {"name": "BasicAuthPassword"},
                "component": {"name": "SecurityCtrlr"},
                "attributeValue": "s3cret-password",
            }
        ],
        "connectionData": {"basicAuthPassword": "pw", "apn": {"apnPassword": "apw", "apn": "internet"}},
        "numbers": {"idTag": 12345},
        "nothing": {"idTag": None},
    }
    original = json.loads(json.dumps(payload))
    red = redact_tokens(payload)
    assert payload == original  # not modified
    flat = json.dumps(red, ensure_ascii=False)
    for secret in (TOKEN, "PARENT", "TOK", "ADD", "GROUP", "L1", "48504575", "s3cret-password", "pw", "apw", "12345"):
        assert f'"{secret}"' not in flat
        assert f" {secret}" not in flat
    assert red["idTag"] == REDACTED
    assert red["idToken"] == {
        "idToken": REDACTED,
        "type": "ISO14443",
        "additionalInfo": [{"additionalIdToken": REDACTED, "type": "x"}],
    }
    assert red["idTokenInfo"] == {"status": "Accepted", "groupIdToken": {"idToken": REDACTED, "type": "Central"}}
    assert red["idTagInfo"] == {"status": "Accepted", "parentIdTag": REDACTED, "expiryDate": "2027-01-01T00:00:00Z"}
    assert red["configurationKey"][1]["value"] == "300"
    assert red["connectionData"]["apn"]["apn"] == "internet"
    assert red["nothing"] == {"idTag": None}
    assert redact_tokens([1, "a", None, {"key": ["x"], "value": 1}]) == [1, "a", None, {"key": ["x"], "value": 1}]


def test_summaries_never_show_tokens() -> None:
    c = Conv()
    events = c.send(TO_CSMS, [2, "1", "Authorize", {"idTag": TOKEN}])
    events += c.send(TO_CHARGER, [3, "1", {"idTagInfo": {"status": "Invalid", "parentIdTag": TOKEN}}])
    events += c.send(
        TO_CSMS,
        [
            2,
            "2",
            "StartTransaction",
            {"connectorId": 1, "idTag": TOKEN, "meterStart": 0, "timestamp": "2026-11-24T04:16:35Z"},
        ],
    )
    events += c.send(TO_CHARGER, [4, "2", "GenericError", f"unknown {TOKEN}", {"idTag": TOKEN}])
    events += c.send(TO_CSMS, f'[2,"3","Authorize",{{"idTag":"{TOKEN}"'.encode())  # truncated JSON
    events += c.send(TO_CSMS, [2, "4", "Authorize", {"idTag": TOKEN * 5}])  # violation: too long
    events += c.close()
    unparsed = one(events, OcppUnparsed)
    assert TOKEN not in unparsed.excerpt
    assert REDACTED in unparsed.excerpt
    assert len(events) >= 8
    for e in events:
        assert TOKEN not in e.summary(), e


# -- hostile input ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe[2]", "invalid UTF-8 at byte 0"),
        (b'[2,"1","Heartbeat",{"a":"\xc3\x28"}]', "invalid UTF-8 at byte 25"),
        (b"[" * 100_000, "JSON nested too deeply to parse"),
        (b"[" * 65 + b"]" * 65, "JSON nested deeper than 64 levels"),
        (b'[2,"1","Heartbeat",' + b'{"a":' * 70 + b"1" + b"}" * 70 + b"]", "JSON nested deeper than 64 levels"),
        (b'[2,"1","MeterValues",{"v":NaN}]', "invalid JSON: NaN is not valid JSON"),
        (b'[2,"1","MeterValues",{"v":-Infinity}]', "invalid JSON: -Infinity is not valid JSON"),
        (b'\xef\xbb\xbf[2,"1","Heartbeat",{}]', "invalid JSON: Unexpected UTF-8 BOM"),
        (b"", "invalid JSON: Expecting value: line 1 column 1 (char 0)"),
        (b'{"messageTypeId":2}', "not a JSON array (a JSON object)"),
        (b'"hello"', "not a JSON array (a JSON string)"),
        (b"[]", "empty JSON array"),
        (b'["2","1","Heartbeat",{}]', "message type is a JSON string, not an integer"),
        (b'[2.0,"1","Heartbeat",{}]', "message type is a JSON number, not an integer"),
        (b'[true,"1","Heartbeat",{}]', "message type is a JSON boolean, not an integer"),
        (b'[7,"1","Heartbeat",{}]', "unknown message type 7"),
        (b"[" + b"9" * 50 + b',"1"]', "unknown message type out of range"),
        (b'[2,"1","Heartbeat"]', "CALL has 3 elements, expected 4"),
        (b'[3,"1",{},{}]', "CALLRESULT has 4 elements, expected 3"),
        (b'[4,"1","GenericError",""]', "CALLERROR has 4 elements, expected 5"),
        (b'[2,1,"Heartbeat",{}]', "unique id is a JSON number, not a string"),
        (b'[2,"1",null,{}]', "action is a JSON null, not a string"),
        (b'[4,"1",500,"",{}]', "error code is a JSON number, not a string"),
    ],
)
def test_malformed_messages_are_unparsed(data: bytes, reason: str) -> None:
    u = one(Conv().send(TO_CSMS, data), OcppUnparsed)
    assert u.reason.startswith(reason), u.reason
    assert (u.kind, u.size, u.version, u.text) == ("ocpp.unparsed", len(data), "1.6", True)
    assert len(u.excerpt) <= 120
    assert "not OCPP-J" in u.summary()


def test_binary_frame_on_ocpp_subprotocol() -> None:
    u = one(Conv().send(TO_CSMS, b'[2,"1","Heartbeat",{}]', text=False), OcppUnparsed)
    assert (u.reason, u.text, u.excerpt) == ("binary frame", False, '[2,"1","Heartbeat",{}]')


def test_integer_over_pythons_digit_limit() -> None:
    u = one(Conv().send(TO_CSMS, b'[2,"1","Heartbeat",{"n":' + b"1" * 5000 + b"}]"), OcppUnparsed)
    assert u.reason.startswith("invalid JSON: Exceeds the limit")


def test_huge_multiple_of_value_does_not_raise() -> None:
    profile = {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10**400}],
            },
        },
    }
    call = one(Conv().send(TO_CHARGER, [2, "1", "SetChargingProfile", profile]), OcppCall)
    assert call.violations == (SchemaViolation("", "could not be validated (OverflowError)", "error"),)
    ok = json.loads(json.dumps(profile).replace("1" + "0" * 400, "0.3"))
    assert one(Conv().send(TO_CHARGER, [2, "1", "SetChargingProfile", ok]), OcppCall).violations == ()


def test_hostile_strings() -> None:
    c = Conv()
    action = "<script>alert(1)</script>\x00\x1b[31m\u202e"
    call = one(c.send(TO_CSMS, [2, "<img src=x onerror=1>\n", action, {"k": "\x00<script>"}]), OcppCall)
    assert call.action == action
    assert call.payload == {"k": "\x00<script>"}
    summary = call.summary()
    assert "\x00" not in summary
    assert "\n" not in summary
    assert "\x1b" not in summary
    assert "\u202e" not in summary
    assert "\\x00" in summary
    assert "<script>" in summary
    lone = one(c.send(TO_CSMS, b'[2,"\\ud800","Heartbeat",{}]'), OcppCall)
    assert lone.unique_id == "\ud800"
    assert "\\ud800" in lone.summary()


def test_huge_payload() -> None:
    big = {"vendorId": "V", "messageId": "M", "data": "x" * (1 << 20)}
    call = one(Conv().send(TO_CSMS, [2, "1", "DataTransfer", big]), OcppCall)
    assert call.payload == big
    assert call.size > 1 << 20
    assert call.violations == ()
    long_id = one(Conv().send(TO_CSMS, [2, "i" * 100_000, "Heartbeat", {}]), OcppCall)
    assert len(long_id.summary()) < 200


def test_events_are_frozen_slotted_and_kinds_are_stable() -> None:
    kinds = {
        OcppCall: "ocpp.call",
        OcppCallResult: "ocpp.call_result",
        OcppCallError: "ocpp.call_error",
        OcppCallResultError: "ocpp.call_result_error",
        OcppSend: "ocpp.send",
        OcppUnparsed: "ocpp.unparsed",
        OcppUnanswered: "ocpp.unanswered",
        OcppReportedCode: "ocpp.reported_code",
    }
    for cls, kind in kinds.items():
        assert cls.kind == kind
        assert cls.layer == "ocpp"
        assert "__slots__" in cls.__dict__
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen
    call = one(Conv().send(TO_CSMS, [2, "1", "Heartbeat", {}]), OcppCall)
    with pytest.raises(dataclasses.FrozenInstanceError):
        call.action = "x"  # type: ignore[misc]


# -- property test ---------------------------------------------------------------------------------------------------

VALID = [
    (0, [2, "1", "BootNotification", BOOT16]),
    (1, [3, "1", BOOT_OK]),
    (
        0,
        [
            2,
            "2",
            "StatusNotification",
            status16(
                errorCode="GroundFailure",
                vendorErrorCode="CX002;A000",
                vendorId="com.evgo.mrec",
                timestamp="2000-01-01T00:00:00Z",
            ),
        ],
    ),
    (1, [4, "2", "FormationViolation", "", {}]),
    (1, [2, "3", "GetConfiguration", {"key": ["a"]}]),
    (0, [3, "3", {"configurationKey": []}]),
    (0, [5, "3", "GenericError", "", {}]),
    (0, [6, "4", "NotifyPeriodicEventStream", {"id": 1, "pending": 0, "basetime": "2000-01-01T00:00:00Z", "data": []}]),
]
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
MAX_EVENTS_PER_MESSAGE = 1 + ocpp_mod.MAX_CLOCK_SAMPLES + ocpp_mod.MAX_REPORTED_CODES + 3


def mutate(msg: list[Any], index: int, value: Any, cut: int | None) -> bytes:
    m = list(msg)
    if index < len(m):
        m[index] = value
    text = json.dumps(m)
    return text[:cut].encode() if cut is not None else text.encode()


MESSAGES = st.one_of(
    st.tuples(st.integers(0, 1), st.binary(max_size=200), st.booleans()),
    st.builds(
        lambda item, index, value, cut, text: (item[0], mutate(item[1], index, value, cut), text),
        st.sampled_from(VALID),
        st.integers(0, 5),
        JSON_VALUE,
        st.one_of(st.none(), st.integers(0, 200)),
        st.booleans(),
    ),
    st.builds(lambda item: (item[0], json.dumps(item[1]).encode(), True), st.sampled_from(VALID)),
)


@settings(max_examples=300, deadline=None)
@given(
    subprotocol=st.sampled_from(["ocpp1.6", "ocpp2.0.1", "ocpp2.1", "ocpp2.0", "ocpp9", None]),
    messages=st.lists(MESSAGES, max_size=25),
)
def test_property_any_input_gives_only_bounded_events(
    subprotocol: str | None, messages: list[tuple[int, bytes, bool]]
) -> None:
    dec = OcppDecoder(1, subprotocol)
    calls = 0
    for i, (direction, data, text) in enumerate(messages):
        events = dec.message(direction=direction, data=data, text=text, frame=i + 1, ts_ns=i)
        assert len(events) <= MAX_EVENTS_PER_MESSAGE
        for e in events:
            assert isinstance(e, Event)
            assert isinstance(e.summary(), str)
            assert e.frame == i + 1
            assert e.flow_id == 1
        calls += sum(isinstance(e, OcppCall) for e in events)
    ends = dec.close(len(messages) + 1, len(messages))
    assert all(isinstance(e, OcppUnanswered) for e in ends)
    assert len(ends) <= calls


# -- the cheap paths give what the plain ones give -------------------------------------------------------------------

BRACKETY_TEXT = st.text(alphabet='[]{}"\\ab,:\n\u00e9\u20ac', max_size=12)
DEEP_JSON = st.recursive(
    st.one_of(st.none(), st.integers(), BRACKETY_TEXT),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(BRACKETY_TEXT, inner, max_size=3),
    max_leaves=80,
)


def nesting(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(nesting, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(nesting, value), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(value=DEEP_JSON, indent=st.sampled_from([None, 1]))
def test_text_depth_is_the_nesting_of_the_value(value: Any, indent: int | None) -> None:
    # brackets, quotes and backslashes inside strings do not count; whitespace and escapes do not matter
    assert ocpp_mod._text_depth(json.dumps(value, indent=indent).encode(), 1000) == nesting(value)
    assert ocpp_mod._text_depth(json.dumps(value, ensure_ascii=False).encode(), 1000) == nesting(value)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('["[","]"]', 1),  # two strings side by side
        ('["","[",""]', 1),
        ('{"a\\"[":"]\\\\"}', 1),  # an escaped quote, an escaped backslash before the closing quote
        ('[["\\u005b"]]', 2),
        ('["\u00e9[", {"\u20ac": []}]', 3),
        ("[]", 1),
        ('"[[["', 0),
        ("7", 0),
    ],
)
def test_text_depth_examples(text: str, depth: int) -> None:
    assert ocpp_mod._text_depth(text.encode(), 1000) == depth == nesting(json.loads(text))


def test_text_depth_stops_past_the_limit() -> None:
    # one ``replace`` per level: a hostile text is walked ``limit + 1`` times at most, whatever its depth
    deep = b"[" * 900 + b"]" * 900
    assert ocpp_mod._text_depth(deep, 64) == 65
    assert ocpp_mod._text_depth(deep, 1000) == 900
    text = b'{"a":"\xe2\x82\xac]]]\\"[[","b":[[{}]]}'  # UTF-8, an escaped quote, brackets in a string
    assert ocpp_mod._text_depth(text, 64) == 4 == nesting(json.loads(text))
    assert ocpp_mod._text_depth(text, 2) == 3


def test_brackets_in_strings_are_not_nesting() -> None:
    data = json.dumps([2, "1", "DataTransfer", {"vendorId": "v", "data": "[{" * 100 + '\\"' + "]}" * 100}]).encode()
    call = one(Conv().send(TO_CSMS, data), OcppCall)
    assert call.payload["data"].startswith("[{[{")


def test_a_deep_value_dropped_by_a_duplicate_key_is_not_too_deep() -> None:
    # the text nests 70 deep, the value (the last "a" wins) does not: the value decides
    deep = "[" * 70 + "]" * 70
    data = f'[2,"1","DataTransfer",{{"vendorId":"v","data":{deep},"data":"x"}}]'.encode()
    assert ocpp_mod._text_depth(data, ocpp_mod.MAX_DEPTH) == ocpp_mod.MAX_DEPTH + 1
    call = one(Conv().send(TO_CSMS, data), OcppCall)
    assert call.payload == {"vendorId": "v", "data": "x"}


def plain_loads(text: str) -> tuple[str, Any]:
    try:
        return "value", json.loads(text, parse_constant=ocpp_events._reject_constant, parse_float=parse_float)
    except (ValueError, RecursionError) as e:
        return type(e).__name__, str(e)


def one_decoder_loads(text: str) -> tuple[str, Any]:
    try:
        return "value", json_loads(text)
    except (ValueError, RecursionError) as e:
        return type(e).__name__, str(e)


@settings(max_examples=500, deadline=None)
@given(
    text=st.one_of(
        st.text(alphabet='[]{}",:0123456789.eE-+ \n\ufefftrufalsnNIiy\\', max_size=30),
        st.builds(json.dumps, JSON_VALUE),
        st.builds(lambda v: "\ufeff" + json.dumps(v), JSON_VALUE),
    )
)
def test_one_json_decoder_gives_what_json_loads_gives(text: str) -> None:
    # the same value, or the same error with the same message (the unparsed reason quotes it)
    got, want = one_decoder_loads(text), plain_loads(text)
    assert got == want or (got[0] == want[0] == "value" and json.dumps(got[1]) == json.dumps(want[1]))


@pytest.mark.parametrize(
    "text",
    [
        "1e999",
        "[-1e999, 2.5]",
        "NaN",
        "[Infinity]",
        "\ufeff[]",
        "[1] x",
        "",
        ' [2, "1"] ',
        "1" * 5000,
        # text starting with "[": _loads's one-scan path, then decode's own handling when the value does not end it
        "[",
        "[]",
        "[1] ",
        "[1]\n",
        "[1]]",
        "[1][2]",
        '[2,"1","A",{}]',
        '[2,"1","A",{"a":NaN}]',
        '[2,"1","A",{"a":"\\ud800"}]',
        '[2,"1","A",{"a":1,"a":2}]',
        "[" * 5000,
    ],
)
def test_one_json_decoder_gives_what_json_loads_gives_examples(text: str) -> None:
    got, want = one_decoder_loads(text), plain_loads(text)
    assert got == want or (got[0] == want[0] == "value" and repr(got[1]) == repr(want[1]))
