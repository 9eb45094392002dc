"""The ghostcap command line, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from analyzer.cli import cli
from tests import pcapbuild as pb
from tests.conftest import EXTERNAL

MISSING_SYN = EXTERNAL / "tcp" / "zeek__missing-syn.pcap"


def invoke(*args: str, stdin: bytes | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def test_every_command_has_help_with_an_example() -> None:
    for name, command in cli.commands.items():
        assert command.help, name
        assert "Example: ghostcap " + name in command.help


def test_flows_table() -> None:
    res = invoke("flows", str(MISSING_SYN))
    assert res.exit_code == 0
    lines = res.output.splitlines()
    assert lines[0] == "zeek__missing-syn.pcap: pcap, EN10MB, 21 packets, 1 flows"
    assert lines[2].split()[:4] == ["#", "proto", "client", "server"]
    assert lines[3].split() == [
        "0",
        "tcp",
        "141.42.64.125:56730",
        "125.190.109.199:80",
        "11",
        "10",
        "98",
        "9417",
        "SF",
        "hADdFaf",
        "-",
    ]


def test_flows_json_is_one_document_with_a_flow_per_line() -> None:
    res = invoke("flows", str(MISSING_SYN), "--format", "json")
    doc = json.loads(res.output)
    assert doc["schema"] == "ghostcap.flows/1"
    assert doc["capture"]["packets"] == 21
    assert doc["capture"]["first"] == "2005-10-07T23:23:55.633408000Z"
    (flow,) = doc["flows"]
    assert flow["stream_bytes"] == {"to_server": 98, "to_client": 9417}
    assert flow["state"] == "SF"
    assert len(res.output.splitlines()) == 3


def test_not_a_capture_is_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "notes.pcap"
    bad.write_text("<html><body>login</body></html>")
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", "flows", str(bad)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert (
        proc.stderr.strip()
        == "Error: notes.pcap: not a packet capture (pcap or pcapng); it looks like an HTML document"
    )


def test_damaged_capture_gives_partial_result_and_a_warning(tmp_path: Path) -> None:
    frames = [pb.ether(pb.ipv4("10.0.0.1", "10.0.0.2", 17, pb.udp(1000 + i, 53, b"q"))) for i in range(3)]
    path = tmp_path / "killed.pcap"
    path.write_bytes(pb.pcap([(0, f) for f in frames])[:-3])
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", "flows", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert "warning: capture cut short: frame 3" in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["capture"]["packets"] == 2
    assert len(doc["flows"]) == 2
    assert doc["capture"]["warnings"][0].startswith("capture cut short")


def test_standard_input() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", "flows", "-"],
        input=MISSING_SYN.read_bytes(),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith(b"-: pcap, EN10MB, 21 packets, 1 flows")
