// Each scenario's live exec functions make exactly the requests their `work` declarations say
// (scenarios/lib/work.ts): every function of every scenario is run, iteration after iteration,
// against the real app on a loopback port that records each request it receives, in order, by
// route; the list must be one of the declaration's expansions (one per combination of `choice`
// branches, each seen), or a prefix of one that ends where the live function had to stop (an
// empty `user_media`, a failed signup). One request more or less fails the test.

import { readdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { installGlobals } from '../scenarios/runner/k6/register.ts';
import { setRuntime, vuStorage, type Runtime, type ScenarioState, type VuState } from '../scenarios/runner/runtime.ts';
import { MAX_SEED_FOLLOWS, MAX_SEED_MEDIA, MAX_SEED_USERS } from '../sim/workload/population.ts';
import { ADMIN_TOKEN, makeEnv, type TestEnv } from './helpers/app.ts';

// Scenario files import k6's modules by name, as the runner's resolve hook maps them.
vi.mock('k6', () => import('../scenarios/runner/k6/k6.ts'));
vi.mock('k6/http', () => import('../scenarios/runner/k6/http.ts'));
vi.mock('k6/metrics', () => import('../scenarios/runner/k6/metrics.ts'));
vi.mock('k6/execution', () => import('../scenarios/runner/k6/execution.ts'));

type Work = typeof import('../scenarios/lib/work.ts');
type StepList = Parameters<Work['expandSteps']>[0];
interface ScenarioModule {
  work: Record<string, StepList>;
  population: Parameters<Work['liveAccounts']>[0];
  setup(): Promise<unknown>;
  [exec: string]: unknown;
}

/** The v1 routes and the admin endpoints, by the `name` tag scenarios/lib/api.ts gives each (an independent table). */
const ROUTES: Array<[string, RegExp, string]> = [
  ['POST', /^\/v1\/accounts$/, 'signup'],
  ['POST', /^\/v1\/users\/[^/]+\/relationship$/, 'follow'],
  ['POST', /^\/v1\/media$/, 'upload'],
  ['GET', /^\/v1\/users\/self\/feed$/, 'feed'],
  ['GET', /^\/v1\/users\/[^/]+\/media\/recent$/, 'user_media'],
  ['POST', /^\/v1\/media\/[^/]+\/likes$/, 'like'],
  ['POST', /^\/v1\/media\/[^/]+\/comments$/, 'comment'],
  ['GET', /^\/v1\/media\/[^/]+$/, 'media'],
  ['POST', /^\/_sim\/(cache\/[^/]+\/(kill|revive)|db\/lag|db\/[^/]+\/fail|shards\/split)$/, 'sim_admin'],
];

/** What each admin action must POST to (the brief's paths, written out here, not taken from work.ts). */
const ADMIN_PATHS: Record<string, (a: Record<string, unknown>) => string> = {
  cache_kill: (a) => `/_sim/cache/${String(a.node)}/kill`,
  cache_revive: (a) => `/_sim/cache/${String(a.node)}/revive`,
  db_lag: () => '/_sim/db/lag',
  db_fail: (a) => `/_sim/db/${String(a.server)}/fail`,
  shard_split: () => '/_sim/shards/split',
};

/** The check names each exec function made before its declaration (unchanged since), per scenario. */
const CHECK_NAMES: Record<string, Record<string, string[]>> = {
  'android-launch': { signup: ['signed up', 'follow ok'], post: ['upload ok'], likePhoto: ['like ok'], readFeed: ['feed ok'] },
  'cache-node-loss': { read: ['feed ok'], view: [], like: ['like ok'] },
  'celebrity-post': { celebrityPosts: ['post ok'], reactToPost: ['like ok', 'comment ok', 'feed ok'] },
  'ci-gate': { signup: ['signed up', 'follow ok'], post: ['upload ok'], likePhoto: ['like ok'], readFeed: ['feed ok'] },
  'calibrate-idle': { backToBack: ['feed ok'], afterShortIdle: ['feed ok'], afterLongIdle: ['feed ok'] },
  calibrate: { everyRoute: ['signed up', 'follow ok', 'upload ok', 'feed ok', 'read ok', 'like ok', 'comment ok'] },
  'hash-vs-range': { newUser: ['signed up', 'follow ok', 'upload ok'] },
  'launch-day': { newUser: ['signed up', 'follow ok', 'upload ok', 'feed ok'] },
  'replica-failover': { likeSomething: ['like ok'], readMedia: ['read ok'] },
  'shard-split': { write: ['like ok'], read: ['feed ok'] },
};

interface Recorded {
  op: string;
  path: string;
  status: number;
  /** For user_media: how many items the answer held. */
  items?: number;
}

let recorded: Recorded[] = [];
const samples: Array<{ name: string; tags: Record<string, string> }> = [];
const checks: Array<{ name: string; ok: boolean }> = [];

function record(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '').split('?')[0]!;
  const route = ROUTES.find(([m, re]) => m === req.method && re.test(path));
  const entry: Recorded = { op: route ? route[2] : `${req.method} ${path}`, path, status: 0 };
  recorded.push(entry);
  const chunks: Buffer[] = [];
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  (res as unknown as { end: (...args: unknown[]) => ServerResponse }).end = (...args: unknown[]) => {
    if (entry.op === 'user_media' && (typeof args[0] === 'string' || Buffer.isBuffer(args[0]))) chunks.push(Buffer.from(args[0] as string));
    entry.status = res.statusCode;
    if (entry.op === 'user_media') {
      try {
        entry.items = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: unknown[] }).data?.length ?? 0;
      } catch {
        entry.items = 0;
      }
    }
    return end(...args);
  };
}

