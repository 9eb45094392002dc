"""Shared test fixtures: where the captures are."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import settings

# ``make test`` is deterministic: every property test draws the same examples on every run and every machine (a
# bug one can find fails every run, not one in five; none is remembered between runs), and
# ``HYPOTHESIS_PROFILE=explore`` draws new ones each run, remembering what failed (``make fuzz`` fuzzes captures)
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

ROOT = Path(__file__).resolve().parent.parent
EXTERNAL = ROOT.parent / "shared" / "captures-external"
ROBUSTNESS = ROOT.parent / "shared" / "robustness"  # damaged and crafted captures (README.md there), read in place
PROJECT_CAPTURES = ROOT / "captures"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz", ".cap")


def capture_files() -> list[Path]:
    """Every external capture (read in place, never copied) and every capture the project ships."""
    found = []
    for base in (EXTERNAL, PROJECT_CAPTURES):
        if base.is_dir():
            found += sorted(p for p in base.rglob("*") if p.is_file() and p.name.endswith(CAPTURE_SUFFIXES))
    return found


def capture_id(path: Path) -> str:
    for base in (EXTERNAL, PROJECT_CAPTURES):
        if path.is_relative_to(base):
            return f"{base.name}/{path.relative_to(base)}"
    return path.name
