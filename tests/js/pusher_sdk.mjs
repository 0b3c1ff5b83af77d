// Drive the official `pusher` server SDK against realtime_sio for tests/integration/test_pusher_api.py.
// Usage: node tests/js/pusher_sdk.mjs '<json spec>'
//   spec = {app: {appId, key, secret}, host, port, ops: [{op: "trigger", channels, event, data, params?}
//          | {op: "triggerBatch", batch} | {op: "get", path, params?} | {op: "terminate", userId}]}
// Prints one JSON line: [{ok: true, status, body} | {ok: false, status, body, message}] (one entry per op).
import Pusher from "pusher";

const spec = JSON.parse(process.argv[2]);
const pusher = new Pusher({
  appId: spec.app.appId,
  key: spec.app.key,
  secret: spec.app.secret,
  host: spec.host,
  port: spec.port,
  useTLS: false,
  timeout: 10000,
});

async function run(op) {
  switch (op.op) {
    case "trigger":
      return pusher.trigger(op.channels, op.event, op.data, op.params);
    case "triggerBatch":
      return pusher.triggerBatch(op.batch);
    case "terminate":
      return pusher.terminateUserConnections(op.userId);
    case "get":
      return pusher.get({ path: op.path, params: op.params || {} });
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}

const results = [];
for (const op of spec.ops) {
  try {
    const res = await run(op);
    results.push({ ok: true, status: res.status, body: await res.json() });
  } catch (err) {
    results.push({ ok: false, status: err.status ?? null, body: err.body ?? null, message: String(err.message) });
  }
}
process.stdout.write(JSON.stringify(results) + "\n");
