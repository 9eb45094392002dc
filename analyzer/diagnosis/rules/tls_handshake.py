"""The TLS handshake with the CSMS failed: a fatal alert, an encrypted alert, or a connection closed mid-handshake.

Field effect: the charger never reaches HTTP/OCPP. What failed is read from the alert when it is visible; when it
is not (TLS 1.3 hides the certificate and later alerts; Python's asyncio and Node close without an alert) the cause
is inferred from what is visible (who aborted, when, the certificate when TLS 1.2 shows it, the charger's clock)
and the finding says so, naming the evidence that would make it certain (a key log). With a key log the TLS 1.3
certificate and encrypted alerts are decrypted, and read like TLS 1.2's plaintext ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from analyzer.decoders.tls_names import version_name
from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import ends, flow_events, flow_kinds, scheme_mismatch
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule
from analyzer.timefmt import iso_utc

ALERT_FAULTS = {
    45: "tls.cert_expired",
    48: "tls.unknown_ca",
    70: "tls.protocol_version",
    40: "tls.handshake_failure",
    71: "tls.handshake_failure",
    116: "tls.client_cert_required",
}
CERT_REJECTED = (42, 43, 46)  # bad_certificate, unsupported_certificate, certificate_unknown
KEYLOG = "a key log from the CSMS or charger (SSLKEYLOGFILE) to decrypt the handshake"


@rule(
    "tls.cert_not_yet_valid",
    "tls.cert_expired",
    "tls.unknown_ca",
    "tls.hostname_mismatch",
    "tls.protocol_version",
    "tls.handshake_failure",
    "tls.client_cert_required",
    "tls.alert",
    "tls.handshake_aborted",
)
def tls_handshake(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for fid in ch.flow_ids:
        if "tls.client_hello" not in flow_kinds(ch, fid):
            continue
        evs = flow_events(ch, fid)
        if scheme_mismatch(ch, ctx, fid) is not None:
            continue  # TLS sent to a plain-WebSocket port: tls.scheme_mismatch
        f = _flow(evs, fid, ch, ctx)
        if f is not None:
            yield f


def _flow(evs: list[Any], fid: int, ch: Charger, ctx: Context) -> Finding | None:
    hello = next(e for e in evs if e.kind == "tls.client_hello")
    sh = next((e for e in evs if e.kind == "tls.server_hello"), None)
    alerts = [e for e in evs if e.kind == "tls.alert" and (e.encrypted or (e.level == 2 or e.description != 0))]
    established = _established(evs)
    ev = [Evidence(hello.frame, f"ClientHello SNI={hello.sni or '-'} versions={_versions(hello)}")]
    if sh is not None:
        ev.append(Evidence(sh.frame, f"ServerHello {version_name(sh.version)} {sh.cipher_name}"))
    leaf = _leaf(evs)
    if leaf is not None:
        ev.append(
            Evidence(
                leaf[0],
                f"server certificate {leaf[1].subject}, valid {_d(leaf[1].not_before_ns)} to "
                f"{_d(leaf[1].not_after_ns)}",
            )
        )
    alert = alerts[0] if alerts else _hidden_alert(evs, sh)
    if alert is not None and established is not None and alert.frame > established:
        return None  # an alert after the session was up ends a session; not a handshake failure
    if alert is None and established is not None:
        return None
    sender = "charger" if (alert.direction if alert else 0) == 0 else "CSMS"
    if alert is not None and (not alert.encrypted or getattr(alert, "decrypted", False)):
        how = " (decrypted with the key log)" if alert.encrypted else ""
        ev.append(
            Evidence(alert.frame, f"{sender} sent fatal alert {alert.description_name} ({alert.description}){how}")
        )
        d = alert.description
        if d in CERT_REJECTED and alert.direction == 0:
            return _cert_rejected(alert, evs, hello, leaf, ev, ch, ctx, "alert")
        fault = ALERT_FAULTS.get(d, "tls.alert")
        if d == 40 and alert.direction == 1 and _client_cert_missing(evs):
            fault = "tls.client_cert_required"
        chain = _incomplete_chain(evs) if fault == "tls.unknown_ca" else None
        if chain is not None:
            ev.append(Evidence(chain[0], chain[1]))
        return _finding(
            fault,
            alert,
            ev,
            f"The {sender} aborted the TLS handshake with alert {alert.description_name} ({d})"
            + (": the CSMS sent its certificate without the intermediate CA that issued it." if chain else "."),
            ch,
            ctx,
            fix_side="csms" if chain else None,
            fix_reason="the CSMS's certificate chain is incomplete (no intermediate)" if chain else None,
        )
    if alert is not None:  # encrypted: TLS 1.3 after ServerHello, or TLS 1.2 after ChangeCipherSpec
        ev.append(Evidence(alert.frame, f"{sender} sent an encrypted alert"))
        if alert.direction == 1 and _client_finished(evs, alert.frame):
            return _finding(
                "tls.client_cert_required",
                alert,
                ev,
                "The CSMS aborted the TLS handshake with an encrypted alert right after the charger's last flight: "
                "it rejected the charger's client certificate (or the lack of one).",
                ch,
                ctx,
                inferred=True,
                confidence="medium",
                certain_with=KEYLOG,
            )
        if alert.direction == 0:
            return _cert_rejected(alert, evs, hello, leaf, ev, ch, ctx, "encrypted alert")
        return _finding(
            "tls.handshake_aborted",
            alert,
            ev,
            "The CSMS aborted the TLS handshake with an encrypted alert.",
            ch,
            ctx,
            inferred=True,
            confidence="low",
            certain_with=KEYLOG,
        )
    end = next((e for e in ends(evs) if e.frame > hello.frame), None)
    if end is None:
        waited = ctx.waited_s(evs[-1].ts_ns)
        return Finding(
            fault="tls.handshake_aborted",
            frame=evs[-1].frame,
            ts_ns=evs[-1].ts_ns,
            undecided=True,
            summary=f"The TLS handshake had not finished when the capture ended ({waited:.1f} s later).",
            evidence=tuple(ev),
            certain_with="a longer capture",
            flow_id=fid,
        )
    ev.append(Evidence(end.frame, f"{end.kind.split('.')[1].upper()} from {end.src} with no alert"))
    if end.direction == 0 and sh is not None:
        return _cert_rejected(end, evs, hello, leaf, ev, ch, ctx, "close")
    who = "CSMS" if end.direction == 1 else "charger"
    stage = "after the ServerHello" if sh is not None else "before any ServerHello"
    return _finding(
        "tls.handshake_aborted",
        end,
        ev,
        f"The {who} closed the connection {stage} without a TLS alert.",
        ch,
        ctx,
        inferred=True,
        confidence="low",
        certain_with=KEYLOG,
    )


def _cert_rejected(
    at: Any,
    evs: list[Any],
    hello: Any,
    leaf: tuple[int, Any] | None,
    ev: list[Evidence],
    ch: Charger,
    ctx: Context,
    how: str,
) -> Finding:
    """The charger rejected the server's certificate: name why, from what is visible."""
    clock = ctx.clock
    sni = (hello.sni or ch.csms_host or "").lower()
    charger_now = clock.charger_time(at.ts_ns)
    said = {
        "alert": f"alert {getattr(at, 'description_name', '')}",
        "encrypted alert": "an encrypted alert",
        "close": "closing the connection without an alert",
    }[how]
    lead = f"The charger rejected the CSMS certificate ({said})"
    if clock.reset is not None:
        ev.append(Evidence(clock.reset.frame, f"charger clock reads {clock.reset.raw} ({clock.reset.source})"))
    if leaf is not None:
        cert = leaf[1]
        if sni and not _host_matches(sni, cert.san, cert.subject):
            return _finding(
                "tls.hostname_mismatch",
                at,
                ev,
                f"{lead}: the certificate names {_names(cert)}, not {sni}.",
                ch,
                ctx,
                inferred=how != "alert",
                confidence="high" if how == "alert" else "medium",
                certain_with=None if how == "alert" else KEYLOG,
            )
        if at.ts_ns > cert.not_after_ns:
            return _finding(
                "tls.cert_expired", at, ev, f"{lead}: the certificate expired on {_d(cert.not_after_ns)}.", ch, ctx
            )
        if charger_now is None and clock.reset is None and how == "close":
            return _aborted_candidates(at, ev, cert, sni, ch, ctx)
        if charger_now is not None and charger_now < cert.not_before_ns:
            return _finding(
                "tls.cert_not_yet_valid",
                at,
                ev,
                f"{lead}: the charger's clock ({_d(charger_now)}) is "
                f"before the certificate's notBefore ({_d(cert.not_before_ns)}).",
                ch,
                ctx,
                also_reset=clock.reset is not None,
            )
        conf = "medium" if how == "alert" or clock.reset is not None else "low"
        return _finding(
            "tls.cert_not_yet_valid",
            at,
            ev,
            f"{lead}, although it is valid now ({_d(cert.not_before_ns)} to {_d(cert.not_after_ns)}) and names "
            f"{sni or 'the host'}: the charger's clock is most likely behind its notBefore"
            + ("" if how == "alert" else " (or the charger does not trust the issuing CA)")
            + ".",
            ch,
            ctx,
            inferred=True,
            confidence=conf,
            also_reset=clock.reset is not None,
            certain_with="the charger's clock (an OCPP timestamp from it, or its log)",
        )
    if charger_now is None and clock.reset is None and how == "close":
        return _aborted_candidates(at, ev, None, sni, ch, ctx)
    conf = "medium" if clock.reset is not None else "low"
    return _finding(
        "tls.cert_not_yet_valid",
        at,
        ev,
        f"{lead}; TLS 1.3 hides the certificate, and a clock behind notBefore is the most common cause "
        "(a host name mismatch gives the same alert).",
        ch,
        ctx,
        inferred=True,
        confidence=conf,
        also_reset=clock.reset is not None,
        certain_with=KEYLOG,
    )


