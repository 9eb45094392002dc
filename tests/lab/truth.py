"""Ground truth: locate each charger's failure frame in the capture, record the facts, check with tshark.

The failure frame is found by ``pcapread`` (our own parser) from what the stacks reported; the check then
asks tshark -- an independent dissector -- for the same frame and facts. A record is accepted only when
every check passes.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import pcapread as pr
from .lab import Run
from .scenarios import ALERTS, Charger, Scenario

#: OpenSSL reason codes (as the receiving side reports them) -> TLS alert number
OPENSSL_ALERTS = {
    "SSLV3_ALERT_HANDSHAKE_FAILURE": 40,
    "SSLV3_ALERT_BAD_CERTIFICATE": 42,
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": 45,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": 46,
    "TLSV1_ALERT_UNKNOWN_CA": 48,
    "TLSV1_ALERT_PROTOCOL_VERSION": 70,
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": 116,
}
TLS_VERSIONS = {0x0301: "TLSv1.0", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}
TLS13_ALERT_RECORD_LEN = 19  # 2 alert bytes + inner content type + 16-byte AEAD tag, no padding


class NotFound(Exception):
    """The capture does not show what the stacks reported."""


@dataclass
class Ctx:
    """Everything a locator may use for one charger."""

    run: Run
    ch: Charger
    result: dict[str, Any]
    packets: list[pr.Packet]

    @property
    def error(self) -> dict[str, Any]:
        return self.result.get("error") or {}

    def errors(self) -> list[dict[str, Any]]:
        out, err = [], self.result.get("error")
        while err:
            out.append(err)
            err = err.get("cause")
        return out

    def conn(self) -> pr.Conn:
        conns = pr.connections(self.packets, self.ch.port)
        if not conns:
            raise NotFound(f"no TCP connection to port {self.ch.port}")
        if self.ch.tls or (len(conns) == 1 and len(self.run.scenario.chargers) == 1):
            return conns[0]
        for c in conns:
            msg, _ = pr.http_message(c.up)
            if msg and msg.info["first_line"].split(" ")[1].rstrip("/").endswith("/" + self.ch.station_id):
                return c
        raise NotFound(f"no WebSocket upgrade for {self.ch.station_id}")


@dataclass
class Finding:
    frame: int | None
    facts: dict[str, Any]
    checks: list[Check] = field(default_factory=list)


@dataclass
class Check:
    """One tshark query and what it must return (first row, or all rows, or none)."""

    what: str
    filter: str
    fields: list[str]
    expect: list[list[str]] | None = None  # expected rows (prefix match on the first len(expect) rows)
    expect_none: bool = False
    min_rows: int = 1
    got: list[list[str]] = field(default_factory=list)
    ok: bool = False


# -- OCPP over WebSocket ------------------------------------------------------------------------------------
def ws_messages(conn: pr.Conn) -> list[tuple[str, pr.Pdu]]:
    """All WebSocket frames of ``conn`` in frame order, tagged 'up' (charger) or 'down' (CSMS)."""
    out: list[tuple[str, pr.Pdu]] = []
    req, up_start = pr.http_message(conn.up)
    resp, down_start = pr.http_message(conn.down)
    if req is None or resp is None or resp.info.get("status") != 101:
        return out
    out += [("up", p) for p in pr.ws_frames(conn.up, up_start)]
    out += [("down", p) for p in pr.ws_frames(conn.down, down_start)]
    return sorted(out, key=lambda x: x[1].frame)


def ocpp_tls(c: Ctx) -> list[tuple[str, pr.Pdu, list[Any]]]:
    """OCPP text messages of a wss charger, as tshark decrypts them with the scenario's key log (the lab's own
    pcap reader does not decrypt: tshark is the oracle here)."""
    rows = tshark_rows(
        c.run.pcap,
        tshark_args(c.run.scenario, c.run.keylog),
        f"websocket.opcode == 1 && tcp.port == {c.ch.port}",
        ["frame.number", "tcp.srcport", "websocket.payload.text"],
    )
    out: list[tuple[str, pr.Pdu, list[Any]]] = []
    for frame, sport, text in rows:
        try:
            msg = json.loads(text)  # one message per frame in the lab (tshark joins several with ',')
        except ValueError:
            continue
        if isinstance(msg, list):
            d = "down" if int(sport) == c.ch.port else "up"
            out.append((d, pr.Pdu(int(frame), "ws", {"opcode": 1, "text": text, "json": msg}), msg))
    return out


def ocpp(conn: pr.Conn) -> list[tuple[str, pr.Pdu, list[Any]]]:
    return [
        (d, p, p.info["json"])
        for d, p in ws_messages(conn)
        if p.info["opcode"] == 1 and isinstance(p.info.get("json"), list)
    ]


def call_actions(msgs: list[tuple[str, pr.Pdu, list[Any]]]) -> dict[str, str]:
    return {m[1]: m[2] for d, _, m in msgs if d == "up" and m and m[0] == 2 and len(m) >= 3}


def ws_text_check(ch: Charger, frame: int, text: str, what: str) -> Check:
    """tshark must show ``text`` as the WebSocket text of ``frame``, sent by the CSMS or the charger."""
    port = "tcp.srcport" if what.startswith("CSMS") else "tcp.dstport"
    return Check(
        what,
        f"frame.number == {frame} && websocket.opcode == 1 && {port} == {ch.port}",
        ["websocket.payload.text"],
        expect=[[text]],
    )


# -- locators -----------------------------------------------------------------------------------------------
def loc_healthy(c: Ctx) -> Finding:
    facts: dict[str, Any] = {
        "boot_status": c.result.get("facts", {}).get("boot_status"),
        "subprotocol": c.result.get("facts", {}).get("subprotocol"),
    }
    if c.error:
        raise NotFound(f"charger reported an error: {c.error.get('message')}")
    conn = c.conn()
    checks: list[Check] = []
    if c.ch.tls:
        hello = _tls(conn)
        facts.update(hello)
        checks += _tls_hello_checks(c, hello)
        checks.append(
            Check(
                "no fatal TLS alert",
                f"tls.alert_message.level == 2 && tcp.port == {c.ch.port}",
                ["frame.number"],
                expect_none=True,
            )
        )
        checks.append(
            Check(
                "decrypted Boot answered Accepted",
                f'tcp.port == {c.ch.port} && websocket.payload.text contains "\\"Accepted\\""',
                ["websocket.payload.text"],
            )
        )
        facts["tls_version"] = c.result["facts"].get("tls_version")
        facts["cipher"] = c.result["facts"].get("cipher")
        return Finding(None, facts, checks)
    msgs = ocpp(conn)
    boot = next((p for d, p, m in msgs if d == "down" and m[0] == 3 and m[2].get("status") == "Accepted"), None)
    if boot is None:
        raise NotFound("no BootNotification Accepted")
    resp, _ = pr.http_message(conn.down)
    assert resp is not None
    facts["http_status"] = 101
    facts["upgrade_frame"] = resp.frame
    facts["boot_accepted_frame"] = boot.frame
    checks.append(
        Check(
            "101 with the OCPP subprotocol",
            f"frame.number == {resp.frame}",
            ["http.response.code", "http.sec_websocket_protocol"],
            expect=[["101", c.result["facts"]["subprotocol"]]],
        )
    )
    checks.append(ws_text_check(c.ch, boot.frame, boot.info["text"], "CSMS: Boot Accepted"))
    checks.append(
        Check("no RST", f"tcp.flags.reset == 1 && tcp.port == {c.ch.port}", ["frame.number"], expect_none=True)
    )
    return Finding(None, facts, checks)


def _dns_finding(c: Ctx, frame: int, facts: dict[str, Any], flt: str) -> Finding:
    facts["qname"] = c.ch.host
    facts["resolver"] = c.run.scenario.resolver
    return Finding(
        frame,
        facts,
        [Check("first matching DNS packet", flt, ["frame.number", "dns.qry.name"], expect=[[str(frame), c.ch.host]])],
    )


def loc_dns_response(c: Ctx) -> Finding:
    fid = c.ch.expect.fault_id
    rcode = {"dns.nxdomain": 3, "dns.servfail": 2, "dns.refused": 5, "dns.no_address": 0}[fid or ""]
    for p, m in pr.dns_messages(c.packets):
        if m["response"] and m["name"] == c.ch.host and m["rcode"] == rcode and (rcode or m["answers"] == 0):
            flt = f'dns.flags.response == 1 && dns.qry.name == "{c.ch.host}" && dns.flags.rcode == {rcode}'
            if rcode == 0:
                flt += " && dns.count.answers == 0"
            f = _dns_finding(
                c,
                p.no,
                {"rcode": rcode, "answers": m["answers"], "qtype": {1: "A", 28: "AAAA"}.get(m["qtype"], m["qtype"])},
                flt,
            )
            f.checks.append(
                Check(
                    "rcode",
                    f"frame.number == {p.no}",
                    ["dns.flags.rcode", "dns.count.answers"],
                    expect=[[str(rcode), str(m["answers"])]],
                )
            )
            return f
    raise NotFound(f"no DNS response with rcode {rcode} for {c.ch.host}")


def loc_dns_unanswered(c: Ctx) -> Finding:
    queries = [(p, m) for p, m in pr.dns_messages(c.packets) if m["name"] == c.ch.host]
    answered = {m["id"] for _, m in queries if m["response"]}
    unanswered = [p for p, m in queries if not m["response"] and m["id"] not in answered]
    if not unanswered:
        raise NotFound("every query was answered")
    flt = f'dns.flags.response == 0 && dns.qry.name == "{c.ch.host}"'
    f = _dns_finding(c, unanswered[0].no, {"queries": len(unanswered), "responses": 0}, flt)
    f.checks.append(Check("no DNS response at all", "dns.flags.response == 1", ["frame.number"], expect_none=True))
    f.checks.append(Check("queries repeated", flt, ["frame.number"], min_rows=len(unanswered)))
    return f


def loc_tcp_refused(c: Ctx) -> Finding:
    rst = next((p for p in c.packets if p.proto == "tcp" and p.sport == c.ch.port and p.flags & pr.RST), None)
    if rst is None:
        raise NotFound("no RST from the CSMS port")
    syn = next(p for p in c.packets if p.proto == "tcp" and p.dport == c.ch.port and p.flags & pr.SYN)
    return Finding(
        rst.no,
        {"dst": f"{rst.src}:{c.ch.port}", "syn_frame": syn.no, "syn_ack": False},
        [
            Check(
                "first RST from the CSMS port",
                f"tcp.flags.reset == 1 && tcp.srcport == {c.ch.port}",
                ["frame.number"],
                expect=[[str(rst.no)]],
            ),
            Check(
                "no SYN-ACK",
                f"tcp.flags.syn == 1 && tcp.flags.ack == 1 && tcp.srcport == {c.ch.port}",
                ["frame.number"],
                expect_none=True,
            ),
        ],
    )


def loc_tcp_syn_timeout(c: Ctx) -> Finding:
    syns = [p for p in c.packets if p.proto == "tcp" and p.dport == c.ch.port and p.flags & pr.SYN]
    if len(syns) < 2 or any(p.sport == c.ch.port for p in c.packets if p.proto == "tcp"):
        raise NotFound("expected retransmitted SYNs and no answer")
    flt = f"tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == {c.ch.port}"
    return Finding(
        syns[0].no,
        {
            "dst": f"{syns[0].dst}:{c.ch.port}",
            "syn_count": len(syns),
            "give_up_after_s": round(syns[-1].ts - syns[0].ts, 3),
        },
        [
            Check("first SYN", flt, ["frame.number"], expect=[[str(syns[0].no)]], min_rows=len(syns)),
            Check(
                "retransmissions flagged",
                f"{flt} && tcp.analysis.retransmission",
                ["frame.number"],
                expect=[[str(p.no)] for p in syns[1:]],
            ),
            Check("nothing from the CSMS port", f"tcp.srcport == {c.ch.port}", ["frame.number"], expect_none=True),
        ],
    )


def loc_icmp_unreachable(c: Ctx) -> Finding:
    icmp = next((p for p in c.packets if p.proto == "icmp" and p.icmp_type == 3), None)
    if icmp is None:
        raise NotFound("no ICMP unreachable")
    code = icmp.payload[1]
    return Finding(
        icmp.no,
        {"icmp_type": 3, "icmp_code": code, "dst_port": c.ch.port},
        [
            Check(
                "ICMP unreachable for the CSMS port",
                f"icmp.type == 3 && tcp.dstport == {c.ch.port}",
                ["frame.number", "icmp.code"],
                expect=[[str(icmp.no), str(code)]],
            ),
        ],
    )


def _tls(conn: pr.Conn) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for rec in pr.tls_records(conn.up):
        if rec.info.get("handshake") == 1:
            facts["sni"] = rec.info.get("sni")
            facts["client_hello_frame"] = rec.frame
            facts["offered_versions"] = [TLS_VERSIONS.get(v, hex(v)) for v in rec.info.get("supported_versions", [])]
            break
    for rec in pr.tls_records(conn.down):
        if rec.info.get("handshake") == 2:
            v = rec.info.get("selected_version") or rec.info["legacy_version"]
            facts["negotiated_version"] = TLS_VERSIONS.get(v, hex(v))
            facts["server_hello_frame"] = rec.frame
            break
    return facts


def _tls_hello_checks(c: Ctx, hello: dict[str, Any]) -> list[Check]:
    checks = [
        Check(
            "ClientHello SNI",
            f"frame.number == {hello['client_hello_frame']} && tls.handshake.type == 1",
            ["tls.handshake.extensions_server_name"],
            expect=[[c.ch.host]],
        )
    ]
    if "server_hello_frame" in hello:
        v = {"TLSv1.2": "0x0303", "TLSv1.3": "0x0304"}[hello["negotiated_version"]]
        field_ = "tls.handshake.extensions.supported_version" if v == "0x0304" else "tls.handshake.version"
        checks.append(
            Check(
                "ServerHello version",
                f"frame.number == {hello['server_hello_frame']} && tls.handshake.type == 2",
                [field_],
                expect=[[v]],
            )
        )
    return checks


#: what the *sending* OpenSSL reported -> the alert it sends (OpenSSL ssl_verify_alarm_type, RFC 8446 4.4.2.4)
SENDER_ALERTS = {
    "certificate is not yet valid": 42,
    "certificate has expired": 45,
    "unable to get local issuer certificate": 48,
    "Hostname mismatch": 42,
}


def _stack_alert(c: Ctx, tls13: bool) -> tuple[int | None, str, str]:
    """The alert as the stacks reported it: the receiver's OpenSSL reason, else mapped from the sender's."""
    texts = [e.get("message", "") for e in c.errors()] + c.run.csms_log.splitlines()
    for text in texts:
        for reason, num in OPENSSL_ALERTS.items():
            if f"[SSL: {reason}]" in text:
                return num, text.strip(), "receiver"
    for text in texts:
        if "PEER_DID_NOT_RETURN_A_CERTIFICATE" in text:
            return (116 if tls13 else 40), text.strip(), "sender"
        for needle, num in SENDER_ALERTS.items():
            if "CERTIFICATE_VERIFY_FAILED" in text and needle in text:
                return num, text.strip(), "sender"
    return None, "", ""


def loc_tls_alert(c: Ctx) -> Finding:
    conn = c.conn()
    hello = _tls(conn)
    tls13 = hello.get("negotiated_version") == "TLSv1.3"
    recs = sorted(
        [("charger", r) for r in pr.tls_records(conn.up)] + [("csms", r) for r in pr.tls_records(conn.down)],
        key=lambda x: x[1].frame,
    )
    alert = next(
        (
            (who, r)
            for who, r in recs
            if r.info["content_type"] == 21
            or (tls13 and r.info["content_type"] == 23 and r.info["length"] == TLS13_ALERT_RECORD_LEN)
        ),
        None,
    )
    if alert is None:
        raise NotFound("no TLS alert record")
    who, rec = alert
    stack_num, stack_text, stack_side = _stack_alert(c, tls13)
    encrypted = rec.info["content_type"] == 23
    num = rec.info.get("alert", stack_num)
    if num is None:
        raise NotFound("encrypted alert and no stack reported which")
    if not encrypted and stack_num is not None and stack_num != num:
        raise NotFound(f"capture shows alert {num}, the receiving stack reported {stack_num}")
    facts = {
        **hello,
        "alert": ALERTS.get(num or -1, num),
        "alert_number": num,
        "alert_level": "fatal",
        "alert_sender": who,
        "alert_encrypted": encrypted,
        "alert_as_reported": stack_text,
        "alert_reported_by": stack_side,
    }
    if encrypted:
        facts["note"] = "TLS 1.3: the alert is encrypted; tshark decrypts it with the key log"
    checks = _tls_hello_checks(c, hello)
    port_field = "tcp.srcport" if who == "csms" else "tcp.dstport"
    checks.append(
        Check(
            "first TLS alert (decrypted with the key log)",
            f"tls.alert_message && {port_field} == {c.ch.port}",
            ["frame.number", "tls.alert_message.level", "tls.alert_message.desc"],
            expect=[[str(rec.frame), "2", str(num)]],
        )
    )
    return Finding(rec.frame, facts, checks)


def loc_tls_abort(c: Ctx) -> Finding:
    """No alert: the frame that ends the handshake (FIN or RST) from whoever gave up."""
    conn = c.conn()
    hello = _tls(conn)
    stop = next(
        (p for p in c.packets if p.proto == "tcp" and p.flags & (pr.FIN | pr.RST) and c.ch.port in (p.sport, p.dport)),
        None,
    )
    if stop is None:
        raise NotFound("no FIN/RST")
    who = "csms" if stop.sport == c.ch.port else "charger"
    facts = {**hello, "alert": None, "aborted_by": who, "abort": "RST" if stop.flags & pr.RST else "FIN"}
    checks = _tls_hello_checks(c, hello)
    checks.append(
        Check(
            "no TLS alert at all", f"tls.alert_message && tcp.port == {c.ch.port}", ["frame.number"], expect_none=True
        )
    )
    checks.append(
        Check(
            "first FIN/RST",
            f"(tcp.flags.fin == 1 || tcp.flags.reset == 1) && tcp.port == {c.ch.port}",
            ["frame.number", "tcp.srcport"],
            expect=[[str(stop.no), str(stop.sport)]],
        )
    )
    return Finding(stop.no, facts, checks)


def loc_http_status(c: Ctx) -> Finding:
    conn = c.conn()
    resp, _ = pr.http_message(conn.down)
    if resp is None:
        raise NotFound("no HTTP response")
    status = resp.info["status"]
    stack = next((e["http_status"] for e in c.errors() if "http_status" in e), None)
    if stack != status:
        raise NotFound(f"capture says HTTP {status}, the charger's stack said {stack}")
    h = resp.info["headers"]
    facts = {
        "http_status": status,
        "http_reason": resp.info["first_line"].split(" ", 2)[2],
        "www_authenticate": h.get("www-authenticate"),
        "server": h.get("server"),
        "path": c.ch.path + "/" + c.ch.station_id,
        "offered_subprotocols": c.ch.subprotocols,
    }
    return Finding(
        resp.frame,
        facts,
        [
            Check(
                "the HTTP response",
                f"http.response.code == {status} && tcp.srcport == {c.ch.port} && tcp.dstport == {conn.client[1]}",
                ["frame.number", "http.response.code"],
                expect=[[str(resp.frame), str(status)]],
            ),
        ],
    )


def loc_ws_no_subprotocol(c: Ctx) -> Finding:
    conn = c.conn()
    resp, _ = pr.http_message(conn.down)
    if resp is None or resp.info["status"] != 101 or "sec-websocket-protocol" in resp.info["headers"]:
        raise NotFound("no 101 without Sec-WebSocket-Protocol")
    close = next((p for d, p in ws_messages(conn) if d == "down" and p.info["opcode"] == 8), None)
    facts = {
        "http_status": 101,
        "offered_subprotocols": c.ch.subprotocols,
        "agreed_subprotocol": None,
        "csms_subprotocols": list(c.run.scenario.csms_subprotocols),
        "close_code": close.info.get("close_code") if close else None,
        "close_reason": close.info.get("close_reason") if close else None,
    }
    return Finding(
        resp.frame,
        facts,
        [
            Check(
                "101 without a subprotocol",
                f"http.response.code == 101 && tcp.srcport == {c.ch.port}",
                ["frame.number", "http.sec_websocket_protocol"],
                expect=[[str(resp.frame), ""]],
            ),
            Check(
                "offered subprotocol",
                f"http.request && tcp.dstport == {c.ch.port}",
                ["http.sec_websocket_protocol"],
                expect=[[",".join(c.ch.subprotocols)]],
            ),
        ],
    )


def loc_ws_close(c: Ctx) -> Finding:
    conn = c.conn()
    close = next(
        (
            p
            for d, p in ws_messages(conn)
            if d == "down" and p.info["opcode"] == 8 and p.info.get("close_code") not in (1000, 1001)
        ),
        None,
    )
    if close is None:
        raise NotFound("no abnormal close frame from the CSMS")
    code, reason = close.info["close_code"], close.info["close_reason"]
    stack = next((e.get("rcvd_close") for e in c.errors() if e.get("rcvd_close")), None)
    facts = {"close_code": code, "close_reason": reason, "charger_saw": stack}
    return Finding(
        close.frame,
        facts,
        [
            Check(
                "close frame from the CSMS",
                f"websocket.opcode == 8 && tcp.srcport == {c.ch.port}",
                ["frame.number", "websocket.payload.close.status_code", "websocket.payload.close.reason"],
                expect=[[str(close.frame), str(code), reason]],
            ),
        ],
    )


def _server_end(c: Ctx, flag: int) -> tuple[pr.Conn, pr.Packet]:
    conn = c.conn()
    pkt = next(
        (
            p
            for p in c.packets
            if p.proto == "tcp" and p.sport == c.ch.port and p.flags & flag and (p.dst, p.dport) == conn.client
        ),
        None,
    )
    if pkt is None:
        raise NotFound("no FIN/RST from the CSMS")
    return conn, pkt


def loc_ws_dropped(c: Ctx) -> Finding:
    conn, fin = _server_end(c, pr.FIN)
    if any(d == "down" and p.info["opcode"] == 8 and p.frame < fin.no for d, p in ws_messages(conn)):
        raise NotFound("the CSMS sent a close frame first")
    facts = {"end": "FIN", "close_frame": None, "charger_close_code": 1006}
    return Finding(
        fin.no,
        facts,
        [
            Check(
                "FIN from the CSMS",
                f"tcp.flags.fin == 1 && tcp.srcport == {c.ch.port}",
                ["frame.number"],
                expect=[[str(fin.no)]],
            ),
            Check(
                "no close frame from the CSMS",
                f"websocket.opcode == 8 && tcp.srcport == {c.ch.port}",
                ["frame.number"],
                expect_none=True,
            ),
        ],
    )


def loc_tcp_reset(c: Ctx) -> Finding:
    conn, rst = _server_end(c, pr.RST)
    facts = {"end": "RST", "established": True, "after_frames": rst.no - conn.syn_frame}
    return Finding(
        rst.no,
        facts,
        [
            Check(
                "RST from the CSMS",
                f"tcp.flags.reset == 1 && tcp.srcport == {c.ch.port}",
                ["frame.number"],
                expect=[[str(rst.no)]],
            ),
            Check(
                "connection was established",
                f"tcp.flags.syn == 1 && tcp.flags.ack == 1 && tcp.srcport == {c.ch.port}",
                ["frame.number"],
            ),
        ],
    )


def loc_ocpp_callerror(c: Ctx) -> Finding:
    msgs = ocpp_tls(c) if c.ch.tls else ocpp(c.conn())
    actions = call_actions(msgs)
    err = next(((p, m) for d, p, m in msgs if d == "down" and m[0] == 4), None)
    if err is None:
        raise NotFound("no CALLERROR")
    p, m = err
    stack = next((e.get("ocpp_error_code") for e in c.errors() if e.get("ocpp_error_code")), None)
    if stack is not None and stack != m[2]:
        raise NotFound(f"capture says {m[2]}, the charger's stack said {stack}")
    facts = {
        "message_id": m[1],
        "action": actions.get(m[1]),
        "callerror_code": m[2],
        "callerror_description": m[3],
        "callerror_details": m[4] if len(m) > 4 else None,
    }
    return Finding(p.frame, facts, [ws_text_check(c.ch, p.frame, p.info["text"], "CSMS: CALLERROR")])


def loc_ocpp_call(c: Ctx) -> Finding:
    """The CALL that failed: never answered (no_response) or broke the schema (schema_violation)."""
    msgs = ocpp(c.conn())
    answers = {m[1]: (p, m) for d, p, m in msgs if d == "down" and m[0] in (3, 4)}
    fid = c.ch.expect.fault_id
    for d, p, m in msgs:
        if d != "up" or m[0] != 2:
            continue
        answer = answers.get(m[1])
        if fid == "ocpp.no_response" and answer is None:
            timeout = next((e["message"] for e in c.errors() if "Waited" in e.get("message", "")), "")
            facts = {
                "message_id": m[1],
                "action": m[2],
                "answered": False,
                "charger_timeout_s": c.ch.response_timeout,
                "charger_error": timeout,
            }
            last = max(pk.no for pk in c.packets)
            return Finding(
                p.frame,
                facts,
                [
                    ws_text_check(c.ch, p.frame, p.info["text"], "charger: the unanswered CALL"),
                    Check(
                        "no answer with that message id",
                        f'websocket.payload.text contains "\\"{m[1]}\\"" && tcp.srcport == {c.ch.port}',
                        ["frame.number"],
                        expect_none=True,
                    ),
                    Check(
                        "capture covers the timeout",
                        f"frame.number == {last} && frame.time_relative >= {c.ch.response_timeout}",
                        ["frame.number"],
                    ),
                ],
            )
        if fid == "ocpp.schema_violation" and c.ch.malformed_boot and p.info["text"] == c.ch.malformed_boot:
            facts = {
                "message_id": m[1],
                "action": m[2],
                "payload": m[3],
                "answer": answer[1] if answer else None,
                "answer_frame": answer[0].frame if answer else None,
            }
            checks = [ws_text_check(c.ch, p.frame, p.info["text"], "charger: the malformed CALL")]
            if answer:
                checks.append(ws_text_check(c.ch, answer[0].frame, answer[0].info["text"], "CSMS: its CALLERROR"))
            return Finding(p.frame, facts, checks)
    raise NotFound(f"no CALL matching {fid}")


def _first_result(c: Ctx, action: str, bad: Callable[[dict[str, Any]], str | None]) -> Finding:
    msgs = ocpp(c.conn())
    actions = call_actions(msgs)
    hits = [
        (p, m, s) for d, p, m in msgs if d == "down" and m[0] == 3 and actions.get(m[1]) == action and (s := bad(m[2]))
    ]
    if not hits:
        raise NotFound(f"no {action} result with the expected status")
    p, m, status = hits[0]
    facts = {"message_id": m[1], "action": action, "status": status, "responses_like_this": len(hits), "payload": m[2]}
    return Finding(p.frame, facts, [ws_text_check(c.ch, p.frame, p.info["text"], f"CSMS: {action} {status}")])


def loc_ocpp_boot_status(c: Ctx) -> Finding:
    want = {"ocpp.boot_rejected": "Rejected", "ocpp.boot_pending": "Pending"}[c.ch.expect.fault_id or ""]
    f = _first_result(c, "BootNotification", lambda pl: pl.get("status") if pl.get("status") == want else None)
    if want == "Pending":
        f.facts["ever_accepted"] = "Accepted" in c.result.get("facts", {}).get("boot_status", [])
    return f


def loc_ocpp_authorize_status(c: Ctx) -> Finding:
    def bad(pl: dict[str, Any]) -> str | None:
        info = pl.get("idTagInfo") or pl.get("idTokenInfo") or {}
        return info.get("status") if info.get("status") != "Accepted" else None

    return _first_result(c, "Authorize", bad)


def loc_ocpp_clock(c: Ctx) -> Finding:
    msgs = ocpp(c.conn())
    for d, p, m in msgs:
        stamp = m[3].get("timestamp") if d == "up" and m[0] == 2 and isinstance(m[3], dict) else None
        if stamp and stamp < "2010":
            csms_time = next(
                (
                    mm[2].get("currentTime")
                    for dd, _, mm in msgs
                    if dd == "down" and mm[0] == 3 and isinstance(mm[2], dict) and mm[2].get("currentTime")
                ),
                None,
            )
            facts = {
                "message_id": m[1],
                "action": m[2],
                "charger_timestamp": stamp,
                "csms_current_time": csms_time,
                "faketime": c.ch.faketime,
            }
            return Finding(p.frame, facts, [ws_text_check(c.ch, p.frame, p.info["text"], "charger: 2000 timestamp")])
    raise NotFound("no charger timestamp before 2010")


# -- proxies, relays and other stacks (ocpp-rpc, nginx, HAProxy, socat) ----------------------------------
def loc_ws_closed_after_upgrade(c: Ctx) -> Finding:
    """101, then the CSMS's close frame before it sent any OCPP message: the close frame."""
    conn = c.conn()
    resp, _ = pr.http_message(conn.down)
    if resp is None or resp.info.get("status") != 101:
        raise NotFound("no 101 Switching Protocols")
    frames = ws_messages(conn)
    close = next((p for d, p in frames if d == "down" and p.info["opcode"] == 8), None)
    if close is None:
        raise NotFound("no close frame from the CSMS")
    if any(d == "down" and p.info["opcode"] == 1 and p.frame < close.frame for d, p in frames):
        raise NotFound("the CSMS answered an OCPP message before it closed")
    unanswered = [p.info["json"] for d, p in frames if d == "up" and p.info["opcode"] == 1 and p.frame < close.frame]
    code, reason = close.info.get("close_code"), close.info.get("close_reason")
    facts = {
        "http_status": 101,
        "upgrade_frame": resp.frame,
        "subprotocol": resp.info["headers"].get("sec-websocket-protocol"),
        "server": resp.info["headers"].get("server"),
        "close_code": code,
        "close_reason": reason,
        "ms_after_upgrade": round((_ts(c, close.frame) - _ts(c, resp.frame)) * 1000, 1),
        "charger_calls_before_close": unanswered,
    }
    return Finding(
        close.frame,
        facts,
        [
            Check(
                "101 with the OCPP subprotocol",
                f"frame.number == {resp.frame}",
                ["http.response.code", "http.sec_websocket_protocol"],
                expect=[["101", facts["subprotocol"] or ""]],
            ),
            Check(
                "first close frame from the CSMS",
                f"websocket.opcode == 8 && tcp.srcport == {c.ch.port}",
                ["frame.number", "websocket.payload.close.status_code", "websocket.payload.close.reason"],
                expect=[[str(close.frame), str(code), reason or ""]],
            ),
            Check(
                "no OCPP message from the CSMS",
                f"websocket.opcode == 1 && tcp.srcport == {c.ch.port}",
                ["frame.number"],
                expect_none=True,
            ),
        ],
    )


