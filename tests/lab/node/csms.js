// The lab's ocpp-rpc CSMS: `node csms.js CONFIG.json` (tests/lab/lab.py writes the config).
// One RPCServer in strictMode (ocpp-rpc validates every CALL against the OCPP JSON schemas and answers a
// CALLERROR itself when one breaks them). Per station: "accept" (Boot Accepted, answer Heartbeat and
// StatusNotification) or "close_on_connect" (close the WebSocket right after the upgrade, with
// close_code/close_reason, before any OCPP message). Prints READY once listening; stops on SIGTERM/SIGINT.
"use strict";
const fs = require("fs");
const { RPCServer } = require("ocpp-rpc");

const conf = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const log = (...a) => console.error(new Date().toISOString(), "csms", ...a);
const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

const server = new RPCServer({
  protocols: conf.subprotocols,
  strictMode: true,
  pingIntervalMs: 0,
  callTimeoutMs: 5000,
});

server.on("upgradeAborted", ({ error, identity }) => log(`${identity}: upgrade aborted: ${error && error.message}`));

server.on("client", async (client) => {
  const station = conf.stations[client.identity];
  log(`${client.identity}: connected with ${client.protocol} from ${client.handshake.remoteAddress}`);
  client.on("strictValidationFailure", ({ method, error }) =>
    log(`${client.identity}: strict mode rejected ${method}: ${error.rpcErrorCode} ${error.message}`),
  );
  client.on("callError", ({ method, error }) => log(`${client.identity}: CALLERROR for ${method}: ${error.message}`));
  client.on("close", ({ code, reason }) => log(`${client.identity}: closed ${code} ${reason}`));
  if (!station || station.behaviour === "close_on_connect") {
    const code = station ? station.close_code : 1008;
    const reason = station ? station.close_reason : "unknown station identity";
    log(`${client.identity}: closing right after the upgrade with ${code} ${JSON.stringify(reason)}`);
    const res = await client.close({ code, reason });
    log(`${client.identity}: close completed ${JSON.stringify(res)}`);
    return;
  }
  client.handle("BootNotification", ({ params }) => {
    log(`${client.identity}: BootNotification ${JSON.stringify(params)} -> Accepted`);
    return { status: "Accepted", interval: 300, currentTime: now() };
  });
  client.handle("Heartbeat", () => ({ currentTime: now() }));
  client.handle("StatusNotification", () => ({}));
});

async function main() {
  const http = [];
  for (const lst of conf.listeners) {
    http.push(await server.listen(lst.port, lst.host));
    log(`listening on ${lst.host}:${lst.port} (ws)`);
  }
  console.log("READY");
  const stop = async () => {
    await server.close({ force: true });
    log("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  log(`fatal: ${err.stack}`);
  process.exit(1);
});
