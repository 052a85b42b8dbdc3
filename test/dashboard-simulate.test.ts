// The teaching dashboard of a running simulation (`scalegram simulate --dashboard`), in headless
// Chromium (Debian's, driven by playwright-core), as a teacher drives it: it starts paused at
// 00:00:00; the step buttons and keys move virtual time by exactly 1 s, 1 min and 1 h (the last
// stopped by the end); play and pause; "kill" on a cache node at the virtual time shown lists the
// event at that time, shows the node down, and its hit-ratio series drops to 0; the six plots
// (with the per-route ones) and the lesson render; and every value plotted equals the one the
// simulation's result keeps for that interval. Skipped with a message when /usr/bin/chromium is
// absent, except under CI=true, where its absence fails.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeSeries } from '../dashboard/routes.ts';
import type { SeriesData } from '../scenarios/runner/k6-metrics.ts';
import { SIM_EPOCH_MS } from '../sim/model/snapshot.ts';

const CHROMIUM = '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
const ci = process.env.CI === 'true';
if (!present && !ci) process.stderr.write(`dashboard-simulate: skipped — ${CHROMIUM} is not installed (apt-get install chromium); under CI=true this fails\n`);

const tmp = mkdtempSync(join(tmpdir(), 'scalegram-dashboard-sim-'));
const out = join(tmp, 'result');
let sim: ChildProcess;
let stderr = '';
let exited: Promise<number | null>;
let dashboardUrl = '';
let context: BrowserContext | null = null;
let page: Page;
const pageErrors: string[] = [];
const outside: string[] = [];

type Point = [number, number];
interface SimClock {
  nowMs: number;
  horizonMs: number;
  paused: boolean;
  speed: number | 'max';
  maxSpeed: number | null;
  done: boolean;
  stepMs: number;
}
/** What the page keeps on window.__dashboard (dashboard/page/app.js). */
interface PageState {
  state: { frames: number; lastFrame: { world: { sim: SimClock } } | null };
  charts: Record<string, { series: Map<string, Map<number, number | null>> }>;
  events: Map<string, { t: number; kind: string; label: string }>;
}
type Doc = { getElementById(id: string): { textContent: string; dataset: Record<string, string> } | null };

const clockOf = () => page.evaluate(() => (globalThis as unknown as { __dashboard: PageState }).__dashboard.state.lastFrame!.world.sim);
/** Waits until the page's frames show virtual time at `ms` (read from the frames the server sent). */
async function clockAt(ms: number): Promise<void> {
  await page.waitForFunction((want) => (globalThis as unknown as { __dashboard: PageState }).__dashboard.state.lastFrame?.world.sim.nowMs === want, ms, { timeout: 60_000 });
}

