"""DNS decoders (sans-IO): every UDP datagram of a capture (``DnsDecoder``) and DNS over TCP (``DnsTcpDecoder``).

Both parse with dnspython's ``dns.message.from_wire`` in its lenient mode (``continue_on_error``): a message that
is malformed part-way still gives what was read before that point (header, first question, leading records), and
the unread rest is reported as a ``dns.malformed`` DecodeAnomaly. In that mode ``from_wire`` raises only
``dns.message.ShortHeader`` (fewer than 12 bytes, a ``DNSException``); every other problem is collected in
``Message.errors``. Bytes after the last record are ignored. TSIG signatures are not checked (no keys).

Queries and responses are matched by (flow, id, qname case-insensitively, qtype) in ``DnsTransactions``, which
both decoders share: responses name the query they answer, and ``close()`` reports the queries never answered.

Limits: at most ``max_pending`` queries wait for a response (the oldest are forgotten beyond that, and a
``dns.pending_limit`` DecodeAnomaly says so); ``MAX_ANSWERED`` answered queries are remembered so that a repeated
response still names its query; a flow direction whose ``MAX_UNDECODABLE`` consecutive messages give nothing but a
``dns.malformed`` anomaly is no longer decoded (``dns.stopped``), so non-DNS traffic on port 53 costs a few events.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import dns.flags
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

if TYPE_CHECKING:
    import dns.message
    import dns.name
    import dns.rrset

from analyzer.budgets import DNS_PARSE_CACHE
from analyzer.decoders.dns_wire import Quick, Record, quick
from analyzer.events.base import DecodeAnomaly, Event, StreamChunk, StreamGap
from analyzer.events.dns import DnsAnswer, DnsQuery, DnsResponse, DnsUnanswered

MAX_PENDING = 10_000
MAX_ANSWERED = 4_096
MAX_UNDECODABLE = 8
MAX_CNAME_CHAIN = 16

_QR = int(dns.flags.QR)
_TC = int(dns.flags.TC)
_AA = int(dns.flags.AA)
_A, _AAAA, _CNAME = int(dns.rdatatype.A), int(dns.rdatatype.AAAA), int(dns.rdatatype.CNAME)
_IN = int(dns.rdataclass.IN)
_QUERY = int(dns.opcode.QUERY)
_NAME_TARGETS = frozenset(
    int(t) for t in (dns.rdatatype.CNAME, dns.rdatatype.DNAME, dns.rdatatype.NS, dns.rdatatype.PTR)
)
# question classes taken as evidence that a partly malformed message is DNS at all (IN, CH, HS, NONE, ANY)
_KNOWN_CLASSES = frozenset((1, 3, 4, 254, 255))

_type_names: dict[int, str] = {}
_rcode_names: dict[int, str] = {}


def type_name(rdtype: int) -> str:
    """Mnemonic of a record type: ``A``, ``AAAA``, ``URI``; ``TYPE65280`` when unassigned."""
    name = _type_names.get(rdtype)
    if name is None:
        name = _type_names[rdtype] = dns.rdatatype.to_text(rdtype)
    return name


def rcode_name(rcode: int) -> str:
    """Mnemonic of a full (extended) response code: ``NOERROR``, ``BADVERS``; ``RCODE12`` when unassigned."""
    name = _rcode_names.get(rcode)
    if name is None:
        text = dns.rcode.to_text(dns.rcode.Rcode.make(rcode))
        name = _rcode_names[rcode] = f"RCODE{rcode}" if text.isdigit() else text
    return name


# bytes dnspython writes unescaped in a label (``dns.name._escapify``): printable ASCII except ``"().;@$\``
_PLAIN = bytes(c for c in range(0x21, 0x7F) if c not in b'"().;@$\\')


def name_text(name: dns.name.Name) -> str:
    """A name in presentation format without the trailing dot, as ``Name.to_text(omit_final_dot=True)`` writes it
    (computed directly when no label needs escaping); the root is ``"."``."""
    labels = name.labels
    if len(labels) > 1 and not labels[-1]:
        for label in labels[:-1]:
            if label.translate(None, _PLAIN):
                break
        else:
            return b".".join(labels[:-1]).decode("ascii")
    return name.to_text(omit_final_dot=True)


def parse(payload: bytes) -> tuple[dns.message.Message | None, str]:
    """Parse one DNS message leniently. Returns ``(message, "")`` when all of it was decoded, ``(message, text)``
    when only a leading part was (``message`` holds that part, ``text`` says where decoding stopped), and
    ``(None, text)`` when not even the 12-byte header is there."""
    import dns.exception  # dnspython's parser, imported when a message first needs it (``dns_wire.quick`` reads
    import dns.message  # the plain ones): 45 to 70 ms of every process's start otherwise

    try:
        msg = dns.message.from_wire(
            payload, keyring=False, one_rr_per_rrset=True, ignore_trailing=True, continue_on_error=True
        )
    except dns.exception.DNSException:  # ShortHeader: the only exception the lenient mode lets out
        return None, f"{len(payload)} bytes, shorter than the 12-byte DNS header"
    errors = msg.errors
    if not errors:
        return msg, ""
    first = errors[0]
    text = str(first.exception).rstrip(".") or type(first.exception).__name__
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return msg, f"{text} at byte {first.offset} of {len(payload)}{more}; the rest of the message is not decoded"


@functools.lru_cache(maxsize=DNS_PARSE_CACHE)
def parse_cached(body: bytes) -> tuple[dns.message.Message | None, str]:
    """``parse`` of a message whose 2-byte id is cut off (``body``): a gateway sees the same queries and answers
    again and again with only the id changed, and dnspython takes a tenth of a millisecond a message. The
    message returned is shared: read it, never change it; its ``id`` is 0 (take the id from the bytes)."""
    return parse(b"\0\0" + body)


class Read(NamedTuple):
    """What ``DnsTransactions`` reads of one message: plain values, so that a message seen again costs one cache
    look-up (``read_cached``) instead of dnspython's flag enums and properties."""

    problem: str  # ``parse``'s text: "" when all of the message was decoded
    header: bool  # the 12-byte header was there (else nothing below is read)
    response: bool  # QR
    truncated: bool  # TC
    authoritative: bool  # AA
    opcode_query: bool  # opcode QUERY
    question: bool  # it has a question (the fields below are its first one's)
    known_class: bool  # the question's class is in ``_KNOWN_CLASSES``
    qname: str  # ``name_text`` of the question's name ("" without a question)
    rdtype: int  # the question's type (-1 without a question)
    qtype: str  # its mnemonic ("" without a question)
    rcode: int  # full (extended) response code
    answers: tuple[DnsAnswer, ...]  # ``_answers`` of the answer section, for the question's name
    addresses: tuple[str, ...]
    cname_chain: tuple[str, ...]


