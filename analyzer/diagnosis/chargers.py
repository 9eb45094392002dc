"""Group a timeline by charger: which flows and DNS lookups belong to which charger, and where its CSMS is.

A charger is named by its station identity (the last segment of the WebSocket upgrade path) or, when no upgrade
was seen, by its address. A client with no OCPP evidence counts as a charger only when the capture has nothing
better (no OCPP anywhere: a capture taken at one charger), when it looks up or connects to the CSMS seen elsewhere
in the capture, or when the user names the CSMS (``--csms``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.config import Settings
from analyzer.events.base import Event
from analyzer.timeline import FlowInfo, Timeline


def _ocpp_evidence(events: list[Event]) -> bool:
    """OCPP messages, or a WebSocket upgrade that offers an OCPP subprotocol or names a station in its path.
    (Plain HTTP, such as an OS connectivity check, and WebSockets of other protocols are not OCPP.)"""
    for e in events:
        if e.kind.startswith("ocpp."):
            return True
        if e.kind == "http.request" and (getattr(e, "upgrade", None) or "").lower() == "websocket":
            offered = [p.lower() for p in getattr(e, "ws_protocols", ())]
            if any(p.startswith("ocpp") for p in offered) or (not offered and getattr(e, "station_id", None)):
                return True
    return False


@dataclass(slots=True)
class Charger:
    """One charger's share of the capture. ``flow_ids``: its TCP connection attempts (in order);
    ``dns_flow_ids``: its DNS flows; ``events``: every event of those flows, in capture order."""

    key: str
    station_id: str | None
    address: str
    flow_ids: list[int] = field(default_factory=list)
    dns_flow_ids: list[int] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    csms_host: str | None = None
    csms_address: str | None = None
    csms_port: int | None = None
    ocpp_version: str | None = None
    transport: str | None = None


def _flow_station(events: list[Event]) -> str | None:
    for e in events:
        if e.kind == "http.request" and getattr(e, "station_id", None):
            return e.station_id  # type: ignore[attr-defined,no-any-return]
    return None


def find_chargers(tl: Timeline, settings: Settings) -> list[Charger]:
    """The chargers in ``tl``, in order of their first packet."""
    tcp = [f for f in tl.flows.values() if f.proto == "tcp"]
    dns_flows = [f for f in tl.flows.values() if f.proto in ("udp", "tcp") and 53 in (f.server_port, f.client_port)]
    dns_ids = {f.id for f in dns_flows}
    tcp = [f for f in tcp if f.id not in dns_ids]

    # names and addresses the capture shows for the CSMS
    resolved: dict[str, set[str]] = {}  # qname -> addresses
    for e in tl.events:
        if e.kind == "dns.response":
            resolved.setdefault(e.qname.lower(), set()).update(getattr(e, "addresses", ()))  # type: ignore[attr-defined]
    ocpp_flows = {f.id for f in tcp if _ocpp_evidence(tl.for_flow(f.id))}
    csms_names: set[str] = set()
    csms_ends: set[tuple[str, int]] = set()
    for fid in ocpp_flows:
        fl = tl.flows[fid]
        csms_ends.add((fl.server_addr, fl.server_port))
        for e in tl.for_flow(fid):
            if e.kind == "http.request" and getattr(e, "host", None):
                csms_names.add(_host_only(e.host))  # type: ignore[attr-defined]
            if e.kind == "tls.client_hello" and getattr(e, "sni", None):
                csms_names.add(e.sni.lower())  # type: ignore[attr-defined]
    user_port: int | None = None
    if settings.csms is not None:
        host, user_port = settings.csms
        csms_names.add(host)
    csms_addrs = {a for n in csms_names for a in resolved.get(n, ())} | {n for n in csms_names if _is_ip(n)}

    def to_csms(f: FlowInfo) -> bool:
        if (f.server_addr, f.server_port) in csms_ends:
            return True
        if f.server_addr in csms_addrs and (user_port is None or f.server_port == user_port):
            return True
        for e in tl.for_flow(f.id):
            if e.kind == "tls.client_hello" and getattr(e, "sni", None) and e.sni.lower() in csms_names:  # type: ignore[attr-defined]
                return True
        return False

    nothing_better = not ocpp_flows and settings.csms is None
    chosen = [f for f in tcp if f.id in ocpp_flows or to_csms(f) or nothing_better]

    def asks_csms(f: FlowInfo) -> bool:
        return any(e.kind == "dns.query" and e.qname.lower() in csms_names for e in tl.for_flow(f.id))  # type: ignore[attr-defined]

    dns_by_client: dict[str, list[FlowInfo]] = {}
    for f in dns_flows:
        dns_by_client.setdefault(f.client_addr, []).append(f)

    chargers: dict[str, Charger] = {}
    stations_at: dict[str, set[str]] = {}
    for f in chosen:
        st = _flow_station(tl.for_flow(f.id))
        if st:
            stations_at.setdefault(f.client_addr, set()).add(st)
    for f in chosen:
        st = _flow_station(tl.for_flow(f.id))
        if st is None and len(stations_at.get(f.client_addr, ())) == 1:
            st = next(iter(stations_at[f.client_addr]))
        key = st or f.client_addr
        ch = chargers.get(key)
        if ch is None:
            ch = chargers[key] = Charger(key=key, station_id=st, address=f.client_addr)
        ch.flow_ids.append(f.id)
    # DNS lookups: by the chargers' addresses; or chargers of their own (asking for the CSMS / nothing better)
    for addr, flows in dns_by_client.items():
        owners = [c for c in chargers.values() if c.address == addr]
        if owners:
            owners[0].dns_flow_ids.extend(f.id for f in flows)
        elif nothing_better or any(asks_csms(f) and not _resolved_csms(tl, f, csms_names) for f in flows):
            chargers[addr] = Charger(key=addr, station_id=None, address=addr, dns_flow_ids=[f.id for f in flows])
    for ch in chargers.values():
        _fill(ch, tl, csms_names, resolved)
    return sorted(chargers.values(), key=lambda c: c.events[0].frame if c.events else 0)


def _resolved_csms(tl: Timeline, f: FlowInfo, names: set[str]) -> bool:
    """This DNS flow got an address for the CSMS name: a client that resolved the CSMS and never connected from
    this address is a resolver or a NAT'd charger, not a charger of its own."""
    return any(
        e.kind == "dns.response" and e.qname.lower() in names and e.addresses  # type: ignore[attr-defined]
        for e in tl.for_flow(f.id)
    )


