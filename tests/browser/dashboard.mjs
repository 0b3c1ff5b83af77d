// Scenario: an Echo page is connected (private, public and presence channels); an operator signs in to /dashboard
// with the token and sees that page's connection and channel appear. The deadline (deadlineMs, 5 s in the test)
// stands for the "within a second": one snapshot per second plus generous slack for a shared 2-core
// machine; the measured time is reported, not asserted. Then: screenshots (wide and narrow), the session cookie's
// attributes, and refusals of a wrong token (form and HTTP Basic).
//
// Params: origin, query, server, token, wrongToken, screenshot, narrowScreenshot, deadlineMs.
import { control, openEchoPage, params, run, state, waitFor } from './lib.mjs';

await run(async (browser) => {
  const echo = await openEchoPage(browser, params.origin, params.query);
  await waitFor(echo.page, () => window.rt.connected, null, params.deadlineMs, 'the Echo page to connect');
  await echo.page.evaluate(() => window.rt.ready());
  const sid = await echo.page.evaluate(() => window.echo.socketId());

  const operator = await browser.newContext({ viewport: { width: 1180, height: 900 } });
  const dash = await operator.newPage();
  const dashErrors = [];
  dash.on('pageerror', (err) => dashErrors.push(String(err)));
  dash.on('console', (msg) => {
    if (msg.type() === 'error') dashErrors.push(msg.text());
  });

  const loginPage = await dash.goto(`${params.server}/dashboard`);
  const loginStatus = loginPage.status();
  await dash.fill('#token', params.token);
  const [afterLogin] = await Promise.all([dash.waitForNavigation(), dash.click('button[type=submit]')]);
  const dashboardStatus = afterLogin ? afterLogin.status() : null;

  const shownAt = Date.now();
  await waitFor(
    dash,
    ([socketId, channel]) =>
      document.querySelector(`#connections-table tr[data-key="${socketId}"]`) !== null &&
      document.querySelector(`#channels-table tr[data-key="${channel}"]`) !== null,
    [sid, params.expectChannel],
    params.deadlineMs,
    `the dashboard to show socket ${sid} and channel ${params.expectChannel}`,
  );
  const appearedMs = Date.now() - shownAt;

  // Some traffic so the delivery panels show numbers in the screenshot.
  for (let i = 1; i <= 3; i += 1) await control('publish', { seq: i });
  await waitFor(echo.page, () => window.rt.events.length >= 3, null, params.deadlineMs, 'the page to receive 3 events');
  await waitFor(dash, () => document.getElementById('deliveries-total').textContent !== '0' && document.getElementById('deliveries-total').textContent !== '–' && document.getElementById('latency-p50').textContent !== '–', null, params.deadlineMs, 'deliveries to show');

  const rows = await dash.evaluate(() => ({
    open: document.getElementById('connections-open').textContent,
    stream: document.getElementById('stream-state').textContent,
    redis: document.getElementById('redis-state').textContent,
    channels: [...document.querySelectorAll('#channels-table tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent)),
    connections: [...document.querySelectorAll('#connections-table tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent)),
    errors: [...document.querySelectorAll('#errors-table tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent)),
    deliveriesTotal: document.getElementById('deliveries-total').textContent,
    latencyP50: document.getElementById('latency-p50').textContent,
  }));
  await dash.screenshot({ path: params.screenshot, fullPage: true });

  await dash.setViewportSize({ width: 360, height: 740 });
  await dash.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
  const narrow = await dash.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  await dash.screenshot({ path: params.narrowScreenshot, fullPage: true });

  const cookies = (await operator.cookies()).map((c) => ({
    name: c.name,
    httpOnly: c.httpOnly,
    sameSite: c.sameSite,
    path: c.path,
    holdsToken: c.value.includes(params.token),
  }));

  // A wrong token through the form, and through HTTP Basic, in a fresh context without the session cookie.
  const stranger = await browser.newContext();
  const wrong = await stranger.newPage();
  await wrong.goto(`${params.server}/dashboard`);
  await wrong.fill('#token', params.wrongToken);
  const [wrongResponse] = await Promise.all([wrong.waitForNavigation(), wrong.click('button[type=submit]')]);
  const wrongForm = {
    status: wrongResponse ? wrongResponse.status() : null,
    message: await wrong.textContent('#login-message'),
    dashboardShown: (await wrong.$('#connections-table')) !== null,
  };
  const basic = Buffer.from(`admin:${params.wrongToken}`).toString('base64');
  const wrongBasic = await stranger.request.get(`${params.server}/dashboard/snapshot.json`, {
    headers: { Authorization: `Basic ${basic}` },
  });
  const noCredential = await stranger.request.get(`${params.server}/dashboard/stream`);

  return {
    sid,
    loginStatus,
    dashboardStatus,
    appearedMs,
    rows,
    narrow,
    cookies,
    dashErrors,
    wrongForm,
    wrongBasicStatus: wrongBasic.status(),
    noCredentialStreamStatus: noCredential.status(),
    echo: await state(echo.page),
  };
});
