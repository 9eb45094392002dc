"""A fuzz campaign: ``ghostcap analyze`` on mutated sample captures and crafted hostile cases.

Each case is one ``ghostcap analyze CASE -o DIR --format json,md,html`` subprocess with a time limit and an address
space limit, classified as: ok, crash (a traceback, an exit status outside 0 1 3 4, or 5 = internal error), hang
(time limit), over-memory (``MemoryError`` or killed under the memory limit), lost report (exit 0, 1 or 4 but a
report file missing) or non-strict JSON (``NaN``/``Infinity`` or not JSON at all). Failing cases are saved, with
their stderr, to ``--out``. Case ``i`` depends only on ``--seed`` and ``i``: a run is reproducible whatever
``--jobs`` is.

    python bench/fuzz.py --cases 2000 --seed 1 --jobs 2 --out bench/out/fuzz
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import lzma
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
MAX_SEED_BYTES = 12_000  # small captures only: a case must run in seconds
STATUSES = ("ok", "crash", "hang", "over-memory", "lost report", "non-strict JSON")

# -- pcap / pcapng building and parsing ----------------------------------------------------------------------------

PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}


@dataclass
class Pcap:
    header: bytes
    order: str
    records: list[tuple[bytes, bytes]]  # (16-byte record header, data)

    def build(self) -> bytes:
        return self.header + b"".join(h + d for h, d in self.records)


def parse_pcap(data: bytes) -> Pcap | None:
    order = PCAP_MAGICS.get(data[:4])
    if order is None or len(data) < 24:
        return None
    records = []
    pos = 24
    while pos + 16 <= len(data):
        incl = struct.unpack_from(order + "I", data, pos + 8)[0]
        if pos + 16 + incl > len(data):
            break
        records.append((data[pos : pos + 16], data[pos + 16 : pos + 16 + incl]))
        pos += 16 + incl
    return Pcap(data[:24], order, records)


def record_header(order: str, sec: int, frac: int, incl: int, orig: int) -> bytes:
    return struct.pack(order + "IIII", sec & 0xFFFFFFFF, frac & 0xFFFFFFFF, incl & 0xFFFFFFFF, orig & 0xFFFFFFFF)


def block(btype: int, body: bytes, o: str = "<") -> bytes:
    body += b"\x00" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(o + "II", btype, n) + body + struct.pack(o + "I", n)


def option(code: int, value: bytes, o: str = "<") -> bytes:
    return struct.pack(o + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def shb(o: str = "<") -> bytes:
    return block(0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, 1, 0, -1), o)


def idb(linktype: int = 1, opts: bytes = b"", snaplen: int = 0, o: str = "<") -> bytes:
    return block(1, struct.pack(o + "HHI", linktype, 0, snaplen) + opts, o)


def epb(data: bytes, units: int, iface: int = 0, orig: int | None = None, o: str = "<") -> bytes:
    hdr = struct.pack(o + "IIIII", iface, units >> 32 & 0xFFFFFFFF, units & 0xFFFFFFFF, len(data), orig or len(data))
    return block(6, hdr + data, o)


def to_pcapng(p: Pcap, o: str = "<") -> bytes:
    linktype = struct.unpack_from(p.order + "I", p.header, 20)[0] & 0xFFFF
    nano = p.header[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    out = [shb(o), idb(linktype, option(9, bytes([9 if nano else 6]), o) + option(0, b"", o), o=o)]
    for h, d in p.records:
        sec, frac, _incl, orig = struct.unpack(p.order + "IIII", h)
        out.append(epb(d, sec * (10**9 if nano else 10**6) + frac, orig=orig, o=o))
    return b"".join(out)


def pcapng_blocks(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each well-formed little-endian block."""
    out = []
    pos = 0
    while pos + 12 <= len(data):
        blen = struct.unpack_from("<I", data, pos + 4)[0]
        if blen < 12 or pos + blen > len(data):
            break
        out.append((pos, blen))
        pos += blen
    return out


# -- packet building -----------------------------------------------------------------------------------------------


def csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src: str, dst: str, proto: int, payload: bytes, ident: int = 1, frag: int = 0) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0, ip(src), ip(dst))
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + payload


