// `scalegram compare BASE NEW` as pure functions: read two k6-shaped summaries (with a result.json's
// context when there is one), judge every shared metric stat against a direction, a relative
// tolerance and an absolute noise floor (ratios where higher is better, such as hit ratios and
// checks, on their complement: the miss or failure share), flag gated stats and thresholds BASE has
// and NEW lost, and render the outcome as a terminal table or Markdown.
// The CLI (cli/compare.ts) only reads the files and prints what these return.

import { runValidity } from '../scenarios/runner/key-figures.ts';
import { WORK_FIELDS } from '../sim/observability/work-meter.ts';

/** k6's four metric types, inferred from the stats a summary holds. */
export type MetricType = 'trend' | 'counter' | 'rate' | 'gauge';
/** Which way a change is bad. `none`: reported, never a regression. */
export type Direction = 'higher-is-worse' | 'lower-is-worse' | 'either' | 'none';
/** What a value measures; picks its noise floor and how it is printed. */
export type UnitClass = 'time' | 'ratio' | 'count' | 'data';
/**
 * A metric stat's verdict. `regressed`: gated and worse beyond tolerance and noise floor (fails the
 * comparison); `worse`: the same for a stat that is not gated (reported only); `improved`: better
 * beyond both; `changed`: beyond both on a stat with no direction; `noise`: beyond the tolerance but
 * not the noise floor; `ok`: within the tolerance.
 */
export type Verdict = 'regressed' | 'worse' | 'improved' | 'changed' | 'noise' | 'ok';
/**
 * A threshold across the two runs. `regressed`: passed in BASE, fails in NEW; `missing`: in BASE, not
 * in NEW (both fail the comparison: a run that stopped checking a threshold must not pass silently).
 */
export type ThresholdVerdict = 'regressed' | 'still failing' | 'failing' | 'fixed' | 'ok' | 'missing';

/** Bad input: a file that is not a summary, or an option that cannot be read. The CLI exits 2 on it. */
export class CompareInputError extends Error {}

// ---------------------------------------------------------------------------------------------
// Directions: the one table that says which way each metric is bad (first match on the metric's
// name without tags wins; `--metric NAME=DIRECTION` overrides it). Metrics no rule names have no
// direction: they are reported and never fail.
// ---------------------------------------------------------------------------------------------

export interface MetricRule {
  /** The metric's name without tags: exactly, or a pattern. */
  match: string | RegExp;
  /** For every stat, or per stat (a stat not listed has no direction). */
  direction: Direction | Readonly<Record<string, Direction>>;
  /** What it measures, when the name tells (result.json's `kind` of time or data wins). */
  unit?: UnitClass;
  /** The largest tolerance this metric is gated at (fraction): a global --tolerance may only tighten it. */
  maxTolerance?: number;
  /** What 1 − value is called (misses, failed checks), for a ratio judged on its complement. */
  complement?: string;
  /** Its noise floor, in its unit, instead of its unit class's (a --min-delta for the metric still wins). */
  floor?: number;
  why: string;
}

const HTTP_TIMINGS = /^http_req_(duration|intended_duration|blocked|connecting|tls_handshaking|sending|waiting|receiving)$/;

export const METRIC_RULES: readonly MetricRule[] = [
  // The work each request does (result.json's telemetry.work, counted by the topology): per request or job.
  { match: 'work_requests', direction: 'none', unit: 'count', why: 'requests (or jobs) the figures of the route are averaged over' },
  { match: 'work_cache_waits', direction: 'none', unit: 'count', why: "misses that waited for another request's fill: they count how requests overlapped (the machine's speed), not what the code does" },
  { match: 'work_failed', direction: 'higher-is-worse', unit: 'ratio', floor: 0.01, why: "share of the route's requests answered ≥ 400 (jobs: that threw)" },
  { match: /^work_feed_deliveries/, direction: 'either', unit: 'count', floor: 0.2, why: 'feed deliveries per post or job: a fan-out that stopped or shrank is as wrong as one that doubled' },
  { match: 'work_response_bytes', direction: 'higher-is-worse', unit: 'data', floor: 64, why: 'bytes of an answer, per request' },
  { match: /^work_/, direction: 'higher-is-worse', unit: 'count', floor: 0.2, why: 'operations per request or job: queries, cache operations, Redis commands, jobs, deliveries' },
  { match: 'http_req_failed', direction: 'higher-is-worse', unit: 'ratio', why: 'share of requests that failed' },
  {
    match: 'checks',
    direction: 'lower-is-worse',
    unit: 'ratio',
    maxTolerance: 0.01,
    complement: 'failed',
    why: 'share of checks that passed; judged on the failed share, which may grow by 1% at most (and the ratio floor)',
  },
  { match: 'http_reqs', direction: { rate: 'lower-is-worse', count: 'none' }, unit: 'count', why: 'throughput; the count grows with the run length' },
  { match: 'iterations', direction: { rate: 'lower-is-worse', count: 'none' }, unit: 'count', why: 'throughput; the count grows with the run length' },
  { match: 'dropped_iterations', direction: 'higher-is-worse', unit: 'count', why: 'arrivals that found no free VU' },
  { match: /^vus(_max)?$/, direction: 'none', unit: 'count', why: 'set by the scenario, not an outcome' },
  { match: /^data_(sent|received)$/, direction: 'none', unit: 'data', why: 'volume follows the load offered' },
  { match: HTTP_TIMINGS, direction: 'higher-is-worse', unit: 'time', why: 'request latency and its phases' },
  { match: 'iteration_start_delay', direction: 'higher-is-worse', unit: 'time', why: 'scheduled → actual start of an iteration' },
  { match: /(^|_)hit_(rate|ratio)$/, direction: 'lower-is-worse', unit: 'ratio', complement: 'misses', why: 'cache hit ratio (cache_hit_rate), judged on the miss ratio' },
  { match: /^deliveries/, direction: 'lower-is-worse', unit: 'count', why: 'fan-out deliveries (deliveries_per_s)' },
  { match: /(^|_)skew$/, direction: 'higher-is-worse', unit: 'ratio', why: 'max/mean load per shard or server (shard_skew, server_skew)' },
  { match: /^(stale_reads|db_writes_lost|queue_depth)$/, direction: 'higher-is-worse', unit: 'count', why: 'stale replica reads, writes lost on promotion, fan-out backlog' },
  { match: /(^|_)(errors?|failures?|failed|timeouts?|dropped)(_|$)/, direction: 'higher-is-worse', why: 'custom error metrics, by name' },
  { match: /(_duration|_delay|_latency)$|(^|_)(ms|lag)(_|$)/, direction: 'higher-is-worse', unit: 'time', why: 'custom latencies, by name (feed_ms, fanout_lag_ms, replica_lag_ms, group_duration)' },
];

/** The relative change allowed before a worse value is a regression (fraction). */
export const DEFAULT_TOLERANCE = 0.1;

/**
 * Absolute noise floors: a change no larger than this is never a regression (nor an improvement),
 * whatever its percentage — 0.1 ms → 0.2 ms is +100% and noise. Time in ms, data in bytes, ratio in
 * the metric's own units (0–1 rates, skews), count in events (per second for a counter's rate).
 */
