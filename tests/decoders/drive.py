"""Run one decoder over a real capture (for decoder tests; the product wiring lives in analyzer.engine)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from analyzer.decoders.base import DatagramDecoder, DecodeError, StreamDecoder
from analyzer.engine import rebuild_flows
from analyzer.events.base import DecodeAnomaly, Event, StreamChunk, StreamGap
from analyzer.flows.table import Flow, FlowTable

# (flow_id, first bytes seen on the connection, client port, server port) -> decoder, or None to skip the flow
StreamFactory = Callable[[int, bytes, int, int], "StreamDecoder | None"]


def run_stream_decoder(path: str | Path, factory: StreamFactory) -> list[Event]:
    """Feed every TCP flow of ``path`` to a decoder made by ``factory``; events in the order they were emitted."""
    events: list[Event] = []
    decoders: dict[int, StreamDecoder | None] = {}
    dead: set[int] = set()

    def guarded(fid: int, call: Callable[[], list[Event]], frame: int, ts: int) -> None:
        if fid in dead:
            return
        try:
            events.extend(call())
        except DecodeError as e:
            dead.add(fid)
            events.append(
                DecodeAnomaly(ts_ns=ts, frame=frame, flow_id=fid, decoder="?", name="parse_error", detail=str(e))
            )

    def on_chunk(c: StreamChunk) -> None:
        if c.flow_id not in decoders:
            flow = table.flows[c.flow_id]
            decoders[c.flow_id] = factory(c.flow_id, c.data, flow.client.port, flow.server.port)
        d = decoders[c.flow_id]
        if d is not None:
            guarded(c.flow_id, lambda: d.feed(c), c.at_frame, c.ts_ns)

    def on_gap(g: StreamGap) -> None:
        d = decoders.get(g.flow_id)
        if d is not None:
            guarded(g.flow_id, lambda: d.gap(g), g.frame, g.ts_ns)

    table = FlowTable(on_chunk=on_chunk, on_gap=on_gap)
    result = rebuild_flows(path, table=table)
    last = result.capture
    for fid, d in decoders.items():
        if d is not None:
            guarded(fid, lambda d=d: d.close(0, last.last_ns or 0), 0, last.last_ns or 0)
    return events


def run_datagram_decoder(
    path: str | Path, decoder: DatagramDecoder, ports: frozenset[int] = frozenset({53})
) -> list[Event]:
    """Feed every UDP datagram of ``path`` whose client or server port is in ``ports`` to ``decoder``."""
    events: list[Event] = []

    def on_datagram(flow: Flow, d: int, payload: bytes, frame: int, ts: int) -> None:
        if flow.client.port in ports or flow.server.port in ports:
            events.extend(decoder.datagram(flow.id, d, payload, frame, ts))

    result = rebuild_flows(path, on_datagram=on_datagram)
    events.extend(decoder.close(result.capture.packets, result.capture.last_ns or 0))
    return events
