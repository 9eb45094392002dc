"""The HTML report's plots: a per-layer timeline and a charger ↔ CSMS message-sequence (ladder) diagram.

Pure functions from plain data to PNG bytes. Each plot is a ``matplotlib.figure.Figure`` drawn on its own Agg
canvas: no pyplot, no global state, so rendering is safe to repeat and to run beside other work. Every text that
may come from a capture goes through ``chart_text`` (printable glyphs the font has, bounded length) and is drawn
with ``parse_math=False`` and ``usetex=False``, so a ``$x^2$`` from a charger is drawn as typed, never as mathtext.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont
from matplotlib.ft2font import FT2Font
from PIL import Image

LANES = ("dns", "tcp", "tls", "http", "websocket", "ocpp", "clock")
LANE_COLOURS = {
    "dns": "#7f56d9",
    "tcp": "#1570ef",
    "tls": "#0e9384",
    "http": "#ca8504",
    "websocket": "#dd2590",
    "ocpp": "#344054",
    "clock": "#667085",
    "capture": "#98a2b3",
}
FAIL = "#d92d20"
FINDING = "#f79009"
INK = "#1d2939"
MUTED = "#667085"
FONT = "DejaVu Sans"  # ships with matplotlib: the same glyphs everywhere, and ``_glyphs`` knows which it has
DPI = 100
RENDER_RC = {"text.hinting": "no_hinting"}  # scoped to each draw (rc_context), never set globally
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True, slots=True)
class Png:
    """A rendered plot: ``uri`` (``data:image/png;base64,...``), pixel ``width``/``height``, ``nbytes`` (PNG size)."""

    uri: str
    width: int
    height: int
    nbytes: int


@dataclass(frozen=True, slots=True)
class Mark:
    """One event on the timeline: ``t`` seconds since the capture start, ``layer`` (its lane), ``frame``."""

    t: float
    layer: str
    frame: int


@dataclass(frozen=True, slots=True)
class Pin:
    """A vertical marker on the timeline: ``kind`` is ``failure`` (labelled, on ``layer``'s lane) or ``finding``."""

    t: float
    layer: str | None
    label: str
    kind: str = "failure"


@dataclass(frozen=True, slots=True)
class Column:
    """A lifeline of the ladder: ``key`` (``charger``, ``dns``, ``csms``), ``title``, ``lines`` (name, address)."""

    key: str
    title: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """One row of the ladder: an arrow ``src`` → ``dst`` (column keys), or a note across the lifelines when either
    is ``None``. ``failing`` highlights the failure point; ``lost`` draws a message that got no answer."""

    frame: int
    t: float | None
    src: str | None
    dst: str | None
    label: str
    failing: bool = False
    lost: bool = False


# ---------------------------------------------------------------------------------------------------------- text


@lru_cache(maxsize=1)
def _glyphs() -> frozenset[int]:
    font = FT2Font(findfont(FontProperties(family=FONT), fallback_to_default=True))
    return frozenset(font.get_charmap())


def chart_text(value: object, limit: int = 80) -> str:
    """``value`` as one line of text the plot font can draw: control, bidi and missing characters become ``?``,
    whitespace runs one space, and text longer than ``limit`` ends with ``…``."""
    glyphs = _glyphs()
    out = []
    for ch in str(value):
        code = ord(ch)
        hidden = code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code <= 0xDFFF or ch in BIDI_CONTROLS
        if ch.isspace():
            out.append(" ")
        else:
            out.append("?" if hidden or code not in glyphs else ch)
    text = " ".join("".join(out).split())
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _text_kw(**kw: Any) -> dict[str, Any]:
    """Keyword arguments for a text artist that shows capture data literally."""
    return {"parse_math": False, "usetex": False, "family": FONT, **kw}


# ------------------------------------------------------------------------------------------------------- output


def to_png(fig: Figure) -> Png:
    """Render ``fig`` on an Agg canvas to a PNG ``data:`` URI: 64 colours without dithering (text and flat fills
    stay crisp; a 40-step ladder is ~50 KB instead of ~200 KB), no timestamp or software name in the file.

    Glyphs are drawn unhinted (``RENDER_RC``): the same text, anti-aliased at its exact position, and a quarter
    less drawing time than FreeType's hinting (measured: 80 → 58 ms per report over the lab captures), which
    is most of a fleet triage's time per capture."""
    canvas = FigureCanvasAgg(fig)
    with rc_context(RENDER_RC):
        canvas.draw()
    rgb = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
    image = rgb.quantize(colors=64, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=6)
    data = buf.getvalue()
    return Png(
        uri="data:image/png;base64," + base64.b64encode(data).decode("ascii"),
        width=image.width,
        height=image.height,
        nbytes=len(data),
    )


# ----------------------------------------------------------------------------------------------------- timeline


def timeline_figure(marks: Sequence[Mark], pins: Sequence[Pin] = ()) -> Figure:
    """One lane per layer (``LANES``, plus any other layer the marks name), x = seconds since the capture start,
    events as markers; the failure pin as a red line and cross, labelled; other findings as orange dotted lines."""
    extra = sorted({m.layer for m in marks} - set(LANES))
    lanes = [*LANES, *extra]
    y_of = {name: i for i, name in enumerate(lanes)}
    fig = Figure(figsize=(10, 0.9 + 0.34 * len(lanes)), dpi=DPI, facecolor="white")
    ax = fig.add_axes((0.095, 0.2 if len(lanes) <= 7 else 0.17, 0.87, 0.64))
    ax.set_ylim(len(lanes) - 0.5, -0.5)
    ax.set_yticks(range(len(lanes)), [chart_text(name, 16) for name in lanes], **_text_kw(fontsize=9, color=INK))
    for i in range(len(lanes)):
        ax.axhline(i, color="#eaecf0", lw=0.8, zorder=0)
    ax.tick_params(axis="x", labelsize=8, colors=MUTED)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("seconds since the capture start", fontsize=8.5, color=MUTED, family=FONT)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color("#d0d5dd")
    ax.grid(axis="x", color="#f2f4f7", lw=0.8, zorder=0)

    times = [m.t for m in marks] + [p.t for p in pins]
    lo, hi = (min(times), max(times)) if times else (0.0, 1.0)
    pad = max((hi - lo) * 0.03, 1e-4)
    ax.set_xlim(lo - pad, hi + pad)

    by_layer: dict[str, list[float]] = {}
    for m in marks:
        by_layer.setdefault(m.layer, []).append(m.t)
    for layer, ts in by_layer.items():
        colour = LANE_COLOURS.get(layer, LANE_COLOURS["capture"])
        ax.scatter(ts, [y_of[layer]] * len(ts), s=34, c=colour, edgecolors="white", linewidths=0.6, zorder=3)

    findings = [p for p in pins if p.kind != "failure"]
    for p in findings:
        ax.axvline(p.t, color=FINDING, lw=1.2, ls=(0, (2, 2)), zorder=2)
    for p in pins:
        if p.kind != "failure":
            continue
        ax.axvline(p.t, color=FAIL, lw=1.6, zorder=2)
        if p.layer in y_of:
            ax.scatter([p.t], [y_of[p.layer]], s=150, marker="X", c=FAIL, edgecolors="white", linewidths=1, zorder=4)
        right_half = (p.t - lo) > 0.6 * (hi - lo + 2 * pad)
        ax.annotate(
            "",
            xy=(p.t, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(p.t, 1.07),
            textcoords=("data", "axes fraction"),
            arrowprops={"arrowstyle": "-|>", "color": FAIL, "lw": 1.2},
            annotation_clip=False,
        )
        ax.annotate(
            chart_text(f"failure point: {p.label}", 90),
            xy=(p.t, 1.07),
            xycoords=("data", "axes fraction"),
            xytext=(6 if not right_half else -6, 0),
            textcoords="offset points",
            ha="right" if right_half else "left",
            va="center",
            fontsize=9,
            fontweight="bold",
            color=FAIL,
            annotation_clip=False,
            **_text_kw(),
        )
    if findings:
        ax.text(
            1.0,
            -0.14,
            "dotted lines: later findings",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8,
            color=FINDING,
            **_text_kw(),
        )
    return fig


# ------------------------------------------------------------------------------------------------------- ladder

_LEFT = 1.45  # inches of the frame / time column
_WIDTH = 10.0
_ROW = 0.3
_HEAD = 0.95


def _column_x(columns: Sequence[Column]) -> dict[str, float]:
    if len(columns) == 3:
        xs = (1.95, 4.85, 9.3)
    elif len(columns) == 2:
        xs = (2.3, 9.3)
    else:
        step = (_WIDTH - _LEFT - 0.6) / max(len(columns) - 1, 1)
        xs = tuple(_LEFT + 0.6 + i * step for i in range(len(columns)))
    return {c.key: x for c, x in zip(columns, xs, strict=False)}


def ladder_figure(
    steps: Sequence[Step], columns: Sequence[Column], note_top: str = "", note_bottom: str = ""
) -> Figure:
    """A message-sequence diagram: a lifeline per column, one row per step in order, frame number and time in the
    left margin; the failing step in red on a tinted band. ``note_top``/``note_bottom`` say what was left out."""
    x_of = _column_x(columns)
    extra_top = 0.3 if note_top else 0.0
    extra_bottom = 0.3 if note_bottom else 0.0
    height = _HEAD + extra_top + _ROW * max(len(steps), 1) + extra_bottom + 0.15
    fig = Figure(figsize=(_WIDTH, height), dpi=DPI, facecolor="white")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, _WIDTH)
    ax.set_ylim(height, 0)  # inches from the top
    ax.axis("off")

    top = _HEAD + extra_top
    bottom = top + _ROW * max(len(steps), 1)
    for col in columns:
        x = x_of[col.key]
        ax.plot([x, x], [0.82, bottom + 0.05], color="#d0d5dd", lw=1.2, zorder=1)
        ax.text(
            x,
            0.25,
            chart_text(col.title, 28),
            ha="center",
            va="center",
            fontsize=10,
            fontweight="bold",
            color=INK,
            bbox={"boxstyle": "round,pad=0.35", "fc": "#f2f4f7", "ec": "#d0d5dd"},
            **_text_kw(),
        )
        room = int(2 * min(x, _WIDTH - x) / 0.058)  # characters that fit centred on the lifeline
        for j, line in enumerate(col.lines[:2]):
            ax.text(
                x,
                0.53 + 0.15 * j,
                chart_text(line, room),
                ha="center",
                va="center",
                fontsize=7.5,
                color=MUTED,
                **_text_kw(),
            )
    ax.text(0.12, 0.68, "frame   time (s)", ha="left", va="center", fontsize=7.5, color=MUTED, **_text_kw())
    if note_top:
        ax.text(
            _WIDTH / 2,
            _HEAD + 0.12,
            chart_text(note_top, 120),
            ha="center",
            va="center",
            fontsize=8,
            style="italic",
            color=MUTED,
            **_text_kw(),
        )
    if not steps:
        ax.text(
            _WIDTH / 2, top + _ROW / 2, "no messages", ha="center", va="center", fontsize=9, color=MUTED, **_text_kw()
        )

    main = [x_of[k] for k in ("charger", "csms") if k in x_of] or list(x_of.values()) or [_LEFT, _WIDTH]
    span = [min(main), max(main)]
    for i, s in enumerate(steps):
        y = top + _ROW * (i + 0.62)
        colour = FAIL if s.failing else INK
        if s.failing:
            ax.axhspan(top + _ROW * i, top + _ROW * (i + 1), color="#fee4e2", zorder=0)
        ax.text(
            0.12,
            y,
            f"{s.frame}",
            ha="left",
            va="center",
            fontsize=8.5,
            color=colour,
            fontweight="bold" if s.failing else "normal",
            **_text_kw(),
        )
        if s.t is not None:
            ax.text(_LEFT - 0.12, y, f"{s.t:.4f}", ha="right", va="center", fontsize=8, color=MUTED, **_text_kw())
        weight = "bold" if s.failing else "normal"
        if s.src in x_of and s.dst in x_of and s.src != s.dst:
            x0, x1 = x_of[s.src], x_of[s.dst]
            room = abs(x1 - x0) / 0.074  # characters that fit between the two lifelines at this size
            end = x1 if not s.lost else x0 + (x1 - x0) * 0.72
            ax.annotate(
                "",
                xy=(end, y),
                xytext=(x0, y),
                arrowprops={
                    "arrowstyle": "-|>" if not s.lost else "-",
                    "color": colour,
                    "lw": 2.2 if s.failing else 1.1,
                    "ls": "--" if s.lost else "-",
                    "shrinkA": 0,
                    "shrinkB": 0,
                },
                zorder=3,
            )
            if s.lost:
                ax.plot([end], [y], marker="x", ms=7, mew=2, color=FAIL, zorder=4)
            ax.text(
                (x0 + x1) / 2,
                y - 0.05,
                chart_text(s.label, int(room)),
                ha="center",
                va="bottom",
                fontsize=8.5,
                color=colour,
                fontweight=weight,
                zorder=5,
                **_text_kw(),
            )
        else:
            ax.text(
                sum(span) / 2,
                y - 0.03,
                chart_text(s.label, 100),
                ha="center",
                va="center",
                fontsize=8.5,
                color=FAIL if s.failing else MUTED,
                fontweight=weight,
                style="italic",
                zorder=5,
                bbox={
                    "boxstyle": "round,pad=0.2",
                    "fc": "#fffaeb" if not s.failing else "#fee4e2",
                    "ec": "#fedf89" if not s.failing else FAIL,
                    "lw": 0.6,
                },
                **_text_kw(),
            )
    if note_bottom:
        ax.text(
            _WIDTH / 2,
            bottom + 0.16,
            chart_text(note_bottom, 120),
            ha="center",
            va="center",
            fontsize=8,
            style="italic",
            color=MUTED,
            **_text_kw(),
        )
    return fig
