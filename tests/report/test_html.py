"""The HTML report: structure, self-containment, escaping, plots, caps and speed (stdlib ``html.parser``)."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from analyzer.jsontext import finite
from analyzer.report import svg
from analyzer.report.html import (
    MAX_LADDER_STEPS,
    MAX_TEXT,
    MAX_TIMELINE_ROWS,
    MULTI_DAY,
    TEMPLATES,
    _attempts_rows,
    _evidence_rows,
    _ns,
    _payload_text,
    _rel,
    _sample_rows,
    _timeline_rows,
    _visible,
    human_duration,
    report_html,
    template_env,
)
from analyzer.report.page import cell
from analyzer.report.times import clock_text, time_of_day
from tests.report import sample_reports as samples

SCHEMA = json.loads((Path(__file__).parents[2] / "analyzer/report/schema/report.schema.json").read_text())
RESOURCE_ATTRS = {"src", "href", "srcset", "action", "formaction", "poster", "data", "background", "xlink:href", "ping"}
FORBIDDEN_TAGS = {"script", "link", "iframe", "frame", "object", "embed", "base", "form", "audio", "video", "source"}


class Page(HTMLParser):
    """The parts of a page the tests look at: every start tag with its attributes, the text of each element
    class, and ``<style>`` text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.style = ""
        self._stack: list[str] = []
        self.by_class: dict[str, list[str]] = {}
        self._class_stack: list[tuple[str, list[str]]] = []
        self.feed(text)
        self.close()

    VOID = frozenset({"meta", "img", "br", "hr", "input", "link", "col", "wbr", "source"})

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag in self.VOID:
            return
        self._stack.append(tag)
        self._class_stack.append((a.get("class") or "", []))

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            open_tag = self._stack.pop()
            cls, parts = self._class_stack.pop()
            text = "".join(parts)
            for name in cls.split():
                self.by_class.setdefault(name, []).append(" ".join(text.split()))
            if self._class_stack:
                self._class_stack[-1][1].append(text)
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._stack and self._stack[-1] == "style":
            self.style += data
        if self._class_stack:
            self._class_stack[-1][1].append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]

    @property
    def plain(self) -> str:
        return "".join(self.text)


def svg_elements(text: str) -> list[str]:
    """Every ``<svg>...</svg>`` of a page, as written."""
    return re.findall(r"<svg\b.*?</svg>", text, re.DOTALL)


@pytest.fixture(scope="module")
def rendered() -> dict[str, tuple[dict[str, Any], str, Page]]:
    out = {}
    for name, build in samples.SAMPLES.items():
        rep = build()
        text = report_html(rep)
        out[name] = (rep, text, Page(text))
    return out


# ------------------------------------------------------------------------------------------ the sample dicts


@pytest.mark.parametrize("name", list(samples.SAMPLES))
def test_samples_follow_the_schema(name: str) -> None:
    jsonschema.validate(samples.SAMPLES[name](), SCHEMA)


