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
    ``flow_id``; ``severity`` (failure | contributing | warning; ``None``: the catalogue's) and ``fix_side``
    (charger | csms | network | capture; ``None``: the catalogue's) with ``fix_reason`` (why the evidence moved
    it); ``count``/``last_frame`` (many attempts that failed the same way are one finding: how many, and the
    frame of the last); ``covers_flows`` (flows whose other failures this one explains)."""

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
    severity: str | None = None
    fix_side: str | None = None
    fix_reason: str | None = None
    count: int = 1
    last_frame: int | None = None
    covers_flows: tuple[int, ...] = ()  # flows whose failures this finding explains (they are dropped)

    @property
    def level(self) -> str:
        """The severity in force: the finding's own, else the catalogue's."""
        from analyzer.diagnosis.catalogue import FAULTS

        if self.severity is not None:
            return self.severity
        return FAULTS[self.fault].severity if self.fault in FAULTS else "failure"

    @property
    def side(self) -> str:
        """Who acts: the finding's own side, else the catalogue's default."""
        from analyzer.diagnosis.catalogue import FAULTS

        if self.fix_side is not None:
            return self.fix_side
        return FAULTS[self.fault].fix_side if self.fault in FAULTS else "capture"
