// Option resolution for the scenario runner: k6's defaults per executor, the top-level shortcuts, the
// speed and scale knobs, and the field each kind of bad option is reported against (the CLI exits 104).

import { describe, expect, it } from 'vitest';
import { OptionsError, parseStages, resolveOptions, shortcutsFromEnv, withShortcuts, type Knobs, type ResolvedOptions } from '../scenarios/runner/options.ts';

const plain: Knobs = { speed: 1, scale: 1, execNames: ['default', 'feed', 'upload'] };

function resolve(raw: unknown, knobs: Partial<Knobs> = {}): ResolvedOptions {
  return resolveOptions(raw, { ...plain, ...knobs });
}

function one(scenario: Record<string, unknown>, knobs: Partial<Knobs> = {}) {
  return resolve({ scenarios: { s: scenario } }, knobs).scenarios[0]!;
}

function fieldOf(raw: unknown, knobs: Partial<Knobs> = {}): string {
  try {
    resolve(raw, knobs);
  } catch (err) {
    if (err instanceof OptionsError) {
      // The message names the field too, so a user reading it knows where to look.
      expect(err.message).toContain(err.field);
      return err.field;
    }
    throw err;
  }
  throw new Error('expected an OptionsError');
}

const common = { startTimeMs: 0, gracefulStopMs: 30_000, exec: 'default', env: {}, tags: {} };

describe('resolveOptions: k6 defaults per executor', () => {
  it.each([
    [{ executor: 'shared-iterations' }, { vus: 1, iterations: 1, maxDurationMs: 600_000 }],
    [{ executor: 'per-vu-iterations' }, { vus: 1, iterations: 1, maxDurationMs: 600_000 }],
    [{ executor: 'constant-vus', duration: '30s' }, { vus: 1, durationMs: 30_000 }],
    [
      { executor: 'ramping-vus', stages: [{ duration: '10s', target: 5 }] },
      { startVUs: 1, stages: [{ durationMs: 10_000, target: 5 }], gracefulRampDownMs: 30_000 },
    ],
    [
      { executor: 'constant-arrival-rate', rate: 10, duration: '1m', preAllocatedVUs: 4 },
      { rate: 10, timeUnitMs: 1000, durationMs: 60_000, preAllocatedVUs: 4, maxVUs: 4 },
    ],
    [
      { executor: 'ramping-arrival-rate', stages: [{ duration: '1m', target: 50 }], preAllocatedVUs: 2, maxVUs: 9 },
      { startRate: 0, timeUnitMs: 1000, stages: [{ durationMs: 60_000, target: 50 }], preAllocatedVUs: 2, maxVUs: 9 },
    ],
  ])('%j fills in k6 defaults', (input, expected) => {
    expect(one(input)).toEqual({ name: 's', executor: input.executor, ...common, ...expected });
  });

  it('reads the common options: startTime, gracefulStop, exec, env and tags', () => {
    const s = one({
      executor: 'constant-vus',
      duration: '1m30s',
      startTime: '2d3h',
      gracefulStop: 1500,
      exec: 'feed',
      env: { MODE: 'x' },
      tags: { kind: 'read' },
    });
    expect(s).toMatchObject({
      durationMs: 90_000,
      startTimeMs: 2 * 86_400_000 + 3 * 3_600_000,
      gracefulStopMs: 1500,
      exec: 'feed',
      env: { MODE: 'x' },
      tags: { kind: 'read' },
    });
  });

  it('accepts every unit of the k6 duration grammar', () => {
    const ms = (d: unknown) => (one({ executor: 'constant-vus', duration: '10s', startTime: d }) as { startTimeMs: number }).startTimeMs;
    expect(ms('500ms')).toBe(500);
    expect(ms('1.5h')).toBe(5_400_000);
    expect(ms('1h2m3.5s')).toBe(3_723_500);
    expect(ms('250us')).toBeCloseTo(0.25, 9);
    expect(ms('2d')).toBe(172_800_000);
    expect(ms('1500')).toBe(1500);
    expect(ms(0)).toBe(0);
    expect(ms('0')).toBe(0);
  });

  it('keeps scenarios in the order the script declares them', () => {
    const r = resolve({
      scenarios: {
        b: { executor: 'constant-vus', duration: '1s' },
        a: { executor: 'per-vu-iterations' },
      },
    });
    expect(r.scenarios.map((s) => s.name)).toEqual(['b', 'a']);
  });

  it('fills the top-level defaults and passes thresholds through as written', () => {
    const thresholds = { http_req_duration: ['p(95)<50', { threshold: 'p(99)<100', abortOnFail: true }] };
    const raw = { iterations: 1, thresholds, discardResponseBodies: true };
    const r = resolve(raw);
    expect(r.thresholds).toEqual(thresholds);
    expect(r.setupTimeoutMs).toBe(60_000);
    expect(r.teardownTimeoutMs).toBe(60_000);
    expect(r.summaryTrendStats).toEqual(['avg', 'min', 'med', 'max', 'p(90)', 'p(95)']);
    expect(r.noConnectionReuse).toBe(false);
    expect(r.userAgent).toMatch(/scalegram/);
    expect(r.raw).toBe(raw);
  });

  it('is frozen, so no part of the runner can change the recorded config', () => {
    const r = resolve({ vus: 2, duration: '5s' });
    expect(Object.isFrozen(r)).toBe(true);
    expect(Object.isFrozen(r.scenarios[0])).toBe(true);
    expect(() => (r.scenarios as unknown[]).push({})).toThrow();
  });
});

