"""What a rule may read besides its charger: the whole timeline, the settings and the clock analysis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyzer.config import Settings
from analyzer.diagnosis.clock import ClockAnalysis
from analyzer.timeline import Timeline


@dataclass(slots=True)
class Context:
    timeline: Timeline
    settings: Settings
    clock: ClockAnalysis
    cache: dict[str, Any] = field(default_factory=dict)  # facts of the whole timeline, computed once (facts.py)

    def waited_s(self, ts_ns: int) -> float:
        """Seconds from ``ts_ns`` to the end of the capture."""
        return (self.timeline.end_ns - ts_ns) / 1e9
