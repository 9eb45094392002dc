"""Differential tests: the reader and the reassembler against tshark on every capture we have.

Documented differences, encoded here rather than hidden:
- where bytes of a TCP direction are missing from the capture, ghostcap records a gap (``StreamGap``) while
  ``tshark -z follow,tcp,raw`` writes the text ``[N bytes missing in capture file]`` followed by a NUL byte in
  the stream at that place; the comparison renders our gaps the same way;
- bytes cut by the snaplen appear in neither (tshark's follow skips them; ghostcap records a SNAPLEN gap).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.capture.reader import open_capture
from analyzer.engine import rebuild_flows
from analyzer.events.base import GapReason, StreamChunk, StreamGap
from tests import tshark_oracle
from tests.conftest import EXTERNAL, capture_files, capture_id

CAPTURES = capture_files()


def test_the_external_captures_are_there() -> None:
    assert EXTERNAL.is_dir(), f"{EXTERNAL} is missing: the tests read the shared captures from there"
    assert len([p for p in CAPTURES if p.is_relative_to(EXTERNAL)]) >= 90


@pytest.mark.parametrize("path", CAPTURES, ids=capture_id)
def test_frames_timestamps_and_stream_numbers_match_tshark(path: Path) -> None:
    """Frames and their timestamps; and every flow's ``stream`` is tshark's tcp.stream / udp.stream of its first
    frame (``analyzer.flows.streams``): the number a display filter such as ``tcp.stream eq 3`` needs."""
    theirs = tshark_oracle.frames(path)
    with open_capture(path) as cap:
        ours = [ts for ts, _lt, _data, _orig in cap.reader.records()]
    assert ours == [ts for ts, _tcp, _udp in theirs]
    for flow in rebuild_flows(path).flows:
        _ts, tcp, udp = theirs[flow.first_frame - 1]
        want = {"tcp": tcp, "udp": udp}.get(flow.proto_name)
        assert flow.stream == want, f"flow {flow.id} ({flow.proto_name}, frame {flow.first_frame})"


def render_streams(path: Path) -> tuple[dict[tuple[int, str, int], bytes], dict[int, int]]:
    """Our reassembled TCP streams, keyed (flow id, sender address, sender port), gaps rendered as tshark does."""
    pieces: dict[tuple[int, int], list[tuple[int, bytes]]] = {}

    def on_chunk(c: StreamChunk) -> None:
        pieces.setdefault((c.flow_id, c.direction), []).append((c.offset, c.data))

    def on_gap(g: StreamGap) -> None:
        if g.reason == GapReason.NOT_CAPTURED:
            marker = f"[{g.size} bytes missing in capture file]".encode() + b"\0"
            pieces.setdefault((g.flow_id, g.direction), []).append((g.offset, marker))

    result = rebuild_flows(path, on_chunk=on_chunk, on_gap=on_gap)
    streams: dict[tuple[int, str, int], bytes] = {}
    first_frames: dict[int, int] = {}
    for flow in result.flows:
        if flow.proto_name != "tcp":
            continue
        first_frames[flow.first_frame] = flow.id
        for d, ep in enumerate((flow.client, flow.server)):
            parts = sorted(pieces.get((flow.id, d), []), key=lambda p: p[0])
            while parts and parts[-1][1].endswith(b"missing in capture file]\0"):
                parts.pop()  # a gap at the very end: tshark's follow has nothing after it to mark
            streams[(flow.id, ep.address, ep.port)] = b"".join(p[1] for p in parts)
    return streams, first_frames


@pytest.mark.parametrize("path", CAPTURES, ids=capture_id)
def test_tcp_streams_match_tshark_follow(path: Path) -> None:
    ours, by_first_frame = render_streams(path)
    theirs = tshark_oracle.tcp_streams(path)
    assert len(by_first_frame) == len(theirs), "a different number of TCP connections"
    for stream in theirs.values():
        assert stream.first_frame in by_first_frame, f"tcp.stream {stream.index} has no flow starting there"
        fid = by_first_frame[stream.first_frame]
        for node, (addr, port) in enumerate(stream.nodes):
            got = ours[(fid, addr, port)]
            want = bytes(stream.data[node])
            assert got == want, f"tcp.stream {stream.index} from {addr}:{port}: {len(got)} vs {len(want)} bytes"