describe('resolveOptions: top-level shortcuts become the scenario "default", as in k6', () => {
  it.each([
    [{}, { executor: 'per-vu-iterations', vus: 1, iterations: 1, maxDurationMs: 600_000 }],
    [{ scenarios: {} }, { executor: 'per-vu-iterations', vus: 1, iterations: 1 }],
    [{ vus: 10, duration: '30s' }, { executor: 'constant-vus', vus: 10, durationMs: 30_000 }],
    [{ duration: '30s' }, { executor: 'constant-vus', vus: 1, durationMs: 30_000 }],
    [{ iterations: 20, vus: 4 }, { executor: 'shared-iterations', vus: 4, iterations: 20, maxDurationMs: 600_000 }],
    [{ iterations: 20, duration: '1m' }, { executor: 'shared-iterations', vus: 1, iterations: 20, maxDurationMs: 60_000 }],
    // Measured with k6 v0.48: vus alone is ignored (with a warning), one iteration on one VU.
    [{ vus: 5 }, { executor: 'per-vu-iterations', vus: 1, iterations: 1 }],
    [
      { stages: [{ duration: '10s', target: 5 }, { duration: '5s', target: 0 }], vus: 2 },
      { executor: 'ramping-vus', startVUs: 2, stages: [{ durationMs: 10_000, target: 5 }, { durationMs: 5000, target: 0 }] },
    ],
  ])('%j → %j', (raw, expected) => {
    const r = resolve(raw);
    expect(r.scenarios).toHaveLength(1);
    expect(r.scenarios[0]).toMatchObject({ name: 'default', exec: 'default', ...expected });
  });

  it('an undefined options export runs one iteration on one VU', () => {
    expect(resolve(undefined).scenarios[0]).toMatchObject({ executor: 'per-vu-iterations', vus: 1, iterations: 1 });
  });
});

