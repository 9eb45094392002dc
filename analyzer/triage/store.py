"""The triage results store: one SQLite file (``DIR/triage.db``), one row per charger per capture (``results``),
and the fleet's backend incidents (``incidents``, ``incident_chargers``), recomputed from every row at the end of
each run (``fleet.incidents``).

SQLite in WAL mode, written by one process only (the supervisor), one transaction per capture: an interrupted or
crashed run loses nothing it reported done, and any SQLite client (``sqlite3``, pandas, DBeaver, Grafana) reads it
while a run is going on. ``open_readonly`` opens it with ``mode=ro`` for ``--query``.
"""

from __future__ import annotations

import csv
import re
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from analyzer import __version__
from analyzer.budgets import TRIAGE_COMMIT_CAPTURES, TRIAGE_COMMIT_S

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
    # who acts and the fleet view (added with issue 16; an older store gets them by ALTER TABLE)
    ("charger_key", "TEXT"),  # identity: "id:<station id>" across captures, else "addr:<address>@<capture sha256>"
    ("site", "TEXT"),  # the capture's directory as found (e.g. "site-03"), NULL at the top
    ("fix_side", "TEXT"),  # charger | csms | network | capture (of the root cause)
    ("severity", "TEXT"),  # failure | contributing (of the root cause)
    ("site_visit", "INTEGER"),  # 1: the charger's own fault and no working session: someone must go there
    ("connected_at_end", "INTEGER"),  # 1, 0, NULL (cannot tell)
    ("stage", "TEXT"),  # furthest stage reached: none dns tcp tls http websocket ocpp boot_accepted
    ("csms_endpoint", "TEXT"),  # host:port (the address when no name is seen)
    ("signature", "TEXT"),  # kind=value the failure shows: certificate=<sha256>, http_status=401, close_code=1008...
    ("signature_detail", "TEXT"),  # the same in words
    ("resolver", "TEXT"),  # the DNS server the charger asked
    ("fix", "TEXT"),  # the root cause's first remediation
    ("incident", "INTEGER"),  # incidents.id when the failure is part of a backend incident
)
NAMES = tuple(name for name, _ in COLUMNS)
EXPORTED = tuple(n for n in NAMES if n != "id")
VERDICTS = ("fault", "inconclusive", "healthy", "no_charger", "error")
INCIDENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "INTEGER PRIMARY KEY"),
    ("fault", "TEXT NOT NULL"),
    ("fix_side", "TEXT NOT NULL"),  # csms
    ("csms_endpoint", "TEXT"),
    ("signature", "TEXT"),
    ("signature_detail", "TEXT"),
    ("chargers", "INTEGER NOT NULL"),  # member chargers
    ("captures", "INTEGER NOT NULL"),
    ("still_failing", "INTEGER NOT NULL"),  # members whose latest capture still shows this failure
    ("first_failure", "TEXT"),  # ISO-8601 UTC
    ("last_failure", "TEXT"),
    ("fix", "TEXT"),  # the single fix
    ("summary", "TEXT NOT NULL"),  # one sentence
)
MEMBER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("incident", "INTEGER NOT NULL"),
    ("charger_key", "TEXT NOT NULL"),
    ("charger_id", "TEXT"),
    ("charger_address", "TEXT"),
    ("captures", "INTEGER NOT NULL"),
    ("first_failure", "TEXT"),
    ("last_failure", "TEXT"),
)
INCIDENT_NAMES = tuple(n for n, _ in INCIDENT_COLUMNS)
MEMBER_NAMES = tuple(n for n, _ in MEMBER_COLUMNS)


