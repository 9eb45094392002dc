"""The lab charger: the ``ocpp`` package on ``websockets``, run as ``python -m tests.lab.charger CONFIG.json``.

It connects to the CSMS URL in the config (resolving the host through the namespace's resolver), runs a
short OCPP script and writes what happened -- including the exact exceptions its stacks raised -- to the
result file named in the config. The runner may start it under ``faketime`` to move its clock.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
import json
import os
import ssl
import sys
import time
from pathlib import Path
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call as c16
from ocpp.v16 import call_result as r16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as c201
from ocpp.v201 import call_result as r201
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.lab import tlsfix

T0 = time.monotonic()
EVENTS: list[dict[str, Any]] = []


def event(kind: str, **detail: Any) -> None:
    rec = {"t": round(time.monotonic() - T0, 3), "event": kind, **detail}
    EVENTS.append(rec)
    print(f"charger {json.dumps(rec, default=str)}", file=sys.stderr, flush=True)


def describe(exc: BaseException) -> dict[str, Any]:
    """Everything the stack said about an exception, following __cause__ / __context__."""
    out: dict[str, Any] = {"type": f"{type(exc).__module__}.{type(exc).__qualname__}", "message": str(exc)}
    for attr in ("errno", "strerror", "reason", "library", "verify_code", "verify_message"):
        val = getattr(exc, attr, None)
        if val is not None:
            out[attr] = val
    if isinstance(exc, InvalidStatus):
        out["http_status"] = exc.response.status_code
        out["http_reason"] = exc.response.reason_phrase
    if isinstance(exc, ConnectionClosed):
        out["rcvd_close"] = [exc.rcvd.code, exc.rcvd.reason] if exc.rcvd else None
        out["sent_close"] = [exc.sent.code, exc.sent.reason] if exc.sent else None
    if getattr(exc, "code", None) is not None and type(exc).__module__.startswith("ocpp"):
        out["ocpp_error_code"] = exc.code
    inner = exc.__cause__ or exc.__context__
    if inner is not None and inner is not exc:
        out["cause"] = describe(inner)
    return out


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Ignoring:
    """Requests from the CSMS: answered by the handlers below, except the actions in ``ignore``, which the
    charger receives and never answers (no CALLRESULT, no CALLERROR), as a firmware that drops them does."""

    ignore: tuple[str, ...] = ()

    async def _handle_call(self, msg: Any) -> Any:
        if msg.action in self.ignore:
            event("ignored_request", action=msg.action, message_id=msg.unique_id, payload=msg.payload)
            return None
        event("request", action=msg.action, message_id=msg.unique_id, payload=msg.payload)
        return await super()._handle_call(msg)  # type: ignore[misc]


class Lab16(Ignoring, Cp16):
    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        known = {"HeartbeatInterval": "300", "MeterValueSampleInterval": "60"}
        keys = [k for k in (key or known) if k in known]
        return r16.GetConfiguration(
            configuration_key=[{"key": k, "readonly": False, "value": known[k]} for k in keys],
            unknown_key=[k for k in (key or []) if k not in known] or None,
        )

    @on("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str) -> Any:
        return r16.ChangeConfiguration(status="Accepted")

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message: str, **_: Any) -> Any:
        return r16.TriggerMessage(status="Accepted")


class Lab201(Ignoring, Cp201):
    @on("TriggerMessage")
    def on_trigger_message(self, requested_message: str, **_: Any) -> Any:
        return r201.TriggerMessage(status="Accepted")


class Charger:
    def __init__(self, conf: dict[str, Any]) -> None:
        self.conf = conf
        self.sid: str = conf["station_id"]
        self.v16 = conf.get("ocpp", "1.6") == "1.6"
        self.ids = (str(n) for n in itertools.count(conf.get("first_message_id", 1001)))
        self.facts: dict[str, Any] = {}

    def ssl_context(self) -> ssl.SSLContext | None:
        tls = self.conf.get("tls")
        if not tls:
            return None
        versions = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
        ctx = ssl.create_default_context(cafile=tls["cafile"])
        ctx.minimum_version = versions[tls.get("min", "1.2")]
        ctx.maximum_version = versions[tls.get("max", "1.3")]
        if tls.get("cert"):
            ctx.load_cert_chain(tls["cert"], tls["key"])
        if tls.get("keylog"):
            ctx.keylog_filename = tls["keylog"]  # a proxy terminates TLS: the charger keeps the key log
        return ctx

    async def run(self) -> None:
        headers = {}
        if self.conf.get("password") is not None:
            token = base64.b64encode(f"{self.sid}:{self.conf['password']}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        attempts = self.conf.get("connect_attempts", 1)
        delay = self.conf.get("backoff", 0.25)
        for attempt in range(1, attempts + 1):
            event("connect", url=self.conf["url"], offer=self.conf["offer"], clock=now(), attempt=attempt)
            try:
                ws = await connect(
                    self.conf["url"],
                    ssl=self.ssl_context(),
                    subprotocols=self.conf["offer"],
                    additional_headers=headers,
                    open_timeout=self.conf.get("open_timeout", 5),
                    compression=None,
                    proxy=None,
                    ping_interval=None,
                    close_timeout=2,
                    user_agent_header="GhostcapLabCharger/1.0 (python-websockets, ocpp)",
                    **({"local_addr": (self.conf["source"], 0)} if self.conf.get("source") else {}),
                )
                break
            except ConnectionRefusedError as exc:
                if attempt == attempts:
                    raise
                event("connect_failed", attempt=attempt, error=describe(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.conf.get("backoff_max", 4.0))
        async with ws:
            tls = ws.transport.get_extra_info("ssl_object")
            self.facts["subprotocol"] = ws.subprotocol
            if tls is not None:
                self.facts["tls_version"] = tls.version()
                self.facts["cipher"] = tls.cipher()[0]
            local = ws.transport.get_extra_info("sockname")
            event("open", subprotocol=ws.subprotocol, tls=self.facts.get("tls_version"), local=list(local[:2]))
            if ws.subprotocol is None:
                event("no_subprotocol", detail="server agreed no OCPP version")
                await ws.wait_closed()
                event("closed", code=ws.close_code, reason=ws.close_reason)
                return
            await self.ocpp(ws)

    async def ocpp(self, ws: ClientConnection) -> None:
        if self.conf.get("malformed_boot"):
            raw = self.conf["malformed_boot"]
            await ws.send(raw)
            event("sent_raw", text=raw)
            reply = await asyncio.wait_for(ws.recv(), self.conf.get("response_timeout", 3))
            event("received_raw", text=reply)
            self.facts["reply"] = json.loads(reply)
            await ws.close(1000)
            return
        cls = Lab16 if self.v16 else Lab201
        cp = cls(self.sid, ws, response_timeout=self.conf.get("response_timeout", 3))
        cp.ignore = tuple(self.conf.get("ignore_actions", ()))
        cp._unique_id_generator = lambda: next(self.ids)
        reader = asyncio.ensure_future(cp.start())
        try:
            if not await self.boot(cp):
                return
            for step in self.conf.get("script", ["heartbeat", "status", "authorize"]):
                await self.step(cp, step)
        finally:
            if not reader.done():
                await ws.close(1000)
                event("closed", code=ws.close_code, reason=ws.close_reason)
            reader.cancel()

    async def boot(self, cp: Any) -> bool:
        tries = self.conf.get("boot_tries", 3)
        for n in range(1, tries + 1):
            if self.v16:
                req: Any = c16.BootNotification(charge_point_vendor="GhostcapLab", charge_point_model="SimCharger-16")
            else:
                req = c201.BootNotification(
                    charging_station={"model": "SimCharger-201", "vendor_name": "GhostcapLab"}, reason="PowerUp"
                )
            res = await cp.call(req, suppress=False)
            event("boot", attempt=n, status=res.status, interval=res.interval, current_time=res.current_time)
            self.facts.setdefault("boot_status", []).append(res.status)
            if res.status == "Accepted":
                return True
            if res.status == "Rejected":
                return False
            await asyncio.sleep(min(res.interval, 1))
        event("boot_gave_up", attempts=tries)
        return False

    async def step(self, cp: Any, step: str) -> None:
        if step.startswith("wait:"):
            await asyncio.sleep(float(step[5:]))
            return
        if step == "heartbeat":
            req: Any = c16.Heartbeat() if self.v16 else c201.Heartbeat()
        elif step == "status":
            if self.v16:
                req = c16.StatusNotification(connector_id=1, error_code="NoError", status="Available", timestamp=now())
            else:
                req = c201.StatusNotification(timestamp=now(), connector_status="Available", evse_id=1, connector_id=1)
        elif step == "authorize":
            if self.v16:
                req = c16.Authorize(id_tag="04A2B3C4D5E6")
            else:
                req = c201.Authorize(id_token={"id_token": "04A2B3C4D5E6", "type": "ISO14443"})
        else:
            raise ValueError(f"unknown step {step!r}")
        res = await cp.call(req, suppress=False)
        detail = {k: v for k, v in vars(res).items() if v is not None}
        event(step, response=detail)
        if step == "authorize":
            info = detail.get("id_tag_info") or detail.get("id_token_info") or {}
            self.facts["authorize_status"] = info.get("status")


def main() -> None:
    conf = json.loads(Path(sys.argv[1]).read_text())
    if conf.get("flush_tls_alerts", True):
        tlsfix.apply()
    result = Path(conf["result"])
    charger = Charger(conf)
    error: dict[str, Any] | None = None
    try:
        asyncio.run(asyncio.wait_for(charger.run(), conf.get("deadline", 20)))
    except BaseException as exc:
        error = describe(exc)
        event("error", **error)
    result.write_text(
        json.dumps(
            {
                "station_id": charger.sid,
                "pid": os.getpid(),
                "clock_at_exit": now(),
                "events": EVENTS,
                "facts": charger.facts,
                "error": error,
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
