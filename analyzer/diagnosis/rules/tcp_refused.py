"""The CSMS (or a firewall) answered the charger's SYN with RST: nothing listens on that port.

Field effect: the charger retries its connection forever; the CSMS shows it offline.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import flow_events
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule


@rule("tcp.refused")
def tcp_refused(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for fid in ch.flow_ids:
        evs = flow_events(ch, fid)
        syns = [e for e in evs if e.kind == "tcp.syn"]
        if not syns or any(e.kind == "tcp.syn_ack" for e in evs):
            continue
        rst = next((e for e in evs if e.kind == "tcp.rst" and e.direction == 1), None)
        if rst is None:
            continue
        fl = ctx.timeline.flows[fid]
        yield Finding(
            fault="tcp.refused",
            frame=rst.frame,
            ts_ns=rst.ts_ns,
            summary=f"The connection to the CSMS at {fl.server} was refused (SYN answered by RST): nothing "
            f"accepts connections on port {fl.server_port}.",
            evidence=(
                Evidence(syns[0].frame, f"SYN {syns[0].src} → {syns[0].dst}"),
                Evidence(rst.frame, f"RST from {rst.src}"),
            ),
            flow_id=fid,
        )
