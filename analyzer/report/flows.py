"""``ghostcap flows`` output: the rebuilt flows as JSON-ready data and as a text table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from analyzer import __version__
from analyzer.engine import CaptureInfo, FlowsResult
from analyzer.flows.table import Flow
from analyzer.jsontext import dumps
from analyzer.report.times import iso_utc

FLOWS_SCHEMA = "ghostcap.flows/1"


def capture_dict(info: CaptureInfo) -> dict[str, Any]:
    return {
        "file": info.file,
        "format": info.format,
        "compression": info.compression,
        "link_types": info.link_types,
        "packets": info.packets,
        "first": iso_utc(info.first_ns),
        "last": iso_utc(info.last_ns),
        "truncated_packets": info.truncated_packets,
        "warnings": info.warnings,
    }


def flow_dict(flow: Flow, tls: dict[int, tuple[str, str]] | None = None) -> dict[str, Any]:
    """One flow; with ``tls`` (``FlowsResult.tls``, from ``--keylog``) also ``tls_decryption`` for TLS flows.
    ``stream`` is Wireshark's ``tcp.stream``/``udp.stream`` index of the flow (None for other protocols)."""
    doc = {
        "id": flow.id,
        "stream": flow.stream,
        "proto": flow.proto_name,
        "client": {"address": flow.client.address, "port": flow.client.port},
        "server": {"address": flow.server.address, "port": flow.server.port},
        "first_frame": flow.first_frame,
        "last_frame": flow.last_frame,
        "first": iso_utc(flow.first_ns),
        "last": iso_utc(flow.last_ns),
        "packets": {"to_server": flow.packets[0], "to_client": flow.packets[1]},
        "bytes": {"to_server": flow.payload_bytes[0], "to_client": flow.payload_bytes[1]},
        "stream_bytes": {"to_server": flow.stream_bytes(0), "to_client": flow.stream_bytes(1)},
        "gap_bytes": {"to_server": flow.gap_bytes(0), "to_client": flow.gap_bytes(1)},
        "state": flow.state,
        "history": flow.history,
        "anomalies": [
            {
                "name": a.name,
                "frame": a.frame,
                "direction": _direction(a.direction),
                "detail": a.detail,
                "count": a.count,
            }
            for a in flow.anomalies
        ],
    }
    if tls is not None and flow.id in tls:
        status, detail = tls[flow.id]
        doc["tls_decryption"] = {"status": status, "detail": detail}
    return doc


def _direction(d: int | None) -> str | None:
    return None if d is None else ("to_server" if d == 0 else "to_client")


def flows_dict(result: FlowsResult, with_flows: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": FLOWS_SCHEMA,
        "tool": {"name": "ghostcap", "version": __version__},
        "capture": capture_dict(result.capture),
        "unmatched_icmp_errors": [{"frame": fr, "what": what} for fr, what in result.orphan_icmp],
    }
    if with_flows:
        doc["flows"] = [flow_dict(f, result.tls) for f in result.flows]
    return doc


def flows_json(result: FlowsResult) -> Iterator[str]:
    """The JSON document of ``flows_dict`` as text pieces: compact, one flow per line.

    Compact output keeps ``json`` on its C encoder (indenting falls back to pure Python, several times slower),
    and a line per flow stays readable and easy to grep.
    """
    doc = flows_dict(result, with_flows=False)
    head = dumps(doc, separators=(",", ":"))
    yield head[:-1] + ',"flows":['
    for i, flow in enumerate(result.flows):
        yield ("\n" if i == 0 else ",\n") + dumps(flow_dict(flow, result.tls), separators=(",", ":"))
    yield "\n]}\n"


def flows_ndjson(result: FlowsResult) -> Iterator[str]:
    """One JSON object per line, for scripts: each flow (``flow_dict``), in flow order; the capture's own facts are
    in ``--format json``."""
    for flow in result.flows:
        yield dumps(flow_dict(flow, result.tls), separators=(",", ":")) + "\n"


def flows_table(result: FlowsResult) -> str:
    """A fixed-width table, one flow a line, anomalies named after the state."""
    c = result.capture
    head = (
        f"{c.file}: {c.format}{' (' + c.compression + ')' if c.compression else ''}, "
        f"{', '.join(c.link_types) or 'no packets'}, {c.packets} packets, {len(result.flows)} flows"
    )
    rows = [
        (
            "#",
            "stream",
            "proto",
            "client",
            "server",
            "pkts c>s",
            "pkts s>c",
            "bytes c>s",
            "bytes s>c",
            "state",
            "history",
            *(("tls",) if result.tls is not None else ()),
            "anomalies",
        )
    ]
    for f in result.flows:
        anomalies = ", ".join(f"{a.name}@{a.frame}" + (f"x{a.count}" if a.count > 1 else "") for a in f.anomalies)
        rows.append(
            (
                str(f.id),
                "-" if f.stream is None else str(f.stream),
                f.proto_name,
                str(f.client),
                str(f.server),
                str(f.packets[0]),
                str(f.packets[1]),
                str(f.payload_bytes[0]),
                str(f.payload_bytes[1]),
                f.state,
                f.history or "-",
                *((result.tls.get(f.id, ("-", ""))[0],) if result.tls is not None else ()),
                anomalies or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = [head, ""]
    for r in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[-1])
    for frame, what in result.orphan_icmp:
        lines.append(f"ICMP error in frame {frame} quotes no flow of this capture: {what}")
    return "\n".join(line.rstrip() for line in lines) + "\n"
