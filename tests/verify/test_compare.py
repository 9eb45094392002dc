"""``--verify`` without tshark: ghostcap's claims from events, compared with fake dissections (no I/O)."""

from __future__ import annotations

from analyzer.events.dns import DnsQuery, DnsResponse, DnsUnanswered
from analyzer.events.http import HttpResponse
from analyzer.events.ocpp import OcppCall, OcppCallError, OcppCallResult, OcppUnparsed
from analyzer.events.tcp import IcmpError, TcpFin, TcpRst, TcpSynAck
from analyzer.events.tls import TlsAlert, TlsClientHello, TlsServerHello
from analyzer.events.websocket import WsClose, WsMessage
from analyzer.verify.claims import Claim, claims, flags_text
from analyzer.verify.compare import compare, ocpp_from_text, tshark_value
from analyzer.verify.words import verification_text

T = 1_700_000_000 * 10**9


def tcp(syn: str = "0", ack: str = "1", fin: str = "0", rst: str = "0") -> tuple[str, dict[str, list[str]]]:
    return (
        "tcp",
        {"tcp.flags.syn": [syn], "tcp.flags.ack": [ack], "tcp.flags.fin": [fin], "tcp.flags.reset": [rst]},
    )


def ws_text(text: str) -> tuple[str, dict[str, list[str]]]:
    return ("websocket", {"websocket.opcode": ["1"], "websocket.payload.text": [text]})


# --- claims --------------------------------------------------------------------------------------------------------


def test_claims_name_each_field_in_frame_then_field_order_and_join_several_messages() -> None:
    common = {"ts_ns": T, "flow_id": 1, "direction": 0}
    boot = '{"idTag": "X"}'
    events = [
        OcppCall(
            ts_ns=T, frame=12, version="1.6", unique_id="1", size=10, action="BootNotification", payload_text=boot
        ),
        OcppCall(frame=12, version="1.6", unique_id="2", size=10, action="Heartbeat", payload_text="{}", **common),
        HttpResponse(frame=10, status=101, **common),
        TlsAlert(frame=9, level=2, description=42, description_name="bad_certificate", **common),
        TlsAlert(frame=11, encrypted=True, length=26, **common),
        DnsUnanswered(
            ts_ns=T, frame=3, id=1, qname="x.test", qtype="A", attempts=2, last_frame=4, waited_ns=0, transport="udp"
        ),
        WsMessage(frame=12, opcode="text", size=10, wire_size=12, **common),  # the OCPP claims cover it
        DnsQuery(frame=1, id=7, qname="CSMS.Example.", qtype="AAAA", transport="udp", **common),
    ]
    got = claims(events, [1, 3, 9, 10, 11, 12, 99])
    assert got == [
        Claim(1, "dns.query", "csms.example AAAA"),
        Claim(9, "tls.alert", "bad_certificate"),
        Claim(10, "http.status", "101"),
        Claim(11, "tls.alert", "encrypted"),
        Claim(12, "ocpp.message", "CALL BootNotification [1] | CALL Heartbeat [2]"),
    ]
    assert "X" not in repr(got)  # a payload never enters a claim
    assert claims(events, [2]) == []


def test_claims_merge_the_control_flags_of_one_frame() -> None:
    common = {"ts_ns": T, "flow_id": 1, "direction": 0, "src": "a:1", "dst": "b:2", "payload": (0, 0)}
    events = [TcpFin(frame=5, **common), TcpRst(frame=5, **common), TcpSynAck(frame=2, **common)]
    assert claims(events, [2, 5]) == [Claim(2, "tcp.flags", "SYN,ACK"), Claim(5, "tcp.flags", "FIN,RST")]
    assert flags_text({"RST", "ACK", "SYN"}) == "SYN,ACK,RST"


# --- tshark's side ---------------------------------------------------------------------------------------------------


