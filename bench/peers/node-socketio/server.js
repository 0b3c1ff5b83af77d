// Reference peer for the realtime_sio benchmark: the same client/HTTP/Redis subset on Node socket.io 4.
//
// Environment (same names and defaults as realtime_sio, so the runner starts both the same way):
//   REALTIME_SIO_HOST (127.0.0.1), REALTIME_SIO_PORT (6001), REALTIME_SIO_API_KEY (none = HTTP emit open),
//   REALTIME_SIO_JWT_SECRET (none = anonymous only), REALTIME_SIO_REDIS_URL (none = no Laravel Redis ingest),
//   REALTIME_SIO_REDIS_PREFIX (laravel_database_), REALTIME_SIO_TLS_CERT_FILE + REALTIME_SIO_TLS_KEY_FILE (PEM; both
//   set = HTTPS/WSS on the same port, TLS 1.2+, ALPN http/1.1, as realtime_sio serves it).
//   PEER_REDIS_ADAPTER=1: run as one node of a cluster through `@socket.io/redis-adapter` on REALTIME_SIO_REDIS_URL
//   (the migration plan's stack) instead of the Laravel subscriber; broadcasts reach every node's sockets.
//
// Implemented subset (what the benchmark and the smoke tests use):
//   - connect with optional `auth: {token}` (HS256 JWT: sub, roles, exp); authenticated sockets auto-join
//     `private-user.<sub>` and `private-role.<role>`; a bad token is refused with connect_error.
//   - `subscribe {channel}`: public channels join at once; `private-user.<id>` only for sub == id,
//     `private-role.<r>` only with r in roles; anything else private/presence gets `subscription_error`.
//     Acks `{ok: true|false}` when the client asks for an ack.
//   - `ping` acks "pong".
//   - POST /api/v1/events {channel | channels, event, data} → io.to(ch).emit(event, ch, data); 200 JSON.
//   - GET /health → {"status":"ok"}.
//   - Redis (Laravel RedisBroadcaster): PSUBSCRIBE <prefix>*, message {event, data, socket} →
//     emit(event, <channel without prefix>, data), like laravel-echo-server does.
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import { Server } from "socket.io";
import jwt from "jsonwebtoken";

const host = process.env.REALTIME_SIO_HOST || "127.0.0.1";
const port = Number(process.env.REALTIME_SIO_PORT || 6001);
const apiKey = process.env.REALTIME_SIO_API_KEY || "";
const jwtSecret = process.env.REALTIME_SIO_JWT_SECRET || "";
const redisUrl = process.env.REALTIME_SIO_REDIS_URL || "";
const redisPrefix = process.env.REALTIME_SIO_REDIS_PREFIX ?? "laravel_database_";
const useAdapter = process.env.PEER_REDIS_ADAPTER === "1";
const tlsCert = process.env.REALTIME_SIO_TLS_CERT_FILE || "";
const tlsKey = process.env.REALTIME_SIO_TLS_KEY_FILE || "";
const MAX_BODY = 100_000;

/** Emit one Laravel-Echo-style event: (event, channel, data) to every socket in the room `channel`. */
function broadcast(channel, event, data) {
  io.to(channel).emit(event, channel, data);
}

/** Send a JSON response. */
function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** POST /api/v1/events: validate the bearer key and body, then broadcast to each channel. */
function handleEvents(req, res) {
  if (apiKey && req.headers.authorization !== `Bearer ${apiKey}`) {
    sendJson(res, 401, { code: "unauthorized" });
    req.resume();
    return;
  }
  const chunks = [];
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  req.on("end", () => {
    if (size > MAX_BODY) return sendJson(res, 413, { code: "payload_too_large" });
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return sendJson(res, 400, { code: "body_invalid" });
    }
    const channels = body.channels ?? (body.channel ? [body.channel] : []);
    if (!Array.isArray(channels) || channels.length === 0 || typeof body.event !== "string") {
      return sendJson(res, 400, { code: "body_invalid" });
    }
    for (const channel of channels) broadcast(channel, body.event, body.data ?? {});
    sendJson(res, 200, { ok: true, channels: channels.length });
  });
}

