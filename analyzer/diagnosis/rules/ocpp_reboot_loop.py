"""The charger sent BootNotification on three or more connections within a short time: it keeps rebooting.
(One reboot, two Boots, is not a loop.)

Field effect: sessions never last; with reason PowerUp after silence the mains or the supply is failing (CX015).
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule


@rule("ocpp.reboot_loop")
def ocpp_reboot_loop(ch: Charger, ctx: Context) -> Iterator[Finding]:
    boots = [e for e in ch.events if e.kind == "ocpp.call" and e.action == "BootNotification" and e.direction == 0]
    window = ctx.settings.reboot_window_s * 1e9
    firsts = list({b.flow_id: b for b in reversed(boots)}.values())[::-1]  # the first Boot of each connection
    for a, b, c in zip(firsts, firsts[1:], firsts[2:], strict=False):
        if c.ts_ns - a.ts_ns > window:
            continue
        payload = b.payload  # parsed on each read: once here
        reason = payload.get("reason") if isinstance(payload, dict) else None
        power = reason == "PowerUp"
        yield Finding(
            fault="ocpp.reboot_loop",
            frame=b.frame,
            ts_ns=b.ts_ns,
            summary=f"The charger booted three times in {(c.ts_ns - a.ts_ns) / 1e9:.0f} s"
            + (" (reason PowerUp: it keeps losing power)." if power else "."),
            evidence=(
                Evidence(a.frame, "BootNotification"),
                Evidence(b.frame, f"BootNotification again ({reason})"),
                Evidence(c.frame, "BootNotification again"),
            ),
            cx_code="CX015" if power else "CX013",
            flow_id=b.flow_id,
        )
        return
