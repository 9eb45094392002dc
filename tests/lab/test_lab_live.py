"""The capture lab end to end, live: namespace, real stacks, tcpdump, ground truth checked with tshark.

Needs root (it creates a network namespace) and the Debian packages in tests/lab/apt-packages.txt.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.lab import run as lab_run
from tests.lab.scenarios import DEMO


def _require_lab() -> None:
    if os.geteuid() != 0:
        pytest.fail("tests/lab/test_lab_live.py must run as root: the capture lab creates a network namespace")
    missing = [t for t in ("ip", "tcpdump", "tshark", "dnsmasq", "faketime", "nft") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing tools {missing}: apt-get install $(cat tests/lab/apt-packages.txt)")


def test_live_healthy_and_http_401(tmp_path: Path) -> None:
    _require_lab()
    out = tmp_path / "captures"
    outcomes = lab_run.run_many([DEMO, "http_unauthorized"], out, jobs=2)
    for o in outcomes:
        assert o.passed, f"{o.scenario}: {o.error}"

    healthy = json.loads((out / f"{DEMO}.truth.json").read_text())
    assert healthy["expected_verdict"] == "healthy"
    assert healthy["check"]["passed"]
    (ch,) = healthy["chargers"]
    assert ch["fault_id"] is None
    assert ch["failure_frame"] is None
    assert ch["facts"]["boot_status"] == ["Accepted"]
    assert (out / "demo.pcap").read_bytes() == (out / f"{DEMO}.pcap").read_bytes()

    unauthorized = json.loads((out / "http_unauthorized.truth.json").read_text())
    (ch,) = unauthorized["chargers"]
    assert ch["fault_id"] == "http.unauthorized"
    assert ch["cx"] == "CX013"
    assert ch["facts"]["http_status"] == 401
    assert ch["evidence"]["charger_error"]["http_status"] == 401
    assert isinstance(ch["failure_frame"], int)
    assert ch["failure_frame"] > 0
    assert all(c["ok"] for c in ch["check"]["tshark"])
    assert unauthorized["capture"]["link_type"].startswith("EN10MB")
