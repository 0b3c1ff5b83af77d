// Scenario "storm" (one of several worker processes): the clients i in [first, first+span) of the cluster storm
// (bench/storm.py), those of the node the runner kills ("moving"), the others ("staying") or all. Each client has its
// own JWT (user u<i>, auto-joined to private-user.u<i>), subscribes room.<i % rooms> and, for every presenceEvery-th
// client of a node, a presence-chat.<k> channel.
//
// The runner drives it with stdin commands and reads JSON lines:
//   connect        → open every client (bounded concurrency), report "connected" when all are up or timed out
//   status         → report "status": counters (up, back, broadcast receipts, targeted receipts, resets, …)
//   presence       → report "presence": presence channel → user ids of this worker's clients that are up in it
//   probe <url>    → a fresh client per presence channel subscribes on <url>; report "probe": channel → member ids
//   final          → close every client and end with the "result" line (received sequence numbers, latencies,
//                    resets, back times, presence:leaving names)
import { StormClient, Gate, now } from "../lib/storm_client.js";
import { nextCommand, report, log, delay } from "../lib/control.js";
import { io } from "socket.io-client";
import jwt from "jsonwebtoken";
import { monitorEventLoopDelay } from "node:perf_hooks";

export const defaults = {
  first: 0, // this worker's clients are the global indices in [first, first + span) ...
  span: 100,
  homes: "all", // ... whose home is the killed node ("moving"), any other ("staying"), or any ("all")
  urls: [], // every node's URL, in node order
  nodes: 0, // = urls.length
  rooms: 1000,
  presenceEvery: 10, // every n-th client of a node also joins a presence channel
  presenceChannels: 100,
  presence: false, // subscribe presence channels (the runner sets it for both servers)
  recovery: false, // present positions on reconnect (realtime_sio's missed-message recovery)
  killNode: -1, // the node the runner will kill (its leaver clients do not come back)
  sourceAddress: "", // bind the clients to this loopback address (costly: a port search per connect, see storm_run.py)
  connectTimeoutMs: 120_000, // longest wait for one client's first connect
  commandWaitMs: 900_000, // longest wait for the runner's next command
};

