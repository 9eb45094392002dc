"""Run one scenario: namespace, firewall, dnsmasq, tcpdump, CSMS, chargers; then tear everything down."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import dns, firewall
from .certs import Pki
from .netns import Namespace, stop, wait_for_text
from .scenarios import Charger, PowerCut, Scenario

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    scenario: Scenario
    workdir: Path
    pcap: Path
    keylog: Path | None
    chargers: dict[str, dict[str, Any]] = field(default_factory=dict)  # station id -> charger result
    csms_log: str = ""
    dns_log: str = ""
    tcpdump_log: str = ""
    nft: str = ""
    certs: dict[str, dict[str, str]] = field(default_factory=dict)  # station id -> server cert facts
    namespace: str = ""
    power_cut: list[dict[str, Any]] = field(default_factory=list)  # what _power_cut did, with wall-clock times


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _python(module: str, conf: Path) -> list[str]:
    return [sys.executable, "-m", module, str(conf)]


def _csms_conf(sc: Scenario, pki: Pki, keylog: Path | None, run: Run) -> dict[str, Any]:
    listeners = []
    for lst in sc.listeners:
        entry: dict[str, Any] = {"host": lst.host, "port": lst.port, "tls": None}
        if lst.tls:
            host = next((c.host for c in sc.chargers if c.port == lst.port), lst.host)
            cert = pki.server(lst.tls.server_cert, host)
            entry["tls"] = {
                "cert": str(cert.cert),
                "key": str(cert.key),
                "min": lst.tls.server_min,
                "max": lst.tls.server_max,
                "keylog": str(keylog) if keylog else None,
                "client_ca": str(pki.ca_file) if lst.tls.require_client_cert else None,
            }
            for c in sc.chargers:
                if c.port == lst.port:
                    run.certs[c.station_id] = {
                        "subject": cert.subject,
                        "not_before": cert.not_before,
                        "not_after": cert.not_after,
                        "kind": lst.tls.server_cert,
                    }
        listeners.append(entry)
    stations = {
        s.id: {
            "password": s.password,
            "behaviour": s.behaviour,
            "close_code": s.close_code,
            "close_reason": s.close_reason,
            "after_boot_delay": s.after_boot_delay,
        }
        for s in sc.stations
    }
    return {
        "listeners": listeners,
        "stations": stations,
        "subprotocols": list(sc.csms_subprotocols),
        "subprotocol_policy": sc.subprotocol_policy,
        "flush_tls_alerts": not sc.stock_asyncio_tls,
    }


def _charger_conf(sc: Scenario, ch: Charger, pki: Pki, result: Path) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "station_id": ch.station_id,
        "url": ch.url,
        "ocpp": ch.ocpp,
        "offer": ch.subprotocols,
        "password": ch.password,
        "open_timeout": ch.open_timeout,
        "response_timeout": ch.response_timeout,
        "script": list(ch.script),
        "boot_tries": ch.boot_tries,
        "malformed_boot": ch.malformed_boot,
        "result": str(result),
        "tls": None,
        "source": ch.source,
        "flush_tls_alerts": not sc.stock_asyncio_tls,
        "ignore_actions": list(ch.ignore_actions),
        "connect_attempts": ch.connect_attempts,
        "backoff": ch.backoff,
        "backoff_max": ch.backoff_max,
        "deadline": 20 + sum(min(ch.backoff * 2**i, ch.backoff_max) for i in range(ch.connect_attempts - 1)),
    }
    if ch.tls:
        lst = next((x for x in sc.listeners if x.port == ch.port and x.tls), None)
        tls = lst.tls if lst and lst.tls else None
        conf["tls"] = {
            "cafile": str(pki.ca_file),
            "min": tls.client_min if tls else "1.2",
            "max": tls.client_max if tls else "1.3",
        }
        if ch.client_cert:
            cc = pki.client(ch.station_id)
            conf["tls"].update(cert=str(cc.cert), key=str(cc.key))
    return conf


def charger_events(log_text: str) -> list[dict[str, Any]]:
    """The events a charger printed to its log (``charger {json}`` lines)."""
    out = []
    for line in log_text.splitlines():
        if line.startswith("charger {"):
            try:
                out.append(json.loads(line[len("charger ") :]))
            except ValueError:
                continue
    return out


def _power_cut(
    ns: Namespace,
    sc: Scenario,
    pc: PowerCut,
    procs: list[tuple[Charger, subprocess.Popen[str], Path, Path]],
    workdir: Path,
    pki: Pki,
    env: dict[str, str],
    run: Run,
) -> tuple[Charger, subprocess.Popen[str], Path, Path]:
    """Cut the power of charger ``pc.station_id`` mid-session and boot it again (see ``scenarios.PowerCut``)."""
    ch, proc, _result, log = next(x for x in procs if x[0].station_id == pc.station_id)
    deadline = time.monotonic() + 15
    while True:
        events = charger_events(log.read_text() if log.exists() else "")
        if any(e["event"] == "boot" and e.get("status") == "Accepted" for e in events):
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{ch.station_id}: no Boot Accepted before the power cut")
        time.sleep(0.02)
    addr, port = next(e["local"] for e in events if e["event"] == "open")

    def note(step: str, **detail: Any) -> None:
        run.power_cut.append({"wall_time": round(time.time(), 6), "step": step, **detail})

    time.sleep(pc.after)
    rules = firewall.power_cut_ruleset(addr, int(port))
    ns.run(["nft", "-f", "-"], input=rules)
    note("nft: drop the charger's connection both ways", endpoint=f"{addr}:{port}", rules=rules)
    proc.kill()  # SIGKILL by PID: the charger process dies with its power
    proc.wait(timeout=5)
    note("SIGKILL the charger process", pid=proc.pid, returncode=proc.returncode)
    destroyed = ns.run(["ss", "-K", "-t", "-n", "-a", "src", f"{addr}:{port}"])
    note("ss -K: destroy the orphaned socket (its RST is dropped)", ss=destroyed.strip().splitlines())
    time.sleep(pc.off_for)
    ns.run(["nft", "delete", "table", "inet", firewall.POWER_TABLE])
    note("nft: rule removed")
    result = workdir / f"charger-{ch.station_id}.reboot.result.json"
    conf = workdir / f"charger-{ch.station_id}.reboot.json"
    conf.write_text(json.dumps(_charger_conf(sc, replace(ch, script=pc.reboot_script), pki, result), indent=2))
    log2 = workdir / f"charger-{ch.station_id}.reboot.log"
    with log2.open("w") as err:
        proc2 = ns.popen(_python("tests.lab.charger", conf), stdout=err, stderr=subprocess.STDOUT, env=env)
    note("new charger process started (power back)", pid=proc2.pid)
    return ch, proc2, result, log2


def run_scenario(sc: Scenario, workdir: Path) -> Run:
    """Run ``sc`` with everything under ``workdir``; returns what the stacks did and where the capture is."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    pki = Pki(workdir / "pki")
    keylog = workdir / "keys.txt" if sc.uses_tls else None
    run = Run(sc, workdir, workdir / "capture.pcap", keylog)
    env = _env()
    with Namespace(resolver=sc.resolver) as ns:
        run.namespace = ns.name
        run.nft = firewall.apply(ns, sc.firewall)
        dns_log = workdir / "dnsmasq.log"
        dns.start_dnsmasq(ns, sc.dns, dns_log)

        csms_log, csms_out = workdir / "csms.log", workdir / "csms.out"
        csms = None
        if sc.listeners:
            conf = workdir / "csms.json"
            conf.write_text(json.dumps(_csms_conf(sc, pki, keylog, run), indent=2))
            with csms_out.open("w") as out, csms_log.open("w") as err:
                csms = ns.popen(_python("tests.lab.csms", conf), stdout=out, stderr=err, env=env)
            wait_for_text(csms_out, "READY", 15, csms)

        tcpdump_log = workdir / "tcpdump.log"
        with tcpdump_log.open("w") as err:
            tcpdump = ns.popen(
                [
                    "tcpdump",
                    "-i",
                    sc.interface,
                    "-n",
                    "-U",
                    "--immediate-mode",
                    "-B",
                    "32768",
                    "-s",
                    "0",
                    "-Z",
                    "root",
                    "-w",
                    str(run.pcap),
                ],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        wait_for_text(tcpdump_log, "listening on", 10, tcpdump)
        time.sleep(0.2)  # the capture socket is bound when tcpdump says so; give it a moment anyway

        procs: list[tuple[Charger, subprocess.Popen[str], Path, Path]] = []
        t0 = time.monotonic()
        for ch in sc.chargers:
            time.sleep(max(0.0, t0 + ch.start_delay - time.monotonic()))
            conf = workdir / f"charger-{ch.station_id}.json"
            result = workdir / f"charger-{ch.station_id}.result.json"
            conf.write_text(json.dumps(_charger_conf(sc, ch, pki, result), indent=2))
            argv = _python("tests.lab.charger", conf)
            if ch.faketime:
                argv = ["faketime", ch.faketime, *argv]
            log = workdir / f"charger-{ch.station_id}.log"
            with log.open("w") as err:
                procs.append((ch, ns.popen(argv, stdout=err, stderr=subprocess.STDOUT, env=env), result, log))
        if sc.power_cut is not None:
            procs.append(_power_cut(ns, sc, sc.power_cut, procs, workdir, pki, env, run))
        for ch, proc, _, _ in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print(f"  {sc.name}: charger {ch.station_id} did not finish; stopping it", file=sys.stderr)
                stop(proc)
        time.sleep(0.3)
        stop(tcpdump, signal.SIGINT)
        if csms is not None:
            stop(csms)
        for ch, _proc, result, log in procs:
            rec = json.loads(result.read_text()) if result.exists() else {"error": {"message": "no result"}}
            rec["log"] = log.read_text()
            prev = run.chargers.get(ch.station_id)
            if prev is not None:  # restarted after a power cut: keep what the killed process printed
                rec["before_power_cut"] = {"events": charger_events(prev["log"]), "log": prev["log"]}
            run.chargers[ch.station_id] = rec
        run.csms_log = csms_log.read_text() if csms_log.exists() else ""
        run.dns_log = dns_log.read_text()
        run.tcpdump_log = tcpdump_log.read_text()
    return run
