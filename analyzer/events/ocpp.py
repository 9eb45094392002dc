"""OCPP-J events: the RPC messages of one WebSocket connection, CALLs never answered, codes a charger reports.

Every message event carries ``version`` (``"1.6"``, ``"2.0.1"``, ``"2.1"``: the OCPP schema set the message was
read and validated against; ``None`` when unknown), ``unique_id`` (the RPC message id as sent), ``size`` (bytes of
the WebSocket message), ``violations`` (the first JSON-schema error of the payload, as ``SchemaViolation``s; ``()``
when the payload is valid or when no schema was applied) and ``validated`` (a schema was applied).
``direction`` 0 is charger (WebSocket client) → CSMS, 1 is CSMS → charger.

CALL, CALLRESULT and SEND keep their payload as text, ``payload_text`` (the payload's JSON text as sent, without
the whitespace around it: one string costs less memory, and less to pickle, than the objects of the parsed value),
and ``payload`` parses it on each read (``json_loads``): the value the decoder read, with the same types and key
order. It may hold idTokens and passwords: render it through ``redact_tokens`` (the policy: ``analyzer.redaction``).
Events compare (``==``) by their fields, so two messages whose payloads differ only in their JSON spelling
(whitespace, escapes) are different events. CALL, CALLRESULT and SEND events are hashable; CALLERROR and
CALLRESULTERROR events whose ``error_details`` is a dict or list are not (``hash()`` raises ``TypeError``).
"""

from __future__ import annotations

import json
from dataclasses import field
from typing import Any, ClassVar

from analyzer.events.base import Event, event
from analyzer.jsontext import parse_float
from analyzer.redaction import (
    REDACTED,
    SECRET_CONFIG_KEYS,
    SECRET_NAME,
    TOKEN_KEYS,
    redact_text,
    redact_tokens,
    secret_config_key,
)

# The redaction policy (which fields and configuration keys hold secrets, and what replaces them) is
# ``analyzer.redaction``'s; re-exported here beside the events whose payloads it applies to.
__all__ = [
    "REDACTED",
    "SECRET_CONFIG_KEYS",
    "SECRET_NAME",
    "TOKEN_KEYS",
    "redact_text",
    "redact_tokens",
    "secret_config_key",
]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_JSON = json.JSONDecoder(parse_constant=_reject_constant, parse_float=parse_float)
json_scan = _JSON.scan_once  # (text, index) -> (value, end); what JSONDecoder.decode calls after skipping whitespace


def json_loads(text: str) -> Any:
    """``json.loads(text, parse_constant=_reject_constant, parse_float=parse_float)``, the same value or error,
    with one decoder made once (``json.loads`` with options builds a ``JSONDecoder`` on every call): how OCPP-J
    messages and the payloads events keep are read (no ``NaN``/``Infinity``; a number too large for a double is a
    ``BigNumber``).

    Text that starts with ``[`` and whose value ends the text (an OCPP-J frame as sent) is scanned once, without
    ``decode``'s whitespace matches: ``decode`` would scan it from 0 the same way (same value, same error)."""
    if text[:1] == "[":
        try:
            value, end = json_scan(text, 0)
        except StopIteration:
            pass  # no value at 0 (not after "["): decode raises its own error below
        else:
            if end == len(text):
                return value
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _JSON.decode(text)


def _clean(text: str, limit: int = 40) -> str:
    """``text`` for a one-line summary: at most ``limit`` characters, non-printable characters escaped."""
    cut = text[:limit]
    if not cut.isprintable():
        cut = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in cut)
    return cut + ("…" if len(text) > limit else "")


def _who(direction: int | None) -> str:
    return {0: "charger→CSMS ", 1: "CSMS→charger "}.get(direction, "") if direction is not None else ""


def _ms(ns: int | None) -> str:
    return "" if ns is None else f" after {ns / 1e6:.1f} ms"


