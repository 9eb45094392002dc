#!/usr/bin/env python3
"""Synthetic fleet-gateway capture for the ghostcap benchmark.

Writes a classic pcap (Ethernet link type, microsecond timestamps) that looks like a capture taken on the
gateway of a charging site: a few hundred chargers (10.20.x.y) holding OCPP 1.6-J WebSocket sessions to a
CSMS at 203.0.113.10 (``ws://`` on port 80 for most, ``wss://`` on 443 for some), interleaved with
unrelated TLS downloads, DNS and NTP from other hosts.  Nothing is sent anywhere: packets are bytes in a
file.

Every conversation is a Python generator yielding ``(timestamp_us, frame)`` in time order; a heap merges
them.  Headers are struct-packed from per-direction templates and TCP/UDP/IPv4 checksums come from a
big-integer one's-complement trick (2**16 == 1 mod 0xFFFF), so a million packets take seconds, not
minutes.  Output is streamed through a buffered writer and memory stays in the tens of MB.

The packet budget is split roughly 30 % OCPP (chargers), 55 % unrelated TLS, 8 % DNS, 7 % NTP, and
event rates are scaled so that ``--packets`` packets span about ``--duration`` seconds.  The writer stops
at exactly ``--packets`` packets, so conversations still open at that point are cut (as in a real
capture).  With ``--midstream F`` a fraction F of the chargers is already connected when the capture
starts (no DNS, handshake or upgrade: tshark then dissects their port-80 WebSocket bytes as HTTP).

Usage: ``python bench/make_fleet.py OUT.pcap [--packets N] [--seed S] [--duration SECONDS] [--midstream F]``
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import heapq
import itertools
import random
import struct
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

Steps = Generator[tuple[int, object], None, object]
"""A conversation (or part of one): yields ``(µs, frame bytes | new conversation)``, returns its end."""

SEC = 1_000_000
MS = 1_000
T0_US = 1_715_673_600 * SEC  # 2024-05-14 08:00:00 UTC
MSS = 1448
RTO = 200 * MS
P_RETX = 0.01  # per data segment: the same segment captured again after an RTO
P_OOO = 0.002  # per pair of consecutive data segments: captured in swapped order
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
FIN_ACK, SYN_ACK, RST_ACK, PSH_ACK = FIN | ACK, SYN | ACK, RST | ACK, PSH | ACK
MSS_OPTION = b"\x02\x04\x05\xb4"  # MSS 1460 in SYN / SYN-ACK

SHARE_OCPP, SHARE_TLS, SHARE_DNS, SHARE_NTP = 0.30, 0.55, 0.08, 0.07
PKTS_PER_EXCHANGE = 3.6  # CALL, sometimes a pure ACK, CALLRESULT, ACK
PKTS_PER_TLS_SESSION = 58.0  # measured mean of tls_session(); turns the TLS share into an arrival rate

GW_MAC = bytes.fromhex("00163e5a0001")
CSMS_NAME = "csms.example-cpo.net"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
NTP_EPOCH = 2_208_988_800

_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIHHHH")
_UDP = struct.Struct("!HHHH")
_ADDR_WORDS = struct.Struct("!HHHH")
_REC = struct.Struct("<IIII")
_TLS_HDR = struct.Struct("!BHH")
_DNS_HDR = struct.Struct("!HHHHHH")
_DNS_RR = struct.Struct("!HHHIH")
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)


def ip4(text: str) -> bytes:
    """Dotted quad to 4 bytes."""
    return bytes(int(part) for part in text.split("."))


CSMS_IP = ip4("203.0.113.10")
RESOLVER_IP = ip4("10.20.0.1")
PUBLIC_RESOLVERS = [ip4("1.1.1.1"), ip4("9.9.9.9")]
NTP_SERVERS = [ip4("192.0.2.123"), ip4("198.51.100.123"), ip4("192.0.2.124")]
TLS_SERVERS = [
    (ip4(f"{net}.{host}"), name)
    for net, host, name in [
        ("198.51.100", 20, "updates.vendor-fw.example"),
        ("198.51.100", 21, "fw-cdn.vendor-fw.example"),
        ("198.51.100", 40, "telemetry.site-ops.example"),
        ("198.51.100", 41, "mqtt.site-ops.example"),
        ("198.51.100", 77, "api.payments.example"),
        ("192.0.2", 15, "cdn.static-assets.example"),
        ("192.0.2", 16, "img.static-assets.example"),
        ("192.0.2", 80, "video.camera-cloud.example"),
        ("192.0.2", 81, "events.camera-cloud.example"),
        ("192.0.2", 200, "login.identity.example"),
        ("203.0.113", 60, "api.weather.example"),
        ("203.0.113", 61, "tiles.maps.example"),
        ("203.0.113", 90, "backup.storage.example"),
        ("203.0.113", 91, "logs.storage.example"),
    ]
]
CLIENT_HELLO_EXTENSIONS = bytes.fromhex(
    "000b000403000102"  # ec_point_formats
    "000a00080006001d00170018"  # supported_groups x25519, secp256r1, secp384r1
    "00230000"  # session_ticket
    "0010000e000c02683208687474702f312e31"  # ALPN h2, http/1.1
    "0016000000170000"  # encrypt_then_mac, extended_master_secret
    "000d0012001004030503060308040805080604010501"  # signature_algorithms
    "002b00050403040303"  # supported_versions 1.3, 1.2
    "002d00020101"  # psk_key_exchange_modes
)
SAMPLED_VALUES = (
    '{{"value":"{wh:.1f}","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","unit":"Wh"}},'
    '{{"value":"{w:.0f}","measurand":"Power.Active.Import","unit":"W"}},'
    '{{"value":"{a:.1f}","measurand":"Current.Import","phase":"L1","unit":"A"}},'
    '{{"value":"{v:.1f}","measurand":"Voltage","phase":"L1-N","unit":"V"}}'
)
OTHER_NAMES = ["pool.ntp.org", "time.cloudflare.com", "connectivity-check.example", "printer.local.example"]


def one_complement(total: int) -> int:
    """The Internet checksum for data whose 16-bit words (or any ≡ value mod 0xFFFF) sum to ``total``."""
    return (0xFFFF - total % 0xFFFF) % 0xFFFF


def payload_sum(payload: bytes) -> int:
    """A value ≡ the sum of the 16-bit words of ``payload`` (zero-padded) modulo 0xFFFF."""
    value = int.from_bytes(payload, "big")
    return value << 8 if len(payload) & 1 else value


class Direction:
    """One direction of a conversation: precomputed Ethernet/IPv4 header parts and checksum seeds."""

    __slots__ = (
        "dport",
        "dst",
        "eth",
        "frag",
        "ip_id",
        "ip_seed",
        "l4_seed",
        "proto",
        "sport",
        "src",
        "ttl",
        "win",
    )

    def __init__(
        self,
        macs: tuple[bytes, bytes],
        src: bytes,
        dst: bytes,
        ports: tuple[int, int],
        proto: int,
        ttl: int,
        ip_id: int,
        win: int = 64240,
    ) -> None:
        addr = sum(_ADDR_WORDS.unpack(src + dst))
        self.eth = macs[1] + macs[0] + b"\x08\x00"
        self.src, self.dst = src, dst
        self.sport, self.dport = ports
        self.proto, self.ttl, self.ip_id, self.win = proto, ttl, ip_id, win
        self.frag = 0x4000 if proto == 6 else 0  # DF on TCP
        self.ip_seed = 0x4500 + self.frag + (ttl << 8 | proto) + addr
        self.l4_seed = addr + proto + self.sport + self.dport + (win if proto == 6 else 0)

    def _ip(self, total: int) -> bytes:
        ip_id = self.ip_id = (self.ip_id + 1) & 0xFFFF
        csum = one_complement(self.ip_seed + total + ip_id)
        return _IP.pack(0x45, 0, total, ip_id, self.frag, self.ttl, self.proto, csum, self.src, self.dst)

    def tcp(self, seq: int, ack: int, flags: int, payload: bytes = b"", opts: bytes = b"") -> bytes:
        """An Ethernet/IPv4/TCP frame with correct lengths and checksums (32-bit fields sum mod 0xFFFF)."""
        seq &= 0xFFFFFFFF
        ack &= 0xFFFFFFFF
        hlen = 20 + len(opts)
        seglen = hlen + len(payload)
        offflags = hlen << 10 | flags
        total = self.l4_seed + seglen + seq + ack + offflags
        if opts:
            total += int.from_bytes(opts, "big")
        if payload:
            total += payload_sum(payload)
        header = _TCP.pack(self.sport, self.dport, seq, ack, offflags, self.win, one_complement(total), 0)
        return b"".join((self.eth, self._ip(20 + seglen), header, opts, payload))

    def udp(self, payload: bytes) -> bytes:
        """An Ethernet/IPv4/UDP frame with correct lengths and checksums."""
        ulen = 8 + len(payload)
        csum = one_complement(self.l4_seed + ulen + ulen + payload_sum(payload)) or 0xFFFF
        udp = _UDP.pack(self.sport, self.dport, ulen, csum)
        return b"".join((self.eth, self._ip(20 + ulen), udp, payload))


@dataclass(slots=True)
class Host:
    """A LAN host (charger or other device) behind the gateway."""

    ip: bytes
    mac: bytes
    port: int

    def ephemeral(self) -> int:
        """Next ephemeral source port (Linux range 32768-60999)."""
        self.port = 32768 + (self.port - 32767) % 28232
        return self.port


@dataclass(slots=True)
class Charger:
    """One charge point and its OCPP state."""

    n: int
    host: Host
    wss: bool
    midstream: bool
    period_us: float
    connectors: int
    meter_wh: float = 0.0
    tx_id: int = 0
    status: list[str] = field(default_factory=list)


class TcpConn:
    """A TCP connection seen from the gateway: client on the LAN, server across the WAN."""

    __slots__ = ("c2s", "cseq", "gap", "lan", "rng", "s2c", "sseq", "wan")

    def __init__(self, rng: random.Random, client: Host, server: bytes, sport: int, wan: int) -> None:
        cport = client.ephemeral()
        macs = (client.mac, GW_MAC)
        self.rng = rng
        self.c2s = Direction(macs, client.ip, server, (cport, sport), 6, 64, rng.getrandbits(16))
        ttl = rng.choice((49, 52, 56, 57, 116))
        self.s2c = Direction(macs[::-1], server, client.ip, (sport, cport), 6, ttl, rng.getrandbits(16), 65535)
        self.cseq, self.sseq = rng.getrandbits(32), rng.getrandbits(32)
        self.lan = rng.randint(300, 4 * MS)  # gateway -> client -> gateway
        self.wan = wan  # gateway -> server -> gateway
        self.gap = rng.randint(60, 1200)  # spacing of back-to-back segments

    def handshake(self, t: int) -> Steps:
        """SYN, SYN-ACK, ACK."""
        yield t, self.c2s.tcp(self.cseq, 0, SYN, opts=MSS_OPTION)
        self.cseq += 1
        t += self.wan
        yield t, self.s2c.tcp(self.sseq, self.cseq, SYN_ACK, opts=MSS_OPTION)
        self.sseq += 1
        t += self.lan
        yield t, self.c2s.tcp(self.cseq, self.sseq, ACK)
        return t

    def send(self, t: int, from_client: bool, data: bytes, ack_delay: int | None = None) -> Steps:
        """Send ``data`` as MSS-sized segments, the receiver ACKing every second one.

        With ``ack_delay`` the receiver also ACKs the end of the data (after that many µs); without it
        the caller's next packet from the receiver is expected to carry the ACK.  Returns the time the
        receiver has the data (and has ACKed it, if asked).
        """
        rng = self.rng
        if from_client:
            out, back, seq, peer, delay = self.c2s, self.s2c, self.cseq, self.sseq, self.wan
        else:
            out, back, seq, peer, delay = self.s2c, self.c2s, self.sseq, self.cseq, self.lan
        end = seq + len(data)
        segs = [(seq + off, data[off : off + MSS]) for off in range(0, len(data), MSS)]
        pending: deque[tuple[int, bytes]] = deque()
        last = t
        for i in range(0, len(segs), 2):
            pair = segs[i : i + 2]
            if len(pair) == 2 and rng.random() < P_OOO:
                pair.reverse()
            for s, chunk in pair:
                while pending and pending[0][0] <= t:
                    yield pending.popleft()
                frame = out.tcp(s, peer, PSH_ACK if s + len(chunk) == end else ACK, chunk)
                yield t, frame
                if rng.random() < P_RETX:
                    t += RTO + rng.randrange(RTO)
                    while pending and pending[0][0] <= t:
                        yield pending.popleft()
                    yield t, frame
                last = t
                t += self.gap
            acked = max(s + len(chunk) for s, chunk in pair)
            if acked < end:
                pending.append((t + delay, back.tcp(peer, acked, ACK)))
        done = last + delay
        if ack_delay is not None:
            done += ack_delay
            pending.append((done, back.tcp(peer, end, ACK)))
        yield from pending
        if from_client:
            self.cseq = end
        else:
            self.sseq = end
        return done

    def close(self, t: int, client_first: bool) -> Steps:
        """FIN/ACK, FIN/ACK, ACK."""
        c, s = self.c2s, self.s2c
        if client_first:
            yield t, c.tcp(self.cseq, self.sseq, FIN_ACK)
            self.cseq += 1
            t += self.wan
            yield t, s.tcp(self.sseq, self.cseq, FIN_ACK)
            self.sseq += 1
            t += self.lan
            yield t, c.tcp(self.cseq, self.sseq, ACK)
        else:
            yield t, s.tcp(self.sseq, self.cseq, FIN_ACK)
            self.sseq += 1
            t += self.lan
            yield t, c.tcp(self.cseq, self.sseq, FIN_ACK)
            self.cseq += 1
            t += self.wan
            yield t, s.tcp(self.sseq, self.cseq, ACK)
        return t

    def reset(self, t: int, from_client: bool) -> Steps:
        """An abortive RST/ACK from one side."""
        if from_client:
            yield t, self.c2s.tcp(self.cseq, self.sseq, RST_ACK)
        else:
            yield t, self.s2c.tcp(self.sseq, self.cseq, RST_ACK)
        return t


def tls_record(ctype: int, body: bytes) -> bytes:
    """A TLS 1.2-framed record."""
    return _TLS_HDR.pack(ctype, 0x0303, len(body)) + body


def client_hello(rng: random.Random, sni: str) -> bytes:
    """A well-formed TLS 1.3 ClientHello record with SNI, ALPN and an x25519 key share."""
    name = sni.encode()
    ext = b"".join(
        (
            struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name,
            CLIENT_HELLO_EXTENSIONS,
            bytes.fromhex("003300260024001d0020") + rng.randbytes(32),
        )
    )
    suites = bytes.fromhex("130113021303c02bc02fc02cc030cca9cca8c013c014009c009d002f0035")
    body = b"".join(
        (
            b"\x03\x03",
            rng.randbytes(32),
            b"\x20",
            rng.randbytes(32),
            struct.pack("!H", len(suites)),
            suites,
            b"\x01\x00",
            struct.pack("!H", len(ext)),
            ext,
        )
    )
    hello = b"\x01" + len(body).to_bytes(3, "big") + body
    return _TLS_HDR.pack(0x16, 0x0301, len(hello)) + hello


def server_hello(rng: random.Random) -> bytes:
    """A TLS 1.3 ServerHello record followed by the middlebox-compatibility ChangeCipherSpec."""
    ext = bytes.fromhex("002b0002030400330024001d0020") + rng.randbytes(32)
    body = b"".join(
        (
            b"\x03\x03",
            rng.randbytes(32),
            b"\x20",
            rng.randbytes(32),
            b"\x13\x01\x00",
            struct.pack("!H", len(ext)),
        )
    )
    hello = b"\x02" + (len(body) + len(ext)).to_bytes(3, "big") + body + ext
    return tls_record(0x16, hello) + tls_record(0x14, b"\x01")


def ws_frame(payload: bytes, mask: bytes | None, opcode: int = 1) -> bytes:
    """A final WebSocket frame; masked (client to server) when ``mask`` is given."""
    n = len(payload)
    b0 = 0x80 | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes((b0, mbit | n))
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask is None:
        return head + payload
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return head + mask + (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def dns_name(name: str) -> bytes:
    """A DNS name in wire format (no compression)."""
    return b"".join(bytes((len(label),)) + label.encode() for label in name.split(".")) + b"\x00"


def dns_message(qid: int, name: str, qtype: int, answers: list[bytes] | None = None, rcode: int = 0) -> bytes:
    """A DNS query (``answers`` None) or response with one question and compressed-name answers."""
    question = dns_name(name) + struct.pack("!HH", qtype, 1)
    if answers is None:
        return _DNS_HDR.pack(qid, 0x0100, 1, 0, 0, 0) + question
    records = b"".join(_DNS_RR.pack(0xC00C, qtype, 1, 300, len(rd)) + rd for rd in answers)
    return _DNS_HDR.pack(qid, 0x8180 | rcode, 1, len(answers), 0, 0) + question + records


def ntp_packet(t: int, server: bytes | None, origin: bytes = bytes(8)) -> bytes:
    """A 48-byte NTPv4 client request (``server`` None) or server reply carrying ``origin``."""
    sec, usec = divmod(t, SEC)
    stamp = struct.pack("!II", sec + NTP_EPOCH, (usec << 32) // SEC)
    if server is None:
        return b"\x23\x00\x06\xec" + bytes(36) + stamp
    head = b"\x24\x02\x06\xe9" + struct.pack("!II", 0x0000_0A00, 0x0000_1400) + server
    return head + stamp + origin + stamp + stamp


def iso(t: int) -> str:
    """Capture time in µs to an OCPP ISO-8601 timestamp."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t // SEC))


