"""Choosing the root cause (catalogue "Choosing the root cause"), on findings built in the test and on a capture
built byte by byte: a warning never outranks a failure, a close outranks the unanswered CALL it cut short, many
attempts that failed the same way are one finding, the attempt that got furthest gives the root cause."""

from __future__ import annotations

import json
from pathlib import Path

from analyzer.config import Settings
from analyzer.diagnosis.attempts import Attempt
from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.clock import ClockAnalysis
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.runner import verdict
from analyzer.engine import analyze
from analyzer.report.build import report_dict
from tests import pcapbuild as pb
from tests.report.test_hostile_capture import ws_frame

S = 10**9


def finding(fault: str, frame: int, flow: int | None = 1, **kw: object) -> Finding:
    return Finding(fault=fault, frame=frame, ts_ns=frame * S, summary=f"{fault} at {frame}", flow_id=flow, **kw)  # type: ignore[arg-type]


def conn(flow: int, reached: str, ended: str = "closed", works: bool = False, frame: int = 1) -> Attempt:
    return Attempt("connection", flow, frame, frame + 5, frame * S, reached, ended, works=works)


def judge(found: list[Finding], attempts: list[Attempt] | None = None):  # type: ignore[no-untyped-def]
    ch = Charger(key="CP-1", station_id="CP-1", address="10.0.0.2")
    return verdict(ch, ClockAnalysis(), found, [], attempts or [conn(1, "ocpp")])


def test_a_warning_never_outranks_a_failure_even_when_earlier() -> None:
    warn = finding("ocpp.schema_violation", 3, severity="warning")
    fail = finding("tcp.reset", 40)
    r = judge([warn, fail])
    assert (r.verdict, r.root_cause) == ("fault", fail)
    assert r.warnings == [warn]
    assert warn not in r.findings


def test_a_charger_with_only_warnings_is_not_a_fault() -> None:
    r = judge([finding("clock.skew", 5, severity="warning"), finding("ocpp.schema_violation", 9, severity="warning")])
    assert r.root_cause is None
    assert r.verdict != "fault"
    assert [w.frame for w in r.warnings] == [5, 9]


def test_contributing_is_root_only_when_nothing_failed() -> None:
    clock = finding("clock.reset", 2, flow=None)
    tls = finding("tls.cert_not_yet_valid", 12)
    assert judge([clock, tls]).root_cause == tls
    assert judge([clock]).root_cause == clock


def test_a_close_outranks_the_unanswered_call_it_cut_short() -> None:
    call = finding("ocpp.no_response", 10, evidence=(Evidence(10, "charger sent Authorize [7]"),))
    close = finding("ws.abnormal_close", 11)
    r = judge([call, close])
    assert r.root_cause is not None
    assert r.root_cause.fault == "ws.abnormal_close"
    assert [e.frame for e in r.root_cause.evidence] == [10]
    assert r.findings == []


def test_an_unanswered_call_on_another_connection_stays() -> None:
    call = finding("ocpp.no_response", 10, flow=1)
    close = finding("ws.abnormal_close", 30, flow=2)
    r = judge([call, close], [conn(1, "ocpp"), conn(2, "ocpp", frame=20)])
    assert {f.fault for f in [r.root_cause, *r.findings]} == {"ocpp.no_response", "ws.abnormal_close"}


def test_many_attempts_failing_the_same_way_are_one_finding() -> None:
    refused = [finding("tcp.refused", f, flow=i) for i, f in enumerate((5, 9, 17, 33, 65), 1)]
    r = judge(refused, [conn(i, "none", "refused", frame=f) for i, f in enumerate((5, 9, 17, 33, 65), 1)])
    assert r.root_cause is not None
    assert (r.root_cause.frame, r.root_cause.count, r.root_cause.last_frame) == (5, 5, 65)
    assert "5 times" in r.root_cause.summary
    assert r.findings == []


def test_the_attempt_that_got_furthest_gives_the_root_cause() -> None:
    early = finding("ws.no_upgrade", 27, flow=1)  # a connection that never upgraded
    far = finding("ws.closed_after_upgrade", 116, flow=2)  # the CSMS closes right after its 101
    r = judge([early, far], [conn(1, "tcp", "dropped", frame=20), conn(2, "websocket", frame=100)])
    assert r.root_cause == far
    assert r.findings == [early]


def test_a_finding_that_explains_a_flow_drops_that_flows_other_failures() -> None:
    reboot = finding("ocpp.silent_reboot", 50, flow=1, covers_flows=(1,))
    reset = finding("tcp.reset", 60, flow=1)
    r = judge([reboot, reset], [conn(1, "boot_accepted", "half_open"), conn(2, "boot_accepted", "open", True, 55)])
    assert (r.root_cause, r.findings) == (reboot, [])
    assert r.connected_at_end is True


def test_site_visit_only_for_a_charger_fault_without_a_working_session() -> None:
    cert = finding("tls.cert_not_yet_valid", 12)
    assert judge([cert], [conn(1, "tcp", "aborted")]).site_visit is True
    assert judge([cert], [conn(1, "boot_accepted", "open", works=True)]).site_visit is False
    assert judge([finding("tls.cert_expired", 12)], [conn(1, "tcp", "aborted")]).site_visit is False


CHARGER, CSMS = "10.1.0.5", "10.1.0.9"