export const DEFAULT_FLOORS: Readonly<Record<UnitClass, number>> = { time: 1, ratio: 0.005, count: 1, data: 1000 };

/** The stats gated by default, per metric type; the others are reported only. */
export const DEFAULT_GATED: Readonly<Record<MetricType, readonly string[]>> = {
  trend: ['avg', 'p(95)'],
  counter: ['rate'],
  rate: ['value'],
  gauge: ['value'],
};

/** The stats shown per metric type (trends: every stat the summary holds). */
const SHOWN: Readonly<Record<Exclude<MetricType, 'trend'>, readonly string[]>> = {
  counter: ['count', 'rate'],
  rate: ['value'],
  gauge: ['value', 'min', 'max'],
};

// ---------------------------------------------------------------------------------------------
// Reading a side: a k6 summary export (or handleSummary's data), plus result.json's context.
// ---------------------------------------------------------------------------------------------

export interface SideMetric {
  /** The key as the summary writes it, e.g. `http_req_duration{name:feed}`. */
  key: string;
  /** Without tags, e.g. `http_req_duration`. */
  name: string;
  type: MetricType;
  stats: Record<string, number>;
  /** Threshold expression → true when it FAILED (k6's summary-export convention). */
  thresholds: Record<string, boolean>;
  /** From result.json or handleSummary data (`contains`), when known. */
  kind?: 'time' | 'data' | 'default';
}

export interface RunContext {
  /** The path as given on the command line. */
  source: string;
  scenario?: string;
  seed?: number | string;
  speed?: number;
  scale?: number;
  startedAt?: string;
  durationMs?: number;
}

export interface RunSide {
  context: RunContext;
  metrics: Record<string, SideMetric>;
  /** `metric\0expression` → the observed value, from result.json's thresholds. */
  thresholdValues: Record<string, number>;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** `http_req_duration{name:feed}` → `http_req_duration`. */
export function baseName(key: string): string {
  const brace = key.indexOf('{');
  return brace > 0 ? key.slice(0, brace) : key;
}

const TREND_STAT = /^(avg|min|med|max|p\(\s*[\d.]+\s*\))$/;

function inferType(stats: Record<string, number>): MetricType {
  const has = (s: string) => s in stats;
  if (has('passes') || has('fails')) return 'rate';
  if (Object.keys(stats).some((s) => TREND_STAT.test(s) && s !== 'min' && s !== 'max')) return 'trend';
  if (has('value')) return 'gauge';
  if (has('rate') || has('count')) return Object.keys(stats).some((s) => TREND_STAT.test(s)) ? 'trend' : 'counter';
  return 'trend';
}

const TYPES: readonly MetricType[] = ['trend', 'counter', 'rate', 'gauge'];
const KINDS = ['time', 'data', 'default'] as const;

/** One metric of handleSummary's data: {type, contains, values, thresholds: {expr: {ok}}}. */
function fromSummaryData(key: string, m: Obj, source: string): SideMetric {
  const type = m.type as MetricType;
  const values = isObj(m.values) ? m.values : {};
  const stats: Record<string, number> = {};
  for (const [s, v] of Object.entries(values)) if (isNum(v)) stats[type === 'rate' && s === 'rate' ? 'value' : s] = v;
  if (Object.keys(stats).length === 0) throw new CompareInputError(`${source}: metric "${key}" has no numeric values`);
  const thresholds: Record<string, boolean> = {};
  if (isObj(m.thresholds)) for (const [expr, t] of Object.entries(m.thresholds)) if (isObj(t) && typeof t.ok === 'boolean') thresholds[expr] = !t.ok;
  const kind = KINDS.find((k) => k === m.contains);
  return { key, name: baseName(key), type, stats, thresholds, ...(kind ? { kind } : {}) };
}

/**
 * The metrics of a summary: k6's `--summary-export` shape ({metrics: {key: {avg, …, thresholds:
 * {expr: failed}}}}), which Scalegram's summary.json also is, or handleSummary's data
 * ({metrics: {key: {type, contains, values, thresholds: {expr: {ok}}}}}).
 */
export function parseSummary(doc: unknown, source: string): Record<string, SideMetric> {
  if (!isObj(doc) || !isObj(doc.metrics)) {
    throw new CompareInputError(`${source}: not a k6 summary (expected an object whose "metrics" maps each metric to its values, as k6 --summary-export writes)`);
  }
  if (doc.format === 'scalegram-result/1') throw new CompareInputError(`${source}: this is a result.json; give its directory (which holds summary.json) instead`);
  const out: Record<string, SideMetric> = {};
  // Scalegram's own metrics (topology, lateness) sit under `scalegram.metrics` unless the script
  // declared them: read with k6's, so a comparison sees the same metrics however they were filed.
  const own = isObj(doc.scalegram) && isObj(doc.scalegram.metrics) ? doc.scalegram.metrics : {};
  for (const [key, raw] of [...Object.entries(doc.metrics), ...Object.entries(own).filter(([k]) => !(k in (doc.metrics as object)))]) {
    if (!isObj(raw)) throw new CompareInputError(`${source}: metric "${key}" is not an object of values`);
    if (typeof raw.type === 'string' && TYPES.includes(raw.type as MetricType) && isObj(raw.values)) {
      out[key] = fromSummaryData(key, raw, source);
      continue;
    }
    const stats: Record<string, number> = {};
    const thresholds: Record<string, boolean> = {};
    for (const [s, v] of Object.entries(raw)) {
      if (s === 'thresholds' && isObj(v)) {
        for (const [expr, failed] of Object.entries(v)) if (typeof failed === 'boolean') thresholds[expr] = failed;
      } else if (isNum(v)) stats[s] = v;
    }
    if (Object.keys(stats).length === 0) throw new CompareInputError(`${source}: metric "${key}" has no numeric values`);
    out[key] = { key, name: baseName(key), type: inferType(stats), stats, thresholds };
  }
  return out;
}

/**
 * A side of the comparison from its summary and, when there is one, its result.json (format
 * 'scalegram-result/1'), which adds the scenario, seed, speed, scale, start, length, each metric's
 * kind (time, data) and the observed value of each threshold.
 */
export function runSide(source: string, summaryDoc: unknown, resultDoc?: unknown, workDoc?: unknown): RunSide {
  const metrics = parseSummary(summaryDoc, source);
  const context: RunContext = { source };
  const thresholdValues: Record<string, number> = {};
  if (isObj(resultDoc)) {
    const r = resultDoc;
    if (typeof r.scenario === 'string') context.scenario = r.scenario;
    if (isNum(r.seed) || typeof r.seed === 'string') context.seed = r.seed;
    if (isNum(r.speed)) context.speed = r.speed;
    if (isNum(r.scale)) context.scale = r.scale;
    if (typeof r.startedAt === 'string') context.startedAt = r.startedAt;
    if (isNum(r.durationMs)) context.durationMs = r.durationMs;
    const registry = isObj(r.metrics) && Array.isArray(r.metrics.metrics) ? r.metrics.metrics : [];
    for (const m of registry) {
      if (!isObj(m) || typeof m.key !== 'string') continue;
      const kind = KINDS.find((k) => k === m.kind);
      const target = metrics[m.key];
      if (kind && target && !target.kind) target.kind = kind;
    }
    for (const t of Array.isArray(r.thresholds) ? r.thresholds : []) {
      if (isObj(t) && typeof t.metric === 'string' && typeof t.expression === 'string' && isNum(t.value)) thresholdValues[`${t.metric}\0${t.expression}`] = t.value;
    }
  }
  // work.json (a result directory's, or a baseline's), else the work in result.json's telemetry.
  const work = isObj(workDoc) ? workDoc : isObj(resultDoc) && isObj(resultDoc.telemetry) && isObj(resultDoc.telemetry.work) ? resultDoc.telemetry.work : null;
  if (work) Object.assign(metrics, workMetrics(work));
  // A baseline kept as summary.json and work.json (no result.json): the work document names the run.
  if (isObj(workDoc) && !isObj(resultDoc)) {
    if (typeof workDoc.scenario === 'string') context.scenario = workDoc.scenario;
    if (isNum(workDoc.seed)) context.seed = workDoc.seed;
    if (isNum(workDoc.speed)) context.speed = workDoc.speed;
    if (isNum(workDoc.scale)) context.scale = workDoc.scale;
  }
  return { context, metrics, thresholdValues };
}

/** `dbReads` → `db_reads`: the work figures' metric names, k6-style. */
const snake = (f: string) => f.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());

