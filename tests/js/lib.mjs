// Shared helpers of the Node scripts the pytest suite drives.

// Resolve once predicate() is true; throw after timeoutMs with the observations so far in the message.
export async function until(label, predicate, observed, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${label}: ${JSON.stringify(observed)}`);
}

// POST one event to realtime_sio's sidecar route; throws unless it answered 200.
export async function postEvent(url, apiKey, channel, event, data) {
  const res = await fetch(`${url}/api/v1/events`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ channel, event, data }),
  });
  if (res.status !== 200) throw new Error(`sidecar answered ${res.status}: ${await res.text()}`);
}