def test_each_field_read_from_a_dissection_in_ghostcaps_words() -> None:
    dns = ("dns", {"dns.qry.name": ["csms.test"], "dns.qry.type": ["1"], "dns.flags.rcode": ["3"]})
    assert tshark_value("dns.query", [dns]) == "csms.test A"
    assert tshark_value("dns.rcode", [dns]) == "NXDOMAIN"
    assert tshark_value("dns.addresses", [dns]) == "none"
    answered = ("dns", {"dns.flags.rcode": ["0"], "dns.a": ["10.0.0.2", "10.0.0.1"], "dns.aaaa": ["::1"]})
    assert tshark_value("dns.addresses", [answered]) == "10.0.0.1,10.0.0.2,::1"
    assert tshark_value("dns.addresses", [(*dns[0:1], {"dns.qry.name": ["x"]})]) is None  # a query: no answer
    tls = ("tls", {"tls.handshake.type": ["2", "11"], "tls.handshake.version": ["0x0303"]})
    assert tshark_value("tls.version", [tls]) == "TLSv1.2"
    tls13 = ("tls", {"tls.handshake.type": ["2"], "tls.handshake.extensions.supported_version": ["0x0304"]})
    assert tshark_value("tls.version", [tls13]) == "TLSv1.3"
    hello = ("tls", {"tls.handshake.type": ["1"]})
    assert tshark_value("tls.sni", [hello]) == "none"
    assert tshark_value("tls.sni", [tls]) is None  # no ClientHello in this frame
    assert tshark_value("tls.alert", [("tls", {"tls.alert_message.desc": ["116"]})]) == "certificate_required"
    assert tshark_value("tls.alert", [("tls", {"tls.record.content_type": ["21"]})]) == "encrypted"
    assert tshark_value("tls.alert", [("tls", {"tls.record.content_type": ["23"]})]) is None
    http = ("http", {"http.response.code": ["401"], "http.request.method": []})
    assert tshark_value("http.status", [http]) == "401"
    assert tshark_value("http.method", [http]) is None
    close = ("websocket", {"websocket.opcode": ["8"], "websocket.payload.close.status_code": ["1008"]})
    bare = ("websocket", {"websocket.opcode": ["8"]})
    assert tshark_value("websocket.close_code", [tcp(), close, bare]) == "1008 | none"
    icmp = ("icmp", {"icmp.type": ["3"], "icmp.code": ["13"]})
    assert tshark_value("icmp", [icmp]) == "destination unreachable (administratively prohibited)"
    assert tshark_value("icmp", [("icmpv6", {"icmpv6.type": ["1"], "icmpv6.code": ["4"]})]) == (
        "destination unreachable (port unreachable)"
    )
    assert tshark_value("no.such.field", [tcp()]) is None


def test_tcp_flags_come_from_the_first_tcp_header_not_the_one_an_icmp_error_quotes() -> None:
    assert tshark_value("tcp.flags", [tcp(syn="1", ack="0")]) == "SYN"
    assert tshark_value("tcp.flags", [tcp(syn="1", ack="1")]) == "SYN,ACK"
    assert tshark_value("tcp.flags", [tcp(fin="1"), tcp(rst="1")]) == "FIN"
    assert tshark_value("tcp.flags", [tcp()]) == "none"
    assert tshark_value("tcp.flags", [("icmp", {"icmp.type": ["3"]})]) is None


def test_ocpp_text_read_as_ghostcap_names_messages() -> None:
    assert ocpp_from_text('[2,"1001","BootNotification",{"idTag":"x"}]') == "CALL BootNotification [1001]"
    assert ocpp_from_text('[3,"7",{"idTagInfo":{"status":"Invalid"}}]') == "CALLRESULT Invalid [7]"
    assert ocpp_from_text('[3,"7",{"currentTime":"x"}]') == "CALLRESULT [7]"
    assert ocpp_from_text('[4,"7","InternalError","boom",{}]') == "CALLERROR InternalError [7]"
    assert ocpp_from_text('[6,"8","NotifyPeriodicEventStream",{}]') == "SEND NotifyPeriodicEventStream [8]"
    # cut short (tshark shortens a long field): the head still names the message
    assert ocpp_from_text('[2, "a\\"b", "MeterValues", {"meterValue": [{"sampledVal') == 'CALL MeterValues [a"b]'
    assert ocpp_from_text('[3,"9",{"status":"Acc') == "CALLRESULT [9]"
    for text in ("hello", '[9,"1","x",{}]', "{}", '[2,"1"]', '[2,1,"Boot",{}]', "[" * 5000, '[2,"\\q",'):
        assert ocpp_from_text(text) == "not OCPP-J", text


def test_compare_agrees_only_on_equal_values_and_a_missing_field_disagrees() -> None:
    cl = [
        Claim(12, "ocpp.message", "CALLERROR InternalError [1001]"),
        Claim(13, "websocket.close_code", "1000"),
        Claim(14, "http.status", "200"),
    ]
    dissection = {
        12: [tcp(), ws_text('[4,"1001","InternalError","lab CSMS",{}]')],
        13: [tcp(), ("websocket", {"websocket.opcode": ["8"], "websocket.payload.close.status_code": ["1008"]})],
    }
    checks = compare(cl, dissection)
    assert [(c.frame, c.agree, c.tshark) for c in checks] == [
        (12, True, "CALLERROR InternalError [1001]"),
        (13, False, "1008"),
        (14, False, None),
    ]


