"""The charger's SYNs were never answered (no SYN-ACK, no RST, no ICMP): something drops them.

Field effect: each connection attempt hangs until the charger's timeout. A single SYN at the very end of the
capture is undecided (verdict inconclusive).
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import flow_events
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule


@rule("tcp.syn_timeout")
def tcp_syn_timeout(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for fid in ch.flow_ids:
        evs = flow_events(ch, fid)
        syns = [e for e in evs if e.kind == "tcp.syn"]
        if not syns or any(e.direction == 1 or e.kind == "tcp.icmp_error" for e in evs):
            continue
        if any(e.kind in ("tcp.syn_ack", "tcp.rst") for e in evs):
            continue
        fl = ctx.timeline.flows[fid]
        span = (syns[-1].ts_ns - syns[0].ts_ns) / 1e9
        waited = ctx.waited_s(syns[0].ts_ns)
        undecided = len(syns) < 2 and waited < ctx.settings.syn_timeout_s
        yield Finding(
            fault="tcp.syn_timeout",
            frame=syns[0].frame,
            ts_ns=syns[0].ts_ns,
            summary=f"The charger's {len(syns)} SYN{'s' if len(syns) > 1 else ''} to the CSMS at {fl.server} "
            f"went unanswered over {max(span, waited):.1f} s: packets to the CSMS are dropped.",
            evidence=tuple(Evidence(s.frame, f"SYN attempt {s.attempt} → {s.dst}, no answer") for s in syns[:6]),
            undecided=undecided,
            certain_with="a longer capture (it ended before the SYN could be retransmitted)" if undecided else None,
            flow_id=fid,
        )
