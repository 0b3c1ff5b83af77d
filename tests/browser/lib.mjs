// Shared scenario helpers: read the parameters pytest sends on stdin, launch Debian's headless Chromium through
// playwright-core, open the Echo test page, call the test's control routes, and print one JSON result line.
//
// Protocol with tests/browser/harness.py: stdin = one JSON object of parameters; stdout's last line = the JSON
// result; exit status 0 = the scenario ran to the end (pytest then asserts on the result), 1 = it failed, with
// {"error": ..., "pages": [...]} as the last line so the failure shows what each page saw.
import { chromium } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

export const params = JSON.parse((await readStdin()) || '{}');

const openPages = [];

export async function launch() {
  // chromiumArgs: extra flags from the test. chromiumEnv: variables added to the browser's environment, e.g. a HOME
  // whose .pki/nssdb trusts a test CA (Chromium on Linux reads trusted roots from the NSS database under $HOME).
  const args = [...CHROMIUM_ARGS, ...(params.chromiumArgs || [])];
  const env = params.chromiumEnv ? { ...process.env, ...params.chromiumEnv } : undefined;
  return chromium.launch({ executablePath: params.chromium || '/usr/bin/chromium', args, env });
}

// POST /control/<action> on the test's page server; pytest performs the action (publish, restart, ...) and answers.
export async function control(action, body = {}) {
  const res = await fetch(`${params.control}/control/${action}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`control ${action} answered ${res.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

// Open the Echo test page at `origin` with the given query parameters; page errors are kept for the result.
export async function openEchoPage(browser, origin, query) {
  return openPage(browser, origin, 'echo.html', query);
}

// Open `pageName` (echo.html, reverb.html) at `origin`; it is ready once it has set window.rt. `errors` collects
// the page's uncaught exceptions; `network` what Chromium reports and page scripts cannot see: failed requests and
// WebSockets with their net:: error (net::ERR_CERT_AUTHORITY_INVALID, ...) and console errors.
export async function openPage(browser, origin, pageName, query) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  const network = [];
  page.on('pageerror', (err) => errors.push(String(err)));
  page.on('requestfailed', (req) => network.push(`request ${req.url()} ${req.failure() ? req.failure().errorText : ''}`));
  page.on('websocket', (ws) => ws.on('socketerror', (err) => network.push(`websocket ${ws.url()} ${err}`)));
  page.on('console', (msg) => {
    if (msg.type() === 'error') network.push(`console ${msg.text()}`);
  });
  openPages.push({ page, errors, network });
  const url = `${origin}/${pageName}?${new URLSearchParams(query)}`;
  await page.goto(url);
  await page.waitForFunction(() => window.rt !== undefined, null, { timeout: 10000 });
  return { context, page, errors, network };
}

// Wait until `fn(arg)` is truthy in the page, failing after `ms` with `what` in the message (deadline, not a sleep).
export async function waitFor(page, fn, arg, ms, what) {
  try {
    await page.waitForFunction(fn, arg, { timeout: ms, polling: 50 });
  } catch (err) {
    throw new Error(`timed out after ${ms} ms waiting for ${what}`);
  }
}

export async function state(page) {
  return page.evaluate(() => window.rt.state());
}

async function pageStates() {
  const states = [];
  for (const { page, errors, network } of openPages) {
    try {
      states.push({ url: page.url(), errors, network, state: await state(page) });
    } catch (err) {
      states.push({ url: page.url(), errors, network, state: null });
    }
  }
  return states;
}

// Run `main(browser)`, print its result (or the error with every page's state) as the last stdout line.
export async function run(main) {
  let browser;
  let code = 0;
  let output;
  try {
    browser = await launch();
    output = await main(browser);
  } catch (err) {
    code = 1;
    output = { error: String(err && err.stack ? err.stack : err), pages: await pageStates() };
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  process.stdout.write(`${JSON.stringify(output)}\n`);
  process.exit(code);
}
