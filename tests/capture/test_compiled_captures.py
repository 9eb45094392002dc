"""The compiled and the pure reader cores give the same packets, statistics, warnings and progress ticks on every
capture the project ships and every damaged or crafted input of ``../shared/robustness`` (read in place)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.capture import compiled
from tests.capture.coretest import check_runs, read, reference
from tests.conftest import CAPTURE_SUFFIXES, PROJECT_CAPTURES, ROBUSTNESS


def inputs() -> list[Path]:
    found = sorted(p for p in PROJECT_CAPTURES.glob("*") if p.name.endswith(CAPTURE_SUFFIXES))
    if ROBUSTNESS.is_dir():
        found += sorted(p for p in ROBUSTNESS.rglob("*") if p.is_file() and p.name.endswith(CAPTURE_SUFFIXES))
    return found


@pytest.mark.parametrize("path", inputs(), ids=lambda p: str(p.relative_to(p.parent.parent)))
def test_same_as_pure(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    if not compiled.available():
        pytest.skip(f"compiled reader core: {compiled.describe()}")
    for part in (None, (0, 2), (1, 2)):
        assert read(path, part) == reference(path, part), part
    for k in range(3):
        check_runs(path, (k, 3), 1024)