def read(msg: dns.message.Message | None, problem: str) -> Read:
    """The ``Read`` of ``parse``'s result."""
    if msg is None:
        return Read(problem, False, False, False, False, False, False, False, "", -1, "", 0, (), (), ())
    flags = int(msg.flags)
    question = msg.question[0] if msg.question else None
    if question is None:
        qname, rdtype, qtype, known_class = "", -1, "", False
    else:
        qname, rdtype = name_text(question.name), question.rdtype
        qtype, known_class = type_name(rdtype), question.rdclass in _KNOWN_CLASSES
    answers, addresses, chain = _answers(qname if question is not None else None, _records(msg.answer))
    return Read(
        problem,
        True,
        bool(flags & _QR),
        bool(flags & _TC),
        bool(flags & _AA),
        msg.opcode() == dns.opcode.QUERY,
        question is not None,
        known_class,
        qname,
        int(rdtype),
        qtype,
        int(msg.rcode()),
        answers,
        addresses,
        chain,
    )


def read_quick(q: Quick) -> Read:
    """The ``Read`` of a message ``dns_wire.quick`` took (all of it decoded: no problem to report)."""
    flags, qname, rdtype, qclass, records = q
    answers, addresses, chain = _answers(qname, records)
    return Read(
        "",
        True,
        bool(flags & _QR),
        bool(flags & _TC),
        bool(flags & _AA),
        (flags >> 11) & 0xF == _QUERY,
        True,
        qclass in _KNOWN_CLASSES,
        qname,
        rdtype,
        type_name(rdtype),
        flags & 0xF,  # no OPT record: no extended bits
        answers,
        addresses,
        chain,
    )


