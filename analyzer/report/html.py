"""The report as one self-contained HTML page, for a support engineer to read on a laptop or attach to a ticket.

``report_html(report)`` is a pure ``dict -> str`` over the report dict of ``build.report_dict`` (contract:
``shared/spec/report-json.md`` plus its extension fields). It opens with the verdict per charger, then per charger
a timeline plot, a message-sequence diagram, the evidence, the decoded OCPP messages, TLS, clock, what to do and
the other findings; last the capture's metadata and the full timeline.

Safety: the page makes no request of any kind (inline CSS, plots as inline SVG, no script, no font) and
says so in a Content-Security-Policy that allows no script at all. Every string from the capture reaches the page
through jinja2 autoescaping (``StrictUndefined``, no ``|safe``), or, in the big repeated tables written here (the
full timeline, the evidence, the attempts, the clock readings), through ``page.cell``, which is the same;
``_visible`` further shows control, zero-width and bidi-override characters as ``[U+202E]`` so a station id cannot
hide or reorder text, and bounds any one text.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from markupsafe import Markup

from analyzer import budgets
from analyzer.decoders.mrec import MREC_NAMES
from analyzer.diagnosis.attempts import STAGE_TITLES
from analyzer.diagnosis.catalogue import cx_label
from analyzer.jsontext import NotPlain, finite, plain_json
from analyzer.report import svg
from analyzer.report.dispatch import dispatch
from analyzer.report.page import MAX_TEXT as MAX_TEXT  # re-exported: the tests, the fleet summary
from analyzer.report.page import Block as _Block
from analyzer.report.page import cell, number_cell, template, texts_cells
from analyzer.report.page import template_env as template_env
from analyzer.report.page import visible as _visible
from analyzer.report.svg import Column, Pin, Step
from analyzer.report.times import _WRITTEN, time_of_day
from analyzer.report.times import clock_text as _clock_text
from analyzer.report.times import ns as _ns
from analyzer.verify.words import verification_text

TEMPLATES = Path(__file__).parent / "templates"
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
MAX_LADDER_STEPS = 40
HTML_DETAILED_CHARGERS = budgets.HTML_DETAILED_CHARGERS
MAX_TIMELINE_ROWS = 2000
DAY_NS = 86_400 * 10**9
CERT_TIME = "%Y-%m-%d %H:%M:%S UTC"
MULTI_DAY = "%Y-%m-%d %H:%M:%S.%f"  # the full timeline's time column when the capture spans days
SEVERITY = ("fault", "inconclusive", "healthy")  # the order of the verdicts at the top of the page
VERDICT_TITLE = {"fault": "Fault", "healthy": "Healthy", "inconclusive": "Inconclusive"}
LAYER_TITLE = {**STAGE_TITLES, "clock": "clock"}


def report_html(report: dict[str, Any]) -> str:
    """The whole HTML page for ``report`` (a ``build.report_dict`` result)."""
    return template(TEMPLATES, "report.html.j2").render(**_view(report))


# ------------------------------------------------------------------------------------------------------ times


def _rel(ns: int | None, start: int | None) -> str | None:
    return None if ns is None or start is None else f"{(ns - start) / 1e9:+.6f}"


def _seconds(ns: int | None, start: int | None) -> float | None:
    return None if ns is None or start is None else (ns - start) / 1e9


def human_duration(seconds: float | None) -> str | None:
    """``-848809029.04`` → ``-26.9 years``; ``0.0123`` → ``12.3 ms``; keeps the sign."""
    if seconds is None:
        return None
    sign, s = ("-" if seconds < 0 else ""), abs(seconds)
    if s < 1:
        return f"{sign}{s * 1000:.1f} ms"
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if s >= 2 * size:
            return f"{sign}{s / size:.1f} {unit}"
    return f"{sign}{s:.3f} s"


# ------------------------------------------------------------------------------------------------------- view


def _view(report: dict[str, Any]) -> dict[str, Any]:
    cap = dict(report.get("capture") or {})
    rows = list(report.get("timeline") or [])
    row_ns = [_ns(r.get("time")) for r in rows]
    start = _ns(cap.get("first"))
    if start is None:
        start = min((t for t in row_ns if t is not None), default=None)
    by_owner: dict[tuple[Any, Any], list[int]] = {}
    for i, r in enumerate(rows):
        by_owner.setdefault((r.get("charger"), r.get("charger_address")), []).append(i)

    chargers = []
    brief = []
    fail_frames: set[int] = set()
    every = list(report.get("chargers") or [])
    ranked = sorted(range(len(every)), key=lambda i: SEVERITY.index(_verdict_of(every[i])))
    drawn = set(ranked[:HTML_DETAILED_CHARGERS])
    for n, c in enumerate(every, 1):
        if c.get("root_cause"):
            fail_frames.add(c["root_cause"].get("frame"))
        if n - 1 not in drawn:
            brief.append(_brief(n, c))
            continue
        mine = _rows_of(c, rows, by_owner)
        chargers.append(_charger(n, c, [(rows[i], row_ns[i]) for i in mine], start))

    first, last = _ns(cap.get("first")), _ns(cap.get("last"))
    one_day = first is not None and last is not None and first // DAY_NS == last // DAY_NS
    shown = rows[:MAX_TIMELINE_ROWS]
    counts = {v: sum(1 for c in every if _verdict_of(c) == v) for v in ("fault", "inconclusive", "healthy")}
    timeline_rows = _timeline_rows(shown, row_ns, start, one_day, fail_frames)
    return {
        "csp": CSP,
        "tool": report.get("tool") or {"name": "ghostcap", "version": "?"},
        "schema": report.get("schema"),
        "capture": {
            "file": cap.get("file"),
            "sha256": cap.get("sha256"),
            "format": cap.get("format"),
            "compression": cap.get("compression"),
            "link_types": ", ".join(str(x) for x in cap.get("link_types") or []) or None,
            "packets": cap.get("packets"),
            "first": _clock_text(first) or cap.get("first"),
            "last": _clock_text(last) or cap.get("last"),
            "span": human_duration(None if first is None or last is None else (last - first) / 1e9),
            "truncated_packets": cap.get("truncated_packets") or 0,
            "warnings": list(cap.get("warnings") or []),
        },
        "chargers": chargers,
        "overview": sorted(chargers, key=lambda c: SEVERITY.index(c["verdict"])),
        "brief": sorted(brief, key=lambda c: SEVERITY.index(c["verdict"])),
        "counts": counts,
        "timeline": shown,  # the template counts them; their markup is ``timeline_rows``
        "timeline_rows": timeline_rows,
        "timeline_one_day": one_day,
        "timeline_total": len(rows),
        "timeline_omitted": len(rows) - len(shown),
    }


def _timeline_rows(
    rows: list[dict[str, Any]], row_ns: list[int | None], start: int | None, one_day: bool, fail_frames: set[int]
) -> Markup:
    """The full timeline's rows, written here rather than by a template loop: up to ``MAX_TIMELINE_ROWS`` rows of
    seven cells were most of a report's rendering time. The same markup the loop wrote, each value as ``cell``
    writes it: frame, t, time in milliseconds (of day when the capture is within one day), layer, event, charger,
    summary. The four texts of every row are escaped in one go first (``texts_cells``), then each row is written in
    one pass with its frame (``number_cell``), t (``_rel``) and time."""
    texts = texts_cells(
        [
            x
            for r in rows
            for x in (r.get("layer"), r.get("event"), r.get("charger") or r.get("charger_address"), r.get("summary"))
        ]
    )
    four = iter(texts)
    out = []
    written = _WRITTEN
    for r, t, layer, event, charger, summary in zip(rows, row_ns, four, four, four, four, strict=False):
        frame, iso = r.get("frame"), r.get("time")
        if one_day and t is not None and written.get(iso) == t:
            # ``time_of_day`` of a text ``iso_utc`` wrote, to the millisecond: ``2026-11-24T04:16:46.655619000Z``
            # → ``04:16:46.655`` (its year has four digits, its fraction nine)
            time = iso[11:23]
        else:
            time = ((time_of_day(iso, t) if one_day else _clock_text(t, MULTI_DAY)) or "")[:-3] or cell(iso)
        fail = ' class="fail"' if frame in fail_frames else ""
        rel = "—" if t is None or start is None else f"{(t - start) / 1e9:+.6f}"  # _rel
        out.append(
            f'      <tr{fail}><td class="frame num">{number_cell(frame)}</td><td class="num">{rel}</td><td>{time}</td>'
            f'<td>{layer}</td><td class="mono">{event}</td><td>{charger}</td><td>{summary}</td></tr>\n'
        )
    return Markup("".join(out))


def _evidence_rows(evidence: list[dict[str, Any]], fail_frame: Any) -> Markup:
    """The evidence table's rows, written here rather than by a template loop (as ``_timeline_rows``), each value
    as ``cell`` writes it: frame, what the capture shows, its Wireshark filters (each when there is one)."""
    texts: list[Any] = []
    for e in evidence:
        texts += (e["what"], e["display_filter"], e["stream_filter"])
    three = iter(texts_cells(texts))
    out = []
    for e, what, display, stream in zip(evidence, three, three, three, strict=True):
        fail = ' class="fail"' if e["frame"] == fail_frame else ""
        display = f'<code class="filter">{display}</code>' if e["display_filter"] else ""
        stream = f' <code class="filter">{stream}</code>' if e["stream_filter"] else ""
        out.append(
            f'      <tr{fail}><td class="frame num">{number_cell(e["frame"])}</td><td>{what}</td>'
            f"<td>{display}{stream}</td></tr>\n"
        )
    return Markup("".join(out))


def _attempts_rows(attempts: list[dict[str, Any]]) -> Markup:
    """The attempts table's rows, written here rather than by a template loop (as ``_timeline_rows``), each value
    as ``cell`` writes it: first frame, kind, how far it reached, how it ended (by whom, with which code), what."""
    texts: list[Any] = []
    for a in attempts:
        texts += (a["kind"], a["reached"], a["ended"], a["by"], a["summary"])
    five = iter(texts_cells(texts))
    out = []
    for a, kind, reached, ended, by, summary in zip(attempts, five, five, five, five, five, strict=True):
        by = f" by {by}" if a["by"] else ""
        code = "" if a["code"] is None else f" ({cell(a['code'])})"
        out.append(
            f'<tr><td class="frame num">{number_cell(a["first_frame"])}</td><td>{kind}</td><td>{reached}</td>'
            f"<td>{ended}{by}{code}</td><td>{summary}</td></tr>"
        )
    return Markup("".join(out))


def _verdict_of(c: dict[str, Any]) -> str:
    v = c.get("verdict") or "inconclusive"
    return v if v in VERDICT_TITLE else "inconclusive"


def _brief(n: int, c: dict[str, Any]) -> dict[str, Any]:
    """A charger past the HTML's budget of chargers drawn in full: one table row."""
    rc = c.get("root_cause") or {}
    who = dispatch(c)
    return {
        "n": n,
        "name": c.get("id") or c.get("address") or f"charger {n}",
        "address": c.get("address"),
        "verdict": _verdict_of(c),
        "fault": rc.get("fault"),
        "frame": rc.get("frame"),
        "cx": who["cx"] if who else None,
        "side": who["side_title"] if who else None,
        "site_visit": bool(c.get("site_visit")),
        "summary": rc.get("summary") or c.get("verdict_reason") or "",
    }


