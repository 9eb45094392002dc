"""The charger restarted without closing its session: a new connection starts with a BootNotification while the
old session was never closed by the charger (it goes silent or half-open: the CSMS's data unacknowledged, a later
RST from the charger's fresh TCP stack), with message ids restarting, Boot reason PowerUp or StopTransaction
reason PowerLoss as further evidence.

Field effect: every reboot drops the charger offline for its boot time, loses what the old session was doing (the
CSMS's unacknowledged request, a running transaction) and leaves the CSMS holding a dead connection. CX015 when
the evidence names a power loss.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.facts import flow_events, retransmissions
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule

QUIET = ("rst", "flow_end", "summary")  # events that say nothing the charger sent
SESSION = ("websocket.message", "ocpp.call", "ocpp.call_result", "ocpp.call_error", "ocpp.send")


@rule("ocpp.silent_reboot")
def ocpp_silent_reboot(ch: Charger, ctx: Context) -> Iterator[Finding]:
    flows = {fid: flow_events(ch, fid) for fid in ch.flow_ids}
    sessions = [fid for fid, evs in flows.items() if any(e.kind in SESSION for e in evs)]
    for new in sessions:
        boot = next(
            (e for e in flows[new] if e.kind == "ocpp.call" and e.action == "BootNotification" and e.direction == 0),
            None,
        )
        if boot is None:
            continue
        start = flows[new][0]
        olds = [
            old
            for old in sessions
            if old != new and flows[old][0].frame < start.frame and _left_open(flows[old], boot.frame)
        ]
        if not olds:
            continue
        old = olds[-1]
        oevs = flows[old]
        signs = _signs(oevs, flows[new], boot)
        unacked = _unacknowledged(oevs)
        if unacked is None and not signs:
            continue  # a second connection with a Boot but nothing that says the first was abandoned
        at = unacked or next((e for e in flows[new] if e.kind == "http.request"), start)
        ev = []
        if unacked is not None:
            ev.append(
                Evidence(
                    unacked.frame,
                    f"the old session's last data from the CSMS, never acknowledged ({unacked.summary()})",
                )
            )
        last_charger = next((e for e in reversed(oevs) if e.direction == 0 and e.kind in SESSION), None)
        if last_charger is not None:
            ev.append(Evidence(last_charger.frame, "the charger's last message on the old session"))
        ev.append(Evidence(start.frame, "the charger opens a new connection"))
        ev.append(Evidence(boot.frame, f"BootNotification [{boot.unique_id}] on the new connection"))
        ev += [Evidence(f, what) for f, what in signs]
        end = next((e for e in oevs if e.kind in ("tcp.rst", "tcp.fin") and e.frame > start.frame), None)
        if end is not None:
            who = "charger" if end.direction == 0 else "CSMS"
            ev.append(
                Evidence(end.frame, f"the old connection ends with {end.kind.split('.')[1].upper()} from the {who}")
            )
        power = any("PowerUp" in w or "PowerLoss" in w for _, w in signs)
        yield Finding(
            fault="ocpp.silent_reboot",
            frame=at.frame,
            ts_ns=at.ts_ns,
            summary="The charger restarted without closing its session: it opened a new connection with a "
            "BootNotification while its old session was left open"
            + (" with the CSMS's data unacknowledged." if unacked is not None else "."),
            evidence=tuple(ev),
            cx_code="CX015" if power else None,
            flow_id=old,
            covers_flows=(old,),
        )


def _left_open(evs: list[Any], boot_frame: int) -> bool:
    """The charger had not closed the old connection (no close frame or FIN from it) before the new Boot."""
    return not any(
        e.frame < boot_frame and e.direction == 0 and e.kind in ("websocket.close", "tcp.fin") for e in evs
    ) and not any(e.frame < boot_frame and e.kind in ("tcp.rst", "websocket.close") and e.direction == 1 for e in evs)


def _unacknowledged(evs: list[Any]) -> Any:
    """The CSMS's data the charger never acknowledged on the old connection, when the connection shows
    retransmissions: the CSMS's last data before the first retransmission when that comes after the charger last
    said anything (a message, a ping, a pong), else the CSMS's first data after that. None without
    retransmissions."""
    end = next((e for e in evs if e.kind == "tcp.flow_end"), None)
    retx = retransmissions(end)
    if retx is None:
        return None
    last = max((e.frame for e in evs if e.direction == 0 and e.kind.split(".")[-1] not in QUIET), default=0)
    after = [e for e in evs if e.direction == 1 and e.frame > last and e.kind in SESSION]
    before_retx = [e for e in after if e.frame < retx[1]]
    return before_retx[-1] if before_retx else (after[0] if after else None)


def _signs(old: list[Any], new: list[Any], boot: Any) -> list[tuple[int, str]]:
    out = []
    payload = boot.payload  # parsed on each read: once here
    reason = payload.get("reason") if isinstance(payload, dict) else None
    if reason:
        out.append((boot.frame, f"Boot reason {reason}"))
    ids = [_num(e.unique_id) for e in old if e.kind == "ocpp.call" and e.direction == 0]
    ids = [i for i in ids if i is not None]
    mine = _num(boot.unique_id)
    if ids and mine is not None and mine < max(ids):
        out.append((boot.frame, f"message ids restarted: {boot.unique_id} after {max(ids)} on the old session"))
    for e in new:
        if e.kind != "ocpp.call" or e.action not in ("StopTransaction", "TransactionEvent"):
            continue
        payload = e.payload
        if isinstance(payload, dict):
            why = payload.get("reason") or (payload.get("transactionInfo") or {}).get("stoppedReason")
            if why == "PowerLoss":
                out.append((e.frame, f"{e.action} reason PowerLoss"))
                break
    return out


def _num(uid: Any) -> int | None:
    try:
        return int(str(uid))
    except ValueError:
        return None
