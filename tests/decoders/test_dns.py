"""DNS decoders, byte by byte: queries, responses and their matching, EDNS extended rcodes, retransmissions,
unanswered queries, malformed input (UDP), and DNS-over-TCP framing (splits, coalesced messages, gaps).

Messages are built with dnspython; the annotated hex constants below spell out the bytes of the key cases (and
are checked against dnspython's own encoding of the same message).
"""

from __future__ import annotations

import dataclasses
import json

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.budgets import DNS_PARSE_CACHE
from analyzer.decoders.dns import (
    MAX_UNDECODABLE,
    DnsDecoder,
    DnsTcpDecoder,
    name_text,
    parse,
    parse_cached,
    read,
    read_cached,
)
from analyzer.decoders.dns_wire import quick
from analyzer.events.base import DecodeAnomaly, Event, GapReason, StreamChunk, StreamGap
from analyzer.events.dns import DnsAnswer, DnsQuery, DnsResponse, DnsUnanswered

S = 1_000_000_000  # ns per second
T0 = 1_700_000_000 * S

QNAME_WIRE = "04 63736d73 07 6578616d706c65 04 74657374 00"  # 4"csms" 7"example" 4"test" 0 (root)

QUERY_A = bytes.fromhex(
    "1234"  # ID 0x1234
    "0100"  # flags: QR=0 (query), opcode 0 (QUERY), RD=1
    "0001 0000 0000 0000"  # QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 0
    + QNAME_WIRE
    + "0001 0001"  # QTYPE 1 (A), QCLASS 1 (IN)
)

NXDOMAIN = bytes.fromhex(
    "1234"  # ID 0x1234
    "8103"  # flags: QR=1 (response), opcode 0, RD=1, RA=0, RCODE 3 (NXDOMAIN)
    "0001 0000 0000 0000" + QNAME_WIRE + "0001 0001"  # QDCOUNT 1, no records  # QTYPE A, QCLASS IN
)

BADVERS = bytes.fromhex(
    "1234"  # ID 0x1234
    "8100"  # flags: QR=1, RD=1, header RCODE 0 (the low 4 bits of the full rcode)
    "0001 0000 0000 0001"  # QDCOUNT 1, ARCOUNT 1 (the OPT pseudo-record)
    + QNAME_WIRE
    + "0001 0001"  # QTYPE A, QCLASS IN
    "00"  # OPT owner: the root name
    "0029"  # TYPE 41 (OPT)
    "04d0"  # CLASS field = requestor's UDP payload size, 1232
    "01"  # TTL byte 1: EXTENDED-RCODE 0x01, the upper 8 bits: full rcode = 0x01 << 4 | 0 = 16 (BADVERS)
    "00"  # TTL byte 2: EDNS VERSION 0
    "0000"  # TTL bytes 3-4: DO=0, Z=0
    "0000"  # RDLENGTH 0
)


def query(qname: str = "csms.example.test", qtype: str = "A", id_: int = 0x1234) -> dns.message.Message:
    return dns.message.make_query(qname, qtype, id=id_)


def response(
    q: dns.message.Message, *records: str, rcode: dns.rcode.Rcode = dns.rcode.NOERROR, edns: bool = False
) -> dns.message.Message:
    """A response to ``q``; each record is ``"owner ttl TYPE value"`` for the answer section."""
    r = dns.message.make_response(q)
    if edns:
        r.use_edns(0)
    r.set_rcode(rcode)
    for text in records:
        owner, ttl, rtype, value = text.split(" ", 3)
        r.answer.append(dns.rrset.from_text(owner, int(ttl), "IN", rtype, value))
    return r


def wire(m: dns.message.Message) -> bytes:
    return m.to_wire()


