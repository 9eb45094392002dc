"""The HTML report in a real headless Chromium (Debian's, installed by ``.ci/apt-deps``): it loads nothing, logs
no error, shows the verdict, draws its plots, runs no script even for a hostile capture, and prints to PDF."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Page, Route, sync_playwright

from analyzer.report.html import report_html
from tests.report import sample_reports as samples

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BROWSER_SAMPLES = [
    "tls_cert_not_yet_valid",
    "ocpp_callerror_schema_violation",
    "healthy",
    "inconclusive",
    "gateway",
    "hostile",
    "empty",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `bash .ci/apt-deps` (make test does)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@dataclass
class Opened:
    page: Page
    report: dict[str, Any]
    url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def _open(browser: Browser, directory: Path, name: str, html: str | None = None) -> Opened:
    """Open sample ``name`` (or ``html``) from a ``file://`` path in a fresh context that records every request
    except the document's own (and aborts it), console errors, page errors and dialogs."""
    rep = samples.SAMPLES[name]()
    path = directory / f"{name}.html"
    path.write_text(html if html is not None else report_html(rep), encoding="utf-8")
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    page = ctx.new_page()
    opened = Opened(page=page, report=rep, url=path.as_uri())

    def route(r: Route) -> None:
        if r.request.url == opened.url:
            r.continue_()
        else:
            opened.requests.append(r.request.url)
            r.abort()

    def dialog(d: Dialog) -> None:
        opened.dialogs.append(d.message)
        d.dismiss()

    ctx.route("**/*", route)
    page.on("request", lambda req: req.url == opened.url or opened.requests.append(req.url))
    page.on("console", lambda m: m.type == "error" and opened.errors.append(m.text))
    page.on("pageerror", lambda e: opened.errors.append(str(e)))
    page.on("dialog", dialog)
    page.goto(opened.url, wait_until="load")
    page.evaluate("Promise.all([...document.images].map(i => i.decode().catch(() => null)))")
    return opened


@pytest.fixture(scope="module")
def opened(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Opened]]:
    """Every sample, rendered and opened once for the module."""
    directory = tmp_path_factory.mktemp("html")
    pages = {name: _open(browser, directory, name) for name in BROWSER_SAMPLES}
    yield pages
    for o in pages.values():
        o.page.context.close()


@pytest.mark.parametrize("name", BROWSER_SAMPLES)
def test_loads_nothing_and_logs_no_error(opened: dict[str, Opened], name: str) -> None:
    o = opened[name]
    assert o.requests == []
    assert o.errors == []
    assert o.dialogs == []


@pytest.mark.parametrize("name", BROWSER_SAMPLES)
def test_verdict_is_visible(opened: dict[str, Opened], name: str) -> None:
    o = opened[name]
    chargers = sorted(o.report["chargers"], key=lambda c: ["fault", "inconclusive", "healthy"].index(c["verdict"]))
    banners = o.page.locator(".verdicts .banner")
    assert banners.count() == len(chargers)
    for i, c in enumerate(chargers):
        banner = banners.nth(i)
        assert banner.is_visible()
        code = banner.locator(".code")
        assert code.is_visible()
        if c["root_cause"]:
            rc = c["root_cause"]
            assert code.inner_text().split()[0] == rc["cx_code"]
            assert banner.locator(".fault-id").inner_text() == rc["fault"]
            assert banner.locator(".summary").is_visible()
            assert banner.locator(".summary").inner_text().startswith(rc["summary"][:30])
        else:
            assert c["verdict"].upper() in code.inner_text()
    if not chargers:
        assert o.page.get_by_text("No charger traffic found in this capture.").is_visible()


@pytest.mark.parametrize("name", BROWSER_SAMPLES)
def test_every_plot_is_drawn(opened: dict[str, Opened], name: str) -> None:
    o = opened[name]
    sizes = o.page.evaluate(
        "[...document.querySelectorAll('svg.chart')].map(s => [s.getBoundingClientRect().width,"
        " s.getBoundingClientRect().height, s.querySelectorAll('text').length])"
    )
    assert len(sizes) == 2 * len(o.report["chargers"])
    for w, h, texts in sizes:
        assert w > 100
        assert h > 50
        assert texts > 3


@pytest.mark.parametrize("name", BROWSER_SAMPLES)
def test_fits_a_laptop_screen(opened: dict[str, Opened], name: str) -> None:
    o = opened[name]
    assert o.page.evaluate("document.documentElement.scrollWidth") <= 1280


