"""Write ``<out>/README.md`` from the ground-truth records in ``<out>`` (so it always matches them)."""

from __future__ import annotations

import json
from pathlib import Path

HEADER = """\
# Captures from the ghostcap capture lab

Every file here was produced by `tests/lab` (`make lab`, i.e. `python -m tests.lab.run --all --out captures`,
as root): a throw-away network namespace with only `lo`, real stacks (CSMS and charger: the `ocpp` package on
`websockets`, or `ocpp-rpc` on Node.js; nginx, HAProxy or socat in between where the scenario says so; dnsmasq as
the charger's resolver; nftables for refused/dropped traffic; `faketime` for the charger clock; certificates
made with `cryptography`) and `tcpdump -i lo` (`-i any` for the gateway and relay captures).
Nothing left the namespace. Per scenario:

- `<scenario>.pcap` -- the capture (pcap, no snaplen truncation);
- `<scenario>.keys.txt` -- the TLS key log (`SSLContext.keylog_filename`) where there is TLS, written by the
  CSMS, or by the charger where nginx/HAProxy terminate TLS:
  `tshark -o tls.keylog_file:<scenario>.keys.txt` decrypts the TLS 1.3 handshake and the wss traffic;
- `<scenario>.truth.json` -- ground truth per charger: station id, fault id, failure frame (the catalogue's
  failure point, 1-based as Wireshark numbers), nearest CX code, facts (SNI, TLS version, alert, HTTP status,
  close code, CALLERROR, ...), what the stacks themselves printed (`evidence`), and the tshark checks that
  confirmed the frame and the facts (`check`). The lab found each failure frame with its own pcap parser and
  shipped the scenario only because tshark agreed.
- `demo.pcap` -- a copy of `healthy_16_ws.pcap` for `make demo`.

The lab's CSMS and charger run with a backport of CPython gh-98078 (asyncio otherwise sends no TLS alert when
a handshake fails); `tls12_cert_not_yet_valid_no_alert` shows the stock behaviour. Non-standard ports: tell
tshark `-d tcp.port==PORT,http` (ws) or `-d tcp.port==PORT,tls -d tls.port==PORT,http` (wss).

| capture | what it shows | station | expected verdict | failure frame | CX | link type | tshark check |
|---|---|---|---|---|---|---|---|
"""


def write(out: Path) -> Path:
    rows = []
    for path in sorted(out.glob("*.truth.json")):
        rec = json.loads(path.read_text())
        for i, ch in enumerate(rec["chargers"]):
            first = i == 0
            rows.append(
                "| "
                + " | ".join(
                    [
                        f"`{rec['capture']['file']}`" if first else "",
                        rec["title"] if first else "",
                        ch["station_id"],
                        ch["fault_id"] or "healthy",
                        str(ch["failure_frame"] or "-"),
                        ch["cx"] or "-",
                        rec["capture"]["link_type"].split(" ")[0] if first else "",
                        "passed" if ch.get("check", {}).get("passed") else "FAILED",
                    ]
                )
                + " |"
            )
    readme = out / "README.md"
    readme.write_text(HEADER + "\n".join(rows) + "\n")
    return readme
