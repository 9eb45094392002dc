"""The HTML plots drawn once per shape (``analyzer.report.svg``'s ``timelines`` and ``ladders``): a skeleton drawn
for one capture and filled with another's texts gives the bytes a fresh drawing gives, whether the two share a shape
or not; the cache stays within its bound."""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from markupsafe import escape

from analyzer import budgets
from analyzer.config import Settings
from analyzer.engine import analyze
from analyzer.report import svg
from analyzer.report.build import report_dict
from analyzer.report.html import report_html
from analyzer.report.sketch import HIDDEN, Piece, Slot, skeleton
from tests.fleetbuild import charger_copy, write
from tests.report import sample_reports as samples

HIDDEN_OR_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff" + "".join(sorted(HIDDEN)) + "]")


def _report(tmp_path: Path, stem: str, address: str, v: int) -> dict[str, Any]:
    path = write(tmp_path / f"{stem}-v{v}.pcap", charger_copy(stem, address, v, shift_s=3600 * v))
    return report_dict(analyze(str(path), Settings()))


def _fresh(report: dict[str, Any]) -> str:
    svg.cache_clear()
    return report_html(report)


def _hits() -> int:
    return svg.timelines.cache_info().hits + svg.ladders.cache_info().hits


@pytest.mark.parametrize("stem", ["ocpp_boot_callerror", "dns_nxdomain", "tcp_refused", "ocpp_schema_violation"])
def test_captures_of_one_shape_share_the_drawing(tmp_path: Path, stem: str) -> None:
    """Two copies of a capture as other chargers (address, station id, time): the second's plots come from the
    first's skeletons, and its page is the page drawn from scratch."""
    a = _report(tmp_path, stem, "10.1.2.3", 7)
    b = _report(tmp_path, stem, "10.200.17.42", 12)
    expected = _fresh(b)
    assert expected != _fresh(a)  # other addresses, ids and times: the texts differ
    svg.cache_clear()
    report_html(a)
    before = _hits()
    assert report_html(b) == expected
    assert _hits() - before == 2 * len(b["chargers"])  # its timeline and its message sequence, per charger


def test_captures_of_other_shapes_are_drawn_anew(tmp_path: Path) -> None:
    reports = [_report(tmp_path, s, "10.9.8.7", 3) for s in ("tls_cert_expired", "ws_dropped", "http_not_found")]
    expected = [_fresh(r) for r in reports]
    svg.cache_clear()
    assert [report_html(r) for r in reports] == expected
    assert _hits() == 0
    assert [report_html(r) for r in reversed(reports)] == expected[::-1]


def test_hostile_texts_fill_a_shared_skeleton_as_drawn_fresh() -> None:
    """Texts from a capture reach the plot through the same escaping whether its skeleton is new or kept."""
    columns = [svg.Column("charger", "Charger", ("CP-1", "10.0.0.1")), svg.Column("csms", "CSMS", ("csms.test",))]
    hostile = [svg.Column("charger", "Charger", (samples.IMG, samples.RTL)), svg.Column("csms", "CSMS", ("x" * 300,))]

    def steps(label: str, note: str) -> list[svg.Step]:
        return [
            svg.Step(frame=1, t=0.0, src="charger", dst="csms", label=label),
            svg.Step(frame=2, t=0.25, src="csms", dst="charger", label=label * 40, failing=True),
            svg.Step(frame=3, t=None, src=None, dst=None, label=note),
        ]

    benign = steps("GET /ocpp/CP-1", "n" * len(samples.CONTROL + samples.SCRIPT))
    bad = steps(samples.MATH + samples.SCRIPT, samples.CONTROL + samples.SCRIPT)
    svg.cache_clear()
    fresh = svg.ladder_svg(bad, hostile, note_top=samples.SCRIPT, label=samples.IMG)
    svg.cache_clear()
    svg.ladder_svg(benign, columns, note_top="… 3 earlier steps left out", label="Message sequence")
    kept = svg.ladder_svg(bad, hostile, note_top=samples.SCRIPT, label=samples.IMG)
    assert svg.ladders.cache_info().hits == 1
    assert kept == fresh
    assert "<script" not in kept.markup
    assert "<img" not in kept.markup

    pins = [svg.Pin(t=0.2, layer="tls", label=samples.SCRIPT), svg.Pin(t=0.3, layer=None, label="x", kind="finding")]
    marks = [svg.Mark(t=0.1 * i, layer=("tcp", "tls", samples.RTL)[i % 3], frame=i) for i in range(9)]
    svg.cache_clear()
    fresh_line = svg.timeline_svg(marks, pins, label=samples.IMG)
    svg.timeline_svg(marks, [svg.Pin(t=0.2, layer="tls", label="frame 4: tls.alert"), pins[1]], label="Timeline")
    assert svg.timeline_svg(marks, pins, label=samples.IMG) == fresh_line
    assert svg.timelines.cache_info().hits == 2


