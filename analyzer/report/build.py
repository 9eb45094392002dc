"""An ``Analysis`` as the JSON report of ``../shared/spec/report-json.md`` (schema ``ghostcap.report/1``).

One plain dict feeds every renderer (JSON, Markdown, HTML). Secrets never enter it: decoders keep no passwords or
key material, summaries carry no idTokens, and OCPP payloads pass through ``redact_tokens`` unless the user asked
for tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import Any

from analyzer import __version__
from analyzer.budgets import (
    ATTEMPTS_SHOWN,
    CLOCK_SAMPLES,
    CLOCK_SAMPLES_BIG,
    OCPP_MESSAGES_HEALTHY_BIG,
    OCPP_MESSAGES_PER_CHARGER,
    OCPP_MESSAGES_PER_CHARGER_BIG,
    TIMELINE_CONTEXT,
    TIMELINE_FULL_EVENTS,
)
from analyzer.decoders.tls_names import version_name
from analyzer.diagnosis.catalogue import FAULTS
from analyzer.diagnosis.chargers import Other
from analyzer.diagnosis.clock import trusted
from analyzer.diagnosis.finding import Finding
from analyzer.diagnosis.runner import ChargerResult
from analyzer.engine import Analysis
from analyzer.events.base import DecodeAnomaly, Event
from analyzer.events.clock import ClockSample
from analyzer.events.ocpp import redact_tokens
from analyzer.redaction import names_no_secret
from analyzer.report.flows import capture_dict
from analyzer.report.times import iso_utc
from analyzer.report.wireshark import FrameFlows

REPORT_SCHEMA = "ghostcap.report/1"


def report_dict(a: Analysis) -> dict[str, Any]:
    cap = capture_dict(a.capture)
    cap["sha256"] = a.sha256
    owner = _flow_owners(a.results)
    redact = (lambda p: p) if a.settings.show_tokens else redact_tokens
    shown = _shown(a.timeline.events, owner)
    # events dropped while reading (a long connection's routine middle) are omitted too
    thinned = {fid: c for fid, c in a.timeline.dropped.items() if fid in owner}
    dropped = sum(sum(c.values()) for c in thinned.values())
    complete = len(shown) <= TIMELINE_FULL_EVENTS and not dropped
    kinds = {id(r): _Kinds(r.charger.events) for r in a.results}
    focus = {} if complete else {id(r): pointed_frames(r, kinds[id(r)]) for r in a.results}
    kept = shown if complete else bounded_timeline(shown, a.results, focus, owner)
    loc = FrameFlows(a.timeline, named_frames(a.results))
    return {
        "schema": REPORT_SCHEMA,
        "tool": {"name": "ghostcap", "version": __version__},
        "capture": cap,
        "chargers": [
            _charger(r, redact, None if complete else focus[id(r)], thinned, loc, kinds[id(r)]) for r in a.results
        ],
        "others": [_other(o) for o in a.others],
        "timeline": [_row(e, owner) for e in kept],
        "timeline_complete": complete,
        "timeline_omitted": len(shown) - len(kept) + dropped,
    }


class _Kinds:
    """A charger's events of the kinds its report lists: OCPP messages, TLS events and reported codes, each in
    order. Sorted in one pass (a gateway capture's charger has hundreds of events, which the report's parts
    would otherwise each read over), each event by its class (``_SORTS``: ``kind`` is the class's)."""

    __slots__ = ("ocpp", "reported", "tls")

    def __init__(self, events: list[Event]) -> None:
        self.ocpp: list[Event] = []
        self.reported: list[Event] = []
        self.tls: list[Event] = []
        put = (self.ocpp.append, self.reported.append, self.tls.append, [].append)
        for e in events:
            put[_SORTS[type(e)]](e)


class _Sorts(dict[type, int]):
    """Event class → which list of ``_Kinds`` takes its events (3: none), worked out on first sight."""

    def __missing__(self, cls: type) -> int:
        kind = cls.kind  # type: ignore[attr-defined]
        sort = 0 if kind in OCPP_TYPES else 1 if kind == "ocpp.reported_code" else 2 if kind.startswith("tls.") else 3
        self[cls] = sort
        return sort


_SORTS = _Sorts()


def pointed_frames(r: ChargerResult, kinds: _Kinds | None = None) -> set[int]:
    """The frames a charger's report points to: its findings (first and last frame, evidence), the boundaries of
    the attempts it lists, the codes it reported (``kinds``: its events sorted, else sorted here)."""
    out: set[int] = set()
    for f in [r.root_cause, *r.findings, *r.warnings, *r.undecided]:
        if f is None:
            continue
        out.add(f.frame)
        if f.last_frame:
            out.add(f.last_frame)
        out.update(e.frame for e in f.evidence)
    for row in _attempts(r)["attempts"]:
        out.update((row["first_frame"], row["last_frame"]))
    out.update(e.frame for e in (kinds or _Kinds(r.charger.events)).reported)
    return out


def named_frames(results: list[ChargerResult]) -> set[int]:
    """The frames the findings and their evidence name (each gets its Wireshark display filters)."""
    out: set[int] = set()
    for r in results:
        for f in [r.root_cause, *r.findings, *r.warnings, *r.undecided]:
            if f is not None:
                out.add(f.frame)
                out.update(e.frame for e in f.evidence)
    return out


def bounded_timeline(
    shown: list[Event],
    results: list[ChargerResult],
    focus: dict[int, set[int]],
    owner: dict[int, tuple[str | None, str]],
) -> list[Event]:
    """The events a big capture's report keeps: each charger's events at the frames its report points to, with
    ``TIMELINE_CONTEXT`` neighbours on each side, and decoding problems at those frames.

    One pass over the events (a gateway capture shows ~100k): each charger's positions in ``shown`` and which of
    them are at a pointed frame are gathered together, through one dict lookup of the event's flow."""
    of_flow: dict[int, tuple[list[int], list[int], set[int]]] = {}
    for r in results:
        mine: tuple[list[int], list[int], set[int]] = ([], [], focus.get(id(r), set()))
        for fid in r.charger.flow_ids + r.charger.dns_flow_ids:
            of_flow[fid] = mine  # a flow two chargers list is the last one's
    every = set().union(*focus.values()) if focus else set()
    keep: set[int] = set()
    for i, e in enumerate(shown):
        mine = of_flow.get(e.flow_id)  # type: ignore[arg-type]
        if mine is not None:
            idx, hits, frames = mine
            if e.frame in frames:
                hits.append(len(idx))
            idx.append(i)
        if e.frame in every and isinstance(e, DecodeAnomaly):
            keep.add(i)
    for idx, hits, _ in {id(m): m for m in of_flow.values()}.values():
        for pos in hits:
            keep.update(idx[max(0, pos - TIMELINE_CONTEXT) : pos + TIMELINE_CONTEXT + 1])
    return [shown[i] for i in sorted(keep)]


def _flow_owners(results: list[ChargerResult]) -> dict[int, tuple[str | None, str]]:
    """flow id → (station id or None, charger address)."""
    owner: dict[int, tuple[str | None, str]] = {}
    for r in results:
        for fid in r.charger.flow_ids + r.charger.dns_flow_ids:
            owner[fid] = (r.charger.station_id, r.charger.address)
    return owner


def _shown(events: list[Event], owner: dict[int, tuple[str | None, str]]) -> list[Event]:
    """The report's timeline keeps the chargers' events and decoding problems (``ghostcap timeline`` has all),
    but no TLS random the clock analysis does not take as a clock reading (the Clock section would contradict it).

    One comprehension, no call per event (a gateway capture has ~130k): ``owner`` holds no ``None``."""
    return [
        e
        for e in events
        if (e.flow_id in owner or isinstance(e, DecodeAnomaly)) and not (isinstance(e, ClockSample) and not trusted(e))
    ]


_NOBODY = (None, None)


def _row(e: Event, owner: dict[int, tuple[str | None, str]]) -> dict[str, Any]:
    """One row of the report's timeline (``owner`` holds no ``None``: an event of no flow has no charger)."""
    who = owner.get(e.flow_id, _NOBODY)  # type: ignore[arg-type]
    return {
        "time": iso_utc(e.ts_ns),
        "frame": e.frame,
        "layer": e.layer,
        "event": e.kind,
        "charger": who[0],
        "charger_address": who[1],
        "from": None if e.direction is None else ("charger" if e.direction == 0 else "csms"),
        "summary": e.summary(),
    }


def _charger(
    r: ChargerResult,
    redact: Callable[[Any], Any],
    focus: set[int] | None = None,
    thinned: dict[int | None, dict[str, int]] | None = None,
    loc: FrameFlows | None = None,
    kinds: _Kinds | None = None,
) -> dict[str, Any]:
    ch = r.charger
    kinds = kinds or _Kinds(ch.events)
    where = _Where(loc, ch.flow_ids + ch.dns_flow_ids)
    gone: dict[str, int] = {}  # events of its connections dropped while reading, by kind
    for fid in ch.flow_ids:
        for kind, n in (thinned or {}).get(fid, {}).items():
            gone[kind] = gone.get(kind, 0) + n
    # a big capture's healthy charger says less: its verdict rests on the session working, not on each message
    quiet = focus is not None and r.verdict == "healthy"
    samples = CLOCK_SAMPLES_BIG if focus is not None else CLOCK_SAMPLES
    reported = [
        {"cx_code": e.cx_code, "frame": e.frame, "source": e.source, "code": e.code}  # type: ignore[attr-defined]
        for e in kinds.reported
    ]
    clock = r.clock
    return {
        "id": ch.station_id,
        "address": ch.address,
        "csms": {"host": ch.csms_host, "address": ch.csms_address, "port": ch.csms_port},
        "ocpp_version": ch.ocpp_version,
        "transport": ch.transport,
        "verdict": r.verdict,
        "verdict_reason": r.reason or None,
        "site_visit": r.site_visit,
        "connected_at_end": r.connected_at_end,
        "root_cause": _root(r.root_cause, where) if r.root_cause else None,
        "findings": [_short(f, where) for f in r.findings],
        "warnings": [_short(f, where) for f in r.warnings],
        **_attempts(r, loc),
        "undecided": [_short(f, where) for f in r.undecided],
        "reported_codes": reported,
        "clock": {
            "charger_offset_s": _s(clock.charger_offset_ns),
            "csms_offset_s": _s(clock.csms_offset_ns),
            "skew_s": _s(clock.skew_ns),
            "reset_to": clock.reset_epoch,
            "samples": [
                {
                    "frame": s.frame,
                    "side": s.side,
                    "source": s.source,
                    "value": s.raw or iso_utc(s.value_ns),
                    "captured": iso_utc(s.ts_ns),
                }
                for s in (clock.charger + clock.csms)[:samples]
            ],
            "samples_omitted": max(0, len(clock.charger) + len(clock.csms) - samples) + gone.get("clock.sample", 0),
        },
        "connections": len(ch.flow_ids),
        "ocpp_messages": (msgs := _ocpp_messages(kinds.ocpp, redact, focus, quiet)),
        "ocpp_messages_omitted": len(kinds.ocpp) - len(msgs) + sum(gone.get(k, 0) for k in OCPP_TYPES),
        "tls": _tls(kinds.tls),
        "errors": r.errors,
        "verification": None,  # with --verify: tshark's second opinion (``analyzer.verify.run``)
    }


OCPP_TYPES = {
    "ocpp.call": "CALL",
    "ocpp.call_result": "CALLRESULT",
    "ocpp.call_error": "CALLERROR",
    "ocpp.call_result_error": "CALLRESULTERROR",
    "ocpp.send": "SEND",
    "ocpp.unparsed": "UNPARSED",
}


def _ocpp_messages(
    msgs: list[Event], redact: Callable[[Any], Any], focus: set[int] | None = None, quiet: bool = False
) -> list[dict[str, Any]]:
    """The charger's decoded OCPP messages (``msgs``, of the kinds ``OCPP_TYPES``, in order): the first
    ``OCPP_MESSAGES_PER_CHARGER``; in a big capture (``focus``: the frames the report points to) those at the
    pointed frames first, then the first ones, up to ``OCPP_MESSAGES_PER_CHARGER_BIG``, in frame order."""
    limit = OCPP_MESSAGES_PER_CHARGER
    if focus is not None:
        limit = OCPP_MESSAGES_HEALTHY_BIG if quiet else OCPP_MESSAGES_PER_CHARGER_BIG
        first = [e for e in msgs if e.frame in focus][:limit]
        taken = {id(e) for e in first}
        first += islice((e for e in msgs if id(e) not in taken), limit - len(first))
        msgs = sorted(first, key=lambda e: e.frame)
    out = []
    for e in msgs:
        out.append(
            {
                "frame": e.frame,
                "time": iso_utc(e.ts_ns),
                "from": "charger" if e.direction == 0 else "csms",
                "type": OCPP_TYPES[e.kind],
                "action": getattr(e, "action", None),
                "unique_id": getattr(e, "unique_id", None),
                "payload": _payload(e, redact),
                "error_code": getattr(e, "error_code", None),
                "error_description": getattr(e, "error_description", None),
                "reason": getattr(e, "reason", None) if e.kind == "ocpp.unparsed" else None,
                "violations": [{"path": v.path, "message": v.message} for v in getattr(e, "violations", ())],
                "summary": e.summary(),
            }
        )
        if len(out) >= limit:
            break
    return out


def _payload(e: Event, redact: Callable[[Any], Any]) -> Any:
    """An OCPP message's payload as the report shows it, through ``redact``; as parsed when its text names no key
    that could hide anything (``names_no_secret``: a Heartbeat, a StatusNotification), without ``redact_tokens``'
    copy of it (each read of ``payload`` parses the text anew, so nothing else holds that value)."""
    if e.kind == "ocpp.unparsed":
        return None
    text = getattr(e, "payload_text", None)
    if redact is redact_tokens and text is not None and names_no_secret(text):
        return e.payload  # type: ignore[attr-defined]
    return redact(getattr(e, "payload", None))


def _tls(events: list[Event]) -> list[dict[str, Any]]:
    """One entry per TLS connection: what the handshake offered, chose and showed."""
    by_flow: dict[int | None, dict[str, Any]] = {}
    for e in events:
        if not e.kind.startswith("tls."):
            continue
        t = by_flow.setdefault(
            e.flow_id,
            {
                "frame": e.frame,
                "sni": None,
                "offered_versions": [],
                "version": None,
                "cipher": None,
                "alpn": [],
                "ja3": None,
                "ja4": None,
                "certificates": [],
                "alerts": [],
                "certificate_request": False,
                "decryption": None,
                "decryption_detail": None,
            },
        )
        if e.kind == "tls.client_hello":
            t.update(
                sni=e.sni,
                offered_versions=[version_name(v) for v in (e.supported_versions or (e.legacy_version,))],
                alpn=list(e.alpn),
                ja3=e.ja3_hash,
                ja4=e.ja4,
            )
        elif e.kind == "tls.server_hello":
            t.update(version=version_name(e.version), cipher=e.cipher_name)
        elif e.kind == "tls.certificate" and e.direction == 1:
            t["certificates"] = [
                {
                    "frame": e.frame,
                    "subject": c.subject,
                    "issuer": c.issuer,
                    "san": list(c.san),
                    "not_before": iso_utc(c.not_before_ns),
                    "not_after": iso_utc(c.not_after_ns),
                    "sha256": c.sha256,
                    # only for a certificate cryptography refused (read by the lenient DER reader): why
                    **({"malformed": c.parse_error} if c.parse_error else {}),
                }
                for c in e.certificates
            ]
        elif e.kind == "tls.certificate_request":
            t["certificate_request"] = True
        elif e.kind == "tls.alert":
            t["alerts"].append(
                {
                    "frame": e.frame,
                    "from": "charger" if e.direction == 0 else "csms",
                    "level": e.level,
                    "description": e.description_name,
                    "encrypted": e.encrypted and not e.decrypted,
                    "decrypted": e.decrypted,
                }
            )
        elif e.kind == "tls.summary" and any(e.encrypted_records):
            t["decryption"] = e.decryption or "encrypted"
            t["decryption_detail"] = e.decryption_detail or "no key log given: the session stays opaque"
    return list(by_flow.values())


def _s(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e9, 3)


def cx_of(f: Finding) -> str | None:
    return f.cx_code or (FAULTS[f.fault].cx_code if f.fault in FAULTS else None)


def _attempts(r: ChargerResult, loc: FrameFlows | None = None) -> dict[str, Any]:
    flows = loc.tl.flows if loc is not None else {}
    rows = [
        {
            "kind": a.kind,
            "first_frame": a.first_frame,
            "last_frame": a.last_frame,
            "time": iso_utc(a.first_ns),
            "reached": a.reached,
            "ended": a.ended,
            "by": a.by,
            "code": a.code,
            "before_capture": a.before_capture,
            "summary": a.describe(),
            "stream_filter": flows[a.flow_id].stream_filter if a.flow_id in flows else None,
        }
        for a in r.attempts
    ]
    if len(rows) <= ATTEMPTS_SHOWN:
        return {"attempts": rows, "attempts_total": len(rows), "attempts_omitted": 0}
    seen: set[tuple[str, str, str, str | None]] = set()
    keep = []
    for i, row in enumerate(rows):
        shape = (row["kind"], row["reached"], row["ended"], row["by"])
        if shape not in seen or i == len(rows) - 1:
            seen.add(shape)
            keep.append(row)
    keep = keep[:ATTEMPTS_SHOWN]
    return {"attempts": keep, "attempts_total": len(rows), "attempts_omitted": len(rows) - len(keep)}


def _other(o: Other) -> dict[str, Any]:
    return {
        "what": o.what,
        "client": o.client,
        "server": o.server,
        "first_frame": o.first_frame,
        "connections": o.flows,
        "summary": o.summary,
        "fault": o.fault,
        "frame": o.frame,
    }


def _who(f: Finding) -> dict[str, Any]:
    return {
        "severity": f.level,
        "fix_side": f.side,
        "fix_reason": f.fix_reason,
        "count": f.count,
        "last_frame": f.last_frame,
    }


class _Where:
    """A charger's findings and evidence with their Wireshark display filters (``report.wireshark``)."""

    def __init__(self, loc: FrameFlows | None, flow_ids: list[int]) -> None:
        self.loc = loc
        self.flow_ids = flow_ids

    def __call__(self, frame: int, flow_id: int | None = None) -> dict[str, str | None]:
        return self.loc.filters(frame, flow_id, self.flow_ids) if self.loc is not None else {}


def _root(f: Finding, where: _Where | None = None) -> dict[str, Any]:
    fault = FAULTS.get(f.fault)
    where = where or _Where(None, [])
    return {
        **_who(f),
        "fault": f.fault,
        "layer": fault.layer if fault else "ocpp",
        "frame": f.frame,
        **where(f.frame, f.flow_id),
        "time": iso_utc(f.ts_ns),
        "cx_code": cx_of(f),
        "also_cx": list(f.also_cx),
        "confidence": f.confidence,
        "inferred": f.inferred,
        "certain_with": f.certain_with,
        "summary": f.summary,
        "evidence": [{"frame": e.frame, "what": e.what, **where(e.frame, f.flow_id)} for e in f.evidence],
        "remediation": list(dict.fromkeys(f.remediation + (fault.remediation if fault else ()))),
    }


def _short(f: Finding, where: _Where | None = None) -> dict[str, Any]:
    return {
        **_who(f),
        "fault": f.fault,
        "frame": f.frame,
        **(where or _Where(None, []))(f.frame, f.flow_id),
        "time": iso_utc(f.ts_ns),
        "cx_code": cx_of(f),
        "summary": f.summary,
        "inferred": f.inferred,
    }