def _shape(value: Any) -> Any:
    """The keys of dicts, recursively (lists: the union over their items)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            s = _shape(item)
            if isinstance(s, dict):
                merged.update(s)
        return [merged] if merged else []
    return None


def _keys(shape: Any, prefix: str = "") -> set[str]:
    out = set()
    if isinstance(shape, dict):
        for k, v in shape.items():
            if prefix.endswith(".payload") or k == "payload":
                out.add(f"{prefix}.{k}")
                continue
            out.add(f"{prefix}.{k}")
            out |= _keys(v, f"{prefix}.{k}")
    elif isinstance(shape, list) and shape:
        out |= _keys(shape[0], prefix + "[]")
    return out


def test_samples_have_the_fields_of_a_real_report() -> None:
    """Every field the builder writes for a real capture exists in the samples, and the samples invent none."""
    from analyzer.config import Settings
    from analyzer.engine import analyze
    from analyzer.report.build import report_dict
    from tests.conftest import PROJECT_CAPTURES

    real = set()
    for cap in ("tls12_cert_not_yet_valid.pcap", "ocpp_schema_violation.pcap", "clock_reset.pcap"):
        real |= _keys(_shape(report_dict(analyze(PROJECT_CAPTURES / cap, Settings()))))
    ours = set()
    for build in samples.SAMPLES.values():
        ours |= _keys(_shape(build()))
    assert {k for k in real - ours if ".payload." not in k} == set()
    for extra in ours - real:  # only fields of lists that were empty in these captures (undecided, ...)
        assert "[]" in extra, extra
        parent = extra[: extra.rindex("[]") + 2]
        assert not any(k.startswith(parent + ".") for k in real), extra


def test_a_real_report_renders() -> None:
    from analyzer.config import Settings
    from analyzer.engine import analyze
    from analyzer.report.build import report_dict
    from tests.conftest import PROJECT_CAPTURES

    rep = report_dict(analyze(PROJECT_CAPTURES / "clock_reset.pcap", Settings()))
    page = Page(report_html(rep))
    assert "CX015" in page.by_class["code"][0]
    assert "clock.reset" in page.plain
    assert len(page.all("svg")) == 2
    assert page.all("img") == []


# ------------------------------------------------------------------------------------------------ structure


@pytest.mark.parametrize("name", list(samples.SAMPLES))
def test_verdict_per_charger_opens_the_page(rendered: dict, name: str) -> None:
    rep, text, page = rendered[name]
    banners = page.by_class.get("banner", [])
    n = len(rep["chargers"])
    assert len(banners) == (2 * n if n > 1 else n)  # at the top, and heading each charger's section when several
    top = text.index('<section class="verdicts"')
    assert top < text.index('<section class="capture"')
    if rep["chargers"]:
        assert top < text.index('<section class="charger"')
    for c in rep["chargers"]:
        rc = c["root_cause"]
        matching = [b for b in banners if (rc["summary"][:40] if rc else c["verdict"].title()) in b]
        assert matching, c["verdict"]
        if rc:
            assert rc["cx_code"] in matching[0]
            assert rc["fault"] in matching[0]
            assert f"frame {rc['frame']}" in matching[0]


def test_verdict_sections_in_order(rendered: dict) -> None:
    _, text, _ = rendered["tls_cert_not_yet_valid"]
    headings = [
        "Timeline",
        "Message sequence",
        "Evidence",
        "OCPP messages",
        "TLS",
        "Clock",
        "What to do",
        "Findings and undecided items",
    ]
    positions = [text.index(f"<h3>{h}</h3>") for h in headings]
    assert positions == sorted(positions)
    assert positions[-1] < text.index('<section class="capture"') < text.index('<section class="timeline"')


def test_faults_first_in_the_overview(rendered: dict) -> None:
    _, _, page = rendered["gateway"]
    verdicts = [re.search(r"\b(Fault|Healthy|Inconclusive)\b", b).group(1) for b in page.by_class["banner"][:3]]
    assert verdicts == ["Fault", "Fault", "Healthy"]  # upper case only through CSS
    assert page.by_class["banner"][0].startswith("CX013 NoInternet Fault")  # the ChargeX name beside the code


def test_inferred_is_marked_with_what_makes_it_certain(rendered: dict) -> None:
    _, _, page = rendered["hostile"]
    assert any("inferred, not seen" in b for b in page.by_class["badge"])
    assert any(c.startswith("What would make it certain:") for c in page.by_class["certain"])
    _, _, seen = rendered["tls_cert_not_yet_valid"]
    assert "seen in the capture" in seen.by_class["badge"]
    assert "certain" not in seen.by_class
    assert any("also CX015" in b for b in seen.by_class["banner"])


def test_ticket_line(rendered: dict) -> None:
    _, _, page = rendered["ocpp_callerror_schema_violation"]
    assert page.by_class["ticket"][0].startswith(
        "CP-XRAY-41: CX013 NoInternet ocpp.schema_violation at frame 9 (high confidence). The charger's BootNotific"
    )


@pytest.mark.parametrize("name", list(samples.SAMPLES))
def test_plots_are_inline_svg_with_size_and_label(rendered: dict, name: str) -> None:
    rep, text, page = rendered[name]
    plots = page.all("svg")
    assert len(plots) == 2 * len(rep["chargers"])
    assert page.all("img") == []
    for plot, markup in zip(plots, svg_elements(text), strict=True):
        w, h = int(str(plot["width"])), int(str(plot["height"]))
        assert plot["viewbox"] == f"0 0 {w} {h}"
        assert w > 100
        assert h > 50
        assert plot["role"] == "img"
        assert len(str(plot["aria-label"])) > 20
        assert len(markup) < 200_000


@pytest.mark.parametrize("name", list(samples.SAMPLES))
def test_self_contained(rendered: dict, name: str) -> None:
    _, text, page = rendered[name]
    for tag, attrs in page.tags:
        assert tag not in FORBIDDEN_TAGS
        for key, value in attrs.items():
            assert not key.startswith("on"), (tag, key)
            if key in RESOURCE_ATTRS:
                v = (value or "").strip().lower()
                assert v.startswith("#"), (tag, key, v[:80])
            if key == "style":
                assert "url(" not in (value or "").lower()
    style = page.style.lower()
    assert "url(" not in style
    assert "@import" not in style
    assert "@font-face" not in style
    assert "http:" not in style
    assert "https:" not in style
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.IGNORECASE)


@pytest.mark.parametrize("name", list(samples.SAMPLES))
def test_content_security_policy(rendered: dict, name: str) -> None:
    _, text, page = rendered[name]
    metas = [a for a in page.all("meta") if (a.get("http-equiv") or "").lower() == "content-security-policy"]
    assert len(metas) == 1
    policy = {d.split()[0]: d.split()[1:] for d in str(metas[0]["content"]).split(";") if d.strip()}
    assert policy["default-src"] == ["'none'"]
    assert policy["img-src"] == ["data:"]
    assert "script-src" not in policy  # default-src 'none' forbids all script
    assert text.index("Content-Security-Policy") < text.index("<style")


def test_empty_report_renders(rendered: dict) -> None:
    _, _, page = rendered["empty"]
    assert "No charger traffic found in this capture." in page.plain
    assert "printer-noise.pcap" in page.plain
    assert page.all("img") == []


def test_capture_metadata(rendered: dict) -> None:
    rep, _, page = rendered["hostile"]
    plain = page.plain
    for text in (rep["capture"]["sha256"], "pcap", "EN10MB", "12.0 ms", "snaplen 96 truncates packets"):
        assert text in plain
    assert "3 packets were truncated by the capture's snaplen" in plain


def test_tls_certificate_against_the_charger_clock(rendered: dict) -> None:
    _, _, page = rendered["tls_cert_not_yet_valid"]
    plain = " ".join(page.plain.split())
    assert "2025-06-01 00:00:00 UTC" in plain
    assert "valid by the capture clock" in plain
    assert "not yet valid" in plain
    assert "not yet valid (25.4 years before notBefore) by the charger's clock" in plain
    assert re.search(r"charger clock at the ClientHello\s*2000-01-01 00:03:12", plain)
    assert "yes: 2000-01-01" in plain  # the clock section names the reset
    assert "-26.9 years" in plain


def test_ocpp_violation_and_callerror_highlighted(rendered: dict) -> None:
    _, text, page = rendered["ocpp_callerror_schema_violation"]
    rows = [a for t, a in page.tags if t == "tr" and "violation" in (a.get("class") or "")]
    assert len(rows) == 1
    assert "chargePointModel" in page.by_class["violations"][0]
    assert "is required" in page.by_class["violations"][0]
    assert any("FormationViolation" in e for e in page.by_class["err"])
    assert '"chargePointVendor": "GhostcapLab"' in page.plain  # pretty JSON, escaped in the source
    assert "&#34;chargePointVendor&#34;" in text or "&quot;chargePointVendor&quot;" in text


def test_findings_and_undecided(rendered: dict) -> None:
    _, _, page = rendered["inconclusive"]
    plain = page.plain
    assert "undecided" in plain
    assert "ocpp.no_response" in plain
    assert "the capture ended before these could be decided" in plain


# ------------------------------------------------------------------------------------------------- hostile


def test_hostile_strings_appear_only_escaped(rendered: dict) -> None:
    _, text, page = rendered["hostile"]
    assert page.all("script") == []
    assert not [a for t, a in page.tags if t == "img" and not str(a.get("src")).startswith("data:image/png")]
    assert "<script" not in text.lower()
    assert "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in text
    assert samples.SCRIPT in page.plain
    assert samples.IMG in page.plain
    assert "{{ 7*7 }}" in page.plain  # template syntax from the capture is text, never evaluated
    assert "$x^2$" in page.plain


def test_hostile_invisible_characters_are_shown(rendered: dict) -> None:
    _, text, _ = rendered["hostile"]
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]", text)
    assert "[U+202E]" in text
    assert "[U+0000]" in text
    assert "[U+001B]" in text
    assert "[U+D83D]" in text
    text.encode("utf-8")  # no lone surrogate: the writer can save it


def test_hostile_long_strings_are_bounded(rendered: dict) -> None:
    _rep, text, _ = rendered["hostile"]
    assert samples.LONG not in text
    assert "more characters in the JSON report" in text
    assert len(text) < 1_000_000


def test_visible() -> None:
    assert _visible(None) == "—"
    assert _visible(3) == 3
    assert _visible("a\u202eb\x00c\td\ne") == "a[U+202E]b[U+0000]c\td\ne"
    long = _visible("x" * (MAX_TEXT + 10))
    assert long.startswith("x" * MAX_TEXT)
    assert long.endswith("[10 more characters in the JSON report]")


def test_chart_labels_are_text() -> None:
    """Capture text in a plot is escaped text: no markup, no control or direction character, bounded."""
    steps = [
        svg.Step(frame=1, t=0.0, src="charger", dst="csms", label=samples.MATH, failing=True),
        svg.Step(frame=2, t=0.1, src=None, dst=None, label=f"{samples.CONTROL}{samples.RTL}{samples.SCRIPT}"),
    ]
    drawn = svg.ladder_svg(
        steps, [svg.Column("charger", "Charger", (samples.IMG,)), svg.Column("csms", "CSMS", (samples.SCRIPT,))]
    )
    pins = [svg.Pin(t=0.05, layer="ocpp", label=samples.SCRIPT)]
    line = svg.timeline_svg([svg.Mark(t=0.0, layer="ocpp", frame=1)], pins, label=samples.IMG)
    for markup in (str(drawn.markup), str(line.markup)):
        page = Page(markup)
        assert [
            t for t, _ in page.tags if t not in ("svg", "title", "rect", "line", "path", "text", "g", "circle")
        ] == []
        assert all(not k.startswith("on") for _, a in page.tags for k in a)
        assert "\u202e" not in markup
        assert "\x00" not in markup
    assert "&lt;script&gt;" in str(drawn.markup)


def test_svg_text() -> None:
    assert svg.svg_text("a\u202eb\x00c\nd") == "a?b?c d"
    assert svg.svg_text("中<b>") == "中&lt;b&gt;"
    assert svg.svg_text("x" * 100, 10) == "x" * 9 + "…"
    assert svg.nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]


# ---------------------------------------------------------------------------------------------------- caps


def test_caps_on_timeline_rows_and_ladder_steps() -> None:
    rep = samples.many_events(MAX_TIMELINE_ROWS + 300)
    text = report_html(rep)
    page = Page(text)
    rows = [a for t, a in page.tags if t == "tr"]
    full = text[text.index('<section class="timeline"') :]
    assert full.count("<tr") == MAX_TIMELINE_ROWS + 1  # + the header row
    assert f"the first {MAX_TIMELINE_ROWS} are shown, 300 more are omitted" in " ".join(page.plain.split())
    assert len(rep["timeline"]) == MAX_TIMELINE_ROWS + 300
    caption = " ".join(c for c in page.plain.split("\n") if "Showing" in c)
    assert f"Showing {MAX_LADDER_STEPS} of" in caption
    assert "earlier and 0 later steps left out" in caption
    assert len(rows) > MAX_TIMELINE_ROWS
    for markup in svg_elements(text):
        assert len(markup) < 200_000


def test_ladder_keeps_the_failure_in_view() -> None:
    rep = samples.many_events(400)
    page = Page(report_html(rep))
    alt = next(str(a["aria-label"]) for a in page.all("svg") if str(a["aria-label"]).startswith("Message sequence"))
    assert f"the failing step is frame {rep['chargers'][0]['root_cause']['frame']}: RST" in alt


# ---------------------------------------------------------------------------------------------- behaviour


def test_render_is_pure_and_deterministic() -> None:
    rep = samples.gateway()
    before = copy.deepcopy(rep)
    assert report_html(rep) == report_html(rep)
    assert rep == before


def test_missing_extension_fields_still_render() -> None:
    """A report with only the contract's fields (no clock, tls, ocpp_messages, ...) renders."""
    rep = samples.gateway()
    for c in rep["chargers"]:
        for key in ("verdict_reason", "undecided", "clock", "connections", "ocpp_messages", "tls", "errors"):
            c.pop(key)
        if c["root_cause"]:
            for key in ("also_cx", "certain_with"):
                c["root_cause"].pop(key)
    for row in rep["timeline"]:
        row.pop("charger_address")
    page = Page(report_html(rep))
    assert len(page.by_class["banner"]) == 6


