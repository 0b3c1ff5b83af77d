// Drives real Laravel Echo (socket.io connector) + socket.io-client 4 against a realtime_sio server.
// Input: one JSON argument {url, apiKey, tokens: {a, b}, transports}. Output: one JSON line of observations.
import Echo from "laravel-echo";
import { io } from "socket.io-client";
import { postEvent, until as untilWith } from "./lib.mjs";

const { url, apiKey, tokens, transports } = JSON.parse(process.argv[2]);
const seen = { order: null, namespaced: null, hereA: null, hereB: null, joiningA: null, leavingA: null, whisperA: null, transportA: null };

const until = (label, predicate) => untilWith(label, predicate, seen);
const post = (channel, event, data) => postEvent(url, apiKey, channel, event, data);

function echoFor(token) {
  // Each instance gets its own auth object: Echo instances in one Node process otherwise share default options.
  return new Echo({ broadcaster: "socket.io", host: url, client: io, transports, auth: { headers: { Authorization: `Bearer ${token}` } } });
}



const a = echoFor(tokens.a);
const b = echoFor(tokens.b);
try {
  a.private("user.42")
    .listen(".OrderShipped", (e) => { seen.order = e; })
    .listen("OrderShipped", (e) => { seen.namespaced = e; });
  a.join("chat.1")
    .here((members) => { seen.hereA = members; })
    .joining((m) => { seen.joiningA = m; })
    .leaving((m) => { seen.leavingA = m; })
    .listenForWhisper("typing", (e) => { seen.whisperA = e; });
  await until("A here", () => seen.hereA !== null);
  seen.transportA = a.connector.socket.io.engine.transport.name;

  await post("private-user.42", "OrderShipped", { order: { id: 1 } });
  await post("private-user.42", "App\\Events\\OrderShipped", { order: { id: 2 } });
  await until("order events", () => seen.order !== null && seen.namespaced !== null);

  b.join("chat.1").here((members) => { seen.hereB = members; });
  await until("B here and A joining", () => seen.hereB !== null && seen.joiningA !== null);
  b.join("chat.1").whisper("typing", { name: "B" });
  await until("whisper", () => seen.whisperA !== null);

  b.leave("chat.1");
  await until("A leaving", () => seen.leavingA !== null);
  console.log(JSON.stringify({ ok: true, seen }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err), seen }));
} finally {
  a.disconnect();
  b.disconnect();
}
