"""Settings the diagnosis rules read (thresholds and timeouts). Decoders never read them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Settings:
    """Fields: ``dns_timeout_s`` (a query unanswered this long counts as lost: resolvers retry after ~5 s);
    ``syn_timeout_s`` (a SYN unanswered this long, or retransmitted, counts as dropped: Linux retransmits after
    1 s, 3 s, 7 s); ``ocpp_timeout_s`` (OCPP's default message timeout); ``clock_skew_s`` (a charger clock further
    than this from the CSMS's counts as skewed); ``reboot_window_s`` (two BootNotifications closer than this are a
    reboot loop); ``csms`` (``(host, port or None)`` named by the user, or ``None``); ``show_tokens`` (render
    idTokens in reports); ``keylog_files`` (NSS key logs to decrypt TLS with, besides keys embedded in the
    capture)."""

    dns_timeout_s: float = 5.0
    syn_timeout_s: float = 3.0
    ocpp_timeout_s: float = 30.0
    clock_skew_s: float = 300.0
    reboot_window_s: float = 600.0
    csms: tuple[str, int | None] | None = None
    show_tokens: bool = False
    keylog_files: tuple[str, ...] = ()


def parse_csms(value: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address → ``(host, port or None)``."""
    v = value.strip()
    if v.startswith("["):
        host, _, rest = v[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif v.count(":") == 1:
        host, _, port = v.partition(":")
    else:
        host, port = v, ""
    if not host:
        raise ValueError(f"no host in {value!r}")
    if port and not (port.isascii() and port.isdigit()):  # "²" is a digit to str.isdigit, not to int
        raise ValueError(f"port {port!r} in {value!r} is not a number")
    return host.lower().rstrip("."), int(port) if port else None
