"""What a charger's failure looks like from the CSMS side, so that many chargers failing the same way can be one
incident: the CSMS endpoint, and the server certificate, HTTP status, CALLERROR, close code or DNS answer at the
failure point; also the resolver the charger asked and the furthest stage it reached (for the fleet funnel).

Pure functions of one ``ChargerResult`` and the timeline's flows: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analyzer.diagnosis.attempts import STAGES
from analyzer.diagnosis.runner import ChargerResult
from analyzer.events.base import Event
from analyzer.timefmt import iso_utc
from analyzer.timeline.timeline import FlowInfo

CLOSE_FAULTS = ("ws.abnormal_close", "ws.closed_after_upgrade")
STATUS_FAULTS = ("ocpp.boot_rejected", "ocpp.boot_pending", "ocpp.auth_rejected")


@dataclass(frozen=True, slots=True)
class Signature:
    """``endpoint`` (``host:port`` of the CSMS, its address when no name is seen); ``signature`` (what must also
    match, ``kind=value``: ``certificate=<sha256>``, ``http_status=401``, ``callerror=BootNotification/
    FormatViolation``, ``close_code=1008``, ``dns_answer=NXDOMAIN``, ``status=Rejected``; ``None`` when the fault
    has none or the capture does not show it); ``detail`` (the same in words, with the certificate's validity);
    ``resolver`` (the DNS server the charger asked); ``stage`` (the furthest stage any attempt reached)."""

    endpoint: str | None = None
    signature: str | None = None
    detail: str | None = None
    resolver: str | None = None
    stage: str = "none"


def endpoint(host: str | None, address: str | None, port: int | None) -> str | None:
    where = host or address
    if not where:
        return None
    where = f"[{where}]" if ":" in where else where
    return f"{where}:{port}" if port else where


def furthest_stage(r: ChargerResult) -> str:
    """The furthest stage of any attempt; a charger that connected without a lookup (by address, or its lookup
    before the capture) is past DNS."""
    best = max((a.reached for a in r.attempts), key=STAGES.index, default="none")
    kinds = {a.kind for a in r.attempts}
    if best == "none" and "connection" in kinds and "lookup" not in kinds:
        return "dns"
    return best


def resolver_of(r: ChargerResult, flows: dict[int, FlowInfo]) -> str | None:
    for e in r.charger.events:
        if e.kind in ("dns.query", "dns.response", "dns.unanswered") and e.flow_id in flows:
            return flows[e.flow_id].server_addr  # type: ignore[index]
    return None


def signature_of(r: ChargerResult, flows: dict[int, FlowInfo]) -> Signature:
    ch = r.charger
    base = Signature(
        endpoint=endpoint(ch.csms_host, ch.csms_address, ch.csms_port),
        resolver=resolver_of(r, flows),
        stage=furthest_stage(r),
    )
    rc = r.root_cause
    if rc is None:
        return base
    at = [e for e in ch.events if e.frame == rc.frame]
    flow = rc.flow_id if rc.flow_id is not None else next((e.flow_id for e in at if e.flow_id is not None), None)
    in_flow = [e for e in ch.events if flow is not None and e.flow_id == flow]
    kind, value, detail = _detail(rc.fault, at, in_flow, ch.events)
    if kind is None:
        return base
    return Signature(base.endpoint, f"{kind}={value}", detail, base.resolver, base.stage)


def _first(kind: str, *groups: list[Event]) -> Any:
    for events in groups:
        for e in events:
            if e.kind == kind:
                return e
    return None


def _detail(
    fault: str, at: list[Event], in_flow: list[Event], every: list[Event]
) -> tuple[str | None, str | None, str | None]:
    """(kind, value, words) for a fault, from the events at the failure point, of its flow, of the charger."""
    layer = fault.split(".")[0]
    if layer == "tls":
        certs = [e for e in in_flow or every if e.kind == "tls.certificate" and getattr(e, "sender", "") == "server"]
        certs = certs or [e for e in every if e.kind == "tls.certificate" and getattr(e, "sender", "") == "server"]
        leaf = next((c.certificates[0] for c in certs if c.certificates), None)  # type: ignore[attr-defined]
        if leaf is None or not leaf.sha256:
            return None, None, None
        words = f"certificate sha256 {leaf.sha256[:16]}… ({leaf.subject or 'no subject'})"
        if fault == "tls.cert_expired" and leaf.not_after_ns is not None:
            words += f", expired {_minute(leaf.not_after_ns)}"
        elif fault == "tls.cert_not_yet_valid" and leaf.not_before_ns is not None:
            words += f", valid from {_minute(leaf.not_before_ns)}"
        elif leaf.not_after_ns is not None:
            words += f", valid until {_minute(leaf.not_after_ns)}"
        return "certificate", leaf.sha256, words
    if layer == "http" or fault == "ws.subprotocol_mismatch":
        resp = _first("http.response", at, in_flow)
        if resp is None:
            return None, None, None
        return "http_status", str(resp.status), f"HTTP {resp.status} {resp.reason}".rstrip()
    if fault in CLOSE_FAULTS:
        close = _first("websocket.close", at, in_flow)
        if close is None:
            return "close_code", "none", "no close frame"
        code = "none" if close.code is None else str(close.code)
        words = f"close code {code}" + (f" {close.reason[:60]!r}" if close.reason else "")
        return "close_code", code, words
    if fault == "ocpp.callerror":
        err = _first("ocpp.call_error", at, in_flow)
        if err is None:
            return None, None, None
        value = f"{err.action or '?'}/{err.error_code_canonical}"
        return "callerror", value, f"CALLERROR {err.error_code_canonical} to {err.action or 'an unpaired CALL'}"
    if fault in STATUS_FAULTS:
        res = _first("ocpp.call_result", at, in_flow)
        status = getattr(res, "status", None) if res is not None else None
        if status is None:
            return None, None, None
        return "status", f"{res.action}/{status}", f"{res.action} answered {status}"
    if layer == "dns":
        resp = _first("dns.response", at, in_flow)
        if resp is not None:
            answer = resp.rcode_name + (" " + ",".join(sorted(resp.addresses)) if resp.addresses else "")
            return "dns_answer", answer, f"DNS answer {answer} for {resp.qname}"
        if _first("dns.unanswered", at, in_flow) is not None:
            return "dns_answer", "no answer", "no DNS answer"
    return None, None, None


def _minute(ns: int) -> str:
    """``2026-11-24 03:00 UTC``."""
    iso = iso_utc(ns) or ""
    return f"{iso[:10]} {iso[11:16]} UTC" if len(iso) >= 16 else iso