/** A seeded Math.random (mulberry32), so every run of this test makes the same picks and choices. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const realRandom = Math.random;
afterEach(() => {
  Math.random = realRandom;
});

let env: TestEnv;
let baseUrl = '';
let runtimeEnv: Record<string, string> = {};

async function startServer(): Promise<void> {
  env = await makeEnv();
  env.app.server.on('request', record);
  await env.app.listen({ host: '127.0.0.1', port: 0 });
  baseUrl = `http://127.0.0.1:${(env.app.server.address() as { port: number }).port}`;
  runtimeEnv = { BASE_URL: baseUrl, ADMIN_TOKEN, SCALEGRAM_RUNNER: '1', SCALE: '0.00001', SPEED: '1', SEED: '1' };
  setRuntime({
    registry: { define: () => undefined, add: (name: string, _v: number, tags: Record<string, string>) => void samples.push({ name, tags: { ...tags } }) },
    env: runtimeEnv,
    nowMs: () => Date.now(),
    speed: 1,
    options: {},
    abort: () => undefined,
    baseUrl,
    checks: { record: (_path: string[], name: string, ok: boolean) => void checks.push({ name, ok }) },
    stats: () => ({ iterationsCompleted: 0, iterationsInterrupted: 0, vusActive: 1, vusInitialized: 1, currentTestRunDurationMs: 0 }),
  } as unknown as Runtime);
}

async function stopServer(): Promise<void> {
  setRuntime(null);
  await env.close();
}

let iterationCounter = 0;
function inVu<T>(fn: () => T): T {
  const scenario: ScenarioState = { name: 'work', executor: 'shared-iterations', startTimeMs: Date.now(), env: runtimeEnv, tags: { scenario: 'work' }, progress: () => 0, iterationsStarted: iterationCounter };
  const now = Date.now();
  const vu: VuState = { id: 1, iterationInInstance: iterationCounter, iterationInScenario: iterationCounter++, scenario, tags: {}, groups: [], intendedStartMs: now, startMs: now, signal: new AbortController().signal };
  return vuStorage.run(vu, fn);
}

let work: Work;
beforeAll(async () => {
  installGlobals();
  work = await import('../scenarios/lib/work.ts');
});

/**
 * Why `got` (one iteration's requests) is not what `steps` declare, or null when it is: equal to an
 * expansion, or a prefix of one ending at a user_media that answered no items or a failed signup.
 */
