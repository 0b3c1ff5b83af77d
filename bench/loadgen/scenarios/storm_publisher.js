// Scenario "storm-publisher": the application side of the cluster storm (bench/storm.py). It POSTs to
// /api/v1/events round-robin over the live nodes, as Laravel behind a load balancer would.
//
// stdin commands, JSON-line answers:
//   broadcast <r>  → one "bcast" event (round r) to every room (100 channels per POST); report "broadcast" {t0, t1, errors}
//   burst <n>      → n "burst" events to every room, all POSTs at once (fan-out CPU under load); report "burst" {t0, t1, …}
//   stream         → start targeted events at --rate/s: event seq goes to private-user.u<seq % users>, data {ts, seq}
//   dead <node>    → stop sending to that node (the runner kills it next); report "dead"
//   stop           → stop the stream, wait for answers; report "stopped" {accepted: [seq, ...], errors, …}
//   quit           → exit
// A publish that fails (transport error, non-200) is retried on the next live node, up to 3 times, like a queue
// worker would; one that never succeeds is not expected at any client.
import { HttpPublisher } from "../lib/publisher.js";
import { nextCommand, report, log, delay } from "../lib/control.js";
import { now } from "../lib/storm_client.js";

export const defaults = {
  urls: [],
  users: 100, // targeted users u0 … u<users-1>
  rooms: 1000,
  rate: 500, // targeted events per second
  commandWaitMs: 900_000,
  retries: 3,
};

export async function run(opts) {
  const publishers = opts.urls.map((url) => new HttpPublisher(url, opts.apiKey, 32));
  const live = opts.urls.map(() => true);
  let turn = 0;
  const pick = () => {
    for (let k = 0; k < live.length; k++) {
      const node = turn++ % live.length;
      if (live[node]) return node;
    }
    throw new Error("no live node left");
  };
  const statuses = {}; // statuses["HTTP 503" | "transport"] = count, over every attempt
  async function publish(channel, event, data) {
    for (let attempt = 0; attempt <= opts.retries; attempt++) {
      const status = await publishers[pick()].publish(channel, event, data);
      if (status === 200) return true;
      const key = status === 0 ? "transport" : `HTTP ${status}`;
      statuses[key] = (statuses[key] || 0) + 1;
      await delay(50 * (attempt + 1));
    }
    return false;
  }

  let streaming = null;
  const accepted = [];
  const answered = []; // [send ts, ms until the (last) answer] per targeted event
  let failed = 0;
  let sent = 0;
  const inflight = new Set();
  report("ready", {});
  for (;;) {
    const line = await nextCommand(opts.commandWaitMs);
    if (line === null) throw new Error("no command from the runner");
    const [command, arg] = line.split(" ");
    if (command === "broadcast") {
      const t0 = now();
      const rooms = Array.from({ length: opts.rooms }, (_, k) => `room.${k}`);
      const posts = [];
      const round = Number(arg) || 0;
      for (let k = 0; k < rooms.length; k += 100) posts.push(publishMany(rooms.slice(k, k + 100), "bcast", { ts: t0, round }));
      const oks = await Promise.all(posts);
      report("broadcast", { t0, t1: now(), posts: oks.length, failed: oks.filter((ok) => !ok).length });
    } else if (command === "burst") {
      const t0 = now();
      const rooms = Array.from({ length: opts.rooms }, (_, k) => `room.${k}`);
      const posts = [];
      const events = Number(arg) || 1;
      for (let n = 0; n < events; n++) {
        for (let k = 0; k < rooms.length; k += 100) posts.push(publishMany(rooms.slice(k, k + 100), "burst", { ts: t0, n }));
      }
      const oks = await Promise.all(posts);
      report("burst", { t0, t1: now(), posts: oks.length, failed: oks.filter((ok) => !ok).length });
    } else if (command === "stream") {
      const t0 = now();
      streaming = setInterval(() => {
        const due = Math.floor(((now() - t0) / 1000) * opts.rate);
        while (sent < due) {
          const seq = sent++;
          const ts = now();
          const p = publish(`private-user.u${seq % opts.users}`, "t", { ts, seq }).then((ok) => {
            if (ok) accepted.push(seq);
            else failed++;
            answered.push([Math.round(ts), Math.round((now() - ts) * 100) / 100]); // until the node answered
            inflight.delete(p);
          });
          inflight.add(p);
        }
      }, 2);
      report("streaming", { t0 });
    } else if (command === "dead") {
      live[Number(arg)] = false;
      report("dead", { node: Number(arg) });
    } else if (command === "stop") {
      clearInterval(streaming);
      const t1 = now();
      await Promise.all([...inflight]);
      report("stopped", { t1, sent, accepted, failed, statuses, answered });
    } else if (command === "quit") {
      for (const p of publishers) await p.close();
      return { scenario: "storm-publisher", sent, failed };
    } else {
      log(`unknown command ${line}`);
    }
  }

  /** One event to up to 100 channels in one POST (the route's limit). */
  async function publishMany(channels, event, data) {
    for (let attempt = 0; attempt <= opts.retries; attempt++) {
      const status = await publishers[pick()].publishChannels(channels, event, data);
      if (status === 200) return true;
      await delay(50 * (attempt + 1));
    }
    return false;
  }
}
