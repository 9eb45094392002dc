#!/usr/bin/env python3
"""Speed of two small hot spots, printed (timings live here, not in unit tests): rendering the HTML report of a
40-event sample, and validating one OCPP 1.6 StatusNotification against its schema.

Usage: ``python bench/report_speed.py``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project's tests/ holds the sample report

from analyzer.decoders import ocpp_schema as S
from analyzer.report.html import report_html
from tests.report import sample_reports as samples


def main() -> None:
    rep = samples.many_events(40)
    report_html(rep)  # warm: imports, fonts, template compilation
    t0 = time.perf_counter()
    report_html(rep)
    print(f"HTML report of 40 events: {time.perf_counter() - t0:.3f} s")
    payload = {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "2026-11-24T04:16:35Z"}
    check = S.validator("1.6", "StatusNotification", S.REQUEST)
    assert check is not None
    n = 20_000
    t0 = time.perf_counter()
    for _ in range(n):
        check(payload)
    print(f"schema validation, StatusNotification: {(time.perf_counter() - t0) / n * 1e6:.2f} µs per message")


if __name__ == "__main__":
    main()
