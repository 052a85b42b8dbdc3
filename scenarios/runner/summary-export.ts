// k6's end-of-test data as pure functions of the registry, the threshold verdicts and the checks: the
// object handleSummary(data) receives (k6 v0.48) and the flattened JSON of `--summary-export`.

import { createHash } from 'node:crypto';
import { SCALEGRAM_METRICS, DEFAULT_TREND_STATS, type MetricRegistry, type MetricType, type ValueKind } from './k6-metrics.ts';
import type { ThresholdResult } from './thresholds.ts';

/** One check's tally. `path` is its group's path + '::' + name; `id` the md5 of the path, as k6. */
export interface CheckResult {
  name: string;
  path: string;
  id: string;
  passes: number;
  fails: number;
}

/** A group with its sub-groups and checks in first-seen order; the root has name '' and path ''. */
export interface CheckTree {
  name: string;
  path: string;
  id: string;
  groups: CheckTree[];
  checks: CheckResult[];
}

/** k6 joins group names into paths with this, so no name may contain it. */
const SEPARATOR = '::';

function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}

interface GroupNode {
  tree: CheckTree;
  groups: Map<string, GroupNode>;
  checks: Map<string, CheckResult>;
}

function groupNode(name: string, path: string): GroupNode {
  return { tree: { name, path, id: md5(path), groups: [], checks: [] }, groups: new Map(), checks: new Map() };
}

/** Tallies checks per group as the k6 `check` shim reports them. */
export class CheckRecorder {
  private readonly root = groupNode('', '');

  /** Counts one check outcome in the group at `groupPath` (outermost first; [] is the root). */
  record(groupPath: readonly string[], name: string, ok: boolean): void {
    if (name.includes(SEPARATOR)) throw new Error(`check name ${JSON.stringify(name)} contains '::', which k6 reserves for group paths`);
    const g = this.group(groupPath);
    let c = g.checks.get(name);
    if (!c) {
      const path = g.tree.path + SEPARATOR + name;
      c = { name, path, id: md5(path), passes: 0, fails: 0 };
      g.checks.set(name, c);
      g.tree.checks.push(c);
    }
    if (ok) c.passes++;
    else c.fails++;
  }

  /** Registers a group that ran (k6 lists groups even when they hold no checks). */
  enterGroup(groupPath: readonly string[]): void {
    this.group(groupPath);
  }

  private group(groupPath: readonly string[]): GroupNode {
    let g = this.root;
    for (const name of groupPath) {
      if (name.includes(SEPARATOR)) throw new Error(`group name ${JSON.stringify(name)} contains '::', which k6 reserves for group paths`);
      let next = g.groups.get(name);
      if (!next) {
        next = groupNode(name, g.tree.path + SEPARATOR + name);
        g.groups.set(name, next);
        g.tree.groups.push(next.tree);
      }
      g = next;
    }
    return g;
  }

  /** A copy of the tallies so far. */
  tree(): CheckTree {
    return structuredClone(this.root.tree);
  }
}

/** The `options` k6 puts in handleSummary's data. */
export interface SummaryOptions {
  summaryTrendStats: string[];
  summaryTimeUnit: string;
  noColor: boolean;
}

const TREND_STAT = /^(avg|min|med|max|count|p\(\s*(\d+(\.\d*)?|\.\d+)\s*\))$/;

/** Reads summaryTrendStats, summaryTimeUnit and noColor from a script's options, with k6's defaults. */
export function summaryOptions(options: unknown): SummaryOptions {
  const o = options !== null && typeof options === 'object' ? (options as Record<string, unknown>) : {};
  const stats = o.summaryTrendStats ?? [...DEFAULT_TREND_STATS];
  if (!Array.isArray(stats) || stats.length === 0) throw new Error('options.summaryTrendStats must be a non-empty list such as ["avg","p(99)"]');
  stats.forEach((s, i) => {
    if (typeof s !== 'string' || !TREND_STAT.test(s) || (s.startsWith('p(') && Number(s.slice(2, -1)) > 100)) {
      throw new Error(`options.summaryTrendStats[${i}]: ${JSON.stringify(s)} is not avg, min, med, max, count or p(N) with 0 ≤ N ≤ 100`);
    }
  });
  const unit = o.summaryTimeUnit ?? '';
  if (typeof unit !== 'string') throw new Error('options.summaryTimeUnit must be a string');
  return { summaryTrendStats: stats as string[], summaryTimeUnit: unit, noColor: o.noColor === true };
}

export interface SummaryMetric {
  type: MetricType;
  contains: ValueKind;
  values: Record<string, number>;
  thresholds?: Record<string, { ok: boolean }>;
}

export interface SummaryData {
  root_group: CheckTree;
  options: SummaryOptions;
  state: { isStdOutTTY: boolean; isStdErrTTY: boolean; testRunDurationMs: number };
  metrics: Record<string, SummaryMetric>;
  setup_data?: unknown;
  /** Scalegram's own metrics the script neither declared nor put a threshold on (not k6's: kept apart). */
  scalegram?: { metrics: Record<string, SummaryMetric> };
}

/**
 * Whether a metric (by base name) belongs under the summary's `scalegram` key rather than with k6's:
 * one of SCALEGRAM_METRICS that the script did not declare and no threshold names.
 */
export function scalegramOnly(name: string, declared: ReadonlySet<string>, thresholded: ReadonlySet<string>): boolean {
  return SCALEGRAM_METRICS.has(name) && !declared.has(name) && !thresholded.has(name);
}

