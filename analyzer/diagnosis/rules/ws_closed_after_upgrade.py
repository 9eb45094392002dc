"""The CSMS accepted the WebSocket upgrade (101) and then closed the WebSocket or the connection before answering
any OCPP message (any close code, 1000 included): it refused the station without saying why.

Field effect: the charger reconnects again and again, each session cut at once (unknown identity, wrong
credentials, a version the CSMS will not serve). A 101 without the offered subprotocol is ws.subprotocol_mismatch
instead. The charger's CALLs left unanswered by the close are evidence, not findings.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import flow_events, upgraded
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule

ANSWERS = ("ocpp.call_result", "ocpp.call_error")


@rule("ws.closed_after_upgrade")
def ws_closed_after_upgrade(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for fid in ch.flow_ids:
        evs = flow_events(ch, fid)
        ok = upgraded(evs)
        if ok is None:
            continue
        req = next((e for e in evs if e.kind == "http.request"), None)
        offered = tuple(getattr(req, "ws_protocols", ())) if req is not None else ()
        if offered and getattr(ok, "ws_protocol", None) not in offered:
            continue  # ws.subprotocol_mismatch
        end = next(
            (
                e
                for e in evs
                if e.frame > ok.frame
                and e.direction == 1
                and (e.kind in ("websocket.close", "tcp.fin", "tcp.rst") or e.kind in ANSWERS)
            ),
            None,
        )
        if end is None or end.kind in ANSWERS:
            continue
        if any(e.kind == "websocket.close" and e.direction == 0 and e.frame < end.frame for e in evs):
            continue  # the charger closed first
        how = (
            f"a close frame (code {end.code}{f', {end.reason!r}' if end.reason else ''})"
            if end.kind == "websocket.close"
            else f"a TCP {end.kind.split('.')[1].upper()}"
        )
        after = (end.ts_ns - ok.ts_ns) / 1e6
        ev = [Evidence(ok.frame, "CSMS accepted the WebSocket upgrade (101)")]
        ev += [
            Evidence(e.frame, f"charger sent {e.action} [{e.unique_id}], never answered")
            for e in evs
            if e.kind == "ocpp.call" and e.direction == 0
        ][:3]
        ev.append(Evidence(end.frame, f"CSMS closed with {how} {after:.1f} ms after the 101"))
        station = f" station {ch.station_id}" if ch.station_id else " the charger"
        yield Finding(
            fault="ws.closed_after_upgrade",
            frame=end.frame,
            ts_ns=end.ts_ns,
            summary=f"The CSMS accepted{station}'s WebSocket upgrade and closed it {after:.1f} ms later with "
            f"{how}, before answering any OCPP message: it refused the station without saying why.",
            evidence=tuple(sorted(ev, key=lambda x: x.frame)),
            flow_id=fid,
            covers_flows=(fid,),
        )
