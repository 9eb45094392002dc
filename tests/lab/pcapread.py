"""A small pcap reader that finds failure frames without tshark.

The lab locates each failure frame with this code and then checks it with tshark (``truth.py``): two
independent readings of the same capture must agree. Only what the lab produces is supported: classic pcap,
link types Ethernet (``-i lo``), Linux cooked v1/v2 (``-i any``), IPv4/IPv6, TCP/UDP/ICMP, in-order TCP.

Frame numbers are 1-based like Wireshark's. A PDU spread over several segments (TLS record, HTTP response,
WebSocket frame) is reported at the frame that completes it, which is where Wireshark shows it.
"""

from __future__ import annotations

import ipaddress
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LINKTYPES = {1: "EN10MB", 113: "LINUX_SLL", 276: "LINUX_SLL2"}
SYN, RST, FIN, ACK = 0x02, 0x04, 0x01, 0x10


@dataclass
class Packet:
    no: int
    ts: float
    proto: str  # tcp | udp | icmp | icmp6 | other
    src: str = ""
    dst: str = ""
    sport: int = 0
    dport: int = 0
    flags: int = 0
    seq: int = 0
    ack: int = 0
    payload: bytes = b""
    icmp_type: int = -1


def read_pcap(path: Path) -> tuple[int, list[Packet]]:
    data = path.read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0xFFFF
    pos, no, out = 24, 0, []
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack_from(order + "IIII", data, pos)
        frame = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        no += 1
        out.append(_decode(no, sec + frac / (1e9 if nano else 1e6), linktype, frame))
    return linktype, out


def _decode(no: int, ts: float, linktype: int, frame: bytes) -> Packet:
    if linktype == 1:
        etype, off = struct.unpack_from("!H", frame, 12)[0], 14
    elif linktype == 113:
        etype, off = struct.unpack_from("!H", frame, 14)[0], 16
    elif linktype == 276:
        etype, off = struct.unpack_from("!H", frame, 0)[0], 20
    else:
        raise ValueError(f"unsupported link type {linktype}")
    pkt = Packet(no, ts, "other")
    if etype == 0x0800:
        ihl = (frame[off] & 0x0F) * 4
        proto = frame[off + 9]
        pkt.src = str(ipaddress.IPv4Address(frame[off + 12 : off + 16]))
        pkt.dst = str(ipaddress.IPv4Address(frame[off + 16 : off + 20]))
        total = struct.unpack_from("!H", frame, off + 2)[0]
        body = frame[off + ihl : off + total]
    elif etype == 0x86DD:
        proto = frame[off + 6]
        pkt.src = str(ipaddress.IPv6Address(frame[off + 8 : off + 24]))
        pkt.dst = str(ipaddress.IPv6Address(frame[off + 24 : off + 40]))
        body = frame[off + 40 : off + 40 + struct.unpack_from("!H", frame, off + 4)[0]]
    else:
        return pkt
    if proto == 6:
        pkt.proto = "tcp"
        pkt.sport, pkt.dport, pkt.seq, pkt.ack = struct.unpack_from("!HHII", body, 0)
        doff = (body[12] >> 4) * 4
        pkt.flags = body[13]
        pkt.payload = body[doff:]
    elif proto == 17:
        pkt.proto = "udp"
        pkt.sport, pkt.dport = struct.unpack_from("!HH", body, 0)
        pkt.payload = body[8:]
    elif proto in (1, 58):
        pkt.proto = "icmp" if proto == 1 else "icmp6"
        pkt.icmp_type = body[0]
        pkt.payload = body
    return pkt


# -- TCP streams --------------------------------------------------------------------------------------------
@dataclass
class Half:
    """One direction of a TCP connection: its bytes and which frame delivered each stretch."""

    base: int | None = None
    data: bytearray = field(default_factory=bytearray)
    ends: list[tuple[int, int]] = field(default_factory=list)  # (end offset, frame no)

    def add(self, pkt: Packet) -> None:
        if pkt.flags & SYN:
            self.base = pkt.seq + 1
            return
        if self.base is None or not pkt.payload:
            return
        off = (pkt.seq - self.base) % 2**32
        if off > len(self.data):
            return  # a gap: not expected on loopback
        new = pkt.payload[len(self.data) - off :]
        if new:
            self.data += new
            self.ends.append((len(self.data), pkt.no))

    def frame_at(self, offset: int) -> int:
        """The frame that delivered byte ``offset``."""
        for end, no in self.ends:
            if offset < end:
                return no
        raise IndexError(offset)


@dataclass
class Conn:
    client: tuple[str, int]
    server: tuple[str, int]
    syn_frame: int
    up: Half = field(default_factory=Half)  # client -> server
    down: Half = field(default_factory=Half)  # server -> client


def connections(packets: list[Packet], port: int) -> list[Conn]:
    """TCP connections to ``port`` in the order their first SYN appears."""
    conns: dict[tuple[tuple[str, int], tuple[str, int]], Conn] = {}
    for p in packets:
        if p.proto != "tcp":
            continue
        if p.dport == port:
            key = ((p.src, p.sport), (p.dst, p.dport))
            if key not in conns and p.flags & SYN:
                conns[key] = Conn(key[0], key[1], p.no)
            if key in conns:
                conns[key].up.add(p)
        elif p.sport == port:
            key = ((p.dst, p.dport), (p.src, p.sport))
            if key in conns:
                conns[key].down.add(p)
    return list(conns.values())


