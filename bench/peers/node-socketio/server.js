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
//     `private-role.<r>` only with r in roles, `presence-chat.<room>` for any authenticated socket (realtime_sio's
//     default rule); anything else private/presence gets `subscription_error` 403.
//     Acks `{ok: true|false}` when the client asks for an ack (for presence, once the join below is done).
//   - presence channels: laravel-echo-server's algorithm (src/channels/presence-channel.ts) without its per-check
//     cluster-wide liveness query (cheaper than the original; see "Presence" below):
//     `presence:subscribed` (channel, members) to the joiner, `presence:joining` / `presence:leaving` (channel,
//     member) to the channel's other sockets; member = {user_id, user_info: {id, name?}} as realtime_sio sends for a
//     JWT. Members are a JSON list in Redis under `peer:<channel>:members` (in memory without REALTIME_SIO_REDIS_URL).
//   - `unsubscribe {channel}`: leaves the room (and the presence channel); acks with nothing when asked.
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
    socket.data.member = memberOf(claims);
    next();
  } catch {
    next(new Error("token_invalid"));
  }
});

/** Keep numeric ids numeric in user_info, as realtime_sio does (Laravel sends ints): "42" → 42, "u42" stays. */
function jsonId(raw) {
  return typeof raw === "string" && /^[0-9]+$/.test(raw) && raw.length < 16 ? Number(raw) : raw;
}

/** The presence member of a JWT, as realtime_sio builds it: user_info = {id, name (when the token has one)}. */
function memberOf(claims) {
  const id = jsonId(claims.sub);
  return { user_id: id, user_info: claims.name !== undefined ? { id, name: claims.name } : { id } };
}

const PRESENCE_CHAT = /^presence-chat\.[^.]+$/; // realtime_sio's default rule: presence-chat.{room} → authenticated

function isPresence(channel) {
  return channel.startsWith("presence-");
}

/** True when this socket may join `channel` (public, own user channel, one of its roles, or presence-chat.*). */
function mayJoin(socket, channel) {
  if (!channel.startsWith("private-") && !isPresence(channel)) return true;
  if (channel.startsWith("private-user.")) return socket.data.userId === channel.slice("private-user.".length);
  if (channel.startsWith("private-role.")) return (socket.data.roles || []).includes(channel.slice("private-role.".length));
  if (PRESENCE_CHAT.test(channel)) return socket.data.member !== undefined;
  return false;
}

// ---- Presence ----------------------------------------------------------------------------------------------------
// laravel-echo-server's presence channel (src/channels/presence-channel.ts at its last commit, 967a11c, 2022) on
// socket.io 4.8 and the Redis adapter, made *cheaper* than the original on purpose: the benchmark compares server CPU
// per connect, and a peer doing more work than it needs to would flatter realtime_sio. Kept from laravel-echo-server:
// one JSON list of members per channel in Redis, read and written whole (GET, then SET, fire and forget: not atomic,
// so two joins of one channel at the same moment can overwrite each other, as in laravel-echo-server); join: GET,
// push, SET, `presence:subscribed` to the joiner, `presence:joining` to the others (through the adapter: every node)
// if the user was not a member yet; leave (unsubscribe, disconnect): GET, drop the socket's entries, SET, and
// `presence:leaving` to the channel (every node) if no entry of that user remains.
// Left out to make it cheaper (each would add work per join or leave):
//   - removeInactive: laravel-echo-server asks every node which sockets are in the channel's room before each
//     membership check (socket.io 2's clients(); in socket.io 4 with @socket.io/redis-adapter 8 that is
//     fetchSockets(), a request to every node answered with every socket's handshake). Without it, a dead node's
//     entries stay in the list (ghosts: no reaper either, as in laravel-echo-server), which the storm does not score
//     for the peer (its presence rows are n/a);
//   - `presence:subscribed` goes straight to the joining socket (laravel-echo-server sends it through
//     io.to(socket.id), which the Redis adapter publishes to every node).
// Other differences: no HTTP auth round trip to Laravel for channel_data (the JWT decides and gives the member, as
// realtime_sio does in the benchmark's setting: rule presence-chat.{room} → authenticated); members are sent without
// their socketId (realtime_sio sends {user_id, user_info} only, so both send the same events); keys are
// `peer:<channel>:members` so they cannot collide; a socket that subscribes a channel it is already in is not added
// again (a no-op, as in realtime_sio); a leave that finds no entry of the socket does nothing; the subscribe ack
// (laravel-echo-server has none) is sent once the join is done, as realtime_sio does; on SIGTERM the sockets close
// without presence writes (Redis is being closed too).
const MEMBERS_PREFIX = "peer:";
let closing = false; // shutting down: sockets close without presence writes (Redis is being closed too)
let presenceRedis = null; // a connected node-redis client (the adapter's pub client), or null: members in memory
const memoryMembers = new Map(); // channel key → JSON text, without Redis

