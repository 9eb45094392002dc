"""The fault catalogue (``../shared/spec/fault-catalogue.md``): ids, layers, nearest MREC code, remediation.

Fault ids are a public contract: JSON reports, tests and fleet dashboards key on them. Never rename one; add new
ones freely. ``tests/diagnosis/test_catalogue.py`` checks this table against the shared spec.
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.decoders.mrec import MREC_NAMES

LAYERS = ("dns", "tcp", "tls", "http", "websocket", "ocpp", "clock")


@dataclass(frozen=True, slots=True)
class Fault:
    id: str
    layer: str
    meaning: str
    failure_point: str
    cx_code: str | None
    remediation: tuple[str, ...]
    contributing: bool = False  # a cause that makes others happen (clock), not a failed handshake step itself

    @property
    def fix_side(self) -> str:
        """Who can fix it by default (catalogue "Who acts"); a finding may name another side with its reason."""
        return FIX_SIDES.get(self.id, "charger")

    @property
    def severity(self) -> str:
        return "contributing" if self.contributing else "failure"


def _f(fid: str, meaning: str, point: str, cx: str | None, *fix: str, contributing: bool = False) -> Fault:
    layer = {"ws": "websocket"}.get(fid.split(".")[0], fid.split(".")[0])
    return Fault(fid, layer, meaning, point, cx, fix, contributing)


FAULTS: dict[str, Fault] = {
    f.id: f
    for f in (
        _f(
            "dns.nxdomain",
            "the CSMS host name does not exist (rcode 3)",
            "the response",
            "CX013",
            "Check the CSMS URL configured on the charger.",
            "Check the DNS record of the CSMS host.",
        ),
        _f(
            "dns.servfail",
            "the resolver failed (rcode 2)",
            "the response",
            "CX013",
            "Check the resolver / APN DNS settings.",
            "Ask the DNS operator why the resolver fails for this name.",
        ),
        _f(
            "dns.refused",
            "the resolver refused the query (rcode 5)",
            "the response",
            "CX013",
            "Check the resolver / APN DNS settings: the resolver does not serve this charger.",
        ),
        _f(
            "dns.no_response",
            "DNS queries never answered",
            "the first unanswered query",
            "CX013",
            "Check the uplink, SIM/APN and the firewall towards the resolver.",
            "Check the resolver address configured on the charger.",
        ),
        _f(
            "dns.no_address",
            "NOERROR but no usable A/AAAA record",
            "the response",
            "CX013",
            "Fix the DNS record of the CSMS host (it has no A/AAAA record).",
        ),
        _f(
            "tcp.refused",
            "SYN answered by RST",
            "the RST",
            "CX013",
            "Check the CSMS port configured on the charger.",
            "Check that the CSMS service is running.",
            "Check firewalls for a reject rule.",
        ),
        _f(
            "tcp.syn_timeout",
            "SYN retransmitted, never answered",
            "the first SYN",
            "CX013",
            "Check routing and firewalls between the charger and the CSMS (packets are dropped).",
            "Check that the CSMS host is up.",
        ),
        _f(
            "tcp.unreachable",
            "ICMP/ICMPv6 unreachable for the connection",
            "the ICMP packet",
            "CX013",
            "Check routing and firewalls: a router reports the CSMS unreachable.",
        ),
        _f(
            "tcp.reset",
            "an established connection reset",
            "the RST",
            "CX013",
            "Check middleboxes (NAT, firewall) for idle timeouts.",
            "Check the CSMS logs for a restart or crash.",
        ),
        _f(
            "tcp.stalled",
            "data retransmitted without acknowledgement until the connection is abandoned",
            "the first unacknowledged segment",
            "CX013",
            "Check NAT / carrier idle timeouts.",
            "Lower the charger's WebSocket ping / TCP keepalive interval.",
        ),
        _f(
            "tls.cert_not_yet_valid",
            "the charger's clock is before the server certificate's notBefore",
            "the alert (or the packet that aborts the handshake)",
            "CX013",
            "Set the charger's clock (enable NTP) and check its RTC battery.",
            "After a power loss, check that the charger keeps its time.",
        ),
        _f(
            "tls.cert_expired",
            "server certificate past notAfter",
            "the alert",
            "CX013",
            "Renew the CSMS certificate.",
            "If the certificate is valid, check the charger's clock.",
        ),
        _f(
            "tls.unknown_ca",
            "the charger does not trust the issuing CA",
            "the alert",
            "CX013",
            "Install the CSMS root certificate on the charger.",
            "Check whether the CSMS rotated its CA.",
        ),
        _f(
            "tls.hostname_mismatch",
            "SNI / URL host not in the certificate",
            "the alert",
            "CX013",
            "Fix the host in the charger's CSMS URL, or the certificate's subjectAltName.",
        ),
        _f(
            "tls.protocol_version",
            "no common TLS version",
            "the alert",
            "CX013",
            "Enable TLS 1.2 or later on both the charger and the CSMS.",
        ),
        _f(
            "tls.handshake_failure",
            "no common cipher suite / parameters",
            "the alert",
            "CX013",
            "Align the cipher suites of the charger and the CSMS.",
        ),
        _f(
            "tls.client_cert_required",
            "the server wants a client certificate the charger does not present (security profile 3)",
            "the alert",
            "CX013",
            "Install the charger's client certificate (security profile 3).",
            "Or lower the CSMS's security profile for this charger.",
        ),
        _f("tls.alert", "any other fatal alert", "the alert", "CX013", "See the alert description."),
        _f(
            "tls.handshake_aborted",
            "handshake ended without a visible alert",
            "the aborting packet",
            "CX013",
            "See the inferred cause and its evidence.",
            "Capture again with a key log (SSLKEYLOGFILE on the CSMS) to see the encrypted messages.",
        ),
        _f(
            "http.unauthorized",
            "401 on the WebSocket upgrade (basic-auth password)",
            "the response",
            "CX013",
            "Fix the charger's AuthorizationKey / basic-auth password on the charger or the CSMS.",
        ),
        _f(
            "http.forbidden",
            "403 on the upgrade",
            "the response",
            "CX013",
            "The charger is not allowed on this CSMS: register or enable it.",
        ),
        _f(
            "http.not_found",
            "404 on the upgrade (unknown station identity / path)",
            "the response",
            "CX013",
            "Fix the station identity or the URL path configured on the charger.",
            "Check the charger is registered on the CSMS.",
        ),
        _f(
            "http.bad_request",
            "400 on the upgrade",
            "the response",
            "CX013",
            "Check the upgrade headers and the offered OCPP subprotocol.",
        ),
        _f("http.error", "any other non-101 answer", "the response", "CX013", "See the HTTP status and body."),
        _f(
            "ws.subprotocol_mismatch",
            "no OCPP version agreed",
            "the 101 or the refusing response",
            "CX013",
            "Align the OCPP version on both sides (the charger's offered subprotocols and the CSMS's).",
        ),
        _f(
            "ws.abnormal_close",
            "close frame with a code other than 1000/1001",
            "the close frame",
            "CX013",
            "See the close code and reason.",
        ),
        _f(
            "ws.dropped",
            "connection lost without a close frame (1006)",
            "the FIN/RST",
            "CX013",
            "Check the network path.",
            "Check the CSMS logs for a restart.",
        ),
        _f(
            "ws.ping_timeout",
            "pings unanswered until the connection is dropped",
            "the first unanswered ping",
            "CX013",
            "Check keepalive and NAT timeouts.",
        ),
        _f(
            "ocpp.callerror",
            "a CALLERROR answered a CALL",
            "the CALLERROR",
            "CX013",
            "Check firmware / CSMS OCPP compatibility.",
        ),
        _f(
            "ocpp.boot_rejected",
            "BootNotification answered Rejected",
            "the response",
            "CX013",
            "Register the station on the CSMS.",
        ),
        _f(
            "ocpp.boot_pending",
            "BootNotification answered Pending and never Accepted",
            "the first Pending response",
            "CX013",
            "Complete the station's provisioning on the CSMS.",
        ),
        _f(
            "ocpp.no_response",
            "a CALL not answered within the message timeout",
            "the CALL",
            "CX013",
            "Check the CSMS for overload or a lost connection.",
        ),
        _f(
            "ocpp.auth_rejected",
            "Authorize answered with a status other than Accepted",
            "the response",
            "CX009",
            "Check the idToken / payment with the CSMS operator.",
        ),
        _f(
            "ocpp.schema_violation",
            "a message breaks the OCPP JSON schema",
            "the message",
            "CX013",
            "Fix the named field (charger firmware or CSMS).",
        ),
        _f(
            "ocpp.reported_fault",
            "the charger reports a fault",
            "the report",
            None,
            "Follow the reported code's procedure.",
        ),
        _f(
            "ocpp.reboot_loop",
            "repeated BootNotifications in a short time",
            "the second Boot",
            "CX013",
            "Check the power supply and the charger's watchdog.",
        ),
        _f(
            "tls.scheme_mismatch",
            "the two ends speak different transports (TLS to a plain WebSocket port, or plain HTTP to a TLS port)",
            "the server's answer to the wrong-protocol bytes",
            "CX013",
            "Make the URL scheme (ws:// or wss://) and port configured on the charger match the CSMS endpoint.",
        ),
        _f(
            "ws.closed_after_upgrade",
            "the CSMS accepted the upgrade and closed at once, before answering any OCPP message",
            "the close frame (or the FIN/RST)",
            "CX013",
            "Check the station's registration and credentials on the CSMS (its log says why it refused the station).",
        ),
        _f(
            "ws.no_upgrade",
            "WebSocket frames on a connection that never did the HTTP upgrade",
            "the first such frame",
            "CX013",
            "Charger firmware: a connection must be upgraded before WebSocket frames are sent; report it to the "
            "vendor.",
        ),
        _f(
            "ocpp.silent_reboot",
            "the charger restarted without closing its session",
            "the first segment the old session left unacknowledged, else the new session's first packet",
            None,
            "Check the charger's power supply and watchdog.",
            "Check what preceded the reboot (a configuration change, a firmware fault) in the charger's log.",
        ),
        _f(
            "ocpp.charger_no_response",
            "the charger never answered a CALL from the CSMS while the connection stayed up",
            "the CALL",
            None,
            "Charger firmware: it ignores the request named; report it to the vendor.",
        ),
        _f(
            "clock.reset",
            "the charger's clock is at a default date (1970, 2000, ...)",
            "the first message or record that shows it",
            "CX015",
            "Enable NTP on the charger.",
            "Check / replace the RTC battery.",
            contributing=True,
        ),
        _f(
            "clock.skew",
            "the charger's clock far from the CSMS's time",
            "the first message or record that shows it",
            None,
            "Enable NTP on the charger.",
            contributing=True,
        ),
    )
}

SEVERITIES = ("failure", "contributing", "warning")
SIDES = ("charger", "csms", "network", "capture")
# who acts, by default (catalogue "Who acts"); faults not named here are the charger's
FIX_SIDES: dict[str, str] = {
    **dict.fromkeys(
        (
            "dns.servfail",
            "dns.refused",
            "dns.no_response",
            "tcp.syn_timeout",
            "tcp.unreachable",
            "tcp.reset",
            "tcp.stalled",
            "ws.dropped",
            "ws.ping_timeout",
        ),
        "network",
    ),
    **dict.fromkeys(
        (
            "dns.nxdomain",  # the charger's when other chargers resolve the CSMS name (a typo): set by the rule
            "dns.no_address",
            "tcp.refused",
            "tls.cert_expired",
            "tls.hostname_mismatch",
            "http.forbidden",
            "http.not_found",
            "http.error",
            "ws.abnormal_close",
            "ws.closed_after_upgrade",
            "ocpp.boot_rejected",
            "ocpp.boot_pending",
            "ocpp.no_response",
            "ocpp.auth_rejected",
        ),
        "csms",
    ),
    **dict.fromkeys(("tls.alert", "tls.handshake_aborted"), "capture"),
}
SIDE_WORDS = {
    "charger": "the charger (its configuration, clock or firmware)",
    "csms": "the CSMS operator (remotely)",
    "network": "the site or carrier network",
    "capture": "nobody yet: the capture cannot tell; take a better one",
}


def cx_label(code: str | None) -> str | None:
    """``CX013 NoInternet`` for ``CX013``; unknown codes as they are."""
    if code is None:
        return None
    return f"{code} {MREC_NAMES[code]}" if code in MREC_NAMES else code


# CALLs whose failure leaves a driver unable to charge: their faults map to CX009 AuthorizationTimeout
AUTHORIZATION_ACTIONS = frozenset(
    {"Authorize", "StartTransaction", "TransactionEvent", "RequestStartTransaction", "RemoteStartTransaction"}
)