def udp(dec: DnsDecoder, payload: bytes, frame: int, ts: int | None = None, flow: int = 7) -> list[Event]:
    """Feed one datagram; the direction follows the QR bit (0 = client→server for a query)."""
    direction = 1 if len(payload) > 2 and payload[2] & 0x80 else 0
    return dec.datagram(flow, direction, payload, frame, T0 + frame * S // 100 if ts is None else ts)


def only(events: list[Event], cls: type) -> list:
    return [e for e in events if isinstance(e, cls)]


# -- the annotated bytes are what dnspython writes ------------------------------------------------------------------


def test_annotated_hex_matches_dnspython() -> None:
    q = query()
    assert wire(q) == QUERY_A
    r = response(q, rcode=dns.rcode.NXDOMAIN)
    assert wire(r) == NXDOMAIN
    r = response(q, rcode=dns.rcode.BADVERS, edns=True)
    assert wire(r) == BADVERS


# -- UDP: one message at a time ---------------------------------------------------------------------------------


def test_a_query() -> None:
    [ev] = DnsDecoder().datagram(3, 0, QUERY_A, 10, T0)
    assert ev == DnsQuery(
        ts_ns=T0,
        frame=10,
        flow_id=3,
        direction=0,
        id=0x1234,
        qname="csms.example.test",
        qtype="A",
        transport="udp",
        attempt=1,
    )
    assert ev.kind == "dns.query"
    assert ev.layer == "dns"
    assert ev.summary() == "DNS query A csms.example.test (id 0x1234, udp)"


def test_noerror_with_cname_chain_and_a_records() -> None:
    q = query("www.example.test")
    r = response(
        q,
        "www.example.test. 300 CNAME edge.cdn.test.",
        "edge.cdn.test. 60 CNAME e1.cdn.test.",
        "e1.cdn.test. 20 A 192.0.2.10",
        "e1.cdn.test. 20 A 192.0.2.11",
        "unrelated.test. 20 A 198.51.100.1",  # not reachable from the qname: not an address of it
    )
    dec = DnsDecoder()
    udp(dec, wire(q), 1, T0)
    [ev] = udp(dec, wire(r), 2, T0 + 3_000_000)
    assert isinstance(ev, DnsResponse)
    assert (ev.qname, ev.qtype, ev.rcode, ev.rcode_name) == ("www.example.test", "A", 0, "NOERROR")
    assert ev.cname_chain == ("edge.cdn.test", "e1.cdn.test")
    assert ev.addresses == ("192.0.2.10", "192.0.2.11")
    assert ev.answers == (
        DnsAnswer("www.example.test", "CNAME", 300, "edge.cdn.test"),
        DnsAnswer("edge.cdn.test", "CNAME", 60, "e1.cdn.test"),
        DnsAnswer("e1.cdn.test", "A", 20, "192.0.2.10"),
        DnsAnswer("e1.cdn.test", "A", 20, "192.0.2.11"),
        DnsAnswer("unrelated.test", "A", 20, "198.51.100.1"),
    )
    assert (ev.query_frame, ev.latency_ns, ev.transport) == (1, 3_000_000, "udp")
    assert (ev.truncated, ev.authoritative, ev.incomplete) == (False, False, False)
    assert ev.summary() == (
        "DNS response NOERROR for A www.example.test → edge.cdn.test → e1.cdn.test: 192.0.2.10, 192.0.2.11 "
        "(id 0x1234, udp, 3.0 ms)"
    )


def test_cname_loop_ends_the_chain() -> None:
    q = query("a.test")
    r = response(q, "a.test. 1 CNAME b.test.", "b.test. 1 CNAME a.test.", "b.test. 1 A 192.0.2.1")
    [ev] = udp(DnsDecoder(), wire(r), 1)
    assert ev.cname_chain == ("b.test",)
    assert ev.addresses == ("192.0.2.1",)


def test_cname_chain_matches_names_case_insensitively() -> None:
    q = query("WWW.Example.test")
    r = response(q, "www.example.TEST. 1 CNAME Edge.test.", "EDGE.test. 1 A 192.0.2.7")
    [ev] = udp(DnsDecoder(), wire(r), 1)
    assert ev.qname == "WWW.Example.test"
    assert ev.cname_chain == ("Edge.test",)
    assert ev.addresses == ("192.0.2.7",)


def test_nxdomain() -> None:
    dec = DnsDecoder()
    udp(dec, QUERY_A, 1)
    [ev] = udp(dec, NXDOMAIN, 2)
    assert (ev.rcode, ev.rcode_name, ev.answers, ev.addresses, ev.query_frame) == (3, "NXDOMAIN", (), (), 1)
    assert ev.summary() == "DNS response NXDOMAIN for A csms.example.test (id 0x1234, udp, 10.0 ms)"
    assert dec.close(3, T0 + 5 * S) == []


@pytest.mark.parametrize(
    ("rcode", "name"), [(dns.rcode.SERVFAIL, "SERVFAIL"), (dns.rcode.REFUSED, "REFUSED"), (dns.rcode.NOTIMP, "NOTIMP")]
)
def test_servfail_refused_notimp(rcode: dns.rcode.Rcode, name: str) -> None:
    [ev] = udp(DnsDecoder(), wire(response(query(), rcode=rcode)), 1)
    assert (ev.rcode, ev.rcode_name) == (int(rcode), name)


def test_edns_extended_rcode_badvers() -> None:
    dec = DnsDecoder()
    udp(dec, QUERY_A, 1)
    [ev] = udp(dec, BADVERS, 2)
    assert (ev.rcode, ev.rcode_name) == (16, "BADVERS")  # header bits say 0; the OPT record says 0x01 << 4


def test_unassigned_rcode_is_named_by_number() -> None:
    payload = bytearray(NXDOMAIN)
    payload[3] = (payload[3] & 0xF0) | 12  # RCODE 12: unassigned
    [ev] = udp(DnsDecoder(), bytes(payload), 1)
    assert (ev.rcode, ev.rcode_name) == (12, "RCODE12")


def test_aaaa() -> None:
    q = query(qtype="AAAA")
    dec = DnsDecoder()
    [qev] = udp(dec, wire(q), 1)
    assert qev.qtype == "AAAA"
    [ev] = udp(dec, wire(response(q, "csms.example.test. 30 AAAA 2001:DB8:0:0::1")), 2)
    assert (ev.qtype, ev.addresses, ev.query_frame) == ("AAAA", ("2001:db8::1",), 1)


def test_nodata_summary() -> None:
    [ev] = udp(DnsDecoder(), wire(response(query(qtype="AAAA"))), 1)
    assert (ev.rcode, ev.answers) == (0, ())
    assert ev.summary() == "DNS response NOERROR for AAAA csms.example.test: no answer records (NODATA) " + (
        "(id 0x1234, udp, query not captured)"
    )


def test_other_record_values_in_presentation_format() -> None:
    q = query(qtype="TXT")
    r = response(q, 'csms.example.test. 5 TXT "v=lab" "two"', "csms.example.test. 5 MX 10 mx.example.test.")
    [ev] = udp(DnsDecoder(), wire(r), 1)
    assert ev.answers == (
        DnsAnswer("csms.example.test", "TXT", 5, '"v=lab" "two"'),
        DnsAnswer("csms.example.test", "MX", 5, "10 mx.example.test."),
    )
    assert ev.addresses == ()
    assert 'TXT "v=lab" "two", MX 10 mx.example.test.' in ev.summary()


def test_flags_tc_and_aa() -> None:
    r = response(query())
    r.flags |= dns.flags.TC | dns.flags.AA
    [ev] = udp(DnsDecoder(), wire(r), 1)
    assert (ev.truncated, ev.authoritative) == (True, True)
    assert "truncated" in ev.summary()


def test_retransmitted_query_then_response_then_a_new_exchange() -> None:
    dec = DnsDecoder()
    q, r = wire(query()), wire(response(query(), "csms.example.test. 1 A 192.0.2.1"))
    sent = udp(dec, q, 1, T0) + udp(dec, q, 2, T0 + 1 * S) + udp(dec, q, 3, T0 + 2 * S)
    assert [e.attempt for e in sent] == [1, 2, 3]
    assert sent[1].summary() == "DNS query A csms.example.test (id 0x1234, udp, attempt 2)"
    [ev] = udp(dec, r, 4, T0 + 2 * S + 500)
    assert (ev.query_frame, ev.latency_ns) == (1, 500)  # the first query; latency from the latest
    [again] = udp(dec, r, 5, T0 + 2 * S + 900)  # the same response repeated still names its query
    assert (again.query_frame, again.latency_ns) == (1, 900)
    [new] = udp(dec, q, 6, T0 + 10 * S)  # the same id, name and type after the response: a new exchange
    assert new.attempt == 1
    [u] = dec.close(7, T0 + 15 * S)
    assert (u.frame, u.attempts, u.waited_ns) == (6, 1, 5 * S)


def test_response_without_captured_query() -> None:
    [ev] = udp(DnsDecoder(), NXDOMAIN, 1)
    assert (ev.query_frame, ev.latency_ns) == (None, None)
    assert "query not captured" in ev.summary()


def test_matching_needs_the_same_flow_id_name_and_type() -> None:
    dec = DnsDecoder()
    udp(dec, QUERY_A, 1, flow=1)
    assert only(udp(dec, NXDOMAIN, 2, flow=2), DnsResponse)[0].query_frame is None  # another flow
    other_id = wire(response(query(id_=0x4321)))
    assert only(udp(dec, other_id, 3, flow=1), DnsResponse)[0].query_frame is None
    other_type = wire(response(query(qtype="AAAA")))
    assert only(udp(dec, other_type, 4, flow=1), DnsResponse)[0].query_frame is None
    assert only(udp(dec, NXDOMAIN, 5, flow=1), DnsResponse)[0].query_frame == 1


def test_qname_matches_case_insensitively() -> None:
    dec = DnsDecoder()
    udp(dec, wire(query("CsMs.ExAmPlE.test")), 1)  # DNS 0x20 case randomisation
    [ev] = udp(dec, NXDOMAIN, 2)
    assert ev.query_frame == 1


def test_unanswered_queries_at_close() -> None:
    dec = DnsDecoder()
    udp(dec, QUERY_A, 1, T0)
    udp(dec, wire(query(qtype="AAAA", id_=0x9999)), 2, T0 + S // 2)
    udp(dec, QUERY_A, 3, T0 + 1 * S)
    udp(dec, wire(query("answered.test", id_=5)), 4, T0 + 1 * S)
    udp(dec, wire(response(query("answered.test", id_=5))), 5, T0 + 1 * S)
    events = dec.close(99, T0 + 6 * S)
    assert events == [
        DnsUnanswered(
            ts_ns=T0,
            frame=1,
            flow_id=7,
            direction=0,
            id=0x1234,
            qname="csms.example.test",
            qtype="A",
            attempts=2,
            last_frame=3,
            waited_ns=6 * S,
            transport="udp",
        ),
        DnsUnanswered(
            ts_ns=T0 + S // 2,
            frame=2,
            flow_id=7,
            direction=0,
            id=0x9999,
            qname="csms.example.test",
            qtype="AAAA",
            attempts=1,
            last_frame=2,
            waited_ns=6 * S - S // 2,
            transport="udp",
        ),
    ]
    assert events[0].summary() == "DNS query A csms.example.test (id 0x1234, udp) sent 2 times, no response in 6.0 s"
    assert dec.close(100, T0 + 7 * S) == []


def test_root_qname_and_message_without_question() -> None:
    [root] = udp(DnsDecoder(), wire(query(".", "NS")), 1)
    assert (root.qname, root.qtype) == (".", "NS")
    no_question = bytes.fromhex("abcd 8105 0000 0000 0000 0000")  # response, RCODE 5, QDCOUNT 0
    [ev] = udp(DnsDecoder(), no_question, 1)
    assert (ev.qname, ev.qtype, ev.rcode_name, ev.query_frame) == ("", "", "REFUSED", None)


def test_names_needing_escapes() -> None:
    for labels in ([b"a b", b"c"], [b"dot.in", b"label"], [b"back\\slash"], [b"\xc3\xa9t\xc3\xa9"], [b"@", b"$"]):
        n = dns.name.Name([*labels, b""])
        assert name_text(n) == n.to_text(omit_final_dot=True)
    assert name_text(dns.name.from_text("Plain-Name_1.example")) == "Plain-Name_1.example"
    assert name_text(dns.name.root) == "."


# -- UDP: malformed input ---------------------------------------------------------------------------------------


def malformed(events: list[Event]) -> list[DecodeAnomaly]:
    return [e for e in events if isinstance(e, DecodeAnomaly) and e.name == "dns.malformed"]


def test_shorter_than_a_header() -> None:
    [ev] = DnsDecoder().datagram(1, 0, bytes.fromhex("1234 0100 0001"), 5, T0)
    assert ev == DecodeAnomaly(
        ts_ns=T0,
        frame=5,
        flow_id=1,
        direction=0,
        decoder="dns",
        name="dns.malformed",
        detail="message: 6 bytes, shorter than the 12-byte DNS header",
    )


def test_dnspython_lenient_mode_raises_only_short_header() -> None:
    """The decoder catches DNSException around from_wire: this pins what dnspython does with garbage."""
    with pytest.raises(dns.message.ShortHeader):
        dns.message.from_wire(b"\x00" * 11, continue_on_error=True)
    m = dns.message.from_wire(QUERY_A[:20], continue_on_error=True)  # cut inside the question name
    assert m.question == []
    assert len(m.errors) == 1
    msg, problem = parse(QUERY_A[:20])  # described, not raised
    assert msg is not None
    assert msg.id == 0x1234
    assert problem == "DNS message is malformed at byte 18 of 20; the rest of the message is not decoded"


def test_cut_inside_the_question_gives_only_an_anomaly() -> None:
    [ev] = udp(DnsDecoder(), QUERY_A[:20], 4)
    assert isinstance(ev, DecodeAnomaly)
    assert ev.detail.startswith("query id 0x1234: ")
    assert "the rest of the message is not decoded" in ev.detail


def test_response_cut_inside_the_answers_is_reported_incomplete() -> None:
    r = wire(response(query(), "csms.example.test. 1 A 192.0.2.1", "csms.example.test. 1 A 192.0.2.2"))
    dec = DnsDecoder()
    udp(dec, QUERY_A, 1)
    anomaly, ev = udp(dec, r[:-3], 2)  # the second A record loses its last 3 bytes
    assert anomaly.name == "dns.malformed"
    assert anomaly.detail.startswith("response id 0x1234: ")
    assert isinstance(ev, DnsResponse)
    assert (ev.incomplete, ev.addresses, ev.query_frame) == (True, ("192.0.2.1",), 1)
    assert dec.close(3, T0) == []  # answered, even if incompletely


def test_forward_compression_pointer() -> None:
    payload = NXDOMAIN[:12] + bytes.fromhex("c00e 0001 0001")  # QNAME is a pointer to offset 14: forward
    [ev] = udp(DnsDecoder(), payload, 1)
    assert ev.name == "dns.malformed"
    assert "compression pointer points forward" in ev.detail


def test_non_dns_bytes_stop_the_flow_direction_after_a_few_datagrams() -> None:
    dec = DnsDecoder()
    junk = bytes(range(40, 80))  # 12-byte header, then a label length 52 running past the end
    events = [e for i in range(MAX_UNDECODABLE + 3) for e in dec.datagram(1, 0, junk, i + 1, T0)]
    assert len(malformed(events)) == MAX_UNDECODABLE
    assert [e.name for e in events if isinstance(e, DecodeAnomaly) and e.name != "dns.malformed"] == ["dns.stopped"]
    assert dec.datagram(1, 0, QUERY_A, 50, T0) == []  # that direction of flow 1 is no longer decoded
    assert only(dec.datagram(1, 1, NXDOMAIN, 51, T0), DnsResponse)  # the other direction still is
    assert only(dec.datagram(2, 0, QUERY_A, 52, T0), DnsQuery)  # and other flows


def test_a_decodable_message_resets_the_streak() -> None:
    dec = DnsDecoder()
    junk = bytes(range(40, 80))
    events = []
    for i in range(3 * MAX_UNDECODABLE):
        payload = QUERY_A if i % (MAX_UNDECODABLE - 1) == 0 else junk
        events += dec.datagram(1, 0, payload, i + 1, T0)
    assert not [e for e in events if isinstance(e, DecodeAnomaly) and e.name == "dns.stopped"]


def test_pending_queries_are_bounded() -> None:
    dec = DnsDecoder(max_pending=3)
    events = [e for i in range(5) for e in udp(dec, wire(query(f"q{i}.test", id_=i)), i + 1)]
    limit = [e for e in events if isinstance(e, DecodeAnomaly)]
    assert [(e.name, e.frame) for e in limit] == [("dns.pending_limit", 4)]
    assert len(only(events, DnsQuery)) == 5
    [ev] = udp(dec, wire(response(query("q0.test", id_=0))), 6)  # q0 was forgotten
    assert ev.query_frame is None
    closing = dec.close(7, T0 + 10 * S)
    assert [e.qname for e in only(closing, DnsUnanswered)] == ["q2.test", "q3.test", "q4.test"]
    [summary] = only(closing, DecodeAnomaly)
    assert summary.name == "dns.pending_limit"
    assert summary.detail.startswith("2 queries were forgotten")


def test_events_are_frozen_and_json_friendly() -> None:
    dec = DnsDecoder()
    q = query("www.example.test")
    r = response(q, "www.example.test. 300 CNAME e.test.", "e.test. 20 A 192.0.2.10")
    events = udp(dec, wire(q), 1) + udp(dec, wire(r), 2) + udp(dec, QUERY_A, 3) + udp(dec, b"\x01", 4)
    events += dec.close(5, T0 + S)
    assert {type(e) for e in events} == {DnsQuery, DnsResponse, DnsUnanswered, DecodeAnomaly}
    for e in events:
        json.dumps(dataclasses.asdict(e))
        with pytest.raises(dataclasses.FrozenInstanceError):
            e.frame = 0  # type: ignore[misc]
        assert not hasattr(e, "__dict__")


# -- TCP ------------------------------------------------------------------------------------------------------------


def framed(*messages: bytes) -> bytes:
    return b"".join(len(m).to_bytes(2, "big") + m for m in messages)


def chunk(data: bytes, direction: int, offset: int, frame: int, ts: int | None = None) -> StreamChunk:
    return StreamChunk(9, direction, offset, data, frame, frame, T0 + frame * S // 100 if ts is None else ts)


A_RESPONSE = wire(response(query(), "csms.example.test. 1 A 192.0.2.1"))


def test_tcp_whole_messages() -> None:
    dec = DnsTcpDecoder(9)
    [q] = dec.feed(chunk(framed(QUERY_A), 0, 0, 4))
    [r] = dec.feed(chunk(framed(A_RESPONSE), 1, 0, 6))
    assert isinstance(q, DnsQuery)
    assert (q.transport, q.flow_id, q.direction, q.frame) == ("tcp", 9, 0, 4)
    assert isinstance(r, DnsResponse)
    assert (r.transport, r.query_frame, r.addresses, r.direction) == ("tcp", 4, ("192.0.2.1",), 1)
    assert dec.close(0, T0 + S) == []


def test_tcp_split_at_every_offset() -> None:
    stream = framed(QUERY_A, wire(query(qtype="AAAA", id_=2)))
    for cut in range(1, len(stream)):
        dec = DnsTcpDecoder(9)
        first = dec.feed(chunk(stream[:cut], 0, 0, 1))
        second = dec.feed(chunk(stream[cut:], 0, cut, 2))
        got = [(e.frame, e.qtype) for e in first + second]
        done_first = 1 if cut >= len(QUERY_A) + 2 else 2
        done_second = 1 if cut == len(stream) else 2
        assert got == [(done_first, "A"), (done_second, "AAAA")], cut
        assert dec.close(0, T0 + S) != []  # both unanswered, whatever the split


def test_tcp_every_byte_in_its_own_chunk() -> None:
    stream = framed(QUERY_A, A_RESPONSE)
    dec = DnsTcpDecoder(9)
    events = [e for i in range(len(stream)) for e in dec.feed(chunk(stream[i : i + 1], 0, i, i + 1))]
    assert [(type(e), e.frame) for e in events] == [(DnsQuery, len(QUERY_A) + 2), (DnsResponse, len(stream))]


def test_tcp_two_messages_in_one_chunk() -> None:
    dec = DnsTcpDecoder(9)
    q2 = wire(query(qtype="AAAA", id_=2))
    events = dec.feed(chunk(framed(QUERY_A, q2), 0, 0, 4))
    assert [(e.qtype, e.id, e.frame) for e in events] == [("A", 0x1234, 4), ("AAAA", 2, 4)]
    r2 = wire(response(query(qtype="AAAA", id_=2)))
    events = dec.feed(chunk(framed(r2, A_RESPONSE), 1, 0, 5))
    assert [(e.qtype, e.query_frame) for e in events] == [("AAAA", 4), ("A", 4)]


def test_tcp_trailing_partial_message_at_close() -> None:
    dec = DnsTcpDecoder(9)
    dec.feed(chunk(framed(QUERY_A), 0, 0, 4))
    dec.feed(chunk(framed(A_RESPONSE)[:10], 1, 0, 6, T0 + 2 * S))
    events = dec.close(0, T0 + 3 * S)
    [partial] = only(events, DecodeAnomaly)
    assert (partial.name, partial.frame, partial.direction, partial.ts_ns) == (
        "dns.incomplete_message",
        6,
        1,
        T0 + 2 * S,
    )
    assert partial.detail == f"the connection ended after 8 of the {len(A_RESPONSE)} bytes of a message"
    [u] = only(events, DnsUnanswered)
    assert (u.frame, u.transport, u.waited_ns) == (4, "tcp", 3 * S - 4 * S // 100)


def test_tcp_one_byte_of_a_length_prefix_at_close() -> None:
    dec = DnsTcpDecoder(9)
    dec.feed(chunk(b"\x00", 0, 0, 4))
    [ev] = dec.close(0, T0)
    assert ev.detail == "the connection ended after 1 byte of a 2-byte length prefix"


def test_tcp_malformed_message_between_good_ones() -> None:
    dec = DnsTcpDecoder(9)
    events = dec.feed(chunk(framed(QUERY_A, b"\x00" * 5, wire(query(id_=3))), 0, 0, 4))
    assert [type(e) for e in events] == [DnsQuery, DecodeAnomaly, DnsQuery]
    assert events[1].detail == "message: 5 bytes, shorter than the 12-byte DNS header"


def gap(direction: int, offset: int, size: int, frame: int) -> StreamGap:
    return StreamGap(9, direction, offset, size, frame, T0, GapReason.NOT_CAPTURED)


def test_tcp_gap_then_a_message_boundary_resumes() -> None:
    dec = DnsTcpDecoder(9)
    stream = framed(QUERY_A)
    dec.feed(chunk(stream[:7], 0, 0, 1))
    [g] = dec.gap(gap(0, 7, 100, 2))
    assert g.name == "dns.gap"
    assert g.detail == "100 bytes missing at stream offset 7 (not_captured): the 7 bytes received of the message " + (
        "before it are dropped"
    )
    q2 = wire(query(id_=2))
    [ev] = dec.feed(chunk(framed(q2, QUERY_A), 0, 107, 3))[:1]
    assert (ev.id, ev.frame) == (2, 3)


def test_tcp_gap_then_mid_message_bytes_stop_the_direction() -> None:
    dec = DnsTcpDecoder(9)
    assert dec.gap(gap(1, 0, 10, 2)) == []  # nothing held: the TCP layer reports the gap, nothing more to say yet
    events = dec.feed(chunk(framed(A_RESPONSE)[10:] + framed(A_RESPONSE), 1, 10, 3))
    [stop] = events
    assert stop.name == "dns.stopped"
    assert dec.feed(chunk(framed(A_RESPONSE), 1, 500, 4)) == []
    assert dec.gap(gap(1, 600, 10, 5)) == []
    assert only(dec.feed(chunk(framed(QUERY_A), 0, 0, 6)), DnsQuery)  # the other direction goes on
    assert only(dec.close(0, T0), DnsUnanswered)


def test_tcp_gap_then_a_message_going_the_wrong_way_stops() -> None:
    dec = DnsTcpDecoder(9)
    dec.gap(gap(0, 0, 10, 2))
    [stop] = dec.feed(chunk(framed(A_RESPONSE), 0, 10, 3))  # a response from the client side
    assert stop.name == "dns.stopped"


# -- properties: any bytes give events, never an exception ----------------------------------------------------------

VALID = [
    QUERY_A,
    NXDOMAIN,
    BADVERS,
    A_RESPONSE,
    wire(response(query("www.example.test"), "www.example.test. 300 CNAME e.test.", "e.test. 20 A 192.0.2.10")),
    wire(response(query(qtype="AAAA"), "csms.example.test. 30 AAAA 2001:db8::1")),
    wire(response(query(qtype="TXT"), 'csms.example.test. 5 TXT "v=lab"', "csms.example.test. 5 MX 10 mx.test.")),
    wire(response(query(qtype="HTTPS"), "csms.example.test. 5 HTTPS 1 . alpn=h2 ipv4hint=192.0.2.1")),
    wire(response(query(qtype="SOA"), "csms.example.test. 5 SOA ns.test. host.test. 1 2 3 4 5")),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(data) * 8 - 1))
        data[pos // 8] ^= 1 << (pos % 8)
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


PAYLOADS = st.one_of(mutated(), st.binary(max_size=300))
PROPERTY = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1), PAYLOADS), max_size=30))
def test_udp_any_bytes_give_only_events(datagrams: list[tuple[int, int, bytes]]) -> None:
    dec = DnsDecoder(max_pending=5)
    queries = 0
    for frame, (flow, direction, payload) in enumerate(datagrams, 1):
        events = dec.datagram(flow, direction, payload, frame, T0 + frame)
        assert all(isinstance(e, Event) for e in events)
        assert len(events) <= 3  # dns.malformed, the query or response, one limit/stop anomaly
        queries += len(only(events, DnsQuery))
        for e in events:
            json.dumps(dataclasses.asdict(e))
    closing = dec.close(len(datagrams) + 1, T0 + S)
    assert all(isinstance(e, Event) for e in closing)
    assert len(only(closing, DnsUnanswered)) <= min(queries, 5)
    assert len(closing) <= min(queries, 5) + 1


