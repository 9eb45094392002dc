"""What a capture's report says about its key logs: malformed lines, a key log that matches nothing, sessions
whose keys are missing, wrong, or came in a Decryption Secrets Block after the session set up its keys. One
sentence each, for the capture's warnings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from analyzer.budgets import LATE_SECRETS_SESSIONS
from analyzer.events.base import Event
from analyzer.events.tls import TlsClientHello, TlsSummary
from analyzer.tls.keylog import LATE_SECRETS, KeyLog


def random_tag(random: str) -> int:
    """What ``TlsTally.randoms`` keeps of a ClientHello's client random (hex): its last 8 bytes as an int, 36 bytes
    where the 64-character text took 113 (a gateway's unrelated TLS: 4,500 sessions an hour in each of two
    partitions). Only their number is read; two of a capture's sessions share 64 random bits with odds about
    sessions² / 2⁶⁵."""
    return int(random[-16:] or "0", 16)


class TlsTally:
    """What the key-log warnings need of a capture's TLS events, taken in as they come (``add``): the client
    randoms seen (``random_tag``) and each connection's decryption status (``TlsSummary``), without keeping the
    events. ``late``: connections not decrypted because their secrets came after their key setup (not "no secrets
    in the key log")."""

    FAILED_NAMED = 5

    def __init__(self) -> None:
        self.randoms: set[int] = set()
        self.statuses: Counter[str] = Counter()
        self.failed: list[tuple[int | None, str | None]] = []
        self.unsupported: set[str | None] = set()
        self.late = 0

    def add(self, e: Event) -> None:
        if isinstance(e, TlsClientHello):
            self.randoms.add(random_tag(e.random))
        elif isinstance(e, TlsSummary):
            self.statuses[e.decryption or ""] += 1
            if e.decryption == "failed":
                self.failed.append((e.flow_id, e.decryption_detail))
                del self.failed[self.FAILED_NAMED + 1 :]
            elif e.decryption == "unsupported":
                self.unsupported.add(e.decryption_detail)
            elif e.decryption == "no_keys" and LATE_SECRETS in (e.decryption_detail or ""):
                self.late += 1


def keylog_warnings(keys: KeyLog, events: Iterable[Event] | TlsTally, given: bool) -> list[str]:
    """``given``: the user named key-log files (so silence about them would be a surprise)."""
    out = [f"key log: {p}" for p in keys.problem_lines()]
    tally = events if isinstance(events, TlsTally) else TlsTally()
    if not isinstance(events, TlsTally):
        for e in events:
            tally.add(e)
    randoms = tally.randoms
    sessions = len(keys)
    if not sessions:
        if given:
            out.append("the key log holds no usable secrets: TLS sessions stay encrypted")
        return out
    late = keys.late()
    if late:
        out.append(
            f"{late} TLS session(s) not wholly decrypted: secrets for them came in a Decryption Secrets Block after "
            "their key setup (ghostcap reads secrets in capture order; put the block before the sessions, e.g. "
            "editcap --inject-secrets)"
        )
    if keys.missed_dropped:
        out.append(
            f"{keys.missed_dropped} more TLS session(s) set up their keys before any secret for them was known and "
            f"were not remembered (budget LATE_SECRETS_SESSIONS = {LATE_SECRETS_SESSIONS}): whether a Decryption "
            "Secrets Block brought their secrets later was not checked"
        )
    if not keys.used:
        if randoms and not late:  # secrets that came late match this capture
            out.append(
                f"the key log holds secrets for {sessions} TLS session(s) but none of the {len(randoms)} in this "
                "capture (no client random matches): is it the key log of this capture? TLS stays encrypted"
            )
        return out
    failed_total = tally.statuses["failed"]
    for flow_id, detail in tally.failed[: TlsTally.FAILED_NAMED]:
        out.append(f"TLS decryption failed on flow {flow_id}: {detail}")
    if failed_total > TlsTally.FAILED_NAMED:
        out.append(f"TLS decryption failed on {failed_total - TlsTally.FAILED_NAMED} more flows")
    missing = tally.statuses["no_keys"] - tally.late
    if missing:
        total = sum(tally.statuses.values())
        out.append(f"{missing} of {total} TLS connections have no secrets in the key log and stay encrypted")
    out.extend(sorted(d for d in tally.unsupported if d is not None))
    return out
