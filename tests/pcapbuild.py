"""Byte-level builders for test captures: packets and pcap/pcapng containers, with struct only.

Hand-built so each test states every byte it depends on (and does not inherit another library's choices).
"""

from __future__ import annotations

import struct

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def ip4(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


def ipv4(
    src: str,
    dst: str,
    proto: int,
    payload: bytes,
    ident: int = 1,
    frag: int = 0,
    total: int | None = None,
    ttl: int = 64,
) -> bytes:
    length = 20 + len(payload) if total is None else total
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, ident, frag, ttl, proto, 0, ip4(src), ip4(dst)) + payload


def ipv6(src: bytes, dst: bytes, next_header: int, payload: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, 64, src, dst) + payload


def tcp(
    sport: int,
    dport: int,
    seq: int,
    ack: int = 0,
    flags: int = ACK,
    payload: bytes = b"",
    window: int = 65535,
) -> bytes:
    return (
        struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, window, 0, 0)
        + payload
    )


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ether(payload: bytes, ethertype: int = 0x0800, vlans: tuple[int, ...] = ()) -> bytes:
    tags = b"".join(struct.pack("!HH", tpid, 100) for tpid in vlans)
    return MAC_B + MAC_A + tags + struct.pack("!H", ethertype) + payload


def pcap(
    packets: list[tuple[int, bytes]],
    linktype: int = 1,
    nano: bool = False,
    big_endian: bool = False,
    snaplen: int = 65535,
    orig_lens: dict[int, int] | None = None,
) -> bytes:
    """A classic pcap file; ``packets`` are (timestamp ns, frame bytes)."""
    o = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(o + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for i, (ts, data) in enumerate(packets):
        sec, ns = divmod(ts, 1_000_000_000)
        frac = ns if nano else ns // 1000
        orig = (orig_lens or {}).get(i, len(data))
        out.append(struct.pack(o + "IIII", sec, frac, len(data), orig) + data)
    return b"".join(out)


def _block(btype: int, body: bytes, o: str = "<") -> bytes:
    body += b"\x00" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(o + "II", btype, n) + body + struct.pack(o + "I", n)


def _option(code: int, value: bytes, o: str = "<") -> bytes:
    return struct.pack(o + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def shb(o: str = "<") -> bytes:
    return _block(0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, 1, 0, -1), o)


def idb(linktype: int, tsresol: int | None = None, snaplen: int = 0, o: str = "<") -> bytes:
    opts = b""
    if tsresol is not None:
        opts += _option(9, bytes([tsresol]), o)
    if opts:
        opts += _option(0, b"", o)
    return _block(1, struct.pack(o + "HHI", linktype, 0, snaplen) + opts, o)


def epb(iface: int, units: int, data: bytes, orig: int | None = None, o: str = "<") -> bytes:
    return _block(
        6,
        struct.pack(
            o + "IIIII",
            iface,
            units >> 32,
            units & 0xFFFFFFFF,
            len(data),
            len(data) if orig is None else orig,
        )
        + data,
        o,
    )


def spb(data: bytes, o: str = "<") -> bytes:
    return _block(3, struct.pack(o + "I", len(data)) + data, o)


def dsb(secret_type: int, data: bytes, o: str = "<") -> bytes:
    return _block(0x0A, struct.pack(o + "II", secret_type, len(data)) + data, o)


def custom_block(o: str = "<", body: bytes = b"vendor data") -> bytes:
    return _block(0x00000BAD, body, o)


def ws_upgrade(station: str, subprotocol: str = "ocpp1.6") -> tuple[bytes, bytes]:
    """A WebSocket upgrade request for ``station`` (RFC 6455's sample key) and the CSMS's 101 answer."""
    request = (
        f"GET /ocpp/{station} HTTP/1.1\r\nHost: csms.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
    ).encode()
    response = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
    ).encode()
    return request, response


class TcpTalk:
    """The Ethernet frames of one IPv4 TCP connection, segment by segment (``send``), with sequence numbers kept;
    ``frames`` is ready for ``pcap``."""

    def __init__(self, client: str, server: str, sport: int, dport: int, step_ns: int = 10**9) -> None:
        self.ends = {True: (client, server, sport, dport), False: (server, client, dport, sport)}
        self.seq = {True: 1000, False: 5000}
        self.step_ns = step_ns
        self.frames: list[tuple[int, bytes]] = []

    def send(self, to_server: bool, flags: int, data: bytes = b"") -> None:
        src, dst, sport, dport = self.ends[to_server]
        ack = self.seq[not to_server] if flags & ACK else 0
        seg = tcp(sport, dport, self.seq[to_server], ack, flags, data)
        self.seq[to_server] += len(data) + (1 if flags & (SYN | FIN) else 0)
        self.frames.append((1_800_000_000 * 10**9 + len(self.frames) * self.step_ns, ether(ipv4(src, dst, 6, seg))))

    def open(self, upgrade: tuple[bytes, bytes]) -> None:
        """The handshake, then the upgrade request and its answer."""
        self.send(True, SYN)
        self.send(False, SYN | ACK)
        self.send(True, ACK)
        self.send(True, ACK | PSH, upgrade[0])
        self.send(False, ACK | PSH, upgrade[1])
