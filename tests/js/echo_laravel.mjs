// Real Laravel Echo (socket.io connector) against realtime_sio with delegated /broadcasting/auth, fed by Laravel's
// Redis broadcaster (the test publishes) and by the pusher SDK (this script triggers), for test_laravel_e2e.py.
// Input: one JSON argument {url, pusher: {appId, key, secret, host, port}}.
// Output: a line {"ready": true, "socketIds": {a, b}} once both are subscribed; after the test's Redis publishes
// (ids 1 and 2) arrived, the script triggers id 3 through the pusher SDK and prints {"ok": true, "seen": ...}.
import Echo from "laravel-echo";
import Pusher from "pusher";
import { io } from "socket.io-client";
import { until as untilWith } from "./lib.mjs";

const { url, pusher: app } = JSON.parse(process.argv[2]);
const seen = { a: [], b: [], hereA: null, joiningA: null, errors: [] };

const until = (label, predicate) => untilWith(label, predicate, seen);

function echoFor(user) {
  // Each instance gets its own auth object (Echo instances in one process share default options otherwise).
  // The bearer is the app's own token (Sanctum-style): realtime_sio forwards it to /broadcasting/auth.
  const echo = new Echo({ broadcaster: "socket.io", host: url, client: io, transports: ["websocket"], auth: { headers: { Authorization: `Bearer user-${user}` } } });
  echo.connector.socket.on("subscription_error", (channel, status) => seen.errors.push([user, channel, status]));
  return echo;
}

const a = echoFor(7);
const b = echoFor(8);
try {
  a.private("orders.ok").listen("OrderShipped", (e) => seen.a.push(e.order.id));
  a.join("room.obj").here((members) => { seen.hereA = members; }).joining((m) => { seen.joiningA = m; });
  await until("A here", () => seen.hereA !== null);
  b.private("orders.ok").listen("OrderShipped", (e) => seen.b.push(e.order.id));
  b.join("room.obj");
  await until("A sees B joining", () => seen.joiningA !== null);
  console.log(JSON.stringify({ ready: true, socketIds: { a: a.socketId(), b: b.socketId() } }));

  await until("Redis events", () => seen.b.length >= 2 && seen.a.length >= 1);
  const pusher = new Pusher({ ...app, useTLS: false });
  await pusher.trigger("private-orders.ok", "App\\Events\\OrderShipped", { order: { id: 3 } });
  await until("Pusher event", () => seen.a.includes(3) && seen.b.includes(3));
  console.log(JSON.stringify({ ok: true, seen }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err), seen }));
} finally {
  a.disconnect();
  b.disconnect();
}