@functools.lru_cache(maxsize=DNS_PARSE_CACHE)
def read_cached(body: bytes) -> Read:
    """``read`` of the message without its 2-byte id (``body``), kept for the next time: by ``dns_wire.quick``
    when the message is that plain, else of ``parse_cached(body)`` (dnspython)."""
    q = quick(b"\0\0" + body)
    if q is not None:
        return read_quick(q)
    return read(*parse_cached(body))


def _records(answer: list[dns.rrset.RRset]) -> list[Record]:
    """The records of an answer section as dnspython read it: an address for a class IN A/AAAA record (other
    classes have another address format: dnspython keeps their data generic), a name for a record pointing at
    one, else the record's presentation text."""
    out = []
    for rrset in answer:
        owner = name_text(rrset.name)
        rdtype = rrset.rdtype
        address = (rdtype == _A or rdtype == _AAAA) and rrset.rdclass == _IN
        for rd in rrset:
            if address:
                value = rd.address
            elif rdtype in _NAME_TARGETS:
                value = name_text(rd.target)
            else:
                value = rd.to_text()
            out.append((owner, rdtype, rrset.ttl, value, address))
    return out


def _answers(
    qname: str | None, records: Iterable[Record]
) -> tuple[tuple[DnsAnswer, ...], tuple[str, ...], tuple[str, ...]]:
    """(answers, addresses, cname_chain) of an answer section's ``records`` (``_records``, ``dns_wire.quick``).
    The chain follows CNAME records from ``qname`` (case-insensitively; the first CNAME per owner; at most
    ``MAX_CNAME_CHAIN`` steps; it stops at a loop); the addresses are the values of the address records owned by
    ``qname`` or a name of the chain, in wire order."""
    answers: list[DnsAnswer] = []
    cnames: dict[str, str] = {}
    owned: list[tuple[str, str]] = []  # (owner lower-cased, address) of address records
    for owner, rdtype, ttl, value, address in records:
        if address:
            owned.append((owner.lower(), value))
        elif rdtype == _CNAME:
            cnames.setdefault(owner.lower(), value)
        answers.append(DnsAnswer(owner, type_name(rdtype), ttl, value))
    if qname is None:
        return tuple(answers), (), ()
    chain: list[str] = []
    current = qname.lower()
    reached = {current}
    while current in cnames and len(chain) < MAX_CNAME_CHAIN:
        target = cnames[current]
        current = target.lower()
        if current in reached:
            break
        chain.append(target)
        reached.add(current)
    addresses = tuple(address for owner, address in owned if owner in reached)
    return tuple(answers), addresses, tuple(chain)


@dataclass(slots=True)
class _Query:
    """A query waiting for (or recently given) a response."""

    flow_id: int
    direction: int
    id: int
    qname: str
    qtype: str
    first_frame: int
    first_ts: int
    last_frame: int
    last_ts: int
    attempts: int = 1


