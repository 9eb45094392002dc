// The lab's ocpp-rpc charger: `node charger.js CONFIG.json` (tests/lab/lab.py writes the config).
// An RPCClient in strictMode (its own CALLs and the CSMS's answers are validated against the OCPP 1.6
// schemas): connect, BootNotification, then the script (heartbeat, status, wait:SECONDS), close 1000.
// Writes its events, facts and the exact error the stack raised to the result file named in the config.
"use strict";
const fs = require("fs");
const { RPCClient } = require("ocpp-rpc");

const conf = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const t0 = process.hrtime.bigint();
const events = [];
const facts = {};
const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

function event(kind, detail = {}) {
  const rec = { t: Number((process.hrtime.bigint() - t0) / 1000000n) / 1000, event: kind, ...detail };
  events.push(rec);
  console.error(`charger ${JSON.stringify(rec)}`);
}

function describe(err) {
  const out = { type: `node.${err.constructor ? err.constructor.name : typeof err}`, message: String(err.message) };
  for (const k of ["code", "errno", "syscall", "rpcErrorCode", "reason"]) if (err[k] !== undefined) out[k] = err[k];
  if (err.response && err.response.statusCode) {
    out.http_status = err.response.statusCode;
    out.http_reason = err.response.statusMessage;
  }
  if (err.rpcErrorCode) out.ocpp_error_code = err.rpcErrorCode;
  if (err.cause) out.cause = describe(err.cause);
  return out;
}

async function run() {
  const tls = conf.tls;
  const client = new RPCClient({
    endpoint: conf.url.slice(0, conf.url.lastIndexOf("/")),
    identity: conf.station_id,
    protocols: conf.offer,
    strictMode: true,
    reconnect: false,
    pingIntervalMs: 0,
    callTimeoutMs: conf.response_timeout * 1000,
    password: conf.password ?? undefined,
    wsOpts: tls ? { ca: fs.readFileSync(tls.cafile), minVersion: `TLSv${tls.min}`, maxVersion: `TLSv${tls.max}` } : {},
  });
  client.on("close", ({ code, reason }) => event("closed", { code, reason: String(reason ?? "") }));
  client.on("socketError", (err) => event("socket_error", describe(err)));
  event("connect", { url: conf.url, offer: conf.offer, clock: now() });
  await client.connect();
  facts.subprotocol = client.protocol;
  event("open", { subprotocol: client.protocol });
  const boot = await client.call("BootNotification", {
    chargePointVendor: "GhostcapLab",
    chargePointModel: "SimCharger-rpc",
  });
  event("boot", { attempt: 1, status: boot.status, interval: boot.interval, current_time: boot.currentTime });
  facts.boot_status = [boot.status];
  for (const step of conf.script) {
    if (step.startsWith("wait:")) {
      await new Promise((r) => setTimeout(r, Number(step.slice(5)) * 1000));
    } else if (step === "heartbeat") {
      event("heartbeat", { response: await client.call("Heartbeat", {}) });
    } else if (step === "status") {
      const req = { connectorId: 1, errorCode: "NoError", status: "Available", timestamp: now() };
      event("status", { response: await client.call("StatusNotification", req) });
    } else {
      throw new Error(`unknown step ${step}`);
    }
  }
  const res = await client.close({ code: 1000 });
  event("close_done", res);
}

async function main() {
  let error = null;
  try {
    await Promise.race([
      run(),
      new Promise((_, rej) => setTimeout(() => rej(new Error("charger deadline")), (conf.deadline ?? 20) * 1000)),
    ]);
  } catch (err) {
    error = describe(err);
    event("error", error);
  }
  fs.writeFileSync(
    conf.result,
    JSON.stringify({ station_id: conf.station_id, pid: process.pid, clock_at_exit: now(), events, facts, error }, null, 2),
  );
  process.exit(0);
}

main();