# -- PDUs ---------------------------------------------------------------------------------------------------
@dataclass
class Pdu:
    frame: int
    kind: str  # http | ws | tls
    info: dict[str, Any]


def http_message(half: Half) -> tuple[Pdu | None, int]:
    """The HTTP request or response at the start of ``half``; returns it and the offset after it."""
    end = half.data.find(b"\r\n\r\n")
    if end < 0:
        return None, 0
    head = bytes(half.data[:end]).decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    stop = end + 4 + int(headers.get("content-length", "0"))
    first = head[0].split(" ", 2)
    info: dict[str, Any] = {"first_line": head[0], "headers": headers}
    if first[0].startswith("HTTP/"):
        info["status"] = int(first[1])
    return Pdu(half.frame_at(min(stop, len(half.data)) - 1), "http", info), stop


def ws_frames(half: Half, start: int) -> Iterator[Pdu]:
    d, pos = half.data, start
    while pos + 2 <= len(d):
        b0, b1 = d[pos], d[pos + 1]
        length, hdr = b1 & 0x7F, 2
        if length == 126:
            length, hdr = struct.unpack_from("!H", d, pos + 2)[0], 4
        elif length == 127:
            length, hdr = struct.unpack_from("!Q", d, pos + 2)[0], 10
        mask = b""
        if b1 & 0x80:
            mask, hdr = bytes(d[pos + hdr : pos + hdr + 4]), hdr + 4
        if pos + hdr + length > len(d):
            return
        body = bytes(d[pos + hdr : pos + hdr + length])
        if mask:
            body = bytes(c ^ mask[i % 4] for i, c in enumerate(body))
        info: dict[str, Any] = {"opcode": b0 & 0x0F}
        if info["opcode"] == 1:
            info["text"] = body.decode("utf-8", "replace")
            try:
                info["json"] = json.loads(body)
            except ValueError:
                info["json"] = None
        elif info["opcode"] == 8 and len(body) >= 2:
            info["close_code"] = struct.unpack_from("!H", body)[0]
            info["close_reason"] = body[2:].decode("utf-8", "replace")
        pos += hdr + length
        yield Pdu(half.frame_at(pos - 1), "ws", info)


def tls_records(half: Half) -> Iterator[Pdu]:
    d, pos = half.data, 0
    while pos + 5 <= len(d):
        ctype, version, length = struct.unpack_from("!BHH", d, pos)
        if pos + 5 + length > len(d):
            return
        body = bytes(d[pos + 5 : pos + 5 + length])
        info: dict[str, Any] = {"content_type": ctype, "version": version, "length": length}
        if ctype == 21 and length == 2:
            info["alert_level"], info["alert"] = body[0], body[1]
        if ctype == 22 and body:
            info["handshake"] = body[0]
            if body[0] in (1, 2):
                info.update(_hello(body))
        pos += 5 + length
        yield Pdu(half.frame_at(pos - 1), "tls", info)


def _hello(body: bytes) -> dict[str, Any]:
    """SNI and versions from a ClientHello (1) or ServerHello (2) in its first record."""
    out: dict[str, Any] = {"legacy_version": struct.unpack_from("!H", body, 4)[0]}
    try:
        pos = 4 + 2 + 32
        pos += 1 + body[pos]  # session id
        if body[0] == 1:
            pos += 2 + struct.unpack_from("!H", body, pos)[0]  # cipher suites
            pos += 1 + body[pos]  # compression
        else:
            pos += 3
        end = pos + 2 + struct.unpack_from("!H", body, pos)[0]
        pos += 2
        while pos + 4 <= end:
            etype, elen = struct.unpack_from("!HH", body, pos)
            ext = body[pos + 4 : pos + 4 + elen]
            if etype == 0 and body[0] == 1:
                out["sni"] = ext[5 : 5 + struct.unpack_from("!H", ext, 3)[0]].decode()
            elif etype == 43:
                if body[0] == 1:
                    out["supported_versions"] = [struct.unpack_from("!H", ext, 1 + i)[0] for i in range(0, ext[0], 2)]
                else:
                    out["selected_version"] = struct.unpack_from("!H", ext)[0]
            pos += 4 + elen
    except (IndexError, struct.error, UnicodeDecodeError):
        pass
    return out


def dns_messages(packets: list[Packet]) -> Iterator[tuple[Packet, dict[str, Any]]]:
    for p in packets:
        if p.proto != "udp" or 53 not in (p.sport, p.dport) or len(p.payload) < 12:
            continue
        ident, flags, qd, an = struct.unpack_from("!HHHH", p.payload)
        labels, pos = [], 12
        while pos < len(p.payload) and p.payload[pos]:
            labels.append(p.payload[pos + 1 : pos + 1 + p.payload[pos]].decode("ascii", "replace"))
            pos += 1 + p.payload[pos]
        qtype = struct.unpack_from("!H", p.payload, pos + 1)[0] if qd else 0
        yield (
            p,
            {
                "id": ident,
                "response": bool(flags & 0x8000),
                "rcode": flags & 0x0F,
                "answers": an,
                "name": ".".join(labels),
                "qtype": qtype,
            },
        )
