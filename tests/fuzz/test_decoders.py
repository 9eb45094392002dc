"""Property tests of the sans-IO decoders on real bytes: streams, DNS payloads and OCPP messages from the sample
captures, damaged (byte edits, lost and repeated segments) and split at arbitrary points, plus arbitrary bytes
through the decoder choice. Whatever the input: events only (``DecodeError`` is the one exception a stream decoder
may raise), each with a frame, timestamp, flow and direction the driver gave, and a bounded number of them.

The decoders' own tests fuzz synthetic input (``tests/decoders/test_*.py``); these start from captured traffic.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from analyzer.decoders import ocpp as ocpp_mod
from analyzer.decoders.detect import stream_decoder
from analyzer.decoders.dns import DnsDecoder, DnsTcpDecoder
from analyzer.decoders.http_upgrade import HttpUpgradeDecoder, starts_like_http
from analyzer.decoders.ocpp import OcppDecoder, ocpp_message_factory
from analyzer.decoders.tls import TlsDecoder
from analyzer.decoders.websocket import WebSocketDecoder
from analyzer.events.ocpp import OcppCall, OcppUnanswered
from analyzer.tls.keylog import KeyLog
from tests.fuzz import samples
from tests.fuzz.strategies import (
    EDITS,
    FID,
    RANDOM_ITEMS,
    SPLITS,
    STEP_NS,
    T0,
    TOKENS,
    Item,
    check_events,
    damaged_chunks,
    drive_stream,
    fuzz,
    mutate,
    total_bytes,
)

TLS_STREAMS = [s for c in samples.TLS_CAPTURES for s in samples.tcp_streams(c)]
WS_STREAMS = [s for c in samples.WS_CAPTURES for s in samples.tcp_streams(c)]
PMD = "permessage-deflate"


def _bounded(events: list, items: list[Item]) -> None:
    assert len(events) <= total_bytes(items) // 2 + 2 * len(items) + 60, len(events)


def _keys(capture: str) -> KeyLog | None:
    path = samples.keylog_for(capture)
    return KeyLog.from_files([path]) if path else None


@fuzz(300)
@given(
    st.sampled_from(range(len(TLS_STREAMS))),
    st.booleans(),
    EDITS,
    SPLITS,
)
def test_tls_on_damaged_real_sessions(index: int, with_keys: bool, edits: list, splits: list[int]) -> None:
    """TLS 1.2 and 1.3 sessions (with their key log: decrypted, and the plaintext decoded as HTTP, WebSocket and
    OCPP), damaged and re-split."""
    stream = TLS_STREAMS[index]
    keys = _keys(stream.capture) if with_keys else None

    def inner(plain: bytes, d: int) -> HttpUpgradeDecoder | None:
        return HttpUpgradeDecoder(FID, ocpp_message_factory) if starts_like_http(plain) else None

    items = damaged_chunks(stream.chunks, edits, splits)
    events = drive_stream(TlsDecoder(FID, keys=keys, inner=inner if keys is not None else None), items)
    _bounded(events, items)


@fuzz(300)
@given(st.sampled_from(range(len(WS_STREAMS))), EDITS, SPLITS)
def test_http_upgrade_on_damaged_real_connections(index: int, edits: list, splits: list[int]) -> None:
    """The upgrade, then WebSocket and OCPP on top (the product's wiring), damaged and re-split."""
    items = damaged_chunks(WS_STREAMS[index].chunks, edits, splits)
    events = drive_stream(HttpUpgradeDecoder(FID, ocpp_message_factory), items)
    _bounded(events, items)


def _after_heads(stream: samples.Stream) -> list[tuple[int, bytes]]:
    """The connection's WebSocket bytes (what follows each direction's HTTP head), in delivery order."""
    out = []
    skip = [len(stream.side(d).split(b"\r\n\r\n", 1)[0]) + 4 for d in (0, 1)]
    seen = [0, 0]
    for d, data in stream.chunks:
        start = max(0, skip[d] - seen[d])
        seen[d] += len(data)
        if data[start:]:
            out.append((d, data[start:]))
    return out


WS_ONLY = [c for c in (_after_heads(s) for s in WS_STREAMS) if c]


@fuzz(300)
@given(
    st.sampled_from(range(len(WS_ONLY))),
    st.sampled_from(["ocpp1.6", "ocpp2.0.1", None]),
    st.sampled_from([None, PMD]),
    st.booleans(),
    EDITS,
    SPLITS,
)
def test_websocket_on_damaged_real_frames(
    index: int, subprotocol: str | None, ext: str | None, mid: bool, edits: list, splits: list[int]
) -> None:
    """WebSocket frames of real connections (upgrade stripped), with OCPP decoding, damaged and re-split."""
    items = damaged_chunks(WS_ONLY[index], edits, splits)
    dec = WebSocketDecoder(
        FID, subprotocol=subprotocol, extensions=ext, message_factory=ocpp_message_factory, mid_stream=mid
    )
    events = drive_stream(dec, items)
    _bounded(events, items)


DNS = samples.dns_payloads()


def _qr(payload: bytes) -> int:
    return 1 if len(payload) > 2 and payload[2] & 0x80 else 0


@fuzz(200)
@given(
    st.lists(st.sampled_from(range(len(DNS))), min_size=1, max_size=8),
    EDITS,
    SPLITS,
    st.booleans(),
)
def test_dns_over_tcp_on_damaged_real_messages(picks: list[int], edits: list, splits: list[int], raw: bool) -> None:
    """Real DNS messages, length-prefixed as on TCP, damaged (``raw``: the length prefixes too) and re-split."""
    if raw:
        chunks = [(_qr(DNS[i]), len(DNS[i]).to_bytes(2, "big") + DNS[i]) for i in picks]
        items = damaged_chunks(chunks, edits, splits)
    else:
        msgs = [(_qr(DNS[i]), DNS[i]) for i in picks]
        for target, kind, pos, value in edits:
            d, m = msgs[target % len(msgs)]
            msgs[target % len(msgs)] = (d, mutate(m, kind % 5, pos, value))
        chunks = [(d, len(m).to_bytes(2, "big") + m) for d, m in msgs]
        items = damaged_chunks(chunks, [], splits)
    events = drive_stream(DnsTcpDecoder(FID), items)
    _bounded(events, items)


@fuzz(150)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.sampled_from(range(len(DNS))), EDITS),
            st.tuples(st.just(-1), st.binary(max_size=100)),
        ),
        max_size=25,
    ),
    st.integers(1, 8),
)
def test_dns_datagrams_damaged_or_arbitrary(datagrams: list[tuple[int, object]], max_pending: int) -> None:
    """Real DNS payloads with byte edits, and arbitrary datagrams, over a few flows: at most a handful of events per
    datagram, and what ``close`` reports is bounded by the pending limit."""
    dec = DnsDecoder(max_pending=max_pending)
    frame = 0
    for k, (i, x) in enumerate(datagrams):
        if i < 0:
            assert isinstance(x, bytes)
            payload = x
        else:
            payload = DNS[i]
            assert isinstance(x, list)
            for _t, kind, pos, value in x:
                payload = mutate(payload, kind % 5, pos, value)
        frame += 1
        ts = T0 + frame * STEP_NS
        events = dec.datagram(FID, _qr(payload) if k % 3 else k % 2, payload, frame, ts)
        check_events(events, frame, ts)
        assert len(events) <= 3
    frame += 1
    ends = dec.close(frame, T0 + frame * STEP_NS)
    check_events(ends, frame, T0 + frame * STEP_NS)
    assert len(ends) <= max_pending + 2