/**
 * The work figures of a live result (telemetry.work) as gauges, per request of each route and per
 * job of each kind: `work_db_reads{route:GET /v1/users/self/feed}`, `work_redis_commands{job:fanout-chunk}`,
 * `work_requests{…}` (how many the figures average over), `work_failed{…}` (the share that failed),
 * and `work_feed_deliveries_per_post` (deliveries made, all scopes, per fan-out job).
 */
function workMetrics(work: Obj): Record<string, SideMetric> {
  const out: Record<string, SideMetric> = {};
  const gauge = (key: string, value: number) => {
    out[key] = { key, name: baseName(key), type: 'gauge', stats: { value }, thresholds: {} };
  };
  let deliveries = 0;
  let posts = 0;
  for (const [scope, tag] of [['routes', 'route'], ['jobs', 'job']] as const) {
    const table = isObj(work[scope]) ? work[scope] : {};
    for (const [name, raw] of Object.entries(table)) {
      if (!isObj(raw) || !isNum(raw.count)) continue;
      const count = raw.count;
      if (isNum(raw.feedDeliveries)) deliveries += raw.feedDeliveries;
      if (scope === 'jobs' && name === 'fanout') posts = count;
      if (count === 0) continue;
      const tags = `{${tag}:${name}}`;
      gauge(`work_requests${tags}`, count);
      if (isNum(raw.failed)) gauge(`work_failed${tags}`, raw.failed / count);
      for (const f of WORK_FIELDS) {
        const v = raw[f];
        // Zero figures are left out (most are); compareRuns puts them back against the other side.
        if (isNum(v) && v > 0) gauge(`work_${snake(f)}${tags}`, v / count);
      }
    }
  }
  if (posts > 0) gauge('work_feed_deliveries_per_post', deliveries / posts);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Options: tolerance, noise floors, gated stats and directions, parsed from their CLI spelling.
// ---------------------------------------------------------------------------------------------

export interface CompareOptions {
  /**
   * Only metrics matching one of these (a name, a key with tags, or a pattern with `*`) are gated;
   * every other is shown with its verdict and never fails (undefined: every metric with a direction).
   */
  gate?: readonly string[];
  /** Relative change allowed (fraction), for every metric without its own. */
  tolerance: number;
  /** Per metric (name or key with tags) tolerance (fraction). */
  tolerances: Record<string, number>;
  /** Noise floor per unit class (ms, fraction, events, bytes). */
  floors: Record<UnitClass, number>;
  /** Per metric noise floor, in the metric's unit. */
  metricFloors: Record<string, number>;
  /** Gated stats for every metric, replacing DEFAULT_GATED; undefined keeps the defaults. */
  stats?: readonly string[];
  /** Per metric gated stats. */
  metricStats: Record<string, readonly string[]>;
  /** Per metric direction, overriding METRIC_RULES. */
  directions: Record<string, Direction>;
}

export function defaultOptions(): CompareOptions {
  return { tolerance: DEFAULT_TOLERANCE, tolerances: {}, floors: { ...DEFAULT_FLOORS }, metricFloors: {}, metricStats: {}, directions: {} };
}

const UNIT_CLASSES: readonly UnitClass[] = ['time', 'ratio', 'count', 'data'];
const STAT = /^(avg|min|med|max|count|rate|value|p\(\d+(\.\d+)?\))$/;
const DIRECTION_WORDS: Readonly<Record<string, Direction>> = {
  'higher-is-worse': 'higher-is-worse',
  'lower-is-better': 'higher-is-worse',
  'lower-is-worse': 'lower-is-worse',
  'higher-is-better': 'lower-is-worse',
  either: 'either',
  none: 'none',
};

/** Splits `NAME=VALUE` at the last `=` (tag values may not hold one, but names never do). */
function splitSpec(spec: string): [string | undefined, string] {
  const eq = spec.lastIndexOf('=');
  if (eq < 0) return [undefined, spec.trim()];
  return [spec.slice(0, eq).trim(), spec.slice(eq + 1).trim()];
}

function checkName(name: string, option: string, spec: string): string {
  if (name === '' || /\s/.test(name.replace(/\{.*\}$/, ''))) throw new CompareInputError(`--${option} "${spec}": expected METRIC=VALUE with a metric name such as http_req_duration or 'http_req_duration{name:feed}'`);
  return name;
}

/** `5%` → 0.05. Only percentages: a bare 0.05 could mean 5% or 0.05%. */
export function parsePercent(text: string, spec: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*%$/.exec(text);
  if (!m) throw new CompareInputError(`--tolerance "${spec}": expected a percentage such as 5% or http_req_duration=15%`);
  const pct = Number(m[1]);
  if (pct > 1000) throw new CompareInputError(`--tolerance "${spec}": at most 1000%`);
  return pct / 100;
}

const TIME_SUFFIX: Readonly<Record<string, number>> = { us: 0.001, µs: 0.001, ms: 1, s: 1000 };
const DATA_SUFFIX: Readonly<Record<string, number>> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 };

/** A floor value: a number in the metric's unit, or with a time (us, ms, s) or data (B, kB, MB, GB) suffix. */
function parseFloor(text: string, spec: string): { value: number; suffixUnit?: UnitClass } {
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Zµ]*)$/.exec(text);
  const bad = () => new CompareInputError(`--min-delta "${spec}": expected CLASS=VALUE (time=1ms, ratio=0.005, count=1, data=1kB) or METRIC=VALUE`);
  if (!m) throw bad();
  const n = Number(m[1]);
  const suffix = m[2] ?? '';
  if (suffix === '') return { value: n };
  if (suffix in TIME_SUFFIX) return { value: n * TIME_SUFFIX[suffix]!, suffixUnit: 'time' };
  if (suffix in DATA_SUFFIX) return { value: n * DATA_SUFFIX[suffix]!, suffixUnit: 'data' };
  throw bad();
}

