"""Every lab capture's reports say true things plainly: the Markdown is ticket-ready (a header block per failing
charger whose fields are the JSON report's, failing chargers first, healthy ones counted, real ordered lists, no
needless escapes); no Python ``None``/``True``/``False`` in the HTML or Markdown text; every CX code with its
ChargeX name; and no clock reading in the timeline that the Clock section does not take (a TLS random that reads
as 2034 is not the CSMS's clock)."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from analyzer.config import Settings
from analyzer.decoders.mrec import MREC_NAMES
from analyzer.engine import analyze
from analyzer.report.build import report_dict
from analyzer.report.html import report_html
from analyzer.report.markdown import report_markdown
from tests.conftest import PROJECT_CAPTURES

TRUTHS = sorted(PROJECT_CAPTURES.glob("*.truth.json"))
SIDES = {"charger": "charger", "csms": "CSMS", "network": "network", "capture": "capture"}
HEADER = re.compile(r"^- \*\*(?P<name>[A-Za-z ]+):\*\* (?P<value>.*)$")
PY_WORDS = re.compile(r"\b(None|True|False)\b")
UNESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def rendered(truth_file: Path) -> tuple[dict[str, Any], str, str]:
    truth = json.loads(truth_file.read_text())
    keylog = truth["capture"].get("keylog")
    settings = Settings(keylog_files=(str(PROJECT_CAPTURES / keylog),) if keylog else ())
    report = report_dict(analyze(str(PROJECT_CAPTURES / truth["capture"]["file"]), settings))
    return report, report_markdown(report), report_html(report)


def html_text(page: str) -> str:
    page = re.sub(r"(?s)<style.*?</style>|<script.*?</script>", " ", page)
    return html.unescape(re.sub(r"<[^>]+>", "\n", page))


def sections(md: str) -> dict[str, list[str]]:
    """``### NAME: ...`` heading → the lines under it, in order."""
    out: dict[str, list[str]] = {}
    current = None
    for line in md.splitlines():
        if line.startswith("### "):
            current = UNESCAPE.sub(r"\1", line[4:].split(": ", 1)[0])
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


def header_of(lines: list[str]) -> dict[str, str]:
    return {m["name"]: UNESCAPE.sub(r"\1", m["value"]) for ln in lines if (m := HEADER.match(ln))}


def utc_ms(iso: str) -> datetime:
    return datetime.strptime(iso[:23], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


def check_header(c: dict[str, Any], head: dict[str, str]) -> None:
    rc = c["root_cause"]
    assert head["Station id"] == (c["id"] or "not seen")
    assert head["Charger address"] == c["address"]
    csms = c["csms"]
    where = csms["host"] or csms["address"]
    if csms["address"] and ":" in csms["address"] and not csms["host"]:
        where = f"[{where}]"
    port = f":{csms['port']}" if csms["port"] is not None else ""
    address = f" ({csms['address']})" if csms["host"] and csms["address"] else ""
    assert head["CSMS"] == where + port + address + ("" if port else " (port not seen)")
    assert head["Connection"].split()[0] == (c["transport"] or "not")
    when = datetime.strptime(head["Failure time"], "%Y-%m-%d %H:%M:%S.%f UTC").replace(tzinfo=UTC)
    assert when == utc_ms(rc["time"])
    assert head["Fault"].startswith(f"`{rc['fault']}`: ")
    assert head["ChargeX code"] == f"{rc['cx_code']} {MREC_NAMES[rc['cx_code']]}" if rc["cx_code"] else "none"
    assert head["Frame"].split()[0] == str(rc["frame"])
    assert head["Who acts"].startswith(f"**{SIDES[rc['fix_side']]}**")
    assert head["Site visit"].startswith("**yes**" if c["site_visit"] else "no")


@pytest.mark.parametrize("truth_file", TRUTHS, ids=lambda p: p.name.removesuffix(".truth.json"))
def test_reports_say_true_things_plainly(truth_file: Path) -> None:
    report, md, page = rendered(truth_file)  # each capture analysed and rendered once
    markdown_is_ticket_ready(report, md)
    no_python_words_and_every_cx_code_named(md, page)
    no_clock_reading_the_clock_section_does_not_take(report, page)


def markdown_is_ticket_ready(report: dict[str, Any], md: str) -> None:
    by_name = sections(md)
    failing = [c for c in report["chargers"] if c["root_cause"]]
    healthy = [c for c in report["chargers"] if c["verdict"] == "healthy"]
    assert set(by_name) == {c["id"] or c["address"] for c in report["chargers"] if c["verdict"] != "healthy"}
    for c in failing:
        lines = by_name[c["id"] or c["address"]]
        check_header(c, header_of(lines))
        steps = lines[lines.index("What to do:") + 2 :]
        steps = steps[: next((i for i, s in enumerate(steps) if not re.match(r"\d+\. ", s)), len(steps))]
        assert [int(s.split(".")[0]) for s in steps] == list(range(1, len(c["root_cause"]["remediation"]) + 1))
    if healthy:
        (line,) = [ln for ln in md.splitlines() if ln.startswith(f"**{len(healthy)} healthy** charger")]
        assert md.index(line) > max((md.index(f"### {n}") for n in by_name), default=-1)  # failing ones first
    assert not re.search(r"\\[()={}.]|(?<=[^\W_])\\_(?=[^\W_])", md), "an escape no Markdown reader needs"


def no_python_words_and_every_cx_code_named(md: str, page: str) -> None:
    for kind, text in (("md", md), ("html", html_text(page))):
        assert not PY_WORDS.findall(text), (kind, [text[m.start() - 60 : m.end()] for m in PY_WORDS.finditer(text)])
        for m in re.finditer(r"\b(CX\d{3})\b", text):
            after = text[m.end() : m.end() + 40].lstrip(" \n\\")
            assert after.startswith(MREC_NAMES[m.group(1)]), (kind, text[m.start() - 40 : m.end() + 40])


def no_clock_reading_the_clock_section_does_not_take(report: dict[str, Any], page: str) -> None:
    taken = {
        (c["id"], c["address"], s["frame"]) for c in report["chargers"] for s in c["clock"]["samples"]
    }  # every sample: none of these small captures has more than the budget
    assert all(c["clock"]["samples_omitted"] == 0 for c in report["chargers"])
    for row in report["timeline"]:
        if row["event"] == "clock.sample":
            assert (row["charger"], row["charger_address"], row["frame"]) in taken, row
    if not any(s["source"].startswith("tls.") for c in report["chargers"] for s in c["clock"]["samples"]):
        assert "random" not in html_text(page).lower()
