// Thresholds in k6's grammar: parsed and checked against the metric registry once, when the run is
// configured, then evaluated during the run (abortOnFail, delayAbortEval) and at its end (exit 99).

import { MetricError, parseSelector, type MetricRegistry, type MetricType } from './k6-metrics.ts';

export const THRESHOLD_ERRORS = {
  /** `thresholds` is not an object of arrays, an entry is neither a string nor {threshold, …}, or an option is bad. */
  K6_THRESHOLD_CONFIG: 'The thresholds option is malformed',
  /** The key names no metric the script or k6 defines. */
  K6_THRESHOLD_METRIC: 'A threshold names an unknown metric',
  /** The key's sub-metric selector does not parse. */
  K6_THRESHOLD_SELECTOR: 'A threshold sub-metric selector is malformed',
  /** The expression does not parse. */
  K6_THRESHOLD_SYNTAX: 'A threshold expression is malformed',
  /** The aggregation does not exist for the metric's type (count on a trend, p(95) on a rate …). */
  K6_THRESHOLD_AGGREGATION: "A threshold's aggregation does not apply to its metric's type",
} as const;
export type ThresholdErrorCode = keyof typeof THRESHOLD_ERRORS;

export class ThresholdError extends Error {
  readonly code: ThresholdErrorCode;
  /** Where in the options: thresholds['http_req_duration{name:feed}'][0]. */
  readonly field: string;
  constructor(code: ThresholdErrorCode, field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'ThresholdError';
    this.code = code;
    this.field = field;
  }
}

export interface ThresholdResult {
  /** The metric or sub-metric, as the summary reports it. */
  metric: string;
  /** The expression as written. */
  expression: string;
  ok: boolean;
  /** The aggregated value compared, or undefined while the metric has no samples (not judged). */
  value: number | undefined;
  abortOnFail: boolean;
}

export type ThresholdEntry = string | { threshold: string; abortOnFail?: boolean; delayAbortEval?: string };
export type ThresholdConfig = Record<string, ThresholdEntry[]>;

export type Operator = '<' | '<=' | '>' | '>=' | '==' | '===' | '!=';

export interface ThresholdExpression {
  /** avg, min, max, med, count, rate, value, or p(N) with N in `percentile`. */
  aggregation: 'avg' | 'min' | 'max' | 'med' | 'count' | 'rate' | 'value' | 'p';
  percentile?: number;
  operator: Operator;
  value: number;
}

/*
 * The grammar of a threshold expression (k6's, https://grafana.com/docs/k6/latest/using-k6/thresholds/):
 *
 *   expression  = ws aggregation ws operator ws number ws
 *   aggregation = "avg" | "min" | "max" | "med" | "count" | "rate" | "value" | "p(" ws number ws ")"
 *   operator    = "<=" | "<" | ">=" | ">" | "===" | "==" | "!="
 *   number      = [ "+" | "-" ] ( digits [ "." [ digits ] ] | "." digits ) [ ( "e" | "E" ) [ "+" | "-" ] digits ]
 *   ws          = { space or tab }
 *
 * p(N) needs 0 ≤ N ≤ 100 (p(99.9) is the 99.9th percentile). "==" and "===" mean the same, as in k6,
 * since every aggregation is a number. Which aggregations apply depends on the metric's type, and a
 * mismatch is a configuration error, not a failed threshold:
 *
 *   trend   avg min max med p(N)        counter  count rate (per second over the test so far)
 *   rate    rate (share of non-zero)    gauge    value (the last one set)
 *
 * A threshold key is a metric name or a sub-metric selector, metric{tag:value,...} (see parseSelector).
 * An entry is the expression, or {threshold, abortOnFail, delayAbortEval}: with abortOnFail a failure
 * ends the run, but not before delayAbortEval (a k6 duration such as "10s") has passed since the start.
 */
const EXPRESSION = /^\s*(avg|min|max|med|count|rate|value|p\(\s*([^)]*?)\s*\))\s*(<=|<|>=|>|===|==|!=)\s*(.*?)\s*$/;
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

const AGGREGATIONS: Record<MetricType, readonly string[]> = {
  trend: ['avg', 'min', 'max', 'med', 'p'],
  counter: ['count', 'rate'],
  rate: ['rate'],
  gauge: ['value'],
};

