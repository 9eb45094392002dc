"""The lab's scenarios: which stacks run, how they are configured, and which fault each charger must show.

Each scenario runs in its own network namespace. Ports, host names and station ids differ between
scenarios so that captures cannot be confused with one another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: OpenSSL alert descriptions the lab meets (RFC 8446 §6)
ALERTS = {
    40: "handshake_failure",
    42: "bad_certificate",
    45: "certificate_expired",
    46: "certificate_unknown",
    48: "unknown_ca",
    70: "protocol_version",
    116: "certificate_required",
}

SILENT_RESOLVER = "127.0.0.54"
FAKE_CLOCK = "2000-01-01 00:00:00"


@dataclass(frozen=True)
class Tls:
    """TLS on a CSMS listener (server side) and what the chargers connecting to it do (client side)."""

    server_cert: str = "valid"  # see certs.SERVER_KINDS
    server_min: str = "1.2"
    server_max: str = "1.3"
    client_min: str = "1.2"
    client_max: str = "1.3"
    require_client_cert: bool = False


@dataclass(frozen=True)
class Listener:
    host: str  # loopback address the CSMS binds
    port: int
    tls: Tls | None = None


@dataclass(frozen=True)
class Station:
    """A station provisioned on the CSMS."""

    id: str
    password: str | None = None
    behaviour: str = "accept"  # see csms.BEHAVIOURS
    close_code: int = 1008
    close_reason: str = ""
    after_boot_delay: float = 0.3  # seconds between Boot Accepted and the behaviour's next step


@dataclass(frozen=True)
class Expect:
    """Ground truth for one charger: the fault (None = healthy) and how to find its failure frame."""

    fault_id: str | None
    cx: str | None
    locate: str  # see truth.LOCATORS
    also: tuple[str, ...] = ()  # further faults the capture shows (contributing / consequences)
    fix_side: str | None = None  # who can fix it (catalogue "Who acts"): charger | csms | network | capture
    site_visit: bool = False  # someone must go there: a charger-side fault and no working session at the end
    severity: str = "failure"  # the root cause's severity (failure | contributing); unused when healthy


@dataclass(frozen=True)
class Charger:
    station_id: str
    host: str  # host name in the CSMS URL (resolved through dnsmasq)
    port: int
    expect: Expect
    ocpp: str = "1.6"
    path: str = "/ocpp"
    tls: bool = False
    offer: tuple[str, ...] = ()  # subprotocols offered; default from ``ocpp``
    password: str | None = None
    client_cert: bool = False
    faketime: str | None = None
    malformed_boot: str | None = None
    script: tuple[str, ...] = ("heartbeat", "status", "authorize")
    boot_tries: int = 3
    open_timeout: float = 5
    response_timeout: float = 3
    start_delay: float = 0
    source: str | None = None  # local loopback address to connect from (default: the kernel's choice)
    stack: str = "python"  # python (ocpp on websockets) | node (ocpp-rpc RPCClient, strictMode)
    keylog: bool = False  # the charger writes the TLS key log (a proxy terminates TLS and keeps none)
    ignore_actions: tuple[str, ...] = ()  # CSMS requests the charger's handler receives and never answers
    connect_attempts: int = 1  # TCP connect attempts when the connection is refused (1 = no retry)
    backoff: float = 0.25  # first delay between connect attempts; doubles each time
    backoff_max: float = 4.0  # cap of the delay between connect attempts

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}{self.path}/{self.station_id}"

    @property
    def subprotocols(self) -> list[str]:
        return list(self.offer) or [{"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}[self.ocpp]]


@dataclass(frozen=True)
class Proxy:
    """A real proxy or relay between the chargers and the CSMS (started before the capture)."""

    kind: str  # nginx | haproxy | socat
    host: str  # loopback address it listens on
    port: int
    upstream: tuple[str, int]  # where it forwards to (a CSMS listener, or a closed port)
    tls: Tls | None = None  # TLS terminated by the proxy (server side; the cert is for the charger's host)
    read_timeout: float | None = None  # nginx proxy_read_timeout (seconds)
    source: str | None = None  # socat: the address it connects to the upstream from


@dataclass(frozen=True)
class PowerCut:
    """The lab cuts one charger's power mid-session (``lab._power_cut``): ``after`` seconds after its Boot was
    accepted it drops the charger's traffic in nftables (output: nothing the charger's kernel sends on that
    connection reaches the capture; input: nothing reaches it), SIGKILLs the charger process by PID and destroys
    its orphaned socket (``ss -K``, whose RST the rule drops), so the connection vanishes without FIN or RST
    as it would with the power. ``off_for`` seconds later it removes the rule and starts a new charger process
    with the same station id, message ids from 1001 again and the script ``reboot_script``."""

    station_id: str
    after: float = 1.0
    off_for: float = 3.0
    reboot_script: tuple[str, ...] = ("status", "heartbeat", "wait:3")


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    chargers: tuple[Charger, ...]
    listeners: tuple[Listener, ...] = ()
    stations: tuple[Station, ...] = ()
    dns: dict[str, str] = field(default_factory=dict)  # host name -> loopback address
    resolver: str = "127.0.0.1"
    firewall: tuple[str, ...] = ()  # nft rules for the input hook
    interface: str = "lo"
    csms_subprotocols: tuple[str, ...] = ("ocpp1.6", "ocpp2.0.1")
    subprotocol_policy: str = "reject"
    stock_asyncio_tls: bool = False  # True: no gh-98078 backport, asyncio sends no TLS alert (see tlsfix)
    notes: str = ""
    power_cut: PowerCut | None = None
    csms_stack: str = "python"  # python (ocpp on websockets) | node (ocpp-rpc RPCServer, strictMode)
    proxies: tuple[Proxy, ...] = ()

    @property
    def uses_tls(self) -> bool:
        return any(lst.tls for lst in self.listeners) or any(p.tls for p in self.proxies)

    @property
    def uses_node(self) -> bool:
        return self.csms_stack == "node" or any(c.stack == "node" for c in self.chargers)


DEMO = "healthy_16_ws"

# Shorthands for the expectations.
HEALTHY = Expect(None, None, "healthy")
BASIC = ("heartbeat", "status", "authorize")


def _one(
    name: str,
    title: str,
    charger: Charger,
    *,
    addr: str,
    listen: bool = True,
    tls: Tls | None = None,
    station: Station | None = None,
    **kw: object,
) -> Scenario:
    """A scenario with one charger, one CSMS listener and one DNS name."""
    listeners = (Listener(addr, charger.port, tls),) if listen else ()
    stations = (station or Station(charger.station_id, charger.password),)
    dns = kw.pop("dns", {charger.host: addr})
    return Scenario(name, title, (charger,), listeners, stations, dns, **kw)  # type: ignore[arg-type]


def _all() -> list[Scenario]:
    s: list[Scenario] = []
    # -- healthy ---------------------------------------------------------------------------------------
    s.append(
        _one(
            "healthy_16_ws",
            "OCPP 1.6 over ws with basic auth (security profile 1): healthy",
            Charger("CP-ALPHA-001", "csms.alpha.test", 9016, HEALTHY, password="alpha-secret-1"),
            addr="127.0.0.10",
        )
    )
    s.append(
        _one(
            "healthy_201_ws",
            "OCPP 2.0.1 over ws: healthy",
            Charger("CS-BRAVO-201", "ocpp.bravo.test", 9201, HEALTHY, ocpp="2.0.1", password="bravo-pw-201"),
            addr="127.0.0.11",
        )
    )
    s.append(
        _one(
            "healthy_16_wss_tls12",
            "OCPP 1.6 over wss, TLS 1.2, basic auth (security profile 2): healthy",
            Charger("CP-CHARLIE-7", "secure.charlie.test", 8443, HEALTHY, tls=True, password="charlie-secret"),
            addr="127.0.0.12",
            tls=Tls(server_max="1.2"),
        )
    )
    s.append(
        _one(
            "healthy_201_wss_tls13_mtls",
            "OCPP 2.0.1 over wss, TLS 1.3, client certificate (security profile 3): healthy",
            Charger("CS-DELTA-3", "csms.delta.test", 9443, HEALTHY, ocpp="2.0.1", tls=True, client_cert=True),
            addr="127.0.0.13",
            tls=Tls(server_min="1.3", require_client_cert=True),
        )
    )
    # -- DNS -------------------------------------------------------------------------------------------
    s.append(
        Scenario(
            "dns_nxdomain",
            "the CSMS host name does not exist (NXDOMAIN from dnsmasq)",
            (
                Charger(
                    "CP-ECHO-11",
                    "csms.echo-typo.test",
                    9030,
                    Expect("dns.nxdomain", "CX013", "dns_response", fix_side="csms"),
                ),
            ),
            (Listener("127.0.0.14", 9030),),
            (Station("CP-ECHO-11"),),
            {"csms.echo.test": "127.0.0.14"},
        )
    )
    s.append(
        Scenario(
            "dns_no_response",
            "the charger's resolver never answers (queries dropped by the firewall)",
            (
                Charger(
                    "CP-FOXTROT-2",
                    "csms.foxtrot.test",
                    9031,
                    Expect("dns.no_response", "CX013", "dns_unanswered", fix_side="network"),
                    open_timeout=6,
                ),
            ),
            (Listener("127.0.0.15", 9031),),
            (Station("CP-FOXTROT-2"),),
            {"csms.foxtrot.test": "127.0.0.15"},
            resolver=SILENT_RESOLVER,
            firewall=(f"ip daddr {SILENT_RESOLVER} udp dport 53 drop",),
        )
    )
    s.append(
        _one(
            "dns_no_address",
            "NOERROR without an A/AAAA record (the name has only a TXT record)",
            Charger(
                "CP-GOLF-3", "csms.golf.test", 9032, Expect("dns.no_address", "CX013", "dns_response", fix_side="csms")
            ),
            addr="127.0.0.16",
            dns={"csms.golf.test": "txt:v=lab-no-address"},
        )
    )
    s.append(
        _one(
            "dns_refused",
            "the resolver refuses a name outside its zone (no upstream): REFUSED",
            Charger(
                "CP-HOTEL-4",
                "csms.hotel.example",
                9033,
                Expect("dns.refused", "CX013", "dns_response", fix_side="network"),
            ),
            addr="127.0.0.17",
            dns={},
        )
    )
    # -- TCP -------------------------------------------------------------------------------------------
    s.append(
        _one(
            "tcp_refused",
            "a firewall rejects the CSMS port with a TCP reset",
            Charger(
                "CP-INDIA-5", "csms.india.test", 9310, Expect("tcp.refused", "CX013", "tcp_refused", fix_side="csms")
            ),
            addr="127.0.0.18",
            firewall=("tcp dport 9310 reject with tcp reset",),
        )
    )
    s.append(
        _one(
            "tcp_refused_no_listener",
            "nothing listens on the CSMS port: the kernel answers the SYN with RST",
            Charger(
                "CP-INDIA-6", "ocpp.india.test", 9311, Expect("tcp.refused", "CX013", "tcp_refused", fix_side="csms")
            ),
            addr="127.0.0.19",
            listen=False,
        )
    )
    s.append(
        _one(
            "tcp_syn_timeout",
            "a firewall silently drops SYNs to the CSMS port; the charger gives up",
            Charger(
                "CP-JULIET-7",
                "csms.juliet.test",
                9320,
                Expect("tcp.syn_timeout", "CX013", "tcp_syn_timeout", fix_side="network"),
                open_timeout=3.5,
            ),
            addr="127.0.0.20",
            firewall=("tcp dport 9320 drop",),
        )
    )
    s.append(
        _one(
            "tcp_unreachable",
            "a firewall rejects the CSMS port with ICMP host-unreachable",
            Charger(
                "CP-JULIET-8",
                "ocpp.juliet.test",
                9321,
                Expect("tcp.unreachable", "CX013", "icmp_unreachable", fix_side="network"),
            ),
            addr="127.0.0.21",
            firewall=("tcp dport 9321 reject with icmp type host-unreachable",),
        )
    )
    # -- TLS -------------------------------------------------------------------------------------------
    s.append(
        _one(
            "tls12_cert_not_yet_valid",
            "the charger's clock says 2000-01-01 (faketime): the CSMS certificate is not yet valid, TLS 1.2",
            Charger(
                "CP-KILO-12",
                "csms.kilo.test",
                9412,
                Expect(
                    "tls.cert_not_yet_valid",
                    "CX013",
                    "tls_alert",
                    also=("clock.reset",),
                    fix_side="charger",
                    site_visit=True,
                ),
                tls=True,
                faketime=FAKE_CLOCK,
            ),
            addr="127.0.0.22",
            tls=Tls(server_max="1.2"),
        )
    )
    s.append(
        _one(
            "tls12_cert_not_yet_valid_no_alert",
            "as tls12_cert_not_yet_valid, but with stock Python 3.11 asyncio TLS, which sends no alert "
            "(CPython gh-98078): the charger just closes after the server's flight",
            Charger(
                "CP-KILO-14",
                "ocpp.kilo.test",
                9414,
                Expect("tls.handshake_aborted", "CX013", "tls_abort", fix_side="charger", site_visit=True),
                tls=True,
                faketime=FAKE_CLOCK,
            ),
            addr="127.0.0.37",
            tls=Tls(server_max="1.2"),
            stock_asyncio_tls=True,
        )
    )
    s.append(
        _one(
            "tls13_cert_not_yet_valid",
            "the charger's clock says 2000-01-01 (faketime): certificate not yet valid, TLS 1.3 "
            "(OpenSSL 3.0 sends this client alert unencrypted, before switching to handshake keys)",
            Charger(
                "CP-KILO-13",
                "wss.kilo.test",
                9413,
                Expect(
                    "tls.cert_not_yet_valid",
                    "CX013",
                    "tls_alert",
                    also=("clock.reset",),
                    fix_side="charger",
                    site_visit=True,
                ),
                tls=True,
                faketime=FAKE_CLOCK,
            ),
            addr="127.0.0.23",
            tls=Tls(server_min="1.3"),
        )
    )
    s.append(
        _one(
            "tls_cert_expired",
            "the CSMS certificate expired in 2021 (TLS 1.2)",
            Charger(
                "CP-LIMA-20",
                "csms.lima.test",
                9420,
                Expect("tls.cert_expired", "CX013", "tls_alert", fix_side="csms"),
                tls=True,
            ),
            addr="127.0.0.24",
            tls=Tls(server_cert="expired", server_max="1.2"),
        )
    )
    s.append(
        _one(
            "tls_unknown_ca",
            "the CSMS certificate is issued by a CA the charger does not trust (TLS 1.3)",
            Charger(
                "CP-MIKE-21",
                "csms.mike.test",
                9421,
                Expect("tls.unknown_ca", "CX013", "tls_alert", fix_side="charger", site_visit=True),
                tls=True,
            ),
            addr="127.0.0.25",
            tls=Tls(server_cert="unknown_ca"),
        )
    )
    s.append(
        _one(
            "tls_hostname_mismatch",
            "the CSMS certificate is for another host name (TLS 1.2)",
            Charger(
                "CP-NOVEMBER-22",
                "csms.november.test",
                9422,
                Expect("tls.hostname_mismatch", "CX013", "tls_alert", fix_side="csms"),
                tls=True,
            ),
            addr="127.0.0.26",
            tls=Tls(server_cert="wrong_host", server_max="1.2"),
        )
    )
    s.append(
        _one(
            "tls_protocol_version",
            "the CSMS accepts TLS 1.3 only, the charger speaks up to TLS 1.2",
            Charger(
                "CP-OSCAR-23",
                "csms.oscar.test",
                9423,
                Expect("tls.protocol_version", "CX013", "tls_alert", fix_side="charger", site_visit=True),
                tls=True,
            ),
            addr="127.0.0.27",
            tls=Tls(server_min="1.3", client_max="1.2"),
        )
    )
    s.append(
        _one(
            "tls12_client_cert_required",
            "the CSMS requires a client certificate (security profile 3), the charger has none; TLS 1.2",
            Charger(
                "CP-PAPA-24",
                "csms.papa.test",
                9424,
                Expect("tls.client_cert_required", "CX013", "tls_alert", fix_side="charger", site_visit=True),
                tls=True,
            ),
            addr="127.0.0.28",
            tls=Tls(server_max="1.2", require_client_cert=True),
        )
    )
    s.append(
        _one(
            "tls13_client_cert_required",
            "the CSMS requires a client certificate, the charger has none; TLS 1.3 (alert after the "
            "charger's Finished, encrypted)",
            Charger(
                "CP-PAPA-25",
                "wss.papa.test",
                9425,
                Expect("tls.client_cert_required", "CX013", "tls_alert", fix_side="charger", site_visit=True),
                tls=True,
            ),
            addr="127.0.0.29",
            tls=Tls(server_min="1.3", require_client_cert=True),
        )
    )
    # -- HTTP / WebSocket ------------------------------------------------------------------------------
    s.append(
        _one(
            "http_unauthorized",
            "wrong basic-auth password on the WebSocket upgrade: HTTP 401",
            Charger(
                "CP-QUEBEC-30",
                "csms.quebec.test",
                9530,
                Expect("http.unauthorized", "CX013", "http_status", fix_side="charger", site_visit=True),
                password="not-the-password",
            ),
            addr="127.0.0.30",
            station=Station("CP-QUEBEC-30", password="quebec-secret"),
        )
    )
    s.append(
        Scenario(
            "http_not_found",
            "a station identity the CSMS does not know: HTTP 404",
            (
                Charger(
                    "CP-ROMEO-404",
                    "csms.romeo.test",
                    9531,
                    Expect("http.not_found", "CX013", "http_status", fix_side="csms"),
                ),
            ),
            (Listener("127.0.0.31", 9531),),
            (Station("CP-ROMEO-031"),),
            {"csms.romeo.test": "127.0.0.31"},
        )
    )
    s.append(
        _one(
            "http_bad_request",
            "charger offers only ocpp2.0.1 to a 1.6-only CSMS that rejects the upgrade (websockets: HTTP 400)",
            Charger(
                "CS-SIERRA-32",
                "csms.sierra.test",
                9532,
                Expect("ws.subprotocol_mismatch", "CX013", "http_status", fix_side="charger", site_visit=True),
                ocpp="2.0.1",
            ),
            addr="127.0.0.32",
            csms_subprotocols=("ocpp1.6",),
        )
    )
    s.append(
        _one(
            "ws_subprotocol_mismatch",
            "charger offers only ocpp1.6, the CSMS speaks 2.0.1 only: 101 without a subprotocol, then close",
            Charger(
                "CP-TANGO-33",
                "csms.tango.test",
                9533,
                Expect("ws.subprotocol_mismatch", "CX013", "ws_no_subprotocol", fix_side="charger", site_visit=True),
            ),
            addr="127.0.0.33",
            csms_subprotocols=("ocpp2.0.1",),
            subprotocol_policy="ignore",
        )
    )
    s.append(
        _one(
            "ws_abnormal_close",
            "the CSMS closes the WebSocket with 1008 (policy violation) after Boot",
            Charger(
                "CS-UNIFORM-34",
                "csms.uniform.test",
                9534,
                Expect("ws.abnormal_close", "CX013", "ws_close", fix_side="csms"),
                ocpp="2.0.1",
                script=("wait:2",),
            ),
            addr="127.0.0.34",
            station=Station(
                "CS-UNIFORM-34", behaviour="close", close_code=1008, close_reason="station suspended by operator"
            ),
        )
    )
    s.append(
        _one(
            "ws_dropped",
            "the CSMS drops the connection after Boot without a close frame (FIN)",
            Charger(
                "CP-VICTOR-35",
                "csms.victor.test",
                9535,
                Expect("ws.dropped", "CX013", "ws_dropped", fix_side="network"),
                script=("wait:2",),
            ),
            addr="127.0.0.35",
            station=Station("CP-VICTOR-35", behaviour="drop"),
        )
    )
    s.append(
        _one(
            "tcp_reset",
            "the CSMS resets the established connection after Boot (RST)",
            Charger(
                "CP-VICTOR-36",
                "ocpp.victor.test",
                9536,
                Expect("tcp.reset", "CX013", "tcp_reset", fix_side="network"),
                script=("wait:2",),
            ),
            addr="127.0.0.36",
            station=Station("CP-VICTOR-36", behaviour="reset"),
        )
    )
    # -- OCPP ------------------------------------------------------------------------------------------
    s.append(
        _one(
            "ocpp_boot_callerror",
            "BootNotification answered with a CALLERROR (InternalError)",
            Charger(
                "CP-WHISKEY-40",
                "csms.whiskey.test",
                9640,
                Expect("ocpp.callerror", "CX013", "ocpp_callerror", fix_side="csms"),
            ),
            addr="127.0.0.40",
            station=Station("CP-WHISKEY-40", behaviour="boot_callerror"),
        )
    )
    s.append(
        _one(
            "ocpp_boot_callerror_wss_tls13",
            "BootNotification answered with a CALLERROR (InternalError) inside wss over TLS 1.3: the twin of "
            "ocpp_boot_callerror, readable with the CSMS's key log",
            Charger(
                "CP-WHISKEY-47",
                "secure.whiskey.test",
                9647,
                Expect("ocpp.callerror", "CX013", "ocpp_callerror", fix_side="csms"),
                tls=True,
            ),
            addr="127.0.0.47",
            tls=Tls(server_min="1.3"),
            station=Station("CP-WHISKEY-47", behaviour="boot_callerror"),
        )
    )
    s.append(
        _one(
            "ocpp_boot_callerror_wss_tls12",
            "BootNotification answered with a CALLERROR (InternalError) inside wss over TLS 1.2: the twin of "
            "ocpp_boot_callerror, readable with the CSMS's key log",
            Charger(
                "CP-WHISKEY-48",
                "secure2.whiskey.test",
                9648,
                Expect("ocpp.callerror", "CX013", "ocpp_callerror", fix_side="csms"),
                tls=True,
            ),
            addr="127.0.0.48",
            tls=Tls(server_max="1.2"),
            station=Station("CP-WHISKEY-48", behaviour="boot_callerror"),
        )
    )
    s.append(
        _one(
            "ocpp_schema_violation",
            "the charger sends a BootNotification without chargePointModel (raw JSON); the CSMS's ocpp "
            "library answers with a CALLERROR",
            Charger(
                "CP-XRAY-41",
                "csms.xray.test",
                9641,
                Expect("ocpp.callerror", "CX013", "ocpp_callerror", fix_side="charger", site_visit=True),
                malformed_boot='[2,"1001","BootNotification",{"chargePointVendor":"GhostcapLab"}]',
            ),
            addr="127.0.0.41",
        )
    )
    s.append(
        _one(
            "ocpp_boot_rejected",
            "BootNotification answered Rejected",
            Charger(
                "CS-YANKEE-42",
                "csms.yankee.test",
                9642,
                Expect("ocpp.boot_rejected", "CX013", "ocpp_boot_status", fix_side="csms"),
                ocpp="2.0.1",
            ),
            addr="127.0.0.42",
            station=Station("CS-YANKEE-42", behaviour="reject"),
        )
    )
    s.append(
        _one(
            "ocpp_boot_pending",
            "BootNotification answered Pending three times; the charger gives up",
            Charger(
                "CP-ZULU-43",
                "csms.zulu.test",
                9643,
                Expect("ocpp.boot_pending", "CX013", "ocpp_boot_status", fix_side="csms"),
            ),
            addr="127.0.0.43",
            station=Station("CP-ZULU-43", behaviour="pending"),
        )
    )
    s.append(
        _one(
            "ocpp_authorize_no_response",
            "the CSMS never answers Authorize; the charger's 2 s message timeout expires",
            Charger(
                "CP-AMBER-44",
                "csms.amber.test",
                9644,
                Expect("ocpp.no_response", "CX009", "ocpp_call", fix_side="csms"),
                script=("status", "authorize"),
                response_timeout=2,
            ),
            addr="127.0.0.44",
            station=Station("CP-AMBER-44", behaviour="no_authorize_answer"),
        )
    )
    s.append(
        _one(
            "ocpp_auth_rejected",
            "Authorize answered Invalid (OCPP 2.0.1)",
            Charger(
                "CS-BRONZE-45",
                "csms.bronze.test",
                9645,
                Expect("ocpp.auth_rejected", "CX009", "ocpp_authorize_status", fix_side="csms"),
                ocpp="2.0.1",
            ),
            addr="127.0.0.45",
            station=Station("CS-BRONZE-45", behaviour="auth_invalid"),
        )
    )
    s.append(
        _one(
            "clock_reset",
            "the charger's clock says 2000-01-01 (faketime); otherwise healthy 1.6 over ws",
            Charger(
                "CP-COPPER-46",
                "csms.copper.test",
                9646,
                Expect("clock.reset", "CX015", "ocpp_clock", fix_side="charger", severity="contributing"),
                faketime=FAKE_CLOCK,
                script=("status", "heartbeat"),
            ),
            addr="127.0.0.46",
        )
    )
    # -- gateway: several chargers, captured on any interface (Linux cooked) ---------------------------
    gw = "127.0.0.50"
    s.append(
        Scenario(
            "gateway_mixed",
            "a site gateway's view (tcpdump -i any): four chargers, two healthy, one rejected at Boot, one with "
            "a wrong password",
            (
                Charger("GW-CP-01", "csms.gateway.test", 9700, HEALTHY, password="gw-pw-01", source="127.0.1.1"),
                Charger(
                    "GW-CS-02",
                    "csms.gateway.test",
                    9700,
                    HEALTHY,
                    ocpp="2.0.1",
                    password="gw-pw-02",
                    start_delay=0.2,
                    source="127.0.1.2",
                ),
                Charger(
                    "GW-CP-03",
                    "csms.gateway.test",
                    9700,
                    Expect("ocpp.boot_rejected", "CX013", "ocpp_boot_status", fix_side="csms"),
                    start_delay=0.4,
                    source="127.0.1.3",
                ),
                Charger(
                    "GW-CP-04",
                    "csms.gateway.test",
                    9700,
                    Expect("http.unauthorized", "CX013", "http_status", fix_side="charger", site_visit=True),
                    password="stale-password",
                    start_delay=0.6,
                    source="127.0.1.4",
                ),
            ),
            (Listener(gw, 9700),),
            (
                Station("GW-CP-01", "gw-pw-01"),
                Station("GW-CS-02", "gw-pw-02"),
                Station("GW-CP-03", behaviour="reject"),
                Station("GW-CP-04", "gw-pw-04"),
            ),
            {"csms.gateway.test": gw},
            interface="any",
        )
    )
    s += _lab_a()
    s += _lab_b()
    return s


def _lab_b() -> list[Scenario]:
    """Other real stacks: ocpp-rpc (Node.js) as CSMS and charger, nginx, HAProxy and socat in the path."""
    s: list[Scenario] = []
    # -- ocpp-rpc (Node.js) ----------------------------------------------------------------------------
    s.append(
        _one(
            "ocpprpc_boot_missing_field",
            "the charger sends a BootNotification without chargePointModel (raw JSON) to an ocpp-rpc RPCServer "
            "in strictMode, which answers a CALLERROR",
            Charger(
                "LB-RPC-01",
                "csms.rpc-one.test",
                9901,
                Expect("ocpp.callerror", "CX013", "ocpp_callerror", fix_side="charger", site_visit=True),
                malformed_boot='[2,"1001","BootNotification",{"chargePointVendor":"GhostcapLab"}]',
            ),
            addr="127.0.4.1",
            csms_stack="node",
            csms_subprotocols=("ocpp1.6",),
        )
    )
    s.append(
        _one(
            "ocpprpc_client_healthy",
            "an ocpp-rpc RPCClient charger (OCPP 1.6, strictMode) against the lab's Python CSMS: Boot, "
            "Heartbeat, StatusNotification, close 1000: healthy",
            Charger("LB-RPC-02", "csms.rpc-two.test", 9902, HEALTHY, stack="node", script=("heartbeat", "status")),
            addr="127.0.4.2",
        )
    )
    s.append(
        _one(
            "ocpprpc_server_close_code",
            "an ocpp-rpc RPCServer accepts the upgrade of a station it does not know, then closes the WebSocket "
            "at once with 1008 before answering its BootNotification",
            Charger(
                "LB-RPC-03",
                "csms.rpc-three.test",
                9903,
                Expect("ws.closed_after_upgrade", "CX013", "ws_closed_after_upgrade", fix_side="csms"),
            ),
            addr="127.0.4.3",
            csms_stack="node",
            csms_subprotocols=("ocpp1.6",),
            station=Station("LB-RPC-03-OTHER"),
        )
    )
    s.append(
        _one(
            "ocpprpc_client_tls_no_alert",
            "an ocpp-rpc RPCClient (Node.js TLS) connects over wss to a CSMS whose certificate is issued by a CA "
            "it does not trust (TLS 1.3): Node closes with a bare FIN right after the server's flight (no alert, "
            "no Finished)",
            Charger(
                "LB-RPC-04",
                "csms.rpc-four.test",
                9904,
                Expect("tls.handshake_aborted", "CX013", "tls_abort", fix_side="charger", site_visit=True),
                tls=True,
                stack="node",
                script=("heartbeat", "status"),
            ),
            addr="127.0.4.4",
            tls=Tls(server_cert="unknown_ca"),
        )
    )
    # -- nginx (Debian) as the TLS-terminating reverse proxy ---------------------------------------------
    s.append(
        Scenario(
            "proxy_nginx_502",
            "nginx terminates TLS in front of a CSMS that is down (nothing listens on the upstream port): the "
            "WebSocket upgrade gets 502 Bad Gateway",
            (
                Charger(
                    "LB-NGX-05",
                    "ocpp.ngx-five.test",
                    9905,
                    Expect("http.error", "CX013", "http_status_tls", fix_side="csms"),
                    tls=True,
                    keylog=True,
                ),
            ),
            proxies=(Proxy("nginx", "127.0.4.5", 9905, ("127.0.4.6", 9906), tls=Tls()),),
            dns={"ocpp.ngx-five.test": "127.0.4.5"},
        )
    )
    s.append(
        Scenario(
            "proxy_nginx_idle_timeout",
            "nginx (proxy_read_timeout 2s) in front of a working CSMS; the charger boots, then stays idle "
            "(no WebSocket pings): after 2 s nginx closes both legs with a FIN and no close frame",
            (
                Charger(
                    "LB-NGX-06",
                    "ocpp.ngx-six.test",
                    9907,
                    Expect("ws.dropped", "CX013", "ws_dropped_idle", fix_side="network"),
                    script=("wait:4",),
                ),
            ),
            (Listener("127.0.4.8", 9908),),
            (Station("LB-NGX-06"),),
            {"ocpp.ngx-six.test": "127.0.4.7"},
            proxies=(Proxy("nginx", "127.0.4.7", 9907, ("127.0.4.8", 9908), read_timeout=2),),
        )
    )
    s.append(
        Scenario(
            "proxy_nginx_incomplete_chain",
            "nginx serves a leaf certificate issued by an intermediate CA without the intermediate; the charger "
            "trusts only the root: unknown_ca alert (TLS 1.3, sent in cleartext)",
            (
                Charger(
                    "LB-NGX-07",
                    "ocpp.ngx-seven.test",
                    9909,
                    Expect("tls.unknown_ca", "CX013", "tls_alert_chain", fix_side="csms"),
                    tls=True,
                    keylog=True,
                ),
            ),
            (Listener("127.0.4.10", 9910),),
            (Station("LB-NGX-07"),),
            {"ocpp.ngx-seven.test": "127.0.4.9"},
            proxies=(Proxy("nginx", "127.0.4.9", 9909, ("127.0.4.10", 9910), tls=Tls(server_cert="no_intermediate")),),
        )
    )
    # -- socat as a plain TCP relay, both legs in one capture ---------------------------------------------
    s.append(
        Scenario(
            "relay_socat",
            "one charger (127.0.4.11) reaches the CSMS through a socat TCP relay (127.0.4.12 -> 127.0.4.14, "
            "connecting from 127.0.4.13); tcpdump -i any sees both legs of the one healthy session",
            (
                Charger(
                    "LB-SOC-08",
                    "ocpp.soc-eight.test",
                    9911,
                    Expect(None, None, "healthy_relayed"),
                    password="soc-eight-pw",
                    source="127.0.4.11",
                ),
            ),
            (Listener("127.0.4.14", 9912),),
            (Station("LB-SOC-08", "soc-eight-pw"),),
            {"ocpp.soc-eight.test": "127.0.4.12"},
            interface="any",
            proxies=(Proxy("socat", "127.0.4.12", 9911, ("127.0.4.14", 9912), source="127.0.4.13"),),
        )
    )
    # -- HAProxy (Debian) terminating TLS, no backend up ------------------------------------------------
    s.append(
        Scenario(
            "proxy_haproxy_503",
            "HAProxy terminates TLS in front of a CSMS backend its health check found down: the WebSocket "
            "upgrade gets 503 Service Unavailable",
            (
                Charger(
                    "LB-HAP-09",
                    "ocpp.hap-nine.test",
                    9913,
                    Expect("http.error", "CX013", "http_status_tls", fix_side="csms"),
                    tls=True,
                    keylog=True,
                ),
            ),
            proxies=(Proxy("haproxy", "127.0.4.15", 9913, ("127.0.4.16", 9914), tls=Tls()),),
            dns={"ocpp.hap-nine.test": "127.0.4.15"},
        )
    )
    return s


def _lab_a() -> list[Scenario]:
    """Further Python-stack scenarios: close after the upgrade, an ignored request, a power cut, wss/ws scheme
    mismatches, a CSMS name typo in a gateway capture, a charger retrying with backoff."""
    s: list[Scenario] = []
    s.append(
        _one(
            "ws_closed_after_upgrade",
            "the CSMS accepts the upgrade (101), reads the charger's BootNotification and closes the WebSocket "
            "with 1000 (no reason) without answering it",
            Charger(
                "LA-CP-801",
                "csms.la-closed.test",
                9801,
                Expect("ws.closed_after_upgrade", "CX013", "ws_close_after_upgrade", fix_side="csms"),
            ),
            addr="127.0.3.1",
            station=Station("LA-CP-801", behaviour="close_after_upgrade"),
        )
    )
    s.append(
        _one(
            "ocpp_charger_ignores_request",
            "healthy OCPP 1.6 session; the charger never answers the CSMS's ChangeConfiguration (its handler drops "
            "it), answers the GetConfiguration that follows the CSMS's 5 s timeout, and stays connected",
            Charger(
                "LA-CP-802",
                "csms.la-ignore.test",
                9802,
                Expect("ocpp.charger_no_response", None, "ocpp_csms_call_unanswered", fix_side="charger"),
                script=("status", "wait:7"),
                ignore_actions=("ChangeConfiguration",),
            ),
            addr="127.0.3.2",
            station=Station("LA-CP-802", behaviour="unanswered_request"),
        )
    )
    s.append(
        _one(
            "ocpp_silent_reboot",
            "OCPP 2.0.1: the charger loses power mid-session (nftables drop, SIGKILL, socket destroyed: no FIN, "
            "no RST); the CSMS's TriggerMessage goes unacknowledged and is retransmitted; power back: a new "
            "process boots again (ids from 1001, reason PowerUp); the old connection's retransmission gets an RST",
            Charger(
                "LA-CS-803",
                "csms.la-reboot.test",
                9803,
                Expect("ocpp.silent_reboot", "CX015", "ocpp_silent_reboot", fix_side="charger"),
                ocpp="2.0.1",
                script=("status", "wait:20"),
                source="127.0.3.103",
            ),
            addr="127.0.3.3",
            station=Station("LA-CS-803", behaviour="trigger_after_boot", after_boot_delay=2.0),
            power_cut=PowerCut("LA-CS-803", after=1.0, off_for=3.0, reboot_script=("status", "heartbeat", "wait:5")),
        )
    )
    s.append(
        _one(
            "tls_scheme_mismatch_wss_to_ws",
            "the charger's URL says wss:// but the CSMS port serves plain ws: its TLS ClientHello reaches the "
            "websockets HTTP parser",
            Charger(
                "LA-CP-804",
                "csms.la-plain.test",
                9804,
                Expect("tls.scheme_mismatch", "CX013", "tls_scheme_answer", fix_side="charger", site_visit=True),
                tls=True,
                open_timeout=15,
            ),
            addr="127.0.3.4",
        )
    )
    s.append(
        _one(
            "tls_scheme_mismatch_ws_to_wss",
            "the charger's URL says ws:// but the CSMS port serves wss: its plain HTTP upgrade reaches the TLS server",
            Charger(
                "LA-CP-805",
                "csms.la-secure.test",
                9805,
                Expect("tls.scheme_mismatch", "CX013", "tls_scheme_answer", fix_side="charger", site_visit=True),
                open_timeout=15,
            ),
            addr="127.0.3.5",
            tls=Tls(),
        )
    )
    kappa = "127.0.3.6"
    s.append(
        Scenario(
            "dns_nxdomain_typo_gateway",
            "a site gateway's view (tcpdump -i any): three chargers resolve csms.kappa-gw.test and work; a fourth "
            "is configured with csms.kappa-gq.test (one character off) and gets NXDOMAIN",
            (
                Charger("LA-GW-01", "csms.kappa-gw.test", 9806, HEALTHY, source="127.0.3.11"),
                Charger("LA-GW-02", "csms.kappa-gw.test", 9806, HEALTHY, start_delay=0.2, source="127.0.3.12"),
                Charger(
                    "LA-GW-03", "csms.kappa-gw.test", 9806, HEALTHY, ocpp="2.0.1", start_delay=0.4, source="127.0.3.13"
                ),
                Charger(
                    "LA-GW-04",
                    "csms.kappa-gq.test",
                    9806,
                    Expect("dns.nxdomain", "CX013", "dns_nxdomain_typo", fix_side="charger", site_visit=True),
                    start_delay=0.6,
                    source="127.0.3.14",
                ),
            ),
            (Listener(kappa, 9806),),
            (Station("LA-GW-01"), Station("LA-GW-02"), Station("LA-GW-03"), Station("LA-GW-04")),
            {"csms.kappa-gw.test": kappa},
            interface="any",
        )
    )
    s.append(
        _one(
            "tcp_refused_backoff",
            "nothing listens on the CSMS port; the charger retries 8 times with exponential backoff (0.25 s "
            "doubling, capped at 4 s), every SYN answered by RST",
            Charger(
                "LA-CP-807",
                "csms.la-refused.test",
                9807,
                Expect("tcp.refused", "CX013", "tcp_refused_repeated", fix_side="csms"),
                connect_attempts=8,
                backoff=0.25,
                backoff_max=4.0,
            ),
            addr="127.0.3.7",
            listen=False,
        )
    )
    return s


SCENARIOS: dict[str, Scenario] = {sc.name: sc for sc in _all()}
