"""``open_capture()``: from a file name to a stream of IP datagrams with frame numbers and timestamps.

This is the per-packet hot path: one loop, locals only, no object per packet beyond the tuple it yields.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from analyzer import progress
from analyzer.budgets import DEFAULT_BUDGETS, Budgets
from analyzer.capture import compiled
from analyzer.capture.container import CaptureReader, DecryptionSecret, Interface
from analyzer.capture.ip import IpDecoder
from analyzer.capture.linklayer import (
    LINK_DECODERS,
    LINKTYPE_ETHERNET,
    LINKTYPE_NFLOG,
    linktype_name,
    nflog_payload_end,
)
from analyzer.capture.source import open_source

IpPacket = tuple[int, int, int, bytes, bytes, bytes, int]
"""(frame, ts_ns, protocol number, src address, dst address, transport bytes as captured, transport wire length)"""

SKIPPED = -1  # the protocol number of a packet another partition takes (``analyze --workers``): no bytes
SKIPPED_RUN = -2  # ... of ``wire`` such packets in a row, ``frame`` and ``ts`` the last one's (the compiled core)
_NONE = b""


class Partition(Protocol):
    """Which packets one process of ``analyze --workers`` takes in (``analyzer.parallel.Owner``)."""

    mine: dict[bytes, bool]  # TCP and UDP: src + dst + the first 4 transport bytes → taken

    def learn(self, key: bytes) -> bool:
        """A TCP or UDP packet of no known ``key``: taken or not (and remembered in ``mine``)."""
        ...

    def __call__(self, proto: int, src: bytes, dst: bytes, l4: bytes) -> bool: ...


@dataclass(slots=True)
class CaptureStats:
    """What the reader saw, filled in while iterating (complete once the iteration ends)."""

    packets: int = 0
    truncated_packets: int = 0  # captured length < original length (snaplen)
    first_ns: int | None = None
    last_ns: int | None = None
    non_ip: int = 0
    linktypes: Counter[int] = field(default_factory=Counter)
    undecoded_linktypes: Counter[int] = field(default_factory=Counter)


class Capture:
    """An open capture. Iterate ``ip_packets()`` once; then read ``stats``, ``warnings``, ``secrets``."""

    def __init__(self, path: str | Path, budgets: Budgets = DEFAULT_BUDGETS) -> None:
        self.reader = CaptureReader(open_source(path))
        self.name = self.reader.source.name
        self.compression = self.reader.source.compression
        self.stats = CaptureStats()
        self.ip = IpDecoder(budgets=budgets)

    @property
    def format(self) -> str:
        return self.reader.format

    @property
    def interfaces(self) -> list[Interface]:
        return self.reader.interfaces

    @property
    def secrets(self) -> list[DecryptionSecret]:
        return self.reader.secrets

    @property
    def warnings(self) -> list[str]:
        out = list(self.reader.warnings)
        for lt, n in sorted(self.stats.undecoded_linktypes.items()):
            out.append(f"{n} packets with link type {linktype_name(lt)} ({lt}) were counted but not decoded")
        if self.stats.truncated_packets:
            out.append(
                f"{self.stats.truncated_packets} packets were cut by the capture's snaplen; their missing bytes "
                "are reported as capture gaps, not as malformed data"
            )
        if self.ip.malformed:
            out.append(f"{self.ip.malformed} packets had a malformed or truncated IP header")
        ip = self.ip
        if ip.pending or ip.dropped_fragments:
            out.append(f"{len(ip.pending) + ip.dropped_fragments} IP fragment sets could not be reassembled")
        b = ip.budgets
        if ip.excess_fragments:
            out.append(
                f"{ip.excess_fragments} IP fragments dropped: past the fragment budget of {b.fragments_per_datagram} "
                "fragments per datagram, or reaching past the largest possible datagram"
            )
        if ip.evicted_datagrams:
            out.append(
                f"{ip.evicted_datagrams} IP datagrams still waiting for fragments dropped to stay within the budget of "
                f"{b.datagrams_in_flight} datagrams and {b.fragment_bytes_in_flight} bytes in flight"
            )
        return out

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ip_packets(
        self, part: Partition | None = None, sweep_every: int = 0, bypass: object = None
    ) -> Iterator[IpPacket]:
        """Every IP datagram (after defragmentation) with the frame that completed it; with ``part``
        (``analyze --workers``), those it does not take as ``(frame, ts, SKIPPED, b"", b"", b"", 0)``, so the
        flow table still counts them (its idle sweeps fall on the same packets).

        ``sweep_every`` (``FlowTable.run``'s idle sweep period): the compiled core may give n > 1 such packets in
        a row as one ``(frame, ts, SKIPPED_RUN, b"", b"", b"", n)``, frame and ts the last one's; a run ends on
        every multiple of ``sweep_every`` packets (each skipped one counted), where a sweep falls. Without it, and
        from the pure reader, every skipped packet is one ``SKIPPED``.

        ``bypass`` (a flow table's ``BypassTable``, with ``sweep_every``): the compiled core passes over the packets
        of the flows the table armed, and marks the table ``active``; the pure reader leaves it inactive.

        Read by the compiled core where it applies (``analyzer.capture.compiled``), else by ``_ip_packets``."""
        fast = compiled.ip_packets(self, part, sweep_every, bypass)
        return fast if fast is not None else self._ip_packets(part)

    def off_fast_path(self, frame: int, ts: int, lt: int, data: bytes, part: Partition | None) -> IpPacket | None:
        """A record the inlined Ethernet + IPv4 case does not take (its frame counted already), as both readers
        decode it: through its link layer and ``IpDecoder`` (IPv6, VLAN, IP options, fragments, other link types);
        ``None`` when it gives no datagram (counted as undecoded or non-IP where it is one)."""
        if lt == LINKTYPE_ETHERNET and data[12:14] == b"\x08\x00":
            off = 14
        else:
            link = LINK_DECODERS.get(lt)
            if link is None:
                self.stats.undecoded_linktypes[lt] += 1
                return None
            off = link(data)
            if lt == LINKTYPE_NFLOG and off > 0:
                data = data[: nflog_payload_end(data, off)]
        if off < 0 or off >= len(data):
            self.stats.non_ip += 1
            return None
        dgram = self.ip.decode(frame, data, off)
        if dgram is None:
            return None
        if part is not None and not part(dgram[0], dgram[1], dgram[2], dgram[3]):
            return frame, ts, SKIPPED, _NONE, _NONE, _NONE, 0
        return frame, ts, dgram[0], dgram[1], dgram[2], dgram[3], dgram[4]

    def _ip_packets(self, part: Partition | None = None) -> Iterator[IpPacket]:
        """The pure-Python reader: the reference the compiled core matches."""
        mine = part.mine if part is not None else {}
        stats = self.stats
        linktypes = stats.linktypes
        slow = self.off_fast_path
        frame = 0
        first = None
        ts = 0
        tick = progress.tick
        for batch in self.reader.batches():
            tick(frame)
            if first is None:
                first = batch[0][0]
            for ts, lt, data, orig in batch:
                frame += 1
                if len(data) < orig:
                    stats.truncated_packets += 1
                linktypes[lt] += 1
                # the common case inlined: Ethernet, IPv4 with a sane header and no fragmentation
                if (
                    lt == LINKTYPE_ETHERNET
                    and data[12:14] == b"\x08\x00"
                    and len(data) >= 34
                    and data[14] == 0x45
                    and not (data[20] & 0x3F or data[21])
                ):
                    total = data[16] << 8 | data[17]
                    if total >= 20:
                        if part is not None:
                            proto = data[23]
                            if proto == 6 or proto == 17:
                                key = data[26:38]
                                taken = mine.get(key)
                                if taken is None:
                                    taken = part.learn(key)
                            else:
                                taken = part(proto, data[26:30], data[30:34], data[34 : 14 + total])
                            if not taken:
                                yield frame, ts, SKIPPED, _NONE, _NONE, _NONE, 0
                                continue
                        yield frame, ts, data[23], data[26:30], data[30:34], data[34 : 14 + total], total - 20
                        continue
                packet = slow(frame, ts, lt, data, part)
                if packet is not None:
                    yield packet
        stats.packets = frame
        stats.first_ns = first
        stats.last_ns = ts if frame else None


def open_capture(path: str | Path, budgets: Budgets = DEFAULT_BUDGETS) -> Capture:
    """Open a pcap/pcapng file (optionally compressed) or ``-``; raise ``CaptureError`` if it is none.

    ``budgets`` bound IP fragment reassembly."""
    return Capture(path, budgets)
