"""Container reading: pcap (both byte orders, µs/ns), pcapng (interfaces, resolutions, block kinds),
compression, damage and files that are not captures."""

from __future__ import annotations

import bz2
import gzip
import lzma
import random
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from analyzer.capture.container import DecryptionSecret
from analyzer.capture.reader import open_capture
from analyzer.errors import CaptureError
from tests import pcapbuild as pb

T0 = 1_700_000_000_123_456_000
FRAMES = [pb.ether(pb.ipv4("10.0.0.1", "10.0.0.2", 17, pb.udp(1000 + i, 53, b"q" * i))) for i in range(3)]


def records(path: Path) -> list[tuple[int, int, bytes, int]]:
    with open_capture(path) as cap:
        return list(cap.reader.records())


def write(tmp_path: Path, data: bytes, name: str = "c.pcap") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, big_endian: bool, nano: bool) -> None:
    stamps = [T0 + 789 * nano, T0 + 1_000_000_001 * nano + 1000, T0 + 2_000_000_000]
    raw = pb.pcap(list(zip(stamps, FRAMES, strict=True)), nano=nano, big_endian=big_endian)
    got = records(write(tmp_path, raw))
    assert [r[0] for r in got] == stamps
    assert [r[2] for r in got] == FRAMES
    assert {r[1] for r in got} == {1}


def test_pcapng_interfaces_resolutions_and_blocks(tmp_path: Path) -> None:
    raw_ip = pb.ipv4("10.0.0.9", "10.0.0.8", 17, pb.udp(5, 6, b"x"))
    data = (
        pb.shb()
        + pb.idb(1)  # Ethernet, default microseconds
        + pb.idb(101, tsresol=9)  # raw IP, nanoseconds
        + pb.idb(1, tsresol=0x80 | 10)  # binary resolution: units of 2^-10 s
        + pb.epb(0, 1_700_000_000_000_001, FRAMES[0])
        + pb.custom_block()  # unknown block: skipped
        + pb.dsb(DecryptionSecret.TLS_KEY_LOG, b"CLIENT_RANDOM aa bb\n")
        + pb.epb(1, 1_700_000_000_000_000_007, raw_ip)
        + pb.epb(2, 3 * 1024 + 512, FRAMES[1])
    )
    path = write(tmp_path, data, "c.pcapng")
    with open_capture(path) as cap:
        got = list(cap.reader.records())
        assert cap.format == "pcapng"
        assert [i.linktype for i in cap.interfaces] == [1, 101, 1]
        assert cap.secrets == [DecryptionSecret(0x544C534B, b"CLIENT_RANDOM aa bb\n", 1)]
    assert [(ts, lt) for ts, lt, _, _ in got] == [
        (1_700_000_000_000_001_000, 1),
        (1_700_000_000_000_000_007, 101),
        (3_500_000_000, 1),
    ]
    assert got[1][2] == raw_ip


def test_pcapng_big_endian_and_simple_packet_block(tmp_path: Path) -> None:
    data = pb.shb(">") + pb.idb(1, snaplen=0, o=">") + pb.spb(FRAMES[2], o=">") + pb.epb(0, 5, FRAMES[0], o=">")
    got = records(write(tmp_path, data, "c.pcapng"))
    assert [r[2] for r in got] == [FRAMES[2], FRAMES[0]]
    assert got[1][0] == 5_000


def test_pcapng_second_section_resets_interfaces(tmp_path: Path) -> None:
    data = (
        pb.shb()
        + pb.idb(101)
        + pb.epb(0, 1, FRAMES[0][14:])
        + pb.shb(">")
        + pb.idb(1, o=">")
        + pb.epb(0, 2, FRAMES[1], o=">")
    )
    got = records(write(tmp_path, data, "c.pcapng"))
    assert [(r[1], r[2]) for r in got] == [(101, FRAMES[0][14:]), (1, FRAMES[1])]


@pytest.mark.parametrize(
    ("codec", "compress"),
    [
        ("gzip", gzip.compress),
        ("bzip2", bz2.compress),
        ("xz", lzma.compress),
        ("zstd", lambda b: zstandard.ZstdCompressor().compress(b)),
    ],
)
def test_compressed_input_detected_by_content(tmp_path: Path, codec: str, compress: object) -> None:
    raw = pb.pcap([(T0, f) for f in FRAMES])
    path = write(tmp_path, compress(raw), "capture.pcap")  # type: ignore[operator]  # the name says nothing
    with open_capture(path) as cap:
        assert cap.compression == codec
        assert [r[2] for r in cap.reader.records()] == FRAMES


def test_standard_input(tmp_path: Path) -> None:
    raw = gzip.compress(pb.pcap([(T0, f) for f in FRAMES]))
    code = "from analyzer.capture.reader import open_capture\nc=open_capture('-')\nprint(len(list(c.reader.records())))"
    out = subprocess.run([sys.executable, "-c", code], input=raw, capture_output=True, check=True)
    assert out.stdout.strip() == b"3"


def test_last_record_cut_short(tmp_path: Path) -> None:
    raw = pb.pcap([(T0, f) for f in FRAMES])
    with open_capture(write(tmp_path, raw[:-5])) as cap:
        assert [r[2] for r in cap.reader.records()] == FRAMES[:2]
        (warning,) = cap.warnings
    assert "cut short" in warning
    assert "frame 3" in warning