function parseStats(text: string, spec: string): string[] {
  const stats = text.split(',').map((s) => s.trim().replace(/\s+/g, ''));
  for (const s of stats) {
    if (!STAT.test(s)) throw new CompareInputError(`--stat "${spec}": "${s}" is not a stat (avg, min, med, max, p(N), count, rate or value)`);
  }
  return stats;
}

/** The options as the CLI spells them (each repeatable). Throws CompareInputError on bad syntax. */
export function parseCompareOptions(raw: { tolerance?: readonly string[]; minDelta?: readonly string[]; stat?: readonly string[]; metric?: readonly string[]; gate?: readonly string[] }): CompareOptions {
  const o = defaultOptions();
  for (const spec of raw.gate ?? []) {
    const names = spec.split(',').map((n) => n.trim());
    if (names.some((n) => n === '' || /\s/.test(n.replace(/\{.*\}$/, '')))) throw new CompareInputError(`--gate "${spec}": expected metric names or patterns, comma-separated, e.g. 'work_*,checks,http_req_failed'`);
    o.gate = [...(o.gate ?? []), ...names];
  }
  for (const spec of raw.tolerance ?? []) {
    const [name, value] = splitSpec(spec);
    if (name === undefined) o.tolerance = parsePercent(value, spec);
    else o.tolerances[checkName(name, 'tolerance', spec)] = parsePercent(value, spec);
  }
  for (const spec of raw.minDelta ?? []) {
    const [name, value] = splitSpec(spec);
    const floor = parseFloor(value, spec);
    if (name === undefined) {
      if (floor.suffixUnit !== 'time') throw new CompareInputError(`--min-delta "${spec}": say which floor, e.g. time=1ms, ratio=0.005, count=1, data=1kB, or METRIC=VALUE`);
      o.floors.time = floor.value;
    } else if ((UNIT_CLASSES as readonly string[]).includes(name)) {
      const unit = name as UnitClass;
      if (floor.suffixUnit && floor.suffixUnit !== unit) throw new CompareInputError(`--min-delta "${spec}": a ${floor.suffixUnit} suffix on the ${unit} floor`);
      o.floors[unit] = floor.value;
    } else {
      o.metricFloors[checkName(name, 'min-delta', spec)] = floor.value;
    }
  }
  for (const spec of raw.stat ?? []) {
    const [name, value] = splitSpec(spec);
    if (name === undefined) o.stats = [...new Set([...(o.stats ?? []), ...parseStats(value, spec)])];
    else o.metricStats[checkName(name, 'stat', spec)] = parseStats(value, spec);
  }
  for (const spec of raw.metric ?? []) {
    const [name, value] = splitSpec(spec);
    const direction = DIRECTION_WORDS[value];
    if (name === undefined || !direction) throw new CompareInputError(`--metric "${spec}": expected METRIC=DIRECTION, DIRECTION one of higher-is-worse, lower-is-worse, either, none`);
    o.directions[checkName(name, 'metric', spec)] = direction;
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// The comparison.
// ---------------------------------------------------------------------------------------------

export interface CompareRow {
  metric: string;
  type: MetricType;
  stat: string;
  unit: UnitClass;
  direction: Direction;
  base: number;
  new: number;
  /** new − base. */
  delta: number;
  /** delta / |base| (fraction); null when base is 0 and new is not. */
  relative: number | null;
  /**
   * What the tolerance is held against: the value, or its complement 1 − value for a ratio in [0, 1]
   * where higher is better (hit ratios, checks): 95% → 86% hits is −9.5% but misses +180%.
   */
  judgedOn: 'value' | 'complement';
  /** The relative change of what is judged: `relative`, or that of 1 − value; null when it was 0. */
  judgedRelative: number | null;
  /** What 1 − value is called (misses, failed), when judged on the complement. */
  complementName?: string;
  /** Gated: a worse value beyond tolerance and floor fails the comparison. */
  gated: boolean;
  tolerance: number;
  floor: number;
  verdict: Verdict;
}

/** A gated stat BASE has and NEW lacks (the whole metric, or only that stat): a regression. */
export interface MissingRow extends Pick<CompareRow, 'metric' | 'type' | 'stat' | 'unit' | 'direction' | 'base'> {
  /** Why NEW has no value: the metric is not in NEW, or NEW's summary lacks the stat. */
  reason: string;
  verdict: 'missing';
}

export interface ThresholdRow {
  metric: string;
  expression: string;
  base: 'passed' | 'failed' | null;
  new: 'passed' | 'failed' | null;
  /** NEW's observed value (from its result.json), when known. */
  value?: number;
  verdict: ThresholdVerdict;
}

export interface CompareOutcome {
  base: RunContext;
  new: RunContext;
  options: CompareOptions;
  rows: CompareRow[];
  /** Gated stats (with a direction) BASE has and NEW lacks: each a regression. */
  missing: MissingRow[];
  /** Metrics only in NEW, and metrics only in BASE with no gated stat: listed, never failures. */
  added: string[];
  removed: string[];
  thresholds: ThresholdRow[];
  /** Things a reader should know (different scenarios, speeds, scales…). */
  notes: string[];
  /** Gated stats that regressed or are missing from NEW, thresholds that passed in BASE and fail in NEW or are missing from it. */
  regressions: number;
  /**
   * Why a run cannot support conclusions (runValidity on its summary: half or more of its planned
   * iterations dropped); empty when it can. A NEW that is not valid fails the comparison.
   */
  invalid: { base: string[]; new: string[] };
  passed: boolean;
}

function ruleFor(name: string): MetricRule | undefined {
  return METRIC_RULES.find((r) => (typeof r.match === 'string' ? r.match === name : r.match.test(name)));
}

/** The most specific override: the exact key, then the name without tags. */
function lookup<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return table[key] ?? table[baseName(key)];
}

export function directionOf(key: string, stat: string, type: MetricType, options: CompareOptions = defaultOptions()): Direction {
  if (type === 'trend' && stat === 'count') return 'none'; // a sample count grows with the run length
  const override = lookup(options.directions, key);
  if (override) return override;
  const rule = ruleFor(baseName(key));
  if (!rule) return 'none';
  return typeof rule.direction === 'string' ? rule.direction : (rule.direction[stat] ?? 'none');
}

export function unitOf(m: SideMetric): UnitClass {
  if (m.kind === 'time' || m.kind === 'data') return m.kind;
  const rule = ruleFor(m.name);
  if (rule?.unit) return rule.unit;
  return m.type === 'rate' ? 'ratio' : 'count';
}

function statOrder(s: string): [number, number] {
  const fixed = ['avg', 'min', 'med', 'max'].indexOf(s);
  if (fixed >= 0) return [0, fixed];
  const p = /^p\(([\d.]+)\)$/.exec(s);
  if (p) return [1, Number(p[1])];
  return [2, ['count', 'rate', 'value'].indexOf(s)];
}

function sortStats(stats: string[]): string[] {
  return stats.sort((a, b) => {
    const [ga, oa] = statOrder(a);
    const [gb, ob] = statOrder(b);
    return ga - gb || oa - ob;
  });
}

function shownStats(b: SideMetric, n: SideMetric): string[] {
  const shared = Object.keys(b.stats).filter((s) => s in n.stats);
  const type = b.type;
  if (type === 'trend') return sortStats(shared.filter((s) => s !== 'passes' && s !== 'fails'));
  return SHOWN[type].filter((s) => shared.includes(s));
}

/** A tiny slack so a change of exactly the tolerance (10 → 11 at 10%) is within it despite rounding. */
const EPSILON = 1e-9;

function judge(row: Omit<CompareRow, 'verdict'>): Verdict {
  const beyondTolerance = row.judgedRelative === null || Math.abs(row.judgedRelative) > row.tolerance + EPSILON;
  if (!beyondTolerance) return 'ok';
  if (Math.abs(row.delta) <= row.floor + EPSILON) return 'noise';
  if (row.direction === 'none') return 'changed';
  const worse = row.direction === 'either' || (row.direction === 'higher-is-worse' ? row.delta > 0 : row.delta < 0);
  if (!worse) return 'improved';
  return row.gated ? 'regressed' : 'worse';
}

function relativeChange(from: number, to: number): number | null {
  const delta = to - from;
  return from !== 0 ? delta / Math.abs(from) : delta === 0 ? 0 : null;
}

const inUnitInterval = (v: number) => v >= 0 && v <= 1;

function toleranceFor(key: string, options: CompareOptions): number {
  const own = lookup(options.tolerances, key);
  if (own !== undefined) return own;
  const cap = ruleFor(baseName(key))?.maxTolerance;
  return cap !== undefined ? Math.min(cap, options.tolerance) : options.tolerance;
}

function gatedStats(m: SideMetric, options: CompareOptions): readonly string[] {
  return lookup(options.metricStats, m.key) ?? options.stats ?? DEFAULT_GATED[m.type];
}

/** Names an option gives that neither summary holds (as a key, or as the name of a key): typos. */
function unknownNames(options: CompareOptions, keys: readonly string[]): string[] {
  const known = new Set([...keys, ...keys.map(baseName)]);
  const named: Array<[string, string]> = [
    ...Object.keys(options.tolerances).map((n): [string, string] => ['tolerance', n]),
    ...Object.keys(options.metricFloors).map((n): [string, string] => ['min-delta', n]),
    ...Object.keys(options.metricStats).map((n): [string, string] => ['stat', n]),
    ...Object.keys(options.directions).map((n): [string, string] => ['metric', n]),
  ];
  return named.filter(([, n]) => !known.has(n)).map(([opt, n]) => `--${opt} ${n}`);
}

function thresholdRows(base: RunSide, next: RunSide): ThresholdRow[] {
  const rows = new Map<string, ThresholdRow>();
  const row = (metric: string, expression: string): ThresholdRow => {
    const id = `${metric}\0${expression}`;
    let r = rows.get(id);
    if (!r) {
      r = { metric, expression, base: null, new: null, verdict: 'ok' };
      rows.set(id, r);
    }
    return r;
  };
  for (const m of Object.values(base.metrics)) for (const [expr, failed] of Object.entries(m.thresholds)) row(m.key, expr).base = failed ? 'failed' : 'passed';
  for (const m of Object.values(next.metrics)) {
    for (const [expr, failed] of Object.entries(m.thresholds)) {
      const r = row(m.key, expr);
      r.new = failed ? 'failed' : 'passed';
      const value = next.thresholdValues[`${m.key}\0${expr}`];
      if (value !== undefined) r.value = value;
    }
  }
  for (const r of rows.values()) {
    if (r.new === null) r.verdict = 'missing';
    else if (r.new === 'failed') r.verdict = r.base === 'passed' ? 'regressed' : r.base === 'failed' ? 'still failing' : 'failing';
    else r.verdict = r.base === 'failed' ? 'fixed' : 'ok';
  }
  return [...rows.values()].sort((a, b) => (a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : a.expression < b.expression ? -1 : 1));
}

function contextNotes(b: RunContext, n: RunContext): string[] {
  const notes: string[] = [];
  if (b.scenario && n.scenario && b.scenario !== n.scenario) notes.push(`different scenarios: ${b.scenario} (base) and ${n.scenario} (new)`);
  if (b.speed !== undefined && n.speed !== undefined && b.speed !== n.speed) notes.push(`different --speed (${b.speed} and ${n.speed}): rates and durations are not comparable`);
  if (b.scale !== undefined && n.scale !== undefined && b.scale !== n.scale) notes.push(`different --scale (${b.scale} and ${n.scale}): rates and populations are not comparable`);
  return notes;
}

/** Compares NEW against BASE. Throws CompareInputError when the options name nothing either run holds. */
export function compareRuns(base: RunSide, next: RunSide, options: CompareOptions = defaultOptions()): CompareOutcome {
  base = withWorkZeros(base, next);
  next = withWorkZeros(next, base);
  const baseKeys = Object.keys(base.metrics).sort();
  const newKeys = Object.keys(next.metrics).sort();
  const shared = baseKeys.filter((k) => k in next.metrics);
  if (shared.length === 0) throw new CompareInputError(`${base.context.source} and ${next.context.source} share no metric: nothing to compare`);
  const unknown = unknownNames(options, [...baseKeys, ...newKeys]);
  if (unknown.length > 0) throw new CompareInputError(`no metric in either run is named by ${unknown.join(', ')}`);

  const rows: CompareRow[] = [];
  const missing: MissingRow[] = [];
  const removed: string[] = [];
  const notes = contextNotes(base.context, next.context);
  const gatedSeen = new Set<string>();
  /** BASE's gated stats with a direction that NEW lacks (all of them when NEW lacks the metric). */
  const lost = (b: SideMetric, has: (stat: string) => boolean, reason: (stat: string) => string): number => {
    const unit = unitOf(b);
    let count = 0;
    for (const stat of sortStats(gatedStats(b, options).filter((s) => s in b.stats && !has(s)))) {
      gatedSeen.add(stat);
      const direction = directionOf(b.key, stat, b.type, options);
      if (direction === 'none' || !inGate(b.key, options)) continue;
      missing.push({ metric: b.key, type: b.type, stat, unit, direction, base: b.stats[stat]!, reason: reason(stat), verdict: 'missing' });
      count++;
    }
    return count;
  };
  for (const key of baseKeys.filter((k) => !(k in next.metrics))) {
    if (lost(base.metrics[key]!, () => false, () => 'the metric is not in new') === 0) removed.push(key);
  }
  for (const key of shared) {
    const b = base.metrics[key]!;
    const n = next.metrics[key]!;
    if (b.type !== n.type) {
      notes.push(`${key} is a ${b.type} in base and a ${n.type} in new: not compared`);
      continue;
    }
    const merged: SideMetric = { ...b, kind: b.kind ?? n.kind };
    const unit = unitOf(merged);
    const gated = gatedStats(merged, options);
    lost(merged, (s) => s in n.stats, (s) =>
      b.type === 'trend' && s !== 'count' ? `new's summary has no ${s} (k6 --summary-trend-stats / options.summaryTrendStats)` : `new's summary has no ${s}`,
    );
    const complementName = ruleFor(b.name)?.complement;
    for (const stat of shownStats(b, n)) {
      const bv = b.stats[stat]!;
      const nv = n.stats[stat]!;
      const delta = nv - bv;
      const direction = directionOf(key, stat, b.type, options);
      const isGated = gated.includes(stat) && direction !== 'none' && inGate(key, options);
      if (gated.includes(stat)) gatedSeen.add(stat);
      const relative = relativeChange(bv, nv);
      // A ratio where higher is better moves little near 1 while its complement multiplies.
      const complement = direction === 'lower-is-worse' && unit === 'ratio' && inUnitInterval(bv) && inUnitInterval(nv);
      const partial = {
        metric: key,
        type: b.type,
        stat,
        unit,
        direction,
        base: bv,
        new: nv,
        delta,
        relative,
        judgedOn: complement ? ('complement' as const) : ('value' as const),
        judgedRelative: complement ? relativeChange(1 - bv, 1 - nv) : relative,
        ...(complement ? { complementName: complementName ?? '1 − value' } : {}),
        gated: isGated,
        tolerance: toleranceFor(key, options),
        floor: lookup(options.metricFloors, key) ?? ruleFor(b.name)?.floor ?? options.floors[unit],
      };
      rows.push({ ...partial, verdict: judge(partial) });
    }
  }
  const asked = [...(options.stats ?? []), ...Object.values(options.metricStats).flat()];
  const unseen = [...new Set(asked)].filter((s) => !gatedSeen.has(s));
  if (unseen.length > 0 && options.stats && options.stats.every((s) => unseen.includes(s))) {
    throw new CompareInputError(`--stat ${unseen.join(',')}: no metric both runs share has ${unseen.length > 1 ? 'these stats' : 'this stat'} (a k6 summary holds the trend stats named by options.summaryTrendStats)`);
  }
  for (const s of unseen) notes.push(`--stat ${s}: no shared metric has this stat, so it gates nothing`);

  let thresholds = thresholdRows(base, next);
  if (options.gate) {
    // Every name or pattern must name something BASE has: a typo, or a baseline without the
    // figures (a summary.json without its work.json), would otherwise gate nothing, silently.
    const inBase = (g: string) => baseKeys.some((k) => gatePattern(g).test(k) || gatePattern(g).test(baseName(k)));
    const unmatched = options.gate.filter((g) => !inBase(g));
    if (unmatched.length > 0) {
      const work = unmatched.some((g) => g.startsWith('work')) && !baseKeys.some((k) => k.startsWith('work_'));
      throw new CompareInputError(
        `--gate ${unmatched.join(',')}: BASE (${base.context.source}) has no metric ${unmatched.length > 1 ? 'these name' : 'this names'}${work ? ' (BASE has no work figures: give a result directory with its work.json, or a summary.json with work.json beside it)' : ''}`,
      );
    }
    // Thresholds of metrics outside the gate are shown and never fail: one failing only in NEW is
    // "failing", one missing from NEW a note.
    const lost = thresholds.filter((t) => t.verdict === 'missing' && !inGate(t.metric, options));
    if (lost.length > 0) notes.push(`${lost.length} threshold${lost.length > 1 ? 's' : ''} of BASE not in NEW, on metrics outside --gate: ${lost.map((t) => `${t.metric} ${t.expression}`).join('; ')}`);
    thresholds = thresholds.filter((t) => !lost.includes(t)).map((t) => (t.verdict === 'regressed' && !inGate(t.metric, options) ? { ...t, verdict: 'failing' as const } : t));
  }
  const invalid = { base: sideValidity(base), new: sideValidity(next) };
  if (invalid.base.length) notes.push(`BASE is not valid for conclusions (${invalid.base.join('; ')}): record the baseline again where its load is served`);
  const regressions =
    rows.filter((r) => r.verdict === 'regressed').length +
    missing.length +
    thresholds.filter((t) => t.verdict === 'regressed' || t.verdict === 'missing').length;
  return {
    base: base.context,
    new: next.context,
    options,
    rows,
    missing,
    added: newKeys.filter((k) => !(k in base.metrics)),
    removed,
    thresholds,
    notes,
    regressions,
    invalid,
    passed: regressions === 0 && invalid.new.length === 0,
  };
}

/**
 * A work figure one side has for a route (or job kind) both sides ran, and the other lacks, was zero
 * there: a like that starts reading the database is a change from 0, not a metric only NEW has.
 */
function withWorkZeros(side: RunSide, other: RunSide): RunSide {
  let metrics: Record<string, SideMetric> | null = null;
  for (const [key, m] of Object.entries(other.metrics)) {
    if (!key.startsWith('work_') || key in side.metrics) continue;
    const brace = key.indexOf('{');
    if (brace > 0 && !(`work_requests${key.slice(brace)}` in side.metrics)) continue;
    if (brace < 0 && !Object.keys(side.metrics).some((k) => k.startsWith('work_requests{'))) continue;
    metrics ??= { ...side.metrics };
    metrics[key] = { ...m, stats: { value: 0 }, thresholds: {} };
  }
  return metrics ? { ...side, metrics } : side;
}

const gatePatterns = new Map<string, RegExp>();

/** `work_*` → /^work_.*$/: a --gate name or pattern, matched against a whole key or name (compiled once). */
function gatePattern(g: string): RegExp {
  let re = gatePatterns.get(g);
  if (!re) gatePatterns.set(g, (re = new RegExp('^' + g.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$')));
  return re;
}

/** Whether a metric is gated under --gate (every metric without it). */
export function inGate(key: string, options: CompareOptions): boolean {
  if (!options.gate) return true;
  return options.gate.some((g) => {
    const re = gatePattern(g);
    return re.test(key) || re.test(baseName(key));
  });
}

/** runValidity from a k6 summary: iterations run to their end (those that threw too, as k6 counts them) and dropped ones (no per-route failures: a summary has none). */
function sideValidity(side: RunSide): string[] {
  const count = (name: string) => side.metrics[name]?.stats.count ?? 0;
  return runValidity({ completed: count('iterations'), interrupted: 0, dropped: count('dropped_iterations') }, []).reasons;
}

// ---------------------------------------------------------------------------------------------
// Rendering: numbers, the terminal table, Markdown.
// ---------------------------------------------------------------------------------------------

/** A number with four significant digits at most, never in exponent form above 1e-4. */
export function formatNumber(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (Number.isInteger(v) && a < 1e15) return String(v);
  if (a >= 1000) return v.toFixed(0);
  if (a < 1e-4) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

function formatBytes(v: number): string {
  const a = Math.abs(v);
  const [div, unit] = a >= 1e9 ? [1e9, 'GB'] : a >= 1e6 ? [1e6, 'MB'] : a >= 1e3 ? [1e3, 'kB'] : [1, 'B'];
  return `${formatNumber(Number((v / div).toPrecision(3)))} ${unit}`;
}

/** A value in its unit: ms for times, B/kB/MB for data, % for k6 rates, /s for counter rates. */
export function formatValue(v: number, row: Pick<CompareRow, 'unit' | 'type' | 'stat'>): string {
  const perSecond = row.type === 'counter' && row.stat === 'rate' ? '/s' : '';
  if (row.unit === 'time') return `${formatNumber(Number(v.toFixed(4)))} ms`; // 0.1 µs resolution
  if (row.unit === 'data') return formatBytes(v) + perSecond;
  if (row.type === 'rate') return `${formatNumber(Number((v * 100).toPrecision(4)))}%`;
  return formatNumber(v) + perSecond;
}

function signed(text: string, v: number): string {
  return v > 0 ? `+${text}` : text;
}

export function formatDelta(row: CompareRow): string {
  if (row.type === 'rate' && row.unit === 'ratio') return signed(`${formatNumber(Number((row.delta * 100).toPrecision(4)))} pp`, row.delta);
  return signed(formatValue(row.delta, row), row.delta);
}

/** The noise floor of a row, in its unit. */
export function formatFloor(row: Pick<CompareRow, 'unit' | 'type' | 'stat' | 'floor'>): string {
  return row.type === 'rate' ? formatNumber(row.floor) : formatValue(row.floor, row);
}

/** A relative change; `—` when the base is 0 and the new value is not (no percentage exists). */
export function formatRelative(rel: number | null): string {
  if (rel === null) return '—';
  const pct = rel * 100;
  const text = Math.abs(pct) >= 100 ? pct.toFixed(0) : pct.toFixed(1);
  return pct > 0 ? `+${text}%` : text === '-0.0' ? '0.0%' : `${text}%`;
}

export function formatPercent(fraction: number): string {
  return `${formatNumber(Number((fraction * 100).toPrecision(4)))}%`;
}

function contextLine(c: RunContext, separator = '  '): string {
  const parts = [c.source];
  if (c.scenario) parts.push(c.scenario);
  if (c.seed !== undefined) parts.push(`seed ${c.seed}`);
  if (c.speed !== undefined) parts.push(`speed ${c.speed}`);
  if (c.scale !== undefined) parts.push(`scale ${c.scale}`);
  if (c.startedAt) parts.push(c.startedAt);
  if (c.durationMs !== undefined) parts.push(`${(c.durationMs / 1000).toFixed(1)} s`);
  return parts.join(separator);
}

function settingsLines(o: CompareOptions): string[] {
  const own = Object.entries(o.tolerances).map(([k, v]) => `${k} ${formatPercent(v)}`);
  const caps = METRIC_RULES.filter((r) => r.maxTolerance !== undefined && typeof r.match === 'string' && !(r.match in o.tolerances)).map(
    (r) => `${String(r.match)} ${formatPercent(Math.min(r.maxTolerance!, o.tolerance))}${r.complement ? ` of its ${r.complement} share` : ''}`,
  );
  const floors = `noise floor time ${formatNumber(o.floors.time)} ms, ratio ${formatNumber(o.floors.ratio)}, count ${formatNumber(o.floors.count)}, data ${formatBytes(o.floors.data)}; work_* 0.2 per request or job (bytes 64 B, failed share 0.01)`;
  const metricFloors = Object.entries(o.metricFloors).map(([k, v]) => `${k} ${formatNumber(v)}`);
  const stats = o.stats
    ? `gated stats: ${o.stats.join(', ')}`
    : `gated stats: trends ${DEFAULT_GATED.trend.join(', ')}; counters ${DEFAULT_GATED.counter.join(', ')}; rates and gauges ${DEFAULT_GATED.rate.join(', ')}`;
  const metricStats = Object.entries(o.metricStats).map(([k, v]) => `${k} ${v.join(', ')}`);
  return [
    `tolerance ${formatPercent(o.tolerance)}${[...own, ...caps].length ? ` (${[...own, ...caps].join(', ')})` : ''}`,
    `${floors}${metricFloors.length ? ` (${metricFloors.join(', ')})` : ''}`,
    `${stats}${metricStats.length ? ` (${metricStats.join('; ')})` : ''}`,
    ...Object.entries(o.directions).map(([k, d]) => `direction of ${k}: ${d}`),
    ...(o.gate ? [`gated metrics: ${o.gate.join(', ')} (every other is shown, never fails)`] : []),
  ];
}

function regressionSummary(o: CompareOutcome): string {
  const stats = o.rows.filter((r) => r.verdict === 'regressed');
  const thresholds = o.thresholds.filter((t) => t.verdict === 'regressed');
  const lostThresholds = o.thresholds.filter((t) => t.verdict === 'missing');
  const parts: string[] = [];
  if (stats.length) parts.push(`${stats.length} metric stat${stats.length > 1 ? 's' : ''} regressed beyond tolerance`);
  if (o.missing.length) parts.push(`${o.missing.length} gated metric stat${o.missing.length > 1 ? 's' : ''} missing from new`);
  if (thresholds.length) parts.push(`${thresholds.length} threshold${thresholds.length > 1 ? 's' : ''} passed in base and fail${thresholds.length > 1 ? '' : 's'} in new`);
  if (lostThresholds.length) parts.push(`${lostThresholds.length} threshold${lostThresholds.length > 1 ? 's' : ''} in base missing from new`);
  return parts.join(', ');
}

/** The verdict in one line: PASS or FAIL and why. */
export function verdictLine(o: CompareOutcome): string {
  if (!o.passed) return `FAIL: ${[...(o.invalid.new.length ? [`NEW is not valid for conclusions (${o.invalid.new.join('; ')})`] : []), ...(o.regressions ? [regressionSummary(o)] : [])].join('; ')}`;
  const gated = o.rows.filter((r) => r.gated).length;
  const count = (v: Verdict) => o.rows.filter((r) => r.verdict === v).length;
  const extra = [`${count('improved')} improved`];
  if (count('worse')) extra.push(`${count('worse')} worse but not gated`);
  const failing = o.thresholds.filter((t) => t.verdict === 'still failing' || t.verdict === 'failing').length;
  if (failing) extra.push(`${failing} threshold${failing > 1 ? 's' : ''} failing in new (not passing in base either)`);
  return `PASS: no regression beyond tolerance (${o.rows.length} stats compared, ${gated} gated; ${extra.join(', ')})`;
}

function verdictWord(v: Verdict | ThresholdVerdict): string {
  return v === 'regressed' ? 'REGRESSED' : v === 'missing' ? 'MISSING' : v;
}

/** The relative change, and for a ratio judged on its complement that of the complement: `-9.5%; misses +180%`. */
function relativeText(r: CompareRow): string {
  const rel = formatRelative(r.relative);
  return r.judgedOn === 'complement' && r.delta !== 0 ? `${rel}; ${r.complementName ?? '1 − value'} ${formatRelative(r.judgedRelative)}` : rel;
}

function missingValue(r: MissingRow): string {
  return formatValue(r.base, r);
}

function pad(cells: string[][], rightAligned: ReadonlySet<number>): string[] {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

function rowCells(r: CompareRow, first: boolean): string[] {
  const judged = r.judgedOn === 'complement' && r.delta !== 0 ? `${r.complementName ?? '1 − value'} ${formatRelative(r.judgedRelative)}` : '';
  return [first ? r.metric : '', r.stat, formatValue(r.base, r), formatValue(r.new, r), formatDelta(r), formatRelative(r.relative), r.gated ? `±${formatPercent(r.tolerance)}` : '', verdictWord(r.verdict), judged];
}

function thresholdText(t: ThresholdRow): string {
  const mark = t.new === 'failed' ? '✗' : t.new === 'passed' ? '✓' : '-';
  const value = t.value !== undefined ? `  (${formatNumber(t.value)})` : '';
  const base = t.base === null ? 'not in base' : `${t.base} in base`;
  const verdict = verdictWord(t.verdict);
  return `${mark} ${t.metric}  ${t.expression}${value}  ${t.new ?? 'not in new'}; ${base}: ${verdict}`;
}

/** The aligned terminal report: context, the full table, thresholds, added/removed, regressions, verdict. */
export function compareText(o: CompareOutcome): string {
  const lines: string[] = ['', `  base  ${contextLine(o.base)}`, `  new   ${contextLine(o.new)}`, ...settingsLines(o.options).map((l) => `  ${l}`)];
  for (const n of o.notes) lines.push(`  note: ${n}`);
  lines.push('');
  const cells = [['metric', 'stat', 'base', 'new', 'change', '%', 'gate', 'verdict', 'judged on']];
  let last = '';
  for (const r of o.rows) {
    cells.push(rowCells(r, r.metric !== last));
    last = r.metric;
  }
  lines.push(...pad(cells, new Set([2, 3, 4, 5])).map((l) => `  ${l}`));
  if (o.thresholds.length) {
    lines.push('', '  THRESHOLDS');
    for (const t of o.thresholds) lines.push(`    ${thresholdText(t)}`);
  }
  if (o.added.length) lines.push('', `  only in new (added): ${o.added.join(', ')}`);
  if (o.removed.length) lines.push('', `  only in base (removed, no gated stat): ${o.removed.join(', ')}`);
  const regressed = o.rows.filter((r) => r.verdict === 'regressed');
  const lostThresholds = o.thresholds.filter((t) => t.verdict === 'missing');
  if (regressed.length || o.missing.length || lostThresholds.length) {
    lines.push('', '  REGRESSIONS');
    for (const r of regressed) lines.push(`    ${r.metric} ${r.stat}: ${formatValue(r.base, r)} → ${formatValue(r.new, r)} (${formatDelta(r)}, ${relativeText(r)}; tolerance ${formatPercent(r.tolerance)})`);
    for (const r of o.missing) lines.push(`    ${r.metric} ${r.stat}: ${missingValue(r)} → MISSING (${r.reason})`);
    for (const t of lostThresholds) lines.push(`    threshold ${t.metric} ${t.expression}: ${t.base} in base, not in new (MISSING)`);
  }
  lines.push('', verdictLine(o), '');
  return lines.join('\n');
}

/** Escapes a table cell: pipes split cells, and backticks would close a code span. */
function md(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[<>]/g, (c) => (c === '<' ? '&lt;' : '&gt;'));
}

function code(text: string): string {
  const ticks = text.includes('`') ? '``' : '`';
  const pad = text.includes('`') ? ' ' : '';
  return `${ticks}${pad}${text.replace(/\|/g, '\\|')}${pad}${ticks}`;
}

function mdTable(head: string[], rows: string[][], right: ReadonlySet<number>): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (right.has(i) ? ' ---: ' : ' --- ')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

/** GitHub-flavoured Markdown for a pull-request comment: verdict first, regressions, then everything in <details>. */
export function compareMarkdown(o: CompareOutcome): string {
  const out: string[] = [];
  out.push(o.passed ? `### ✅ ${md(verdictLine(o))}` : `### ❌ ${md(verdictLine(o))}`, '');
  const context = (c: RunContext) => code(c.source) + md(contextLine({ ...c, source: '' }, ' · '));
  out.push(`**base** ${context(o.base)}  `, `**new** ${context(o.new)}  `, md(settingsLines(o.options).join('; ')), '');
  for (const n of o.notes) out.push(`> **note:** ${md(n)}`, '');
  const regressed = o.rows.filter((r) => r.verdict === 'regressed');
  if (regressed.length) {
    out.push('#### Regressions', '');
    out.push(
      ...mdTable(
        ['metric', 'stat', 'base', 'new', 'change', '%', 'tolerance'],
        regressed.map((r) => [code(r.metric), md(r.stat), md(formatValue(r.base, r)), md(formatValue(r.new, r)), md(formatDelta(r)), md(relativeText(r)), `±${formatPercent(r.tolerance)}`]),
        new Set([2, 3, 4, 5]),
      ),
      '',
    );
  }
  const lostThresholds = o.thresholds.filter((t) => t.verdict === 'missing');
  if (o.missing.length || lostThresholds.length) {
    out.push('#### Missing from new', '');
    if (o.missing.length) out.push(...mdTable(['metric', 'stat', 'base', 'reason'], o.missing.map((r) => [code(r.metric), md(r.stat), md(missingValue(r)), md(r.reason)]), new Set([2])), '');
    if (lostThresholds.length) out.push(...mdTable(['metric', 'threshold', 'base'], lostThresholds.map((t) => [code(t.metric), code(t.expression), t.base ?? '']), new Set()), '');
  }
  const failing = o.thresholds.filter((t) => t.new === 'failed');
  if (failing.length) {
    out.push('#### Thresholds failing in new', '');
    out.push(
      ...mdTable(
        ['metric', 'threshold', 'observed', 'base', 'verdict'],
        failing.map((t) => [code(t.metric), code(t.expression), t.value !== undefined ? formatNumber(t.value) : '', t.base ?? 'not in base', t.verdict === 'regressed' ? '**regressed**' : t.verdict]),
        new Set([2]),
      ),
      '',
    );
  }
  if (o.added.length) out.push(`**Only in new (added):** ${o.added.map(code).join(', ')}`, '');
  if (o.removed.length) out.push(`**Only in base (removed, no gated stat):** ${o.removed.map(code).join(', ')}`, '');
  out.push(`<details><summary>All ${o.rows.length} metric stats</summary>`, '');
  let last = '';
  const rows = o.rows.map((r) => {
    const cells = [r.metric !== last ? code(r.metric) : '', md(r.stat), md(formatValue(r.base, r)), md(formatValue(r.new, r)), md(formatDelta(r)), md(relativeText(r)), r.gated ? `±${formatPercent(r.tolerance)}` : '', r.verdict === 'regressed' ? '**regressed**' : r.verdict];
    last = r.metric;
    return cells;
  });
  out.push(...mdTable(['metric', 'stat', 'base', 'new', 'change', '%', 'gate', 'verdict'], rows, new Set([2, 3, 4, 5])), '');
  const others = o.thresholds.filter((t) => t.new !== 'failed');
  if (others.length) {
    out.push('Thresholds not failing in new:', '', ...mdTable(['metric', 'threshold', 'new', 'base', 'verdict'], others.map((t) => [code(t.metric), code(t.expression), t.new ?? 'not in new', t.base ?? 'not in base', t.verdict === 'missing' ? '**missing**' : t.verdict]), new Set()), '');
  }
  out.push('</details>', '');
  return out.join('\n');
}

/** The outcome for machines (`--json`): everything the tables show, values unformatted. */
export function compareJson(o: CompareOutcome): string {
  return JSON.stringify(o, null, 2) + '\n';
}
