// `scalegram compare`: verdicts on a table of cases built from a real run's summary (improvement,
// regression, tolerance, overrides, noise floor, directions, thresholds), real k6 summaries, golden
// text and Markdown for two real runs, and the CLI's exit codes and messages in a child process.
// Regenerate the goldens with UPDATE_GOLDEN=1 (then review the diff).

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CompareInputError,
  compareMarkdown,
  compareRuns,
  compareText,
  formatNumber,
  formatRelative,
  parseCompareOptions,
  parseSummary,
  runSide,
  verdictLine,
  type CompareOutcome,
  type Verdict,
} from '../reports/compare.ts';
import { compareJunitXml } from '../reports/junit.ts';

const FIX = 'test/fixtures/compare';
const BASE_DIR = `${FIX}/cache-node-loss-seed3`;
const NEW_DIR = `${FIX}/cache-node-loss-modulo-seed4`;
const K6 = `${FIX}/k6-summary-export.json`;
const UPDATE = process.env.UPDATE_GOLDEN === '1';

type Metrics = Record<string, Record<string, unknown>>;
interface Summary {
  metrics: Metrics;
}

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const baseSummary = readJson<Summary>(`${BASE_DIR}/summary.json`);
const baseResult = readJson<unknown>(`${BASE_DIR}/result.json`);
const k6Summary = readJson<Summary>(K6);

function num(m: Metrics, key: string, stat: string): number {
  const v = m[key]?.[stat];
  if (typeof v !== 'number') throw new Error(`fixture has no ${key} ${stat}`);
  return v;
}

function scale(m: Metrics, key: string, stats: readonly string[], factor: number): void {
  for (const s of stats) m[key]![s] = num(m, key, s) * factor;
}

function variant(change: (m: Metrics) => void, from: Summary = baseSummary): Summary {
  const s = structuredClone(from);
  change(s.metrics);
  return s;
}

type RawOptions = Parameters<typeof parseCompareOptions>[0];

function compareTo(next: Summary, options: RawOptions = {}, base: Summary = baseSummary): CompareOutcome {
  return compareRuns(runSide(BASE_DIR, base, baseResult), runSide('new', next), parseCompareOptions(options));
}

function dropTrendStats(m: Metrics, stats: readonly string[], add: Record<string, number> = {}): void {
  for (const v of Object.values(m)) {
    if (!('avg' in v)) continue;
    for (const s of stats) delete v[s];
    Object.assign(v, add);
  }
}

/** A stat's verdict: its row's, or `missing` when it is gated in BASE and absent from NEW. */
function verdictOf(o: CompareOutcome, metric: string, stat: string): Verdict | 'missing' {
  const row = o.rows.find((r) => r.metric === metric && r.stat === stat);
  if (row) return row.verdict;
  if ((o.missing ?? []).some((r) => r.metric === metric && r.stat === stat)) return 'missing';
  throw new Error(`no row ${metric} ${stat}`);
}

const FEED = 'http_req_duration{name:feed}';

interface Case {
  name: string;
  change: (m: Metrics) => void;
  /** A change to BASE as well (the real run's summary otherwise). */
  base?: (m: Metrics) => void;
  options?: RawOptions;
  expect: Array<[string, string, Verdict | 'missing']>;
  passed: boolean;
}