def test_a_note_of_another_length_is_another_shape() -> None:
    """A note's box is as wide as its text: its length is part of the shape, an arrow's label is not."""
    columns = [svg.Column("charger", "Charger"), svg.Column("csms", "CSMS")]
    svg.cache_clear()
    for note, arrow in (("short", "a"), ("longer note", "b"), ("longer note", "another label")):
        one = [svg.Step(1, 0.0, None, None, note), svg.Step(2, 0.1, "charger", "csms", arrow)]
        drawn = svg.ladder_svg(one, columns)
        svg.ladders.cache_clear()
        assert drawn == svg.ladder_svg(one, columns)
    svg.cache_clear()
    for note in ("short", "longer note", "longer note"):
        svg.ladder_svg([svg.Step(1, 0.0, None, None, note)], columns)
    assert (svg.ladders.cache_info().misses, svg.ladders.cache_info().hits) == (2, 1)


def test_frames_and_times_fill_a_shared_ladder() -> None:
    """A step's frame number and time are texts of the ladder, not its shape: other frames and times share the
    skeleton and give the bytes a fresh drawing gives."""
    columns = [svg.Column("charger", "Charger"), svg.Column("csms", "CSMS")]

    def steps(frame: int, t: float) -> list[svg.Step]:
        return [
            svg.Step(frame, t, "charger", "csms", "a"),
            svg.Step(frame * 10 + 7, None, None, None, "note"),
            svg.Step(frame * 1000 + 1, -t * 1e6, "csms", "charger", "b", failing=True),
        ]

    fresh = []
    for frame, t in ((1, 0.0), (123, 12.34567), (98765, -1e12)):
        svg.cache_clear()
        fresh.append(svg.ladder_svg(steps(frame, t), columns))
    svg.cache_clear()
    assert [svg.ladder_svg(steps(frame, t), columns) for frame, t in ((1, 0.0), (123, 12.34567), (98765, -1e12))] == (
        fresh
    )
    assert (svg.ladders.cache_info().misses, svg.ladders.cache_info().hits) == (1, 2)
    assert ">98765<" in fresh[2].markup
    assert ">1000000000000000000.0000<" in fresh[2].markup


def test_the_plot_caches_are_bounded_by_the_budget() -> None:
    svg.cache_clear()
    columns = [svg.Column("charger", "Charger"), svg.Column("csms", "CSMS")]
    for i in range(budgets.REPORT_PLOT_SHAPES + 20):  # nine arrows, each either way: as many shapes
        ways = [("charger", "csms") if i >> b & 1 else ("csms", "charger") for b in range(9)]
        svg.ladder_svg([svg.Step(b, 0.0, src, dst, "x") for b, (src, dst) in enumerate(ways)], columns)
        svg.timeline_svg([svg.Mark(t=0.001 * i, layer="tcp", frame=1)])
    assert svg.ladders.cache_info().currsize == svg.timelines.cache_info().currsize == budgets.REPORT_PLOT_SHAPES
    assert svg.ladders.cache_info().misses == budgets.REPORT_PLOT_SHAPES + 20


def test_a_big_timeline_is_drawn_each_time() -> None:
    svg.cache_clear()
    n = budgets.REPORT_PLOT_SHAPE_EVENTS + 1
    marks = [svg.Mark(t=0.01 * i, layer="tcp", frame=i) for i in range(n)]
    first = svg.timeline_svg(marks)
    assert svg.timeline_svg(marks) == first
    assert svg.timelines.cache_info().currsize == 0
    assert svg.timeline_svg(marks[:-1]) != first
    assert svg.timelines.cache_info().currsize == 1


