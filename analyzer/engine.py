"""Wiring: a capture file through the reader and the flow table.

``rebuild_flows`` is what ``ghostcap flows`` runs; later stages hang decoders on the same callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from analyzer.capture.linklayer import linktype_name
from analyzer.capture.reader import open_capture
from analyzer.events.base import StreamChunk, StreamGap
from analyzer.flows.table import Flow, FlowTable


@dataclass(slots=True)
class CaptureInfo:
    """What a report says about the capture itself."""

    file: str
    format: str
    compression: str | None
    link_types: list[str]
    packets: int
    truncated_packets: int
    first_ns: int | None
    last_ns: int | None
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FlowsResult:
    capture: CaptureInfo
    flows: list[Flow]
    orphan_icmp: list[tuple[int, str]]


def rebuild_flows(
    path: str | Path,
    on_chunk: Callable[[StreamChunk], None] | None = None,
    on_gap: Callable[[StreamGap], None] | None = None,
    on_datagram: Callable[[Flow, int, bytes, int, int], None] | None = None,
    table: FlowTable | None = None,
) -> FlowsResult:
    """Read ``path`` once and rebuild every flow; raises ``CaptureError`` if it is not a capture.

    Pass either the callbacks or a ``FlowTable`` built with them (whose ``flows`` list, indexed by flow id, the
    callbacks may then read while the capture is being read).
    """
    with open_capture(path) as cap:
        if table is None:
            table = FlowTable(on_chunk=on_chunk, on_gap=on_gap, on_datagram=on_datagram)
        flows = table.run(cap.ip_packets())
        st = cap.stats
        warnings = cap.warnings
        if table.truncated_headers:
            warnings.append(f"{table.truncated_headers} packets had a transport header cut short")
        seen = sorted(st.linktypes) or [i.linktype for i in cap.interfaces]
        info = CaptureInfo(
            file=cap.name,
            format=cap.format,
            compression=cap.compression,
            link_types=list(dict.fromkeys(linktype_name(lt) for lt in seen)),
            packets=st.packets,
            truncated_packets=st.truncated_packets,
            first_ns=st.first_ns,
            last_ns=st.last_ns,
            warnings=warnings,
        )
    return FlowsResult(info, flows, table.orphan_icmp)
