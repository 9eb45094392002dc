"""Fleets made from the lab captures: a classic pcap rewritten as another charger (addresses, station ids, time).

Used by the fleet triage tests and ``bench/triage_fleet.py``. A rewrite moves IPv4 addresses (in the IP header,
whose checksum is recomputed, and inside DNS answers, so names still resolve to the address connected to),
renames station ids in place with the same length (so no length field changes) and shifts every timestamp.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

from tests.conftest import PROJECT_CAPTURES

REC = struct.Struct("<IIII")
IP_OFFSET = {1: 14, 276: 20, 113: 16, 0: 4, 101: 0}
EPHEMERAL = 32768  # Linux's first ephemeral port: the lab's chargers connect from 32768 and up


def ip_offset(linktype: int, frame: bytes) -> int | None:
    """Where the IPv4 header starts in ``frame`` (``None`` for anything else)."""
    off = IP_OFFSET.get(linktype)
    if off is None:
        return None
    if linktype == 1:
        ethertype = frame[12:14]
        while ethertype in (b"\x81\x00", b"\x88\xa8") and len(frame) >= off + 4:
            ethertype = frame[off + 2 : off + 4]
            off += 4
        if ethertype != b"\x08\x00":
            return None
    elif linktype == 276 and frame[0:2] != b"\x08\x00":
        return None
    if len(frame) < off + 20 or frame[off] >> 4 != 4:
        return None
    return off


def ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip4(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def station_ids(stem: str) -> list[bytes]:
    """The station ids a lab capture's truth names."""
    truth = PROJECT_CAPTURES / f"{stem}.truth.json"
    if not truth.exists():
        return []
    return [c["station_id"].encode() for c in json.loads(truth.read_text())["chargers"] if c.get("station_id")]


def renamed(sid: bytes, v: int) -> bytes:
    """The same length: trailing digits ``d`` become ``d + v`` (modulo their width), so ids stay distinct."""
    m = re.search(rb"\d+$", sid)
    if not m:
        return sid
    width = len(m.group())
    return sid[: len(sid) - width] + str((int(m.group()) + v) % 10**width).zfill(width).encode()


def rewrite(
    data: bytes,
    addresses: dict[bytes, bytes] | None = None,
    ids: dict[bytes, bytes] | None = None,
    shift_s: int = 0,
    clients_only: bool = False,
) -> bytes:
    """A classic little-endian pcap with ``addresses`` (4-byte old → new) moved, ``ids`` (old → new, same
    length) replaced wherever they occur, and every timestamp ``shift_s`` seconds later. With ``clients_only`` a
    TCP/UDP address moves only on the side of an ephemeral port (the lab's resolver and CSMS may share the
    charger's 127.0.0.1: they keep it)."""
    addresses = addresses or {}
    swaps = list((ids or {}).items())
    for old, new in swaps:
        assert len(old) == len(new), (old, new)
    header = data[:24]
    linktype = struct.unpack("<I", header[20:24])[0]
    out = [header]
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, orig = REC.unpack_from(data, pos)
        frame = bytearray(data[pos + 16 : pos + 16 + incl])
        pos += 16 + incl
        off = ip_offset(linktype, bytes(frame[:64]))
        if off is not None and addresses:
            ihl = (frame[off] & 0x0F) * 4
            ports: tuple[int, ...] = (EPHEMERAL, EPHEMERAL)
            if frame[off + 9] in (6, 17) and len(frame) >= off + ihl + 4:
                ports = struct.unpack("!HH", frame[off + ihl : off + ihl + 4])
            for field, port in zip((12, 16), ports, strict=True):
                old = bytes(frame[off + field : off + field + 4])
                if old in addresses and (port >= EPHEMERAL or not clients_only):
                    frame[off + field : off + field + 4] = addresses[old]
            frame[off + 10 : off + 12] = b"\0\0"
            frame[off + 10 : off + 12] = ip_checksum(bytes(frame[off : off + ihl])).to_bytes(2, "big")
            if frame[off + 9] == 17 and 53 in ports and not clients_only:
                payload = bytes(frame[off + ihl + 8 :])
                for old, new in addresses.items():
                    payload = payload.replace(old, new)
                frame[off + ihl + 8 :] = payload
        for old, new in swaps:
            if old in frame:
                frame = bytearray(bytes(frame).replace(old, new))
        out.append(REC.pack(sec + shift_s, frac, incl, orig))
        out.append(bytes(frame))
    return b"".join(out)


def charger_copy(stem: str, address: str, v: int, shift_s: int, old_address: str = "127.0.0.1") -> bytes:
    """Lab capture ``stem`` as another charger: its address ``old_address`` moved to ``address`` (the CSMS and
    the resolver keep theirs), its station ids renamed by ``v``, ``shift_s`` seconds later."""
    data = (PROJECT_CAPTURES / f"{stem}.pcap").read_bytes()
    ids = {s: renamed(s, v) for s in station_ids(stem)}
    moved = {ip4(old_address): ip4(address)} if address != old_address else {}
    return rewrite(data, moved, ids, shift_s, clients_only=True)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