describe('resolveOptions: speed compresses time, scale multiplies load', () => {
  it('12 hours at speed 720 take one minute', () => {
    const s = one({ executor: 'constant-vus', duration: '12h' }, { speed: 720 });
    expect(s).toMatchObject({ durationMs: 60_000 });
  });

  it('divides every scenario duration by speed', () => {
    const s = one(
      {
        executor: 'ramping-arrival-rate',
        startTime: '1h',
        gracefulStop: '1m',
        timeUnit: '1m',
        stages: [{ duration: '2h', target: 60 }],
        preAllocatedVUs: 1,
      },
      { speed: 60 },
    );
    expect(s).toMatchObject({ startTimeMs: 60_000, gracefulStopMs: 1000, timeUnitMs: 1000, stages: [{ durationMs: 120_000, target: 60 }] });
    const r = one({ executor: 'ramping-vus', gracefulRampDown: '30s', stages: [{ duration: '1m', target: 3 }] }, { speed: 10 });
    expect(r).toMatchObject({ gracefulRampDownMs: 3000, stages: [{ durationMs: 6000, target: 3 }] });
    const m = one({ executor: 'per-vu-iterations', maxDuration: '10m' }, { speed: 600 });
    expect(m).toMatchObject({ maxDurationMs: 1000 });
  });

  it('keeps a scaled rate fractional: 23/s at scale 0.05 is 1.15/s', () => {
    const s = one(
      { executor: 'constant-arrival-rate', rate: 23, timeUnit: '1s', duration: '12h', preAllocatedVUs: 40, maxVUs: 200 },
      { speed: 720, scale: 0.05 },
    );
    // The VU pool follows the arrival rate per second of wall time (× scale × speed = × 36), up to
    // the counts written; at scale 0.001 (× 0.72) it is scaled down.
    expect(s).toMatchObject({ rate: 1.15, preAllocatedVUs: 40, maxVUs: 200, durationMs: 60_000 });
    // Per real second: 23 × 0.05 × 720 = 828 arrivals.
    const c = s as { rate: number; timeUnitMs: number };
    expect((c.rate / c.timeUnitMs) * 1000).toBeCloseTo(828, 6);
    expect(one({ executor: 'constant-arrival-rate', rate: 23, duration: '12h', preAllocatedVUs: 40, maxVUs: 200 }, { speed: 720, scale: 0.001 })).toMatchObject({ preAllocatedVUs: 29, maxVUs: 144 });
    // Closed-model VUs are the load itself: scale only, whatever the speed.
    expect(one({ executor: 'constant-vus', vus: 10, duration: '1m' }, { speed: 10, scale: 0.5 })).toMatchObject({ vus: 5, durationMs: 6000 });
  });

  it('scales VU and iteration counts, rounding, and never turns a positive count into 0', () => {
    expect(one({ executor: 'shared-iterations', vus: 10, iterations: 25_000 }, { scale: 0.05 })).toMatchObject({ vus: 1, iterations: 1250 });
    expect(one({ executor: 'per-vu-iterations', vus: 3, iterations: 7 }, { scale: 0.01 })).toMatchObject({ vus: 1, iterations: 1 });
    expect(
      one({ executor: 'ramping-vus', startVUs: 0, stages: [{ duration: '1s', target: 100 }, { duration: '1s', target: 0 }] }, { scale: 0.25 }),
    ).toMatchObject({ startVUs: 0, stages: [{ target: 25 }, { target: 0 }] });
    expect(
      one({ executor: 'ramping-arrival-rate', startRate: 10, stages: [{ duration: '1s', target: 3 }], preAllocatedVUs: 0, maxVUs: 30 }, { scale: 0.5 }),
    ).toMatchObject({ startRate: 5, stages: [{ target: 1.5 }], preAllocatedVUs: 0, maxVUs: 15 });
  });

  it('rejects a speed or scale that is not a positive number', () => {
    expect(fieldOf({}, { speed: 0 })).toBe('speed');
    expect(fieldOf({}, { scale: -1 })).toBe('scale');
    expect(fieldOf({}, { speed: Number.NaN })).toBe('speed');
  });
});

