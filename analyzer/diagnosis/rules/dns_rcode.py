"""The resolver answered the CSMS's name with an error: NXDOMAIN (3), SERVFAIL (2) or REFUSED (5).

Field effect: the charger never learns the CSMS address and never opens a connection; the CSMS sees nothing.
A name that resolved in another lookup (A vs AAAA, a retry) is not a failure. An NXDOMAIN for a name one or two
characters from a CSMS name that other chargers in the capture use is a typo in this charger's CSMS URL: the
evidence names it, and the charger's configuration is what needs fixing.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger, edit_distance, near_name
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import relevant_lookups
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule

RCODE_FAULTS = {3: "dns.nxdomain", 2: "dns.servfail", 5: "dns.refused"}


@rule(*RCODE_FAULTS.values())
def dns_rcode(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for lk in relevant_lookups(ch):
        bad = next((r for r in lk.responses if r.rcode in RCODE_FAULTS), None)
        if bad is None:
            continue
        ev = [Evidence(q.frame, f"query {q.qname} {q.qtype} (id {q.id})") for q in lk.queries[:3]]
        ev.append(Evidence(bad.frame, f"response {bad.rcode_name} for {bad.qname} {bad.qtype}"))
        typo = near_name(lk.qname, ch.csms_names) if bad.rcode == 3 else None
        summary = (
            f"DNS lookup of the CSMS host {bad.qname} failed with {bad.rcode_name}: "
            "the charger cannot reach its backend."
        )
        if typo is not None:
            ev.append(
                Evidence(
                    bad.frame,
                    f"{lk.qname} is {edit_distance(lk.qname, typo)} character(s) from {typo}, "
                    "the CSMS name other chargers in this capture use",
                )
            )
            summary = (
                f"DNS lookup of {bad.qname} failed with NXDOMAIN: most likely a typo in the charger's CSMS URL, "
                f"since other chargers here reach the CSMS as {typo}."
            )
        yield Finding(
            fault=RCODE_FAULTS[bad.rcode],
            frame=bad.frame,
            ts_ns=bad.ts_ns,
            summary=summary,
            evidence=tuple(ev),
            fix_side="charger" if typo is not None else None,
            fix_reason=f"other chargers resolve {typo}" if typo is not None else None,
            flow_id=bad.flow_id,
        )
