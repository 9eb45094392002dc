"""``ghostcap timeline`` output: every event as a terminal table or as JSON lines."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from enum import Enum
from typing import Any

from analyzer.engine import TimelineResult
from analyzer.events.base import Event
from analyzer.events.ocpp import redact_text, redact_tokens
from analyzer.jsontext import dumps, escape_surrogates
from analyzer.report.charger_view import ChargerView
from analyzer.timefmt import clock_utc, iso_utc
from analyzer.timeline.timeline import Stream

HEADER = ("time (UTC)", "frame", "stream", "charger", "layer", "event", "summary")


def event_fields(e: Event) -> dict[str, Any]:
    """The event's own fields as JSON-ready values (bytes as hex, enums as names, nested dataclasses as dicts); a
    field whose metadata names what it is ``shown_as`` is that attribute, in its place (an OCPP payload kept as JSON
    text is shown as ``payload``, parsed)."""
    skip = {"ts_ns", "frame", "flow_id", "direction"}
    out = {}
    for f in dataclasses.fields(e):
        if f.name not in skip:
            name = f.metadata.get("shown_as", f.name)
            out[name] = _plain(getattr(e, name))
    return out


def _plain(v: Any) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, Enum):
        return v.name
    if isinstance(v, bytes | bytearray):
        return v.hex()
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def shown_events(result: TimelineResult, view: ChargerView | None = None) -> list[Event]:
    """The events to print: all, or with ``--charger`` (``view.addresses``) those of the chosen chargers' flows."""
    if view is None or view.addresses is None:
        return result.timeline.events
    flows = result.timeline.flows
    return [e for e in result.timeline.events if e.flow_id in flows and view.keeps(flows[e.flow_id])]


def _stream(result: TimelineResult, e: Event) -> Stream:
    f = result.timeline.flows.get(e.flow_id) if e.flow_id is not None else None
    return (f.stream, f.stream_filter) if f is not None else (None, None)


def event_json(
    e: Event,
    redact: bool = True,
    stream: Stream = (None, None),
    charger: str | None = None,
) -> str:
    """One event as one JSON line: the event header (with Wireshark's stream of its flow and the charger the flow
    belongs to, when known), its summary and its fields (idTokens and secrets in OCPP payloads and message texts
    redacted unless ``redact`` is false)."""
    fields = event_fields(e)
    if redact:
        if "payload" in fields:
            fields["payload"] = redact_tokens(fields["payload"])
        for key in ("text_excerpt", "excerpt", "text"):
            if isinstance(fields.get(key), str):
                fields[key] = redact_text(fields[key])
    row = {
        "time": iso_utc(e.ts_ns),
        "frame": e.frame,
        "flow": e.flow_id,
        "stream": stream[0],
        "stream_filter": stream[1],
        "charger": charger,
        "direction": e.direction,
        "layer": e.layer,
        "event": e.kind,
        "summary": e.summary(),
        "fields": fields,
    }
    return dumps(row, separators=(",", ":")) + "\n"


def timeline_json(result: TimelineResult, redact: bool = True, view: ChargerView | None = None) -> Iterator[str]:
    """One JSON object per line (``event_json``) for every event shown."""
    owner = view.owner if view is not None else {}
    for e in shown_events(result, view):
        who = owner.get(e.flow_id) if e.flow_id is not None else None
        yield event_json(e, redact, _stream(result, e), who)


# the table's columns have fixed widths, so that ``ghostcap timeline`` prints each line as soon as it has it
WIDTHS = (15, 7, 9, 12, 9, 22)


def table_header() -> str:
    n = len(WIDTHS)
    return "  ".join(h.ljust(w) for h, w in zip(HEADER[:n], WIDTHS, strict=True)) + "  " + HEADER[n] + "\n"


def event_line(e: Event, stream: Stream = (None, None), charger: str | None = None, width: int = 200) -> str:
    """One line: time, frame, Wireshark stream (``tcp 3``: ``tcp.stream eq 3``), the charger its flow belongs to,
    layer, event and summary (cut to ``width``)."""
    cells = (
        clock_utc(e.ts_ns),
        str(e.frame),
        stream[1].replace(".stream eq ", " ") if stream[1] else "",
        _one_line(charger or ""),
        e.layer,
        e.kind,
    )
    text = _one_line(e.summary())
    room = max(40, width - sum(WIDTHS) - 2 * len(WIDTHS))
    if len(text) > room:
        text = text[: room - 1] + "…"
    return "  ".join(c.ljust(w) for c, w in zip(cells, WIDTHS, strict=True)) + "  " + text + "\n"


def timeline_table(result: TimelineResult, width: int = 200, view: ChargerView | None = None) -> str:
    """The table (``event_line``) of every event shown, with its header."""
    owner = view.owner if view is not None else {}
    lines = [table_header()]
    for e in shown_events(result, view):
        who = owner.get(e.flow_id) if e.flow_id is not None else None
        lines.append(event_line(e, _stream(result, e), who, width))
    return "".join(lines)


def _one_line(s: str) -> str:
    """``s`` on one terminal line: a lone surrogate as its escape (``\\ud800``), other unprintables as U+FFFD."""
    s = escape_surrogates(s)
    return s if s.isprintable() else "".join(c if c.isprintable() else "\ufffd" for c in s)
