// Calibration profiles: the schema refuses a malformed one with its code (and simulate exits 104),
// a profile of another machine or commit warns and the run goes on, a calibrated simulation moves
// with the profile's costs and is deterministic for a seed; `scalegram calibrate` on a tiny workload
// writes a valid profile and `scalegram validate` on a tiny scale writes its three files with marks.
// Nothing here depends on the machine's speed: counts, shapes and directions only.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { validation } from '../reports/validate.ts';
import { keyFigures } from '../scenarios/runner/key-figures.ts';
import type { ResultDocument, SimulationSection } from '../scenarios/runner/results.ts';
import { CALIBRATION_FORMAT, calibrationOverrides, calibrationWarnings, parseCalibration, type Calibration } from '../sim/calibration.ts';
import { fitOutcomes, fitWakeShare, MIN_OUTCOME_REQUESTS, wakePays } from '../cli/calibrate.ts';
import { workDocument } from '../scenarios/runner/results.ts';
import { isSimError } from '../sim/engine/errors.ts';
import { MAX_TIME_SAMPLES, WORK_FIELDS, WorkCounts, WorkMeter, type WorkTotals } from '../sim/observability/work-meter.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURE = join(ROOT, 'test/fixtures/sim-calibrated.ts');
const execFileP = promisify(execFile);

const MACHINE = { cpuModel: 'Test CPU', cores: 2, nodeVersion: 'v20.0.0', hostname: 'test-host', platform: 'linux-x64' };
const SHA = 'a'.repeat(40);

function profile(): Calibration {
  return {
    format: CALIBRATION_FORMAT,
    measuredAt: '2026-01-01T00:00:00.000Z',
    seed: 1,
    topology: '2012-sharded',
    iterations: 10,
    machine: { ...MACHINE },
    commit: { sha: SHA, dirty: false },
    costs: {
      cpuMs: { feed: 2, user_media: 1, media: 0.5, like: 0.5, comment: 0.7, follow: 1.3, upload: 4, signup: 2 },
      passwordHashMs: 11,
      queryMs: { pkRead: 0.02, rangeRead: 0.07, write: 0.03 },
      memcachedOpUs: 0.4,
      memcachedKeyUs: 0.7,
      redisOpUs: 5,
      jobOverheadMs: 0.01,
      resizeMs: 23,
      blobPutMs: 0.04,
    },
    app: { appServers: 1, workersPerServer: 1 },
    parts: { 'cache.get': { what: 'a get', samples: 10, p50Us: 1, p99Us: 2 } },
    routes: {},
    notes: [],
  };
}

async function scalegram(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, ['bin/scalegram.mjs', ...args], { cwd: ROOT, timeout: 120_000, env });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    return isSimError(e) ? e.code : `not a SimError: ${(e as Error).message}`;
  }
}

