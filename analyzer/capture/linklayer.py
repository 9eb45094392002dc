"""Link layers: find where the IP header starts in a captured frame.

Each function takes the frame bytes and returns the offset of the IP header, or -1 when the frame carries no IP
(ARP, LLDP, a truncated header...). The IP version is read from the IP header itself, so loopback address-family
values that differ between BSDs (2, 24, 28, 30) do not matter.
"""

from __future__ import annotations

from collections.abc import Callable

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_RAW_BSD = (12, 14)  # DLT_RAW's values on some BSDs, seen in the wild in pcap files
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_NFLOG = 239
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "NULL",
    LINKTYPE_ETHERNET: "EN10MB",
    LINKTYPE_RAW: "RAW",
    12: "RAW",
    14: "RAW",
    LINKTYPE_LOOP: "LOOP",
    LINKTYPE_LINUX_SLL: "LINUX_SLL",
    LINKTYPE_NFLOG: "NFLOG",
    LINKTYPE_IPV4: "IPV4",
    LINKTYPE_IPV6: "IPV6",
    LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
    # not decoded, named in warnings
    6: "IEEE802",
    9: "PPP",
    10: "FDDI",
    50: "PPP_HDLC",
    104: "C_HDLC",
    105: "IEEE802_11",
    127: "IEEE802_11_RADIOTAP",
    147: "USER0",
    187: "BLUETOOTH_HCI_H4",
    220: "USB_LINUX_MMAPPED",
    249: "NETLINK",
    252: "WIRESHARK_UPPER_PDU",
    263: "DOCSIS31_XRA31",
    274: "LINUX_SLL(v2?)",
}

ETH_IPV4 = b"\x08\x00"
ETH_IPV6 = b"\x86\xdd"
VLAN_TAGS = (b"\x81\x00", b"\x88\xa8", b"\x91\x00", b"\x92\x00")


def linktype_name(linktype: int) -> str:
    return LINKTYPE_NAMES.get(linktype, f"LINKTYPE_{linktype}")


def ethernet(data: bytes) -> int:
    et = data[12:14]
    if et == ETH_IPV4 or et == ETH_IPV6:
        return 14
    off = 14
    while et in VLAN_TAGS:  # 802.1Q, 802.1ad (QinQ) and the legacy QinQ values
        off += 4
        et = data[off - 2 : off]
    if et == ETH_IPV4 or et == ETH_IPV6:
        return off
    return -1


def loopback(data: bytes) -> int:
    """BSD loopback / NULL: a 4-byte address family (host or network order) before the IP header."""
    return 4 if len(data) > 4 and data[4] >> 4 in (4, 6) else -1


def raw_ip(data: bytes) -> int:
    return 0 if data and data[0] >> 4 in (4, 6) else -1


def linux_sll(data: bytes) -> int:
    proto = data[14:16]
    return 16 if proto == ETH_IPV4 or proto == ETH_IPV6 else -1


def linux_sll2(data: bytes) -> int:
    proto = data[0:2]
    return 20 if proto == ETH_IPV4 or proto == ETH_IPV6 else -1


NFULA_PAYLOAD = 9


def nflog(data: bytes) -> int:
    """NFLOG: 4-byte header, then TLVs (length and type in host byte order, little-endian here)."""
    pos = 4
    n = len(data)
    while pos + 4 <= n:
        tlv_len = data[pos] | data[pos + 1] << 8
        tlv_type = (data[pos + 2] | data[pos + 3] << 8) & 0x7FFF
        if tlv_len < 4:
            return -1
        if tlv_type == NFULA_PAYLOAD:
            return pos + 4 if pos + 4 < n and data[pos + 4] >> 4 in (4, 6) else -1
        pos += (tlv_len + 3) & ~3
    return -1


def nflog_payload_end(data: bytes, ip_offset: int) -> int:
    """End of the NFULA_PAYLOAD TLV (padding after the IP packet is not part of it)."""
    tlv_len = data[ip_offset - 4] | data[ip_offset - 3] << 8
    return ip_offset - 4 + tlv_len


LINK_DECODERS: dict[int, Callable[[bytes], int]] = {
    LINKTYPE_ETHERNET: ethernet,
    LINKTYPE_NULL: loopback,
    LINKTYPE_LOOP: loopback,
    LINKTYPE_RAW: raw_ip,
    12: raw_ip,
    14: raw_ip,
    LINKTYPE_IPV4: raw_ip,
    LINKTYPE_IPV6: raw_ip,
    LINKTYPE_LINUX_SLL: linux_sll,
    LINKTYPE_LINUX_SLL2: linux_sll2,
    LINKTYPE_NFLOG: nflog,
}
