"""A router or host answered the charger's connection with ICMP destination unreachable.

Field effect: the charger cannot reach the CSMS network at all.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import flow_events
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule


@rule("tcp.unreachable")
def tcp_unreachable(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for fid in ch.flow_ids:
        evs = flow_events(ch, fid)
        icmp = next((e for e in evs if e.kind == "tcp.icmp_error" and e.unreachable), None)
        if icmp is None or any(e.kind == "tcp.syn_ack" and e.frame < icmp.frame for e in evs):
            continue
        fl = ctx.timeline.flows[fid]
        syn = next((e for e in evs if e.kind == "tcp.syn"), None)
        ev = [Evidence(syn.frame, f"SYN {syn.src} → {syn.dst}")] if syn else []
        ev.append(Evidence(icmp.frame, f"ICMP {icmp.detail}"))
        yield Finding(
            fault="tcp.unreachable",
            frame=icmp.frame,
            ts_ns=icmp.ts_ns,
            summary=f"The CSMS at {fl.server} is unreachable from the charger (ICMP {icmp.detail}).",
            evidence=tuple(ev),
            flow_id=fid,
        )