const CASES: Case[] = [
  { name: 'an identical run passes with every stat ok', change: () => {}, expect: [['http_req_duration', 'p(95)', 'ok'], ['checks', 'value', 'ok']], passed: true },
  {
    name: 'halved latencies are improvements, not failures',
    change: (m) => scale(m, 'http_req_duration', ['avg', 'p(95)'], 0.5),
    expect: [['http_req_duration', 'avg', 'improved'], ['http_req_duration', 'p(95)', 'improved']],
    passed: true,
  },
  { name: 'p(95) 30% slower is a regression beyond the 10% tolerance', change: (m) => scale(m, 'http_req_duration', ['p(95)'], 1.3), expect: [['http_req_duration', 'p(95)', 'regressed']], passed: false },
  { name: 'p(95) 8% slower is within the tolerance', change: (m) => scale(m, 'http_req_duration', ['p(95)'], 1.08), expect: [['http_req_duration', 'p(95)', 'ok']], passed: true },
  { name: 'a change of exactly the tolerance is within it', change: (m) => scale(m, 'http_req_duration', ['p(95)'], 1.1), expect: [['http_req_duration', 'p(95)', 'ok']], passed: true },
  {
    name: 'a hit ratio judged on its misses: 91.2% → 90.5% (misses +7.6%) is within the default tolerance',
    change: (m) => (m.cache_hit_rate!.avg = 0.905),
    expect: [['cache_hit_rate', 'avg', 'ok']],
    passed: true,
  },
  {
    name: 'a global --tolerance 5% makes the same +7.6% misses a regression',
    change: (m) => (m.cache_hit_rate!.avg = 0.905),
    options: { tolerance: ['5%'] },
    expect: [['cache_hit_rate', 'avg', 'regressed']],
    passed: false,
  },
  {
    name: 'a hit ratio 95% → 86% (-9.5%, but misses ×2.8) is a regression',
    base: (m) => (m.cache_hit_rate!.avg = 0.95),
    change: (m) => (m.cache_hit_rate!.avg = 0.86),
    expect: [['cache_hit_rate', 'avg', 'regressed']],
    passed: false,
  },
  {
    name: 'a hit ratio 86% → 95% is an improvement',
    base: (m) => (m.cache_hit_rate!.avg = 0.86),
    change: (m) => (m.cache_hit_rate!.avg = 0.95),
    expect: [['cache_hit_rate', 'avg', 'improved']],
    passed: true,
  },
  {
    name: 'a hit ratio 95% → 94.6% (misses +8%) is within the tolerance',
    base: (m) => (m.cache_hit_rate!.avg = 0.95),
    change: (m) => (m.cache_hit_rate!.avg = 0.946),
    expect: [['cache_hit_rate', 'avg', 'ok']],
    passed: true,
  },
  {
    name: 'a per-metric tolerance lets that metric (and its sub-metrics) move more',
    change: (m) => {
      scale(m, 'http_req_duration', ['p(95)'], 1.3);
      scale(m, FEED, ['p(95)'], 1.3);
    },
    options: { tolerance: ['http_req_duration=40%'] },
    expect: [['http_req_duration', 'p(95)', 'ok'], [FEED, 'p(95)', 'ok']],
    passed: true,
  },
  {
    name: 'a sub-metric tolerance applies to that sub-metric only',
    change: (m) => {
      scale(m, 'http_req_duration', ['p(95)'], 1.3);
      scale(m, FEED, ['p(95)'], 1.3);
    },
    options: { tolerance: [`${FEED}=40%`] },
    expect: [['http_req_duration', 'p(95)', 'regressed'], [FEED, 'p(95)', 'ok']],
    passed: false,
  },
  {
    name: 'a doubling below the 1 ms noise floor is noise (0.054 ms → 0.108 ms)',
    change: (m) => scale(m, 'http_req_sending', ['p(95)'], 2),
    expect: [['http_req_sending', 'p(95)', 'noise']],
    passed: true,
  },
  {
    name: 'a lower time floor (--min-delta time=0.01ms) makes the same doubling a regression',
    change: (m) => scale(m, 'http_req_sending', ['p(95)'], 2),
    options: { minDelta: ['time=0.01ms'] },
    expect: [['http_req_sending', 'p(95)', 'regressed']],
    passed: false,
  },
  {
    name: 'a per-metric floor, in the metric unit',
    change: (m) => scale(m, 'http_req_sending', ['p(95)'], 2),
    options: { minDelta: ['http_req_sending=0.02'] },
    expect: [['http_req_sending', 'p(95)', 'regressed']],
    passed: false,
  },
  {
    name: '20% less throughput is a regression; 20% fewer requests in total is only a change',
    change: (m) => scale(m, 'http_reqs', ['rate', 'count'], 0.8),
    expect: [['http_reqs', 'rate', 'regressed'], ['http_reqs', 'count', 'changed']],
    passed: false,
  },
  {
    name: 'more throughput is an improvement',
    change: (m) => scale(m, 'http_reqs', ['rate'], 1.5),
    expect: [['http_reqs', 'rate', 'improved']],
    passed: true,
  },
  {
    name: '--metric NAME=none takes the direction away, so the drop cannot fail',
    change: (m) => scale(m, 'http_reqs', ['rate'], 0.8),
    options: { metric: ['http_reqs=none'] },
    expect: [['http_reqs', 'rate', 'changed']],
    passed: true,
  },
  {
    name: '--metric gives a direction to a metric the table does not know',
    change: (m) => scale(m, 'vus_max', ['value'], 0.5),
    options: { metric: ['vus_max=higher-is-better'] },
    expect: [['vus_max', 'value', 'regressed']],
    passed: false,
  },
  { name: 'a cache hit ratio 20% lower is a regression', change: (m) => scale(m, 'cache_hit_rate', ['avg'], 0.8), expect: [['cache_hit_rate', 'avg', 'regressed']], passed: false },
  { name: 'shard skew 30% higher is a regression', change: (m) => scale(m, 'shard_skew', ['p(95)'], 1.3), expect: [['shard_skew', 'p(95)', 'regressed']], passed: false },
  { name: 'checks are gated at 1%: 100% → 97% fails', change: (m) => (m.checks!.value = 0.97), expect: [['checks', 'value', 'regressed']], passed: false },
  { name: 'checks 100% → 99.5% is at the 0.005 ratio floor: noise', change: (m) => (m.checks!.value = 0.995), expect: [['checks', 'value', 'noise']], passed: true },
  {
    name: 'checks 99.9% → 99% (failed checks ×10) is a regression, though only -0.9%',
    base: (m) => (m.checks!.value = 0.999),
    change: (m) => (m.checks!.value = 0.99),
    expect: [['checks', 'value', 'regressed']],
    passed: false,
  },
  {
    name: 'checks 90% → 89.3% (failed checks +7%) is a regression at 1% of the failed share',
    base: (m) => (m.checks!.value = 0.9),
    change: (m) => (m.checks!.value = 0.893),
    expect: [['checks', 'value', 'regressed']],
    passed: false,
  },
  {
    name: 'checks 90% → 89.7% (+3% failed, 0.3 pp) is under the ratio floor',
    base: (m) => (m.checks!.value = 0.9),
    change: (m) => (m.checks!.value = 0.897),
    expect: [['checks', 'value', 'noise']],
    passed: true,
  },
  {
    name: 'a NEW run without any http_req_* metric fails: every gated stat they had is missing',
    change: (m) => {
      for (const k of Object.keys(m)) if (k.startsWith('http_req')) delete m[k];
    },
    expect: [['http_req_duration', 'avg', 'missing'], ['http_req_duration', 'p(95)', 'missing'], [FEED, 'p(95)', 'missing'], ['http_req_failed', 'value', 'missing'], ['http_reqs', 'rate', 'missing']],
    passed: false,
  },
  {
    name: 'a NEW run with --summary-trend-stats avg,p(99) lacks the gated p(95): missing',
    change: (m) => dropTrendStats(m, ['min', 'med', 'max', 'p(90)', 'p(95)'], { 'p(99)': 50 }),
    expect: [['http_req_duration', 'avg', 'ok'], ['http_req_duration', 'p(95)', 'missing'], ['shard_skew', 'p(95)', 'missing']],
    passed: false,
  },
  {
    name: 'a --stat gated stat only BASE has is missing (not refused as unknown)',
    base: (m) => (m.http_req_duration!['p(99)'] = 20),
    change: () => {},
    options: { stat: ['http_req_duration=p(99)'] },
    expect: [['http_req_duration', 'p(99)', 'missing']],
    passed: false,
  },
  { name: 'failed requests rising from 0% to 2% is a regression', change: (m) => (m.http_req_failed!.value = 0.02), expect: [['http_req_failed', 'value', 'regressed']], passed: false },
  { name: 'failed requests rising from 0% to 0.4% is under the ratio floor', change: (m) => (m.http_req_failed!.value = 0.004), expect: [['http_req_failed', 'value', 'noise']], passed: true },
  { name: 'dropped iterations per second doubling is a regression', change: (m) => scale(m, 'dropped_iterations', ['rate', 'count'], 2), expect: [['dropped_iterations', 'rate', 'regressed'], ['dropped_iterations', 'count', 'worse']], passed: false },
  {
    name: 'metrics without a direction change but never fail',
    change: (m) => {
      scale(m, 'vus_max', ['value'], 3);
      scale(m, 'data_sent', ['count', 'rate'], 2);
    },
    expect: [['vus_max', 'value', 'changed'], ['data_sent', 'rate', 'changed']],
    passed: true,
  },
  { name: 'a worse stat that is not gated (max) is reported, not failed', change: (m) => scale(m, 'http_req_duration', ['max'], 3), expect: [['http_req_duration', 'max', 'worse']], passed: true },
  {
    name: '--stat replaces the gated stats: max gates, p(95) no longer does',
    change: (m) => scale(m, 'http_req_duration', ['max', 'p(95)'], 1.5),
    options: { stat: ['max'] },
    expect: [['http_req_duration', 'max', 'regressed'], ['http_req_duration', 'p(95)', 'worse']],
    passed: false,
  },
  {
    name: '--stat METRIC=… gates that metric and its sub-metrics on those stats',
    change: (m) => scale(m, FEED, ['p(90)'], 1.5),
    options: { stat: ['http_req_duration=p(90)'] },
    expect: [[FEED, 'p(90)', 'regressed']],
    passed: false,
  },
];

