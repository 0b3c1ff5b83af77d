// The served recovery helper acknowledges sampled deliveries (issue 15): a plain socket.io-client and Laravel Echo,
// both through trackPositions, receive events; the server marks sampled ones with meta.ack and the helper answers.
// A client without the helper must see no ack ids at all.
// Input: one JSON argument {url, publishUrl, apiKey, token, count}. Output: one JSON line of observations.
import Echo from "laravel-echo";
import { io } from "socket.io-client";
import { postEvent, until as untilWith } from "./lib.mjs";
import { trackPositions } from "../../realtime_sio/static/recovery.mjs";

const { url, publishUrl, apiKey, token, count } = JSON.parse(process.argv[2]);
const seen = { plain: [], echo: [], bare: [] };
const until = (label, predicate) => untilWith(label, predicate, seen, 30000);

const plain = io(url, { auth: { token }, transports: ["websocket"] });
const bare = io(url, { auth: { token }, transports: ["websocket"] });
const echo = new Echo({
  broadcaster: "socket.io", host: url, client: io, transports: ["websocket"],
  auth: { headers: { Authorization: `Bearer ${token}` } },
});
try {
  trackPositions(plain);
  trackPositions(echo.connector.socket);
  plain.on("Tick", (channel, data, meta) => seen.plain.push(meta || null));
  bare.on("Tick", (channel, data, meta) => seen.bare.push(meta || null));
  echo.private("lat.1").listen(".Tick", (e) => seen.echo.push(e.n));
  await until("connected", () => plain.connected && bare.connected && echo.connector.socket.connected);
  for (const s of [plain, bare]) {
    const ack = await s.timeout(10000).emitWithAck("subscribe", { channel: "private-lat.1" });
    if (!ack || ack.ok !== true) throw new Error(`subscribe refused: ${JSON.stringify(ack)}`);
  }
  await new Promise((r) => setTimeout(r, 500)); // Echo's subscribe has no ack
  for (let n = 0; n < count; n++) await postEvent(publishUrl, apiKey, "private-lat.1", "Tick", { n });
  await until("every event", () => seen.plain.length >= count && seen.bare.length >= count && seen.echo.length >= count);
  await new Promise((r) => setTimeout(r, 1000)); // let the last acknowledgements cross the delayed link
  console.log(JSON.stringify({ ok: true, seen }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err), seen }));
} finally {
  plain.disconnect();
  bare.disconnect();
  echo.disconnect();
}