@event(kw_only=False)
class SchemaViolation:
    """One way a payload breaks its OCPP JSON schema.

    Fields: ``path`` (dotted field path inside the payload, list indices in brackets: ``chargingStation.vendorName``,
    ``meterValue[0].sampledValue[1].value``; ``""`` for the payload itself; paths starting with ``@`` name an
    element of the RPC frame rather than the payload: ``@uniqueId``, ``@errorDescription``, ``@errorDetails``);
    ``message`` (``"is required"``, ``"is not one of ['Accepted', 'Pending', 'Rejected']"``, ``"is longer than 20
    characters"``, ``"is not of type 'string'"``, ``"is not allowed (additional property)"``, ``"is not a valid
    date-time"``, ...: never the offending value); ``rule`` (the JSON-schema keyword: ``required``, ``enum``,
    ``maxLength``, ``type``, ``additionalProperties``, ``format``, ...).
    """

    path: str
    message: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path or '(payload)'} {self.message}"


def _violations(v: tuple[SchemaViolation, ...]) -> str:
    if not v:
        return ""
    more = f" (+{len(v) - 1} more)" if len(v) > 1 else ""
    return f"; schema: {_clean(str(v[0]), 80)}{more}"


@event
class OcppMessage(Event):
    """Fields every OCPP-J RPC message event has (abstract: never instantiated itself). See the module docstring."""

    kind: ClassVar[str] = "ocpp.message"
    layer: ClassVar[str] = "ocpp"
    version: str | None
    unique_id: str
    size: int
    violations: tuple[SchemaViolation, ...] = ()
    validated: bool = False


class PayloadText:
    """What the events that keep their payload as JSON text (``payload_text``) share: ``payload``, parsed on each
    read (never kept: that would bring back the memory the text saves)."""

    __slots__ = ()
    payload_text: str

    @property
    def payload(self) -> Any:
        """The payload's JSON value, exactly as the decoder read it: a new object on each read."""
        return json_loads(self.payload_text)


# the metadata of ``payload_text``: reports show the field as ``payload``, parsed (``report.timeline_out``)
_SHOWN_AS_PAYLOAD = {"shown_as": "payload"}


@event
class OcppCall(OcppMessage, PayloadText):
    """A CALL (message type 2): ``[2, uniqueId, action, payload]``.

    Fields: ``action`` (as sent, case kept); ``payload_text`` (read as ``payload``); ``duplicate_of_frame`` (frame
    of an earlier CALL with the same unique id in the same direction on this connection, or ``None``).
    ``validated`` is ``False`` with a known ``version`` when that version has no such action.
    """

    kind: ClassVar[str] = "ocpp.call"
    action: str
    payload_text: str = field(metadata=_SHOWN_AS_PAYLOAD)
    duplicate_of_frame: int | None = None

    def summary(self) -> str:
        dup = f" (id reused from frame {self.duplicate_of_frame})" if self.duplicate_of_frame is not None else ""
        return (
            f"{_who(self.direction)}CALL {_clean(self.action)} [{_clean(self.unique_id)}]{dup}"
            f"{_violations(self.violations)}"
        )


PAIRED = "paired"
UNKNOWN_ID = "unknown_id"  # no CALL with this id is waiting in the other direction (never seen, or evicted)
ALREADY_ANSWERED = "already_answered"  # the CALL with this id was answered before


@event
class OcppCallResult(OcppMessage, PayloadText):
    """A CALLRESULT (message type 3): ``[3, uniqueId, payload]``.

    Fields: ``action`` (of the CALL it answers; ``None`` when unpaired); ``payload_text`` (read as ``payload``);
    ``pairing`` (``"paired"``,
    ``"unknown_id"``: no CALL with this id awaits an answer in the other direction, ``"already_answered"``: that
    CALL was answered before); ``call_frame`` and ``latency_ns`` (frame of the CALL, and this message's capture time
    minus the CALL's; ``None`` when unpaired); ``status`` (the payload's ``status`` string, else
    ``idTagInfo.status`` / ``idTokenInfo.status``, else ``None``).
    """

    kind: ClassVar[str] = "ocpp.call_result"
    action: str | None
    payload_text: str = field(metadata=_SHOWN_AS_PAYLOAD)
    pairing: str = PAIRED
    call_frame: int | None = None
    latency_ns: int | None = None
    status: str | None = None

    def summary(self) -> str:
        what = _clean(self.action) if self.action is not None else f"({self.pairing.replace('_', ' ')})"
        status = f" {_clean(self.status)}" if self.status is not None else ""
        return (
            f"{_who(self.direction)}CALLRESULT {what} [{_clean(self.unique_id)}]{status}{_ms(self.latency_ns)}"
            f"{_violations(self.violations)}"
        )


