"""``--verify`` for one analysed capture: claims per charger, one tshark run for all of them, the comparison, as
the per-charger ``verification`` object of the JSON report::

    {"done": true, "tool": "tshark 4.0.17", "note": null, "agree": true,
     "filter": "frame.number in {8,10,12}",
     "checks": [{"frame": 12, "field": "tls.alert", "ghostcap": "bad_certificate", "tshark": "bad_certificate",
                 "agree": true}, ...]}

``done`` false (with ``note`` saying why, ``agree`` null, no checks) when tshark could not be asked; ``agree``
null when there was nothing to check (no root cause); ``tshark`` null in a check when tshark did not show the
field at all. ``verification`` is null in a report made without ``--verify``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from analyzer.budgets import VERIFY_FRAMES, VERIFY_TIMEOUT_S
from analyzer.engine import Analysis
from analyzer.events.base import Event
from analyzer.timeline import FlowInfo
from analyzer.verify.claims import Claim, checked_frames, claims
from analyzer.verify.compare import Check, compare
from analyzer.verify.tshark import Tshark, VerifyFailed, dissect, frame_filter

HTTP_LAYERS = ("http", "websocket", "ocpp")


def not_done(note: str, tool: str | None = None) -> dict[str, Any]:
    """The ``verification`` object of a charger tshark could not be asked about, saying why."""
    return {"done": False, "tool": tool, "note": note, "agree": None, "filter": None, "checks": []}


def verify_analysis(
    analysis: Analysis,
    capture: str | Path,
    tshark: Tshark,
    keylog_files: Sequence[str] = (),
    timeout_s: float = VERIFY_TIMEOUT_S,
) -> list[dict[str, Any]]:
    """One ``verification`` object per charger of ``analysis`` (in its order), from one tshark run over the frames
    every charger's root cause and evidence name."""
    per_charger = [claims(r.charger.events, checked_frames(r)) for r in analysis.results]
    frames = sorted({c.frame for cl in per_charger for c in cl})
    asked = set(frames[:VERIFY_FRAMES])
    if str(capture) == "-":
        return [not_done("the capture was read from standard input: tshark cannot read it again", tshark.title)] * len(
            per_charger
        )
    dissection = {}
    if asked:
        events = [e for r in analysis.results for e in r.charger.events]
        try:
            dissection = dissect(
                tshark,
                capture,
                sorted(asked),
                decode_as_for(_events_of_flows(events, asked), analysis.timeline.flows),
                keylog_files,
                timeout_s,
            )
        except VerifyFailed as e:
            return [not_done(str(e), tshark.title) for _ in per_charger]
    return [_verification(cl, asked, dissection, tshark) for cl in per_charger]


def _verification(cl: list[Claim], asked: set[int], dissection: Mapping[int, Any], tshark: Tshark) -> dict[str, Any]:
    kept = [c for c in cl if c.frame in asked]
    checks = compare(kept, dissection)
    left = len({c.frame for c in cl}) - len({c.frame for c in kept})
    note = None
    if not cl:
        note = "no root cause, so no frame to check"
    elif left:
        note = f"{left} frames not checked (at most {VERIFY_FRAMES} frames are asked about per capture)"
    return {
        "done": True,
        "tool": tshark.title,
        "note": note,
        "agree": all(c.agree for c in checks) if checks else None,
        "filter": frame_filter(sorted({c.frame for c in kept}), tshark.major) if kept else None,
        "checks": [check_dict(c) for c in checks],
    }


def check_dict(c: Check) -> dict[str, Any]:
    return {"frame": c.frame, "field": c.field, "ghostcap": c.ghostcap, "tshark": c.tshark, "agree": c.agree}


def _events_of_flows(events: Iterable[Event], frames: set[int]) -> list[Event]:
    """Every event of the flows that have an event in ``frames``."""
    events = list(events)
    flows = {e.flow_id for e in events if e.frame in frames and e.flow_id is not None}
    return [e for e in events if e.flow_id in flows]


def decode_as_for(events: Iterable[Event], flows: Mapping[int, FlowInfo]) -> dict[str, str]:
    """tshark ``-d`` rules for the TCP flows of ``events``: a flow ghostcap read TLS on is TLS on its server port
    (and HTTP inside, when ghostcap read HTTP, WebSocket or OCPP there); one with only HTTP is HTTP. tshark finds
    neither on a port that is not their own (9412 is no 443)."""
    tls: set[int] = set()
    http: set[int] = set()
    for e in events:
        if e.flow_id is None:
            continue
        if e.layer == "tls":
            tls.add(e.flow_id)
        elif e.layer in HTTP_LAYERS:
            http.add(e.flow_id)
    out: dict[str, str] = {}
    for fid in sorted(tls | http):
        info = flows.get(fid)
        if info is None or info.proto != "tcp":
            continue
        port = info.server_port
        if fid in tls:
            out[f"tcp.port=={port}"] = "tls"
            if fid in http:
                out[f"tls.port=={port}"] = "http"
        else:
            out.setdefault(f"tcp.port=={port}", "http")
    return out
