"""The compiled core of ``Capture.ip_packets`` (``_fastread``, Cython) and the choice between it and the pure-Python
reader, which it must match exactly: the same packets, frame numbers, statistics, warnings and progress ticks.

The core takes pcap files of Ethernet frames. Its C loop reads the records of one read buffer and decodes every
IPv4 packet without options or fragmentation (and, with a partition, skips other partitions' packets); this module
keeps what the pure reader does around it, in the same order: reading (the same buffers: so the same batches and
progress ticks), the all-zero and damaged records and their warnings, and every packet off the fast path (IPv6,
VLAN, ARP, IP options and fragments, cut-short headers), decoded by the pure code's steps. Anything else (pcapng,
other link types, no compiled module, ``GHOSTCAP_PURE=1``) runs the pure reader.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any

from analyzer import progress
from analyzer.capture.container import CHUNK, ZERO_RUN, CaptureReader, _read_some
from analyzer.capture.linklayer import LINKTYPE_ETHERNET

if TYPE_CHECKING:
    from analyzer.capture.reader import Capture, IpPacket, Partition

try:
    from analyzer.capture import _fastread as core
except ImportError:  # not built (no compiler when installed): the pure reader
    core = None  # type: ignore[assignment]

ABI = 8  # the interface this module drives (``_fastread.ABI``): a stale build is not used
PURE_ENV = "GHOSTCAP_PURE"
SKIPPED = -1  # reader.SKIPPED


def available() -> bool:
    """The compiled core is built, current, and not turned off (``GHOSTCAP_PURE=1``)."""
    return core is not None and getattr(core, "ABI", None) == ABI and os.environ.get(PURE_ENV, "") in ("", "0")


def describe() -> str:
    """Which reader core runs, for ``ghostcap --version``."""
    if core is None:
        return "pure Python (the compiled core is not built)"
    if getattr(core, "ABI", None) != ABI:
        return "pure Python (the compiled core is out of date: reinstall)"
    if not available():
        return f"pure Python ({PURE_ENV}=1)"
    return "compiled (Cython)"


def bypass_table(batch: int) -> Any:
    """A ``_fastread.BypassTable`` for a flow table to arm (its reader hands packets on in batches of at most
    ``batch`` while it passes any over), or None when the compiled core does not run."""
    return core.BypassTable(batch) if available() else None


def ip_packets(
    cap: Capture, part: Partition | None, sweep_every: int = 0, bypass: Any = None
) -> Iterator[IpPacket] | None:
    """``cap.ip_packets(part, sweep_every, bypass)`` through the compiled core, or None where the pure reader must
    run. With ``bypass`` (and ``sweep_every``), the core passes over the packets its armed flows let it (marking it
    ``active``: the flow table then arms it)."""
    reader = cap.reader
    if reader.format != "pcap" or not available() or reader.pcap_linktype() != LINKTYPE_ETHERNET:
        return None
    if not sweep_every:
        bypass = None  # a bypassed packet is counted as a skipped one: in runs that end where sweeps fall
    if bypass is not None:
        bypass.active = True
    counted = sweep_every if part is not None or bypass is not None else 0
    return chain.from_iterable(_ticked(cap, part, counted, bypass))


def _ticked(cap: Capture, part: Partition | None, sweep_every: int, bypass: Any) -> Iterator[list[IpPacket]]:
    """The packets in lists, one per read buffer, with the progress tick and the statistics of the pure loop."""
    reader = cap.reader
    stats = cap.stats
    order, mult, linktype, max_len = reader.pcap_header()
    scanner = core.PcapScanner(order == ">", mult, linktype == LINKTYPE_ETHERNET, max_len, part, sweep_every, bypass)
    slow = cap.off_fast_path

    def decode(frame: int, record: tuple[int, bytes, int]) -> IpPacket | None:
        return slow(frame, record[0], linktype, record[1], part)

    tick = progress.tick
    for before, out in _batches(reader, scanner, decode, max_len):
        tick(before)
        stats.truncated_packets = scanner.truncated
        stats.linktypes[linktype] = scanner.frame
        yield out
    frame = scanner.frame
    stats.truncated_packets = scanner.truncated
    if frame:
        stats.linktypes[linktype] = frame
    stats.packets = frame
    stats.first_ns = scanner.first_ns if frame else None
    stats.last_ns = scanner.last_ns if frame else None


Decode = Callable[[int, tuple[int, bytes, int]], "IpPacket | None"]


def _batches(reader: CaptureReader, scanner: Any, decode: Decode, max_len: int) -> Iterator[tuple[int, list[IpPacket]]]:
    """``CaptureReader._pcap``'s loop around the core: ``(frames before, packets)`` per read buffer that held a
    record. The same bytes as its buffers (what was left of the last one, then up to ``CHUNK`` more), read into one
    ``bytearray`` kept for the whole capture: a new buffer per read cost its copy and, often, its pages mapped
    afresh (measured, a partition of the 1M-packet gateway capture: 76k → 23k page faults, 0.40 → 0.20 s of system
    time)."""
    scan = scanner.scan
    put = scanner.put
    stream = reader.source.stream
    buf = bytearray(2 * CHUNK)
    pos = end = 0  # buf[pos:end]: the bytes read and not yet scanned
    base = 24  # file offset of buf[0]
    zeros_from = 0  # file offset before which zero-filling was ruled out
    before = 0  # frames before this batch
    out: list[IpPacket] = []
    try:
        while True:
            pos, why = scan(buf, pos, end, base, zeros_from, out)
            if why == core.SLOW:
                packet = decode(scanner.frame, scanner.slow)
                if packet is not None:
                    put(packet, out)
                continue
            count = scanner.frame
            if why == core.REARM:  # the flow table may arm a flow again: it takes this batch in first
                reader._packets = count
                scanner.end_batch(out)
                yield before, out
                out = []
                before = count
                continue
            if why == core.ZERO_HEADER:
                zeros_from = reader.zero_run(bytes(buf[pos : min(end, pos + ZERO_RUN)]), 0, base + pos, count)
                if zeros_from < 0:
                    break
                continue
            if why == core.CORRUPT:
                reader.corrupt_length(base + pos, count, scanner.incl, max_len)
                break
            if count > before:
                reader._packets = count
                scanner.end_batch(out)
                yield before, out
                out = []
                before = count
            if why == core.NEED_HEADER:
                buf, end = _refill(stream, buf, pos, end, CHUNK)
                base += pos
                pos = 0
                if end < 16:
                    if end:
                        reader.partial_header(end, base, count)
                    break
            else:  # NEED_RECORD
                incl = scanner.incl
                buf, end = _refill(stream, buf, pos, end, max(CHUNK, incl + 16))
                base += pos
                pos = 0
                if 16 + incl > end:
                    reader.cut_record(base, count, end - 16, incl)
                    break
    except OSError as e:  # a damaged compressed stream (DamagedInput) or a failing disk: CaptureReader.batches
        reader.unreadable(e)
        return
    reader._packets = scanner.frame
    if scanner.frame > before:
        scanner.end_batch(out)
        yield before, out


def _refill(stream: Any, buf: bytearray, pos: int, end: int, want: int) -> tuple[bytearray, int]:
    """``buf[pos:end]`` moved to the front of ``buf`` (grown if it cannot take ``want`` more after them), then up to
    ``want`` bytes read after them, looping over short reads as ``_read_some`` does (an error after some bytes
    ends the reading; it comes again on the next read): ``(buf, end of what it holds)``."""
    left = end - pos
    if left + want > len(buf):
        grown = bytearray(left + want)
        grown[:left] = buf[pos:end]
        buf = grown
    elif pos:
        buf[:left] = buf[pos:end]
    readinto = getattr(stream, "readinto", None)
    if readinto is None:  # a decompressor: its bytes copied in
        data = _read_some(stream.read, want)
        buf[left : left + len(data)] = data
        return buf, left + len(data)
    with memoryview(buf) as view:
        got = readinto(view[left : left + want]) or 0
        while 0 < got < want:
            try:
                more = readinto(view[left + got : left + want])
            except OSError:
                break
            if not more:
                break
            got += more
    return buf, left + got
