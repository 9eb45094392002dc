"""Hand-built report dicts in the shape of ``analyzer.report.build.report_dict`` (contract + extension fields).

Each builder returns a fresh dict, so a test may change it. ``SAMPLES`` names them for parametrised tests. The
shapes are checked against the published JSON Schema and against a real ``report_dict`` in ``test_html.py``.
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Callable
from typing import Any

from analyzer.timefmt import iso_utc

T0 = 1_795_406_400 * 10**9 + 123_456_000  # 2026-11-23T04:00:00.123456Z: capture start of every sample
MS = 10**6
S = 10**9

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
JINJA = "{{ 7*7 }}{% if true %}x{% endif %}"
MATH = "$x^2$ and $\\frac{1}{0}$ and an unbalanced $x^{"
CONTROL = "nul\x00 bell\x07 esc\x1b[31mred\x1b[0m cr\r lf\n tab\t del\x7f c1\x85"
RTL = "invoice\u202etxt.exe\u202c"
LONG = "A" * 20_000
HOSTILE = f"{SCRIPT}{IMG}"


def iso(ns: int) -> str:
    return str(iso_utc(ns))


class Timeline:
    """Timeline rows for one capture, in order; ``add`` returns the frame number it used."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self, at_ns: int, frame: int, layer: str, event: str, who: tuple[str | None, str | None], summary: str
    ) -> int:
        self.rows.append(
            {
                "time": iso(at_ns),
                "frame": frame,
                "layer": layer,
                "event": event,
                "charger": who[0],
                "charger_address": who[1],
                "from": None,
                "summary": summary,
            }
        )
        return frame

    def sorted(self) -> list[dict[str, Any]]:
        return sorted(self.rows, key=lambda r: (r["time"], r["frame"]))


def capture(file: str, packets: int, last_ns: int, **kw: Any) -> dict[str, Any]:
    return {
        "file": file,
        "format": kw.get("format", "pcap"),
        "compression": kw.get("compression"),
        "link_types": kw.get("link_types", ["EN10MB"]),
        "packets": packets,
        "first": iso(T0),
        "last": iso(last_ns),
        "truncated_packets": kw.get("truncated_packets", 0),
        "warnings": kw.get("warnings", []),
        "sha256": hashlib.sha256(file.encode("utf-8", "surrogatepass")).hexdigest(),
    }


def report(
    cap: dict[str, Any], chargers: list[dict[str, Any]], rows: list[dict[str, Any]], others: list[Any] | None = None
) -> dict[str, Any]:
    return {
        "schema": "ghostcap.report/1",
        "tool": {"name": "ghostcap", "version": "0.1.0"},
        "capture": cap,
        "chargers": chargers,
        "others": others or [],
        "timeline": rows,
        "timeline_complete": True,
        "timeline_omitted": 0,
    }


def charger(
    station: str | None,
    address: str,
    *,
    verdict: str,
    host: str | None = "csms.example.net",
    csms_address: str | None = "198.51.100.20",
    port: int | None = 443,
    ocpp_version: str | None = "1.6",
    transport: str | None = "wss",
    **kw: Any,
) -> dict[str, Any]:
    return {
        "id": station,
        "address": address,
        "csms": {"host": host, "address": csms_address, "port": port},
        "ocpp_version": ocpp_version,
        "transport": transport,
        "verdict": verdict,
        "verdict_reason": kw.get("verdict_reason"),
        "site_visit": kw.get("site_visit", False),
        "connected_at_end": kw.get("connected_at_end", verdict == "healthy"),
        "root_cause": kw.get("root_cause"),
        "findings": kw.get("findings", []),
        "warnings": kw.get("warnings", []),
        "attempts": kw.get("attempts", [attempt(1, "boot_accepted" if verdict == "healthy" else "tls", "open")]),
        "attempts_total": len(kw.get("attempts", [None])),
        "attempts_omitted": 0,
        "undecided": kw.get("undecided", []),
        "reported_codes": kw.get("reported_codes", []),
        "clock": kw.get("clock", clock()),
        "connections": kw.get("connections", 1),
        "ocpp_messages": kw.get("ocpp_messages", []),
        "ocpp_messages_omitted": 0,
        "tls": kw.get("tls", []),
        "errors": kw.get("errors", []),
        "verification": kw.get("verification"),
    }


def attempt(frame: int, reached: str, ended: str, by: str | None = None) -> dict[str, Any]:
    return {
        "kind": "connection",
        "first_frame": frame,
        "last_frame": frame + 10,
        "time": iso(T0 + frame * MS),
        "reached": reached,
        "ended": ended,
        "by": by,
        "code": None,
        "before_capture": False,
        "summary": f"connection: reached {reached}, ended {ended}",
        "stream_filter": f"tcp.stream eq {frame % 7}",
    }


