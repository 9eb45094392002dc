"""The triage results store: one SQLite file (``DIR/triage.db``), one row per charger per capture.

SQLite in WAL mode, written by one process only (the supervisor), one transaction per capture: an interrupted or
crashed run loses nothing it reported done, and any SQLite client (``sqlite3``, pandas, DBeaver, Grafana) reads it
while a run is going on. ``open_readonly`` opens it with ``mode=ro`` for ``--query``.
"""

from __future__ import annotations

import csv
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from analyzer import __version__

COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "INTEGER PRIMARY KEY"),
    ("capture", "TEXT NOT NULL"),  # name as found (relative to the PATH argument)
    ("path", "TEXT NOT NULL"),  # absolute path when analysed
    ("sha256", "TEXT"),  # of the file as stored; NULL when it could not be read at all
    ("charger_id", "TEXT"),  # station identity, NULL when never seen
    ("charger_address", "TEXT"),
    ("verdict", "TEXT NOT NULL"),  # fault | healthy | inconclusive | no_charger | error
    ("fault", "TEXT"),  # root cause fault id
    ("cx_code", "TEXT"),
    ("frame", "INTEGER"),  # failure frame (1-based, as Wireshark numbers it)
    ("fault_time", "TEXT"),  # ISO-8601 UTC of that frame
    ("capture_first", "TEXT"),  # capture time span, ISO-8601 UTC
    ("capture_last", "TEXT"),
    ("error", "TEXT"),  # why the capture failed (verdict 'error')
    ("warnings", "TEXT"),  # the capture's reading warnings (cut short, damaged...), one per line
    ("report_html", "TEXT"),  # relative to the store's directory
    ("report_json", "TEXT"),
    ("analysed_at", "TEXT NOT NULL"),
    ("ghostcap_version", "TEXT NOT NULL"),
    ("analysis_s", "REAL"),  # seconds reading, decoding and diagnosing
    ("report_s", "REAL"),  # seconds building, rendering and writing the reports
)
NAMES = tuple(name for name, _ in COLUMNS)
EXPORTED = tuple(n for n in NAMES if n != "id")
VERDICTS = ("fault", "inconclusive", "healthy", "no_charger", "error")


def charger_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-charger fields of a JSON report (``build.report_dict``); one ``no_charger`` row if it has none."""
    rows = []
    for c in report["chargers"]:
        rc = c.get("root_cause") or {}
        rows.append(
            {
                "charger_id": c["id"],
                "charger_address": c["address"],
                "verdict": c["verdict"],
                "fault": rc.get("fault"),
                "cx_code": rc.get("cx_code"),
                "frame": rc.get("frame"),
                "fault_time": rc.get("time"),
            }
        )
    return rows or [{"verdict": "no_charger"}]


@dataclass(frozen=True, slots=True)
class CaptureMeta:
    """The per-capture fields of its rows."""

    capture: str
    path: str
    sha256: str | None
    first: str | None = None
    last: str | None = None
    warnings: str | None = None
    report_html: str | None = None
    report_json: str | None = None
    analysis_s: float | None = None
    report_s: float | None = None


class Store:
    """The read-write store of one run (supervisor only)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # in WAL: durable across a process crash, one fsync per checkpoint
        cols = ", ".join(f"{n} {t}" for n, t in COLUMNS)
        with self.db:
            self.db.execute(f"CREATE TABLE IF NOT EXISTS results ({cols})")
            self.db.execute("CREATE INDEX IF NOT EXISTS results_sha256 ON results (sha256)")
            self.db.execute("CREATE INDEX IF NOT EXISTS results_charger ON results (charger_id, charger_address)")

    def known_sha256(self) -> set[str]:
        """Every capture digest with rows already."""
        return {r[0] for r in self.db.execute("SELECT DISTINCT sha256 FROM results WHERE sha256 IS NOT NULL")}

    def put(self, meta: CaptureMeta, rows: Sequence[dict[str, Any]] = (), error: str | None = None) -> None:
        """Replace the capture's rows (same sha256, or same path for an unreadable one) with ``rows`` (or one
        ``error`` row), in one committed transaction."""
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        common = {
            "capture": meta.capture,
            "path": meta.path,
            "sha256": meta.sha256,
            "capture_first": meta.first,
            "capture_last": meta.last,
            "warnings": meta.warnings,
            "report_html": meta.report_html,
            "report_json": meta.report_json,
            "analysed_at": now,
            "ghostcap_version": __version__,
            "analysis_s": meta.analysis_s,
            "report_s": meta.report_s,
        }
        if error is not None:
            rows = [{"verdict": "error", "error": error}]
        values = [tuple({**common, **r}.get(n) for n in EXPORTED) for r in rows]
        marks = ", ".join("?" for _ in EXPORTED)
        with self.db:
            if meta.sha256 is None:
                self.db.execute("DELETE FROM results WHERE sha256 IS NULL AND path = ?", (meta.path,))
            else:
                self.db.execute("DELETE FROM results WHERE sha256 = ?", (meta.sha256,))
            self.db.executemany(f"INSERT INTO results ({', '.join(EXPORTED)}) VALUES ({marks})", values)

    def rows(self) -> list[dict[str, Any]]:
        cur = self.db.execute(f"SELECT {', '.join(EXPORTED)} FROM results ORDER BY capture, path, id")
        return [dict(zip(EXPORTED, r, strict=True)) for r in cur]

    def close(self) -> None:
        self.db.close()


