"""The fleet page ``index.html`` in a real headless Chromium: it loads nothing, logs no error, draws its charts,
sorts its table with its one hash-allowed script, links reports that exist, shows a hostile station id as text,
and its CSP stops any other script."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from analyzer.triage.command import run_triage
from analyzer.triage.summary import SORT_SCRIPT, csp_for
from tests.conftest import PROJECT_CAPTURES
from tests.report import test_hostile_capture as hostile
from tests.report.test_html_browser import ARGS, CHROMIUM

NAMES = ["gateway_mixed.pcap", "tcp_refused.pcap", "tls_unknown_ca.pcap", "ocpp_auth_rejected.pcap", "demo.pcap"]


@dataclass
class Opened:
    page: Page
    path: Path
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def fleet_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("fleet-page")
    src = base / "src"
    src.mkdir()
    for n in NAMES:
        shutil.copy(PROJECT_CAPTURES / n, src / n)
    (src / "hostile <b>.pcap").write_bytes(hostile.hostile_capture())
    (src / "broken.pcap").write_bytes(b"\x00" * 10)
    out = base / "out"
    run_triage([str(src)], out, workers=2, echo=lambda m: None, tty=False)
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def open_page(browser: Browser, path: Path) -> Opened:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    page = ctx.new_page()
    o = Opened(page, path)
    url = path.as_uri()
    page.on("request", lambda r: r.url == url or o.requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and o.errors.append(m.text))
    page.on("pageerror", lambda e: o.errors.append(str(e)))
    page.on("dialog", lambda d: (o.dialogs.append(d.message), d.dismiss()))
    page.goto(url, wait_until="load")
    page.evaluate("Promise.all([...document.images].map(i => i.decode().catch(() => null)))")
    return o


@pytest.fixture
def opened(browser: Browser, fleet_out: Path) -> Iterator[Opened]:
    o = open_page(browser, fleet_out / "index.html")
    yield o
    o.page.context.close()


def column(page: Page, n: int) -> list[str]:
    return page.evaluate(f"[...document.querySelectorAll('#results tbody tr')].map(r => r.cells[{n}].innerText)")


def test_loads_nothing_logs_no_error_and_draws_its_charts(opened: Opened) -> None:
    page = opened.page
    assert opened.requests == []
    assert opened.errors == []
    assert opened.dialogs == []
    sizes = page.evaluate("[...document.images].map(i => [i.naturalWidth, i.naturalHeight, i.complete])")
    assert len(sizes) == 2  # by fault id, over time
    for w, h, complete in sizes:
        assert complete
        assert w > 300
        assert h > 100
    assert all(page.locator("img.chart").nth(i).is_visible() for i in range(2))
    assert page.evaluate("[...document.images].every(i => i.src.startsWith('data:image/png;base64,'))")
    assert page.evaluate("document.scripts.length") == 1
    csp = page.locator("meta[http-equiv='Content-Security-Policy']").get_attribute("content")
    assert csp == csp_for(SORT_SCRIPT.read_text())
    assert "script-src 'sha256-" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


def test_counts_and_faults(opened: Opened) -> None:
    text = opened.page.locator(".verdicts").inner_text()
    assert re.search(r"\b1 captures? failed to analyse", text), text
    faults = dict(
        opened.page.evaluate(
            "[...document.querySelectorAll('#by-fault tbody tr')]"
            ".map(r => [r.cells[0].innerText, r.cells[1].innerText])"
        )
    )
    assert faults["ocpp.auth_rejected"] == "1"
    assert faults["tcp.refused"] == "1"


def test_sorting_works(opened: Opened) -> None:
    page = opened.page
    rows = page.locator("#results tbody tr").count()
    assert rows == 4 + 1 + 1 + 1 + 1 + 1 + 1  # gateway's four chargers, four single ones, hostile, broken
    page.click("#results thead button[data-col='5']")
    frames = [f for f in column(page, 5) if f != "—"]
    assert frames == [str(n) for n in sorted(int(f) for f in frames)]
    assert len(frames) >= 5
    assert column(page, 5)[-1] == "—"  # empty last
    assert page.locator("#results thead th").nth(5).get_attribute("aria-sort") == "ascending"
    page.click("#results thead button[data-col='5']")
    frames = [f for f in column(page, 5) if f != "—"]
    assert frames == [str(n) for n in sorted((int(f) for f in frames), reverse=True)]
    page.click("#results thead button[data-col='2']")
    verdicts = column(page, 2)
    assert [v.split("\n")[0] for v in verdicts] == sorted(v.split("\n")[0] for v in verdicts)
    assert opened.errors == []


def test_links_resolve_to_existing_reports(opened: Opened, browser: Browser) -> None:
    hrefs = opened.page.evaluate("[...document.querySelectorAll('#results a.html, #results a.json')].map(a => a.href)")
    # json for every row but the broken capture's; html for those with a failing or inconclusive charger (not the
    # healthy demo.pcap)
    assert len([h for h in hrefs if h.endswith(".json")]) == 9
    assert len([h for h in hrefs if h.endswith(".html")]) == 8
    for h in hrefs:
        u = urlparse(h)
        assert u.scheme == "file"
        assert Path(unquote(u.path)).is_file(), h
        assert Path(unquote(u.path)).parent == opened.path.parent / "captures"
    first = next(h for h in hrefs if h.endswith(".html") and "hostile" in h)
    report = open_page(browser, Path(unquote(urlparse(first).path)))
    try:
        assert report.page.title() == "ghostcap report: hostile <b>.pcap"
        assert report.dialogs == []
        assert report.requests == []
    finally:
        report.page.context.close()


def test_a_hostile_station_id_is_text(opened: Opened) -> None:
    page = opened.page
    assert opened.dialogs == []
    body = page.locator("body").inner_text()
    assert "<script>alert(1)</script>" in body
    assert "hostile <b>.pcap" in body
    assert page.evaluate("document.querySelectorAll('#results b').length") == 0  # the name's <b> is text
    assert page.evaluate("document.scripts.length") == 1
    assert page.evaluate(
        "[...document.querySelectorAll('*')].every(e => ![...e.attributes].some(a => a.name.startsWith('on')))"
    )


def test_the_csp_blocks_any_other_script(browser: Browser, fleet_out: Path) -> None:
    """The recorders work and the hash CSP holds: an injected inline script is refused (and logged), the page's
    own still sorts."""
    html = (fleet_out / "index.html").read_text()
    bad = fleet_out / "bad.html"
    bad.write_text(html.replace("</main>", "<script>alert(9)</script></main>"))
    o = open_page(browser, bad)
    try:
        assert o.dialogs == []
        assert any("Content Security Policy" in e for e in o.errors), o.errors
        o.page.click("#results thead button[data-col='5']")
        assert o.page.locator("#results thead th").nth(5).get_attribute("aria-sort") == "ascending"
    finally:
        o.page.context.close()