describe('compare verdicts', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const o = compareTo(variant(c.change), c.options, c.base ? variant(c.base) : baseSummary);
      for (const [metric, stat, verdict] of c.expect) expect(`${metric} ${stat}: ${verdictOf(o, metric, stat)}`).toBe(`${metric} ${stat}: ${verdict}`);
      expect(o.passed).toBe(c.passed);
      expect(o.regressions > 0).toBe(!c.passed);
    });
  }

  it('changes nothing else: in the identical run every row is ok', () => {
    const o = compareTo(variant(() => {}));
    expect(o.rows.length).toBeGreaterThan(100);
    expect(new Set(o.rows.map((r) => r.verdict))).toEqual(new Set(['ok']));
  });

  it('lists metrics with no direction only in one run as added or removed, and they do not fail', () => {
    const o = compareTo(
      variant((m) => {
        delete m.vus;
        delete m.data_sent;
        m.feed_items = { avg: 20, min: 1, med: 20, max: 40, 'p(90)': 30, 'p(95)': 35 };
      }),
    );
    expect(o.added).toEqual(['feed_items']);
    expect(o.removed).toEqual(['data_sent', 'vus']);
    expect(o.missing).toEqual([]);
    expect(o.rows.some((r) => r.metric === 'vus' || r.metric === 'feed_items')).toBe(false);
    expect(o.passed).toBe(true);
  });

  it('a gated metric only in BASE is missing, not removed: a regression with its reason in the regressions section', () => {
    const o = compareTo(variant((m) => delete m.stale_reads));
    expect(o.removed).toEqual([]);
    expect(o.missing.map((r) => `${r.metric} ${r.stat}`)).toEqual(['stale_reads avg', 'stale_reads p(95)']);
    expect(o.regressions).toBe(2);
    const text = compareText(o);
    expect(text).toMatch(/ {2}REGRESSIONS\n(.*\n)*? {4}stale_reads avg: 0 → MISSING \(the metric is not in new\)/);
    expect(text.trimEnd().split('\n').at(-1)).toBe('FAIL: 2 gated metric stats missing from new');
    expect(compareMarkdown(o)).toMatch(/#### Missing from new\n\n\| metric \| stat \| base \| reason \|\n(.*\n)\| `stale_reads` \| avg \| 0 \| the metric is not in new \|/);
  });

  it('a gated stat NEW lacks names the summary-trend-stats cause; on a metric with no direction it is not missing', () => {
    const o = compareTo(variant((m) => dropTrendStats(m, ['p(95)'], { 'p(99)': 50 })), { metric: ['http_req_duration=none'] });
    expect(o.missing.some((r) => r.metric === 'http_req_duration')).toBe(false);
    const waiting = o.missing.find((r) => r.metric === 'http_req_waiting' && r.stat === 'p(95)')!;
    expect(waiting.reason).toBe("new's summary has no p(95) (k6 --summary-trend-stats / options.summaryTrendStats)");
    expect(waiting.base).toBeCloseTo(6.5224, 4);
    expect(o.passed).toBe(false);
  });

  it('a threshold that passed in base and fails in new is a regression; other threshold changes are not', () => {
    const o = compareTo(
      variant((m) => {
        (m.http_req_failed!.thresholds as Record<string, boolean>)['rate<0.01'] = true;
        (m.cache_hit_rate!.thresholds as Record<string, boolean>)['avg>0.99'] = true;
        delete m[FEED]!.thresholds;
      }),
    );
    const t = (metric: string, expr: string) => o.thresholds.find((x) => x.metric === metric && x.expression === expr);
    expect(t('http_req_failed', 'rate<0.01')).toMatchObject({ base: 'passed', new: 'failed', verdict: 'regressed' });
    expect(t('cache_hit_rate', 'avg>0.99')).toMatchObject({ base: null, new: 'failed', verdict: 'failing' });
    expect(t('cache_hit_rate', 'min>0.3')).toMatchObject({ base: 'passed', new: 'passed', verdict: 'ok' });
    expect(t(FEED, 'p(99)<1000')).toMatchObject({ base: 'passed', new: null, verdict: 'missing' });
    expect(o.regressions).toBe(2);
    expect(o.passed).toBe(false);
    const text = compareText(o);
    expect(text).toMatch(/✗ http_req_failed {2}rate<0.01 {2}failed; passed in base: REGRESSED/);
    expect(text).toMatch(/ {4}threshold http_req_duration\{name:feed\} p\(99\)<1000: passed in base, not in new \(MISSING\)/);
    expect(text.trimEnd().split('\n').at(-1)).toBe('FAIL: 1 threshold passed in base and fails in new, 1 threshold in base missing from new');
  });

  it('a threshold in BASE missing from NEW fails the comparison on its own', () => {
    const o = compareTo(variant((m) => delete m[FEED]!.thresholds));
    expect(o.thresholds.filter((t) => t.verdict === 'missing').map((t) => t.expression)).toEqual(['p(99)<1000']);
    expect(o.regressions).toBe(1);
    expect(o.passed).toBe(false);
  });

  it('a threshold failing in both runs is shown as still failing and does not fail the comparison', () => {
    const failing = variant((m) => ((m.http_req_failed!.thresholds as Record<string, boolean>)['rate<0.01'] = true));
    const o = compareRuns(runSide('base', failing), runSide('new', failing), parseCompareOptions({}));
    expect(o.thresholds.find((x) => x.metric === 'http_req_failed')!.verdict).toBe('still failing');
    expect(o.passed).toBe(true);
    const fixed = compareRuns(runSide('base', failing), runSide('new', baseSummary), parseCompareOptions({}));
    expect(fixed.thresholds.find((x) => x.metric === 'http_req_failed')!.verdict).toBe('fixed');
  });

  it("takes each metric's kind and the thresholds' observed values from result.json", () => {
    const o = compareRuns(runSide('new', baseSummary), runSide(BASE_DIR, baseSummary, baseResult), parseCompareOptions({}));
    expect(o.thresholds.find((x) => x.metric === FEED)!.value).toBeCloseTo(13.224, 3);
    expect(o.rows.find((r) => r.metric === 'replica_lag_ms')!.unit).toBe('time');
    expect(o.new).toMatchObject({ scenario: 'cache-node-loss', seed: 3, speed: 400, scale: 0.01 });
  });

  it('a NEW that dropped half or more of its planned iterations is not valid for conclusions and fails, named in the verdict and the JUnit; such a BASE is a note', () => {
    // The fixture dropped 52 of 1,214 planned (4.3%): valid. Dropping as many as it completed is half.
    const dropped = (m: Metrics) => (m.dropped_iterations!.count = num(m, 'iterations', 'count'));
    const o = compareTo(variant(dropped), { tolerance: ['1000%'] });
    expect(o.regressions).toBe(0);
    expect(o.invalid.new).toEqual(['50% of the planned iterations were dropped (1,162 of 2,324), so it served a fraction of the load planned']);
    expect(o.passed).toBe(false);
    expect(verdictLine(o)).toBe('FAIL: NEW is not valid for conclusions (50% of the planned iterations were dropped (1,162 of 2,324), so it served a fraction of the load planned)');
    expect(compareJunitXml(o)).toMatch(/<testcase classname="[^"]+" name="new run valid for conclusions"[^>]*>\s*<failure message="NEW is not valid for conclusions: 50% of the planned/);
    const b = compareTo(baseSummary, { tolerance: ['1000%'] }, variant(dropped));
    expect(b.passed).toBe(true);
    expect(b.invalid.base).toHaveLength(1);
    expect(b.notes.join('\n')).toMatch(/^BASE is not valid for conclusions \(50% of the planned iterations were dropped .*\): record the baseline again where its load is served$/m);
    expect(compareTo(baseSummary).invalid).toEqual({ base: [], new: [] });
  });

  it('notes runs of different scenarios, speeds or scales', () => {
    const other = structuredClone(baseResult) as Record<string, unknown>;
    Object.assign(other, { scenario: 'celebrity-post', speed: 100 });
    const o = compareRuns(runSide('a', baseSummary, baseResult), runSide('b', baseSummary, other), parseCompareOptions({}));
    expect(o.notes).toEqual(['different scenarios: cache-node-loss (base) and celebrity-post (new)', 'different --speed (400 and 100): rates and durations are not comparable']);
  });
});

