"""A fast reader of the plain DNS messages a gateway is full of (sans-IO): a standard query or its response with one
question, answers that are class IN A or CNAME records, no authority or additional records, no EDNS, nothing after
the last record.

dnspython reads any message correctly but takes ~60 µs for one (its names, enums and rdata objects); a lookup of a
new name every few milliseconds (an office behind the same gateway) made DNS most of a capture's time. For the
shape above ``quick(payload)`` returns what dnspython's message would give, as plain values, ~10 times faster, and
``None`` for anything else, or anything it is not sure of (a compression pointer that does not point back, a label
dnspython would escape, a record of another type or class, a length that does not fit): the caller then asks
dnspython, which also reports what is malformed. The two agree on every message ``quick`` accepts
(``tests/decoders/test_dns_wire.py`` checks them against each other).
"""

from __future__ import annotations

import struct

_HEADER = struct.Struct("!HHHHHH")
_QTAIL = struct.Struct("!HH")
_RR = struct.Struct("!HHIH")
# bytes dnspython writes unescaped in a label (``dns.name._escapify``): printable ASCII except ``"().;@$\``
_PLAIN = bytes(c for c in range(0x21, 0x7F) if c not in b'"().;@$\\')
_A, _CNAME, _IN = 1, 5, 1
MAX_NAME = 255  # wire bytes of a name (RFC 1035 §3.1), as dnspython counts them
MAX_JUMPS = 32  # compression pointers followed within one name

Record = tuple[str, int, int, str, bool]
"""One answer record: (owner, type, ttl, value, whether the value is an address: class IN A/AAAA)."""
Quick = tuple[int, str, int, int, tuple[Record, ...]]
"""A message: (flags, question name, question type, question class, answer records)."""


def _name(data: bytes, pos: int) -> tuple[str, int] | None:
    """The name at ``pos`` as dnspython's ``name_text`` writes it and the offset after it; ``None`` unless every
    label is plain and every pointer points back. The root name is left to dnspython."""
    labels: list[bytes] = []
    end = -1  # where the name ends in the message (after its first pointer, or its terminating zero)
    wire = 0
    jumps = 0
    n = len(data)
    while True:
        if pos >= n:
            return None
        length = data[pos]
        if length == 0:
            if end < 0:
                end = pos + 1
            break
        if length >= 0xC0:
            if pos + 1 >= n or jumps >= MAX_JUMPS:
                return None
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if target >= pos:  # dnspython accepts only pointers back
                return None
            if end < 0:
                end = pos + 2
            pos = target
            jumps += 1
            continue
        if length > 63 or pos + 1 + length > n:
            return None
        label = data[pos + 1 : pos + 1 + length]
        if label.translate(None, _PLAIN):
            return None
        labels.append(label)
        wire += length + 1
        if wire + 1 > MAX_NAME:
            return None
        pos += 1 + length
    if not labels:
        return None
    return b".".join(labels).decode("ascii"), end


def quick(payload: bytes) -> Quick | None:
    """``payload`` read as above, or ``None`` when it is not that plain (see the module docstring)."""
    n = len(payload)
    if n < 12:
        return None
    _, flags, qd, an, ns, ar = _HEADER.unpack_from(payload)
    if qd != 1 or ns or ar or flags & 0x7800:  # an opcode other than QUERY (UPDATE is another message to dnspython)
        return None
    got = _name(payload, 12)
    if got is None:
        return None
    qname, pos = got
    if pos + 4 > n:
        return None
    qtype, qclass = _QTAIL.unpack_from(payload, pos)
    pos += 4
    answers: list[Record] = []
    for _ in range(an):
        got = _name(payload, pos)
        if got is None:
            return None
        owner, pos = got
        if pos + 10 > n:
            return None
        rtype, rclass, ttl, rdlength = _RR.unpack_from(payload, pos)
        pos += 10
        if rclass != _IN or pos + rdlength > n:
            return None
        if rtype == _A:
            if rdlength != 4:
                return None
            value = "%d.%d.%d.%d" % tuple(payload[pos : pos + 4])  # noqa: UP031 - dnspython's inet_ntoa
        elif rtype == _CNAME:
            got = _name(payload, pos)
            if got is None or got[1] != pos + rdlength:
                return None
            value = got[0]
        else:
            return None
        answers.append((owner, rtype, ttl if ttl <= 0x7FFFFFFF else 0, value, rtype == _A))  # RFC 2181 §8, as dnspython
        pos += rdlength
    if pos != n:
        return None
    return flags, qname, qtype, qclass, tuple(answers)
