"""ghostcap's claims against tshark's dissection of the same frames. No I/O: a ``Dissection`` in, ``Check`` s out.

A ``Dissection`` is what tshark printed for each frame asked about: its protocol layers in order, each a mapping
of Wireshark field names (``tls.alert_message.desc``, ``dns.flags.rcode``, ``websocket.payload.text``...) to the
values it showed, in order. ``tshark_value`` reads one claim's field from it in the claim's own words (numbers
named as ghostcap names them: alert 42 → ``bad_certificate``, rcode 3 → ``NXDOMAIN``), so that agreeing is being
equal. A field tshark did not show is ``None``: a disagreement (tshark did not dissect what ghostcap read).

tshark has no OCPP dissector (Wireshark 4.0): an OCPP claim is checked against the WebSocket text tshark shows,
read as OCPP-J here (message type, id, action, error code or status; a text cut short still gives type, id and
action).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analyzer.decoders.dns import rcode_name, type_name
from analyzer.decoders.tls_names import alert_name, version_name
from analyzer.flows.table import ICMP, ICMP_ERRORS, ICMP_UNREACH_CODES, ICMPV6, ICMPV6_UNREACH_CODES
from analyzer.verify.claims import (
    ENCRYPTED,
    JOIN,
    NONE,
    NOT_OCPP,
    Claim,
    addresses_text,
    flags_text,
    ocpp_text,
)

Layer = tuple[str, Mapping[str, Sequence[str]]]  # (protocol, field name → values shown, in order)
Dissection = Mapping[int, Sequence[Layer]]  # frame number → its layers, outermost first

OCPP_TYPES = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR", 5: "CALLRESULTERROR", 6: "SEND"}
_OCPP_HEAD = re.compile(r'\s*\[\s*([0-9]+)\s*,\s*"((?:[^"\\]|\\.)*)"\s*(?:,\s*"((?:[^"\\]|\\.)*)")?')
_TRUE = ("1", "True", "true")


@dataclass(frozen=True, slots=True)
class Check:
    """One claim checked: ``ghostcap``'s value and ``tshark``'s (``None``: tshark did not show the field)."""

    frame: int
    field: str
    ghostcap: str
    tshark: str | None
    agree: bool


def compare(claims: Iterable[Claim], dissection: Dissection) -> list[Check]:
    """Each claim against tshark's value of its field in its frame, in the claims' order."""
    out = []
    for c in claims:
        theirs = tshark_value(c.field, dissection.get(c.frame, ()))
        out.append(Check(c.frame, c.field, c.value, theirs, theirs == c.value))
    return out


def tshark_value(field: str, layers: Sequence[Layer]) -> str | None:
    """tshark's value of a claim ``field`` (``claims.FIELDS``) in one frame's ``layers``, in ghostcap's words."""
    reader = _READERS.get(field)
    return reader(layers) if reader is not None else None


def _values(layers: Sequence[Layer], proto: str | tuple[str, ...], name: str, first: bool = False) -> list[str]:
    """Every value of field ``name`` in the layers of ``proto`` (only the first such layer with ``first``: the
    TCP header of an ICMP error quotes another)."""
    protos = (proto,) if isinstance(proto, str) else proto
    out: list[str] = []
    for p, fields in layers:
        if p in protos:
            out.extend(fields.get(name, ()))
            if first:
                break
    return out