describe('real k6 summaries', () => {
  it("reads k6's --summary-export: types from the stats, thresholds true when failed, sub-metrics as their own keys", () => {
    const m = parseSummary(k6Summary, K6);
    expect(m.feed_ms!.type).toBe('trend');
    expect(m.http_reqs!.type).toBe('counter');
    expect(m.checks!.type).toBe('rate');
    expect(m.http_req_failed!.type).toBe('rate');
    expect(m.vus!.type).toBe('gauge');
    expect(m['http_req_duration{scenario:open}']).toMatchObject({ name: 'http_req_duration', thresholds: { 'p(95)<0.0001': true } });
    expect(m.checks!.thresholds).toEqual({ 'rate>0.9': false });
  });

  it('a k6 summary compared with itself passes; slowed down it fails, custom *_ms trends included', () => {
    const k6 = (s: Summary) => runSide('k6', s);
    const same = compareRuns(k6(k6Summary), k6(k6Summary), parseCompareOptions({}));
    expect(same.passed).toBe(true);
    expect(same.thresholds.find((t) => t.metric === 'http_req_duration{scenario:open}')!.verdict).toBe('still failing');
    const slow = compareRuns(k6(k6Summary), k6(variant((m) => scale(m, 'feed_ms', ['avg', 'p(95)'], 3), k6Summary)), parseCompareOptions({}));
    expect(slow.rows.filter((r) => r.verdict === 'regressed').map((r) => `${r.metric} ${r.stat}`)).toEqual(['feed_ms avg', 'feed_ms p(95)']);
  });

  it("compares a real k6 summary with a Scalegram run's: shared metrics judged, the rest added or removed", () => {
    const o = compareRuns(runSide(K6, k6Summary), runSide(BASE_DIR, baseSummary, baseResult), parseCompareOptions({}));
    expect(o.removed).toEqual([]);
    expect([...new Set(o.missing.map((r) => r.metric))]).toEqual(['feed_ms', 'http_req_duration{scenario:open}']);
    expect(o.thresholds.find((t) => t.metric === 'http_req_duration{scenario:open}')!.verdict).toBe('missing');
    expect(o.added).toContain('cache_hit_rate');
    expect(verdictOf(o, 'http_req_duration', 'p(95)')).toBe('regressed');
    expect(verdictOf(o, 'http_reqs', 'rate')).toBe('improved');
  });

  it("reads handleSummary's data as well ({type, contains, values, thresholds: {expr: {ok}}})", () => {
    const data = {
      metrics: {
        http_req_duration: { type: 'trend', contains: 'time', values: { avg: 5, 'p(95)': 9 }, thresholds: { 'p(95)<8': { ok: false } } },
        checks: { type: 'rate', contains: 'default', values: { rate: 0.99, passes: 99, fails: 1 } },
      },
    };
    const m = parseSummary(data, 'data.json');
    expect(m.http_req_duration).toMatchObject({ type: 'trend', kind: 'time', stats: { avg: 5, 'p(95)': 9 }, thresholds: { 'p(95)<8': true } });
    expect(m.checks!.stats.value).toBe(0.99);
  });
});