describe.skipIf(!present && !ci)('scalegram simulate --dashboard', () => {
  beforeAll(async () => {
    if (!present) throw new Error(`${CHROMIUM} is missing, and CI=true requires the browser test to run (.ci/run installs chromium)`);
    sim = spawn(process.execPath, ['bin/scalegram.mjs', 'simulate', 'scenarios/cache-node-loss.ts', '--scale', '0.02', '--seed', '5', '--out', out, '-q', '--dashboard', '--paused'], { stdio: ['ignore', 'pipe', 'pipe'] });
    sim.stdout!.resume();
    exited = new Promise((resolve) => sim.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`simulate --dashboard did not start: ${stderr}`)), 90_000);
      sim.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /dashboard (http:\/\/\S+)/.exec(stderr);
        if (m && !dashboardUrl) {
          dashboardUrl = m[1]!;
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(() => reject(new Error(`simulate exited: ${stderr}`)));
    });
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
  }, 150_000);

  afterAll(async () => {
    await context?.close();
    if (sim && sim.exitCode === null) sim.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  });

  it('starts paused at 00:00:00 with the clock, the diagram and the lesson', async () => {
    await page.goto(dashboardUrl);
    await page.waitForFunction(() => ((globalThis as unknown as { __dashboard?: PageState }).__dashboard?.state.frames ?? 0) >= 1, null, { timeout: 30_000 });
    const c = await clockOf();
    expect(c).toMatchObject({ nowMs: 0, paused: true, done: false });
    expect(c.horizonMs).toBeGreaterThan(20 * 60_000);
    expect(await page.locator('#clock').isVisible()).toBe(true);
    expect(await page.locator('#vclock').textContent()).toMatch(/^00:00:00 \/ 00:2\d:00$/);
    expect(await page.locator('#sim-play').textContent()).toMatch(/play/);
    expect(await page.locator('#cache .node[data-node]').count()).toBe(6);
    expect(await page.locator('#db .node[data-node]').count()).toBe(12);
    expect(await page.locator('#lesson summary').textContent()).toMatch(/Lesson: .*memcached/i);
  }, 60_000);

  it('steps by exactly 1 s, 1 min (buttons) and 1 min more (key 2), and stays there while paused', async () => {
    await page.click('#step-s');
    await clockAt(1000);
    await page.click('#step-m');
    await clockAt(61_000);
    await page.keyboard.press('2');
    await clockAt(121_000);
    const frames = await page.evaluate(() => (globalThis as unknown as { __dashboard: PageState }).__dashboard.state.frames);
    await page.waitForFunction((n) => (globalThis as unknown as { __dashboard: PageState }).__dashboard.state.frames >= n + 2, frames, { timeout: 15_000 });
    expect((await clockOf()).nowMs).toBe(121_000);
    expect(await page.locator('#vclock').textContent()).toMatch(/^00:02:01 /);
  }, 90_000);

  it('plays at a speed and pauses; seven plots render and update; the simulator’s top speed is shown', async () => {
    await page.selectOption('#sim-speed', '60');
    await page.click('#sim-play');
    await page.waitForFunction(() => (globalThis as unknown as { __dashboard: PageState }).__dashboard.state.lastFrame!.world.sim.nowMs > 200_000, null, { timeout: 60_000 });
    await page.keyboard.press(' ');
    await page.waitForFunction(() => (globalThis as unknown as { __dashboard: PageState }).__dashboard.state.lastFrame!.world.sim.paused, null, { timeout: 15_000 });
    const c = await clockOf();
    expect(c.speed).toBe(60);
    expect(await page.locator('#plots canvas').count()).toBe(7);
    // The latency chart keeps every percentile: p99 at or above p95 for each point.
    const lat = await page.evaluate(() => {
      const l = (globalThis as unknown as { __dashboard: { charts: { latency: { percentiles: Record<string, Map<string, Map<number, number>>> } } } }).__dashboard.charts.latency.percentiles;
      return [...l.p95!.get('feed')!].map(([t, v]) => [v, l.p99!.get('feed')!.get(t)!]);
    });
    expect(lat.length).toBeGreaterThan(10);
    for (const [p95, p99] of lat) expect(p99).toBeGreaterThanOrEqual(p95!);
    await page.selectOption('#latency-percentile', 'p99');
    expect(await page.evaluate(() => (globalThis as unknown as { __dashboard: { charts: { latency: { shown: string } } } }).__dashboard.charts.latency.shown)).toBe('p99');
    expect(await page.locator('#maxspeed').textContent()).toMatch(/simulator max [≈≥] [\d,.]+× real time/);
    const routes = await page.evaluate(() => [...(globalThis as unknown as { __dashboard: PageState }).__dashboard.charts.routes!.series.keys()]);
    expect(routes).toContain('feed');
  }, 120_000);

  it('"kill" on cache-0 at the virtual time shown: the event is listed at that time, the node is down, its hit ratio drops to 0', async () => {
    const before = await page.evaluate(() => [...(globalThis as unknown as { __dashboard: PageState }).__dashboard.charts.hit!.series.get('cache-0')!.values()]);
    expect(before.some((v) => v !== null && v > 0.5)).toBe(true);
    const at = (await clockOf()).nowMs;
    await page.click('#cache .node[data-node="cache-0"] button');
    await page.waitForSelector('#cache .node.down[data-node="cache-0"]', { timeout: 15_000 });
    await page.waitForSelector('#events li.event[data-kind="cache_kill"]', { timeout: 15_000 });
    const kill = await page.evaluate(() => [...(globalThis as unknown as { __dashboard: PageState }).__dashboard.events.values()].find((e) => e.kind === 'cache_kill')!);
    expect(kill.t).toBe(at);
    expect(kill.label).toMatch(/cache-0 killed/);
    // Paused, virtual time has not moved: the action happened at the time shown.
    expect((await clockOf()).nowMs).toBe(at);
    // A minute of virtual time: the node's points after the kill are 0.
    await page.keyboard.press('2');
    await clockAt(at + 60_000);
    await page.waitForFunction(
      (t) => {
        const s = (globalThis as unknown as { __dashboard: PageState }).__dashboard.charts.hit!.series.get('cache-0')!;
        const after = [...s.entries()].filter(([x]) => x * 1000 > t);
        return after.length >= 5 && after.every(([, v]) => v === 0);
      },
      at + 3000,
      { timeout: 30_000 },
    );
    expect(await page.locator('#cache .node[data-node="cache-0"] button').textContent()).toBe('revive');
  }, 120_000);

  it('1 h steps stop at the end; the values plotted equal the result’s telemetry for every interval', async () => {
    await page.keyboard.press('3');
    await page.waitForFunction(() => (globalThis as unknown as { __dashboard: PageState }).__dashboard.state.lastFrame!.world.sim.done, null, { timeout: 120_000 });
    const c = await clockOf();
    expect(c.nowMs).toBe(c.horizonMs);
    expect(await page.locator('#sim-play').textContent()).toBe('ended');
    await page.waitForFunction(() => (globalThis as unknown as { document: Doc }).document.getElementById('status')!.textContent === 'simulation', null, { timeout: 15_000 });
    const plotted = await page.evaluate(() => {
      const d = (globalThis as unknown as { __dashboard: PageState }).__dashboard;
      const of = (id: string) => Object.fromEntries([...d.charts[id]!.series].map(([n, s]) => [n, [...s.entries()]]));
      return { hit: of('hit'), ops: of('ops'), fanout: of('fanout'), routes: of('routes') };
    });
    // The result is written when the simulation ends; the page stays open until Ctrl-C.
    for (let i = 0; i < 300 && !/stays open/.test(stderr); i++) await new Promise((r) => setTimeout(r, 100));
    expect(stderr).toMatch(/the dashboard stays open/);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as {
      durationMs: number;
      series: SeriesData;
      thresholds: Array<{ ok: boolean }>;
      telemetry: { caches: { nodes: Array<{ name: string; hitRatioOverTime: Point[] }> }; hotspots: { clusters: Array<{ servers: Array<{ name: string; opsPerS: Point[] }> }> }; fanout: { queueDepth: Point[]; deliveriesPerS: Point[] }; events: Array<{ t: number; kind: string }> };
    };
    expect(result.durationMs).toBe(c.horizonMs);
    expect(result.telemetry.events.map((e) => [e.t, e.kind])).toContainEqual([expect.any(Number), 'cache_kill']);
    let compared = 0;
    const same = (chart: Record<string, Array<[number, number | null]>>, name: string, truth: Point[]) => {
      const want = new Map(truth.map(([t, v]) => [t / 1000, v]));
      const got = chart[name] ?? [];
      expect(got.length, `${name}: points plotted`).toBeGreaterThan(10);
      // Every point of the result was plotted, and nothing else.
      expect(got.length, `${name}: as many points as the result`).toBe(want.size);
      for (const [t, v] of got) {
        expect(want.has(t), `${name} at ${t} s is in the result`).toBe(true);
        expect(v, `${name} at ${t} s`).toBe(want.get(t));
        compared++;
      }
    };
    for (const n of result.telemetry.caches.nodes) same(plotted.hit, n.name, n.hitRatioOverTime);
    for (const s of result.telemetry.hotspots.clusters[0]!.servers) same(plotted.ops, s.name, s.opsPerS);
    same(plotted.fanout, 'queue depth', result.telemetry.fanout.queueDepth);
    // Requests/s per route: what the result's k6 series give for each bucket (at the buckets' final width).
    for (const [route, r] of Object.entries(routeSeries(result.series, SIM_EPOCH_MS))) same(plotted.routes, route, r.reqsPerS);
    expect(compared).toBeGreaterThan(1000);
    expect(pageErrors).toEqual([]);
    expect(outside).toEqual([]);
    // Ctrl-C closes it, with the run's exit code (99 when a threshold failed).
    sim.kill('SIGINT');
    expect(await exited).toBe(result.thresholds.every((x) => x.ok) ? 0 : 99);
  }, 180_000);
});