def _ts(c: Ctx, frame: int) -> float:
    return c.packets[frame - 1].ts


def _proxy_facts(c: Ctx) -> dict[str, Any]:
    proxy = next((p for p in c.run.scenario.proxies if p.port == c.ch.port), None)
    if proxy is None:
        return {}
    return {
        "proxy": proxy.kind,
        "proxy_listen": f"{proxy.host}:{proxy.port}",
        "upstream": f"{proxy.upstream[0]}:{proxy.upstream[1]}",
    }


def loc_http_status_tls(c: Ctx) -> Finding:
    """A non-101 answer to the upgrade inside TLS: tshark decrypts it with the key log; our reader confirms that
    the frame completes an application-data record from the server."""
    conn = c.conn()
    hello = _tls(conn)
    rows = tshark_rows(
        c.run.pcap,
        tshark_args(c.run.scenario, c.run.keylog),
        f"http.response && tcp.srcport == {c.ch.port}",
        ["frame.number", "http.response.code", "http.response.phrase", "http.server"],
    )
    if not rows:
        raise NotFound("no decrypted HTTP response")
    frame, status = int(rows[0][0]), int(rows[0][1])
    stack = next((e["http_status"] for e in c.errors() if "http_status" in e), None)
    if stack != status:
        raise NotFound(f"capture says HTTP {status}, the charger's stack said {stack}")
    if not any(r.frame == frame and r.info["content_type"] == 23 for r in pr.tls_records(conn.down)):
        raise NotFound(f"frame {frame} completes no application-data record from the server")
    facts = {
        **hello,
        "http_status": status,
        "http_reason": rows[0][2],
        "server": rows[0][3],
        "path": c.ch.path + "/" + c.ch.station_id,
        **_proxy_facts(c),
        "note": "the response is inside TLS; tshark decrypts it with the charger's key log",
    }
    return Finding(
        frame,
        facts,
        [
            *_tls_hello_checks(c, hello),
            Check(
                "the decrypted HTTP response",
                f"http.response && tcp.srcport == {c.ch.port}",
                ["frame.number", "http.response.code"],
                expect=[[str(frame), str(status)]],
            ),
            Check(
                "no fatal TLS alert",
                f"tls.alert_message.level == 2 && tcp.port == {c.ch.port}",
                ["frame.number"],
                expect_none=True,
            ),
        ],
    )


