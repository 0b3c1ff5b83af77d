// Load generator entry point: `node main.js <idle|latency|fanout|storm|storm-publisher> --url http://127.0.0.1:6001 [options]`.
// Prints JSON lines on stdout (events, then one {"event":"result"}); see lib/control.js for the protocol.
import { parseArgs } from "./lib/args.js";
import { report, log } from "./lib/control.js";
import { sourceAddresses } from "./lib/pool.js";
import * as idle from "./scenarios/idle.js";
import * as latency from "./scenarios/latency.js";
import * as fanout from "./scenarios/fanout.js";
import * as storm from "./scenarios/storm.js";
import * as stormPublisher from "./scenarios/storm_publisher.js";

const SCENARIOS = { idle, latency, fanout, storm, "storm-publisher": stormPublisher };

const COMMON = {
  url: "http://127.0.0.1:6001",
  concurrency: 200, // handshakes in flight
  timeoutMs: 20_000, // per handshake / per ack
  perAddressLimit: 25_000, // connections per source address before spreading over 127.0.0.2…
  sourceAddrs: 0, // force this many source addresses (0 = automatic)
  jwtSecret: "", // when set, every client connects with its own HS256 JWT
  via: "http", // how emits are published: http | redis
  transport: "websocket", // the Engine.IO transport every client uses: websocket | polling (no upgrade)
  apiKey: "",
  redisUrl: "",
  redisPrefix: "laravel_database_",
  maxSeconds: 600, // hard stop for the whole run
};

async function main() {
  const [name, ...rest] = process.argv.slice(2);
  const scenario = SCENARIOS[name];
  if (!scenario) throw new Error(`usage: node main.js <${Object.keys(SCENARIOS).join("|")}> [--option value ...]`);
  const opts = parseArgs(rest, { ...COMMON, ...scenario.defaults });
  // Every run stops by itself: past the deadline the process reports a failure and exits.
  setTimeout(() => {
    report("result", { scenario: name, error: `deadline of ${opts.maxSeconds}s exceeded` });
    process.exit(3);
  }, opts.maxSeconds * 1000).unref();
  const total = opts.clients ?? (opts.steps ? Math.max(...opts.steps.map(Number)) : 0);
  const addresses = sourceAddresses(total, opts.perAddressLimit, opts.sourceAddrs);
  if (addresses.length) log(`source addresses: ${addresses[0]}..${addresses[addresses.length - 1]}`);
  const result = await scenario.run(opts, addresses);
  report("result", { ...result, source_addresses: addresses.length });
}

// Leave only once stdout has been written out: a pipe to the runner is asynchronous once its buffer is full, and a
// large result line (the storm's) was cut at 128 KiB by an early exit. Write callbacks run in order.
const exitAfterFlush = (code) => process.stdout.write("", () => setTimeout(() => process.exit(code), 200));

main().then(
  () => exitAfterFlush(0), // also lets socket closes flush
  (err) => {
    report("result", { error: String((err && err.stack) || err) });
    exitAfterFlush(2);
  },
);
