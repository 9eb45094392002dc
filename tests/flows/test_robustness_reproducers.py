"""Reproducers from the robustness campaign (``../shared/robustness/``, read in place, never copied): the flow layer
stays linear in out-of-order segments, bounded in live flows, and finds port reuse by key."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from analyzer.budgets import Budgets
from analyzer.engine import budget_warnings, rebuild_flows
from analyzer.events.base import GapReason, StreamChunk, StreamGap
from analyzer.flows.table import FlowTable
from tests.conftest import ROOT

ROBUSTNESS = ROOT.parent / "shared" / "robustness"
# CPU seconds (wall time follows the load of a shared machine): before the fix 40,000 out-of-order segments took
# 32 s and port reuse among 50,000 live flows over 2 minutes; after it, 0.2-5 s each
SECONDS = 12


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
    started = time.process_time()
    res = rebuild_flows(path, on_chunk=chunks.append, on_gap=gaps.append)
    assert time.process_time() - started < SECONDS
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


class Watched(FlowTable):
    """A flow table that records the most flows it ever held live."""

    most_live = 0

    def _new_flow(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        hit = super()._new_flow(*args, **kwargs)
        self.most_live = max(self.most_live, self.live_count)
        return hit


@pytest.mark.parametrize(("n", "budget"), [(100, 20_000), (200, None)])
def test_syn_flood_stays_within_the_flow_budget(n: int, budget: int | None) -> None:
    path = reproducer(f"overmem_syn_flood_{n}k_flows.pcap.gz")
    budgets = Budgets(live_flows=budget) if budget else Budgets()
    ended = []
    table = Watched(on_finish=lambda f: ended.append(f.id), budgets=budgets)
    started = time.process_time()
    res = rebuild_flows(path, table=table)
    assert time.process_time() - started < SECONDS
    assert len(res.flows) == n * 1000
    assert table.most_live <= budgets.live_flows
    assert table.released_early >= n * 1000 - budgets.live_flows
    assert sorted(ended) == list(range(n * 1000))  # every flow summarised once, released early or not
    assert all(isinstance(f.halves, tuple) for f in res.flows)  # only counters are kept once a flow has left
    assert {f.state for f in res.flows} == {"S0"}
    (warning,) = budget_warnings(table)
    assert warning.startswith(f"{table.released_early} idle flows released early to stay within the flow budget")
    assert warning in res.capture.warnings


@pytest.mark.parametrize("n", [10, 20])
def test_port_reuse_among_many_live_flows_is_found_by_key(n: int) -> None:
    path = reproducer(f"hang_syn_port_reuse_{n}k_among_50k_live.pcap.gz")
    started = time.process_time()
    res = rebuild_flows(path)
    assert time.process_time() - started < SECONDS
    assert res.capture.packets == 50_000 + n * 1000
    assert len(res.flows) == 50_000 + n * 1000  # each SYN with a new ISN on a reused 5-tuple is a new connection
    assert sum(f.first_frame > 50_000 for f in res.flows) == n * 1000
