"""The lab CSMS: the ``ocpp`` package on ``websockets``, run as ``python -m tests.lab.csms CONFIG.json``.

It serves every listener in the config (plain ws or TLS 1.2/1.3 with a key log), checks HTTP basic auth,
answers 404 for stations it does not know, and behaves per station (see ``BEHAVIOURS``). It logs what its
stacks report (handshake failures, OCPP errors) to stderr, prints ``READY`` on stdout once listening, and
runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import signal
import socket
import ssl
import struct
import sys
from http import HTTPStatus
from pathlib import Path
from typing import Any

from ocpp.exceptions import InternalError
from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call as c16
from ocpp.v16 import call_result as r16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as c201
from ocpp.v201 import call_result as r201
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import NegotiationError
from websockets.http11 import Request, Response

from tests.lab import tlsfix

LOG = logging.getLogger("lab.csms")

#: what a station can be told to do
BEHAVIOURS = (
    "accept",  # answer everything, Boot Accepted
    "reject",  # Boot Rejected
    "pending",  # Boot Pending, forever
    "no_authorize_answer",  # never answer Authorize
    "auth_invalid",  # Authorize answered Invalid
    "boot_callerror",  # BootNotification answered with a CALLERROR (InternalError)
    "close",  # after Boot Accepted, close with close_code / close_reason
    "drop",  # after Boot Accepted, drop the TCP connection without a close frame (FIN)
    "reset",  # after Boot Accepted, reset the TCP connection (RST)
    "close_after_upgrade",  # accept the upgrade (101), read the first message, close 1000 without answering it
    "unanswered_request",  # after Boot Accepted: ChangeConfiguration (the charger ignores it), then GetConfiguration
    "trigger_after_boot",  # after Boot Accepted: TriggerMessage StatusNotification
)


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Station:
    """What the CSMS knows about one provisioned station."""

    def __init__(self, station_id: str, conf: dict[str, Any]) -> None:
        self.id = station_id
        self.password: str | None = conf.get("password")
        self.behaviour: str = conf.get("behaviour", "accept")
        self.close_code: int = conf.get("close_code", 1008)
        self.close_reason: str = conf.get("close_reason", "")
        self.after_boot_delay: float = conf.get("after_boot_delay", 0.3)
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"{station_id}: unknown behaviour {self.behaviour!r}")


class Mixin:
    """Behaviour shared by the 1.6 and 2.0.1 charge-point handlers."""

    station: Station
    connection: ServerConnection
    blocked: asyncio.Event
    tasks: set[asyncio.Future[None]]

    def boot_status(self) -> tuple[str, int]:
        if self.station.behaviour == "boot_callerror":
            LOG.info("%s: answering BootNotification with a CALLERROR", self.station.id)
            raise InternalError(description="lab CSMS: station registry unavailable")
        status = {"reject": "Rejected", "pending": "Pending"}.get(self.station.behaviour, "Accepted")
        interval = {"reject": 60, "pending": 1}.get(self.station.behaviour, 300)
        LOG.info("%s: BootNotification -> %s", self.station.id, status)
        return status, interval

    async def after_boot(self) -> None:
        b = self.station.behaviour
        if b not in ("close", "drop", "reset", "unanswered_request", "trigger_after_boot"):
            return
        await asyncio.sleep(self.station.after_boot_delay)
        if b in ("unanswered_request", "trigger_after_boot"):
            await self.requests()
            return
        if b == "close":
            LOG.info("%s: closing with %d %r", self.station.id, self.station.close_code, self.station.close_reason)
            await self.connection.close(self.station.close_code, self.station.close_reason)
            return
        sock = self.connection.transport.get_extra_info("socket")
        if b == "reset" and sock is not None:
            # SO_LINGER 0: close() sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        LOG.info("%s: %s the TCP connection without a close frame", self.station.id, b)
        self.connection.transport.abort()

    async def requests(self) -> None:
        """CSMS-initiated CALLs; the ocpp library waits ``response_timeout`` for each answer."""
        v16 = isinstance(self, Cp16)
        if self.station.behaviour == "unanswered_request":
            reqs: list[Any] = [
                c16.ChangeConfiguration(key="HeartbeatInterval", value="120"),
                c16.GetConfiguration(key=["HeartbeatInterval"]),
            ]
        else:
            reqs = [
                c16.TriggerMessage(requested_message="StatusNotification")
                if v16
                else c201.TriggerMessage(requested_message="StatusNotification")
            ]
        for req in reqs:
            name = type(req).__name__
            LOG.info("%s: sending %s", self.station.id, name)
            try:
                res = await self.call(req, suppress=False)  # type: ignore[attr-defined]
            except TimeoutError as exc:
                LOG.info("%s: %s unanswered: %s", self.station.id, name, exc)
                continue
            except Exception as exc:
                LOG.info("%s: %s failed: %s: %s", self.station.id, name, type(exc).__name__, exc)
                return
            LOG.info("%s: %s answered: %s", self.station.id, name, res)

    async def authorize_status(self) -> str:
        if self.station.behaviour == "no_authorize_answer":
            LOG.info("%s: Authorize received; never answering", self.station.id)
            await self.blocked.wait()
        status = "Invalid" if self.station.behaviour == "auth_invalid" else "Accepted"
        LOG.info("%s: Authorize -> %s", self.station.id, status)
        return status


class Csms16(Mixin, Cp16):
    @on("BootNotification")
    async def on_boot(self, charge_point_vendor: str, charge_point_model: str, **_: Any) -> Any:
        status, interval = self.boot_status()
        if status == "Accepted":
            self.tasks.add(asyncio.ensure_future(self.after_boot()))
        return r16.BootNotification(current_time=now(), interval=interval, status=status)

    @on("Heartbeat")
    def on_heartbeat(self) -> Any:
        return r16.Heartbeat(current_time=now())

    @on("StatusNotification")
    def on_status(self, **_: Any) -> Any:
        return r16.StatusNotification()

    @on("Authorize")
    async def on_authorize(self, id_tag: str) -> Any:
        return r16.Authorize(id_tag_info={"status": await self.authorize_status()})


class Csms201(Mixin, Cp201):
    @on("BootNotification")
    async def on_boot(self, charging_station: dict[str, Any], reason: str, **_: Any) -> Any:
        status, interval = self.boot_status()
        if status == "Accepted":
            self.tasks.add(asyncio.ensure_future(self.after_boot()))
        return r201.BootNotification(current_time=now(), interval=interval, status=status)

    @on("Heartbeat")
    def on_heartbeat(self) -> Any:
        return r201.Heartbeat(current_time=now())

    @on("StatusNotification")
    def on_status(self, **_: Any) -> Any:
        return r201.StatusNotification()

    @on("Authorize")
    async def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        return r201.Authorize(id_token_info={"status": await self.authorize_status()})


class Server:
    def __init__(self, conf: dict[str, Any]) -> None:
        self.conf = conf
        self.stations = {sid: Station(sid, c) for sid, c in conf["stations"].items()}
        self.subprotocols: list[str] = conf.get("subprotocols", ["ocpp1.6", "ocpp2.0.1"])
        self.policy: str = conf.get("subprotocol_policy", "reject")
        self.blocked = asyncio.Event()

    def station_of(self, path: str) -> str:
        return path.rstrip("/").rsplit("/", 1)[-1]

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        sid = self.station_of(request.path)
        station = self.stations.get(sid)
        if station is None:
            LOG.info("%s: unknown station identity in %s -> 404", sid, request.path)
            return connection.respond(HTTPStatus.NOT_FOUND, "Unknown charging station\n")
        if station.password is not None:
            given = request.headers.get("Authorization", "")
            expected = "Basic " + base64.b64encode(f"{sid}:{station.password}".encode()).decode()
            if given != expected:
                LOG.info("%s: basic auth %s -> 401", sid, "wrong" if given else "missing")
                resp = connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
                resp.headers["WWW-Authenticate"] = 'Basic realm="ghostcap-lab", charset="UTF-8"'
                return resp
        return None

    def select_subprotocol(self, connection: ServerConnection, offered: Any) -> Any:
        for proto in self.subprotocols:
            if proto in offered:
                return proto
        if self.policy == "ignore":
            LOG.info(
                "no common subprotocol (offered %s, have %s): accepting without one", list(offered), self.subprotocols
            )
            return None
        LOG.info("no common subprotocol (offered %s, have %s): HTTP 400", list(offered), self.subprotocols)
        # the same error websockets' default negotiation raises; it answers HTTP 400
        raise NegotiationError("invalid subprotocol; expected one of " + ", ".join(self.subprotocols))

    async def handler(self, connection: ServerConnection) -> None:
        sid = self.station_of(connection.request.path if connection.request else "/")
        station = self.stations[sid]
        proto = connection.subprotocol
        cert = connection.transport.get_extra_info("peercert")
        tls = connection.transport.get_extra_info("ssl_object")
        if tls is not None:
            LOG.info(
                "%s: TLS %s %s, client certificate: %s",
                sid,
                tls.version(),
                tls.cipher()[0],
                dict(x[0] for x in cert["subject"]) if cert else None,
            )
        if proto is None:
            LOG.info("%s: no OCPP subprotocol agreed; closing", sid)
            await connection.close(1002, "no supported OCPP subprotocol")
            return
        if station.behaviour == "close_after_upgrade":
            try:
                first = await asyncio.wait_for(connection.recv(), 3)
                LOG.info("%s: received %s; closing with 1000 without answering", sid, first)
            except Exception as exc:
                LOG.info("%s: nothing received (%s); closing with 1000", sid, type(exc).__name__)
            await connection.close(1000)
            return
        cls = Csms16 if proto == "ocpp1.6" else Csms201
        cp = cls(sid, connection, response_timeout=self.conf.get("response_timeout", 5))
        cp.station, cp.connection, cp.blocked, cp.tasks = station, connection, self.blocked, set()
        LOG.info("%s: connected with %s", sid, proto)
        try:
            await cp.start()
        except Exception as exc:
            LOG.info("%s: connection ended: %s: %s", sid, type(exc).__name__, exc)

    def ssl_context(self, tls: dict[str, Any]) -> ssl.SSLContext:
        versions = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = versions[tls.get("min", "1.2")]
        ctx.maximum_version = versions[tls.get("max", "1.3")]
        ctx.load_cert_chain(tls["cert"], tls["key"])
        if tls.get("client_ca"):
            ctx.load_verify_locations(tls["client_ca"])
            ctx.verify_mode = ssl.CERT_REQUIRED
        if tls.get("keylog"):
            ctx.keylog_filename = tls["keylog"]
        return ctx

    async def run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        servers = []
        for lst in self.conf["listeners"]:
            ctx = self.ssl_context(lst["tls"]) if lst.get("tls") else None
            server = await serve(
                self.handler,
                lst["host"],
                lst["port"],
                ssl=ctx,
                process_request=self.process_request,
                select_subprotocol=self.select_subprotocol,
                subprotocols=self.subprotocols,
                compression=None,
                ping_interval=None,
                close_timeout=2,
                server_header="ghostcap-lab-csms (python-websockets, ocpp)",
            )
            servers.append(server)
            LOG.info("listening on %s:%d (%s)", lst["host"], lst["port"], "wss" if ctx else "ws")
        print("READY", flush=True)
        await stop.wait()
        self.blocked.set()
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()
        LOG.info("stopped")


class _SslFailures(logging.Filter):
    """asyncio reports TLS handshake failures only in debug mode; keep those and nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "SSL" not in record.getMessage():
            return False
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"TLS handshake failed: {type(exc).__name__}: {exc}"
            record.args = ()
            record.exc_info = None
        return True


