"""The fleet summary ``DIR/index.html``: one self-contained page over every row of the results store.

Counts by verdict, charts by ChargeX code, by fault id and of failures over time (capture start), the chargers that
fail most, and a table of every row linking its capture's report (relative ``captures/...`` links). Like the
per-capture report it loads nothing (inline CSS, PNG ``data:`` URIs drawn by matplotlib on Agg) and escapes every
capture-derived string (jinja2 autoescape, the report's ``_visible`` finalize). Its one script, which sorts the
table, is allowed by its sha256 in the Content-Security-Policy, computed here at render time; no other script can
run.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment
from markupsafe import Markup

from analyzer import __version__

TEMPLATES = Path(__file__).parent / "templates"
SORT_SCRIPT = TEMPLATES / "fleet-sort.js"
TOP_CHARGERS = 20
FAILED = ("fault", "error")
STEPS = tuple(timedelta(minutes=m) for m in (1, 10, 60, 6 * 60, 24 * 60, 7 * 24 * 60, 30 * 24 * 60))
STEP_NAMES = ("minute", "10 minutes", "hour", "6 hours", "day", "week", "30 days")
MAX_BINS = 72


def csp_for(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def _env() -> Environment:
    from analyzer.report.html import template_env

    return template_env(TEMPLATES)


def fleet_html(rows: Sequence[dict[str, Any]], title: str = "ghostcap fleet triage") -> str:
    """The page for ``rows`` (``Store.rows()``)."""
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
            **_view(rows),
        )
    )


def write_fleet_html(rows: Sequence[dict[str, Any]], path: Path) -> None:
    from analyzer.report.writer import _write_atomic

    _write_atomic(path, fleet_html(rows))


# ------------------------------------------------------------------------------------------------------ view


def _who(r: dict[str, Any]) -> str:
    return r["charger_id"] or r["charger_address"] or "(no charger)"


def _view(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from analyzer.report import charts

    captures = {(r["sha256"] or r["path"]) for r in rows}
    verdicts = Counter(r["verdict"] for r in rows)
    faults = [r for r in rows if r["verdict"] == "fault"]
    by_cx = Counter(r["cx_code"] or "no CX code" for r in faults).most_common()
    by_fault = Counter(r["fault"] or "unknown" for r in faults).most_common()
    from analyzer.report.html import _img

    plots = []
    if by_cx:
        plots.append(("Failing chargers by ChargeX code", _img(charts.to_png(_bars(by_cx, "chargers")))))
    if by_fault:
        plots.append(("Failing chargers by fault id", _img(charts.to_png(_bars(by_fault, "chargers")))))
    over_time = _over_time(rows)
    if over_time is not None:
        plots.append(("Failures over time (by capture start)", _img(charts.to_png(over_time))))
    return {
        "totals": {"captures": len(captures), "rows": len(rows), **{v: verdicts.get(v, 0) for v in _VERDICTS}},
        "plots": plots,
        "by_cx": by_cx,
        "by_fault": by_fault,
        "top": _top_chargers(rows),
        "rows": [_table_row(r) for r in rows],
    }


_VERDICTS = ("fault", "inconclusive", "healthy", "no_charger", "error")


def _table_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        **r,
        "who": r["charger_id"] or r["charger_address"],
        "html_href": quote(r["report_html"]) if r["report_html"] else None,
        "json_href": quote(r["report_json"]) if r["report_json"] else None,
        "first_text": _short_time(r["capture_first"]),
    }


def _top_chargers(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["verdict"] in ("fault", "healthy", "inconclusive"):
            seen[_who(r)].append(r)
    out = []
    for who, rs in seen.items():
        failed = [r for r in rs if r["verdict"] == "fault"]
        if not failed:
            continue
        common = Counter((r["fault"], r["cx_code"]) for r in failed).most_common(1)[0][0]
        out.append(
            {
                "who": who,
                "address": rs[0]["charger_address"] if rs[0]["charger_id"] else None,
                "failures": len(failed),
                "captures": len(rs),
                "fault": common[0],
                "cx_code": common[1],
                "last": _short_time(max((r["capture_first"] or "" for r in failed), default="") or None),
            }
        )
    out.sort(key=lambda c: (-c["failures"], -c["captures"], c["who"]))
    return out[:TOP_CHARGERS]


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
    """Horizontal bars, largest on top (at most 25; the rest summed as ``other``)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from analyzer.report.charts import FAIL, FONT, INK, MUTED, chart_text

    if len(counts) > 25:
        counts = [*counts[:24], ("other", sum(n for _, n in counts[24:]))]
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
