"""DNS facts for the timeline: queries, responses (matched to their query) and queries never answered.

Names are text without the trailing dot (the root name is ``"."``; a message without a question has ``qname``
``""`` and ``qtype`` ``""``), in DNS presentation format (dnspython's escaping: ``\\032`` for a space, ``\\.`` for
a dot inside a label). Record types are mnemonics (``A``, ``AAAA``, ``CNAME``; ``TYPE65280`` when unassigned).
"""

from __future__ import annotations

from typing import ClassVar

from analyzer.events.base import Event, event


def _cut(text: str, size: int = 60) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.1f} ms" if ns < 10**9 else f"{ns / 1e9:.1f} s"


@event(kw_only=False)
class DnsAnswer:
    """One record of a response's answer section: ``name`` (owner), ``rtype``, ``ttl`` (seconds) and ``value``
    (presentation format; a target name such as a CNAME's has no trailing dot)."""

    name: str
    rtype: str
    ttl: int
    value: str


@event
class DnsQuery(Event):
    """A DNS query (QR bit clear).

    Fields: ``id`` (message ID); ``qname``/``qtype`` (the first question); ``transport`` (``udp`` or ``tcp``);
    ``attempt`` (1 for the first query with this id, qname and qtype on this flow since the last response to it,
    2.. for each repeat).
    """

    kind: ClassVar[str] = "dns.query"
    layer: ClassVar[str] = "dns"
    id: int
    qname: str
    qtype: str
    transport: str
    attempt: int = 1

    def summary(self) -> str:
        again = f", attempt {self.attempt}" if self.attempt > 1 else ""
        return f"DNS query {self.qtype} {self.qname} (id 0x{self.id:04x}, {self.transport}{again})"


@event
class DnsResponse(Event):
    """A DNS response (QR bit set), matched to its query by flow, id, qname and qtype.

    Fields: ``id``; ``qname``/``qtype`` (its first question); ``rcode`` (the full response code: the header's 4
    bits plus the EDNS OPT record's extended bits, e.g. 16) and ``rcode_name`` (``NOERROR``, ``NXDOMAIN``,
    ``SERVFAIL``, ``REFUSED``, ``BADVERS``, ...; ``RCODE12`` when unassigned); ``answers`` (the answer section, in
    wire order); ``addresses`` (A and AAAA values whose owner is ``qname`` or a name reached from it through the
    answer section's CNAME records); ``cname_chain`` (the CNAME targets followed from ``qname``, in order; empty
    without CNAME); ``truncated`` (TC bit); ``authoritative`` (AA bit); ``query_frame`` (frame of the first query
    this answers, ``None`` when no such query was captured); ``latency_ns`` (from the latest such query, ``None``
    without one); ``transport``; ``incomplete`` (part of the message could not be decoded: ``answers`` and
    ``addresses`` hold only the records read before that point, ``rcode`` may lack the EDNS bits, and a
    ``dns.malformed`` DecodeAnomaly for the same frame says where).
    """

    kind: ClassVar[str] = "dns.response"
    layer: ClassVar[str] = "dns"
    id: int
    qname: str
    qtype: str
    rcode: int
    rcode_name: str
    answers: tuple[DnsAnswer, ...] = ()
    addresses: tuple[str, ...] = ()
    cname_chain: tuple[str, ...] = ()
    truncated: bool = False
    authoritative: bool = False
    query_frame: int | None = None
    latency_ns: int | None = None
    transport: str = "udp"
    incomplete: bool = False

    def summary(self) -> str:
        text = f"DNS response {self.rcode_name} for {self.qtype} {self.qname}"
        if self.cname_chain:
            text += " → " + " → ".join(self.cname_chain)
        if self.addresses:
            text += ": " + ", ".join(self.addresses)
        elif self.answers:
            shown = [f"{a.rtype} {_cut(a.value)}" for a in self.answers[:3]]
            text += ": " + ", ".join(shown) + (f" (+{len(self.answers) - 3} more)" if len(self.answers) > 3 else "")
        elif self.incomplete:
            text += ": answers not decoded"
        elif self.rcode == 0:
            text += ": no answer records (NODATA)"
        notes = [f"id 0x{self.id:04x}", self.transport]
        if self.latency_ns is not None:
            notes.append(_ms(self.latency_ns))
        if self.truncated:
            notes.append("truncated")
        if self.query_frame is None:
            notes.append("query not captured")
        return f"{text} ({', '.join(notes)})"


@event
class DnsUnanswered(Event):
    """A query (flow, id, qname, qtype) with no response by the end of the capture (or of its TCP connection).

    ``frame``/``ts_ns`` are the first query's. Fields: ``id``, ``qname``, ``qtype``; ``attempts`` (queries sent);
    ``last_frame`` (the last of them); ``waited_ns`` (end of the capture minus the first query's time);
    ``transport``.
    """

    kind: ClassVar[str] = "dns.unanswered"
    layer: ClassVar[str] = "dns"
    id: int
    qname: str
    qtype: str
    attempts: int
    last_frame: int
    waited_ns: int
    transport: str

    def summary(self) -> str:
        times = "once" if self.attempts == 1 else f"{self.attempts} times"
        return (
            f"DNS query {self.qtype} {self.qname} (id 0x{self.id:04x}, {self.transport}) sent {times}, "
            f"no response in {_ms(self.waited_ns)}"
        )