def _rows_of(c: dict[str, Any], rows: list[dict[str, Any]], by_owner: dict[tuple[Any, Any], list[int]]) -> list[int]:
    """The timeline rows of charger ``c``: by station id and address (``charger_address``, when the rows have it),
    else by station id alone."""
    if any("charger_address" in r for r in rows):
        return by_owner.get((c.get("id"), c.get("address")), [])
    if c.get("id") is None:
        return []
    return by_owner.get((c.get("id"), None), [])


def _charger(
    n: int, c: dict[str, Any], rows: list[tuple[dict[str, Any], int | None]], start: int | None
) -> dict[str, Any]:
    rc = c.get("root_cause")
    verdict = c.get("verdict") or "inconclusive"
    name = c.get("id") or c.get("address") or f"charger {n}"
    csms = c.get("csms") or {}
    csms_where = ":".join(str(x) for x in (csms.get("address"), csms.get("port")) if x is not None) or None
    root = None
    if rc:
        rc_ns = _ns(rc.get("time"))
        root = {
            "fault": rc.get("fault"),
            "layer": rc.get("layer"),
            "layer_title": LAYER_TITLE.get(rc.get("layer") or "", rc.get("layer")),
            "frame": rc.get("frame"),
            "display_filter": rc.get("display_filter"),
            "stream_filter": rc.get("stream_filter"),
            "time": _clock_text(rc_ns) or rc.get("time"),
            "rel": _rel(rc_ns, start),
            "cx_code": rc.get("cx_code"),
            "cx_name": MREC_NAMES.get(rc.get("cx_code") or ""),
            "also_cx": [cx_label(x) for x in rc.get("also_cx") or []],
            "confidence": rc.get("confidence"),
            "inferred": bool(rc.get("inferred")),
            "certain_with": rc.get("certain_with"),
            "summary": rc.get("summary"),
            "evidence": list(rc.get("evidence") or []),
            "evidence_rows": _evidence_rows(rc.get("evidence") or [], rc.get("frame")),
            "remediation": list(rc.get("remediation") or []),
            "fix_reason": rc.get("fix_reason"),
            "count": rc.get("count") or 1,
            "last_frame": rc.get("last_frame"),
        }
    who = dispatch(c)
    if rc:
        ticket = (
            f"{name}: {cx_label(rc.get('cx_code')) or 'no CX code'} {rc.get('fault')} at frame {rc.get('frame')}"
            f" ({rc.get('confidence')} confidence{', inferred' if rc.get('inferred') else ''}). {rc.get('summary')}"
            f" {who['line'] if who else ''}"
        ).rstrip()
    else:
        reason = c.get("verdict_reason")
        ticket = f"{name}: {verdict}" + (f" ({reason})." if reason else ".")

    ocpp_by_frame: dict[Any, list[dict[str, Any]]] = {}
    for m in c.get("ocpp_messages") or []:
        ocpp_by_frame.setdefault(m.get("frame"), []).append(m)
    tls = list(c.get("tls") or [])
    frame_ns = {}
    for r, t in rows:
        frame_ns.setdefault(r.get("frame"), t)
    clock = c.get("clock") or {}

    timeline_svg, timeline_alt = _timeline_plot(name, c, rows, start)
    ladder = _ladder(name, c, rows, start, ocpp_by_frame, tls)
    return {
        "n": n,
        "anchor": f"charger-{n}",
        "name": name,
        "id": c.get("id"),
        "address": c.get("address"),
        "csms_host": csms.get("host"),
        "csms_where": csms_where,
        "ocpp_version": c.get("ocpp_version"),
        "transport": c.get("transport"),
        "connections": c.get("connections"),
        "verdict": verdict if verdict in VERDICT_TITLE else "inconclusive",
        "verdict_title": VERDICT_TITLE.get(verdict, str(verdict)),
        "verdict_reason": c.get("verdict_reason"),
        "root": root,
        "dispatch": who,
        "ticket": ticket,
        "warnings": [_short(f, start) for f in c.get("warnings") or []],
        "attempts": list(c.get("attempts") or []),
        "attempts_rows": _attempts_rows(c.get("attempts") or []),
        "attempts_total": c.get("attempts_total") or len(c.get("attempts") or []),
        "attempts_omitted": c.get("attempts_omitted") or 0,
        "connected_at_end": {True: "yes", False: "no"}.get(c.get("connected_at_end"), "cannot tell"),
        "events": len(rows),
        "timeline_svg": timeline_svg,
        "timeline_alt": timeline_alt,
        "ladder": ladder,
        "ocpp": [_ocpp(m, start, rc) for m in c.get("ocpp_messages") or []],
        "tls": [_tls(t, frame_ns, clock, start) for t in tls],
        "clock": _clock(clock, start),
        "findings": [_short(f, start) for f in c.get("findings") or []],
        "undecided": [_short(f, start) for f in c.get("undecided") or []],
        "reported_codes": [
            {**r, "shown": cx_label(r.get("cx_code")) or r.get("code")} for r in c.get("reported_codes") or []
        ],
        "errors": list(c.get("errors") or []),
        "verification": c.get("verification"),
        "verification_text": verification_text(c.get("verification")),
    }


