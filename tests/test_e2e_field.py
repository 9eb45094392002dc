"""End to end on real chargers in the field (``../shared/captures-external/ocpp-field/``, read in place): each
capture gives the headline its ``FIELD.md`` describes, and no report shows the Basic-auth password or the value of
a secret-holding configuration key those captures carry."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from analyzer.config import Settings
from analyzer.engine import analyze, build_timeline
from analyzer.report.build import report_dict
from analyzer.report.timeline_out import timeline_json, timeline_table
from analyzer.report.writer import render_report
from tests.conftest import EXTERNAL

FIELD = EXTERNAL / "ocpp-field"
SCHEMA = json.loads((Path(__file__).parents[1] / "analyzer/report/schema/report.schema.json").read_text())
PASSWORD = "12345678"  # FIELD.md: the Growatt captures carry Basic auth XGJ00003214700CA:12345678


@cache
def report(name: str) -> dict[str, Any]:
    r = report_dict(analyze(FIELD / name, Settings()))
    jsonschema.validate(r, SCHEMA)
    return r


def only_charger(r: dict[str, Any]) -> dict[str, Any]:
    assert len(r["chargers"]) == 1, [(c["id"], c["address"]) for c in r["chargers"]]
    return r["chargers"][0]


def test_growatt_16_hours_three_silent_reboots() -> None:
    """f4299: the CSMS's ChangeConfiguration is never acknowledged; the charger reconnects and resets the old
    connection; three times. Timestamps without a UTC offset and CSMS extra fields are warnings, not the
    headline; the TLS clients on the plain port are not chargers."""
    r = report("bobbesnl__growatt_thor__ocpp-2025-12-18.pcap")
    c = only_charger(r)
    assert (c["id"], c["address"]) == ("XGJ00003214700CA", "192.168.1.38")
    rc = c["root_cause"]
    assert (c["verdict"], rc["fault"], rc["frame"], rc["count"]) == ("fault", "ocpp.silent_reboot", 4299, 3)
    assert (rc["severity"], rc["fix_side"], c["site_visit"], c["connected_at_end"]) == (
        "failure",
        "charger",
        False,
        True,
    )
    assert 4308 in [e["frame"] for e in rc["evidence"]]  # the charger's RST of the stale connection
    assert {w["fault"] for w in c["warnings"]} >= {"ocpp.schema_violation"}
    assert all(w["severity"] == "warning" for w in c["warnings"])
    assert not [f for f in c["findings"] if f["fault"] == "ocpp.schema_violation"]
    mismatch = [o for o in r["others"] if o["what"] == "tls.scheme_mismatch"]
    assert sorted(o["client"] for o in mismatch) == ["192.168.1.21", "192.168.1.217"]
    assert c["attempts"][0]["before_capture"] is True


def test_growatt_behind_a_relay_closed_after_every_upgrade() -> None:
    """Both legs of a socat relay: one charger named by its own address; the CSMS closes 0.7 ms after each 101
    (f116, seven times); connections that carry WebSocket frames without an upgrade are a further finding."""
    r = report("bobbesnl__growatt_thor__ocpp-2025-12-19.pcap")
    c = only_charger(r)
    assert (c["id"], c["address"]) == ("XGJ00003214700CA", "192.168.1.38")
    rc = c["root_cause"]
    assert (rc["fault"], rc["frame"], rc["count"], rc["fix_side"]) == ("ws.closed_after_upgrade", 116, 7, "csms")
    no_upgrade = [f for f in c["findings"] if f["fault"] == "ws.no_upgrade"]
    assert no_upgrade
    assert no_upgrade[0]["frame"] == 27
    assert no_upgrade[0]["count"] == 21
    # each message once: the StatusNotification of f27 is not counted again from the relay's leg (f29)
    frames = [m["frame"] for m in c["ocpp_messages"]]
    assert 27 in frames
    assert 29 not in frames
    assert [o["what"] for o in r["others"]] == ["relay_leg"]


def test_growatt_cut_short_silent_reboot_and_ignored_requests() -> None:
    r = report("bobbesnl__growatt_thor__ocpp-2025-12-24.pcap")
    c = only_charger(r)
    rc = c["root_cause"]
    assert (rc["fault"], rc["frame"]) == ("ocpp.silent_reboot", 74)
    assert 94 in [e["frame"] for e in rc["evidence"]]
    ignored = [f["frame"] for f in c["findings"] if f["fault"] == "ocpp.charger_no_response"]
    assert ignored == [194, 196]
    assert any("cut short" in w for w in r["capture"]["warnings"])


def test_evsetool_one_session_seen_on_two_legs() -> None:
    """docker-proxy leg and bridge leg: one charger CP_1, Authorize Invalid at f31, each message once."""
    r = report("witchofthewires__evsetool__cap.pcapng")
    c = only_charger(r)
    rc = c["root_cause"]
    assert (c["id"], rc["fault"], rc["frame"], rc["cx_code"]) == ("CP_1", "ocpp.auth_rejected", 31, "CX009")
    actions = [(m["type"], m["action"]) for m in c["ocpp_messages"]]
    assert len(actions) == 8, actions  # 4 CALLs and their 4 results, not twice
    assert c["connections"] == 1


@pytest.mark.parametrize(
    "name",
    [
        "uhi22__pyPLC__2022-11-25_v0.2_alpi_SDP_ok_TCP_fail.pcapng",
        "dspace-group__dsV2Gshark__ISO-20_TLS13_DC_DS5366_Josev.pcapng",
    ],
)
def test_iso15118_car_to_charger_is_not_a_charger(name: str) -> None:
    r = report(name)
    assert r["chargers"] == []
    assert [o["what"] for o in r["others"]] == ["iso15118"]


@pytest.mark.parametrize("name", sorted(p.name for p in FIELD.glob("*.pcap*")))
def test_no_secret_in_any_output(name: str) -> None:
    """Neither the Basic-auth password nor the values of secret-holding configuration keys appear in the JSON,
    Markdown or HTML report, nor in what ``ghostcap timeline`` prints (table and JSON)."""
    r = report(name)
    built = build_timeline(FIELD / name, ())
    outputs = {fmt: render_report(r, fmt) for fmt in ("json", "md", "html")}
    outputs["timeline"] = timeline_table(built)
    outputs["timeline-json"] = "".join(timeline_json(built))
    for fmt, text in outputs.items():
        assert PASSWORD not in text, fmt
        for key in ("G_CardPin", "G_Authentication"):
            for m in re.finditer(
                key + r'(?:[\\":\s,]|&quot;|&#34;){1,8}value(?:[\\":\s]|&quot;|&#34;){1,8}([^"\\&]*)', text
            ):
                assert m.group(1).startswith("«redacted»") or m.group(1) == "", (fmt, m.group(0))


def test_a_gateway_capture_names_only_chargers(tmp_path: Path) -> None:
    """The benchmark's synthetic site gateway (chargers at 10.20.x.y among unrelated TLS, DNS and NTP hosts):
    every charger found is one of the generator's, and none of the unrelated hosts is."""
    import subprocess
    import sys

    cap = tmp_path / "fleet.pcap"
    gen = Path(__file__).parents[1] / "bench" / "make_fleet.py"
    subprocess.run([sys.executable, str(gen), str(cap), "--packets", "20000"], check=True, capture_output=True)
    r = report_dict(analyze(cap, Settings()))
    assert len(r["chargers"]) >= 10
    assert all(c["address"].startswith("10.20.") for c in r["chargers"]), [c["address"] for c in r["chargers"]]
