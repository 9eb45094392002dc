"""Run every rule on every charger and choose the root cause (catalogue: "Choosing the root cause").

A charger's traffic is a sequence of attempts (lookups, connections: ``attempts``). Findings have a severity:
``failure`` (it ended or blocked a session), ``contributing`` (it explains a failure: a clock) and ``warning``
(wrong, but nothing broke). The root cause is a failure: the one of the attempt that got furthest (the blocker
the charger is stuck at), earliest frame first within it, earliest layer on a tie; a contributing cause is the
root cause only when nothing failed; a warning never is. Many attempts that failed the same way are one finding
with their count and first and last frame. A rule that crashes becomes an error line instead of losing the report.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from analyzer.config import Settings
from analyzer.diagnosis.attempts import Attempt, attempts_of, connected_at_end
from analyzer.diagnosis.catalogue import FAULTS, LAYERS
from analyzer.diagnosis.chargers import Charger, Other, find_population
from analyzer.diagnosis.clock import ClockAnalysis, analyse_clock
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import opaque_tls_session, session_works
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import RuleSpec, discover
from analyzer.timefmt import iso_utc
from analyzer.timeline import Timeline


@dataclass(slots=True)
class ChargerResult:
    charger: Charger
    verdict: str  # fault | healthy | inconclusive
    root_cause: Finding | None
    findings: list[Finding]  # failures and contributing causes except the root cause, in frame order
    undecided: list[Finding]  # findings the capture was too short to decide
    clock: ClockAnalysis
    reason: str = ""  # why inconclusive / what healthy rests on
    errors: list[str] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    connected_at_end: bool | None = None

    @property
    def site_visit(self) -> bool:
        """Someone must go there: the root cause is the charger's to fix and it had no working session at the end
        (the remote commands cannot reach it: its last connection is closed and did not work either)."""
        if self.root_cause is None or self.root_cause.side != "charger" or self.connected_at_end is not False:
            return False
        conns = [a for a in self.attempts if a.kind == "connection"]
        return not (conns and conns[-1].works)


def diagnose(tl: Timeline, settings: Settings) -> list[ChargerResult]:
    return diagnose_all(tl, settings)[0]


def diagnose_all(tl: Timeline, settings: Settings) -> tuple[list[ChargerResult], list[Other]]:
    """Every charger's result, and the traffic that is not a charger's.

    In one process, whatever ``analyze --workers`` says: a forked process diagnosing the later half of the chargers
    was tried, and measured slower than none (1M gateway capture, 300 chargers: 0.25 s in one process, 0.26 to
    0.32 s with the fork; 1,200 chargers, 0.85 s and 0.90 to 1.12 s). Each process pays for the pages of the shared
    heap it writes (reference counts, caches) after the fork, the parent also took the results back, and finding
    the population comes before any split."""
    rules = discover()
    pop = find_population(tl, settings)
    shared: dict[str, object] = {}  # facts of the whole timeline, computed once for every charger
    return [_diagnose_one(ch, tl, settings, rules, shared) for ch in pop.chargers], pop.others


def _diagnose_one(
    ch: Charger, tl: Timeline, settings: Settings, rules: dict[str, RuleSpec], shared: dict[str, object]
) -> ChargerResult:
    clock = analyse_clock(ch.events, [tl.dropped_clock[f] for f in ch.flow_ids if f in tl.dropped_clock])
    ctx = Context(tl, settings, clock, shared)
    found: list[Finding] = []
    errors: list[str] = []
    for spec in rules.values():
        try:
            found.extend(spec.fn(ch, ctx))
        except Exception as e:  # noqa: BLE001 - a broken rule must not lose the report
            errors.append(f"rule {spec.name} failed: {type(e).__name__}: {e}")
    attempts = attempts_of(ch, tl.end_frame)
    return verdict(ch, clock, found, errors, attempts)


def _layer(f: Finding) -> int:
    return LAYERS.index(FAULTS[f.fault].layer) if f.fault in FAULTS else LAYERS.index("ocpp")


def choose_root(failures: list[Finding], attempts: list[Attempt]) -> Finding:
    """The failure of the attempt that got furthest; within it (and on ties) the earliest, then the lowest layer."""
    reach = {a.flow_id: a.rank for a in attempts if a.kind == "connection"}
    return min(failures, key=lambda f: (-reach.get(f.flow_id, 0), f.frame, _layer(f)))


def _shape(f: Finding) -> tuple[str, str]:
    """What makes two findings "the same failure": fault and summary up to numbers (ports, frames)."""
    return f.fault, re.sub(r"\d+", "#", f.summary)


def _hms(ns: int) -> str:
    """HH:MM:SS of a capture time, or the whole text when the time is out of range."""
    t = iso_utc(ns)
    return t[11:19] if t[10:11] == "T" else t


def group_repeats(found: list[Finding]) -> list[Finding]:
    """Findings of the same shape on several attempts become one, with the count and first/last frame."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in sorted(found, key=lambda f: f.frame):
        groups.setdefault(_shape(f), []).append(f)
    out = []
    for same in groups.values():
        first, last = same[0], same[-1]
        if len(same) == 1:
            out.append(first)
            continue
        n = sum(f.count for f in same)
        out.append(
            dataclasses.replace(
                first,
                count=n,
                cx_code=next((f.cx_code for f in same if f.cx_code), None),
                last_frame=last.last_frame or last.frame,
                summary=f"{first.summary} This happened {n} times between {_hms(first.ts_ns)} and "
                f"{_hms(last.ts_ns)} UTC (frames {first.frame} to "
                f"{last.last_frame or last.frame}).",
            )
        )
    return sorted(out, key=lambda f: f.frame)


