"""IPv4 and IPv6: headers, extension headers and fragment reassembly.

``IpDecoder.decode(frame, data, off)`` returns ``(proto, src, dst, l4, wire_len)`` for a datagram that is complete
(unfragmented, or the fragment that completed it), or ``None``. ``l4`` is the transport header and payload as
captured (cut short when the capture's snaplen cut the frame); ``wire_len`` is its length on the wire, from the IP
header, so the layers above can tell "cut by the capture" from "malformed".

Fragments wait in ``pending`` (by source, destination, identification and protocol), each datagram's parts in a dict
by offset (the first copy of an offset wins). A datagram is put together only once the bytes it holds could cover
it (``have >= total``), so a fragment costs O(1) however many wait, not a re-sort and rebuild of the whole datagram.
Budgets (``analyzer.budgets``): fragments per datagram, datagrams and bytes in flight; the excess is dropped and
counted (``excess_fragments``, ``evicted_datagrams``), and the capture's warnings say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.budgets import DEFAULT_BUDGETS, Budgets

Datagram = tuple[int, bytes, bytes, bytes, int]
"""(protocol number, source address bytes, destination address bytes, transport bytes, transport wire length)"""

IPV6_EXT_SIMPLE = frozenset((0, 43, 60, 135, 139, 140))  # hop-by-hop, routing, destination, mobility, HIP, shim6
IPV6_FRAGMENT, IPV6_AH, IPV6_ESP, IPV6_NONE = 44, 51, 50, 59
MAX_DATAGRAM = 65_535 + 40


@dataclass(slots=True)
class _Pending:
    parts: dict[int, bytes] = field(default_factory=dict)
    total: int = -1  # known once the last fragment (MF=0) arrives
    proto: int = -1
    first_frame: int = 0
    have: int = 0  # bytes in ``parts`` (overlaps counted twice): the datagram cannot be complete while below total


@dataclass(slots=True)
class IpDecoder:
    """Decodes IP headers and reassembles fragments. State: fragments waiting for their datagram."""

    pending: dict[tuple[bytes, bytes, int, int], _Pending] = field(default_factory=dict)
    budgets: Budgets = DEFAULT_BUDGETS
    malformed: int = 0
    fragments: int = 0
    reassembled: int = 0
    dropped_fragments: int = 0  # cut by the snaplen (can never complete), plus datagrams evicted
    excess_fragments: int = 0  # past ``fragments_per_datagram``, or reaching past the largest datagram
    evicted_datagrams: int = 0  # dropped, oldest first, to stay within the datagrams or bytes in flight
    pending_bytes: int = 0  # fragment bytes waiting in ``pending``

    def decode(self, frame: int, data: bytes, off: int) -> Datagram | None:
        version = data[off] >> 4
        if version == 4:
            return self._v4(frame, data, off)
        if version == 6:
            return self._v6(frame, data, off)
        self.malformed += 1
        return None

    def _v4(self, frame: int, data: bytes, off: int) -> Datagram | None:
        if len(data) < off + 20:
            self.malformed += 1
            return None
        ihl = (data[off] & 0x0F) * 4
        total = data[off + 2] << 8 | data[off + 3]
        if total == 0:  # TCP segmentation offload: the length field is left 0 on the capturing host
            total = len(data) - off
        if ihl < 20 or total < ihl:
            self.malformed += 1
            return None
        proto = data[off + 9]
        src = data[off + 12 : off + 16]
        dst = data[off + 16 : off + 20]
        frag = data[off + 6] << 8 | data[off + 7]
        l4 = data[off + ihl : off + total]
        if frag & 0x3FFF == 0:
            return proto, src, dst, l4, total - ihl
        return self._fragment(
            frame,
            (src, dst, data[off + 4] << 8 | data[off + 5], proto),
            proto,
            (frag & 0x1FFF) * 8,
            bool(frag & 0x2000),
            l4,
            total - ihl,
        )

    def _v6(self, frame: int, data: bytes, off: int) -> Datagram | None:
        if len(data) < off + 40:
            self.malformed += 1
            return None
        plen = data[off + 4] << 8 | data[off + 5]
        nh = data[off + 6]
        src = data[off + 8 : off + 24]
        dst = data[off + 24 : off + 40]
        end = off + 40 + plen if plen else len(data)  # 0: jumbogram or offload
        pos = off + 40
        while True:
            if nh in IPV6_EXT_SIMPLE:
                if pos + 2 > len(data):
                    self.malformed += 1
                    return None
                nh, hlen = data[pos], (data[pos + 1] + 1) * 8
            elif nh == IPV6_AH:
                if pos + 2 > len(data):
                    self.malformed += 1
                    return None
                nh, hlen = data[pos], (data[pos + 1] + 2) * 4
            elif nh == IPV6_FRAGMENT:
                if pos + 8 > len(data):
                    self.malformed += 1
                    return None
                inner = data[pos]
                fo = data[pos + 2] << 8 | data[pos + 3]
                ident = int.from_bytes(data[pos + 4 : pos + 8], "big")
                payload = data[pos + 8 : end]
                wire = end - pos - 8
                if fo == 0:  # atomic fragment (RFC 6946): not really fragmented
                    nh, pos = inner, pos + 8
                    continue
                return self._fragment(frame, (src, dst, ident, -1), inner, fo & 0xFFF8, bool(fo & 1), payload, wire)
            else:
                return nh, src, dst, data[pos:end], end - pos
            pos += hlen
            if pos > end:
                self.malformed += 1
                return None

    def _fragment(
        self,
        frame: int,
        key: tuple[bytes, bytes, int, int],
        proto: int,
        offset: int,
        more: bool,
        payload: bytes,
        wire_len: int,
    ) -> Datagram | None:
        self.fragments += 1
        if len(payload) < wire_len:  # a fragment cut by the snaplen can never complete its datagram
            self.dropped_fragments += 1
            return None
        if offset + len(payload) > MAX_DATAGRAM:  # no datagram reaches this far: an oversized ("of death") fragment
            self.excess_fragments += 1
            return None
        budgets = self.budgets
        pending = self.pending
        pend = pending.get(key)
        if pend is None:
            if len(pending) >= budgets.datagrams_in_flight:
                self._evict_oldest()
            pend = pending[key] = _Pending(first_frame=frame)
        changed = False
        if offset not in pend.parts:  # the first copy of an offset wins
            if len(pend.parts) >= budgets.fragments_per_datagram:
                self.excess_fragments += 1
                return None
            pend.parts[offset] = payload
            pend.have += len(payload)
            self.pending_bytes += len(payload)
            changed = True
            while self.pending_bytes > budgets.fragment_bytes_in_flight:
                if self._evict_oldest() is pend:
                    return None
        if offset == 0 and pend.proto != proto:
            pend.proto = proto
            changed = True
        if not more and pend.total != offset + len(payload):
            pend.total = offset + len(payload)
            changed = True
        if not changed or pend.total < 0 or pend.proto < 0 or pend.total > MAX_DATAGRAM or pend.have < pend.total:
            return None
        buf = bytearray()
        for off in sorted(pend.parts):
            part = pend.parts[off]
            if off > len(buf):
                return None  # a hole: wait for the missing fragment
            if off + len(part) > len(buf):
                buf += part[len(buf) - off :]
        if len(buf) < pend.total:
            return None
        del pending[key]
        self.pending_bytes -= pend.have
        self.reassembled += 1
        body = bytes(buf[: pend.total])
        return pend.proto, key[0], key[1], body, len(body)

    def _evict_oldest(self) -> _Pending:
        """Drop the datagram that has waited longest (the first in ``pending``) and count it."""
        pend = self.pending.pop(next(iter(self.pending)))
        self.pending_bytes -= pend.have
        self.evicted_datagrams += 1
        self.dropped_fragments += 1
        return pend


def quoted_datagram(data: bytes) -> tuple[int, bytes, bytes, int, int] | None:
    """The IP header an ICMP error quotes: ``(proto, src, dst, sport, dport)``, ports 0 when absent."""
    if not data:
        return None
    version = data[0] >> 4
    if version == 4 and len(data) >= 20:
        ihl = (data[0] & 0x0F) * 4
        proto, src, dst, l4 = data[9], data[12:16], data[16:20], data[ihl:]
    elif version == 6 and len(data) >= 40:
        proto, src, dst, l4 = data[6], data[8:24], data[24:40], data[40:]
    else:
        return None
    if proto in (6, 17) and len(l4) >= 4:
        return proto, src, dst, l4[0] << 8 | l4[1], l4[2] << 8 | l4[3]
    return proto, src, dst, 0, 0