/** Parses one expression; throws a ThresholdError (K6_THRESHOLD_SYNTAX) whose field is `field`. */
export function parseThreshold(text: string, field = 'threshold'): ThresholdExpression {
  const bad = (why: string) => new ThresholdError('K6_THRESHOLD_SYNTAX', field, `${JSON.stringify(text)} is not a threshold (${why}); expected <aggregation> <operator> <number>, e.g. 'p(95)<200'`);
  if (typeof text !== 'string') throw bad('not a string');
  const m = EXPRESSION.exec(text);
  if (!m) throw bad('no aggregation and operator');
  const [, agg, pct, op, num] = m;
  if (!NUMBER.test(num!)) throw bad(`${JSON.stringify(num)} is not a number`);
  const expr: ThresholdExpression = { aggregation: agg!.startsWith('p(') ? 'p' : (agg as ThresholdExpression['aggregation']), operator: op as Operator, value: Number(num) };
  if (expr.aggregation === 'p') {
    if (!NUMBER.test(pct!)) throw bad(`percentile ${JSON.stringify(pct)} is not a number`);
    const p = Number(pct);
    if (p < 0 || p > 100) throw bad(`percentile ${p} is outside 0–100`);
    expr.percentile = p;
  }
  return expr;
}

const UNITS_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)/y;

/**
 * A k6 duration in ms: one or more <number><unit> parts, units ns us µs ms s m h d ("1h2m3s", "500ms",
 * "1.5s", "2m"). As in k6, a number (not a string) means ms; a string needs units ("0" aside).
 * Negative, empty or unit-less strings throw.
 */
export function parseDuration(text: string | number): number {
  if (typeof text === 'number') {
    if (!Number.isFinite(text) || text < 0) throw new Error(`invalid duration ${text}: a number of ms must be finite and ≥ 0`);
    return text;
  }
  if (typeof text !== 'string') throw new Error(`invalid duration ${String(text)}: expected a string such as "30s"`);
  const s = text.trim();
  if (s === '0') return 0;
  if (s.length === 0) throw new Error('invalid duration "": empty');
  let ms = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < s.length) {
    const at = DURATION_PART.lastIndex;
    const m = DURATION_PART.exec(s);
    if (!m) throw new Error(`invalid duration ${JSON.stringify(text)} at ${JSON.stringify(s.slice(at))}: expected <number><unit>, units ns us ms s m h d`);
    ms += Number(m[1]) * UNITS_MS[m[2]!]!;
  }
  return ms;
}

interface Compiled {
  /** Registry key (a sub-metric's first spelling). */
  key: string;
  type: MetricType;
  source: string;
  expr: ThresholdExpression;
  /** The registry aggregation to read (p(N) spelled as the registry reads it). */
  stat: string;
  abortOnFail: boolean;
  /** ms since the test start before a failure may abort; undefined: at once. */
  delayAbortEvalMs: number | undefined;
}

const ENTRY_FIELDS = new Set(['threshold', 'abortOnFail', 'delayAbortEval']);

export class Thresholds {
  private readonly compiled: Compiled[] = [];

  constructor(config: Record<string, ThresholdEntry[]>, private readonly registry: MetricRegistry) {
    if (config === undefined || config === null) return;
    if (typeof config !== 'object' || Array.isArray(config)) throw new ThresholdError('K6_THRESHOLD_CONFIG', 'thresholds', 'must be an object of metric → list of expressions');
    for (const [name, entries] of Object.entries(config)) {
      const at = `thresholds[${quote(name)}]`;
      let sel;
      try {
        sel = parseSelector(name);
      } catch (e) {
        if (e instanceof MetricError) throw new ThresholdError('K6_THRESHOLD_SELECTOR', at, e.message);
        throw e;
      }
      const type = registry.type(sel.name);
      if (!type) {
        throw new ThresholdError('K6_THRESHOLD_METRIC', at, `no metric named ${JSON.stringify(sel.name)}: built-in metrics and custom metrics created in init code can have thresholds`);
      }
      const key = sel.suffix === null ? sel.name : registry.addSubmetric(name);
      if (!Array.isArray(entries)) throw new ThresholdError('K6_THRESHOLD_CONFIG', at, 'must be a list of expressions, e.g. ["p(95)<200"]');
      entries.forEach((entry, i) => this.compiled.push(compile(entry, `${at}[${i}]`, key, type)));
    }
  }

  /** Every threshold as configured (for printers and result files). */
  definitions(): Array<{ metric: string; expression: string; abortOnFail: boolean; delayAbortEvalMs: number | undefined }> {
    return this.compiled.map((c) => ({ metric: c.key, expression: c.source, abortOnFail: c.abortOnFail, delayAbortEvalMs: c.delayAbortEvalMs }));
  }