class DnsTransactions:
    """Query/response matching shared by the UDP and TCP decoders: one DNS message in, events out.

    Key: (flow id, message id, qname lower-cased, qtype number). A query with the key of a query still waiting is
    counted as a repeat (``attempt`` 2..); a response takes the waiting query (it is then remembered among the
    last ``MAX_ANSWERED`` answered ones, so a repeated response still names it); a query after the response starts
    a new exchange (``attempt`` 1).
    """

    def __init__(self, transport: str, max_pending: int = MAX_PENDING) -> None:
        self.transport = transport
        self.max_pending = max_pending
        self._pending: dict[tuple[int, int, str, int], _Query] = {}
        # oldest first; an ``OrderedDict``: a plain dict's oldest entry, deleted entry after entry, is found past
        # the holes the deletions left (measured at this size: 2.1 µs per response, 0.24 with ``popitem``)
        self._answered: OrderedDict[tuple[int, int, str, int], _Query] = OrderedDict()
        self._undecodable: dict[tuple[int, int], int] = {}  # (flow, direction) -> consecutive anomaly-only messages
        self._stopped: set[tuple[int, int]] = set()
        self.forgotten = 0  # pending queries dropped at the limit

    def stopped(self, flow_id: int, direction: int) -> bool:
        """Whether messages of this flow direction are no longer decoded (see ``MAX_UNDECODABLE``)."""
        return (flow_id, direction) in self._stopped

    def message(self, flow_id: int, direction: int, payload: bytes, frame: int, ts_ns: int) -> list[Event]:
        """Decode one whole DNS message (a UDP payload, or a TCP message without its length prefix)."""
        if (flow_id, direction) in self._stopped:
            return []
        r = read_cached(payload[2:]) if len(payload) >= 2 else read(*parse(payload))
        problem = r.problem
        if not r.header:
            return [
                self._malformed("message", problem, flow_id, direction, frame, ts_ns),
                *self._undecodable_message(flow_id, direction, frame, ts_ns),
            ]
        mid = (payload[0] << 8) | payload[1]
        events: list[Event] = []
        if problem:
            what = f"{'response' if r.response else 'query'} id 0x{mid:04x}"
            events.append(self._malformed(what, problem, flow_id, direction, frame, ts_ns))
            if not r.question or not r.opcode_query or not r.known_class:
                # nothing left that shows this is DNS at all: report the bytes only
                return [*events, *self._undecodable_message(flow_id, direction, frame, ts_ns)]
        if self._undecodable:
            self._undecodable.pop((flow_id, direction), None)
        key = (flow_id, mid, r.qname.lower(), r.rdtype)
        if r.response:
            events.append(self._response(r, key, direction, frame, ts_ns))
        else:
            events.append(self._query(mid, key, r.qname, r.qtype, direction, frame, ts_ns))
            if len(self._pending) > self.max_pending:
                events.extend(self._forget_oldest(flow_id, direction, frame, ts_ns))
        return events

    @staticmethod
    def _malformed(what: str, problem: str, flow_id: int, direction: int, frame: int, ts: int) -> DecodeAnomaly:
        return DecodeAnomaly(
            ts_ns=ts,
            frame=frame,
            flow_id=flow_id,
            direction=direction,
            decoder="dns",
            name="dns.malformed",
            detail=f"{what}: {problem}",
        )

    def _query(
        self, id_: int, key: tuple[int, int, str, int], qname: str, qtype: str, direction: int, frame: int, ts: int
    ) -> DnsQuery:
        q = self._pending.get(key)
        if q is None:
            q = self._pending[key] = _Query(key[0], direction, id_, qname, qtype, frame, ts, frame, ts)
        else:
            q.attempts += 1
            q.last_frame, q.last_ts = frame, ts
        return DnsQuery(
            ts_ns=ts,
            frame=frame,
            flow_id=key[0],
            direction=direction,
            id=id_,
            qname=qname,
            qtype=qtype,
            transport=self.transport,
            attempt=q.attempts,
        )

    def _response(self, r: Read, key: tuple[int, int, str, int], direction: int, frame: int, ts: int) -> DnsResponse:
        q = self._pending.pop(key, None)
        if q is not None:
            self._answered[key] = q
            if len(self._answered) > MAX_ANSWERED:
                self._answered.popitem(last=False)
        else:
            q = self._answered.get(key)
        return DnsResponse(
            ts_ns=ts,
            frame=frame,
            flow_id=key[0],
            direction=direction,
            id=key[1],
            qname=r.qname,
            qtype=r.qtype,
            rcode=r.rcode,
            rcode_name=rcode_name(r.rcode),
            answers=r.answers,
            addresses=r.addresses,
            cname_chain=r.cname_chain,
            truncated=r.truncated,
            authoritative=r.authoritative,
            query_frame=None if q is None else q.first_frame,
            latency_ns=None if q is None else ts - q.last_ts,
            transport=self.transport,
            incomplete=bool(r.problem),
        )

    def _forget_oldest(self, flow_id: int, direction: int, frame: int, ts: int) -> list[Event]:
        del self._pending[next(iter(self._pending))]
        self.forgotten += 1
        if self.forgotten > 1:
            return []
        return [
            DecodeAnomaly(
                ts_ns=ts,
                frame=frame,
                flow_id=flow_id,
                direction=direction,
                decoder="dns",
                name="dns.pending_limit",
                detail=(
                    f"more than {self.max_pending} queries wait for a response: the oldest waiting ones are "
                    "forgotten from here on (no dns.response match, no dns.unanswered for them)"
                ),
            )
        ]

    def _undecodable_message(self, flow_id: int, direction: int, frame: int, ts: int) -> list[Event]:
        streak = self._undecodable.get((flow_id, direction), 0) + 1
        if streak < MAX_UNDECODABLE:
            self._undecodable[(flow_id, direction)] = streak
            return []
        del self._undecodable[(flow_id, direction)]
        self._stopped.add((flow_id, direction))
        return [
            DecodeAnomaly(
                ts_ns=ts,
                frame=frame,
                flow_id=flow_id,
                direction=direction,
                decoder="dns",
                name="dns.stopped",
                detail=(
                    f"{MAX_UNDECODABLE} consecutive messages in this direction could not be decoded as DNS; "
                    "the rest of this direction is not decoded"
                ),
            )
        ]

    def stop(self, flow_id: int, direction: int) -> None:
        """Decode no more messages of this flow direction."""
        self._stopped.add((flow_id, direction))

    def close(self, frame: int, ts_ns: int, flow_id: int | None = None) -> list[Event]:
        """The capture (or the TCP connection) ended at ``ts_ns``: a ``DnsUnanswered`` for every waiting query, in
        order of their first frame, then a ``dns.pending_limit`` anomaly if queries were forgotten."""
        events: list[Event] = [
            DnsUnanswered(
                ts_ns=q.first_ts,
                frame=q.first_frame,
                flow_id=q.flow_id,
                direction=q.direction,
                id=q.id,
                qname=q.qname,
                qtype=q.qtype,
                attempts=q.attempts,
                last_frame=q.last_frame,
                waited_ns=ts_ns - q.first_ts,
                transport=self.transport,
            )
            for q in sorted(self._pending.values(), key=lambda q: q.first_frame)
        ]
        self._pending.clear()
        self._answered.clear()
        if self.forgotten:
            events.append(
                DecodeAnomaly(
                    ts_ns=ts_ns,
                    frame=frame,
                    flow_id=flow_id,
                    direction=None,
                    decoder="dns",
                    name="dns.pending_limit",
                    detail=(
                        f"{self.forgotten} queries were forgotten because more than {self.max_pending} waited for "
                        "a response at once: whether they were answered is not reported"
                    ),
                )
            )
            self.forgotten = 0
        return events


