"""The fleet view of a results store: chargers by identity, backend incidents, who goes where, the funnel.

Pure functions over ``Store.rows()`` (no I/O), shared by the fleet page, the fleet Markdown, ``fleet.json`` and the
store's ``incidents`` tables.

- **Identity**: a charger is its station id across captures; without one, its address within its capture
  (``store.charger_key``). Its state is its latest capture's row (by capture start).
- **Incidents**: failures the CSMS operator fixes (``fix_side`` csms) that share the CSMS endpoint, the fault and
  the signature (same server certificate, HTTP status, CALLERROR, close code or DNS answer), with time windows
  (failure point to capture end) no further apart than ``INCIDENT_GAP_S``, are one incident with its member
  chargers. Faults of the charger or the network stay per charger.
- **Dispatch** (catalogue "Who acts"), on each charger's state: backend incidents (one fix each); site visits (the
  charger's own fault and no working session), longest failing first; network problems grouped by resolver (DNS
  faults) or site (the capture's directory); then the rest (remote charger fixes, capture-side, inconclusive,
  captures that could not be analysed or hold no charger).
- **Funnel**: how many chargers reached each stage (``attempts.STAGES``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from analyzer.budgets import INCIDENT_GAP_S
from analyzer.diagnosis.attempts import STAGE_TITLES, STAGES

CHARGER_VERDICTS = ("fault", "inconclusive", "healthy")


def parse_time(iso: str | None) -> datetime | None:
    """An ISO-8601 UTC text of the store (ns precision, ``Z``) as a datetime (µs); ``None`` if it is not one."""
    if not iso or len(iso) < 19:
        return None
    try:
        base = datetime.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    frac = iso[19:].lstrip(".").rstrip("Z")
    if frac.isascii() and frac.isdigit():
        base = base.replace(microsecond=int(frac[:6].ljust(6, "0")))
    return base


def short_time(iso: str | None) -> str | None:
    """``2026-11-24 04:16:50 UTC``."""
    t = parse_time(iso)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if t else None


def duration_words(seconds: float | None) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``4 min 10 s``, ``12.3 s``, ``0.024 s``."""
    if seconds is None:
        return "unknown"
    s = max(seconds, 0.0)
    if s < 60:
        return f"{s:.3f} s" if s < 10 else f"{s:.1f} s"
    m, sec = divmod(int(s), 60)
    h, m = divmod(m, 60)
    d, h = divmod(h, 24)
    if d:
        return f"{d} d {h} h"
    if h:
        return f"{h} h {m} min"
    return f"{m} min {sec} s"


def _start(r: dict[str, Any]) -> str:
    return r.get("capture_first") or ""


@dataclass
class Charger:
    """One charger: its ``key``, latest row ``state``, its ``rows`` (oldest first), and how long it has been
    failing: from the failure point of the first capture of its current run of failing captures
    (``failing_since``) to the end of its latest capture (``failing_until``)."""

    key: str
    rows: list[dict[str, Any]]
    failing_since: str | None = None
    failing_until: str | None = None

    @property
    def state(self) -> dict[str, Any]:
        return self.rows[-1]

    @property
    def failing_s(self) -> float | None:
        a, b = parse_time(self.failing_since), parse_time(self.failing_until)
        return (b - a).total_seconds() if a and b else None

    @property
    def name(self) -> str:
        s = self.state
        return s.get("charger_id") or s.get("charger_address") or "?"


def chargers(rows: Sequence[dict[str, Any]]) -> list[Charger]:
    """Every charger (rows with a charger verdict), by identity, ordered by key."""
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("verdict") in CHARGER_VERDICTS and r.get("charger_key"):
            by_key[r["charger_key"]].append(r)
    out = []
    for key in sorted(by_key):
        rs = sorted(by_key[key], key=lambda r: (_start(r), r.get("capture") or ""))
        c = Charger(key, rs)
        streak = []
        for r in reversed(rs):
            if r.get("verdict") != "fault":
                break
            streak.append(r)
        if streak:
            c.failing_since = min((r.get("fault_time") or _start(r) for r in streak), default=None) or None
            c.failing_until = rs[-1].get("capture_last") or rs[-1].get("fault_time")
        out.append(c)
    return out


# ------------------------------------------------------------------------------------------------- incidents


