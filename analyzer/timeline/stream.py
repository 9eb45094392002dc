"""``ghostcap timeline`` as the capture is read: events handed on in capture order within a bounded window.

Decoders emit an event when they know it: most in capture order, a few later (a connection's ``flow_end`` when it
ends or times out, an unanswered lookup at the end of the capture). ``EventStream`` holds the last
``budgets.TIMELINE_REORDER`` events in a heap and hands on the earliest frame each time one more comes, so the
output is in frame order except for an event that arrives more than that many events late, which is handed on at
once (its frame number says where it belongs). Memory stays flat whatever the capture's length.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from itertools import count

from analyzer import budgets
from analyzer.events.base import Event
from analyzer.timeline.timeline import FlowInfo


class EventStream:
    """A keeper for ``engine.build_timeline`` that keeps nothing: ``write(event)`` gets every event, in order."""

    def __init__(self, write: Callable[[Event], None], window: int = budgets.TIMELINE_REORDER) -> None:
        self.write = write
        self.window = window
        self.heap: list[tuple[int, int, Event]] = []
        self.seq = count()
        self.written = 0
        self.late = 0  # events handed on after a later frame had been (they arrived beyond the window)
        self.last_frame = 0
        self.flows: dict[int, FlowInfo] = {}  # stays empty: nothing is kept

    def add(self, e: Event) -> None:
        heapq.heappush(self.heap, (e.frame, next(self.seq), e))
        if len(self.heap) > self.window:
            self._out(heapq.heappop(self.heap)[2])

    def finish(self, info: FlowInfo) -> None:
        """A flow ended; nothing to keep."""

    def close(self) -> None:
        while self.heap:
            self._out(heapq.heappop(self.heap)[2])

    def _out(self, e: Event) -> None:
        if e.frame < self.last_frame:
            self.late += 1
        else:
            self.last_frame = e.frame
        self.written += 1
        self.write(e)

    def events(self) -> list[Event]:
        return []