describe('compare options and bad input', () => {
  const BAD: Array<[string, RawOptions, RegExp]> = [
    ['a tolerance without %', { tolerance: ['5'] }, /--tolerance "5": expected a percentage/],
    ['a tolerance that is not a number', { tolerance: ['abc%'] }, /expected a percentage/],
    ['a per-metric tolerance without a value', { tolerance: ['http_req_duration='] }, /expected a percentage/],
    ['a per-metric tolerance without a name', { tolerance: ['=5%'] }, /expected METRIC=VALUE/],
    ['a floor without a class', { minDelta: ['5'] }, /say which floor/],
    ['a data suffix on the time floor', { minDelta: ['time=5kB'] }, /a data suffix on the time floor/],
    ['an unknown stat', { stat: ['p99'] }, /"p99" is not a stat/],
    ['an unknown direction', { metric: ['http_reqs=up'] }, /DIRECTION one of higher-is-worse, lower-is-worse, either, none/],
  ];
  for (const [name, options, message] of BAD) {
    it(`refuses ${name}`, () => {
      expect(() => parseCompareOptions(options)).toThrow(CompareInputError);
      expect(() => parseCompareOptions(options)).toThrow(message);
    });
  }

  it('reads the documented spellings', () => {
    const o = parseCompareOptions({
      tolerance: ['5%', `${FEED}=20%`],
      minDelta: ['time=500us', 'data=2kB', 'ratio=0.01', 'http_req_sending=0.02'],
      stat: ['avg,p(99)', 'http_reqs=rate'],
      metric: ['feed_items=higher-is-better'],
    });
    expect(o.tolerance).toBe(0.05);
    expect(o.tolerances).toEqual({ [FEED]: 0.2 });
    expect(o.floors).toEqual({ time: 0.5, data: 2000, ratio: 0.01, count: 1 });
    expect(o.metricFloors).toEqual({ http_req_sending: 0.02 });
    expect(o.stats).toEqual(['avg', 'p(99)']);
    expect(o.metricStats).toEqual({ http_reqs: ['rate'] });
    expect(o.directions).toEqual({ feed_items: 'lower-is-worse' });
  });

  it('refuses overrides naming a metric neither run has (a typo would otherwise gate nothing)', () => {
    expect(() => compareTo(baseSummary, { tolerance: ['http_req_durration=15%'] })).toThrow(/no metric in either run is named by --tolerance http_req_durration/);
  });

  it('refuses --stat naming a stat no shared metric has', () => {
    expect(() => compareTo(baseSummary, { stat: ['p(99)'] })).toThrow(/--stat p\(99\): no metric both runs share has this stat/);
  });

  it('refuses documents that are not summaries, naming the file', () => {
    expect(() => parseSummary({ hello: 1 }, 'x.json')).toThrow(/x.json: not a k6 summary/);
    expect(() => parseSummary({ metrics: { a: 'b' } }, 'x.json')).toThrow(/metric "a" is not an object/);
    expect(() => parseSummary({ metrics: { a: {} } }, 'x.json')).toThrow(/metric "a" has no numeric values/);
    expect(() => compareRuns(runSide('a', { metrics: { a: { count: 1, rate: 1 } } }), runSide('b', baseSummary))).toThrow(/share no metric/);
  });

  it('formats numbers and changes readably', () => {
    expect([0, 1152, 6.6012, 0.000059, 863.557, 12345.6].map(formatNumber)).toEqual(['0', '1152', '6.601', '5.9e-5', '863.6', '12346']);
    expect([0.2, -0.031, 1.5, null, 0].map(formatRelative)).toEqual(['+20.0%', '-3.1%', '+150%', '—', '0.0%']);
  });
});