export async function run(opts) {
  opts.nodes = opts.urls.length;
  const indices = [];
  for (let i = opts.first; i < opts.first + opts.span; i++) {
    const moving = i % opts.nodes === opts.killNode;
    if (opts.homes === "all" || (opts.homes === "moving") === moving) indices.push(i);
  }
  opts.clients = indices.length;
  const sink = {
    connected: 0, up: 0, back: 0, reconnects: 0, reconnectAttempts: 0, disconnects: 0, leavers: 0,
    subscribeFailures: 0, subscribeRefusals: {}, lastBackAt: 0, backTimes: [], closing: false,
    gate: new Gate(opts.concurrency), // reconnection handshakes in flight in this process (storm_client.js)
    leaving: new Map(), // leaving.get(user) = when presence:leaving first named the user (wall ms)
    connectErrors: {}, disconnectReasons: {},
    bcast: 0, bcastDup: 0, bcastLastAt: 0,
    burst: 0, burstLastAt: 0, // "burst" events received (n per room, no round to check), the last one's receipt time
    presenceSubscribed: 0, // presence:subscribed received (one per presence join the server answered with its members)
    targeted: 0, dup: 0, wrongUser: 0,
    dupSample: [], // [seq, first receipt recovered 0/1, this receipt recovered 0/1, moved client 0/1], at most 10
    firstRecovered: new Map(), // firstRecovered.get(seq) = whether the first receipt was a replay
    // seen[seq] = receipts of targeted event seq (one user per seq, so per worker a seq is one client)
    seen: new Map(),
    lat: [], // [send ts, ms, recovered 0/1] per first receipt
    resets: [], // [channel kind, code, age of the presented position in ms, the client's global index]
    onEvent,
  };
  const clients = [];
  for (const [k, i] of indices.entries()) clients.push(new StormClient(i, opts, sink, k));
  const bcastSeen = new Uint8Array(opts.clients); // bcastSeen[k] = 1 + the last broadcast round client k received
  // how late this process's own loop ran (from the end of "connect"): a load generator that stalls past the server's
  // ping timeout makes the server drop its clients, a cascade the server did not start
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();

  function onEvent(client, event, channel, data, meta) {
    const t = now();
    if (event === "t") {
      if (channel !== `private-user.${client.plan.user}`) sink.wrongUser++;
      const seq = data && data.seq;
      if (!Number.isInteger(seq)) return;
      const count = sink.seen.get(seq) || 0;
      sink.seen.set(seq, count + 1);
      const recovered = meta && meta.recovered ? 1 : 0;
      if (count > 0) {
        sink.dup++;
        if (sink.dupSample.length < 10) {
          sink.dupSample.push([seq, sink.firstRecovered.get(seq) ? 1 : 0, recovered, client.plan.home === opts.killNode ? 1 : 0]);
        }
        return;
      }
      if (recovered) sink.firstRecovered.set(seq, true);
      sink.targeted++;
      sink.lat.push([Math.round(data.ts), Math.round((t - data.ts) * 100) / 100, meta && meta.recovered ? 1 : 0]);
    } else if (event === "bcast") {
      const k = client.k;
      const mark = ((data && Number(data.round)) || 0) + 1; // the runner broadcasts several rounds
      if (bcastSeen[k] === mark) {
        sink.bcastDup++;
        return;
      }
      bcastSeen[k] = mark;
      sink.bcast++;
      sink.bcastLastAt = Math.max(sink.bcastLastAt, t);
    } else if (event === "burst") {
      sink.burst++;
      sink.burstLastAt = Math.max(sink.burstLastAt, t);
    } else if (event === "presence:subscribed") {
      sink.presenceSubscribed++;
    } else if (event === "presence:leaving") {
      const user = data && data.user_id !== undefined ? String(data.user_id) : null;
      if (user && !sink.leaving.has(user)) sink.leaving.set(user, Math.round(t));
    } else if (event === "recovery:reset") {
      delete client.positions[channel];
      const since = typeof data?.since === "string" ? Number(data.since.split("-")[0]) : NaN;
      const kind = String(channel).startsWith("private-") ? "private" : String(channel).startsWith("presence-") ? "presence" : "public";
      const code = `${data?.code ?? "unknown"}${data?.reason ? `/${data.reason}` : ""}`;
      sink.resets.push([kind, code, Number.isFinite(since) ? Math.round(t - since) : null, client.i]);
    }
  }

  function status() {
    return {
      clients: opts.clients, connected: sink.connected, up: sink.up, back: sink.back, leavers: sink.leavers,
      down: clients.filter((c) => !c.up && !c.left && c.everConnected).length,
      reconnects: sink.reconnects, reconnect_attempts: sink.reconnectAttempts, disconnects: sink.disconnects,
      subscribe_failures: sink.subscribeFailures, subscribe_refusals: sink.subscribeRefusals, last_back_at: sink.lastBackAt,
      bcast: sink.bcast, bcast_dup: sink.bcastDup, bcast_last_at: sink.bcastLastAt,
      burst: sink.burst, burst_last_at: sink.burstLastAt, presence_subscribed: sink.presenceSubscribed,
      targeted: sink.targeted, dup: sink.dup, dup_sample: sink.dupSample, wrong_user: sink.wrongUser, resets: sink.resets.length,
      connect_errors: sink.connectErrors, disconnect_reasons: sink.disconnectReasons,
      loop_max_ms: Math.round(loopDelay.max / 1e6),
    };
  }

  report("ready", { clients: opts.clients, first: opts.first, homes: opts.homes });
  for (;;) {
    const line = await nextCommand(opts.commandWaitMs);
    if (line === null) throw new Error("no command from the runner");
    const [command, ...args] = line.split(" ");
    if (command === "connect") {
      const t0 = now();
      let next = 0;
      let firstUpFailed = 0;
      const worker = async () => {
        while (next < clients.length) {
          const client = clients[next++];
          if (!(await client.start(opts.connectTimeoutMs))) firstUpFailed++;
        }
      };
      await Promise.all(Array.from({ length: Math.min(opts.concurrency, clients.length) }, worker));
      report("connected", { t0, t1: now(), failed: firstUpFailed, ...status() });
      loopDelay.reset();
    } else if (command === "status") {
      report("status", status());
    } else if (command === "presence") {
      const members = {};
      for (const c of clients) {
        if (c.plan.presence && c.up) (members[c.plan.presence] ||= []).push(c.plan.user);
      }
      report("presence", { members });
    } else if (command === "probe") {
      report("probe", await probe(args[0], opts));
    } else if (command === "final") {
      sink.closing = true;
      const seen = [...sink.seen.keys()];
      for (const c of clients) c.close();
      await delay(200);
      const neverUp = clients.filter((c) => !c.everConnected).map((c) => c.i);
      const wentDown = clients.filter((c) => c.everDown).map((c) => c.plan.user);
      return { scenario: "storm", ...status(), seen, lat: sink.lat, reset_list: sink.resets, never_up: neverUp, back_times: sink.backTimes,
        leaving_users: [...sink.leaving.entries()], went_down: wentDown };
    } else {
      log(`unknown command ${line}`);
    }
  }
}

/**
 * Subscribe one fresh client per presence channel on `url`, 10 at a time (the probe must not be a storm itself);
 * a refused probe (subscription_error, connect_error, timeout) is retried up to 3 times.
 * Resolves {members: channel → member user ids (probes excluded), refusals: {reason: count}}.
 */
async function probe(url, opts) {
  const members = {};
  const refusals = {};
  const one = (channel, k) =>
    new Promise((resolve) => {
      const token = jwt.sign({ sub: `probe${k}`, roles: [] }, opts.jwtSecret, { algorithm: "HS256", expiresIn: 600 });
      const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false, auth: { token } });
      const finish = (reason) => {
        clearTimeout(timer);
        socket.close();
        if (reason) refusals[reason] = (refusals[reason] || 0) + 1;
        resolve(!reason);
      };
      const timer = setTimeout(() => finish("timeout"), 20_000);
      socket.on("presence:subscribed", (ch, list) => {
        if (ch !== channel) return;
        members[channel] = (list || []).map((m) => String(m.user_id)).filter((u) => !u.startsWith("probe"));
        finish(null);
      });
      socket.on("subscription_error", (ch, status, info) => finish(`subscription_error ${status} ${info?.code ?? ""}`.trim()));
      socket.on("connect", () => socket.emit("subscribe", { channel }));
      socket.on("connect_error", (err) => finish(`connect_error ${String(err?.message ?? err).slice(0, 60)}`));
    });
  const channels = Array.from({ length: opts.presenceChannels }, (_, k) => `presence-chat.${k}`);
  for (let k = 0; k < channels.length; k += 10) {
    await Promise.all(
      channels.slice(k, k + 10).map(async (channel, j) => {
        for (let attempt = 0; attempt < 4; attempt++) {
          if (await one(channel, k + j)) return;
          await delay(500 * (attempt + 1));
        }
      }),
    );
  }
  return { members, refusals };
}
