// Drives the recovery helper with a plain socket.io-client and with Laravel Echo against realtime_sio.
// Input: one JSON argument {url, apiKey, tokens: {plain, echo}}. Output: one JSON line of observations.
import Echo from "laravel-echo";
import { io } from "socket.io-client";
import { postEvent, until as untilWith } from "./lib.mjs";
import { trackPositions } from "../../realtime_sio/static/recovery.mjs";

const { url, apiKey, tokens } = JSON.parse(process.argv[2]);
const seen = { plain: [], echo: [], resets: [], quietPlain: [], quietEcho: [] };

const until = (label, predicate) => untilWith(label, predicate, seen);
const post = (channel, event, data) => postEvent(url, apiKey, channel, event, data);



const plain = io(url, { auth: { token: tokens.plain }, transports: ["websocket"] });
const echo = new Echo({
  broadcaster: "socket.io", host: url, client: io, transports: ["websocket"],
  reconnectionDelay: 1000, randomizationFactor: 0,
  auth: { headers: { Authorization: `Bearer ${tokens.echo}` } },
});
try {
  trackPositions(plain, { onReset: (channel) => seen.resets.push(channel) });
  plain.on("Note", (channel, data) => seen.plain.push(data));
  const echoTracker = trackPositions(echo.connector.socket, { onReset: (channel) => seen.resets.push(channel) });
  echo.private("orders.1").listen(".Note", (e) => seen.echo.push(e.n));

  await until("connected", () => plain.connected && echo.connector.socket.connected);
  await new Promise((r) => setTimeout(r, 100)); // let Echo's subscribe land (it sends no ack)
  await post("private-user.7", "Note", 0);
  await post("private-orders.1", "Note", { n: 0 });
  await until("first events", () => seen.plain.length === 1 && seen.echo.length === 1);

  // Plain client: disconnect, miss 20 events, connect again.
  plain.disconnect();
  for (let n = 1; n <= 20; n++) await post("private-user.7", "Note", n);
  plain.connect();
  // Echo: the transport drops (as on a network failure); Echo reconnects by itself and re-subscribes.
  echo.connector.socket.io.engine.close();
  for (let n = 1; n <= 20; n++) await post("private-orders.1", "Note", { n });
  await until("replays", () => seen.plain.length >= 21 && seen.echo.length >= 21);
  await post("private-user.7", "Note", 21);
  await post("private-orders.1", "Note", { n: 21 });
  await until("live after replay", () => seen.plain.length >= 22 && seen.echo.length >= 22);

  // Quiet channels: no event has ever been sent to them. The server's recovery:position after each join gives the
  // tracker a position anyway, so what is sent while the client is away is replayed (issue 14).
  const quiet = io(url, { auth: { token: tokens.quiet }, transports: ["websocket"], reconnectionDelay: 200 });
  const quietTracker = trackPositions(quiet, { onReset: (channel) => seen.resets.push(channel) });
  quiet.on("Quiet", (channel, data) => seen.quietPlain.push(data));
  echo.private("orders.2").listen(".Quiet", (e) => seen.quietEcho.push(e.n));
  await until("quiet positions", () =>
    quietTracker.positions()[`private-user.${tokens.quietUser}`] !== undefined &&
    echoTracker.positions()["private-orders.2"] !== undefined);
  quiet.io.engine.close(); // the transport drops; socket.io-client reconnects by itself with the positions
  echo.connector.socket.io.engine.close();
  for (let n = 0; n < 5; n++) {
    await post(`private-user.${tokens.quietUser}`, "Quiet", n);
    await post("private-orders.2", "Quiet", { n });
  }
  await until("quiet replays", () => seen.quietPlain.length >= 5 && seen.quietEcho.length >= 5);
  quiet.disconnect();
  console.log(JSON.stringify({ ok: true, seen }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err), seen }));
} finally {
  plain.disconnect();
  echo.disconnect();
}
