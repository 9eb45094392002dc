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

from cryptography import x509

from . import dns, firewall
from .certs import Pki
from .netns import Namespace, stop, wait_for_text
from .scenarios import Charger, PowerCut, Proxy, Scenario

REPO = Path(__file__).resolve().parents[2]
NODE_DIR = REPO / "tests" / "lab" / "node"


def ensure_node() -> None:
    """Install the ocpp-rpc side (tests/lab/node) from its lock file when node_modules is missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise FileNotFoundError("node/npm not found; install tests/lab/apt-packages.txt")
    if not (NODE_DIR / "node_modules" / "ocpp-rpc").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)], check=True)


def _require_tools(sc: Scenario) -> None:
    tools = {p.kind for p in sc.proxies} | ({"node"} if sc.uses_node else set())
    missing = [t for t in sorted(tools) if shutil.which(t) is None]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not found; install tests/lab/apt-packages.txt")


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
    proxy_log: str = ""
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


def _charger_conf(sc: Scenario, ch: Charger, pki: Pki, result: Path, keylog: Path | None) -> dict[str, Any]:
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
        lst = next((x for x in (*sc.listeners, *sc.proxies) if x.port == ch.port and x.tls), None)
        tls = lst.tls if lst and lst.tls else None
        conf["tls"] = {
            "cafile": str(pki.ca_file),
            "min": tls.client_min if tls else "1.2",
            "max": tls.client_max if tls else "1.3",
            "keylog": str(keylog) if keylog and ch.keylog else None,
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
    reboot = replace(ch, script=pc.reboot_script)
    conf.write_text(json.dumps(_charger_conf(sc, reboot, pki, result, None), indent=2))
    log2 = workdir / f"charger-{ch.station_id}.reboot.log"
    with log2.open("w") as err:
        proc2 = ns.popen(_python("tests.lab.charger", conf), stdout=err, stderr=subprocess.STDOUT, env=env)
    note("new charger process started (power back)", pid=proc2.pid)
    return ch, proc2, result, log2


def run_scenario(sc: Scenario, workdir: Path) -> Run:
    """Run ``sc`` with everything under ``workdir``; returns what the stacks did and where the capture is."""
    _require_tools(sc)
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
            argv = _python("tests.lab.csms", conf)
            if sc.csms_stack == "node":
                argv = ["node", str(NODE_DIR / "csms.js"), str(conf)]
            with csms_out.open("w") as out, csms_log.open("w") as err:
                csms = ns.popen(argv, stdout=out, stderr=err, env=env)
            wait_for_text(csms_out, "READY", 15, csms)
        for proxy in sc.proxies:
            _start_proxy(ns, sc, proxy, pki, workdir, run)

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
            conf.write_text(json.dumps(_charger_conf(sc, ch, pki, result, keylog), indent=2))
            argv = _python("tests.lab.charger", conf)
            if ch.stack == "node":
                keys = [f"--tls-keylog={keylog}"] if keylog and ch.keylog else []
                argv = ["node", *keys, str(NODE_DIR / "charger.js"), str(conf)]
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
        for proxy in sc.proxies:
            for log in sorted(workdir.glob(f"{proxy.kind}-{proxy.port}*.log")):
                run.proxy_log += f"--- {log.name}\n{log.read_text(errors='replace')}"
        run.dns_log = dns_log.read_text()
        run.tcpdump_log = tcpdump_log.read_text()
    return run


# -- proxies and relays -------------------------------------------------------------------------------------
NGINX_CONF = """\
# ghostcap lab: nginx as a WebSocket reverse proxy in front of the CSMS
daemon off;
worker_processes 1;
user root;
pid {work}/nginx-{port}.pid;
error_log {work}/nginx-{port}-error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {work}/nginx-{port}-access.log;
    client_body_temp_path {work}/nginx-{port}-tmp/body;
    proxy_temp_path {work}/nginx-{port}-tmp/proxy;
    fastcgi_temp_path {work}/nginx-{port}-tmp/fastcgi;
    uwsgi_temp_path {work}/nginx-{port}-tmp/uwsgi;
    scgi_temp_path {work}/nginx-{port}-tmp/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen {host}:{port}{ssl};
        server_name {name};
{tls}        location / {{
            proxy_pass http://{up_host}:{up_port};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_connect_timeout 2s;
            proxy_read_timeout {read_timeout}s;
        }}
    }}
}}
"""

HAPROXY_CONF = """\
# ghostcap lab: HAProxy terminating TLS in front of the CSMS backend
global
    log stdout format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout tunnel 60s