@PROPERTY
@given(
    st.lists(
        st.one_of(
            st.tuples(st.integers(0, 1), PAYLOADS.map(lambda m: len(m).to_bytes(2, "big") + m)),
            st.tuples(st.integers(0, 1), st.binary(max_size=40)),
            st.tuples(st.integers(0, 1), st.integers(1, 50)),  # a gap of that many bytes
        ),
        max_size=20,
    ),
    st.data(),
)
def test_tcp_any_bytes_give_only_events(pieces: list[tuple[int, bytes | int]], data: st.DataObject) -> None:
    dec = DnsTcpDecoder(9)
    offsets = [0, 0]
    total = gaps = 0
    events: list[Event] = []
    for frame, (direction, piece) in enumerate(pieces, 1):
        if isinstance(piece, int):
            events += dec.gap(gap(direction, offsets[direction], piece, frame))
            offsets[direction] += piece
            gaps += 1
            continue
        cut = data.draw(st.integers(0, len(piece)))
        for part in (piece[:cut], piece[cut:]):
            if part:
                events += dec.feed(chunk(part, direction, offsets[direction], frame))
                offsets[direction] += len(part)
                total += len(part)
    events += dec.close(0, T0 + S)
    assert all(isinstance(e, Event) for e in events)
    for e in events:
        json.dumps(dataclasses.asdict(e))
    # each message takes at least its 2-byte prefix and gives at most 3 events; a gap 1; close 2 plus the queries
    assert len(events) <= 3 * (total // 2) + gaps + 2 + len(only(events, DnsQuery))


# -- repeated messages: parsed once, each event with its own id ------------------------------------------------------


def test_the_same_lookup_again_with_another_id_is_parsed_once_and_keeps_its_ids() -> None:
    parse_cached.cache_clear()
    read_cached.cache_clear()
    dec = DnsDecoder()
    events = []
    for i, id_ in enumerate((0x0101, 0xBEEF, 0x0101)):
        q = query(id_=id_)
        events += udp(dec, wire(q), 10 * i + 1, flow=20 + i)
        events += udp(dec, wire(response(q, "csms.example.test. 60 A 192.0.2.7")), 10 * i + 2, flow=20 + i)
    # one query body and one response body, each seen three times: parsed and read once each (dnspython parses
    # only what the quick reader leaves to it)
    plain = (
        quick(wire(query(id_=0x0101))),
        quick(wire(response(query(id_=0x0101), "csms.example.test. 60 A 192.0.2.7"))),
    )
    assert parse_cached.cache_info().misses == sum(q is None for q in plain)
    assert read_cached.cache_info().misses == 2
    assert read_cached.cache_info().hits == 4
    resp = only(events, DnsResponse)
    assert [e.id for e in only(events, DnsQuery)] == [0x0101, 0xBEEF, 0x0101]
    assert [e.id for e in resp] == [0x0101, 0xBEEF, 0x0101]
    assert [e.query_frame for e in resp] == [1, 11, 21]  # each response matched to its own query
    assert all(e.addresses == ("192.0.2.7",) for e in resp)


@pytest.mark.parametrize(
    "payload",
    [
        wire(response(query(), "csms.example.test. 60 CNAME edge.example.test.", "edge.example.test. 60 A 192.0.2.9")),
        wire(response(query(qtype="AAAA"), rcode=dns.rcode.NXDOMAIN)),
        wire(response(query(), "csms.example.test. 1 A 192.0.2.1", "csms.example.test. 1 A 192.0.2.2"))[:-3],
        wire(query(qtype="TXT")),
        QUERY_A[:20],
        QUERY_A[:7],
    ],
)
def test_a_message_seen_again_reads_as_when_first_seen(payload: bytes) -> None:
    # what is kept of a message (by its bytes after the id) is what reading it afresh gives, and so are its events
    read_cached.cache_clear()
    first = udp(DnsDecoder(), payload, 1)  # read afresh
    assert read_cached.cache_info().misses == 1
    again = udp(DnsDecoder(), payload, 1)  # served from the cache
    assert read_cached.cache_info().hits == 1
    assert again == first
    assert first  # every one of these gives an event (a query, a response or an anomaly)
    assert read_cached(payload[2:]) == read(*parse(payload))


def test_the_read_cache_is_bounded() -> None:
    read_cached.cache_clear()
    for i in range(DNS_PARSE_CACHE + 10):
        read_cached(wire(query(qname=f"n{i}.example.test"))[2:])
    assert read_cached.cache_info().currsize == DNS_PARSE_CACHE


def test_dnspython_s_parser_is_imported_only_for_a_message_that_needs_it() -> None:
    """Plain lookups are read by ``dns_wire.quick``; ``dns.message`` (and ``dns.name`` under it: 45 to 70 ms of a
    process's start) is imported with the first message it must parse (here one with an OPT record)."""
    import subprocess
    import sys
    from pathlib import Path

    question = b"\x04csms\x07example\x03com\x00\x00\x01\x00\x01"  # csms.example.com A IN
    plain = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + question
    edns = b"\x12\x35\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01" + question + b"\x00\x00\x29\x10\x00" + bytes(6)
    script = (
        "import sys\n"
        "from analyzer.decoders.dns import DnsTransactions\n"
        "t = DnsTransactions('udp')\n"
        f"print(t.message(1, 0, {plain!r}, 1, 0)[0].qname)\n"
        "print('dns.message' in sys.modules, 'dns.name' in sys.modules)\n"
        f"print(t.message(1, 0, {edns!r}, 2, 0)[0].qname)\n"
        "print('dns.message' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["csms.example.com", "False", "False", "csms.example.com", "True"]
