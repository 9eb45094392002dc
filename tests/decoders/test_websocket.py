"""Byte-level tests of the WebSocket decoder (RFC 6455 framing, RFC 7692 permessage-deflate).

Frames are written as annotated hex where the bytes matter (the RFC examples), built with ``frame()`` elsewhere.
Direction 0 is the client (its frames are masked), direction 1 the server.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import zlib
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.decoders import websocket as ws
from analyzer.decoders.websocket import (
    DeflateParams,
    WebSocketDecoder,
    looks_like_websocket,
    parse_permessage_deflate,
)
from analyzer.events.base import DecodeAnomaly, Event, GapReason, StreamChunk, StreamGap
from analyzer.events.websocket import WsClose, WsMessage, WsPing, WsPong, WsSummary

CLIENT, SERVER = 0, 1
MASK = bytes.fromhex("37fa213d")  # the RFC 6455 §5.7 example masking key
PMD = "permessage-deflate"


# -- builders ------------------------------------------------------------------------------------------------


def frame(
    payload: bytes,
    op: int = 1,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length_form: int | None = None,
) -> bytes:
    """One frame. ``rsv`` is the RSV bits as in the first byte (0x40 = RSV1); ``length_form`` forces 7/16/64."""
    b0 = (0x80 if fin else 0) | rsv | op
    n = len(payload)
    form = length_form or (7 if n < 126 else 16 if n < 0x10000 else 64)
    m = 0x80 if mask is not None else 0
    if form == 7:
        head = bytes([b0, m | n])
    elif form == 16:
        head = bytes([b0, m | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def client_frame(payload: bytes, op: int = 1, **kw: object) -> bytes:
    return frame(payload, op, mask=MASK, **kw)  # type: ignore[arg-type]


def deflate_messages(messages: Iterable[bytes], wbits: int = 15, takeover: bool = True) -> list[bytes]:
    """RFC 7692 §7.2.1: raw deflate, each message ended by a sync flush whose 00 00 ff ff tail is removed."""
    out = []
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    for m in messages:
        if not takeover:
            c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
        data = c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(b"\x00\x00\xff\xff")
        out.append(data[:-4])
    return out


def chunk(data: bytes, direction: int, frame_no: int = 1, offset: int = 0) -> StreamChunk:
    return StreamChunk(7, direction, offset, data, frame_no, frame_no, frame_no * 1_000_000)


def decode(
    parts: list[tuple[int, bytes]] | bytes,
    direction: int = SERVER,
    *,
    extensions: str | None = None,
    mid_stream: bool = False,
    close: bool = True,
    **kw: object,
) -> list[Event]:
    """Feed (direction, bytes) pieces, frame numbers 1, 2, ... in order; then close at frame 99."""
    if isinstance(parts, bytes):
        parts = [(direction, parts)]
    dec = WebSocketDecoder(7, subprotocol=None, extensions=extensions, mid_stream=mid_stream, **kw)  # type: ignore[arg-type]
    out: list[Event] = []
    offsets = [0, 0]
    for i, (d, data) in enumerate(parts, start=1):
        out += dec.feed(chunk(data, d, i, offsets[d]))
        offsets[d] += len(data)
    if close:
        out += dec.close(99, 99_000_000)
    return out


def of(events: list[Event], cls: type) -> list:
    return [e for e in events if isinstance(e, cls)]


def anomalies(events: list[Event]) -> list[str]:
    return [e.name for e in events if isinstance(e, DecodeAnomaly)]


def summary(events: list[Event], direction: int) -> WsSummary:
    (s,) = [e for e in events if isinstance(e, WsSummary) and e.direction == direction]
    return s


def facts(events: list[Event]) -> list[tuple]:
    """Events without the fields that depend on how the bytes were cut into chunks."""
    out = []
    for e in events:
        d = dataclasses.asdict(e)
        for k in ("ts_ns", "frame", "first_frame"):
            d.pop(k, None)
        out.append((e.kind, tuple(sorted(d.items()))))
    return out


# -- RFC 6455 §5.7 examples ------------------------------------------------------------------------------------


def test_rfc6455_single_unmasked_text() -> None:
    data = bytes.fromhex(
        "81"  # FIN, opcode 1 (text)
        "05"  # not masked, length 5
        "48656c6c6f"  # "Hello"
    )
    (m,) = of(decode(data, SERVER), WsMessage)
    assert (m.opcode, m.size, m.wire_size, m.text_excerpt, m.frames, m.compressed) == ("text", 5, 5, "Hello", 1, False)
    assert (m.frame, m.first_frame, m.direction, m.flow_id) == (1, 1, SERVER, 7)


def test_rfc6455_single_masked_text() -> None:
    data = bytes.fromhex(
        "81"  # FIN, text
        "85"  # masked, length 5
        "37fa213d"  # masking key
        "7f9f4d5158"  # "Hello" XOR key
    )
    events = decode(data, CLIENT)
    (m,) = of(events, WsMessage)
    assert m.text_excerpt == "Hello"
    s = summary(events, CLIENT)
    assert (s.frames, s.text, s.masked, s.unmasked, s.messages, s.payload_bytes) == (1, 1, 1, 0, 1, 5)
    assert anomalies(events) == []


def test_rfc6455_fragmented_unmasked_text() -> None:
    data = bytes.fromhex(
        "01" "03" "48656c"  # opcode text, FIN=0: "Hel"
        "80" "02" "6c6f"  # continuation, FIN: "lo"
    )  # fmt: skip
    events = decode([(SERVER, data[:5]), (SERVER, data[5:])])
    (m,) = of(events, WsMessage)
    assert (m.text_excerpt, m.frames, m.first_frame, m.frame) == ("Hello", 2, 1, 2)
    s = summary(events, SERVER)
    assert (s.frames, s.text, s.continuation, s.messages) == (2, 1, 1, 1)


def test_rfc6455_ping_and_masked_pong() -> None:
    ping = bytes.fromhex("890548656c6c6f")  # unmasked ping "Hello"
    pong = bytes.fromhex("8a8537fa213d7f9f4d5158")  # masked pong "Hello"
    events = decode([(SERVER, ping), (CLIENT, pong)])
    (p,) = of(events, WsPing)
    (q,) = of(events, WsPong)
    assert (p.payload_len, p.payload_excerpt, p.masked, p.direction, p.frame) == (5, "Hello", False, SERVER, 1)
    assert (q.payload_len, q.payload_excerpt, q.masked, q.direction, q.frame) == (5, "Hello", True, CLIENT, 2)


def test_rfc6455_16_and_64_bit_lengths() -> None:
    b256 = bytes(range(256))
    data16 = bytes.fromhex("827e0100") + b256  # binary, 16-bit length 256
    b64k = os.urandom(65536)
    data64 = bytes.fromhex("827f0000000000010000") + b64k  # binary, 64-bit length 65536
    events = decode(data16 + data64)
    m1, m2 = of(events, WsMessage)
    assert (m1.opcode, m1.size, m2.size) == ("binary", 256, 65536)
    masked = client_frame(b64k, 2)
    assert masked[:10] == bytes.fromhex("82ff0000000000010000")  # masked, 64-bit length
    (m,) = of(decode(masked, CLIENT), WsMessage)
    assert m.size == 65536


def test_non_minimal_length_is_decoded() -> None:
    # RFC 6455 §5.2 asks for the minimal length encoding; a receiver still knows where the frame ends
    events = decode(frame(b"abc", length_form=16) + frame(b"de", length_form=64))
    assert [m.text_excerpt for m in of(events, WsMessage)] == ["abc", "de"]


# -- fragmentation, control frames, close ---------------------------------------------------------------------


def test_fragments_with_a_ping_in_between() -> None:
    data = (
        client_frame(b"MALWARE_", 1, fin=False)
        + client_frame(b"ping!", 9)
        + client_frame(b"DOWNLOAD", 0, fin=False)
        + client_frame(b" cmd", 0)
    )
    events = decode([(CLIENT, data[:20]), (CLIENT, data[20:])])
    assert [e.kind for e in events if not isinstance(e, WsSummary)] == ["websocket.ping", "websocket.message"]
    (m,) = of(events, WsMessage)
    assert (m.text_excerpt, m.frames, m.first_frame, m.frame) == ("MALWARE_DOWNLOAD cmd", 3, 1, 2)
    s = summary(events, CLIENT)
    assert (s.frames, s.text, s.ping, s.continuation, s.masked) == (4, 1, 1, 2, 4)


@pytest.mark.parametrize(
    ("payload", "code", "reason"),
    [
        (b"", None, ""),
        (bytes.fromhex("03e8"), 1000, ""),  # 1000 normal closure, no reason
        (bytes.fromhex("03f1") + b"over size limit (4 > 2 bytes)", 1009, "over size limit (4 > 2 bytes)"),
        (bytes.fromhex("03f0") + "ünïcode".encode(), 1008, "ünïcode"),
    ],
)
def test_close_code_and_reason(payload: bytes, code: int | None, reason: str) -> None:
    events = decode(frame(payload, 8))
    (c,) = of(events, WsClose)
    assert (c.code, c.reason, c.masked, c.payload_len) == (code, reason, False, len(payload))
    assert anomalies(events) == []


def test_close_with_one_byte_payload() -> None:
    events = decode(client_frame(b"\x03", 8), CLIENT)
    (c,) = of(events, WsClose)
    assert (c.code, c.masked) == (None, True)
    assert anomalies(events) == ["websocket.close_payload_one_byte"]


def test_frame_after_close() -> None:
    events = decode(frame(b"\x03\xe8", 8) + frame(b"late"))
    assert anomalies(events) == ["websocket.frame_after_close"]
    assert [m.text_excerpt for m in of(events, WsMessage)] == ["late"]


def test_oversized_and_fragmented_control_frames() -> None:
    big = frame(b"\x03\xe8" + b"C" * 256, 8)  # 258-byte close, as in zeek's oversized-close-frame.pcapng
    frag = frame(b"p", 9, fin=False)  # ping without FIN
    events = decode(frag + big)
    assert anomalies(events) == ["websocket.control_frame_fragmented", "websocket.control_frame_too_long"]
    (c,) = of(events, WsClose)
    assert (c.code, c.payload_len, len(c.reason)) == (1000, 258, 256)


def test_masking_rules_per_direction() -> None:
    events = decode([(CLIENT, frame(b"unmasked")), (SERVER, client_frame(b"masked"))])
    assert anomalies(events) == ["websocket.unmasked_client_frame", "websocket.masked_server_frame"]
    assert [m.text_excerpt for m in of(events, WsMessage)] == ["unmasked", "masked"]
    assert (summary(events, CLIENT).unmasked, summary(events, SERVER).masked) == (1, 1)


def test_client_direction_can_be_1() -> None:
    events = decode([(1, client_frame(b"a")), (0, frame(b"b"))], client_direction=1)
    assert anomalies(events) == []


def test_reserved_opcode_is_skipped_and_decoding_goes_on() -> None:
    events = decode(frame(b"xyz", 3) + frame(b"ok") + frame(b"", 0xB))
    assert anomalies(events) == ["websocket.reserved_opcode", "websocket.reserved_opcode"]
    assert [m.text_excerpt for m in of(events, WsMessage)] == ["ok"]
    assert summary(events, SERVER).reserved == 2


def test_continuation_without_start_and_interrupted_message() -> None:
    events = decode(frame(b"orphan", 0) + frame(b"first", 1, fin=False) + frame(b"second", 2))
    assert anomalies(events) == ["websocket.continuation_without_start", "websocket.message_interrupted"]
    first, second = of(events, WsMessage)
    assert (first.text_excerpt, first.partial, second.opcode, second.size) == ("first", True, "binary", 6)


def test_reserved_bits() -> None:
    events = decode(frame(b"a", rsv=0x20) + frame(b"b", rsv=0x40))
    assert anomalies(events) == ["websocket.reserved_bits", "websocket.reserved_bits"]
    a, b = of(events, WsMessage)
    assert (a.size, b.compressed, b.size) == (1, True, None)  # RSV1 without permessage-deflate: not inflated
    assert summary(events, SERVER).compressed == 1


def test_invalid_utf8_text() -> None:
    events = decode(frame(b"ok \xff\xfe"))
    assert anomalies(events) == ["websocket.invalid_utf8"]
    (m,) = of(events, WsMessage)
    assert m.text_excerpt == "ok \ufffd\ufffd"


def test_repeated_anomalies_are_counted_not_repeated() -> None:
    events = decode(b"".join(frame(b"x") for _ in range(12)), CLIENT)
    assert anomalies(events) == ["websocket.unmasked_client_frame"] * ws.ANOMALY_EVENTS_PER_NAME
    assert dict(summary(events, CLIENT).anomalies) == {"websocket.unmasked_client_frame": 12}


def test_unfinished_message_at_close() -> None:
    events = decode(frame(b"half", fin=False) + frame(b"cut", 0)[:3])
    (m,) = of(events, WsMessage)
    assert (m.partial, m.text_excerpt, m.frame, m.frames) == (True, "halfc", 99, 2)
    events = decode(frame(b"half", fin=False) + frame(b"cut", 0)[:1])
    (m,) = of(events, WsMessage)
    assert (m.partial, m.text_excerpt, m.frames) == (True, "half", 1)
    assert summary(events, SERVER).lost_bytes == 1  # an unfinished header


# -- split anywhere ---------------------------------------------------------------------------------------------

MIXED_CLIENT_STREAM = (
    client_frame(b"A" * 200)  # 16-bit length, masked
    + client_frame(b"frag-", 2, fin=False)
    + client_frame(b"", 9)  # empty ping inside the fragmented message
    + client_frame(b"ment", 0)
    + client_frame(b"\x03\xe8bye", 8)
)


@pytest.mark.parametrize("cut", range(1, len(MIXED_CLIENT_STREAM)))
def test_split_at_every_offset(cut: int) -> None:
    whole = decode(MIXED_CLIENT_STREAM, CLIENT)
    split = decode([(CLIENT, MIXED_CLIENT_STREAM[:cut]), (CLIENT, MIXED_CLIENT_STREAM[cut:])])
    assert facts(split) == facts(whole)
    assert [e.kind for e in whole] == [
        "websocket.message",
        "websocket.ping",
        "websocket.message",
        "websocket.close",
        "websocket.summary",
        "websocket.summary",
    ]


def test_one_byte_at_a_time_and_frame_numbers() -> None:
    data = MIXED_CLIENT_STREAM
    events = decode([(CLIENT, data[i : i + 1]) for i in range(len(data))])
    assert facts(events) == facts(decode(data, CLIENT))
    first = of(events, WsMessage)[0]
    assert (first.first_frame, first.frame) == (1, 2 + 2 + 4 + 200)  # completed by its last byte's chunk


COMPRESSED_STREAM = b"".join(
    frame(p, rsv=0x40) for p in deflate_messages([b'[2,"1","Heartbeat",{}]', b'[2,"2","Heartbeat",{}]'])
)


@pytest.mark.parametrize("cut", range(1, len(COMPRESSED_STREAM)))
def test_compressed_split_at_every_offset(cut: int) -> None:
    split = decode([(SERVER, COMPRESSED_STREAM[:cut]), (SERVER, COMPRESSED_STREAM[cut:])], extensions=PMD)
    assert [m.text_excerpt for m in of(split, WsMessage)] == ['[2,"1","Heartbeat",{}]', '[2,"2","Heartbeat",{}]']
    assert anomalies(split) == []


# -- permessage-deflate (RFC 7692) ----------------------------------------------------------------------------


def test_rfc7692_examples() -> None:
    hello = bytes.fromhex("c107f248cdc9c90700")  # §7.2.3.1: RSV1, text, "Hello" compressed
    again = bytes.fromhex("c105f200110000")  # §7.2.3.2: "Hello" again, using the shared LZ77 window
    stored = bytes.fromhex("c10b000500faff48656c6c6f00")  # §7.2.3.3: a stored (BTYPE=00) block
    bfinal = bytes.fromhex("c108f348cdc9c9070000")  # §7.2.3.4: BFINAL set, then an empty block
    frag = bytes.fromhex("4103f248cd8004c9c90700")  # §7.2.3.1: compressed message in two frames
    events = decode(hello + again + stored + bfinal + frag, extensions=PMD)
    msgs = of(events, WsMessage)
    assert [(m.text_excerpt, m.compressed, m.frames) for m in msgs] == [("Hello", True, 1)] * 4 + [("Hello", True, 2)]
    assert [m.wire_size for m in msgs] == [7, 5, 11, 8, 7]
    assert anomalies(events) == []
    assert summary(events, SERVER).compressed == 5


@pytest.mark.parametrize("wbits", range(9, 16))
@pytest.mark.parametrize("takeover", [True, False])
def test_deflate_window_bits_and_context_takeover(wbits: int, takeover: bool) -> None:
    texts = [b'[2,"%d","MeterValues",{"connectorId":1,"meterValue":[]}]' % i for i in range(5)] + [
        os.urandom(600).hex().encode()
    ]
    params = [f"server_max_window_bits={wbits}", f"client_max_window_bits={wbits}"]
    if not takeover:
        params += ["server_no_context_takeover", "client_no_context_takeover"]
    ext = "; ".join([PMD, *params])
    server = b"".join(frame(p, rsv=0x40) for p in deflate_messages(texts, wbits, takeover))
    client = b"".join(client_frame(p, rsv=0x40) for p in deflate_messages(texts, wbits, takeover))
    events = decode([(SERVER, server), (CLIENT, client)], extensions=ext)
    msgs = of(events, WsMessage)
    assert [m.text_excerpt for m in msgs] == [t.decode()[:200] for t in texts] * 2
    assert [m.size for m in msgs] == [len(t) for t in texts] * 2
    assert anomalies(events) == []


def test_takeover_used_although_no_context_takeover_was_agreed() -> None:
    # the sender keeps its LZ77 window; the receiver resets it as agreed: the second message cannot be inflated
    payloads = deflate_messages([b"Hello Hello Hello", b"Hello Hello Hello"], takeover=True)
    events = decode(b"".join(frame(p, rsv=0x40) for p in payloads), extensions=f"{PMD}; server_no_context_takeover")
    first, second = of(events, WsMessage)
    assert first.text_excerpt == "Hello Hello Hello"
    assert "distance too far back" in str(second.inflate_error)
    assert anomalies(events) == ["websocket.inflate_failed"]


def test_window_larger_than_agreed_is_not_enforced() -> None:
    # the sender uses a 2**15-byte window where 2**9 was agreed: inflated anyway (documented: zlib cannot enforce
    # the window consistently across TCP cuts, so ghostcap always inflates with the largest window)
    text = os.urandom(2000).hex().encode()
    payloads = deflate_messages([text, text[:100]], wbits=15)
    events = decode(b"".join(frame(p, rsv=0x40) for p in payloads), extensions=f"{PMD}; server_max_window_bits=9")
    assert [m.size for m in of(events, WsMessage)] == [4000, 100]
    assert anomalies(events) == []


def test_decompression_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    big = b"x" * (ws.MESSAGE_CAP + 5000)
    payloads = deflate_messages([big, b"after the big one"])
    received: list[bytes] = []

    class Sink:
        def message(self, *, direction: int, data: bytes, text: bool, frame: int, ts_ns: int) -> list[Event]:
            received.append(data)
            return []

        def close(self, frame: int, ts_ns: int) -> list[Event]:
            return []

    events = decode(b"".join(frame(p, rsv=0x40) for p in payloads), extensions=PMD, message_factory=lambda f, s: Sink())
    first, second = of(events, WsMessage)
    assert (first.truncated_by_cap, first.size, second.text_excerpt) == (True, len(big), "after the big one")
    assert anomalies(events) == ["websocket.message_cap"]
    assert received == [b"after the big one"]  # a truncated message is not handed on


def test_inflate_limit_gives_up_and_loses_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ws, "INFLATE_LIMIT", 3 << 20)
    bomb, after = deflate_messages([b"\0" * (8 << 20), b"next"])
    events = decode(frame(bomb, 2, rsv=0x40) + frame(after, 1, rsv=0x40), extensions=PMD)
    first, second = of(events, WsMessage)
    assert first.truncated_by_cap
    assert "gave up" in str(first.inflate_error)
    assert (3 << 20) < (first.size or 0) <= (3 << 20) + ws.INFLATE_STEP
    # the next message is inflated with a fresh context: "next" has no back-reference, so it comes out right
    assert second.text_excerpt == "next"


def test_snaplen_cut_compressed_frame_inflates_what_is_there() -> None:
    text = b'[2,"1001","BootNotification",{"chargePointModel":"SimCharger","chargePointVendor":"ghostcap"}]' * 3
    first, second = deflate_messages([text, text])  # the second refers back to the first
    data = frame(first, rsv=0x40)
    cut_at = 2 + len(first) // 2
    dec = WebSocketDecoder(7, subprotocol=None, extensions=PMD)
    events = dec.feed(chunk(data[:cut_at], SERVER, 1))
    missing = len(data) - cut_at - 5
    events += dec.gap(StreamGap(7, SERVER, cut_at, missing, 1, 1_000_000, GapReason.SNAPLEN))
    events += dec.feed(chunk(data[cut_at + missing :], SERVER, 2, cut_at + missing))
    events += dec.feed(chunk(frame(second, rsv=0x40), SERVER, 3, len(data)))
    events += dec.close(99, 0)
    m1, m2 = of(events, WsMessage)
    assert (m1.partial, m1.frame) == (True, 2)
    assert 0 < (m1.size or 0) < len(text)
    assert text.decode().startswith(m1.text_excerpt)
    assert m2.inflate_error is not None  # history lost with the cut: fails rather than inflating wrong bytes
    assert anomalies(events) == ["websocket.gap", "websocket.inflate_failed"]
    assert summary(events, SERVER).lost_bytes == missing


def test_parse_permessage_deflate() -> None:
    assert parse_permessage_deflate(None) is None
    assert parse_permessage_deflate("x-webkit-deflate-frame") is None
    assert parse_permessage_deflate("permessage-deflate") == DeflateParams()
    assert parse_permessage_deflate(
        'foo, permessage-deflate; server_max_window_bits="12"; client_max_window_bits=10; client_no_context_takeover'
    ) == DeflateParams(client_no_context_takeover=True, client_max_window_bits=10, server_max_window_bits=12)
    assert parse_permessage_deflate("permessage-deflate; client_max_window_bits; server_max_window_bits=99") == (
        DeflateParams()
    )


# -- message decoder ------------------------------------------------------------------------------------------


def test_message_decoder_gets_whole_messages_and_is_closed() -> None:
    calls: list[tuple] = []

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Child(Event):
        kind = "test.child"
        note: str

    class Sink:
        def message(self, *, direction: int, data: bytes, text: bool, frame: int, ts_ns: int) -> list[Event]:
            calls.append((direction, data, text, frame))
            return [Child(ts_ns=ts_ns, frame=frame, note=data.decode("latin-1"))]

        def close(self, frame: int, ts_ns: int) -> list[Event]:
            calls.append(("close", frame))
            return [Child(ts_ns=ts_ns, frame=frame, note="closed")]

    made: list[tuple] = []

    def factory(flow_id: int, subprotocol: str | None) -> Sink:
        made.append((flow_id, subprotocol))
        return Sink()

    dec = WebSocketDecoder(7, subprotocol="ocpp1.6", extensions=None, message_factory=factory)
    events = dec.feed(chunk(client_frame(b"[2,", fin=False), CLIENT, 3))
    events += dec.feed(chunk(client_frame(b'"x"]', 0) + client_frame(b"\x01\x02", 2), CLIENT, 4))
    events += dec.close(9, 0)
    assert made == [(7, "ocpp1.6")]
    assert calls == [(CLIENT, b'[2,"x"]', True, 4), (CLIENT, b"\x01\x02", False, 4), ("close", 9)]
    assert [e.kind for e in events] == [
        "websocket.message",
        "test.child",
        "websocket.message",
        "test.child",
        "websocket.summary",
        "websocket.summary",
        "test.child",
    ]


# -- gaps, resynchronisation, mid-stream ------------------------------------------------------------------------


def test_gap_inside_an_uncompressed_payload_keeps_the_frame_boundaries() -> None:
    data = frame(b"0123456789" * 20) + frame(b"next")
    dec = WebSocketDecoder(7, subprotocol=None, extensions=None)
    events = dec.feed(chunk(data[:50], SERVER, 1))
    events += dec.gap(StreamGap(7, SERVER, 50, 100, 2, 0, GapReason.NOT_CAPTURED))
    events += dec.feed(chunk(data[150:], SERVER, 3, 150))
    m1, m2 = of(events, WsMessage)
    assert (m1.partial, m1.size, m1.frame, m2.text_excerpt) == (True, 200 - 100, 3, "next")
    assert anomalies(events) == ["websocket.gap"]


def test_gap_between_frames_then_resynchronised_on_a_proven_frame_start() -> None:
    dec = WebSocketDecoder(7, subprotocol=None, extensions=None)
    events = dec.feed(chunk(frame(b"one"), SERVER, 1))
    events += dec.gap(StreamGap(7, SERVER, 5, 40, 2, 0, GapReason.NOT_CAPTURED))
    tail_of_lost_frame = b"\x81\x7e lost payload tail"  # not a provable frame chain
    events += dec.feed(chunk(tail_of_lost_frame, SERVER, 3))
    long = frame(b"L" * 300)
    events += dec.feed(chunk(long[:100], SERVER, 4))  # a frame start, but the frame goes on
    events += dec.feed(chunk(long[100:] + frame(b"two"), SERVER, 5))  # ... and ends at a chunk end: proven
    events += dec.close(99, 0)
    assert [m.text_excerpt for m in of(events, WsMessage)] == ["one", "L" * 200, "two"]
    assert anomalies(events) == ["websocket.gap", "websocket.resynchronized"]
    assert summary(events, SERVER).lost_bytes == 40 + len(tail_of_lost_frame)


def test_lost_direction_gives_up_a_candidate_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ws, "RESYNC_LIMIT", 1000)
    dec = WebSocketDecoder(7, subprotocol=None, extensions=None)
    dec.gap(StreamGap(7, SERVER, 0, 10, 1, 0, GapReason.NOT_CAPTURED))
    big = frame(b"\xff" * 990, 2)  # 994 bytes; 0xff is no frame start
    events = dec.feed(chunk(big[:600], SERVER, 2))
    assert len(dec._sides[SERVER].rbuf) == 600  # waiting: the candidate's frame goes on
    events += dec.feed(chunk(big[600:] + frame(b"x" * 50)[:20], SERVER, 3))  # 1014 bytes, no frame end at the end
    assert len(dec._sides[SERVER].rbuf) == 0  # candidate dropped past the limit; the next chunk is no frame start
    events += dec.feed(chunk(frame(b"ok"), SERVER, 4))
    assert [m.text_excerpt for m in of(events, WsMessage)] == ["ok"]
    assert dec._sides[SERVER].lost_bytes == 10 + len(big) + 20


def test_mid_stream_start() -> None:
    texts = [b"first message " * 3, b"independent", b"first message " * 3]
    payloads = deflate_messages(texts)
    dec = WebSocketDecoder(7, subprotocol=None, extensions=None, mid_stream=True)
    events = dec.feed(chunk(b"ail of an earlier frame", SERVER, 1))  # capture began inside a frame
    events += dec.feed(chunk(frame(payloads[1], rsv=0x40) + frame(b"", 9), SERVER, 2))
    events += dec.feed(chunk(frame(payloads[2], rsv=0x40), SERVER, 3))
    events += dec.close(9, 0)
    m1, m2 = of(events, WsMessage)
    assert (m1.size, m1.compressed) == (len(texts[1]), True)
    assert m2.inflate_error is not None  # refers to the first message, which the capture does not have
    assert of(events, WsPing)
    names = anomalies(events)
    assert names == ["websocket.mid_stream", "websocket.resynchronized", "websocket.inflate_failed"]
    (detail,) = [e.detail for e in events if isinstance(e, DecodeAnomaly) and e.name == "websocket.inflate_failed"]
    assert "capture began after the upgrade" in detail


def test_mid_stream_inflates_a_message_without_history() -> None:
    (payload,) = deflate_messages([b"Hello"])
    events = decode(frame(payload, rsv=0x40), mid_stream=True)
    assert [m.text_excerpt for m in of(events, WsMessage)] == ["Hello"]
    assert anomalies(events) == ["websocket.mid_stream"]


def test_mid_stream_learns_the_roles_from_the_masking() -> None:
    # the flow table guessed the roles wrong: direction 0 sends unmasked frames, so it is the server
    events = decode([(0, frame(b"from server")), (1, client_frame(b"from client"))], mid_stream=True)
    assert [(m.direction, m.text_excerpt) for m in of(events, WsMessage)] == [(0, "from server"), (1, "from client")]
    assert anomalies(events) == ["websocket.mid_stream"]
    assert (summary(events, 0).unmasked, summary(events, 1).masked) == (1, 1)


def test_mid_stream_on_a_real_capture_decodes_what_the_upgrade_path_decodes() -> None:
    """The lab's healthy OCPP 1.6 session fed to a mid-stream decoder from its first byte (the HTTP handshake
    is no frame start and is skipped): the same messages and close frames as through the HTTP decoder."""
    from analyzer.decoders.http_upgrade import HttpUpgradeDecoder
    from tests.conftest import PROJECT_CAPTURES
    from tests.decoders.drive import run_stream_decoder

    path = PROJECT_CAPTURES / "healthy_16_ws.pcap"
    via_http = run_stream_decoder(path, lambda fid, data, cp, sp: HttpUpgradeDecoder(fid))
    mid = run_stream_decoder(
        path, lambda fid, data, cp, sp: WebSocketDecoder(fid, subprotocol=None, extensions=None, mid_stream=True)
    )

    def seen(events: list[Event]) -> list[tuple]:
        return [
            (e.kind, e.frame, e.direction, getattr(e, "text_excerpt", getattr(e, "code", None)))
            for e in events
            if isinstance(e, WsMessage | WsClose | WsPing)
        ]

    assert seen(mid) == seen(via_http)
    assert len(of(mid, WsMessage)) == 8
    # each direction skipped its HTTP head before the first frame start it could prove
    assert anomalies(mid) == ["websocket.mid_stream", "websocket.resynchronized", "websocket.resynchronized"]
    assert sum(s.lost_bytes for s in of(mid, WsSummary)) > 200


@pytest.mark.parametrize(
    ("data", "direction", "expected"),
    [
        ("81057f9f4d5158", SERVER, True),  # unmasked text from the server
        ("818537fa213d7f9f4d5158", CLIENT, True),  # masked text from the client
        ("818537fa213d7f9f4d5158", SERVER, False),  # masked frame from the server
        ("810548656c6c6f8a00", SERVER, True),  # two frames
        ("810548656c6c6fff", SERVER, False),  # second header: reserved opcode
        ("c105f2", SERVER, True),  # RSV1 on a data frame, incomplete payload
        ("e105", SERVER, False),  # RSV2
        ("0901", SERVER, False),  # ping without FIN
        ("897e0080", SERVER, False),  # ping longer than 125
        ("817e0005", SERVER, False),  # 16-bit length for 5 bytes
        ("83", SERVER, False),  # one byte only
        ("474554202f20", SERVER, False),  # "GET / "
        ("16030100", SERVER, False),  # TLS record
    ],
)
def test_looks_like_websocket(data: str, direction: int, expected: bool) -> None:
    assert looks_like_websocket(bytes.fromhex(data), direction) is expected


# -- wsproto as a second opinion, and fuzzing ----------------------------------------------------------------------


@st.composite
def valid_client_stream(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, bytes]]]:
    """Masked client frames: messages (maybe fragmented) with control frames in between; expected messages."""
    out = bytearray()
    expected = []
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from([1, 2]))
        body = draw(st.binary(max_size=300)) if op == 2 else draw(st.text(max_size=100)).encode()
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            mask = draw(st.binary(min_size=4, max_size=4))
            out += frame(piece, op if i == 0 else 0, fin=last, mask=mask)
            if draw(st.booleans()):
                out += frame(draw(st.binary(max_size=125)), 9, mask=mask)
        expected.append((op, body))
    return bytes(out), expected


@given(valid_client_stream(), st.integers(1, 50))
@settings(max_examples=150, deadline=None)
def test_agrees_with_wsproto(stream: tuple[bytes, list[tuple[int, bytes]]], seg: int) -> None:
    from wsproto.frame_protocol import FrameProtocol, Opcode

    data, expected = stream
    fp = FrameProtocol(client=False, extensions=[])
    fp.receive_bytes(data)
    theirs: list[tuple[int, bytes]] = []
    current = b""
    kind = 0
    for f in fp.received_frames():
        if f.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION):
            if not kind:
                kind, current = int(f.opcode), b""  # wsproto reports continuations with the message's opcode
            current += f.payload.encode() if isinstance(f.payload, str) else bytes(f.payload)
            if f.message_finished:
                theirs.append((kind, current))
                kind = 0
    assert theirs == expected
    received: list[tuple[int, bytes]] = []

    class Sink:
        def message(self, *, direction: int, data: bytes, text: bool, frame: int, ts_ns: int) -> list[Event]:
            received.append((1 if text else 2, data))
            return []

        def close(self, frame: int, ts_ns: int) -> list[Event]:
            return []

    events = decode(
        [(CLIENT, data[i : i + seg]) for i in range(0, len(data), seg)], message_factory=lambda f, s: Sink()
    )
    assert received == expected
    assert anomalies(events) == []


@given(
    st.lists(
        st.one_of(
            st.tuples(st.integers(0, 1), st.binary(max_size=200)),
            st.tuples(st.integers(0, 1), st.integers(1, 5000)),  # a gap of this many bytes
        ),
        max_size=20,
    ),
    st.sampled_from([None, PMD, f"{PMD}; server_no_context_takeover; client_max_window_bits=9"]),
    st.booleans(),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_random_bytes_and_gaps(items: list[tuple[int, bytes | int]], ext: str | None, mid: bool) -> None:
    """Any input gives events only (the WebSocket decoder never raises, not even DecodeError), and output and
    buffers stay bounded."""
    dec = WebSocketDecoder(7, subprotocol=None, extensions=ext, mid_stream=mid)
    events: list[Event] = []
    total = 0
    for i, (d, item) in enumerate(items, start=1):
        if isinstance(item, int):
            events += dec.gap(StreamGap(7, d, 0, item, i, 0, GapReason.NOT_CAPTURED))
        else:
            total += len(item)
            events += dec.feed(chunk(item, d, i))
        for side in dec._sides:
            assert len(side.hdr) < ws.MAX_HEADER_LEN
            assert len(side.rbuf) <= ws.RESYNC_LIMIT + 200
            assert side.m_kept <= ws.MESSAGE_CAP
    events += dec.close(999, 0)
    assert all(isinstance(e, Event) for e in events)
    assert len(events) <= total // 2 + len(items) + 100


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_fuzz_mutated_valid_streams(data: st.DataObject) -> None:
    stream = MIXED_CLIENT_STREAM + COMPRESSED_STREAM.replace(b"\xc1", b"\xc1", 1)
    mutated = bytearray(stream)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(mutated) - 1))
        mutated[i] = data.draw(st.integers(0, 255))
    seg = data.draw(st.integers(1, 64))
    d = data.draw(st.integers(0, 1))
    events = decode(
        [(d, bytes(mutated[i : i + seg])) for i in range(0, len(mutated), seg)],
        extensions=data.draw(st.sampled_from([None, PMD])),
    )
    assert all(isinstance(e, Event) for e in events)
    assert len(events) <= len(mutated) // 2 + 100


def test_frames_on_a_connection_that_never_upgraded_are_not_called_mid_stream() -> None:
    """The capture holds the SYN (``no_upgrade``): the frames were sent without any upgrade, and the anomaly says
    so instead of claiming the capture began after one."""
    dec = WebSocketDecoder(7, subprotocol=None, extensions=None, mid_stream=True, no_upgrade=True)
    events = dec.feed(chunk(frame(b'[2,"365","StatusNotification",{}]', mask=b"\x01\x02\x03\x04"), CLIENT, 1))
    assert anomalies(events)[0] == "websocket.no_upgrade"
    assert "never did the HTTP upgrade" in next(e.detail for e in events if isinstance(e, DecodeAnomaly))
    assert [m.text_excerpt for m in of(events, WsMessage)] == ['[2,"365","StatusNotification",{}]']


# -- the single-frame fast path (``_single_frame_message``) against the frame-by-frame path --------------------------

# Per direction: frames the fast path takes (whole FIN text/binary frames, 7- and 16-bit lengths, masked as the
# direction requires) between frames it must leave to the frame-by-frame path (64-bit length, wrong masking, RSV
# bits, fragments, control frames, invalid UTF-8, frames after a close).
FAST_CLIENT_FRAMES = [
    client_frame(b""),
    client_frame(b'[2,"1","Heartbeat",{}]'),
    client_frame(b"x" * 125),
    client_frame(b"y" * 126),
    client_frame(b"z" * 65535),
    client_frame(b"w" * 65536),  # 64-bit length
    client_frame(b"\x00\x01\xff", 2),
    client_frame(b"short", length_form=16),  # non-minimal length
    frame(b"unmasked"),
    client_frame(b"rsv1", rsv=0x40),
    client_frame(b"rsv2", rsv=0x20),
    client_frame(b"\xff\xfe invalid utf-8"),
    client_frame(b"frag-", fin=False),
    client_frame(b"whole while fragmented"),  # interrupts the fragmented message
    client_frame(b"more-", fin=False),
    client_frame(b"ping", 9),
    client_frame(b"ment", 0),
    client_frame(b'[3,"1",{}]'),
    client_frame(b"\x03\xe8", 8),
    client_frame(b"after close"),
]
FAST_SERVER_FRAMES = [
    frame(b'[3,"1",{"currentTime":"2024-01-01T00:00:00Z"}]'),
    frame(b""),
    frame(b"s" * 300),
    client_frame(b"masked by the server"),
    frame(b"\x80", 2),
    frame(b"pong", 10),
    frame(b"b" * 70000, 2),
    frame(b"last"),
]
FAST_CLIENT = b"".join(FAST_CLIENT_FRAMES)
FAST_SERVER = b"".join(FAST_SERVER_FRAMES)


class RecordingSink:
    """A message decoder that records what it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def message(self, *, direction: int, data: bytes, text: bool, frame: int, ts_ns: int) -> list[Event]:
        self.calls.append((direction, data, text, frame, ts_ns))
        return []

    def close(self, frame: int, ts_ns: int) -> list[Event]:
        return []