def loc_ws_dropped_idle(c: Ctx) -> Finding:
    """ws.dropped by a proxy's idle timeout: the FIN, with how long the connection had been silent before it."""
    f = loc_ws_dropped(c)
    conn = c.conn()
    fin = c.packets[(f.frame or 1) - 1]
    ends = {conn.client, conn.server}
    before = [p for p in c.packets[: fin.no - 1] if p.proto == "tcp" and {(p.src, p.sport), (p.dst, p.dport)} == ends]
    if not before:
        raise NotFound("nothing on the connection before the FIN")
    idle = round(fin.ts - before[-1].ts, 3)
    last_data = max((p.no for p in before if p.payload), default=None)
    f.facts.update({"idle_s_before_fin": idle, "last_packet_frame": before[-1].no, "last_data_frame": last_data})
    f.facts.update(_proxy_facts(c))
    f.checks.append(
        Check(
            "silence on the connection before the FIN (tcp.time_delta)",
            f"frame.number == {f.frame} && tcp.time_delta >= {max(idle - 0.01, 0):.3f}",
            ["frame.number"],
            expect=[[str(f.frame)]],
        )
    )
    return f


def loc_healthy_relayed(c: Ctx) -> Finding:
    """Healthy through a TCP relay: ONE charger (its own address, its station id), its session seen on two legs."""
    f = loc_healthy(c)
    proxy = next(p for p in c.run.scenario.proxies if p.port == c.ch.port)
    up_host, up_port = proxy.upstream
    conn = c.conn()
    legs = pr.connections(c.packets, up_port)
    if len(legs) != 1:
        raise NotFound(f"expected one relay leg to {up_host}:{up_port}, found {len(legs)}")
    leg = legs[0]
    req, _ = pr.http_message(leg.up)
    if req is None or not req.info["first_line"].split(" ")[1].endswith("/" + c.ch.station_id):
        raise NotFound("the relay leg does not carry this station's upgrade")
    f.facts.update(
        {
            "charger_address": conn.client[0],
            "one_charger": True,
            "relay": proxy.kind,
            "relay_listen": f"{proxy.host}:{proxy.port}",
            "relay_source": leg.client[0],
            "csms": f"{up_host}:{up_port}",
            "legs": {
                "charger_to_relay": {"client": f"{conn.client[0]}:{conn.client[1]}", "syn_frame": conn.syn_frame},
                "relay_to_csms": {"client": f"{leg.client[0]}:{leg.client[1]}", "syn_frame": leg.syn_frame},
            },
            "note": "one session seen twice (before and after the relay): count its messages once",
        }
    )
    f.checks += [
        Check(
            "the charger connects from its own address",
            f"tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == {c.ch.port}",
            ["ip.src", "ip.dst"],
            expect=[[c.ch.source or conn.client[0], proxy.host]],
        ),
        Check(
            "the relay connects to the CSMS from its own address",
            f"tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == {up_port}",
            ["ip.src", "ip.dst"],
            expect=[[leg.client[0], up_host]],
        ),
        Check(
            "the same BootNotification on both legs",
            'websocket.payload.text contains "BootNotification"',
            ["tcp.dstport"],
            expect=[[str(c.ch.port)], [str(up_port)]],
        ),
    ]
    return f


