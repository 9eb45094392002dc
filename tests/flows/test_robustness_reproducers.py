"""Reproducers from the robustness campaign (``../shared/robustness/``, read in place, never copied): the flow layer
stays linear in out-of-order segments, bounded in live flows, and finds port reuse by key."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from analyzer.budgets import Budgets
from analyzer.engine import rebuild_flows
from analyzer.events.base import GapReason, StreamChunk, StreamGap
from tests.conftest import ROOT

ROBUSTNESS = ROOT.parent / "shared" / "robustness"
SECONDS = 20  # generous on a shared machine; these took 3 s (5k) to 32-78 s (40k) before the fix, and 1 s after


def reproducer(name: str) -> Path:
    path = ROBUSTNESS / name
    if not path.is_file():
        pytest.skip(f"{path} is missing: the tests read the robustness reproducers from there")
    return path


@pytest.mark.parametrize("n", ["5k", "40k"])
def test_tcp_out_of_order_segments_are_linear_and_bounded(n: str) -> None:
    path = reproducer(f"hang_tcp_ooo_{n}_segments.pcap")
    chunks: list[StreamChunk] = []
    gaps: list[StreamGap] = []
    started = time.perf_counter()
    res = rebuild_flows(path, on_chunk=chunks.append, on_gap=gaps.append)
    assert time.perf_counter() - started < SECONDS
    (flow,) = res.flows
    segments = int(n[:-1]) * 1000
    assert flow.payload_bytes[0] == segments  # one byte each, every second byte after a 1 MiB hole
    # every byte is either delivered or given up as a gap, in order, with no overlap
    pos = 0
    for off, size in sorted([(c.offset, len(c.data)) for c in chunks] + [(g.offset, g.size) for g in gaps]):
        assert off == pos
        pos += size
    assert sum(len(c.data) for c in chunks) == segments
    budget = Budgets().ooo_segments_per_direction
    limited = [g for g in gaps if g.reason == GapReason.BUFFER_LIMIT]
    assert len(limited) == max(0, segments - budget)
    if limited:
        assert any("reassembly budget" in w for w in res.capture.warnings)
    else:
        assert not any("reassembly budget" in w for w in res.capture.warnings)
