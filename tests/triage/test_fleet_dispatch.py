"""A fleet built from lab captures rewritten as many chargers (``tests.fleetbuild``): 40 chargers failing against
one expired CSMS certificate, one more much later, and a handful with their own faults. The triage gives one
incident of 40 (and the later one apart), the individual findings, a site-visit list of exactly the charger-side
faults without a working session, network problems by resolver or site, a funnel that matches the verdicts, one
charger per station id across captures (and never one per shared address), and a fleet page that renders in
Chromium without a console error and whose filter box works."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from analyzer.diagnosis.attempts import STAGES
from analyzer.triage.command import RunResult, run_triage
from tests.fleetbuild import charger_copy, write
from tests.report.test_html_browser import ARGS, CHROMIUM

EXPIRED = 40
DAY = 86_400


@dataclass(frozen=True)
class Member:
    """One capture of the fleet: where it goes, the lab scenario, the charger's new address, the station id
    variant, the time shift, and the furthest stage the scenario's charger reaches (what the lab scenario does)."""

    rel: str
    stem: str
    address: str
    v: int = 0
    shift_s: int = 0


STAGE_OF = {  # how far each scenario's charger gets, from what the lab scenario does
    "tls_cert_expired": "tcp",  # the charger aborts the TLS handshake
    "http_unauthorized": "http",  # 401 on the upgrade
    "tls12_cert_not_yet_valid": "tcp",
    "ws_subprotocol_mismatch": "websocket",  # a 101 without the subprotocol, then a close
    "ocpp_charger_ignores_request": "boot_accepted",  # the session works; the charger ignores a CSMS CALL
    "dns_refused": "none",
    "tcp_syn_timeout": "dns",  # the name resolves, the SYN is never answered
    "healthy_16_ws": "boot_accepted",
    "ocpp_boot_rejected": "ocpp",  # BootNotification answered Rejected
}
SITE_VISIT = {"http_unauthorized", "tls12_cert_not_yet_valid", "ws_subprotocol_mismatch"}  # catalogue: charger side
NETWORK = {"dns_refused", "tcp_syn_timeout"}

FLEET = [
    *(
        Member(f"site-a/expired-{i:02d}.pcap", "tls_cert_expired", f"10.20.0.{i + 1}", i, i * 60)
        for i in range(EXPIRED)
    ),
    Member("site-b/expired-later.pcap", "tls_cert_expired", "10.20.1.1", 0, 3 * DAY),  # outside the window
    Member("site-b/unauthorized.pcap", "http_unauthorized", "10.30.0.1", 1),
    # two chargers behind the same 127.0.0.1 and never named (TLS fails before the URL): two chargers, not one
    Member("site-b/clock-1.pcap", "tls12_cert_not_yet_valid", "127.0.0.1", 0, 0),
    Member("site-c/clock-2.pcap", "tls12_cert_not_yet_valid", "127.0.0.1", 0, 2 * 3600),
    Member("site-c/subprotocol.pcap", "ws_subprotocol_mismatch", "10.30.0.2", 2),
    Member("site-c/ignores.pcap", "ocpp_charger_ignores_request", "10.30.0.3", 3),
    Member("site-d/refused-1.pcap", "dns_refused", "10.40.0.1"),
    Member("site-d/refused-2.pcap", "dns_refused", "10.40.0.2", 0, 600),
    Member("site-d/syn-timeout.pcap", "tcp_syn_timeout", "10.40.0.3", 4),
    *(Member(f"site-e/healthy-{i}.pcap", "healthy_16_ws", f"10.50.0.{i}", i) for i in (1, 2, 3)),
    # the first healthy station again, a day later from another address: the same charger
    Member("site-e/healthy-1-again.pcap", "healthy_16_ws", "10.50.0.9", 1, DAY),
    Member("site-e/boot-rejected.pcap", "ocpp_boot_rejected", "10.60.0.1", 5),
]
CHARGERS = len(FLEET) - 1  # healthy-1-again is the same station


@dataclass
class FleetRun:
    src: Path
    out: Path
    result: RunResult


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> FleetRun:
    base = tmp_path_factory.mktemp("fleet-dispatch")
    src = base / "fleet"
    for m in FLEET:
        write(src / m.rel, charger_copy(m.stem, m.address, m.v, m.shift_s))
    out = base / "out"
    result = run_triage([str(src)], out, workers=2, echo=lambda m: None, tty=False)
    return FleetRun(src, out, result)


