"""A charger's attempts: each DNS lookup and each connection, how far it got and how it ended.

Stages, in the order a charger climbs them: ``dns`` (a lookup answered with an address), ``tcp`` (the handshake
completed, or the connection began before the capture), ``tls`` (the TLS handshake completed), ``http`` (the CSMS
answered the upgrade), ``websocket`` (101), ``ocpp`` (an OCPP message answered), ``boot_accepted``. The end names
who closed and how: ``refused``, ``no_answer``, ``unreachable``, ``aborted`` (a handshake cut), ``closed``
(a close frame, with its code), ``dropped`` (FIN without a close frame), ``reset``, ``half_open`` (data left
unacknowledged), ``open`` (still open when the capture ended), ``failed``/``unanswered`` for lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.facts import facts_of, retransmissions
from analyzer.diagnosis.facts import lookups as name_lookups
from analyzer.events.base import Event

STAGES = ("none", "dns", "tcp", "tls", "http", "websocket", "ocpp", "boot_accepted")
# how reports name each stage (and the layer of a finding, which is one of them)
STAGE_TITLES = {
    "dns": "DNS",
    "tcp": "TCP",
    "tls": "TLS",
    "http": "HTTP upgrade",
    "websocket": "WebSocket",
    "ocpp": "OCPP",
    "boot_accepted": "Boot accepted",
}


@dataclass(frozen=True, slots=True)
class Attempt:
    """One lookup or connection. ``flow_id`` (None for a lookup across flows); ``first_frame``/``last_frame``;
    ``reached`` (a stage); ``ended`` (see the module); ``by`` (``charger``, ``csms`` or None); ``code`` (close
    code); ``before_capture`` (the connection began before the capture: no SYN); ``works`` (the CSMS answered
    OCPP on it)."""

    kind: str  # lookup | connection
    flow_id: int | None
    first_frame: int
    last_frame: int
    first_ns: int
    reached: str
    ended: str
    by: str | None = None
    code: int | None = None
    before_capture: bool = False
    works: bool = False
    what: str = ""

    @property
    def rank(self) -> int:
        return STAGES.index(self.reached)

    def describe(self) -> str:
        who = f" by the {self.by}" if self.by else ""
        code = f" (code {self.code})" if self.code is not None else ""
        start = "began before the capture, " if self.before_capture else ""
        return f"{self.what or self.kind}: {start}reached {self.reached}, ended {self.ended}{who}{code}"


def _side(direction: int | None) -> str | None:
    return None if direction is None else ("charger" if direction == 0 else "csms")


def connection(ch: Charger, fid: int, events: list[Event], end_frame: int) -> Attempt:
    """The attempt of connection ``fid`` from its events."""
    kinds = {e.kind for e in events}
    first = events[0] if events else None
    syn = "tcp.syn" in kinds
    reached = "none"
    if "tcp.syn_ack" in kinds or not syn:
        reached = "tcp"
    if "tls.server_hello" in kinds and _tls_done(events):
        reached = "tls"
    resp = next((e for e in events if e.kind == "http.response"), None)
    if resp is not None:
        reached = "http"
        if getattr(resp, "status", 0) == 101:
            reached = "websocket"
    elif not syn and any(k.startswith(("websocket.message", "ocpp.")) for k in kinds):
        reached = "websocket"
    answered = any(e.kind in ("ocpp.call_result", "ocpp.call_error") and e.direction == 1 for e in events)
    works = any(e.kind == "ocpp.call_result" and e.direction == 1 for e in events)
    if answered and STAGES.index(reached) >= STAGES.index("websocket"):
        reached = "ocpp"
    if any(
        e.kind == "ocpp.call_result" and getattr(e, "action", None) == "BootNotification" and e.status == "Accepted"  # type: ignore[attr-defined]
        for e in events
    ):
        reached = "boot_accepted"
    ended, by, code = _end(events, end_frame)
    return Attempt(
        "connection",
        fid,
        first.frame if first else 0,
        events[-1].frame if events else 0,
        first.ts_ns if first else 0,
        reached,
        ended,
        by,
        code,
        before_capture=not syn,
        works=works,
        what=f"connection {_endpoints(events)}",
    )


def _endpoints(events: list[Event]) -> str:
    for e in events:
        if e.kind in ("tcp.syn", "tcp.flow_end"):
            src = getattr(e, "src", None) or getattr(e, "client", "")
            dst = getattr(e, "dst", None) or getattr(e, "server", "")
            return f"{src} → {dst}"
    return ""


def _tls_done(events: list[Event]) -> bool:
    s = next((e for e in events if e.kind == "tls.summary"), None)
    if s is not None and getattr(s, "app_data_both_ways", False):
        return True
    return any(e.kind in ("http.request", "websocket.message") for e in events)


def _end(events: list[Event], end_frame: int) -> tuple[str, str | None, int | None]:
    kinds = [e.kind for e in events]
    if "tcp.syn_ack" not in kinds and "tcp.syn" in kinds:
        icmp = next((e for e in events if e.kind == "tcp.icmp_error"), None)
        if icmp is not None:
            return "unreachable", None, None
        rst = next((e for e in events if e.kind == "tcp.rst" and e.direction == 1), None)
        return ("refused", "csms", None) if rst is not None else ("no_answer", None, None)
    close = next((e for e in events if e.kind == "websocket.close"), None)
    fin_rst = [e for e in events if e.kind in ("tcp.fin", "tcp.rst")]
    end = next((e for e in events if e.kind == "tcp.flow_end"), None)
    retx = _stalled(end)
    if close is not None:
        return "closed", _side(close.direction), getattr(close, "code", None)
    if retx and fin_rst and fin_rst[0].kind == "tcp.rst" and fin_rst[0].direction == 0:
        return "half_open", "charger", None  # data left unacknowledged, then the charger's fresh stack resets it
    if fin_rst:
        f = fin_rst[0]
        if f.kind == "tcp.rst":
            return "reset", _side(f.direction), None
        handshake = any(e.kind == "tls.client_hello" for e in events) and not _tls_done(events)
        return ("aborted" if handshake else "dropped"), _side(f.direction), None
    if end is not None and end.frame < end_frame and getattr(end, "state", "") not in ("S1", "OTH", "S0"):
        return "dropped", None, None
    return "open", None, None


def _stalled(end: Any) -> bool:
    retx = retransmissions(end)
    return retx is not None and retx[0] >= 3


def lookups(ch: Charger) -> list[Attempt]:
    """One attempt per name the charger looked up: answered with an address, failed, or unanswered."""
    attempts = []
    for name, lk in name_lookups(ch).items():
        evs = sorted(lk.queries + lk.responses + lk.unanswered, key=lambda e: e.frame)
        failed = any(r.rcode != 0 for r in lk.responses)
        ended = "answered" if lk.resolved else "failed" if failed else "no_address" if lk.responses else "unanswered"
        attempts.append(
            Attempt(
                "lookup",
                evs[0].flow_id,
                evs[0].frame,
                evs[-1].frame,
                evs[0].ts_ns,
                "dns" if lk.resolved else "none",
                ended,
                what=f"lookup {name}",
            )
        )
    return attempts


def attempts_of(ch: Charger, end_frame: int) -> list[Attempt]:
    """Every lookup and connection of ``ch``, in capture order."""
    by_flow = facts_of(ch).by_flow
    out = lookups(ch)
    out += [connection(ch, fid, by_flow.get(fid, []), end_frame) for fid in ch.flow_ids if by_flow.get(fid)]
    return sorted(out, key=lambda a: a.first_frame)


def connected_at_end(attempts: list[Attempt]) -> bool | None:
    """True when a connection that reached the WebSocket is still open at the end of the capture; None when the
    only open connection is TLS the capture cannot see into (or nothing shows either way); else False."""
    conns = [a for a in attempts if a.kind == "connection"]
    if not conns:
        return False if attempts else None
    open_ = [a for a in conns if a.ended == "open"]
    if any(a.rank >= STAGES.index("websocket") for a in open_):
        return True
    if any(a.reached in ("tcp", "tls") for a in open_):
        return None
    return False