@event
class OcppCallError(OcppMessage):
    """A CALLERROR (message type 4): ``[4, uniqueId, errorCode, errorDescription, errorDetails]``.

    Fields: ``action`` (of the CALL it answers; ``None`` when unpaired); ``error_code`` (as sent);
    ``error_code_canonical`` (``FormationViolation`` → ``FormatViolation``, ``OccurenceConstraintViolation`` →
    ``OccurrenceConstraintViolation``, others as sent); ``error_description`` (as sent; ``""`` when it is not a
    string, with an ``@errorDescription`` violation); ``error_details`` (as sent); ``pairing``, ``call_frame``,
    ``latency_ns`` as in ``OcppCallResult``.
    """

    kind: ClassVar[str] = "ocpp.call_error"
    action: str | None
    error_code: str
    error_code_canonical: str
    error_description: str = ""
    error_details: Any = None
    pairing: str = PAIRED
    call_frame: int | None = None
    latency_ns: int | None = None

    def summary(self) -> str:
        what = _clean(self.action) if self.action is not None else f"({self.pairing.replace('_', ' ')})"
        code = _clean(self.error_code)
        if self.error_code_canonical != self.error_code:
            code += f" (= {_clean(self.error_code_canonical)})"
        return (
            f"{_who(self.direction)}CALLERROR {code} to {what} [{_clean(self.unique_id)}]{_ms(self.latency_ns)}"
            f"{_violations(self.violations)}"
        )


@event
class OcppCallResultError(OcppMessage):
    """A CALLRESULTERROR (message type 5, OCPP 2.1): the sender found a CALLRESULT it received invalid.

    ``[5, uniqueId, errorCode, errorDescription, errorDetails]``; ``unique_id`` is that CALLRESULT's. Fields:
    ``error_code``, ``error_code_canonical``, ``error_description``, ``error_details`` as in ``OcppCallError``;
    ``action`` (of the CALL the CALLRESULT answered, when known); ``result_frame`` (frame of the CALLRESULT with
    this id last sent in the other direction, or ``None``).
    """

    kind: ClassVar[str] = "ocpp.call_result_error"
    error_code: str
    error_code_canonical: str
    error_description: str = ""
    error_details: Any = None
    action: str | None = None
    result_frame: int | None = None

    def summary(self) -> str:
        what = f" to {_clean(self.action)} result" if self.action is not None else ""
        return (
            f"{_who(self.direction)}CALLRESULTERROR {_clean(self.error_code)}{what} [{_clean(self.unique_id)}]"
            f"{_violations(self.violations)}"
        )


@event
class OcppSend(OcppMessage, PayloadText):
    """A SEND (message type 6, OCPP 2.1): an unconfirmed message, ``[6, uniqueId, action, payload]``; never answered.

    Fields: ``action``; ``payload_text`` (read as ``payload``).
    """

    kind: ClassVar[str] = "ocpp.send"
    action: str
    payload_text: str = field(metadata=_SHOWN_AS_PAYLOAD)

    def summary(self) -> str:
        return (
            f"{_who(self.direction)}SEND {_clean(self.action)} [{_clean(self.unique_id)}]{_violations(self.violations)}"
        )