describe('a calibration profile', () => {
  it('is refused with SG_ERR_CALIBRATION_INVALID when it is not JSON, lacks a cost, has a negative one or another format', () => {
    expect(codeOf(() => parseCalibration(JSON.stringify(profile())))).toBeNull();
    expect(codeOf(() => parseCalibration('{ not json'))).toBe('SG_ERR_CALIBRATION_INVALID');
    const noCost = profile() as unknown as { costs: Record<string, unknown> };
    delete noCost.costs.queryMs;
    expect(codeOf(() => parseCalibration(JSON.stringify(noCost)))).toBe('SG_ERR_CALIBRATION_INVALID');
    const negative = profile();
    negative.costs.cpuMs.feed = -1;
    expect(codeOf(() => parseCalibration(JSON.stringify(negative)))).toBe('SG_ERR_CALIBRATION_INVALID');
    expect(codeOf(() => parseCalibration(JSON.stringify({ ...profile(), format: 'scalegram-calibration/0' })))).toBe('SG_ERR_CALIBRATION_INVALID');
    expect(codeOf(() => parseCalibration(JSON.stringify({ ...profile(), commit: { sha: 'HEAD', dirty: false } })))).toBe('SG_ERR_CALIBRATION_INVALID');
  });

  it('names the field that is wrong', () => {
    const p = profile() as unknown as { costs: { queryMs: Record<string, unknown> } };
    p.costs.queryMs.write = 'fast';
    try {
      parseCalibration(JSON.stringify(p));
      expect.unreachable();
    } catch (e) {
      expect(isSimError(e, 'SG_ERR_CALIBRATION_INVALID') && e.details?.field).toBe('costs.queryMs.write');
    }
  });

  it('warns when it was measured on another machine or at another commit, and not when only profiles or prose changed since', () => {
    const p = profile();
    expect(calibrationWarnings(p, { machine: { ...MACHINE }, commit: { sha: SHA, dirty: false } })).toEqual([]);
    const other = calibrationWarnings(p, { machine: { ...MACHINE, hostname: 'elsewhere', cores: 8 }, commit: { sha: SHA, dirty: false } });
    expect(other).toHaveLength(1);
    expect(other[0]).toMatch(/another machine.*test-host.*elsewhere.*2 cores.*8/);
    const later = { machine: { ...MACHINE }, commit: { sha: 'b'.repeat(40), dirty: false } };
    expect(calibrationWarnings(p, later)).toHaveLength(1);
    expect(calibrationWarnings(p, { ...later, sameCode: true })).toEqual([]);
    expect(calibrationWarnings({ ...p, commit: { sha: SHA, dirty: true } }, { machine: { ...MACHINE }, commit: { sha: SHA, dirty: false } })).toHaveLength(1);
  });

  it('sets the capacity section: its costs and one app server with one worker', () => {
    const o = calibrationOverrides(profile());
    expect(o.capacity?.appServers).toBe(1);
    expect(o.capacity?.workersPerServer).toBe(1);
    expect(o.capacity?.cpuMs?.feed).toBe(2);
    expect(o.capacity?.queryMs?.rangeRead).toBe(0.07);
  });
});

