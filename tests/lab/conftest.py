"""Make ``tests.lab`` importable under pytest's importlib import mode (the repo root is not on sys.path)."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