def charger_rows(report: dict[str, Any], signatures: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """The per-charger fields of a JSON report (``build.report_dict``), with each charger's
    ``signature.Signature`` when given (same order); one ``no_charger`` row if it has none."""
    rows = []
    for i, c in enumerate(report["chargers"]):
        rc = c.get("root_cause") or {}
        sig = signatures[i] if i < len(signatures) else None
        end = c.get("connected_at_end")
        rows.append(
            {
                "charger_id": c["id"],
                "charger_address": c["address"],
                "verdict": c["verdict"],
                "fault": rc.get("fault"),
                "cx_code": rc.get("cx_code"),
                "frame": rc.get("frame"),
                "fault_time": rc.get("time"),
                "fix_side": rc.get("fix_side"),
                "severity": rc.get("severity"),
                "site_visit": int(bool(c.get("site_visit"))),
                "connected_at_end": None if end is None else int(end),
                "stage": sig.stage if sig else _stage(c),
                "csms_endpoint": sig.endpoint if sig else None,
                "signature": sig.signature if sig else None,
                "signature_detail": sig.detail if sig else None,
                "resolver": sig.resolver if sig else None,
                "fix": (rc.get("remediation") or [None])[0],
            }
        )
    return rows or [{"verdict": "no_charger"}]


def _stage(c: dict[str, Any]) -> str:
    from analyzer.diagnosis.attempts import STAGES

    return max((a.get("reached") or "none" for a in c.get("attempts") or ()), key=STAGES.index, default="none")


class _Row(dict):
    """A result row for ``INSERT`` by column name: a column it does not hold is NULL (sqlite3 looks each name up in
    C, one call per row instead of a Python lookup per column)."""

    def __missing__(self, key: str) -> None:
        return None


_INSERT = f"INSERT INTO results ({', '.join(EXPORTED)}) VALUES ({', '.join(':' + n for n in EXPORTED)})"


def charger_key(charger_id: str | None, address: str | None, capture: str) -> str | None:
    """A charger's identity: its station id across captures; without one, its address within its capture (never
    merged across captures by address alone: many chargers share 127.0.0.1 or 192.168.1.10)."""
    if charger_id:
        return f"id:{charger_id}"
    if address:
        return f"addr:{address}@{capture}"
    return None


def site_of(capture: str) -> str | None:
    """The capture's directory as found (``site-03/cp.pcap`` → ``site-03``); ``None`` at the top. The directory
    part is worked out once per directory (``_site``): a fleet has thousands of captures in a few directories."""
    head, sep, _ = capture.replace("\\", "/").rpartition("/")
    return _site(head + sep)


@lru_cache(maxsize=4096)
def _site(head: str) -> str | None:
    """``site_of`` of a capture named ``head`` + a file name (its parent does not depend on the name)."""
    parent = str(PurePosixPath(head + "capture").parent)
    return None if parent in (".", "/", "") else parent


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
        self._uncommitted = 0
        self._committed_at = time.monotonic()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # in WAL: durable across a process crash, one fsync per checkpoint
        cols = ", ".join(f"{n} {t}" for n, t in COLUMNS)
        with self.db:
            self.db.execute(f"CREATE TABLE IF NOT EXISTS results ({cols})")
            have = {r[1] for r in self.db.execute("PRAGMA table_info(results)")}
            for n, t in COLUMNS:
                if n not in have:  # a store written by an older ghostcap
                    self.db.execute(f"ALTER TABLE results ADD COLUMN {n} {t}")
            self.db.execute("CREATE INDEX IF NOT EXISTS results_sha256 ON results (sha256)")
            self.db.execute("CREATE INDEX IF NOT EXISTS results_charger ON results (charger_id, charger_address)")
            self.db.execute("CREATE INDEX IF NOT EXISTS results_key ON results (charger_key)")
            incident_cols = ", ".join(f"{n} {t}" for n, t in INCIDENT_COLUMNS)
            self.db.execute(f"CREATE TABLE IF NOT EXISTS incidents ({incident_cols})")
            member_cols = ", ".join(f"{n} {t}" for n, t in MEMBER_COLUMNS)
            self.db.execute(f"CREATE TABLE IF NOT EXISTS incident_chargers ({member_cols})")

    def known_sha256(self) -> set[str]:
        """Every capture digest with rows already."""
        return {r[0] for r in self.db.execute("SELECT DISTINCT sha256 FROM results WHERE sha256 IS NOT NULL")}

    def put(
        self, meta: CaptureMeta, rows: Sequence[dict[str, Any]] = (), error: str | None = None, new: bool = False
    ) -> None:
        """Replace the capture's rows (same sha256, or same path for an unreadable one) with ``rows`` (or one
        ``error`` row); ``new``: the caller knows the store has none for its sha256 (none to delete). Committed in
        batches (``commit``, ``close``): a capture whose rows did not reach the disk is not known to the next run,
        which analyses it again."""
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
        common["site"] = site_of(meta.capture)
        scope = meta.sha256 or meta.path
        values = []
        for r in rows:
            row = _Row(common)
            row.update(r)
            row["charger_key"] = charger_key(r.get("charger_id"), r.get("charger_address"), scope)
            values.append(row)
        if meta.sha256 is None:
            self.db.execute("DELETE FROM results WHERE sha256 IS NULL AND path = ?", (meta.path,))
        elif not new:
            self.db.execute("DELETE FROM results WHERE sha256 = ?", (meta.sha256,))
        self.db.executemany(_INSERT, values)
        self._uncommitted += 1
        if self._uncommitted >= TRIAGE_COMMIT_CAPTURES:
            self.commit()
        else:
            self.commit_due()

    def commit_due(self) -> None:
        """Commit what was put if the last commit is ``TRIAGE_COMMIT_S`` old (called after each capture and while
        waiting for one: a capture is never held back longer)."""
        if self._uncommitted and time.monotonic() - self._committed_at >= TRIAGE_COMMIT_S:
            self.commit()

    def commit(self) -> None:
        """Make every capture put so far durable (``put`` commits in batches: ``TRIAGE_COMMIT_CAPTURES``)."""
        self.db.commit()
        self._uncommitted = 0
        self._committed_at = time.monotonic()

    def rows(self) -> list[dict[str, Any]]:
        cur = self.db.execute(f"SELECT id, {', '.join(EXPORTED)} FROM results ORDER BY capture, path, id")
        return [dict(zip(NAMES, r, strict=True)) for r in cur]

    def put_incidents(self, incidents: Sequence[Any]) -> None:
        """Replace the incidents with ``incidents`` (``fleet.Incident``, numbered from 1 in order) and point each
        member row of ``results`` at its incident, in one transaction."""
        marks = ", ".join("?" for _ in INCIDENT_NAMES)
        member_marks = ", ".join("?" for _ in MEMBER_NAMES)
        with self.db:
            self.db.execute("DELETE FROM incident_chargers")
            self.db.execute("DELETE FROM incidents")
            self.db.execute("UPDATE results SET incident = NULL WHERE incident IS NOT NULL")
            for n, inc in enumerate(incidents, 1):
                row = inc.row(n)
                self.db.execute(f"INSERT INTO incidents VALUES ({marks})", tuple(row[k] for k in INCIDENT_NAMES))
                self.db.executemany(
                    f"INSERT INTO incident_chargers VALUES ({member_marks})",
                    [tuple(m[k] for k in MEMBER_NAMES) for m in inc.member_rows(n)],
                )
                self.db.executemany("UPDATE results SET incident = ? WHERE id = ?", [(n, i) for i in inc.row_ids])

    def close(self) -> None:
        self.commit()
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
        w = csv.DictWriter(f, fieldnames=EXPORTED, extrasaction="ignore")
        w.writeheader()
        w.writerows({k: csv_cell(v) for k, v in r.items()} for r in rows)
    tmp.replace(path)


def export_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    """Parquet via pandas and pyarrow, typed (ints as nullable Int64, times as strings in ISO-8601 UTC)."""
    import pandas as pd

    df = pd.DataFrame.from_records(rows, columns=list(EXPORTED))
    for col in ("frame", "site_visit", "connected_at_end", "incident"):
        df[col] = df[col].astype("Int64")
    for col in ("analysis_s", "report_s"):
        df[col] = df[col].astype("float64")
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, engine="pyarrow", index=False)
    tmp.replace(path)


INCIDENT_EXPORT = (*INCIDENT_NAMES, "members")


def export_incidents(incidents: Sequence[Any], path: Path) -> None:
    """``incidents.csv``: one row per incident (``fleet.Incident``, numbered as in the store), its member chargers
    in ``members`` (station id, else address, separated by spaces), cells neutralised by ``csv_cell``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8", errors="replace") as f:
        w = csv.writer(f)
        w.writerow(INCIDENT_EXPORT)
        for n, inc in enumerate(incidents, 1):
            row = inc.row(n)
            names = " ".join(m["charger_id"] or m["charger_address"] or "?" for m in inc.member_rows(n))
            w.writerow([csv_cell(v) for v in (*(row[k] for k in INCIDENT_NAMES), names)])
    tmp.replace(path)
