"""The TLS decoder's skip window, byte by byte: bodies the flow layer passes over are caught up on the next chunk,
gap or ``passed_over`` call, and every event comes out as when every byte is delivered.

Each test runs one script twice: on a decoder fed every byte (``Wire``), and on one whose window a stand-in for
the flow layer honours (``SkipWire``: a segment lying wholly before the window's last byte is not fed).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from analyzer.capture.container import DecryptionSecret
from analyzer.decoders.base import SkippingDecoder
from analyzer.decoders.tls import TlsDecoder
from analyzer.events.base import DecodeAnomaly, Event, StreamChunk
from analyzer.events.tls import TlsAlert, TlsEncrypted, TlsSummary
from analyzer.tls.keylog import KeyLog
from tests.decoders.test_tls import C2S, CH_RECORD, FLOW, S2C, T0, Recorder, Wire, record, tls12_session

MSS = 1400


class SkipWire(Wire):
    """A ``Wire`` that, as the flow layer's fast path, does not feed segments inside the decoder's skip window
    (each still takes a frame number) and tells the decoder where the stream got to before closing."""

    def __init__(self, decoder: TlsDecoder | None = None) -> None:
        super().__init__(decoder)
        window = self.dec.skip_window()
        assert window is not None
        self.window = window
        self.skipped: list[int] = []  # frames not fed

    def send(
        self, direction: int, data: bytes, *, at_frame: int | None = None, ts_ns: int | None = None
    ) -> list[Event]:
        end = self.offset[direction] + len(data)
        if end < self.window[direction]:
            self.frame += 1
            self.offset[direction] = end
            self.skipped.append(self.frame)
            return []
        return super().send(direction, data, at_frame=at_frame, ts_ns=ts_ns)

    def close(self) -> list[Event]:
        for d in (C2S, S2C):
            self.dec.passed_over(d, self.offset[d])
        return super().close()


def segments(data: bytes, size: int = MSS) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def both(script: Callable[[Wire], None]) -> tuple[Wire, SkipWire]:
    """The script on a decoder fed every byte and on one with a skip window; their events must be equal, and
    equal to those of a decoder with a key log that holds no secret (as the engine makes them) and a window."""
    every, skipping, keyed = Wire(), SkipWire(), SkipWire(TlsDecoder(FLOW, keys=KeyLog()))
    for w in (every, skipping, keyed):
        script(w)
    assert skipping.events == every.events
    assert keyed.events == every.events
    assert keyed.skipped == skipping.skipped
    return every, skipping


BIG = 16_000  # a full-size record body: 12 segments
BIG_RECORD = record(23, bytes(range(256)) * (BIG // 256) + bytes(BIG % 256))


def test_decoder_shares_a_window_unless_an_observer_needs_every_record() -> None:
    assert isinstance(TlsDecoder(FLOW), SkippingDecoder)
    assert TlsDecoder(FLOW).skip_window() == [0, 0]
    assert TlsDecoder(FLOW, keys=KeyLog()).skip_window() == [0, 0]
    assert TlsDecoder(FLOW, observer=Recorder()).skip_window() is None


SECRET = f"CLIENT_RANDOM {'ab' * 32} {'cd' * 48}\n"  # a session not in the tests: keys exist, none fit


def test_with_secrets_in_the_key_log_every_encrypted_body_is_kept() -> None:
    keys = KeyLog()
    keys.add_text(SECRET, "keys.txt")
    w = SkipWire(TlsDecoder(FLOW, keys=keys))
    tls12_session(w, app_both_ways=True)
    for piece in segments(BIG_RECORD * 2):
        w.send(S2C, piece)
    assert w.skipped == []
    assert w.window == [0, 0]


def test_a_secret_read_from_the_capture_keeps_the_records_that_start_after_it() -> None:
    """A key log without secrets (no file, no Decryption Secrets Block yet) is as good as none; a block read
    later makes the records that start after it kept, to be decrypted."""
    wires = []
    for make in (Wire, SkipWire):
        keys = KeyLog()
        blocks: list[DecryptionSecret] = []
        keys.watch(blocks)
        w = make(TlsDecoder(FLOW, keys=keys))
        tls12_session(w, app_both_ways=True)
        for k, piece in enumerate(segments(BIG_RECORD * 2)):
            if k == 5:  # in the middle of the first record
                blocks.append(DecryptionSecret(DecryptionSecret.TLS_KEY_LOG, SECRET.encode(), w.frame))
            w.send(S2C, piece)
        w.close()
        wires.append(w)
    every, skipping = wires
    assert isinstance(skipping, SkipWire)
    assert skipping.events == every.events
    first = 26  # the first record's first segment: after it, only that record's body is passed over
    assert skipping.skipped == [first + k for k in range(1, (len(BIG_RECORD) - 1) // MSS)]


def test_window_is_the_end_of_the_body_passed_over_and_handshake_bodies_are_kept() -> None:
    w = SkipWire()
    for piece in segments(CH_RECORD, 20):  # a plaintext handshake record: kept, so nothing is skipped
        w.send(C2S, piece)
    assert w.skipped == []
    assert w.window == [0, 0]
    w.send(S2C, BIG_RECORD[:100])
    assert w.window == [0, 5 + BIG]


def test_skipped_body_then_the_chunk_that_ends_it() -> None:
    def script(w: Wire) -> None:
        tls12_session(w, app_both_ways=True)
        for piece in segments(BIG_RECORD + record(23, bytes(30)) + BIG_RECORD + record(21, bytes([1, 0]))):
            w.send(S2C, piece)
        w.close()

    _, skipping = both(script)
    first = 26  # frame of the first segment after the session's 25
    # the record's first segment carries its header; every other one before the one carrying its last byte is
    # passed over, in the second record as well (it starts inside the 12th segment)
    second_start = len(BIG_RECORD) + 5 + 30
    second_last = (second_start + len(BIG_RECORD) - 1) // MSS
    assert skipping.skipped == [first + k for k in range(1, (len(BIG_RECORD) - 1) // MSS)] + [
        first + k for k in range(second_start // MSS + 1, second_last)
    ]
    big = [e for e in skipping.of(TlsEncrypted) if e.length == BIG]
    assert [e.record_frame for e in big] == [first + (len(BIG_RECORD) - 1) // MSS, first + second_last]
    (s,) = skipping.of(TlsSummary)
    assert s.records[1] == 4 + 4
    assert skipping.of(TlsAlert)[-1].description_name == "close_notify"


@pytest.mark.parametrize(
    ("lost_from", "lost"),
    [
        (5 * MSS, 3000),  # inside the body
        (5 * MSS, len(BIG_RECORD) - 5 * MSS),  # up to the body's end: the record ends on the gap
        (5 * MSS, len(BIG_RECORD) + 100 - 5 * MSS),  # past its end (and the next record): boundaries are lost
    ],
)
def test_skipped_body_then_a_gap(lost_from: int, lost: int) -> None:
    stream = BIG_RECORD + record(23, bytes(95)) + record(21, bytes([2, 40]))
    start = [0]

    def script(w: Wire) -> None:
        tls12_session(w, app_both_ways=True)
        start[0] = w.offset[S2C]
        for piece in segments(stream[:lost_from]):
            w.send(S2C, piece)
        w.lose(S2C, lost)
        for piece in segments(stream[lost_from + lost :]):
            w.send(S2C, piece)
        w.close()

    _, skipping = both(script)
    assert skipping.skipped[:4] == [27, 28, 29, 30]  # after the header's segment (26), up to the gap
    # a record that lost bytes is counted, not reported (as when its body is kept to be decrypted)
    assert [e for e in skipping.of(TlsEncrypted) if e.length == BIG] == []
    (gap,) = [e for e in skipping.events if isinstance(e, DecodeAnomaly)]
    assert gap.name == "tls.gap"
    assert gap.detail.startswith(f"{lost} bytes missing before stream offset {start[0] + lost_from + lost} ")
    boundaries_kept = lost_from + lost <= len(BIG_RECORD)
    assert ("record boundaries kept" in gap.detail) is boundaries_kept
    assert skipping.of(TlsAlert)[-1].description == 40
    (s,) = skipping.of(TlsSummary)
    assert s.records[1] == 4 + (3 if boundaries_kept else 1)


def test_skipped_body_then_close_is_a_truncated_record_with_every_byte_counted() -> None:
    sent = 7  # segments of the big record sent before the connection ends

    def script(w: Wire) -> None:
        tls12_session(w, app_both_ways=True)
        for piece in segments(BIG_RECORD)[:sent]:
            w.send(S2C, piece)
        w.close()

    _, skipping = both(script)
    assert len(skipping.skipped) == sent - 1
    (a,) = [e for e in skipping.events if isinstance(e, DecodeAnomaly)]
    assert (a.name, a.direction) == ("tls.truncated_record", S2C)
    assert a.detail == f"type 23 record: {sent * MSS - 5} of {BIG} bytes"


def test_without_passed_over_the_undelivered_bytes_are_not_counted() -> None:
    """The decoder only takes what it is shown: ``close`` alone does not guess how far the stream got."""
    w = SkipWire()
    tls12_session(w, app_both_ways=True)
    for piece in segments(BIG_RECORD)[:3]:
        w.send(S2C, piece)
    (a,) = [e for e in w.dec.close(99, T0) if isinstance(e, DecodeAnomaly)]
    assert a.detail == f"type 23 record: {MSS - 5} of {BIG} bytes"


def test_window_never_hides_bytes_the_flow_layer_did_not_pass_over() -> None:
    dec = TlsDecoder(FLOW)
    window = dec.skip_window()
    assert window is not None
    dec.feed(StreamChunk(FLOW, S2C, 0, record(23, bytes(10)), 1, 1, T0))
    assert window[S2C] == 15  # a record that ended: the window is behind the position
    out = dec.feed(StreamChunk(FLOW, S2C, 100, record(21, bytes([1, 0])), 2, 2, T0))
    assert [e.kind for e in out] == ["decode.anomaly", "tls.alert"]
    assert "85 bytes missing" in out[0].detail
    assert "not delivered" in out[0].detail
    # inside a body passed over, the window's last byte is never taken as passed over: it ends the record
    dec.feed(StreamChunk(FLOW, S2C, 107, BIG_RECORD[:10], 3, 3, T0))
    dec.passed_over(S2C, 107 + len(BIG_RECORD))
    (a,) = [e for e in dec.close(4, T0) if isinstance(e, DecodeAnomaly)]
    assert a.name == "tls.truncated_record"
    assert a.detail == f"type 23 record: {BIG - 1} of {BIG} bytes"