def _aborted_candidates(at: Any, ev: list[Evidence], cert: Any, sni: str, ch: Charger, ctx: Context) -> Finding:
    """The charger closed the handshake right after the CSMS's certificate flight, without an alert, and nothing
    in the capture tells its clock: name the candidate causes, most likely first, instead of guessing one."""
    if cert is not None:
        cands = [
            f"the charger's clock is before the certificate's notBefore ({_d(cert.not_before_ns)}), e.g. reset "
            "after a power loss",
            f"the charger does not trust the issuer ({cert.issuer})",
            "the charger rejects something else in the certificate (key usage, key size, revocation)",
        ]
    else:
        cands = [
            "the charger's clock is before the certificate's notBefore (TLS 1.3 hides the certificate)",
            "the charger does not trust the CSMS's certificate authority",
            f"the certificate does not name {sni or 'the host the charger asked for'}",
        ]
    ev = ev + [Evidence(at.frame, f"candidate {i}: {c}") for i, c in enumerate(cands, 1)]
    return _finding(
        "tls.handshake_aborted",
        at,
        ev,
        "The charger closed the TLS handshake right after the CSMS's certificate, without an alert: it rejected "
        f"the certificate, and nothing in the capture says why (most likely: {cands[0]}).",
        ch,
        ctx,
        inferred=True,
        confidence="medium",
        certain_with="the charger's clock (an OCPP timestamp from it, or its log), or " + KEYLOG,
        fix_side="charger",
        fix_reason="the charger ended the handshake after reading the CSMS's certificate",
    )


