// Scenario "fanout": every client in one room; repeated broadcasts to it, one after another (the next is sent
// when the server has answered the previous emit). Reports deliveries per second and per-broadcast spread.
import { prepareRooms } from "../lib/rooms.js";
import { report, waitForCount } from "../lib/control.js";
import { summarize, cpuSeconds } from "../lib/stats.js";

export const defaults = {
  clients: 1000,
  broadcasts: 20,
  payloadBytes: 100,
  drainMs: 90_000, // longest wait for the last deliveries
  drainIdleMs: 5_000, // … ending early once none arrived for this long
};

const ROOM = "bench-fanout";

export async function run(opts, addresses) {
  const recv = new Uint32Array(opts.broadcasts);
  const sentAt = new Float64Array(opts.broadcasts);
  const lastAt = new Float64Array(opts.broadcasts);
  const samples = new Float64Array(opts.broadcasts * opts.clients);
  let received = 0;
  let wrongChannel = 0;
  let unexpected = 0;
  const onBench = (i, channel, data) => {
    const now = performance.now();
    if (channel !== ROOM) wrongChannel++;
    if (!data || !Number.isInteger(data.seq) || data.seq >= opts.broadcasts) {
      unexpected++;
      return;
    }
    recv[data.seq]++;
    lastAt[data.seq] = now;
    if (received < samples.length) samples[received] = now - data.ts;
    received++;
  };
  const setup = await prepareRooms(opts, addresses, () => ROOM, { bench: onBench });
  const { pool, publisher, members } = setup;
  const expected = members.length * opts.broadcasts;

  const pad = "x".repeat(opts.payloadBytes);
  report("measure_start", {});
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let seq = 0; seq < opts.broadcasts; seq++) {
    sentAt[seq] = performance.now();
    await publisher.publish(ROOM, "bench", { ts: sentAt[seq], seq, pad });
  }
  await waitForCount(() => received, expected, opts.drainMs, opts.drainIdleMs);
  const loadgenCpu = cpuSeconds(cpu0);
  report("measure_end", {});

  let end = t0;
  let duplicates = 0;
  let missing = 0;
  const spreads = new Float64Array(opts.broadcasts);
  for (let seq = 0; seq < opts.broadcasts; seq++) {
    end = Math.max(end, lastAt[seq]);
    spreads[seq] = lastAt[seq] - sentAt[seq];
    if (recv[seq] > members.length) duplicates += recv[seq] - members.length;
    else missing += members.length - recv[seq];
  }
  const seconds = (end - t0) / 1000;
  const result = {
    scenario: "fanout",
    via: opts.via,
    clients: opts.clients,
    connect: setup.connect,
    members: members.length,
    unverified: setup.unverified.length,
    ping_failures: setup.pongFailures,
    broadcasts: opts.broadcasts,
    emit_errors: publisher.errors,
    emit_error_samples: publisher.errorSamples,
    expected,
    received,
    missing,
    duplicates,
    wrong_channel: wrongChannel,
    unexpected,
    dropped: pool.dropped,
    seconds: Math.round(seconds * 1000) / 1000,
    deliveries_per_s: seconds > 0 ? Math.round(received / seconds) : null,
    broadcast_complete: summarize(spreads, opts.broadcasts), // emit → last member's receipt, per broadcast
    latency: summarize(samples, Math.min(received, samples.length)),
    loadgen_cpu_seconds: Math.round(loadgenCpu * 1000) / 1000,
  };
  pool.closeAll();
  await publisher.close();
  return result;
}