def loc_tls_alert_chain(c: Ctx) -> Finding:
    """The alert, plus what the server's Certificate message held (decrypted with the key log in TLS 1.3)."""
    f = loc_tls_alert(c)
    rows = tshark_rows(
        c.run.pcap,
        tshark_args(c.run.scenario, c.run.keylog),
        f"tls.handshake.type == 11 && tcp.srcport == {c.ch.port}",
        ["frame.number", "tls.handshake.certificate_length", "x509af.serialNumber"],
    )
    if not rows:
        raise NotFound("no Certificate message from the server")
    sent = len(rows[0][1].split(","))
    f.facts["certificates_sent"] = sent
    f.facts["chain_complete"] = False
    f.facts.update(_proxy_facts(c))
    f.checks.append(
        Check(
            "the server's Certificate message holds only the leaf",
            f"tls.handshake.type == 11 && tcp.srcport == {c.ch.port}",
            ["frame.number", "tls.handshake.certificate_length"],
            expect=[[rows[0][0], rows[0][1]]],
        )
    )
    if sent != 1:
        raise NotFound(f"the server sent {sent} certificates")
    return f


# -- lab-a locators: closed after upgrade, unanswered CSMS request, silent reboot, scheme mismatch, typo, backoff
def loc_ws_close_after_upgrade(c: Ctx) -> Finding:
    """The CSMS's close frame right after the 101, before any OCPP answer from it."""
    conn = c.conn()
    resp, _ = pr.http_message(conn.down)
    if resp is None or resp.info.get("status") != 101:
        raise NotFound("no 101")
    frames = ws_messages(conn)
    first_down = next((p for d, p in frames if d == "down"), None)
    if first_down is None or first_down.info["opcode"] != 8:
        raise NotFound("the CSMS's first WebSocket frame is not a close frame")
    close = first_down
    unanswered = [
        {"frame": p.frame, "message_id": p.info["json"][1], "action": p.info["json"][2]}
        for d, p in frames
        if d == "up" and p.info["opcode"] == 1 and isinstance(p.info.get("json"), list) and p.info["json"][0] == 2
    ]
    code, reason = close.info.get("close_code"), close.info.get("close_reason", "")
    facts = {
        "http_status": 101,
        "upgrade_frame": resp.frame,
        "subprotocol": resp.info["headers"].get("sec-websocket-protocol"),
        "close_code": code,
        "close_reason": reason,
        "close_after_upgrade_s": round(
            next(p.ts for p in c.packets if p.no == close.frame) - next(p.ts for p in c.packets if p.no == resp.frame),
            3,
        ),
        "unanswered_calls": unanswered,
        "charger_error": c.error.get("message"),
    }
    checks = [
        Check(
            "101 from the CSMS",
            f"http.response.code == 101 && tcp.srcport == {c.ch.port}",
            ["frame.number"],
            expect=[[str(resp.frame)]],
        ),
        Check(
            "close frame from the CSMS",
            f"websocket.opcode == 8 && tcp.srcport == {c.ch.port}",
            ["frame.number", "websocket.payload.close.status_code", "websocket.payload.close.reason"],
            expect=[[str(close.frame), str(code), reason]],
        ),
        Check(
            "no OCPP message from the CSMS",
            f"websocket.opcode == 1 && tcp.srcport == {c.ch.port}",
            ["frame.number"],
            expect_none=True,
        ),
    ]
    for call in unanswered[:1]:
        text = next(p.info["text"] for d, p in frames if p.frame == call["frame"] and d == "up")
        checks.append(ws_text_check(c.ch, call["frame"], text, "charger: the CALL left unanswered"))
    return Finding(close.frame, facts, checks)


