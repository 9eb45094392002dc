"""Property tests of the capture reader (``open_capture``: decompression, pcap and pcapng containers, link layers,
IP) on damaged sample captures and arbitrary bytes. Whatever the file: either ``CaptureError`` when it opens (not a
capture, nothing to read; or ``OSError``, ``DamagedInput`` when a compressed file is damaged before its first bytes:
both are an unreadable capture, exit status 3, for the CLI) with a one-line message, or a stream of well-formed IP
packets, with damage reported as one-line warnings; never anything else."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import struct
import tempfile

from hypothesis import given
from hypothesis import strategies as st

from analyzer.capture.reader import open_capture
from analyzer.errors import CaptureError
from tests import pcapbuild as pb
from tests.fuzz import samples
from tests.fuzz.strategies import EDIT, EDITS, fuzz, mutate

SEEDS = [(samples.CAPTURES / name).read_bytes() for name in samples.READER_CAPTURES]
INTERESTING32 = (0, 1, 11, 12, 13, 16, 28, 0x7FFF, 0xFFFF, 1 << 24, (1 << 24) + 4, 0x7FFFFFFF, 0xFFFFFFFC, 0xFFFFFFFF)
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
PCAP_HEADER_NS_BE = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 0, 101)


def records(data: bytes) -> list[tuple[int, bytes]]:
    """(offset of the record header, header + data) of each record of a little-endian pcap file."""
    out = []
    pos = 24
    while pos + 16 <= len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        out.append((pos, data[pos : pos + 16 + incl]))
        pos += 16 + incl
    return out


def as_pcapng(data: bytes, order: str) -> bytes:
    """The same packets as a pcapng file (``order``: byte order), with a Decryption Secrets Block in the middle."""
    recs = records(data)
    out = [pb.shb(order), pb.idb(1, tsresol=6, o=order)]
    for i, (_pos, rec) in enumerate(recs):
        sec, usec, _incl, orig = struct.unpack_from("<IIII", rec)
        out.append(pb.epb(0, sec * 1_000_000 + usec, rec[16:], orig, o=order))
        if i == len(recs) // 2:
            out.append(pb.dsb(0x544C534B, b"CLIENT_RANDOM 00 11\n", o=order))
    return b"".join(out)


def block_offsets(data: bytes, order: str) -> list[int]:
    out = []
    pos = 0
    while pos + 12 <= len(data):
        out.append(pos)
        blen = struct.unpack_from(order + "I", data, pos + 4)[0]
        if blen < 12:
            break
        pos += blen
    return out


# one lie: (which record or block, which 4-byte field of its header, the value)
LIES = st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 7), st.sampled_from(INTERESTING32)), max_size=3)


def lie(data: bytes, offsets: list[int], lies: list[tuple[int, int, int]], order: str) -> bytes:
    b = bytearray(data)
    for which, field, value in lies:
        if not offsets:
            break
        at = offsets[which % len(offsets)] + 4 * field
        if at + 4 <= len(b):
            b[at : at + 4] = struct.pack(order + "I", value)
    return bytes(b)


def compress(data: bytes, codec: str) -> bytes:
    if codec == "gzip":
        return gzip.compress(data, mtime=0)
    if codec == "bzip2":
        return bz2.compress(data)
    if codec == "xz":
        return lzma.compress(data)
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


@st.composite
def damaged_captures(draw: st.DrawFn) -> bytes:
    """A sample capture, as pcap or pcapng, with lying record/block header fields, byte edits, truncation,
    duplicated or reordered records, appended garbage, concatenation, compression (itself maybe damaged)."""
    data = draw(st.sampled_from(SEEDS))
    shape = draw(st.sampled_from(["pcap", "pcap", "pcapng<", "pcapng>"]))
    if shape == "pcap":
        recs = records(data)
        if recs and draw(st.booleans()):
            order = draw(st.permutations(range(len(recs))))
            keep = draw(st.integers(1, len(recs) + 3))
            data = data[:24] + b"".join(recs[order[i % len(order)]][1] for i in range(keep))
        lies = [(which, field % 4, value) for which, field, value in draw(LIES)]  # a record header has 4 fields
        data = lie(data, [p for p, _r in records(data)], lies, "<")
    else:
        o = shape[-1]
        data = as_pcapng(data, o)
        data = lie(data, block_offsets(data, o), draw(LIES), o)
        if draw(st.integers(0, 2)):  # a block whose lengths agree but whose body is too short for its type
            offsets = block_offsets(data, o)
            at = offsets[draw(st.integers(0, len(offsets) - 1))]
            btype = draw(st.sampled_from([1, 6, 2, 3, 10, 5, 0x0A0D0D0A]))
            short = pb._block(btype, data[at + 8 : at + 8 + draw(st.sampled_from([0, 4, 12, 20]))], o)
            data = data[:at] + short + data[at:]
    for _t, kind, pos, value in draw(EDITS):
        data = mutate(data, kind % 5, pos, value)
    tail = draw(st.sampled_from([b"", b"\n", b"\x00" * 17, None]))
    if tail is None:
        data += draw(st.sampled_from(SEEDS))
    else:
        data += tail
    codec = draw(st.sampled_from([None, None, None, "gzip", "bzip2", "xz", "zstd"]))
    if codec:
        data = compress(data, codec)
        for _t, kind, pos, value in draw(st.lists(EDIT, max_size=2)):
            data = mutate(data, kind % 5, pos, value)
    return data


ARBITRARY = st.tuples(
    st.sampled_from([b"", PCAP_HEADER, PCAP_HEADER_NS_BE, pb.shb("<"), pb.shb(">") + pb.idb(1, o=">"), b"\x1f\x8b"]),
    st.binary(max_size=400),
).map(lambda t: t[0] + t[1])


def read_all(data: bytes) -> None:
    """Open and read ``data`` as a capture file, checking everything the reader hands out."""
    fd, name = tempfile.mkstemp(suffix=".pcap")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            cap = open_capture(name)
        except (CaptureError, OSError) as e:  # OSError: a compressed file damaged before its first bytes (exit 3)
            refused: str | None = str(e)
        else:
            refused = None
        if refused is not None:
            assert refused
            assert "\n" not in refused
            return
        with cap:
            last = 0
            for frame, ts, proto, src, dst, transport, wire_len in cap.ip_packets():
                assert frame > last
                last = frame
                assert isinstance(ts, int)
                assert 0 <= proto <= 255
                assert len(src) == len(dst)
                assert len(src) in (4, 16)
                assert isinstance(transport, bytes)
                assert isinstance(wire_len, int)
            assert cap.format in ("pcap", "pcapng")
            assert last <= cap.stats.packets
            if cap.compression is None:
                assert cap.stats.packets <= len(data) // 12
            for w in cap.warnings:
                assert isinstance(w, str)
                assert w
                assert "\n" not in w
    finally:
        os.unlink(name)


@fuzz(300)
@given(damaged_captures())
def test_damaged_sample_captures_are_read_or_refused(data: bytes) -> None:
    read_all(data)


@fuzz(200)
@given(ARBITRARY)
def test_arbitrary_bytes_are_read_or_refused(data: bytes) -> None:
    read_all(data)


def test_the_samples_read_cleanly() -> None:
    for data in SEEDS:
        for shape in (data, as_pcapng(data, "<"), as_pcapng(data, ">"), compress(data, "gzip")):
            read_all(shape)