class Ocpp:
    """One OCPP-J WebSocket session of a charger over a TcpConn (plain or inside TLS records)."""

    def __init__(self, fleet: Fleet, ch: Charger, conn: TcpConn) -> None:
        self.fleet, self.ch, self.conn, self.rng = fleet, ch, conn, fleet.rng

    def wire(self, frame: bytes) -> bytes:
        """The bytes on the wire for a WebSocket frame: itself, or a TLS record of the same size."""
        return self.fleet.app_data(len(frame)) if self.ch.wss else frame

    def call(self, t: int, action: str, body: str, result: str) -> Steps:
        """CALL from the charger, maybe a pure ACK, CALLRESULT from the CSMS, ACK."""
        rng = self.rng
        uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        text = f'[2,"{uid}","{action}",{body}]'.encode()
        slow = rng.random() < 0.5  # CSMS slower than its delayed-ACK timer: a pure ACK first
        frame = self.wire(ws_frame(text, rng.randbytes(4)))
        t = yield from self.conn.send(t, True, frame, ack_delay=40 * MS if slow else None)
        t += rng.randint(2 * MS, 120 * MS) if slow else rng.randint(500, 30 * MS)
        reply = self.wire(ws_frame(f'[3,"{uid}",{result}]'.encode(), None))
        return (yield from self.conn.send(t, False, reply, ack_delay=rng.randint(0, 40 * MS)))

    def boot(self, t: int) -> Steps:
        """BootNotification then a StatusNotification per connector."""
        ch = self.ch
        body = (
            f'{{"chargePointVendor":"VoltWorks","chargePointModel":"VW-{22 * ch.connectors}",'
            f'"chargePointSerialNumber":"VW{ch.n:08d}","firmwareVersion":"4.{ch.n % 7}.2",'
            f'"meterType":"EM340","iccid":"8944{ch.n:015d}"}}'
        )
        result = f'{{"status":"Accepted","currentTime":"{iso(t)}","interval":{int(ch.period_us / SEC * 3)}}}'
        t = yield from self.call(t, "BootNotification", body, result)
        for connector in range(ch.connectors + 1):
            t = yield from self.status(t + self.rng.randint(5 * MS, 300 * MS), connector)
        return t

    def status(self, t: int, connector: int) -> Steps:
        """StatusNotification for one connector (0 = the charge point)."""
        ch = self.ch
        if connector and self.rng.random() < 0.3:
            ch.status[connector] = self.rng.choice(("Available", "Preparing", "Charging", "SuspendedEV", "Finishing"))
        state = ch.status[connector] if connector else "Available"
        body = f'{{"connectorId":{connector},"errorCode":"NoError","status":"{state}","timestamp":"{iso(t)}"}}'
        return (yield from self.call(t, "StatusNotification", body, "{}"))

    def meter_values(self, t: int) -> Steps:
        """MeterValues: usually one sample set, sometimes a large offline backlog spanning many segments."""
        ch, rng = self.ch, self.rng
        backlog = rng.randint(15, 60) if rng.random() < 0.04 else 1
        samples = []
        for k in range(backlog):
            ch.meter_wh += rng.uniform(5, 400)
            at = iso(t - (backlog - k) * 60 * SEC)
            values = SAMPLED_VALUES.format(
                wh=ch.meter_wh, w=rng.uniform(0, 22000), a=rng.uniform(0, 32), v=rng.uniform(225, 235)
            )
            samples.append(f'{{"timestamp":"{at}","sampledValue":[{values}]}}')
        body = f'{{"connectorId":1,"transactionId":{ch.tx_id},"meterValue":[{",".join(samples)}]}}'
        return (yield from self.call(t, "MeterValues", body, "{}"))

    def ping(self, t: int) -> Steps:
        """A WebSocket ping from the CSMS and the charger's pong."""
        data = self.rng.randbytes(4)
        t = yield from self.conn.send(t, False, self.wire(ws_frame(data, None, opcode=0x9)))
        pong = self.wire(ws_frame(data, self.rng.randbytes(4), opcode=0xA))
        return (yield from self.conn.send(t + 200, True, pong, ack_delay=40 * MS))

    def run(self, t: int, until: float) -> Steps:
        """Periodic traffic until ``until`` (µs; may be infinite)."""
        rng, ch = self.rng, self.ch
        while True:
            t += int(rng.expovariate(1 / ch.period_us))
            if t >= until:
                return t
            pick = rng.random()
            if pick < 0.3:
                t = yield from self.call(t, "Heartbeat", "{}", f'{{"currentTime":"{iso(t)}"}}')
            elif pick < 0.8:
                t = yield from self.meter_values(t)
            elif pick < 0.93:
                t = yield from self.status(t, rng.randint(1, ch.connectors))
            else:
                t = yield from self.ping(t)

    def close(self, t: int) -> Steps:
        """WebSocket close handshake (1000), then the CSMS closes TCP first."""
        code = struct.pack("!H", 1000)
        t = yield from self.conn.send(t, True, self.wire(ws_frame(code, self.rng.randbytes(4), opcode=0x8)))
        t = yield from self.conn.send(t + 300, False, self.wire(ws_frame(code, None, opcode=0x8)))
        return (yield from self.conn.close(t + 500, client_first=False))


