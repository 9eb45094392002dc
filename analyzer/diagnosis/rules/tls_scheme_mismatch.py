"""The two ends speak different transports: a TLS ClientHello sent to a port that serves plain WebSocket, or a
plain HTTP upgrade sent to a TLS port (the charger's URL says wss:// where the CSMS serves ws://, or the reverse).

Field effect: every connection fails at once, whatever the certificate or the password; the server's answer to
the wrong-protocol bytes (an HTTP 400, an alert, a FIN or RST) is the failure point.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import flow_events, scheme_mismatch
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule


@rule("tls.scheme_mismatch")
def tls_scheme_mismatch(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for fid in ch.flow_ids:
        found = scheme_mismatch(ch, ctx, fid)
        if found is None:
            continue
        how, answer, seen = found
        evs = flow_events(ch, fid)
        fl = ctx.timeline.flows[fid]
        said = _answer(answer)
        if how == "tls_to_plain":
            hello = next(e for e in evs if e.kind == "tls.client_hello")
            first = Evidence(hello.frame, f"charger sent a TLS ClientHello to {fl.server} (SNI {hello.sni or '-'})")
            summary = (
                f"The charger spoke TLS (wss://) to {fl.server}, which serves plain WebSocket (ws://); the server "
                f"answered {said}: the URL scheme on the charger does not match the CSMS endpoint."
            )
        else:
            req = next(e for e in evs if e.kind == "http.request")
            first = Evidence(req.frame, f"charger sent a plain HTTP upgrade {req.method} {req.target} to {fl.server}")
            summary = (
                f"The charger sent a plain WebSocket upgrade (ws://) to {fl.server}, which serves TLS (wss://); "
                f"the server answered {said}: the URL scheme on the charger does not match the CSMS endpoint."
            )
        if not seen:
            summary = summary.replace(", which serves", ", which most likely serves")
        yield Finding(
            fault="tls.scheme_mismatch",
            inferred=not seen,
            confidence="high" if seen else "medium",
            certain_with=None
            if seen
            else "a capture of another client on this port, or the CSMS's listener configuration",
            frame=answer.frame,
            ts_ns=answer.ts_ns,
            summary=summary,
            evidence=(first, Evidence(answer.frame, f"server answered {said}")),
            flow_id=fid,
            covers_flows=(fid,),
        )


def _answer(e: object) -> str:
    kind = getattr(e, "kind", "")
    if kind == "http.response":
        return f"HTTP {getattr(e, 'status', '?')} {getattr(e, 'reason', '')}".strip()
    if kind == "tls.alert":
        return f"a TLS alert ({getattr(e, 'description_name', None) or 'encrypted'})"
    if kind in ("tcp.fin", "tcp.rst"):
        return f"with a {kind.split('.')[1].upper()} and not one byte"
    return "with bytes of the other protocol"