  /**
   * Evaluates every threshold at `elapsedMs` since the test started (counter rates divide by it).
   * During the run a metric with no samples is not judged (ok, value undefined), as k6 skips empty
   * sinks; with `final`, empty counters, trends and gauges are judged on k6's zero values, as k6's
   * end-of-test pass does (so 'count>0' on a counter nothing incremented fails), and an empty rate
   * is still not judged: k6 v0.48 leaves its rate out rather than divide by zero, and a threshold
   * without its value passes (metrics/thresholds.go; measured: 'rate>0.5' and 'rate<0.5' on a rate
   * with no samples both pass, exit 0). `abort` is true when an abortOnFail threshold failed after
   * its delayAbortEval.
   */
  evaluate(elapsedMs: number, opts: { final?: boolean } = {}): { results: ThresholdResult[]; abort: boolean; failed: boolean } {
    const results: ThresholdResult[] = [];
    let abort = false;
    let failed = false;
    for (const c of this.compiled) {
      if ((!opts.final || c.type === 'rate') && this.registry.isEmpty(c.key)) {
        results.push({ metric: c.key, expression: c.source, ok: true, value: undefined, abortOnFail: c.abortOnFail });
        continue;
      }
      const value = this.registry.stat(c.key, c.stat, elapsedMs);
      const ok = compare(value, c.expr.operator, c.expr.value);
      results.push({ metric: c.key, expression: c.source, ok, value, abortOnFail: c.abortOnFail });
      if (ok) continue;
      failed = true;
      if (c.abortOnFail && (c.delayAbortEvalMs === undefined || c.delayAbortEvalMs < elapsedMs)) abort = true;
    }
    return { results, abort, failed };
  }
}

function compile(entry: unknown, field: string, key: string, type: MetricType): Compiled {
  let source: unknown = entry;
  let abortOnFail = false;
  let delayAbortEvalMs: number | undefined;
  if (entry !== null && typeof entry === 'object' && !Array.isArray(entry)) {
    const o = entry as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!ENTRY_FIELDS.has(k)) throw new ThresholdError('K6_THRESHOLD_CONFIG', `${field}.${k}`, 'unknown field; an entry has threshold, abortOnFail and delayAbortEval');
    }
    source = o.threshold;
    if (typeof source !== 'string') throw new ThresholdError('K6_THRESHOLD_CONFIG', `${field}.threshold`, 'must be an expression string');
    if (o.abortOnFail !== undefined) {
      if (typeof o.abortOnFail !== 'boolean') throw new ThresholdError('K6_THRESHOLD_CONFIG', `${field}.abortOnFail`, 'must be true or false');
      abortOnFail = o.abortOnFail;
    }
    if (o.delayAbortEval !== undefined) {
      try {
        delayAbortEvalMs = parseDuration(o.delayAbortEval as string);
      } catch (e) {
        throw new ThresholdError('K6_THRESHOLD_CONFIG', `${field}.delayAbortEval`, (e as Error).message);
      }
    }
  } else if (typeof entry !== 'string') {
    throw new ThresholdError('K6_THRESHOLD_CONFIG', field, 'must be an expression string or {threshold, abortOnFail, delayAbortEval}');
  }
  const text = source as string;
  const expr = parseThreshold(text, field);
  if (!AGGREGATIONS[type].includes(expr.aggregation)) {
    const shown = expr.aggregation === 'p' ? `p(${expr.percentile})` : expr.aggregation;
    throw new ThresholdError('K6_THRESHOLD_AGGREGATION', field, `${shown} does not apply to ${key}, a ${type}; a ${type} has ${AGGREGATIONS[type].map((a) => (a === 'p' ? 'p(N)' : a)).join(', ')}`);
  }
  const stat = expr.aggregation === 'p' ? `p(${expr.percentile})` : expr.aggregation;
  return { key, type, source: text, expr, stat, abortOnFail, delayAbortEvalMs };
}

function compare(lhs: number, op: Operator, rhs: number): boolean {
  switch (op) {
    case '<':
      return lhs < rhs;
    case '<=':
      return lhs <= rhs;
    case '>':
      return lhs > rhs;
    case '>=':
      return lhs >= rhs;
    case '==':
    case '===':
      return lhs === rhs;
    case '!=':
      return lhs !== rhs;
  }
}

function quote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