def close_cuts_call_capture() -> bytes:
    """Upgrade, Boot accepted, the charger's Authorize, and the CSMS's close frame 1011 two milliseconds later."""
    request = (
        b"GET /ocpp/CP-CUT HTTP/1.1\r\nHost: csms.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )
    response = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )
    boot = json.dumps([2, "1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]).encode()
    accepted = json.dumps([3, "1", {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z", "interval": 60}])
    authorize = json.dumps([2, "2", "Authorize", {"idTag": "TAG"}]).encode()
    close = bytes([0x88, 4]) + (1011).to_bytes(2) + b"ob"
    seq = {True: 1000, False: 5000}
    frames = []

    def send(to_server: bool, flags: int, data: bytes = b"") -> None:
        src, dst, sport, dport = (CHARGER, CSMS, 40001, 9000) if to_server else (CSMS, CHARGER, 9000, 40001)
        ack = seq[not to_server] if flags & pb.ACK else 0
        seg = pb.tcp(sport, dport, seq[to_server], ack, flags, data)
        seq[to_server] += len(data) + (1 if flags & (pb.SYN | pb.FIN) else 0)
        frames.append((1_800_000_000 * S + len(frames) * 1_000_000, pb.ether(pb.ipv4(src, dst, 6, seg))))

    send(True, pb.SYN)
    send(False, pb.SYN | pb.ACK)
    send(True, pb.ACK)
    send(True, pb.ACK | pb.PSH, request)
    send(False, pb.ACK | pb.PSH, response)
    send(True, pb.ACK | pb.PSH, ws_frame(boot, masked=True))
    send(False, pb.ACK | pb.PSH, ws_frame(accepted.encode(), masked=False))
    send(True, pb.ACK | pb.PSH, ws_frame(authorize, masked=True))  # frame 8
    send(False, pb.ACK | pb.PSH, close)  # frame 9: 1 ms later
    send(False, pb.ACK | pb.FIN)
    send(True, pb.ACK | pb.FIN)
    return pb.pcap(frames)


def test_a_capture_whose_close_cuts_a_call_is_headlined_by_the_close(tmp_path: Path) -> None:
    cap = tmp_path / "cut.pcap"
    cap.write_bytes(close_cuts_call_capture())
    (c,) = report_dict(analyze(cap, Settings()))["chargers"]
    rc = c["root_cause"]
    assert (rc["fault"], rc["frame"], rc["fix_side"]) == ("ws.abnormal_close", 9, "csms")
    assert any(e["frame"] == 8 and "Authorize" in e["what"] for e in rc["evidence"])
    assert "ocpp.no_response" not in {f["fault"] for f in c["findings"]}


def cut_pcap(data: bytes, snaplen: int) -> bytes:
    """A classic little-endian pcap with every packet cut to ``snaplen`` bytes (original lengths kept), as
    ``tcpdump -s SNAPLEN`` writes it."""
    import struct

    out = bytearray(data[:16] + struct.pack("<I", snaplen) + data[20:24])
    pos = 24
    while pos + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, pos)
        body = data[pos + 16 : pos + 16 + incl]
        out += struct.pack("<IIII", sec, usec, min(incl, snaplen), orig) + body[:snaplen]
        pos += 16 + incl
    return bytes(out)


def test_what_the_snaplen_cut_makes_the_verdict_inconclusive_and_says_so(tmp_path: Path) -> None:
    """The lab's Boot CALLERROR capture cut to 90 bytes a packet: the OCPP that would decide is gone, so no guess
    (not dns.no_address from a cut DNS answer either): inconclusive, naming the snaplen and what is visible."""
    from tests.conftest import PROJECT_CAPTURES

    cap = tmp_path / "cut.pcap"
    cap.write_bytes(cut_pcap((PROJECT_CAPTURES / "ocpp_boot_callerror.pcap").read_bytes(), 90))
    (c,) = report_dict(analyze(cap, Settings()))["chargers"]
    assert (c["verdict"], c["root_cause"]) == ("inconclusive", None)
    assert "snaplen" in c["verdict_reason"]
    assert "-s 0" in c["verdict_reason"]
    assert "reached tcp" in c["verdict_reason"]


def syn_capture(clients: int) -> bytes:
    """One SYN from each of ``clients`` addresses to one server port, nothing else: no OCPP, no CSMS name."""
    frames = []
    for i in range(clients):
        seg = pb.tcp(40000 + i, 443, 1000, 0, pb.SYN, b"")
        frames.append(
            (1_800_000_000 * S + i * 1_000_000, pb.ether(pb.ipv4(f"10.9.{i // 250}.{i % 250 + 1}", "10.0.0.1", 6, seg)))
        )
    return pb.pcap(frames)


def test_without_ocpp_a_few_clients_are_the_charger_but_a_crowd_is_not_guessed(tmp_path: Path) -> None:
    """A capture taken at one charger (a handful of clients) is diagnosed; a SYN flood or a gateway without OCPP
    and without --csms names no charger and says so."""
    few, crowd = tmp_path / "few.pcap", tmp_path / "crowd.pcap"
    few.write_bytes(syn_capture(2))
    crowd.write_bytes(syn_capture(50))
    assert len(report_dict(analyze(few, Settings()))["chargers"]) == 2
    r = report_dict(analyze(crowd, Settings()))
    assert r["chargers"] == []
    (other,) = r["others"]
    assert other["what"] == "unidentified_clients"
    assert "--csms" in other["summary"]
    named = report_dict(analyze(crowd, Settings(csms=("10.0.0.1", 443))))
    assert len(named["chargers"]) == 50
