// Publishers the load generator uses to make the server emit: the HTTP emit route, or Laravel-style Redis PUBLISH.
import http from "node:http";

/** POSTs {channel, event, data} to <url>/api/v1/events with the bearer key, over a keep-alive agent. */
export class HttpPublisher {
  constructor(url, apiKey, maxSockets = 64) {
    const u = new URL("/api/v1/events", url);
    this.hostname = u.hostname;
    this.port = Number(u.port);
    this.path = u.pathname;
    this.apiKey = apiKey;
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
    this.sent = 0;
    this.errors = 0; // non-200 answers and transport errors
    this.errorSamples = []; // the first few error texts, for the report
  }

  /** Publish one event; resolves the HTTP status (0 on a transport error). Never rejects. */
  publish(channel, event, data) {
    return this.post({ channel, event, data });
  }

  /** Publish one event to several channels (at most the route's limit) in one request; resolves the status. */
  publishChannels(channels, event, data) {
    return this.post({ channels, event, data });
  }

  post(doc) {
    const body = JSON.stringify(doc);
    this.sent++;
    return new Promise((resolve) => {
      const req = http.request(
        {
          hostname: this.hostname,
          port: this.port,
          path: this.path,
          method: "POST",
          agent: this.agent,
          headers: {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
            ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
          },
        },
        (res) => {
          const chunks = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () => {
            if (res.statusCode !== 200) this.fail(`HTTP ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 200)}`);
            resolve(res.statusCode);
          });
        },
      );
      req.on("error", (err) => {
        this.fail(err.message);
        resolve(0);
      });
      req.end(body);
    });
  }

  fail(text) {
    this.errors++;
    if (this.errorSamples.length < 5) this.errorSamples.push(text);
  }

  async close() {
    this.agent.destroy();
  }
}

/**
 * Publishes like Laravel's RedisBroadcaster: PUBLISH <prefix><channel> '{"event":E,"data":D,"socket":null}'.
 * Use `await RedisPublisher.connect(url, prefix)`.
 */
export class RedisPublisher {
  static async connect(url, prefix) {
    const { createClient } = await import("redis");
    const client = createClient({ url });
    client.on("error", () => {}); // failures surface as rejected publishes, counted below
    await client.connect();
    return new RedisPublisher(client, prefix);
  }

  constructor(client, prefix) {
    this.client = client;
    this.prefix = prefix;
    this.sent = 0;
    this.errors = 0;
    this.errorSamples = [];
  }

  /** Publish one event; resolves the number of Redis subscribers that got it (-1 on error). Never rejects. */
  async publish(channel, event, data) {
    this.sent++;
    try {
      const receivers = await this.client.publish(this.prefix + channel, JSON.stringify({ event, data, socket: null }));
      if (receivers < 1) this.fail(`PUBLISH ${this.prefix}${channel} reached ${receivers} subscribers`);
      return receivers;
    } catch (err) {
      this.fail(err.message);
      return -1;
    }
  }

  fail(text) {
    this.errors++;
    if (this.errorSamples.length < 5) this.errorSamples.push(text);
  }

  async close() {
    await this.client.quit().catch(() => {});
  }
}

/** Build the publisher the options ask for (`via` = "http" | "redis"). */
export async function makePublisher(opts) {
  if (opts.via === "redis") {
    if (!opts.redisUrl) throw new Error("--via redis needs --redis-url");
    return RedisPublisher.connect(opts.redisUrl, opts.redisPrefix);
  }
  if (opts.via !== "http") throw new Error(`--via must be http or redis, not ${opts.via}`);
  return new HttpPublisher(opts.url, opts.apiKey);
}
