"""The Open OCPP Trace Format v1.1 as the tests check it: the record schema and the conformance rules.

Restated from the public specification repository ``open-ocpp-trace/specification`` (commit c9c2499,
``schema/trace-v1.schema.json`` and ``conformance/README.md``; schema and fixtures Apache-2.0, prose CC-BY-4.0),
not copied: ``RECORD_SCHEMA`` carries the same constraints as that JSON Schema (draft 2020-12), ``consumer_view``
is the correlation rule and consumer view of its conformance document, ``raw_problems`` its ``raw`` fidelity rule.
jsonschema checks ``format: date-time`` only with an optional package, so ``timestamp_problem`` checks RFC 3339.
"""

from __future__ import annotations

import json
import re
from typing import Any

RECORD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "OcppTraceRecord (Open OCPP Trace Format v1.1)",
    "type": "object",
    "required": ["schemaVersion", "timestamp", "transport", "direction", "messageType"],
    "additionalProperties": True,
    "properties": {
        "schemaVersion": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "ocppVersion": {"type": "string"},
        "transport": {"type": "string", "enum": ["json", "soap"]},
        "chargePointId": {"type": "string"},
        "connectorId": {"type": "integer", "minimum": 0},
        "direction": {"type": "string", "enum": ["cp-to-csms", "csms-to-cp"]},
        "messageType": {"type": "string", "enum": ["CALL", "CALLRESULT", "CALLERROR"]},
        "messageId": {"type": "string"},
        "action": {"type": "string"},
        "payload": {},
        "raw": {"type": "string"},
        "error": {
            "type": "object",
            "additionalProperties": True,
            "properties": {"code": {"type": "string"}, "description": {"type": "string"}, "details": {}},
        },
        "meta": {"type": "object"},
    },
    "allOf": [
        {"if": {"properties": {"messageType": {"const": "CALL"}}}, "then": {"required": ["action"]}},
        {
            "if": {"properties": {"messageType": {"const": "CALLERROR"}}},
            "then": {"required": ["error"]},
            "else": {"properties": {"error": False}},
        },
    ],
}
TOP_LEVEL = frozenset(RECORD_SCHEMA["properties"])  # producers keep extensions in meta (conformance rule 4)
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_TYPES = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}


def timestamp_problem(record: dict[str, Any]) -> str | None:
    ts = record.get("timestamp")
    return None if isinstance(ts, str) and _RFC3339.fullmatch(ts) else f"timestamp {ts!r} is not RFC 3339"


def raw_problems(record: dict[str, Any]) -> list[str]:
    """Where ``raw`` contradicts the fields the record decomposes (empty: no ``raw``, or it agrees)."""
    if "raw" not in record:
        return []
    try:
        frame = json.loads(record["raw"])
    except ValueError:
        return ["raw does not parse as JSON"]
    if not isinstance(frame, list):
        return ["raw is not an OCPP-J array"]
    out = []
    kind = record["messageType"]
    if _TYPES.get(frame[0]) != kind:
        out.append("raw frame kind contradicts messageType")
    if "messageId" in record and frame[1] != record["messageId"]:
        out.append("raw messageId contradicts messageId")
    if kind == "CALL":
        if frame[2] != record.get("action"):
            out.append("raw action contradicts action")
        if "payload" in record and frame[3] != record["payload"]:
            out.append("raw payload contradicts payload")
    elif kind == "CALLRESULT":
        if "payload" in record and frame[2] != record["payload"]:
            out.append("raw payload contradicts payload")
    else:
        error = record.get("error") or {}
        for i, key in ((2, "code"), (3, "description"), (4, "details")):
            if key in error and frame[i] != error[key]:
                out.append(f"raw error {key} contradicts error.{key}")
    return out


def consumer_view(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The consumer view a conformant consumer derives from a trace (the correlation rule: a response answers the
    latest earlier CALL with its messageId, in the other direction, not answered yet)."""
    view: list[dict[str, Any]] = []
    for i, r in enumerate(records):
        entry = {"index": i, "messageType": r["messageType"], "messageId": r.get("messageId")}
        if r["messageType"] == "CALL":
            entry["action"] = r["action"]
        view.append(entry)
    answered: set[int] = set()
    orphans = []
    for i, r in enumerate(records):
        if r["messageType"] == "CALL":
            continue
        match = next(
            (
                j
                for j in range(i - 1, -1, -1)
                if records[j]["messageType"] == "CALL"
                and records[j].get("messageId") == r.get("messageId")
                and records[j]["direction"] != r["direction"]
                and j not in answered
            ),
            None,
        )
        if match is None:
            orphans.append(i)
        else:
            answered.add(match)
            view[i]["action"] = records[match]["action"]
            view[i]["correlatesWith"] = match
    return {
        "schemaVersion": records[0]["schemaVersion"] if records else "unknown",
        "counts": {
            "records": len(records),
            "calls": sum(r["messageType"] == "CALL" for r in records),
            "callResults": sum(r["messageType"] == "CALLRESULT" for r in records),
            "callErrors": sum(r["messageType"] == "CALLERROR" for r in records),
        },
        "records": view,
        "unansweredCalls": [i for i, r in enumerate(records) if r["messageType"] == "CALL" and i not in answered],
        "orphanResponses": orphans,
    }