const tlsOptions = tlsCert && tlsKey
  ? { cert: fs.readFileSync(tlsCert), key: fs.readFileSync(tlsKey), minVersion: "TLSv1.2", ALPNProtocols: ["http/1.1"] }
  : null;
const handler = (req, res) => {
  // socket.io answers /socket.io/ itself before this handler runs.
  const path = req.url.split("?", 1)[0];
  if (req.method === "GET" && path === "/health") return sendJson(res, 200, { status: "ok" });
  if (req.method === "POST" && path === "/api/v1/events") return handleEvents(req, res);
  sendJson(res, 404, { code: "not_found" });
};
const httpServer = tlsOptions ? https.createServer(tlsOptions, handler) : http.createServer(handler);
// Keep-alive for the HTTP emitter: a bench run sends thousands of POSTs on a few sockets.
httpServer.keepAliveTimeout = 30_000;

const io = new Server(httpServer, { transports: ["websocket", "polling"], serveClient: false });

// Connect-time JWT: absent token → anonymous; present but bad → refused.
io.use((socket, next) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  if (!token) return next();
  if (!jwtSecret) return next(new Error("tokens_disabled"));
  try {
    const claims = jwt.verify(token, jwtSecret, { algorithms: ["HS256"] });
    if (claims.sub === undefined || claims.exp === undefined) return next(new Error("token_missing_claim"));
    socket.data.userId = String(claims.sub);
    socket.data.roles = Array.isArray(claims.roles) ? claims.roles.map(String) : [];
    next();
  } catch {
    next(new Error("token_invalid"));
  }
});

/** True when this socket may join `channel` (public, own user channel, or one of its roles). */
function mayJoin(socket, channel) {
  if (!channel.startsWith("private-") && !channel.startsWith("presence-")) return true;
  if (channel.startsWith("private-user.")) return socket.data.userId === channel.slice("private-user.".length);
  if (channel.startsWith("private-role.")) return (socket.data.roles || []).includes(channel.slice("private-role.".length));
  return false;
}

io.on("connection", (socket) => {
  if (socket.data.userId !== undefined) {
    socket.join(`private-user.${socket.data.userId}`);
    for (const role of socket.data.roles) socket.join(`private-role.${role}`);
  }
  socket.on("subscribe", (payload, ack) => {
    const channel = payload && payload.channel;
    const ok = typeof channel === "string" && channel.length > 0 && channel.length <= 200 && mayJoin(socket, channel);
    if (ok) socket.join(channel);
    else socket.emit("subscription_error", channel, 403);
    if (typeof ack === "function") ack({ ok });
  });
  socket.on("ping", (...args) => {
    const ack = args[args.length - 1];
    if (typeof ack === "function") ack("pong");
  });
});

/** Laravel path: PSUBSCRIBE <prefix>* and broadcast each {event, data} message to its channel's room. */
async function startRedis() {
  const { createClient } = await import("redis");
  const sub = createClient({ url: redisUrl });
  sub.on("error", (err) => console.error("redis error", err.message));
  await sub.connect();
  await sub.pSubscribe(`${redisPrefix}*`, (message, redisChannel) => {
    let msg;
    try {
      msg = JSON.parse(message);
    } catch {
      return; // a malformed message is skipped
    }
    if (msg && typeof msg.event === "string") broadcast(redisChannel.slice(redisPrefix.length), msg.event, msg.data ?? {});
  });
  return sub;
}

/** The plan's cluster: socket.io's Redis adapter (one pub and one sub connection per node). */
async function startAdapter() {
  const { createClient } = await import("redis");
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  for (const client of [pub, sub]) client.on("error", (err) => console.error("redis error", err.message));
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub));
  return pub;
}

let redisClient = null;
if (redisUrl && useAdapter) redisClient = await startAdapter();
else if (redisUrl) redisClient = await startRedis();

httpServer.listen(port, host, () => {
  console.log(JSON.stringify({ event: "listening", host, port, pid: process.pid, tls: Boolean(tlsOptions) }));
});

// Bounded shutdown on SIGTERM/SIGINT: close sockets, Redis, then exit even if something hangs.
function shutdown() {
  setTimeout(() => process.exit(0), 2000).unref();
  io.close();
  if (redisClient) redisClient.quit().catch(() => {});
  httpServer.close(() => process.exit(0));
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
