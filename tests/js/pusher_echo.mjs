// Unchanged Reverb frontends against realtime_sio: Laravel Echo with broadcaster "reverb" (user 7) and "pusher"
// (user 8) on pusher-js 8, beside Echo's socket.io connector (user 9), all in one presence channel and one private
// channel, authorised by a fake Laravel /broadcasting/auth that signs like PusherBroadcaster; events triggered through
// the pusher server SDK; whispers across protocols. For test_pusher_js.py.
// Input: one JSON argument {url, host, port, authEndpoint, app: {appId, key, secret}}.
// Output: one line {"ok": true, "seen": ...} or {"ok": false, "error": ..., "seen": ...}.
import Echo from "laravel-echo";
import Pusher from "pusher-js";
import PusherServer from "pusher";
import { io } from "socket.io-client";
import { until as untilWith } from "./lib.mjs";

const { url, host, port, authEndpoint, app } = JSON.parse(process.argv[2]);
const seen = { events: { a: [], b: [], c: [] }, here: {}, joining: { a: [] }, leaving: { a: [] }, whispers: { a: [], c: [] }, errors: [], socketIds: {} };
const until = (label, predicate) => untilWith(label, predicate, seen);

function pusherEcho(broadcaster, user) {
  const options = {
    broadcaster, key: app.key, wsHost: host, wsPort: port, wssPort: port, forceTLS: false, enabledTransports: ["ws"],
    Pusher, authEndpoint, auth: { headers: { Authorization: `Bearer user-${user}` } }, disableStats: true,
  };
  if (broadcaster === "pusher") options.cluster = "mt1";
  return new Echo(options);
}

const a = pusherEcho("reverb", 7);
const b = pusherEcho("pusher", 8);
const c = new Echo({ broadcaster: "socket.io", host: url, client: io, transports: ["websocket"], auth: { headers: { Authorization: "Bearer user-9" } } });
const all = { a, b, c };
try {
  for (const [name, echo] of Object.entries(all)) {
    echo.channel("orders").listen("OrderShipped", (e) => seen.events[name].push(["orders", e.order.id]));
    echo.private("orders.ok").listen("OrderShipped", (e) => seen.events[name].push(["private", e.order.id]))
      .error((e) => seen.errors.push([name, "private", e]));
  }
  a.join("room.1")
    .here((members) => { seen.here.a = members; })
    .joining((m) => seen.joining.a.push(m.id))
    .leaving((m) => seen.leaving.a.push(m.id))
    .listenForWhisper("typing", (e) => seen.whispers.a.push(e.from))
    .error((e) => seen.errors.push(["a", "presence", e]));
  await until("A here", () => seen.here.a !== undefined);
  b.join("room.1").here((members) => { seen.here.b = members; });
  await until("A sees B join", () => seen.joining.a.includes(8));
  c.join("room.1").here((members) => { seen.here.c = members; }).listenForWhisper("typing", (e) => seen.whispers.c.push(e.from));
  await until("A sees C (socket.io) join", () => seen.joining.a.includes(9) && seen.here.c !== undefined);

  // whispers: pusher-js → socket.io and socket.io → pusher-js
  a.join("room.1").whisper("typing", { from: "a" });
  c.join("room.1").whisper("typing", { from: "c" });
  await until("whispers crossed", () => seen.whispers.c.includes("a") && seen.whispers.a.includes("c"));

  for (const [name, echo] of Object.entries(all)) seen.socketIds[name] = echo.socketId();
  const sdk = new PusherServer({ appId: app.appId, key: app.key, secret: app.secret, host, port, useTLS: false });
  await sdk.trigger("orders", "App\\Events\\OrderShipped", { order: { id: 1 } });
  await sdk.trigger("private-orders.ok", "App\\Events\\OrderShipped", { order: { id: 2 } }, { socket_id: seen.socketIds.a });
  await until("events", () => seen.events.a.length >= 1 && seen.events.b.length >= 2 && seen.events.c.length >= 2);
  // A round trip per client, so that anything extra would have arrived
  await sdk.trigger("orders", "App\\Events\\OrderShipped", { order: { id: 3 } });
  await until("last event", () => ["a", "b", "c"].every((n) => seen.events[n].some(([, id]) => id === 3)));

  b.disconnect();
  await until("A sees B leave", () => seen.leaving.a.includes(8));
  console.log(JSON.stringify({ ok: true, seen }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err), seen }));
} finally {
  a.disconnect();
  b.disconnect();
  c.disconnect();
}
