// The teaching dashboard of `scalegram serve --dashboard`, in headless Chromium (Debian's, driven by
// playwright-core): the diagram and the plots render and update; "kill" on a cache node shows it
// down, marks the event, and its hit ratio series drops to 0; the values plotted equal the
// service's telemetry for the same seconds; the page loads nothing from outside and logs no error.
// The dashboard's own server: the key buys a cookie, nothing answers without one, actions are
// same-origin JSON only. Skipped with a message when /usr/bin/chromium is absent, except under
// CI=true, where its absence fails.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomSecret } from '../sim/domain/credentials.ts';

const CHROMIUM = '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
const ci = process.env.CI === 'true';
if (!present && !ci) process.stderr.write(`dashboard-browser: skipped — ${CHROMIUM} is not installed (apt-get install chromium); under CI=true this fails\n`);

const TOKEN = randomSecret();
const tmp = mkdtempSync(join(tmpdir(), 'scalegram-dashboard-'));
let serve: ChildProcess;
let api = '';
let dashboardUrl = '';
let context: BrowserContext | null = null;
let page: Page;
const pageErrors: string[] = [];
const outside: string[] = [];
let reading = true;
let readLoop: Promise<void> = Promise.resolve();

/** What the page keeps on window.__dashboard (dashboard/page/app.js). */
interface PageState {
  state: { frames: number; lastFrame: { telemetry: { nowMs: number } } | null };
  charts: Record<string, { series: Map<string, Map<number, number | null>> }>;
  events: Map<string, { t: number; kind: string; label: string }>;
}
// Functions, not strings, go to the page: its content security policy refuses eval, and this
// project type-checks without the DOM library (hence globalThis).
type Doc = { querySelectorAll(s: string): Iterable<{ width: number; height: number }> };

