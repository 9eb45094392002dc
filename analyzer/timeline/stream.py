"""``ghostcap timeline`` as the capture is read: events handed on in capture order within a bounded window.

Decoders emit an event when they know it: most in capture order, a few later (a connection's ``flow_end`` when it
ends or times out, an unanswered lookup at the end of the capture). ``EventStream`` holds the last
``budgets.TIMELINE_REORDER`` events in a heap and hands on the earliest frame each time one more comes, so the
output is in frame order except for an event that arrives more than that many events late, which is handed on at
once (its frame number says where it belongs). Memory stays flat whatever the capture's length.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from itertools import count

from analyzer import budgets
from analyzer.events.base import Event
from analyzer.timeline.timeline import FlowInfo, Stream

Write = Callable[[Event, Stream, "str | None"], None]


class EventStream:
    """A keeper for ``engine.build_timeline`` that keeps nothing: ``write(event, stream, charger)`` gets every
    event, in order, with Wireshark's stream of its flow (number and ``tcp.stream eq 3``) and the station id its
    WebSocket upgrade names (the whole capture's charger population is not known while it is read)."""

    def __init__(self, write: Write, window: int = budgets.TIMELINE_REORDER) -> None:
        self.write = write
        self.window = window
        self.heap: list[tuple[int, int, Event]] = []
        self.seq = count()
        self.written = 0
        self.late = 0  # events handed on after a later frame had been (they arrived beyond the window)
        self.last_frame = 0
        self.flows: dict[int, FlowInfo] = {}  # stays empty: nothing is kept
        # a live flow's stream, set by the engine; per flow [stream, station id], kept until every event of an
        # ended flow has left the window
        self.stream_of: Callable[[int], Stream] = lambda fid: (None, None)
        self.facts: dict[int, list] = {}
        self.added = 0
        self.ending: deque[tuple[int, int]] = deque()

    def add(self, e: Event) -> None:
        fid = e.flow_id
        if fid is not None:
            facts = self.facts.get(fid)
            if facts is None:
                facts = self.facts[fid] = [self.stream_of(fid), None]
            if e.kind == "http.request" and facts[1] is None:
                facts[1] = getattr(e, "station_id", None)
        self.added += 1
        while self.ending and self.ending[0][0] <= self.added:
            self.facts.pop(self.ending.popleft()[1], None)
        heapq.heappush(self.heap, (e.frame, next(self.seq), e))
        if len(self.heap) > self.window:
            self._out(heapq.heappop(self.heap)[2])

    def finish(self, info: FlowInfo) -> None:
        """A flow ended: its facts go once its last events have left the window."""
        self.ending.append((self.added + self.window + 1, info.id))

    def close(self) -> None:
        while self.heap:
            self._out(heapq.heappop(self.heap)[2])

    def _out(self, e: Event) -> None:
        if e.frame < self.last_frame:
            self.late += 1
        else:
            self.last_frame = e.frame
        self.written += 1
        facts = self.facts.get(e.flow_id) if e.flow_id is not None else None
        if facts is None:
            self.write(e, (None, None), None)
        else:
            self.write(e, facts[0], facts[1])

    def events(self) -> list[Event]:
        return []
