"""``ghostcap analyze --verify`` with the real tshark (through pyshark), and without it.

The all-lab test runs one tshark per lab capture, two at a time (pyshark and tshark start slowly; each call has
its own event loop, so threads do not meet)."""

from __future__ import annotations

import json
import os
import stat
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from analyzer.cli import cli
from analyzer.config import Settings
from analyzer.engine import analyze
from analyzer.verify.run import verify_analysis
from analyzer.verify.tshark import Tshark, VerifyFailed, dissect, find_tshark
from tests.conftest import PROJECT_CAPTURES

SCHEMA = json.loads((Path(__file__).parents[2] / "analyzer/report/schema/report.schema.json").read_text())
FAILURES = [
    (truth, c)
    for truth in (json.loads(p.read_text()) for p in sorted(PROJECT_CAPTURES.glob("*.truth.json")))
    for c in truth["chargers"]
    if c.get("failure_frame")
]


def _keylog(truth: dict[str, Any]) -> tuple[str, ...]:
    name = truth["capture"].get("keylog")
    return (str(PROJECT_CAPTURES / name),) if name else ()


def _verified(truth: dict[str, Any], tshark: Tshark) -> list[tuple[Any, dict[str, Any]]]:
    path = PROJECT_CAPTURES / truth["capture"]["file"]
    keys = _keylog(truth)
    a = analyze(path, Settings(keylog_files=keys))
    return list(zip(a.results, verify_analysis(a, path, tshark, keys), strict=True))


def test_tshark_agrees_on_every_lab_scenarios_failure_frame() -> None:
    """Every lab charger with a failure frame: its verification has a check at that frame, and tshark agrees on
    every check of every charger with a root cause."""
    tshark = find_tshark()
    truths = {t["capture"]["file"]: t for t, _ in FAILURES}
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(zip(truths, pool.map(lambda t: _verified(t, tshark), truths.values()), strict=True))
    assert len(FAILURES) >= 45
    for truth, tc in FAILURES:
        results = done[truth["capture"]["file"]]
        frame = tc["failure_frame"]
        mine = [v for r, v in results if r.root_cause is not None and r.root_cause.frame == frame]
        assert mine, (truth["scenario"], tc["station_id"], frame)
        for v in mine:
            assert v["done"], (truth["scenario"], v)
            assert v["tool"] == tshark.title
            assert frame in {c["frame"] for c in v["checks"]}, (truth["scenario"], v)
    for file, results in done.items():
        for r, v in results:
            if r.root_cause is not None:
                assert v["agree"] is True, (file, [c for c in v["checks"] if not c["agree"]])
            else:
                assert v["checks"] == [], (file, v)
                assert v["agree"] is None


def test_analyze_verify_end_to_end(tmp_path: Path) -> None:
    cap = PROJECT_CAPTURES / "tls13_client_cert_required.pcap"
    keys = PROJECT_CAPTURES / "tls13_client_cert_required.keys.txt"
    res = CliRunner().invoke(
        cli, ["analyze", str(cap), "--keylog", str(keys), "--verify", "-o", str(tmp_path)], catch_exceptions=False
    )
    assert res.exit_code == 1
    report = json.loads((tmp_path / "tls13_client_cert_required.json").read_text())
    jsonschema.validate(report, SCHEMA)
    v = report["chargers"][0]["verification"]
    assert v["done"]
    assert v["agree"] is True
    assert v["filter"] == "frame.number in {8,10,15}"
    assert {(c["frame"], c["field"], c["tshark"]) for c in v["checks"]} == {
        (8, "tls.sni", "wss.papa.test"),
        (10, "tls.version", "TLSv1.3"),
        (15, "tls.alert", "certificate_required"),  # encrypted: tshark read it with the key log too
    }
    assert f"tls13_client_cert_required.pcap: --verify: {v['tool']} agrees on all 3 checks" in res.stderr
    md = (tmp_path / "tls13_client_cert_required.md").read_text()
    assert "agrees: it reads the same TLS SNI, TLS version and TLS alert in frames 8, 10 and 15." in md
    html = (tmp_path / "tls13_client_cert_required.html").read_text()
    assert "Second opinion: tshark" in html
    assert "certificate_required" in html


def test_several_key_logs_are_joined_for_tshark(tmp_path: Path) -> None:
    """tshark reads one key log: the session's secrets are in the second file, after another capture's."""
    cap = PROJECT_CAPTURES / "ocpp_boot_callerror_wss_tls13.pcap"
    other = tmp_path / "other.txt"
    other.write_text(
        (PROJECT_CAPTURES / "tls13_client_cert_required.keys.txt").read_text().rstrip("\n")
    )  # no final newline
    keys = (str(other), str(PROJECT_CAPTURES / "ocpp_boot_callerror_wss_tls13.keys.txt"))
    a = analyze(cap, Settings(keylog_files=keys))
    (v,) = verify_analysis(a, cap, find_tshark(), keys)
    assert v["agree"] is True
    assert [c["tshark"] for c in v["checks"]] == ["CALL BootNotification [1001]", "CALLERROR InternalError [1001]"]
    assert os.listdir(tmp_path) == ["other.txt"]


