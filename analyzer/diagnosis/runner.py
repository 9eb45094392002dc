"""Run every rule on every charger and choose the root cause.

The root cause is the earliest failure in the capture (the handshake chain DNS → TCP → TLS → HTTP → WebSocket →
OCPP runs in time order, so the earliest failure is the first broken link); a contributing cause (a clock) is the
root cause only when nothing else failed. Later failures are findings. A rule that crashes becomes a finding
``internal.rule_error`` instead of losing the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.config import Settings
from analyzer.diagnosis.catalogue import FAULTS, LAYERS
from analyzer.diagnosis.chargers import Charger, find_chargers
from analyzer.diagnosis.clock import ClockAnalysis, analyse_clock
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import opaque_tls_session, session_works
from analyzer.diagnosis.finding import Finding
from analyzer.diagnosis.registry import discover
from analyzer.timeline import Timeline


@dataclass(slots=True)
class ChargerResult:
    charger: Charger
    verdict: str  # fault | healthy | inconclusive
    root_cause: Finding | None
    findings: list[Finding]  # every finding except the root cause, in frame order
    undecided: list[Finding]  # findings the capture was too short to decide
    clock: ClockAnalysis
    reason: str = ""  # why inconclusive / what healthy rests on
    errors: list[str] = field(default_factory=list)


def _order(f: Finding) -> tuple[int, int, int]:
    layer = FAULTS[f.fault].layer if f.fault in FAULTS else "ocpp"
    return (1 if FAULTS.get(f.fault) and FAULTS[f.fault].contributing else 0, f.frame, LAYERS.index(layer))


def diagnose(tl: Timeline, settings: Settings) -> list[ChargerResult]:
    rules = discover()
    out = []
    for ch in find_chargers(tl, settings):
        clock = analyse_clock(ch.events)
        ctx = Context(tl, settings, clock)
        found: list[Finding] = []
        errors: list[str] = []
        for spec in rules.values():
            try:
                found.extend(spec.fn(ch, ctx))
            except Exception as e:  # noqa: BLE001 - a broken rule must not lose the report
                errors.append(f"rule {spec.name} failed: {type(e).__name__}: {e}")
        out.append(_verdict(ch, clock, found, errors))
    return out


def _verdict(ch: Charger, clock: ClockAnalysis, found: list[Finding], errors: list[str]) -> ChargerResult:
    decided = sorted((f for f in found if not f.undecided), key=_order)
    undecided = sorted((f for f in found if f.undecided), key=lambda f: f.frame)
    if decided:
        root = decided[0]
        return ChargerResult(
            ch, "fault", root, sorted(decided[1:], key=lambda f: f.frame), undecided, clock, errors=errors
        )
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
            errors=errors,
        )
    if session_works(ch):
        return ChargerResult(
            ch, "healthy", None, [], [], clock, reason="the session with the CSMS works", errors=errors
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
    return ChargerResult(ch, "inconclusive", None, [], [], clock, errors=errors, reason=reason)
