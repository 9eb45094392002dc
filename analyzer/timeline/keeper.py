"""What ``analyze`` keeps of a capture's events while reading it: bounded by the live flows and the chargers' own
connections, not by the packets.

Two budgets (``analyzer.budgets``), never reached by a small capture (under ``PENDING_FLOWS`` finished flows and
``flows.table.SWEEP_EVERY`` packets), whose reports therefore do not change:

- **Long connections are thinned** (``FLOW_EVENTS_THIN``): once a flow holds that many events, the routine middle
  of it (between its first and last ``FLOW_EVENTS_EDGE`` events) is dropped: complete OCPP exchanges whose CALL and
  CALLRESULT are both there, clean (no schema violation, no duplicate id) and paired, with the WebSocket messages and
  clock samples of their frames, and WebSocket pings answered by a pong. A CALL without its answer, a CALLERROR, a
  close, an anomaly is never dropped. A flow that still holds ``FLOW_EVENTS_HARD`` events keeps the first event of
  each kind of message in its middle and drops the rest. At the end, a connection thinned before is thinned once
  more (``events``).
- **Finished background flows are released** (``PENDING_FLOWS``): a finished flow that carried no HTTP, WebSocket
  or OCPP waits among the pending ones. It is judged at the flow table's idle sweep (every ``SWEEP_EVERY``
  packets) once it has waited a whole sweep, or sooner when more than the budget wait, against what the capture
  has shown so far: a connection to a CSMS endpoint (one that served OCPP, or an address a CSMS name
  resolved to, or a ClientHello naming the CSMS, or ``--csms``), a lookup of a CSMS name (or one a typo away; of
  any name that got no address while no CSMS name is known), ISO 15118 traffic are kept; the rest (unrelated
  TLS, DNS for other names, NTP) are released and counted per server. A released server that turns out, by the
  end, to be the CSMS is named in a warning.

The keeper learns the CSMS from the events as they come (the same facts ``diagnosis.chargers`` reads at the end).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from analyzer import budgets, progress
from analyzer.diagnosis.chargers import DNS_PORT, host_only, near_name, not_charger_traffic, ocpp_evidence
from analyzer.diagnosis.clock import Offsets, reads_reset, trusted
from analyzer.events.base import Event
from analyzer.timeline.timeline import FlowInfo, ReleasedClients

APP_LAYERS = frozenset({"http", "websocket", "ocpp"})


@dataclass(slots=True)
class Released:
    """What the budgets gave up, for the report's warnings."""

    flows: int = 0  # finished background flows released
    events: int = 0  # their events
    thinned_flows: int = 0  # long flows whose routine middle was dropped
    thinned: Counter[str] = field(default_factory=Counter)  # events dropped from them, by kind
    servers: Counter[str] = field(default_factory=Counter)  # released connections by server address:port
    names: Counter[str] = field(default_factory=Counter)  # released lookups by name asked
    other_servers: int = 0  # released connections to servers past ``KEEPER_NAMES`` distinct ones
    other_names: int = 0  # released lookups of names past ``KEEPER_NAMES`` distinct ones
    clients: ReleasedClients = field(default_factory=ReleasedClients)  # whose connections and lookups were released

    def count(self, table: Counter[str], key: str) -> bool:
        """Count one under ``key`` unless ``table`` holds ``KEEPER_NAMES`` other keys already (then False)."""
        if key in table or len(table) < budgets.KEEPER_NAMES:
            table[key] += 1
            return True
        return False