def filters(frame: int, stream: str | None = "tcp.stream eq 0") -> dict[str, str | None]:
    """The Wireshark display filters a finding or evidence item carries (``analyzer.report.wireshark``)."""
    return {"display_filter": f"frame.number == {frame}" if frame else None, "stream_filter": stream if frame else None}


def who(fault: str, **kw: Any) -> dict[str, Any]:
    from analyzer.diagnosis.catalogue import FAULTS

    return {
        "severity": kw.get("severity", FAULTS[fault].severity if fault in FAULTS else "failure"),
        "fix_side": kw.get("fix_side", FAULTS[fault].fix_side if fault in FAULTS else "capture"),
        "fix_reason": kw.get("fix_reason"),
        "count": kw.get("count", 1),
        "last_frame": kw.get("last_frame"),
    }


def root(fault: str, layer: str, frame: int, at_ns: int, summary: str, **kw: Any) -> dict[str, Any]:
    return {
        **who(fault, **kw),
        "fault": fault,
        "layer": layer,
        "frame": frame,
        **filters(frame, kw.get("stream", "tcp.stream eq 0")),
        "time": iso(at_ns),
        "cx_code": kw.get("cx_code", "CX013"),
        "also_cx": kw.get("also_cx", []),
        "confidence": kw.get("confidence", "high"),
        "inferred": kw.get("inferred", False),
        "certain_with": kw.get("certain_with"),
        "summary": summary,
        "evidence": [{"frame": f, "what": w, **filters(f)} for f, w in kw.get("evidence", [])],
        "remediation": kw.get("remediation", []),
    }


def short(
    fault: str, frame: int, at_ns: int, summary: str, cx: str | None = "CX013", inferred: bool = False, **kw: Any
) -> dict:
    return {
        **who(fault, **kw),
        "fault": fault,
        "frame": frame,
        **filters(frame, kw.get("stream", "tcp.stream eq 0")),
        "time": iso(at_ns),
        "cx_code": cx,
        "summary": summary,
        "inferred": inferred,
    }


