// The operator console in a real browser: Debian's Chromium driven by playwright-core,
// against the real receiver binary (AUDIAN_RECEIVER_BIN, else target/release, else
// target/debug), the real Postgres on 127.0.0.1:5432 (a database of its own, dropped at the
// end) and an HTTP target that fails and then recovers. Screenshots go to screenshots/.
//
//   cd tests/browser && npm ci && npm test

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import AxeBuilder from '@axe-core/playwright';

const ROOT = resolve(import.meta.dirname, '../..');
const SECRET = 'whsec_browser_' + randomBytes(8).toString('hex');
const TOKEN = 'console_' + randomBytes(12).toString('hex');
const DATABASE = 'audian_console_' + randomBytes(4).toString('hex');
const MARKER = 'PAYLOAD-MARKER-' + randomBytes(4).toString('hex');
const SHOTS = join(import.meta.dirname, 'screenshots');
const PATIENCE_MS = 30_000;

const binary = () => {
  for (const candidate of [process.env.AUDIAN_RECEIVER_BIN, 'target/release/audian-receiver', 'target/debug/audian-receiver']) {
    if (candidate && existsSync(resolve(ROOT, candidate))) return resolve(ROOT, candidate);
  }
  throw new Error('no receiver binary: run `cargo build --release` (or set AUDIAN_RECEIVER_BIN)');
};

const psql = (sql, db = DATABASE) =>
  execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', db, '-qAtc', sql], { encoding: 'utf8' }).trim();

/** Waits until `check` returns something truthy, failing with `what` after PATIENCE_MS. */
async function eventually(what, check) {
  const deadline = Date.now() + PATIENCE_MS;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

const freePort = () =>
  new Promise((ok) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });

/** The HTTP target: answers 503 while `failing`, else 200, and counts each event id it took. */
const sink = { failing: true, received: new Map(), server: null, port: 0 };

let receiver;
let receiverLog = '';
let publicPort;
let adminPort;
let browser;
let base;

function post(body) {
  const signature = createHmac('sha256', SECRET).update(body).digest('hex');
  return new Promise((ok, fail) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1', port: publicPort, path: '/webhook', method: 'POST', rejectUnauthorized: false,
        headers: { 'content-type': 'application/json', 'x-audian-signature': signature },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => ok({ status: res.statusCode, text }));
      },
    );
    req.on('error', fail);
    req.end(body);
  });
}

const event = (id, type = 'job.completed') =>
  JSON.stringify({ id, type, created_at: new Date().toISOString(), data: { note: MARKER } });

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  sink.server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (sink.failing) {
        res.writeHead(503).end();
        return;
      }
      const id = JSON.parse(body).id;
      sink.received.set(id, (sink.received.get(id) ?? 0) + 1);
      res.writeHead(200).end();
    });
  });
  await new Promise((ok) => sink.server.listen(0, '127.0.0.1', ok));
  sink.port = sink.server.address().port;
  publicPort = await freePort();
  adminPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'audian-console-'));
  const config = join(dir, 'console.toml');
  writeFileSync(config, `
[server]
listen = "127.0.0.1:${publicPort}"
[admin]
listen = "127.0.0.1:${adminPort}"
[tls]
mode = "self-signed"
[database]
url = "postgres://postgres@127.0.0.1:5432/${DATABASE}"
[forward]
workers = 1
poll_interval_ms = 100
backoff_initial_ms = 100
backoff_max_ms = 300
max_attempts = 2
[[forward.targets]]
name = "billing"
kind = "http"
url = "http://127.0.0.1:${sink.port}/hook"
`);
  receiver = spawn(binary(), ['serve', '--config', config], {
    env: { PATH: process.env.PATH, AUDIAN_WEBHOOK_SECRET: SECRET, AUDIAN_CONSOLE_TOKEN: TOKEN, RUST_LOG: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  receiver.stdout.on('data', (c) => (receiverLog += c));
  receiver.stderr.on('data', (c) => (receiverLog += c));
  base = `http://127.0.0.1:${adminPort}`;
  await eventually('the receiver to be ready', async () => (await fetch(`${base}/readyz`)).ok);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    // playwright gives every launch a fresh, empty user data directory of its own.
  });
});

