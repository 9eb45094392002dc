"""Differential test: the DNS decoders against tshark 4.0.17 on every capture of ``captures-external/dns/``, the other
external captures with DNS (``ALSO_DNS``) and every project capture (``captures/*.pcap``), DNS on port 53 over UDP
and TCP.

Per capture, tshark runs once (``-T fields``); then, frame by frame:
- the DNS frames: every frame tshark shows as a query is one of our ``DnsQuery`` events, every response one of our
  ``DnsResponse`` events, and we have no other;
- per response: id, qname, qtype, rcode (tshark's ``dns.flags.rcode`` plus ``dns.resp.ext_rcode`` << 4) and the A and
  AAAA records of the answer section;
- which query it answers (tshark ``dns.response_to``) and the latency (tshark ``dns.time``);
- which queries were never answered: tshark's queries without ``dns.response_in`` versus our ``DnsUnanswered``.

Documented differences, encoded below rather than loosened:
- a query repeated before its response (same flow, id, qname, qtype): tshark links the response to the last copy
  only (``dns.response_to``), and the earlier copies get no ``dns.response_in``; we count the copies as attempts of
  one exchange, answered or not as a whole. So unanswered queries are compared per exchange (our attempts), and
  ``dns.response_to`` must be one of the exchange's frames;
- a response repeated after the first (tshark: ``dns.retransmit_response_in``, no ``dns.response_to``): we link it
  to the same query as the first copy;
- a response dnspython cannot decode to the end (``ndpi__malformed_dns.pcap``: a second question with a forward
  compression pointer, which tshark shows as ``<Name too long>``) is ``incomplete`` with a ``dns.malformed``
  anomaly: its id, qname, qtype and header rcode are compared, its answers are not (we did not read them, tshark
  shows the A record that precedes the CNAME it cannot read either). ``MALFORMED`` lists these frames.
"""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

import dns.rdatatype
import pytest

from analyzer.decoders.dns import DnsDecoder, DnsTcpDecoder
from analyzer.events.base import DecodeAnomaly, Event
from analyzer.events.dns import DnsQuery, DnsResponse, DnsUnanswered
from tests import tshark_oracle
from tests.conftest import EXTERNAL, PROJECT_CAPTURES, capture_files, capture_id
from tests.decoders.drive import run_datagram_decoder, run_stream_decoder

# external captures outside dns/ that carry DNS on port 53 (found by scanning them all once); they add AAAA
# answers, which neither dns/ nor the lab captures have
ALSO_DNS = {
    "link-layer/zeek__pcapng-multi-interface.pcapng",
    "ocpp/checkocpp__capt.pcapng",
    "ocpp/checkocpp__capt_error2.0.1.pcapng",
    "ocpp/checkocpp__capt_error2.0.pcapng",
    "ocpp/checkocpp__extralargeOPENEVSE.pcapng",
    "tls-misc/arkime__curl-enabled-tls13.pcap",
}
CAPTURES = [
    p
    for p in capture_files()
    if p.is_relative_to(EXTERNAL / "dns")
    or (p.is_relative_to(EXTERNAL) and str(p.relative_to(EXTERNAL)) in ALSO_DNS)
    or (p.parent == PROJECT_CAPTURES and p.suffix == ".pcap")
]

# frames whose DNS message dnspython cannot decode to the end: (capture name, frame) -> why
MALFORMED = {
    ("ndpi__malformed_dns.pcap", f): "second question: compression pointer forward to byte 1280" for f in (2, 3, 5, 6)
}

FIELDS = (
    "frame.number",
    "dns.id",
    "dns.flags.response",
    "dns.qry.name",
    "dns.qry.type",
    "dns.flags.rcode",
    "dns.resp.ext_rcode",
    "dns.count.answers",
    "dns.resp.type",
    "dns.a",
    "dns.aaaa",
    "dns.response_in",
    "dns.response_to",
    "dns.retransmit_response_in",
    "dns.time",
)
DISPLAY_FILTER = "dns && (udp.port == 53 || tcp.port == 53) && !icmp && !icmpv6"
AGGREGATOR = "\x1f"  # between the values of a field that occurs several times (not a character of any name here)


@dataclass
class Row:
    """One DNS frame as tshark shows it (fields holding several values are lists)."""

    frame: int
    id: int
    response: bool
    qname: str
    qtype: int
    rcode: int | None
    a: list[str]
    aaaa: list[str]
    response_in: int | None
    response_to: int | None
    retransmit_of: int | None
    time_ns: int | None


def _answers_of_type(types: list[str], count: int, values: list[str], rdtype: int) -> list[str]:
    """The values of ``dns.a``/``dns.aaaa`` that belong to the answer section: tshark lists the records of every
    section in wire order, and the answer section is the first ``dns.count.answers`` of them."""
    return values[: types[:count].count(str(rdtype))]


