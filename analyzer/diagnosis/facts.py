"""Facts several rules read, computed from one charger's events (no judging beyond what the names say)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyzer.diagnosis.chargers import Charger, closed_silently, near_name, tls_to_plain_port
from analyzer.diagnosis.context import Context
from analyzer.events.base import Event
from analyzer.timeline.timeline import group_by_flow


class CharFacts:
    """Facts of one charger's ``events`` found once for every rule (``Charger.grouped``): its events by flow,
    the kinds of each flow's events, its lookups by name. Made again when ``events`` changes (another list, or
    its length)."""

    __slots__ = ("by_flow", "events", "kinds", "length", "lookups")

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.length = len(events)
        self.by_flow = group_by_flow(events)
        self.kinds: dict[int | None, frozenset[str]] = {}
        self.lookups: dict[str, NameLookup] | None = None


def facts_of(ch: Charger) -> CharFacts:
    facts = ch.grouped
    if facts is None or facts.events is not ch.events or facts.length != len(ch.events):
        facts = ch.grouped = CharFacts(ch.events)
    return facts


def flow_events(ch: Charger, fid: int) -> list[Event]:
    """The charger's events of flow ``fid``, in capture order (a new list). Rules ask for each of a charger's
    flows in turn: its events are grouped by flow once (again if they changed), not scanned per flow (a charger
    reconnecting all day has thousands of flows)."""
    return list(facts_of(ch).by_flow.get(fid, ()))


def flow_kinds(ch: Charger, fid: int) -> frozenset[str]:
    """The kinds of the charger's events of flow ``fid`` (``"tls.client_hello"``...): what a rule asks before it
    walks a flow's events (is there a ClientHello?), found once per flow."""
    facts = facts_of(ch)
    kinds = facts.kinds.get(fid)
    if kinds is None:
        kinds = facts.kinds[fid] = frozenset(e.kind for e in facts.by_flow.get(fid, ()))
    return kinds


@dataclass(slots=True)
class NameLookup:
    """Every DNS transaction of one charger for one name."""

    qname: str
    queries: list[Any] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)
    unanswered: list[Any] = field(default_factory=list)

    @property
    def resolved(self) -> bool:
        return any(r.addresses for r in self.responses)


def lookups(ch: Charger) -> dict[str, NameLookup]:
    """The charger's DNS transactions by name (lower case), in the order first asked: found once (the rules and
    the attempts all ask), so read, never changed."""
    facts = facts_of(ch)
    if facts.lookups is None:
        out: dict[str, NameLookup] = {}
        for e in ch.events:
            kind = e.kind
            if kind in ("dns.query", "dns.response", "dns.unanswered"):
                name = e.qname.lower()  # type: ignore[attr-defined]
                lk = out.get(name)
                if lk is None:
                    lk = out[name] = NameLookup(name)
                if kind == "dns.query":
                    lk.queries.append(e)
                elif kind == "dns.response":
                    lk.responses.append(e)
                else:
                    lk.unanswered.append(e)
        facts.lookups = out
    return facts.lookups


def relevant_lookups(ch: Charger) -> list[NameLookup]:
    """Names whose failure matters: the CSMS's name; for a charger that never opened a connection, the CSMS names
    the capture shows and names one or two characters from them (a typo), or any name when the capture shows no
    CSMS name at all (a capture taken at one charger). A name that resolved in any lookup is not a failure."""

    def matters(name: str) -> bool:
        if ch.flow_ids:
            return ch.csms_host is not None and name == ch.csms_host
        if not ch.csms_names:
            return True
        return name in ch.csms_names or near_name(name, ch.csms_names) is not None

    return [lk for lk in lookups(ch).values() if not lk.resolved and matters(lk.qname)]


def connected_after(ch: Charger, frame: int) -> bool:
    """One of the charger's connections to the CSMS was answered (SYN-ACK) after ``frame``."""
    return any(e.kind == "tcp.syn_ack" and e.frame > frame for e in ch.events)


def retransmissions(end: Any) -> tuple[int, int] | None:
    """``(count, frame of the first)`` of a ``tcp.flow_end``'s retransmissions, or None (also for no end)."""
    retx = next((a for a in getattr(end, "anomalies", ()) if a[0] == "tcp.retransmission"), None)
    return None if retx is None else (retx[1], retx[2])


