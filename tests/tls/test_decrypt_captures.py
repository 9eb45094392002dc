"""Key logs on real captures: the right one decrypts, a wrong or corrupted one says so in plain words instead of
producing garbage, a truncated one keeps its whole lines, keys embedded in a pcapng need no option, and a key log
without the client's application secret decrypts what it can."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from analyzer.cli import cli
from analyzer.engine import build_timeline
from analyzer.events.base import DecodeAnomaly
from analyzer.events.tls import TlsAlert, TlsCertificate, TlsSummary
from tests.conftest import PROJECT_CAPTURES
from tests.tls.test_decrypt_tshark import EXTERNAL

WSS13 = PROJECT_CAPTURES / "ocpp_boot_callerror_wss_tls13.pcap"
KEYS13 = PROJECT_CAPTURES / "ocpp_boot_callerror_wss_tls13.keys.txt"
WSS12 = PROJECT_CAPTURES / "ocpp_boot_callerror_wss_tls12.pcap"
KEYS12 = PROJECT_CAPTURES / "ocpp_boot_callerror_wss_tls12.keys.txt"


def _kinds(path: Path, *keys: Path) -> set[str]:
    return {e.kind for e in build_timeline(path, [str(k) for k in keys]).timeline.events}


def test_the_right_key_log_reveals_ocpp_inside_wss() -> None:
    kinds = _kinds(WSS13, KEYS13)
    assert {"http.request", "http.response", "websocket.message", "ocpp.call", "ocpp.call_error"} <= kinds
    assert "ocpp.call" not in _kinds(WSS13)


def test_a_key_log_of_another_capture_matches_nothing_and_says_so() -> None:
    built = build_timeline(WSS13, [str(KEYS12)])
    assert any(
        "none of the 1 in this capture" in w and "is it the key log of this capture" in w
        for w in built.capture.warnings
    )
    summary = built.timeline.of_type(TlsSummary)[0]
    assert summary.decryption == "no_keys"
    assert "ocpp.call" not in {e.kind for e in built.timeline.events}


def test_wrong_secrets_fail_authentication_with_a_clear_message(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.keys"
    lines = []
    for line in KEYS13.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            parts[2] = ("0" if parts[2][0] != "0" else "1") + parts[2][1:]
        lines.append(" ".join(parts))
    wrong.write_text("\n".join(lines) + "\n")
    built = build_timeline(WSS13, [str(wrong)])
    failed = [e for e in built.timeline.events if isinstance(e, DecodeAnomaly) and e.name == "tls.decrypt_failed"]
    assert len(failed) == 1
    assert "did not authenticate" in failed[0].detail
    assert "secrets for this session are wrong" in failed[0].detail
    assert any(w.startswith("TLS decryption failed on flow") for w in built.capture.warnings)
    assert built.timeline.of_type(TlsSummary)[0].decryption == "failed"
    assert not {"http.request", "ocpp.call"} & {e.kind for e in built.timeline.events}


def test_a_truncated_key_log_names_its_cut_line(tmp_path: Path) -> None:
    text = KEYS12.read_text()
    cut = tmp_path / "cut.keys"
    cut.write_text(text[: len(text) - 30])
    built = build_timeline(WSS12, [str(cut)])
    assert [w for w in built.capture.warnings if w.startswith("key log: cut.keys line ")], built.capture.warnings
    assert "truncated?" in " ".join(built.capture.warnings)


def test_an_empty_key_log_is_reported(tmp_path: Path) -> None:
    empty = tmp_path / "empty.keys"
    empty.write_text("# nothing yet\n")
    built = build_timeline(WSS12, [str(empty)])
    assert "the key log holds no usable secrets: TLS sessions stay encrypted" in built.capture.warnings


def test_keys_embedded_in_the_pcapng_are_used_without_an_option() -> None:
    built = build_timeline(EXTERNAL / "derived" / "snet__TLS1_3_TLS_AES_128_GCM_SHA256.dsb.pcapng")
    summary = built.timeline.of_type(TlsSummary)[0]
    assert summary.decryption == "decrypted"
    assert summary.decrypted_records[0] > 0
    assert summary.decrypted_records[1] > 0
    assert [c.certificates[0].san for c in built.timeline.of_type(TlsCertificate)] == [("localhost",)]
    assert built.capture.warnings == []


def test_a_server_key_log_without_the_clients_application_secret_decrypts_the_rest() -> None:
    """The CSMS never derived the client's application secret (it rejected the handshake): the TLS 1.3
    certificate_required alert is read, the client's data stays encrypted and the summary says partial."""
    built = build_timeline(
        PROJECT_CAPTURES / "tls13_client_cert_required.pcap",
        [str(PROJECT_CAPTURES / "tls13_client_cert_required.keys.txt")],
    )
    alerts = built.timeline.of_type(TlsAlert)
    assert [(a.description_name, a.decrypted, a.frame) for a in alerts] == [("certificate_required", True, 15)]
    summary = built.timeline.of_type(TlsSummary)[0]
    assert summary.decryption == "partial"
    assert "CLIENT_TRAFFIC_SECRET_0" in summary.decryption_detail
    assert built.capture.warnings == []