def test_event_claims_and_tshark_readers_agree_on_the_same_facts() -> None:
    """The two sides render one fact identically: events built from the values a dissection shows."""
    common = {"ts_ns": T, "flow_id": 1, "direction": 1}
    blocked = {"action": "Authorize", "payload_text": "{}", "status": "Blocked"}
    events = [
        DnsResponse(
            ts_ns=T, frame=3, id=1, qname="csms.test", qtype="A", rcode=0, rcode_name="NOERROR", addresses=("10.0.0.9",)
        ),
        TlsClientHello(frame=4, record_version=0x0301, legacy_version=0x0303, sni="CSMS.test", **common),
        TlsServerHello(frame=5, legacy_version=0x0303, version=0x0304, cipher_suite=0x1302, **common),
        IcmpError(
            ts_ns=T, frame=6, detail="destination unreachable (port unreachable) from 10.0.0.1", unreachable=True
        ),
        WsClose(frame=7, code=None, **common),
        OcppCallResult(ts_ns=T, frame=8, version="2.0.1", unique_id="u", size=1, **blocked),
        OcppUnparsed(frame=9, reason="not a JSON array", **common),
        OcppCallError(
            ts_ns=T,
            frame=10,
            version="1.6",
            unique_id="e",
            size=1,
            action=None,
            error_code="X",
            error_code_canonical="X",
        ),
    ]
    dissection = {
        3: [("dns", {"dns.flags.rcode": ["0"], "dns.a": ["10.0.0.9"]})],
        4: [("tls", {"tls.handshake.type": ["1"], "tls.handshake.extensions_server_name": ["csms.test"]})],
        5: [("tls", {"tls.handshake.type": ["2"], "tls.handshake.extensions.supported_version": ["0x0304"]})],
        6: [("icmp", {"icmp.type": ["3"], "icmp.code": ["3"]})],
        7: [("websocket", {"websocket.opcode": ["8"]})],
        8: [ws_text('[3,"u",{"idTokenInfo":{"status":"Blocked"}}]')],
        9: [ws_text('{"not": "an array"}')],
        10: [ws_text('[4,"e","X","",{}]')],
    }
    checks = compare(claims(events, list(dissection)), dissection)
    assert len(checks) == 9
    assert [c for c in checks if not c.agree] == []


def test_verification_in_words() -> None:
    assert verification_text(None) is None
    assert verification_text({"done": False, "note": "tshark not found on PATH"}) == (
        "Not checked with tshark: tshark not found on PATH."
    )
    ok = {"frame": 12, "field": "tls.alert", "ghostcap": "bad_certificate", "tshark": "bad_certificate", "agree": True}
    v = {"done": True, "tool": "tshark 4.0.17", "note": None, "checks": [ok]}
    assert verification_text(v) == "tshark 4.0.17 agrees: it reads the same TLS alert in frame 12."
    bad = {"frame": 8, "field": "tls.sni", "ghostcap": "a.test", "tshark": None, "agree": False}
    v["checks"] = [bad, ok]
    assert verification_text(v) == (
        "tshark 4.0.17 disagrees on 1 of 2 checks: frame 8 TLS SNI: ghostcap a.test, tshark shows no such field."
    )
    assert verification_text({"done": True, "tool": "tshark 4.0.17", "note": "no root cause", "checks": []}) == (
        "tshark 4.0.17: no root cause."
    )


def test_hostile_capture_strings_in_a_verification_stay_text() -> None:
    from analyzer.report.html import report_html
    from analyzer.report.markdown import report_markdown
    from tests.report import sample_reports as samples

    report = samples.tls_cert_not_yet_valid()
    check = {"frame": 12, "field": "ocpp.message", "ghostcap": f"CALL {samples.SCRIPT} [1]", "agree": False}
    report["chargers"][0]["verification"] = {
        "done": True,
        "tool": "tshark 4.0.17",
        "note": None,
        "agree": False,
        "filter": "frame.number in {12}",
        "checks": [{**check, "tshark": f"CALL {samples.IMG} [1]"}],
    }
    html = report_html(report)
    assert "<script" not in html.lower()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    md = report_markdown(report)
    assert "Second opinion: tshark 4.0.17 disagrees on 1 of 1 checks: frame 12 OCPP message: ghostcap CALL" in md
    assert "<script>" not in md
