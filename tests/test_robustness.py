"""Regression tests for the fuzz campaign's reproducers in ``../shared/robustness/`` (its README.md says what each
must do): every case ends with a report or a one-line error, never a traceback, and never exit 1 for a crash."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import cli
from analyzer.decoders.x509 import DerError, cert_info, name_from_der
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
        assert "\nout of range  1 " in table.output
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
    _strict(report.output)
    assert "\\ud800" in report.output


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
    _strict(stdout.output)
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

    def analyze(path, settings=None):  # type: ignore[no-untyped-def]
        if str(path) == broken:
            raise TypeError("boom\nsecond line")
        return real(path, settings)

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
