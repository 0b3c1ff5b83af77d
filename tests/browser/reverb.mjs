// Scenario: the Reverb Echo page (pusher-js) connects to realtime_sio's /app/{key}, subscribes its public and
// private channels (the private one authorised by the page's /broadcasting/auth), then receives the events pytest
// publishes when asked through control('publish'). Result: the page's final state.
//
// Params: origin, query (page query), channels (how many subscriptions to wait for), events, deadlineMs.
import { control, openPage, params, run, state, waitFor } from './lib.mjs';

await run(async (browser) => {
  const { page } = await openPage(browser, params.origin, 'reverb.html', params.query);
  await waitFor(page, () => window.rt.connected, null, params.deadlineMs, 'pusher-js to connect');
  await waitFor(page, (n) => window.rt.subscribed.length >= n, params.channels, params.deadlineMs, 'the subscriptions');
  await control('publish');
  await waitFor(page, (n) => window.rt.events.length >= n, params.events, params.deadlineMs, 'the events');
  return state(page);
});