def test_times() -> None:
    at = int(datetime(2026, 11, 24, 4, 16, 46, tzinfo=UTC).timestamp())
    assert _ns("2026-11-24T04:16:46.655619000Z") == at * 10**9 + 655_619_000
    assert _ns("2026-11-24T04:16:46.5Z") == at * 10**9 + 500_000_000
    assert _ns("2026-11-24T04:16:46Z") == at * 10**9
    assert _ns("not a time") is None
    assert _ns(None) is None
    assert human_duration(-848809029.04) == "-26.9 years"
    assert human_duration(0.0123) == "12.3 ms"
    assert human_duration(90) == "90.000 s"
    assert human_duration(7200) == "2.0 h"


@pytest.mark.parametrize(
    ("event", "summary", "expected"),
    [
        ("tcp.rst", "RST 198.51.100.50:8443 → 10.30.0.3:40200", ("csms", "charger")),
        ("tcp.fin", "FIN 10.30.0.3:40200 → 198.51.100.50:8443", ("charger", "csms")),
        ("tcp.rst", "RST [2001:db8::3]:40200 → [2001:db8::50]:443", ("charger", "csms")),
        ("tcp.syn", "SYN 10.30.0.3:40200 → 198.51.100.50:8443 (attempt 2)", ("charger", "csms")),
        ("tls.certificate", "server Certificate: 1 cert(s), leaf x", ("csms", "charger")),
        ("websocket.close", "close 1000", (None, None)),
        ("ocpp.call_result", "CSMS→charger CALLRESULT Heartbeat [9] after 1.0 ms", ("csms", "charger")),
    ],
)
def test_ladder_direction(event: str, summary: str, expected: tuple) -> None:
    from analyzer.report.html import _direction

    address = "2001:db8::3" if "[" in summary else "10.30.0.3"
    assert _direction({"event": event, "summary": summary, "frame": 1}, {"address": address}, {}, []) == expected


