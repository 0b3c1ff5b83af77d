// Scenario "latency": clients spread over rooms, a paced stream of emits (HTTP route or Redis PUBLISH) each
// carrying the send time; every client measures publish → receipt latency on the load generator's clock.
import { prepareRooms } from "../lib/rooms.js";
import { report, waitForCount } from "../lib/control.js";
import { summarize, cpuSeconds } from "../lib/stats.js";

export const defaults = {
  clients: 1000,
  rooms: 100,
  rate: 100, // emits per second, each to one room (round-robin)
  duration: 5, // seconds of emitting
  payloadBytes: 100, // padding added to the {ts, seq} payload
  drainMs: 90_000, // longest wait for late deliveries after the last emit
  drainIdleMs: 5_000, // … ending early once none arrived for this long
};

const roomName = (r) => `bench-room-${r}`;

export async function run(opts, addresses) {
  const roomOf = (i) => roomName(i % opts.rooms);
  const totalEmits = Math.round(opts.rate * opts.duration);
  const recvPerSeq = new Uint32Array(totalEmits);
  const maxPerRoom = Math.ceil(opts.clients / opts.rooms);
  const samples = new Float64Array(totalEmits * maxPerRoom);
  let received = 0;
  let lastReceipt = 0;
  // timeline[s] = [deliveries, sum ms, max ms] for the emits sent in second s of the stream
  const timeline = Array.from({ length: Math.ceil(opts.duration) }, () => [0, 0, 0]);
  let t0 = 0;
  let wrongChannel = 0;
  let unexpected = 0;

  const onBench = (i, channel, data) => {
    const now = performance.now();
    if (channel !== roomOf(i)) wrongChannel++;
    if (!data || !Number.isInteger(data.seq) || data.seq >= totalEmits) {
      unexpected++;
      return;
    }
    recvPerSeq[data.seq]++;
    const ms = now - data.ts;
    if (received < samples.length) samples[received] = ms;
    const bucket = timeline[Math.min(timeline.length - 1, Math.max(0, Math.floor((data.ts - t0) / 1000)))];
    bucket[0]++;
    bucket[1] += ms;
    if (ms > bucket[2]) bucket[2] = ms;
    received++;
    lastReceipt = now;
  };
  const setup = await prepareRooms(opts, addresses, roomOf, { bench: onBench });
  const { pool, publisher, members } = setup;

  // members per room among the verified clients: what each emit must reach
  const roomSize = new Uint32Array(opts.rooms);
  for (const i of members) roomSize[i % opts.rooms]++;
  let expected = 0;
  for (let seq = 0; seq < totalEmits; seq++) expected += roomSize[seq % opts.rooms];

  const pad = "x".repeat(opts.payloadBytes);
  report("measure_start", {});
  const cpu0 = process.cpuUsage();
  t0 = performance.now();
  const inflight = [];
  let sent = 0;
  // Pace by deadline: each tick sends what is due by now, so a slow tick catches up instead of drifting.
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(totalEmits, Math.floor(((performance.now() - t0) / 1000) * opts.rate));
      while (sent < due) {
        const seq = sent++;
        inflight.push(publisher.publish(roomName(seq % opts.rooms), "bench", { ts: performance.now(), seq, pad }));
      }
      if (sent >= totalEmits) {
        clearInterval(timer);
        resolve();
      }
    }, 2);
  });
  const sendSeconds = (performance.now() - t0) / 1000;
  await Promise.all(inflight);
  await waitForCount(() => received, expected, opts.drainMs, opts.drainIdleMs);
  const wall = (performance.now() - t0) / 1000;
  const loadgenCpu = cpuSeconds(cpu0);
  report("measure_end", {});

  let duplicates = 0;
  let missing = 0;
  for (let seq = 0; seq < totalEmits; seq++) {
    const want = roomSize[seq % opts.rooms];
    if (recvPerSeq[seq] > want) duplicates += recvPerSeq[seq] - want;
    else missing += want - recvPerSeq[seq];
  }
  const result = {
    scenario: "latency",
    via: opts.via,
    clients: opts.clients,
    rooms: opts.rooms,
    connect: setup.connect,
    members: members.length,
    unverified: setup.unverified.length,
    ping_failures: setup.pongFailures,
    emits_sent: publisher.sent,
    emit_errors: publisher.errors,
    emit_error_samples: publisher.errorSamples,
    send_seconds: Math.round(sendSeconds * 1000) / 1000,
    achieved_rate: Math.round(totalEmits / sendSeconds),
    offered_deliveries_per_s: Math.round(expected / opts.duration),
    // deliveries per second from the first emit to the last receipt: below the offered rate = the server fell behind
    deliveries_per_s: lastReceipt > t0 ? Math.round(received / ((lastReceipt - t0) / 1000)) : null,
    expected,
    received,
    missing,
    duplicates,
    wrong_channel: wrongChannel,
    unexpected,
    dropped: pool.dropped,
    latency: summarize(samples, Math.min(received, samples.length)),
    // per second of sending: how many deliveries, their mean and max latency (shows stalls vs a steady backlog)
    timeline: timeline.map(([n, sum, max], second) => ({ second, n, mean_ms: n ? Math.round(sum / n) : null, max_ms: Math.round(max) })),
    wall_seconds: Math.round(wall * 1000) / 1000,
    loadgen_cpu_seconds: Math.round(loadgenCpu * 1000) / 1000,
  };
  pool.closeAll();
  await publisher.close();
  return result;
}