class _HandshakeFailures(logging.Filter):
    """websockets says why an opening handshake failed only in its DEBUG lines ("! no valid HTTP request", with
    the exception); keep those ("opening handshake failed: ...") and drop its other DEBUG lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("websockets") or record.levelno > logging.DEBUG:
            return True
        if not str(record.msg).startswith("! "):
            return False
        chain, exc = [], record.exc_info[1] if record.exc_info else None
        while exc is not None and len(chain) < 5:
            chain.append(f"{type(exc).__name__}: {exc}")
            exc = exc.__cause__ or exc.__context__
        record.msg = (
            "opening handshake failed: " + record.getMessage()[2:] + (": " if chain else "") + " <- ".join(chain)
        )
        record.args, record.exc_info, record.levelno, record.levelname = (), None, logging.INFO, "INFO"
        return True


def main() -> None:
    conf = json.loads(Path(sys.argv[1]).read_text())
    if conf.get("flush_tls_alerts", True):
        tlsfix.apply()
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s.%(msecs)03d csms %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.setLevel(logging.DEBUG)
    asyncio_log.addFilter(_SslFailures())
    logging.getLogger("websockets").setLevel(logging.DEBUG)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_HandshakeFailures())

    async def go() -> None:
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = 60
        await Server(conf).run()

    asyncio.run(go())


if __name__ == "__main__":
    main()
