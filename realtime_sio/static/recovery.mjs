// realtime_sio missed-message recovery for socket.io-client 4 and Laravel Echo's socket.io connector.
//
//   import { trackPositions } from "/client/recovery.mjs";        // served by realtime_sio itself
//   const tracker = trackPositions(socket, { onReset: (channel) => reloadState(channel) });
//   // Laravel Echo: trackPositions(window.Echo.connector.socket, { ... })
//
// Every event realtime_sio broadcasts carries a 4th argument {position}, and every join (a subscribe, the automatic
// user/role rooms) is followed by `recovery:position` (channel, null, {position}), so a channel has a position even
// before its first event. The tracker remembers the newest position per channel and, whenever the socket
// (re)connects, sends them in the handshake as auth.positions. The server then replays what the client missed, in
// order and exactly once, before new events: Echo's own re-subscribe after a reconnect (and the automatic user/role
// rooms) pick those positions up. When the server's history no longer reaches back it emits `recovery:reset`
// (channel, {code, reason}) instead, followed by a fresh `recovery:position`, and `onReset` should reload that
// channel's state. Positions are opaque strings ("<ms>-<seq>@<epoch>"): keep them as they arrive.
//
// Delivery latency (acknowledge, on by default): the tracker also tells the server, in the handshake
// (auth.latency = true), that this page acknowledges sampled deliveries. The server picks a small share of them
// (REALTIME_SIO_DELIVERY_ACK_SAMPLE_RATE) and adds `ack: <id>` to their last argument ({position, ack}); the tracker
// answers `latency:ack` (id) at once, and the server measures acceptance → acknowledgement on its own clock. Pass
// { acknowledge: false } to opt out.

const DEFAULT_LIMIT = 100; // the server refuses more positions than REALTIME_SIO_MAX_SUBSCRIPTIONS (default 100)

export function trackPositions(socket, { onReset = () => {}, limit = DEFAULT_LIMIT, acknowledge = true } = {}) {
  const positions = new Map(); // channel -> newest position seen; insertion order = least recently updated first
  const original = socket.auth;

  socket.onAny((event, channel, _data, meta) => {
    if (acknowledge && meta && Number.isSafeInteger(meta.ack)) socket.emit("latency:ack", meta.ack);
    if (typeof channel !== "string" || !meta || typeof meta.position !== "string") return;
    positions.delete(channel);
    positions.set(channel, meta.position);
    while (positions.size > limit) positions.delete(positions.keys().next().value);
  });

  socket.on("recovery:reset", (channel, info) => {
    positions.delete(channel);
    onReset(channel, info);
  });

  // socket.io-client calls a function-valued `auth` before every (re)connection.
  socket.auth = (callback) => {
    const withPositions = (base) =>
      callback({ ...(base || {}), positions: Object.fromEntries(positions), ...(acknowledge ? { latency: true } : {}) });
    if (typeof original === "function") original(withPositions);
    else withPositions(original);
  };

  return {
    positions: () => Object.fromEntries(positions),
    forget: (channel) => positions.delete(channel),
  };
}
