// Scenario: the same Echo page from two origins against one server. The allowed origin connects and receives an
// event; the other origin is refused by the server's CORS check and never connects.
//
// Params: allowedOrigin, otherOrigin, query, deadlineMs.
import { control, openEchoPage, params, run, state, waitFor } from './lib.mjs';

await run(async (browser) => {
  const allowed = await openEchoPage(browser, params.allowedOrigin, params.query);
  const other = await openEchoPage(browser, params.otherOrigin, params.query);
  await waitFor(allowed.page, () => window.rt.connected, null, params.deadlineMs, 'the allowed origin to connect');
  await allowed.page.evaluate(() => window.rt.ready());
  await control('publish', { seq: 1 });
  await waitFor(allowed.page, () => window.rt.events.length >= 1, null, params.deadlineMs, 'the event on the allowed origin');
  // The refused page retries with back-off; two refusals show it is not a one-off while the allowed one works.
  await waitFor(other.page, () => window.rt.connectErrors.length >= 2, null, params.deadlineMs, 'the other origin to be refused twice');
  // What the browser itself reports for a cross-origin handshake request (CORS blocks the response).
  const probe = await other.page.evaluate(async (server) => {
    try {
      const res = await fetch(`${server}/socket.io/?EIO=4&transport=polling`);
      return { status: res.status };
    } catch (err) {
      return { blocked: String(err) };
    }
  }, params.query.server);
  return { allowed: await state(allowed.page), other: await state(other.page), otherProbe: probe };
});