class Fleet:
    """The site: chargers, other hosts, servers, and the conversations between them."""

    def __init__(
        self, n_packets: int, seed: int, duration_s: float, midstream: float = 0.0, chargers: int | None = None
    ) -> None:
        rng = self.rng = random.Random(seed)
        self.midstream = midstream
        self.pool = rng.randbytes(1 << 20)
        self.stats: Counter[str] = Counter()
        pps = n_packets / duration_s
        n_chargers = chargers or min(300, max(2, n_packets // 1000))
        period = n_chargers * PKTS_PER_EXCHANGE / (SHARE_OCPP * pps) * SEC
        self.chargers = [self._charger(i, period) for i in range(n_chargers)]
        self.others = [
            Host(ip4(f"10.30.0.{i}"), b"\x02\x30\x00\x00\x00" + bytes((i,)), 40000 + i) for i in range(2, 42)
        ]
        self.rates = {
            "tls": SHARE_TLS * pps / PKTS_PER_TLS_SESSION,
            "dns": SHARE_DNS * pps / 2,
            "ntp": SHARE_NTP * pps / 2,
        }
        self.names = {name: [ip] for ip, name in TLS_SERVERS}
        self.names.update({name: [rng.randbytes(4) for _ in range(rng.randint(1, 3))] for name in OTHER_NAMES})
        self.names[CSMS_NAME] = [CSMS_IP]

    def _charger(self, i: int, period: float) -> Charger:
        ip = bytes((10, 20, 1 + i // 250, 1 + i % 250))
        host = Host(ip, b"\x02\x20" + ip, 32768 + self.rng.randrange(28000))
        connectors = self.rng.choice((1, 2, 2))
        wss, midstream = self.rng.random() < 0.1, self.rng.random() < self.midstream
        ch = Charger(i + 1, host, wss, midstream, period * self.rng.uniform(0.7, 1.3), connectors)
        ch.meter_wh, ch.tx_id = self.rng.uniform(1e5, 1e7), self.rng.randint(1000, 99999)
        ch.status = ["Available"] * (connectors + 1)
        return ch

    def app_data(self, size: int) -> bytes:
        """TLS application-data records (opaque bytes) carrying ``size`` bytes of ciphertext in total."""
        out = []
        while size > 0:
            k = min(size, 16401)
            off = self.rng.randrange(len(self.pool) - k)
            out.append(tls_record(0x17, self.pool[off : off + k]))
            size -= k
        return b"".join(out)

    def sources(self) -> list[Steps]:
        """The initial conversations: every charger's life plus the spawners of unrelated traffic."""
        rng = self.rng
        lives = [self.charger_life(ch, T0_US + rng.randrange(300 * SEC)) for ch in self.chargers]
        spawners = [self.spawner(kind, rate) for kind, rate in self.rates.items()]
        return lives + spawners

    def spawner(self, kind: str, rate: float) -> Steps:
        """Poisson arrivals of new conversations of one kind."""
        make = {"tls": self.tls_session, "dns": self.dns_session, "ntp": self.ntp_session}[kind]
        t = T0_US
        while True:
            t += int(self.rng.expovariate(rate) * SEC) + 1
            yield t, make(t)

    def udp_exchange(self, t: int, client: Host, server: bytes, port: int, query: bytes, reply: bytes | None) -> Steps:
        """One UDP request and (unless None) its reply ``wan`` later."""
        rng = self.rng
        sport = client.ephemeral() if port == 53 else 123
        macs = (client.mac, GW_MAC)
        out = Direction(macs, client.ip, server, (sport, port), 17, 64, rng.getrandbits(16))
        yield t, out.udp(query)
        if reply is None:
            return t
        back = Direction(macs[::-1], server, client.ip, (port, sport), 17, 57, rng.getrandbits(16))
        t += rng.randint(300, 2 * MS) if server == RESOLVER_IP else rng.randint(8 * MS, 60 * MS)
        yield t, back.udp(reply)
        return t

    def dns_lookup(self, t: int, client: Host, name: str, resolver: bytes = RESOLVER_IP, qtype: int = 1) -> Steps:
        """A DNS A (or AAAA) query and its answer; names the fleet does not know get NXDOMAIN."""
        qid = self.rng.getrandbits(16)
        self.stats["dns"] += 1
        addrs = self.names.get(name)
        if addrs is None:
            reply = dns_message(qid, name, qtype, [], rcode=3)
        elif qtype == 28:
            reply = dns_message(qid, name, qtype, [b"\x20\x01\x0d\xb8" + bytes(10) + a[2:] for a in addrs])
        else:
            reply = dns_message(qid, name, qtype, addrs)
        if self.rng.random() < 0.01:
            reply = None  # lost
        return (yield from self.udp_exchange(t, client, resolver, 53, dns_message(qid, name, qtype), reply))

    def dns_session(self, t: int) -> Steps:
        """An unrelated DNS lookup from some host."""
        rng = self.rng
        client = rng.choice(self.others) if rng.random() < 0.7 else rng.choice(self.chargers).host
        name = rng.choice(list(self.names)) if rng.random() < 0.95 else f"nx{rng.randrange(10**6)}.example"
        resolver = RESOLVER_IP if rng.random() < 0.8 else rng.choice(PUBLIC_RESOLVERS)
        return (yield from self.dns_lookup(t, client, name, resolver, 28 if rng.random() < 0.25 else 1))

    def ntp_session(self, t: int) -> Steps:
        """An NTP client/server exchange (UDP/123, 48-byte packets)."""
        rng = self.rng
        self.stats["ntp"] += 1
        client = rng.choice(self.others) if rng.random() < 0.4 else rng.choice(self.chargers).host
        server = rng.choice(NTP_SERVERS)
        query = ntp_packet(t, None)
        reply = ntp_packet(t + rng.randint(8 * MS, 40 * MS), server, origin=query[40:48])
        return (yield from self.udp_exchange(t, client, server, 123, query, reply))

    def tls_session(self, t: int) -> Steps:
        """An unrelated HTTPS connection: handshake, a few request/response rounds, close."""
        rng = self.rng
        self.stats["tls"] += 1
        server, sni = rng.choice(TLS_SERVERS)
        conn = TcpConn(rng, rng.choice(self.others), server, 443, rng.randint(5 * MS, 150 * MS))
        t = yield from conn.handshake(t)
        t = yield from self.tls_handshake(conn, t, sni)
        for _ in range(rng.choice((1, 1, 2, 3))):
            t = yield from conn.send(t + rng.randint(0, 50 * MS), True, self.app_data(rng.randint(90, 900)))
            size = min(int(rng.lognormvariate(8.8, 1.6)), 3_000_000)
            t = yield from conn.send(t + rng.randint(1 * MS, 80 * MS), False, self.app_data(size), 40 * MS)
        fate = rng.random()
        if fate < 0.75:
            t = yield from conn.send(t + rng.randint(1 * MS, 2 * SEC), True, self.app_data(19))
            t = yield from conn.close(t + 100, client_first=True)
        elif fate < 0.85:
            t = yield from conn.reset(t + rng.randint(1 * MS, 5 * SEC), from_client=rng.random() < 0.5)
        return t

    def tls_handshake(self, conn: TcpConn, t: int, sni: str) -> Steps:
        """ClientHello; ServerHello + CCS + encrypted flight; client CCS + Finished."""
        rng = self.rng
        t = yield from conn.send(t, True, client_hello(rng, sni))
        flight = server_hello(rng) + self.app_data(rng.randint(2500, 5200))
        t = yield from conn.send(t + rng.randint(200, 3 * MS), False, flight)
        return (yield from conn.send(t + rng.randint(200, 2 * MS), True, tls_record(0x14, b"\x01") + self.app_data(53)))

    def charger_life(self, ch: Charger, t: int) -> Steps:
        """A charger for the whole capture: connect, talk OCPP, now and then drop and reconnect."""
        rng = self.rng
        reboot, midstream = True, ch.midstream
        while True:
            conn = TcpConn(rng, ch.host, CSMS_IP, 443 if ch.wss else 80, rng.randint(15 * MS, 90 * MS))
            self.stats["ocpp"] += 1
            ocpp = Ocpp(self, ch, conn)
            if midstream:
                reboot = midstream = False
            else:
                t = yield from self.dns_lookup(t, ch.host, CSMS_NAME)
                t = yield from conn.handshake(t + rng.randint(100, 2 * MS))
                t = yield from self.ws_upgrade(ocpp, t)
                t = yield from ocpp.boot(t) if reboot else ocpp.status(t + 50 * MS, 1)
            fate = rng.random()
            lifetime = rng.expovariate(1 / (20 * 60 * SEC)) if fate < 0.17 else float("inf")
            t = yield from ocpp.run(t, t + lifetime)
            if fate < 0.12:
                self.stats["ocpp_fin"] += 1
                t = yield from ocpp.close(t)
                reboot = False
            else:
                self.stats["ocpp_rst"] += 1
                reboot = rng.random() < 0.5
                t = yield from conn.reset(t, from_client=reboot)
            t += rng.randint(5 * SEC, 90 * SEC)

    def ws_upgrade(self, ocpp: Ocpp, t: int) -> Steps:
        """HTTP GET /ocpp/CP-<n> with Upgrade: websocket, and the 101 (inside TLS for wss)."""
        ch, conn, rng = ocpp.ch, ocpp.conn, self.rng
        if ch.wss:
            t = yield from self.tls_handshake(conn, t, CSMS_NAME)
        key = base64.b64encode(rng.randbytes(16))
        auth = base64.b64encode(f"CP-{ch.n}:{rng.getrandbits(64):016x}".encode()).decode()
        request = (
            f"GET /ocpp/CP-{ch.n} HTTP/1.1\r\nHost: {CSMS_NAME}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: ocpp1.6\r\nAuthorization: Basic {auth}\r\n"
            f"User-Agent: VoltWorks-OCPP/4.{ch.n % 7}\r\n\r\n"
        ).encode()
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        response = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
        ).encode()
        t = yield from conn.send(t, True, ocpp.wire(request))
        return (yield from conn.send(t + rng.randint(1 * MS, 20 * MS), False, ocpp.wire(response)))


@dataclass(slots=True)
class WriteStats:
    """What ``write_pcap`` wrote."""

    packets: int
    bytes: int
    first_us: int
    last_us: int


def write_pcap(path: Path, sources: list[Steps], n_packets: int) -> WriteStats:
    """Merge the conversations by timestamp and stream the first ``n_packets`` frames to ``path``."""
    heap: list[tuple[int, int, object, Steps]] = []
    counter = itertools.count()
    push, pop, rec = heapq.heappush, heapq.heappop, _REC.pack
    for gen in sources:
        event = next(gen, None)
        if event is not None:
            push(heap, (event[0], next(counter), event[1], gen))
    written = size = last = 0
    first = None
    with path.open("wb", buffering=1 << 20) as out:
        out.write(PCAP_HEADER)
        size = len(PCAP_HEADER)
        while written < n_packets and heap:
            ts, _, item, gen = pop(heap)
            if item.__class__ is bytes:
                ts = max(ts, last + 1)  # strictly increasing timestamps
                last = ts
                first = first or ts
                n = len(item)
                out.write(rec(ts // SEC, ts % SEC, n, n))
                out.write(item)
                written += 1
                size += 16 + n
            else:  # a spawner produced a new conversation
                event = next(item, None)
                if event is not None:
                    push(heap, (event[0], next(counter), event[1], item))
            event = next(gen, None)
            if event is not None:
                push(heap, (event[0], next(counter), event[1], gen))
    return WriteStats(written, size, first or 0, last)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="pcap file to write")
    parser.add_argument("--packets", type=int, default=1_000_000, help="packets to write (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--duration", type=float, default=3600.0, help="approximate span in seconds")
    parser.add_argument(
        "--midstream", type=float, default=0.0, help="fraction of chargers already connected at capture start"
    )
    parser.add_argument("--chargers", type=int, help="chargers (default: a thousandth of the packets, 2 to 300)")
    args = parser.parse_args(argv)
    if args.packets < 1:
        parser.error("--packets must be positive")
    started = time.perf_counter()
    fleet = Fleet(args.packets, args.seed, args.duration, args.midstream, args.chargers)
    stats = write_pcap(args.out, fleet.sources(), args.packets)
    elapsed = time.perf_counter() - started
    span = (stats.last_us - stats.first_us) / SEC
    print(
        f"wrote {args.out}: {stats.packets:,} packets, {stats.bytes:,} bytes, "
        f"{elapsed:.1f} s ({stats.packets / elapsed:,.0f} packets/s), capture span {span:,.0f} s"
    )
    print("conversations started: " + ", ".join(f"{k} {v:,}" for k, v in sorted(fleet.stats.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