def test_the_verdict_card_leads_with_who_acts(rendered: dict) -> None:
    """The fault in plain words, who can fix it, whether someone must go there, and the CX code with its name."""
    _, _, page = rendered["tls_cert_not_yet_valid"]
    (line, *_) = page.by_class["dispatch"]
    assert line.startswith("The charger's clock is before the server certificate's notBefore")
    assert "who acts: charger" in line
    assert "no site visit" in line
    assert "CX013 NoInternet" in line


# the template loops the evidence, attempts and clock reading rows were written by before ``html._evidence_rows``,
# ``html._attempts_rows`` and ``html._sample_rows``
EVIDENCE_LOOP = (
    "{% for e in evidence %}"
    '      <tr{% if e.frame == fail %} class="fail"{% endif %}><td class="frame num">{{ e.frame }}</td>'
    "<td>{{ e.what }}</td><td>{% if e.display_filter %}"
    '<code class="filter">{{ e.display_filter }}</code>{% endif %}{% if e.stream_filter %}'
    ' <code class="filter">{{ e.stream_filter }}</code>{% endif %}</td></tr>\n'
    "{% endfor %}"
)
ATTEMPTS_LOOP = (
    '{% for a in attempts %}<tr><td class="frame num">{{ a.first_frame }}</td><td>{{ a.kind }}</td>'
    "<td>{{ a.reached }}</td><td>{{ a.ended }}{% if a.by %} by {{ a.by }}{% endif %}"
    "{% if a.code is not none %} ({{ a.code }}){% endif %}</td><td>{{ a.summary }}</td></tr>{% endfor %}"
)
SAMPLES_LOOP = (
    '{% for s in samples %}      <tr><td class="frame num">{{ s.frame }}</td><td class="num">{{ s.rel }}</td>'
    '<td>{{ s.side }}</td><td class="mono">{{ s.source }}</td><td>{{ s.value }}</td><td>{{ s.captured }}</td></tr>\n'
    "{% endfor %}"
)
ODD = [samples.SCRIPT, samples.IMG, samples.CONTROL, samples.RTL, samples.LONG, "", None, 7, True, "plain text"]


