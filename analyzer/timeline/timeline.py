"""The merged timeline: every decoder's events in capture order, plus what is known about each flow."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, TypeVar

from analyzer.budgets import KEEPER_NAMES
from analyzer.events.base import Event, event

E = TypeVar("E", bound=Event)


@event(kw_only=False)  # a frozen slotted dataclass made cheaper: one per flow that ends (a gateway's 90k per hour)
class FlowInfo:
    """A flow's identity and outcome, as the diagnosis needs it (addresses as text)."""

    id: int
    proto: str
    client_addr: str
    client_port: int
    server_addr: str
    server_port: int
    first_frame: int
    last_frame: int
    first_ns: int
    last_ns: int
    state: str
    history: str
    stream: int | None = None  # Wireshark's tcp.stream / udp.stream (``analyzer.flows.streams``)

    @property
    def stream_filter(self) -> str | None:
        """The Wireshark display filter of this flow's conversation (``tcp.stream eq 3``), None without one."""
        return stream_filter_of(self.proto, self.stream)

    @property
    def client(self) -> str:
        return _hostport(self.client_addr, self.client_port)

    @property
    def server(self) -> str:
        return _hostport(self.server_addr, self.server_port)


Stream = tuple[int | None, str | None]  # a flow's Wireshark stream number and its display filter


def stream_filter_of(proto: str, stream: int | None) -> str | None:
    """``tcp.stream eq 3`` for stream 3 of a TCP flow; None without a stream number."""
    return None if stream is None else f"{proto}.stream eq {stream}"


def _hostport(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


@dataclass(slots=True)
class ReleasedClients:
    """What ``analyze`` released while reading as background (no HTTP, WebSocket or OCPP; neither to a CSMS endpoint
    nor a lookup of a CSMS name when judged) that a count of the capture's clients needs: the TCP connections (how
    many, the first frame of the first) and the client addresses of those and of the lookups, at most
    ``KEEPER_NAMES`` (``clients_past``: more were not remembered). Which flows were still waiting to be judged when
    the capture ended depends on where the sweeps fell, and so on how many processes read it: a count of what is
    kept alone would change with them."""

    connections: int = 0
    first_frame: int = 0  # 0: none
    clients: set[str] = field(default_factory=set)
    clients_past: bool = False

    def connection(self, client: str, first_frame: int) -> None:
        self.connections += 1
        if not self.first_frame or first_frame < self.first_frame:
            self.first_frame = first_frame
        self.client(client)

    def client(self, client: str) -> None:
        if client in self.clients or len(self.clients) < KEEPER_NAMES:
            self.clients.add(client)
        else:
            self.clients_past = True

    def merge(self, other: ReleasedClients) -> None:
        self.connections += other.connections
        if other.first_frame and (not self.first_frame or other.first_frame < self.first_frame):
            self.first_frame = other.first_frame
        for client in other.clients:
            self.client(client)
        self.clients_past = self.clients_past or other.clients_past


@dataclass(slots=True)
class Timeline:
    """Events sorted by frame (capture order; events of one frame keep the order they were emitted in).

    ``start_ns``/``end_ns``/``end_frame`` bound the capture, so a rule can tell whether a timeout could have
    expired before the capture ended.
    """

    events: list[Event]
    flows: dict[int, FlowInfo]
    start_ns: int
    end_ns: int
    end_frame: int
    # per flow: events ``analyze`` dropped from it while reading (a long connection's routine middle), by kind
    dropped: dict[int | None, dict[str, int]] = field(default_factory=dict)
    # per flow so thinned: the offsets of the clock samples dropped, by side (``diagnosis.clock.Offsets``)
    dropped_clock: dict[int, dict[str, Any]] = field(default_factory=dict)
    # the TCP connections and lookups released as background while reading (``ReleasedClients``)
    released: ReleasedClients = field(default_factory=ReleasedClients)
    _by_flow: dict[int | None, list[Event]] | None = field(default=None, repr=False, compare=False)
    _kinds: dict[int | None, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, events: list[Event], flows: dict[int, FlowInfo], start_ns: int, end_ns: int, end_frame: int):
        return cls(sorted(events, key=_frame_of), flows, start_ns, end_ns, end_frame)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def of_type(self, *types: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, types)]  # type: ignore[misc]

    def for_flow(self, flow_id: int | None) -> list[Event]:
        return self.flow_groups().get(flow_id, [])

    def flow_groups(self) -> dict[int | None, list[Event]]:
        """The events grouped by flow (``group_by_flow``), made once: read it, do not change it."""
        by_flow = self._by_flow
        if by_flow is None:
            by_flow = self._by_flow = group_by_flow(self.events)
        return by_flow

    def kinds_of(self, flow_id: int | None) -> frozenset[str]:
        """The kinds of flow ``flow_id``'s events (``"tls.client_hello"``...), found once per flow: what the
        diagnosis asks of each of a gateway's thousands of flows ("did it carry TLS?") without walking its events
        again."""
        kinds = self._kinds.get(flow_id)
        if kinds is None:
            kinds = self._kinds[flow_id] = frozenset(e.kind for e in self.for_flow(flow_id))
        return kinds


def group_by_flow(events: list[Event]) -> dict[int | None, list[Event]]:
    """``events`` grouped by flow id, each group in the order of ``events``."""
    out: dict[int | None, list[Event]] = {}
    for e in events:
        group = out.get(e.flow_id)
        if group is None:
            out[e.flow_id] = [e]
        else:
            group.append(e)
    return out


_frame_of = attrgetter("frame")
