"""The fleet summary as Markdown (``DIR/fleet.md``), for a ticket or a chat: who acts first, then the funnel and
the faults. Every capture-derived string goes through the report's Markdown escaping."""

from __future__ import annotations

from analyzer.diagnosis.catalogue import SIDE_WORDS
from analyzer.report.markdown import _MD_SPECIAL
from analyzer.report.markdown import _esc as _line_esc
from analyzer.triage.fleet import Charger, Dispatch, duration_words

MEMBERS_LISTED = 20  # member chargers named per incident; the rest counted
ROWS_LISTED = 200  # rows per list (site visits, the rest); the rest counted


def _esc(s: object) -> str:
    """A capture string as inert Markdown inside a line (no line-start escape: ``127.0.0.1`` stays as is)."""
    text = _line_esc(s)
    if text.startswith("\\") and not str(s).startswith(tuple(_MD_SPECIAL)):
        return text[1:]
    return text


def headline(d: Dispatch) -> str:
    """The first line an operations lead reads: how many backend incidents, site visits, network problems."""
    inc = len(d.incidents)
    members = sum(len(i.members) for i in d.incidents)
    visits = len(d.site_visits)
    net = sum(len(g.chargers) for g in d.network)
    rest = len(d.remote) + len(d.capture) + len(d.inconclusive)
    return (
        f"{inc} backend incident{'s' if inc != 1 else ''} ({members} charger{'s' if members != 1 else ''}), "
        f"{visits} site visit{'s' if visits != 1 else ''}, {net} charger{'s' if net != 1 else ''} with network "
        f"problems in {len(d.network)} group{'s' if len(d.network) != 1 else ''}, {rest} other charger"
        f"{'s' if rest != 1 else ''} to look at"
    )


def _name(c: Charger) -> str:
    s = c.state
    who = _esc(s.get("charger_id") or "no station id")
    return f"{who} ({_esc(s.get('charger_address'))})" if s.get("charger_address") else who


def fleet_markdown(d: Dispatch) -> str:
    captures = d.captures
    v = d.verdicts
    out = [
        f"# Fleet triage: {len(d.chargers)} chargers in {captures} captures",
        "",
        f"**{headline(d)}.** Chargers: {v.get('fault', 0)} failing, {v.get('inconclusive', 0)} inconclusive, "
        f"{v.get('healthy', 0)} healthy (each by its latest capture).",
        "",
        f"## Backend incidents: {SIDE_WORDS['csms']} fixes each once",
        "",
    ]
    if not d.incidents:
        out.append("None.")
    for n, inc in enumerate(d.incidents, 1):
        members = list(inc.members.values())
        names = ", ".join(
            _esc(rs[-1].get("charger_id") or rs[-1].get("charger_address")) for rs in members[:MEMBERS_LISTED]
        )
        more = f" and {len(members) - MEMBERS_LISTED} more" if len(members) > MEMBERS_LISTED else ""
        still = "" if inc.still_failing == len(members) else f" ({inc.still_failing} still failing)"
        out.append(f"{n}. **{_esc(inc.summary)}**{still}. Fix: {_esc(inc.fix or 'see the reports')}")
        out.append(f"   Chargers: {names}{more}.")
    out += ["", "## Site visits: someone must go there (longest failing first)", ""]
    if d.site_visits:
        # how long its captures show it failing, up to the end of its latest one: it may have failed longer
        out += ["| charger | fault | failing for at least | what to do on site | capture |", "|---|---|---|---|---|"]
        for c in d.site_visits[:ROWS_LISTED]:
            s = c.state
            out.append(
                f"| {_name(c)} | `{_esc(s.get('fault'))}` {_esc(s.get('cx_code') or '')} | "
                f"{duration_words(c.failing_s)} | {_esc(s.get('fix') or '')} | {_esc(s.get('capture'))} |"
            )
        if len(d.site_visits) > ROWS_LISTED:
            out.append(f"\n… and {len(d.site_visits) - ROWS_LISTED} more (fleet.json has all).")
    else:
        out.append("None.")
    out += ["", f"## Network problems: {SIDE_WORDS['network']}, by resolver or site", ""]
    if not d.network:
        out.append("None.")
    for g in d.network:
        faults = ", ".join(f"`{_esc(f)}` ×{n}" for f, n in g.faults)
        out.append(
            f"- {g.by} **{_esc(g.where)}**: {len(g.chargers)} charger{'s' if len(g.chargers) != 1 else ''} "
            f"({faults}). Fix: {_esc(g.fix or 'see the reports')}"
        )
    out += ["", "## The rest", ""]
    rest = [
        ("Charger fixes over a working session (remote)", d.remote),
        ("The capture cannot tell who acts (take a better one)", d.capture),
        ("Inconclusive", d.inconclusive),
    ]
    any_rest = False
    for title, cs in rest:
        if not cs:
            continue
        any_rest = True
        out.append(f"**{title}** ({len(cs)}):")
        for c in cs[:ROWS_LISTED]:
            s = c.state
            what = f"`{_esc(s.get('fault'))}`: {_esc(s.get('fix') or '')}" if s.get("fault") else "inconclusive"
            out.append(f"- {_name(c)}: {what}")
        out.append("")
    if d.unanalysed:
        any_rest = True
        out.append(f"**Captures without a charger verdict** ({len(d.unanalysed)}):")
        for r in d.unanalysed[:ROWS_LISTED]:
            why = _esc(r.get("error")) if r.get("error") else "no charger found"
            out.append(f"- {_esc(r.get('capture'))}: {why}")
        out.append("")
    if not any_rest:
        out.append("None.")
    out += ["", "## Funnel: chargers that reached each stage", "", "| stage | chargers |", "|---|---|"]
    out += [f"| {title} | {n} |" for _, title, n in d.funnel]
    out += ["", "## Faults (failing chargers, every fault id)", ""]
    if d.faults:
        out += ["| fault | chargers |", "|---|---|"]
        out += [f"| `{_esc(f)}` | {n} |" for f, n in d.faults]
    else:
        out.append("None.")
    return "\n".join(out).rstrip() + "\n"