describe('simulate --calibration', () => {
  /** `scalegram simulate` of the small fixture with profile `p`: its feed and like routes and the parameters it charged. */
  const run = async (p: Calibration, seed = 5, extra: string[] = []) => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-cal-'));
    writeFileSync(join(dir, 'profile.json'), JSON.stringify(p));
    const r = await scalegram(['simulate', FIXTURE, '--seed', String(seed), '--calibration', join(dir, 'profile.json'), '--out', join(dir, 'out'), '-q', ...extra]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(readFileSync(join(dir, 'out', 'result.json'), 'utf8')) as ResultDocument & { simulation: SimulationSection };
    const routes = new Map(keyFigures(doc).routes.map((x) => [x.name, x]));
    return { feed: routes.get('feed')!, like: routes.get('like')!, params: doc.simulation.parameters };
  };

  it("charges the profile's costs: doubling the feed's app CPU raises the feed's modelled p50 and leaves likes alone; one seed, one answer", async () => {
    const slower = profile();
    slower.costs.cpuMs.feed = 4;
    // A like writes: a slower write is a slower like.
    const slowWrites = profile();
    slowWrites.costs.queryMs.write = 5;
    const [base, again, doubled, writes] = await Promise.all([run(profile()), run(profile()), run(slower), run(slowWrites)]);
    expect(again.feed).toEqual(base.feed);
    expect(again.like).toEqual(base.like);
    expect(base.params).toMatchObject({ appServers: 1, workersPerServer: 1, resizeMs: 23 });
    expect(base.feed.count).toBeGreaterThan(100);
    expect(doubled.feed.count).toBe(base.feed.count);
    expect(doubled.feed.p50).toBeGreaterThan(base.feed.p50 + 1.5);
    expect(doubled.like.p50).toBeCloseTo(base.like.p50, 1);
    expect(writes.like.p50).toBeGreaterThan(base.like.p50 + 4);
  });

  it("draws each request's app CPU with the profile's spread (the median stays, the tail grows), charges its app CPU per missed key, and the wake-up a request owes by its worker's idle time, a share of what is left at a time", async () => {
    const spread = profile();
    spread.costs.cpuSpread = { feed: 10, user_media: 1, media: 1, like: 1, comment: 1, follow: 1, upload: 1, signup: 1 };
    const perMiss = profile();
    perMiss.costs.missCpuMs = { feed: 0.5, user_media: 0, media: 0, like: 0, comment: 0, follow: 0, upload: 0, signup: 0 };
    const woken = profile();
    woken.costs.wakeMs = 5;
    woken.costs.wakeTauMs = 1;
    const halves = structuredClone(woken);
    halves.costs.wakeShare = 0.5;
    const [base, drawn, drawnAgain, cold, coldMissing, wake, halved] = await Promise.all([run(profile()), run(spread), run(spread), run(profile(), 5, ['--cold']), run(perMiss, 5, ['--cold']), run(woken), run(halves)]);
    expect(drawnAgain.feed).toEqual(drawn.feed);
    expect(drawn.feed.count).toBe(base.feed.count);
    // A log-normal with median cpuMs (2 ms) and p99 10 × 2 ms: the median barely moves, the p99 is the draw's.
    expect(Math.abs(drawn.feed.p50 - base.feed.p50)).toBeLessThan(0.6);
    expect(drawn.feed.p99).toBeGreaterThan(base.feed.p99 + 10);
    expect(drawn.like.p50).toBeCloseTo(base.like.p50, 0);
    // Cold caches: the first feed pages miss (up to 20 keys each), and each missed key costs 0.5 ms more of app CPU.
    expect(coldMissing.feed.count).toBe(cold.feed.count);
    expect(coldMissing.feed.max).toBeGreaterThan(cold.feed.max + 5);
    expect(coldMissing.feed.p99).toBeGreaterThan(cold.feed.p99 + 2);
    expect(coldMissing.like.p50).toBeCloseTo(cold.like.p50, 0);
    // 20 feed reads a second on one worker: almost every one finds it idle for more than 5 τ, and pays the whole wake-up.
    expect(wake.feed.p50 - base.feed.p50).toBeGreaterThan(4.5);
    expect(wake.feed.p50 - base.feed.p50).toBeLessThan(5.5);
    // A like follows its user_media read at once: its worker was hardly idle, so it pays next to nothing.
    expect(wake.like.p50 - base.like.p50).toBeLessThan(0.5);
    // Paying half of what is owed: a feed read after a long idle pays 2.5 ms, and the like after a
    // user_media read half of the 2.5 ms left (the cold state wears off over the next requests).
    expect(halved.feed.p50 - base.feed.p50).toBeGreaterThan(2);
    expect(halved.feed.p50 - base.feed.p50).toBeLessThan(3);
    expect(halved.like.p50 - base.like.p50).toBeGreaterThan(1);
    expect(halved.like.p50 - base.like.p50).toBeLessThan(1.6);
  }, 180_000); // seven simulations at once on two cores take about 30 s of a quiet machine's time

  it('exits 104 naming the code for a malformed profile, and warns (on stderr, going on) for one of another machine', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-cal-'));
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ format: CALIBRATION_FORMAT }));
    const bad = await scalegram(['simulate', FIXTURE, '--seed', '1', '--calibration', join(dir, 'bad.json'), '--out', join(dir, 'bad'), '-q']);
    expect(bad.code).toBe(104);
    expect(bad.stderr).toContain('[SG_ERR_CALIBRATION_INVALID]');
    expect(existsSync(join(dir, 'bad', 'result.json'))).toBe(false);
    writeFileSync(join(dir, 'foreign.json'), JSON.stringify(profile()));
    const foreign = await scalegram(['simulate', FIXTURE, '--seed', '1', '--calibration', join(dir, 'foreign.json'), '--out', join(dir, 'foreign'), '-q']);
    expect(foreign.code).toBe(0);
    expect(foreign.stderr).toMatch(/warning: the calibration profile was measured on another machine: host test-host/);
    expect(foreign.stderr).toMatch(/warning: the calibration profile was measured at commit aaaaaaaaaaaa/);
    expect(existsSync(join(dir, 'foreign', 'result.json'))).toBe(true);
    // The simulation validate runs says nothing of the profile: validate has warned once already.
    const quiet = await scalegram(['simulate', FIXTURE, '--seed', '1', '--calibration', join(dir, 'foreign.json'), '--out', join(dir, 'quiet'), '-q'], { ...process.env, SCALEGRAM_CALIBRATION_WARNED: '1' });
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).not.toMatch(/warning: the calibration profile/);
    // validate refuses a bad profile before it makes its result directory.
    const refused = await scalegram(['validate', FIXTURE, '--calibration', join(dir, 'bad.json'), '--out', join(dir, 'validate-bad'), '-q']);
    expect(refused.code).toBe(104);
    expect(refused.stderr).toContain('[SG_ERR_CALIBRATION_INVALID]');
    expect(existsSync(join(dir, 'validate-bad'))).toBe(false);
  });

  it('refuses an --out it cannot write before measuring anything (exit 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-cal-'));
    writeFileSync(join(dir, 'a-file'), '');
    const underFile = await scalegram(['calibrate', '--out', join(dir, 'a-file', 'profile.json')]);
    expect(underFile.code).toBe(2);
    expect(underFile.stderr).toMatch(/--out .*a-file\/profile\.json: cannot make its directory/);
    expect(underFile.stderr).not.toMatch(/calibrate: 1\/4/);
    const isDir = await scalegram(['calibrate', '--out', dir]);
    expect(isDir.code).toBe(2);
    expect(isDir.stderr).toMatch(/is a directory/);
  });
});