/**
 * The metrics a summary shows: those with samples, plus those with thresholds (and a thresholded
 * sub-metric's parent) even without samples, as k6 marks them observed. Sorted, so output is stable.
 */
function summaryKeys(registry: MetricRegistry, thresholds: readonly ThresholdResult[]): string[] {
  const keys = new Set(registry.list().map((m) => m.key));
  for (const t of thresholds) {
    const info = registry.info(t.metric);
    if (!info) continue;
    keys.add(info.key);
    keys.add(info.name);
  }
  return [...keys].sort();
}

function metricValues(registry: MetricRegistry, key: string, type: MetricType, stats: readonly string[], durationMs: number | undefined): Record<string, number> {
  if (type !== 'trend') return registry.values(key, [], durationMs);
  const base = registry.values(key);
  const out: Record<string, number> = {};
  for (const s of stats) out[s] = base[s] ?? registry.stat(key, s.replace(/\s+/g, ''));
  return out;
}

/** The object k6 v0.48 passes to handleSummary(data). Counter rates divide by testRunDurationMs. */
export function summaryData(
  registry: MetricRegistry,
  thresholds: readonly ThresholdResult[],
  checks: CheckTree,
  state: { testRunDurationMs: number; isStdOutTTY?: boolean; isStdErrTTY?: boolean },
  options: unknown,
  setupData?: unknown,
): SummaryData {
  const opts = summaryOptions(options);
  const metrics: Record<string, SummaryMetric> = {};
  const own: Record<string, SummaryMetric> = {};
  const thresholded = new Set(thresholds.map((t) => registry.info(t.metric)?.name ?? t.metric));
  for (const key of summaryKeys(registry, thresholds)) {
    const info = registry.info(key)!;
    const m: SummaryMetric = { type: info.type, contains: info.kind, values: metricValues(registry, key, info.type, opts.summaryTrendStats, state.testRunDurationMs) };
    const mine = thresholds.filter((t) => registry.resolve(t.metric) === key);
    if (mine.length > 0) m.thresholds = Object.fromEntries(mine.map((t) => [t.expression, { ok: t.ok }]));
    if (scalegramOnly(info.name, registry.declared, thresholded)) own[key] = m;
    else metrics[key] = m;
  }
  const data: SummaryData = {
    root_group: structuredClone(checks),
    options: opts,
    state: { isStdOutTTY: state.isStdOutTTY ?? false, isStdErrTTY: state.isStdErrTTY ?? false, testRunDurationMs: state.testRunDurationMs },
    metrics,
  };
  if (setupData !== undefined) data.setup_data = setupData;
  if (Object.keys(own).length > 0) data.scalegram = { metrics: own };
  return data;
}

export interface ExportGroup {
  name: string;
  path: string;
  id: string;
  groups: Record<string, ExportGroup>;
  checks: Record<string, CheckResult>;
}

export interface SummaryExport {
  root_group: ExportGroup;
  /** Per metric: its values flattened, a rate's `rate` renamed `value`, and `thresholds` mapping each expression to true when it FAILED. */
  metrics: Record<string, Record<string, number | Record<string, boolean>>>;
  /** What setup() returned (k6 v0.48 writes it when the script has a setup). */
  setup_data?: unknown;
  /** Scalegram's own metrics (topology, lateness) the script did not declare nor put a threshold on, flattened alike. */
  scalegram?: { metrics: SummaryExport['metrics'] };
}

function exportGroup(g: CheckTree): ExportGroup {
  return {
    name: g.name,
    path: g.path,
    id: g.id,
    groups: Object.fromEntries(g.groups.map((s) => [s.name, exportGroup(s)])),
    checks: Object.fromEntries(g.checks.map((c) => [c.name, { ...c }])),
  };
}

/** k6's legacy flattening of handleSummary data (what `--summary-export` writes). */
export function exportFromData(data: SummaryData): SummaryExport {
  const out: SummaryExport = { root_group: exportGroup(data.root_group), metrics: flatMetrics(data.metrics) };
  // What setup() returned, as k6 writes it (a script without setup has none).
  if (data.setup_data !== undefined) out.setup_data = data.setup_data;
  if (data.scalegram) out.scalegram = { metrics: flatMetrics(data.scalegram.metrics) };
  return out;
}

function flatMetrics(from: Record<string, SummaryMetric>): SummaryExport['metrics'] {
  const metrics: SummaryExport['metrics'] = {};
  for (const [key, m] of Object.entries(from)) {
    const flat: Record<string, number | Record<string, boolean>> = { ...m.values };
    if (m.thresholds && Object.keys(m.thresholds).length > 0) {
      flat.thresholds = Object.fromEntries(Object.entries(m.thresholds).map(([expr, t]) => [expr, !t.ok]));
    }
    if (m.type === 'rate' && 'rate' in flat) {
      // k6 renames a rate's `rate` to `value` in this format (and so does its reference output).
      flat.value = flat.rate!;
      delete flat.rate;
    }
    metrics[key] = flat;
  }
  return metrics;
}

/**
 * k6's `--summary-export` JSON. Counter rates divide by `testRunDurationMs` when given (as k6 does),
 * else by the time since the registry started; `options` supplies summaryTrendStats.
 */
export function summaryExport(
  registry: MetricRegistry,
  thresholds: readonly ThresholdResult[],
  checks: CheckTree,
  opts: { testRunDurationMs?: number; options?: unknown; setupData?: unknown } = {},
): SummaryExport {
  const durationMs = opts.testRunDurationMs ?? registry.elapsedMs();
  return exportFromData(summaryData(registry, thresholds, checks, { testRunDurationMs: durationMs }, opts.options, opts.setupData));
}