@dataclass
class Incident:
    """Failures of many (or one) chargers with one CSMS-side cause: ``fault``, ``csms_endpoint``, ``signature``
    (``kind=value``) and ``signature_detail``; the member ``rows``; ``still_failing`` members whose latest capture
    is one of them."""

    fault: str
    fix_side: str
    csms_endpoint: str | None
    signature: str | None
    signature_detail: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    still_failing: int = 0

    @property
    def members(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for r in self.rows:
            out.setdefault(r["charger_key"], []).append(r)
        return out

    @property
    def row_ids(self) -> list[int]:
        return [r["id"] for r in self.rows if r.get("id") is not None]

    @property
    def first_failure(self) -> str | None:
        return min((_when(r) for r in self.rows), default=None) or None

    @property
    def last_failure(self) -> str | None:
        return max((_when(r) for r in self.rows), default=None) or None

    @property
    def captures(self) -> int:
        return len({r.get("sha256") or r.get("path") for r in self.rows})

    @property
    def fix(self) -> str | None:
        return Counter(r.get("fix") for r in self.rows if r.get("fix")).most_common(1)[0][0] if self.rows else None

    @property
    def summary(self) -> str:
        n = len(self.members)
        against = f" against {self.csms_endpoint}" if self.csms_endpoint else ""
        detail = f", {self.signature_detail}" if self.signature_detail else ""
        return (
            f"{n} charger{'s' if n != 1 else ''}, {self.fault}{against}{detail}; first failure "
            f"{short_time(self.first_failure) or 'unknown'}, last {short_time(self.last_failure) or 'unknown'}"
        )

    def row(self, n: int) -> dict[str, Any]:
        """Its ``incidents`` row as number ``n``."""
        return {
            "id": n,
            "fault": self.fault,
            "fix_side": self.fix_side,
            "csms_endpoint": self.csms_endpoint,
            "signature": self.signature,
            "signature_detail": self.signature_detail,
            "chargers": len(self.members),
            "captures": self.captures,
            "still_failing": self.still_failing,
            "first_failure": self.first_failure,
            "last_failure": self.last_failure,
            "fix": self.fix,
            "summary": self.summary,
        }

    def member_rows(self, n: int) -> list[dict[str, Any]]:
        out = []
        for key, rs in self.members.items():
            out.append(
                {
                    "incident": n,
                    "charger_key": key,
                    "charger_id": rs[-1].get("charger_id"),
                    "charger_address": rs[-1].get("charger_address"),
                    "captures": len(rs),
                    "first_failure": min(_when(r) for r in rs) or None,
                    "last_failure": max(_when(r) for r in rs) or None,
                }
            )
        return out


def _when(r: dict[str, Any]) -> str:
    return r.get("fault_time") or _start(r)


def _window(r: dict[str, Any]) -> tuple[float, float]:
    a = parse_time(_when(r))
    b = parse_time(r.get("capture_last")) or a
    lo = a.timestamp() if a else 0.0
    return lo, max(lo, b.timestamp() if b else lo)


def incidents(rows: Sequence[dict[str, Any]], gap_s: float = INCIDENT_GAP_S) -> list[Incident]:
    """The backend incidents of ``rows``, largest first (see the module)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("verdict") == "fault" and r.get("fix_side") == "csms" and r.get("fault") and r.get("charger_key"):
            groups[(r.get("csms_endpoint"), r["fault"], r.get("signature"))].append(r)
    latest = {c.key: c.state.get("id", id(c.state)) for c in chargers(rows)}
    out: list[Incident] = []
    for (where, fault, sig), rs in groups.items():
        rs.sort(key=_window)
        current: Incident | None = None
        end = 0.0
        for r in rs:
            lo, hi = _window(r)
            if current is None or lo > end + gap_s:
                current = Incident(fault, "csms", where, sig, r.get("signature_detail"))
                out.append(current)
                end = hi
            current.rows.append(r)
            end = max(end, hi)
    for inc in out:
        ids = {r.get("id", id(r)) for r in inc.rows}
        inc.still_failing = sum(1 for key in inc.members if latest.get(key) in ids)
    out.sort(key=lambda i: (-len(i.members), i.first_failure or "", i.fault, i.csms_endpoint or ""))
    return out


# -------------------------------------------------------------------------------------------------- dispatch


@dataclass
class NetworkGroup:
    """Network problems of one resolver or site: ``by`` (``resolver`` or ``site``), ``where``, the chargers."""

    by: str
    where: str
    chargers: list[Charger]

    @property
    def faults(self) -> list[tuple[str, int]]:
        return Counter(c.state.get("fault") or "?" for c in self.chargers).most_common()

    @property
    def fix(self) -> str | None:
        fixes = Counter(c.state.get("fix") for c in self.chargers if c.state.get("fix"))
        return fixes.most_common(1)[0][0] if fixes else None


@dataclass
class Dispatch:
    """Who acts, in the order an operations lead decides: ``incidents`` (backend), ``site_visits`` (longest
    failing first), ``network`` groups, then ``remote`` (charger fixes over a working session), ``capture``
    (faults the capture cannot pin on a side), ``inconclusive`` chargers and ``unanalysed`` capture rows (error,
    no charger)."""

    chargers: list[Charger]
    incidents: list[Incident]
    site_visits: list[Charger]
    network: list[NetworkGroup]
    remote: list[Charger]
    capture: list[Charger]
    inconclusive: list[Charger]
    unanalysed: list[dict[str, Any]]
    funnel: list[tuple[str, str, int]]  # (stage, title, chargers that reached it)
    faults: list[tuple[str, int]]  # fault id → failing chargers, every id
    captures: int = 0

    @property
    def verdicts(self) -> Counter[str]:
        return Counter(c.state["verdict"] for c in self.chargers)

    @property
    def open_incidents(self) -> list[Incident]:
        return [i for i in self.incidents if i.still_failing]


def funnel(cs: Sequence[Charger]) -> list[tuple[str, str, int]]:
    """Chargers that reached each stage (a stage a charger did not need, e.g. TLS for ws://, counts as reached
    once it got past it)."""
    ranks = [STAGES.index(c.state.get("stage") or "none") if c.state.get("stage") in STAGES else 0 for c in cs]
    return [(s, STAGE_TITLES[s], sum(1 for k in ranks if k >= STAGES.index(s))) for s in STAGES[1:]]


def dispatch(rows: Sequence[dict[str, Any]]) -> Dispatch:
    cs = chargers(rows)
    incs = incidents(rows)
    failing = [c for c in cs if c.state["verdict"] == "fault"]
    longest = lambda c: (-(c.failing_s or 0.0), c.name)  # noqa: E731
    site_visits = sorted((c for c in failing if c.state.get("site_visit")), key=longest)
    groups: dict[tuple[str, str], list[Charger]] = defaultdict(list)
    for c in failing:
        if c.state.get("fix_side") != "network":
            continue
        s = c.state
        if (s.get("fault") or "").startswith("dns.") and s.get("resolver"):
            groups[("resolver", s["resolver"])].append(c)
        else:
            groups[("site", s.get("site") or "(top directory)")].append(c)
    network = [NetworkGroup(by, where, sorted(g, key=longest)) for (by, where), g in groups.items()]
    network.sort(key=lambda g: (-len(g.chargers), g.by, g.where))
    remote = sorted(
        (c for c in failing if c.state.get("fix_side") == "charger" and not c.state.get("site_visit")), key=longest
    )
    capture = sorted((c for c in failing if c.state.get("fix_side") not in ("charger", "csms", "network")), key=longest)
    inconclusive = [c for c in cs if c.state["verdict"] == "inconclusive"]
    unanalysed = [r for r in rows if r.get("verdict") in ("error", "no_charger")]
    faults = Counter(c.state.get("fault") or "unknown" for c in failing).most_common()
    captures = len({r.get("sha256") or r.get("path") for r in rows})
    return Dispatch(
        cs, incs, site_visits, network, remote, capture, inconclusive, unanalysed, funnel(cs), faults, captures
    )


def fleet_dict(d: Dispatch) -> dict[str, Any]:
    """``fleet.json``: the dispatch as plain data."""

    def charger(c: Charger) -> dict[str, Any]:
        s = c.state
        return {
            "key": c.key,
            "id": s.get("charger_id"),
            "address": s.get("charger_address"),
            "verdict": s.get("verdict"),
            "fault": s.get("fault"),
            "cx_code": s.get("cx_code"),
            "fix_side": s.get("fix_side"),
            "site_visit": bool(s.get("site_visit")),
            "stage": s.get("stage"),
            "fix": s.get("fix"),
            "site": s.get("site"),
            "capture": s.get("capture"),
            "report_html": s.get("report_html"),
            "report_json": s.get("report_json"),
            "failing_since": c.failing_since,
            "failing_until": c.failing_until,
            "failing_s": c.failing_s,
            "captures": len(c.rows),
        }

    return {
        "schema": "ghostcap.fleet/1",
        "chargers": len(d.chargers),
        "captures": d.captures,
        "verdicts": {v: d.verdicts.get(v, 0) for v in CHARGER_VERDICTS},
        "incidents": [{**inc.row(n), "members": inc.member_rows(n)} for n, inc in enumerate(d.incidents, 1)],
        "site_visits": [charger(c) for c in d.site_visits],
        "network": [
            {
                "by": g.by,
                "where": g.where,
                "faults": dict(g.faults),
                "fix": g.fix,
                "chargers": [charger(c) for c in g.chargers],
            }
            for g in d.network
        ],
        "remote": [charger(c) for c in d.remote],
        "capture_side": [charger(c) for c in d.capture],
        "inconclusive": [charger(c) for c in d.inconclusive],
        "unanalysed": [
            {"capture": r.get("capture"), "verdict": r.get("verdict"), "error": r.get("error")} for r in d.unanalysed
        ],
        "funnel": [{"stage": s, "title": t, "chargers": n} for s, t, n in d.funnel],
        "faults": [{"fault": f, "chargers": n} for f, n in d.faults],
    }