QUERY_TIME_LIMIT_S = 30.0  # a --query running longer is stopped (a recursive CTE can run forever)
_DENIED = {sqlite3.SQLITE_ATTACH: "ATTACH", sqlite3.SQLITE_DETACH: "DETACH"}


class QueryError(Exception):
    """A ``--query`` that was refused or stopped; the message says why."""


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """The store opened read-only (``mode=ro``, ``query_only``): a query cannot change it, and cannot ``ATTACH``
    another database (which would create the file anywhere)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such results database")
    db = sqlite3.connect(f"file:{quote(str(p.resolve()))}?mode=ro", uri=True)
    db.execute("PRAGMA query_only=ON")
    db.set_authorizer(_authorize)
    return db


def _authorize(action: int, *_: object) -> int:
    return sqlite3.SQLITE_DENY if action in _DENIED else sqlite3.SQLITE_OK


def run_query(
    db: sqlite3.Connection, sql: str, time_limit: float = QUERY_TIME_LIMIT_S
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of ``sql`` on a store from ``open_readonly``; ``QueryError`` when it is refused
    (ATTACH/DETACH) or runs past ``time_limit`` seconds."""
    import time

    deadline = time.monotonic() + time_limit
    db.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        cur = db.execute(sql)
        names = [d[0] for d in cur.description or ()]
        return names, cur.fetchall()
    except sqlite3.DatabaseError as e:
        if time.monotonic() > deadline and "interrupt" in str(e):
            raise QueryError(f"query stopped after {time_limit:g} s (the time limit of --query)") from None
        if "not authorized" in str(e) and re.search(r"\b(ATTACH|DETACH)\b", sql, re.IGNORECASE):
            raise QueryError("query refused: ATTACH and DETACH are not allowed (the store is read-only)") from None
        raise QueryError(f"query failed: {e}") from None
    finally:
        db.set_progress_handler(None, 0)


# OWASP "CSV Injection": a spreadsheet reads a cell starting with one of these as a formula (or DDE command)
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value`` safe for a CSV a spreadsheet may open: a string starting with ``= + - @``, TAB or CR gets a
    leading ``'`` (so it is text, not a formula); anything else, numbers included, is unchanged."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_START):
        return "'" + value
    return value


def export_csv(rows: Iterable[dict[str, Any]], path: Path) -> None:
    """``results.csv``: every column of every row, cells neutralised by ``csv_cell`` (station ids, capture
    names, error texts and warnings come from the capture or the file system)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8", errors="replace") as f:
        w = csv.DictWriter(f, fieldnames=EXPORTED)
        w.writeheader()
        w.writerows({k: csv_cell(v) for k, v in r.items()} for r in rows)
    tmp.replace(path)


def export_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    """Parquet via pandas and pyarrow, typed (ints as nullable Int64, times as strings in ISO-8601 UTC)."""
    import pandas as pd

    df = pd.DataFrame.from_records(rows, columns=list(EXPORTED))
    df["frame"] = df["frame"].astype("Int64")
    for col in ("analysis_s", "report_s"):
        df[col] = df[col].astype("float64")
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, engine="pyarrow", index=False)
    tmp.replace(path)
