"""Event summaries are the one-line texts of the timeline table and of every report: never Python's ``None``,
``True`` or ``False`` where a value is missing or a flag is set."""

from __future__ import annotations

import re

import pytest

from analyzer.events.base import Event
from analyzer.events.clock import ClockSample
from analyzer.events.http import HttpResponse
from analyzer.events.tls import TlsAlert, TlsServerHello, TlsSummary

PY_WORDS = re.compile(r"\b(None|True|False)\b")
AT = {"ts_ns": 1_800_000_000 * 10**9, "frame": 7}


@pytest.mark.parametrize(
    ("event", "says"),
    [
        (TlsSummary(**AT, app_data_both_ways=None), "app data both ways: not known"),
        (TlsSummary(**AT, app_data_both_ways=True), "app data both ways: yes"),
        (TlsSummary(**AT, app_data_both_ways=False), "app data both ways: no"),
        (HttpResponse(**AT, status=101, reason="Switching Protocols"), "101 Switching Protocols no subprotocol"),
        (HttpResponse(**AT, status=101, ws_protocol="ocpp1.6"), "subprotocol=ocpp1.6"),
        (TlsServerHello(**AT, legacy_version=0x0303, version=0x0303, cipher_suite=0xC02F), "ServerHello 0x0303 "),
        (TlsAlert(**AT, encrypted=False, decrypted=True), "level-? alert ? (decrypted)"),
        (
            ClockSample(**AT, side="csms", source="tls.server_random", value_ns=2_028_000_000 * 10**9, raw="2034"),
            "csms: the ServerHello random's first 4 bytes read as 2034 (a clock only if not random)",
        ),
    ],
)
def test_summaries_say_values_in_words(event: Event, says: str) -> None:
    text = event.summary()
    assert says in text
    assert not PY_WORDS.search(text), text
