"""What ghostcap says about the frames a verdict rests on, in the words ``compare`` renders tshark's dissection in.

No I/O: events in, ``Claim`` s out. A claim is one field of one frame: ``tls.alert`` ``bad_certificate``,
``dns.rcode`` ``NXDOMAIN``, ``http.status`` ``401``, ``websocket.close_code`` ``1008``, ``ocpp.message``
``CALLERROR InternalError [1001]``, ``tcp.flags`` ``RST``... (``FIELDS``). Several events of one field in one frame
(two OCPP messages in one segment) make one claim, their values joined by `` | `` in capture order. Nothing secret
enters a claim: OCPP messages are named by type, id, action, error code and status, never by payload.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analyzer.budgets import VERIFY_FRAMES_PER_CHARGER
from analyzer.decoders.tls_names import version_name
from analyzer.events.base import Event
from analyzer.events.dns import DnsQuery, DnsResponse
from analyzer.events.http import HttpRequest, HttpResponse
from analyzer.events.ocpp import OcppCall, OcppCallError, OcppCallResult, OcppCallResultError, OcppSend, OcppUnparsed
from analyzer.events.tcp import IcmpError, TcpFin, TcpRst, TcpSyn, TcpSynAck
from analyzer.events.tls import TlsAlert, TlsClientHello, TlsServerHello
from analyzer.events.websocket import WsClose

if TYPE_CHECKING:
    from analyzer.diagnosis.runner import ChargerResult

# the fields compared, in the order a frame's checks are listed
FIELDS = (
    "dns.query",
    "dns.rcode",
    "dns.addresses",
    "tcp.flags",
    "icmp",
    "tls.sni",
    "tls.version",
    "tls.alert",
    "http.method",
    "http.status",
    "websocket.close_code",
    "ocpp.message",
)
JOIN = " | "
NONE = "none"  # a field that is there with no value: no SNI, a close frame without a status code, no address
ENCRYPTED = "encrypted"  # an alert nobody could read
NOT_OCPP = "not OCPP-J"
TCP_FLAG_ORDER = ("SYN", "ACK", "FIN", "RST")


@dataclass(frozen=True, slots=True)
class Claim:
    """ghostcap's ``value`` of ``field`` (one of ``FIELDS``) in ``frame``."""

    frame: int
    field: str
    value: str


def checked_frames(result: ChargerResult, limit: int = VERIFY_FRAMES_PER_CHARGER) -> list[int]:
    """The frames a charger's root cause names: its frame, its last frame, its evidence; at most ``limit``, in
    that order of importance, returned in frame order. None without a root cause."""
    rc = result.root_cause
    if rc is None:
        return []
    named = [rc.frame, *([rc.last_frame] if rc.last_frame else []), *(e.frame for e in rc.evidence)]
    return sorted(list(dict.fromkeys(f for f in named if f > 0))[:limit])


def claims(events: Iterable[Event], frames: Sequence[int]) -> list[Claim]:
    """ghostcap's claims about ``frames``, from the ``events`` (a charger's) in those frames; frame, then
    ``FIELDS`` order. A frame whose events say nothing tshark can check (a DNS timeout) has no claim."""
    wanted = set(frames)
    values: dict[tuple[int, str], list[str]] = {}
    flags: dict[int, set[str]] = {}
    for e in events:
        if e.frame not in wanted:
            continue
        bits = tcp_flags_of(e)
        if bits:
            flags.setdefault(e.frame, set()).update(bits)
            continue
        for name, value in event_claims(e):
            values.setdefault((e.frame, name), []).append(value)
    for frame, bits in flags.items():
        values[(frame, "tcp.flags")] = [flags_text(bits)]
    order = {name: i for i, name in enumerate(FIELDS)}
    return [
        Claim(frame, name, JOIN.join(vals))
        for (frame, name), vals in sorted(values.items(), key=lambda kv: (kv[0][0], order[kv[0][1]]))
    ]


def tcp_flags_of(e: Event) -> tuple[str, ...]:
    if isinstance(e, TcpSynAck):
        return ("SYN", "ACK")
    if isinstance(e, TcpSyn):
        return ("SYN",)
    if isinstance(e, TcpFin):
        return ("FIN",)
    if isinstance(e, TcpRst):
        return ("RST",)
    return ()


def flags_text(bits: Iterable[str]) -> str:
    """``{"ACK", "SYN"}`` → ``SYN,ACK``: the control flags in header order."""
    s = set(bits)
    return ",".join(b for b in TCP_FLAG_ORDER if b in s)


def event_claims(e: Event) -> list[tuple[str, str]]:
    """(field, value) for one event; ``[]`` for an event tshark has nothing to say about in its frame."""
    if isinstance(e, DnsQuery):
        return [("dns.query", f"{e.qname.rstrip('.').lower()} {e.qtype}")]
    if isinstance(e, DnsResponse):
        return [("dns.rcode", e.rcode_name), ("dns.addresses", addresses_text(e.addresses))]
    if isinstance(e, IcmpError):
        return [("icmp", e.detail.rsplit(" from ", 1)[0])]
    if isinstance(e, TlsClientHello):
        return [("tls.sni", e.sni.lower() if e.sni else NONE)]
    if isinstance(e, TlsServerHello):
        return [("tls.version", version_name(e.version) or NONE)]
    if isinstance(e, TlsAlert):
        readable = e.description is not None and (not e.encrypted or e.decrypted)
        return [("tls.alert", (e.description_name or str(e.description)) if readable else ENCRYPTED)]
    if isinstance(e, HttpRequest):
        return [("http.method", e.method)]
    if isinstance(e, HttpResponse):
        return [("http.status", str(e.status))]
    if isinstance(e, WsClose):
        return [("websocket.close_code", NONE if e.code is None else str(e.code))]
    text = ocpp_claim(e)
    return [("ocpp.message", text)] if text is not None else []


def addresses_text(addresses: Iterable[str]) -> str:
    return ",".join(sorted(set(addresses))) or NONE


def ocpp_claim(e: Event) -> str | None:
    if isinstance(e, OcppCall):
        return ocpp_text("CALL", e.unique_id, e.action)
    if isinstance(e, OcppCallResult):
        return ocpp_text("CALLRESULT", e.unique_id, e.status)
    if isinstance(e, OcppCallError):
        return ocpp_text("CALLERROR", e.unique_id, e.error_code)
    if isinstance(e, OcppCallResultError):
        return ocpp_text("CALLRESULTERROR", e.unique_id, e.error_code)
    if isinstance(e, OcppSend):
        return ocpp_text("SEND", e.unique_id, e.action)
    if isinstance(e, OcppUnparsed):
        return NOT_OCPP
    return None


def ocpp_text(kind: str, unique_id: str, detail: str | None) -> str:
    """``CALL BootNotification [1001]``, ``CALLRESULT Rejected [1001]``, ``CALLRESULT [7]`` (no status)."""
    return f"{kind}{' ' + detail if detail else ''} [{unique_id}]"