describe('resolveOptions: bad options are OptionsErrors naming the field', () => {
  it.each([
    ['an unknown executor', { scenarios: { feed: { executor: 'externally-controlled' } } }, 'scenarios.feed.executor'],
    ['a missing executor', { scenarios: { feed: { vus: 1 } } }, 'scenarios.feed.executor'],
    ['a bad duration', { scenarios: { feed: { executor: 'constant-vus', duration: '10 seconds' } } }, 'scenarios.feed.duration'],
    ['a duration of the wrong type', { scenarios: { feed: { executor: 'constant-vus', duration: true } } }, 'scenarios.feed.duration'],
    ['a negative startTime', { scenarios: { feed: { executor: 'constant-vus', duration: '1s', startTime: '-1s' } } }, 'scenarios.feed.startTime'],
    ['negative vus', { scenarios: { feed: { executor: 'constant-vus', duration: '1s', vus: -3 } } }, 'scenarios.feed.vus'],
    ['zero vus for constant-vus', { scenarios: { feed: { executor: 'constant-vus', duration: '1s', vus: 0 } } }, 'scenarios.feed.vus'],
    ['fractional vus', { scenarios: { feed: { executor: 'constant-vus', duration: '1s', vus: 1.5 } } }, 'scenarios.feed.vus'],
    ['a duration under k6\u2019s 1s minimum', { scenarios: { feed: { executor: 'constant-vus', duration: '500ms' } } }, 'scenarios.feed.duration'],
    [
      'maxVUs < preAllocatedVUs',
      { scenarios: { feed: { executor: 'constant-arrival-rate', rate: 5, duration: '1m', preAllocatedVUs: 10, maxVUs: 5 } } },
      'scenarios.feed.maxVUs',
    ],
    [
      'a missing rate',
      { scenarios: { feed: { executor: 'constant-arrival-rate', duration: '1m', preAllocatedVUs: 10 } } },
      'scenarios.feed.rate',
    ],
    [
      'a zero rate',
      { scenarios: { feed: { executor: 'constant-arrival-rate', rate: 0, duration: '1m', preAllocatedVUs: 1 } } },
      'scenarios.feed.rate',
    ],
    [
      'a missing preAllocatedVUs',
      { scenarios: { feed: { executor: 'ramping-arrival-rate', stages: [{ duration: '1s', target: 1 }] } } },
      'scenarios.feed.preAllocatedVUs',
    ],
    [
      'an option another executor has (unknown key)',
      { scenarios: { feed: { executor: 'constant-vus', duration: '1m', rate: 5 } } },
      'scenarios.feed.rate',
    ],
    ['a misspelt key', { scenarios: { feed: { executor: 'constant-vus', duration: '1m', gracefullStop: '1s' } } }, 'scenarios.feed.gracefullStop'],
    ['exec naming no exported function', { scenarios: { feed: { executor: 'per-vu-iterations', exec: 'missing' } } }, 'scenarios.feed.exec'],
    ['env values that are not strings', { scenarios: { feed: { executor: 'per-vu-iterations', env: { N: 1 } } } }, 'scenarios.feed.env.N'],
    [
      'a stage with a negative target',
      { scenarios: { feed: { executor: 'ramping-vus', stages: [{ duration: '1s', target: -1 }] } } },
      'scenarios.feed.stages[0].target',
    ],
    [
      'a stage with a bad duration',
      { scenarios: { feed: { executor: 'ramping-vus', stages: [{ duration: '1s', target: 2 }, { duration: 'soon', target: 1 }] } } },
      'scenarios.feed.stages[1].duration',
    ],
    ['no stages', { scenarios: { feed: { executor: 'ramping-vus', stages: [] } } }, 'scenarios.feed.stages'],
    ['stages that never have a VU', { scenarios: { feed: { executor: 'ramping-vus', startVUs: 0, stages: [{ duration: '1s', target: 0 }] } } }, 'scenarios.feed.stages'],
    ['fewer shared iterations than VUs', { scenarios: { feed: { executor: 'shared-iterations', vus: 5, iterations: 2 } } }, 'scenarios.feed.iterations'],
    ['a scenario name k6 refuses', { scenarios: { 'feed reads': { executor: 'per-vu-iterations' } } }, 'scenarios.feed reads'],
    ['a scenario that is not an object', { scenarios: { feed: 3 } }, 'scenarios.feed'],
    ['scenarios that are not an object', { scenarios: [] }, 'scenarios'],
    ['options that are not an object', 'fast', 'options'],
    ['thresholds that are not lists', { thresholds: { http_req_duration: 'p(95)<50' } }, 'thresholds.http_req_duration'],
    ['a top-level vus that is negative', { vus: -1, duration: '10s' }, 'vus'],
    ['a shortcut with zero VUs', { vus: 0, duration: '10s' }, 'vus'],
    ['a bad top-level duration', { duration: 'forever' }, 'duration'],
    ['duration and scenarios together', { duration: '10s', scenarios: { a: { executor: 'per-vu-iterations' } } }, 'scenarios'],
    ['iterations and scenarios together', { iterations: 3, scenarios: { a: { executor: 'per-vu-iterations' } } }, 'scenarios'],
    ['stages and scenarios together', { stages: [{ duration: '1s', target: 1 }], scenarios: {} }, 'scenarios'],
    ['iterations and stages together', { iterations: 3, stages: [{ duration: '1s', target: 1 }] }, 'stages'],
    ['duration and stages together', { duration: '3s', stages: [{ duration: '1s', target: 1 }] }, 'stages'],
    ['a shortcut whose default function is not exported', { vus: 1, duration: '1s' }, 'scenarios.default.exec', { execNames: ['feed'] }],
  ])('%s', (_what, raw, field, knobs?: Partial<Knobs>) => {
    expect(fieldOf(raw, knobs)).toBe(field);
  });

  it('ignores a top-level vus next to scenarios, as k6 does', () => {
    const r = resolve({ vus: 7, scenarios: { a: { executor: 'constant-vus', duration: '1s', vus: 2 } } });
    expect(r.scenarios).toEqual([expect.objectContaining({ name: 'a', vus: 2 })]);
  });
});

