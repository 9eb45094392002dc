"""pcap and pcapng containers, read in one streaming pass.

``CaptureReader.records()`` yields ``(ts_ns, linktype, data, orig_len)`` per packet record, in file order, so the
n-th record is Wireshark's frame n. Damage (a record cut short, a corrupt length) ends the iteration with a
warning that says where; everything before it is still yielded. Files read through a chunked buffer: the per-record
cost is one ``struct`` unpack and one slice.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from analyzer.capture.source import Source, describe_non_capture
from analyzer.errors import CaptureError

CHUNK = 1 << 20
MAX_RECORD = 1 << 24  # 16 MiB: larger record or block lengths are corruption, not data
STANDARD_MAX_SNAPLEN = 262_144  # wiretap's limit for ordinary link types
ZERO_RUN = 1 << 16  # this many zero bytes where a pcap record starts: zero-filled, not 4,096 empty records

PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
PCAPNG_SHB = 0x0A0D0D0A
BLOCK_IDB, BLOCK_PB, BLOCK_SPB, BLOCK_NRB, BLOCK_ISB, BLOCK_EPB, BLOCK_DSB = 1, 2, 3, 4, 5, 6, 0x0A

# the fixed fields of a block type, with its type, length and trailing length: a shorter block is corrupt
MIN_BLOCK_LEN = {PCAPNG_SHB: 28, BLOCK_IDB: 20, BLOCK_EPB: 32, BLOCK_PB: 32, BLOCK_SPB: 16}

Record = tuple[int, int, bytes, int]
"""(ts_ns, linktype, captured bytes, original length)"""


@dataclass(frozen=True, slots=True)
class Interface:
    """A pcapng interface (or the single implicit one of a pcap file)."""

    linktype: int
    snaplen: int
    name: str | None = None
    tsresol: int = 6


@dataclass(frozen=True, slots=True)
class DecryptionSecret:
    """A pcapng Decryption Secrets Block: ``secrets_type`` (0x544c534b = TLS key log) and its raw bytes."""

    secrets_type: int
    data: bytes
    frame_before: int  # packets read before the block (secrets apply to what follows)

    TLS_KEY_LOG = 0x544C534B


@dataclass(slots=True)
class CaptureReader:
    """Streaming reader over one opened ``Source``.

    After (or during) iteration: ``format`` (``pcap``/``pcapng``), ``interfaces``, ``secrets`` (DSB contents),
    ``warnings`` (damage and oddities, one sentence each).
    """

    source: Source
    format: str = ""
    interfaces: list[Interface] = field(default_factory=list)
    secrets: list[DecryptionSecret] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _head: bytes = b""
    _packets: int = 0

    def __post_init__(self) -> None:
        try:
            self._sniff()
        except BaseException:
            self.source.close()
            raise

    def _sniff(self) -> None:
        head = _read_exact(self.source.stream, 24)
        where = f"{self.source.name}: " if self.source.name != "-" else "standard input: "
        if head[:4] in PCAP_MAGIC:
            self.format = "pcap"
        elif len(head) >= 4 and struct.unpack_from("<I", head)[0] == PCAPNG_SHB:
            self.format = "pcapng"
        else:
            kind = describe_non_capture(head + self.source.stream.read(200))
            if self.source.compression:
                kind = f"{self.source.compression}-compressed {kind}"
            raise CaptureError(f"{where}not a packet capture (pcap or pcapng); it looks like {kind}")
        if len(head) < 24:  # a pcap header is 24 bytes, a pcapng section header at least 28: nothing to read
            raise CaptureError(
                f"{where}{self.format} file header cut short ({len(head)} of {24 if self.format == 'pcap' else 28} "
                "bytes): no packets to read"
            )
        self._head = head

    def records(self) -> Iterator[Record]:
        """Yield every readable packet record; stop with a warning at the first damage."""
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[Record]]:
        """The records in lists (one per read buffer): the hot path pays one generator step per batch."""
        try:
            if self.format == "pcap":
                yield from self._pcap()
            else:
                yield from self._pcapng()
        except OSError as e:  # a damaged compressed stream (DamagedInput) or a failing disk
            self.unreadable(e)

    def close(self) -> None:
        self.source.close()

    # -- pcap -------------------------------------------------------------------------------------------------

    def _pcap(self) -> Iterator[list[Record]]:
        order, mult, linktype, max_len = self.pcap_header()
        unpack = struct.Struct(order + "IIII").unpack_from
        read = self.source.stream.read
        buf = b""
        pos = 0
        base = 24  # file offset of buf[0]
        count = 0
        zeros_from = 0  # file offset before which zero-filling was ruled out
        batch: list[Record] = []
        append = batch.append
        while True:
            end = len(buf)
            if end - pos < 16:
                if batch:
                    self._packets = count
                    yield batch
                    batch = []
                    append = batch.append
                buf = buf[pos:] + _read_some(read, CHUNK)
                base += pos
                pos = 0
                end = len(buf)
                if end < 16:
                    if end:
                        self.partial_header(end, base, count)
                    break
            sec, frac, incl, orig = unpack(buf, pos)
            if not incl and not (sec | frac | orig) and base + pos >= zeros_from:
                zeros_from = self.zero_run(buf, pos, base, count)
                if zeros_from < 0:
                    break
            if incl > max_len:
                self.corrupt_length(base + pos, count, incl, max_len)
                break
            stop = pos + 16 + incl
            if stop > end:
                if batch:
                    self._packets = count
                    yield batch
                    batch = []
                    append = batch.append
                buf = buf[pos:] + _read_some(read, max(CHUNK, incl + 16))
                base += pos
                pos = 0
                stop = 16 + incl
                if stop > len(buf):
                    self.cut_record(base, count, len(buf) - 16, incl)
                    break
            count += 1
            append((sec * 1_000_000_000 + frac * mult, linktype, buf[pos + 16 : stop], orig))
            pos = stop
        self._packets = count
        if batch:
            yield batch

    # what ``_pcap`` and the compiled core (``analyzer.capture.compiled``) share: the header, the damage warnings

    def pcap_header(self) -> tuple[str, int, int, int]:
        """The pcap file header: byte order, timestamp multiplier to ns, link type, largest record length; the
        file's one interface is added to ``interfaces``."""
        head = self._head
        order, mult = PCAP_MAGIC[head[:4]]
        _maj, _min, _zone, _sig, snaplen, network = struct.unpack_from(order + "HHiIII", head, 4)
        linktype = network & 0xFFFF
        self.interfaces.append(Interface(linktype, snaplen, tsresol=9 if mult == 1 else 6))
        return order, mult, linktype, max(STANDARD_MAX_SNAPLEN, snaplen if snaplen < MAX_RECORD else 0)

    def pcap_linktype(self) -> int:
        """The link type of a pcap file (its header only: nothing is added to ``interfaces``)."""
        order, _mult = PCAP_MAGIC[self._head[:4]]
        return struct.unpack_from(order + "I", self._head, 20)[0] & 0xFFFF

    def zero_run(self, buf: bytes, pos: int, base: int, count: int) -> int:
        """An all-zero record header at ``buf[pos]``: padding (a preallocated file) or a bomb (1 GiB of zeros in a
        1 MB gzip). Look ahead once, so that a long run is named at once instead of read record by record: the
        file offset before which zero-filling is ruled out, or -1 (zero-filled: warned, or raises if no frame)."""
        run = buf[pos : pos + ZERO_RUN]
        nonzero = len(run) - len(run.lstrip(b"\0"))
        if nonzero == ZERO_RUN:
            self._zero_filled(base + pos, count)
            return -1
        return base + pos + (nonzero if nonzero < len(run) else len(run))

    def partial_header(self, got: int, offset: int, count: int) -> None:
        self._warn(
            f"capture cut short: a partial record header ({got} bytes) at byte offset {offset}, after frame {count}"
        )

    def corrupt_length(self, offset: int, count: int, incl: int, max_len: int) -> None:
        self._warn(
            f"corrupt record at byte offset {offset} (frame {count + 1}): captured length {incl} "
            f"exceeds the maximum {max_len}; the rest of the file is skipped"
        )

    def cut_record(self, offset: int, count: int, got: int, incl: int) -> None:
        self._warn(
            f"capture cut short: frame {count + 1} at byte offset {offset} has {got} of "
            f"its {incl} bytes (the capture was probably interrupted)"
        )

    def unreadable(self, e: OSError) -> None:
        self._warn(f"input unreadable after frame {self._packets}: {e}")

    def _zero_filled(self, offset: int, count: int) -> None:
        what = f"only zero bytes from byte offset {offset} (at least {ZERO_RUN} of them, where records should be)"
        if not count:
            where = f"{self.source.name}: " if self.source.name != "-" else "standard input: "
            packed = f"{self.source.compression}-compressed " if self.source.compression else ""
            raise CaptureError(
                f"{where}a {packed}pcap file of empty records: a header, then {what}; a zero-filled file or a "
                "decompression bomb, not a capture"
            )
        self._warn(f"{what}, after frame {count}: zero-filled to the end (a preallocated file?); the rest is skipped")

    # -- pcapng -----------------------------------------------------------------------------------------------

    def _pcapng(self) -> Iterator[list[Record]]:
        read = self.source.stream.read
        buf = self._head
        pos = 0
        base = 0
        order = "<"
        # per section: interface id -> (linktype, ts multiplier, ts divisor, ts offset ns, snaplen)
        ifaces: list[tuple[int, int, int, int, int]] = []
        count = 0
        epb = struct.Struct("<IIIII").unpack_from
        u32 = struct.Struct("<I").unpack_from
        batch: list[Record] = []
        while True:
            end = len(buf)
            if end - pos < 12:
                if batch:
                    yield batch
                    batch = []
                buf = buf[pos:] + _read_some(read, CHUNK)
                base += pos
                pos = 0
                end = len(buf)
                if end == 0:
                    break
                if end < 12:
                    self._warn(f"capture cut short: a partial block header at byte offset {base}")
                    break
            btype = u32(buf, pos)[0]
            if btype == PCAPNG_SHB:
                bom = buf[pos + 8 : pos + 12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    order = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    order = ">"
                else:
                    self._warn(f"corrupt section header at byte offset {base + pos}; the rest is skipped")
                    break
                epb = struct.Struct(order + "IIIII").unpack_from
                u32 = struct.Struct(order + "I").unpack_from
                ifaces = []
            blen = u32(buf, pos + 4)[0]
            if blen < 12 or blen % 4 or blen > MAX_RECORD:
                self._warn(
                    f"corrupt block length {blen} at byte offset {base + pos} (after frame {count}); "
                    "the rest of the file is skipped"
                )
                break
            if blen < MIN_BLOCK_LEN.get(btype, 12):
                self._warn(
                    f"corrupt block at byte offset {base + pos} (after frame {count}): its length {blen} is too "
                    f"short for a block of type {btype:#x} (at least {MIN_BLOCK_LEN[btype]}); the rest of the file "
                    "is skipped"
                )
                break
            stop = pos + blen
            if stop > end:
                if batch:
                    yield batch
                    batch = []
                buf = buf[pos:] + _read_some(read, max(CHUNK, blen))
                base += pos
                pos = 0
                stop = blen
                if stop > len(buf):
                    what = f"frame {count + 1}" if btype in (BLOCK_EPB, BLOCK_SPB, BLOCK_PB) else "a block"
                    self._warn(
                        f"capture cut short: {what} at byte offset {base} has {len(buf)} of its {blen} bytes "
                        "(the capture was probably interrupted)"
                    )
                    break
            if u32(buf, stop - 4)[0] != blen:
                self._warn(
                    f"corrupt block at byte offset {base + pos}: its trailing length does not match {blen}; "
                    "the rest of the file is skipped"
                )
                break
            if btype == BLOCK_EPB:
                iface, hi, lo, caplen, orig = epb(buf, pos + 8)
                if caplen > blen - 32 or iface >= len(ifaces):
                    self._warn(
                        f"corrupt packet block at byte offset {base + pos} (frame {count + 1}): "
                        + ("interface id unknown" if iface >= len(ifaces) else "captured length too large")
                        + "; the rest of the file is skipped"
                    )
                    break
                lt, mul, div, off, _snap = ifaces[iface]
                count += 1
                self._packets = count
                batch.append((((hi << 32) | lo) * mul // div + off, lt, buf[pos + 28 : pos + 28 + caplen], orig))
            elif btype == BLOCK_SPB:
                if not ifaces:
                    self._warn(f"simple packet block before any interface at byte offset {base + pos}; skipped")
                    break
                lt, _mul, _div, _off, snap = ifaces[0]
                orig = u32(buf, pos + 8)[0]
                caplen = min(orig, blen - 16, snap or orig)
                count += 1
                self._packets = count
                batch.append((0, lt, buf[pos + 12 : pos + 12 + caplen], orig))
            elif btype == BLOCK_IDB:
                ifaces.append(self._interface(buf[pos + 8 : stop - 4], order))
            elif btype == BLOCK_PB:
                iface = struct.unpack_from(order + "H", buf, pos + 8)[0]
                hi, lo, caplen, orig = struct.unpack_from(order + "IIII", buf, pos + 12)
                if iface >= len(ifaces) or caplen > blen - 32:
                    self._warn(f"corrupt packet block at byte offset {base + pos}; the rest is skipped")
                    break
                lt, mul, div, off, _snap = ifaces[iface]
                count += 1
                self._packets = count
                batch.append((((hi << 32) | lo) * mul // div + off, lt, buf[pos + 28 : pos + 28 + caplen], orig))
            elif btype == BLOCK_DSB and blen >= 20:
                stype, slen = struct.unpack_from(order + "II", buf, pos + 8)
                self.secrets.append(DecryptionSecret(stype, bytes(buf[pos + 16 : pos + 16 + slen]), count))
            pos = stop
        if batch:
            yield batch

    def _interface(self, body: bytes, order: str) -> tuple[int, int, int, int, int]:
        linktype, _res, snaplen = struct.unpack_from(order + "HHI", body, 0)
        tsresol = 6
        offset_s = 0
        name = None
        for code, value in _options(body[8:], order):
            if code == 9 and value:
                tsresol = value[0]
            elif code == 14 and len(value) >= 8:
                offset_s = struct.unpack_from(order + "q", value)[0]
            elif code == 2:
                name = value.decode("utf-8", "replace")
        self.interfaces.append(Interface(linktype, snaplen, name, tsresol))
        exp = tsresol & 0x7F
        if tsresol & 0x80:
            mul, div = 1_000_000_000, 1 << exp
        elif exp <= 9:
            mul, div = 10 ** (9 - exp), 1
        else:
            mul, div = 1, 10 ** (exp - 9)
        return linktype, mul, div, offset_s * 1_000_000_000, snaplen

    def _warn(self, message: str) -> None:
        self.warnings.append(message)


def _options(data: bytes, order: str) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos + 4 <= len(data):
        code, length = struct.unpack_from(order + "HH", data, pos)
        if code == 0:
            return
        yield code, data[pos + 4 : pos + 4 + length]
        pos += 4 + ((length + 3) & ~3)


def _read_some(read: object, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads (decompressors, pipes) until ``n`` or end of input."""
    out = read(n)  # type: ignore[operator]
    if len(out) >= n or not out:
        return bytes(out)
    parts = [out]
    got = len(out)
    while got < n:
        try:
            more = read(n - got)  # type: ignore[operator]
        except OSError:
            break  # damaged input: return what came before; the error repeats on the next read

        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    return _read_some(stream.read, n)