CSMS_RESPONSE_TIMEOUT = 5  # csms.py: the ocpp ChargePoint's response_timeout (its conf default)


def loc_ocpp_csms_call_unanswered(c: Ctx) -> Finding:
    """The CSMS's CALL the charger never answered, while the connection stayed up (a later CALL answered)."""
    conn = c.conn()
    msgs = ocpp(conn)
    answers = {m[1]: (p, m) for d, p, m in msgs if d == "up" and m[0] in (3, 4)}
    calls = [(p, m) for d, p, m in msgs if d == "down" and m[0] == 2]
    miss = next(((p, m) for p, m in calls if m[1] not in answers), None)
    if miss is None:
        raise NotFound("every CSMS CALL was answered")
    p, m = miss
    later = [(pp, mm) for pp, mm in calls if pp.frame > p.frame and mm[1] in answers]
    if not later:
        raise NotFound("no later CSMS CALL answered: the connection may not have stayed up")
    nxt, nxt_m = later[0]
    ans_p = answers[nxt_m[1]][0]
    ends = [
        pk
        for pk in c.packets
        if pk.proto == "tcp" and c.ch.port in (pk.sport, pk.dport) and pk.flags & (pr.FIN | pr.RST)
    ]
    ts = {pk.no: pk.ts for pk in c.packets}
    facts = {
        "message_id": m[1],
        "action": m[2],
        "payload": m[3],
        "answered": False,
        "next_csms_call": {"frame": nxt.frame, "action": nxt_m[2], "answer_frame": ans_p.frame},
        "connection_up_after_s": round((ends[0].ts if ends else c.packets[-1].ts) - ts[p.frame], 3),
        "connection_end_frame": ends[0].no if ends else None,
        "charger_events": [e for e in c.result.get("events", []) if e.get("event") == "ignored_request"],
        "csms_log": [ln.split(" ", 1)[-1] for ln in c.run.csms_log.splitlines() if "unanswered:" in ln][:3],
    }
    return Finding(
        p.frame,
        facts,
        [
            ws_text_check(c.ch, p.frame, p.info["text"], "CSMS: the CALL the charger never answered"),
            Check(
                "no answer with that message id from the charger",
                f'websocket.payload.text contains "\\"{m[1]}\\"" && tcp.dstport == {c.ch.port}',
                ["frame.number"],
                expect_none=True,
            ),
            ws_text_check(c.ch, ans_p.frame, ans_p.info["text"], "charger: it answers the next CSMS CALL"),
            Check(
                f"no FIN/RST within the CSMS's {CSMS_RESPONSE_TIMEOUT} s message timeout after the CALL",
                f"(tcp.flags.fin == 1 || tcp.flags.reset == 1) && tcp.port == {c.ch.port} && "
                f"frame.time_relative < {ts[p.frame] - c.packets[0].ts + CSMS_RESPONSE_TIMEOUT:.6f}",
                ["frame.number"],
                expect_none=True,
            ),
        ],
    )