def one_path(parts: list[tuple[int, bytes]], fast: bool, **kw: object) -> tuple[list[Event], list[tuple]]:
    """Events and message-decoder calls from ``decode(parts)``, with the fast path on or switched off."""
    sink = RecordingSink()
    with pytest.MonkeyPatch.context() as mp:
        if not fast:
            mp.setattr(WebSocketDecoder, "_single_frame_message", lambda self, *args: 0)
        events = decode(parts, message_factory=lambda f, s: sink, **kw)
    return events, sink.calls


def both_paths(parts: list[tuple[int, bytes]], **kw: object) -> tuple[tuple, tuple]:
    """``one_path`` with the fast path, and without."""
    return one_path(parts, True, **kw), one_path(parts, False, **kw)


def interleave(client: bytes, server: bytes, seg: int) -> list[tuple[int, bytes]]:
    """Both streams cut into ``seg``-byte chunks, alternating directions."""
    parts: list[tuple[int, bytes]] = []
    for i in range(0, max(len(client), len(server)), seg):
        parts += [(d, data[i : i + seg]) for d, data in ((CLIENT, client), (SERVER, server)) if data[i : i + seg]]
    return parts


@pytest.mark.parametrize("seg", [1, 2, 3, 7, 14, 100, 1000, 70000, 200000])
@pytest.mark.parametrize("extensions", [None, PMD])
def test_fast_path_gives_what_the_frame_by_frame_path_gives(seg: int, extensions: str | None) -> None:
    fast, slow = both_paths(interleave(FAST_CLIENT, FAST_SERVER, seg), extensions=extensions)
    assert fast == slow
    calls = fast[1]
    assert len(calls) >= 15
    if seg >= len(FAST_CLIENT):  # whole streams: the fast path took the frames it is for
        assert calls[1] == (CLIENT, b'[2,"1","Heartbeat",{}]', True, 1, 1_000_000)