frontend ocpp
    bind {host}:{port} ssl crt {pem} ssl-min-ver TLSv1.2
    default_backend csms
backend csms
    server csms {up_host}:{up_port} check inter 500ms fall 1 rise 1 downinter 60s
"""


def _wait_listening(ns: Namespace, host: str, port: int, proc: subprocess.Popen[str], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f"{host}:{port}" in ns.run(["ss", "-Hltn"]):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} (exit code {proc.poll()})")


def _start_proxy(ns: Namespace, sc: Scenario, p: Proxy, pki: Pki, work: Path, run: Run) -> None:
    """Start one proxy/relay inside the namespace and wait until it listens (before the capture starts)."""
    name = next((c.host for c in sc.chargers if c.port == p.port), p.host)
    up_host, up_port = p.upstream
    cert = pki.server(p.tls.server_cert, name) if p.tls else None
    if cert is not None:
        for c in sc.chargers:
            if c.port == p.port:
                run.certs[c.station_id] = {
                    "subject": cert.subject,
                    "not_before": cert.not_before,
                    "not_after": cert.not_after,
                    "kind": p.tls.server_cert if p.tls else "",
                    "issuer": x509.load_pem_x509_certificate(cert.cert.read_bytes()).issuer.rfc4514_string(),
                    "served_by": p.kind,
                }
    log = work / f"{p.kind}-{p.port}.log"
    if p.kind == "nginx":
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (work / f"nginx-{p.port}-tmp" / sub).mkdir(parents=True, exist_ok=True)
        tls = ""
        if cert is not None:
            tls = (
                f"        ssl_certificate {cert.cert};\n        ssl_certificate_key {cert.key};\n"
                "        ssl_protocols TLSv1.2 TLSv1.3;\n"
            )
        conf = work / f"nginx-{p.port}.conf"
        conf.write_text(
            NGINX_CONF.format(
                work=work,
                host=p.host,
                port=p.port,
                ssl=" ssl" if cert else "",
                name=name,
                tls=tls,
                up_host=up_host,
                up_port=up_port,
                read_timeout=f"{p.read_timeout:g}" if p.read_timeout else "60",
            )
        )
        argv = ["nginx", "-e", str(work / f"nginx-{p.port}-error.log"), "-p", str(work), "-c", str(conf)]
    elif p.kind == "haproxy":
        assert cert is not None, "the lab's HAProxy terminates TLS"
        pem = work / f"haproxy-{p.port}.pem"
        pem.write_bytes(cert.cert.read_bytes() + cert.key.read_bytes())
        conf = work / f"haproxy-{p.port}.cfg"
        conf.write_text(HAPROXY_CONF.format(host=p.host, port=p.port, pem=pem, up_host=up_host, up_port=up_port))
        argv = ["haproxy", "-db", "-f", str(conf)]
    elif p.kind == "socat":
        src = f",bind={p.source}" if p.source else ""
        listen = f"TCP-LISTEN:{p.port},bind={p.host},reuseaddr,fork"
        argv = ["socat", "-d", "-d", listen, f"TCP:{up_host}:{up_port}{src}"]
    else:
        raise ValueError(f"unknown proxy kind {p.kind!r}")
    with log.open("w") as out:
        proc = ns.popen(argv, stdout=out, stderr=subprocess.STDOUT)
    _wait_listening(ns, p.host, p.port, proc)
    if p.kind == "haproxy" and not any(lst.port == up_port for lst in sc.listeners):
        wait_for_text(log, "is DOWN", 10, proc)  # its health check found the backend down: 503 from now on