@pytest.mark.parametrize("odd", ODD)
def test_rows_written_in_python_are_the_template_loops(odd: Any) -> None:
    """Evidence, attempts and clock reading rows, hostile or odd values in each place, are what the template loops
    wrote."""
    env = template_env(TEMPLATES)
    evidence = [
        {"frame": 3, "what": odd, "display_filter": "frame.number == 3", "stream_filter": odd},
        {"frame": odd, "what": "x < y", "display_filter": odd, "stream_filter": None},
    ]
    for fail in (3, odd, None):
        expected = env.from_string(EVIDENCE_LOOP).render(evidence=evidence, fail=fail)
        assert _evidence_rows(evidence, fail) == expected
    attempts = [
        {"first_frame": odd, "kind": "tcp", "reached": odd, "ended": "reset", "by": odd, "code": odd, "summary": odd},
        {"first_frame": 9, "kind": odd, "reached": "tls", "ended": odd, "by": None, "code": None, "summary": "&"},
    ]
    assert _attempts_rows(attempts) == env.from_string(ATTEMPTS_LOOP).render(attempts=attempts)
    samples = [
        {"frame": odd, "rel": "+0.100000", "side": odd, "source": "http.date", "value": odd, "captured": odd},
        {"frame": 4, "rel": None, "side": "csms", "source": odd, "value": "Tue, 1 Jan", "captured": None},
    ]
    assert _sample_rows(samples) == env.from_string(SAMPLES_LOOP).render(samples=samples)


