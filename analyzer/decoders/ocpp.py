"""OCPP-J decoder (sans-IO): the WebSocket messages of one connection → RPC events, paired and schema-checked.

The WebSocket decoder hands over each complete, decompressed message. OCPP-J frames are JSON arrays:
``[2, id, action, payload]`` CALL, ``[3, id, payload]`` CALLRESULT, ``[4, id, code, description, details]`` CALLERROR,
and in OCPP 2.1 ``[5, id, code, description, details]`` CALLRESULTERROR and ``[6, id, action, payload]`` SEND.

Version (``OcppDecoder.version``) comes from the negotiated subprotocol: ``ocpp1.6`` → 1.6, ``ocpp2.0.1`` → 2.0.1,
``ocpp2.1`` → 2.1; ``ocpp2.0`` and ``ocpp1.6j`` (and any other spelling differing in case or spaces) are read with
the 2.0.1 / 1.6 schemas, which a ``DecodeAnomaly`` ``ocpp.version_assumed`` says on the first message; another
``ocpp*`` subprotocol (``ocpp1.5``, ``ocpp2.2``) gives version ``None``, no validation, and ``ocpp.version_unknown``.

Without a subprotocol (``None``: none was negotiated, or the capture started after the upgrade) the connection is
recognised by content: messages are ignored until one is a JSON array whose first element is 2..6 and second a
string (then ``ocpp.detected_by_content``, and every later message is decoded, invalid ones as ``OcppUnparsed``).
Choice made for validation in that mode: a message is validated only when its action's schema (of that kind:
request, response, send) exists in exactly one version, and its ``version`` is that one; otherwise ``version`` is
``None`` and nothing is validated, because guessing wrongly would invent violations (validating a 2.0.1
BootNotification against the 1.6 schema is a known field bug, lbbrhzn/ocpp #2008).

Pairing: a response (type 3/4) in direction d answers the CALL with the same unique id sent in direction 1−d and
still waiting; if several CALLs with that id wait (a reused id), the latest one is answered. A response that matches
none is ``pairing="unknown_id"`` (or ``"already_answered"`` when that id was answered before). At most
``MAX_PENDING`` CALLs wait per direction; beyond that the oldest is forgotten (``ocpp.pending_limit``, once). A CALL
reusing an id seen in the same direction (among the last ``MAX_REMEMBERED``) carries ``duplicate_of_frame``.

Hostile input never raises: invalid UTF-8, invalid JSON (including ``NaN``/``Infinity``, which are not JSON),
nesting deeper than ``MAX_DEPTH`` (Python's parser raises ``RecursionError`` near 1000 levels; OCPP payloads nest
about 6), wrong arity or element types, binary frames all become ``OcppUnparsed``. Events per message are bounded
(one message event, at most ``MAX_CLOCK_SAMPLES`` ``ClockSample``s and ``MAX_REPORTED_CODES`` ``OcppReportedCode``s,
at most three anomalies).
"""

from __future__ import annotations

import datetime
import re
from typing import Any, ClassVar, NamedTuple

from analyzer.budgets import OCPP_IDS_REMEMBERED, OCPP_TIMESTAMP_LONGEST, OCPP_TIMESTAMPS
from analyzer.decoders import mrec
from analyzer.decoders.ocpp_schema import REQUEST, RESPONSE, SEND, validator, versions_with
from analyzer.events.base import DecodeAnomaly, Event
from analyzer.events.clock import ClockSample
from analyzer.events.ocpp import (
    ALREADY_ANSWERED,
    PAIRED,
    UNKNOWN_ID,
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
    json_scan,
    redact_text,
)

CALL, CALLRESULT, CALLERROR, CALLRESULTERROR, SEND_TYPE = 2, 3, 4, 5, 6
TYPE_NAMES = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR", 5: "CALLRESULTERROR", 6: "SEND"}
ARITY = {2: 4, 3: 3, 4: 5, 5: 5, 6: 4}
TYPES_BY_VERSION: dict[str | None, frozenset[int]] = {
    "1.6": frozenset({2, 3, 4}),
    "2.0.1": frozenset({2, 3, 4}),
    "2.1": frozenset({2, 3, 4, 5, 6}),
    None: frozenset({2, 3, 4, 5, 6}),
}

