// Scenario: the page receives an event, the test kills and restarts the server on the same port, and the page
// reconnects and re-subscribes by itself (laravel-echo 2.x re-subscribes on the Manager's 'reconnect'), then
// receives a new event. The server runs with auto-join off, so only Echo's own re-subscribe can rejoin.
//
// Params: origin, query, deadlineMs.
import { control, openEchoPage, params, run, state, waitFor } from './lib.mjs';

await run(async (browser) => {
  const { page } = await openEchoPage(browser, params.origin, params.query);
  await waitFor(page, () => window.rt.connected, null, params.deadlineMs, 'the socket to connect');
  await page.evaluate(() => window.rt.ready());
  await control('publish', { seq: 1 });
  await waitFor(page, () => window.rt.events.length >= 1, null, params.deadlineMs, 'the first event');

  await control('restart');
  await waitFor(page, () => window.rt.reconnects >= 1 && window.rt.connected, null, params.deadlineMs, 'the page to reconnect');
  // Echo's re-subscribe was emitted from its 'reconnect' handler, registered before ours: the ping goes after it.
  await page.evaluate(() => window.rt.ready());
  await control('publish', { seq: 2 });
  await waitFor(page, () => window.rt.events.length >= 2, null, params.deadlineMs, 'the event after the restart');
  return state(page);
});
