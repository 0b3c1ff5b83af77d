// Scenario "idle": connect clients in steps (e.g. 1k, 10k, 100k) and hold them idle while the runner reads the
// server's RSS; reports the handshake rate and failures of each step.
import { poolFor } from "../lib/pool.js";
import { nextCommand, report, log, delay } from "../lib/control.js";

export const defaults = {
  steps: ["1000"], // cumulative connection counts
  stepWaitMs: 60_000, // how long to hold each step when the runner sends no "next"
  warmup: 0, // connect and close this many clients first, so neither server is measured cold (JIT, lazy imports)
};

export async function run(opts, addresses) {
  const pool = poolFor(opts, addresses);
  if (opts.warmup > 0) {
    const warm = poolFor(opts, addresses);
    const growth = await warm.grow(opts.warmup);
    warm.closeAll();
    await delay(500); // let the server process the disconnects before the runner reads its baseline
    report("warm", { n: opts.warmup, connected: growth.connected });
    await nextCommand(opts.stepWaitMs);
  }
  const steps = opts.steps.map(Number);
  const stepResults = [];
  let totalConnectSeconds = 0;
  for (const target of steps) {
    const growth = await pool.grow(target);
    totalConnectSeconds += growth.elapsed_s;
    const step = { n: target, ...growth, connected_total: pool.connected, failed_total: pool.failed, dropped: pool.dropped };
    stepResults.push(step);
    log(`step ${target}: +${growth.connected} in ${growth.elapsed_s}s (${growth.rate_per_s}/s), failed ${growth.failed}`);
    report("step", step);
    const command = await nextCommand(opts.stepWaitMs); // the runner samples RSS, then says "next"
    if (command === "stop") break;
  }
  const result = {
    scenario: "idle",
    steps: stepResults,
    connected: pool.connected,
    failed: pool.failed,
    dropped: pool.dropped,
    still_connected: pool.live().length,
    connect_seconds: Math.round(totalConnectSeconds * 1000) / 1000,
    connect_rate_per_s: totalConnectSeconds > 0 ? Math.round(pool.connected / totalConnectSeconds) : null,
    errors: pool.errors,
  };
  pool.closeAll();
  return result;
}