class DnsDecoder:
    """DNS over UDP: every datagram of every DNS flow of one capture (``DatagramDecoder``).

    Never raises for the bytes it is given: a malformed datagram becomes a ``dns.malformed`` DecodeAnomaly (plus
    a ``DnsQuery``/``DnsResponse`` when its header and first question could be read).
    """

    name: ClassVar[str] = "dns"

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self._tx = DnsTransactions("udp", max_pending)

    def datagram(self, flow_id: int, direction: int, payload: bytes, frame: int, ts_ns: int) -> list[Event]:
        return self._tx.message(flow_id, direction, payload, frame, ts_ns)

    def close(self, frame: int, ts_ns: int) -> list[Event]:
        return self._tx.close(frame, ts_ns)


class DnsTcpDecoder:
    """DNS over TCP, one connection (``StreamDecoder``): messages framed by a 2-byte length prefix, any number per
    chunk or split across chunks.

    A gap (missing bytes) drops the incomplete message before it (``dns.gap`` when there was one); decoding resumes
    only if the bytes right after the gap start a well-formed DNS message going the expected way (a query from the
    client, a response from the server), else the direction stops (``dns.stopped``). ``close()`` reports bytes of an
    incomplete message (``dns.incomplete_message``) and the queries this connection never answered.
    """

    name: ClassVar[str] = "dns"

    def __init__(self, flow_id: int, max_pending: int = MAX_PENDING) -> None:
        self.flow_id = flow_id
        self._tx = DnsTransactions("tcp", max_pending)
        self._buf = (bytearray(), bytearray())
        self._resync = [False, False]  # the next message must prove the direction is back in step
        self._last = [(0, 0), (0, 0)]  # (frame, ts) of the last bytes seen per direction

    def feed(self, chunk: StreamChunk) -> list[Event]:
        d = chunk.direction
        if self._tx.stopped(self.flow_id, d):
            return []
        buf = self._buf[d]
        buf += chunk.data
        self._last[d] = (chunk.at_frame, chunk.ts_ns)
        events: list[Event] = []
        pos = 0
        while len(buf) - pos >= 2:
            end = pos + 2 + (buf[pos] << 8 | buf[pos + 1])
            if end > len(buf):
                break
            payload = bytes(buf[pos + 2 : end])
            if self._resync[d]:
                if not _starts_in_step(payload, d):
                    events.append(self._stop(d, chunk.at_frame, chunk.ts_ns, len(buf) - pos))
                    buf.clear()
                    return events
                self._resync[d] = False
            pos = end
            events.extend(self._tx.message(self.flow_id, d, payload, chunk.at_frame, chunk.ts_ns))
            if self._tx.stopped(self.flow_id, d):
                buf.clear()
                return events
        del buf[:pos]
        return events

    def _stop(self, d: int, frame: int, ts: int, size: int) -> DecodeAnomaly:
        self._tx.stop(self.flow_id, d)
        return DecodeAnomaly(
            ts_ns=ts,
            frame=frame,
            flow_id=self.flow_id,
            direction=d,
            decoder="dns",
            name="dns.stopped",
            detail=(
                f"the {size} bytes received after the gap do not start a whole DNS "
                f"{'query' if d == 0 else 'response'}; the rest of this direction is not decoded"
            ),
        )

    def gap(self, gap: StreamGap) -> list[Event]:
        """Bytes are missing (the TCP layer reports the gap itself): drop the incomplete message before it, saying
        so with ``dns.gap`` if there was one, and check the next message before trusting the framing again."""
        d = gap.direction
        if self._tx.stopped(self.flow_id, d):
            return []
        self._resync[d] = True
        buf = self._buf[d]
        if not buf:
            return []
        held = len(buf)
        buf.clear()
        return [
            DecodeAnomaly(
                ts_ns=gap.ts_ns,
                frame=gap.frame,
                flow_id=self.flow_id,
                direction=d,
                decoder="dns",
                name="dns.gap",
                detail=(
                    f"{gap.size} bytes missing at stream offset {gap.offset} ({gap.reason.name.lower()}): the "
                    f"{held} bytes received of the message before it are dropped"
                ),
            )
        ]

    def close(self, frame: int, ts_ns: int) -> list[Event]:
        events: list[Event] = []
        for d, buf in enumerate(self._buf):
            if buf and not self._tx.stopped(self.flow_id, d):
                at, ts = self._last[d]
                if len(buf) >= 2:
                    size = f"{len(buf) - 2} of the {buf[0] << 8 | buf[1]} bytes of a message"
                else:
                    size = "1 byte of a 2-byte length prefix"
                events.append(
                    DecodeAnomaly(
                        ts_ns=ts,
                        frame=at,
                        flow_id=self.flow_id,
                        direction=d,
                        decoder="dns",
                        name="dns.incomplete_message",
                        detail=f"the connection ended after {size}",
                    )
                )
            buf.clear()
        events.extend(self._tx.close(frame, ts_ns, self.flow_id))
        return events


def _starts_in_step(payload: bytes, direction: int) -> bool:
    """Whether ``payload`` is a whole, well-formed DNS message with a question, opcode QUERY, and the QR bit that
    ``direction`` expects (a query from the client, a response from the server)."""
    msg, problem = parse(payload)
    return (
        msg is not None
        and not problem
        and bool(msg.question)
        and msg.opcode() == dns.opcode.QUERY
        and bool(msg.flags & _QR) == (direction == 1)
    )