async function admin(path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(api + path, { method: body === undefined ? 'GET' : 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  expect(res.status, path).toBe(200);
  return res.json();
}

describe.skipIf(!present && !ci)('scalegram serve --dashboard', () => {
  beforeAll(async () => {
    if (!present) throw new Error(`${CHROMIUM} is missing, and CI=true requires the browser test to run (.ci/run installs chromium)`);
    serve = spawn(process.execPath, ['bin/scalegram.mjs', 'serve', '--port', '0', '--seed', '1', '--rate-limit', '0', '--admin-token', TOKEN, '--dashboard'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve --dashboard did not start: ${out}`)), 60_000);
      serve.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (/dashboard: http/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      let err = '';
      serve.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      serve.on('exit', (code, signal) => reject(new Error(`serve exited (code ${code}, signal ${signal}): ${out}${err}`)));
    });
    api = /listening on (http:\/\/[^ ]+) /.exec(out)![1]!;
    dashboardUrl = /dashboard: (http:\/\/\S+)/.exec(out)![1]!;
    // A population whose feeds the reads below hit the cache for.
    await admin('/_sim/seed', { users: 300, avgFollows: 10, mediaPerUser: 2, warmCaches: true });
    const users = ((await admin('/_sim/users?limit=50')) as { users: Array<{ access_token: string }> }).users;
    readLoop = (async () => {
      for (let i = 0; reading; i++) {
        const u = users[i % users.length]!;
        await fetch(`${api}/v1/users/self/feed?access_token=${u.access_token}`).then((r) => r.arrayBuffer());
        if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();
    context = await chromium.launchPersistentContext(join(tmp, 'user-data'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
      viewport: { width: 1280, height: 720 },
    });
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') pageErrors.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    const origin = new URL(dashboardUrl).origin;
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(origin)) return route.continue();
      outside.push(url);
      return route.abort();
    });
  }, 120_000);

  afterAll(async () => {
    reading = false;
    await readLoop.catch(() => undefined);
    await context?.close();
    serve?.kill('SIGTERM');
    rmSync(tmp, { recursive: true, force: true });
  });

  it('without its key nothing answers; a wrong key is refused; the key buys a cookie and leaves the address bar', async () => {
    const base = new URL(dashboardUrl).origin;
    expect((await fetch(`${base}/`)).status).toBe(401);
    expect((await fetch(`${base}/events`)).status).toBe(401);
    expect((await fetch(`${base}/actions`, { method: 'POST', body: '{}' })).status).toBe(401);
    expect((await fetch(`${base}/?key=${randomSecret()}`, { redirect: 'manual' })).status).toBe(403);
    const ok = await fetch(dashboardUrl, { redirect: 'manual' });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/');
    expect(ok.headers.get('set-cookie')).toMatch(/^sg_dashboard=[A-Za-z0-9_-]+; HttpOnly; SameSite=Strict; Path=\/$/);
    const cookie = ok.headers.get('set-cookie')!.split(';')[0]!;
    const html = await fetch(`${base}/`, { headers: { cookie } });
    expect(html.status).toBe(200);
    expect(html.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    // Actions: same origin, JSON, known names, each with what it needs.
    const post = (body: string, headers: Record<string, string> = {}) => fetch(`${base}/actions`, { method: 'POST', headers: { cookie, 'content-type': 'application/json', ...headers }, body });
    expect((await post('{"action":"cache.kill","node":"cache-0"}', { origin: 'http://evil.example' })).status).toBe(403);
    expect((await post('not json')).status).toBe(400);
    expect((await post('{"action":"rm -rf"}')).status).toBe(400);
    expect((await post('{"action":"cache.kill"}')).status).toBe(400);
    expect((await post('{"action":"db.lag","value":-1}')).status).toBe(400);
  });

  it('renders the diagram and five plots (no per-route ones: serve has no load of its own), and updates them every second', async () => {
    await page.goto(dashboardUrl);
    expect(new URL(page.url()).search).toBe('');
    await page.waitForFunction(() => ((globalThis as unknown as { __dashboard?: PageState }).__dashboard?.state.frames ?? 0) >= 2, null, { timeout: 30_000 });
    expect(await page.locator('#db .node[data-node]').count()).toBe(12);
    expect(await page.locator('#cache .node[data-node]').count()).toBe(6);
    expect(await page.locator('#plots canvas').count()).toBe(5);
    const sizes = await page.evaluate(() => [...(globalThis as unknown as { document: Doc }).document.querySelectorAll('#plots canvas')].map((c) => [c.width, c.height] as [number, number]));
    for (const [w, h] of sizes) expect(w * h).toBeGreaterThan(0);
    const before = await page.evaluate(() => (globalThis as unknown as { __dashboard: PageState }).__dashboard.state.frames);
    await page.waitForFunction((n) => (globalThis as unknown as { __dashboard: PageState }).__dashboard.state.frames >= n, before + 2, { timeout: 15_000 });
    expect(await page.locator('#world').textContent()).toMatch(/2012-sharded · seed 1 · generation 1/);
  }, 60_000);

  it('"kill" on cache-2 shows the node down, marks the event, and its hit ratio drops to 0', async () => {
    // Reads have hit cache-2 first.
    await page.waitForFunction(
      () => {
        const s = (globalThis as unknown as { __dashboard: PageState }).__dashboard.charts.hit!.series.get('cache-2');
        return s !== undefined && [...s.values()].some((v) => v !== null && v > 0.5);
      },
      null,
      { timeout: 30_000 },
    );
    await page.click('#cache .node[data-node="cache-2"] button');
    await page.waitForSelector('#cache .node.down[data-node="cache-2"]', { timeout: 15_000 });
    await page.waitForSelector('#events li.event[data-kind="cache_kill"]', { timeout: 15_000 });
    expect(await page.locator('#events li.event').first().textContent()).toMatch(/cache-2 killed/);
    // The series' newest points (after the kill's second) are 0: a dead node hits nothing.
    await page.waitForFunction(
      () => {
        const d = (globalThis as unknown as { __dashboard: PageState }).__dashboard;
        const s = d.charts.hit!.series.get('cache-2')!;
        const kill = [...d.events.values()][0]!.t / 1000;
        const after = [...s.entries()].filter(([t]) => t > kill + 1);
        return after.length >= 2 && after.every(([, v]) => v === 0);
      },
      null,
      { timeout: 30_000 },
    );
    // The button now revives it.
    expect(await page.locator('#cache .node[data-node="cache-2"] button').textContent()).toBe('revive');
  }, 90_000);

  it('plots, for each second, the value the service’s telemetry has for it', async () => {
    const { plotted, readAtMs } = await page.evaluate(() => {
      const d = (globalThis as unknown as { __dashboard: PageState }).__dashboard;
      return { plotted: Object.fromEntries([...d.charts.hit!.series].map(([n, s]) => [n, [...s.entries()]])), readAtMs: d.state.lastFrame!.telemetry.nowMs };
    });
    const telemetry = (await admin('/_sim/telemetry')) as { nowMs: number; bucketMs: number; caches: { nodes: Array<{ name: string; hitRatioOverTime: Array<[number, number]> }> } };
    let compared = 0;
    for (const node of telemetry.caches.nodes) {
      const truth = new Map(node.hitRatioOverTime.map(([t, v]) => [t / 1000, v]));
      for (const [t, v] of plotted[node.name] ?? []) {
        // A second the page last read before it was over may still move: compare the ones that were over.
        if (t * 1000 + telemetry.bucketMs > readAtMs || !truth.has(t)) continue;
        expect(v, `${node.name} at ${t} s`).toBe(truth.get(t));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(10);
    expect(pageErrors).toEqual([]);
    expect(outside).toEqual([]);
  });

  it('the lesson actions go through the admin API and are listed: a celebrity posts, leases on, the hottest shard moves to the quietest server', async () => {
    await page.click('#celebrity');
    await page.waitForSelector('#events li.event[data-kind="celebrity_post"]', { timeout: 15_000 });
    expect(await page.locator('#events li.event[data-kind="celebrity_post"]').textContent()).toMatch(/@\S+ posts to [\d,]+ followers/);
    await page.keyboard.press('e');
    await page.waitForSelector('#events li.event[data-kind="cache_leases"]', { timeout: 15_000 });
    expect(((await admin('/_sim/topology')) as { cache: { leases: boolean } }).cache.leases).toBe(true);
    const hot = await page.evaluate(() => {
      const f = (globalThis as unknown as { __dashboard: { state: { lastFrame: { telemetry: { hotspots: { clusters: Array<{ hottest: Array<{ shard: number; server: string }> }> } } } } } }).__dashboard.state.lastFrame;
      return f.telemetry.hotspots.clusters[0]!.hottest[0]!;
    });
    await page.keyboard.press('m');
    await page.waitForSelector('#events li.event[data-kind="shard_move"]', { timeout: 15_000 });
    expect(await page.locator('#events li.event[data-kind="shard_move"]').textContent()).toMatch(new RegExp(`move of 1 shard ${hot.server} → db-\\d+ started`));
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
