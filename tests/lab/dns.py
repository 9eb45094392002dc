"""dnsmasq as the charger's resolver, inside the namespace, answering only from its own configuration."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .netns import Namespace, wait_for_text

LOCAL_ZONE = "test"  # names under .test that dnsmasq does not know get NXDOMAIN; anything else REFUSED


def dnsmasq_argv(records: dict[str, str], listen: str = "127.0.0.1") -> list[str]:
    """dnsmasq in the foreground, no upstream, no /etc/hosts, logging every query to stderr.

    ``records`` maps a host name to a loopback address, or to ``txt:TEXT`` for a name with only a TXT
    record (NOERROR without an address: ``dns.no_address``).
    """
    argv = [
        "dnsmasq",
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        f"--listen-address={listen}",
        "--bind-interfaces",
        "--port=53",
        "--user=root",
        "--pid-file=",
        f"--local=/{LOCAL_ZONE}/",
        "--log-queries",
        "--log-facility=-",
        "--cache-size=0",
    ]
    for name, value in sorted(records.items()):
        if value.startswith("txt:"):
            argv.append(f'--txt-record={name},"{value[4:]}"')
        else:
            argv.append(f"--host-record={name},{value}")
    return argv


def start_dnsmasq(ns: Namespace, records: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("w") as fh:
        proc = ns.popen(dnsmasq_argv(records), stdout=fh, stderr=subprocess.STDOUT)
    wait_for_text(log, "started, version", 10, proc)
    return proc