const presenceDb = {
  async get(key) {
    const raw = presenceRedis ? await presenceRedis.get(MEMBERS_PREFIX + key) : memoryMembers.get(key);
    return raw ? JSON.parse(raw) : null;
  },
  /** Not awaited, as in laravel-echo-server: commands on one connection run in order, so a later GET sees it. */
  set(key, value) {
    const text = JSON.stringify(value);
    if (!presenceRedis) return void memoryMembers.set(key, text);
    presenceRedis.set(MEMBERS_PREFIX + key, text).catch((err) => console.error("presence set failed", err.message));
  },
};

/** {user_id, user_info} of a stored entry (its socketId left out). */
function wire(entry) {
  return { user_id: entry.user_id, user_info: entry.user_info };
}

async function presenceJoin(socket, channel, member) {
  let members = (await presenceDb.get(`${channel}:members`)) || [];
  const wasMember = members.some((m) => m.user_id == member.user_id); // == as laravel-echo-server: 42 and "42"
  members.push({ ...member, socketId: socket.id });
  presenceDb.set(`${channel}:members`, members);
  const seen = new Set(); // lodash uniqBy(members.reverse(), "user_id"): the newest entry of each user
  members = members.reverse().filter((m) => !seen.has(m.user_id) && seen.add(m.user_id));
  socket.emit("presence:subscribed", channel, members.map(wire));
  if (!wasMember) socket.broadcast.to(channel).emit("presence:joining", channel, member);
}

async function presenceLeave(socket, channel) {
  let members = (await presenceDb.get(`${channel}:members`)) || [];
  const member = members.find((m) => m.socketId === socket.id);
  if (!member) return;
  members = members.filter((m) => m.socketId !== socket.id);
  presenceDb.set(`${channel}:members`, members);
  if (!members.some((m) => m.user_id == member.user_id)) io.to(channel).emit("presence:leaving", channel, wire(member));
}

/** laravel-echo-server's Channel.leave: the presence entry (started first, finishes later), then the room. */
function leave(socket, channel) {
  if (isPresence(channel) && !closing) {
    presenceLeave(socket, channel).catch((err) => console.error("presence leave failed", channel, err.message));
  }
  socket.leave(channel);
}

io.on("connection", (socket) => {
  if (socket.data.userId !== undefined) {
    socket.join(`private-user.${socket.data.userId}`);
    for (const role of socket.data.roles) socket.join(`private-role.${role}`);
  }
  socket.on("subscribe", async (payload, ack) => {
    const reply = (ok) => typeof ack === "function" && ack({ ok });
    const channel = payload && payload.channel;
    const ok = typeof channel === "string" && channel.length > 0 && channel.length <= 200 && mayJoin(socket, channel);
    if (!ok) {
      socket.emit("subscription_error", channel, 403);
      return reply(false);
    }
    if (socket.rooms.has(channel)) return reply(true); // already in: a no-op
    socket.join(channel);
    if (!isPresence(channel)) return reply(true);
    try {
      await presenceJoin(socket, channel, socket.data.member);
    } catch (err) {
      console.error("presence join failed", channel, err.message);
      return reply(false);
    }
    reply(true);
  });
  socket.on("unsubscribe", (payload, ack) => {
    const channel = payload && payload.channel;
    if (typeof channel === "string" && socket.rooms.has(channel)) leave(socket, channel);
    if (typeof ack === "function") ack();
  });
  socket.on("disconnecting", () => {
    for (const room of [...socket.rooms]) if (room !== socket.id) leave(socket, room);
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
  const data = sub.duplicate(); // a subscribed connection runs no GET/SET: presence members use this one
  for (const client of [sub, data]) client.on("error", (err) => console.error("redis error", err.message));
  await Promise.all([sub.connect(), data.connect()]);
  presenceRedis = data;
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
  const members = pub.duplicate(); // presence GET/SET on their own connection: the adapter's publishes never wait behind them
  for (const client of [pub, sub, members]) client.on("error", (err) => console.error("redis error", err.message));
  await Promise.all([pub.connect(), sub.connect(), members.connect()]);
  io.adapter(createAdapter(pub, sub));
  presenceRedis = members;
  return pub;
}

// node-redis 6 gives every command a 5 s timeout, and the Redis adapter does not catch every rejected publish: in a
// 100,000-client storm (2026-12-07 12:28) all six surviving peer nodes exited on one such unhandled TimeoutError.
// Logged and counted instead, so the peer's storm figures measure its serving, not a crash.
let unhandled = 0;
process.on("unhandledRejection", (err) => {
  unhandled += 1;
  if (unhandled <= 10 || unhandled % 1000 === 0) console.error("unhandled rejection", unhandled, err && err.name, err && err.message);
});

let redisClient = null;
if (redisUrl && useAdapter) redisClient = await startAdapter();
else if (redisUrl) redisClient = await startRedis();

httpServer.listen(port, host, () => {
  console.log(JSON.stringify({ event: "listening", host, port, pid: process.pid, tls: Boolean(tlsOptions) }));
});

// Bounded shutdown on SIGTERM/SIGINT: close sockets, Redis, then exit even if something hangs.
function shutdown() {
  closing = true;
  setTimeout(() => process.exit(0), 2000).unref();
  io.close();
  if (redisClient) redisClient.quit().catch(() => {});
  if (presenceRedis && presenceRedis !== redisClient) presenceRedis.quit().catch(() => {});
  httpServer.close(() => process.exit(0));
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