def test_hostile_report_runs_no_script(opened: dict[str, Opened]) -> None:
    o = opened["hostile"]
    page = o.page
    assert o.dialogs == []
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    assert page.evaluate("document.images.length") == 0
    assert page.evaluate(
        "[...document.querySelectorAll('*')].every(e => ![...e.attributes].some(a => a.name.startsWith('on')))"
    )
    who = page.locator(".verdicts .who").first
    assert who.is_visible()
    assert samples.SCRIPT in who.inner_text()
    assert samples.IMG in who.inner_text()
    payload = page.locator("pre.payload").first.inner_text()
    assert "</pre><script>alert(2)</script>" in payload
    assert "{{ 7*7 }}" in page.locator("body").inner_text()


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def test_prints_to_pdf(opened: dict[str, Opened]) -> None:
    o = opened["gateway"]
    pdf = o.page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF")
    # the overview, one page or more per charger (page break before each), the capture and its timeline
    assert _pages(pdf) > 1 + len(o.report["chargers"])
    hostile = opened["hostile"].page.pdf(format="A4")
    assert hostile.startswith(b"%PDF")
    assert _pages(hostile) > 1


def test_the_checks_catch_a_request_a_script_and_an_error(browser: Browser, tmp_path: Path) -> None:
    """The recorders work: a page that fetches an image, runs a script and logs an error is caught."""
    bad = (
        report_html(samples.empty())
        .replace("default-src &#39;none&#39;", "default-src *; script-src &#39;unsafe-inline&#39;")
        .replace(
            "</main>", '<img src="http://127.0.0.1:9/x.png"><script>console.error("boom"); alert(1)</script></main>'
        )
    )
    o = _open(browser, tmp_path, "empty", html=bad)
    try:
        assert o.requests == ["http://127.0.0.1:9/x.png"]
        assert o.dialogs == ["1"]
        assert "boom" in o.errors
    finally:
        o.page.context.close()


OVERFLOWING_CELLS = """() => [...document.querySelectorAll('td, th')].filter(td => td.scrollWidth > td.clientWidth + 1)
  .map(td => td.closest('table').className + ': ' + td.textContent.trim().slice(0, 40))"""


def test_no_table_cell_runs_into_the_next_on_screen_or_paper(browser: Browser, tmp_path: Path) -> None:
    """A long capture's times (+123456.789012 s) and the direction column fit their columns or wrap in them."""
    from analyzer.report.html import _ns
    from analyzer.timefmt import iso_utc

    rep = samples.SAMPLES["ocpp_callerror_schema_violation"]()
    for c in rep["chargers"]:
        for m in c["ocpp_messages"]:
            m["time"] = iso_utc(_ns(m["time"]) + 123_456 * 10**9)
    o = _open(browser, tmp_path, "ocpp_callerror_schema_violation", html=report_html(rep))
    try:
        rel = o.page.locator("table.ocpp tbody tr td:nth-child(2)").first.inner_text()
        assert rel.startswith("+12345")  # the long value is there to be measured
        assert o.page.evaluate(OVERFLOWING_CELLS) == []
        o.page.emulate_media(media="print")
        assert o.page.evaluate(OVERFLOWING_CELLS) == []
    finally:
        o.page.context.close()


def test_one_charger_shows_its_verdict_card_once(opened: dict[str, Opened]) -> None:
    for name in ("tls_cert_not_yet_valid", "healthy", "gateway"):
        o = opened[name]
        n = len(o.report["chargers"])
        cards = o.page.locator(".banner").count()
        assert cards == (1 if n == 1 else 2 * n), name  # several: the overview's card and each section's


def test_what_to_do_is_a_numbered_list_not_checkboxes(opened: dict[str, Opened]) -> None:
    o = opened["tls_cert_not_yet_valid"]
    steps = o.page.locator("ol.steps li")
    assert steps.count() == len(o.report["chargers"][0]["root_cause"]["remediation"]) > 0
    style = o.page.evaluate(
        "(() => { const li = document.querySelector('ol.steps li'); const before = getComputedStyle(li, '::before');"
        " return [getComputedStyle(li).listStyleType, before.content, before.borderTopWidth]; })()"
    )
    assert style[0] == "decimal"
    assert style[1] in ("none", "normal")  # no drawn box in front of a step
    assert o.page.locator("input[type=checkbox]").count() == 0
