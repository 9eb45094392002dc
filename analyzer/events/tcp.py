"""Transport-level facts for the timeline: connection set-up and tear-down packets, ICMP errors, flow ends.

Only packets that carry SYN, FIN or RST (and ICMP errors) become events, so a long session costs a handful.
"""

from __future__ import annotations

from typing import ClassVar

from analyzer.events.base import Event, event


@event
class TcpControl(Event):
    """A TCP packet with SYN, FIN or RST (``kind`` names which; one class per kind below).

    Fields: ``src``/``dst`` (``addr:port`` of this packet's sender and receiver); ``attempt`` (for a SYN: 1, then 2..
    for each retransmission with the same sequence number; else 1); ``payload`` (bytes of data each way delivered on
    the connection before this packet: a tuple ``(to_server, to_client)``).
    """

    kind: ClassVar[str] = "tcp.control"
    layer: ClassVar[str] = "tcp"
    src: str
    dst: str
    attempt: int = 1
    payload: tuple[int, int] = (0, 0)

    def summary(self) -> str:
        name = self.kind.split(".", 1)[1].upper().replace("_", "-")
        again = f" (attempt {self.attempt})" if self.attempt > 1 else ""
        return f"{name} {self.src} → {self.dst}{again}"


@event
class TcpSyn(TcpControl):
    kind: ClassVar[str] = "tcp.syn"


@event
class TcpSynAck(TcpControl):
    kind: ClassVar[str] = "tcp.syn_ack"


@event
class TcpFin(TcpControl):
    kind: ClassVar[str] = "tcp.fin"


@event
class TcpRst(TcpControl):
    kind: ClassVar[str] = "tcp.rst"


@event
class IcmpError(Event):
    """An ICMP/ICMPv6 error quoting a packet of this flow. ``detail`` as ``port unreachable from 10.0.0.1``;
    ``unreachable`` tells destination-unreachable from other errors (time exceeded, packet too big)."""

    kind: ClassVar[str] = "tcp.icmp_error"
    layer: ClassVar[str] = "tcp"
    detail: str
    unreachable: bool

    def summary(self) -> str:
        return f"ICMP {self.detail}"


@event
class FlowEnd(Event):
    """A flow's summary when it ended (or the capture did): ``frame`` is its last packet.

    Fields: ``proto``; ``client``/``server`` (``addr:port``); ``state`` (Zeek conn_state); ``history`` (Zeek
    letters); ``packets`` and ``payload_bytes`` (tuples: to server, to client); ``anomalies`` (tuple of
    ``(name, count, first_frame)``, e.g. ``("tcp.retransmission", 4, 31)``).
    """

    kind: ClassVar[str] = "tcp.flow_end"
    layer: ClassVar[str] = "tcp"
    proto: str
    client: str
    server: str
    state: str
    history: str
    packets: tuple[int, int]
    payload_bytes: tuple[int, int]
    anomalies: tuple[tuple[str, int, int], ...] = ()

    def summary(self) -> str:
        extra = "".join(f", {n}×{c}" for n, c, _ in self.anomalies)
        return (
            f"{self.proto} {self.client} → {self.server} ended {self.state} {self.history or '-'}, "
            f"{self.payload_bytes[0]}/{self.payload_bytes[1]} bytes{extra}"
        )
