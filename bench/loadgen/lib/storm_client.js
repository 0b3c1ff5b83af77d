// One storm client: a socket.io-client socket with its own JWT that subscribes its room (and maybe a presence
// channel), tracks the newest position per channel, and on a lost connection reconnects with socket.io-client's
// default backoff to the next node of the list (at most `concurrency` handshakes in flight per process), presenting its
// positions (realtime_sio's missed-message recovery).
import { io } from "socket.io-client";
import jwt from "jsonwebtoken";

/** Where client `i` lives in the plan: home node, user id, room, presence channel, whether it leaves for good. */
export function layout(i, opts) {
  const home = i % opts.nodes;
  const rank = Math.floor(i / opts.nodes); // this client's rank among its home node's clients
  const presence = opts.presenceEvery > 0 && rank % opts.presenceEvery === 0;
  return {
    home,
    user: `u${i}`,
    room: `room.${i % opts.rooms}`,
    presence: presence ? `presence-chat.${Math.floor(rank / opts.presenceEvery) % opts.presenceChannels}` : null,
    // 1 in 4 presence members of the node that will be killed do not come back: their presence entry must go
    leaver: presence && home === opts.killNode && Math.floor(rank / opts.presenceEvery) % 4 === 0,
  };
}

/** "1700000000000-3" or "1700000000000-3@<epoch>" → [ms, seq, epoch] (or null). */
export function parsePosition(value) {
  if (typeof value !== "string") return null;
  const [id, epoch = ""] = value.split("@", 2);
  const dash = id.indexOf("-");
  if (dash < 1) return null;
  const ms = Number(id.slice(0, dash));
  const seq = Number(id.slice(dash + 1));
  return Number.isFinite(ms) && Number.isFinite(seq) ? [ms, seq, epoch] : null;
}

/** True when position `a` should replace `b`: b unknown, another history epoch, or later in the same one. */
function newer(a, b) {
  const pa = parsePosition(a);
  const pb = parsePosition(b);
  if (!pb) return true;
  if (!pa) return false;
  if (pa[2] !== pb[2]) return true;
  return pa[0] > pb[0] || (pa[0] === pb[0] && pa[1] > pb[1]);
}

/** socket.io-client's reconnection backoff (its `contrib/backo2.js`) with its defaults: 1 s doubling to 5 s, jitter 0.5. */
export class Backoff {
  constructor(min = 1000, max = 5000, factor = 2, jitter = 0.5) {
    Object.assign(this, { min, max, factor, jitter, attempts: 0 });
  }

  duration() {
    let ms = this.min * Math.pow(this.factor, this.attempts++);
    const rand = Math.random();
    const deviation = Math.floor(rand * this.jitter * ms);
    ms = (Math.floor(rand * 10) & 1) === 0 ? ms - deviation : ms + deviation;
    return Math.min(ms, this.max) | 0;
  }

  reset() {
    this.attempts = 0;
  }
}

/** At most `limit` tasks hold a slot at once; the others wait in order. A task gets `release` and must call it once. */
export class Gate {
  constructor(limit) {
    this.limit = limit;
    this.busy = 0;
    this.queue = [];
  }

  run(task) {
    const go = () => {
      this.busy++;
      let released = false;
      task(() => {
        if (released) return;
        released = true;
        this.busy--;
        const next = this.queue.shift();
        if (next) next();
      });
    };
    if (this.busy < this.limit) go();
    else this.queue.push(go);
  }
}

export const now = () => performance.timeOrigin + performance.now(); // wall-clock ms, comparable across processes

export class StormClient {
  /**
   * @param {number} i      global client index (user u<i>)
   * @param {object} opts   the worker's options (urls, nodes, rooms, presence*, killNode, jwtSecret, recovery, ...)
   * @param {object} sink   the worker's shared counters and callbacks
   * @param {number} k      its index among the worker's clients
   */
  constructor(i, opts, sink, k) {
    this.i = i;
    this.k = k;
    this.opts = opts;
    this.sink = sink;
    this.plan = layout(i, opts);
    this.positions = {}; // positions[channel] = newest position seen ("ms-seq")
    this.attempt = 0; // URL rotations since the last connect
    this.everConnected = false;
    this.up = false; // connected and every subscription acknowledged
    this.left = false;
    this.downSince = 0;
    this.backoff = new Backoff(); // socket.io-client's reconnection defaults
    this.waiting = false; // a reconnect is scheduled or waits for a gate slot
    this.slot = null; // the gate slot this client's handshake holds
    this.slotTimer = null; // gives the slot back if the handshake never ends
    this.token = jwt.sign({ sub: this.plan.user, roles: [] }, opts.jwtSecret, { algorithm: "HS256", expiresIn: 7200 });
  }

  channels() {
    const out = [this.plan.room];
    if (this.plan.presence && this.opts.presence) out.push(this.plan.presence);
    return out;
  }

