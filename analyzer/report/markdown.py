"""A short Markdown summary of a report, for ticket systems: verdict per charger, evidence, what to do."""

from __future__ import annotations

from typing import Any


def _esc(s: object) -> str:
    """Neutralise Markdown/HTML in capture strings (ticket systems render both)."""
    text = str(s)
    for ch in "\\`*_[]<>|#":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ")


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
        out.append("No charger traffic found in this capture.")
    for c in r["chargers"]:
        name = _esc(c["id"] or c["address"])
        rc = c["root_cause"]
        if rc is None:
            out.append(f"### {name}: **{c['verdict']}**")
            if c.get("verdict_reason"):
                out.append(f"{_esc(c['verdict_reason'])}.")
        else:
            inferred = " (inferred)" if rc["inferred"] else ""
            out.append(f"### {name}: **{rc['cx_code'] or '-'} {rc['fault']}**{inferred} at frame {rc['frame']}")
            out.append("")
            out.append(_esc(rc["summary"]))
            out.append("")
            out.append("| frame | evidence |")
            out.append("|---|---|")
            out.extend(f"| {e['frame']} | {_esc(e['what'])} |" for e in rc["evidence"])
            out.append("")
            out.append("What to do:")
            out.extend(f"1. {_esc(step)}" for step in rc["remediation"])
            if rc.get("certain_with"):
                out.append(f"\nTo make this certain: {_esc(rc['certain_with'])}.")
        for f in c["findings"]:
            out.append(f"- also: {f['cx_code'] or '-'} {f['fault']} at frame {f['frame']}: {_esc(f['summary'])}")
        for code in c["reported_codes"]:
            out.append(
                f"- charger reported {code['cx_code'] or code['code']} at frame {code['frame']} ({code['source']})"
            )
        out.append("")
    return "\n".join(out).rstrip() + "\n"