# Every CALLERROR code of OCPP-J 1.6 (Table 7 + errata), 2.0.1 (Part 4 Table 8) and 2.1 (Part 4 Table 9), with the
# 1.6 spellings that the errata keep ("known issues that will not be fixed") and that 2.x stacks still send.
ERROR_CODES = frozenset(
    {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "FormatViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "OccurrenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
        "MessageTypeNotSupported",
        "RpcFrameworkError",
    }
)
CANONICAL_ERROR_CODES = {
    "FormationViolation": "FormatViolation",
    "OccurenceConstraintViolation": "OccurrenceConstraintViolation",
}

SUBPROTOCOL_VERSIONS = {"ocpp1.6": "1.6", "ocpp1.6j": "1.6", "ocpp2.0": "2.0.1", "ocpp2.0.1": "2.0.1", "ocpp2.1": "2.1"}

MAX_PENDING = 1024  # waiting CALLs per direction
MAX_REMEMBERED = OCPP_IDS_REMEMBERED  # ids remembered per direction (duplicates, answered CALLs, sent CALLRESULTs)
MAX_DEPTH = 64  # JSON nesting accepted
MAX_CLOCK_SAMPLES = 8  # per message
MAX_REPORTED_CODES = 64  # per message
MAX_UNIQUE_ID = 36  # OCPP-J: the message id is at most 36 characters
MAX_ERROR_DESCRIPTION = 255  # OCPP-J 2.x
EXCERPT = 120

# CALL actions whose payload has the sender's clock in top-level fields
_CALL_TIME_FIELDS: dict[str, tuple[str, ...]] = {
    "StatusNotification": ("timestamp",),
    "StartTransaction": ("timestamp",),
    "StopTransaction": ("timestamp",),
    "TransactionEvent": ("timestamp",),
    "SecurityEventNotification": ("timestamp",),
    "NotifyEvent": ("generatedAt",),
    "NotifyReport": ("generatedAt",),
    "NotifyMonitoringReport": ("generatedAt",),
    "NotifyCustomerInformation": ("generatedAt",),
}
# ... as (field, ClockSample source) pairs
_CALL_TIME_SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    action: tuple((field, f"ocpp.{action}.{field}") for field in fields) for action, fields in _CALL_TIME_FIELDS.items()
}
# responses with currentTime, by the action of their CALL: the ClockSample source
_RESULT_TIME_ACTIONS = {action: f"ocpp.{action}Response.currentTime" for action in ("BootNotification", "Heartbeat")}
_CODE_ACTIONS = frozenset({"StatusNotification", "NotifyEvent"})  # CALLs whose payload may report codes

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?", re.ASCII
)
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()


_TIMESTAMPS: dict[str, int | None] = {}  # ``parse_timestamp_ns``'s answers, by text (see ``OCPP_TIMESTAMPS``)
_UNSEEN = object()


def parse_timestamp_ns(text: str) -> int | None:
    """``read_timestamp_ns(text)``, remembered: a capture's chargers send the same few texts again and again (a
    gateway capture of 300 chargers: 12,310 timestamps, 942 distinct). At most ``OCPP_TIMESTAMPS`` texts of at most
    ``OCPP_TIMESTAMP_LONGEST`` characters are remembered (emptied when full); a longer text is parsed each time."""
    value = _TIMESTAMPS.get(text, _UNSEEN)
    if value is _UNSEEN:
        value = read_timestamp_ns(text)
        if len(text) <= OCPP_TIMESTAMP_LONGEST and type(text) is str:
            if len(_TIMESTAMPS) >= OCPP_TIMESTAMPS:
                _TIMESTAMPS.clear()
            _TIMESTAMPS[text] = value
    return value  # type: ignore[return-value]


def read_timestamp_ns(text: str) -> int | None:
    """ISO 8601 / RFC 3339 date-time → ns since the epoch (negative before 1970), or ``None`` when it is not one.

    Accepted: ``YYYY-MM-DDThh:mm:ss`` (``T``, ``t`` or a space), an optional fraction (``.`` or ``,``; digits beyond
    nanoseconds are dropped), and ``Z``, ``±hh:mm`` or ``±hhmm``; without an offset the time is read as UTC (OCPP
    requires UTC). Calendar dates are checked (``2023-02-29`` is refused); second 60 (leap second) is accepted.
    Integer arithmetic only: ``"1970-01-01T00:00:00.000Z"`` → 0, ``"2000-01-01T00:00:05Z"`` → 946684805000000000.
    """
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    year, month, day, hh, mm, ss, frac, _, sign, oh, om = m.groups()
    hour, minute, second = int(hh), int(mm), int(ss)
    if hour > 23 or minute > 59 or second > 60:
        return None
    try:
        days = datetime.date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None
    nanos = int((frac + "000000000")[:9]) if frac else 0
    offset = 0
    if sign:
        off_h, off_m = int(oh), int(om)
        if off_h > 23 or off_m > 59:
            return None
        offset = (off_h * 3600 + off_m * 60) * (1 if sign == "+" else -1)
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    return seconds * 1_000_000_000 + nanos