def clock(
    charger_offset: float | None = None,
    csms_offset: float | None = None,
    reset_to: str | None = None,
    samples: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    skew = None if charger_offset is None else round(charger_offset - (csms_offset or 0), 3)
    return {
        "charger_offset_s": charger_offset,
        "csms_offset_s": csms_offset,
        "skew_s": skew,
        "reset_to": reset_to,
        "samples": samples or [],
        "samples_omitted": 0,
    }


def sample(frame: int, side: str, source: str, value: str, at_ns: int) -> dict[str, Any]:
    return {"frame": frame, "side": side, "source": source, "value": value, "captured": iso(at_ns)}


def ocpp(frame: int, at_ns: int, sender: str, kind: str, action: str | None, uid: str, payload: Any, **kw: Any) -> dict:
    arrow = "charger→CSMS" if sender == "charger" else "CSMS→charger"
    summary = kw.get("summary") or f"{arrow} {kind} {action} [{uid}]"
    return {
        "frame": frame,
        "time": iso(at_ns),
        "from": sender,
        "type": kind,
        "action": action,
        "unique_id": uid,
        "payload": payload,
        "error_code": kw.get("error_code"),
        "error_description": kw.get("error_description"),
        "reason": kw.get("reason"),
        "violations": [{"path": p, "message": m} for p, m in kw.get("violations", [])],
        "summary": summary,
    }


def tls_conn(frame: int, sni: str | None, version: str | None, **kw: Any) -> dict[str, Any]:
    return {
        "frame": frame,
        "sni": sni,
        "offered_versions": kw.get("offered", ["TLS 1.3", "TLS 1.2"]),
        "version": version,
        "cipher": kw.get("cipher", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" if version == "TLS 1.2" else None),
        "alpn": kw.get("alpn", []),
        "ja3": kw.get("ja3", "93c7d42c0df602fb91589311534831f5"),
        "ja4": kw.get("ja4", "t13d181100_85036bcba153_d41ae481755e"),
        "certificates": kw.get("certificates", []),
        "alerts": kw.get("alerts", []),
        "certificate_request": kw.get("certificate_request", False),
        "decryption": kw.get("decryption"),
        "decryption_detail": kw.get("decryption_detail"),
    }


def cert(frame: int, cn: str, not_before: str, not_after: str, san: list[str] | None = None) -> dict[str, Any]:
    return {
        "frame": frame,
        "subject": f"CN={cn},O=Example CSMS Ltd",
        "issuer": "CN=Example Issuing CA 2,O=Example Trust",
        "san": san if san is not None else [cn],
        "not_before": not_before,
        "not_after": not_after,
        "sha256": "d91eea8216092923cab7ab99efb0f4350560a89c034951cbfc2cd03e4f0287de",
    }


def _handshake(tl: Timeline, who: tuple[str | None, str], csms: str, host: str, port: int, t: int, f: int) -> int:
    """DNS A query/answer and a TCP handshake for ``who``; returns the next free frame."""
    c = who[1]
    tl.add(t, f, "dns", "dns.query", who, f"DNS query A {host} (id 0x1c2d, udp)")
    tl.add(t + 2 * MS, f + 1, "dns", "dns.response", who, f"DNS response NOERROR for A {host}: {csms} (id 0x1c2d, udp)")
    tl.add(t + 3 * MS, f + 2, "tcp", "tcp.syn", who, f"SYN {c}:40112 → {csms}:{port}")
    tl.add(t + 41 * MS, f + 3, "tcp", "tcp.syn_ack", who, f"SYN-ACK {csms}:{port} → {c}:40112")
    return f + 5


# --------------------------------------------------------------------------------------------------- samples


def tls_cert_not_yet_valid() -> dict[str, Any]:
    """wss, TLS 1.2: the charger's clock fell back to 2000-01-01 after a power loss, so it refuses a valid cert."""
    who = ("CP-KILO-7", "10.20.0.7")
    csms, host = "198.51.100.22", "ocpp.kilo.example.net"
    tl = Timeline()
    f = _handshake(tl, who, csms, host, 443, T0, 1)
    t = T0 + 50 * MS
    tl.add(t, f, "tls", "tls.client_hello", who, f"ClientHello SNI={host} versions=0x0304,0x0303 ALPN=- 18 suites")
    tl.add(t, f, "clock", "clock.sample", who, "charger clock 2000-01-01T00:03:12Z (tls.client_hello.random)")
    tl.add(t + 38 * MS, f + 1, "tls", "tls.server_hello", who, "ServerHello TLSv1.2 ECDHE_ECDSA_AES_256_GCM ALPN=-")
    tl.add(t + 38 * MS, f + 1, "tls", "tls.certificate", who, f"server Certificate: 2 cert(s), leaf {host}")
    tl.add(t + 40 * MS, f + 3, "tls", "tls.alert", who, "fatal alert bad_certificate")
    tl.add(t + 41 * MS, f + 4, "tcp", "tcp.fin", who, f"FIN {who[1]}:40112 → {csms}:443")
    tl.add(t + 79 * MS, f + 5, "tcp", "tcp.fin", who, f"FIN {csms}:443 → {who[1]}:40112")
    tl.add(t + 80 * MS, f + 5, "tcp", "tcp.flow_end", who, f"tcp {who[1]}:40112 → {csms}:443 ended SF ShADadFf")
    alert_ns = t + 40 * MS
    rc = root(
        "tls.cert_not_yet_valid",
        "tls",
        f + 3,
        alert_ns,
        f"The charger rejected the CSMS certificate (alert bad_certificate) because its clock reads 2000-01-01, "
        f"before the certificate's notBefore 2025-06-01; the certificate is valid and names {host}.",
        also_cx=["CX015"],
        evidence=[
            (f, f"ClientHello SNI={host} versions=TLS1.3,TLS1.2; random says 2000-01-01T00:03:12Z"),
            (f + 1, "server certificate CN=ocpp.kilo.example.net, valid 2025-06-01 to 2027-06-01"),
            (f + 3, "charger sent fatal alert bad_certificate (42)"),
        ],
        remediation=[
            "Set the charger's clock (enable NTP) and check its RTC battery.",
            "After a power loss, check that the charger keeps its time.",
        ],
    )
    ch = charger(
        *who,
        verdict="fault",
        host=host,
        csms_address=csms,
        ocpp_version=None,
        root_cause=rc,
        findings=[short("clock.reset", f, t, "The charger's clock is reset to 2000-01-01.", cx="CX015")],
        clock=clock(
            charger_offset=round((calendar.timegm((2000, 1, 1, 0, 3, 12)) * S - t) / S, 3),
            reset_to="2000-01-01",
            samples=[sample(f, "charger", "tls.client_hello.random", "2000-01-01T00:03:12Z", t)],
        ),
        tls=[
            tls_conn(
                f,
                host,
                "TLS 1.2",
                certificates=[
                    cert(f + 1, host, "2025-06-01T00:00:00.000000000Z", "2027-06-01T00:00:00.000000000Z"),
                    {
                        **cert(f + 1, "Example Issuing CA 2", "2020-01-01T00:00:00.000000000Z", "2030-01-01T00:00:00Z"),
                        "issuer": "CN=Example Root CA,O=Example Trust",
                        "san": [],
                    },
                ],
                alerts=[
                    {
                        "frame": f + 3,
                        "from": "charger",
                        "level": 2,
                        "description": "bad_certificate",
                        "encrypted": False,
                        "decrypted": False,
                    }
                ],
            )
        ],
    )
    return report(capture("kilo-7_cert.pcapng", 14, t + 80 * MS, format="pcapng"), [ch], tl.sorted())


def ocpp_callerror_schema_violation() -> dict[str, Any]:
    """ws, OCPP 1.6: the BootNotification lacks chargePointModel and the CSMS answers CALLERROR."""
    who = ("CP-XRAY-41", "10.20.0.41")
    csms, host = "198.51.100.41", "csms.xray.example.net"
    tl = Timeline()
    f = _handshake(tl, who, csms, host, 80, T0, 1)
    t = T0 + 60 * MS
    tl.add(t, f, "http", "http.request", who, "GET /ocpp/CP-XRAY-41 upgrade=websocket offers ocpp1.6")
    tl.add(t + 20 * MS, f + 1, "http", "http.response", who, "101 Switching Protocols subprotocol=ocpp1.6")
    tl.add(t + 20 * MS, f + 1, "clock", "clock.sample", who, "csms clock Mon, 23 Nov 2026 04:00:00 GMT (http.date)")
    boot = ocpp(
        f + 3,
        t + 30 * MS,
        "charger",
        "CALL",
        "BootNotification",
        "1001",
        {"chargePointVendor": "GhostcapLab", "firmwareVersion": "4.2.0-rc1"},
        violations=[("chargePointModel", "is required")],
        summary="charger→CSMS CALL BootNotification [1001]; schema: chargePointModel is required",
    )
    err = ocpp(
        f + 4,
        t + 48 * MS,
        "csms",
        "CALLERROR",
        "BootNotification",
        "1001",
        {},
        error_code="FormationViolation",
        error_description="Payload for Action is incomplete",
        summary="CSMS→charger CALLERROR FormationViolation to BootNotification [1001] after 18.0 ms",
    )
    for m in (boot, err):
        tl.add(
            t + (30 if m is boot else 48) * MS,
            m["frame"],
            "ocpp",
            f"ocpp.call{'' if m is boot else '_error'}",
            who,
            m["summary"],
        )
    tl.add(t + 52 * MS, f + 5, "websocket", "websocket.close", who, "close 1000")
    tl.add(t + 53 * MS, f + 6, "tcp", "tcp.fin", who, f"FIN {csms}:80 → {who[1]}:40112")
    rc = root(
        "ocpp.schema_violation",
        "ocpp",
        f + 3,
        t + 30 * MS,
        "The charger's BootNotification breaks the OCPP 1.6 schema: chargePointModel is required.",
        evidence=[(f + 3, "chargePointModel is required"), (f + 4, "CSMS answered CALLERROR FormationViolation")],
        remediation=["Fix the named field (charger firmware or CSMS)."],
    )
    ch = charger(
        *who,
        verdict="fault",
        host=host,
        csms_address=csms,
        port=80,
        transport="ws",
        root_cause=rc,
        findings=[
            short(
                "ocpp.callerror",
                f + 4,
                t + 48 * MS,
                "The CSMS rejected BootNotification with CALLERROR FormationViolation "
                "(Payload for Action is incomplete).",
            )
        ],
        clock=clock(
            csms_offset=-0.06,
            samples=[sample(f + 1, "csms", "http.date", "Mon, 23 Nov 2026 04:00:00 GMT", t + 20 * MS)],
        ),
        ocpp_messages=[boot, err],
    )
    return report(capture("xray-41.pcap", 16, t + 53 * MS), [ch], tl.sorted())


def healthy() -> dict[str, Any]:
    """wss with TLS 1.3, OCPP 2.0.1: Boot accepted, status and heartbeats answered."""
    who = ("CS-ALPHA-001", "10.20.0.10")
    csms, host = "198.51.100.10", "csms.alpha.example.net"
    tl = Timeline()
    f = _handshake(tl, who, csms, host, 443, T0, 1)
    t = T0 + 50 * MS
    tl.add(t, f, "tls", "tls.client_hello", who, f"ClientHello SNI={host} versions=0x0304,0x0303 ALPN=-")
    tl.add(t + 30 * MS, f + 1, "tls", "tls.server_hello", who, "ServerHello TLSv1.3 TLS_AES_256_GCM_SHA384 ALPN=-")
    timed = [
        (
            t + 120 * MS,
            "charger",
            "CALL",
            "BootNotification",
            "b-1",
            {"reason": "PowerUp", "chargingStation": {"model": "AC22", "vendorName": "Alpha"}},
        ),
        (
            t + 140 * MS,
            "csms",
            "CALLRESULT",
            "BootNotification",
            "b-1",
            {"currentTime": "2026-11-23T04:00:00.300Z", "interval": 300, "status": "Accepted"},
        ),
        (
            t + 150 * MS,
            "charger",
            "CALL",
            "StatusNotification",
            "s-1",
            {"timestamp": "2026-11-23T04:00:00.350Z", "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
        ),
        (t + 160 * MS, "csms", "CALLRESULT", "StatusNotification", "s-1", {}),
        (t + 30 * S, "charger", "CALL", "Heartbeat", "h-1", {}),
        (t + 30 * S + 9 * MS, "csms", "CALLRESULT", "Heartbeat", "h-1", {"currentTime": "2026-11-23T04:00:30.200Z"}),
    ]
    tl.add(
        t + 100 * MS, f + 4, "http", "http.request", who, "GET /ocpp/CS-ALPHA-001 upgrade=websocket offers ocpp2.0.1"
    )
    tl.add(t + 110 * MS, f + 5, "http", "http.response", who, "101 Switching Protocols subprotocol=ocpp2.0.1")
    messages = []
    for i, (at, sender, kind, action, uid, payload) in enumerate(timed):
        m = ocpp(f + 6 + i, at, sender, kind, action, uid, payload)
        messages.append(m)
        tl.add(at, m["frame"], "ocpp", "ocpp.call" if kind == "CALL" else "ocpp.call_result", who, m["summary"])
    tl.add(
        t + 140 * MS,
        f + 7,
        "clock",
        "clock.sample",
        who,
        "csms clock 2026-11-23T04:00:00.300Z (ocpp.BootNotificationResponse.currentTime)",
    )
    tl.add(
        t + 150 * MS,
        f + 8,
        "clock",
        "clock.sample",
        who,
        "charger clock 2026-11-23T04:00:00.350Z (ocpp.StatusNotification.timestamp)",
    )
    ch = charger(
        *who,
        verdict="healthy",
        verdict_reason="the session with the CSMS works",
        host=host,
        csms_address=csms,
        ocpp_version="2.0.1",
        clock=clock(
            charger_offset=0.027,
            csms_offset=0.001,
            samples=[
                sample(f + 8, "charger", "ocpp.StatusNotification.timestamp", "2026-11-23T04:00:00.350Z", t + 150 * MS),
                sample(
                    f + 7, "csms", "ocpp.BootNotificationResponse.currentTime", "2026-11-23T04:00:00.300Z", t + 140 * MS
                ),
            ],
        ),
        ocpp_messages=messages,
        tls=[tls_conn(f, host, "TLS 1.3", cipher="TLS_AES_256_GCM_SHA384")],
    )
    return report(capture("alpha-001.pcapng", 40, t + 31 * S, format="pcapng"), [ch], tl.sorted())


def inconclusive() -> dict[str, Any]:
    """The capture ends 4 s after an Authorize was sent: too early to call it unanswered."""
    who = ("CP-AMBER-44", "10.20.0.44")
    csms, host = "198.51.100.44", "csms.amber.example.net"
    tl = Timeline()
    f = _handshake(tl, who, csms, host, 80, T0, 1)
    t = T0 + 60 * MS
    tl.add(t, f, "http", "http.request", who, "GET /ocpp/CP-AMBER-44 upgrade=websocket offers ocpp1.6")
    tl.add(t + 10 * MS, f + 1, "http", "http.response", who, "101 Switching Protocols subprotocol=ocpp1.6")
    auth = ocpp(f + 3, t + 20 * MS, "charger", "CALL", "Authorize", "1003", {"idTag": "<redacted>"})
    tl.add(t + 20 * MS, f + 3, "ocpp", "ocpp.call", who, auth["summary"])
    ch = charger(
        *who,
        verdict="inconclusive",
        verdict_reason="the capture ended before these could be decided: ocpp.no_response",
        host=host,
        csms_address=csms,
        port=80,
        transport="ws",
        undecided=[
            short(
                "ocpp.no_response",
                f + 3,
                t + 20 * MS,
                "Authorize [1003] unanswered for 4.0 s when the capture ended (timeout 30 s).",
                cx="CX009",
            )
        ],
        ocpp_messages=[auth],
    )
    return report(capture("amber-44.pcap", 12, t + 4 * S), [ch], tl.sorted())


def gateway() -> dict[str, Any]:
    """A site gateway's capture (Linux cooked v2): three chargers, one healthy, two with different faults."""
    tl = Timeline()
    csms, host = "198.51.100.50", "csms.gateway.example.net"
    chargers = []
    # 1: healthy
    who = ("GW-CP-01", "10.30.0.1")
    f = _handshake(tl, who, csms, host, 80, T0, 1)
    t = T0 + 60 * MS
    tl.add(t, f, "http", "http.request", who, "GET /ocpp/GW-CP-01 upgrade=websocket offers ocpp1.6")
    tl.add(t + 9 * MS, f + 1, "http", "http.response", who, "101 Switching Protocols subprotocol=ocpp1.6")
    msgs = [
        ocpp(
            f + 2,
            t + 20 * MS,
            "charger",
            "CALL",
            "BootNotification",
            "1",
            {"chargePointModel": "GW-AC", "chargePointVendor": "Gate"},
        ),
        ocpp(
            f + 3,
            t + 30 * MS,
            "csms",
            "CALLRESULT",
            "BootNotification",
            "1",
            {"currentTime": "2026-11-23T04:00:00Z", "interval": 300, "status": "Accepted"},
            summary="CSMS→charger CALLRESULT BootNotification [1] Accepted after 10.0 ms",
        ),
    ]
    for m, dt in zip(msgs, (20, 30), strict=True):
        tl.add(
            t + dt * MS,
            m["frame"],
            "ocpp",
            "ocpp.call" if m["type"] == "CALL" else "ocpp.call_result",
            who,
            m["summary"],
        )
    chargers.append(
        charger(
            *who,
            verdict="healthy",
            verdict_reason="the session with the CSMS works",
            host=host,
            csms_address=csms,
            port=80,
            transport="ws",
            ocpp_messages=msgs,
        )
    )
    # 2: HTTP 401
    who = ("GW-CP-02", "10.30.0.2")
    t2 = T0 + 400 * MS
    f = _handshake(tl, who, csms, host, 80, t2, 20)
    tl.add(
        t2 + 60 * MS,
        f,
        "http",
        "http.request",
        who,
        "GET /ocpp/GW-CP-02 upgrade=websocket offers ocpp1.6 auth=Basic user=GW-CP-02",
    )
    tl.add(t2 + 70 * MS, f + 1, "http", "http.response", who, "401 Unauthorized")
    tl.add(t2 + 71 * MS, f + 2, "tcp", "tcp.fin", who, f"FIN {csms}:80 → 10.30.0.2:40112")
    chargers.append(
        charger(
            *who,
            verdict="fault",
            host=host,
            csms_address=csms,
            port=80,
            transport="ws",
            root_cause=root(
                "http.unauthorized",
                "http",
                f + 1,
                t2 + 70 * MS,
                "The CSMS refused the WebSocket upgrade for station GW-CP-02 with HTTP 401 Unauthorized.",
                evidence=[(f, "GET /ocpp/GW-CP-02 as Basic user 'GW-CP-02'"), (f + 1, "HTTP 401 Unauthorized")],
                remediation=["Fix the charger's AuthorizationKey / basic-auth password on the charger or the CSMS."],
            ),
        )
    )
    # 3: TCP refused, station id never seen
    who = (None, "10.30.0.3")
    t3 = T0 + 800 * MS
    tl.add(t3, 40, "dns", "dns.query", who, f"DNS query A {host} (id 0x0303, udp)")
    tl.add(t3 + 2 * MS, 41, "dns", "dns.response", who, f"DNS response NOERROR for A {host}: {csms} (id 0x0303, udp)")
    for i in range(3):
        tl.add(t3 + (3 + 1000 * i) * MS, 42 + 2 * i, "tcp", "tcp.syn", who, f"SYN 10.30.0.3:4020{i} → {csms}:8443")
        tl.add(t3 + (4 + 1000 * i) * MS, 43 + 2 * i, "tcp", "tcp.rst", who, f"RST {csms}:8443 → 10.30.0.3:4020{i}")
    chargers.append(
        charger(
            *who,
            verdict="fault",
            host=host,
            csms_address=csms,
            port=8443,
            ocpp_version=None,
            transport=None,
            connections=3,
            root_cause=root(
                "tcp.refused",
                "tcp",
                43,
                t3 + 4 * MS,
                f"The CSMS at {csms}:8443 refused the charger's connection (SYN answered by RST), 3 times.",
                evidence=[(42, f"SYN 10.30.0.3:40200 → {csms}:8443"), (43, "RST from the CSMS")],
                remediation=[
                    "Check the CSMS port configured on the charger.",
                    "Check that the CSMS service is running.",
                ],
            ),
        )
    )
    cap = capture("site-gateway.pcapng", 64, t3 + 3 * S, format="pcapng", link_types=["LINUX_SLL2"])
    return report(cap, chargers, tl.sorted())


def hostile() -> dict[str, Any]:
    """Every capture string a charger or a CSMS controls, made of markup, template syntax, mathtext, control and
    bidi characters and very long text. Must render inert and readable."""
    who = (HOSTILE, "10.66.6.6")
    host = f"{IMG}.example"
    csms = "198.51.100.66"
    tl = Timeline()
    tl.add(T0, 1, "dns", "dns.query", who, f"DNS query A {host} (id 0x6666, udp) {MATH}")
    tl.add(T0 + MS, 2, "dns", "dns.response", who, f"DNS response NOERROR for A {host}: {csms} {SCRIPT}")
    tl.add(T0 + 2 * MS, 3, "tcp", "tcp.syn", who, f"SYN 10.66.6.6:40000 → {csms}:443")
    tl.add(T0 + 3 * MS, 4, "tcp", "tcp.syn_ack", who, f"SYN-ACK {csms}:443 → 10.66.6.6:40000")
    tl.add(T0 + 4 * MS, 5, "tls", "tls.client_hello", who, f"ClientHello SNI={host}{JINJA} versions=0x0303")
    tl.add(T0 + 5 * MS, 6, "tls", "tls.server_hello", who, "ServerHello TLSv1.2 X ALPN=-")
    tl.add(T0 + 5 * MS, 6, "tls", "tls.certificate", who, f"server Certificate: 1 cert(s), leaf {SCRIPT}")
    tl.add(T0 + 6 * MS, 8, "http", "http.request", who, f"GET /ocpp/{HOSTILE} upgrade=websocket offers {MATH}")
    tl.add(T0 + 7 * MS, 9, "http", "http.response", who, f"101 Switching Protocols subprotocol={RTL}")
    payload = {
        IMG: ["</pre><script>alert(2)</script>", "\ud83d lone surrogate"],
        "chargePointVendor": SCRIPT,
        "chargePointModel": IMG,
        "firmwareVersion": JINJA,
        "meterType": MATH,
        "chargeBoxSerialNumber": CONTROL,
        "iccid": RTL,
        "imsi": LONG,
        "vendorId": "https://chargex.inl.gov",
    }
    call = ocpp(
        10,
        T0 + 8 * MS,
        "charger",
        "CALL",
        f"Boot{SCRIPT}",
        IMG,
        payload,
        violations=[(f"{IMG}", f"{SCRIPT} is not allowed"), ("meterType", MATH)],
        summary=f"charger→CSMS CALL Boot{SCRIPT} [{IMG}]; {MATH}",
    )
    err = ocpp(
        11,
        T0 + 9 * MS,
        "csms",
        "CALLERROR",
        f"Boot{SCRIPT}",
        IMG,
        {"detail": SCRIPT},
        error_code=f"FormationViolation{IMG}",
        error_description=f"{CONTROL}{RTL}{LONG}",
        summary=f"CSMS→charger CALLERROR {IMG} {RTL}",
    )
    bad = ocpp(12, T0 + 10 * MS, "charger", "UNPARSED", None, "", None, reason=f"not JSON: {SCRIPT}{CONTROL}")
    tl.add(T0 + 8 * MS, 10, "ocpp", "ocpp.call", who, call["summary"])
    tl.add(T0 + 9 * MS, 11, "ocpp", "ocpp.call_error", who, err["summary"])
    tl.add(T0 + 10 * MS, 12, "ocpp", "ocpp.unparsed", who, f"unparsed {SCRIPT} {LONG}")
    tl.add(T0 + 11 * MS, 13, "websocket", "websocket.close", who, f"close 4000 {IMG!r}")
    tl.add(T0 + 11 * MS, 13, "capture", "decode.anomaly", (None, None), f"ocpp.parse_error: {CONTROL} {RTL}")
    rc = root(
        "ocpp.callerror",
        "ocpp",
        11,
        T0 + 9 * MS,
        f"The CSMS rejected {SCRIPT} with {IMG} {JINJA} {MATH} {CONTROL} {RTL} {LONG}",
        inferred=True,
        confidence="low",
        certain_with=f"{SCRIPT} the charger's log {JINJA}",
        evidence=[(10, f"{SCRIPT}{IMG}"), (11, f"{MATH}{CONTROL}{RTL}")],
        remediation=[f"Call {IMG} and ask for {SCRIPT}", f"{JINJA} {MATH}", LONG],
    )
    ch = charger(
        *who,
        verdict="fault",
        verdict_reason=f"{SCRIPT}{RTL}",
        host=host,
        csms_address=csms,
        ocpp_version=f"1.6{SCRIPT}",
        root_cause=rc,
        findings=[short("ocpp.schema_violation", 10, T0 + 8 * MS, f"{SCRIPT} {MATH} {LONG}")],
        undecided=[short("ocpp.no_response", 12, T0 + 10 * MS, f"{IMG}{RTL}", cx="CX009", inferred=True)],
        reported_codes=[{"cx_code": None, "frame": 10, "source": f"StatusNotification.{SCRIPT}", "code": IMG}],
        clock=clock(
            charger_offset=1.5,
            samples=[sample(10, "charger", f"ocpp.{SCRIPT}", f"{IMG}{MATH}{RTL}", T0 + 8 * MS)],
        ),
        ocpp_messages=[call, err, bad],
        tls=[
            tls_conn(
                5,
                f"{host}{JINJA}",
                "TLS 1.2",
                cipher=SCRIPT,
                alpn=[IMG, MATH],
                ja3=CONTROL,
                ja4=RTL,
                certificates=[
                    {
                        **cert(6, SCRIPT, "2025-01-01T00:00:00Z", "2030-01-01T00:00:00Z", [IMG, MATH, LONG]),
                        "issuer": f"CN={IMG}{RTL}",
                        "sha256": JINJA,
                    }
                ],
                alerts=[
                    {
                        "frame": 7,
                        "from": "csms",
                        "level": 2,
                        "description": f"{SCRIPT}",
                        "encrypted": False,
                        "decrypted": False,
                    }
                ],
            )
        ],
        errors=[f"rule {SCRIPT} failed: {IMG}"],
    )
    cap = capture(
        f"{IMG}{RTL}.pcap",
        13,
        T0 + 12 * MS,
        warnings=[f"snaplen 96 truncates packets {SCRIPT}", LONG],
        truncated_packets=3,
    )
    return report(cap, [ch], tl.sorted())


def empty() -> dict[str, Any]:
    """A capture without any charger traffic."""
    return report(capture("printer-noise.pcap", 3, T0 + 2 * S), [], [])


def many_events(n: int = 40) -> dict[str, Any]:
    """One charger whose session runs ``n`` timeline events: Boot, then Heartbeats, then a TCP reset."""
    who = ("CP-LONG-1", "10.20.0.99")
    csms, host = "198.51.100.99", "csms.long.example.net"
    tl = Timeline()
    f = _handshake(tl, who, csms, host, 80, T0, 1)
    tl.add(T0 + 60 * MS, f, "http", "http.request", who, "GET /ocpp/CP-LONG-1 upgrade=websocket offers ocpp1.6")
    tl.add(T0 + 70 * MS, f + 1, "http", "http.response", who, "101 Switching Protocols subprotocol=ocpp1.6")
    msgs = []
    frame, t, i = f + 2, T0 + 100 * MS, 0
    while len(tl.rows) + 2 < n:
        uid = str(1000 + i)
        action = "BootNotification" if i == 0 else "Heartbeat"
        call = ocpp(
            frame, t, "charger", "CALL", action, uid, {} if i else {"chargePointModel": "L", "chargePointVendor": "V"}
        )
        res = ocpp(frame + 1, t + 15 * MS, "csms", "CALLRESULT", action, uid, {"currentTime": iso(t)})
        for m in (call, res):
            msgs.append(m)
            tl.add(
                t if m is call else t + 15 * MS,
                m["frame"],
                "ocpp",
                "ocpp.call" if m is call else "ocpp.call_result",
                who,
                m["summary"],
            )
        frame, t, i = frame + 2, t + 30 * S, i + 1
    while len(tl.rows) < n - 1:
        tl.add(t, frame, "websocket", "websocket.ping", who, "ping (0 bytes)")
        frame, t = frame + 1, t + S
    tl.add(t, frame, "tcp", "tcp.rst", who, f"RST {csms}:80 → {who[1]}:40112")
    rc = root(
        "tcp.reset",
        "tcp",
        frame,
        t,
        "The CSMS reset the established connection.",
        evidence=[(frame, f"RST {csms}:80 → {who[1]}:40112")],
        remediation=["Check middleboxes (NAT, firewall) for idle timeouts."],
    )
    ch = charger(
        *who,
        verdict="fault",
        host=host,
        csms_address=csms,
        port=80,
        transport="ws",
        root_cause=rc,
        ocpp_messages=msgs[:500],
    )
    return report(capture("long.pcap", frame, t), [ch], tl.sorted())


SAMPLES: dict[str, Callable[[], dict[str, Any]]] = {
    "tls_cert_not_yet_valid": tls_cert_not_yet_valid,
    "ocpp_callerror_schema_violation": ocpp_callerror_schema_violation,
    "healthy": healthy,
    "inconclusive": inconclusive,
    "gateway": gateway,
    "hostile": hostile,
    "empty": empty,
    "many_events": many_events,
}
