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
import { isSimError } from '../sim/engine/errors.ts';

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

async function scalegram(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, ['bin/scalegram.mjs', ...args], { cwd: ROOT, timeout: 120_000 });
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
  const run = async (p: Calibration, seed = 5) => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-cal-'));
    writeFileSync(join(dir, 'profile.json'), JSON.stringify(p));
    const r = await scalegram(['simulate', FIXTURE, '--seed', String(seed), '--calibration', join(dir, 'profile.json'), '--out', join(dir, 'out'), '-q']);
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
  });
});

describe('calibrate and validate on a tiny workload', () => {
  it('calibrate writes a valid profile of this machine with every route measured; validate writes its three files, each figure marked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-cal-'));
    const file = join(dir, 'profile.json');
    const cal = await scalegram(['calibrate', '--iterations', '4', '--part-samples', '10', '--out', file, '-q']);
    expect(cal.code, cal.stderr).toBe(0);
    const p = parseCalibration(readFileSync(file, 'utf8'));
    expect(Object.keys(p.routes).sort()).toEqual(['comment', 'feed', 'follow', 'like', 'media', 'signup', 'upload', 'user_media']);
    expect(p.routes.signup!.requests).toBe(4);
    expect(p.routes.feed!.work.redisCommands).toBeGreaterThanOrEqual(1);
    expect(p.routes.upload!.work.jobsQueued).toBeGreaterThanOrEqual(1);
    for (const r of Object.values(p.routes)) expect(r.cpuMs).toBeCloseTo(Math.max(0, r.p50Ms - r.modelledWorkMs), 2);
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
  });
});