def _int(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None


def _joined(values: Sequence[str]) -> str | None:
    return JOIN.join(values) if values else None


def _dns_query(layers: Sequence[Layer]) -> str | None:
    names = _values(layers, "dns", "dns.qry.name", first=True)
    types = _values(layers, "dns", "dns.qry.type", first=True)
    rows = []
    for name, qtype in zip(names, types, strict=False):
        n = _int(qtype)
        qname = "" if name == "<Root>" else name.rstrip(".").lower()
        rows.append(f"{qname} {type_name(n) if n is not None else qtype}")
    return _joined(rows)


def _dns_rcode(layers: Sequence[Layer]) -> str | None:
    codes = [_int(v) for v in _values(layers, "dns", "dns.flags.rcode", first=True)]
    return _joined([rcode_name(c) for c in codes if c is not None])


def _dns_addresses(layers: Sequence[Layer]) -> str | None:
    if not _values(layers, "dns", "dns.flags.rcode", first=True):
        return None  # no DNS response in this frame
    return addresses_text(_values(layers, "dns", "dns.a", first=True) + _values(layers, "dns", "dns.aaaa", first=True))


def _tcp_flags(layers: Sequence[Layer]) -> str | None:
    def on(name: str) -> bool:
        return any(v in _TRUE for v in _values(layers, "tcp", f"tcp.flags.{name}", first=True))

    if not _values(layers, "tcp", "tcp.flags.syn", first=True):
        return None
    bits = {b for b, name in (("SYN", "syn"), ("FIN", "fin"), ("RST", "reset")) if on(name)}
    if "SYN" in bits and on("ack"):
        bits.add("ACK")
    return flags_text(bits) or NONE


def _icmp(layers: Sequence[Layer]) -> str | None:
    for proto, prefix, codes in ((ICMP, "icmp", ICMP_UNREACH_CODES), (ICMPV6, "icmpv6", ICMPV6_UNREACH_CODES)):
        types = _values(layers, prefix, f"{prefix}.type", first=True)
        if not types:
            continue
        t = _int(types[0])
        code = _int((_values(layers, prefix, f"{prefix}.code", first=True) or ["0"])[0]) or 0
        kind = ICMP_ERRORS[proto].get(t if t is not None else -1)
        if kind is None:
            return f"{prefix} type {types[0]}"
        return kind + (f" ({codes.get(code, f'code {code}')})" if "unreachable" in kind else "")
    return None


def _tls_sni(layers: Sequence[Layer]) -> str | None:
    if "1" not in _values(layers, "tls", "tls.handshake.type"):
        return None  # no ClientHello here
    names = _values(layers, "tls", "tls.handshake.extensions_server_name")
    return _joined([n.lower() for n in names]) or NONE


def _tls_version(layers: Sequence[Layer]) -> str | None:
    if "2" not in _values(layers, "tls", "tls.handshake.type"):
        return None  # no ServerHello here
    chosen = _values(layers, "tls", "tls.handshake.extensions.supported_version") or _values(
        layers, "tls", "tls.handshake.version"
    )
    v = _int(chosen[0]) if chosen else None
    return version_name(v) if v is not None else None


def _tls_alert(layers: Sequence[Layer]) -> str | None:
    descs = _values(layers, "tls", "tls.alert_message.desc")
    if descs:
        return _joined([alert_name(n) or d if (n := _int(d)) is not None else d for d in descs])
    if "21" in _values(layers, "tls", "tls.record.content_type"):
        return ENCRYPTED
    return None


def _http_method(layers: Sequence[Layer]) -> str | None:
    return _joined(_values(layers, "http", "http.request.method"))


def _http_status(layers: Sequence[Layer]) -> str | None:
    return _joined(_values(layers, "http", "http.response.code"))


def _ws_close(layers: Sequence[Layer]) -> str | None:
    codes = []
    for proto, fields in layers:
        if proto == "websocket" and list(fields.get("websocket.opcode", ())) == ["8"]:
            codes.extend(fields.get("websocket.payload.close.status_code", ()) or [NONE])
    return _joined(codes)


def _ocpp(layers: Sequence[Layer]) -> str | None:
    return _joined([ocpp_from_text(t) for t in _values(layers, "websocket", "websocket.payload.text")])


def ocpp_from_text(text: str) -> str:
    """A WebSocket text as an OCPP-J message in ``claims.ocpp_text`` words; ``NOT_OCPP`` when it is not one. A
    text cut short (tshark shortens long fields) still gives type, id and action or error code."""
    try:
        msg: Any = json.loads(text)
    except (ValueError, RecursionError):
        msg = None
    if isinstance(msg, list) and len(msg) >= 3 and type(msg[0]) is int and isinstance(msg[1], str):
        kind = OCPP_TYPES.get(msg[0])
        if kind == "CALLRESULT":
            return ocpp_text(kind, msg[1], _status(msg[2]))
        if kind is not None and isinstance(msg[2], str):
            return ocpp_text(kind, msg[1], msg[2])
        return NOT_OCPP
    if msg is not None:
        return NOT_OCPP
    m = _OCPP_HEAD.match(text)
    kind = OCPP_TYPES.get(int(m.group(1))) if m is not None else None
    if m is None or kind is None:
        return NOT_OCPP
    try:
        uid, third = (json.loads(f'"{g}"') if g is not None else None for g in (m.group(2), m.group(3)))
    except ValueError:
        return NOT_OCPP
    return ocpp_text(kind, uid or "", None if kind == "CALLRESULT" else third)


def _status(payload: Any) -> str | None:
    """A CALLRESULT's status as the OCPP decoder reads it: ``status``, else ``idTagInfo``/``idTokenInfo.status``."""
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("status"), str):
        return str(payload["status"])
    for key in ("idTagInfo", "idTokenInfo"):
        info = payload.get(key)
        if isinstance(info, dict) and isinstance(info.get("status"), str):
            return str(info["status"])
    return None


_READERS = {
    "dns.query": _dns_query,
    "dns.rcode": _dns_rcode,
    "dns.addresses": _dns_addresses,
    "tcp.flags": _tcp_flags,
    "icmp": _icmp,
    "tls.sni": _tls_sni,
    "tls.version": _tls_version,
    "tls.alert": _tls_alert,
    "http.method": _http_method,
    "http.status": _http_status,
    "websocket.close_code": _ws_close,
    "ocpp.message": _ocpp,
}