def _station_conns(c: Ctx) -> list[pr.Conn]:
    """The charger's connections (its WebSocket upgrades), oldest first."""
    out = []
    for conn in pr.connections(c.packets, c.ch.port):
        msg, _ = pr.http_message(conn.up)
        if msg and msg.info["first_line"].split(" ")[1].rstrip("/").endswith("/" + c.ch.station_id):
            out.append(conn)
    return out


def loc_ocpp_silent_reboot(c: Ctx) -> Finding:
    """The first CSMS segment the old session never acknowledged; then the charger's kernel's RST on the old
    connection and a new session whose BootNotification starts the message ids again."""
    conns = _station_conns(c)
    if len(conns) < 2:
        raise NotFound(f"{len(conns)} session(s) of {c.ch.station_id}; a reboot needs two")
    old, new = conns[0], conns[1]

    def on_old(p: pr.Packet, frm: tuple[str, int]) -> bool:
        return (
            p.proto == "tcp"
            and (p.src, p.sport) == frm
            and {(p.src, p.sport), (p.dst, p.dport)}
            == {
                old.client,
                old.server,
            }
        )

    up = [p for p in c.packets if on_old(p, old.client)]
    down = [p for p in c.packets if on_old(p, old.server)]
    base = old.down.base
    if base is None:
        raise NotFound("no SYN-ACK on the old connection")
    acked = max(((p.ack - base) % 2**32 for p in up if p.flags & pr.ACK and not p.flags & pr.RST), default=0)
    unacked = [p for p in down if p.payload and (p.seq - base) % 2**32 + len(p.payload) > acked]
    if not unacked:
        raise NotFound("the CSMS's data on the old connection was all acknowledged")
    first = unacked[0]
    retrans = [p for p in unacked[1:] if p.seq == first.seq]
    rst = next((p for p in up if p.flags & pr.RST), None)
    if rst is None or rst.no < first.no:
        raise NotFound("no RST from the charger's old port after the unacknowledged data")
    if any(p.flags & pr.FIN for p in up):
        raise NotFound("the charger's old connection sent a FIN: not silent")
    silent_from = max((p for p in up if p.no < first.no), key=lambda p: p.no)
    text = next((p for d, p in ws_messages(old) if d == "down" and p.frame == first.no), None)
    new_msgs = ocpp(new)
    boot = next(((p, m) for d, p, m in new_msgs if d == "up" and m[0] == 2 and m[2] == "BootNotification"), None)
    if boot is None:
        raise NotFound("the new session sent no BootNotification")
    boot_p, boot_m = boot
    accepted = next(
        (p for d, p, m in new_msgs if d == "down" and m[0] == 3 and m[1] == boot_m[1] and m[2].get("status")), None
    )
    old_ids = [m[1] for d, _, m in ocpp(old) if d == "up" and m[0] == 2]
    reason = boot_m[3].get("reason")
    before = c.result.get("before_power_cut", {}).get("events", [])
    facts = {
        "old_connection": f"{old.client[0]}:{old.client[1]} -> {old.server[0]}:{old.server[1]}",
        "old_session_last_charger_frame": silent_from.no,
        "silent_for_s_before_unacked": round(first.ts - silent_from.ts, 3),
        "unacked_frame": first.no,
        "unacked_message": text.info.get("text") if text else None,
        "retransmissions": [p.no for p in retrans],
        "rst_frame": rst.no,
        "rst_after_s": round(rst.ts - first.ts, 3),
        "old_session_message_ids": old_ids,
        "new_connection": f"{new.client[0]}:{new.client[1]} -> {new.server[0]}:{new.server[1]}",
        "new_session_syn_frame": new.syn_frame,
        "new_boot_frame": boot_p.frame,
        "new_boot_message_id": boot_m[1],
        "new_boot_reason": reason,
        "new_boot_accepted_frame": accepted.frame if accepted else None,
        "cx_basis": "BootNotification reason PowerUp after the old session went silent"
        if reason == "PowerUp"
        else None,
        "killed_process_events": [e for e in before if e.get("event") in ("open", "boot", "status")],
    }
    old_port = old.client[1]
    checks = [
        Check(
            "the first unacknowledged segment, from the CSMS on the old connection",
            f"frame.number == {first.no} && tcp.srcport == {c.ch.port} && tcp.dstport == {old_port} && tcp.len > 0",
            ["frame.number", "tcp.len"],
            expect=[[str(first.no), str(len(first.payload))]],
        ),
        Check(
            "never acknowledged by the charger",
            f"tcp.analysis.acks_frame == {first.no}",
            ["frame.number"],
            expect_none=True,
        ),
        Check(
            "retransmitted",
            f"tcp.analysis.retransmission && tcp.srcport == {c.ch.port} && tcp.dstport == {old_port}",
            ["frame.number"],
            expect=[[str(p.no)] for p in retrans],
            min_rows=max(1, len(retrans)),
        ),
        Check(
            "no FIN from the charger's old port",
            f"tcp.flags.fin == 1 && tcp.srcport == {old_port} && tcp.dstport == {c.ch.port}",
            ["frame.number"],
            expect_none=True,
        ),
        Check(
            "RST from the charger's old port",
            f"tcp.flags.reset == 1 && tcp.srcport == {old_port} && tcp.dstport == {c.ch.port}",
            ["frame.number"],
            expect=[[str(rst.no)]],
        ),
        ws_text_check(c.ch, boot_p.frame, boot_p.info["text"], "charger: the new session's BootNotification"),
    ]
    if text is not None:
        checks.append(ws_text_check(c.ch, first.no, text.info["text"], "CSMS: the unacknowledged message"))
    if accepted is not None:
        checks.append(ws_text_check(c.ch, accepted.frame, accepted.info["text"], "CSMS: new Boot answered"))
    return Finding(first.no, facts, checks)


def _flags(p: pr.Packet) -> str:
    return ",".join(n for n, f in (("SYN", pr.SYN), ("FIN", pr.FIN), ("RST", pr.RST), ("ACK", pr.ACK)) if p.flags & f)