def _drop_explained(found: list[Finding]) -> list[Finding]:
    """A finding that explains other flows' failures (a silent reboot explains the old session's reset) takes
    their place."""
    covered = {fid for f in found for fid in getattr(f, "covers_flows", ())}
    return [f for f in found if f.covers_flows or f.flow_id not in covered or f.level != "failure"]


CLOSES = ("ws.abnormal_close", "ws.closed_after_upgrade", "ws.dropped", "tcp.reset")


def close_outranks_unanswered(found: list[Finding]) -> list[Finding]:
    """A CALL left unanswered because the connection was closed after it gives the close, with the CALL as its
    evidence (catalogue: "a close that cuts an unanswered CALL is the root cause")."""
    out = list(found)
    for f in found:
        if f.fault != "ocpp.no_response" or f.undecided:
            continue
        close = next((c for c in out if c.fault in CLOSES and c.flow_id == f.flow_id and c.frame > f.frame), None)
        if close is None:
            continue
        out.remove(f)
        cut = Evidence(
            f.frame, f"unanswered when the connection closed: {f.evidence[0].what if f.evidence else f.summary}"
        )
        out[out.index(close)] = dataclasses.replace(close, evidence=(*close.evidence, cut))
    return out


def _cut_by_snaplen(ch: Charger) -> int:
    """How many of the charger's decoded messages lost bytes to the capture's snaplen."""
    return sum(1 for e in ch.events if e.kind == "decode.anomaly" and "snaplen" in e.summary().lower())


def verdict(
    ch: Charger,
    clock: ClockAnalysis,
    found: list[Finding],
    errors: list[str],
    attempts: list[Attempt] | None = None,
) -> ChargerResult:
    attempts = attempts or []
    at_end = connected_at_end(attempts)
    found = close_outranks_unanswered(_drop_explained(found))
    decided = group_repeats([f for f in found if not f.undecided])
    undecided = sorted((f for f in found if f.undecided), key=lambda f: f.frame)
    warnings = [f for f in decided if f.level == "warning"]
    failures = [f for f in decided if f.level == "failure"]
    contributing = [f for f in decided if f.level == "contributing"]
    common = {"errors": errors, "warnings": warnings, "attempts": attempts, "connected_at_end": at_end}
    if failures or contributing:
        root = choose_root(failures, attempts) if failures else min(contributing, key=lambda f: f.frame)
        rest = sorted((f for f in failures + contributing if f is not root), key=lambda f: f.frame)
        return ChargerResult(ch, "fault", root, rest, undecided, clock, **common)  # type: ignore[arg-type]
    if undecided:
        why = "; ".join(f"{f.fault}: {f.certain_with or 'not decided'}" for f in undecided[:3])
        return ChargerResult(
            ch,
            "inconclusive",
            None,
            [],
            undecided,
            clock,
            reason=f"the capture ended before these could be decided: {why}",
            **common,  # type: ignore[arg-type]
        )
    if session_works(ch):
        return ChargerResult(
            ch,
            "healthy",
            None,
            [],
            [],
            clock,
            reason="the session with the CSMS works",
            **common,  # type: ignore[arg-type]
        )
    opaque = opaque_tls_session(ch)
    if opaque is not None:
        why = f" ({opaque.decryption_detail})" if getattr(opaque, "decryption_detail", "") else ""
        reason = (
            f"the TLS session carried data both ways, but it is encrypted{why}: whether OCPP works inside it "
            "cannot be seen; give --keylog (an SSLKEYLOGFILE from the CSMS or the charger) to decide"
        )
    else:
        reason = "no failure is visible, but the capture shows no working session either"
        cut = _cut_by_snaplen(ch)
        if cut:
            seen = "; ".join(a.describe() for a in attempts if a.kind == "connection")[:400] or "nothing more"
            reason = (
                f"what would decide is cut by the capture's snaplen ({cut} of this charger's packets lost bytes to "
                f"it). Still visible: {seen}. Capture again with tcpdump -s 0"
            )
    return ChargerResult(ch, "inconclusive", None, [], [], clock, reason=reason, **common)  # type: ignore[arg-type]