def test_partial_record_header(tmp_path: Path) -> None:
    raw = pb.pcap([(T0, f) for f in FRAMES])
    with open_capture(write(tmp_path, raw + b"\x01\x02\x03")) as cap:
        assert len(list(cap.reader.records())) == 3
        assert "partial record header" in cap.warnings[0]


def test_garbage_after_valid_header(tmp_path: Path) -> None:
    raw = pb.pcap([(T0, FRAMES[0])]) + b"\xff" * 64
    with open_capture(write(tmp_path, raw)) as cap:
        assert len(list(cap.reader.records())) == 1
        assert "corrupt record at byte offset" in cap.warnings[0]
        assert f"offset {24 + 16 + len(FRAMES[0])}" in cap.warnings[0]


def test_pcapng_corrupt_block_length(tmp_path: Path) -> None:
    good = pb.shb() + pb.idb(1) + pb.epb(0, 1, FRAMES[0])
    bad = bytearray(pb.epb(0, 2, FRAMES[1]))
    bad[4:8] = (7).to_bytes(4, "little")
    with open_capture(write(tmp_path, good + bytes(bad), "c.pcapng")) as cap:
        assert len(list(cap.reader.records())) == 1
        assert "corrupt block length 7" in cap.warnings[0]


def test_pcapng_trailing_length_mismatch(tmp_path: Path) -> None:
    good = pb.shb() + pb.idb(1) + pb.epb(0, 1, FRAMES[0])
    bad = bytearray(pb.epb(0, 2, FRAMES[1]))
    bad[-4:] = (4).to_bytes(4, "little")
    with open_capture(write(tmp_path, good + bytes(bad), "c.pcapng")) as cap:
        assert len(list(cap.reader.records())) == 1
        assert "trailing length" in cap.warnings[0]


@pytest.mark.parametrize(
    ("btype", "body"), [(1, b""), (1, b"\x01\x00\x00\x00"), (6, b""), (6, bytes(16)), (2, b""), (3, b"")]
)
def test_pcapng_block_too_short_for_its_type(tmp_path: Path, btype: int, body: bytes) -> None:
    """Lengths that agree but leave no room for the block's fixed fields (found by ``make fuzz``: an interface
    block of 12 bytes, an empty packet block at the end of the file, raised ``struct.error``)."""
    good = pb.shb() + pb.idb(1) + pb.epb(0, 1, FRAMES[0])
    with open_capture(write(tmp_path, good + pb._block(btype, body), "c.pcapng")) as cap:
        assert len(list(cap.reader.records())) == 1
        assert f"too short for a block of type {btype:#x}" in cap.warnings[0]


def test_pcapng_cut_inside_packet_block(tmp_path: Path) -> None:
    data = pb.shb() + pb.idb(1) + pb.epb(0, 1, FRAMES[0]) + pb.epb(0, 2, FRAMES[1])
    with open_capture(write(tmp_path, data[:-10], "c.pcapng")) as cap:
        assert len(list(cap.reader.records())) == 1
        assert "frame 2" in cap.warnings[0]


def test_corrupt_gzip_stream_keeps_what_was_read(tmp_path: Path) -> None:
    rnd = random.Random(7)
    frames = [pb.ether(pb.ipv4("10.0.0.1", "10.0.0.2", 17, pb.udp(1, 2, rnd.randbytes(1000)))) for _ in range(600)]
    z = gzip.compress(pb.pcap([(T0, f) for f in frames]))
    damaged = z[: len(z) // 2] + bytes(64)
    with open_capture(write(tmp_path, damaged)) as cap:
        got = [r[2] for r in cap.reader.records()]
        assert len(got) >= 299  # every frame whose bytes were in the first half (the last one may be cut)
        assert got[:299] == frames[:299]  # the 300th ends in the 64 zeros, read as stored deflate data
        assert "the gzip stream is cut short: the file ends at byte offset" in cap.warnings[0]  # zeros taken as data


@pytest.mark.parametrize(
    ("content", "looks_like"),
    [
        (b'{"station": "CP-1"}', "JSON text"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "an HTML document"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "plain text"),
        (b"", "an empty file"),
        (b"PK\x03\x04" + bytes(40), "a ZIP archive"),
        (bytes(range(200, 256)), "unrecognised binary data"),
        # mtime=0: the bytes are in the test id, which every xdist worker must compute alike (a gzip header holds the
        # time of compression, so two workers collecting on either side of a second boundary disagreed)
        (gzip.compress(b"hello world, not a capture", mtime=0), "gzip-compressed plain text"),
    ],
)
def test_not_a_capture_says_what_it_looks_like(tmp_path: Path, content: bytes, looks_like: str) -> None:
    with pytest.raises(CaptureError) as e:
        open_capture(write(tmp_path, content, "x.pcap"))
    message = str(e.value)
    assert "not a packet capture" in message
    assert looks_like in message
    assert "\n" not in message


def test_directory_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="is a directory"):
        open_capture(tmp_path)
    with pytest.raises(CaptureError, match="cannot open"):
        open_capture(tmp_path / "nope.pcap")
