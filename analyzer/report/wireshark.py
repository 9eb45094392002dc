"""Wireshark display filters for what a report names: the frame (``frame.number == 12``) and the conversation it
belongs to (``tcp.stream eq 3``, ``udp.stream eq 0``), with Wireshark's own stream numbers
(``analyzer.flows.streams``), so a support engineer goes from the report to the packet in one paste."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from operator import attrgetter

from analyzer.timeline import FlowInfo, Timeline


def frame_filter(frame: int | None) -> str | None:
    """``frame.number == N``; None for no frame (0)."""
    return f"frame.number == {frame}" if frame else None


def stream_filter(flow: FlowInfo | None) -> str | None:
    """``tcp.stream eq N`` / ``udp.stream eq N`` for a TCP or UDP flow; None otherwise."""
    return flow.stream_filter if flow is not None else None


_FRAME = attrgetter("frame")


class FrameFlows:
    """Which flow each of some frames belongs to: the flow of the first event at that frame, else the flow the
    caller names if the frame lies within it, else the only flow of ``candidates`` whose frames span it."""

    def __init__(self, tl: Timeline, frames: Iterable[int]) -> None:
        self.tl = tl
        self.at: dict[int, int] = {}
        events = tl.events  # in frame order: each frame's events are found by bisection, not a walk over all
        for frame in set(frames):
            i = bisect_left(events, frame, key=_FRAME)
            while i < len(events) and events[i].frame == frame:
                if events[i].flow_id is not None:
                    self.at[frame] = events[i].flow_id  # type: ignore[assignment]
                    break
                i += 1

    def flow_of(self, frame: int, flow_id: int | None = None, candidates: Iterable[int] = ()) -> FlowInfo | None:
        flows = self.tl.flows
        fid = self.at.get(frame)
        if fid is not None:
            return flows.get(fid)
        if flow_id is not None and flow_id in flows and _spans(flows[flow_id], frame):
            return flows[flow_id]
        spanning = [flows[c] for c in candidates if c in flows and _spans(flows[c], frame)]
        return spanning[0] if len(spanning) == 1 else None

    def filters(self, frame: int, flow_id: int | None = None, candidates: Iterable[int] = ()) -> dict[str, str | None]:
        """``display_filter`` (the frame) and ``stream_filter`` (its conversation, or None), as a report shows."""
        return {
            "display_filter": frame_filter(frame),
            "stream_filter": stream_filter(self.flow_of(frame, flow_id, candidates)) if frame else None,
        }


def _spans(f: FlowInfo, frame: int) -> bool:
    return f.first_frame <= frame <= f.last_frame
