"""The quick DNS reader (``analyzer.decoders.dns_wire``): byte-level cases it takes and leaves to dnspython, and
agreement with dnspython on every message it takes: real captures, generated messages, mutated bytes."""

from __future__ import annotations

import struct
from pathlib import Path

import dns.message
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.capture.reader import open_capture
from analyzer.decoders.dns import parse, read, read_quick
from analyzer.decoders.dns_wire import quick
from tests.conftest import EXTERNAL, PROJECT_CAPTURES

HEADER = struct.Struct("!HHHHHH")


def name(*labels: bytes) -> bytes:
    return b"".join(bytes([len(x)]) + x for x in labels) + b"\0"


def msg(flags: int, question: bytes, *answers: bytes, ns: int = 0, ar: int = 0, tail: bytes = b"") -> bytes:
    return HEADER.pack(0x1234, flags, 1, len(answers), ns, ar) + question + b"".join(answers) + tail


Q = name(b"csms", b"Example", b"test") + b"\0\x01\0\x01"  # A IN, at offset 12
PTR_Q = b"\xc0\x0c"  # a pointer to the question's name


def rr(owner: bytes, rtype: int, rdata: bytes, rclass: int = 1, ttl: int = 300) -> bytes:
    return owner + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def agrees(payload: bytes) -> bool:
    """Whether ``quick`` took ``payload``; when it did, its read equals dnspython's, field for field."""
    q = quick(payload)
    if q is None:
        return False
    assert read_quick(q) == read(*parse(payload)), payload.hex()
    return True


def test_a_query_and_an_address_answer_through_a_pointer() -> None:
    assert quick(msg(0x0100, Q)) == (0x0100, "csms.Example.test", 1, 1, ())
    answer = msg(0x8180, Q, rr(PTR_Q, 1, bytes([192, 0, 2, 7]), ttl=60))
    assert quick(answer) == (0x8180, "csms.Example.test", 1, 1, (("csms.Example.test", 1, 60, "192.0.2.7", True),))
    assert agrees(answer)
    read_ = read_quick(quick(answer))  # type: ignore[arg-type]
    assert (read_.response, read_.rcode, read_.addresses, read_.qtype) == (True, 0, ("192.0.2.7",), "A")


def test_a_cname_chain_with_a_pointer_inside_the_target() -> None:
    # edge.<pointer to "Example.test" of the question> (offset 17: after "csms")
    target = b"\x04edge\xc0\x11"
    answer = msg(0x8180, Q, rr(PTR_Q, 5, target), rr(target[:5] + b"\xc0\x11", 1, bytes([198, 51, 100, 9])))
    got = quick(answer)
    assert got is not None
    assert [a[:2] + a[3:4] for a in got[4]] == [
        ("csms.Example.test", 5, "edge.Example.test"),
        ("edge.Example.test", 1, "198.51.100.9"),
    ]
    assert agrees(answer)
    assert read_quick(got).cname_chain == ("edge.Example.test",)
    assert read_quick(got).addresses == ("198.51.100.9",)


def test_nxdomain_and_nodata_have_no_answers() -> None:
    for flags in (0x8183, 0x8180):
        assert agrees(msg(flags, Q))


