"""``ghostcap analyze --annotate OUT.pcapng``: read back with tshark, the annotated capture has ghostcap's comments
on exactly the frames the report's findings and evidence name, and the same frames as the original (count,
timestamps, lengths, link types, streams); pcap and pcapng inputs, compressed or not."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from analyzer.capture.container import CaptureReader
from analyzer.capture.pcapng_blocks import MAX_OPTION, enhanced_packet, interface, section_header
from analyzer.capture.source import open_source
from analyzer.cli import cli
from tests import pcapbuild as pb
from tests.conftest import EXTERNAL, PROJECT_CAPTURES
from tests.tshark_oracle import _run, comments, frames


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def annotate(capture: Path, tmp_path: Path, *extra: str) -> tuple[Path, dict[str, Any], Any]:
    out = tmp_path / "annotated.pcapng"
    res = run("analyze", str(capture), "-o", str(tmp_path), "--format", "json", "--annotate", str(out), *extra)
    (report_file,) = tmp_path.glob("*.json")
    return out, json.loads(report_file.read_text()), res


def named_frames(report: dict[str, Any]) -> set[int]:
    """The frames the report's findings and the root causes' evidence name."""
    out = set()
    for c in report["chargers"]:
        rc = c["root_cause"]
        if rc:
            out |= {rc["frame"], *(e["frame"] for e in rc["evidence"])}
        out |= {f["frame"] for k in ("findings", "warnings", "undecided") for f in c[k]}
    return out - {0}


def packet_table(path: Path) -> list[list[str]]:
    """Per frame: timestamp, original and captured length, link type, protocols, Wireshark's streams (tshark's
    view)."""
    fields = ["frame.time_epoch", "frame.len", "frame.cap_len", "frame.encap_type", "frame.protocols", "tcp.stream"]
    fields.append("udp.stream")
    out = _run(["-r", str(path), "-T", "fields", *(x for f in fields for x in ("-e", f))])
    return [line.split("\t") for line in out.splitlines() if line]


LAB = [
    ("tcp_refused_backoff", None),
    ("tcp_unreachable", None),
    ("dns_nxdomain_typo_gateway", None),
    ("gateway_mixed", None),
    ("ocpp_boot_callerror", None),
    ("tls_cert_expired", "tls_cert_expired.keys.txt"),
]


@pytest.mark.parametrize(("name", "keylog"), LAB, ids=[n for n, _ in LAB])
def test_comments_on_exactly_the_named_frames_and_the_same_frames(tmp_path: Path, name: str, keylog: str) -> None:
    original = PROJECT_CAPTURES / f"{name}.pcap"
    extra = ("--keylog", str(PROJECT_CAPTURES / keylog)) if keylog else ()
    out, report, res = annotate(original, tmp_path, *extra)
    assert res.exit_code == 1, res.output  # a fault was found
    assert f"annotated capture → {out}" in res.output
    shown = comments(out)
    assert set(shown) == named_frames(report)
    assert all(text.startswith("ghostcap ") for notes in shown.values() for text in notes)
    for c in report["chargers"]:
        rc = c["root_cause"]
        if rc:
            root = next(t for t in shown[rc["frame"]] if "ROOT CAUSE" in t)
            assert rc["fault"] in root
            assert (rc["cx_code"] or "No CX code") in root
            assert "Verdict: fault" in root
            assert "Who acts: " in root
            assert (c["id"] or c["address"]) in root
    assert packet_table(out) == packet_table(original)  # timestamps to the nanosecond, streams too


def test_a_compressed_pcapng_with_two_link_types_and_resolutions(tmp_path: Path) -> None:
    """Ethernet at microseconds and raw IP at nanoseconds, a packet cut by the snaplen; gzip-compressed."""
    c, s = "10.0.0.1", "10.0.0.2"
    syn = pb.ipv4(c, s, 6, pb.tcp(40000, 9000, 100, 0, pb.SYN))
    rst = pb.ipv4(s, c, 6, pb.tcp(9000, 40000, 0, 101, pb.RST | pb.ACK))
    raw = pb.shb() + pb.idb(1, tsresol=6) + pb.idb(101, tsresol=9)
    raw += pb.epb(0, 1_795_406_400_000_001, pb.ether(syn))
    raw += pb.epb(1, 1_795_406_400_000_002_345, rst)
    raw += pb.epb(0, 1_795_406_401_000_000, pb.ether(syn)[:40], orig=len(pb.ether(syn)))
    original = tmp_path / "in" / "two.pcapng.gz"
    original.parent.mkdir()
    original.write_bytes(gzip.compress(raw))
    out, report, res = annotate(original, tmp_path / "r", "--csms", "10.0.0.2:9000")
    assert res.exit_code == 1, res.output
    assert report["chargers"][0]["root_cause"]["fault"] == "tcp.refused"
    assert set(comments(out)) == named_frames(report) == {1, 2}
    plain = tmp_path / "two.pcapng"
    plain.write_bytes(raw)
    assert packet_table(out) == packet_table(plain)
    assert [r[3] for r in packet_table(out)] == ["1", "7", "1"]  # Ethernet, raw IP, Ethernet
    assert packet_table(out)[2][1:3] == [str(len(pb.ether(syn))), "40"]


@pytest.mark.skipif(not EXTERNAL.is_dir(), reason="../shared/captures-external not present")
def test_a_snaplen_cut_capture_keeps_its_original_lengths(tmp_path: Path) -> None:
    original = EXTERNAL / "link-layer" / "zeek__snaplen96-http.pcap"
    out, _report, res = annotate(original, tmp_path)
    assert res.exit_code in (0, 1, 4), res.output
    table = packet_table(out)
    assert table == packet_table(original)
    assert any(int(r[1]) > int(r[2]) for r in table)  # cut packets stay cut, with their original length


def test_blocks_read_back_with_ghostcap_and_wireshark(tmp_path: Path) -> None:
    """The encoder alone: our reader and tshark read what it writes; a comment too long for an option is cut at
    a character boundary, a lone surrogate becomes U+FFFD."""
    data = pb.ether(pb.ipv4("10.0.0.1", "10.0.0.2", 17, pb.udp(5000, 53, b"x")))
    long = "é" * (MAX_OPTION // 2 + 10)
    blob = section_header("test") + interface(1)
    blob += enhanced_packet(0, 1_500_000_000_123_456_789, data, len(data), ["first", "second \ud800"])
    blob += enhanced_packet(0, 1_500_000_001_000_000_000, data[:20], len(data), [long])
    path = tmp_path / "b.pcapng"
    path.write_bytes(blob)
    reader = CaptureReader(open_source(path))
    assert list(reader.records()) == [
        (1_500_000_000_123_456_789, 1, data, len(data)),
        (1_500_000_001_000_000_000, 1, data[:20], len(data)),
    ]
    reader.close()
    shown = comments(path)
    assert shown[1] == ["first", "second \ufffd"]
    assert shown[2] == ["é" * (MAX_OPTION // 2)]
    assert frames(path)[0][0] == 1_500_000_000_123_456_789


def test_usage_errors_are_one_line_with_status_2(tmp_path: Path) -> None:
    cap = str(PROJECT_CAPTURES / "tcp_refused.pcap")
    two = run("analyze", cap, cap, "-o", str(tmp_path), "--annotate", str(tmp_path / "a.pcapng"))
    assert two.exit_code == 2
    assert "--annotate writes one capture back" in two.output
    stdin = run("analyze", "-", "-o", str(tmp_path), "--annotate", str(tmp_path / "a.pcapng"))
    assert stdin.exit_code == 2
    into_dir = run("analyze", cap, "-o", str(tmp_path / "r"), "--annotate", str(tmp_path))
    assert into_dir.exit_code == 2
    assert into_dir.output.count("error: ") == 1
    assert "is a directory" in into_dir.output
    copy = tmp_path / "copy.pcap"
    shutil.copy(cap, copy)
    onto_itself = run("analyze", str(copy), "-o", str(tmp_path / "r"), "--annotate", str(copy))
    assert onto_itself.exit_code == 2
    assert copy.read_bytes() == Path(cap).read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))