def ip(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


def tcp(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0) + (
        payload
    )


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ether(payload: bytes, ethertype: int = 0x0800) -> bytes:
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", ethertype) + payload


def pcap_file(frames: list[bytes], linktype: int = 1, t0: int = 1_700_000_000) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for i, f in enumerate(frames):
        out.append(struct.pack("<IIII", t0 + i // 1000, (i % 1000) * 1000, len(f), len(f)) + f)
    return b"".join(out)


C, S = "10.0.0.2", "10.0.0.1"


def tcp_session(client: list[bytes], server: list[bytes], port: int = 80, cport: int = 40000) -> list[bytes]:
    """A handshake, then client and server payloads alternately, each acknowledged."""
    frames = [
        ether(ipv4(C, S, 6, tcp(cport, port, 1000, 0, 0x02))),
        ether(ipv4(S, C, 6, tcp(port, cport, 5000, 1001, 0x12))),
        ether(ipv4(C, S, 6, tcp(cport, port, 1001, 5001, 0x10))),
    ]
    cs, ss = 1001, 5001
    for i in range(max(len(client), len(server))):
        for k in range(0, len(client[i]) if i < len(client) else 0, 1400):
            piece = client[i][k : k + 1400]
            frames.append(ether(ipv4(C, S, 6, tcp(cport, port, cs, ss, 0x18, piece))))
            cs += len(piece)
        for k in range(0, len(server[i]) if i < len(server) else 0, 1400):
            piece = server[i][k : k + 1400]
            frames.append(ether(ipv4(S, C, 6, tcp(port, cport, ss, cs, 0x18, piece))))
            ss += len(piece)
    frames.append(ether(ipv4(C, S, 6, tcp(cport, port, cs, ss, 0x11))))
    return frames


def ws_frame(payload: bytes, opcode: int = 1, mask: bool = True, fin: bool = True, rsv: int = 0, length=None) -> bytes:
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
    m = 0x80 if mask else 0
    if n < 126:
        hdr = bytes([b0, m | n])
    elif n < 1 << 16:
        hdr = bytes([b0, m | 126]) + struct.pack("!H", n)
    else:
        hdr = bytes([b0, m | 127]) + struct.pack("!Q", n)
    if mask:
        key = b"\x01\x02\x03\x04"
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
        hdr += key
    return hdr + payload


UPGRADE = (
    b"GET /ocpp/CP-FUZZ-1 HTTP/1.1\r\nHost: csms\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: ocpp1.6\r\n"
)
UPGRADE_OK = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: ocpp1.6\r\n"
)


def ocpp_session(client_msgs: list[bytes], server_msgs: list[bytes], deflate: bool = False) -> bytes:
    ext = b"Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else b""
    client = [UPGRADE + ext + b"\r\n", *client_msgs]
    server = [UPGRADE_OK + ext + b"\r\n", *server_msgs]
    return pcap_file(tcp_session(client, server, port=8080))


def dns_query(name: bytes, qid: int = 0x1234) -> bytes:
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + name + b"\x00\x01\x00\x01"


def tls_record(ct: int, body: bytes, length: int | None = None) -> bytes:
    return struct.pack("!BHH", ct, 0x0303, len(body) if length is None else length) + body


def handshake(ht: int, body: bytes, length: int | None = None) -> bytes:
    n = len(body) if length is None else length
    return bytes([ht]) + n.to_bytes(3, "big") + body


def client_hello(exts: bytes = b"", ext_len: int | None = None) -> bytes:
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    body += struct.pack("!H", len(exts) if ext_len is None else ext_len) + exts
    return handshake(1, body)


def sni(name: bytes) -> bytes:
    inner = b"\x00" + struct.pack("!H", len(name)) + name
    lst = struct.pack("!H", len(inner)) + inner
    return struct.pack("!HH", 0, len(lst)) + lst


# -- crafted hostile cases -----------------------------------------------------------------------------------------


def crafted_cases() -> list[tuple[str, bytes]]:
    """Deterministic hand-made cases: container corner cases and hostile protocol content."""
    hb = b'[2,"1","Heartbeat",{}]'
    pcap_hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    cases: list[tuple[str, bytes]] = [
        ("empty", b""),
        ("pcap_magic_only", pcap_hdr[:4]),
        ("pcap_header_only", pcap_hdr),
        ("pcap_partial_record_header", pcap_hdr + b"\x00" * 7),
        ("pcap_record_len_max", pcap_hdr + struct.pack("<IIII", 1, 0, 0xFFFFFFFF, 0xFFFFFFFF)),
        ("pcap_record_len_16MiB", pcap_hdr + struct.pack("<IIII", 1, 0, 1 << 24, 1 << 24) + b"x" * 100),
        ("pcap_zero_records_64k", pcap_hdr + bytes(70_000)),
        ("pcap_snaplen_0", struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 0, 1)),
        ("pcap_ts_max", pcap_file([ether(ipv4(C, S, 17, udp(1, 53, dns_query(b"\x01a\x00"))))], t0=0xFFFFFFFF)),
        ("pcapng_shb_only", shb()),
        ("pcapng_shb_cut", shb()[:20]),
        ("pcapng_bad_bom", block(0x0A0D0D0A, struct.pack("<IHHq", 0x11223344, 1, 0, -1))),
        ("pcapng_shb_big_endian_empty", shb(">")),
        ("pcapng_block_len_13", shb() + struct.pack("<II", 6, 13) + bytes(5)),
        ("pcapng_block_len_huge", shb() + struct.pack("<II", 6, 0xFFFFFFFC) + bytes(20)),
        ("pcapng_trailer_mismatch", shb() + idb() + block(6, bytes(24))[:-4] + b"\xff\xff\xff\xff"),
        ("pcapng_epb_no_idb", shb() + epb(b"x", 0)),
        ("pcapng_epb_caplen_lies", shb() + idb() + block(6, struct.pack("<IIIII", 0, 0, 0, 1000, 1000) + b"ab")),
        ("pcapng_spb_no_idb", shb() + block(3, struct.pack("<I", 10) + bytes(10))),
        ("pcapng_spb_orig_huge", shb() + idb() + block(3, struct.pack("<I", 0xFFFFFFFF) + bytes(8))),
        ("pcapng_idb_empty_body", shb() + block(1, b"")),
        ("pcapng_epb_empty_body", shb() + idb() + block(6, b"")),
        ("pcapng_pb_empty_body", shb() + idb() + block(2, b"")),
        ("pcapng_dsb_empty_body", shb() + idb() + block(10, b"")),
        ("pcapng_dsb_len_lies", shb() + idb() + block(10, struct.pack("<II", 0x544C534B, 0xFFFFFF00) + b"CLIENT")),
        ("pcapng_dsb_garbage_keylog", shb() + idb() + block(10, struct.pack("<II", 0x544C534B, 40) + bytes(40))),
        ("pcapng_tsresol_0x7f", shb() + idb(1, option(9, b"\x7f")) + epb(ether(b""), 1 << 60)),
        ("pcapng_tsresol_0xff", shb() + idb(1, option(9, b"\xff")) + epb(ether(b""), (1 << 64) - 1)),
        ("pcapng_tsoffset_max", shb() + idb(1, option(14, struct.pack("<q", (1 << 63) - 1))) + epb(ether(b""), 5)),
        ("pcapng_tsoffset_min", shb() + idb(1, option(14, struct.pack("<q", -(1 << 63)))) + epb(ether(b""), 5)),
        ("pcapng_option_len_lies", shb() + block(1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 9, 60000))),
        ("pcapng_many_idb", shb() + idb() * 5000 + epb(ether(b""), 1, iface=4999)),
    ]
    for lt in (0, 9, 12, 101, 105, 113, 127, 228, 229, 239, 276, 65535):
        cases.append((f"linktype_{lt}_garbage", pcap_file([bytes(range(i, i + 60)) for i in range(10)], linktype=lt)))
        cases.append((f"linktype_{lt}_short", pcap_file([b"\x45", b"", b"\x60\x00"], linktype=lt)))
    # IP layer
    frag = [ether(ipv4(C, S, 17, bytes(range(40)) * 2, ident=7, frag=0x2000 | (i * 2))) for i in (0, 3, 1, 1, 8190, 2)]
    cases.append(("ip_fragments_overlapping", pcap_file(frag)))
    cases.append(("ip_fragment_offset_max", pcap_file([ether(ipv4(C, S, 6, bytes(64), ident=9, frag=0x1FFF))])))
    cases.append(("ip_total_len_lies", pcap_file([ether(b"\x45\x00\xff\xff" + bytes(30))])))
    cases.append(("ip_ihl_lies", pcap_file([ether(b"\x4f" + bytes(30)), ether(b"\x41" + bytes(30))])))
    cases.append(
        ("ipv6_ext_loop", pcap_file([ether(b"\x60" + bytes(3) + b"\x00\x40\x00\x40" + bytes(32) + bytes(64), 0x86DD)]))
    )
    cases.append(("vlan_stack", pcap_file([ether(b"\x00\x01\x81\x00" * 200 + b"\x00\x01\x08\x00", 0x8100)])))
    # TCP
    cases.append(
        ("tcp_data_offset_lies", pcap_file([ether(ipv4(C, S, 6, struct.pack("!HHIIBB", 1, 2, 3, 4, 0xF0, 2)))]))
    )
    seg = [ether(ipv4(C, S, 6, tcp(40000, 8080, 2000 + 3000 - i * 3, 0, 0x18, b"abc"))) for i in range(1000)]
    cases.append(("tcp_ooo_1000_reverse", pcap_file(tcp_session([], [])[:3] + seg)))
    cases.append(
        (
            "tcp_seq_wrap",
            pcap_file([ether(ipv4(C, S, 6, tcp(40000, 80, 0xFFFFFFF0 + i * 8, 0, 0x18, bytes(8)))) for i in range(6)]),
        )
    )
    cases.append(
        ("tcp_syn_flood_small", pcap_file([ether(ipv4(C, S, 6, tcp(1024 + i, 443, i, 0, 0x02))) for i in range(3000)]))
    )
    # DNS
    loop = (
        struct.pack("!HHHHHH", 1, 0x8180, 1, 1, 0, 0)
        + b"\xc0\x0c\x00\x01\x00\x01"
        + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x10\x00\x04\x01\x02\x03\x04"
    )
    cases.append(("dns_pointer_loop", pcap_file([ether(ipv4(S, C, 17, udp(53, 5353, loop)))])))
    long_name = b"".join(b"\x3f" + b"a" * 63 for _ in range(6)) + b"\x00"
    cases.append(("dns_name_too_long", pcap_file([ether(ipv4(C, S, 17, udp(5353, 53, dns_query(long_name))))])))
    cases.append(
        (
            "dns_counts_lie",
            pcap_file(
                [ether(ipv4(C, S, 17, udp(5353, 53, struct.pack("!HHHHHH", 1, 0, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF))))]
            ),
        )
    )
    qs = [ether(ipv4(C, S, 17, udp(1000 + i % 60000, 53, dns_query(b"\x04csms\x03com\x00", i)))) for i in range(3000)]
    cases.append(("dns_3000_unanswered", pcap_file(qs)))
    tcp_dns = struct.pack("!H", 0xFFFF) + dns_query(b"\x01a\x00")
    cases.append(("dns_tcp_length_lies", pcap_file(tcp_session([tcp_dns], [], port=53))))
    # TLS
    cases.append(("tls_record_len_max", pcap_file(tcp_session([tls_record(22, b"\x01", 0xFFFF)], [], port=443))))
    cases.append(
        (
            "tls_handshake_len_lies",
            pcap_file(tcp_session([tls_record(22, handshake(1, b"\x03\x03", 0xFFFFFF))], [], port=443)),
        )
    )
    cases.append(
        (
            "tls_hello_ext_len_lies",
            pcap_file(tcp_session([tls_record(22, client_hello(sni(b"csms"), 0xFFFF))], [], port=443)),
        )
    )
    cases.append(
        (
            "tls_sni_garbage",
            pcap_file(tcp_session([tls_record(22, client_hello(sni(bytes(range(256)))))], [], port=443)),
        )
    )
    hs = handshake(11, b"\x00" * 3)
    cases.append(
        (
            "tls_handshake_fragmented_1byte",
            pcap_file(tcp_session([tls_record(22, hs[i : i + 1]) for i in range(len(hs))], [], port=443)),
        )
    )
    big = handshake(11, (0xFFFFF0).to_bytes(3, "big") + bytes(16000))
    cases.append(
        (
            "tls_certificate_len_lies",
            pcap_file(
                tcp_session([], [tls_record(22, big[i : i + 16000]) for i in range(0, len(big), 16000)], port=443)
            ),
        )
    )
    cert_list = b"".join((200).to_bytes(3, "big") + b"\x30\x81\xc5" + bytes(197) for _ in range(60))
    cases.append(
        (
            "tls_certificates_garbage_60",
            pcap_file(
                tcp_session(
                    [], [tls_record(22, handshake(11, len(cert_list).to_bytes(3, "big") + cert_list))], port=443
                )
            ),
        )
    )
    cases.append(("tls_alert_flood", pcap_file(tcp_session([tls_record(21, b"\x02\x28") * 2000], [], port=443))))
    # HTTP upgrade
    cases.append(
        (
            "http_header_flood",
            pcap_file(tcp_session([b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 9000 + b"\r\n"], [], port=8080)),
        )
    )
    cases.append(("http_no_crlf_64k", pcap_file(tcp_session([b"GET /" + b"a" * 70_000], [], port=8080))))
    cases.append(
        (
            "http_chunked_len_huge",
            pcap_file(
                tcp_session(
                    [UPGRADE + b"\r\n"],
                    [b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\nab"],
                    port=8080,
                )
            ),
        )
    )
    cases.append(
        (
            "http_content_length_neg",
            pcap_file(
                tcp_session([UPGRADE + b"\r\n"], [b"HTTP/1.1 400 Bad\r\nContent-Length: -5\r\n\r\nab"], port=8080)
            ),
        )
    )
    cases.append(("http_status_999_then_frames", ocpp_session([ws_frame(hb)], [b"HTTP/1.1 999 X\r\n\r\n"])))
    cases.append(("http_pipelined_1000", pcap_file(tcp_session([UPGRADE + b"\r\n"] * 1000, [], port=8080))))
    # WebSocket
    cases.append(("ws_len_2p63", ocpp_session([ws_frame(hb, length=(1 << 63) - 1)], [])))
    cases.append(("ws_len_2p64_minus1", ocpp_session([ws_frame(hb, length=(1 << 64) - 1)], [])))
    cases.append(("ws_control_too_long", ocpp_session([ws_frame(bytes(200), opcode=9)], [])))
    cases.append(("ws_reserved_opcodes", ocpp_session([ws_frame(b"x", opcode=o) for o in range(16)], [])))
    cases.append(
        (
            "ws_continuation_flood",
            ocpp_session([ws_frame(b"[", fin=False)] + [ws_frame(b"1,", opcode=0, fin=False)] * 2000, []),
        )
    )
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = bomb.compress(b"[" * (20 << 20)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    cases.append(("ws_deflate_bomb_20MiB", ocpp_session([ws_frame(body[:-4], rsv=4)], [], deflate=True)))
    cases.append(("ws_deflate_garbage", ocpp_session([ws_frame(bytes(range(256)), rsv=4)], [], deflate=True)))
    cases.append(("ws_rsv1_without_deflate", ocpp_session([ws_frame(hb, rsv=4)], [])))
    cases.append(
        (
            "ws_close_bad_code",
            ocpp_session(
                [ws_frame(b"\x00\x01\xff\xfe", opcode=8)], [ws_frame(b"\x13\x88" + b"\xc3\x28", opcode=8, mask=False)]
            ),
        )
    )

    # OCPP
    def msg(text: bytes, server: bool = False) -> bytes:
        return ws_frame(text, mask=not server)

    cases.append(
        (
            "ocpp_nesting_100k",
            ocpp_session([msg(b'[2,"1","DataTransfer",{"data":' + b"[" * 100_000 + b"]" * 100_000 + b"}]")], []),
        )
    )
    cases.append(
        (
            "ocpp_number_1e999",
            ocpp_session(
                [msg(b'[2,"1","MeterValues",{"connectorId":1e999,"meterValue":[]}]')],
                [msg(b'[3,"1",{"x":-1e999}]', True)],
            ),
        )
    )
    cases.append(("ocpp_huge_int", ocpp_session([msg(b'[2,"1","Heartbeat",{"n":' + b"9" * 5000 + b"}]")], [])))
    cases.append(
        (
            "ocpp_lone_surrogate",
            ocpp_session(
                [msg(b'[2,"\\ud800","BootNotification",{"chargePointVendor":"\\udfff","chargePointModel":"x"}]')],
                [msg(b'[3,"\\ud800",{"status":"Accepted","currentTime":"\\ud83d","interval":1}]', True)],
            ),
        )
    )
    cases.append(
        (
            "ocpp_invalid_utf8",
            ocpp_session(
                [msg(b'[2,"1","BootNotification",{"chargePointVendor":"\xff\xfe","chargePointModel":"\xc0\x80"}]')], []
            ),
        )
    )
    cases.append(
        (
            "ocpp_bad_times",
            ocpp_session(
                [msg(b'[2,"1","BootNotification",{"chargePointVendor":"v","chargePointModel":"m"}]')],
                [msg(b'[3,"1",{"status":"Accepted","currentTime":"99999-13-45T99:99:99Z","interval":-1e308}]', True)],
            ),
        )
    )
    cases.append(
        (
            "ocpp_wrong_types",
            ocpp_session(
                [msg(b"[2,1,2,3]"), msg(b"[3,{},[]]"), msg(b"[4,null,null,null,null]"), msg(b'"x"'), msg(b"{}")], []
            ),
        )
    )
    calls = [msg(b'[2,"%d","Heartbeat",{}]' % i) for i in range(3000)]
    cases.append(("ocpp_3000_unanswered_calls", ocpp_session(calls, [])))
    cases.append(
        (
            "ocpp_dup_ids",
            ocpp_session(
                [msg(b'[2,"1","Heartbeat",{}]')] * 50,
                [msg(b'[3,"1",{"currentTime":"2024-01-01T00:00:00Z"}]', True)] * 50,
            ),
        )
    )
    cases.append(
        (
            "ocpp_control_chars",
            ocpp_session(
                [
                    msg(
                        b'[2,"1","StatusNotification",{"connectorId":1,"errorCode":"=cmd|\\u0000\\r\\n<script>","status":"Faulted","info":"\\u202e\\u0007"}]'
                    )
                ],
                [],
            ),
        )
    )
    return cases


# -- mutations -----------------------------------------------------------------------------------------------------

INTERESTING32 = (0, 1, 15, 16, 17, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000, 1 << 24, (1 << 24) + 1, 0x7FFFFFFF, 0xFFFFFFFF)


def m_truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)] if data else data