@event
class OcppUnparsed(Event):
    """A WebSocket message on an OCPP connection that is not a valid OCPP-J RPC frame.

    Fields: ``reason`` (plain text: ``"invalid UTF-8 at byte 12"``, ``"invalid JSON: ..."``, ``"JSON nested deeper
    than 64 levels"``, ``"not a JSON array"``, ``"unknown message type 9"``, ``"message type 6 (SEND) is not defined
    in OCPP 1.6"``, ``"CALL has 3 elements, expected 4"``, ``"unique id is not a string"``, ``"binary frame"``,
    ...); ``excerpt`` (the first 120 characters of the message, decoded as UTF-8 with replacement, idTag/idToken
    string values replaced by ``«redacted»``); ``message_type`` (element 0 when it is an integer, else ``None``);
    ``unique_id`` (element 1 when it is a string, else ``None``); ``version``; ``size`` (bytes); ``text`` (it came
    in a text frame).
    """

    kind: ClassVar[str] = "ocpp.unparsed"
    layer: ClassVar[str] = "ocpp"
    reason: str
    excerpt: str = ""
    message_type: int | None = None
    unique_id: str | None = None
    version: str | None = None
    size: int = 0
    text: bool = True

    def summary(self) -> str:
        return f"{_who(self.direction)}not OCPP-J: {_clean(self.reason, 100)}"


@event
class OcppUnanswered(Event):
    """A CALL that had neither CALLRESULT nor CALLERROR when the connection (or the capture) ended.

    ``frame``, ``ts_ns`` and ``direction`` are the CALL's. Fields: ``action``; ``unique_id``; ``version``;
    ``waited_ns`` (capture time of the end minus the CALL's); ``close_frame`` (frame of the end, 0 when unknown).
    Whether that is a timeout is for the diagnosis to decide.
    """

    kind: ClassVar[str] = "ocpp.unanswered"
    layer: ClassVar[str] = "ocpp"
    action: str
    unique_id: str
    version: str | None = None
    waited_ns: int = 0
    close_frame: int = 0

    def summary(self) -> str:
        return (
            f"{_who(self.direction)}CALL {_clean(self.action)} [{_clean(self.unique_id)}] unanswered "
            f"{self.waited_ns / 1e9:.3f} s until the connection ended"
        )


@event
class OcppReportedCode(Event):
    """A code the charger reports about itself (one event per code; a field listing several gives several events).

    Fields: ``cx_code`` (the ChargeX MREC code, ``"CX002"``, or ``None`` when the code is not or does not map to
    one); ``source`` (``"StatusNotification.vendorErrorCode"``, ``"StatusNotification.errorCode"`` (1.6 errorCode
    other than NoError with no vendorErrorCode), ``"com.evgo.mrec"`` (EVgo code in vendorErrorCode),
    ``"NotifyEvent.techCode"``); ``code`` (the code as sent: ``"CX002"``, ``"A000"``, ``"GroundFailure"``,
    a vendor's own code); ``error_code`` (1.6 ``errorCode``); ``vendor_id``; ``connector_id``; ``evse_id``;
    ``status`` (1.6 ``status`` / 2.x ``connectorStatus``); ``description`` (1.6 ``info``, the EVgo ``info`` entry at
    the code's position, 2.x ``techInfo``); ``cleared`` (2.x eventData ``cleared``); ``action``; ``unique_id``;
    ``version``.
    """

    kind: ClassVar[str] = "ocpp.reported_code"
    layer: ClassVar[str] = "ocpp"
    cx_code: str | None
    source: str
    code: str
    error_code: str | None = None
    vendor_id: str | None = None
    connector_id: int | None = None
    evse_id: int | None = None
    status: str | None = None
    description: str | None = None
    cleared: bool | None = None
    action: str = ""
    unique_id: str = ""
    version: str | None = None

    def summary(self) -> str:
        from analyzer.decoders.mrec import MREC_NAMES  # a table: the ChargeX name beside the code

        code = _clean(self.code)
        cx = f"{self.cx_code} {MREC_NAMES[self.cx_code]}" if self.cx_code in MREC_NAMES else self.cx_code
        if self.cx_code is None:
            head = f"charger reports {code}"
        elif code == self.cx_code:
            head = f"charger reports {cx}"
        else:
            head = f"charger reports {cx} ({code})"
        where = []
        if self.evse_id is not None:
            where.append(f"evse {self.evse_id}")
        if self.connector_id is not None:
            where.append(f"connector {self.connector_id}")
        if self.cleared:
            where.append("cleared")
        return f"{head} via {self.source}" + (f", {', '.join(where)}" if where else "")