def _finding(
    fault: str,
    at: Any,
    ev: list[Evidence],
    summary: str,
    ch: Charger,
    ctx: Context,
    *,
    inferred: bool = False,
    confidence: str = "high",
    certain_with: str | None = None,
    also_reset: bool = False,
    fix_side: str | None = None,
    fix_reason: str | None = None,
) -> Finding:
    return Finding(
        fault=fault,
        frame=at.frame,
        ts_ns=at.ts_ns,
        summary=summary,
        evidence=tuple(ev),
        inferred=inferred,
        confidence=confidence,
        certain_with=certain_with,
        also_cx=("CX015",) if also_reset else (),
        fix_side=fix_side,
        fix_reason=fix_reason,
        flow_id=at.flow_id,
    )


def _established(evs: list[Any]) -> int | None:
    """Frame from which the handshake is over and data flows both ways, or None: the first frame of the fourth
    flight (client hello, server flight, client finish, server's next flight) of a connection whose summary says
    application data went both ways."""
    s = next((e for e in evs if e.kind == "tls.summary"), None)
    if s is None or not s.app_data_both_ways:
        return None
    return s.flights[3].first_frame if len(s.flights) > 3 else s.frame


ALERT_RECORD_LENGTHS = (11, 19)  # TLS 1.3 alert: 2 bytes + content type + AEAD tag (8 for CCM_8, else 16)


