"""A charger's ``verification`` object (``run``) in one sentence, for the HTML and Markdown reports."""

from __future__ import annotations

from typing import Any

FIELD_WORDS = {
    "dns.query": "DNS query",
    "dns.rcode": "DNS rcode",
    "dns.addresses": "DNS addresses",
    "tcp.flags": "TCP flags",
    "icmp": "ICMP error",
    "tls.sni": "TLS SNI",
    "tls.version": "TLS version",
    "tls.alert": "TLS alert",
    "http.method": "HTTP method",
    "http.status": "HTTP status",
    "websocket.close_code": "WebSocket close code",
    "ocpp.message": "OCPP message",
}


def verification_text(v: dict[str, Any] | None) -> str | None:
    """``tshark 4.0.17 agrees: it reads the same TLS SNI, TLS version and TLS alert in frames 8, 10 and 12.``, or
    where it disagrees, or why tshark was not asked; ``None`` without ``--verify``."""
    if not v:
        return None
    if not v.get("done"):
        return f"Not checked with tshark: {v.get('note') or 'tshark was not asked'}."
    checks = v.get("checks") or []
    tool = v.get("tool") or "tshark"
    if not checks:
        return f"{tool}: {v.get('note') or 'nothing to check'}."
    numbers = sorted({c["frame"] for c in checks})
    frames = ("frames " if len(numbers) > 1 else "frame ") + _and([str(f) for f in numbers])
    fields = _and([FIELD_WORDS.get(f, f) for f in dict.fromkeys(c["field"] for c in checks)])
    more = f" ({v['note']})" if v.get("note") else ""
    bad = [c for c in checks if not c.get("agree")]
    if not bad:
        return f"{tool} agrees: it reads the same {fields} in {frames}{more}."
    where = "; ".join(
        f"frame {c['frame']} {FIELD_WORDS.get(c['field'], c['field'])}: ghostcap {c['ghostcap']}, tshark "
        + (c["tshark"] if c.get("tshark") is not None else "shows no such field")
        for c in bad
    )
    return f"{tool} disagrees on {len(bad)} of {len(checks)} checks: {where}{more}."


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
