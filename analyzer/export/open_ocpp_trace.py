"""A capture's decoded OCPP messages as an Open OCPP Trace (``ghostcap export --format open-ocpp-trace``).

The Open OCPP Trace Format (v1.1) is the vendor-neutral JSON/JSONL trace of OCPP message exchanges that
ocpp-debugkit and OCPP simulators read; its specification, JSON Schema (``schema/trace-v1.schema.json``) and
conformance fixtures are the public repository ``open-ocpp-trace/specification``. A trace is JSONL: one record
(one OCPP-J message) per line. Per record:

- ``schemaVersion`` ``"1.1"``; ``timestamp`` (capture time of the frame that completed the message, RFC 3339
  UTC with nanoseconds); ``ocppVersion`` (``"1.6"``, ``"2.0.1"``, ``"2.1"``, when known); ``transport``
  ``"json"``; ``chargePointId`` (the station identity from the WebSocket upgrade, when the capture has it);
  ``connectorId`` (a request's top-level ``connectorId``); ``direction`` (``cp-to-csms`` / ``csms-to-cp``);
  ``messageType`` (``CALL``, ``CALLRESULT``, ``CALLERROR``); ``messageId``; ``action`` (a CALL's; a response's
  only when ghostcap paired it with its CALL, and then the CALL's, as conformance rule 3 asks); ``payload``;
  ``error`` (``code``, ``description``, ``details``: CALLERROR only);
- ``raw``: the message text exactly as sent, when ghostcap kept all of it (the WebSocket decoder keeps a
  message's first ``TEXT_EXCERPT_CHARS`` characters) and when it shows no secret: a record whose payload was
  redacted has no ``raw`` (it would show what the payload hides) and says ``meta.redacted``;
- ``meta`` (ghostcap's extensions, as the format asks): ``frame`` (the Wireshark frame number).

Records are grouped by charger (the report's chargers, in the report's order), in capture order within each, so
that the format's correlation rule (a response answers the latest unanswered CALL with its id in the other
direction) pairs them as ghostcap did. What the format cannot carry is left out and counted (``left_out``):
OCPP 2.1 SEND and CALLRESULTERROR messages, text that is not OCPP-J, a time outside RFC 3339's years.

Redaction is the reports' (``analyzer.redaction``): idTokens and secrets hidden unless ``show_tokens``.
No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from analyzer.decoders.websocket import TEXT_EXCERPT_CHARS
from analyzer.engine import Analysis
from analyzer.events.base import Event
from analyzer.events.ocpp import OcppCall, OcppCallError, OcppCallResult, OcppMessage, OcppUnparsed, redact_tokens
from analyzer.events.websocket import WsMessage
from analyzer.jsontext import finite
from analyzer.timefmt import OUT_OF_RANGE, iso_utc

SCHEMA_VERSION = "1.1"
SPECIFICATION = "https://github.com/open-ocpp-trace/specification"
DIRECTIONS = ("cp-to-csms", "csms-to-cp")
MESSAGE_TYPE_NUMBERS = {"CALL": 2, "CALLRESULT": 3, "CALLERROR": 4}

__all__ = ["SCHEMA_VERSION", "SPECIFICATION", "TEXT_EXCERPT_CHARS", "Trace", "trace"]


@dataclass(slots=True)
class Trace:
    """``records`` in trace order; ``left_out``: what the format cannot carry, by reason, with counts."""

    records: list[dict[str, Any]] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.left_out[reason] = self.left_out.get(reason, 0) + 1

    def lines(self) -> Iterator[str]:
        """The trace as JSONL text, one record per line (strict JSON, as every JSON ghostcap writes)."""
        from analyzer.jsontext import dumps

        for r in self.records:
            yield dumps(r, separators=(",", ":")) + "\n"


def trace(analysis: Analysis, show_tokens: bool = False) -> Trace:
    """The Open OCPP Trace of every charger's OCPP messages in ``analysis``."""
    out = Trace()
    for r in analysis.results:
        ch = r.charger
        texts = _full_texts(ch.events)
        for e in ch.events:
            if isinstance(e, OcppUnparsed):
                out.skip("messages that are not OCPP-J")
            elif isinstance(e, OcppMessage):
                record = _record(e, ch.station_id, ch.ocpp_version, texts, show_tokens)
                if isinstance(record, str):
                    out.skip(record)
                else:
                    out.records.append(record)
    return out


