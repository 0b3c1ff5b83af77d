// pusher-js 8 through a proxy in front of two realtime_sio nodes: the test kills the node it is connected to, and
// pusher-js must reconnect (to the other node), resubscribe and receive what is published afterwards.
// Input: one JSON argument {host, port, key}. Output lines: {"ready": true, "socketId"} once subscribed; then
// {"reconnected": true, "socketId"} once subscribed again on a new connection; then {"ok": true, "seen": [...]}.
import Pusher from "pusher-js";
import { until as untilWith } from "./lib.mjs";

const { host, port, key } = JSON.parse(process.argv[2]);
const seen = [];
const until = (label, predicate, ms = 60000) => untilWith(label, predicate, seen, ms);

const pusher = new Pusher(key, { wsHost: host, wsPort: port, forceTLS: false, enabledTransports: ["ws"], cluster: "", disableStats: true });
let subscribed = 0;
const channel = pusher.subscribe("orders");
channel.bind("pusher:subscription_succeeded", () => { subscribed += 1; });
channel.bind("Shipped", (data) => seen.push(data.id));
try {
  await until("first subscription", () => subscribed === 1);
  const first = pusher.connection.socket_id;
  console.log(JSON.stringify({ ready: true, socketId: first }));
  await until("resubscribed on a new connection", () => subscribed >= 2 && pusher.connection.socket_id !== first);
  console.log(JSON.stringify({ reconnected: true, socketId: pusher.connection.socket_id }));
  await until("event after reconnect", () => seen.includes(2));
  console.log(JSON.stringify({ ok: true, seen }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err), seen }));
} finally {
  pusher.disconnect();
}