@pytest.mark.parametrize(
    ("why", "payload"),
    [
        ("an EDNS OPT record (extended rcode bits)", msg(0x8180, Q, ar=1, tail=b"\0\0\x29\x10\0\0\0\0\0\0\0")),
        ("an authority record", msg(0x8183, Q, ns=1, tail=rr(PTR_Q, 6, b"\0" * 22))),
        ("an AAAA answer (dnspython's IPv6 text)", msg(0x8180, Q, rr(PTR_Q, 28, bytes(16)))),
        ("an A record of class CH", msg(0x8180, Q, rr(PTR_Q, 1, bytes(4), rclass=3))),
        ("an A record of 5 bytes", msg(0x8180, Q, rr(PTR_Q, 1, bytes(5)))),
        ("rdata past the end", msg(0x8180, Q, rr(PTR_Q, 1, bytes(4)))[:-2]),
        ("bytes after the last record", msg(0x8180, Q, tail=b"\0")),
        ("a forward pointer", HEADER.pack(1, 0x100, 1, 0, 0, 0) + b"\xc0\x20\0\x01\0\x01" + name(b"x")),
        ("a pointer to itself", HEADER.pack(1, 0x100, 1, 0, 0, 0) + b"\xc0\x0c\0\x01\0\x01"),
        ("a label dnspython escapes", msg(0x0100, name(b"a(b", b"test") + b"\0\x01\0\x01")),
        ("the root name", msg(0x0100, b"\0\0\x02\0\x01")),
        ("a label over 63 bytes", msg(0x0100, b"\x40" + b"a" * 64 + b"\0\0\x01\0\x01")),
        ("a name over 255 bytes", msg(0x0100, name(*[b"a" * 63] * 4) + b"\0\x01\0\x01")),
        ("two questions", HEADER.pack(1, 0x100, 2, 0, 0, 0) + Q + Q),
        ("a short header", b"\x12\x34\x01\x00"),
        ("a question cut short", msg(0x0100, Q[:-2])),
    ],
)
def test_what_it_leaves_to_dnspython(why: str, payload: bytes) -> None:
    assert quick(payload) is None, why


def _dns_payloads(paths: list[Path]) -> list[bytes]:
    out = []
    for path in paths:
        try:
            cap = open_capture(path)
        except Exception:  # noqa: BLE001 - a capture the reader refuses has no DNS to compare
            continue
        try:
            for _frame, _ts, proto, _src, _dst, l4, _wire in cap.ip_packets():
                if proto == 17 and len(l4) > 8 and 53 in struct.unpack_from("!HH", l4):
                    out.append(bytes(l4[8:]))
        except Exception:  # noqa: BLE001 - a damaged capture's DNS up to the damage is enough
            pass
        finally:
            cap.close()
    return out


def test_it_agrees_with_dnspython_on_every_dns_message_of_the_lab_and_external_captures() -> None:
    paths = sorted(PROJECT_CAPTURES.glob("*.pcap")) + sorted(p for p in EXTERNAL.rglob("*.pcap*") if p.is_file())
    payloads = _dns_payloads(paths)
    assert len(payloads) > 100
    taken = sum(agrees(p) for p in payloads)
    assert taken > len(payloads) // 3  # the plain shape is most of what chargers and gateways send


_label = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)
_names = st.lists(_label, min_size=1, max_size=4).map(".".join)


@settings(max_examples=300, deadline=None)
@given(
    qname=_names,
    answers=st.lists(
        st.tuples(
            st.sampled_from(["A", "CNAME", "AAAA"]), _names, st.integers(0, 2**31 - 1), st.integers(0, 2**32 - 1)
        ),
        max_size=5,
    ),
    rcode=st.sampled_from([0, 2, 3, 5]),
)
def test_it_agrees_with_dnspython_on_generated_messages(qname: str, answers: list, rcode: int) -> None:
    q = dns.message.make_query(qname, "A", use_edns=False)
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    owner = qname
    for rtype, target, ttl, number in answers:
        value = {"A": str(__import__("ipaddress").IPv4Address(number)), "CNAME": target + ".", "AAAA": "2001:db8::1"}
        r.answer.append(dns.rrset.from_text(owner + ".", ttl, "IN", rtype, value[rtype]))
        if rtype == "CNAME":
            owner = target
    assert agrees(q.to_wire())
    assert agrees(r.to_wire()) == all(rtype != "AAAA" for rtype, *_ in answers)


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_mutated_messages_are_taken_only_when_dnspython_reads_them_the_same(data: st.DataObject) -> None:
    base = msg(0x8180, Q, rr(PTR_Q, 5, b"\x04edge\xc0\x11"), rr(b"\x04edge\xc0\x11", 1, bytes([198, 51, 100, 9])))
    payload = bytearray(base)
    for _ in range(data.draw(st.integers(1, 4))):
        payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    agrees(bytes(payload))