def ends(events: list[Event]) -> list[Any]:
    """FIN and RST packets of a flow, in order."""
    return [e for e in events if e.kind in ("tcp.fin", "tcp.rst")]


def upgraded(events: list[Event]) -> Any:
    """The 101 response of a flow, or None."""
    return next((e for e in events if e.kind == "http.response" and e.status == 101), None)  # type: ignore[attr-defined]


def session_works(ch: Charger) -> bool:
    """Positive evidence of a working backend session: OCPP answered, or a WebSocket that carried messages both
    ways. (A TLS session that carried encrypted data both ways is not: the OCPP inside may be failing; see
    ``opaque_tls_session``.)"""
    if any(e.kind == "ocpp.call_result" for e in ch.events):
        return True
    dirs = {e.direction for e in ch.events if e.kind == "websocket.message"}
    return len(dirs) == 2


def opaque_tls_session(ch: Charger) -> Any:
    """The ``tls.summary`` of a TLS session that carried application data both ways without being decrypted
    (no key log, or none for it), or None."""
    for e in ch.events:
        decrypted = getattr(e, "decryption", None) in ("decrypted", "partial")
        if e.kind == "tls.summary" and getattr(e, "app_data_both_ways", False) and not decrypted:
            return e
    return None


def endpoint_protocols(ctx: Context) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
    """Server endpoints (address, port) of the capture that serve plain HTTP/WebSocket, and those that serve TLS
    (a ServerHello), from every connection in the timeline."""
    if "endpoints" not in ctx.cache:
        plain: set[tuple[str, int]] = set()
        tls: set[tuple[str, int]] = set()
        for fl in ctx.timeline.flows.values():
            if fl.proto != "tcp":
                continue
            kinds = ctx.timeline.kinds_of(fl.id)
            end = (fl.server_addr, fl.server_port)
            if "tls.server_hello" in kinds:
                tls.add(end)
            elif "http.response" in kinds and any(
                e.kind == "http.response" and getattr(e, "status", 0) == 101 for e in ctx.timeline.for_flow(fl.id)
            ):
                plain.add(end)
        ctx.cache["endpoints"] = (plain, tls)
    return ctx.cache["endpoints"]  # type: ignore[no-any-return]


def scheme_mismatch(ch: Charger, ctx: Context, fid: int) -> tuple[str, Any, bool] | None:
    """``("tls_to_plain", answer, seen)`` when connection ``fid`` sent a TLS ClientHello to a port that serves
    plain WebSocket (its server answered without a ServerHello), ``("plain_to_tls", answer, seen)`` when it sent a
    plain HTTP upgrade to a port that serves TLS; ``answer`` is the server's answer to the wrong-protocol bytes
    (HTTP response, alert, FIN or RST); ``seen``: the capture shows the endpoint's real protocol (other connections
    to it, or the answer's bytes) rather than only a server that closed without a byte. Else None."""
    evs = flow_events(ch, fid)
    kinds = flow_kinds(ch, fid)  # what the flow holds, asked first: most flows are neither case
    fl = ctx.timeline.flows[fid]
    plain, tls = endpoint_protocols(ctx)
    end = (fl.server_addr, fl.server_port)

    def seen() -> bool:
        return end in plain or end in tls or any(e.direction == 1 and e.layer in ("tls", "http") for e in evs)

    if "tls.client_hello" in kinds:  # (``tls_to_plain_port`` needs one, and no ServerHello)
        ans = tls_to_plain_port(evs, end in plain) if "tls.server_hello" not in kinds else None
        if ans is not None:
            return "tls_to_plain", ans, seen()
        return None
    if "http.request" not in kinds or "http.response" in kinds:
        return None
    req = next(e for e in evs if e.kind == "http.request")
    tls_answer = any(e.direction == 1 and (e.kind.startswith("tls.") or "tls" in getattr(e, "name", "")) for e in evs)
    if not (tls_answer or end in tls or closed_silently(evs, req.frame)):
        return None
    answer = next(
        (
            e
            for e in evs
            if e.direction == 1
            and e.frame > req.frame
            and (e.kind in ("tls.alert", "tcp.fin", "tcp.rst", "decode.anomaly") or e.kind.startswith("tls."))
        ),
        None,
    )
    return ("plain_to_tls", answer, seen()) if answer is not None else None
