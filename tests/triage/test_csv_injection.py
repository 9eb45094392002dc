"""``results.csv`` neutralises cells a spreadsheet would run as formulas (``../shared/robustness/security/csv``,
``csv_injection_station_id_formula.pcap``): a leading ``'`` before ``= + - @``, TAB or CR, as OWASP advises."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from analyzer.triage.command import run_triage
from analyzer.triage.store import CSV_FORMULA_START, csv_cell
from tests.conftest import ROOT

ROBUSTNESS = ROOT.parent / "shared" / "robustness"
CSV_DIR = ROBUSTNESS / "security" / "csv"


def test_csv_cell() -> None:
    assert [csv_cell(v) for v in ("=1+1", "+1", "-1+1", "@SUM(1)", "\t=1", "\r=1", "CP-1", "", None, -3, 1.5)] == [
        "'=1+1", "'+1", "'-1+1", "'@SUM(1)", "'\t=1", "'\r=1", "CP-1", "", None, -3, 1.5,
    ]  # fmt: skip


@pytest.mark.skipif(not CSV_DIR.is_dir(), reason="../shared/robustness not present")
def test_results_csv_has_no_formula_cells(tmp_path: Path) -> None:
    paths = [*sorted(CSV_DIR.glob("station_*.pcap")), ROBUSTNESS / "csv_injection_station_id_formula.pcap"]
    paths += [next(CSV_DIR.glob("=HYPERLINK*")), next(CSV_DIR.glob("file_=*"))]  # capture names that are formulas
    run_triage([str(p) for p in paths], tmp_path, workers=1, echo=lambda m: None, tty=False)
    with open(tmp_path / "results.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= len(paths) - 1  # csv_injection_station_id_formula.pcap may equal a station_* one
    cells = [v for r in rows for v in r.values()]
    assert not [v for v in cells if v.startswith(CSV_FORMULA_START)]
    ids = sorted(r["charger_id"] for r in rows if r["charger_id"].startswith("'"))
    assert {i[1] for i in ids} >= {"=", "+", "-", "@", "\t", "\r"}
    assert "'=HYPERLINK" in {r["capture"][:11] for r in rows}
