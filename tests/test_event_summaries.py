"""Event summaries are the one-line texts of the timeline table and of every report: never Python's ``None``,
``True`` or ``False`` where a value is missing or a flag is set."""

from __future__ import annotations

import itertools
import re

import pytest

from analyzer.events.base import Event
from analyzer.events.clock import ClockSample
from analyzer.events.http import HttpResponse
from analyzer.events.tls import TlsAlert, TlsServerHello, TlsSummary
from analyzer.events.websocket import WsMessage
from analyzer.redaction import redact_text

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


def reference_ws_summary(e: WsMessage) -> str:
    """``WsMessage.summary`` as it was written before its shortcuts (the whole excerpt redacted, flags joined)."""
    size = "?" if e.size is None else str(e.size)
    text = f" {redact_text(e.text_excerpt)[:60]!r}" if e.text_excerpt else ""
    flags = "".join(
        f" [{name}]"
        for name, on in (
            ("compressed", e.compressed),
            ("partial", e.partial),
            ("truncated", e.truncated_by_cap),
            ("inflate failed", e.inflate_error is not None),
        )
        if on
    )
    return f"{e.opcode} message, {size} bytes in {e.frames} frame(s){flags}{text}"


EXCERPTS = [
    "",
    "hello",
    '[2,"1004","Authorize",{"idTag":"04A2B3C4D5E6"}]',
    '[2,"587804a2-ec3f-42b6-92c8-afd252ed0a1c","MeterValues",{"connectorId":1,"meterValue":[{"sampledValue":'
    '[{"value":"9581523.6","context":"Sample.',
    '[2,"587804a2-ec3f-42b6-92c8-afd252ed0a1c","ChangeConfiguration",{"key":"AuthorizationKey","value":"K"}]',
    '[2,"1","X",{"id\\u0054ag":"T"}]',
    "\x00\u202e" * 40,
]


def test_websocket_message_summaries_are_the_reference() -> None:
    for excerpt, size, frames, compressed, partial, cut, error in itertools.product(
        EXCERPTS, (None, 0, 1234), (1, 3), (False, True), (False, True), (False, True), (None, "", "bad")
    ):
        e = WsMessage(
            **AT,
            opcode="text",
            size=size,
            wire_size=9,
            frames=frames,
            compressed=compressed,
            partial=partial,
            truncated_by_cap=cut,
            inflate_error=error,
            text_excerpt=excerpt,
        )
        assert e.summary() == reference_ws_summary(e)