def _fill(ch: Charger, tl: Timeline, csms_names: set[str], resolved: dict[str, set[str]]) -> None:
    evs: list[Event] = []
    for fid in ch.flow_ids + ch.dns_flow_ids:
        evs.extend(tl.for_flow(fid))
    evs.sort(key=lambda e: e.frame)
    ch.events = evs
    if ch.flow_ids:
        f = tl.flows[ch.flow_ids[-1]]
        ch.csms_address, ch.csms_port = f.server_addr, f.server_port
    for e in evs:
        if e.kind == "http.request" and getattr(e, "host", None) and ch.csms_host is None:
            ch.csms_host = _host_only(e.host)  # type: ignore[attr-defined]
        elif e.kind == "tls.client_hello" and getattr(e, "sni", None) and ch.csms_host is None:
            ch.csms_host = e.sni.lower()  # type: ignore[attr-defined]
        elif e.kind == "http.response" and getattr(e, "ws_protocol", None) and ch.ocpp_version is None:
            ch.ocpp_version = _ocpp_version(e.ws_protocol)  # type: ignore[attr-defined]
        elif e.kind.startswith("ocpp.") and getattr(e, "version", None) and ch.ocpp_version is None:
            ch.ocpp_version = e.version  # type: ignore[attr-defined]
    if ch.csms_host is None:
        queried = [e.qname.lower() for e in evs if e.kind == "dns.query"]  # type: ignore[attr-defined]
        named = [q for q in queried if q in csms_names] or [
            q for q in queried if ch.csms_address and ch.csms_address in resolved.get(q, ())
        ]
        ch.csms_host = (named or queried or [None])[0]
    if ch.ocpp_version is None:
        for e in evs:
            if e.kind == "http.request" and getattr(e, "ws_protocols", ()):
                ch.ocpp_version = _ocpp_version(e.ws_protocols[0])  # type: ignore[attr-defined]
                break
    if any(e.kind.startswith("tls.") for e in evs):
        ch.transport = "wss"
    elif any(e.kind.startswith(("http.", "websocket.", "ocpp.")) for e in evs):
        ch.transport = "ws"


def _ocpp_version(proto: str) -> str | None:
    p = proto.lower()
    if not p.startswith("ocpp"):
        return None
    v = p[4:]
    return {"2.0": "2.0.1"}.get(v, v) if v in ("1.6", "2.0", "2.0.1", "2.1") else v or None


def _host_only(host: str) -> str:
    h = host.strip().lower()
    if h.startswith("["):
        return h[1:].split("]", 1)[0]
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def _is_ip(s: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True
