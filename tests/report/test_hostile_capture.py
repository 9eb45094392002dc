"""A capture whose charger sends hostile strings (station id, vendor, model, CSMS error text): the analysis works,
the reports carry the strings as data, and the HTML report opened in Chromium runs no script."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner
from playwright.sync_api import sync_playwright

from analyzer.cli import cli
from tests import pcapbuild as pb
from tests.report.test_html_browser import ARGS, CHROMIUM

CHARGER, CSMS = "10.0.0.5", "10.0.0.9"
STATION_PATH = "/ocpp/%3Cscript%3Ealert(1)%3C%2Fscript%3E"
VENDOR = "<script>alert(2)</script>"
MODEL = '"><img src=x onerror=alert(3)>'
ERROR_TEXT = "<script>alert(4)</script> {{7*7}} $x^2$ \u202egnp.exe"


def ws_frame(payload: bytes, masked: bool) -> bytes:
    head = bytes([0x81])
    n = len(payload)
    length = bytes([n | (0x80 if masked else 0)]) if n < 126 else bytes([126 | (0x80 if masked else 0)]) + n.to_bytes(2)
    if not masked:
        return head + length + payload
    key = b"\x01\x02\x03\x04"
    return head + length + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def hostile_capture() -> bytes:
    boot = json.dumps([2, "1", "BootNotification", {"chargePointVendor": VENDOR, "chargePointModel": MODEL}])
    error = json.dumps([4, "1", "FormationViolation", ERROR_TEXT, {}])
    request = (
        f"GET {STATION_PATH} HTTP/1.1\r\nHost: csms.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    ).encode()
    response = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )
    c_seq, s_seq = 1000, 5000
    packets: list[tuple[str, str, int, int, int, int, bytes]] = []

    def send(to_server: bool, flags: int, data: bytes = b"") -> None:
        nonlocal c_seq, s_seq
        if to_server:
            packets.append((CHARGER, CSMS, 40000, 9000, c_seq, s_seq, data))
            c_seq += len(data) + (1 if flags & (pb.SYN | pb.FIN) else 0)
        else:
            packets.append((CSMS, CHARGER, 9000, 40000, s_seq, c_seq, data))
            s_seq += len(data) + (1 if flags & (pb.SYN | pb.FIN) else 0)
        packets[-1] = (*packets[-1], flags)  # type: ignore[assignment]

    send(True, pb.SYN)
    send(False, pb.SYN | pb.ACK)
    send(True, pb.ACK)
    send(True, pb.ACK | pb.PSH, request)
    send(False, pb.ACK | pb.PSH, response)
    send(True, pb.ACK | pb.PSH, ws_frame(boot.encode(), masked=True))
    send(False, pb.ACK | pb.PSH, ws_frame(error.encode(), masked=False))
    frames = []
    for i, (src, dst, sport, dport, seq, ack, data, flags) in enumerate(packets):  # type: ignore[misc]
        seg = pb.tcp(sport, dport, seq, ack if flags & pb.ACK else 0, flags, data)
        frames.append((1_700_000_000_000_000_000 + i * 1_000_000, pb.ether(pb.ipv4(src, dst, 6, seg))))
    return pb.pcap(frames)


def test_hostile_strings_are_data_in_every_report_and_run_nothing(tmp_path: Path) -> None:
    cap = tmp_path / "hostile.pcap"
    cap.write_bytes(hostile_capture())
    res = CliRunner().invoke(cli, ["analyze", str(cap), "-o", str(tmp_path)], catch_exceptions=False)
    assert res.exit_code == 1, res.output
    report = json.loads((tmp_path / "hostile.json").read_text())
    (c,) = report["chargers"]
    assert c["id"] == "<script>alert(1)</script>"
    assert (c["root_cause"]["fault"], c["root_cause"]["fix_side"]) == ("ocpp.callerror", "charger")
    assert "chargePointVendor (is longer than 20 characters)" in c["root_cause"]["summary"]
    md = (tmp_path / "hostile.md").read_text()
    assert "<script>" not in md
    html = (tmp_path / "hostile.html").read_text()
    assert "<script" not in html.lower()
    assert "onerror=alert" not in html.replace("onerror=alert(3)&gt;", "")  # only ever as escaped text

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            dialogs: list[str] = []
            requests: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("request", lambda r: r.url.startswith("file:") or requests.append(r.url))
            page.goto((tmp_path / "hostile.html").as_uri(), wait_until="load")
            assert page.evaluate("document.querySelectorAll('script').length") == 0
            assert (
                page.evaluate(
                    "[...document.querySelectorAll('*')].filter(e => e.getAttributeNames()"
                    ".some(n => n.startsWith('on'))).length"
                )
                == 0
            )
            text = page.inner_text("body")
            assert "<script>alert(1)</script>" in text
            assert dialogs == []
            assert requests == []
        finally:
            browser.close()
    assert os.path.getsize(tmp_path / "hostile.html") > 10_000
