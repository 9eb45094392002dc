"""What a capture's report says about its key logs: malformed lines, a key log that matches nothing, sessions
whose keys are missing or wrong. One sentence each, for the capture's warnings."""

from __future__ import annotations

from collections.abc import Iterable

from analyzer.events.base import Event
from analyzer.events.tls import TlsClientHello, TlsSummary
from analyzer.tls.keylog import KeyLog


def keylog_warnings(keys: KeyLog, events: Iterable[Event], given: bool) -> list[str]:
    """``given``: the user named key-log files (so silence about them would be a surprise)."""
    out = [f"key log: {p}" for p in keys.problem_lines()]
    randoms: set[str] = set()
    summaries: list[TlsSummary] = []
    for e in events:
        if isinstance(e, TlsClientHello):
            randoms.add(e.random)
        elif isinstance(e, TlsSummary):
            summaries.append(e)
    sessions = len(keys)
    if not sessions:
        if given:
            out.append("the key log holds no usable secrets: TLS sessions stay encrypted")
        return out
    if not keys.used:
        if randoms:
            out.append(
                f"the key log holds secrets for {sessions} TLS session(s) but none of the {len(randoms)} in this "
                "capture (no client random matches): is it the key log of this capture? TLS stays encrypted"
            )
        return out
    failed = [s for s in summaries if s.decryption == "failed"]
    for s in failed[:5]:
        out.append(f"TLS decryption failed on flow {s.flow_id}: {s.decryption_detail}")
    if len(failed) > 5:
        out.append(f"TLS decryption failed on {len(failed) - 5} more flows")
    missing = sum(1 for s in summaries if s.decryption == "no_keys")
    if missing:
        out.append(f"{missing} of {len(summaries)} TLS connections have no secrets in the key log and stay encrypted")
    unsupported = {s.decryption_detail for s in summaries if s.decryption == "unsupported"}
    out.extend(sorted(unsupported))
    return out
