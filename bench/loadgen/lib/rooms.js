// Shared set-up of the delivery scenarios: connect the clients, subscribe each to its room, verify membership.
import { poolFor } from "./pool.js";
import { makePublisher } from "./publisher.js";
import { subscribeAll, pingAll, verifyMembership } from "./membership.js";
import { report, log } from "./control.js";

/**
 * Connect `opts.clients` clients, subscribe client i to `roomOf(i)`, check ping acks and prove membership with
 * warm-up deliveries. `handlers` are extra socket listeners (event → (i, ...args)).
 * Resolves {pool, publisher, connect, members, unverified, pongFailures}; `members` are the verified client indices.
 */
export async function prepareRooms(opts, addresses, roomOf, handlers) {
  const seen = new Uint8Array(opts.clients);
  const pool = poolFor(opts, addresses, { ...handlers, "bench-warmup": (i) => (seen[i] = 1) });
  const connect = await pool.grow(opts.clients);
  log(`connected ${connect.connected}/${opts.clients} in ${connect.elapsed_s}s, failed ${connect.failed}`);
  report("connected", connect);
  const live = pool.live();
  subscribeAll(pool, live, roomOf);
  const pongFailures = await pingAll(pool, live, opts.timeoutMs);
  const publisher = await makePublisher(opts);
  const unverified = await verifyMembership({ pool, indices: live, roomOf, publisher, seen });
  const members = live.filter((i) => seen[i]);
  log(`rooms ready: ${members.length} verified members, ${unverified.length} unverified, ${pongFailures} ping failures`);
  // The warm-up used the publisher: reset its counters so the report covers the measured phase only.
  publisher.sent = 0;
  publisher.errors = 0;
  publisher.errorSamples = [];
  return { pool, publisher, connect, members, unverified, pongFailures };
}
