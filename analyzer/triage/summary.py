"""The fleet summary ``DIR/index.html``: one self-contained page over every row of the results store.

It leads with who acts (``fleet.dispatch``): the backend incidents with their single fix, the site visits (longest
failing first), the network problems by resolver or site, then the rest; then the funnel (chargers reaching each
stage), the faults by id (every id: none is folded into "other"), failures over time, and every row in a table
with a filter box and sortable columns, linking each capture's reports (relative ``captures/...`` links).

Like the per-capture report it loads nothing (inline CSS, two PNG ``data:`` URIs drawn by matplotlib on Agg once
per run) and escapes every capture-derived string (jinja2 autoescape, the report's ``_visible`` finalize). Its one
script, which sorts and filters the tables, is allowed by its sha256 in the Content-Security-Policy, computed here
at render time; no other script can run.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment
from markupsafe import Markup

from analyzer import __version__
from analyzer.diagnosis.catalogue import SIDE_WORDS
from analyzer.triage.fleet import Charger, Dispatch, dispatch, duration_words, fleet_dict, short_time

TEMPLATES = Path(__file__).parent / "templates"
SORT_SCRIPT = TEMPLATES / "fleet-sort.js"
FAILED = ("fault", "error")
STEPS = tuple(timedelta(minutes=m) for m in (1, 10, 60, 6 * 60, 24 * 60, 7 * 24 * 60, 30 * 24 * 60))
STEP_NAMES = ("minute", "10 minutes", "hour", "6 hours", "day", "week", "30 days")
MAX_BINS = 72
NEEDS_SHOWN = 3  # lines of "what it needs" per card on the first screen; the sections below list every one
MEMBERS_SHOWN = 200  # member chargers listed per incident on the page; the rest counted (fleet.json has all)
_PNG_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]+={0,2}")


def csp_for(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def _env() -> Environment:
    from analyzer.report.html import template_env

    return template_env(TEMPLATES)


def fleet_html(
    rows: Sequence[dict[str, Any]], title: str = "ghostcap fleet triage", view: Dispatch | None = None
) -> str:
    """The page for ``rows`` (``Store.rows()``) and their ``fleet.dispatch`` (computed when not given)."""
    script = SORT_SCRIPT.read_text(encoding="utf-8")
    return (
        _env()
        .get_template("fleet.html.j2")
        .render(
            title=title,
            csp=csp_for(script),
            script=Markup(script),  # our own static file, never capture data
            version=__version__,
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            **_view(rows, view or dispatch(rows)),
        )
    )


def write_fleet_html(rows: Sequence[dict[str, Any]], path: Path, view: Dispatch | None = None) -> None:
    from analyzer.report.writer import _write_atomic

    _write_atomic(path, fleet_html(rows, view=view))


def write_fleet_json(view: Dispatch, path: Path) -> None:
    from analyzer.jsontext import dumps
    from analyzer.report.writer import _write_atomic

    _write_atomic(path, dumps(fleet_dict(view)) + "\n")


def write_fleet_markdown(view: Dispatch, path: Path) -> None:
    from analyzer.report.writer import _write_atomic
    from analyzer.triage.fleet_md import fleet_markdown

    _write_atomic(path, fleet_markdown(view))


# ------------------------------------------------------------------------------------------------------ view


def _img(png: Any) -> dict[str, Any]:
    """A plot for ``<img>``: the ``data:`` URI is our own base64 (checked), so ``MAX_TEXT`` must not cut it."""
    if not _PNG_URI.fullmatch(png.uri):
        raise ValueError("not a PNG data URI")
    return {"uri": Markup(png.uri), "width": png.width, "height": png.height}


def _charger(c: Charger) -> dict[str, Any]:
    s = c.state
    return {
        "id": s.get("charger_id"),
        "address": s.get("charger_address"),
        "fault": s.get("fault"),
        "cx_code": s.get("cx_code"),
        "fix": s.get("fix"),
        "site": s.get("site"),
        "capture": s.get("capture"),
        "failing_s": c.failing_s,
        "failing_for": duration_words(c.failing_s) if c.failing_s is not None else None,
        "since": short_time(c.failing_since),
        "stage": s.get("stage"),
        "html_href": quote(s["report_html"]) if s.get("report_html") else None,
        "json_href": quote(s["report_json"]) if s.get("report_json") else None,
    }


def _view(rows: Sequence[dict[str, Any]], d: Dispatch) -> dict[str, Any]:
    from analyzer.report import charts
    from analyzer.triage.fleet_md import headline

    captures = {(r["sha256"] or r["path"]) for r in rows}
    plots = []
    if d.faults:
        plots.append(
            (
                "Failing chargers by fault id (each by its latest capture)",
                _img(charts.to_png(_bars(d.faults, "chargers"))),
            )
        )
    over_time = _over_time(rows)
    if over_time is not None:
        plots.append(("Failures over time (by capture start)", _img(charts.to_png(over_time))))
    total = len(d.chargers) or 1
    visits = Counter((c.state.get("fault"), c.state.get("fix")) for c in d.site_visits).most_common()
    needs = {
        "incidents": [
            (len(i.members), f"{i.fault} against {i.csms_endpoint or 'the CSMS'}", i.fix) for i in d.incidents
        ],
        "visits": [(n, fault, fix) for (fault, fix), n in visits],
        "network": [
            (len(g.chargers), f"{g.by} {g.where}: " + ", ".join(f for f, _ in g.faults), g.fix) for g in d.network
        ],
        "rest": [
            (n, what, fix)
            for n, what, fix in (
                (len(d.remote), "charger fixes over a working session", "remotely, by the charger's operator"),
                (len(d.capture), "the capture cannot tell who acts", "take a better capture"),
                (len(d.inconclusive), "inconclusive", "a longer capture or the key log"),
                (len(d.unanalysed), "captures without a charger verdict", "see why in the table"),
            )
            if n
        ],
    }
    sides = {f: Counter(c.state.get("fix_side") for c in d.chargers if c.state.get("fault") == f) for f, _ in d.faults}
    return {
        "headline": headline(d),
        "needs": {k: v[:NEEDS_SHOWN] for k, v in needs.items()},
        "needs_more": {k: max(0, len(v) - NEEDS_SHOWN) for k, v in needs.items()},
        "totals": {
            "captures": len(captures),
            "rows": len(rows),
            "chargers": len(d.chargers),
            **{v: d.verdicts.get(v, 0) for v in ("fault", "inconclusive", "healthy")},
            "no_charger": sum(1 for r in rows if r["verdict"] == "no_charger"),
            "error": sum(1 for r in rows if r["verdict"] == "error"),
        },
        "side_words": SIDE_WORDS,
        "incidents": [
            {
                "n": n,
                "summary": inc.summary,
                "fix": inc.fix,
                "chargers": len(inc.members),
                "still_failing": inc.still_failing,
                "members": [
                    {"id": rs[-1].get("charger_id"), "address": rs[-1].get("charger_address"), "captures": len(rs)}
                    for rs in list(inc.members.values())[:MEMBERS_SHOWN]
                ],
                "members_more": max(0, len(inc.members) - MEMBERS_SHOWN),
            }
            for n, inc in enumerate(d.incidents, 1)
        ],
        "incident_chargers": sum(len(i.members) for i in d.incidents),
        "site_visits": [_charger(c) for c in d.site_visits],
        "network": [
            {
                "by": g.by,
                "where": g.where,
                "count": len(g.chargers),
                "faults": g.faults,
                "fix": g.fix,
                "chargers": [_charger(c) for c in g.chargers],
            }
            for g in d.network
        ],
        "network_chargers": sum(len(g.chargers) for g in d.network),
        "rest": [
            (title, [_charger(c) for c in cs])
            for title, cs in (
                ("Charger fixes over a working session (remotely)", d.remote),
                ("The capture cannot tell who acts (take a better one)", d.capture),
                ("Inconclusive", d.inconclusive),
            )
            if cs
        ],
        "rest_count": len(d.remote) + len(d.capture) + len(d.inconclusive),
        "unanalysed": [_table_row(r) for r in d.unanalysed],
        "funnel": [{"title": t, "n": n, "pct": round(100 * n / total)} for _, t, n in d.funnel],
        "faults": [{"fault": f, "n": n, "side": (sides[f].most_common(1) or [(None, 0)])[0][0]} for f, n in d.faults],
        "plots": plots,
        "rows": [_table_row(r) for r in rows],
    }


def _table_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        **r,
        "who": r.get("charger_id") or r.get("charger_address"),
        "html_href": quote(r["report_html"]) if r.get("report_html") else None,
        "json_href": quote(r["report_json"]) if r.get("report_json") else None,
        "first_text": _short_time(r.get("capture_first")),
    }


def _parse(iso: str | None) -> datetime | None:
    if not iso:
        return None
    try:
        return datetime.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _short_time(iso: str | None) -> str | None:
    t = _parse(iso)
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else None


# ---------------------------------------------------------------------------------------------------- charts


def _bars(counts: list[tuple[str, int]], unit: str) -> Any:
    """Horizontal bars, largest on top, every one (none folded into "other")."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from analyzer.report.charts import FAIL, FONT, INK, MUTED, chart_text

    labels = [chart_text(k, 40) for k, _ in counts]
    values = [n for _, n in counts]
    height = 0.8 + 0.3 * len(counts)
    fig = Figure(figsize=(6.2, height), dpi=100, facecolor="white")
    ax = fig.add_axes((0.36, 0.5 / height, 0.58, 0.3 * len(counts) / height))
    ys = range(len(values))
    ax.barh(ys, values, color=FAIL, height=0.65)
    ax.set_yticks(list(ys), labels, fontsize=8.5, color=INK, family=FONT, parse_math=False)
    ax.set_ylim(len(values) - 0.5, -0.5)
    ax.set_xlim(0, max(values) * 1.15)
    for y, v in zip(ys, values, strict=True):
        ax.text(v, y, f" {v}", va="center", fontsize=8, color=INK, family=FONT, parse_math=False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(axis="x", labelsize=8, colors=MUTED)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel(unit, fontsize=8, color=MUTED, family=FONT)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def _over_time(rows: Sequence[dict[str, Any]]) -> Any:
    """Stacked bars per time bin (a minute to 30 days, at most ``MAX_BINS``): failing chargers, failed captures."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from analyzer.report.charts import FAIL, FINDING, FONT, MUTED

    points = [(t, r["verdict"]) for r in rows if r["verdict"] in FAILED and (t := _parse(r["capture_first"]))]
    if not points:
        return None
    lo = min(t for t, _ in points)
    hi = max(t for t, _ in points)
    step = next((st for st in STEPS if (hi - lo) / st <= MAX_BINS), STEPS[-1])
    start = datetime.fromtimestamp(lo.timestamp() // step.total_seconds() * step.total_seconds(), UTC)
    counts: dict[str, Counter[int]] = {"fault": Counter(), "error": Counter()}
    for t, v in points:
        counts[v][int((t - start) / step)] += 1
    n = max(max(c, default=0) for c in counts.values()) + 1
    xs = [start + i * step + step / 2 for i in range(n)]
    faults = [counts["fault"][i] for i in range(n)]
    errors = [counts["error"][i] for i in range(n)]
    fig = Figure(figsize=(10, 2.6), dpi=100, facecolor="white")
    ax = fig.add_axes((0.06, 0.2, 0.92, 0.72))
    width = step.total_seconds() / 86400 * 0.85
    ax.bar(xs, faults, width=width, color=FAIL, label="failing chargers")
    if any(errors):
        ax.bar(xs, errors, width=width, bottom=faults, color=FINDING, label="captures that failed to analyse")
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.tick_params(labelsize=8, colors=MUTED)
    ax.legend(fontsize=8, frameon=False, prop={"family": FONT, "size": 8})
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"per {STEP_NAMES[STEPS.index(step)]}", fontsize=8, color=MUTED, family=FONT)
    return fig
