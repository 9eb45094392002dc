"""Key-log lines embedded in a pcapng (Decryption Secrets Blocks) on a real capture: a malformed line is reported
the same wherever its block lies (before the TLS session, in its middle, after the last packet, in a capture
without TLS) and the same as when the line comes from a ``--keylog`` file, by ``analyze`` with one process or
several. The reader takes in a block as it reads the 1 MiB buffer holding it, so a block a read buffer past the
last TLS record is only seen once the capture has been read: the warnings must still take it in."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.capture.container import CHUNK
from analyzer.capture.pcapng_writer import PcapngWriter
from analyzer.cli import cli
from analyzer.engine import build_timeline
from analyzer.events.tls import TlsSummary
from analyzer.tls.keylog import KeyLog
from tests import pcapbuild as pb
from tests.conftest import PROJECT_CAPTURES

WSS12 = PROJECT_CAPTURES / "healthy_16_wss_tls12.pcap"
KEYS12 = PROJECT_CAPTURES / "healthy_16_wss_tls12.keys.txt"
WS = PROJECT_CAPTURES / "healthy_16_ws.pcap"
TLS_KEY_LOG = 0x544C534B
MID = b"CLIENT_RANDOM 00\n"  # no secret
END = f"# comment\nFOO_SECRET a b\nCLIENT_RANDOM {'ab' * 32} {'cd' * 20}\n".encode()  # unknown label, cut secret
PAD = pb.custom_block(body=bytes(CHUNK + 4096))  # a block the reader skips, a read buffer long


def _packets(path: Path) -> list[tuple[int, int, bytes, int]]:
    """A classic little-endian microsecond pcap's packets: (ns, link type, data, original length)."""
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    linktype = struct.unpack_from("<I", data, 20)[0]
    out, pos = [], 24
    while pos + 16 <= len(data):
        s, us, incl, orig = struct.unpack_from("<IIII", data, pos)
        out.append((s * 10**9 + us * 1000, linktype, data[pos + 16 : pos + 16 + incl], orig))
        pos += 16 + incl
    return out


def _pcapng(src: Path, dst: Path, blocks: dict[int, list[bytes]]) -> None:
    """``src``'s packets as pcapng, with ``blocks[i]`` written before packet ``i`` (``i`` = the packet count: after
    the last)."""
    packets = _packets(src)
    with dst.open("wb") as f:
        w = PcapngWriter(f)
        for i, (ts, linktype, data, orig) in enumerate(packets):
            for b in blocks.get(i, ()):
                f.write(b)
            w.packet(ts, linktype, data, orig)
        for b in blocks.get(len(packets), ()):
            f.write(b)


