"""A short Markdown summary of a report, for ticket systems: verdict per charger, evidence, what to do."""

from __future__ import annotations

import re
from typing import Any

from analyzer.budgets import MD_EVIDENCE_ROWS, MD_FINDINGS, MD_NAMES_PER_GROUP
from analyzer.report.dispatch import dispatch

# Characters Markdown (CommonMark, GitHub, GitLab, Jira-style renderers) gives a meaning inline: each is
# backslash-escaped, which every CommonMark renderer shows as the character itself.
_MD_SPECIAL = frozenset("\\`*_[]()<>{}|#!~=&@")
_LINE_START = re.compile(r"^(?:[-+>]|\d+[.)])")  # a list item, quote or numbered item if it began a line
_AUTOLINK = re.compile(r"(?i)(?<=www)\.|:(?=//)")  # GFM extended autolinks: www. and scheme://


def _esc(s: object) -> str:
    """A capture string as inert Markdown: no link, image, autolink, HTML, entity, emphasis, code, table cell,
    heading, list or line break it chose. Every line break (CR, LF, U+2028/2029, NEL, VT, FF) and other control
    character becomes a space; Markdown punctuation is backslash-escaped."""
    out = []
    for ch in str(s):
        if ch in _MD_SPECIAL:
            out.append("\\" + ch)
        elif not ch.isprintable() and ch != " ":
            out.append(" ")
        else:
            out.append(ch)
    text = _AUTOLINK.sub(lambda m: "\\" + m.group(), "".join(out))
    return "\\" + text if _LINE_START.match(text) else text


def _filters(item: dict[str, Any], sep: str = " · ") -> str:
    """The Wireshark display filters of a finding or evidence item as code spans (``analyzer.report.wireshark``
    writes them from numbers only: nothing in them needs escaping)."""
    return sep.join(f"`{item[k]}`" for k in ("display_filter", "stream_filter") if item.get(k))


def report_markdown(r: dict[str, Any]) -> str:
    cap = r["capture"]
    out = [f"## ghostcap: {_esc(cap['file'])}", ""]
    out.append(
        f"{cap['packets']} packets, {cap['first'] or '-'} to {cap['last'] or '-'}, sha256 `{cap['sha256'] or '-'}`"
    )
    for w in cap["warnings"]:
        out.append(f"- warning: {_esc(w)}")
    out.append("")
    if not r["chargers"]:
        out.append("No charger talking to a CSMS found in this capture.")
    failing = [c for c in r["chargers"] if c["root_cause"] is not None]
    rest = [c for c in r["chargers"] if c["root_cause"] is None]
    grouped = len(rest) > MD_NAMES_PER_GROUP
    for c in failing + ([] if grouped else rest):
        name = _esc(c["id"] or c["address"])
        rc = c["root_cause"]
        if rc is None:
            out.append(f"### {name}: **{c['verdict']}**")
            if c.get("verdict_reason"):
                out.append(f"{_esc(c['verdict_reason'])}.")
        else:
            inferred = " (inferred)" if rc["inferred"] else ""
            d = dispatch(c) or {}
            out.append(f"### {name}: **{_esc(d.get('words', rc['fault']))}**{inferred}")
            out.append("")
            visit = "**site visit needed**" if d.get("site_visit") else "no site visit"
            why = f" ({_esc(rc['fix_reason'])})" if rc.get("fix_reason") else ""
            times = (
                f" · {rc['count']} times, frames {rc['frame']} to {rc['last_frame']}" if rc.get("count", 1) > 1 else ""
            )
            out.append(
                f"Who acts: **{d.get('side_title', '-')}**{why} · {visit} · {d.get('cx') or 'no CX code'} · "
                f"`{rc['fault']}` at frame {rc['frame']}{times}"
            )
            if _filters(rc):
                out.append(f"\nWireshark: {_filters(rc)}")
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
            out.append("What to do:")
            out.extend(f"1. {_esc(step)}" for step in rc["remediation"])
            if rc.get("certain_with"):
                out.append(f"\nTo make this certain: {_esc(rc['certain_with'])}.")
        for f in c["findings"][:MD_FINDINGS]:
            shown = f" ({_filters(f)})" if _filters(f) else ""
            out.append(f"- also: {f['cx_code'] or '-'} {f['fault']} at frame {f['frame']}{shown}: {_esc(f['summary'])}")
        if len(c["findings"]) > MD_FINDINGS:
            out.append(f"- and {len(c['findings']) - MD_FINDINGS} more findings in the JSON report")
        for f in c.get("warnings") or []:
            shown = f" ({_filters(f)})" if _filters(f) else ""
            out.append(f"- warning (nothing broke): {f['fault']} at frame {f['frame']}{shown}: {_esc(f['summary'])}")
        for code in c["reported_codes"]:
            out.append(
                f"- charger reported {_esc(code['cx_code'] or code['code'])} at frame {code['frame']} "
                f"({_esc(code['source'])})"
            )
        out.append("")
    if grouped:
        groups: dict[tuple[str, str], list[str]] = {}
        for c in rest:
            groups.setdefault((c["verdict"], c.get("verdict_reason") or ""), []).append(c["id"] or c["address"])
        for (verdict, reason), names in sorted(groups.items(), key=lambda g: -len(g[1])):
            shown = ", ".join(_esc(n) for n in names[:MD_NAMES_PER_GROUP])
            more = f" and {len(names) - MD_NAMES_PER_GROUP} more" if len(names) > MD_NAMES_PER_GROUP else ""
            out.append(f"**{len(names)} {verdict}**" + (f" ({_esc(reason)})" if reason else "") + f": {shown}{more}")
            out.append("")
    others = r.get("others") or []
    if others:
        out.append("Not chargers:")
        out.extend(f"- {_esc(o['summary'])} (from frame {o['first_frame']})" for o in others)
        out.append("")
    return "\n".join(out).rstrip() + "\n"