class _FlowIds:
    """A set of flow ids as one bit each (ids are small, dense integers): a million released lookups in 125 KB
    where a ``set`` took 40 MB."""

    __slots__ = ("bits",)

    def __init__(self) -> None:
        self.bits = bytearray()

    def add(self, fid: int) -> None:
        byte = fid >> 3
        if byte >= len(self.bits):
            self.bits.extend(bytes(byte + 1 - len(self.bits) + len(self.bits) // 2))
        self.bits[byte] |= 1 << (fid & 7)

    def __contains__(self, fid: object) -> bool:
        if not isinstance(fid, int) or fid < 0:
            return False
        byte = fid >> 3
        return byte < len(self.bits) and bool(self.bits[byte] & (1 << (fid & 7)))


class _FlowLog:
    __slots__ = ("app", "events", "fid", "learned", "limit", "thinned")

    def __init__(self, fid: int | None) -> None:
        self.fid = fid
        self.events: list[Event] = []
        self.limit = budgets.FLOW_EVENTS_THIN
        self.app = False
        self.learned = False
        self.thinned = False


class EventKeeper:
    """Takes every event and every finished flow; holds what the diagnosis can need.

    ``csms`` is ``--csms`` (host, port or None). ``events()`` and ``flows`` give the kept events and flows at the
    end; ``released`` counts what was let go."""

    def __init__(self, csms: tuple[str, int | None] | None = None, pending_flows: int | None = None) -> None:
        self.logs: dict[int | None, _FlowLog] = {}
        self.flows: dict[int, FlowInfo] = {}
        self.pending: list[int] = []
        self.settled = 0  # how many of ``pending`` were there at the last sweep (judged at the next)
        self.pending_budget = budgets.PENDING_FLOWS if pending_flows is None else pending_flows
        self.released = Released()
        self.dropped: dict[int | None, Counter[str]] = {}  # per flow: the events thinning dropped, by kind
        # per flow: the offsets of the clock samples thinning dropped, by side (the clock analysis's medians)
        self.dropped_clock: dict[int, dict[str, Offsets]] = {}
        self.gone = _FlowIds()  # released lookups' flow ids (a late event of one is dropped and counted)
        # what the capture showed so far about the CSMS and the chargers
        self.csms_ends: set[tuple[str, int]] = set()
        self.csms_names: set[str] = set()
        self.csms_port: int | None = None
        self.clients: set[str] = set()  # addresses seen speaking OCPP (for the progress line)
        self.resolved: OrderedDict[str, set[str]] = OrderedDict()  # the latest KEEPER_NAMES names looked up
        if csms is not None:
            self.csms_names.add(csms[0].lower())
            self.csms_port = csms[1]
        # a live flow's (client address, client port, server address, server port), set by the engine
        self.endpoints: Callable[[int], tuple[str, int, str, int] | None] = lambda fid: None

    # -- taking events -------------------------------------------------------------------------------------------

    def add(self, e: Event) -> None:
        fid = e.flow_id
        log = self.logs.get(fid)
        if log is None:  # a released flow has no log, and gets none again
            if fid in self.gone:
                self.released.events += 1
                return
            log = self.logs[fid] = _FlowLog(fid)
        events = log.events
        events.append(e)
        if not log.app and e.layer in APP_LAYERS:
            log.app = True
        kind = e.kind
        if kind == "dns.response":
            addrs = getattr(e, "addresses", ())
            if addrs:
                self._resolved(getattr(e, "qname", "").lower(), addrs)
        elif not log.learned and fid is not None and (kind.startswith("ocpp.") or kind == "http.request"):
            self._learn(e, fid, log)
        if len(events) > log.limit and fid is not None:
            self._thin(log)

    def _resolved(self, name: str, addrs: Iterable[str]) -> None:
        """Remember what ``name`` resolved to; past ``KEEPER_NAMES`` names the oldest goes, unless it is a CSMS
        name (a lookup is followed by its connection within seconds: the latest names are the ones asked about)."""
        table = self.resolved
        known = table.get(name)
        if known is not None:
            known.update(addrs)
            table.move_to_end(name)
            return
        table[name] = set(addrs)
        if len(table) > budgets.KEEPER_NAMES:
            for _ in range(len(table)):
                oldest, held = table.popitem(last=False)
                if oldest not in self.csms_names:
                    break
                table[oldest] = held  # a CSMS name's addresses stay: to the end of the line

    def _learn(self, e: Event, fid: int, log: _FlowLog) -> None:
        """A flow's first OCPP (``chargers.ocpp_evidence``): its server is a CSMS endpoint."""
        ends = self.endpoints(fid)
        if ends is None or not ocpp_evidence([e]):
            return
        client, _, server, port = ends
        log.learned = True
        self.csms_ends.add((server, port))
        if client not in self.clients:
            self.clients.add(client)
            progress.found(len(self.clients))
        host = getattr(e, "host", None)
        if host:
            self.csms_names.add(host_only(host))
        for other in log.events:
            if other.kind == "tls.client_hello" and getattr(other, "sni", None):
                self.csms_names.add(other.sni.lower())  # type: ignore[attr-defined]

    # -- finished flows ------------------------------------------------------------------------------------------

    def finish(self, info: FlowInfo) -> None:
        self.flows[info.id] = info
        log = self.logs.get(info.id)
        if log is not None and log.app:
            return
        self.pending.append(info.id)
        if len(self.pending) > self.pending_budget:
            self._judge()

    def sweep(self) -> None:
        """The flow table's idle sweep: judge the flows that were pending at the last one. The sweeps fall on the
        same packets however ``analyze --workers`` partitions the capture, so its keepers judge the same flows."""
        self._judge(self.settled)
        self.settled = len(self.pending)

    def _judge(self, count: int | None = None) -> None:
        """Decide the first ``count`` pending flows (all by default) with what is known now: keep or release."""
        if count is None:
            pending, self.pending, self.settled = self.pending, [], 0
        else:
            pending, self.pending = self.pending[:count], self.pending[count:]
        for fid in pending:
            info = self.flows[fid]
            log = self.logs.get(fid)
            evs = log.events if log is not None else []
            if (log is not None and log.app) or self._wanted(info, evs):
                continue
            r = self.released
            r.flows += 1
            r.events += len(evs)
            if info.server_port == DNS_PORT:
                name = next((getattr(e, "qname", "") for e in evs if e.kind == "dns.query"), "")
                if not r.count(r.names, name.lower()):
                    r.other_names += 1
            elif not r.count(r.servers, f"{info.server_addr}:{info.server_port}"):
                r.other_servers += 1
            del self.flows[fid]
            self.logs.pop(fid, None)
            if DNS_PORT in (info.server_port, info.client_port):
                self.gone.add(fid)  # the DNS decoder may still report an unanswered query of it at the end
                r.clients.client(info.client_addr)
            elif info.proto == "tcp":
                r.clients.connection(info.client_addr, info.first_frame)

    def _wanted(self, f: FlowInfo, evs: list[Event]) -> bool:
        if not_charger_traffic(f, evs):  # ISO 15118: the report names it
            return True
        if DNS_PORT in (f.server_port, f.client_port):
            # the lookups a diagnosis reads: of a CSMS name or one a typo away; while no CSMS name is known, the
            # ones that got no address (a charger's failed lookup is what matters then)
            names = self.csms_names
            for e in evs:
                q = getattr(e, "qname", None)
                if q is None:
                    continue
                if names and (q.lower() in names or near_name(q.lower(), names)):
                    return True
                if not names and e.kind == "dns.response" and not getattr(e, "addresses", ()):
                    return True
            return False
        if f.proto != "tcp":
            return False
        if (f.server_addr, f.server_port) in self.csms_ends:
            return True
        if self.csms_port is None or f.server_port == self.csms_port:
            for n in self.csms_names:
                if f.server_addr == n or f.server_addr in self.resolved.get(n, ()):
                    return True
        return any(
            e.kind == "tls.client_hello" and (getattr(e, "sni", None) or "").lower() in self.csms_names for e in evs
        )

    # -- thinning ------------------------------------------------------------------------------------------------

    def _thin(self, log: _FlowLog) -> None:
        evs = log.events
        edge = budgets.FLOW_EVENTS_EDGE
        head, middle, tail = evs[:edge], evs[edge:-edge], evs[-edge:]
        kept = routine_dropped(middle)
        if len(head) + len(kept) + len(tail) > budgets.FLOW_EVENTS_HARD:
            kept = first_of_each(kept)
        dropped = len(middle) - len(kept)
        if dropped:
            if not log.thinned:
                log.thinned = True
                self.released.thinned_flows += 1
            stays = {id(e) for e in kept}
            gone = [e for e in middle if id(e) not in stays]
            kinds = Counter(e.kind for e in gone)
            self.released.thinned.update(kinds)
            self.dropped.setdefault(log.fid, Counter()).update(kinds)
            if kinds["clock.sample"]:
                self._clock_dropped(log.fid, gone)
        log.events = head + kept + tail
        log.limit = max(budgets.FLOW_EVENTS_THIN, len(log.events) + budgets.FLOW_EVENTS_THIN // 2)

    def _clock_dropped(self, fid: int | None, gone: list[Event]) -> None:
        """Keep the offsets of the clock samples among ``gone`` (those the clock analysis trusts), by side."""
        if fid is None:
            return
        by_side: dict[str, list[int]] = {}
        for e in gone:
            if e.kind == "clock.sample" and trusted(e):  # type: ignore[arg-type]
                by_side.setdefault(e.side, []).append(e.value_ns - e.ts_ns)  # type: ignore[attr-defined]
        sides = self.dropped_clock.setdefault(fid, {})
        for side, offsets in by_side.items():
            into = sides.get(side)
            if into is None:
                into = sides[side] = Offsets()
            into.extend(offsets)

    # -- the end -------------------------------------------------------------------------------------------------

    def events(self) -> list[Event]:
        """The kept events, flow by flow. A long connection (one thinned already) is thinned a last time first:
        the routine exchanges that came after its last thinning are dropped as the earlier ones were (measured, a
        partition of the 1M gateway capture: 66k events kept → 46k, each one less to hand over, merge, diagnose and
        report). Call it at the end, before reading ``dropped`` and ``released``."""
        out: list[Event] = []
        edges = 2 * budgets.FLOW_EVENTS_EDGE
        for log in self.logs.values():
            if log.thinned and len(log.events) > edges:
                self._thin(log)
            out.extend(log.events)
        return out

    def late_csms(self) -> list[tuple[str, int]]:
        """Released servers and names that the end of the capture shows to be the CSMS's: (what, connections)."""
        addrs = {a for n in self.csms_names for a in self.resolved.get(n, ())} | self.csms_names
        ends = {f"{a}:{p}" for a, p in self.csms_ends}
        out = []
        for server, n in self.released.servers.items():
            addr = server.rsplit(":", 1)[0]
            if server in ends or addr in addrs:
                out.append((server, n))
        for name, n in self.released.names.items():
            if name and (name in self.csms_names or near_name(name, self.csms_names)):
                out.append((name, n))
        return sorted(out)


def routine_dropped(middle: list[Event]) -> list[Event]:
    """``middle`` without its complete, clean OCPP exchanges (and the WebSocket messages and clock samples of their
    frames) and its answered pings. The first clock sample that reads a reset clock stays (the clock analysis names
    the first one): what the others dropped read is kept as offsets (``EventKeeper._clock_dropped``)."""
    calls: dict[tuple[int, str], Event] = {}
    drop: set[int] = set()
    frames: set[int] = set()
    for e in middle:
        k = e.kind
        if k == "ocpp.call":
            if _clean(e) and getattr(e, "duplicate_of_frame", None) is None:
                calls[(e.direction, e.unique_id)] = e  # type: ignore[attr-defined]
        elif k == "ocpp.call_result":
            call = calls.pop((1 - (e.direction or 0), e.unique_id), None)  # type: ignore[attr-defined]
            if call is not None and _clean(e) and getattr(e, "pairing", None) == "paired":
                drop.update((id(call), id(e)))
                frames.update((call.frame, e.frame))
    pings = answered = 0
    for e in middle:
        if e.kind == "websocket.ping":
            pings += 1
        elif e.kind == "websocket.pong" and pings:
            pings -= 1
            answered += 1
    drop_pings = drop_pongs = answered
    reset_kept = False
    out = []
    for e in middle:
        k = e.kind
        if id(e) in drop:
            continue
        if k == "clock.sample" and not reset_kept and reads_reset(e):  # type: ignore[arg-type]
            reset_kept = True  # the first reading of a reset clock stays, routine or not
        elif k in ("websocket.message", "clock.sample") and e.frame in frames:
            continue
        if k == "websocket.ping" and drop_pings:
            drop_pings -= 1
            continue
        if k == "websocket.pong" and drop_pongs:
            drop_pongs -= 1
            continue
        out.append(e)
    return out


def _clean(e: Event) -> bool:
    """No schema violation, and an action its OCPP version knows."""
    return not getattr(e, "violations", ()) and not (
        getattr(e, "validated", True) is False and getattr(e, "version", None) is not None
    )


def first_of_each(events: list[Event]) -> list[Event]:
    """The first event of each kind (and OCPP action, error code, close code) among ``events``; a clock sample that
    reads a reset clock is a kind of its own."""
    seen: set[tuple[object, ...]] = set()
    out = []
    for e in events:
        sig = (
            e.kind,
            e.direction,
            getattr(e, "action", None),
            getattr(e, "error_code", None),
            getattr(e, "code", None),
            e.kind == "clock.sample" and reads_reset(e),  # type: ignore[arg-type]
        )
        if sig not in seen:
            seen.add(sig)
            out.append(e)
    return out
