// A script's exported `options`, validated once at the edge and resolved to plain millisecond and count
// values: k6's names, defaults and shortcut rules, then Scalegram's two knobs (speed and scale) applied.
//
// Decisions worth knowing (each mirrors k6 unless it says otherwise):
// - Scenario options are a union discriminated by `executor` (one TypeBox schema per executor, unknown
//   keys rejected, as k6's strict JSON decoding does). Top-level keys this runner does not use are kept
//   in `raw` and otherwise ignored, as k6 ignores options it does not know.
// - Durations use k6's grammar: Go durations ('1h2m3.5s', '500ms', '1.5h', '300us'), an optional leading
//   whole number of days ('2d12h'), or a number / numeric string meaning milliseconds.
// - `speed` divides every scenario duration (startTime, gracefulStop, gracefulRampDown, duration,
//   maxDuration, stage durations, timeUnit): time compression. Validation of k6's minimums (a duration of
//   at least 1s) applies to the values as written, before compression, so a script valid here is valid
//   under real k6. setupTimeout/teardownTimeout are not compressed: setup does real, uncompressible work.
// - `scale` multiplies rates, VU counts and iteration counts. Counts round to the nearest integer, and a
//   count written as positive never becomes 0 (at least 1). The VU pools of the arrival-rate executors
//   (preAllocatedVUs, maxVUs) are capacity for the arrival rate per second of wall time, which speed
//   raises too: they follow scale × speed, so that compression does not starve a run scaled down to fit
//   the machine — but never beyond the counts written, which stay the script's ceiling (as maxVUs is in
//   k6): a plan the machine cannot serve drops iterations, visibly, rather than opening thousands of
//   connections. Closed-model VU counts are the load itself and take scale only. Rates stay fractional (23/s at scale 0.05 is
//   1.15/s): arrival times are computed as t0 + i·timeUnit/rate, so a fractional rate is exact, whereas
//   rounding it would change the load and stretching timeUnit to keep it integral would say the same
//   thing less plainly. The rate a script writes must still be a positive integer, as in k6.

import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

export const EXECUTOR_NAMES = [
  'shared-iterations',
  'per-vu-iterations',
  'constant-vus',
  'ramping-vus',
  'constant-arrival-rate',
  'ramping-arrival-rate',
] as const;
export type ExecutorName = (typeof EXECUTOR_NAMES)[number];

/** A bad `options` export. `field` is a dotted path such as "scenarios.feed.rate"; the CLI exits 104 (k6's InvalidConfig). */
export class OptionsError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'OptionsError';
    this.field = field;
  }
}

export interface ResolvedScenarioBase {
  name: string;
  executor: ExecutorName;
  /** Offset from the test start (ms, after speed). */
  startTimeMs: number;
  /** Time running iterations get to finish after the scenario's regular end before they are interrupted (ms, after speed). */
  gracefulStopMs: number;
  /** Name of the exported function each iteration calls. */
  exec: string;
  /** Scenario-level environment, merged over the global env by the runner. */
  env: Record<string, string>;
  /** Scenario-level tags (the runner adds `scenario: name`). */
  tags: Record<string, string>;
}

export interface ResolvedStage {
  /** Length of the stage (ms, after speed). */
  durationMs: number;
  /** VUs (ramping-vus) or iterations per timeUnit (ramping-arrival-rate) at the stage's end, after scale. */
  target: number;
}

export type ResolvedScenario = ResolvedScenarioBase &
  (
    | { executor: 'shared-iterations'; vus: number; iterations: number; maxDurationMs: number }
    | { executor: 'per-vu-iterations'; vus: number; iterations: number; maxDurationMs: number }
    | { executor: 'constant-vus'; vus: number; durationMs: number }
    | { executor: 'ramping-vus'; startVUs: number; stages: ResolvedStage[]; gracefulRampDownMs: number }
    | {
        executor: 'constant-arrival-rate';
        /** Iterations started per timeUnit (after scale; may be fractional). */
        rate: number;
        timeUnitMs: number;
        durationMs: number;
        preAllocatedVUs: number;
        maxVUs: number;
      }
    | {
        executor: 'ramping-arrival-rate';
        /** Iterations per timeUnit at the start (after scale; may be fractional). */
        startRate: number;
        timeUnitMs: number;
        stages: ResolvedStage[];
        preAllocatedVUs: number;
        maxVUs: number;
      }
  );

