"""Group a timeline by charger: which flows and DNS lookups belong to which charger, and where its CSMS is.

A charger is named by its station identity (the last segment of the WebSocket upgrade path) or, when no upgrade
was seen, by its address. A client with no OCPP evidence counts as a charger only when the capture has nothing
better (no OCPP anywhere: a capture taken at one charger), when it looks up or connects to the CSMS seen elsewhere
in the capture, or when the user names the CSMS (``--csms``).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from analyzer import budgets
from analyzer.config import Settings
from analyzer.events.base import Event
from analyzer.timeline import FlowInfo, Timeline


def ocpp_evidence(events: list[Event]) -> bool:
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
    relayed: dict[int, int] = field(default_factory=dict)  # charger's leg -> the relay's leg of the same session
    csms_names: frozenset[str] = frozenset()  # CSMS host names the capture shows (for typo hints)
    # ``facts.CharFacts``: what the rules ask of ``events``, found once
    grouped: Any = field(default=None, repr=False, compare=False)


def _flow_station(events: list[Event]) -> str | None:
    for e in events:
        if e.kind == "http.request" and getattr(e, "station_id", None):
            return e.station_id  # type: ignore[attr-defined,no-any-return]
    return None


@dataclass(frozen=True, slots=True)
class Other:
    """Traffic that is not a charger talking to its CSMS, said in one line: ``what`` (``iso15118``,
    ``tls.scheme_mismatch``, ``relay_leg``), the client and server, the first frame, how many connections, a
    sentence; ``fault``/``frame`` when it did something wrong worth naming (a wss:// URL pointed at a ws:// port)."""

    what: str
    client: str
    server: str
    first_frame: int
    flows: int
    summary: str
    fault: str | None = None
    frame: int | None = None


@dataclass(slots=True)
class Population:
    chargers: list[Charger]
    others: list[Other]


def find_chargers(tl: Timeline, settings: Settings) -> list[Charger]:
    """The chargers in ``tl``, in order of their first packet."""
    return find_population(tl, settings).chargers


def find_population(tl: Timeline, settings: Settings) -> Population:
    """The chargers in ``tl`` (in order of their first packet) and what else the capture holds."""
    others: list[Other] = []
    tcp_all = [f for f in tl.flows.values() if f.proto == "tcp"]
    dns_flows = [
        f
        for f in tl.flows.values()
        if f.proto in ("udp", "tcp")
        and DNS_PORT in (f.server_port, f.client_port)
        and not not_charger_traffic(f, tl.for_flow(f.id))
    ]
    dns_ids = {f.id for f in dns_flows}
    v2g = [f for f in tl.flows.values() if not_charger_traffic(f, tl.for_flow(f.id))]
    if v2g:
        others.append(_v2g_other(v2g))
    tcp = [f for f in tcp_all if f.id not in dns_ids and not not_charger_traffic(f, tl.for_flow(f.id))]
    relays = relay_legs(tl, tcp)
    if relays:
        inner = {b for b in relays.values()}
        tcp = [f for f in tcp if f.id not in inner]
        first = min(tl.flows[b].first_frame for b in inner)
        leg = tl.flows[next(iter(inner))]
        others.append(
            Other(
                "relay_leg",
                leg.client_addr,
                leg.server,
                first,
                len(inner),
                f"{len(inner)} connection(s) from {leg.client_addr} relay chargers' connections to {leg.server} "
                "(the same session seen from a second capture point): counted once, under the charger's own "
                "address",
            )
        )

    # names and addresses the capture shows for the CSMS
    resolved: dict[str, set[str]] = {}  # qname -> addresses
    for fid, evs in tl.flow_groups().items():
        f = tl.flows.get(fid)  # type: ignore[arg-type]
        if f is not None and DNS_PORT not in (f.server_port, f.client_port):
            continue  # DNS is decoded on its port only (``decoders.detect``): no response in this flow
        for e in evs:
            if e.kind == "dns.response":
                resolved.setdefault(e.qname.lower(), set()).update(getattr(e, "addresses", ()))  # type: ignore[attr-defined]
    ocpp_flows = {f.id for f in tcp if ocpp_evidence(tl.for_flow(f.id))}
    csms_names: set[str] = set()
    csms_ends: set[tuple[str, int]] = set()
    plain_ends: set[tuple[str, int]] = set()
    for fid in ocpp_flows:
        fl = tl.flows[fid]
        csms_ends.add((fl.server_addr, fl.server_port))
        kinds = tl.kinds_of(fid)
        if not any(k.startswith("tls.") for k in kinds):
            plain_ends.add((fl.server_addr, fl.server_port))
        if "http.request" not in kinds and "tls.client_hello" not in kinds:
            continue
        for e in tl.for_flow(fid):
            kind = e.kind
            if kind == "http.request":
                if getattr(e, "host", None):
                    csms_names.add(host_only(e.host))  # type: ignore[attr-defined]
            elif kind == "tls.client_hello" and getattr(e, "sni", None):
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
    if nothing_better:
        # what was released while reading counts too (``ReleasedClients``): without OCPP or a CSMS name it was
        # traffic like that still kept at the end
        released = tl.released
        clients = {f.client_addr for f in tcp} | {f.client_addr for f in dns_flows} | released.clients
        if len(clients) > GUESSED_CHARGERS:
            # not a capture taken at one charger (a gateway, a SYN flood): without OCPP or a CSMS name nothing
            # says which clients are chargers, so none is guessed
            nothing_better = False
            addresses = f"more than {budgets.KEEPER_NAMES:,}" if released.clients_past else f"{len(clients):,}"
            connections = len(tcp) + released.connections
            firsts = [f.first_frame for f in tcp] + ([released.first_frame] if released.connections else [])
            others.append(
                Other(
                    "unidentified_clients",
                    f"{addresses} addresses",
                    "-",
                    min(firsts, default=0),
                    connections,
                    f"{addresses} client addresses opened {connections:,} TCP connection(s) without any OCPP, and "
                    "the capture names no CSMS: none is taken for a charger. Name the CSMS with --csms HOST[:PORT] "
                    "to diagnose the chargers among them",
                )
            )
    chosen = [f for f in tcp if f.id in ocpp_flows or to_csms(f) or nothing_better]
    # clients that only sent TLS to a plain-WebSocket port the chargers use: named, not counted as chargers
    if plain_ends:
        by_client: dict[str, list[FlowInfo]] = {}
        for f in chosen:
            by_client.setdefault(f.client_addr, []).append(f)
        for addr, flows in by_client.items():
            if any(f.id in ocpp_flows for f in flows):
                continue
            wrong = [
                f for f in flows if tls_to_plain_port(tl.for_flow(f.id), (f.server_addr, f.server_port) in plain_ends)
            ]
            if len(wrong) != len(flows):
                continue
            ans = [tls_to_plain_port(tl.for_flow(f.id), True) for f in wrong]
            others.append(
                Other(
                    "tls.scheme_mismatch",
                    addr,
                    wrong[0].server,
                    wrong[0].first_frame,
                    len(wrong),
                    f"{addr} sent a TLS ClientHello to {wrong[0].server}, which serves plain WebSocket (ws://), "
                    f"on {len(wrong)} connection(s); the server ended each without a ServerHello: a wss:// URL "
                    "pointed at a ws:// port. Not counted as a charger: it never spoke OCPP.",
                    fault="tls.scheme_mismatch",
                    frame=ans[0].frame if ans[0] is not None else wrong[0].first_frame,
                )
            )
            drop = {f.id for f in wrong}
            chosen = [f for f in chosen if f.id not in drop]

    def failed_csms_lookup(flows: list[FlowInfo]) -> bool:
        """These DNS flows asked for a CSMS name (or a name one or two characters from one) that none of them
        resolved: a lookup that failed (an AAAA without answer beside an A that resolved is no failure)."""
        asked: set[str] = set()
        got: set[str] = set()
        for f in flows:
            for e in tl.for_flow(f.id):
                name = getattr(e, "qname", "").lower()
                if e.kind == "dns.query" and (name in csms_names or near_name(name, csms_names)):
                    asked.add(name)
                elif e.kind == "dns.response" and getattr(e, "addresses", ()):
                    got.add(name)
        return bool(asked - got)

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
    # DNS lookups: by the chargers' addresses (the first charger at an address); or chargers of their own (asking
    # for the CSMS / nothing better)
    at: dict[str, Charger] = {}
    for c in chargers.values():
        at.setdefault(c.address, c)
    for addr, flows in dns_by_client.items():
        owner = at.get(addr)
        if owner is not None:
            owner.dns_flow_ids.extend(f.id for f in flows)
        elif nothing_better or failed_csms_lookup(flows):
            chargers[addr] = at[addr] = Charger(
                key=addr, station_id=None, address=addr, dns_flow_ids=[f.id for f in flows]
            )
    by_leg = {fid: ch for ch in chargers.values() for fid in ch.flow_ids}  # a charger's flow is its alone
    for a, b in relays.items():  # not a scan of every charger's flows per relayed session
        if a in by_leg:
            by_leg[a].relayed[a] = b
    for ch in chargers.values():
        ch.csms_names = frozenset(csms_names)
        _fill(ch, tl, csms_names, resolved)
    return Population(sorted(chargers.values(), key=lambda c: c.events[0].frame if c.events else 0), others)


# a capture without OCPP or a CSMS name is taken for a capture at one charger only while it has this few clients
GUESSED_CHARGERS = budgets.GUESSED_CHARGERS

DNS_PORT = 53  # where lookups are decoded (``decoders.detect.DNS_PORTS``)

# ISO 15118 / DIN 70121 (car <-> charger): its TCP/UDP port, and link-local IPv6, which V2G uses and no CSMS does
V2G_PORT = 15118


def not_charger_traffic(f: FlowInfo, events: list[Event]) -> bool:
    """A flow that is not a charger talking to its CSMS: ISO 15118 / DIN 70121 between a car and a charger, which
    runs on link-local IPv6 (SDP on UDP port 15118): UDP 15118, or link-local IPv6 at both ends without any OCPP on
    it. (A TCP SYN to port 15118 elsewhere, in a port scan say, is not taken for a car.)"""
    if f.proto == "udp" and V2G_PORT in (f.server_port, f.client_port):
        return True
    link_local = f.client_addr.lower().startswith("fe80:") and f.server_addr.lower().startswith("fe80:")
    return link_local and not ocpp_evidence(events)


def _v2g_other(flows: list[FlowInfo]) -> Other:
    first = min(flows, key=lambda f: f.first_frame)
    hosts = sorted({f.client_addr for f in flows} | {f.server_addr for f in flows})
    return Other(
        "iso15118",
        first.client_addr,
        first.server,
        first.first_frame,
        len(flows),
        f"{len(flows)} flow(s) of car-to-charger traffic (ISO 15118 / DIN 70121: port {V2G_PORT} or link-local "
        f"IPv6) between {', '.join(hosts[:4])}{' ...' if len(hosts) > 4 else ''}: not a charger talking to its "
        "CSMS",
    )


RELAY_WINDOW_NS = 2 * 10**9  # a relay opens its own connection this soon after accepting the charger's


def relay_legs(tl: Timeline, tcp: list[FlowInfo]) -> dict[int, int]:
    """Connections seen twice, from two capture points (a TCP relay, a container proxy and its bridge): the
    charger's leg → the relay's leg. Two flows are one session when they carry the same WebSocket upgrade key, or
    when the second starts from the first one's server address within ``RELAY_WINDOW_NS`` and carried the same
    bytes both ways."""
    out: dict[int, int] = {}
    taken: set[int] = set()
    by_key: dict[str, list[FlowInfo]] = {}
    for f in tcp:
        req = next((e for e in tl.for_flow(f.id) if e.kind == "http.request"), None)
        key = getattr(req, "ws_key", None)
        if key:
            by_key.setdefault(key, []).append(f)
    for flows in by_key.values():
        if len(flows) < 2:
            continue
        flows.sort(key=lambda f: _first_request_frame(tl, f))
        for leg in flows[1:]:
            out[flows[0].id] = leg.id
            taken.update((flows[0].id, leg.id))
            break
    by_server: dict[str, list[FlowInfo]] = {}
    for f in tcp:
        by_server.setdefault(f.server_addr, []).append(f)
    for b in sorted(tcp, key=lambda f: f.first_ns):
        if b.id in taken or b.client_addr not in by_server:
            continue
        cands = [
            a
            for a in by_server[b.client_addr]
            if a.id not in taken
            and a.id != b.id
            and abs(b.first_ns - a.first_ns) <= RELAY_WINDOW_NS
            and _same_bytes(tl, a.id, b.id)
        ]
        if cands:
            a = max(cands, key=lambda f: f.first_ns)
            out[a.id] = b.id
            taken.update((a.id, b.id))
    return out


def _first_request_frame(tl: Timeline, f: FlowInfo) -> int:
    return next((e.frame for e in tl.for_flow(f.id) if e.kind == "http.request"), f.first_frame)


def _same_bytes(tl: Timeline, a: int, b: int) -> bool:
    """The two connections carried the same bytes each way, or begin with the same message from the client."""
    first = [
        next((e.summary() for e in tl.for_flow(f) if e.layer in APP_LAYERS and e.direction == 0), None) for f in (a, b)
    ]
    if first[0] is not None and first[0] == first[1]:
        return True
    ea = next((e for e in tl.for_flow(a) if e.kind == "tcp.flow_end"), None)
    eb = next((e for e in tl.for_flow(b) if e.kind == "tcp.flow_end"), None)
    if ea is None or eb is None:
        return False
    return ea.payload_bytes == eb.payload_bytes  # type: ignore[attr-defined]


def tls_to_plain_port(events: list[Event], plain_port: bool) -> Event | None:
    """A ClientHello that got no ServerHello from a server that speaks plain HTTP (``plain_port``: other
    connections to it carry plain WebSocket, or it answered HTTP): the server's answer (HTTP response, FIN, RST),
    else None."""
    hello = next((e for e in events if e.kind == "tls.client_hello"), None)
    if hello is None or any(e.kind == "tls.server_hello" for e in events):
        return None
    answered_http = any(e.kind == "http.response" and e.direction == 1 for e in events)
    silent = closed_silently(events, hello.frame) and _modern(hello)
    if not (plain_port or answered_http or silent):
        return None
    return next(
        (
            e
            for e in events
            if e.direction == 1
            and e.frame > hello.frame
            and e.kind in ("http.response", "tcp.fin", "tcp.rst", "tls.alert", "decode.anomaly")
        ),
        None,
    )


def _modern(hello: Event) -> bool:
    """The ClientHello offers TLS 1.2 and 1.3: a TLS server would find a common version and answer (an OpenSSL
    server alerts on any other problem), so silence points to a server that does not speak TLS."""
    versions = set(getattr(hello, "supported_versions", ()) or ())
    return {0x0303, 0x0304} <= versions


def closed_silently(events: list[Event], after: int) -> bool:
    """The server sent not one byte on the connection and closed it (FIN or RST) after frame ``after``: what a
    plain HTTP server does with TLS bytes it cannot parse, and what OpenSSL does with a plain HTTP request."""
    end = next((e for e in events if e.kind == "tcp.flow_end"), None)
    if end is None or getattr(end, "payload_bytes", (0, 1))[1] != 0:
        return False
    return any(e.kind in ("tcp.fin", "tcp.rst") and e.direction == 1 and e.frame > after for e in events)


def near_name(name: str, names: set[str] | frozenset[str]) -> str | None:
    """The CSMS name ``name`` is one or two edits from (a typo), or None (an equal name is not near)."""
    return _near(name, frozenset(names))


@functools.lru_cache(maxsize=4096)
def _near(name: str, names: frozenset[str]) -> str | None:
    for n in sorted(names):
        if n != name and abs(len(n) - len(name)) <= 2 and edit_distance(n, name) <= 2:
            return n
    return None


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (with transpositions counted as one edit), for short host names."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _fill(ch: Charger, tl: Timeline, csms_names: set[str], resolved: dict[str, set[str]]) -> None:
    evs: list[Event] = []
    kinds: set[str] = set()  # of its events: from each flow's, but for a relayed session's (a merged list)
    for fid in ch.flow_ids + ch.dns_flow_ids:
        if fid in ch.relayed:
            merged = _merged(tl, fid, ch.relayed[fid])
            evs.extend(merged)
            kinds.update(e.kind for e in merged)
        else:
            evs.extend(tl.for_flow(fid))
            kinds.update(tl.kinds_of(fid))
    evs.sort(key=_frame_of)
    ch.events = evs
    if ch.flow_ids:
        f = tl.flows[ch.flow_ids[-1]]
        ch.csms_address, ch.csms_port = f.server_addr, f.server_port
    for e in evs:
        if e.kind == "http.request" and getattr(e, "host", None) and ch.csms_host is None:
            ch.csms_host = host_only(e.host)  # type: ignore[attr-defined]
        elif e.kind == "tls.client_hello" and getattr(e, "sni", None) and ch.csms_host is None:
            ch.csms_host = e.sni.lower()  # type: ignore[attr-defined]
        elif e.kind == "http.response" and getattr(e, "ws_protocol", None) and ch.ocpp_version is None:
            ch.ocpp_version = _ocpp_version(e.ws_protocol)  # type: ignore[attr-defined]
        elif e.kind.startswith("ocpp.") and getattr(e, "version", None) and ch.ocpp_version is None:
            ch.ocpp_version = e.version  # type: ignore[attr-defined]
        if ch.csms_host is not None and ch.ocpp_version is not None:
            break  # nothing later changes them
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
    if any(k.startswith("tls.") for k in kinds):
        ch.transport = "wss"
    elif any(k.startswith(("http.", "websocket.", "ocpp.")) for k in kinds):
        ch.transport = "ws"


APP_LAYERS = ("tls", "http", "websocket", "ocpp")
_frame_of = attrgetter("frame")


def _merged(tl: Timeline, a: int, b: int) -> list[Event]:
    """One session seen on two legs (``a`` the charger's, ``b`` the relay's), as first seen: the TCP events of the
    charger's leg, and each direction's TLS/HTTP/WebSocket/OCPP events from the leg that shows them first (the
    charger's messages on its own leg, the CSMS's on the leg next to the CSMS), all under flow ``a``."""
    ea, eb = tl.for_flow(a), tl.for_flow(b)
    out = [e for e in ea if e.layer not in APP_LAYERS or e.direction is None]
    for d in (0, 1):
        first_a = next((e.frame for e in ea if e.layer in APP_LAYERS and e.direction == d), None)
        first_b = next((e.frame for e in eb if e.layer in APP_LAYERS and e.direction == d), None)
        use_b = first_b is not None and (first_a is None or first_b < first_a)
        src = eb if use_b else ea
        out.extend(
            dataclasses.replace(e, flow_id=a) if use_b else e for e in src if e.layer in APP_LAYERS and e.direction == d
        )
    out.sort(key=lambda e: e.frame)
    return out


def _ocpp_version(proto: str) -> str | None:
    p = proto.lower()
    if not p.startswith("ocpp"):
        return None
    v = p[4:]
    return {"2.0": "2.0.1"}.get(v, v) if v in ("1.6", "2.0", "2.0.1", "2.1") else v or None


def host_only(host: str) -> str:
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