describe('fitting costs per outcome', () => {
  const totals = (count: number, w: Partial<WorkTotals>): WorkTotals => ({ ...Object.fromEntries(WORK_FIELDS.map((f) => [f, 0])), count, failed: 0, ...w }) as WorkTotals;
  const time = (p50: number, samples: number) => ({ p50, p99: p50 * 3, samples });
  // Work costed at 0.1 ms per read: what the parts' costs would say.
  const cost = (w: Record<string, number>) => 0.1 * (w.dbReads ?? 0);

  it("charges the route's commonest all-hit outcome as cpuMs (with the HTTP share), and the miss outcome's extra app CPU per missed key", () => {
    const fit = fitOutcomes(
      2.0,
      { 'hit/primary': totals(100, { dbReads: 100 }), 'miss/replica': totals(50, { dbReads: 150, cacheMisses: 100 }), 'miss/primary': totals(5, { cacheMisses: 5 }) },
      { all: time(1.5, 155), 'hit/primary': time(1.1, 100), 'miss/replica': time(2.3, 50), 'miss/primary': time(9, 5) },
      cost,
    )!;
    expect(fit.httpMs).toBeCloseTo(0.5, 9);
    // hit/primary: 1.1 ms less one read's 0.1 ms = 1.0 ms of app CPU; + 0.5 ms of HTTP.
    expect(fit.cpuMs).toBeCloseTo(1.5, 9);
    // miss/replica: 2.3 − 3 reads' 0.3 = 2.0 ms, 1.0 ms more than the hit, over 2 missed keys a request.
    expect(fit.missCpuMs).toBeCloseTo(0.5, 9);
    // Its tail, server side: (p99 3.3 − 0.1) ÷ 1.0 ms of app CPU.
    expect(fit.spread).toBeCloseTo(3.2, 3);
    expect(fit.outcomes['miss/primary']).toMatchObject({ requests: 5, serverP50Ms: 9, appMs: 9 });
    expect(Object.keys(fit.outcomes).sort()).toEqual(['hit/primary', 'miss/primary', 'miss/replica']);
  });

  it('fits the commonest outcome when none hit, charges no per-miss CPU then, and fits nothing below the minimum of requests', () => {
    const allMiss = fitOutcomes(1, { 'miss/primary': totals(40, { cacheMisses: 40 }) }, { all: time(0.8, 40), 'miss/primary': time(0.8, 40) }, cost)!;
    expect(allMiss.cpuMs).toBeCloseTo(1, 9);
    expect(allMiss.missCpuMs).toBe(0);
    const few = fitOutcomes(1, { 'hit/none': totals(MIN_OUTCOME_REQUESTS - 1, {}) }, { all: time(0.5, 19), 'hit/none': time(0.5, 19) }, cost)!;
    expect(few.cpuMs).toBeNull();
    expect(few.outcomes['hit/none']!.requests).toBe(MIN_OUTCOME_REQUESTS - 1);
    expect(fitOutcomes(1, {}, {}, cost)).toBeNull();
  });

  it('fits the wake-up from reads after a short and a long idle and a pair after the long one, share and all', () => {
    // The four excesses the simulator's wake-up makes for (W, τ, share), fitted back.
    for (const [w, tau, share] of [
      [2, 4, 1],
      [1, 3, 0.7],
      [0.8, 10, 0.3],
      [1.2, 0.5, 0.9],
    ] as const) {
      const [short, long, burstFirst, burstNext] = wakePays(share, tau, 5, 50).map((v) => v * w) as [number, number, number, number];
      const fit = fitWakeShare({ short, long, burstFirst, burstNext, shortMs: 5, longMs: 50 });
      expect(fit.wakeMs).toBeCloseTo(w, 4);
      expect(fit.tauMs).toBeCloseTo(tau, 3);
      expect(fit.share).toBeCloseTo(share, 4);
    }
    // With share 1 the first read after an idle pays all of it, and the one after it nothing.
    const [, long1, first1, next1] = wakePays(1, 4, 5, 50);
    expect(first1).toBeCloseTo(long1!, 12);
    expect(next1).toBe(0);
    // Each request pays the share of what is left: the second of a pair pays (1 − share) of the first.
    const [, , first, next] = wakePays(0.7, 3, 5, 50);
    expect(next! / first!).toBeCloseTo(0.3, 9);
    expect(fitWakeShare({ short: -0.1, long: -0.05, burstFirst: 0, burstNext: 0, shortMs: 5, longMs: 50 })).toEqual({ wakeMs: 0, tauMs: 10, share: 1 });
    // Little excess after the short idle: τ at its ceiling (a third of the long idle).
    expect(fitWakeShare({ short: 0.05, long: 0.65, burstFirst: 0.65, burstNext: 0, shortMs: 5, longMs: 50 }).tauMs).toBeCloseTo(50 / 3, 3);
  });

  it("splits a route's requests by outcome as the server counts them, and keeps their times out of work.json", () => {
    const meter = new WorkMeter();
    const request = (w: Partial<WorkCounts>, ms: number) => meter.finishRequest('GET /v1/users/self/feed', Object.assign(new WorkCounts(), { count: 1 }, w), ms);
    request({ cacheLookups: 20, dbReads: 1, replicaReads: 1 }, 1);
    request({ cacheLookups: 20, cacheMisses: 2, dbReads: 2 }, 3);
    request({ cacheLookups: 20, cacheMisses: 1, dbReads: 2, replicaReads: 2 }, 2);
    request({ cacheLookups: 1, failed: 1 }, 0.5);
    const snap = meter.snapshot();
    const route = snap.routes['GET /v1/users/self/feed']!;
    expect(route).toMatchObject({ count: 4, failed: 1, cacheLookups: 61, cacheMisses: 3, dbReads: 5 });
    expect('replicaReads' in route).toBe(false);
    const o = snap.outcomes!['GET /v1/users/self/feed']!;
    expect(Object.keys(o).sort()).toEqual(['hit/none', 'hit/replica', 'miss/primary', 'miss/replica']);
    expect(o['miss/primary']).toMatchObject({ count: 1, cacheMisses: 2, dbReads: 2 });
    expect(snap.outcomeServerMs!['GET /v1/users/self/feed']!.all).toEqual({ p50: 1, p99: 3, samples: 4 });
    const doc = workDocument({ scenario: 's', seed: 1, speed: 1, scale: 1, iterations: { completed: 1, interrupted: 0, dropped: 0 }, telemetry: { work: snap } } as Parameters<typeof workDocument>[0])!;
    expect(doc.outcomes).toEqual(snap.outcomes);
    expect('outcomeServerMs' in doc).toBe(false);
    // Past MAX_TIME_SAMPLES the times kept are spread over the whole run, not its first requests.
    const long = new WorkMeter();
    const n = 5 * MAX_TIME_SAMPLES;
    for (let i = 0; i < n; i++) long.finishRequest('GET /v1/media/:id', Object.assign(new WorkCounts(), { count: 1 }), i);
    const t = long.snapshot().outcomeServerMs!['GET /v1/media/:id']!['hit/none']!;
    expect(t.samples).toBeLessThanOrEqual(MAX_TIME_SAMPLES);
    expect(t.samples).toBeGreaterThan(MAX_TIME_SAMPLES / 2);
    expect(t.p50 / n).toBeCloseTo(0.5, 2);
    expect(t.p99 / n).toBeCloseTo(0.99, 2);
  });
});

