"""The flow layer's skip window (``Flow.skip_until``), end to end through the engine on a built capture: segments
inside an encrypted record's body are counted, not delivered; the one carrying its last byte is; and the events
are those of the same capture decoded with every segment delivered."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.decoders.tls import TlsDecoder
from analyzer.engine import _Dispatch, rebuild_flows
from analyzer.events.base import DecodeAnomaly, Event, StreamChunk
from analyzer.events.tcp import FlowEnd
from analyzer.events.tls import TlsEncrypted, TlsSummary
from analyzer.flows.table import NO_SKIP, FlowTable
from analyzer.tls.keylog import KeyLog
from tests import pcapbuild as pb

MSS = 1400
BODY = 16_000


def record(ctype: int, body: bytes) -> bytes:
    return bytes([ctype, 3, 3]) + len(body).to_bytes(2, "big") + body


def big_record(fill: int) -> bytes:
    return record(23, bytes([fill]) * BODY)


def segments(data: bytes) -> list[bytes]:
    return [data[i : i + MSS] for i in range(0, len(data), MSS)]


def decode(path: Path) -> tuple[list[Event], list[StreamChunk], FlowTable]:
    """The engine's decoding of ``path`` (as ``build_timeline`` does it, with a key log that holds no secret):
    its events, and the chunks the flow table delivered."""
    dispatch = _Dispatch(KeyLog())
    table = dispatch.table
    delivered: list[StreamChunk] = []

    def on_chunk(c: StreamChunk) -> None:
        delivered.append(c)
        dispatch.chunk(c)

    table.on_chunk = on_chunk
    rebuild_flows(path, table=table)
    return dispatch.events, delivered, table


def every_byte(monkeypatch: pytest.MonkeyPatch, path: Path) -> tuple[list[Event], list[StreamChunk]]:
    """The same, with a TLS decoder that shares no skip window (every segment delivered, as before it existed)."""
    with monkeypatch.context() as m:
        m.setattr(TlsDecoder, "skip_window", lambda self: None)
        events, delivered, _ = decode(path)
    return events, delivered


def opened() -> pb.TcpTalk:
    """A connection whose client spoke first with a TLS record: the TLS decoder takes the flow."""
    t = pb.TcpTalk("10.1.0.5", "10.9.0.1", 51000, 443)
    t.send(True, pb.SYN)
    t.send(False, pb.SYN | pb.ACK)
    t.send(True, pb.ACK)
    t.send(True, pb.ACK | pb.PSH, record(23, b"hello"))
    return t


def closed(t: pb.TcpTalk, tmp_path: Path) -> Path:
    t.send(True, pb.ACK)
    t.send(False, pb.FIN | pb.ACK)
    t.send(True, pb.FIN | pb.ACK)
    t.send(False, pb.ACK)
    path = tmp_path / "tls.pcap"
    path.write_bytes(pb.pcap([(10**18 + i * t.step_ns, f) for i, (_, f) in enumerate(t.frames)]))
    return path


def test_middle_segments_of_an_encrypted_record_are_not_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = opened()
    first = len(t.frames) + 1  # frame numbers count from 1
    # server→client: a full-size record, a small one, another full-size one, in MSS-sized segments
    end1 = 5 + BODY
    start2 = end1 + 5 + 100
    end2 = start2 + 5 + BODY
    pieces = segments(big_record(1) + record(23, b"x" * 100) + big_record(2))
    for piece in pieces:
        t.send(False, pb.ACK, piece)
    path = closed(t, tmp_path)

    events, delivered, table = decode(path)
    # delivered: the first record's header, the segment carrying its last byte (which also carries the small
    # record and the second one's header), the one carrying the second record's last byte; the rest is skipped
    last1, last2 = (end1 - 1) // MSS, (end2 - 1) // MSS
    assert last1 == (start2 + 4) // MSS
    assert [c.frame for c in delivered if c.direction == 1] == [first, first + last1, first + last2]
    # the records end on the segments carrying their last bytes, with those frames
    big = [e.record_frame for e in events if isinstance(e, TlsEncrypted) and e.length == BODY]
    assert big == [first + last1, first + last2]
    (summary,) = [e for e in events if isinstance(e, TlsSummary)]
    assert summary.records == (1, 3)
    assert summary.bytes == (10, end2)
    # the flow's own counters saw every segment
    (flow,) = table.flows
    assert flow.payload_bytes[1] == flow.stream_bytes(1) == end2
    assert flow.skip_until is NO_SKIP  # let go with the flow

    every, all_chunks = every_byte(monkeypatch, path)
    assert [c.frame for c in all_chunks if c.direction == 1] == [first + k for k in range(len(pieces))]
    assert events == every


def test_slow_path_segments_and_a_truncated_record_stay_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of order, retransmitted and lost segments inside passed-over bodies, then a FIN in the middle of a
    third record: the decoder catches up on whatever the slow path delivers, and at the connection's end."""
    t = opened()
    pieces = segments(big_record(1) + big_record(2) + big_record(3))[:30]  # the third record is cut short
    sent = []
    for k, piece in enumerate(pieces):
        t.send(False, pb.ACK, piece)
        sent.append(t.frames[-1])
        if k == 16:
            t.send(True, pb.ACK)  # acknowledges past segment 15, lost below: a gap at once
    frames = t.frames
    frames.remove(sent[15])  # lost, in the second record's body
    frames.insert(frames.index(sent[6]) + 1, sent[6])  # segment 6 retransmitted
    i, j = frames.index(sent[3]), frames.index(sent[4])
    frames[i], frames[j] = frames[j], frames[i]  # segments 3 and 4 out of order
    path = closed(t, tmp_path)
    frame_of = {k: frames.index(f) + 1 for k, f in enumerate(sent) if k != 15}

    events, delivered, _ = decode(path)
    every, all_chunks = every_byte(monkeypatch, path)
    assert events == every
    # passed over: in order inside a body, short of the segment with its last byte (11, 22); delivered as before:
    # the out-of-order 4 and the 3 that fills its hole, the 16 after the gap (slow path); and the third record's
    # segments after its header (22) up to the FIN, caught up on at the connection's end
    passed_over = {1, 2, 5, 6, 7, 8, 9, 10, 12, 13, 14, 17, 18, 19, 20, 21, *range(23, 30)}
    assert {c.frame for c in all_chunks} - {c.frame for c in delivered} == {frame_of[k] for k in passed_over}
    third = 2 * (5 + BODY)  # where the third record starts
    names = [e.name for e in events if isinstance(e, DecodeAnomaly)]
    assert names == ["tls.gap", "tls.truncated_record"]
    cut = [e for e in events if isinstance(e, DecodeAnomaly)][-1]
    assert cut.detail == f"type 23 record: {len(pieces) * MSS - third - 5} of {BODY} bytes"
    (end,) = [e for e in events if isinstance(e, FlowEnd)]
    assert "t" in end.history  # the server's retransmission
    assert [a[0] for a in end.anomalies] == ["tcp.retransmission", "tcp.gap"]
