// Subscribing clients to their rooms and proving, with real deliveries, that every client is in its room.
import { waitUntil } from "./control.js";

/** Send `subscribe {channel: roomOf(i)}` from every client in `indices`. */
export function subscribeAll(pool, indices, roomOf) {
  for (const i of indices) pool.sockets[i].emit("subscribe", { channel: roomOf(i) });
}

/**
 * Round-trip a `ping` (with ack) on every client in `indices`; resolves how many did not answer "pong".
 * Sent after the subscribes, it also gives the server time to process them.
 */
export async function pingAll(pool, indices, timeoutMs) {
  const answers = await Promise.all(
    indices.map((i) =>
      pool.sockets[i]
        .timeout(timeoutMs)
        .emitWithAck("ping")
        .then((reply) => reply === "pong")
        .catch(() => false),
    ),
  );
  return answers.filter((ok) => !ok).length;
}

/**
 * Publish a `bench-warmup` event to each room until every client in `indices` has received one
 * (`seen[i]` is set by the pool's `bench-warmup` handler). Clients still missing after a round subscribe again;
 * a retry round that reaches nobody new ends the attempt. Resolves the indices that never received it.
 */
export async function verifyMembership({ pool, indices, roomOf, publisher, seen, rounds = 5, roundTimeoutMs = 5000 }) {
  let missing = indices.filter((i) => !seen[i]);
  for (let round = 1; round <= rounds && missing.length > 0; round++) {
    if (round > 1) subscribeAll(pool, missing.filter((i) => pool.sockets[i] && pool.sockets[i].connected), roomOf);
    const rooms = [...new Set(missing.map(roomOf))];
    // Publish in chunks so a 1,000-room warm-up does not open 1,000 HTTP requests at once.
    for (let k = 0; k < rooms.length; k += 50) {
      await Promise.all(rooms.slice(k, k + 50).map((room) => publisher.publish(room, "bench-warmup", { round })));
    }
    const waiting = missing;
    await waitUntil(() => waiting.every((i) => seen[i]), roundTimeoutMs);
    const before = missing.length;
    missing = missing.filter((i) => !seen[i]);
    // A second round that reaches nobody new means the route does not deliver at all: stop instead of retrying.
    if (round > 1 && missing.length === before) break;
  }
  return missing;
}
