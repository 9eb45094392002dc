"""What ``analyze`` released as background counts where the report counts the capture's clients without OCPP
(``timeline.ReleasedClients``): the numbers are the capture's, not those of the flows that happened to be still
waiting to be judged at its end, and so the same however many processes read it."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from analyzer import budgets
from analyzer.config import Settings
from analyzer.engine import analyze
from analyzer.timeline.timeline import ReleasedClients
from tests.conftest import ROBUSTNESS


def test_released_clients_are_counted_and_their_addresses_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("analyzer.timeline.timeline.KEEPER_NAMES", 3)
    a, b = ReleasedClients(), ReleasedClients()
    a.connection("10.0.0.1", 40)
    a.connection("10.0.0.1", 12)
    a.client("10.0.0.2")  # a lookup's client: no connection
    b.connection("10.0.0.3", 7)
    b.connection("10.0.0.4", 99)
    assert (a.connections, a.first_frame, a.clients, a.clients_past) == (2, 12, {"10.0.0.1", "10.0.0.2"}, False)
    a.merge(b)
    assert (a.connections, a.first_frame, len(a.clients), a.clients_past) == (4, 7, 3, True)
    empty = ReleasedClients()
    empty.merge(ReleasedClients())
    assert (empty.connections, empty.first_frame, empty.clients_past) == (0, 0, False)


@pytest.mark.skipif(not ROBUSTNESS.is_dir(), reason="../shared/robustness not present")
def test_a_syn_flood_reads_the_same_with_one_process_or_three(tmp_path: Path) -> None:
    """100,000 SYNs from 100,000 addresses, no OCPP, no CSMS named: most connections are released while reading,
    where the sweeps fall in each process; the report's count of them is the capture's all the same."""
    path = tmp_path / "flood.pcap"
    with gzip.open(ROBUSTNESS / "overmem_syn_flood_100k_flows.pcap.gz") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    seen = []
    for workers in (1, 3):
        analysis = analyze(path, Settings(), workers=workers)
        assert analysis.results == []
        assert analysis.timeline.released.connections > 90_000  # most were released as background
        (other,) = analysis.others
        seen.append(other)
    assert seen[0] == seen[1]
    assert seen[0].what == "unidentified_clients"
    assert seen[0].flows == 100_000  # one connection per SYN (tshark: 100,000 tcp.stream values)
    assert seen[0].first_frame == 1
    assert seen[0].client == f"more than {budgets.KEEPER_NAMES:,} addresses"