describe('compare output', () => {
  const real = () => compareRuns(runSide(BASE_DIR, baseSummary, baseResult), runSide(NEW_DIR, readJson(`${NEW_DIR}/summary.json`), readJson(`${NEW_DIR}/result.json`)), parseCompareOptions({}));

  function golden(name: string, actual: string): void {
    const path = join(FIX, 'golden', name);
    if (UPDATE) {
      mkdirSync(join(FIX, 'golden'), { recursive: true });
      writeFileSync(path, actual);
    }
    expect(actual).toBe(readFileSync(path, 'utf8'));
  }

  it('prints the terminal table of two real runs as in the golden file', () => {
    const text = compareText(real());
    golden('seed3-vs-modulo-seed4.txt', text);
    expect(text.trimEnd().split('\n').at(-1)).toBe('FAIL: 5 metric stats regressed beyond tolerance');
  });

  it('prints Markdown with the verdict first, then regressions, then every stat in <details>', () => {
    const markdown = compareMarkdown(real());
    golden('seed3-vs-modulo-seed4.md', markdown);
    const at = (s: string) => markdown.indexOf(s);
    expect(markdown.startsWith('### ❌ FAIL: 5 metric stats regressed beyond tolerance')).toBe(true);
    expect(at('#### Regressions')).toBeGreaterThan(0);
    expect(at('<details>')).toBeGreaterThan(at('#### Regressions'));
    expect(markdown).toMatch(/\| `shard_skew` \| p\(95\) \| 6\.38 \| 7\.178 \| \+0\.7978 \| \+12\.5% \| ±10% \|/);
  });

  it('escapes pipes in Markdown cells so a tag value cannot break the table', () => {
    const odd = { metrics: { 'http_req_duration{name:a|b}': { avg: 1, 'p(95)': 2 } } };
    const slow = { metrics: { 'http_req_duration{name:a|b}': { avg: 10, 'p(95)': 20 } } };
    const markdown = compareMarkdown(compareRuns(runSide('a', odd), runSide('b', slow)));
    const row = markdown.split('\n').find((l) => l.includes('name:a'))!;
    expect(row).toContain('`http_req_duration{name:a\\|b}`');
    expect(row.split(/(?<!\\)\|/).length).toBe(9);
  });
});