  /** Open the socket (reconnecting with socket.io-client's default backoff); resolves when first up or after `timeoutMs`. */
  start(timeoutMs) {
    const { opts, sink } = this;
    const auth = opts.recovery
      ? (cb) => cb({ token: this.token, positions: { ...this.positions } })
      : { token: this.token };
    const socket = io(opts.urls[this.plan.home], {
      transports: ["websocket"],
      forceNew: true,
      timeout: opts.timeoutMs,
      localAddress: opts.sourceAddress || undefined,
      auth,
      reconnection: false, // reconnect() below: the same backoff, behind this process's handshake gate
    });
    this.socket = socket;
    socket.on("connect", () => {
      this.releaseSlot();
      this.backoff.reset();
      this.onConnect();
    });
    socket.on("disconnect", (reason) => {
      this.onDisconnect(reason);
      // socket.io-client reconnects unless the server or the client itself ended the session
      if (reason !== "io server disconnect" && reason !== "io client disconnect") this.reconnect();
    });
    socket.on("connect_error", (err) => {
      this.releaseSlot();
      // a refused WebSocket handshake (e.g. admission control's 503) shows only in the transport error's description
      const detail = err && err.description && (err.description.message || err.description);
      const text = `${(err && err.message) || err}${detail && typeof detail === "string" ? `: ${detail}` : ""}`.slice(0, 120);
      sink.connectErrors[text] = (sink.connectErrors[text] || 0) + 1;
      this.reconnect(); // a refusal by the server too (socket.io-client would leave that one to the application)
    });
    socket.onAny((event, channel, data, meta) => this.onEvent(event, channel, data, meta));
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.firstUp = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  async onConnect() {
    const { sink, socket } = this;
    if (!this.everConnected) sink.connected++;
    else sink.reconnects++;
    this.everConnected = true;
    this.attempt = 0;
    // Subscribe every channel with an ack; a refused one is retried (a retryable refusal such as recovery_deferred
    // also ends the transport, and the next connect subscribes again).
    let pending = this.channels();
    for (let round = 0; round < 4 && pending.length; round++) {
      if (round > 0) await new Promise((resolve) => setTimeout(resolve, 1000 * round));
      if (!socket.connected) return;
      const acks = await Promise.all(
        pending.map((channel) => socket.timeout(this.opts.timeoutMs).emitWithAck("subscribe", { channel }).catch(() => null)),
      );
      if (!socket.connected) return; // gone meanwhile; the next connect subscribes again
      const refused = [];
      acks.forEach((ack, k) => {
        if (ack && ack.ok) {
          if (typeof ack.position === "string") this.onEvent("subscribe:ack", pending[k], null, { position: ack.position });
          return;
        }
        const code = ack ? String(ack.code ?? ack.status ?? "refused") : "ack_timeout";
        sink.subscribeRefusals[code] = (sink.subscribeRefusals[code] || 0) + 1;
        refused.push(pending[k]);
      });
      pending = refused;
    }
    if (pending.length) sink.subscribeFailures++;
    if (this.up) return;
    this.up = true;
    sink.up++;
    if (this.downSince) {
      sink.back++;
      sink.lastBackAt = Math.max(sink.lastBackAt, now());
      sink.backTimes.push(Math.round(now()));
      this.downSince = 0;
    }
    if (this.firstUp) {
      this.firstUp();
      this.firstUp = null;
    }
  }

  /**
   * The next connection attempt after socket.io-client's backoff delay, once this process's handshake gate has a free
   * slot. After a lost connection each attempt goes to another node: clients of one node spread evenly over the others.
   *
   * socket.io-client's own reconnection starts every due attempt at once. Thousands of clients in one process then
   * start their handshakes in one loop turn; the loop stalls for tens of seconds on 2 shared cores, the handshake
   * timers fire before the servers' answers are read (Node runs timers before I/O), and the clients retry handshakes
   * that had succeeded. Browsers have a loop each: the gate (`concurrency` handshakes in flight, as while connecting)
   * keeps this process's loop as responsive as theirs, and a client's wait for a slot counts in its time to come back.
   */
  reconnect() {
    if (this.waiting || this.left || this.sink.closing) return;
    this.waiting = true;
    setTimeout(() => this.sink.gate.run((release) => {
      this.waiting = false;
      if (this.left || this.sink.closing || this.socket.connected) return release();
      this.slot = release;
      // a backstop: a handshake that ends in neither connect nor connect_error must not keep its slot for ever
      this.slotTimer = setTimeout(() => this.releaseSlot(), 2 * this.opts.timeoutMs);
      if (this.everConnected) {
        const n = this.opts.nodes;
        const step = 1 + ((Math.floor(this.i / n) + this.attempt) % (n - 1 || 1));
        this.attempt++;
        this.socket.io.uri = this.opts.urls[(this.plan.home + step) % n];
        this.sink.reconnectAttempts++;
      }
      this.socket.connect();
    }), this.backoff.duration());
  }

  releaseSlot() {
    const release = this.slot;
    this.slot = null;
    clearTimeout(this.slotTimer);
    if (release) release();
  }

  onDisconnect(reason) {
    const { sink } = this;
    if (sink.closing) return;
    sink.disconnects++;
    sink.disconnectReasons[reason] = (sink.disconnectReasons[reason] || 0) + 1;
    if (this.up) sink.up--;
    this.everDown = true;
    this.up = false;
    if (!this.downSince) this.downSince = now();
    if (this.plan.leaver) {
      this.left = true;
      sink.leavers++;
      this.socket.close(); // leaves for good: its presence entry on the dead node must be reaped
    }
  }

  onEvent(event, channel, data, meta) {
    const position = meta && typeof meta.position === "string" ? meta.position : null;
    if (position && typeof channel === "string" && newer(position, this.positions[channel])) {
      this.positions[channel] = position;
    }
    this.sink.onEvent(this, event, channel, data, meta);
  }

  close() {
    if (this.socket) this.socket.close();
  }
}
