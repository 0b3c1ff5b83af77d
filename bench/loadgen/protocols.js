// Clients for bench/protocols.py: idle Socket.IO (socket.io-client 4, WebSocket) or Pusher protocol 7 (raw `ws`
// speaking exactly what pusher-js sends) connections, each subscribed to one channel, and counters of what arrives.
// argv: <url> <protocol: socketio|pusher> <count> <channel> <pusher key>. Prints {"ready": n} once every client is
// subscribed; then for each stdin line "<m>" prints {"received": m} once every client has received m events.
import { io } from "socket.io-client";
import WebSocket from "ws";
import readline from "node:readline";

const [url, protocol, countText, channel, key] = process.argv.slice(2);
const count = Number(countText);
const received = [];
let subscribed = 0;

function socketio(i) {
  const socket = io(url, { transports: ["websocket"], reconnection: false, forceNew: true });
  received[i] = 0;
  socket.on("connect", () => socket.emit("subscribe", { channel }, () => { subscribed += 1; }));
  socket.onAny(() => { received[i] += 1; });
  return socket;
}

function pusher(i) {
  const ws = new WebSocket(`${url.replace("http", "ws")}/app/${key}?protocol=7&client=js&version=8.4.0&flash=false`);
  received[i] = 0;
  ws.on("message", (raw) => {
    const msg = JSON.parse(raw.toString());
    if (msg.event === "pusher:connection_established") ws.send(JSON.stringify({ event: "pusher:subscribe", data: { channel } }));
    else if (msg.event === "pusher_internal:subscription_succeeded") subscribed += 1;
    else if (msg.event !== "pusher:ping" && msg.event !== "pusher:pong") received[i] += 1;
  });
  ws.on("ping", () => {}); // ws answers control pings itself
  return ws;
}

const make = protocol === "pusher" ? pusher : socketio;
const clients = [];
for (let i = 0; i < count; i += 1) {
  clients.push(make(i));
  if (i % 200 === 199) await new Promise((r) => setTimeout(r, 20)); // a steady handshake rate, not a SYN flood
}
while (subscribed < count) await new Promise((r) => setTimeout(r, 20));
console.log(JSON.stringify({ ready: subscribed }));

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  const want = Number(line.trim());
  while (received.some((n) => n < want)) await new Promise((r) => setTimeout(r, 5));
  console.log(JSON.stringify({ received: want }));
}
process.exit(0);