def test_without_tshark_on_path_one_line_and_the_report_says_not_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    caps = [str(PROJECT_CAPTURES / "tcp_reset.pcap"), str(PROJECT_CAPTURES / "ws_dropped.pcap")]
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["analyze", *caps, "--verify", "-o", str(out)], catch_exceptions=False)
    assert res.exit_code == 1
    said = [line for line in res.stderr.splitlines() if "--verify" in line]
    assert said == [
        "--verify: tshark not found on PATH (install Wireshark's tshark); the reports say verification was not done"
    ]
    for stem in ("tcp_reset", "ws_dropped"):
        report = json.loads((out / f"{stem}.json").read_text())
        jsonschema.validate(report, SCHEMA)
        (v,) = [c["verification"] for c in report["chargers"]]
        assert v == {
            "done": False,
            "tool": None,
            "note": "tshark not found on PATH (install Wireshark's tshark)",
            "agree": None,
            "filter": None,
            "checks": [],
        }
        assert "Not checked with tshark: tshark not found on PATH" in (out / f"{stem}.md").read_text()


def test_without_pyshark_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyshark", None)  # import pyshark raises ImportError
    res = CliRunner().invoke(
        cli, ["analyze", str(PROJECT_CAPTURES / "tcp_reset.pcap"), "--verify", "-o", str(tmp_path)]
    )
    assert res.exit_code == 1
    assert [line for line in res.stderr.splitlines() if "--verify" in line] == [
        "--verify: pyshark is not installed (pip install 'ghostcap[verify]'); the reports say verification was not done"
    ]


def test_without_verify_the_report_has_no_verification(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["analyze", str(PROJECT_CAPTURES / "tcp_reset.pcap"), "-o", str(tmp_path)])
    assert res.exit_code == 1
    assert "--verify" not in res.stderr
    report = json.loads((tmp_path / "tcp_reset.json").read_text())
    assert [c["verification"] for c in report["chargers"]] == [None]
    assert "Second opinion" not in (tmp_path / "tcp_reset.md").read_text()
    assert "Second opinion" not in (tmp_path / "tcp_reset.html").read_text()


def _fake_tshark(directory: Path, body: str) -> Path:
    path = directory / "tshark"
    path.write_text(
        '#!/bin/sh\nif [ "$1" = "-v" ]; then echo "TShark (Wireshark) 4.0.99 (fake)"; exit 0; fi\n' + body + "\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_hanging_tshark_is_stopped_at_the_timeout_and_reaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pidfile = tmp_path / "pid"
    _fake_tshark(tmp_path, f'echo $$ > "{pidfile}"\nexec sleep 60')
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    tshark = find_tshark()
    assert (tshark.path, tshark.title) == (str(tmp_path / "tshark"), "tshark 4.0.99")
    with pytest.raises(VerifyFailed, match=r"^tshark did not finish within 1 s \(it was stopped\)$"):
        dissect(tshark, PROJECT_CAPTURES / "tcp_reset.pcap", [15], timeout_s=1)
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped: no such process, not even a zombie


def test_a_failing_tshark_leaves_the_verification_not_done(tmp_path: Path) -> None:
    fake = _fake_tshark(tmp_path, 'echo "tshark: The file \\"x\\" appears to be damaged or corrupt." >&2\nexit 2')
    cap = PROJECT_CAPTURES / "tcp_reset.pcap"
    a = analyze(cap)
    (v,) = verify_analysis(a, cap, Tshark(str(fake), "4.0.99", "tshark 4.0.99"))
    assert not v["done"]
    assert v["checks"] == []
    assert v["agree"] is None
    assert v["note"].startswith("tshark failed: ")
    assert "damaged or corrupt" in v["note"]
    (v,) = verify_analysis(a, "-", Tshark(str(fake), "4.0.99", "tshark 4.0.99"))
    assert v["note"] == "the capture was read from standard input: tshark cannot read it again"


def test_a_bug_in_verify_is_one_line_status_5_and_the_report_is_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import analyzer.verify.run

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(analyzer.verify.run, "verify_analysis", broken)
    res = CliRunner().invoke(
        cli, ["analyze", str(PROJECT_CAPTURES / "tcp_reset.pcap"), "--verify", "-o", str(tmp_path)]
    )
    assert res.exit_code == 5
    assert "internal error: " in res.stderr
    assert "tcp_reset.pcap (--verify): RuntimeError: boom; please report" in res.stderr
    assert json.loads((tmp_path / "tcp_reset.json").read_text())["chargers"][0]["verification"] is None
