"""A Markdown summary of a report, ready to paste into a ticket: per failing charger a header block (station id,
address, CSMS, ws or wss, failure time, fault, frame, who acts, site visit), the evidence and what to do; healthy
chargers are counted, not described one by one."""

from __future__ import annotations

import re
from typing import Any

from analyzer.budgets import MD_EVIDENCE_ROWS, MD_FINDINGS, MD_NAMES_PER_GROUP
from analyzer.diagnosis.catalogue import cx_label
from analyzer.report.dispatch import dispatch
from analyzer.verify.words import verification_text

# Characters Markdown (CommonMark, GitHub, GitLab) gives a meaning anywhere in a line: each is backslash-escaped,
# which every CommonMark renderer shows as the character itself. ``#``, ``@``, ``!`` and ``~`` are references,
# mentions and labels in GitHub and GitLab; ``&`` starts an entity. Parentheses and braces mean nothing once ``[``
# and ``]`` are escaped, ``=`` only as a line of its own (a setext heading: see ``_LINE_START``).
_MD_SPECIAL = frozenset("\\`*[]<>|#!~&@")
# what would begin a list item, quote, thematic break or setext heading line if the text began a line (a number is
# a list item only with a space or the end after its ``.``/``)``: an address such as 127.0.0.1 is not)
_LINE_START = re.compile(r"^(?:[-+>=]|\d{1,9}[.)](?:[ \t]|$))")
_AUTOLINK = re.compile(r"(?i)(?<=www)\.|:(?=//)")  # GFM extended autolinks: www. and scheme://
_ISO = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)\.(\d{3})\d*Z$")


def _esc(s: object) -> str:
    """A capture string as inert Markdown: no link, image, autolink, HTML, entity, emphasis, code, table cell,
    heading, list, mention or line break it chose. Every line break (CR, LF, U+2028/2029, NEL, VT, FF) and other
    control character becomes a space; Markdown punctuation is backslash-escaped, ``_`` only where it could start
    or end emphasis (an underscore between two letters or digits, ``ocpp_boot.pcap``, never does)."""
    text = "".join(ch if ch.isprintable() or ch == " " else " " for ch in str(s))
    out = []
    for i, ch in enumerate(text):
        if ch in _MD_SPECIAL:
            out.append("\\" + ch)
        elif ch == "_" and not (0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()):
            out.append("\\_")
        else:
            out.append(ch)
    escaped = _AUTOLINK.sub(lambda m: "\\" + m.group(), "".join(out))
    return "\\" + escaped if _LINE_START.match(escaped) else escaped


def _when(iso: str | None) -> str:
    """``2026-11-24T04:17:05.190123456Z`` → ``2026-11-24 04:17:05.190 UTC``; another text as it is."""
    if not iso:
        return "not known"
    m = _ISO.match(iso)
    return f"{m.group(1)} {m.group(2)}.{m.group(3)} UTC" if m else _esc(iso)


def csms_text(c: dict[str, Any]) -> str:
    """``csms.example.test:9000 (192.0.2.7)``, ``192.0.2.7:9000``, ``csms.example.test (port not seen)`` (a
    lookup that failed), or ``not seen``."""
    csms = c.get("csms") or {}
    host, addr, port = csms.get("host"), csms.get("address"), csms.get("port")
    where = host or addr
    if not where:
        return "not seen"
    shown = f"[{where}]" if ":" in where and not host else where  # an IPv6 address before its port
    text = _esc(f"{shown}:{port}" if port is not None else where)
    return text + (f" ({_esc(addr)})" if host and addr else "") + (" (port not seen)" if port is None else "")


TRANSPORT_WORDS = {"ws": "ws (WebSocket without TLS)", "wss": "wss (WebSocket over TLS)"}


def header_block(c: dict[str, Any]) -> list[str]:
    """The facts a ticket needs about one charger with a root cause, one ``- **Name:** value`` line each."""
    rc = c["root_cause"]
    d = dispatch(c) or {}
    times = ""
    if rc.get("count", 1) > 1:
        times = f" (the first of {rc['count']}, frames {rc['frame']} to {rc['last_frame']})"
    why = f" ({_esc(rc['fix_reason'])})" if rc.get("fix_reason") else ""
    visit = "**yes**: the charger has no working session to reach it remotely" if d.get("site_visit") else "no"
    transport = c.get("transport")
    rows = [
        ("Station id", _esc(c["id"]) if c.get("id") else "not seen"),
        ("Charger address", _esc(c["address"])),
        ("CSMS", csms_text(c)),
        ("Connection", TRANSPORT_WORDS.get(transport, _esc(transport)) if transport else "not seen (no connection)"),
        ("Failure time", _when(rc.get("time"))),
        ("Fault", f"`{rc['fault']}`: {_esc(d.get('words', rc['fault']))}"),
        ("ChargeX code", d.get("cx") or "none"),
        ("Frame", f"{rc['frame']}{times}"),
        ("Who acts", f"**{d.get('side_title', '-')}**{why}"),
        ("Site visit", visit),
    ]
    return [f"- **{name}:** {value}" for name, value in rows]


