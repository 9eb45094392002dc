"""One ordered timeline of events per capture, with the flows they belong to."""

from analyzer.timeline.timeline import FlowInfo, Timeline

__all__ = ["FlowInfo", "Timeline"]