def _analyze(cap: Path, out: Path, *args: str, exit_code: int = 0) -> tuple[list[str], list[str]]:
    """``ghostcap analyze``'s key-log warnings: on stderr (without the ``warning: CAPTURE:`` prefix) and in the
    JSON report's capture warnings. ``exit_code``: 4 when the capture stays encrypted (inconclusive)."""
    res = CliRunner().invoke(cli, ["analyze", str(cap), "-o", str(out), "--format", "json", *args])
    assert res.exit_code == exit_code, res.output
    prefix = f"warning: {cap}: "
    stderr = [line.removeprefix(prefix) for line in res.stderr.splitlines() if line.startswith(prefix)]
    report = json.loads((out / (cap.stem + ".json")).read_text())
    return stderr, report["capture"]["warnings"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_bad_lines_in_secrets_blocks_are_reported_wherever_the_block_lies(tmp_path: Path, workers: str) -> None:
    """Keys first, a bad line in the middle of the TLS session, a read buffer of padding after the last packet and
    then a block of bad lines: the report names every bad line, as it does for the same lines in key log files."""
    n = len(_packets(WSS12))
    blocks = {0: [pb.dsb(TLS_KEY_LOG, KEYS12.read_bytes())], n // 2: [pb.dsb(TLS_KEY_LOG, MID)]}
    blocks[n] = [PAD, pb.dsb(TLS_KEY_LOG, END)]
    _pcapng(WSS12, tmp_path / "dsb.pcapng", blocks)
    _pcapng(WSS12, tmp_path / "files.pcapng", {0: [pb.dsb(TLS_KEY_LOG, KEYS12.read_bytes())], n: [PAD]})
    (tmp_path / "mid.keys").write_bytes(MID)
    (tmp_path / "end.keys").write_bytes(END)
    embedded = _analyze(tmp_path / "dsb.pcapng", tmp_path / "a", "--workers", workers)
    files = _analyze(
        tmp_path / "files.pcapng",
        tmp_path / "b",
        *("--workers", workers, "--keylog", str(tmp_path / "mid.keys"), "--keylog", str(tmp_path / "end.keys")),
    )
    expected = [
        "key log: mid.keys line 1: CLIENT_RANDOM needs a client random and a secret, found 1 fields; line skipped",
        "key log: end.keys line 2: unknown label 'FOO_SECRET' (did you mean EXPORTER_SECRET?); line skipped",
        "key log: end.keys line 3: CLIENT_RANDOM: the master secret is 20 bytes, not 48 (truncated?); line skipped",
    ]
    assert files == (expected, expected)
    named = [[w.replace("the capture's Decryption Secrets Block 2", "mid.keys") for w in ws] for ws in embedded]
    named = [[w.replace("the capture's Decryption Secrets Block 3", "end.keys") for w in ws] for ws in named]
    assert named == [expected, expected]
    summary = build_timeline(tmp_path / "dsb.pcapng").timeline.of_type(TlsSummary)[0]
    assert summary.decryption == "decrypted"  # the keys in the first block were used


def test_bad_lines_in_a_capture_without_tls_are_reported(tmp_path: Path) -> None:
    """No TLS session ever looks a secret up: the block is still read, and its bad lines said."""
    _pcapng(WS, tmp_path / "ws.pcapng", {0: [pb.dsb(TLS_KEY_LOG, MID)]})
    warnings = build_timeline(tmp_path / "ws.pcapng").capture.warnings
    assert [w for w in warnings if w.startswith("key log: ")] == [
        "key log: the capture's Decryption Secrets Block 1 line 1: CLIENT_RANDOM needs a client random and a "
        "secret, found 1 fields; line skipped"
    ]


def test_problem_lines_take_in_the_blocks_read_since_the_last_lookup() -> None:
    """What the warnings read first (``problem_lines``) already holds a block no lookup has taken in yet."""
    from analyzer.capture.container import DecryptionSecret

    blocks: list[DecryptionSecret] = []
    log = KeyLog()
    log.watch(blocks)
    assert log.problem_lines() == []
    blocks.append(DecryptionSecret(TLS_KEY_LOG, MID, 0))
    assert [p.split(":")[0] for p in log.problem_lines()] == ["the capture's Decryption Secrets Block 1 line 1"]


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("name", ["healthy_16_wss_tls12", "ocpp_boot_callerror_wss_tls13"])
def test_secrets_arriving_a_read_buffer_after_the_handshake_are_said_to_be_late(
    tmp_path: Path, name: str, workers: str
) -> None:
    """A block applies from the read buffer (``CHUNK``) it lies in: in a small capture even a block after the last
    packet decrypts everything, but a session whose keys were set up (TLS 1.2: its ChangeCipherSpec; TLS 1.3: its
    first encrypted record) a buffer before its secrets arrived stays encrypted. The report says the secrets came
    late and where to put the block; it must not blame the key log ("secrets ... are wrong", "is it the key log of
    this capture?"), nor say ``decrypted`` with one side left encrypted, nor count the session as having no
    secrets in the key log."""
    cap = PROJECT_CAPTURES / f"{name}.pcap"
    n = len(_packets(cap))
    _pcapng(
        cap,
        tmp_path / "late.pcapng",
        {n - 2: [PAD, pb.dsb(TLS_KEY_LOG, PROJECT_CAPTURES.joinpath(f"{name}.keys.txt").read_bytes())]},
    )
    built = build_timeline(tmp_path / "late.pcapng")
    summary = built.timeline.of_type(TlsSummary)[0]
    assert summary.decryption == "no_keys", (summary.decryption, summary.decryption_detail)
    assert summary.decrypted_records == (0, 0)
    assert "came in a Decryption Secrets Block after the client's key setup in frame " in summary.decryption_detail
    assert "put the block before the session (e.g. editcap --inject-secrets)" in summary.decryption_detail
    stderr, warnings = _analyze(tmp_path / "late.pcapng", tmp_path / "out", "--workers", workers, exit_code=4)
    for ws in (built.capture.warnings, stderr, warnings):
        assert [w for w in ws if "wrong" in w or "is it the key log" in w or "no secrets in the key log" in w] == []
        assert [w for w in ws if "came in a Decryption Secrets Block after their key setup" in w] == [
            "1 TLS session(s) not wholly decrypted: secrets for them came in a Decryption Secrets Block after their "
            "key setup (ghostcap reads secrets in capture order; put the block before the sessions, e.g. editcap "
            "--inject-secrets)"
        ]


@pytest.mark.parametrize("name", ["healthy_16_wss_tls12", "ocpp_boot_callerror_wss_tls13"])
def test_secrets_arriving_between_the_two_key_setups_decrypt_one_side_only(tmp_path: Path, name: str) -> None:
    """A block read between the two directions' key setups: the later direction decrypts, the earlier one is said
    to have got its secrets late (``partial``), never ``decrypted``."""
    cap = PROJECT_CAPTURES / f"{name}.pcap"
    at = 12 if name.endswith("tls12") else 10  # just after the first key setup (the client's; TLS 1.3: the server's)
    _pcapng(cap, tmp_path / "mid.pcapng", {at: [PAD, pb.dsb(TLS_KEY_LOG, cap.with_suffix(".keys.txt").read_bytes())]})
    summary = build_timeline(tmp_path / "mid.pcapng").timeline.of_type(TlsSummary)[0]
    assert summary.decryption == "partial", (summary.decryption, summary.decryption_detail)
    assert 0 in summary.decrypted_records
    assert summary.decrypted_records != (0, 0)
    assert "came in a Decryption Secrets Block after the " in summary.decryption_detail


@pytest.mark.parametrize("name", ["healthy_16_wss_tls12", "ocpp_boot_callerror_wss_tls13"])
def test_a_wrong_secret_in_an_early_block_is_still_called_wrong(tmp_path: Path, name: str) -> None:
    """Secrets for this session that are wrong (every secret's last byte changed) in a block before the session:
    the session fails and the warnings say the key log's secrets are wrong, as with a key log file."""
    cap = PROJECT_CAPTURES / f"{name}.pcap"
    lines = []
    for line in cap.with_suffix(".keys.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            parts[2] = parts[2][:-2] + ("00" if parts[2][-2:] != "00" else "11")
        lines.append(" ".join(parts))
    _pcapng(cap, tmp_path / "wrong.pcapng", {0: [pb.dsb(TLS_KEY_LOG, "\n".join(lines).encode())]})
    built = build_timeline(tmp_path / "wrong.pcapng")
    summary = built.timeline.of_type(TlsSummary)[0]
    assert summary.decryption == "failed", (summary.decryption, summary.decryption_detail)
    assert summary.decryption_detail.endswith("the key log's secrets for this session are wrong")
    assert [w for w in built.capture.warnings if w.endswith("the key log's secrets for this session are wrong")]
    assert not [w for w in built.capture.warnings if "came in a Decryption Secrets Block after" in w]


def test_sessions_remembered_for_late_secrets_are_bounded_and_the_rest_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every TLS connection of a capture without keys sets up its keys with no secret known (``KeyLog.miss``): a
    gateway capture has hundreds of thousands, so at most ``LATE_SECRETS_SESSIONS`` are remembered; the rest are
    counted, and the warnings say so once the key log holds secrets."""
    from analyzer.tls import keylog as kl
    from analyzer.tls import notes
    from analyzer.tls.notes import keylog_warnings

    monkeypatch.setattr(kl, "LATE_SECRETS_SESSIONS", 3)
    monkeypatch.setattr(notes, "LATE_SECRETS_SESSIONS", 3)
    log = KeyLog()
    for i in range(10):
        log.miss(bytes([i]) * 32, ["CLIENT_RANDOM"])
    log.miss(bytes([1]) * 32, ["CLIENT_HANDSHAKE_TRAFFIC_SECRET"])  # one remembered: its labels still grow
    assert len(log.missed) == 3
    assert log.missed[bytes([1]) * 32] == {"CLIENT_RANDOM", "CLIENT_HANDSHAKE_TRAFFIC_SECRET"}
    assert log.missed_dropped == 7
    assert keylog_warnings(log, [], given=False) == []  # no secret at all: nothing could have come late
    log.add_text(f"CLIENT_RANDOM {'01' * 32} {'ab' * 48}\n", "test")
    dropped = [w for w in keylog_warnings(log, [], given=False) if "not remembered" in w]
    assert dropped == [
        "7 more TLS session(s) set up their keys before any secret for them was known and were not remembered "
        "(budget LATE_SECRETS_SESSIONS = 3): whether a Decryption Secrets Block brought "
        "their secrets later was not checked"
    ]