describe('calibrate and validate on a tiny workload', () => {
  it("charges a fan-out chunk the profile's cost per delivery, not a Redis command's: the same deliveries land later", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-cal-'));
    const fanout = async (name: string, p: Calibration) => {
      writeFileSync(join(dir, `${name}.json`), JSON.stringify(p));
      const r = await scalegram(['simulate', 'scenarios/celebrity-post.ts', '--scale', '0.005', '--seed', '3', '--calibration', join(dir, `${name}.json`), '--out', join(dir, name), '-q']);
      expect(r.code, r.stderr).toBe(0);
      return keyFigures(JSON.parse(readFileSync(join(dir, name, 'result.json'), 'utf8')) as ResultDocument).fanout!;
    };
    const perDelivery = profile();
    perDelivery.costs.redisPushUs = 25; // 5× a command's 5 µs
    const [base, pushed] = await Promise.all([fanout('base', profile()), fanout('pushed', perDelivery)]);
    expect(pushed.deliveries).toBe(base.deliveries);
    expect(base.sizeMax).toBeGreaterThan(4000); // the celebrity's post: a chunk of 4,000 deliveries and the rest
    // A 4,000-delivery chunk takes 20 µs × 4,000 = 80 ms longer at 25 µs than at 5 µs a delivery.
    expect(pushed.lagMax! - base.lagMax!).toBeGreaterThan(60);
  }, 120_000);

  it('calibrate writes a valid profile of this machine with every route measured; validate writes its three files, each figure marked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-cal-'));
    const file = join(dir, 'profile.json');
    const cal = await scalegram(['calibrate', '--iterations', '4', '--part-samples', '10', '--idle-seconds', '1', '--out', file, '-q']);
    expect(cal.code, cal.stderr).toBe(0);
    const p = parseCalibration(readFileSync(file, 'utf8'));
    expect(Object.keys(p.routes).sort()).toEqual(['comment', 'feed', 'follow', 'like', 'media', 'signup', 'upload', 'user_media']);
    expect(p.routes.signup!.requests).toBe(4);
    expect(p.routes.feed!.work.redisCommands).toBeGreaterThanOrEqual(1);
    expect(p.routes.upload!.work.jobsQueued).toBeGreaterThanOrEqual(1);
    expect(p.parts['redis.push1000']!.p50Us).toBeGreaterThan(p.parts['redis.lrange']!.p50Us);
    expect(p.costs.redisPushUs).toBeCloseTo(p.parts['redis.push1000']!.p50Us / 1000, 3);
    // Too few requests of each outcome to fit them apart: each route is fitted as a whole, its
    // outcomes recorded (they add up to its requests).
    for (const r of Object.values(p.routes)) {
      expect(r.cpuMs).toBeCloseTo(Math.max(0, r.p50Ms - r.modelledWorkMs), 2);
      expect(Object.values(r.outcomes ?? {}).reduce((a, o) => a + o.requests, 0)).toBe(r.requests);
    }
    for (const v of Object.values(p.costs.cpuSpread ?? {})) expect(v).toBeGreaterThanOrEqual(1);
    expect(p.app).toEqual({ appServers: 1, workersPerServer: 1 });
    expect(p.machine.cores).toBeGreaterThanOrEqual(1);
    expect(p.commit.sha).toMatch(/^([0-9a-f]{40}|unknown)$/);
    expect(cal.stdout).toContain('profile: ' + file);

    const out = join(dir, 'validate');
    const v = await scalegram(['validate', 'scenarios/calibrate.ts', '--seed', '2', '-e', 'ITERATIONS=3', '--calibration', file, '--out', out, '-q']);
    expect([0, 1], v.stderr).toContain(v.code);
    for (const f of ['validate.json', 'validate.md', 'validate.html', 'live/result.json', 'simulated/result.json']) expect(existsSync(join(out, f)), f).toBe(true);
    const doc = JSON.parse(readFileSync(join(out, 'validate.json'), 'utf8')) as { rows: Array<{ group: string; figure: string; pass: boolean }>; failed: number; verdict: string };
    expect(doc.rows.filter((r) => r.group === 'route').map((r) => r.figure)).toContain('feed p50');
    expect(doc.rows.some((r) => r.group === 'shard')).toBe(true);
    expect(doc.rows.some((r) => r.figure === 'hit ratio')).toBe(true);
    expect(v.code).toBe(doc.verdict === 'passed' ? 0 : 1);
    const md = readFileSync(join(out, 'validate.md'), 'utf8');
    const marked = md.split('\n').filter((l) => /\| (pass|\*\*fail\*\*) \|$/.test(l));
    expect(marked).toHaveLength(doc.rows.length);
    expect(readFileSync(join(out, 'validate.html'), 'utf8').match(/<td class="(ok|bad)">(pass|fail)<\/td>/g)).toHaveLength(doc.rows.length);

    // The judgement itself, on these two runs: a run against itself passes every figure; a live run
    // whose server loop saturated is not valid for conclusions, whatever its figures say.
    const live = JSON.parse(readFileSync(join(out, 'live/result.json'), 'utf8')) as ResultDocument;
    const simulated = JSON.parse(readFileSync(join(out, 'simulated/result.json'), 'utf8')) as ResultDocument;
    const input = { scenario: 'calibrate', seed: 2, scale: 1, speed: 1, env: {}, calibration: { file: file, how: 'test', machine: 'here', commit: 'c' }, machine: 'here', liveDir: 'live', simulatedDir: 'simulated' };
    const self = validation(live, live, input);
    expect(self.failed).toBe(0);
    expect(self.verdict).toBe('passed');
    expect(self.rows.every((r) => r.diff === 0)).toBe(true);
    const saturated = structuredClone(live);
    saturated.harness = { eventLoopDelayMs: { p50: 1, p99: 5, max: 10 }, server: 'thread', serverEventLoopDelayMs: { p50: 50, p99: 150, max: 400 } };
    const judged = validation(saturated, simulated, input);
    expect(judged.verdict).toBe('not valid');
    expect(judged.liveInvalid[0]).toMatch(/server event loop was saturated/);
    // Four live runs (calibrate's two, validate's) and a simulation, in child processes.
  }, 180_000);
});