def reference_timeline_rows(
    rows: list[dict[str, Any]], row_ns: list[int | None], start: int | None, one_day: bool, fail_frames: set[Any]
) -> str:
    """The full timeline's rows cell by cell, as the template loop wrote them."""
    out = []
    for r, t in zip(rows, row_ns, strict=False):
        time = ((time_of_day(r.get("time"), t) if one_day else clock_text(t, MULTI_DAY)) or "")[:-3]
        who = r.get("charger") or r.get("charger_address")
        fail = ' class="fail"' if r.get("frame") in fail_frames else ""
        out.append(
            f"      <tr{fail}>"
            f'<td class="frame num">{cell(r.get("frame"))}</td><td class="num">{cell(_rel(t, start))}</td>'
            f"<td>{time or cell(r.get('time'))}</td><td>{cell(r.get('layer'))}</td>"
            f'<td class="mono">{cell(r.get("event"))}</td><td>{cell(who)}</td><td>{cell(r.get("summary"))}</td></tr>\n'
        )
    return "".join(out)


@pytest.mark.parametrize("odd", ODD)
@pytest.mark.parametrize("name", sorted(samples.SAMPLES))
def test_timeline_rows_are_cell_by_cell(odd: Any, name: str) -> None:
    """Every sample's full timeline, and with an odd value in each place of a row, is what the cells give."""
    rows = list(samples.SAMPLES[name]().get("timeline") or [])
    rows += [{k: odd for k in ("frame", "time", "layer", "event", "charger", "charger_address", "summary")}]
    rows += [{"frame": 2, "time": odd, "layer": "tcp", "charger": None, "charger_address": odd, "summary": odd}]
    row_ns = [_ns(r.get("time")) for r in rows]
    start = next((t for t in row_ns if t is not None), None)
    for one_day in (True, False):
        for fail in (set(), {2}, {odd} if isinstance(odd, str | int | None) else set()):
            for shown in (rows, rows[:-1]):  # the shown rows are the first of ``row_ns``'s
                expected = reference_timeline_rows(shown, row_ns, start, one_day, fail)
                assert _timeline_rows(shown, row_ns, start, one_day, fail) == expected
                assert _timeline_rows(shown, row_ns, None, one_day, fail) == reference_timeline_rows(
                    shown, row_ns, None, one_day, fail
                )


