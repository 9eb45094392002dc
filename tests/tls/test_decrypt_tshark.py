"""Decryption agrees with tshark: every key-logged public capture decrypts to the application data tshark's
``follow,tls,raw`` shows with the same key log (or, for the DSB pcapngs, with the keys embedded in the file).

Per TCP connection and direction the decrypted bytes must be equal. Connections whose cipher suite ghostcap does
not decrypt (export and RC2/DES40 suites in the 2013 all-ciphers capture) must say so in their summary instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.decoders.detect import stream_decoder
from analyzer.engine import rebuild_flows
from analyzer.events.base import StreamChunk
from analyzer.events.tls import TlsSummary
from analyzer.flows.table import FlowTable
from analyzer.tls.keylog import KeyLog
from tests import tshark_oracle

EXTERNAL = Path(__file__).resolve().parents[2].parent / "shared" / "captures-external"
KEYLOGGED = sorted((EXTERNAL / "tls-keylog").glob("*.keys.txt"))
DSB = sorted((EXTERNAL / "derived").glob("*.dsb.pcapng"))


def _capture_for(keys: Path) -> Path:
    stem = keys.name.removesuffix(".keys.txt")
    found = [p for p in keys.parent.iterdir() if p.name.startswith(stem + ".") and p != keys]
    assert len(found) == 1, found
    return found[0]


CASES = [pytest.param(_capture_for(k), k, id=k.name.removesuffix(".keys.txt")) for k in KEYLOGGED] + [
    pytest.param(p, None, id=p.name) for p in DSB
]


class _Recorder:
    """A stand-in for the inner HTTP decoder: keeps every decrypted byte, per direction."""

    name = "recorder"

    def __init__(self) -> None:
        self.data = [bytearray(), bytearray()]

    def feed(self, chunk: StreamChunk) -> list:
        assert chunk.offset == len(self.data[chunk.direction])
        self.data[chunk.direction] += chunk.data
        return []

    def gap(self, gap: object) -> list:
        return []

    def close(self, frame: int, ts_ns: int) -> list:
        return []


def ghostcap_streams(capture: Path, keylog: Path | None) -> tuple[dict, list[TlsSummary]]:
    """(client, server) → [client bytes, server bytes] decrypted, and every TLS summary."""
    keys = KeyLog.from_files([keylog] if keylog else [])
    decoders: dict[int, object] = {}
    recorders: dict[int, _Recorder] = {}
    summaries: list[TlsSummary] = []
    table: FlowTable

    def chunk(c: StreamChunk) -> None:
        if c.flow_id not in decoders:
            flow = table.flows[c.flow_id]
            dec = stream_decoder(c.flow_id, c.data, c.direction, flow.client.port, flow.server.port, keys)
            if dec is not None and dec.name == "tls":
                rec = recorders[c.flow_id] = _Recorder()
                dec._inner_factory = lambda data, d: rec
            decoders[c.flow_id] = dec
        dec = decoders[c.flow_id]
        if dec is not None:
            dec.feed(c)

    def finish(flow: object) -> None:
        dec = decoders.get(flow.id)
        if dec is not None:
            summaries.extend(e for e in dec.close(flow.last_frame, flow.last_ns) if isinstance(e, TlsSummary))

    table = FlowTable(on_chunk=chunk, on_finish=finish)
    result = rebuild_flows(capture, table=table, keys=keys)
    out = {}
    for f in result.flows:
        if f.id in recorders:
            out[f.first_frame] = (f.id, [bytes(b) for b in recorders[f.id].data])
    return out, summaries


@pytest.mark.parametrize(("capture", "keylog"), CASES)
def test_decrypted_application_data_equals_tsharks(capture: Path, keylog: Path | None) -> None:
    """Connections are matched by their first frame. tshark 4.0's TLS follow output labels its nodes unreliably
    (the server's address over the client's data), so each connection's non-empty directions are compared as a
    pair of byte strings."""
    mine, summaries = ghostcap_streams(capture, keylog)
    ports = sorted({capture_port for capture_port in _server_ports(capture)} | {443})
    theirs = tshark_oracle.tls_streams(capture, keylog, ports)
    unsupported = {s.flow_id for s in summaries if s.decryption == "unsupported"}
    compared = skipped = 0
    for stream in theirs.values():
        sent = sorted(bytes(d) for d in stream.data if d)
        if not sent:
            continue
        assert stream.first_frame in mine, f"tshark decrypted stream {stream.index}; ghostcap has no TLS there"
        flow_id, data = mine[stream.first_frame]
        got = sorted(d for d in data if d)
        if not got and flow_id in unsupported:
            skipped += 1
            continue
        assert [len(d) for d in got] == [len(d) for d in sent], f"stream {stream.index}"
        assert got == sent, f"stream {stream.index}: decrypted bytes differ"
        compared += 1
    assert compared >= 1
    assert skipped == len(unsupported)
    problems = [(s.flow_id, s.decryption, s.decryption_detail) for s in summaries if s.decryption]
    assert all(p[1] in ("decrypted", "unsupported") for p in problems), problems


def _server_ports(capture: Path) -> set[int]:
    return {f.server.port for f in rebuild_flows(capture).flows if f.proto_name == "tcp"}
