"""Display filters in the report (``analyzer.report.wireshark``): on every lab capture, the root cause's
``display_filter`` run by ``tshark -r CAPTURE -Y FILTER`` selects exactly the frame the finding names, and its
``stream_filter`` the frames of that connection (the same frames ghostcap counted in the flows with that stream);
each evidence item's stream filter selects its frame too (except an ICMP error, which Wireshark keeps out of the
TCP stream it quotes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzer.config import Settings
from analyzer.engine import analyze
from analyzer.report.build import report_dict
from analyzer.report.wireshark import frame_filter, stream_filter
from tests.conftest import PROJECT_CAPTURES
from tests.tshark_oracle import selected_frames

# a failure at every layer, with and without a key log, one and several chargers, an ICMP error as the root cause
FAILING = [
    PROJECT_CAPTURES / f"{name}.truth.json"
    for name in (
        "dns_nxdomain",
        "dns_no_response",
        "dns_nxdomain_typo_gateway",
        "tcp_refused_backoff",
        "tcp_unreachable",
        "tcp_reset",
        "tcp_syn_timeout",
        "tls_cert_expired",
        "tls_scheme_mismatch_wss_to_ws",
        "http_unauthorized",
        "proxy_nginx_502",
        "ws_dropped",
        "ocpprpc_server_close_code",
        "ocpp_boot_callerror_wss_tls13",
        "ocpp_silent_reboot",
        "clock_reset",
        "gateway_mixed",
    )
]


def _analysis(truth_file: Path):  # type: ignore[no-untyped-def]
    cap = json.loads(truth_file.read_text())["capture"]
    keylog = (str(PROJECT_CAPTURES / cap["keylog"]),) if cap.get("keylog") else ()
    return PROJECT_CAPTURES / cap["file"], analyze(PROJECT_CAPTURES / cap["file"], Settings(keylog_files=keylog))


@pytest.mark.parametrize("truth_file", FAILING, ids=lambda p: p.name.removesuffix(".truth.json"))
def test_root_cause_filters_select_its_frame_and_connection(truth_file: Path) -> None:
    path, a = _analysis(truth_file)
    report = report_dict(a)
    causes = [c["root_cause"] for c in report["chargers"] if c["root_cause"]]
    assert causes
    icmp = {e.frame for e in a.timeline.events if e.kind == "tcp.icmp_error"}
    for rc in causes:
        assert rc["display_filter"] == f"frame.number == {rc['frame']}"
        assert selected_frames(path, rc["display_filter"]) == [rc["frame"]]
        assert rc["stream_filter"] is not None, rc["fault"]
        proto, index = rc["stream_filter"].split(".stream eq ")
        flows = [f for f in a.timeline.flows.values() if f.proto == proto and f.stream == int(index)]
        assert flows
        frames = selected_frames(path, rc["stream_filter"])
        assert frames[0] == min(f.first_frame for f in flows)
        if proto == "tcp":  # the connection's packets, as ghostcap counted them (and ICMP errors quoting them)
            result = {f.id: f for f in _flows(path)}
            assert len(set(frames) - icmp) == sum(sum(result[f.id].packets) for f in flows)
        assert rc["frame"] in frames or rc["frame"] in icmp
        for ev in rc["evidence"]:
            if ev["stream_filter"] == rc["stream_filter"]:
                assert ev["frame"] in frames or ev["frame"] in icmp, ev


def _flows(path: Path):  # type: ignore[no-untyped-def]
    from analyzer.engine import rebuild_flows

    return rebuild_flows(path).flows


def test_every_finding_evidence_and_attempt_of_a_multi_charger_capture_has_its_filters() -> None:
    """Four chargers, each with its own connection: each finding points into its own charger's stream."""
    path = PROJECT_CAPTURES / "gateway_mixed.pcap"
    report = report_dict(analyze(path, Settings()))
    streams = set()
    for c in report["chargers"]:
        items = [c["root_cause"], *(c["root_cause"] or {}).get("evidence", [])] if c["root_cause"] else []
        items += c["findings"] + c["warnings"] + c["undecided"]
        for item in items:
            assert item["display_filter"] == f"frame.number == {item['frame']}"
            assert item["stream_filter"] is not None
        for a in c["attempts"]:
            assert a["stream_filter"] is not None
            streams.add(a["stream_filter"])
    assert len(streams) >= len(report["chargers"])  # one connection each, never one stream for all


def test_a_frame_without_a_flow_has_no_stream_filter() -> None:
    assert frame_filter(0) is None
    assert frame_filter(7) == "frame.number == 7"
    assert stream_filter(None) is None