def m_bitflip(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 8, 32))):
        if b:
            p = rng.randrange(len(b))
            b[p] ^= 1 << rng.randrange(8)
    return bytes(b)


def m_bytes_interesting(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if b:
            b[rng.randrange(len(b))] = rng.choice((0, 1, 0x7F, 0x80, 0xFE, 0xFF, 0x20, 0x5B, 0x22))
    return bytes(b)


def m_payload_flip(rng: random.Random, data: bytes) -> bytes:
    """Damage bytes inside records only (the container stays valid, so the protocol decoders see it)."""
    p = parse_pcap(data)
    if not p or not p.records:
        return m_bitflip(rng, data)
    for _ in range(rng.randint(1, 10)):
        i = rng.randrange(len(p.records))
        h, d = p.records[i]
        if len(d) > 34:
            b = bytearray(d)
            lo = 34 if rng.random() < 0.8 else 0  # mostly beyond Ethernet + IPv4
            pos = rng.randrange(lo, len(b))
            if rng.random() < 0.5:
                b[pos] ^= 1 << rng.randrange(8)
            else:
                b[pos] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
            p.records[i] = (h, bytes(b))
    return p.build()


def m_payload_splice(rng: random.Random, data: bytes) -> bytes:
    """Insert or delete bytes inside a record (record length kept true): shifts every later field."""
    p = parse_pcap(data)
    if not p or not p.records:
        return m_truncate(rng, data)
    i = rng.randrange(len(p.records))
    h, d = p.records[i]
    pos = rng.randrange(len(d) + 1)
    if rng.random() < 0.5:
        d = d[:pos] + rng.randbytes(rng.randint(1, 64)) + d[pos:]
    else:
        d = d[:pos] + d[pos + rng.randint(1, 64) :]
    sec, frac, _incl, orig = struct.unpack(p.order + "IIII", h)
    p.records[i] = (record_header(p.order, sec, frac, len(d), max(orig, len(d))), d)
    return p.build()


def m_lying_record_length(rng: random.Random, data: bytes) -> bytes:
    p = parse_pcap(data)
    if not p or not p.records:
        return m_bitflip(rng, data)
    i = rng.randrange(len(p.records))
    h, d = p.records[i]
    sec, frac, incl, orig = struct.unpack(p.order + "IIII", h)
    new = rng.choice((*INTERESTING32, incl + 1, incl - 1, incl * 2, incl + rng.randint(1, 3000)))
    if rng.random() < 0.7:
        incl = new
    else:
        orig = new
    p.records[i] = (record_header(p.order, sec, frac, incl, orig), d)
    return p.build()


def m_lying_timestamp(rng: random.Random, data: bytes) -> bytes:
    p = parse_pcap(data)
    if not p or not p.records:
        return m_bitflip(rng, data)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(p.records))
        h, d = p.records[i]
        _sec, _frac, incl, orig = struct.unpack(p.order + "IIII", h)
        sec = rng.choice((0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 946684800, rng.randrange(1 << 32)))
        frac = rng.choice((0, 999_999, 1_000_000, 0xFFFFFFFF))
        p.records[i] = (record_header(p.order, sec, frac, incl, orig), d)
    return p.build()