def loc_tls_scheme_answer(c: Ctx) -> Finding:
    """The server's answer to the wrong-protocol bytes: its first packet after them carrying data, FIN or RST."""
    conn = c.conn()

    def side(p: pr.Packet, frm: tuple[str, int]) -> bool:
        return (
            p.proto == "tcp"
            and (p.src, p.sport) == frm
            and {(p.src, p.sport), (p.dst, p.dport)}
            == {
                conn.client,
                conn.server,
            }
        )

    sent = next((p for p in c.packets if side(p, conn.client) and p.payload), None)
    if sent is None:
        raise NotFound("the charger sent no bytes")
    is_tls = sent.payload[0] == 0x16
    if is_tls != c.ch.tls:
        raise NotFound("the charger's first bytes do not match its URL scheme")
    answer = next(
        (
            p
            for p in c.packets
            if p.no > sent.no and side(p, conn.server) and (p.payload or p.flags & (pr.FIN | pr.RST))
        ),
        None,
    )
    if answer is None:
        raise NotFound("the server never answered")
    listener_tls = any(lst.tls for lst in c.run.scenario.listeners if lst.port == c.ch.port)
    if listener_tls == c.ch.tls:
        raise NotFound("charger and listener agree on TLS: not a scheme mismatch")
    charger_before = [p for p in c.packets if side(p, conn.client) and sent.no < p.no < answer.no]
    head = bytes(answer.payload[:64])
    facts: dict[str, Any] = {
        "charger_url_scheme": "wss" if c.ch.tls else "ws",
        "csms_port_serves": "wss (TLS)" if listener_tls else "ws (plain HTTP)",
        "charger_sent": "TLS ClientHello" if is_tls else bytes(sent.payload.split(b"\r\n", 1)[0]).decode("latin-1"),
        "charger_sent_frame": sent.no,
        "answer_frame": answer.no,
        "answer_flags": _flags(answer),
        "answer_bytes": len(answer.payload),
        "answer_http_status": int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else None,
        "answer_tls_alert": answer.payload[6] if answer.payload[:1] == b"\x15" and len(answer.payload) >= 7 else None,
        "answer_after_s": round(answer.ts - sent.ts, 3),
        # websockets reads an LF-terminated request line: an LF without CR in a ClientHello ends it at once
        "client_hello_first_lf_at": sent.payload.find(b"\n") if is_tls else None,
        "charger_packets_in_between": [
            f"{p.no}:{_flags(p)}" for p in charger_before if p.payload or p.flags & (pr.FIN | pr.RST)
        ],
        "charger_error_chain": [f"{e['type']}: {e['message']}" for e in c.errors()],
        "csms_log": [
            ln.split(" ", 1)[-1]
            for ln in c.run.csms_log.splitlines()
            if " DEBUG " not in ln and ("handshake failed" in ln or "SSL" in ln)
        ][:6],
    }
    checks = [
        Check(
            "the charger's first bytes",
            f"tcp.dstport == {c.ch.port} && tcp.len > 0",
            ["frame.number", "tcp.len"],
            expect=[[str(sent.no), str(len(sent.payload))]],
        ),
        Check(
            "the server's first packet after them with data, FIN or RST",
            f"tcp.srcport == {c.ch.port} && frame.number > {sent.no} && "
            "(tcp.len > 0 || tcp.flags.fin == 1 || tcp.flags.reset == 1)",
            ["frame.number", "tcp.len", "tcp.flags.fin", "tcp.flags.reset"],
            expect=[
                [
                    str(answer.no),
                    str(len(answer.payload)),
                    "1" if answer.flags & pr.FIN else "0",
                    "1" if answer.flags & pr.RST else "0",
                ]
            ],
        ),
        Check(
            "no ServerHello, no WebSocket upgrade",
            f"(tls.handshake.type == 2 || http.response.code == 101) && tcp.port == {c.ch.port}",
            ["frame.number"],
            expect_none=True,
        ),
    ]
    return Finding(answer.no, facts, checks)


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def loc_dns_nxdomain_typo(c: Ctx) -> Finding:
    """``dns_response`` (the NXDOMAIN), plus the names within two edits that resolved in the same capture:
    the catalogue's evidence of a typo in this charger's CSMS URL."""
    f = loc_dns_response(c)
    near: dict[str, dict[str, Any]] = {}
    for p, m in pr.dns_messages(c.packets):
        name = m["name"]
        if m["response"] and m["rcode"] == 0 and m["answers"] and name != c.ch.host:
            dist = _edit_distance(name, c.ch.host)
            if dist <= 2 and name not in near:
                near[name] = {"name": name, "edits": dist, "first_answer_frame": p.no}
    if not near:
        raise NotFound(f"no resolved name within two edits of {c.ch.host}")
    f.facts["resolved_names_nearby"] = list(near.values())
    f.facts["likely_typo_of"] = min(near.values(), key=lambda n: n["edits"])["name"]
    for n in near.values():
        f.checks.append(
            Check(
                f"{n['name']} resolved in the same capture",
                f'dns.flags.response == 1 && dns.qry.name == "{n["name"]}" && dns.flags.rcode == 0 '
                "&& dns.count.answers > 0",
                ["frame.number"],
                expect=[[str(n["first_answer_frame"])]],
            )
        )
    return f


def loc_tcp_refused_repeated(c: Ctx) -> Finding:
    """``tcp_refused`` (the first RST), plus every attempt: the catalogue's one finding with the count and the
    first and last frame, and the charger's backoff between attempts."""
    f = loc_tcp_refused(c)
    syns = [p for p in c.packets if p.proto == "tcp" and p.dport == c.ch.port and p.flags & pr.SYN]
    rsts = [p for p in c.packets if p.proto == "tcp" and p.sport == c.ch.port and p.flags & pr.RST]
    if len(syns) != c.ch.connect_attempts or len(rsts) != len(syns):
        raise NotFound(f"{len(syns)} SYNs and {len(rsts)} RSTs, expected {c.ch.connect_attempts} of each")
    failed = [e for e in c.result.get("events", []) if e.get("event") == "connect_failed"]
    f.facts.update(
        {
            "attempts": len(syns),
            "first_frame": rsts[0].no,
            "last_frame": rsts[-1].no,
            "syn_frames": [p.no for p in syns],
            "rst_frames": [p.no for p in rsts],
            "intervals_s": [round(b.ts - a.ts, 3) for a, b in itertools.pairwise(syns)],
            "charger_backoff": {
                "first_s": c.ch.backoff,
                "factor": 2,
                "max_s": c.ch.backoff_max,
                "planned_s": [e.get("retry_in_s") for e in failed],
            },
        }
    )
    f.checks.append(
        Check(
            "every attempt refused",
            f"tcp.flags.reset == 1 && tcp.srcport == {c.ch.port}",
            ["frame.number"],
            expect=[[str(p.no)] for p in rsts],
        )
    )
    f.checks.append(
        Check(
            "one SYN per attempt (new source port each time)",
            f"tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == {c.ch.port}",
            ["frame.number"],
            expect=[[str(p.no)] for p in syns],
        )
    )
    return f


LOCATORS: dict[str, Callable[[Ctx], Finding]] = {
    "healthy": loc_healthy,
    "dns_response": loc_dns_response,
    "dns_unanswered": loc_dns_unanswered,
    "tcp_refused": loc_tcp_refused,
    "tcp_syn_timeout": loc_tcp_syn_timeout,
    "icmp_unreachable": loc_icmp_unreachable,
    "tls_alert": loc_tls_alert,
    "tls_abort": loc_tls_abort,
    "http_status": loc_http_status,
    "ws_no_subprotocol": loc_ws_no_subprotocol,
    "ws_close": loc_ws_close,
    "ws_dropped": loc_ws_dropped,
    "tcp_reset": loc_tcp_reset,
    "ocpp_callerror": loc_ocpp_callerror,
    "ocpp_call": loc_ocpp_call,
    "ocpp_boot_status": loc_ocpp_boot_status,
    "ocpp_authorize_status": loc_ocpp_authorize_status,
    "ocpp_clock": loc_ocpp_clock,
    # proxies, relays and other stacks
    "ws_closed_after_upgrade": loc_ws_closed_after_upgrade,
    "http_status_tls": loc_http_status_tls,
    "tls_alert_chain": loc_tls_alert_chain,
    "ws_dropped_idle": loc_ws_dropped_idle,
    "healthy_relayed": loc_healthy_relayed,
    # lab-a
    "ws_close_after_upgrade": loc_ws_close_after_upgrade,
    "ocpp_csms_call_unanswered": loc_ocpp_csms_call_unanswered,
    "ocpp_silent_reboot": loc_ocpp_silent_reboot,
    "tls_scheme_answer": loc_tls_scheme_answer,
    "dns_nxdomain_typo": loc_dns_nxdomain_typo,
    "tcp_refused_repeated": loc_tcp_refused_repeated,
}


