"""``report_dict``'s one-pass parts against the passes they replaced, on many made-up timelines: the events a
report shows (``_shown``), the bounded timeline of a big capture (``bounded_timeline``, flows shared by chargers,
frames repeated, decoding problems anywhere) and a charger's events sorted by kind (``_Kinds``)."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace
from typing import Any

from analyzer.budgets import TIMELINE_CONTEXT
from analyzer.diagnosis.clock import trusted
from analyzer.events.base import DecodeAnomaly, Event
from analyzer.events.clock import ClockSample
from analyzer.events.ocpp import OcppCall, OcppCallResult, OcppReportedCode, OcppUnparsed
from analyzer.events.tcp import TcpSyn
from analyzer.events.tls import TlsAlert, TlsSummary
from analyzer.events.websocket import WsMessage
from analyzer.redaction import redact_tokens
from analyzer.report.build import OCPP_TYPES, _Kinds, _payload, _shown, bounded_timeline
from tests.report.test_redaction_fast import _payload_texts

T0 = 1_795_406_400 * 10**9


def reference_shown(events: list[Event], owner: dict[int, Any]) -> list[Event]:
    def shown(e: Event) -> bool:
        if isinstance(e, ClockSample) and not trusted(e):
            return False
        return (e.flow_id is not None and e.flow_id in owner) or isinstance(e, DecodeAnomaly)

    return [e for e in events if shown(e)]


def reference_bounded(shown: list[Event], results: list[Any], focus: dict[int, set[int]]) -> list[Event]:
    charger_of_flow = {fid: id(r) for r in results for fid in r.charger.flow_ids + r.charger.dns_flow_ids}
    by_charger: dict[int, list[int]] = {}
    for i, e in enumerate(shown):
        c = charger_of_flow.get(e.flow_id) if e.flow_id is not None else None
        if c is not None:
            by_charger.setdefault(c, []).append(i)
    keep: set[int] = set()
    for c, idx in by_charger.items():
        frames = focus.get(c, set())
        for pos, i in enumerate(idx):
            if shown[i].frame in frames:
                keep.update(idx[max(0, pos - TIMELINE_CONTEXT) : pos + TIMELINE_CONTEXT + 1])
    every = set().union(*focus.values()) if focus else set()
    keep.update(i for i, e in enumerate(shown) if isinstance(e, DecodeAnomaly) and e.frame in every)
    return [shown[i] for i in sorted(keep)]


def _event(rng: random.Random, frame: int, flow: int | None) -> Event:
    at = {"ts_ns": T0 + frame, "frame": frame, "flow_id": flow, "direction": rng.choice((0, 1, None))}
    ocpp = {"version": "1.6", "unique_id": "1", "size": 9}
    make = rng.choice(
        [
            lambda: DecodeAnomaly(**at, decoder="tls", name="tls.parse_error"),
            lambda: TcpSyn(**at, src="a:1", dst="b:2"),
            lambda: ClockSample(**at, side="csms", source="tls.server_random", value_ns=rng.choice((T0, 9))),
            lambda: ClockSample(**at, side="charger", source="http.date", value_ns=T0),
            lambda: OcppCall(**at, **ocpp, action="Heartbeat", payload_text="{}"),
            lambda: OcppCallResult(**at, **ocpp, action="Heartbeat", payload_text="{}"),
            lambda: OcppUnparsed(**at, reason="binary frame"),
            lambda: OcppReportedCode(**at, cx_code=None, source="x", code="E1"),
            lambda: TlsAlert(**at),
            lambda: TlsSummary(**at),
            lambda: WsMessage(**at, opcode="text", size=2, wire_size=2),
        ]
    )
    return make()


def _case(rng: random.Random) -> tuple[list[Event], list[Any], dict[int, set[int]], dict[int, Any]]:
    flows = list(range(rng.randint(1, 12)))
    results = []
    for _ in range(rng.randint(1, 4)):  # chargers may share a flow: the last one listing it has it
        mine = rng.sample(flows, rng.randint(0, len(flows)))
        cut = rng.randint(0, len(mine))
        results.append(SimpleNamespace(charger=SimpleNamespace(flow_ids=mine[:cut], dns_flow_ids=mine[cut:])))
    owner = {fid: ("CP", "10.0.0.1") for r in results for fid in r.charger.flow_ids + r.charger.dns_flow_ids}
    n = rng.randint(0, 80)
    events = [_event(rng, rng.randint(1, n + 1), rng.choice([*flows, None, 99])) for _ in range(n)]
    if rng.random() < 0.5:
        events.sort(key=lambda e: e.frame)
    pick = range(1, n + 2)  # the frames a charger's report may point to (some without an event)
    focus = {id(r): set(rng.sample(pick, rng.randint(0, min(4, len(pick))))) for r in results if rng.random() < 0.9}
    return events, results, focus, owner


def test_shown_and_bounded_are_the_passes_they_replace() -> None:
    rng = random.Random(1207)
    kept_some = 0
    for _ in range(3000):
        events, results, focus, owner = _case(rng)
        shown = _shown(events, owner)
        assert shown == reference_shown(events, owner)
        bounded = bounded_timeline(shown, results, focus, owner)  # type: ignore[arg-type]
        assert [id(e) for e in bounded] == [id(e) for e in reference_bounded(shown, results, focus)]
        kept_some += 0 < len(bounded) < len(shown)
    assert kept_some > 1000


def test_kinds_are_the_passes_they_replace() -> None:
    rng = random.Random(1208)
    for _ in range(500):
        events = [_event(rng, f, rng.choice((1, None))) for f in range(rng.randint(0, 60))]
        kinds = _Kinds(events)
        assert kinds.ocpp == [e for e in events if e.kind in OCPP_TYPES]
        assert kinds.reported == [e for e in events if e.kind == "ocpp.reported_code"]
        assert kinds.tls == [e for e in events if e.kind.startswith("tls.")]


def test_a_shown_payload_is_redact_tokens_of_it() -> None:
    """``_payload``'s shortcut (a payload naming no secret is shown as parsed) against ``redact_tokens`` of it."""
    for text in _payload_texts():
        e = OcppCall(ts_ns=T0, frame=1, version="1.6", unique_id="1", size=9, action="X", payload_text=text)
        assert json.dumps(_payload(e, redact_tokens)) == json.dumps(redact_tokens(e.payload)), text
        assert _payload(e, lambda p: p) == e.payload
    unparsed = OcppUnparsed(ts_ns=T0, frame=1, reason="binary frame")
    assert _payload(unparsed, redact_tokens) is None
