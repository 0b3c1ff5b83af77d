// The load generator's line protocol with the runner: JSON events on stdout, one-word commands on stdin.
import readline from "node:readline";

/** Write one JSON object as a line on stdout (the runner parses every stdout line). */
export function report(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

/** Log a human-readable line on stderr (never parsed). */
export function log(...parts) {
  process.stderr.write(`[loadgen] ${parts.join(" ")}\n`);
}

const pendingLines = [];
const waiters = [];
let stdinClosed = false;

// Read commands only when stdin is a pipe; an interactive/closed stdin falls back to the timeouts.
if (!process.stdin.isTTY) {
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    const waiter = waiters.shift();
    if (waiter) waiter(line.trim());
    else pendingLines.push(line.trim());
  });
  rl.on("close", () => {
    stdinClosed = true;
    while (waiters.length) waiters.shift()(null);
  });
} else {
  stdinClosed = true;
}

/**
 * Wait for the next command line from the runner, at most `timeoutMs`.
 * Resolves the command, or null on timeout / closed stdin (callers then carry on by themselves).
 */
export function nextCommand(timeoutMs) {
  if (pendingLines.length) return Promise.resolve(pendingLines.shift());
  if (stdinClosed) return new Promise((resolve) => setTimeout(() => resolve(null), timeoutMs));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      const idx = waiters.indexOf(done);
      if (idx >= 0) waiters.splice(idx, 1);
      resolve(null);
    }, timeoutMs);
    function done(line) {
      clearTimeout(timer);
      resolve(line);
    }
    waiters.push(done);
  });
}

/** Resolve after `ms` milliseconds. */
export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `predicate` every `stepMs` until it is true or `timeoutMs` passed; resolves whether it became true. */
export async function waitUntil(predicate, timeoutMs, stepMs = 20) {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() >= deadline) return false;
    await delay(stepMs);
  }
  return true;
}

/**
 * Wait until `count()` reaches `target`, giving up once nothing new arrived for `idleMs` or after `maxMs` in all.
 * Late deliveries are thus still counted (a slow server is late, not lossy) without waiting forever for lost ones.
 * Resolves whether the target was reached.
 */
export async function waitForCount(count, target, maxMs, idleMs, stepMs = 20) {
  const start = performance.now();
  let last = count();
  let lastChange = start;
  while (count() < target) {
    const now = performance.now();
    const current = count();
    if (current !== last) {
      last = current;
      lastChange = now;
    }
    if (now - lastChange >= idleMs || now - start >= maxMs) return false;
    await delay(stepMs);
  }
  return true;
}
