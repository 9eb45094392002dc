"""The OCPP decoder on real captures, fed the WebSocket text messages TShark finds (TShark inflates
permessage-deflate itself), checked against the MANIFEST of the external captures and the lab's ``.truth.json``.

TShark is asked for ``-T json`` rather than ``-T fields``: the fields output escapes newlines but not backslashes,
so a JSON text holding ``\\n`` cannot be recovered exactly from it; the JSON output carries the text as it was.
The server port (of the 101 response) tells the direction; ``tcp.stream`` is the connection.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from analyzer.decoders.ocpp import ocpp_message_factory, parse_timestamp_ns
from analyzer.events.base import DecodeAnomaly, Event
from analyzer.events.clock import ClockSample
from analyzer.events.ocpp import (
    REDACTED,
    OcppCall,
    OcppCallError,
    OcppCallResult,
    OcppUnanswered,
    OcppUnparsed,
    SchemaViolation,
    redact_tokens,
)
from tests.conftest import EXTERNAL, PROJECT_CAPTURES

TSHARK = shutil.which("tshark") or "/usr/bin/tshark"
pytestmark = pytest.mark.skipif(not Path(TSHARK).exists(), reason="tshark is not installed")

OCPP_EXTERNAL = EXTERNAL / "ocpp"
FIELDS = (
    "frame.number",
    "frame.time_epoch",
    "tcp.stream",
    "tcp.srcport",
    "tcp.dstport",
    "http.response.code",
    "http.sec_websocket_protocol",
    "http.request.uri",
    "websocket.payload.text",
)
LAB = (
    "healthy_16_ws",
    "healthy_201_ws",
    "ocpp_auth_rejected",
    "ocpp_authorize_no_response",
    "ocpp_boot_callerror",
    "ocpp_boot_pending",
    "ocpp_boot_rejected",
    "ocpp_schema_violation",
    "clock_reset",
    "gateway_mixed",
)


@dataclass
class Connection:
    stream: int
    server_port: int | None = None
    subprotocol: str | None = None
    station_id: str | None = None
    upgraded: bool = False
    texts: int = 0
    last: tuple[int, int] = (0, 0)
    events: list[Event] = field(default_factory=list)

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]


@functools.cache
def decode(path: Path) -> dict[int, Connection]:
    """Every TCP connection of ``path``, its OCPP messages decoded, closed at its last frame."""
    cmd = [TSHARK, "-n", "-r", str(path), "-Y", "tcp", "-T", "json"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
    conns: dict[int, Connection] = {}
    decoders: dict[int, Any] = {}
    for packet in json.loads(out):
        layers = packet["_source"]["layers"]
        frame = int(layers["frame.number"][0])
        ts_ns = int(Decimal(layers["frame.time_epoch"][0]) * 1_000_000_000)
        conn = conns.setdefault(int(layers["tcp.stream"][0]), Connection(int(layers["tcp.stream"][0])))
        conn.last = (frame, ts_ns)
        if "http.request.uri" in layers:
            conn.station_id = layers["http.request.uri"][0].rstrip("/").rsplit("/", 1)[-1] or None
        if layers.get("http.response.code") == ["101"]:
            conn.upgraded = True
            conn.server_port = int(layers["tcp.srcport"][0])
            conn.subprotocol = layers.get("http.sec_websocket_protocol", [None])[0]
            decoders[conn.stream] = ocpp_message_factory(conn.stream, conn.subprotocol)
        dec = decoders.get(conn.stream)
        for text in layers.get("websocket.payload.text", []):
            conn.texts += 1
            if dec is None:
                continue
            direction = 0 if int(layers["tcp.dstport"][0]) == conn.server_port else 1
            conn.events += dec.message(direction=direction, data=text.encode(), text=True, frame=frame, ts_ns=ts_ns)
    for stream, dec in decoders.items():
        if dec is not None:
            conns[stream].events += dec.close(*conns[stream].last)
    return conns


def messages(conn: Connection) -> list[Any]:
    return [e for e in conn.events if isinstance(e, OcppCall | OcppCallResult | OcppCallError)]


def assert_clean(conn: Connection) -> None:
    """Every text message was OCPP-J, schema-valid, and every CALL was answered."""
    assert len(messages(conn)) == conn.texts
    assert not conn.of(OcppUnparsed)
    assert not conn.of(OcppUnanswered)
    assert [m for m in messages(conn) if m.violations] == []
    assert all(m.pairing == "paired" for m in messages(conn) if not isinstance(m, OcppCall))


def boot_results(conn: Connection) -> list[OcppCallResult]:
    return [r for r in conn.of(OcppCallResult) if r.action == "BootNotification"]


# -- external captures (CheckOCPP, OpenEVSE), facts from captures-external/MANIFEST.md --------------------------------


def external(name: str) -> dict[int, Connection]:
    path = OCPP_EXTERNAL / name
    if not path.exists():
        pytest.skip(f"{path} is not here")
    return decode(path)


def test_checkocpp_capt_sessions() -> None:
    conns = external("checkocpp__capt.pcapng")
    upgraded = {s: c.subprotocol for s, c in conns.items() if c.upgraded}
    assert upgraded == {1: "ocpp1.6", 3: None, 4: "ocpp2.0", 5: "ocpp2.0.1"}
    # port 9008 negotiates no subprotocol and carries an admin text protocol ("list", "get ..."): not OCPP-J, ignored
    admin = conns[3]
    assert admin.texts == 9
    assert admin.events == []
    v16, v20, v201 = conns[1], conns[4], conns[5]
    for conn in (v16, v20, v201):
        assert_clean(conn)
        assert [r.status for r in boot_results(conn)] == ["Accepted"]
    assert {m.version for m in messages(v16)} == {"1.6"}
    assert {m.version for m in messages(v20)} == {"2.0.1"}  # ocpp2.0 is read with the 2.0.1 schemas, and says so
    assert [a.name for a in v20.of(DecodeAnomaly)] == ["ocpp.version_assumed"]
    assert boot_results(v16)[0].frame == 11
    assert [(c.frame, c.action) for c in v16.of(OcppCall) if c.direction == 1] == [(61, "GetConfiguration")]
    (conf,) = [r for r in v16.of(OcppCallResult) if r.action == "GetConfiguration"]
    assert (conf.frame, conf.direction, conf.call_frame) == (63, 0, 61)
    assert redact_tokens(conf.payload)["configurationKey"][0] == {
        "key": "AuthorizationKey",
        "readonly": True,
        "value": REDACTED,
    }
    (gv,) = [r for r in v201.of(OcppCallResult) if r.action == "GetVariables"]
    assert (gv.frame, gv.direction, gv.call_frame) == (211, 0, 209)
    heartbeats = [s for s in v16.of(ClockSample) if s.source == "ocpp.HeartbeatResponse.currentTime"]
    assert heartbeats[0].raw == "2024-12-06T11:57:37Z"
    assert all(s.side == "csms" for s in v16.of(ClockSample))


def test_checkocpp_capt_error_overlong_charge_point_model() -> None:
    (conn,) = [c for c in external("checkocpp__capt_error.pcapng").values() if c.upgraded]
    (boot,) = conn.of(OcppCall)
    assert (boot.frame, boot.action, boot.version) == (8, "BootNotification", "1.6")
    assert boot.payload["chargePointModel"] == "E2507-ERRORERRORERRORERRORERRORERROR"
    assert boot.violations == (SchemaViolation("chargePointModel", "is longer than 20 characters", "maxLength"),)
    (res,) = boot_results(conn)
    assert (res.frame, res.status, res.call_frame, res.violations) == (9, "Rejected", 8, ())


def test_checkocpp_capt_error_201_invalid_certificate_type() -> None:
    (conn,) = [c for c in external("checkocpp__capt_error2.0.1.pcapng").values() if c.upgraded]
    assert conn.subprotocol == "ocpp2.0.1"
    (install,) = [c for c in conn.of(OcppCall) if c.action == "InstallCertificate"]
    assert (install.frame, install.direction, install.version) == (37, 1, "2.0.1")
    assert install.payload["certificateType"] == "MySpecialCertificate"
    assert install.payload["certificate"].startswith("-----BEGIN CERTIFICATE-----\nMIID")  # exact text, not escaped
    (v,) = install.violations
    assert (v.path, v.rule) == ("certificateType", "enum")
    assert v.message.startswith("is not one of ['V2GRootCertificate', 'MORootCertificate', 'CSMSRootCertificate'")
    (res,) = [r for r in conn.of(OcppCallResult) if r.action == "InstallCertificate"]
    assert (res.frame, res.direction, res.status, res.call_frame, res.violations) == (39, 0, "Rejected", 37, ())
    assert [r.status for r in boot_results(conn)] == ["Accepted"]
    assert not conn.of(OcppUnanswered)


def test_checkocpp_capt_error_20_overlong_model() -> None:
    (conn,) = [c for c in external("checkocpp__capt_error2.0.pcapng").values() if c.upgraded]
    (boot,) = conn.of(OcppCall)
    assert (boot.frame, boot.version) == (49, "2.0.1")
    assert boot.violations == (SchemaViolation("chargingStation.model", "is longer than 20 characters", "maxLength"),)
    assert [(r.frame, r.status) for r in boot_results(conn)] == [(50, "Rejected")]


def test_openevse_real_charger() -> None:
    (conn,) = [c for c in external("checkocpp__extralargeOPENEVSE.pcapng").values() if c.upgraded]
    assert (conn.subprotocol, conn.station_id, conn.texts) == ("ocpp1.6", "782184F83BBCXXX", 12)
    assert [(r.frame, r.status) for r in boot_results(conn)] == [(121, "Accepted")]
    charger_clock = [(s.frame, s.raw, s.value_ns) for s in conn.of(ClockSample) if s.side == "charger"]
    assert charger_clock == [
        (126, "2025-01-22T18:04:19.181Z", 1_737_569_059_181_000_000),
        (129, "2025-01-22T18:04:19.182Z", 1_737_569_059_182_000_000),
    ]
    (get,) = [c for c in conn.of(OcppCall) if c.action == "GetConfiguration"]
    assert (get.frame, get.direction) == (328, 1)
    assert get.violations == (SchemaViolation("key[0]", "is longer than 50 characters", "maxLength"),)
    (ans,) = [r for r in conn.of(OcppCallResult) if r.action == "GetConfiguration"]
    assert ans.violations == (SchemaViolation("unknownKey[0]", "is longer than 50 characters", "maxLength"),)
    assert ans.latency_ns is not None
    assert 200_000_000 < ans.latency_ns < 230_000_000
    assert len(messages(conn)) == conn.texts
    assert not conn.of(OcppUnanswered)
    assert not conn.of(OcppUnparsed)


# -- lab captures, facts from captures/<scenario>.truth.json ----------------------------------------------------------


def lab(scenario: str) -> tuple[dict[str, Any], dict[str, list[Connection]]]:
    truth = json.loads((PROJECT_CAPTURES / f"{scenario}.truth.json").read_text())
    by_station: dict[str, list[Connection]] = {}
    for conn in decode(PROJECT_CAPTURES / truth["capture"]["file"]).values():
        if conn.station_id is not None:
            by_station.setdefault(conn.station_id, []).append(conn)
    return truth, by_station


def chargers() -> list[tuple[str, str]]:
    out = []
    for scenario in LAB:
        truth = json.loads((PROJECT_CAPTURES / f"{scenario}.truth.json").read_text())
        out += [(scenario, c["station_id"]) for c in truth["chargers"]]
    return out


@pytest.mark.parametrize(("scenario", "station"), chargers())
def test_lab_capture(scenario: str, station: str) -> None:
    truth, by_station = lab(scenario)
    (charger,) = [c for c in truth["chargers"] if c["station_id"] == station]
    facts, fault, failure = charger["facts"], charger["fault_id"], charger["failure_frame"]
    conns = [c for c in by_station.get(station, []) if c.upgraded]
    if fault == "http.unauthorized":
        assert conns == []  # never upgraded: nothing for the OCPP decoder
        return
    (conn,) = conns
    assert conn.subprotocol == "ocpp" + charger["ocpp_version"]
    assert {m.version for m in messages(conn)} == {charger["ocpp_version"]}
    assert len(messages(conn)) == conn.texts
    assert not conn.of(OcppUnparsed)
    assert not conn.of(DecodeAnomaly)

    if fault is None:  # healthy
        assert_clean(conn)
        assert [r.status for r in boot_results(conn)] == facts["boot_status"]
        assert boot_results(conn)[0].frame == facts["boot_accepted_frame"]
    elif fault in ("ocpp.boot_rejected", "ocpp.boot_pending"):
        results = boot_results(conn)
        assert [r.status for r in results] == [facts["status"]] * facts["responses_like_this"]
        assert (results[0].frame, results[0].unique_id, results[0].payload) == (
            failure,
            facts["message_id"],
            facts["payload"],
        )
        assert_clean(conn)
    elif fault == "ocpp.callerror":
        (err,) = conn.of(OcppCallError)
        assert (err.frame, err.unique_id, err.action, err.error_code) == (
            failure,
            facts["message_id"],
            facts["action"],
            facts["callerror_code"],
        )
        assert (err.error_description, err.error_details) == (
            facts["callerror_description"],
            facts["callerror_details"],
        )
        assert not conn.of(OcppUnanswered)
    elif fault == "ocpp.schema_violation":
        (call,) = [c for c in conn.of(OcppCall) if c.unique_id == facts["message_id"]]
        assert (call.frame, call.action, call.payload) == (failure, facts["action"], facts["payload"])
        missing = re.fullmatch(r"'(\w+)' is a required property", facts["answer"][4]["cause"])
        assert missing is not None
        assert call.violations == (SchemaViolation(missing.group(1), "is required", "required"),)
        (err,) = conn.of(OcppCallError)
        assert (err.frame, err.error_code, err.error_description, err.call_frame) == (
            facts["answer_frame"],
            facts["answer"][2],
            facts["answer"][3],
            failure,
        )
    elif fault == "ocpp.auth_rejected":
        (res,) = [r for r in conn.of(OcppCallResult) if r.frame == failure]
        assert (res.action, res.unique_id, res.status, res.payload) == (
            facts["action"],
            facts["message_id"],
            facts["status"],
            facts["payload"],
        )
        assert_clean(conn)
    elif fault == "ocpp.no_response":
        (miss,) = conn.of(OcppUnanswered)
        assert (miss.frame, miss.action, miss.unique_id) == (failure, facts["action"], facts["message_id"])
        assert miss.waited_ns >= facts["charger_timeout_s"] * 1_000_000_000
        assert REDACTED in json.dumps(redact_tokens(conn.of(OcppCall)[-1].payload), ensure_ascii=False)
    elif fault == "clock.reset":
        assert_clean(conn)
        (charger_clock,) = [s for s in conn.of(ClockSample) if s.side == "charger"]
        assert (charger_clock.frame, charger_clock.raw, charger_clock.source) == (
            failure,
            facts["charger_timestamp"],
            "ocpp.StatusNotification.timestamp",
        )
        assert charger_clock.value_ns == parse_timestamp_ns("2000-01-01T00:00:01Z") == 946_684_801_000_000_000
        csms = {s.raw for s in conn.of(ClockSample) if s.side == "csms"}
        assert csms == {facts["csms_current_time"]}
    else:
        pytest.fail(f"no check for {fault}")