def query(out: Path, sql: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(out / "triage.db")
    db.row_factory = sqlite3.Row
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def fleet_json(out: Path) -> dict:
    return json.loads((out / "fleet.json").read_text())


def member_of(row: sqlite3.Row | dict) -> Member:
    name = row["capture"]
    return next(m for m in FLEET if name.endswith(m.rel))


def test_forty_chargers_against_one_expired_certificate_are_one_incident(fleet: FleetRun) -> None:
    assert (fleet.result.done, fleet.result.failed) == (len(FLEET), 0)
    incidents = query(fleet.out, "SELECT * FROM incidents ORDER BY id")
    big = incidents[0]
    assert (big["fault"], big["fix_side"], big["chargers"], big["captures"]) == ("tls.cert_expired", "csms", 40, 40)
    assert big["csms_endpoint"] == "csms.lima.test:9420"
    expired = next(p for p in (fleet.out / "captures").glob("expired-00-*.json"))
    leaf = json.loads(expired.read_text())["chargers"][0]["tls"][0]["certificates"][0]
    assert big["signature"] == f"certificate={leaf['sha256']}"
    assert f"expired {leaf['not_after'][:10]} {leaf['not_after'][11:16]} UTC" in big["signature_detail"]
    assert big["summary"].startswith(
        f"40 chargers, tls.cert_expired against csms.lima.test:9420, certificate sha256 {leaf['sha256'][:16]}"
    )
    assert big["fix"] == "Renew the CSMS certificate."
    assert big["still_failing"] == 40
    members = query(fleet.out, f"SELECT * FROM incident_chargers WHERE incident = {big['id']}")
    assert sorted(m["charger_address"] for m in members) == sorted(f"10.20.0.{i + 1}" for i in range(EXPIRED))
    # the same certificate three days later is another incident; the boot rejection is its own
    rest = {(i["fault"], i["chargers"]) for i in incidents[1:]}
    assert rest == {("tls.cert_expired", 1), ("ocpp.boot_rejected", 1)}
    later = next(i for i in incidents[1:] if i["fault"] == "tls.cert_expired")
    assert later["signature"] == big["signature"]
    (lm,) = query(fleet.out, f"SELECT charger_address FROM incident_chargers WHERE incident = {later['id']}")
    assert lm[0] == "10.20.1.1"
    # the results rows point at their incident; the exports carry them
    tagged = query(fleet.out, "SELECT capture, incident FROM results WHERE incident IS NOT NULL")
    boot = next(i for i in incidents if i["fault"] == "ocpp.boot_rejected")
    assert Counter(r["incident"] for r in tagged) == {big["id"]: 40, later["id"]: 1, boot["id"]: 1}
    with open(fleet.out / "incidents.csv", newline="") as f:
        exported = list(csv.DictReader(f))
    assert [int(r["chargers"]) for r in exported] == [i["chargers"] for i in incidents]
    assert len(exported[0]["members"].split()) == 40
    with open(fleet.out / "results.csv", newline="") as f:
        assert sum(1 for r in csv.DictReader(f) if r["incident"] == str(big["id"])) == 40
    assert [i["chargers"] for i in fleet_json(fleet.out)["incidents"]] == [40, 1, 1]


def test_charger_and_network_faults_stay_per_charger(fleet: FleetRun) -> None:
    rows = query(fleet.out, "SELECT * FROM results WHERE verdict = 'fault' AND fix_side != 'csms'")
    assert rows
    assert all(r["incident"] is None for r in rows)
    assert {member_of(r).stem for r in rows} == SITE_VISIT | NETWORK | {"ocpp_charger_ignores_request"}
    findings = {member_of(r).rel: (r["fault"], r["fix_side"]) for r in rows}
    assert findings["site-b/unauthorized.pcap"] == ("http.unauthorized", "charger")
    assert findings["site-d/syn-timeout.pcap"] == ("tcp.syn_timeout", "network")


def test_site_visits_are_exactly_the_charger_faults_without_a_working_session(fleet: FleetRun) -> None:
    visits = fleet_json(fleet.out)["site_visits"]
    expected = {m.rel for m in FLEET if m.stem in SITE_VISIT}
    assert {next(m.rel for m in FLEET if v["capture"].endswith(m.rel)) for v in visits} == expected
    assert len(visits) == len(expected) == 4  # the two chargers behind 127.0.0.1 are two
    assert all(v["fix_side"] == "charger" and v["site_visit"] for v in visits)
    assert [v["failing_s"] for v in visits] == sorted((v["failing_s"] for v in visits), reverse=True)
    assert all(v["fix"] for v in visits)
    # the remote fix (a working session) is not a site visit
    assert [r["capture"].endswith("site-c/ignores.pcap") for r in fleet_json(fleet.out)["remote"]] == [True]


def test_the_site_visit_durations_say_at_least(fleet: FleetRun) -> None:
    """A capture shows how long a charger has failed up to its end, not when the failure stops: the fleet page and
    the Markdown summary say "at least", with the same durations as fleet.json."""
    from analyzer.triage.fleet import duration_words

    words = [duration_words(v["failing_s"]) for v in fleet_json(fleet.out)["site_visits"]]
    md = (fleet.out / "fleet.md").read_text()
    table = md[md.index("## Site visits") : md.index("## Network problems")]
    assert "| charger | fault | failing for at least |" in table
    assert [line.split(" | ")[2] for line in table.splitlines() if line.startswith("| ") and "`" in line] == words
    page = (fleet.out / "index.html").read_text()
    assert ">failing for at least</button>" in page
    assert "it may have failed longer" in page


def test_network_problems_by_resolver_or_site(fleet: FleetRun) -> None:
    groups = {(g["by"], g["where"]): g for g in fleet_json(fleet.out)["network"]}
    resolver = groups[("resolver", "127.0.0.1")]  # the lab's resolver, kept by the rewrite
    assert resolver["faults"] == {"dns.refused": 2}
    site = next(g for (by, where), g in groups.items() if by == "site" and where.endswith("site-d"))
    assert site["faults"] == {"tcp.syn_timeout": 1}
    assert len(groups) == 2


def test_the_funnel_matches_the_verdicts(fleet: FleetRun) -> None:
    doc = fleet_json(fleet.out)
    assert doc["chargers"] == CHARGERS
    latest = {m.rel: m for m in FLEET if m.rel != "site-e/healthy-1.pcap"}  # healthy-1-again is that charger's latest
    expected = [
        sum(1 for m in latest.values() if STAGES.index(STAGE_OF[m.stem]) >= STAGES.index(s)) for s in STAGES[1:]
    ]
    funnel = [f["chargers"] for f in doc["funnel"]]
    assert funnel == expected
    assert [f["title"] for f in doc["funnel"]][-1] == "Boot accepted"
    verdicts = doc["verdicts"]
    assert verdicts["healthy"] == 3
    assert verdicts["fault"] == CHARGERS - 3
    # the chargers that got a Boot accepted are the healthy ones and the one whose session works
    assert funnel[-1] == verdicts["healthy"] + 1
    # the 41 expired-certificate chargers are lost between TCP and TLS
    tcp, tls = funnel[STAGES.index("tcp") - 1], funnel[STAGES.index("tls") - 1]
    assert tcp - tls == EXPIRED + 1 + 2  # and the two clocks
    assert doc["faults"][0] == {"fault": "tls.cert_expired", "chargers": 41}
    assert sum(f["chargers"] for f in doc["faults"]) == verdicts["fault"]


def test_identity_is_the_station_id_across_captures(fleet: FleetRun) -> None:
    rows = query(fleet.out, "SELECT charger_key, capture, charger_id, charger_address FROM results")
    keys = Counter(r["charger_key"] for r in rows)
    assert len(keys) == CHARGERS
    (twice,) = [k for k, n in keys.items() if n == 2]
    assert twice.startswith("id:CP-ALPHA-")
    clocks = [r for r in rows if "clock-" in r["capture"]]
    assert [r["charger_address"] for r in clocks] == ["127.0.0.1", "127.0.0.1"]
    assert clocks[0]["charger_key"] != clocks[1]["charger_key"]


def test_html_only_for_failing_captures_and_json_always(fleet: FleetRun) -> None:
    for r in query(fleet.out, "SELECT capture, verdict, report_html, report_json FROM results"):
        assert (fleet.out / r["report_json"]).is_file()
        assert (r["report_html"] is None) == (r["verdict"] == "healthy"), r["capture"]


def test_fleet_markdown_leads_with_who_acts(fleet: FleetRun) -> None:
    md = (fleet.out / "fleet.md").read_text()
    lines = md.splitlines()
    assert lines[0] == f"# Fleet triage: {CHARGERS} chargers in {len(FLEET)} captures"
    assert lines[2].startswith(
        "**3 backend incidents (42 chargers), 4 site visits, 3 chargers with network problems in 2 groups, "
        "1 other charger to look at.**"
    )
    order = [md.index(h) for h in ("## Backend incidents", "## Site visits", "## Network problems", "## The rest")]
    assert order == sorted(order)
    assert "1. **40 chargers, tls.cert_expired against csms.lima.test:9420" in md
    assert "Fix: Renew the CSMS certificate." in md


@pytest.fixture(scope="module")
def page(fleet: FleetRun) -> Iterator[tuple]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
        pg = ctx.new_page()
        errors: list[str] = []
        requests: list[str] = []
        url = (fleet.out / "index.html").as_uri()
        pg.on("console", lambda m: m.type in ("error", "warning") and errors.append(m.text))
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("request", lambda r: r.url == url or requests.append(r.url))
        pg.goto(url, wait_until="load")
        yield pg, errors, requests
        browser.close()


def test_the_fleet_page_renders_its_first_screen_without_errors(page: tuple) -> None:
    pg, errors, requests = page
    assert errors == []
    assert requests == []
    first = pg.locator("#decide .headline").inner_text()
    assert first.startswith("3 backend incidents (42 chargers), 4 site visits, 3 chargers with network problems")
    for card in ("#card-incidents", "#card-visits", "#card-network", "#card-rest"):
        box = pg.locator(card).bounding_box()
        assert box is not None
        assert box["y"] + box["height"] <= 900, card  # on the first screen
    needs = pg.locator("#card-incidents .needs li").first.inner_text()
    assert needs == "40× tls.cert_expired against csms.lima.test:9420: Renew the CSMS certificate."
    assert "tls.cert_not_yet_valid" in pg.locator("#card-visits").inner_text()
    assert "resolver 127.0.0.1: dns.refused" in pg.locator("#card-network").inner_text()
    # column titles never wrap: each is one line high
    heights = pg.evaluate("[...document.querySelectorAll('#results thead button')].map(b => b.getClientRects().length)")
    assert len(heights) == 9  # every column but the reports
    assert all(h == 1 for h in heights)


def test_the_filter_box_filters_the_rows(page: tuple) -> None:
    pg, errors, _ = page
    box = pg.locator("#filter")
    assert box.is_visible()  # shown once the script runs
    visible = "[...document.querySelectorAll('#results tbody tr')].filter(r => !r.hidden).length"
    assert pg.evaluate(visible) == len(FLEET)
    box.fill("site-b")
    assert pg.evaluate(visible) == sum(1 for m in FLEET if m.rel.startswith("site-b/"))
    box.fill("cert_expired site-a")
    assert pg.evaluate(visible) == EXPIRED
    assert pg.locator("#filter-count").inner_text() == f"{EXPIRED} of {len(FLEET)} rows shown"
    box.fill("")
    assert pg.evaluate(visible) == len(FLEET)
    assert pg.locator("#filter-count").inner_text() == ""
    # sortable: the site visits by how long they have been failing
    pg.click("#visits thead button[data-col='2']")
    got = pg.evaluate("[...document.querySelectorAll('#visits tbody tr')].map(r => Number(r.cells[2].dataset.v))")
    assert got == sorted(got)
    assert errors == []


def test_a_time_with_a_fraction_of_other_than_ascii_digits_keeps_its_seconds() -> None:
    """``"²"`` is a digit to ``str.isdigit``, not to ``int``: the fraction is left out, never an exception."""
    from analyzer.triage.fleet import parse_time

    t = parse_time("2026-11-24T04:16:50.\u00b2Z")
    assert t is not None
    assert (t.second, t.microsecond) == (50, 0)
    assert parse_time("2026-11-24T04:16:50.25Z").microsecond == 250000  # type: ignore[union-attr]