def _hidden_alert(evs: list[Any], sh: Any) -> Any:
    """TLS 1.3 sends alerts after the ServerHello as type-23 records: a last record of alert size from one side,
    before application data flowed both ways, is taken as its encrypted alert."""
    s = next((e for e in evs if e.kind == "tls.summary"), None)
    if sh is None or sh.version != 0x0304 or s is None or s.app_data_both_ways:
        return None
    for d in sorted((0, 1), key=lambda d: s.last_record_frame[d] or 1 << 62):
        if s.last_record_type[d] == 23 and s.last_record_length[d] in ALERT_RECORD_LENGTHS:
            frame = s.last_record_frame[d]
            if any(e.kind == "tls.encrypted" and e.record_frame == frame and e.inner_type is not None for e in evs):
                continue  # decrypted: it was not an alert (a real one would be a tls.alert event)
            at = next((e for e in evs if e.frame == frame), s)
            return SimpleNamespace(
                kind="tls.alert",
                frame=frame,
                ts_ns=at.ts_ns,
                direction=d,
                flow_id=s.flow_id,
                encrypted=True,
                level=None,
                description=None,
                description_name=None,
            )
    return None


def _incomplete_chain(evs: list[Any]) -> tuple[int, str] | None:
    """The server sent only its leaf certificate, issued by a CA that is not itself (and whose name does not say
    it is a root): the intermediate is missing from the chain. (frame, what) or None."""
    cert = next((e for e in evs if e.kind == "tls.certificate" and e.direction == 1 and e.certificates), None)
    if cert is None or len(cert.certificates) != 1:
        return None
    leaf = cert.certificates[0]
    if leaf.issuer == leaf.subject or "root" in leaf.issuer.lower():
        return None
    return cert.frame, f"the server's chain holds only its leaf certificate, issued by {leaf.issuer}: no intermediate"


def _client_finished(evs: list[Any], before: int) -> bool:
    """The charger sent encrypted records (its Finished) after the ServerHello and before ``before``."""
    return any(
        e.kind in ("tls.encrypted", "tls.change_cipher_spec") and e.direction == 0 and e.frame < before for e in evs
    )


def _client_cert_missing(evs: list[Any]) -> bool:
    if not any(e.kind == "tls.certificate_request" for e in evs):
        return False
    mine = [e for e in evs if e.kind == "tls.certificate" and e.direction == 0]
    return not mine or not mine[0].certificates


def _leaf(evs: list[Any]) -> tuple[int, Any] | None:
    for e in evs:
        if e.kind == "tls.certificate" and e.direction == 1 and e.certificates:
            c = e.certificates[0]
            if c.not_before_ns is not None and c.not_after_ns is not None:
                return e.frame, c
    return None


def _host_matches(host: str, san: tuple[str, ...], subject: str) -> bool:
    names = [n.lower() for n in san] or [p[3:].lower() for p in subject.split(",") if p.startswith("CN=")]
    for n in names:
        if n == host or (n.startswith("*.") and host.split(".", 1)[-1] == n[2:] and host.count(".") >= 2):
            return True
    return False


def _names(cert: Any) -> str:
    return ", ".join(cert.san) or cert.subject


def _versions(hello: Any) -> str:
    vs = hello.supported_versions or (hello.legacy_version,)
    return ",".join(version_name(v) for v in vs)


def _d(ns: int | None) -> str:
    return iso_utc(ns)[:10] if ns is not None else "?"