def m_header_field(rng: random.Random, data: bytes) -> bytes:
    """Change a pcap file header field: magic, version, snaplen or link type."""
    if len(data) < 24:
        return m_bitflip(rng, data)
    b = bytearray(data)
    field = rng.choice(("magic", "snaplen", "linktype", "linktype"))
    o = PCAP_MAGICS.get(data[:4], "<")
    if field == "magic":
        b[:4] = rng.choice(list(PCAP_MAGICS))
    elif field == "snaplen":
        b[16:20] = struct.pack(o + "I", rng.choice(INTERESTING32))
    else:
        b[20:24] = struct.pack(o + "I", rng.choice((0, 1, 9, 101, 105, 113, 127, 228, 229, 239, 276, 0xFFFF, 0x10001)))
    return bytes(b)


def m_append_garbage(rng: random.Random, data: bytes) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        tail = rng.randbytes(rng.randint(1, 2000))
    elif kind == 1:
        tail = b"\n"
    elif kind == 2:
        tail = bytes(rng.randint(1, 70_000))
    else:
        tail = struct.pack("<IIII", 1, 2, rng.choice(INTERESTING32), 60) + rng.randbytes(rng.randint(0, 100))
    return data + tail


def m_duplicate_records(rng: random.Random, data: bytes) -> bytes:
    p = parse_pcap(data)
    if not p or not p.records:
        return m_append_garbage(rng, data)
    for _ in range(rng.randint(1, 5)):
        i = rng.randrange(len(p.records))
        p.records.insert(rng.randrange(len(p.records) + 1), p.records[i])
    return p.build()