describe('scalegram compare (CLI)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'scalegram-compare-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'compare', ...args], { encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  function summaryFile(name: string, s: unknown): string {
    const path = join(tmp, name);
    writeFileSync(path, typeof s === 'string' ? s : JSON.stringify(s));
    return path;
  }

  it('exits 0 for a run compared with itself', () => {
    const r = cli(BASE_DIR, BASE_DIR);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^PASS: no regression beyond tolerance \(\d+ stats compared, \d+ gated; 0 improved\)$/m);
  });

  it('exits 1 on a regression beyond tolerance, and 0 once the tolerance allows it', () => {
    const r = cli(BASE_DIR, NEW_DIR);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/shard_skew p\(95\): 6\.38 → 7\.178 \(\+0\.7978, \+12\.5%; tolerance 10%\)/);
    expect(cli(BASE_DIR, NEW_DIR, '--tolerance', '70%').status).toBe(0); // the hit ratio's misses grew 63%
    expect(cli(BASE_DIR, NEW_DIR, '--tolerance', '70%', '--tolerance', 'shard_skew=5%').status).toBe(1);
  });

  it('exits 1 when NEW lost the gated http_req_* metrics, naming them', () => {
    const lost = summaryFile('lost.json', variant((m) => {
      for (const k of Object.keys(m)) if (k.startsWith('http_req')) delete m[k];
    }));
    const r = cli(BASE_DIR, lost);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/http_req_duration p\(95\): 6\.601 ms → MISSING \(the metric is not in new\)/);
    expect(r.stdout).toMatch(/^FAIL: .*gated metric stats missing from new/m);
  });

  it('exits 1 when a threshold that passed in base fails in new', () => {
    const failing = summaryFile('threshold.json', variant((m) => ((m.http_req_failed!.thresholds as Record<string, boolean>)['rate<0.01'] = true)));
    const r = cli(BASE_DIR, failing);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/FAIL: 1 threshold passed in base and fails in new/);
  });

  it('reads a real k6 summary export, and prints Markdown for a pull request', () => {
    expect(cli(K6, K6).status).toBe(0);
    const slow = summaryFile('k6-slow.json', variant((m) => scale(m, 'http_req_duration', ['p(95)'], 2), k6Summary));
    const r = cli(K6, slow, '--markdown');
    expect(r.status).toBe(1);
    expect(r.stdout.split('\n')[0]).toBe('### ❌ FAIL: 1 metric stat regressed beyond tolerance');
  });

  it('accepts a result.json path as its directory, and prints JSON for machines', () => {
    const r = cli(`${BASE_DIR}/result.json`, `${NEW_DIR}/summary.json`, '--json');
    expect(r.status).toBe(1);
    const o = JSON.parse(r.stdout) as CompareOutcome;
    expect(o.base.scenario).toBe('cache-node-loss');
    expect(o.new.scenario).toBeUndefined();
    expect(o.regressions).toBe(5);
  });

  const notSummary = () => summaryFile('not-summary.json', { hello: 'world' });
  const notJson = () => summaryFile('not-json.json', '{"metrics": ');
  const emptyDir = () => {
    const d = join(tmp, 'empty');
    mkdirSync(d, { recursive: true });
    return d;
  };
  const USAGE: Array<[string, () => string[], RegExp]> = [
    ['a missing file', () => [BASE_DIR, 'no/such/dir'], /NEW: no such file or directory: no\/such\/dir/],
    ['a directory without summary.json', () => [emptyDir(), BASE_DIR], /BASE: .*empty holds no summary\.json \(not a result directory\)/],
    ['a file that is not JSON', () => [BASE_DIR, notJson()], /NEW: .*not-json\.json is not JSON/],
    ['JSON that is not a summary', () => [notSummary(), BASE_DIR], /BASE: .*not-summary\.json: not a k6 summary/],
    ['a bad tolerance', () => [BASE_DIR, BASE_DIR, '--tolerance', 'ten'], /--tolerance "ten": expected a percentage such as 5%/],
    ['a tolerance for a metric neither run has', () => [BASE_DIR, BASE_DIR, '--tolerance', 'http_req_durration=15%'], /no metric in either run is named by --tolerance http_req_durration/],
    ['one run only', () => [BASE_DIR], /give BASE and NEW \(got 1 argument; see --help\)/],
    ['an unknown option', () => [BASE_DIR, BASE_DIR, '--tolerence', '5%'], /unknown option --tolerence \(did you mean --tolerance\?\)/],
  ];
  for (const [name, args, message] of USAGE) {
    it(`exits 2 with a clear message on ${name}`, () => {
      const r = cli(...args());
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stdout).toBe('');
    });
  }
});
