"""The code's fault catalogue matches the shared spec, and every fault has a rule that can emit it."""

from __future__ import annotations

import re
from pathlib import Path

from analyzer.diagnosis.catalogue import FAULTS
from analyzer.diagnosis.registry import discover

SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "fault-catalogue.md"


def spec_rows() -> dict[str, str]:
    """fault id → the 'nearest MREC' cell, from the spec's Faults table (``a / b`` rows name two ids)."""
    rows = {}
    for line in SPEC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.match(r"^[a-z]+\.[a-z_]+", cells[0]):
            for fid in cells[0].split("/"):
                rows[fid.strip()] = cells[3]
    return rows


def default_cx(cell: str, rows: dict[str, str]) -> str | None:
    """The code a finding carries when no action-specific rule applies: the "else" one, the first one, the one
    of the fault named in "(as x)", or none ("the reported CX code", "—")."""
    same = re.search(r"(?:^|\()as ([a-z]+\.[a-z_]+)", cell)
    if same:
        return default_cx(rows[same.group(1)], rows)
    if re.search(r"^none\b|else none\b", cell):
        return None
    other = re.search(r"else (CX\d{3})", cell)
    if other:
        return other.group(1)
    first = re.search(r"CX\d{3}", cell)
    return first.group(0) if first else None


def test_every_spec_fault_is_in_the_code_with_its_cx_code() -> None:
    rows = spec_rows()
    assert len(rows) >= 38
    for fid, cx in rows.items():
        assert fid in FAULTS, fid
        assert FAULTS[fid].cx_code == default_cx(cx, rows), (fid, cx)


def test_code_adds_no_fault_missing_from_spec() -> None:
    assert set(FAULTS) == set(spec_rows())


def test_every_fault_has_a_rule_and_every_rule_a_docstring_and_known_faults() -> None:
    rules = discover()
    claimed = {f for spec in rules.values() for f in spec.faults}
    assert claimed <= set(FAULTS)
    missing = set(FAULTS) - claimed
    assert missing == set(), missing
    for spec in rules.values():
        doc = (spec.fn.__module__ and __import__(spec.fn.__module__, fromlist=["x"]).__doc__) or ""
        assert "Field effect" in doc, spec.name


def test_contributing_faults_are_the_clock_ones() -> None:
    assert {f.id for f in FAULTS.values() if f.contributing} == {"clock.reset", "clock.skew"}