def test_fast_path_leaves_a_message_past_the_cap_to_be_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ws, "MESSAGE_CAP", 200)
    fast, slow = both_paths(interleave(FAST_CLIENT, FAST_SERVER, 200000))
    assert fast == slow
    events, calls = fast
    cut = [e for e in events if getattr(e, "truncated_by_cap", False)]
    assert {e.wire_size for e in cut} >= {300, 65535}  # the 300-byte text and 65,535-byte messages, cut at the cap
    assert all(len(data) <= 200 for _, data, *_ in calls)


SMALL_STREAM = client_frame(b"ab") + client_frame(b"c" * 130) + client_frame(b"", 2) + client_frame(b"d", fin=False)


@pytest.mark.parametrize("cut", range(len(SMALL_STREAM) + 1))
def test_fast_path_split_at_every_offset(cut: int) -> None:
    for parts in (
        [(CLIENT, SMALL_STREAM[:cut]), (CLIENT, SMALL_STREAM[cut:])],
        [(SERVER, SMALL_STREAM[:cut]), (SERVER, SMALL_STREAM[cut:])],  # masked in the server direction
    ):
        fast, slow = both_paths([p for p in parts if p[1]])
        assert fast == slow


def test_fast_path_mid_stream_and_after_a_gap() -> None:
    # the capture begins inside a frame of each direction; later chunks are whole frames (a frame start is proven)
    parts = [(CLIENT, FAST_CLIENT_FRAMES[1][3:]), (SERVER, FAST_SERVER_FRAMES[0][5:])]
    parts += [(CLIENT, f) for f in FAST_CLIENT_FRAMES[2:]] + [(SERVER, f) for f in FAST_SERVER_FRAMES[1:]]
    fast, slow = both_paths(parts, mid_stream=True)
    assert fast == slow
    assert len(fast[1]) > 5
    for run in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            if not run:
                mp.setattr(WebSocketDecoder, "_single_frame_message", lambda self, *args: 0)
            dec = WebSocketDecoder(7, subprotocol=None, extensions=None)
            out = dec.feed(chunk(FAST_SERVER[:100], SERVER, 1))
            out += dec.gap(StreamGap(7, SERVER, 100, 10, 2, 2, GapReason.NOT_CAPTURED))
            out += dec.feed(chunk(FAST_SERVER[110:], SERVER, 3, 110))
            out += dec.close(4, 4)
        if run:
            with_fast = out
    assert with_fast == out