after(async () => {
  await browser?.close();
  receiver?.kill('SIGTERM');
  await new Promise((ok) => (receiver ? receiver.on('exit', ok) : ok()));
  sink.server?.close();
  try {
    psql(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`, 'postgres');
  } catch {}
});

/** A page that fails the test if any dialog opens (an injected script ran). */
async function newPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('dialog', async (dialog) => {
    await dialog.dismiss();
    assert.fail(`a dialog opened: ${dialog.message()} — injected script ran`);
  });
  return page;
}

async function login(page, token = TOKEN) {
  await page.goto(`${base}/console/login`);
  await page.fill('#token', token);
  await page.click('button[type=submit]');
}

/** Checks a page as every page must be: no payload text, no serious accessibility issue. */
async function inspect(page, name) {
  const html = await page.content();
  assert.ok(!html.includes(MARKER), `${name}: payload text shown while console.show_payloads is false`);
  const axe = await new AxeBuilder({ page }).analyze();
  const bad = axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help}`), [], `${name}: accessibility violations`);
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

const ids = ['evt_b1', 'evt_b2', 'evt_b3'];
const nasty = { id: 'evt_<script>alert(1)</script>', type: 'job."onmouseover=alert(1)' };

test('a wrong token is refused, the right one logs in, and a session that is not live goes back to login', async () => {
  const page = await newPage();
  await login(page, 'not-the-token');
  assert.match(await page.content(), /That token is not right/);
  assert.match(page.url(), /\/console\/login$/);
  await inspect(page, 'login');
  await login(page);
  assert.equal(new URL(page.url()).pathname, '/console');
  // An expired or forged session is unknown to the server: back to login.
  await page.context().clearCookies();
  await page.context().addCookies([{ name: 'audian_console', value: 'ff'.repeat(32), url: `${base}/console` }]);
  await page.goto(`${base}/console`);
  assert.match(page.url(), /\/console\/login$/);
  await page.context().close();
});

test('the overview shows the target go from flowing to dead, with its chart', async () => {
  const page = await newPage();
  await login(page);
  await page.goto(`${base}/console`);
  const row = page.locator('tr', { has: page.locator('a', { hasText: 'billing' }) });
  assert.match(await row.innerText(), /flowing|no lease holder/);
  for (const id of ids) assert.equal((await post(event(id))).status, 200);
  assert.equal((await post(event(nasty.id, nasty.type))).status, 200);
  await eventually('4 dead deliveries on the overview', async () => {
    await page.reload();
    return (await row.locator('td').nth(5).innerText()).trim() === '4';
  });
  assert.equal(await row.locator('svg polyline').count(), 2);
  await inspect(page, 'overview');
  await page.context().close();
});

test('an id and type holding markup render as text on every page', async () => {
  const page = await newPage();
  await login(page);
  await page.goto(`${base}/console/events?type=job.*`);
  assert.ok((await page.locator('th', { hasText: nasty.id }).count()) === 1, 'the id shows as text');
  await inspect(page, 'events');
  await page.click(`a:has-text("${nasty.id}")`);
  assert.equal(await page.locator('h1').innerText(), `Event ${nasty.id}`);
  await inspect(page, 'event');
  await page.goto(`${base}/console/target?name=billing&state=dead`);
  await inspect(page, 'target');
  await page.context().close();
});

test('a POST without or with a wrong CSRF token gets 403 and changes nothing', async () => {
  const page = await newPage();
  await login(page);
  const before = psql("SELECT count(*) FROM forward_retries WHERE state = 'dead'");
  for (const csrf of [undefined, 'wrong']) {
    const form = { name: 'billing', confirm: 'yes', ...(csrf ? { csrf } : {}) };
    const answer = await page.request.post(`${base}/console/target/replay-dead`, { form, maxRedirects: 0 });
    assert.equal(answer.status(), 403);
  }
  assert.equal(psql("SELECT count(*) FROM forward_retries WHERE state = 'dead'"), before);
  await page.context().close();
});

test('replay all dead from the browser delivers each once and the page shows them delivered', async () => {
  sink.failing = false;
  const page = await newPage();
  await login(page);
  await page.goto(`${base}/console/target?name=billing`);
  await page.click('button:has-text("Replay all dead")');
  assert.match(await page.content(), /Replay <strong>4<\/strong> dead deliveries/);
  await inspect(page, 'replay-confirm');
  await page.click('button:has-text("Replay 4 dead deliveries")');
  await eventually('each replayed event received once', () =>
    [...ids, nasty.id].every((id) => sink.received.get(id) === 1));
  await eventually('the target page to show no failures', async () => {
    await page.goto(`${base}/console/target?name=billing`);
    return (await page.content()).includes('No retrying or dead deliveries.');
  });
  await page.goto(`${base}/console/event?id=evt_b1`);
  assert.match(await page.locator('ol.timeline').innerText(), /billing: delivered/);
  await new Promise((r) => setTimeout(r, 1000));
  assert.ok([...ids, nasty.id].every((id) => sink.received.get(id) === 1), 'nothing delivered twice');
  await page.context().close();
});

test('forget from the browser drops the payload, and a re-post of the id is still a duplicate', async () => {
  const page = await newPage();
  await login(page);
  await page.goto(`${base}/console/event?id=evt_b2`);
  await page.click('button:has-text("Forget")');
  await inspect(page, 'forget-confirm');
  await page.fill('#confirm_id', 'evt_b2');
  await page.click('button:has-text("Forget this event")');
  assert.match(await page.content(), /payload dropped/);
  assert.equal(psql("SELECT payload IS NULL FROM events WHERE event_id = 'evt_b2'"), 't');
  const again = await post(event('evt_b2'));
  assert.equal(again.status, 200);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(sink.received.get('evt_b2'), 1, 'the re-post was not forwarded again');
  assert.equal(psql("SELECT count(*) FROM events WHERE event_id = 'evt_b2'"), '1');
  assert.match(receiverLog, /console action/);
  await page.context().close();
});
