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
from analyzer.timefmt import clock_utc, iso_utc

HEADER = ("time (UTC)", "frame", "layer", "event", "summary")


def event_fields(e: Event) -> dict[str, Any]:
    """The event's own fields as JSON-ready values (bytes as hex, enums as names, nested dataclasses as dicts)."""
    skip = {"ts_ns", "frame", "flow_id", "direction"}
    return {f.name: _plain(getattr(e, f.name)) for f in dataclasses.fields(e) if f.name not in skip}


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


def event_json(e: Event, redact: bool = True) -> str:
    """One event as one JSON line: its header, summary and fields (idTokens and secrets in OCPP payloads and
    message texts redacted unless ``redact`` is false)."""
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
        "direction": e.direction,
        "layer": e.layer,
        "event": e.kind,
        "summary": e.summary(),
        "fields": fields,
    }
    return dumps(row, separators=(",", ":")) + "\n"


def timeline_json(result: TimelineResult, redact: bool = True) -> Iterator[str]:
    """One JSON object per line (``event_json``) for every event of the timeline."""
    for e in result.timeline.events:
        yield event_json(e, redact)


# the table's columns have fixed widths, so that ``ghostcap timeline`` prints each line as soon as it has it
WIDTHS = (15, 7, 9, 22)


def table_header() -> str:
    return "  ".join(h.ljust(w) for h, w in zip(HEADER[:4], WIDTHS, strict=True)) + "  " + HEADER[4] + "\n"


def event_line(e: Event, width: int = 160) -> str:
    cells = (clock_utc(e.ts_ns), str(e.frame), e.layer, e.kind)
    text = _one_line(e.summary())
    room = max(40, width - sum(WIDTHS) - 8)
    if len(text) > room:
        text = text[: room - 1] + "…"
    return "  ".join(c.ljust(w) for c, w in zip(cells, WIDTHS, strict=True)) + "  " + text + "\n"


def timeline_table(result: TimelineResult, width: int = 160) -> str:
    return table_header() + "".join(event_line(e, width) for e in result.timeline.events)


def _one_line(s: str) -> str:
    """``s`` on one terminal line: a lone surrogate as its escape (``\\ud800``), other unprintables as U+FFFD."""
    s = escape_surrogates(s)
    return s if s.isprintable() else "".join(c if c.isprintable() else "\ufffd" for c in s)
