"""The charger's DNS queries for the CSMS's name were never answered.

Field effect: the charger retries the lookup and stays offline. When the capture ends before a resolver timeout
could expire, the finding is undecided (verdict inconclusive).
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import relevant_lookups
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule


@rule("dns.no_response")
def dns_no_response(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for lk in relevant_lookups(ch):
        if lk.responses or not lk.unanswered:
            continue
        first = min(lk.unanswered, key=lambda u: u.frame)
        tries = sum(u.attempts for u in lk.unanswered)
        waited = ctx.waited_s(first.ts_ns)
        undecided = tries < 2 and waited < ctx.settings.dns_timeout_s  # a retry means a timeout already expired
        ev = tuple(Evidence(q.frame, f"query {q.qname} {q.qtype} (id {q.id}), no response") for q in lk.queries[:6])
        yield Finding(
            fault="dns.no_response",
            frame=first.frame,
            ts_ns=first.ts_ns,
            summary=(
                f"{tries} DNS quer{'y' if tries == 1 else 'ies'} for {lk.qname} got no response "
                f"in {waited:.1f} s: the charger cannot reach its resolver."
            ),
            evidence=ev,
            undecided=undecided,
            confidence="high" if tries > 1 else "medium",
            certain_with="a longer capture (the capture ended before a resolver timeout)" if undecided else None,
            flow_id=first.flow_id,
        )
