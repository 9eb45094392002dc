"""Regression tests for the fuzz campaign's reproducers in ``../shared/robustness/`` (its README.md says what each
must do): every case ends with a report or a one-line error, never a traceback, and never exit 1 for a crash."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from analyzer.cli import cli
from analyzer.decoders.x509 import DerError, cert_info, name_from_der
from analyzer.errors import EXIT_INTERNAL
from analyzer.timefmt import clock_utc, iso_utc
from tests.conftest import ROBUSTNESS


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def analyze_json(path: Path, tmp_path: Path) -> tuple[int, dict]:
    res = invoke("analyze", str(path), "-o", str(tmp_path), "--format", "json,md,html")
    assert "Traceback" not in res.output
    stem = path.name.split(".")[0]
    return res.exit_code, json.loads((tmp_path / f"{stem}.json").read_text(encoding="utf-8"))


# --- 1. malformed certificates -------------------------------------------------------------------------------


def test_x509_version_v2_is_a_malformed_certificate_not_a_crash(tmp_path: Path) -> None:
    code, report = analyze_json(ROBUSTNESS / "crash_x509_version_v2.pcap", tmp_path)
    assert code == 1  # the charger rejects the certificate: a fault found, and the report written
    certs = [c for t in report["chargers"][0]["tls"] for c in t["certificates"]]
    assert any("malformed" in c and "version" in c["malformed"].lower() for c in certs)
    assert all(c["subject"] == "CN=csms.example" for c in certs)  # the lenient reader still read the names


def test_certificate_request_ca_name_with_a_huge_oid_arc_is_kept_as_hex(tmp_path: Path) -> None:
    _code, report = analyze_json(ROBUSTNESS / "crash_certreq_ca_oid_huge_arc.pcap", tmp_path)
    assert report["chargers"][0]["tls"][0]["certificate_request"] is True
    res = invoke("timeline", "--format", "json", str(ROBUSTNESS / "crash_certreq_ca_oid_huge_arc.pcap"))
    assert res.exit_code == 0
    req = [json.loads(line) for line in res.output.splitlines() if '"tls.certificate_request"' in line]
    assert req
    assert req[0]["fields"]["ca_names"][0].startswith("#30")


def test_oid_arc_longer_than_256_bits_is_a_der_error() -> None:
    arc = b"\xff" * 700 + b"\x7f"  # one 4,907-bit arc: str() of it would pass Python's 4,300-digit limit
    oid = b"\x06\x82" + (len(arc) + 1).to_bytes(2, "big") + b"\x55" + arc
    atv = b"\x30\x82" + (len(oid) + 4).to_bytes(2, "big") + oid + b"\x0c\x02ab"
    rdn = b"\x31\x82" + len(atv).to_bytes(2, "big") + atv
    name = b"\x30\x82" + len(rdn).to_bytes(2, "big") + rdn
    with pytest.raises(DerError, match="256 bits"):
        name_from_der(name)


def test_cert_info_never_raises_on_any_version_value() -> None:
    der = _certificate_der(ROBUSTNESS / "crash_x509_version_v2.pcap")
    at = der.find(b"\xa0\x03\x02\x01") + 4  # tbsCertificate [0] EXPLICIT Version INTEGER
    assert 4 < at < 20
    for version in (0, 1, 2, 3, 5, 0x7F):
        info = cert_info(der[:at] + bytes([version]) + der[at + 1 :])
        assert info.sha256
        if version not in (0, 2):  # v1 and v3 are what cryptography takes
            assert info.parse_error
            assert info.subject == "CN=csms.example"


def _certificate_der(pcap: Path) -> bytes:
    from analyzer.engine import build_timeline

    built = build_timeline(str(pcap))
    for e in built.timeline.events:
        if e.kind == "tls.certificate":
            assert e.certificates[0].parse_error  # the reproducer's certificate is malformed
    data = pcap.read_bytes()
    start = data.find(b"\x30\x82", data.find(b"\x0b\x00") + 10)  # first DER SEQUENCE after the Certificate message
    length = int.from_bytes(data[start + 2 : start + 4], "big")
    return data[start : start + 4 + length]


# --- 2. timestamps out of range --------------------------------------------------------------------------------


def test_iso_utc_out_of_range_is_said_not_raised() -> None:
    assert iso_utc(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert iso_utc(-1) == "1969-12-31T23:59:59.999999999Z"
    assert iso_utc(2**62 * 10**9) == "out of range (+4611686018427387904 s from 1970-01-01)"
    assert iso_utc(-(2**62) * 10**9) == "out of range (-4611686018427387904 s from 1970-01-01)"
    assert clock_utc(2**62 * 10**9) == "out of range"
    assert clock_utc(1_700_000_000_123_456_789) == "22:13:20.123456"


def test_pcapng_tsoffset_beyond_gmtime_is_reported_as_out_of_range(tmp_path: Path) -> None:
    good = (ROBUSTNESS / "crash_pcapng_tsoffset_2p62.pcapng").read_bytes()
    bad_offset = struct.pack("<HHq", 14, 8, 2**62)
    assert good.count(bad_offset) == 1
    negative = tmp_path / "negative.pcapng"
    negative.write_bytes(good.replace(bad_offset, struct.pack("<HHq", 14, 8, -(2**62))))
    for path in (ROBUSTNESS / "crash_pcapng_tsoffset_2p62.pcapng", negative):
        out = tmp_path / path.stem
        code, report = analyze_json(path, out)
        assert code in (1, 4)
        assert report["capture"]["first"].startswith("out of range (")
        assert report["chargers"]  # everything else reported
        stem = path.name.split(".")[0]
        assert "out of range" in (out / f"{stem}.md").read_text(encoding="utf-8")
        assert "out of range" in (out / f"{stem}.html").read_text(encoding="utf-8")
        table = invoke("timeline", str(path))
        assert table.exit_code == 0
        assert "\nout of range     1 " in table.output
        lines = invoke("timeline", "--format", "json", str(path))
        assert lines.exit_code == 0
        assert all(json.loads(x)["time"].startswith("out of range (") for x in lines.output.splitlines())
        flows = invoke("flows", "--format", "json", str(path))
        assert flows.exit_code == 0
        assert '"first":"out of range (' in flows.output


# --- 3. lone surrogates, 4. non-finite numbers: strict JSON everywhere --------------------------------------------


def _strict(text: str) -> object:
    """Parse as strict JSON: no Infinity/NaN constants; the text must encode as UTF-8."""
    text.encode("utf-8")

    def reject(name: str) -> object:
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=reject)


def test_timeline_shows_a_lone_surrogate_escaped(tmp_path: Path) -> None:
    path = str(ROBUSTNESS / "crash_timeline_json_lone_surrogate.pcap")
    lines = invoke("timeline", "--format", "json", path)
    assert lines.exit_code == 0
    rows = [_strict(x) for x in lines.output.splitlines()]
    calls = [r for r in rows if r["event"] == "ocpp.call" and r["fields"]["action"] == "BootNotification"]
    assert "\ud800" in [c["fields"]["payload"]["chargePointVendor"] for c in calls]  # the escape round-trips
    assert "\\ud800" in lines.output
    assert "\ud800" not in lines.output
    table = invoke("timeline", path)
    assert table.exit_code == 0
    assert "\\ud800" in table.output
    assert "\ud800" not in table.output
    report = invoke("analyze", path, "-o", "-", "--format", "json")
    _strict(report.stdout)  # the JSON report alone: the per-charger line goes to standard error
    assert "\\ud800" in report.stdout


def test_ocpp_number_1e999_never_puts_infinity_in_json(tmp_path: Path) -> None:
    path = ROBUSTNESS / "json_report_infinity.pcap"
    code, report = analyze_json(path, tmp_path)
    _strict((tmp_path / "json_report_infinity.json").read_text(encoding="utf-8"))
    # validated as the infinity a peer's parser sees (not an integer), written as the text the charger sent
    assert code == 1
    assert report["chargers"][0]["root_cause"]["fault"] == "ocpp.schema_violation"
    assert "transactionId is not of type 'integer'" in report["chargers"][0]["root_cause"]["summary"]
    assert '"transactionId": "1e999"' in (tmp_path / "json_report_infinity.json").read_text(encoding="utf-8")
    assert "Infinity" not in (tmp_path / "json_report_infinity.html").read_text(encoding="utf-8")
    stdout = invoke("analyze", str(path), "-o", "-", "--format", "json")
    _strict(stdout.stdout)
    lines = invoke("timeline", "--format", "json", str(path))
    for line in lines.output.splitlines():
        _strict(line)
    assert '"transactionId":"1e999"' in lines.output
    _strict(invoke("flows", "--format", "json", str(path)).output)


def test_strict_dumps_turns_every_non_finite_number_into_a_string() -> None:
    from analyzer.jsontext import BigNumber, dumps, parse_float

    value = json.loads("[1e999, -1e999, 1.5, 1e-999]", parse_float=parse_float)
    assert value[0] == float("inf")
    assert isinstance(value[0], BigNumber)
    doc = {"a": value, "b": float("nan"), "c": (float("-inf"),), "d": "x\udfffy"}
    assert _strict(dumps(doc)) == {"a": ["1e999", "-1e999", 1.5, 0.0], "b": "NaN", "c": ["-Infinity"], "d": "x\udfffy"}
    import pickle

    assert pickle.loads(pickle.dumps(value[0])).text == "1e999"


# --- 6. unreadable input and output ------------------------------------------------------------------------------


def test_pcap_of_only_its_magic_is_unreadable_exit_3(tmp_path: Path) -> None:
    for name, data in (("magic.pcap", b"\xd4\xc3\xb2\xa1"), ("shb.pcapng", b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00")):
        path = tmp_path / name
        path.write_bytes(data)
        res = invoke("analyze", str(path), "-o", str(tmp_path / "out"))
        assert res.exit_code == 3
        assert "file header cut short" in res.output
        assert len(res.output.strip().splitlines()) == 1


def test_a_capture_damaged_before_its_first_packet_is_unreadable_exit_3(tmp_path: Path) -> None:
    """A sound file header, then a first record that lies about its length: nothing can be read. The report says
    why, and the status is 3 (unreadable), not 4 (no charger)."""
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    lying = struct.pack("<IIII", 1_800_000_000, 0, 0x7FFFFFF0, 0x7FFFFFF0) + b"\x00" * 40
    path = tmp_path / "lying.pcap"
    path.write_bytes(header + lying)
    res = invoke("analyze", str(path), "-o", str(tmp_path / "out"), "--format", "json")
    assert res.exit_code == 3, res.output
    report = json.loads((tmp_path / "out" / "lying.json").read_text())
    assert report["capture"]["packets"] == 0
    assert report["capture"]["warnings"]


def test_output_that_cannot_be_written_is_one_line_and_exit_2(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    capture = str(ROBUSTNESS / "json_report_infinity.pcap")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for out, said in (
        (a_file, "is a file, not a directory"),
        (a_file / "sub", "cannot create the directory"),
        (Path("/proc/ghostcap-test-output"), "cannot create the directory"),  # unwritable even for root
    ):
        res = invoke("analyze", capture, "-o", str(out))
        assert res.exit_code == 2, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(f"error: -o {out}: {said}")
        assert "Traceback" not in res.output

    import analyzer.report.writer as writer

    def disk_full(path: Path, text: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer, "_write_atomic", disk_full)
    res = invoke("analyze", capture, "-o", str(tmp_path / "out"))
    assert res.exit_code == 2
    assert "No space left on device" in res.output
    assert "Traceback" not in res.output


# --- 7. internal errors: exit 5, one line, never 1 ----------------------------------------------------------------


def test_internal_error_in_analysis_exits_5_and_the_other_captures_are_reported(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import analyzer.engine as engine

    real = engine.analyze
    broken = str(ROBUSTNESS / "crash_x509_version_v2.pcap")

    def analyze(path, settings=None, salvage=False, workers=1):  # type: ignore[no-untyped-def]
        if str(path) == broken:
            raise TypeError("boom\nsecond line")
        return real(path, settings, salvage, workers)

    monkeypatch.setattr(engine, "analyze", analyze)
    monkeypatch.delenv("GHOSTCAP_DEBUG", raising=False)
    res = invoke("analyze", broken, str(ROBUSTNESS / "json_report_infinity.pcap"), "-o", str(tmp_path))
    assert res.exit_code == 5
    assert f"internal error: {broken}: TypeError: boom second line; please report\n" in res.output
    assert (tmp_path / "json_report_infinity.json").exists()


def test_internal_error_in_one_report_format_writes_the_others(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import analyzer.report.html as html

    def report_html(report: dict) -> str:
        raise KeyError("x")

    monkeypatch.setattr(html, "report_html", report_html)
    monkeypatch.delenv("GHOSTCAP_DEBUG", raising=False)
    res = invoke("analyze", str(ROBUSTNESS / "json_report_infinity.pcap"), "-o", str(tmp_path))
    assert res.exit_code == 5
    assert "internal error:" in res.output
    assert "(html report): KeyError: 'x'; please report" in res.output
    assert (tmp_path / "json_report_infinity.json").exists()
    assert (tmp_path / "json_report_infinity.md").exists()
    assert not (tmp_path / "json_report_infinity.html").exists()


def test_internal_error_in_timeline_and_flows_exits_5(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import analyzer.engine as engine
    import analyzer.report.flows as flows_out

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(engine, "build_timeline", broken)
    monkeypatch.setattr(flows_out, "flows_table", broken)
    monkeypatch.delenv("GHOSTCAP_DEBUG", raising=False)
    capture = str(ROBUSTNESS / "json_report_infinity.pcap")
    for args in (("timeline", capture), ("flows", capture)):
        res = invoke(*args)
        assert res.exit_code == 5
        assert (
            res.output.strip().splitlines()[-1] == "internal error: ZeroDivisionError: division by zero; please report"
        )
        assert "Traceback" not in res.output
    monkeypatch.setenv("GHOSTCAP_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        invoke("timeline", capture)


# --- 5. compressed captures: damage loses nothing before it; zero-filled input is named at once --------------------


def _codec(name: str):  # type: ignore[no-untyped-def]
    import bz2
    import gzip
    import lzma

    import zstandard

    return {
        "gzip": gzip.compress,
        "bzip2": bz2.compress,
        "xz": lzma.compress,
        "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    }[name]


def _frames(n: int, seed: int = 3) -> list[bytes]:
    import random

    from tests import pcapbuild as pb

    rnd = random.Random(seed)
    return [
        pb.ether(pb.ipv4("10.0.0.1", "10.0.0.2", 17, pb.udp(1000 + i % 100, 53, rnd.randbytes(60) * 4)))
        for i in range(n)
    ]


def _read(path: Path) -> tuple[list[bytes], list[str]]:
    from analyzer.capture.reader import open_capture

    with open_capture(path) as cap:
        return [r[2] for r in cap.reader.records()], cap.warnings


def _members_ignoring_trailing_bytes(data: bytes) -> bytes:
    """What ``gzip -dc`` gives: every complete gzip member, trailing garbage ignored."""
    import zlib

    out = b""
    while data[:2] == b"\x1f\x8b":
        d = zlib.decompressobj(31)
        out += d.decompress(data)
        data = d.unused_data
    return out


def test_gzip_reproducers_keep_every_packet_before_the_damage(tmp_path: Path) -> None:
    import zlib

    for name in (
        "gzip_plus_one_trailing_newline.pcap.gz",
        "gzip_300KB_plus_trailing_newline.pcap.gz",
        "gzip_cut_short_loses_all.pcap.gz",
    ):
        data = (ROBUSTNESS / name).read_bytes()
        plain = tmp_path / (name + ".pcap")
        plain.write_bytes(_members_ignoring_trailing_bytes(data) or zlib.decompressobj(31).decompress(data))
        expected, _ = _read(plain)
        got, warnings = _read(ROBUSTNESS / name)
        assert len(expected) >= 10
        assert got == expected, name
        assert "byte offset" in warnings[0]
        if "trailing" in name:
            assert f"followed by other data at byte offset {len(data) - 1}" in warnings[0]
        else:
            assert f"cut short: the file ends at byte offset {len(data)}" in warnings[0]
    res = invoke("analyze", str(ROBUSTNESS / "gzip_plus_one_trailing_newline.pcap.gz"), "-o", str(tmp_path / "o"))
    assert res.exit_code == 1  # the charger's fault is found again (it was "no charger found", exit 4)
    assert "fault ocpp.callerror @13" in res.output


def test_every_codec_keeps_what_comes_before_trailing_bytes_a_cut_or_corruption(tmp_path: Path) -> None:
    from tests import pcapbuild as pb

    frames = _frames(1500)  # ~470 KB: many decompressor pieces
    raw = pb.pcap([(1_700_000_000 * 10**9 + i * 1000, f) for i, f in enumerate(frames)])
    for codec in ("gzip", "bzip2", "xz", "zstd"):
        z = _codec(codec)(raw)
        got, warnings = _read(_w(tmp_path, f"{codec}-trailing", z + b"\n"))
        assert got == frames, codec
        assert f"the {codec} stream is followed by other data at byte offset {len(z)}" in warnings[0]

        got, warnings = _read(_w(tmp_path, f"{codec}-two", z + _codec(codec)(raw)))
        assert got[: len(frames)] == frames  # a second capture behind the first: its header is the damage
        assert len(warnings) == 1

        cut = z[: len(z) * 2 // 3]
        said = f"the {codec} stream is cut short: the file ends at byte offset {len(cut)}"
        if codec == "bzip2":  # bzip2 decompresses whole 900 kB blocks: this one is lost whole, nothing is readable
            with pytest.raises(OSError, match=said):
                _read(_w(tmp_path, f"{codec}-cut", cut))
        else:
            got, warnings = _read(_w(tmp_path, f"{codec}-cut", cut))
            assert got == frames[: len(got)]
            assert len(got) > len(frames) // 2, codec
            assert said in warnings[0]

        if codec == "bzip2":
            continue  # one 900 kB block, scrambled whole by a flipped byte (and its CRC checked only at its end)
        bad = bytearray(z)
        bad[len(z) // 2 : len(z) // 2 + 8] = b"\xa5" * 8
        got, warnings = _read(_w(tmp_path, f"{codec}-corrupt", bytes(bad)))
        intact = next((i for i, (a, b) in enumerate(zip(got, frames, strict=False)) if a != b), len(got))
        if codec == "gzip":  # located again within 256 bytes: every frame before it is kept
            assert intact > len(frames) * 4 // 10
        # the decompressor's error, or the garbage it gave first taken as a record; zstd frames carry no checksum
        # by default (zstandard's compressor), so changed literals go unseen
        assert len(warnings) == (0 if codec == "zstd" else 1), codec


def test_gzip_damage_is_located_and_nothing_before_it_lost(tmp_path: Path) -> None:
    import gzip

    from tests import pcapbuild as pb

    frames = _frames(600)
    raw = pb.pcap([(1_700_000_000 * 10**9, f) for f in frames])
    z = bytearray(gzip.compress(raw, compresslevel=0, mtime=0))  # stored blocks: header, LEN, NLEN, data
    second = 10 + 5 + int.from_bytes(z[11:13], "little")  # the second stored block's header
    z[second + 3] ^= 0xFF  # its NLEN no longer complements LEN: "invalid stored block lengths"
    got, warnings = _read(_w(tmp_path, "stored", bytes(z)))
    before = second - 15 - 24  # pcap bytes in the first block
    assert len(got) >= (before // (16 + len(frames[0]))) - 1
    assert got == frames[: len(got)]
    assert f"the gzip stream is damaged between byte offsets {second // 256 * 256} and " in warnings[0]
    assert "invalid stored block lengths" in warnings[0]

    z = bytearray(gzip.compress(raw))
    z[-6] ^= 1  # the CRC-32 in the trailer
    got, warnings = _read(_w(tmp_path, "crc", bytes(z)))
    assert got == frames
    assert "incorrect data check" in warnings[0]


def test_two_gzip_members_are_one_capture(tmp_path: Path) -> None:
    import gzip

    from tests import pcapbuild as pb

    frames = _frames(300)
    raw = pb.pcap([(1_700_000_000 * 10**9, f) for f in frames])
    half = len(raw) // 2 + 7  # the second member starts inside a record
    data = gzip.compress(raw[:half]) + b"\0" * 8 + gzip.compress(raw[half:])  # zero padding between members
    got, warnings = _read(_w(tmp_path, "two", data))
    assert got == frames
    assert warnings == []
    got, warnings = _read(_w(tmp_path, "two-nl", data + b"\n"))
    assert got == frames
    assert f"at byte offset {len(data)}" in warnings[0]


def test_gzip_bomb_of_empty_records_is_named_at_once(tmp_path: Path) -> None:
    import time

    started = time.monotonic()
    res = invoke("analyze", str(ROBUSTNESS / "bomb_gzip_pcap_header_then_1GiB_zeros.pcap.gz"), "-o", str(tmp_path))
    assert time.monotonic() - started < 10
    assert res.exit_code == 3
    (line,) = res.output.strip().splitlines()
    assert "pcap file of empty records" in line
    assert "decompression bomb" in line


def test_zero_filled_tail_after_packets_is_skipped_with_a_warning(tmp_path: Path) -> None:
    from tests import pcapbuild as pb

    frames = _frames(20)
    raw = pb.pcap([(1_700_000_000 * 10**9, f) for f in frames])
    got, warnings = _read(_w(tmp_path, "tail", raw + bytes(1 << 20), ".pcap"))
    assert got == frames
    assert warnings == [
        f"only zero bytes from byte offset {len(raw)} (at least 65536 of them, where records should be), after frame "
        "20: zero-filled to the end (a preallocated file?); the rest is skipped"
    ]
    short = raw + bytes(160)  # ten empty records, then the end: read as they are
    got, warnings = _read(_w(tmp_path, "short", short, ".pcap"))
    assert len(got) == 30
    assert warnings == []


def _w(tmp_path: Path, name: str, data: bytes, suffix: str = ".pcap.z") -> Path:
    path = tmp_path / (name + suffix)
    path.write_bytes(data)
    return path


def test_interrupt_is_130_not_1(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import analyzer.engine as engine

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "build_timeline", interrupted)
    res = invoke("timeline", str(ROBUSTNESS / "json_report_infinity.pcap"))
    assert res.exit_code == 130
    assert "interrupted" in res.output


def test_internal_error_in_the_diagnosis_still_writes_the_report_of_what_was_read(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import analyzer.diagnosis.runner as runner

    def diagnose_all(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise IndexError("list index out of range")

    monkeypatch.setattr(runner, "diagnose_all", diagnose_all)
    monkeypatch.delenv("GHOSTCAP_DEBUG", raising=False)
    path = ROBUSTNESS / "json_report_infinity.pcap"
    res = invoke("analyze", str(path), "-o", str(tmp_path))
    assert res.exit_code == 5
    assert f"internal error: {path}: IndexError: list index out of range; please report" in res.output
    report = json.loads((tmp_path / "json_report_infinity.json").read_text(encoding="utf-8"))
    assert report["capture"]["packets"] > 0
    assert report["chargers"] == []
    assert any(w.startswith("internal error: diagnosis: IndexError") for w in report["capture"]["warnings"])


# --- header values of digits Python knows and HTTP does not ---------------------------------------------------

_DEFLATE_DIGITS = b"\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=\xb9\xb2\r\n\r\n"


@pytest.mark.parametrize(
    ("answer", "fault"),
    [
        # a 401 whose Content-Length is Latin-1 "²85": a digit to str.isdigit, not to int
        (lambda up: b"HTTP/1.1 401 Unauthorized\r\nContent-Length: \xb285\r\n\r\nno", "http.unauthorized"),
        # the 101 agreeing to permessage-deflate with window bits "¹²"
        (lambda up: up.replace(b"\r\n\r\n", _DEFLATE_DIGITS), None),
    ],
    ids=["content-length", "window-bits"],
)
def test_a_header_of_unicode_digits_is_read_not_a_crash(tmp_path: Path, answer: Any, fault: str | None) -> None:
    """Crafted: ``int()`` raised on such a value inside the HTTP decoder, and ``analyze`` ended with an internal
    error and no report. The value is invalid now (an anomaly, or the default window) and the report is written."""
    from tests import pcapbuild as pb

    request, upgraded = pb.ws_upgrade("CP-DIGITS")
    talk = pb.TcpTalk("10.0.0.7", "10.0.0.1", 50123, 80)
    talk.open((request, answer(upgraded)))
    path = tmp_path / "digits.pcap"
    path.write_bytes(pb.pcap(talk.frames))
    code, report = analyze_json(path, tmp_path)
    assert code != EXIT_INTERNAL  # a verdict (the 101 alone: inconclusive), where the old code stopped with status 5
    (charger,) = report["chargers"]
    assert charger["id"] == "CP-DIGITS"
    if fault is not None:
        assert charger["root_cause"]["fault"] == fault