export type ScenarioOf<E extends ExecutorName> = Extract<ResolvedScenario, { executor: E }>;

export interface ResolvedOptions {
  /** What k6 would warn about these options (printed by the runner, not fatal). */
  warnings: readonly string[];
  scenarios: ResolvedScenario[];
  /** Passed through as written; thresholds.ts validates the expressions. */
  thresholds: Record<string, unknown[]>;
  setupTimeoutMs: number;
  teardownTimeoutMs: number;
  summaryTrendStats: string[];
  noConnectionReuse: boolean;
  userAgent: string;
  /** The options object as the script exported it. */
  raw: unknown;
}

export interface Knobs {
  /** Time compression: every scenario duration is divided by this (> 0). */
  speed: number;
  /** Population scale: rates, VU counts and iteration counts are multiplied by this (> 0). */
  scale: number;
  /** Names of the functions the script exports; `exec` must name one of them. */
  execNames: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// Durations (k6's lib/types ParseExtendedDuration). Private until thresholds.ts's parser is shared.

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const GO_DURATION = /^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const GO_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;
const PLAIN_MS = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;
const DAY_MS = 86_400_000;

function parseGoDuration(text: string): number | undefined {
  if (text === '0' || text === '+0' || text === '-0') return 0;
  if (!GO_DURATION.test(text)) return undefined;
  const sign = text.startsWith('-') ? -1 : 1;
  let total = 0;
  for (const m of text.matchAll(GO_PART)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return sign * total;
}

/** k6 duration text → ms, or undefined when it is not one. */
function parseDurationText(text: string): number | undefined {
  if (PLAIN_MS.test(text)) return Number(text);
  const d = text.indexOf('d');
  if (d < 0) return parseGoDuration(text);
  const days = text.slice(0, d);
  if (!/^[-+]?\d+$/.test(days)) return undefined;
  const rest = text.slice(d + 1);
  const restMs = rest === '' ? 0 : parseGoDuration(rest);
  if (restMs === undefined || restMs < 0) return undefined;
  const n = Number(days);
  return n * DAY_MS + (days.startsWith('-') ? -restMs : restMs);
}

// ---------------------------------------------------------------------------------------------
// Schemas. Each executor's schema lists exactly the keys k6 accepts for it.

/** Marks schemas whose TypeBox error message we replace with a clearer one. */
const KIND = 'x-scalegram-kind';

const Duration = Type.Union([Type.String(), Type.Number()], {
  [KIND]: 'duration',
  description: "k6 duration: '30s', '1m30s', '500ms', '2d', or a number of milliseconds.",
});
const Count = Type.Integer({ minimum: 0, description: 'A whole number, not negative.' });
const StringMap = Type.Record(Type.String(), Type.String());

const Stage = Type.Object(
  { duration: Duration, target: Count },
  { additionalProperties: false, description: 'Reach `target` linearly over `duration`.' },
);

const base = <E extends ExecutorName>(executor: E) => ({
  executor: Type.Literal(executor),
  startTime: Type.Optional(Duration),
  gracefulStop: Type.Optional(Duration),
  exec: Type.Optional(Type.String({ minLength: 1 })),
  env: Type.Optional(StringMap),
  tags: Type.Optional(StringMap),
});
const strict = { additionalProperties: false } as const;

export const SharedIterationsSchema = Type.Object(
  { ...base('shared-iterations'), vus: Type.Optional(Count), iterations: Type.Optional(Count), maxDuration: Type.Optional(Duration) },
  strict,
);
export const PerVuIterationsSchema = Type.Object(
  { ...base('per-vu-iterations'), vus: Type.Optional(Count), iterations: Type.Optional(Count), maxDuration: Type.Optional(Duration) },
  strict,
);
export const ConstantVusSchema = Type.Object({ ...base('constant-vus'), vus: Type.Optional(Count), duration: Duration }, strict);
export const RampingVusSchema = Type.Object(
  { ...base('ramping-vus'), startVUs: Type.Optional(Count), stages: Type.Array(Stage), gracefulRampDown: Type.Optional(Duration) },
  strict,
);
export const ConstantArrivalRateSchema = Type.Object(
  {
    ...base('constant-arrival-rate'),
    rate: Count,
    timeUnit: Type.Optional(Duration),
    duration: Duration,
    preAllocatedVUs: Count,
    maxVUs: Type.Optional(Count),
  },
  strict,
);
export const RampingArrivalRateSchema = Type.Object(
  {
    ...base('ramping-arrival-rate'),
    startRate: Type.Optional(Count),
    timeUnit: Type.Optional(Duration),
    stages: Type.Array(Stage),
    preAllocatedVUs: Count,
    maxVUs: Type.Optional(Count),
  },
  strict,
);

const SCHEMAS = {
  'shared-iterations': SharedIterationsSchema,
  'per-vu-iterations': PerVuIterationsSchema,
  'constant-vus': ConstantVusSchema,
  'ramping-vus': RampingVusSchema,
  'constant-arrival-rate': ConstantArrivalRateSchema,
  'ramping-arrival-rate': RampingArrivalRateSchema,
} as const;

/** One scenario as a script writes it: the union discriminated by `executor`, as in k6. */
export const ScenarioSchema = Type.Union(Object.values(SCHEMAS));
export type ScenarioInput = Static<typeof ScenarioSchema>;

/** The top-level keys this runner reads; any other key is left in `raw`. */
export const OptionsSchema = Type.Object(
  {
    scenarios: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    vus: Type.Optional(Count),
    duration: Type.Optional(Duration),
    iterations: Type.Optional(Count),
    stages: Type.Optional(Type.Array(Stage)),
    thresholds: Type.Optional(Type.Record(Type.String(), Type.Array(Type.Unknown()))),
    setupTimeout: Type.Optional(Duration),
    teardownTimeout: Type.Optional(Duration),
    summaryTrendStats: Type.Optional(Type.Array(Type.String())),
    noConnectionReuse: Type.Optional(Type.Boolean()),
    userAgent: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
type OptionsInput = Static<typeof OptionsSchema>;

// k6 defaults (lib/options.go, lib/executor/*.go).
const DEFAULT_GRACEFUL_STOP_MS = 30_000;
const DEFAULT_GRACEFUL_RAMP_DOWN_MS = 30_000;
const DEFAULT_MAX_DURATION_MS = 600_000;
const DEFAULT_TIME_UNIT_MS = 1000;
const DEFAULT_SETUP_TIMEOUT_MS = 60_000;
const DEFAULT_TEARDOWN_TIMEOUT_MS = 60_000;
/** k6 refuses a `duration`/`maxDuration` shorter than this (lib/executor minDuration). */
const MIN_DURATION_MS = 1000;
const DEFAULT_SUMMARY_TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)'];
const DEFAULT_USER_AGENT = 'scalegram/0.1.0 (k6-compatible; https://k6.io/)';
const SCENARIO_NAME = /^[0-9a-zA-Z_-]+$/;
/** The scenario k6 builds from top-level shortcuts (lib.DefaultScenarioName). */
export const DEFAULT_SCENARIO_NAME = 'default';

// ---------------------------------------------------------------------------------------------

/** Turns a TypeBox error path ("/stages/0/target") into our dotted form ("stages[0].target"). */
function pathToField(path: string): string {
  let out = '';
  for (const part of path.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(key)) out += `[${key}]`;
    else out += out === '' ? key : `.${key}`;
  }
  return out;
}

/** The first schema error as an OptionsError; `field` maps a path inside `value` to the reported field. */
function check(schema: TSchema, value: unknown, field: (inner: string) => string): void {
  const err = Value.Errors(schema, value).First();
  if (!err) return;
  const inner = pathToField(err.path);
  let message = err.message;
  if ((err.schema as Record<string, unknown>)[KIND] === 'duration') {
    message = "expected a duration such as '30s', '1m30s' or '500ms', or a number of milliseconds";
  } else if (err.message === 'Unexpected property') {
    message = 'unknown option';
  } else if (err.message === 'Expected required property') {
    message = 'required';
  }
  throw new OptionsError(field(inner), message);
}

/** Reads a duration (already type-checked) as ms; undefined when absent. */
function durationMs(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = typeof value === 'number' ? value : parseDurationText(value as string);
  if (ms === undefined || !Number.isFinite(ms)) throw new OptionsError(field, `invalid duration ${JSON.stringify(value)}`);
  if (ms < 0) throw new OptionsError(field, `must not be negative (got ${JSON.stringify(value)})`);
  return ms;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

interface Ctx {
  knobs: Knobs;
  /** Maps an option key of this scenario to the field name reported in errors. */
  field: (key: string) => string;
}

/** Applies `speed` to a duration. */
const compress = (ctx: Ctx, ms: number) => ms / ctx.knobs.speed;
/** Applies `scale` to a count; a positive count stays at least 1. */
const scaleCount = (ctx: Ctx, n: number) => (n === 0 ? 0 : Math.max(1, Math.round(n * ctx.knobs.scale)));
/** Applies scale × speed to an arrival-rate executor's VU pool, at most the count written (see the header). */
const scalePool = (ctx: Ctx, n: number) => (n === 0 ? 0 : Math.min(n, Math.max(1, Math.ceil(n * ctx.knobs.scale * ctx.knobs.speed - 1e-9))));
/** Applies `scale` to a rate, kept fractional (see the header); rounded to 1e-9 so 23 × 0.05 reads 1.15. */
const scaleRate = (ctx: Ctx, r: number) => Math.round(r * ctx.knobs.scale * 1e9) / 1e9;

function need(ctx: Ctx, ok: boolean, key: string, message: string): void {
  if (!ok) throw new OptionsError(ctx.field(key), message);
}

function resolveStages(ctx: Ctx, stages: Array<{ duration: unknown; target: number }>, isRate: boolean): ResolvedStage[] {
  need(ctx, stages.length > 0, 'stages', 'at least one stage has to be specified');
  return stages.map((st, i) => ({
    durationMs: compress(ctx, durationMs(st.duration, `${ctx.field('stages')}[${i}].duration`)!),
    target: isRate ? scaleRate(ctx, st.target) : scaleCount(ctx, st.target),
  }));
}

function resolveScenario(name: string, raw: unknown, ctx: Ctx): ResolvedScenario {
  if (!isPlainObject(raw)) throw new OptionsError(ctx.field(''), 'a scenario must be an object');
  const executor = raw.executor;
  if (typeof executor !== 'string' || !(EXECUTOR_NAMES as readonly string[]).includes(executor)) {
    throw new OptionsError(
      ctx.field('executor'),
      executor === undefined
        ? `missing; one of ${EXECUTOR_NAMES.join(', ')}`
        : `unknown executor ${JSON.stringify(executor)}; one of ${EXECUTOR_NAMES.join(', ')}`,
    );
  }
  const exe = executor as ExecutorName;
  check(SCHEMAS[exe], raw, ctx.field);
  const o = raw as Static<(typeof SCHEMAS)[ExecutorName]> & Record<string, unknown>;

  const exec = (o.exec as string | undefined) ?? 'default';
  need(
    ctx,
    ctx.knobs.execNames.includes(exec),
    'exec',
    `the script exports no function named ${JSON.stringify(exec)} (exports: ${ctx.knobs.execNames.join(', ') || 'none'})`,
  );
  const base: ResolvedScenarioBase = {
    name,
    executor: exe,
    startTimeMs: compress(ctx, durationMs(o.startTime, ctx.field('startTime')) ?? 0),
    gracefulStopMs: compress(ctx, durationMs(o.gracefulStop, ctx.field('gracefulStop')) ?? DEFAULT_GRACEFUL_STOP_MS),
    exec,
    env: { ...((o.env as Record<string, string> | undefined) ?? {}) },
    tags: { ...((o.tags as Record<string, string> | undefined) ?? {}) },
  };
  const atLeastMin = (key: string, ms: number) =>
    need(ctx, ms >= MIN_DURATION_MS, key, `should be at least 1s (got ${ms} ms)`);

  switch (exe) {
    case 'shared-iterations':
    case 'per-vu-iterations': {
      const vus = (o.vus as number | undefined) ?? 1;
      const iterations = (o.iterations as number | undefined) ?? 1;
      const maxDuration = durationMs(o.maxDuration, ctx.field('maxDuration')) ?? DEFAULT_MAX_DURATION_MS;
      need(ctx, vus > 0, 'vus', 'the number of VUs should be more than 0');
      need(ctx, iterations > 0, 'iterations', 'the number of iterations should be more than 0');
      if (exe === 'shared-iterations') {
        need(ctx, iterations >= vus, 'iterations', `the number of iterations (${iterations}) can't be less than the number of VUs (${vus})`);
      }
      atLeastMin('maxDuration', maxDuration);
      return {
        ...base,
        executor: exe,
        vus: scaleCount(ctx, vus),
        iterations: scaleCount(ctx, iterations),
        maxDurationMs: compress(ctx, maxDuration),
      };
    }
    case 'constant-vus': {
      const vus = (o.vus as number | undefined) ?? 1;
      const duration = durationMs(o.duration, ctx.field('duration'))!;
      need(ctx, vus > 0, 'vus', 'the number of VUs should be more than 0');
      atLeastMin('duration', duration);
      return { ...base, executor: exe, vus: scaleCount(ctx, vus), durationMs: compress(ctx, duration) };
    }
    case 'ramping-vus': {
      const startVUs = (o.startVUs as number | undefined) ?? 1;
      const stages = o.stages as Array<{ duration: unknown; target: number }>;
      need(
        ctx,
        Math.max(startVUs, ...stages.map((s) => s.target)) > 0,
        'stages',
        'either startVUs or one of the stages\u2019 target values must be greater than 0',
      );
      return {
        ...base,
        executor: exe,
        startVUs: scaleCount(ctx, startVUs),
        stages: resolveStages(ctx, stages, false),
        gracefulRampDownMs: compress(
          ctx,
          durationMs(o.gracefulRampDown, ctx.field('gracefulRampDown')) ?? DEFAULT_GRACEFUL_RAMP_DOWN_MS,
        ),
      };
    }
    case 'constant-arrival-rate': {
      const rate = o.rate as number;
      const timeUnit = durationMs(o.timeUnit, ctx.field('timeUnit')) ?? DEFAULT_TIME_UNIT_MS;
      const duration = durationMs(o.duration, ctx.field('duration'))!;
      const pre = o.preAllocatedVUs as number;
      const max = (o.maxVUs as number | undefined) ?? pre;
      need(ctx, rate > 0, 'rate', 'the iteration rate should be more than 0');
      need(ctx, timeUnit > 0, 'timeUnit', 'the timeUnit should be more than 0');
      atLeastMin('duration', duration);
      need(ctx, max >= pre, 'maxVUs', `maxVUs (${max}) shouldn't be less than preAllocatedVUs (${pre})`);
      return {
        ...base,
        executor: exe,
        rate: scaleRate(ctx, rate),
        timeUnitMs: compress(ctx, timeUnit),
        durationMs: compress(ctx, duration),
        preAllocatedVUs: scalePool(ctx, pre),
        maxVUs: scalePool(ctx, max),
      };
    }
    case 'ramping-arrival-rate': {
      const timeUnit = durationMs(o.timeUnit, ctx.field('timeUnit')) ?? DEFAULT_TIME_UNIT_MS;
      const pre = o.preAllocatedVUs as number;
      const max = (o.maxVUs as number | undefined) ?? pre;
      need(ctx, timeUnit > 0, 'timeUnit', 'the timeUnit should be more than 0');
      need(ctx, max >= pre, 'maxVUs', `maxVUs (${max}) shouldn't be less than preAllocatedVUs (${pre})`);
      return {
        ...base,
        executor: exe,
        startRate: scaleRate(ctx, (o.startRate as number | undefined) ?? 0),
        timeUnitMs: compress(ctx, timeUnit),
        stages: resolveStages(ctx, o.stages as Array<{ duration: unknown; target: number }>, true),
        preAllocatedVUs: scalePool(ctx, pre),
        maxVUs: scalePool(ctx, max),
      };
    }
  }
}

/**
 * k6's DeriveScenariosFromShortcuts: the scenario the top-level `iterations`/`duration`/`stages`/`vus`
 * stand for, with the top-level key each of its options came from (for error messages).
 */
function fromShortcuts(o: OptionsInput): { scenario: Record<string, unknown>; origin: Record<string, string> } | undefined {
  const scenariosSet = o.scenarios !== undefined;
  const stagesSet = o.stages !== undefined && o.stages.length > 0;
  const conflict = (a: string, b: string) => {
    throw new OptionsError(b, `using \`${a}\` and \`${b}\` options simultaneously is not allowed`);
  };
  if (o.iterations !== undefined) {
    if (stagesSet) conflict('iterations', 'stages');
    if (scenariosSet) conflict('iterations', 'scenarios');
    return {
      scenario: {
        executor: 'shared-iterations',
        iterations: o.iterations,
        ...(o.vus !== undefined && { vus: o.vus }),
        ...(o.duration !== undefined && { maxDuration: o.duration }),
      },
      origin: { iterations: 'iterations', vus: 'vus', maxDuration: 'duration' },
    };
  }
  if (o.duration !== undefined) {
    if (stagesSet) conflict('duration', 'stages');
    if (scenariosSet) conflict('duration', 'scenarios');
    return {
      scenario: { executor: 'constant-vus', duration: o.duration, ...(o.vus !== undefined && { vus: o.vus }) },
      origin: { duration: 'duration', vus: 'vus' },
    };
  }
  if (stagesSet) {
    if (scenariosSet) conflict('stages', 'scenarios');
    return {
      scenario: { executor: 'ramping-vus', stages: o.stages, ...(o.vus !== undefined && { startVUs: o.vus }) },
      origin: { stages: 'stages', startVUs: 'vus' },
    };
  }
  if (scenariosSet && Object.keys(o.scenarios!).length > 0) return undefined;
  // Nothing that says how long (measured with k6 v0.48: `vus` alone is ignored, with a warning).
  // Nothing at all (or an explicitly empty `scenarios`): k6 runs one iteration on one VU.
  return { scenario: { executor: 'per-vu-iterations' }, origin: {} };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Validates a script's exported `options` with k6's names and defaults, expands the top-level shortcuts
 * into a scenario named 'default' (shortcuts together with `scenarios` are an error, as in k6), and
 * applies `speed` (durations ÷ speed) and `scale` (rates, VUs and iterations × scale). Throws
 * OptionsError naming the field. The result is frozen (except `raw`, which is the caller's object).
 */
export function resolveOptions(raw: unknown, knobs: Knobs): ResolvedOptions {
  if (!(knobs.speed > 0) || !Number.isFinite(knobs.speed)) throw new OptionsError('speed', `must be a positive number (got ${knobs.speed})`);
  if (!(knobs.scale > 0) || !Number.isFinite(knobs.scale)) throw new OptionsError('scale', `must be a positive number (got ${knobs.scale})`);
  const input = raw === undefined || raw === null ? {} : raw;
  if (!isPlainObject(input)) throw new OptionsError('options', 'the exported options must be an object');
  check(OptionsSchema, input, (inner) => inner || 'options');
  const o = input as OptionsInput;
  if (o.scenarios !== undefined && !isPlainObject(o.scenarios)) throw new OptionsError('scenarios', 'must be an object');

  const scenarios: ResolvedScenario[] = [];
  const derived = fromShortcuts(o);
  if (derived) {
    const origin = derived.origin;
    scenarios.push(
      resolveScenario(DEFAULT_SCENARIO_NAME, derived.scenario, {
        knobs,
        field: (key) => origin[key.split(/[.[]/)[0]!] ?? (key ? `scenarios.${DEFAULT_SCENARIO_NAME}.${key}` : 'options'),
      }),
    );
  } else {
    for (const [name, sc] of Object.entries(o.scenarios!)) {
      const prefix = `scenarios.${name}`;
      if (!SCENARIO_NAME.test(name)) {
        throw new OptionsError(prefix, 'a scenario name may contain only latin letters, digits, underscores and dashes');
      }
      scenarios.push(resolveScenario(name, sc, { knobs, field: (key) => (key ? `${prefix}.${key}` : prefix) }));
    }
  }

  const thresholds: Record<string, unknown[]> = {};
  // Copied and frozen one level deep only: the entries may be the script's own objects.
  for (const [metric, list] of Object.entries(o.thresholds ?? {})) thresholds[metric] = Object.freeze([...list]) as unknown[];

  const warnings: string[] = [];
  // k6's warning (lib/executor/execution_config_shortcuts.go), word for word.
  if (o.vus !== undefined && o.vus !== 1 && derived && o.iterations === undefined && o.duration === undefined && !(o.stages !== undefined && o.stages.length > 0)) {
    warnings.push(`the \`vus=${o.vus}\` option will be ignored, it only works in conjunction with \`iterations\`, \`duration\`, or \`stages\``);
  }
  // k6 runs only its segment's share of the work; this runner, one instance, runs all of it (the
  // options still reach exec.test.options, where exported bundles read them).
  if ((o as { executionSegment?: unknown }).executionSegment !== undefined) {
    warnings.push('the `executionSegment` option is not applied here: this runner runs the whole test, not one segment of it (exec.test.options still carries it)');
  }
  const resolved: ResolvedOptions = {
    warnings: deepFreeze(warnings),
    scenarios: deepFreeze(scenarios),
    thresholds: Object.freeze(thresholds),
    setupTimeoutMs: durationMs(o.setupTimeout, 'setupTimeout') ?? DEFAULT_SETUP_TIMEOUT_MS,
    teardownTimeoutMs: durationMs(o.teardownTimeout, 'teardownTimeout') ?? DEFAULT_TEARDOWN_TIMEOUT_MS,
    summaryTrendStats: deepFreeze([...(o.summaryTrendStats ?? DEFAULT_SUMMARY_TREND_STATS)]),
    noConnectionReuse: o.noConnectionReuse ?? false,
    userAgent: o.userAgent ?? DEFAULT_USER_AGENT,
    raw,
  };
  return Object.freeze(resolved);
}

/** k6's execution shortcuts as one configuration layer gives them (the environment's K6_* or the command line's flags). */
export interface ShortcutLayer {
  vus?: number;
  duration?: string;
  iterations?: number;
  stages?: Array<{ duration: string; target: number }>;
}

/**
 * Lays k6's shortcut layers over the script's options, lowest first, as k6 consolidates its config
 * (lib/options.go, Options.Apply): `vus` overrides alone, but a layer that sets any of `duration`,
 * `iterations` or `stages` replaces all of them and the script's `scenarios` too, so
 * `--vus 10 --duration 30s` runs a constant-vus test whatever the script declared.
 */
export function withShortcuts(raw: unknown, layers: ShortcutLayer[]): unknown {
  if (!layers.some((l) => Object.keys(l).length > 0) || (raw !== undefined && raw !== null && !isPlainObject(raw))) return raw;
  const out: Record<string, unknown> = { ...((raw ?? {}) as Record<string, unknown>) };
  for (const l of layers) {
    if (l.vus !== undefined) out.vus = l.vus;
    if (l.duration !== undefined || l.iterations !== undefined || l.stages !== undefined) {
      for (const k of ['duration', 'iterations', 'stages', 'scenarios']) delete out[k];
      if (l.duration !== undefined) out.duration = l.duration;
      if (l.iterations !== undefined) out.iterations = l.iterations;
      if (l.stages !== undefined) out.stages = l.stages;
    }
  }
  return out;
}

/** k6's --stage / K6_STAGES form: `DURATION:TARGET`, several joined by commas (`30s:10,1m:0`). */
export function parseStages(text: string, field: string): Array<{ duration: string; target: number }> {
  return text.split(',').map((part) => {
    const m = /^\s*([^:\s]+)\s*:\s*(\d+)\s*$/.exec(part);
    if (!m) throw new OptionsError(field, `a stage is DURATION:TARGET, such as 30s:10 (got ${JSON.stringify(part)})`);
    return { duration: m[1]!, target: Number(m[2]) };
  });
}

/** The shortcut layer of k6's environment variables: K6_VUS, K6_DURATION, K6_ITERATIONS, K6_STAGES. */
export function shortcutsFromEnv(env: Record<string, string | undefined>): ShortcutLayer {
  const layer: ShortcutLayer = {};
  const count = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    if (!/^\d+$/.test(v.trim())) throw new OptionsError(name, `must be a whole number (got ${JSON.stringify(v)})`);
    return Number(v);
  };
  const vus = count('K6_VUS');
  if (vus !== undefined) layer.vus = vus;
  const iterations = count('K6_ITERATIONS');
  if (iterations !== undefined) layer.iterations = iterations;
  if (env.K6_DURATION) layer.duration = env.K6_DURATION.trim();
  if (env.K6_STAGES) layer.stages = parseStages(env.K6_STAGES, 'K6_STAGES');
  return layer;
}

/** The VUs k6 plans a scenario to hold: what it initialises for it before the test starts. */
export function plannedVUs(s: ResolvedScenario): number {
  switch (s.executor) {
    case 'ramping-vus':
      return Math.max(s.startVUs, ...s.stages.map((st) => st.target));
    case 'constant-arrival-rate':
    case 'ramping-arrival-rate':
      return s.preAllocatedVUs;
    default:
      return s.vus;
  }
}

/**
 * k6's initial vus_max: the most VUs the scenarios plan to hold at once, each from its startTime to
 * the end of its gracefulStop (`ends` gives that end per scenario, ms from the test start), as k6
 * sums the scenarios' execution requirements over time (lib/execution.go, GetMaxPlannedVUs).
 */
export function maxPlannedVUs(scenarios: readonly ResolvedScenario[], ends: readonly number[]): number {
  const events = scenarios.flatMap((s, i) => [
    { at: s.startTimeMs, d: plannedVUs(s) },
    { at: ends[i]!, d: -plannedVUs(s) },
  ]);
  // Ends before starts at the same instant: a scenario starting as another's window closes reuses its VUs.
  events.sort((a, b) => a.at - b.at || a.d - b.d);
  let now = 0;
  let max = 0;
  for (const e of events) {
    now += e.d;
    max = Math.max(max, now);
  }
  return max;
}
