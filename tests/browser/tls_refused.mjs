// Scenario: the Echo page tries to connect to a server whose certificate this Chromium does not trust. Waits (up to
// deadlineMs) until Chromium reports a failed request or WebSocket to the server, or the socket connects.
// Result: {connected, network: what Chromium reported (net::ERR_CERT_... for a certificate refusal)}.
//
// Params: origin, query (page query; query.server is the TLS server), deadlineMs.
import { openEchoPage, params, run } from './lib.mjs';

await run(async (browser) => {
  const { page, network } = await openEchoPage(browser, params.origin, params.query);
  const server = new URL(params.query.server).host;
  const refused = () => network.some((line) => line.includes(server));
  const deadline = Date.now() + params.deadlineMs;
  let connected = false;
  while (!refused() && !connected && Date.now() < deadline) {
    connected = await page.evaluate(() => window.rt.connected);
    if (!connected) await page.waitForTimeout(50); // polls Playwright's events with a deadline, not a fixed wait
  }
  return { connected, network };
});
