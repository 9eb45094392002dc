"""The HTML report's per-charger plots as light inline SVG: a per-layer timeline and a charger ↔ CSMS
message-sequence (ladder) diagram.

Pure functions from plain data to SVG markup, written directly (no matplotlib: a report costs a few milliseconds,
not 75). The markup is inline in the page, so it needs no request and no script (the report's CSP allows none).
Every text that may come from a capture goes through ``svg_text``: control, zero-width and bidi characters become
``?``, length is bounded, and the result is XML-escaped, so a station id cannot add markup or reorder the picture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import NamedTuple

from markupsafe import Markup, escape

from analyzer import budgets
from analyzer.report.sketch import Piece, Skeleton, Slot, skeleton, svg_text

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
LINE = "#d0d5dd"
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"'
LADDER_ROWS_KEPT = 1024  # ladder steps drawn remembered (``ladder_rows``; about a kilobyte each)
COORDINATES_KEPT = 4096  # coordinates written remembered (``_n``): a few hundred make most plots
CHAR_W = 6.6  # px: the width of an average character at 12 px, to fit labels between lifelines
LABEL = Slot(0)  # every plot's text 0 is its label
__all__ = [
    "Column",
    "Mark",
    "Pin",
    "Step",
    "Svg",
    "ladder_svg",
    "nice_ticks",
    "svg_text",
    "timeline_plot",
    "timeline_svg",
]


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


class Step(NamedTuple):
    """One row of the ladder: an arrow ``src`` → ``dst`` (column keys), or a note across the lifelines when either
    is ``None``. ``failing`` highlights the failure point; ``lost`` draws a message that got no answer. (A named
    tuple rather than a frozen dataclass: a report makes dozens, and a tuple is made in one step.)"""

    frame: int
    t: float | None
    src: str | None
    dst: str | None
    label: str
    failing: bool = False
    lost: bool = False


@dataclass(frozen=True, slots=True)
class Svg:
    """A drawn plot: the ``markup`` (an ``<svg>`` element, safe to put in the page as is) and its size in px."""

    markup: Markup
    width: int
    height: int


def _n(x: float) -> str:
    """A coordinate, short: one decimal, none when it is 0 (``12.5``, ``12``). The plots' coordinates repeat (rows
    of a ladder, lanes of a timeline), so most come from a cache (``_coordinates``); a zero does not, as ``-0.0``
    and ``0`` are one key there but written ``-0`` and ``0``."""
    return _coordinates(x) if x else _coordinate(x)


def _coordinate(x: float) -> str:
    text = f"{x:.1f}"  # its last character is the one decimal (or that of inf, nan)
    return text[:-2] if text[-1] == "0" else text


_coordinates = lru_cache(maxsize=COORDINATES_KEPT)(_coordinate)


def _svg(width: int, height: int, body: list[Piece]) -> Skeleton:
    """The ``<svg>`` element around ``body``; its label is text 0 (``LABEL``)."""
    head: list[Piece] = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" aria-label="',
        LABEL,
        f'" {FONT}><title>',
        LABEL,
        f'</title><rect width="{width}" height="{height}" fill="#fff"/>',
    ]
    return skeleton(chain(head, body, ["</svg>"]), width, height)


def _text(
    x: float, y: float, text: Piece, size: float = 12, fill: str = INK, anchor: str = "start", extra: str = ""
) -> list[Piece]:
    """A ``<text>``; ``text`` must be escaped already (``svg_text``), or a ``Slot``."""
    head = (
        f'<text x="{_n(x)}" y="{_n(y)}" font-size="{size}" fill="{fill}" text-anchor="{anchor}" '
        f'dominant-baseline="central"{extra}>'
    )
    if isinstance(text, Slot):
        return [head, text, "</text>"]
    return [f"{head}{text}</text>"]


def nice_ticks(lo: float, hi: float, target: int = 7) -> list[float]:
    """Round tick values (1, 2, 5 × 10^k apart) covering ``lo``..``hi``, about ``target`` of them."""
    span = hi - lo
    if span <= 0 or not math.isfinite(span):
        return [lo]
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _tick_label(v: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return f"{v:.{min(decimals, 6)}f}"


# ----------------------------------------------------------------------------------------------------- timeline

TL_WIDTH = 1000
TL_LEFT = 95
TL_RIGHT = 962
TL_TOP = 44
TL_LANE = 34


def timeline_svg(marks: Sequence[Mark], pins: Sequence[Pin] = (), label: str = "Timeline") -> Svg:
    """One lane per layer (``LANES``, plus any other layer the marks name), x = seconds since the capture start,
    events as dots (one per pixel and lane: a long capture stays small); the failure pin as a red line and cross,
    labelled; other findings as orange dotted lines (``timeline_plot`` of the marks' times and layers)."""
    return timeline_plot([m.t for m in marks], [m.layer for m in marks], pins, label)


def timeline_plot(
    times: Sequence[float], layers: Sequence[str], pins: Sequence[Pin] = (), label: str = "Timeline"
) -> Svg:
    """``timeline_svg`` of events at ``times`` (seconds since the capture start) on ``layers``.

    Its shape (the events' times and layers, the pins' times, layers and kinds) is drawn once (``timelines``, up to
    ``REPORT_PLOT_SHAPE_EVENTS`` events); the label and the failure pins' labels are filled in."""
    shape = (tuple(times), tuple(layers), tuple((p.t, p.layer, p.kind == "failure") for p in pins))
    texts = [label, *(f"failure point: {p.label}" for p in pins if p.kind == "failure")]
    drawn = (_timeline if len(times) > budgets.REPORT_PLOT_SHAPE_EVENTS else timelines)(*shape)
    return Svg(drawn.fill(texts), drawn.width, drawn.height)


def _timeline(
    times_of: tuple[float, ...], layers: tuple[str, ...], pins: tuple[tuple[float, str | None, bool], ...]
) -> Skeleton:
    """The timeline of marks at ``times_of`` on ``layers`` with ``pins`` (time, layer, is the failure); text 0 is
    the label, texts 1.. the failure pins' labels."""
    extra = sorted(set(layers) - set(LANES))
    lanes = [*LANES, *extra]
    y_of = {name: TL_TOP + TL_LANE * (i + 0.5) for i, name in enumerate(lanes)}
    bottom = TL_TOP + TL_LANE * len(lanes)
    height = int(bottom + 46)
    times = [*times_of, *(t for t, _, _ in pins)]
    lo, hi = (min(times), max(times)) if times else (0.0, 1.0)
    pad = max((hi - lo) * 0.03, 1e-4)
    x0, x1 = lo - pad, hi + pad

    def x_of(t: float) -> float:
        return TL_LEFT + (t - x0) / (x1 - x0) * (TL_RIGHT - TL_LEFT)

    body: list[Piece] = []
    ticks = nice_ticks(x0, x1)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for v in ticks:
        x = x_of(v)
        body.append(f'<line x1="{_n(x)}" y1="{TL_TOP}" x2="{_n(x)}" y2="{bottom}" stroke="#f2f4f7"/>')
        body += _text(x, bottom + 12, _tick_label(v, step), 10.5, MUTED, "middle")
    body.append(f'<line x1="{TL_LEFT}" y1="{bottom}" x2="{TL_RIGHT}" y2="{bottom}" stroke="{LINE}"/>')
    body += _text((TL_LEFT + TL_RIGHT) / 2, bottom + 32, "seconds since the capture start", 11.5, MUTED, "middle")
    for name in lanes:
        y = y_of[name]
        body.append(f'<line x1="{TL_LEFT}" y1="{_n(y)}" x2="{TL_RIGHT}" y2="{_n(y)}" stroke="#eaecf0"/>')
        body += _text(TL_LEFT - 8, y, svg_text(name, 16), 12, INK, "end")
    seen: set[tuple[str, int]] = set()
    dots: dict[str, list[str]] = {}
    for t, layer in zip(times_of, layers, strict=True):
        x = x_of(t)
        if (layer, round(x)) in seen:
            continue
        seen.add((layer, round(x)))
        dots.setdefault(layer, []).append(f'<circle cx="{_n(x)}" cy="{_n(y_of[layer])}" r="5"/>')
    for layer, circles in dots.items():
        colour = LANE_COLOURS.get(layer, LANE_COLOURS["capture"])
        body.append(f'<g fill="{colour}" stroke="#fff" stroke-width="0.8">{"".join(circles)}</g>')
    findings = [t for t, _, failure in pins if not failure]
    for t in findings:
        x = _n(x_of(t))
        body.append(
            f'<line x1="{x}" y1="{TL_TOP}" x2="{x}" y2="{bottom}" stroke="{FINDING}" stroke-width="1.6" '
            'stroke-dasharray="3 3"/>'
        )
    failures = [(t, layer) for t, layer, failure in pins if failure]
    for i, (t, layer) in enumerate(failures, 1):
        x = x_of(t)
        body.append(
            f'<line x1="{_n(x)}" y1="{TL_TOP - 10}" x2="{_n(x)}" y2="{bottom}" stroke="{FAIL}" stroke-width="2"/>'
        )
        body.append(f'<path d="M{_n(x - 5)} {TL_TOP - 12}h10l-5 9z" fill="{FAIL}"/>')
        if layer in y_of:
            y = y_of[layer]
            body.append(
                f'<path d="M{_n(x - 6)} {_n(y - 6)}l12 12M{_n(x + 6)} {_n(y - 6)}l-12 12" stroke="{FAIL}" '
                'stroke-width="3.5" stroke-linecap="round"/>'
            )
        right_half = (t - x0) > 0.6 * (x1 - x0)
        body += _text(
            x - 8 if right_half else x + 8,
            TL_TOP - 18,
            Slot(i, 90),
            12,
            FAIL,
            "end" if right_half else "start",
            ' font-weight="bold"',
        )
    if findings:
        body += _text(TL_RIGHT, bottom + 32, "dotted lines: later findings", 11, FINDING, "end")
    return _svg(TL_WIDTH, height, body)


# ------------------------------------------------------------------------------------------------------- ladder

L_WIDTH = 1000
L_LEFT = 145  # px of the frame / time column
L_ROW = 30
L_HEAD = 95


def _column_x(columns: Sequence[Column]) -> dict[str, float]:
    if len(columns) == 3:
        xs: tuple[float, ...] = (195, 485, 930)
    elif len(columns) == 2:
        xs = (230, 930)
    else:
        step = (L_WIDTH - L_LEFT - 60) / max(len(columns) - 1, 1)
        xs = tuple(L_LEFT + 60 + i * step for i in range(len(columns)))
    return {c.key: x for c, x in zip(columns, xs, strict=False)}


_new = tuple.__new__  # a named tuple from its fields in order, without its ``__new__`` (a Python function)


class _Row(NamedTuple):
    """A ladder step as its shape: the lifelines, and for a note (no arrow between two lifelines) the length its box
    is drawn for; ``frame``, ``t`` (``None``: no time) and ``text`` are the indices of its frame number, time and
    label among the texts (a frame number and a time do not change the drawing, so they are not its shape)."""

    frame: int
    t: int | None
    src: str | None
    dst: str | None
    failing: bool
    lost: bool
    note_len: int | None
    text: int


def ladder_svg(
    steps: Sequence[Step],
    columns: Sequence[Column],
    note_top: str = "",
    note_bottom: str = "",
    label: str = "Message sequence",
) -> Svg:
    """A message-sequence diagram: a lifeline per column, one row per step in order, frame number and time in the
    left margin; the failing step in red on a tinted band. ``note_top``/``note_bottom`` say what was left out.

    Its shape (the columns, each step's lifelines and highlighting, whether it has a time, a note's length) is drawn
    once (``ladders``); the label, the notes, the columns' lines and the steps' frames, times and labels are filled
    in."""
    x_of = _column_x(columns)
    texts: list[object] = [label, note_top, note_bottom]
    cols = []
    for c in columns:
        cols.append((c.key, c.title, tuple(range(len(texts), len(texts) + len(c.lines[:2])))))
        texts += c.lines[:2]
    rows = []
    for frame, t, src, dst, text, failing, lost in steps:
        arrow = src in x_of and dst in x_of and src != dst
        at = len(texts)
        note_len = None if arrow else min(len(text), 100)
        # (a named tuple made by ``tuple.__new__``: its ``__new__`` with keywords cost more than the rest of a row)
        timed, label_at = (None, at + 1) if t is None else (at + 1, at + 2)
        rows.append(_new(_Row, (at, timed, src, dst, bool(failing), bool(lost), note_len, label_at)))
        texts.append(_frame_text(frame))
        if t is not None:
            texts.append(f"{t:.4f}")
        texts.append(text)
    shape = (tuple(cols), bool(note_top), bool(note_bottom), tuple(rows))
    drawn = ladders(*shape)
    return Svg(drawn.fill(texts), drawn.width, drawn.height)


def _frame_text(frame: object) -> str:
    """A step's frame number as markup (``Slot(..., markup=True)``): an ``int`` as it is, anything else escaped."""
    return str(frame) if type(frame) is int else str(escape(str(frame)))


def _ladder(
    cols: tuple[tuple[str, str, tuple[int, ...]], ...], note_top: bool, note_bottom: bool, steps: tuple[_Row, ...]
) -> Skeleton:
    """The ladder of ``steps`` between the columns ``cols`` (key, title, the indices of its lines among the
    texts); text 0 is the label, 1 and 2 the notes on what was left out."""
    columns = [Column(key, title) for key, title, _ in cols]
    x_of = _column_x(columns)
    extra_top = 30 if note_top else 0
    extra_bottom = 30 if note_bottom else 0
    top = L_HEAD + extra_top
    bottom = top + L_ROW * max(len(steps), 1)
    height = int(bottom + extra_bottom + 15)
    body: list[Piece] = []
    for i, s in enumerate(steps):
        if s.failing:
            body.append(f'<rect x="0" y="{top + L_ROW * i}" width="{L_WIDTH}" height="{L_ROW}" fill="#fee4e2"/>')
    for key, title_text, lines in cols:
        x = x_of[key]
        body.append(f'<line x1="{_n(x)}" y1="82" x2="{_n(x)}" y2="{bottom + 5}" stroke="{LINE}" stroke-width="1.5"/>')
        title = svg_text(title_text, 28)
        w = 16 + CHAR_W * 1.2 * len(svg_text(title_text, 28))
        body.append(
            f'<rect x="{_n(x - w / 2)}" y="12" width="{_n(w)}" height="26" rx="6" fill="#f2f4f7" stroke="{LINE}"/>'
        )
        body += _text(x, 25, title, 13.5, INK, "middle", ' font-weight="bold"')
        room = int(2 * min(x, L_WIDTH - x) / (CHAR_W * 0.9))
        for j, line in enumerate(lines):
            body += _text(x, 53 + 15 * j, Slot(line, room), 10.5, MUTED, "middle")
    body += _text(12, 68, "frame", 10.5, MUTED)
    body += _text(L_LEFT - 12, 68, "time (s)", 10.5, MUTED, "end")
    if note_top:
        body += _text(L_WIDTH / 2, L_HEAD + 12, Slot(1, 120), 11, MUTED, "middle", ' font-style="italic"')
    if not steps:
        body += _text(L_WIDTH / 2, top + L_ROW / 2, "no messages", 12, MUTED, "middle")
    main = [x_of[k] for k in ("charger", "csms") if k in x_of] or list(x_of.values()) or [L_LEFT, L_WIDTH]
    centre = (min(main) + max(main)) / 2
    layout = tuple(x_of.items())
    for i, s in enumerate(steps):
        body += ladder_rows(layout, centre, top + L_ROW * (i + 0.62), s)
    if note_bottom:
        body += _text(L_WIDTH / 2, bottom + 16, Slot(2, 120), 11, MUTED, "middle", ' font-style="italic"')
    return _svg(L_WIDTH, height, body)


def _ladder_row(layout: tuple[tuple[str, float], ...], centre: float, y: float, s: _Row) -> tuple[Piece, ...]:
    """One step of the ladder at height ``y``: its frame number, time, and arrow or note (``layout``: each
    lifeline's x; ``centre``: where a note is drawn), the markup between its texts joined."""
    x_of = dict(layout)
    colour = FAIL if s.failing else INK
    bold = ' font-weight="bold"' if s.failing else ""
    body = _text(12, y, Slot(s.frame, markup=True), 11.5, colour, extra=bold)
    if s.t is not None:
        body += _text(L_LEFT - 12, y, Slot(s.t, markup=True), 11, MUTED, "end")
    if s.note_len is None:  # an arrow between two lifelines
        body += _arrow(x_of[s.src], x_of[s.dst], y, s, colour, bold)  # type: ignore[index]
    else:
        w = 12 + CHAR_W * (s.note_len or 0)
        fill, edge = ("#fee4e2", FAIL) if s.failing else ("#fffaeb", "#fedf89")
        body.append(
            f'<rect x="{_n(centre - w / 2)}" y="{_n(y - 10)}" width="{_n(w)}" height="18" rx="4" fill="{fill}" '
            f'stroke="{edge}" stroke-width="0.8"/>'
        )
        note_colour = FAIL if s.failing else MUTED
        body += _text(centre, y - 1, Slot(s.text, 100), 11.5, note_colour, "middle", bold + ' font-style="italic"')
    return _joined(body)


def _joined(pieces: list[Piece]) -> tuple[Piece, ...]:
    """``pieces`` with adjacent markup joined."""
    out: list[Piece] = []
    for p in pieces:
        if out and isinstance(p, str) and isinstance(out[-1], str):
            out[-1] += p
        else:
            out.append(p)
    return tuple(out)


def _arrow(x0: float, x1: float, y: float, s: _Row, colour: str, bold: str) -> list[Piece]:
    """The arrow of one step, its head a small triangle, and its label centred above it."""
    room = int(abs(x1 - x0) / (CHAR_W * 1.1))
    end = x1 if not s.lost else x0 + (x1 - x0) * 0.72
    width = 2.6 if s.failing else 1.3
    dash = ' stroke-dasharray="6 4"' if s.lost else ""
    sign = 1 if x1 > x0 else -1
    out: list[Piece] = []
    tip = end - sign * 9 if not s.lost else end
    out.append(
        f'<line x1="{_n(x0)}" y1="{_n(y)}" x2="{_n(tip)}" y2="{_n(y)}" stroke="{colour}" stroke-width="{width}"{dash}/>'
    )
    if s.lost:
        out.append(
            f'<path d="M{_n(end - 5)} {_n(y - 5)}l10 10M{_n(end + 5)} {_n(y - 5)}l-10 10" stroke="{FAIL}" '
            'stroke-width="2.2"/>'
        )
    else:
        out.append(f'<path d="M{_n(end)} {_n(y)}l{_n(-sign * 10)} -4.5v9z" fill="{colour}"/>')
    out += _text((x0 + x1) / 2, y - 10, Slot(s.text, room), 11.5, colour, "middle", bold)
    return out


# the plots drawn once per shape: a triage worker renders thousands of captures that differ in their texts (addresses,
# station ids, times), not in what their plots look like; the skeleton depends on the shape alone
timelines = lru_cache(maxsize=budgets.REPORT_PLOT_SHAPES)(_timeline)
ladders = lru_cache(maxsize=budgets.REPORT_PLOT_SHAPES)(_ladder)
# and, within a ladder drawn anew, its steps: the same step at the same height recurs in many shapes
ladder_rows = lru_cache(maxsize=LADDER_ROWS_KEPT)(_ladder_row)


def cache_clear() -> None:
    """Draw every plot anew (tests: a render from a cold cache)."""
    timelines.cache_clear()
    ladders.cache_clear()
    ladder_rows.cache_clear()
