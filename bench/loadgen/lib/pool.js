// A pool of socket.io-client connections opened with bounded concurrency, spread over loopback source addresses.
import { io } from "socket.io-client";
import jwt from "jsonwebtoken";

/**
 * Source addresses for `n` connections: none (the kernel picks 127.0.0.1) when one address has enough ephemeral
 * ports, else 127.0.0.2 … 127.0.0.(k+1). `forced` > 0 forces k addresses (used by the smoke test).
 */
export function sourceAddresses(n, perAddressLimit, forced = 0) {
  const k = forced > 0 ? forced : n > perAddressLimit ? Math.ceil(n / perAddressLimit) : 0;
  if (k > 250) throw new Error(`${n} connections need ${k} source addresses; at most 250 are used`);
  return Array.from({ length: k }, (_, i) => `127.0.0.${i + 2}`);
}

/** A pool built from the scenario's command-line options (url, concurrency, jwtSecret, timeoutMs). */
export function poolFor(opts, addresses, handlers = {}) {
  const { url, concurrency, jwtSecret, timeoutMs, transport } = opts;
  return new ClientPool({ url, concurrency, addresses, jwtSecret, timeoutMs, handlers, transport });
}

export class ClientPool {
  /**
   * @param {object} opts
   * @param {string} opts.url            server base URL, e.g. http://127.0.0.1:6001
   * @param {number} opts.concurrency    handshakes in flight at once
   * @param {string[]} opts.addresses    source addresses, round-robin (empty = kernel default)
   * @param {string} opts.jwtSecret      when set, every client i connects with a JWT for user `u<i>`
   * @param {number} opts.timeoutMs      per-handshake timeout
   * @param {Record<string, Function>} opts.handlers  event → (clientIndex, ...args) listeners added to every socket
   */
  constructor({ url, concurrency, addresses, jwtSecret, timeoutMs, handlers = {}, transport = "websocket" }) {
    this.url = url;
    this.transport = transport; // "websocket", or "polling" (long-polling only, never upgraded)
    this.concurrency = concurrency;
    this.addresses = addresses;
    this.jwtSecret = jwtSecret;
    this.timeoutMs = timeoutMs;
    this.handlers = handlers;
    this.sockets = []; // sockets[i] = connected socket of client i, or null when it failed
    this.connected = 0;
    this.failed = 0;
    this.dropped = 0; // disconnected after a successful connect (counted while the pool is open)
    this.errors = {}; // errors[message] = count, for connect failures
    this.closing = false;
  }

  /** JWT for client i (user id = "u<i>"), or undefined without a secret. */
  tokenFor(i) {
    if (!this.jwtSecret) return undefined;
    return jwt.sign({ sub: `u${i}`, roles: [] }, this.jwtSecret, { algorithm: "HS256", expiresIn: 3600 });
  }

  /** Open one connection; resolves true once connected, false on connect_error/timeout. */
  connectOne(i, token) {
    return new Promise((resolve) => {
      const socket = io(this.url, {
        transports: [this.transport],
        reconnection: false,
        forceNew: true,
        timeout: this.timeoutMs,
        localAddress: this.addresses.length ? this.addresses[i % this.addresses.length] : undefined,
        auth: token ? { token } : undefined,
      });
      for (const [event, handler] of Object.entries(this.handlers)) {
        socket.on(event, (...args) => handler(i, ...args));
      }
      socket.once("connect", () => {
        this.sockets[i] = socket;
        this.connected++;
        socket.once("disconnect", () => {
          if (!this.closing) this.dropped++;
        });
        resolve(true);
      });
      socket.once("connect_error", (err) => {
        const message = String((err && err.message) || err);
        this.errors[message] = (this.errors[message] || 0) + 1;
        this.sockets[i] = null;
        this.failed++;
        socket.close();
        resolve(false);
      });
    });
  }

  /**
   * Grow the pool to `target` clients with at most `concurrency` handshakes in flight.
   * Tokens are minted before the clock starts so the rate measures handshakes, not JWT signing.
   * Resolves {attempted, connected, failed, elapsed_s, rate_per_s} for this growth step.
   */
  async grow(target) {
    const start = this.sockets.length;
    const tokens = [];
    for (let i = start; i < target; i++) tokens.push(this.tokenFor(i));
    const connectedBefore = this.connected;
    const failedBefore = this.failed;
    let next = start;
    const t0 = performance.now();
    const worker = async () => {
      while (next < target) {
        const i = next++;
        this.sockets.push(undefined); // reserve the slot; filled by connectOne
        await this.connectOne(i, tokens[i - start]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, target - start) }, worker));
    const elapsed = (performance.now() - t0) / 1000;
    const connected = this.connected - connectedBefore;
    return {
      attempted: target - start,
      connected,
      failed: this.failed - failedBefore,
      elapsed_s: Math.round(elapsed * 1000) / 1000,
      rate_per_s: elapsed > 0 ? Math.round(connected / elapsed) : null,
    };
  }

  /** Indices of the clients that are connected now. */
  live() {
    const out = [];
    this.sockets.forEach((s, i) => {
      if (s && s.connected) out.push(i);
    });
    return out;
  }

  /** Close every socket (dropped no longer counts). */
  closeAll() {
    this.closing = true;
    for (const s of this.sockets) if (s) s.close();
  }
}
