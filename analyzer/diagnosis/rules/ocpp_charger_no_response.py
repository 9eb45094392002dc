"""The charger never answered a CALL from the CSMS (ChangeConfiguration, TriggerMessage, RemoteStart...) while the
connection stayed up: past the message timeout, or while it answered later requests.

Field effect: the CSMS's command has no effect (a configuration not applied, a remote start that never starts).
A CALL the capture ended too soon after is undecided.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import ends, flow_events
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule

START = ("RemoteStartTransaction", "RequestStartTransaction")


@rule("ocpp.charger_no_response")
def ocpp_charger_no_response(ch: Charger, ctx: Context) -> Iterator[Finding]:
    for e in ch.events:
        if e.kind != "ocpp.unanswered" or e.direction != 1:
            continue
        evs = flow_events(ch, e.flow_id)
        closed = [x for x in ends(evs) if x.frame > e.frame]
        end_ns = closed[0].ts_ns if closed else ctx.timeline.end_ns
        waited = (end_ns - e.ts_ns) / 1e9
        later = next(
            (
                x
                for x in evs
                if x.frame > e.frame and x.kind in ("ocpp.call_result", "ocpp.call_error") and x.direction == 0
            ),
            None,
        )
        if later is None and closed and waited < ctx.settings.ocpp_timeout_s:
            continue  # the connection ended first: the end explains it
        undecided = later is None and waited < ctx.settings.ocpp_timeout_s
        ev = [Evidence(e.frame, f"CSMS sent {e.action} [{e.unique_id}]")]
        if later is not None:
            ev.append(Evidence(later.frame, f"charger answered a later request ({later.action}), not this one"))
        why = "while it answered later requests" if later is not None else f"for {waited:.0f} s"
        yield Finding(
            fault="ocpp.charger_no_response",
            frame=e.frame,
            ts_ns=e.ts_ns,
            summary=f"The charger never answered the CSMS's {e.action} [{e.unique_id}] {why}, although the "
            "connection stayed up.",
            evidence=tuple(ev),
            cx_code="CX009" if e.action in START else None,
            undecided=undecided,
            certain_with=f"a capture that lasts {ctx.settings.ocpp_timeout_s:.0f} s past the CALL"
            if undecided
            else None,
            flow_id=e.flow_id,
        )
