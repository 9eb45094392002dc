"""Write packets to a binary stream as one pcapng section: an interface per link type (snaplen 0, nanosecond
timestamps), packet comments. Streaming (a block per packet, nothing kept), no file policy (the caller opens,
names and replaces files).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

from analyzer.capture.pcapng_blocks import MAX_TS, enhanced_packet, interface, section_header


class PcapngWriter:
    """``packet(ts_ns, linktype, data, orig_len, comments)`` appends one Enhanced Packet Block, declaring the
    interface of its link type first when it is new. ``clamped`` counts timestamps outside what pcapng holds
    (before 1970 or past 2^64 ns) written as the nearest it can."""

    def __init__(self, out: BinaryIO, application: str | None = None) -> None:
        self.out = out
        self.interfaces: dict[int, int] = {}  # link type -> interface id
        self.packets = 0
        self.commented = 0
        self.clamped = 0
        out.write(section_header(application))

    def packet(self, ts_ns: int, linktype: int, data: bytes, orig_len: int, comments: Sequence[str] = ()) -> None:
        iface = self.interfaces.get(linktype)
        if iface is None:
            iface = self.interfaces[linktype] = len(self.interfaces)
            self.out.write(interface(linktype))  # snaplen 0: no limit (a record may exceed the input's)
        if not 0 <= ts_ns <= MAX_TS:
            self.clamped += 1
            ts_ns = min(max(ts_ns, 0), MAX_TS)
        self.out.write(enhanced_packet(iface, ts_ns, data, orig_len, comments))
        self.packets += 1
        self.commented += bool(comments)
