"""The NSS key log reader: labels, comments, malformed and truncated lines (named with their line number and
skipped), files read once per version, and secrets embedded in pcapng Decryption Secrets Blocks."""

from __future__ import annotations

import os
from pathlib import Path

from analyzer.capture.container import DecryptionSecret
from analyzer.config import Settings
from analyzer.engine import analyze
from analyzer.tls.keylog import CLIENT_RANDOM, CLIENT_TRAFFIC_0, SERVER_HANDSHAKE, KeyLog
from tests.conftest import PROJECT_CAPTURES as CAPTURES

CR = bytes(range(32))
CR_HEX = CR.hex()
MASTER = bytes([7]) * 48
TLS13 = bytes([9]) * 32


def _log(text: str) -> KeyLog:
    log = KeyLog()
    log.add_text(text, "keys.txt")
    return log


def test_reads_tls12_and_tls13_lines_with_comments_and_blank_lines() -> None:
    log = _log(
        "# SSL/TLS secrets log file\n\n"
        f"CLIENT_RANDOM {CR_HEX} {MASTER.hex()}\n"
        f"SERVER_HANDSHAKE_TRAFFIC_SECRET {'11' * 32} {TLS13.hex()}\r\n"
        f"CLIENT_TRAFFIC_SECRET_0 {'11' * 32} {(bytes([1]) * 48).hex()}\n"
        f"EXPORTER_SECRET {'11' * 32} {TLS13.hex()}\n"
    )
    assert log.problems == []
    assert log.lines == 3
    assert log.lookup(CR) == {CLIENT_RANDOM: MASTER}
    found = log.lookup(bytes([0x11]) * 32)
    assert found == {SERVER_HANDSHAKE: TLS13, CLIENT_TRAFFIC_0: bytes([1]) * 48}
    assert log.used == {CR, bytes([0x11]) * 32}
    assert log.lookup(bytes(32)) is None


def test_malformed_lines_are_named_by_line_number_and_skipped() -> None:
    log = _log(
        f"CLIENT_RANDOM {CR_HEX}\n"  # 1: no secret
        f"CLIENT_RANDOM {CR_HEX} zz{MASTER.hex()[2:]}\n"  # 2: not hex
        f"CLIENT_RANDOM {CR_HEX[:-2]} {MASTER.hex()}\n"  # 3: short random
        "FOO_SECRET a b\n"  # 4: unknown label
        f"CLIENT_RANDOM {CR_HEX} {MASTER.hex()}\n"  # 5: fine
        f"CLIENT_HANDSHAKE_TRAFFIC_SECRET {CR_HEX} {'ab' * 20}\n"  # 6: 20-byte secret
    )
    assert [p.split(":")[0] for p in log.problems] == [f"keys.txt line {n}" for n in (1, 2, 3, 4, 6)]
    assert "found 1 fields" in log.problems[0]
    assert "not hexadecimal" in log.problems[1]
    assert "31 bytes, not 32" in log.problems[2]
    assert "unknown label 'FOO_SECRET'" in log.problems[3]
    assert "20 bytes, not 32 or 48" in log.problems[4]
    assert all(p.endswith("line skipped") for p in log.problems)
    assert log.lookup(CR) == {CLIENT_RANDOM: MASTER}


def test_a_truncated_key_log_keeps_every_whole_line_and_says_the_last_is_cut(tmp_path: Path) -> None:
    whole = f"CLIENT_RANDOM {CR_HEX} {MASTER.hex()}\n"
    other = bytes([1]) * 32
    path = tmp_path / "cut.keys"
    path.write_text(whole + f"CLIENT_RANDOM {other.hex()} {MASTER.hex()[:50]}")
    log = KeyLog.from_files([path])
    assert log.lookup(CR) == {CLIENT_RANDOM: MASTER}
    assert log.lookup(other) is None
    assert log.problems == [
        "cut.keys line 2: CLIENT_RANDOM: the master secret is 25 bytes, not 48 (truncated?); line skipped"
    ]


def test_problems_beyond_the_limit_are_counted() -> None:
    log = _log("BAD x y\n" * 25)
    lines = log.problem_lines()
    assert len(lines) == 21
    assert lines[-1] == "5 more malformed key-log lines skipped"