def version_for(subprotocol: str | None) -> tuple[str | None, str | None]:
    """(schema version, note) for a negotiated subprotocol. The note says when the version is assumed or unknown."""
    if subprotocol is None:
        return None, None
    norm = subprotocol.strip().lower()
    version = SUBPROTOCOL_VERSIONS.get(norm)
    if version is None:
        return None, f"subprotocol {subprotocol!r} is not an OCPP version with schemas: messages are not validated"
    if norm != "ocpp" + version or subprotocol != norm:
        return version, f"subprotocol {subprotocol!r} is read with the OCPP {version} schemas"
    return version, None


def ocpp_message_factory(flow_id: int, subprotocol: str | None) -> OcppDecoder | None:
    """A decoder for a WebSocket connection whose subprotocol starts with ``ocpp`` (any case) or is ``None``."""
    if subprotocol is None or subprotocol.strip().lower().startswith("ocpp"):
        return OcppDecoder(flow_id, subprotocol)
    return None


class _Call(NamedTuple):
    frame: int
    ts_ns: int
    action: str
    unique_id: str
    version: str | None  # event version
    schema_version: str | None  # version the CALL was validated with (its response uses it too)


def _json_array(data: bytes, text: bool) -> tuple[list[Any] | None, str]:
    """(the message as a non-empty JSON array, its text), or (``None``, why it is not one)."""
    if not text:
        return None, "binary frame"
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, f"invalid UTF-8 at byte {e.start}"
    try:
        msg = json_loads(s)
    except RecursionError:
        return None, "JSON nested too deeply to parse"
    except ValueError as e:  # json.JSONDecodeError, NaN/Infinity, integers over Python's digit limit
        return None, f"invalid JSON: {str(e)[:100]}"
    # nesting deeper than MAX_DEPTH needs that many brackets in the text: counting them is cheap, then the nesting
    # of the text's brackets (its strings left out) bounds the value's; walking the value is the slow last check
    if (
        isinstance(msg, dict | list)
        and s.count("[") + s.count("{") > MAX_DEPTH
        and _text_depth(data, MAX_DEPTH) > MAX_DEPTH
        and _too_deep(msg, MAX_DEPTH)
    ):
        return None, f"JSON nested deeper than {MAX_DEPTH} levels"
    if not isinstance(msg, list):
        return None, f"not a JSON array (a JSON {_json_type(msg)})"
    if not msg:
        return None, "empty JSON array"
    return msg, s


_JSON_WS = " \t\n\r"
_SKIP_WS = re.compile(r"[ \t\n\r]*")


def _payload_text(s: str, msg: list[Any]) -> str:
    """The text of the last element of ``msg`` (an RPC frame's payload), ``msg`` being what ``json_loads`` read
    from ``s``: from its first character to its last, the whitespace around it left out."""
    end = len(s.rstrip(_JSON_WS)) - 1  # the array's "]"
    while s[end - 1] in _JSON_WS:
        end -= 1
    return s[_payload_start(s, msg) : end]


def _payload_start(s: str, msg: list[Any]) -> int:
    """Where the payload's text starts in ``s`` (see ``_payload_text``).

    A frame as most peers send it, ``[2,"id","Action",{...}]``, is read by position. ``s[2]`` is a comma only
    after a one-character first element (``[2,``). A string before the payload whose value holds no quote, that
    starts right after a comma and has a quote and a comma where its value would end if sent without escapes, was
    sent without escapes: an escape makes the text longer than the value, so a quote there would be an escaped
    one, a quote in the value. Any other frame (whitespace, escapes) is walked element by element with the scanner
    that read it."""
    pos = 3
    if s[2] == ",":
        for x in msg[1:-1]:  # the unique id, and the action of a CALL or SEND: strings (``_rpc_problem``)
            end = pos + len(x) + 1
            if s[pos] != '"' or s[end] != '"' or s[end + 1] != "," or '"' in x:
                break
            pos = end + 2
        else:
            return pos if s[pos] not in _JSON_WS else _SKIP_WS.match(s, pos).end()
    pos = _SKIP_WS.match(s).end() + 1  # after "["
    for _ in range(len(msg) - 1):  # the elements before the payload
        _, pos = json_scan(s, _SKIP_WS.match(s, pos).end())
        pos = _SKIP_WS.match(s, pos).end() + 1  # after ","
    return _SKIP_WS.match(s, pos).end()