@given(st.text(max_size=120), st.integers(min_value=1, max_value=130))
@example("  two  spaces ", 80)
@example("a\u202eb\x00c\nd", 80)
@example('<b class="x">&amp;\'</b>', 10)
@example("\x1c\x1d\x1e\x1f\x85\xa0 x", 80)
def test_svg_text_is_the_full_cleaning(text: str, limit: int) -> None:
    """``svg_text`` (with its quick path for clean ASCII) is the whitespace, invisible-character, length and escape
    treatment in full, and a skeleton's batch of lines shows each as ``svg_text`` does."""
    full = " ".join(text.split())
    full = "".join("?" if HIDDEN_OR_CONTROL.match(ch) else ch for ch in full)
    if len(full) > limit:
        full = full[: limit - 1] + "…"
    assert svg.svg_text(text, limit) == str(escape(full))
    drawn = skeleton(["<a>", Slot(1, limit), "|", Slot(0), "|", Slot(2, 5), "</a>"], 1, 1)
    label = text + "\0<&>"
    expected = f"<a>{svg.svg_text(text, limit)}|{escape(label)}|{svg.svg_text(text, 5)}</a>"
    assert drawn.fill([label, text, text]) == expected


def test_threads_share_the_plot_cache_safely() -> None:
    """Several threads (a Dask worker's tasks) drawing message sequences of 40 shapes at once: every drawing is the
    one for its shape, and the cache stays within its bound."""
    columns = [svg.Column("charger", "Charger"), svg.Column("csms", "CSMS")]

    def steps(k: int) -> list[svg.Step]:
        return [svg.Step(n, 0.01 * n, "charger", "csms", f"call {n}") for n in range(k % 7 + 1)] + [
            svg.Step(99, None, None, None, "n" * (k + 1))
        ]

    svg.cache_clear()
    expected = {k: svg.ladder_svg(steps(k), columns) for k in range(40)}
    svg.cache_clear()
    wrong: list[int] = []

    def work(seed: int) -> None:
        for i in range(500):
            k = (seed * 7 + i * 13) % 40
            if svg.ladder_svg(steps(k), columns) != expected[k]:
                wrong.append(k)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []
    info = svg.ladders.cache_info()
    assert info.currsize <= budgets.REPORT_PLOT_SHAPES
    assert info.hits + info.misses == 6 * 500


@given(st.floats() | st.integers(min_value=-(10**6), max_value=10**6))
@example(0.0)
@example(-0.0)
@example(-0.04)
@example(0.05)
@example(1e300)
@example(float("-inf"))
def test_coordinates_are_written_short(x: float) -> None:
    """``_n`` (most from a cache) writes what ``f"{x:.1f}"`` with its trailing zeros and point stripped writes;
    ``-0.0`` stays ``-0`` and ``0`` stays ``0`` whichever came first."""
    expected = f"{x:.1f}".rstrip("0").rstrip(".")
    assert svg._n(x) == expected
    assert svg._n(x) == expected  # from the cache
    assert (svg._n(-0.0), svg._n(0), svg._n(0.0)) == ("-0", "0", "0")


def reference_fill(pieces: list[Piece], texts: list[object]) -> str:
    """A plot's markup with its texts, piece by piece: what ``Skeleton.fill`` writes in one join."""
    out = []
    for p in pieces:
        if not isinstance(p, Slot):
            out.append(p)
        elif p.limit is not None:
            out.append(svg.svg_text(texts[p.index], p.limit))
        else:
            out.append(str(texts[p.index]) if p.markup else str(escape(texts[p.index])))
    return "".join(out)


markups = st.text(alphabet="<>{}/ =\"'ab0{}", max_size=12)
slots = st.builds(Slot, st.integers(0, 3), st.one_of(st.none(), st.integers(1, 20)), st.booleans()).filter(
    lambda s: s.limit is None or not s.markup
)


@given(st.lists(st.one_of(markups, slots), max_size=12), st.lists(st.text(max_size=25), min_size=4, max_size=4))
@example(["{x}", Slot(0), "}{"], ["<", "", "", ""])
@example(["<svg>", Slot(1, markup=True), Slot(1, markup=True), "</svg>"], ["", "7", "", ""])
@example([], ["", "", "", ""])
@example(["only markup {0}"], ["", "", "", ""])
@example([Slot(2, 3), Slot(0), Slot(2, 3), Slot(2, 4)], ["a&b", "", "  x  y  ", ""])
def test_a_skeleton_fills_piece_by_piece(pieces: list[Piece], texts: list[object]) -> None:
    """Any markup (braces too) and slots in any order, repeated, of every kind: ``fill`` writes each piece in
    place."""
    assert skeleton(pieces, 1, 1).fill(texts) == reference_fill(pieces, texts)