def _short(f: dict[str, Any], start: int | None) -> dict[str, Any]:
    t = _ns(f.get("time"))
    return {
        "fault": f.get("fault"),
        "frame": f.get("frame"),
        "rel": _rel(t, start),
        "cx_code": f.get("cx_code"),
        "cx": cx_label(f.get("cx_code")),
        "summary": f.get("summary"),
        "inferred": bool(f.get("inferred")),
        "severity": f.get("severity"),
        "fix_side": f.get("fix_side"),
        "display_filter": f.get("display_filter"),
        "stream_filter": f.get("stream_filter"),
    }


def _payload_text(payload: Any) -> str:
    """An OCPP payload pretty-printed (two spaces), as ``json.dumps`` writes it: written by ``_plain_json`` when it
    is plain JSON (most payloads: ``jsontext.plain_json``), which ``json`` does not write in C once it is indented."""
    try:
        return plain_json(payload, "\n")
    except (NotPlain, RecursionError):
        pass
    try:
        return json.dumps(payload, indent=2, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:  # 1e999 as the charger wrote it, not Infinity
        return json.dumps(finite(payload), indent=2, ensure_ascii=False, default=str)


def _ocpp(m: dict[str, Any], start: int | None, rc: dict[str, Any] | None) -> dict[str, Any]:
    payload = m.get("payload")
    text = None if payload is None else _Block(_payload_text(payload))
    kind = m.get("type")
    violations = list(m.get("violations") or [])
    classes = []
    if kind in ("CALLERROR", "CALLRESULTERROR"):
        classes.append("callerror")
    if violations:
        classes.append("violation")
    if kind == "UNPARSED":
        classes.append("unparsed")
    if rc and m.get("frame") == rc.get("frame"):
        classes.append("fail")
    return {
        "frame": m.get("frame"),
        "rel": _rel(_ns(m.get("time")), start),
        "direction": {"charger": "charger → CSMS", "csms": "CSMS → charger"}.get(m.get("from"), m.get("from")),
        "type": kind,
        "action": m.get("action"),
        "unique_id": m.get("unique_id"),
        "payload": text,
        "error_code": m.get("error_code"),
        "error_description": m.get("error_description"),
        "reason": m.get("reason"),
        "violations": violations,
        "classes": " ".join(classes),
    }


def _tls(
    t: dict[str, Any], frame_ns: dict[Any, int | None], clock: dict[str, Any], start: int | None
) -> dict[str, Any]:
    at = frame_ns.get(t.get("frame"))
    offset = clock.get("charger_offset_s")
    charger_ns = None if at is None or offset is None else at + round(offset * 1e9)
    certs = []
    for cert in t.get("certificates") or []:
        nb, na = _ns(cert.get("not_before")), _ns(cert.get("not_after"))
        certs.append(
            {
                "frame": cert.get("frame"),
                "subject": cert.get("subject"),
                "issuer": cert.get("issuer"),
                "san": ", ".join(str(s) for s in cert.get("san") or []) or None,
                "not_before": _clock_text(nb, CERT_TIME) or cert.get("not_before"),
                "not_after": _clock_text(na, CERT_TIME) or cert.get("not_after"),
                "sha256": cert.get("sha256"),
                "at_capture": _validity(at, nb, na),
                "at_charger": _charger_validity(charger_ns, clock.get("reset_to"), nb, na),
            }
        )
    return {
        "frame": t.get("frame"),
        "rel": _rel(at, start),
        "sni": t.get("sni"),
        "offered_versions": ", ".join(str(v) for v in t.get("offered_versions") or []) or None,
        "version": t.get("version"),
        "cipher": t.get("cipher"),
        "alpn": ", ".join(str(a) for a in t.get("alpn") or []) or None,
        "ja3": t.get("ja3"),
        "ja4": t.get("ja4"),
        "certificate_request": bool(t.get("certificate_request")),
        "capture_clock": _clock_text(at),
        "charger_clock": _clock_text(charger_ns),
        "certificates": certs,
        "alerts": [
            {
                "frame": a.get("frame"),
                "from": a.get("from"),
                "level": {1: "warning", 2: "fatal"}.get(a.get("level"), a.get("level")),
                "description": a.get("description"),
                "encrypted": bool(a.get("encrypted")),
                "decrypted": bool(a.get("decrypted")),
            }
            for a in t.get("alerts") or []
        ],
        "decryption": t.get("decryption"),
        "decryption_detail": t.get("decryption_detail"),
    }


def _validity(at: int | None, nb: int | None, na: int | None) -> dict[str, str] | None:
    if at is None or nb is None or na is None:
        return None
    if at < nb:
        return {"text": f"not yet valid ({human_duration((nb - at) / 1e9)} before notBefore)", "cls": "bad"}
    if at > na:
        return {"text": f"expired ({human_duration((at - na) / 1e9)} after notAfter)", "cls": "bad"}
    return {"text": "valid", "cls": "ok"}


def _charger_validity(
    charger_ns: int | None, reset_to: object, nb: int | None, na: int | None
) -> dict[str, str] | None:
    if charger_ns is not None:
        v = _validity(charger_ns, nb, na)
        if v:
            v["text"] = f"{v['text']} by the charger's clock"
        return v
    reset_ns = _ns(f"{reset_to}T00:00:00Z") if isinstance(reset_to, str) else None
    if reset_ns is not None and nb is not None and reset_ns < nb:
        return {"text": f"not yet valid by the charger's clock, reset to {reset_to}", "cls": "bad"}
    return {"text": "the capture shows no reading of the charger's clock", "cls": "unknown"}


def _clock(clock: dict[str, Any], start: int | None) -> dict[str, Any]:
    def offset(key: str) -> dict[str, Any]:
        v = clock.get(key)
        return {"s": v, "human": human_duration(v) if isinstance(v, int | float) else None}

    samples = [_sample(s, start) for s in clock.get("samples") or []]
    return {
        "charger_offset": offset("charger_offset_s"),
        "csms_offset": offset("csms_offset_s"),
        "skew": offset("skew_s"),
        "reset_to": clock.get("reset_to"),
        "samples": samples,
        "sample_rows": _sample_rows(samples),
    }


def _sample(s: dict[str, Any], start: int | None) -> dict[str, Any]:
    captured = _ns(s.get("captured"))
    return {
        "frame": s.get("frame"),
        "side": s.get("side"),
        "source": s.get("source"),
        "value": s.get("value"),
        "rel": _rel(captured, start),
        "captured": _clock_text(captured) or s.get("captured"),
    }


def _sample_rows(samples: list[dict[str, Any]]) -> Markup:
    """The clock readings' rows, written here rather than by a template loop (as ``_timeline_rows``), each value
    as ``cell`` writes it: frame, t, side, source, what the clock said, the capture clock then."""
    texts: list[Any] = []
    for s in samples:
        texts += (s["rel"], s["side"], s["source"], s["value"], s["captured"])
    five = iter(texts_cells(texts))
    return Markup(
        "".join(
            f'      <tr><td class="frame num">{number_cell(s["frame"])}</td><td class="num">{rel}</td><td>{side}</td>'
            f'<td class="mono">{source}</td><td>{value}</td><td>{captured}</td></tr>\n'
            for s, rel, side, source, value, captured in zip(samples, five, five, five, five, five, strict=True)
        )
    )


# ----------------------------------------------------------------------------------------------------- plots


def _timeline_plot(
    name: str, c: dict[str, Any], rows: list[tuple[dict[str, Any], int | None]], start: int | None
) -> tuple[svg.Svg | None, str]:
    timed = [(r, t) for r, t in rows if t is not None] if start is not None else []
    times = [(t - start) / 1e9 for _, t in timed]  # type: ignore[operator]
    layers = [str(r.get("layer") or "capture") for r, _ in timed]
    pins = []
    rc = c.get("root_cause")
    fail_desc = ""
    if rc:
        t = _seconds(_ns(rc.get("time")), start)
        if t is not None:
            pins.append(Pin(t=t, layer=rc.get("layer"), label=f"frame {rc.get('frame')}: {rc.get('fault')}"))
            fail_desc = f"; failure point at frame {rc.get('frame')} ({rc.get('fault')}) at {t:+.4f} s"
    for f in c.get("findings") or []:
        t = _seconds(_ns(f.get("time")), start)
        if t is not None:
            pins.append(Pin(t=t, layer=None, label=str(f.get("fault")), kind="finding"))
    if not times:
        return None, ""
    counts = Counter(layers)  # in the order of the layers' first events
    alt = (
        f"Timeline of charger {name}: {len(times)} events ("
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + f") from {min(times):+.4f} s to {max(times):+.4f} s after the capture start{fail_desc}."
    )
    return svg.timeline_plot(times, layers, pins, _visible(alt)), alt


_FIXED_DIRECTION = {
    "dns.query": ("charger", "dns"),
    "dns.response": ("dns", "charger"),
    "dns.unanswered": ("charger", "dns"),
    "tcp.syn": ("charger", "csms"),
    "tcp.syn_ack": ("csms", "charger"),
    "tcp.icmp_error": ("csms", "charger"),
    "tls.client_hello": ("charger", "csms"),
    "tls.server_hello": ("csms", "charger"),
    "tls.certificate_request": ("csms", "charger"),
    "http.request": ("charger", "csms"),
    "http.response": ("csms", "charger"),
}
LADDER_KINDS = frozenset(
    {
        *_FIXED_DIRECTION,
        "tcp.rst",
        "tcp.fin",
        "tls.certificate",
        "tls.alert",
        "websocket.close",
        "websocket.ping",
        "websocket.pong",
        "ocpp.call",
        "ocpp.call_result",
        "ocpp.call_error",
        "ocpp.call_result_error",
        "ocpp.send",
        "ocpp.unparsed",
        "ocpp.unanswered",
    }
)
NEVER_IN_LADDER = frozenset({"tcp.flow_end", "tls.summary", "websocket.summary", "clock.sample"})
_OTHER = {"charger": "csms", "csms": "charger"}
_new = tuple.__new__
_ENDPOINT = re.compile(r"\S+ \[?([^\s\]]+?)\]?:\d+ → ")  # "RST 10.0.0.2:9000 → ..."
_DNS_ID = re.compile(r" \(id [^)]*\)")
_DNS_RESPONSE = re.compile(r"response (\S+) for (\S+) (\S+): (.*)$")
_ATTEMPT = re.compile(r" \(attempt \d+\)$")
_OCPP_SIDES = ("charger→CSMS ", "CSMS→charger ")  # an OCPP summary's direction, which a ladder label leaves out


def _direction(
    r: dict[str, Any], c: dict[str, Any], ocpp_by_frame: dict[Any, list[dict[str, Any]]], tls: list[dict[str, Any]]
) -> tuple[str | None, str | None]:
    """(source, destination) lifeline of a timeline row, or (None, None) when the row does not say."""
    kind, summary = r.get("event"), str(r.get("summary") or "")
    side = r.get("from")  # a row may name its sender; the current builder's rows do not
    if side in _OTHER:
        return side, _OTHER[side]
    if kind in _FIXED_DIRECTION:
        return _FIXED_DIRECTION[kind]
    if kind in ("tcp.rst", "tcp.fin"):  # "RST 10.0.0.2:9000 → 10.0.0.5:41000"
        m = _ENDPOINT.match(summary)
        if m and c.get("address"):
            return ("charger", "csms") if m.group(1) == c["address"] else ("csms", "charger")
    if kind == "tls.certificate":
        if summary.startswith("server"):
            return "csms", "charger"
        if summary.startswith("client"):
            return "charger", "csms"
    if kind == "tls.alert":
        for t in tls:
            for a in t.get("alerts") or []:
                if a.get("frame") == r.get("frame") and a.get("from") in _OTHER:
                    return a["from"], _OTHER[a["from"]]
    if kind and kind.startswith("ocpp.") and kind != "ocpp.unanswered":
        candidates = ocpp_by_frame.get(r.get("frame"), [])
        for m in [x for x in candidates if x.get("summary") == summary] or candidates[:1]:
            if m.get("from") in _OTHER:
                return m["from"], _OTHER[m["from"]]
        if summary.startswith("charger→CSMS "):  # past the builder's cap on ocpp_messages
            return "charger", "csms"
        if summary.startswith("CSMS→charger "):
            return "csms", "charger"
    return None, None


def _label(r: dict[str, Any], tls: list[dict[str, Any]]) -> str:
    kind, s = str(r.get("event") or ""), str(r.get("summary") or "")
    if kind.startswith("dns."):
        s = _DNS_ID.sub("", s.removeprefix("DNS "))
        m = _DNS_RESPONSE.match(s)
        return f"{m.group(1)} {m.group(2)} {m.group(3)}: {m.group(4)}" if m else s
    if kind in ("tcp.syn", "tcp.syn_ack", "tcp.rst", "tcp.fin"):
        attempt = _ATTEMPT.search(s)
        return s.split(" ", 1)[0] + (attempt.group() if attempt else "")
    if kind == "tls.client_hello":
        for t in tls:
            if t.get("frame") == r.get("frame"):
                offered = "/".join(str(v) for v in t.get("offered_versions") or [])
                return f"ClientHello SNI={t.get('sni') or '-'}" + (f" offers {offered}" if offered else "")
        return s.split(" ALPN=", 1)[0]
    if kind == "tls.server_hello":
        return s.split(" ALPN=", 1)[0]
    if kind == "tls.certificate":
        return s.removeprefix("server ").removeprefix("client ")
    if kind.startswith("tls."):
        return s
    if kind.startswith("websocket."):
        return f"WebSocket {s}"
    if kind.startswith("ocpp."):  # without its direction (``_OCPP_SIDES``, both 13 characters long)
        return s[13:] if s.startswith(_OCPP_SIDES) else s
    if kind in LADDER_KINDS:
        return s
    return f"{kind}: {s}"


def _carries_ocpp(frame: Any, rows: list[tuple[dict[str, Any], int | None]]) -> bool:
    """Whether an OCPP message of ``rows`` is in frame ``frame`` (asked only of a WebSocket message at the failure
    point: the others are not key events)."""
    return any(r.get("frame") == frame and str(r.get("event")).startswith("ocpp.") for r, _ in rows)


def _ladder(
    name: str,
    c: dict[str, Any],
    rows: list[tuple[dict[str, Any], int | None]],
    start: int | None,
    ocpp_by_frame: dict[Any, list[dict[str, Any]]],
    tls: list[dict[str, Any]],
) -> dict[str, Any] | None:
    rc = c.get("root_cause") or {}
    fail_frame, fail_layer = rc.get("frame"), rc.get("layer")
    steps: list[Step] = []
    layers: list[Any] = []
    for r, t in rows:
        kind = r.get("event")
        if kind not in LADDER_KINDS and not (r.get("frame") == fail_frame and kind not in NEVER_IN_LADDER):
            continue
        if kind == "websocket.message" and _carries_ocpp(r.get("frame"), rows):
            continue  # the OCPP message it carries is drawn instead
        src, dst = _direction(r, c, ocpp_by_frame, tls)
        # Step(frame, t, src, dst, label, failing, lost), made without its ``__new__`` (keywords: a Python call)
        step = (r.get("frame") or 0, _seconds(t, start), src, dst, _label(r, tls), False, kind == "dns.unanswered")
        steps.append(_new(Step, step))
        layers.append(r.get("layer"))
    if rc:
        at_frame = [i for i, s in enumerate(steps) if s.frame == fail_frame]
        failing = [i for i in at_frame if layers[i] == fail_layer] or at_frame
        if failing:
            for i in failing:
                s = steps[i]
                label = s.label if s.src else f"{rc.get('fault')}: {s.label}"  # a note names the fault itself
                steps[i] = s._replace(failing=True, label=label)
        else:  # the failure point has no key event of its own (e.g. a data segment): show it as a note
            t = _seconds(_ns(rc.get("time")), start)
            note = Step(
                frame=fail_frame or 0, t=t, src=None, dst=None, failing=True, label=f"failure point: {rc.get('fault')}"
            )
            pos = next((i for i, s in enumerate(steps) if s.frame >= note.frame), len(steps))
            steps.insert(pos, note)
    if not steps:
        return None
    total = len(steps)
    first_fail = next((i for i, s in enumerate(steps) if s.failing), 0)
    begin = max(0, min(first_fail - (MAX_LADDER_STEPS - 10), total - MAX_LADDER_STEPS))
    shown = steps[begin : begin + MAX_LADDER_STEPS]
    before, after = begin, total - begin - len(shown)
    columns = [Column("charger", "Charger", tuple(str(x) for x in (c.get("id"), c.get("address")) if x))]
    if any("dns" in (s.src, s.dst) for s in shown):
        columns.insert(0, Column("dns", "DNS resolver"))
    csms = c.get("csms") or {}
    where = ":".join(str(x) for x in (csms.get("address"), csms.get("port")) if x is not None)
    columns.append(Column("csms", "CSMS", tuple(x for x in (str(csms.get("host") or ""), where) if x)))
    fail_text = next((f"; the failing step is frame {s.frame}: {s.label}" for s in shown if s.failing), "")
    alt = (
        f"Message sequence between charger {name} and the CSMS: {len(shown)} of {total} key events"
        f" in capture order{fail_text}."
    )
    drawn = svg.ladder_svg(
        shown,
        columns,
        note_top=f"… {before} earlier step{'s' if before != 1 else ''} left out" if before else "",
        note_bottom=f"… {after} later step{'s' if after != 1 else ''} left out" if after else "",
        label=_visible(alt),
    )
    return {
        "svg": drawn,
        "alt": alt,
        "shown": len(shown),
        "total": total,
        "before": before,
        "after": after,
    }
