"""What a rule concludes: a finding names a catalogue fault at a frame, with its evidence."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Evidence:
    frame: int
    what: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """Fields: ``fault`` (catalogue id); ``frame``/``ts_ns`` (the failure point); ``summary`` (one sentence for a
    ticket); ``evidence``; ``cx_code`` (overrides the catalogue's, e.g. CX009 for an Authorize); ``also_cx`` (a
    further MREC code the evidence supports, e.g. CX015 when a reset clock points to a power loss);
    ``confidence`` (high|medium|low); ``inferred`` (the cause is deduced, not seen) with ``certain_with`` (what
    evidence would make it certain); ``undecided`` (the capture ended before the fault could show: the verdict
    becomes inconclusive, never a guess); ``remediation`` (specific steps, shown before the catalogue's);
    ``flow_id``."""

    fault: str
    frame: int
    ts_ns: int
    summary: str
    evidence: tuple[Evidence, ...] = ()
    cx_code: str | None = None
    also_cx: tuple[str, ...] = ()
    confidence: str = "high"
    inferred: bool = False
    certain_with: str | None = None
    undecided: bool = False
    remediation: tuple[str, ...] = ()
    flow_id: int | None = None
