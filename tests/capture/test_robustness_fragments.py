"""Reproducers from the robustness campaign (``../shared/robustness/``, read in place, never copied): IP fragment
reassembly stays linear in fragments and bounded."""

from __future__ import annotations

import time

import pytest

from analyzer.budgets import Budgets
from analyzer.capture.reader import open_capture
from tests.conftest import ROOT

ROBUSTNESS = ROOT.parent / "shared" / "robustness"
# CPU seconds (wall time follows the load of a shared machine): 24,000 frames took 22 s before the fix, 0.2 s after
SECONDS = 12


@pytest.mark.parametrize("n", [9, 24])
def test_fragment_storm_is_linear_bounded_and_reported(n: int) -> None:
    path = ROBUSTNESS / f"hang_ip_fragments_{n}k_frames.pcap"
    if not path.is_file():
        pytest.skip(f"{path} is missing: the tests read the robustness reproducers from there")
    budget = Budgets().fragments_per_datagram
    started = time.process_time()
    with open_capture(path) as cap:
        assert list(cap.ip_packets()) == []  # one datagram, never complete
        warnings = cap.warnings
        ip = cap.ip
    assert time.process_time() - started < SECONDS
    assert cap.stats.packets == n * 1000
    assert ip.fragments == n * 1000
    (pend,) = ip.pending.values()
    assert len(pend.parts) == budget
    assert ip.pending_bytes == pend.have <= budget * 8
    assert ip.excess_fragments > n * 1000 - budget - 1000  # the rest are copies of kept offsets
    assert "1 IP fragment sets could not be reassembled" in warnings
    assert f"{ip.excess_fragments} IP fragments dropped: past the fragment budget of {budget}" in " ".join(warnings)
