"""Who acts, in words every report uses (HTML verdict card, Markdown, the CLI line): the fault in plain words, the
side that can fix it, whether someone must go there, and the CX code with its ChargeX name."""

from __future__ import annotations

from typing import Any

from analyzer.diagnosis.catalogue import FAULTS, SIDE_WORDS, cx_label

SIDE_TITLES = {"charger": "charger", "csms": "CSMS", "network": "network", "capture": "capture"}


def fault_words(fault: str | None) -> str:
    """The catalogue's meaning of ``fault`` ("the CSMS host name does not exist (rcode 3)"), else the id."""
    return FAULTS[fault].meaning if fault in FAULTS else str(fault)


def dispatch(charger: dict[str, Any]) -> dict[str, Any] | None:
    """For a report charger with a root cause: ``side`` (charger|csms|network|capture), ``side_title``,
    ``side_words``, ``site_visit``, ``cx`` ("CX013 NoInternet" or None), ``words`` (the fault in plain words),
    ``line`` (all of it in one sentence). None when there is no root cause."""
    rc = charger.get("root_cause")
    if not rc:
        return None
    side = rc.get("fix_side") or "capture"
    visit = bool(charger.get("site_visit"))
    cx = cx_label(rc.get("cx_code"))
    why = f" ({rc['fix_reason']})" if rc.get("fix_reason") else ""
    line = f"Who acts: {SIDE_WORDS.get(side, side)}{why}; " + (
        "site visit needed (the charger has no working session to reach it remotely)." if visit else "no site visit."
    )
    return {
        "side": side,
        "side_title": SIDE_TITLES.get(side, side),
        "side_words": SIDE_WORDS.get(side, side),
        "site_visit": visit,
        "cx": cx,
        "words": fault_words(rc.get("fault")),
        "line": line,
    }


def cli_line(charger: dict[str, Any]) -> str:
    """``CHARGER VERDICT FAULT @FRAME CXnnn Name fix:SIDE [site-visit]`` for one charger of a report (``CHARGER
    VERDICT`` without a root cause, with ``(N warnings)`` when it has some). The charger is one word: a station id
    from the capture has its spaces and control characters escaped."""
    who = token(charger.get("id") or charger.get("address") or "?")
    rc = charger.get("root_cause")
    verdict = charger.get("verdict")
    if not rc:
        warn = len(charger.get("warnings") or [])
        return f"{who} {verdict}" + (f" ({warn} warning{'s' if warn != 1 else ''})" if warn else "")
    d = dispatch(charger) or {}
    visit = " site-visit" if d.get("site_visit") else ""
    return f"{who} {verdict} {rc['fault']} @{rc['frame']} {d.get('cx') or 'no-CX'} fix:{d.get('side')}{visit}"


def token(text: str) -> str:
    """``text`` as one printable word for a line a script splits on spaces: whitespace and control characters
    (an escape sequence a hostile station id carries) as ``\\xNN``/``\\uNNNN``, a backslash doubled."""
    out = []
    for ch in str(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == " ":
            out.append("\\x20")
        elif ch.isspace() or not ch.isprintable():
            out.append(ascii(ch)[1:-1])
        else:
            out.append(ch)
    return "".join(out)


OTHER_WORDS = {
    "iso15118": "car-to-charger ISO 15118 / DIN 70121 traffic",
    "tls.scheme_mismatch": "clients sending TLS to a plain-WebSocket port",
    "relay_leg": "a relay's copy of sessions",
    "unidentified_clients": "clients without OCPP; name the CSMS with --csms",
}


def capture_lines(report: dict[str, Any]) -> list[str]:
    """What the CLI prints for one capture, one line per charger; a capture without one gets one line saying what
    it holds instead."""
    lines = [cli_line(c) for c in report["chargers"]]
    if lines:
        return lines
    held = sorted({OTHER_WORDS.get(o["what"], o["what"]) for o in report.get("others") or []})
    return ["no charger found" + (f" (the capture holds {', '.join(held)})" if held else "")]