# -- tshark -------------------------------------------------------------------------------------------------
def tshark_args(sc: Scenario, keylog: Path | None) -> list[str]:
    """Decode-as rules for the lab's non-standard ports, and the key log for TLS."""
    args: list[str] = []
    tls_ports = {lst.port for lst in sc.listeners if lst.tls} | {p.port for p in sc.proxies if p.tls}
    upstream = {p.upstream[1] for p in sc.proxies}  # the proxy's leg to the CSMS (plain ws in the lab)
    for port in sorted({c.port for c in sc.chargers} | upstream):
        if port in tls_ports:
            args += ["-d", f"tcp.port=={port},tls", "-d", f"tls.port=={port},http"]
        else:
            args += ["-d", f"tcp.port=={port},http"]
    if keylog is not None and keylog.exists():
        args += ["-o", f"tls.keylog_file:{keylog}"]
    return args


def tshark_rows(pcap: Path, extra: list[str], flt: str, fields: list[str]) -> list[list[str]]:
    argv = [
        "tshark",
        "-n",
        "-r",
        str(pcap),
        *extra,
        "-Y",
        flt,
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]
    for f in fields:
        argv += ["-e", f]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"tshark failed on {flt!r}: {done.stderr.strip()}")
    return [line.split("\t") for line in done.stdout.splitlines()]


def run_checks(pcap: Path, extra: list[str], checks: list[Check]) -> bool:
    ok = True
    for chk in checks:
        chk.got = tshark_rows(pcap, extra, chk.filter, chk.fields)
        if chk.expect_none:
            chk.ok = not chk.got
        else:
            chk.ok = len(chk.got) >= chk.min_rows
            if chk.expect is not None:
                chk.ok = (
                    chk.ok
                    and len(chk.got) >= len(chk.expect)
                    and all(_row_match(want, got) for want, got in zip(chk.expect, chk.got, strict=False))
                )
        ok = ok and chk.ok
    return ok


def _row_match(want: list[str], got: list[str]) -> bool:
    got = got + [""] * (len(want) - len(got))
    return all(w == g for w, g in zip(want, got, strict=False))


# -- the record ---------------------------------------------------------------------------------------------
LINK_NAMES = {1: "EN10MB (Ethernet)", 113: "LINUX_SLL (Linux cooked v1)", 276: "LINUX_SLL2 (Linux cooked v2)"}


def _csms_lines(run: Run, ch: Charger) -> list[str]:
    keep = []
    for line in run.csms_log.splitlines():
        body = line.split(" ", 1)[-1]
        if " DEBUG " in line:
            continue  # asyncio debug duplicates of the ERROR line
        if (
            ch.station_id in line
            or "TLS handshake failed" in line
            or "subprotocol" in line
            or "opening handshake failed" in line
        ):
            keep.append(body)
    return keep[:40]


def _proxy_lines(run: Run, ch: Charger) -> list[str]:
    """What the proxy/relay logged about this charger (nginx error/access log, HAProxy log, socat -d -d)."""
    words = (ch.station_id, "error", "failed", "timed out", "DOWN", "accepting connection", "connected to")
    lines = [line for line in run.proxy_log.splitlines() if not line.startswith("--- ")]
    return [line for line in lines if any(w in line for w in words)][:20]


def _dns_lines(run: Run, ch: Charger) -> list[str]:
    return [line.split(": ", 1)[-1] for line in run.dns_log.splitlines() if ch.host in line][:12]


def build_record(run: Run) -> dict[str, Any]:
    """Locate every charger's failure frame, run the tshark checks, return the ground-truth record."""
    sc = run.scenario
    linktype, packets = pr.read_pcap(run.pcap)
    extra = tshark_args(sc, run.keylog)
    chargers, passed, problems = [], True, []
    frames_tshark = tshark_rows(run.pcap, extra, "frame", ["frame.number"])
    global_checks = [
        {
            "what": "tshark reads every frame",
            "ok": len(frames_tshark) == len(packets),
            "got": len(frames_tshark),
            "expected": len(packets),
        }
    ]
    dropped = re.search(r"(\d+) packets? dropped by kernel", run.tcpdump_log)
    global_checks.append(
        {
            "what": "tcpdump dropped nothing",
            "ok": dropped is not None and dropped.group(1) == "0",
            "got": dropped.group(0) if dropped else run.tcpdump_log[-200:],
            "expected": 0,
        }
    )
    passed = passed and all(g["ok"] for g in global_checks)
    for ch in sc.chargers:
        result = run.chargers.get(ch.station_id, {})
        ctx = Ctx(run, ch, result, packets)
        entry: dict[str, Any] = {
            "station_id": ch.station_id,
            "fault_id": ch.expect.fault_id,
            "cx": ch.expect.cx,
            "failure_frame": None,
            "also": list(ch.expect.also),
            "severity": ch.expect.severity if ch.expect.fault_id else None,
            "fix_side": ch.expect.fix_side,
            "site_visit": ch.expect.site_visit,
            "csms_url": ch.url,
            "ocpp_version": ch.ocpp,
            "transport": "wss" if ch.tls else "ws",
        }
        try:
            finding = LOCATORS[ch.expect.locate](ctx)
        except (NotFound, KeyError, IndexError, ValueError) as exc:
            problems.append(f"{ch.station_id}: {type(exc).__name__}: {exc}")
            entry["check"] = {"passed": False, "problem": str(exc)}
            passed = False
            finding = None
        if finding is not None:
            entry["failure_frame"] = finding.frame
            facts = dict(finding.facts)
            if ch.station_id in run.certs:
                facts["server_certificate"] = run.certs[ch.station_id]
            if ch.faketime:
                facts["charger_clock"] = f"faketime '{ch.faketime}'"
            entry["facts"] = facts
            ok = run_checks(run.pcap, extra, finding.checks)
            entry["check"] = {
                "passed": ok,
                "tshark": [
                    {
                        "what": k.what,
                        "filter": k.filter,
                        "fields": k.fields,
                        "expected": "no rows" if k.expect_none else k.expect,
                        "got": k.got[:5],
                        "ok": k.ok,
                    }
                    for k in finding.checks
                ],
            }
            if not ok:
                problems.append(
                    f"{ch.station_id}: tshark disagrees: "
                    + "; ".join(f"{k.what}: got {k.got[:3]}" for k in finding.checks if not k.ok)
                )
            passed = passed and ok
        entry["evidence"] = {
            "charger_error": result.get("error"),
            "charger_events": [e for e in result.get("events", []) if e.get("event") != "error"],
            "csms_log": _csms_lines(run, ch),
            "dnsmasq_log": _dns_lines(run, ch),
        }
        if sc.proxies:
            entry["evidence"]["proxy_log"] = _proxy_lines(run, ch)
        chargers.append(entry)
    faults = [c["fault_id"] for c in chargers if c["fault_id"]]
    return {
        "scenario": sc.name,
        "title": sc.title,
        "expected_verdict": "healthy" if not faults else ", ".join(dict.fromkeys(faults)),
        "capture": {
            "file": f"{sc.name}.pcap",
            "frames": len(packets),
            "interface": sc.interface,
            "link_type": LINK_NAMES.get(linktype, linktype),
            "keylog": f"{sc.name}.keys.txt" if run.keylog else None,
        },
        "chargers": chargers,
        "setup": {
            "dns": sc.dns,
            "resolver": sc.resolver,
            "firewall": list(sc.firewall),
            "csms_subprotocols": list(sc.csms_subprotocols),
            "subprotocol_policy": sc.subprotocol_policy,
            "asyncio_tls_alert_fix": not sc.stock_asyncio_tls,
            "stations": {c.station_id: {"url": c.url, "faketime": c.faketime} for c in sc.chargers},
            **({"power_cut": run.power_cut} if run.power_cut else {}),
        },
        "check": {"passed": passed, "tool": _tshark_version(), "global": global_checks, "problems": problems},
    }


_TSHARK_VERSION: list[str] = []


def _tshark_version() -> str:
    if not _TSHARK_VERSION:
        out = subprocess.run(["tshark", "--version"], capture_output=True, text=True, check=False).stdout
        _TSHARK_VERSION.append(out.splitlines()[0] if out else "tshark")
    return _TSHARK_VERSION[0]


def dump(record: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