def m_reorder_records(rng: random.Random, data: bytes) -> bytes:
    p = parse_pcap(data)
    if not p or len(p.records) < 2:
        return m_bitflip(rng, data)
    if rng.random() < 0.3:
        rng.shuffle(p.records)
    else:
        for _ in range(rng.randint(1, 4)):
            i, j = rng.randrange(len(p.records)), rng.randrange(len(p.records))
            p.records[i], p.records[j] = p.records[j], p.records[i]
    return p.build()


def m_drop_records(rng: random.Random, data: bytes) -> bytes:
    p = parse_pcap(data)
    if not p or not p.records:
        return m_truncate(rng, data)
    for _ in range(rng.randint(1, max(1, len(p.records) // 3))):
        if p.records:
            del p.records[rng.randrange(len(p.records))]
    return p.build()


def m_to_pcapng(rng: random.Random, data: bytes) -> bytes:
    """Rewrite as pcapng, then damage a block length, a block type or the bytes."""
    p = parse_pcap(data)
    if not p:
        return data
    ng = bytearray(to_pcapng(p))
    blocks = pcapng_blocks(bytes(ng))
    what = rng.randrange(5)
    if what == 0 and blocks:
        off, blen = rng.choice(blocks)
        where = off + 4 if rng.random() < 0.6 else off + blen - 4
        ng[where : where + 4] = struct.pack("<I", rng.choice((*INTERESTING32, blen + 4, blen - 4, 12, 28)))
    elif what == 1 and blocks:
        off, _blen = rng.choice(blocks)
        ng[off : off + 4] = struct.pack("<I", rng.choice((1, 2, 3, 5, 6, 10, 0x0A0D0D0A, 0xBAD)))
    elif what == 2 and len(blocks) > 2:  # an EPB field: interface id, caplen, orig len, timestamp
        off, _blen = rng.choice(blocks[2:])
        field = off + 8 + 4 * rng.randrange(5)
        ng[field : field + 4] = struct.pack("<I", rng.choice(INTERESTING32))
    elif what == 3:
        return m_bitflip(rng, bytes(ng))
    return bytes(ng)


def m_concatenate(rng: random.Random, data: bytes, other: bytes) -> bytes:
    kind = rng.randrange(3)
    if kind == 0:
        return data + other  # a second file header where a record should be
    if kind == 1:
        return data + other[24:]  # records of another capture (other times, other flows)
    p, q = parse_pcap(data), parse_pcap(other)
    if not p or not q:
        return data + other
    merged = p.records + q.records
    merged.sort(key=lambda r: struct.unpack(p.order + "II", r[0][:8]))
    return p.header + b"".join(h + d for h, d in merged)


MUTATORS: list[tuple[str, Callable[[random.Random, bytes], bytes]]] = [
    ("truncate", m_truncate),
    ("bitflip", m_bitflip),
    ("bytes", m_bytes_interesting),
    ("payload_flip", m_payload_flip),
    ("payload_flip", m_payload_flip),
    ("payload_flip", m_payload_flip),
    ("payload_splice", m_payload_splice),
    ("payload_splice", m_payload_splice),
    ("record_len", m_lying_record_length),
    ("timestamp", m_lying_timestamp),
    ("header", m_header_field),
    ("garbage", m_append_garbage),
    ("duplicate", m_duplicate_records),
    ("reorder", m_reorder_records),
    ("drop", m_drop_records),
]


def compress(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    codec = rng.choice(("gzip", "gzip", "bz2", "xz", "zstd"))
    if codec == "zstd":
        try:
            import zstandard

            return zstandard.ZstdCompressor().compress(data), ".pcap.zst"
        except ImportError:
            codec = "gzip"
    if codec == "gzip":
        return gzip.compress(data, mtime=0), ".pcap.gz"
    if codec == "bz2":
        return bz2.compress(data), ".pcap.bz2"
    return lzma.compress(data), ".pcap.xz"


@dataclass
class Case:
    index: int
    name: str  # file name
    how: str  # what was done
    data: bytes
    keylog: Path | None = None


def seeds() -> list[Path]:
    return sorted(p for p in CAPTURES.glob("*.pcap") if p.stat().st_size <= MAX_SEED_BYTES)


def make_case(seed: int, index: int, seed_files: list[Path], seed_bytes: list[bytes], crafted: list) -> Case:
    rng = random.Random(f"{seed}:{index}")
    if index < len(crafted):  # the crafted cases first, then mutations
        name, data = crafted[index]
        return Case(index, f"case{index:05d}-{name}.pcap", f"crafted {name}", data)
    k = rng.randrange(len(seed_files))
    src = seed_files[k]
    data = seed_bytes[k]
    steps = [src.name]
    ext = ".pcap"
    n = rng.choice((1, 1, 1, 2, 2, 3))
    for _ in range(n):
        r = rng.random()
        if r < 0.08:
            j = rng.randrange(len(seed_files))
            data = m_concatenate(rng, data, seed_bytes[j])
            steps.append(f"concat:{seed_files[j].name}")
        elif r < 0.16:
            data = m_to_pcapng(rng, data)
            steps.append("pcapng")
            ext = ".pcapng"
            break  # the record-level mutators read pcap only
        else:
            name, fn = rng.choice(MUTATORS)
            data = fn(rng, data)
            steps.append(name)
    if rng.random() < 0.12:
        data, ext = compress(rng, data)
        steps.append(ext.rsplit(".", 1)[1])
        if rng.random() < 0.5:
            data = rng.choice((m_truncate, m_bitflip, m_append_garbage))(rng, data)
            steps.append("damaged")
    keys = src.with_name(src.name.removesuffix(".pcap") + ".keys.txt")
    keylog = keys if keys.exists() and rng.random() < 0.5 else None
    if keylog:
        steps.append("keylog")
    return Case(index, f"case{index:05d}{ext}", " ".join(steps), data, keylog)


# -- running and classifying ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    case: Case
    status: str
    rc: int | None
    seconds: float
    stderr: str
    detail: str = ""


def _strict(text: str) -> None:
    def bad(token: str) -> None:
        raise ValueError(f"non-strict JSON constant {token}")

    json.loads(text, parse_constant=bad)


def run_case(case: Case, work: Path, timeout: float, mem_mb: int) -> Outcome:
    d = Path(tempfile.mkdtemp(prefix=f"c{case.index}-", dir=work))
    try:
        path = d / case.name
        path.write_bytes(case.data)
        out = d / "out"
        cmd = [sys.executable, "-m", "analyzer", "analyze", str(path), "-o", str(out), "--format", "json,md,html"]
        if case.keylog:
            cmd += ["--keylog", str(case.keylog)]
        limit = mem_mb << 20

        def pre() -> None:
            os.setsid()
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("GHOSTCAP_DEBUG", None)
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=pre,
            env=env,
            cwd=d,
        )
        try:
            _, err_b = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err_b = proc.communicate()
            return Outcome(case, "hang", None, time.monotonic() - t0, err_b.decode("utf-8", "replace"))
        secs = time.monotonic() - t0
        err = err_b.decode("utf-8", "replace")
        rc = proc.returncode
        low = err.lower()
        if "memoryerror" in low or "cannot allocate memory" in low or "out of memory" in low:
            return Outcome(case, "over-memory", rc, secs, err)
        if "Traceback (most recent call last)" in err or rc not in (0, 1, 3, 4):
            first = next((ln for ln in err.splitlines() if "internal error" in ln), err.strip()[-200:])
            return Outcome(case, "crash", rc, secs, err, first)
        stem = case.name.split(".", 1)[0]
        if rc in (0, 1, 4):
            missing = [f for f in ("json", "md", "html") if not (out / f"{stem}.{f}").is_file()]
            if missing:
                return Outcome(case, "lost report", rc, secs, err, f"missing {', '.join(missing)}")
        js = out / f"{stem}.json"
        if js.is_file():
            try:
                _strict(js.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                return Outcome(case, "non-strict JSON", rc, secs, err, str(e)[:200])
        return Outcome(case, "ok", rc, secs, err)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def save(o: Outcome, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / o.case.name).write_bytes(o.case.data)
    meta = {
        "index": o.case.index,
        "status": o.status,
        "exit": o.rc,
        "seconds": round(o.seconds, 2),
        "how": o.case.how,
        "keylog": str(o.case.keylog) if o.case.keylog else None,
        "detail": o.detail,
    }
    (out / f"{o.case.name}.stderr.txt").write_text(o.stderr, encoding="utf-8")
    (out / f"{o.case.name}.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def table(outcomes: list[Outcome]) -> str:
    counts = Counter(o.status for o in outcomes)
    heads = ["cases", *STATUSES]
    vals = [len(outcomes), *(counts[s] for s in STATUSES)]
    widths = [max(len(h), len(str(v))) for h, v in zip(heads, vals, strict=True)]
    line1 = " | ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))
    line2 = " | ".join(str(v).rjust(w) for v, w in zip(vals, widths, strict=True))
    return f"{line1}\n{'-' * len(line1)}\n{line2}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "fuzz")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per case (a hang beyond)")
    ap.add_argument("--memory", type=int, default=1024, help="address space limit per case, MiB")
    args = ap.parse_args(argv)

    seed_files = seeds()
    seed_bytes = [p.read_bytes() for p in seed_files]
    crafted = crafted_cases()
    args.out.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ghostcap-fuzz-") as tmp:
        work = Path(tmp)

        def one(i: int) -> Outcome:
            return run_case(make_case(args.seed, i, seed_files, seed_bytes, crafted), work, args.timeout, args.memory)

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for o in pool.map(one, range(args.cases)):
                outcomes.append(o)
                if o.status != "ok":
                    save(o, args.out)
                    print(f"{o.status}: {o.case.name} ({o.case.how}) exit {o.rc}: {o.detail}", file=sys.stderr)
                if len(outcomes) % 100 == 0:
                    print(f"... {len(outcomes)}/{args.cases} in {time.monotonic() - start:.0f} s", file=sys.stderr)
    slowest = max(outcomes, key=lambda o: o.seconds, default=None)
    text = table(outcomes)
    text += f"\nseed {args.seed}, {len(crafted)} crafted + {max(0, args.cases - len(crafted))} mutated cases"
    text += f", {len(seed_files)} seed captures, {time.monotonic() - start:.0f} s"
    if slowest:
        text += f"; slowest case {slowest.case.name} ({slowest.case.how}): {slowest.seconds:.1f} s"
    text += f"\nfailing cases and their stderr: {args.out}"
    print(text)
    (args.out / "summary.txt").write_text(text + "\n", encoding="utf-8")
    return 1 if any(o.status != "ok" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