def _record(
    e: OcppMessage,
    station_id: str | None,
    ocpp_version: str | None,
    texts: dict[tuple[int | None, int, int | None], list[str]],
    show_tokens: bool,
) -> dict[str, Any] | str:
    """The record of one message, or why it has none."""
    if isinstance(e, OcppCall):
        kind = "CALL"
    elif isinstance(e, OcppCallResult):
        kind = "CALLRESULT"
    elif isinstance(e, OcppCallError):
        kind = "CALLERROR"
    else:
        return f"OCPP 2.1 {e.kind.removeprefix('ocpp.').replace('_', ' ').upper().replace(' ', '')} messages"
    stamp = iso_utc(e.ts_ns)
    if stamp is None or stamp.startswith(OUT_OF_RANGE):
        return "messages whose capture time is out of range"
    rec: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION, "timestamp": stamp}
    version = e.version or ocpp_version
    if version:
        rec["ocppVersion"] = version
    rec["transport"] = "json"
    if station_id is not None:
        rec["chargePointId"] = station_id
    payload = getattr(e, "payload", None)
    connector = payload.get("connectorId") if isinstance(payload, dict) and kind == "CALL" else None
    if type(connector) is int and connector >= 0:
        rec["connectorId"] = connector
    rec["direction"] = DIRECTIONS[1 if e.direction else 0]
    rec["messageType"] = kind
    rec["messageId"] = e.unique_id
    action = getattr(e, "action", None)
    if action is not None:
        rec["action"] = action
    hide = (lambda v: v) if show_tokens else redact_tokens
    if isinstance(e, OcppCallError):
        error: dict[str, Any] = {"code": e.error_code, "description": e.error_description}
        details = finite(hide(e.error_details))
        if e.error_details is not None:
            error["details"] = details
        shown: Any = [4, e.unique_id, e.error_code, e.error_description, details]
        redacted = details != finite(e.error_details)
        rec["error"] = error
    else:
        shown_payload = finite(hide(payload))
        rec["payload"] = shown_payload
        redacted = shown_payload != finite(payload)
        shown = [MESSAGE_TYPE_NUMBERS[kind], e.unique_id, *([action] if kind == "CALL" else []), shown_payload]
    raw = _take_text(texts, e, shown)
    if raw is not None and not redacted:
        rec["raw"] = raw
    rec["meta"] = {"frame": e.frame, **({"redacted": True} if redacted else {})}
    return rec


def _full_texts(events: list[Event]) -> dict[tuple[int | None, int, int | None], list[str]]:
    """The text of every WebSocket message kept whole (``text_excerpt`` holds all of it), by (flow, frame,
    direction), in capture order."""
    out: dict[tuple[int | None, int, int | None], list[str]] = {}
    for e in events:
        if not isinstance(e, WsMessage) or e.opcode != "text" or e.partial or e.truncated_by_cap:
            continue
        if e.inflate_error is not None or e.size is None or len(e.text_excerpt.encode("utf-8", "replace")) != e.size:
            continue
        out.setdefault((e.flow_id, e.frame, e.direction), []).append(e.text_excerpt)
    return out


def _take_text(
    texts: dict[tuple[int | None, int, int | None], list[str]], e: OcppMessage, shown: list[Any]
) -> str | None:
    """The kept text of ``e``'s WebSocket message, if it decodes to exactly what the record shows (``shown``:
    the OCPP-J array the record decomposes); taken from ``texts`` so that it is used once."""
    candidates = texts.get((e.flow_id, e.frame, e.direction), [])
    for i, text in enumerate(candidates):
        try:
            frame = json.loads(text)
        except (ValueError, RecursionError):
            continue
        if isinstance(frame, list) and frame[:2] == shown[:2]:
            del candidates[i]
            return text if frame == shown else None
    return None