def test_files_are_read_once_per_version(tmp_path: Path) -> None:
    path = tmp_path / "k.txt"
    path.write_text(f"CLIENT_RANDOM {CR_HEX} {MASTER.hex()}\n")
    a, b = KeyLog.from_files([path]), KeyLog.from_files([path])
    assert a._bases[0] is b._bases[0]
    path.write_text(f"CLIENT_RANDOM {CR_HEX} {(bytes([8]) * 48).hex()}\n")
    os.utime(path, ns=(1, 1))
    c = KeyLog.from_files([path])
    assert c.lookup(CR) == {CLIENT_RANDOM: bytes([8]) * 48}
    assert a.lookup(CR) == {CLIENT_RANDOM: MASTER}
    assert not b.used  # each run counts its own lookups


def test_decryption_secrets_blocks_are_taken_in_as_they_arrive() -> None:
    blocks: list[DecryptionSecret] = []
    log = KeyLog()
    log.watch(blocks)
    assert len(log) == 0
    assert log.lookup(CR) is None
    blocks.append(DecryptionSecret(0x12345678, b"not a key log", 0))
    blocks.append(
        DecryptionSecret(DecryptionSecret.TLS_KEY_LOG, f"CLIENT_RANDOM {CR_HEX} {MASTER.hex()}\n".encode(), 3)
    )
    assert log.lookup(CR) == {CLIENT_RANDOM: MASTER}
    assert log.embedded == 1
    blocks.append(DecryptionSecret(DecryptionSecret.TLS_KEY_LOG, b"CLIENT_RANDOM 00\n", 5))
    assert len(log) == 1
    assert log.problems[0].startswith("the capture's Decryption Secrets Block 3 line 1:")


def test_one_sessions_secrets_split_over_two_key_logs_are_merged(tmp_path: Path) -> None:
    """TLS 1.3's handshake secrets in one file and its traffic secrets in another (two processes logging, or a
    key log cut in two): the session decrypts as with the whole log, and a label given twice keeps the first."""
    whole = (CAPTURES / "ocpp_boot_callerror_wss_tls13.keys.txt").read_text().splitlines(keepends=True)
    handshake = [line for line in whole if "HANDSHAKE" in line]
    assert handshake
    assert len(handshake) < len([line for line in whole if line.strip() and line[0] != "#"])
    (tmp_path / "hs.txt").write_text("".join(handshake))
    (tmp_path / "rest.txt").write_text("".join(line for line in whole if "HANDSHAKE" not in line))
    split = KeyLog.from_files([tmp_path / "hs.txt", tmp_path / "rest.txt"])
    joined = KeyLog.from_files([CAPTURES / "ocpp_boot_callerror_wss_tls13.keys.txt"])
    randoms = {bytes.fromhex(line.split()[1]) for line in handshake}
    for cr in randoms:
        assert split.lookup(cr) == joined.lookup(cr)
    other = bytes([5]) * 32
    (tmp_path / "first.txt").write_text(f"CLIENT_TRAFFIC_SECRET_0 {'ab' * 32} {other.hex()}\n")
    both = KeyLog.from_files([tmp_path / "first.txt", tmp_path / "rest.txt"])
    cr = next(iter(randoms))
    assert both.lookup(bytes.fromhex("ab" * 32)) == {CLIENT_TRAFFIC_0: other}
    assert both.lookup(cr) == {k: v for k, v in joined.lookup(cr).items() if "HANDSHAKE" not in k}


def test_split_key_logs_decrypt_the_lab_capture(tmp_path: Path) -> None:
    whole = (CAPTURES / "ocpp_boot_callerror_wss_tls13.keys.txt").read_text().splitlines(keepends=True)
    (tmp_path / "hs.txt").write_text("".join(line for line in whole if "HANDSHAKE" in line))
    (tmp_path / "rest.txt").write_text("".join(line for line in whole if "HANDSHAKE" not in line))
    cap = str(CAPTURES / "ocpp_boot_callerror_wss_tls13.pcap")
    split = analyze(cap, Settings(keylog_files=(str(tmp_path / "hs.txt"), str(tmp_path / "rest.txt"))))
    one = analyze(cap, Settings(keylog_files=(str(CAPTURES / "ocpp_boot_callerror_wss_tls13.keys.txt"),)))
    assert [r.root_cause.fault for r in split.results] == ["ocpp.callerror"]
    assert [(r.root_cause.fault, r.root_cause.frame) for r in split.results] == [
        (r.root_cause.fault, r.root_cause.frame) for r in one.results
    ]