describe("k6's command-line and environment shortcuts (--vus, --duration, --iterations, --stage, K6_*)", () => {
  const script = { vus: 3, scenarios: { feed: { executor: 'constant-arrival-rate', rate: 5, duration: '1m', preAllocatedVUs: 2, exec: 'feed' } }, thresholds: { checks: ['rate>0.9'] } };

  it('overrides vus alone, and keeps the script\'s scenarios', () => {
    const merged = withShortcuts(script, [{ vus: 7 }]) as typeof script;
    expect(merged.vus).toBe(7);
    expect(resolve(merged).scenarios.map((s) => s.name)).toEqual(['feed']);
  });

  it('replaces the script\'s scenarios when a layer sets duration, iterations or stages, as k6\'s Options.Apply does', () => {
    const r = resolve(withShortcuts(script, [{ vus: 4, duration: '30s' }]));
    expect(r.scenarios).toHaveLength(1);
    expect(r.scenarios[0]).toMatchObject({ name: 'default', executor: 'constant-vus', vus: 4, durationMs: 30_000 });
    expect(r.thresholds).toEqual({ checks: ['rate>0.9'] });
  });

  it('lets the command line win over the environment, field by field', () => {
    const env = shortcutsFromEnv({ K6_VUS: '2', K6_STAGES: '10s:5,20s:0' });
    expect(env).toEqual({ vus: 2, stages: [{ duration: '10s', target: 5 }, { duration: '20s', target: 0 }] });
    const r = resolve(withShortcuts({}, [env, { iterations: 9 }]));
    // The flag's iterations replaced the environment's stages; the environment's vus stays.
    expect(r.scenarios[0]).toMatchObject({ executor: 'shared-iterations', iterations: 9, vus: 2 });
    expect(resolve(withShortcuts({}, [env, {}])).scenarios[0]).toMatchObject({ executor: 'ramping-vus', startVUs: 2 });
  });

  it('refuses a malformed stage or count with the variable it came from', () => {
    expect(() => parseStages('30s-10', '--stage')).toThrow(/--stage: a stage is DURATION:TARGET/);
    expect(() => shortcutsFromEnv({ K6_VUS: 'ten' })).toThrow(OptionsError);
    expect(() => shortcutsFromEnv({ K6_VUS: 'ten' })).toThrow(/K6_VUS/);
  });

  it('warns, as k6 does, that vus alone is ignored', () => {
    expect(resolve({ vus: 5 }).warnings).toEqual(['the `vus=5` option will be ignored, it only works in conjunction with `iterations`, `duration`, or `stages`']);
    expect(resolve({ vus: 5, duration: '1s' }).warnings).toEqual([]);
    expect(resolve(script).warnings).toEqual([]);
  });

  it('warns that an executionSegment is not applied (the whole test runs) and keeps it in the raw options', () => {
    const r = resolve({ iterations: 2, executionSegment: '0:1/2', executionSegmentSequence: '0,1/2,1' } as never);
    expect(r.warnings).toEqual(['the `executionSegment` option is not applied here: this runner runs the whole test, not one segment of it (exec.test.options still carries it)']);
    expect((r.raw as { executionSegment: string }).executionSegment).toBe('0:1/2');
  });
});
