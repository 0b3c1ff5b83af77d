// Summarise an Artillery JSON report (`artillery run -o report.json`): VUs, errors, socketio.response_time.
// Usage: node summarize.mjs <report.json> [--json]. Exit status 1 when any error or failed VU was recorded.
import { readFileSync } from "node:fs";

const [path, flag] = process.argv.slice(2);
const { aggregate } = JSON.parse(readFileSync(path, "utf8"));
const counters = aggregate.counters || {};
const rt = (aggregate.summaries || {})["socketio.response_time"] || null;

// Artillery counts every failure as errors.<message> (connect_error text, "Failed match" for a refused ack,
// "response timeout", ...); vusers.failed counts the VUs that ended on one.
const errors = Object.fromEntries(Object.entries(counters).filter(([k]) => k.startsWith("errors.")).map(([k, v]) => [k.slice(7), v]));
const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
const summary = {
  vusers_created: counters["vusers.created"] || 0,
  vusers_completed: counters["vusers.completed"] || 0,
  vusers_failed: counters["vusers.failed"] || 0,
  emits: counters["socketio.emit"] || 0,
  errors_total: errorCount,
  errors,
  response_time_ms: rt && { min: rt.min, median: rt.median, p95: rt.p95, p99: rt.p99, max: rt.max, count: rt.count },
};
const ok = errorCount === 0 && summary.vusers_failed === 0 && summary.vusers_completed === summary.vusers_created;

if (flag === "--json") {
  console.log(JSON.stringify({ ...summary, ok }));
} else {
  console.log(`VUs: ${summary.vusers_created} created, ${summary.vusers_completed} completed, ${summary.vusers_failed} failed`);
  console.log(`socket.io emits: ${summary.emits}`);
  console.log(`errors: ${errorCount}${errorCount ? " " + JSON.stringify(errors) : ""}`);
  console.log(`connection failures (VUs that never completed): ${summary.vusers_created - summary.vusers_completed}`);
  if (rt) {
    console.log(`socketio.response_time (ms, acked emits): min ${rt.min}, median ${rt.median}, p95 ${rt.p95}, p99 ${rt.p99}, max ${rt.max}`);
  } else {
    console.log("socketio.response_time: no acked emit completed");
  }
  console.log(ok ? "RESULT: ok (zero errors)" : "RESULT: FAILED");
}
process.exit(ok ? 0 : 1);
