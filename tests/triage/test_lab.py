"""``ghostcap triage`` over every lab capture and broken files: every row against the lab's ground truth, the error
rows, the reports (the same as ``ghostcap analyze`` writes), the exports, skipping by sha256 and ``--force``."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
from click.testing import CliRunner

from analyzer.cli import cli
from analyzer.diagnosis.attempts import STAGES
from analyzer.triage.command import run_triage
from analyzer.triage.store import EXPORTED
from tests.conftest import PROJECT_CAPTURES
from tests.triage.conftest import LAB, LabRun

TRUTHS = sorted(PROJECT_CAPTURES.glob("*.truth.json"))


def db_rows(out: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(out / "triage.db")
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM results ORDER BY id")]
    db.close()
    return rows


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_charger_row_matches_the_lab_truth(lab_run: LabRun) -> None:
    rows = db_rows(lab_run.out)
    assert len(TRUTHS) >= 36
    for tf in TRUTHS:
        truth = json.loads(tf.read_text())
        mine = [r for r in rows if r["sha256"] == sha(PROJECT_CAPTURES / truth["capture"]["file"])]
        assert len(mine) == len(truth["chargers"]), (tf.name, mine)
        for t in truth["chargers"]:
            if len(truth["chargers"]) == 1:
                (r,) = mine
            else:
                named = [r for r in mine if r["charger_id"] == t["station_id"]]
                # a charger the capture never names (its lookup failed) is the only row without an id
                (r,) = named or [r for r in mine if r["charger_id"] is None]
            if t["fault_id"] is None:
                assert (r["verdict"], r["fault"], r["cx_code"], r["frame"]) == ("healthy", None, None, None), r
            else:
                assert (r["verdict"], r["fault"], r["cx_code"], r["frame"]) == (
                    "fault",
                    t["fault_id"],
                    t["cx"],
                    t["failure_frame"],
                ), (tf.name, r)
                assert r["fault_time"].endswith("Z")
            assert r["error"] is None
            assert r["capture_first"] <= r["capture_last"]
            assert r["report_json"].startswith("captures/")
            # HTML only where someone will open it: a capture with a failing or inconclusive charger
            healthy_capture = all(t["fault_id"] is None for t in truth["chargers"])
            assert (r["report_html"] is None) == healthy_capture, (tf.name, r["report_html"])
            assert r["stage"] in STAGES
            assert r["ghostcap_version"] == "0.1.0"
            assert r["analysis_s"] > 0


def test_station_ids_and_addresses_are_stored(lab_run: LabRun) -> None:
    rows = [r for r in db_rows(lab_run.out) if r["capture"].endswith("/gateway_mixed.pcap")]
    assert sorted(r["charger_id"] for r in rows) == ["GW-CP-01", "GW-CP-03", "GW-CP-04", "GW-CS-02"]
    assert all(r["charger_address"].startswith("127.0.1.") for r in rows)


def test_a_compressed_copy_gives_the_same_rows(lab_run: LabRun) -> None:
    rows = db_rows(lab_run.out)
    key = lambda r: (r["charger_id"], r["verdict"], r["fault"], r["cx_code"], r["frame"])  # noqa: E731
    plain = sorted(key(r) for r in rows if r["capture"].endswith("lab/gateway_mixed.pcap"))
    gz = [r for r in rows if r["capture"].endswith("nested/gateway_again.pcap.gz")]
    assert plain
    assert sorted(key(r) for r in gz) == plain
    assert gz[0]["report_html"].startswith("captures/gateway_again-")


def test_broken_files_are_error_rows_or_warned_rows(lab_run: LabRun) -> None:
    rows = db_rows(lab_run.out)
    for name, error in lab_run.broken.items():
        mine = [r for r in rows if r["capture"].endswith(name)]
        assert mine, name
        if error is None:
            assert all(r["verdict"] in ("no_charger", "inconclusive") for r in mine), mine
            assert all(r["error"] is None for r in mine)
            assert all("cut short" in r["warnings"] for r in mine), mine
        else:
            (r,) = mine
            assert r["verdict"] == "error"
            assert error in r["error"], r["error"]
            assert r["report_html"] is None
            assert r["report_json"] is None
            assert r["sha256"] == sha(lab_run.broken_dir / name)
    (cut,) = [r for r in rows if r["capture"].endswith("cut_header.pcap")]
    assert cut["verdict"] == "no_charger"
    assert cut["charger_id"] is None


def test_run_counts_and_duplicates(lab_run: LabRun) -> None:
    r = lab_run.result
    assert r.duplicates == 1  # demo.pcap and healthy_16_ws.pcap are the same bytes
    assert any("same content as" in line for line in lab_run.log)
    assert r.total == len(LAB) - 1 + 1 + len(lab_run.broken)
    assert r.done == r.total
    assert r.failed == 3
    assert not r.interrupted
    # the workers that analysed something: both, or one when it took every capture before the other was ready
    # (importing the engine on a loaded machine outlasts the 61 captures' ~0.2 s)
    assert set(r.peak_rss_kb) in ({0, 1}, {0}, {1})
    assert all(20_000 < kb < 1_000_000 for kb in r.peak_rss_kb.values()), r.peak_rss_kb
    assert sum(line.startswith("[") for line in lab_run.log) == r.total  # one plain line per capture off a terminal


def test_reports_are_what_analyze_writes(lab_run: LabRun, tmp_path: Path) -> None:
    """The same engine and the same reports: the same JSON (on one line in triage, byte for byte once indented
    the same way), the HTML byte for byte (no time of day in either)."""
    rows = db_rows(lab_run.out)
    for name in ("gateway_mixed.pcap", "tls12_cert_not_yet_valid.pcap", "ocpp_schema_violation.pcap"):
        args = ["analyze", str(PROJECT_CAPTURES / name), "-o", str(tmp_path), "--format", "html,json"]
        keys = PROJECT_CAPTURES / name.replace(".pcap", ".keys.txt")
        if keys.exists():
            args += ["--keylog", str(keys)]
        res = CliRunner().invoke(cli, args)
        assert res.exit_code in (0, 1), res.output
        (row, *_) = [r for r in rows if r["capture"].endswith("lab/" + name)]
        stem = name.removesuffix(".pcap")
        assert row["report_json"] == f"captures/{stem}-{row['sha256'][:12]}.json"
        triaged = (lab_run.out / row["report_json"]).read_text()
        assert triaged.count("\n") == 1  # one line
        assert (
            json.dumps(json.loads(triaged), indent=2, ensure_ascii=False) + "\n"
            == (tmp_path / f"{stem}.json").read_text()
        )
        assert (lab_run.out / row["report_html"]).read_text() == (tmp_path / f"{stem}.html").read_text()


def test_csv_and_parquet_exports_hold_every_row(lab_run: LabRun) -> None:
    rows = db_rows(lab_run.out)
    with open(lab_run.out / "results.csv", newline="", encoding="utf-8") as f:
        exported = list(csv.DictReader(f))
    assert list(exported[0]) == list(EXPORTED)
    assert len(exported) == len(rows)
    by_key = {(r["path"], r["charger_address"] or "", r["charger_id"] or ""): r for r in exported}
    for r in rows:
        e = by_key[(r["path"], r["charger_address"] or "", r["charger_id"] or "")]
        assert e["verdict"] == r["verdict"]
        assert e["frame"] == ("" if r["frame"] is None else str(r["frame"]))
        assert e["sha256"] == r["sha256"]
    df = pd.read_parquet(lab_run.out / "results.parquet")
    assert list(df.columns) == list(EXPORTED)
    assert len(df) == len(rows)
    assert str(df["frame"].dtype) == "Int64"
    faults = df[df["verdict"] == "fault"]
    assert sorted(faults["fault"]) == sorted(r["fault"] for r in rows if r["verdict"] == "fault")
    assert set(df["verdict"]) == {"fault", "healthy", "inconclusive", "no_charger", "error"}


def test_query_prints_a_table_csv_and_json(lab_run: LabRun) -> None:
    db = str(lab_run.out / "triage.db")
    sql = "SELECT cx_code, count(*) AS n FROM results WHERE verdict = 'fault' GROUP BY cx_code ORDER BY cx_code"
    runner = CliRunner()
    res = runner.invoke(cli, ["triage", "--db", db, "--query", sql, "--format", "json"])
    assert res.exit_code == 0, res.output
    counts = {d["cx_code"]: d["n"] for d in json.loads(res.output)}
    expected: dict[str, int] = {}
    for r in db_rows(lab_run.out):
        if r["verdict"] == "fault":
            expected[r["cx_code"]] = expected.get(r["cx_code"], 0) + 1
    assert counts == expected
    table = runner.invoke(cli, ["triage", "--db", db, "--query", sql]).output.splitlines()
    assert table[0].split() == ["cx_code", "n"]
    assert ["CX009", str(expected["CX009"])] in [line.split() for line in table[2:-1]]
    assert table[-1] == f"({len(expected)} rows)"
    as_csv = runner.invoke(cli, ["triage", "--db", db, "--query", sql, "--format", "csv"]).output.splitlines()
    assert as_csv[0] == "cx_code,n"
    assert len(as_csv) == 1 + len(expected)
    # the default database is DIR/triage.db
    res = runner.invoke(cli, ["triage", "-o", str(lab_run.out), "--query", "SELECT count(*) AS n FROM results"])
    assert res.output.splitlines()[2].strip() == str(len(db_rows(lab_run.out)))


def test_query_cannot_write(lab_run: LabRun) -> None:
    db = str(lab_run.out / "triage.db")
    before = len(db_rows(lab_run.out))
    for sql in ("DELETE FROM results", "DROP TABLE results", "UPDATE results SET verdict = 'healthy'"):
        res = CliRunner().invoke(cli, ["triage", "--db", db, "--query", sql])
        assert res.exit_code == 1
        assert "readonly" in res.output or "read-only" in res.output, res.output
    assert len(db_rows(lab_run.out)) == before
    res = CliRunner().invoke(cli, ["triage", "--db", str(lab_run.out / "nope.db"), "--query", "SELECT 1"])
    assert res.exit_code == 1
    assert "no such results database" in res.output
    assert not (lab_run.out / "nope.db").exists()


def _small_fleet(d: Path) -> list[Path]:
    d.mkdir()
    names = ["tcp_refused.pcap", "gateway_mixed.pcap", "dns_nxdomain.pcap"]
    for n in names:
        shutil.copy(PROJECT_CAPTURES / n, d / n)
    return [d / n for n in names]


def test_rerun_skips_stored_captures_and_force_replaces_their_rows(tmp_path: Path) -> None:
    fleet = _small_fleet(tmp_path / "fleet")
    out = tmp_path / "out"
    first = run_triage([str(tmp_path / "fleet")], out, workers=1, echo=lambda m: None, tty=False)
    assert (first.done, first.skipped) == (3, 0)
    rows1 = db_rows(out)
    assert len(rows1) == 1 + 4 + 1
    again = run_triage([str(tmp_path / "fleet")], out, workers=1, echo=lambda m: None, tty=False)
    assert (again.total, again.done, again.skipped) == (0, 0, 3)
    assert db_rows(out) == rows1
    # a new capture next to the old ones: only it is analysed
    shutil.copy(PROJECT_CAPTURES / "tcp_reset.pcap", tmp_path / "fleet" / "tcp_reset.pcap")
    more = run_triage([str(tmp_path / "fleet")], out, workers=1, echo=lambda m: None, tty=False)
    assert (more.done, more.skipped) == (1, 3)
    assert len(db_rows(out)) == len(rows1) + 1
    # --force on one capture: its rows are replaced (new ids), the others untouched, no duplicates
    forced = run_triage([str(fleet[1])], out, workers=1, force=True, echo=lambda m: None, tty=False)
    assert (forced.done, forced.skipped) == (1, 0)
    rows3 = db_rows(out)
    assert len(rows3) == len(rows1) + 1
    gw_old = {r["id"] for r in rows1 if r["capture"].endswith("gateway_mixed.pcap")}
    gw_new = [r for r in rows3 if r["capture"] == "gateway_mixed.pcap"]
    assert len(gw_new) == 4
    assert not gw_old & {r["id"] for r in gw_new}
    assert [r for r in rows3 if r["capture"].endswith("tcp_refused.pcap")] == [
        r for r in rows1 if r["capture"].endswith("tcp_refused.pcap")
    ]
    # exports follow the store after every run
    assert len(pd.read_parquet(out / "results.parquet")) == len(rows3)


def test_captures_sharing_a_stem_get_their_own_reports(tmp_path: Path) -> None:
    for sub, src in (("a", "tcp_refused.pcap"), ("b", "tcp_reset.pcap")):
        (tmp_path / sub).mkdir()
        shutil.copy(PROJECT_CAPTURES / src, tmp_path / sub / "charger.pcap")
    out = tmp_path / "out"
    res = CliRunner().invoke(
        cli, ["triage", str(tmp_path / "a"), str(tmp_path / "b" / "*.pcap"), "-o", str(out), "--workers", "1"]
    )
    assert res.exit_code == 0, res.output
    rows = db_rows(out)
    assert {r["fault"] for r in rows} == {"tcp.refused", "tcp.reset"}
    htmls = {r["report_html"] for r in rows}
    assert len(htmls) == 2
    for h in htmls:
        assert (out / h).is_file()
        assert Path(h).name.startswith("charger-")
    assert "triaged 2 captures" in res.output


def test_usage_errors() -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["triage"])
    assert res.exit_code == 2
    assert "at least one PATH" in res.output
    res = runner.invoke(cli, ["triage", "/nonexistent/x.pcap"])
    assert res.exit_code == 2
    assert "no such file or directory" in res.output
    res = runner.invoke(cli, ["triage", str(PROJECT_CAPTURES / "*.nothing")])
    assert res.exit_code == 2
    assert "no capture matches" in res.output
    res = runner.invoke(cli, ["triage", str(PROJECT_CAPTURES), "--max-memory", "lots"])
    assert res.exit_code == 2
    assert "not a size" in res.output
