"""A report's size is bounded by the chargers and their failures, not by the capture's length: a long session is
reported with the events its findings and attempts point to (``timeline_complete: false``), and a page with many
chargers draws the failing ones in full and lists every other one in a row."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from analyzer import budgets
from analyzer.config import Settings
from analyzer.engine import analyze
from analyzer.report.build import report_dict
from analyzer.report.html import report_html
from analyzer.report.markdown import report_markdown
from tests import pcapbuild as pb
from tests.report import sample_reports as samples
from tests.report.test_hostile_capture import ws_frame

CHARGER, CSMS = "10.3.0.7", "10.3.0.1"


def heartbeats_capture(n: int, close_code: int | None) -> bytes:
    """One charger: upgrade, Boot accepted, ``n`` Heartbeats answered, then (optionally) the CSMS's close frame."""
    talk = pb.TcpTalk(CHARGER, CSMS, 40002, 9000)
    send = talk.send

    def call(uid: str, action: str, payload: dict, answer: dict) -> None:
        send(True, pb.ACK | pb.PSH, ws_frame(json.dumps([2, uid, action, payload]).encode(), masked=True))
        send(False, pb.ACK | pb.PSH, ws_frame(json.dumps([3, uid, answer]).encode(), masked=False))

    talk.open(pb.ws_upgrade("CP-LONG"))
    now = {"currentTime": "2027-01-15T08:00:00Z"}
    call(
        "0",
        "BootNotification",
        {"chargePointVendor": "V", "chargePointModel": "M"},
        {**now, "interval": 60, "status": "Accepted"},
    )
    for i in range(1, n + 1):
        call(str(i), "Heartbeat", {}, now)
    if close_code is not None:
        send(False, pb.ACK | pb.PSH, bytes([0x88, 2]) + close_code.to_bytes(2))
    return pb.pcap(talk.frames)


def test_a_long_session_keeps_what_its_findings_point_to(tmp_path: Path) -> None:
    cap = tmp_path / "long.pcap"
    cap.write_bytes(heartbeats_capture(1500, close_code=1011))
    r = report_dict(analyze(cap, Settings()))
    (c,) = r["chargers"]
    rc = c["root_cause"]
    assert (rc["fault"], c["id"]) == ("ws.abnormal_close", "CP-LONG")
    assert r["timeline_complete"] is False
    assert r["timeline_omitted"] > 5000
    assert len(r["timeline"]) < 100
    frames = {row["frame"] for row in r["timeline"]}
    assert rc["frame"] in frames
    assert {a["first_frame"] for a in c["attempts"]} <= frames
    assert len(c["ocpp_messages"]) <= budgets.OCPP_MESSAGES_PER_CHARGER_BIG
    assert c["ocpp_messages_omitted"] == 2 * 1501 - len(c["ocpp_messages"])
    assert c["ocpp_messages"][0]["action"] == "BootNotification"


def test_a_short_session_is_reported_whole(tmp_path: Path) -> None:
    cap = tmp_path / "short.pcap"
    cap.write_bytes(heartbeats_capture(20, close_code=None))
    r = report_dict(analyze(cap, Settings()))
    assert (r["timeline_complete"], r["timeline_omitted"]) == (True, 0)
    assert len(r["chargers"][0]["ocpp_messages"]) == 42


def many_chargers(n: int) -> dict:
    """The gateway sample with its chargers copied to ``n``, every third one failing."""
    rep = samples.gateway()
    failing = next(c for c in rep["chargers"] if c["root_cause"])
    healthy = next(c for c in rep["chargers"] if c["verdict"] == "healthy")
    rep["chargers"] = []
    for i in range(n):
        c = copy.deepcopy(failing if i % 3 == 0 else healthy)
        c["id"] = f"CP-{i:03d}"
        rep["chargers"].append(c)
    return rep


def test_the_html_page_draws_the_failing_chargers_first_and_lists_every_other_one() -> None:
    rep = many_chargers(60)  # 20 failing, 40 healthy
    html = report_html(rep)
    drawn = re.findall(r'<section class="charger" id="charger-(\d+)"', html)
    assert len(drawn) == budgets.HTML_DETAILED_CHARGERS
    rows = re.findall(r'<tr class="(fault|healthy|inconclusive)"><td>(CP-\d+)</td>', html)
    assert len(drawn) + len(rows) == 60
    failing = {f"CP-{i:03d}" for i in range(0, 60, 3)}
    assert not failing & {name for _, name in rows}  # all 20 failing chargers are drawn in full
    assert all(v == "healthy" for v, _ in rows)


def test_markdown_lists_failing_chargers_and_counts_the_others() -> None:
    md = report_markdown(many_chargers(60))
    assert md.count("Who acts:") == 20
    assert "**40 healthy**" in md
    assert md.index("Who acts:") < md.index("**40 healthy**")