def test_cli_keylog_on_timeline_analyze_and_flows(tmp_path: Path) -> None:
    runner = CliRunner()
    t = runner.invoke(cli, ["timeline", str(WSS13), "--keylog", str(KEYS13)])
    assert t.exit_code == 0, t.output
    assert "ocpp.call_error" in t.output
    assert "(decrypted)" in t.output or "decrypted: application_data" in t.output
    a = runner.invoke(cli, ["analyze", str(WSS13), "--keylog", str(KEYS13), "-o", str(tmp_path), "--format", "json"])
    assert a.exit_code == 1, a.output
    assert "CP-WHISKEY-47 fault ocpp.callerror @19 CX013 NoInternet fix:csms" in a.output
    f = runner.invoke(cli, ["flows", str(WSS13), "--keylog", str(KEYS13)])
    assert f.exit_code == 0, f.output
    assert "tls" in f.output.splitlines()[2].split()
    assert "decrypted" in f.output
    missing = runner.invoke(cli, ["analyze", str(WSS13), "--keylog", str(tmp_path / "nope.keys")])
    assert missing.exit_code == 2
    assert "nope.keys" in missing.output


def _drop_frame(src: Path, dst: Path, frame: int) -> None:
    """Copy a classic pcap without one frame (as if the capture had missed that packet)."""
    data = src.read_bytes()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, pos, n = bytearray(data[:24]), 24, 0
    while pos + 16 <= len(data):
        incl = int.from_bytes(data[pos + 8 : pos + 12], "little" if order == "<" else "big")
        n += 1
        if n != frame:
            out += data[pos : pos + 16 + incl]
        pos += 16 + incl
    dst.write_bytes(bytes(out))


def test_decryption_finds_its_place_after_a_lost_packet(tmp_path: Path) -> None:
    """Frame 18 (the charger's Heartbeat, one TLS record) is dropped: its sequence number is skipped, the
    WebSocket decoder is told of the gap, and the StatusNotification and Authorize after it are still read."""
    lossy = tmp_path / "lossy.pcap"
    _drop_frame(PROJECT_CAPTURES / "healthy_16_wss_tls12.pcap", lossy, 18)
    built = build_timeline(lossy, [str(PROJECT_CAPTURES / "healthy_16_wss_tls12.keys.txt")])
    actions = [e.action for e in built.timeline.events if e.kind == "ocpp.call"]
    assert actions == ["BootNotification", "StatusNotification", "Authorize"]
    summary = built.timeline.of_type(TlsSummary)[0]
    assert summary.decryption == "decrypted"
    assert [e.name for e in built.timeline.events if isinstance(e, DecodeAnomaly) and e.name.startswith("tls.")] == [
        "tls.gap"
    ]
