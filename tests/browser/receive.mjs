// Scenario: the Echo page connects (with whatever transports/blocking the test chose), subscribes, and receives the
// events pytest publishes when asked through control('publish'). Result: the page's final state.
//
// Params: origin, query (page query), publishes (how many control('publish') calls), deadlineMs.
import { control, openEchoPage, params, run, state, waitFor } from './lib.mjs';

await run(async (browser) => {
  const { page } = await openEchoPage(browser, params.origin, params.query);
  await waitFor(page, () => window.rt.connected, null, params.deadlineMs, 'the socket to connect');
  await page.evaluate(() => window.rt.ready());
  for (let i = 1; i <= params.publishes; i += 1) {
    await control('publish', { seq: i });
    await waitFor(page, (n) => window.rt.events.length >= n, i, params.deadlineMs, `event ${i} to arrive`);
  }
  return state(page);
});
