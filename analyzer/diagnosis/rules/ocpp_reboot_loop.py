"""The charger sent BootNotification again within a short time: it keeps rebooting.

Field effect: sessions never last; with reason PowerUp after silence the mains or the supply is failing (CX015).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from analyzer.diagnosis.chargers import Charger
from analyzer.diagnosis.context import Context
from analyzer.diagnosis.finding import Evidence, Finding
from analyzer.diagnosis.registry import rule


@rule("ocpp.reboot_loop")
def ocpp_reboot_loop(ch: Charger, ctx: Context) -> Iterator[Finding]:
    boots = [e for e in ch.events if e.kind == "ocpp.call" and e.action == "BootNotification" and e.direction == 0]
    window = ctx.settings.reboot_window_s * 1e9
    for a, b in itertools.pairwise(boots):
        if b.ts_ns - a.ts_ns > window or a.flow_id == b.flow_id:
            continue
        reason = b.payload.get("reason") if isinstance(b.payload, dict) else None
        power = reason == "PowerUp"
        yield Finding(
            fault="ocpp.reboot_loop",
            frame=b.frame,
            ts_ns=b.ts_ns,
            summary=f"The charger booted again {(b.ts_ns - a.ts_ns) / 1e9:.0f} s after its previous "
            f"BootNotification" + (" (reason PowerUp: it lost power)." if power else "."),
            evidence=(Evidence(a.frame, "BootNotification"), Evidence(b.frame, f"BootNotification again ({reason})")),
            cx_code="CX015" if power else "CX013",
            flow_id=b.flow_id,
        )
        return
