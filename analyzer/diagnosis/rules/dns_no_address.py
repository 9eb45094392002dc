"""The CSMS's name exists (NOERROR) but no lookup returned an A or AAAA record.

Field effect: the charger has no address to connect to.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import connected_after, relevant_lookups
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule


@rule("dns.no_address")
def dns_no_address(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for lk in relevant_lookups(ch):
        empty = [r for r in lk.responses if r.rcode == 0]
        if not empty or any(r.rcode in (2, 3, 5) for r in lk.responses):
            continue
        if any(getattr(r, "incomplete", False) for r in empty):
            continue  # the answers were not decoded (cut by the snaplen, malformed): no evidence of no address
        if connected_after(ch, min(r.frame for r in empty)):
            continue  # the charger reached the CSMS anyway: the lookup did not block it
        r = empty[0]
        types = "/".join(sorted({x.qtype for x in empty}))
        yield Finding(
            fault="dns.no_address",
            frame=r.frame,
            ts_ns=r.ts_ns,
            summary=f"The CSMS host {lk.qname} exists but has no address record ({types} answered NOERROR "
            f"with no address): the charger cannot connect.",
            evidence=tuple(
                Evidence(x.frame, f"response NOERROR for {x.qname} {x.qtype}: {len(x.answers)} answers, no address")
                for x in empty
            ),
            flow_id=r.flow_id,
        )
