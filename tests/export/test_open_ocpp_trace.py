"""``ghostcap export --format open-ocpp-trace``: every lab capture with OCPP gives records valid against the Open
OCPP Trace schema that a conformant consumer pairs exactly as ghostcap did; redaction as in the reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from analyzer.cli import cli
from analyzer.config import Settings
from analyzer.engine import analyze
from analyzer.events.ocpp import OcppCall, OcppCallError, OcppCallResult, OcppMessage, OcppUnanswered
from analyzer.export.open_ocpp_trace import trace
from tests.conftest import PROJECT_CAPTURES
from tests.export.trace_spec import RECORD_SCHEMA, TOP_LEVEL, consumer_view, raw_problems, timestamp_problem

VALIDATOR = jsonschema.Draft202012Validator(RECORD_SCHEMA)
TRUTHS = [json.loads(p.read_text()) for p in sorted(PROJECT_CAPTURES.glob("*.truth.json"))]


def record(kind: str, mid: str, direction: str, **kw: Any) -> dict[str, Any]:
    return {
        "schemaVersion": "1.1",
        "timestamp": "2026-01-01T00:00:00.5Z",
        "transport": "json",
        "direction": direction,
        "messageType": kind,
        "messageId": mid,
        **kw,
    }


def test_the_restated_schema_and_rules_reject_what_the_format_forbids() -> None:
    call = record("CALL", "1", "cp-to-csms", action="Heartbeat", payload={}, raw='[2,"1","Heartbeat",{}]')
    assert list(VALIDATOR.iter_errors(call)) == []
    assert raw_problems(call) == []
    bad = [
        {k: v for k, v in call.items() if k != "action"},  # a CALL names its action
        {**call, "error": {"code": "X"}},  # error only on a CALLERROR
        record("CALLERROR", "1", "csms-to-cp"),  # ... which must have one
        {**call, "direction": "up"},
        {**call, "connectorId": -1},
        {**call, "transport": "ws"},
        {k: v for k, v in call.items() if k != "timestamp"},
    ]
    for r in bad:
        assert list(VALIDATOR.iter_errors(r)), r
    assert raw_problems({**call, "raw": '[2,"1","Authorize",{}]'}) == ["raw action contradicts action"]
    assert raw_problems({**call, "payload": {"a": 1}}) == ["raw payload contradicts payload"]
    assert timestamp_problem({**call, "timestamp": "2026-01-01 00:00"}) is not None


def test_consumer_view_pairs_by_id_and_direction_and_finds_orphans_and_unanswered_calls() -> None:
    trace_records = [
        record("CALL", "a", "cp-to-csms", action="BootNotification"),  # 0: answered by 3, not by 1
        record("CALLRESULT", "a", "cp-to-csms"),  # 1: same direction: an orphan
        record("CALL", "b", "csms-to-cp", action="Reset"),  # 2: never answered
        record("CALLERROR", "a", "csms-to-cp", error={"code": "InternalError"}),  # 3
        record("CALL", "a", "cp-to-csms", action="Heartbeat"),  # 4: id reused after the answer
        record("CALLRESULT", "a", "csms-to-cp"),  # 5 → 4
        record("CALLRESULT", "a", "csms-to-cp"),  # 6: both answered: an orphan
    ]
    view = consumer_view(trace_records)
    assert view["counts"] == {"records": 7, "calls": 3, "callResults": 3, "callErrors": 1}
    assert [(e.get("action"), e.get("correlatesWith")) for e in view["records"]] == [
        ("BootNotification", None),
        (None, None),
        ("Reset", None),
        ("BootNotification", 0),
        ("Heartbeat", None),
        ("Heartbeat", 4),
        (None, None),
    ]
    assert view["unansweredCalls"] == [2]
    assert view["orphanResponses"] == [1, 6]


def _keys(truth: dict[str, Any]) -> tuple[str, ...]:
    name = truth["capture"].get("keylog")
    return (str(PROJECT_CAPTURES / name),) if name else ()


@pytest.mark.parametrize("truth", TRUTHS, ids=[t["scenario"] for t in TRUTHS])
def test_every_lab_capture_exports_a_valid_trace_that_round_trips(truth: dict[str, Any]) -> None:
    a = analyze(PROJECT_CAPTURES / truth["capture"]["file"], Settings(keylog_files=_keys(truth)))
    tr = trace(a)
    messages = [e for r in a.results for e in r.charger.events if isinstance(e, OcppMessage)]
    records = tr.records
    assert len(records) == len(messages)  # the lab has no SEND, CALLRESULTERROR or unparsable message
    assert tr.left_out == {}
    for rec in records:
        assert list(VALIDATOR.iter_errors(rec)) == [], rec
        assert timestamp_problem(rec) is None
        assert raw_problems(rec) == [], rec
        assert set(rec) <= TOP_LEVEL, rec
    # the records are the decoded messages, in the report's charger order and capture order
    assert [(r["meta"]["frame"], r["messageId"], r.get("action")) for r in records] == [
        (e.frame, e.unique_id, getattr(e, "action", None)) for e in messages
    ]
    assert [r.get("chargePointId") for r in records] == [
        res.charger.station_id for res in a.results for e in res.charger.events if isinstance(e, OcppMessage)
    ]
    # a conformant consumer pairs them as ghostcap did
    view = consumer_view(records)
    by_frame = {e.frame: e for e in messages}
    for rec, entry in zip(records, view["records"], strict=True):
        e = by_frame[rec["meta"]["frame"]]
        if isinstance(e, OcppCallResult | OcppCallError) and e.call_frame is not None:
            call = records[entry["correlatesWith"]]
            assert call["messageId"] == e.unique_id
            assert entry["action"] == e.action
            if e.call_frame in by_frame:  # (behind a relay ghostcap may name the CSMS leg's copy of the CALL)
                assert call["meta"]["frame"] == e.call_frame
        elif not isinstance(e, OcppCall):
            assert "correlatesWith" not in entry
    unanswered = {e.frame for r in a.results for e in r.charger.events if isinstance(e, OcppUnanswered)}
    assert {records[i]["meta"]["frame"] for i in view["unansweredCalls"]} == unanswered
    assert bool(records) == expects_ocpp(truth), truth["scenario"]


AFTER_THE_FIRST_MESSAGE = {"tcp.reset", "ws.abnormal_close", "ws.closed_after_upgrade", "ws.dropped"}


def expects_ocpp(truth: dict[str, Any]) -> bool:
    """A charger of the scenario got as far as sending OCPP: healthy, or failing at or after its first message."""
    return any(
        c["fault_id"] is None
        or c["fault_id"].split(".")[0] in ("ocpp", "clock")
        or c["fault_id"] in AFTER_THE_FIRST_MESSAGE
        for c in truth["chargers"]
    )


def test_redaction_as_in_the_reports(tmp_path: Path) -> None:
    cap = str(PROJECT_CAPTURES / "ocpp_auth_rejected.pcap")
    shown = CliRunner().invoke(cli, ["export", cap, "--show-tokens"], catch_exceptions=False)
    hidden = CliRunner().invoke(cli, ["export", cap], catch_exceptions=False)
    assert shown.exit_code == hidden.exit_code == 0
    authorize = next(json.loads(line) for line in shown.stdout.splitlines() if '"Authorize"' in line)
    token = authorize["payload"]["idToken"]["idToken"]
    assert json.loads(authorize["raw"])[3] == authorize["payload"]
    assert len(token) >= 4
    assert token not in hidden.stdout
    redacted = [json.loads(line) for line in hidden.stdout.splitlines()]
    (rec,) = [r for r in redacted if r["messageType"] == "CALL" and r["action"] == "Authorize"]
    assert rec["payload"]["idToken"] == {"idToken": "«redacted»", "type": authorize["payload"]["idToken"]["type"]}
    assert "raw" not in rec
    assert rec["meta"] == {"frame": authorize["meta"]["frame"], "redacted": True}


def test_export_cli_file_stdout_and_one_line_errors(tmp_path: Path) -> None:
    cap = str(PROJECT_CAPTURES / "gateway_mixed.pcap")
    out = tmp_path / "trace.jsonl"
    res = CliRunner().invoke(cli, ["export", cap, "--format", "open-ocpp-trace", "-o", str(out)])
    assert res.exit_code == 0
    assert res.stdout == ""
    lines = out.read_text().splitlines()
    ids = [json.loads(line).get("chargePointId") for line in lines]
    assert sorted(set(ids)) == ["GW-CP-01", "GW-CP-03", "GW-CS-02"]  # GW-CP-04 never got past HTTP 401
    assert ids == sorted(ids, key=ids.index)  # grouped by charger
    assert res.stderr.splitlines()[-1] == f"{cap}: {len(lines)} OCPP messages of 3 charger(s) → {out} (open-ocpp-trace)"
    res = CliRunner().invoke(cli, ["export", cap, "-q"])
    assert res.stdout.splitlines() == lines
    assert res.stderr == ""
    res = CliRunner().invoke(cli, ["export", str(PROJECT_CAPTURES / "tcp_refused.pcap")])
    assert (res.exit_code, res.stdout) == (0, "")
    assert "0 OCPP messages of 0 charger(s)" in res.stderr
    res = CliRunner().invoke(cli, ["export", cap, "-o", str(tmp_path)])
    assert res.exit_code == 2
    assert res.stderr == f"error: -o {tmp_path}: is a directory, not a file\n"
    bad = tmp_path / "not-a-capture.pcap"
    bad.write_text("hello\n")
    res = CliRunner().invoke(cli, ["export", str(bad)])
    assert res.exit_code == 3
    assert len(res.stderr.splitlines()) == 1
    assert res.stderr.startswith(f"error: {bad}: ")
    res = CliRunner().invoke(cli, ["export", cap, "--format", "csv"])
    assert res.exit_code == 2