def _validated(
    version: str | None, action: str, kind: str, payload: Any, frame_v: list[SchemaViolation]
) -> tuple[tuple[SchemaViolation, ...], bool]:
    """(the frame's and the payload's violations, whether a schema was applied)."""
    check = validator(version, action, kind) if version is not None else None
    if check is None:
        return tuple(frame_v), False
    return (*frame_v, *check(payload)), True


_ESCAPE = re.compile(rb"\\.", re.DOTALL)  # a JSON escape's backslash and the character after it
_BRACKETS = bytes.maketrans(b"{}", b"[]")  # the nesting does not depend on the kind of bracket
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')  # bytes to delete
_QUOTED = re.compile(rb'"[^"]*"')


def _text_depth(data: bytes, limit: int) -> int:
    """The deepest bracket nesting of valid JSON ``data`` (UTF-8), outside its strings, or ``limit + 1`` when it is
    deeper than ``limit``: never less than the nesting of the parsed value (a duplicate object key can drop a deep
    value the text has).

    Escapes go first (a backslash appears only in strings, always with the character it escapes); then all but
    brackets and quotes (a byte of a character that is not ASCII is never one of them), braces made brackets, in one
    ``bytes.translate`` (a table lookup per byte, where ``str.translate`` looks each character up in a dict). Two
    adjacent quotes are an empty string or two strings with no bracket between them: dropping them leaves every
    bracket inside or outside a string as it was, and leaves only the strings that hold brackets to remove. What
    is left nests as the value's containers do: each ``replace`` of ``[]`` removes the innermost ones, a level."""
    if b"\\" in data:
        data = _ESCAPE.sub(b"", data)
    structure = data.translate(_BRACKETS, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in structure:
        structure = _QUOTED.sub(b"", structure)
    depth = 0
    while structure and depth <= limit:
        structure = structure.replace(b"[]", b"")
        depth += 1
    return depth


def _too_deep(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        children = v.values() if isinstance(v, dict) else v
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _remember(table: dict[str, Any], key: str, value: Any) -> None:
    """``table[key] = value``, made its newest entry; past ``MAX_REMEMBERED`` entries the oldest goes (a plain dict
    keeps insertion order: an ``OrderedDict`` made and freed a link per entry, three per OCPP exchange)."""
    table.pop(key, None)
    table[key] = value
    if len(table) > MAX_REMEMBERED:
        del table[next(iter(table))]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _status(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    status = payload.get("status")
    if isinstance(status, str):
        return status
    for key in ("idTagInfo", "idTokenInfo"):
        info = payload.get(key)
        if isinstance(info, dict) and isinstance(info.get("status"), str):
            return str(info["status"])
    return None


def _excerpt(text: str) -> str:
    return redact_text(text[: EXCERPT * 16])[:EXCERPT]


class OcppDecoder:
    """Decodes the OCPP-J messages of one WebSocket connection (both directions); see the module docstring.

    ``OcppDecoder(flow_id, subprotocol)``: ``subprotocol`` as negotiated (``"ocpp1.6"``...), or ``None`` to detect
    OCPP-J by content. Attributes: ``version`` (schema version from the subprotocol, ``None`` if none or unknown),
    ``detected`` (OCPP-J has been seen on the connection).
    """

    name: ClassVar[str] = "ocpp"

    def __init__(self, flow_id: int, subprotocol: str | None) -> None:
        self.flow_id = flow_id
        self.subprotocol = subprotocol
        self.version, self._note = version_for(subprotocol)
        self._by_content = subprotocol is None
        self.detected = not self._by_content
        self._types = TYPES_BY_VERSION[self.version]
        self._pending: tuple[dict[str, list[_Call]], dict[str, list[_Call]]] = ({}, {})  # oldest first
        self._pending_count = [0, 0]
        # ``_remember``'s tables: the latest ids, oldest first
        self._seen_calls: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self._answered: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self._results: tuple[dict[str, tuple[int, str | None]], dict[str, tuple[int, str | None]]] = ({}, {})
        self._overflow_noted = False

    # -- MessageDecoder ------------------------------------------------------------------------------------------

    def message(self, *, direction: int, data: bytes, text: bool, frame: int, ts_ns: int) -> list[Event]:
        """One complete WebSocket message sent in ``direction`` (0 = charger → CSMS); never raises."""
        d = 1 if direction else 0
        out: list[Event] = []
        if self._note is not None:
            name = "ocpp.version_assumed" if self.version is not None else "ocpp.version_unknown"
            out.append(self._anomaly(name, self._note, d, frame, ts_ns))
            self._note = None
        msg, text_or_why = _json_array(data, text)
        if msg is None:
            return self._unparsed(out, text_or_why, d, data, text, frame, ts_ns)
        mtype = msg[0]
        uid = msg[1] if len(msg) > 1 else None
        if not self.detected:
            if type(mtype) is not int or mtype not in ARITY or not isinstance(uid, str):
                return out
            self.detected = True
            detail = "OCPP-J recognised by content on a connection without a negotiated subprotocol"
            out.append(self._anomaly("ocpp.detected_by_content", detail, d, frame, ts_ns))
        # JSON gives exactly ``int`` for an integer (``bool`` for true/false)
        if type(mtype) is not int:
            reason = f"message type is a JSON {_json_type(mtype)}, not an integer"
            return self._unparsed(out, reason, d, data, text, frame, ts_ns)
        reason = self._rpc_problem(msg, mtype, uid)
        if reason:
            return self._unparsed(out, reason, d, data, text, frame, ts_ns, mtype, uid)
        frame_v: list[SchemaViolation] = []
        if len(uid) > MAX_UNIQUE_ID:
            frame_v.append(SchemaViolation("@uniqueId", f"is longer than {MAX_UNIQUE_ID} characters", "maxLength"))
        size = len(data)
        if mtype == CALL or mtype == SEND_TYPE:
            payload_text = _payload_text(text_or_why, msg)
            self._call_or_send(out, mtype, d, uid, msg[2], msg[3], payload_text, frame_v, frame, ts_ns, size)
        elif mtype == CALLRESULT:
            self._result(out, d, uid, msg[2], _payload_text(text_or_why, msg), frame_v, frame, ts_ns, size)
        else:
            self._error(out, mtype, d, uid, msg[2], msg[3], msg[4], frame_v, frame, ts_ns, size)
        return out

    def _rpc_problem(self, msg: list[Any], mtype: int, uid: Any) -> str:
        """Why ``msg`` (message type ``mtype``) is not an OCPP-J RPC frame of this connection, or ``""``."""
        if mtype not in ARITY:
            shown = mtype if -(10**6) < mtype < 10**6 else "out of range"
            return f"unknown message type {shown}"
        if mtype not in self._types:
            return f"message type {mtype} ({TYPE_NAMES[mtype]}) is not defined in OCPP {self.version}"
        if len(msg) != ARITY[mtype]:
            return f"{TYPE_NAMES[mtype]} has {len(msg)} elements, expected {ARITY[mtype]}"
        if not isinstance(uid, str):
            return f"unique id is a JSON {_json_type(uid)}, not a string"
        if mtype in (CALL, SEND_TYPE) and not isinstance(msg[2], str):
            return f"action is a JSON {_json_type(msg[2])}, not a string"
        if mtype in (CALLERROR, CALLRESULTERROR) and not isinstance(msg[2], str):
            return f"error code is a JSON {_json_type(msg[2])}, not a string"
        return ""

    def _unparsed(
        self,
        out: list[Event],
        reason: str,
        d: int,
        data: bytes,
        text: bool,
        frame: int,
        ts_ns: int,
        mtype: Any = None,
        uid: Any = None,
    ) -> list[Event]:
        """``out`` with an ``OcppUnparsed`` for this message, once OCPP-J has been seen on the connection."""
        if not self.detected:
            return out
        excerpt = _excerpt(data[: EXCERPT * 16].decode("utf-8", "replace"))
        mt = _int(mtype)
        out.append(
            OcppUnparsed(
                ts_ns=ts_ns,
                frame=frame,
                flow_id=self.flow_id,
                direction=d,
                reason=reason,
                excerpt=excerpt,
                message_type=mt if mt is not None and -(2**31) <= mt < 2**31 else None,
                unique_id=_str(uid),
                version=self.version,
                size=len(data),
                text=text,
            )
        )
        return out

    def close(self, frame: int, ts_ns: int) -> list[Event]:
        """The connection ended at ``frame``/``ts_ns``: one ``OcppUnanswered`` per CALL still waiting, oldest first."""
        out: list[Event] = []
        for d, table in enumerate(self._pending):
            for calls in table.values():
                for c in calls:
                    out.append(
                        OcppUnanswered(
                            ts_ns=c.ts_ns,
                            frame=c.frame,
                            flow_id=self.flow_id,
                            direction=d,
                            action=c.action,
                            unique_id=c.unique_id,
                            version=c.version,
                            waited_ns=ts_ns - c.ts_ns,
                            close_frame=frame,
                        )
                    )
            table.clear()
        self._pending_count = [0, 0]
        out.sort(key=lambda e: (e.ts_ns, e.frame))
        return out

    # -- message types -------------------------------------------------------------------------------------------

    def _schema_version(self, action: str, kind: str) -> tuple[str | None, str | None]:
        """(event version, version to validate with) for ``action``'s ``kind``."""
        if not self._by_content:
            return self.version, self.version
        found = versions_with(action, kind)
        return (found[0], found[0]) if len(found) == 1 else (None, None)

    def _call_or_send(
        self,
        out: list[Event],
        mtype: int,
        d: int,
        uid: str,
        action: str,
        payload: Any,
        payload_text: str,
        frame_v: list[SchemaViolation],
        frame: int,
        ts_ns: int,
        size: int,
    ) -> None:
        kind = REQUEST if mtype == CALL else SEND
        version, schema_version = self._schema_version(action, kind)
        violations, validated = _validated(schema_version, action, kind, payload, frame_v)
        if mtype == SEND_TYPE:
            out.append(
                OcppSend(
                    ts_ns=ts_ns,
                    frame=frame,
                    flow_id=self.flow_id,
                    direction=d,
                    size=size,
                    version=version,
                    unique_id=uid,
                    action=action,
                    payload_text=payload_text,
                    violations=violations,
                    validated=validated,
                )
            )
            return
        seen = self._seen_calls[d]
        duplicate = seen.get(uid)
        _remember(seen, uid, frame)
        out.append(
            OcppCall(
                ts_ns=ts_ns,
                frame=frame,
                flow_id=self.flow_id,
                direction=d,
                size=size,
                version=version,
                unique_id=uid,
                action=action,
                payload_text=payload_text,
                violations=violations,
                validated=validated,
                duplicate_of_frame=duplicate,
            )
        )
        table = self._pending[d]
        table.setdefault(uid, []).append(_Call(frame, ts_ns, action, uid, version, schema_version))
        self._pending_count[d] += 1
        if self._pending_count[d] > MAX_PENDING:
            oldest_uid, calls = next(iter(table.items()))
            dropped = calls.pop(0)
            if not calls:
                del table[oldest_uid]
            self._pending_count[d] -= 1
            if not self._overflow_noted:
                self._overflow_noted = True
                detail = (
                    f"more than {MAX_PENDING} CALLs waiting in one direction: the oldest ({dropped.action}, "
                    f"frame {dropped.frame}) and any later overflow are no longer tracked"
                )
                out.append(self._anomaly("ocpp.pending_limit", detail, d, frame, ts_ns))
        if isinstance(payload, dict):
            self._clock_samples(out, action, payload, d, frame, ts_ns)
            if action in _CODE_ACTIONS:
                self._reported_codes(out, action, payload, uid, version, d, frame, ts_ns)

    def _pair(self, d: int, uid: str, frame: int) -> tuple[_Call | None, str]:
        """The CALL (sent in direction 1 − d) that a response in direction d with ``uid`` answers."""
        other = 1 - d
        calls = self._pending[other].get(uid)
        if calls:
            call = calls.pop()
            if not calls:
                del self._pending[other][uid]
            self._pending_count[other] -= 1
            _remember(self._answered[other], uid, frame)
            return call, PAIRED
        return None, ALREADY_ANSWERED if uid in self._answered[other] else UNKNOWN_ID

    def _result(
        self,
        out: list[Event],
        d: int,
        uid: str,
        payload: Any,
        payload_text: str,
        frame_v: list[SchemaViolation],
        frame: int,
        ts_ns: int,
        size: int,
    ) -> None:
        call, pairing = self._pair(d, uid, frame)
        if call is None:
            action = None
            version, schema_version = self.version, None
        else:
            action = call.action
            version, schema_version = call.version, call.schema_version
            if schema_version is None and self._by_content:
                version, schema_version = self._schema_version(action, RESPONSE)
        violations, validated = _validated(schema_version, action or "", RESPONSE, payload, frame_v)
        out.append(
            OcppCallResult(
                ts_ns=ts_ns,
                frame=frame,
                flow_id=self.flow_id,
                direction=d,
                size=size,
                version=version,
                unique_id=uid,
                action=action,
                payload_text=payload_text,
                violations=violations,
                validated=validated,
                pairing=pairing,
                call_frame=call.frame if call is not None else None,
                latency_ns=ts_ns - call.ts_ns if call is not None else None,
                status=_status(payload),
            )
        )
        _remember(self._results[d], uid, (frame, action))
        if action in _RESULT_TIME_ACTIONS and isinstance(payload, dict):
            self._clock(out, _RESULT_TIME_ACTIONS[action], payload.get("currentTime"), d, frame, ts_ns)

    def _error(
        self,
        out: list[Event],
        mtype: int,
        d: int,
        uid: str,
        code: str,
        description: Any,
        details: Any,
        frame_v: list[SchemaViolation],
        frame: int,
        ts_ns: int,
        size: int,
    ) -> None:
        if not isinstance(description, str):
            frame_v.append(SchemaViolation("@errorDescription", "is not of type 'string'", "type"))
            description = ""
        elif self.version not in (None, "1.6") and len(description) > MAX_ERROR_DESCRIPTION:
            frame_v.append(
                SchemaViolation("@errorDescription", f"is longer than {MAX_ERROR_DESCRIPTION} characters", "maxLength")
            )
        if not isinstance(details, dict):
            frame_v.append(SchemaViolation("@errorDetails", "is not of type 'object'", "type"))
        canonical = CANONICAL_ERROR_CODES.get(code, code)
        if mtype == CALLRESULTERROR:
            result = self._results[1 - d].get(uid)
            out.append(
                OcppCallResultError(
                    ts_ns=ts_ns,
                    frame=frame,
                    flow_id=self.flow_id,
                    direction=d,
                    size=size,
                    version=self.version,
                    unique_id=uid,
                    violations=tuple(frame_v),
                    error_code=code,
                    error_code_canonical=canonical,
                    error_description=description,
                    error_details=details,
                    action=result[1] if result is not None else None,
                    result_frame=result[0] if result is not None else None,
                )
            )
            return
        call, pairing = self._pair(d, uid, frame)
        version = self.version
        if call is not None and self._by_content:
            version = call.version
        out.append(
            OcppCallError(
                ts_ns=ts_ns,
                frame=frame,
                flow_id=self.flow_id,
                direction=d,
                size=size,
                version=version,
                unique_id=uid,
                violations=tuple(frame_v),
                action=call.action if call is not None else None,
                error_code=code,
                error_code_canonical=canonical,
                error_description=description,
                error_details=details,
                pairing=pairing,
                call_frame=call.frame if call is not None else None,
                latency_ns=ts_ns - call.ts_ns if call is not None else None,
            )
        )

    # -- facts inside payloads -----------------------------------------------------------------------------------

    def _clock(self, out: list[Event], source: str, raw: Any, d: int, frame: int, ts_ns: int) -> None:
        if not isinstance(raw, str):
            return
        value = parse_timestamp_ns(raw)
        if value is None:
            return
        out.append(
            ClockSample(
                ts_ns=ts_ns,
                frame=frame,
                flow_id=self.flow_id,
                direction=d,
                side="charger" if d == 0 else "csms",
                source=source,
                value_ns=value,
                raw=raw,
            )
        )

    def _clock_samples(
        self, out: list[Event], action: str, payload: dict[str, Any], d: int, frame: int, ts_ns: int
    ) -> None:
        for field, source in _CALL_TIME_SOURCES.get(action, ()):
            self._clock(out, source, payload.get(field), d, frame, ts_ns)
        if action == "MeterValues":
            values = payload.get("meterValue")
            if isinstance(values, list) and values and isinstance(values[0], dict):
                self._clock(out, "ocpp.MeterValues.meterValue.timestamp", values[0].get("timestamp"), d, frame, ts_ns)
        elif action == "NotifyEvent":
            items = payload.get("eventData")
            seen: set[str] = set()
            for item in items if isinstance(items, list) else ():
                if len(seen) >= MAX_CLOCK_SAMPLES - 1:
                    break
                raw = item.get("timestamp") if isinstance(item, dict) else None
                if isinstance(raw, str) and raw not in seen:
                    seen.add(raw)
                    self._clock(out, "ocpp.NotifyEvent.eventData.timestamp", raw, d, frame, ts_ns)

    def _reported_codes(
        self,
        out: list[Event],
        action: str,
        payload: dict[str, Any],
        uid: str,
        version: str | None,
        d: int,
        frame: int,
        ts_ns: int,
    ) -> None:
        base = {"ts_ns": ts_ns, "frame": frame, "flow_id": self.flow_id, "direction": d}
        base |= {"action": action, "unique_id": uid, "version": version}
        emitted = 0
        if action == "StatusNotification" and "errorCode" in payload:
            error_code = _str(payload.get("errorCode"))
            vendor_id = _str(payload.get("vendorId"))
            info = _str(payload.get("info"))
            vendor_code = _str(payload.get("vendorErrorCode"))
            evgo = vendor_id is not None and vendor_id.strip().lower() == mrec.EVGO_VENDOR_ID
            infos = info.split(",") if evgo and info is not None else []
            fields = {
                "error_code": error_code,
                "vendor_id": vendor_id,
                "connector_id": _int(payload.get("connectorId")),
                "status": _str(payload.get("status")),
            }
            tokens = mrec.split_codes(vendor_code) if vendor_code else []
            for i, token in enumerate(tokens[:MAX_REPORTED_CODES]):
                if evgo:
                    cx = mrec.evgo_cx_code(token) or mrec.cx_code(token)
                    source = mrec.EVGO_VENDOR_ID
                    description = infos[i].strip() if i < len(infos) else info
                else:
                    cx = mrec.cx_code(token)
                    source = "StatusNotification.vendorErrorCode"
                    description = info
                    if cx is None:
                        if error_code in (None, "NoError"):
                            continue  # a vendor's own code beside NoError reports no fault
                        cx = mrec.ERROR_CODE_16_TO_CX.get(error_code)
                out.append(
                    OcppReportedCode(**base, **fields, cx_code=cx, source=source, code=token, description=description)
                )
                emitted += 1
            if not tokens and error_code is not None and error_code != "NoError":
                out.append(
                    OcppReportedCode(
                        **base,
                        **fields,
                        cx_code=mrec.ERROR_CODE_16_TO_CX.get(error_code),
                        source="StatusNotification.errorCode",
                        code=error_code,
                        description=info,
                    )
                )
        elif action == "NotifyEvent":
            items = payload.get("eventData")
            for item in items if isinstance(items, list) else ():
                tech = item.get("techCode") if isinstance(item, dict) else None
                if not isinstance(tech, str):
                    continue
                component = item.get("component")
                evse = component.get("evse") if isinstance(component, dict) else None
                evse = evse if isinstance(evse, dict) else {}
                cleared = item.get("cleared")
                for token in mrec.split_codes(tech) or [tech]:
                    if emitted >= MAX_REPORTED_CODES:
                        return
                    out.append(
                        OcppReportedCode(
                            **base,
                            cx_code=mrec.cx_code(token),
                            source="NotifyEvent.techCode",
                            code=token,
                            evse_id=_int(evse.get("id")),
                            connector_id=_int(evse.get("connectorId")),
                            description=_str(item.get("techInfo")),
                            cleared=cleared if isinstance(cleared, bool) else None,
                        )
                    )
                    emitted += 1

    def _anomaly(self, name: str, detail: str, d: int, frame: int, ts_ns: int) -> DecodeAnomaly:
        return DecodeAnomaly(
            ts_ns=ts_ns, frame=frame, flow_id=self.flow_id, direction=d, decoder="ocpp", name=name, detail=detail
        )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