def reference_payload_text(payload: Any) -> str:
    """An OCPP payload as ``json.dumps`` pretty-prints it (``_payload_text`` before ``_plain_json``)."""
    try:
        return json.dumps(payload, indent=2, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(finite(payload), indent=2, ensure_ascii=False, default=str)


class Text(str):
    """A text of another type than ``str``: left to ``json.dumps``."""


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**64),
    st.floats(),
    st.text(),
    st.builds(Text, st.text(max_size=5)),
    st.datetimes(),
)
keys = st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))
payloads = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
        st.dictionaries(keys, inner, max_size=3),
    ),
    max_leaves=25,
)


@given(payloads)
@example({"idTag": "ABC", "meterStart": 0, "timestamp": "2026-11-23T04:00:00Z", "v": [1.5, -0.0, 1e300, True, None]})
@example({"a": {}, "b": [], "c": [{}], "d": {"e": [[]]}})
@example({"x": float("inf")})
@example([float("nan"), "\u202e\x00\ud800"])
@example({1: "int key", "z": 2})
@example("just text")
def test_payload_text_is_json_dumps(payload: Any) -> None:
    assert _payload_text(payload) == reference_payload_text(payload)


def test_a_deep_payload_is_json_dumps() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    try:
        expected: Any = reference_payload_text(deep)
    except RecursionError:
        expected = RecursionError
    try:
        got: Any = _payload_text(deep)
    except RecursionError:
        got = RecursionError
    assert got == expected


@given(st.integers(min_value=-62_135_596_800 * 10**9, max_value=253_402_300_799 * 10**9 + 999_999_999))
@example(0)
@example(-1)
@example(-62_135_596_800 * 10**9)
@example(253_402_300_799 * 10**9 + 999_999_999)
def test_timeline_time_of_a_written_text_is_time_of_day(t: int) -> None:
    """A row whose time ``iso_utc`` wrote (and ``_timeline_rows`` takes to the millisecond from the text itself) has
    the time cell ``time_of_day`` gives, in a capture of one day; of several days, ``clock_text``'s."""
    from analyzer.report.times import iso_utc

    rows = [{"frame": 1, "time": iso_utc(t), "layer": "tcp", "event": "tcp.syn", "charger": "<c&>", "summary": "→"}]
    for one_day in (True, False):
        for start in (t, None, t - 1):
            expected = reference_timeline_rows(rows, [t], start, one_day, set())
            assert _timeline_rows(rows, [t], start, one_day, set()) == expected
            assert _timeline_rows(rows, [t + 1], start, one_day, set()) == reference_timeline_rows(
                rows, [t + 1], start, one_day, set()
            )


@given(
    st.sampled_from(["", "charger→CSMS ", "CSMS→charger ", "charger→CSMS", " CSMS→charger ", "CSMS→charger  "]),
    st.text(max_size=20),
    st.sampled_from(["ocpp.call", "ocpp.call_result", "ocpp.send", "ocpp.unparsed", "ocpp.unanswered"]),
)
def test_ocpp_label_cuts_the_direction_as_the_pattern(prefix: str, rest: str, kind: str) -> None:
    """An OCPP step's label is its summary without the direction this pattern matches at its start."""
    from analyzer.report.html import _label

    side = re.compile(r"^(charger→CSMS|CSMS→charger) ")  # the pattern labels were cut by before

    summary = prefix + rest
    assert _label({"event": kind, "summary": summary}, []) == side.sub("", summary)