function mismatch(steps: StepList, got: Recorded[]): string | null {
  const ops = got.map((r) => r.op);
  const expansions = work.expandSteps(steps).map((e) => e.ops as string[]);
  if (expansions.some((e) => e.length === ops.length && e.every((op, i) => op === ops[i]))) return null;
  const last = got[got.length - 1];
  const stopped = last && ((last.op === 'user_media' && last.items === 0) || (last.op === 'signup' && last.status !== 200));
  if (stopped && expansions.some((e) => e.length > ops.length && ops.every((op, i) => op === e[i]))) return null;
  return `made [${ops.join(', ')}], declared ${expansions.map((e) => `[${e.join(', ')}]`).join(' or ')}`;
}

/** Runs `fn` `n` times; returns each iteration's recorded requests. */
async function iterate(fn: (data: unknown) => Promise<void>, data: unknown, n: number): Promise<Recorded[][]> {
  const out: Recorded[][] = [];
  for (let i = 0; i < n; i++) {
    recorded = [];
    await inVu(() => fn(data));
    out.push(recorded);
  }
  recorded = [];
  return out;
}

const SCENARIOS = readdirSync(new URL('../scenarios/', import.meta.url))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.replace(/\.ts$/, ''))
  .sort();

describe('scenario declarations (pure)', () => {
  it('every scenario is covered: the eight growth events and the two calibration workloads', () => {
    expect(SCENARIOS).toEqual(['android-launch', 'cache-node-loss', 'calibrate', 'calibrate-idle', 'celebrity-post', 'ci-gate', 'hash-vs-range', 'launch-day', 'replica-failover', 'shard-split']);
  });

  it('expandSteps repeats counted follows and lists one sequence per choice branch, with its probability', () => {
    const steps: StepList = [
      { op: 'signup' },
      { op: 'follow', who: 'new', whom: 'user', count: 3 },
      { op: 'user_media', who: 'new', owner: 'user' },
      { op: 'choice', branches: [{ p: 0.25, steps: [{ op: 'like', who: 'new' }] }, { p: 0.75, steps: [{ op: 'comment', who: 'new' }, { op: 'media', who: 'new' }] }] },
      { op: 'admin', action: 'db_lag', lagMs: 10 },
    ];
    expect(work.expandSteps(steps)).toEqual([
      { p: 0.25, ops: ['signup', 'follow', 'follow', 'follow', 'user_media', 'like', 'sim_admin'] },
      { p: 0.75, ops: ['signup', 'follow', 'follow', 'follow', 'user_media', 'comment', 'media', 'sim_admin'] },
    ]);
    expect(work.expandSteps([])).toEqual([{ p: 1, ops: [] }]);
  });

  it('the seeding budget live runs clamp to is the server’s, and populations scale into it', () => {
    expect(work.SEED_BUDGET).toEqual({ accounts: MAX_SEED_USERS, follows: MAX_SEED_FOLLOWS, media: MAX_SEED_MEDIA });
    const android = { accounts: 30_000_000, avgFollows: 20, celebrities: 5, mediaPerUser: 2, minAccounts: 100 };
    expect(work.liveAccounts(android, 1)).toBe(250_000); // 5M follows / 20 each
    expect(work.liveAccounts(android, 0.0001)).toBe(3000);
    expect(work.liveAccounts(android, 0.000001)).toBe(100); // minAccounts
    expect(work.liveAccounts(android, 0.05, 10_000)).toBe(10_000); // BASE_ACCOUNTS
    expect(work.liveAccounts(android, 0.05, 10)).toBe(100);
    expect(work.liveAccounts({ accounts: 1_000_000, avgFollows: 3, celebrities: 1, mediaPerUser: 0, minAccounts: 1000 }, 1)).toBe(1_000_000);
  });

  it('admin actions go to the /_sim paths, a lag compressed by --speed', () => {
    expect(work.adminRequest({ action: 'cache_kill', node: 'cache-2', removeFromRing: true })).toEqual({ path: '/_sim/cache/cache-2/kill', body: { removeFromRing: true } });
    expect(work.adminRequest({ action: 'cache_revive', node: 'cache-2' })).toEqual({ path: '/_sim/cache/cache-2/revive', body: {} });
    expect(work.adminRequest({ action: 'db_lag', lagMs: 5000 }, 10)).toEqual({ path: '/_sim/db/lag', body: { lagMs: 500 } });
    expect(work.adminRequest({ action: 'db_fail', server: 'db-3' })).toEqual({ path: '/_sim/db/db-3/fail', body: {} });
    expect(work.adminRequest({ action: 'shard_split', cluster: 'main', server: 0 })).toEqual({ path: '/_sim/shards/split', body: { cluster: 'main', server: 0 } });
  });

  it('the actions a dashboard adds (also a simulation’s) are ones the live admin API takes', async () => {
    const e = await makeEnv();
    try {
      const send = async (a: Parameters<Work['adminRequest']>[0]) => {
        const r = work.adminRequest(a);
        const res = await e.app.inject({ method: 'POST', url: r.path, payload: r.body, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
        return [res.statusCode, res.json()] as const;
      };
      expect((await e.app.inject({ method: 'POST', url: '/_sim/seed', payload: { users: 50, avgFollows: 3, celebrities: 1, seed: 2 }, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).statusCode).toBe(200);
      expect(await send({ action: 'cache_leases', enabled: true })).toEqual([200, { leases: true }]);
      expect((await send({ action: 'celebrity_post' }))[0]).toBe(200);
      expect((await send({ action: 'celebrity_post', rank: 1 }))[0]).toBe(200);
      expect((await send({ action: 'db_service_time', serviceTimeMs: 2 }))[0]).toBe(200);
      expect((await send({ action: 'db_fail', server: 'db-1' }))[0]).toBe(200);
      expect((await send({ action: 'db_revive', server: 'db-1' }))[0]).toBe(200);
      expect((await send({ action: 'shard_move', cluster: 'main', shard: 0, to: 'db-1' }))[0]).toBe(200);
      const kinds = ((await e.app.inject({ url: '/_sim/faults', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json() as { faults: Array<{ fault: string }> }).faults.map((f) => f.fault);
      expect(kinds).toEqual(expect.arrayContaining(['cache_leases', 'celebrity_post', 'db_service_time', 'db_fail', 'shard_move']));
    } finally {
      await e.close();
    }
  });
});

/**
 * Exec functions whose requests are tagged with names of their own, in order, rather than their op
 * names: calibrate-idle's pair after a long idle (`scalegram calibrate` reads each one's median by
 * its name; the runner keeps a series per name, not per position in an iteration).
 */
const NAME_TAGS: Record<string, Record<string, string[]>> = { 'calibrate-idle': { pairAfterLongIdle: ['feed_first', 'feed_next'] } };

/** Iterations per exec function: enough that every choice branch shows (with the seeded picks below). */
const ITERATIONS = 40;
/** Exec functions that change the topology for good (faults) run once, after the others. */
const runOrder = (names: string[], w: Record<string, StepList>) => [...names].sort((a, b) => Number(w[a]!.some((s) => s.op === 'admin')) - Number(w[b]!.some((s) => s.op === 'admin')));

describe.each(SCENARIOS)('%s: each live exec function makes the requests its declaration says', (name) => {
  it('declares a population, and every exec function of its options, and each one is made from its declaration', async () => {
    await startServer();
    try {
      const mod = (await import(`../scenarios/${name}.ts`)) as ScenarioModule;
      expect(mod.population.accounts).toBeGreaterThan(0);
      const execs = Object.values((mod as unknown as { options: { scenarios: Record<string, { exec?: string }> } }).options.scenarios).map((s) => s.exec ?? 'default');
      expect(Object.keys(mod.work).sort()).toEqual([...new Set(execs)].sort());

      const data = await mod.setup();
      const seen = new Map<string, Set<string>>();
      for (const exec of runOrder(Object.keys(mod.work), mod.work)) {
        const steps = mod.work[exec]!;
        const fn = mod[exec] as (data: unknown) => Promise<void>;
        expect(typeof fn).toBe('function');
        const isAdmin = steps.some((s) => s.op === 'admin');
        Math.random = seededRandom(7);
        samples.length = 0;
        checks.length = 0;
        const runs = await iterate(fn, data, isAdmin || steps.length === 0 ? 1 : ITERATIONS);
        for (const got of runs) {
          const why = mismatch(steps, got);
          expect(why, `${name}.${exec}`).toBeNull();
          seen.set(exec, (seen.get(exec) ?? new Set()).add(got.map((r) => r.op).join(',')));
        }
        // The requests' `name` tags (what thresholds and reports group by) are the op names, but
        // where a measurement names each request of an iteration apart (NAME_TAGS).
        const named = NAME_TAGS[name]?.[exec];
        expect(samples.filter((s) => s.name === 'http_reqs').map((s) => s.tags.name), `${name}.${exec} name tags`).toEqual(named ? runs.flatMap(() => named) : runs.flat().map((r) => r.op));
        // The live checks pass against a healthy server (their names as the scenarios give them).
        expect(checks.filter((c) => !c.ok), `${name}.${exec} failed checks`).toEqual([]);
        expect([...new Set(checks.map((c) => c.name))].sort(), `${name}.${exec} check names`).toEqual([...(CHECK_NAMES[name]![exec] ?? [])].sort());
        // Admin steps: the path of each action, as the brief gives them.
        for (const [i, step] of steps.entries()) {
          if (step.op !== 'admin') continue;
          expect(runs[0]![i]!.path).toBe(ADMIN_PATHS[step.action]!(step as unknown as Record<string, unknown>));
          expect(runs[0]![i]!.status).toBe(200);
        }
        // Every combination of choice branches was made at least once, and most iterations ran to the end.
        const full = work.expandSteps(steps).map((e) => e.ops.join(','));
        for (const e of full) expect(seen.get(exec)!.has(e), `${name}.${exec} never made [${e}]`).toBe(true);
      }
    } finally {
      await stopServer();
    }
  }, 60_000);
});

describe('the comparison has teeth', () => {
  it('a live function that makes one request more, or one fewer, than declared is caught', async () => {
    await startServer();
    try {
      const mod = (await import('../scenarios/shard-split.ts')) as ScenarioModule;
      const data = await mod.setup();
      const declared = mod.work.write!;
      Math.random = seededRandom(7);
      const more = await iterate(work.iteration([...declared, { op: 'feed', who: 'user' }]) as (d: unknown) => Promise<void>, data, 3);
      const fewer = await iterate(work.iteration(declared.slice(0, 1)) as (d: unknown) => Promise<void>, data, 3);
      const right = await iterate(work.iteration(declared) as (d: unknown) => Promise<void>, data, 3);
      for (const got of more) expect(mismatch(declared, got)).not.toBeNull();
      for (const got of fewer.filter((g) => g[0]!.items! > 0)) expect(mismatch(declared, got)).not.toBeNull();
      expect(fewer.some((g) => g[0]!.items! > 0)).toBe(true);
      for (const got of right) expect(mismatch(declared, got)).toBeNull();
    } finally {
      await stopServer();
    }
  }, 60_000);
});
