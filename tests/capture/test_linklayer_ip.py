"""Link layers down to IP, and IP (headers, extension headers, fragments) down to the transport bytes."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from analyzer.budgets import Budgets
from analyzer.capture.ip import IpDecoder, quoted_datagram
from analyzer.capture.reader import open_capture
from tests import pcapbuild as pb

UDP = pb.udp(4000, 53, b"query")
IP4 = pb.ipv4("192.0.2.1", "198.51.100.7", 17, UDP)
V6_SRC = bytes.fromhex("20010db8000000000000000000000001")
V6_DST = bytes.fromhex("20010db8000000000000000000000002")
IP6 = pb.ipv6(V6_SRC, V6_DST, 17, UDP)


def sll(ip: bytes, proto: int = 0x0800) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, pb.MAC_A + b"\0\0", proto) + ip


def sll2(ip: bytes, proto: int = 0x0800) -> bytes:
    return struct.pack("!HHIHBB8s", proto, 0, 2, 1, 0, 6, pb.MAC_A + b"\0\0") + ip


def nflog(ip: bytes) -> bytes:
    prefix = struct.pack("<HH", 8, 10) + b"abc\0"  # NFULA_PREFIX, host byte order
    payload = struct.pack("<HH", 4 + len(ip), 9) + ip + b"\0" * (-len(ip) % 4)
    return bytes([2, 0, 0, 0]) + prefix + payload


def datagrams(tmp_path: Path, linktype: int, frames: list[bytes]) -> tuple[list[tuple], object]:
    path = tmp_path / "c.pcap"
    path.write_bytes(pb.pcap([(i * 1000, f) for i, f in enumerate(frames)], linktype=linktype))
    with open_capture(path) as cap:
        got = [(p[0], p[2], p[3], p[4], p[5], p[6]) for p in cap.ip_packets()]
        return got, cap


@pytest.mark.parametrize(
    ("linktype", "frame", "ip"),
    [
        (1, pb.ether(IP4), IP4),
        (1, pb.ether(IP4, vlans=(0x8100,)), IP4),
        (1, pb.ether(IP4, vlans=(0x88A8, 0x8100)), IP4),  # 802.1ad QinQ
        (1, pb.ether(IP6, ethertype=0x86DD), IP6),
        (113, sll(IP4), IP4),
        (276, sll2(IP6, 0x86DD), IP6),
        (0, struct.pack("<I", 2) + IP4, IP4),  # NULL, host order AF_INET
        (0, struct.pack("<I", 30) + IP6, IP6),  # NULL, macOS AF_INET6
        (108, struct.pack(">I", 24) + IP6, IP6),  # LOOP, network order
        (101, IP4, IP4),
        (228, IP4, IP4),
        (229, IP6, IP6),
        (239, nflog(IP4), IP4),
    ],
)
def test_link_layers_reach_ip(tmp_path: Path, linktype: int, frame: bytes, ip: bytes) -> None:
    got, _ = datagrams(tmp_path, linktype, [frame])
    src, dst = (ip[12:16], ip[16:20]) if ip[0] >> 4 == 4 else (ip[8:24], ip[24:40])
    assert got == [(1, 17, src, dst, UDP, len(UDP))]


def test_ethernet_padding_is_not_payload(tmp_path: Path) -> None:
    short = pb.ipv4("10.0.0.1", "10.0.0.2", 17, pb.udp(1, 2, b""))
    got, _ = datagrams(tmp_path, 1, [pb.ether(short) + b"\0" * 18])  # padded to the 60-byte minimum
    assert got[0][4] == pb.udp(1, 2, b"")


def test_non_ip_and_unknown_link_types_are_counted(tmp_path: Path) -> None:
    arp = pb.ether(b"\0" * 28, ethertype=0x0806)
    got, cap = datagrams(tmp_path, 1, [arp, pb.ether(IP4)])
    assert [g[0] for g in got] == [2]
    assert cap.stats.non_ip == 1
    got, cap = datagrams(tmp_path, 147, [b"\x01\x02\x03", b"\x04"])
    assert got == []
    assert cap.stats.packets == 2
    assert cap.warnings == ["2 packets with link type USER0 (147) were counted but not decoded"]


def test_snaplen_truncation_is_recorded(tmp_path: Path) -> None:
    big = pb.ether(pb.ipv4("10.0.0.1", "10.0.0.2", 17, pb.udp(1, 2, b"x" * 200)))
    path = tmp_path / "c.pcap"
    path.write_bytes(pb.pcap([(0, big[:96])], snaplen=96, orig_lens={0: len(big)}))
    with open_capture(path) as cap:
        (p,) = list(cap.ip_packets())
        assert len(p[5]) == 96 - 34  # captured transport bytes
        assert p[6] == 208  # transport length on the wire, from the IP header
        assert cap.stats.truncated_packets == 1
        assert any("snaplen" in w for w in cap.warnings)


def v4_fragments(payload: bytes, size: int, ident: int = 7) -> list[bytes]:
    out = []
    for off in range(0, len(payload), size):
        more = 0x2000 if off + size < len(payload) else 0
        out.append(pb.ipv4("10.0.0.1", "10.0.0.2", 17, payload[off : off + size], ident=ident, frag=more | off // 8))
    return out


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0]])
def test_ipv4_fragments_reassemble_in_any_order(order: list[int]) -> None:
    body = pb.udp(5353, 53, bytes(range(256)) * 2)
    frags = v4_fragments(body, 184)
    dec = IpDecoder()
    results = [dec.decode(i + 1, frags[k], 0) for i, k in enumerate(order)]
    assert results[:-1] == [None, None]
    assert results[-1] == (17, pb.ip4("10.0.0.1"), pb.ip4("10.0.0.2"), body, len(body))
    assert not dec.pending


def test_ipv4_duplicate_fragment_first_copy_wins() -> None:
    body = pb.udp(1, 2, b"A" * 40)
    f1, f2 = v4_fragments(body, 24)
    forged = bytearray(f1)
    forged[-1] ^= 0xFF
    dec = IpDecoder()
    assert dec.decode(1, f1, 0) is None
    assert dec.decode(2, bytes(forged), 0) is None
    assert dec.decode(3, f2, 0)[3] == body  # type: ignore[index]


def v6_fragment(payload: bytes, offset: int, more: bool, ident: int = 99) -> bytes:
    hop = bytes([44, 0]) + b"\0" * 6  # hop-by-hop options, next header = fragment
    frag = struct.pack("!BBHI", 17, 0, offset | int(more), ident)
    return pb.ipv6(V6_SRC, V6_DST, 0, hop + frag + payload)


def test_ipv6_extension_headers_and_fragments() -> None:
    body = pb.udp(53, 5353, b"B" * 100)
    dec = IpDecoder()
    assert dec.decode(1, v6_fragment(body[56:], 56, False), 0) is None
    assert dec.decode(2, v6_fragment(body[:56], 0, True), 0) == (17, V6_SRC, V6_DST, body, len(body))


def test_ipv6_routing_and_destination_options() -> None:
    dst_opts = bytes([17, 0]) + b"\0" * 6
    routing = bytes([60, 0, 0, 0]) + b"\0" * 4
    pkt = pb.ipv6(V6_SRC, V6_DST, 43, routing + dst_opts + UDP)
    assert IpDecoder().decode(1, pkt, 0) == (17, V6_SRC, V6_DST, UDP, len(UDP))


@pytest.mark.parametrize("cut", [1, 10, 19, 39])
def test_truncated_ip_headers_are_counted_not_raised(cut: int) -> None:
    dec = IpDecoder()
    packet = IP4 if cut < 20 else IP6
    assert dec.decode(1, packet[:cut], 0) is None
    assert dec.malformed == 1


def test_quoted_datagram_in_icmp_error() -> None:
    quoted = pb.ipv4("10.0.0.1", "10.0.0.2", 6, pb.tcp(40000, 443, 1, flags=pb.SYN))[:28]
    assert quoted_datagram(quoted) == (6, pb.ip4("10.0.0.1"), pb.ip4("10.0.0.2"), 40000, 443)
    assert quoted_datagram(b"") is None


def test_fragments_past_the_per_datagram_budget_are_dropped_and_counted() -> None:
    body = pb.udp(5353, 53, bytes(range(48)))  # 56 bytes: seven 8-byte fragments
    frags = v4_fragments(body, 8)
    dec = IpDecoder(budgets=Budgets(fragments_per_datagram=5))
    assert [dec.decode(i, f, 0) for i, f in enumerate(frags[:5], start=1)] == [None] * 5
    assert dec.decode(6, frags[5], 0) is None
    assert dec.decode(7, frags[6], 0) is None
    assert dec.excess_fragments == 2
    assert dec.decode(8, frags[0], 0) is None  # a copy of a kept offset is not past the budget
    assert dec.excess_fragments == 2
    assert len(dec.pending) == 1
    assert dec.pending_bytes == 40


def test_datagrams_in_flight_budget_drops_the_oldest() -> None:
    dec = IpDecoder(budgets=Budgets(datagrams_in_flight=2))
    bodies = {ident: pb.udp(1000 + ident, 53, bytes([ident]) * 40) for ident in (1, 2, 3)}
    firsts = {ident: v4_fragments(b, 24, ident=ident) for ident, b in bodies.items()}
    for ident in (1, 2, 3):
        assert dec.decode(ident, firsts[ident][0], 0) is None
    assert (dec.evicted_datagrams, len(dec.pending)) == (1, 2)
    assert dec.decode(4, firsts[1][1], 0) is None  # datagram 1 was dropped: its second half starts a new wait
    assert dec.decode(5, firsts[3][1], 0)[3] == bodies[3]  # type: ignore[index]
    assert dec.evicted_datagrams == 2  # datagram 1's second half pushed datagram 2 out


def test_fragment_bytes_in_flight_budget_drops_the_oldest_and_keeps_count() -> None:
    dec = IpDecoder(budgets=Budgets(fragment_bytes_in_flight=100))
    a, b, c = (v4_fragments(pb.udp(i, 2, bytes([i]) * 72), 40, ident=i) for i in (1, 2, 3))  # 80 bytes: 40 + 40
    assert dec.decode(1, a[0], 0) is None
    assert dec.decode(2, b[0], 0) is None
    assert dec.pending_bytes == 80
    assert dec.decode(3, c[0], 0) is None  # 120 > 100: datagram 1 goes
    assert (dec.evicted_datagrams, dec.pending_bytes, len(dec.pending)) == (1, 80, 2)
    assert dec.decode(4, c[1], 0)[3] == pb.udp(3, 2, bytes([3]) * 72)  # type: ignore[index]  # datagram 2 went
    assert (dec.evicted_datagrams, dec.pending_bytes, dec.pending) == (2, 0, {})


def test_fragment_reaching_past_the_largest_datagram_is_dropped() -> None:
    dec = IpDecoder()
    frag = pb.ipv4("10.0.0.1", "10.0.0.2", 17, b"x" * 64, ident=9, frag=8190)  # offset 65520 + 64 bytes
    assert dec.decode(1, frag, 0) is None
    assert (dec.excess_fragments, dec.pending) == (1, {})


def test_fragments_are_put_together_only_when_they_can_cover_the_datagram() -> None:
    body = pb.udp(5353, 53, bytes(range(200)))
    frags = v4_fragments(body, 16)
    dec = IpDecoder()
    assert dec.decode(1, frags[-1], 0) is None  # the last one first: the total is known from here on
    (pend,) = dec.pending.values()
    for i, f in enumerate(frags[1:-1], start=2):
        assert dec.decode(i, f, 0) is None
        assert pend.have < pend.total
    assert dec.decode(99, frags[0], 0) == (17, pb.ip4("10.0.0.1"), pb.ip4("10.0.0.2"), body, len(body))


def test_fragment_budget_warnings_name_the_budget(tmp_path: Path) -> None:
    frags = v4_fragments(pb.udp(5353, 53, bytes(range(240))), 8)  # 31 fragments
    path = tmp_path / "f.pcap"
    path.write_bytes(pb.pcap([(i, pb.ether(f)) for i, f in enumerate(frags)]))
    with open_capture(path, Budgets(fragments_per_datagram=16)) as cap:
        assert list(cap.ip_packets()) == []
        warnings = cap.warnings
    assert "1 IP fragment sets could not be reassembled" in warnings
    assert "15 IP fragments dropped: past the fragment budget of 16 fragments per datagram" in " ".join(warnings)