def _described(c: dict[str, Any]) -> list[str]:
    """One charger's section: the header block, summary, evidence and what to do for a root cause; the reason for
    a verdict without one."""
    name = _esc(c["id"] or c["address"])
    rc = c["root_cause"]
    out = []
    if rc is None:
        out.append(f"### {name}: {c['verdict']}")
        out.append("")
        if c.get("verdict_reason"):
            out.append(f"{_esc(c['verdict_reason'])}.")
        for u in c.get("undecided") or []:
            out.append(f"- undecided: `{u['fault']}` at frame {u['frame']}: {_esc(u['summary'])}")
    else:
        d = dispatch(c) or {}
        inferred = " (inferred)" if rc["inferred"] else ""
        out.append(f"### {name}: {c['verdict']}, {_esc(d.get('words', rc['fault']))}{inferred}")
        out.append("")
        out.extend(header_block(c))
        if _filters(rc):
            out.append(f"- **Wireshark:** {_filters(rc)}")
        out.append("")
        out.append(_esc(rc["summary"]))
        out.append("")
        out.append("| frame | evidence | Wireshark filter |")
        out.append("|---|---|---|")
        out.extend(
            f"| {e['frame']} | {_esc(e['what'])} | {_filters(e, ' ') or '-'} |"
            for e in rc["evidence"][:MD_EVIDENCE_ROWS]
        )
        if len(rc["evidence"]) > MD_EVIDENCE_ROWS:
            out.append(f"| … | {len(rc['evidence']) - MD_EVIDENCE_ROWS} more in the JSON report | |")
        out.append("")
        if c.get("verification"):
            out.append(f"Second opinion: {_esc(verification_text(c['verification']))}")
            out.append("")
        out.append("What to do:")
        out.append("")
        out.extend(f"{i}. {_esc(step)}" for i, step in enumerate(rc["remediation"], 1))
        if rc.get("certain_with"):
            out.append("")
            out.append(f"To make this certain: {_esc(rc['certain_with'])}.")
    out.append("")
    more = []
    for f in c["findings"][:MD_FINDINGS]:
        more.append(
            f"- also: {cx_label(f['cx_code']) or 'no CX code'}, `{f['fault']}` at frame {f['frame']}"
            f"{_paren(_filters(f))}: {_esc(f['summary'])}"
        )
    if len(c["findings"]) > MD_FINDINGS:
        more.append(f"- and {len(c['findings']) - MD_FINDINGS} more findings in the JSON report")
    for f in c.get("warnings") or []:
        more.append(
            f"- warning (nothing broke): `{f['fault']}` at frame {f['frame']}{_paren(_filters(f))}: "
            f"{_esc(f['summary'])}"
        )
    for code in c["reported_codes"]:
        shown = cx_label(code["cx_code"]) if code["cx_code"] else code["code"]
        more.append(f"- charger reported {_esc(shown)} at frame {code['frame']} ({_esc(code['source'])})")
    if more:
        out.extend([*more, ""])
    return out


def _paren(text: str) -> str:
    return f" ({text})" if text else ""


def _filters(item: dict[str, Any], sep: str = " · ") -> str:
    """The Wireshark display filters of a finding or evidence item as code spans (``analyzer.report.wireshark``
    writes them from numbers only: nothing in them needs escaping)."""
    return sep.join(f"`{item[k]}`" for k in ("display_filter", "stream_filter") if item.get(k))


def report_markdown(r: dict[str, Any]) -> str:
    cap = r["capture"]
    chargers = r["chargers"]
    out = [f"## ghostcap: {_esc(cap['file'])}", ""]
    out.append(
        f"{cap['packets']} packets, {_when(cap['first'])} to {_when(cap['last'])}, sha256 `{cap['sha256'] or '-'}`"
    )
    if chargers:
        counts = {v: sum(1 for c in chargers if c["verdict"] == v) for v in ("fault", "inconclusive", "healthy")}
        out.append("")
        out.append(
            "Chargers: " + ", ".join(f"**{n} {v}**" if v != "healthy" else f"{n} {v}" for v, n in counts.items() if n)
        )
    if cap["warnings"]:
        out.append("")
        out.extend(f"- warning: {_esc(w)}" for w in cap["warnings"])
    out.append("")
    if not chargers:
        out.append("No charger talking to a CSMS found in this capture.")
        out.append("")
    failing = [c for c in chargers if c["root_cause"] is not None]
    failing.sort(key=lambda c: c["verdict"] != "fault")  # faults first, then inconclusive verdicts with a cause
    undecided = [c for c in chargers if c["root_cause"] is None and c["verdict"] != "healthy"]
    described = failing + (undecided if len(undecided) <= MD_NAMES_PER_GROUP else [])
    for c in described:
        out.extend(_described(c))
    shown = {id(c) for c in described}
    rest = [c for c in chargers if id(c) not in shown]
    groups: dict[tuple[str, str], list[str]] = {}
    for c in rest:
        groups.setdefault((c["verdict"], c.get("verdict_reason") or ""), []).append(c["id"] or c["address"])
    order = ("inconclusive", "healthy")
    for (verdict, reason), names in sorted(groups.items(), key=lambda g: (order.index(g[0][0]), -len(g[1]))):
        listed = ", ".join(_esc(n) for n in names[:MD_NAMES_PER_GROUP])
        more = f" and {len(names) - MD_NAMES_PER_GROUP} more" if len(names) > MD_NAMES_PER_GROUP else ""
        noun = "charger" if len(names) == 1 else "chargers"
        why = f" ({_esc(reason)})" if reason else ""
        out.append(f"**{len(names)} {verdict}** {noun}{why}: {listed}{more}")
        out.append("")
    others = r.get("others") or []
    if others:
        out.append("Not chargers:")
        out.append("")
        out.extend(f"- {_esc(o['summary'])} (from frame {o['first_frame']})" for o in others)
        out.append("")
    return "\n".join(out).rstrip() + "\n"