MESSAGES = samples.ocpp_messages()
# a call or result, its clock samples, the error codes it reports, a few anomalies (as tests/decoders/test_ocpp.py)
MAX_EVENTS_PER_MESSAGE = 1 + ocpp_mod.MAX_CLOCK_SAMPLES + ocpp_mod.MAX_REPORTED_CODES + 3


@fuzz(150)
@given(
    st.sampled_from(["ocpp1.6", "ocpp2.0.1", "ocpp2.1", None]),
    st.lists(
        st.tuples(st.sampled_from(range(len(MESSAGES))), EDITS, st.booleans()),
        max_size=20,
    ),
)
def test_ocpp_on_damaged_real_messages(subprotocol: str | None, picks: list[tuple[int, list, bool]]) -> None:
    """Real OCPP messages with byte edits (JSON tokens, ``1e999``, lone surrogates, invalid UTF-8, cuts)."""
    dec = OcppDecoder(FID, subprotocol)
    calls = 0
    for frame, (i, edits, text) in enumerate(picks, 1):
        direction, data, _text = MESSAGES[i]
        for _t, kind, pos, value in edits:
            data = mutate(data, kind % 5, pos, value)
        ts = T0 + frame * STEP_NS
        events = dec.message(direction=direction, data=data, text=text, frame=frame, ts_ns=ts)
        check_events(events, frame, ts)
        assert len(events) <= MAX_EVENTS_PER_MESSAGE
        assert all(e.frame == frame for e in events)
        calls += sum(isinstance(e, OcppCall) for e in events)
    end = len(picks) + 1
    ends = dec.close(end, T0 + end * STEP_NS)
    check_events(ends, end, T0 + end * STEP_NS)
    assert all(isinstance(e, OcppUnanswered) for e in ends)
    assert len(ends) <= calls


# first bytes that make the decoder choice pick each decoder
PREFIXES = (
    b"",
    b"\x16\x03\x01\x00\x05",
    b"GET /ocpp/CP1 HTTP/1.1\r\n",
    b"HTTP/1.1 101 OK\r\n",
    b"\x81\x85",
    b"\x82\x7e",
)


@fuzz(200)
@given(st.sampled_from(PREFIXES), st.sampled_from([53, 80, 443, 8080]), RANDOM_ITEMS, st.booleans())
def test_arbitrary_bytes_through_the_decoder_choice(prefix: bytes, port: int, items: list[Item], opened: bool) -> None:
    """Arbitrary segments and gaps, to whatever decoder the first bytes choose (as the engine does)."""
    items = [("data", 0, prefix + TOKENS[len(items) % len(TOKENS)]), *items]
    first = items[0][2]
    assert isinstance(first, bytes)
    dec = stream_decoder(FID, first, 0, 40000, port, opened=opened)
    if dec is None:
        return
    events = drive_stream(dec, items)
    _bounded(events, items)


def test_samples_were_found() -> None:
    """The property tests above are only as good as their samples: every kind is present."""
    assert len(TLS_STREAMS) >= 4
    assert len(WS_STREAMS) >= 6
    assert len(WS_ONLY) >= 5
    assert len(DNS) >= 8
    assert len(MESSAGES) >= 10
    assert any(m[1].startswith(b"[2,") for m in MESSAGES)