@given(st.lists(st.integers(1, 400), min_size=1, max_size=60), st.integers(0, 1))
@settings(max_examples=200, deadline=None)
def test_fast_path_any_segmentation(cuts: list[int], direction: int) -> None:
    data = FAST_CLIENT[:3000] if direction == CLIENT else FAST_SERVER[:3000]
    parts, pos, i = [], 0, 0
    while pos < len(data):
        step = cuts[i % len(cuts)]
        parts.append((direction, data[pos : pos + step]))
        pos += step
        i += 1
    fast, slow = both_paths(parts)
    assert fast == slow


def test_fast_path_first_frame_is_the_carrying_frame() -> None:
    """A chunk that waited for a missing segment (``frame`` 3, delivered at ``at_frame`` 5): its messages began in
    frame 3 and completed at frame 5, on both paths."""
    got = []
    for fast in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            if not fast:
                mp.setattr(WebSocketDecoder, "_single_frame_message", lambda self, *args: 0)
            dec = WebSocketDecoder(7, subprotocol=None, extensions=None)
            got.append(dec.feed(StreamChunk(7, SERVER, 0, FAST_SERVER[:400], 3, 5, 5_000_000)))
    assert got[0] == got[1]
    assert {(m.first_frame, m.frame) for m in of(got[0], WsMessage)} == {(3, 5)}


def test_window_bits_of_other_than_ascii_digits_count_as_the_default() -> None:
    """``"¹²"`` is digits to ``str.isdigit``, not to ``int``: the default window, never an exception."""
    from analyzer.decoders.websocket import DEFAULT_WINDOW_BITS, parse_permessage_deflate

    offer = "permessage-deflate; server_max_window_bits=\u00b9\u00b2; client_max_window_bits=9"
    params = parse_permessage_deflate(offer)
    assert params is not None
    assert params.server_max_window_bits == DEFAULT_WINDOW_BITS
    assert params.client_max_window_bits == 9