@cache
def tshark_rows(path: Path) -> dict[int, Row]:
    # two passes: a query frame learns its dns.response_in only from the second. ICMP errors are left out: tshark
    # dissects the DNS message an ICMP error quotes (e.g. port unreachable), which is not a DNS message sent
    args = ["-2", "-r", str(path), "-Y", DISPLAY_FILTER, "-T", "fields"]
    args += ["-E", f"aggregator={AGGREGATOR}"]
    for f in FIELDS:
        args += ["-e", f]
    rows: dict[int, Row] = {}
    for line in tshark_oracle._run(args).splitlines():
        v = dict(zip(FIELDS, (c.split(AGGREGATOR) if c else [] for c in line.split("\t")), strict=True))
        frame = int(v["frame.number"][0])
        assert len(v["dns.id"]) == 1, f"frame {frame}: several DNS messages in one frame (not handled here)"
        types, count = v["dns.resp.type"], int(v["dns.count.answers"][0])
        rcode = None
        if v["dns.flags.rcode"]:
            rcode = int(v["dns.flags.rcode"][0]) | (
                int(v["dns.resp.ext_rcode"][0], 16) << 4 if v["dns.resp.ext_rcode"] else 0
            )
        qname = v["dns.qry.name"][0] if v["dns.qry.name"] else ""
        rows[frame] = Row(
            frame=frame,
            id=int(v["dns.id"][0], 16),
            response=v["dns.flags.response"][0] in ("1", "True"),
            qname="." if qname == "<Root>" else qname,
            qtype=int(v["dns.qry.type"][0]) if v["dns.qry.type"] else -1,
            rcode=rcode,
            a=_answers_of_type(types, count, v["dns.a"], 1),
            aaaa=[str(ipaddress.ip_address(x)) for x in _answers_of_type(types, count, v["dns.aaaa"], 28)],
            response_in=int(v["dns.response_in"][0]) if v["dns.response_in"] else None,
            response_to=int(v["dns.response_to"][0]) if v["dns.response_to"] else None,
            retransmit_of=int(v["dns.retransmit_response_in"][0]) if v["dns.retransmit_response_in"] else None,
            time_ns=int(Decimal(v["dns.time"][0]) * 1_000_000_000) if v["dns.time"] else None,
        )
    return rows


@pytest.fixture(scope="module", autouse=True)
def _tshark_in_parallel() -> None:
    """Run tshark on every capture concurrently: each run costs ~0.15 s, most of it tshark's start-up."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(tshark_rows, CAPTURES))


def our_events(path: Path) -> list[Event]:
    events = run_datagram_decoder(path, DnsDecoder())
    events += run_stream_decoder(path, lambda fid, _data, _cp, sp: DnsTcpDecoder(fid) if sp == 53 else None)
    return events


def exchanges(queries: list[DnsQuery]) -> dict[int, list[int]]:
    """Our exchanges: first query frame -> frames of its attempts (a query with ``attempt`` 1 starts one)."""
    current: dict[tuple[int | None, int, str, str], list[int]] = {}
    out: dict[int, list[int]] = {}
    for q in sorted(queries, key=lambda q: q.frame):
        key = (q.flow_id, q.id, q.qname.lower(), q.qtype)
        if q.attempt == 1:
            current[key] = out[q.frame] = [q.frame]
        else:
            current[key].append(q.frame)
            assert len(current[key]) == q.attempt
    return out


def test_the_captures_are_there() -> None:
    assert len([p for p in CAPTURES if p.is_relative_to(EXTERNAL / "dns")]) == 10
    assert len([p for p in CAPTURES if p.is_relative_to(EXTERNAL)]) == 10 + len(ALSO_DNS)
    assert len([p for p in CAPTURES if p.is_relative_to(PROJECT_CAPTURES)]) >= 30


@pytest.mark.parametrize("path", CAPTURES, ids=capture_id)
def test_dns_matches_tshark(path: Path) -> None:
    rows = tshark_rows(path)
    events = our_events(path)
    queries = [e for e in events if isinstance(e, DnsQuery)]
    responses = {e.frame: e for e in events if isinstance(e, DnsResponse)}
    assert len(responses) == len([e for e in events if isinstance(e, DnsResponse)]), "one response per frame"
    unanswered = {e.frame: e for e in events if isinstance(e, DnsUnanswered)}
    anomalies = [e for e in events if isinstance(e, DecodeAnomaly)]

    malformed = {f for (name, f) in MALFORMED if name == path.name}
    assert {(e.name, e.frame) for e in anomalies} == {("dns.malformed", f) for f in malformed}

    assert {q.frame for q in queries} == {r.frame for r in rows.values() if not r.response}
    assert set(responses) == {r.frame for r in rows.values() if r.response}
    for q in queries:
        row = rows[q.frame]
        assert (q.id, q.qname, dns.rdatatype.from_text(q.qtype)) == (row.id, row.qname, row.qtype), q.frame

    groups = exchanges(queries)
    group_of = {f: first for first, frames in groups.items() for f in frames}
    for frame, ours in responses.items():
        row = rows[frame]
        got = (ours.id, ours.qname, dns.rdatatype.from_text(ours.qtype) if ours.qtype else -1, ours.rcode)
        assert got == (row.id, row.qname, row.qtype, row.rcode), f"frame {frame}"
        if ours.incomplete:
            assert frame in malformed, f"frame {frame}: incomplete, but tshark reads it"
        else:
            a = [x.value for x in ours.answers if x.rtype == "A"]
            aaaa = [str(ipaddress.ip_address(x.value)) for x in ours.answers if x.rtype == "AAAA"]
            assert (a, aaaa) == (row.a, row.aaaa), f"frame {frame}"
        if row.response_to is not None:
            assert ours.query_frame == group_of[row.response_to], f"frame {frame}"
            assert ours.latency_ns == row.time_ns, f"frame {frame}"
        elif row.retransmit_of is not None:
            assert ours.query_frame == responses[row.retransmit_of].query_frame, f"frame {frame}"
        else:
            assert ours.query_frame is None, f"frame {frame}"

    tshark_unanswered = {first for first, frames in groups.items() if all(rows[f].response_in is None for f in frames)}
    assert set(unanswered) == tshark_unanswered
    for first, u in unanswered.items():
        assert (u.attempts, u.last_frame) == (len(groups[first]), groups[first][-1])
