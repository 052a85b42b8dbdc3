// The run reports as pure functions of a result document: report.md compared exactly with a golden
// file, report.html by its structure (every plot, its series, thresholds and event markers), and
// the behaviours the reports promise (failed thresholds first, events on every time axis, "no data"
// panels, nothing loaded from outside the file).
//
// Fixtures: test/fixtures/reports/<run>/result.json, made by test/fixtures/reports/make-fixtures.mjs.
// After an intended change to a report, refresh the goldens and review the diff:
//   UPDATE_GOLDEN=1 npx vitest run test/report-golden.test.ts

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findings } from '../reports/findings.ts';
import { checkResult, loadResult, ResultInputError } from '../reports/load-result.ts';
import { keyFigures } from '../scenarios/runner/key-figures.ts';
import { bucketValues, seriesBuckets, timeline } from '../scenarios/runner/time-axis.ts';
import { reportHtml } from '../reports/report-html.ts';
import { reportMarkdown } from '../reports/report-md.ts';

const FIXTURES = 'test/fixtures/reports';
const RUNS = ['android-launch', 'cache-node-loss', 'hash-vs-range', 'launch-day'] as const;
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function load(run: string) {
  return loadResult(join(FIXTURES, run)).result;
}

interface PlotInfo {
  plot: string;
  kind: 'line' | 'heat';
  series: string[];
  thresholds: string[];
  markers: string[];
  cells: number;
}

/** The structure of report.html: its sections, plots (with what each draws) and "no data" panels. */
export function htmlStructure(html: string): { sections: string[]; plots: PlotInfo[]; empty: string[] } {
  const sections = [...html.matchAll(/<section id="([^"]+)"/g)].map((m) => m[1]!);
  const plots = [...html.matchAll(/<svg class="plot( heat)?" data-plot="([^"]+)"[\s\S]*?<\/svg>/g)].map((m) => {
    const svg = m[0];
    const unesc = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    return {
      plot: m[2]!,
      kind: m[1] ? ('heat' as const) : ('line' as const),
      series: [...new Set([...svg.matchAll(/class="mark[^"]*" data-series="([^"]+)"/g)].map((x) => unesc(x[1]!)))],
      thresholds: [...svg.matchAll(/<g class="threshold (ok|failed)"><title>threshold ([^<]+?) — observed/g)].map((x) => `${x[1]}: ${unesc(x[2]!)}`),
      markers: [...svg.matchAll(/<g class="marker (event|scenario)"><title>[^:]+: ([^<]+)<\/title>/g)].map((x) => unesc(x[2]!)),
      cells: [...svg.matchAll(/class="mark cell"/g)].length,
    };
  });
  const empty = [...html.matchAll(/data-empty-plot="([^"]+)"/g)].map((m) => m[1]!);
  return { sections, plots, empty };
}

function golden(file: string, actual: string): void {
  if (UPDATE || !existsSync(file)) {
    writeFileSync(file, actual);
    if (!UPDATE) throw new Error(`${file} did not exist and was written: check it in, and rerun`);
    return;
  }
  expect(actual).toBe(readFileSync(file, 'utf8'));
}

describe('report goldens', () => {
  for (const run of RUNS) {
    it(`report.md of ${run} matches its golden`, () => {
      golden(join(FIXTURES, run, 'expected-report.md'), reportMarkdown(load(run)));
    });
    it(`report.html of ${run} has the plots of its golden structure`, () => {
      golden(join(FIXTURES, run, 'expected-html-structure.json'), JSON.stringify(htmlStructure(reportHtml(load(run))), null, 1) + '\n');
    });
  }
});

describe('report behaviour', () => {
  it('is a pure function: the same document gives the same bytes', () => {
    const r = load('android-launch');
    expect(reportHtml(r)).toBe(reportHtml(structuredClone(r)));
    expect(reportMarkdown(r)).toBe(reportMarkdown(structuredClone(r)));
  });

  it('puts a failed threshold first in the findings and in the verdict', () => {
    const r = load('hash-vs-range');
    const f = findings(r);
    expect(f).toHaveLength(3);
    expect(f[0]).toMatch(/^Threshold failed: server_skew med<3 \(observed [\d.]+\)\.$/);
    const md = reportMarkdown(r);
    // The fixture's run dropped most of its iterations, so the verdict also says it is not valid for conclusions.
    expect(md.split('\n')[0]).toBe('## ❌ hash-vs-range: 1 of 2 thresholds failed; NOT VALID for conclusions: 90.3% of the planned iterations were dropped (937 of 1,038), so it served a fraction of the load planned');
    expect(md).toContain('| ✗ | `server_skew` | `med<3` |');
    const html = reportHtml(r);
    expect(html).toContain('<span class="verdict bad">FAILED</span>');
    // The failed threshold is drawn, red, on the skew plot it judges.
    const skew = htmlStructure(html).plots.find((p) => p.plot === 'skew-main')!;
    expect(skew.thresholds).toEqual([expect.stringMatching(/^failed: server_skew med<3 ✗$/)]);
  });

  it('ranks iterations that threw at the top, next to failed thresholds, in both reports', () => {
    const r = structuredClone(load('cache-node-loss'));
    const kill = '/_sim/cache/cache-2/kill failed: 400 {"meta":{"code":400,"error_type":"APIInvalidParametersError","error_message":"no cache node \\"cache-2\\" (have cache-0, cache-1)"}}';
    r.iterations = { ...r.iterations, errors: 2, errorMessages: [{ message: kill, scenario: 'kill', count: 1 }, { message: kill.replace(/kill/g, 'revive'), scenario: 'revive', count: 1 }] };
    const f = findings(r);
    expect(f[0]).toBe('2 iterations threw (kill: /_sim/cache/cache-2/kill failed: 400 no cache node "cache-2" (have cache-0, cache-1); revive: /_sim/cache/cache-2/revive failed: 400 no cache node "cache-2" (have cache-0, cache-1)) — the scenario did not run as written.');
    const md = reportMarkdown(r);
    expect(md.split('\n')[0]).toBe('## ⚠️ cache-node-loss: all 3 thresholds passed; 2 iterations threw; NOT VALID for conclusions: 60% of the planned iterations were dropped (729 of 1,214), so it served a fraction of the load planned');
    expect(md).toContain('> **2 iterations threw (kill: ');
    expect(md).toMatch(/- \*\*Iterations\*\*: [\d,]+ completed, [\d,]+ interrupted, [\d,]+ dropped \([\d.]+% of planned\), 2 threw/);
    const html = reportHtml(r);
    expect(html).toContain('<span class="verdict warn"');
    expect(html).toContain('2 ITERATIONS THREW</span>');
    expect(html).toMatch(/<ol class="findings"><li class="bad">2 iterations threw/);
    // With a failed threshold too, both lead, the threshold first.
    r.thresholds[0] = { ...r.thresholds[0]!, ok: false };
    const g = findings(r);
    expect(g[0]).toMatch(/^Threshold failed/);
    expect(g[1]).toMatch(/^2 iterations threw/);
    // Older results have no count: nothing threw.
    const old = structuredClone(load('cache-node-loss'));
    delete old.iterations.errors;
    delete old.iterations.errorMessages;
    expect(findings(old).join(' ')).not.toContain('threw');
    expect(reportMarkdown(old)).toContain(', 0 threw');
  });

  it('reports the largest replica lag of the trend and the telemetry, consistently, in natural order', () => {
    const r = structuredClone(load('android-launch'));
    const k = keyFigures(r);
    // The replica_lag_ms trend caught 22.58 ms; no replica's per-second peak reached it.
    expect(k.replicas!.maxLagMs).toBeCloseTo(22.58, 2);
    expect(reportMarkdown(r)).toContain('- **Replicas**: lag max 22.6 ms');
    // A replica whose lag at the end exceeds its recorded peak: the peak is at least the end.
    const n = r.telemetry!.replicas.nodes.find((x) => x.name === 'db-10-r1')!;
    n.lagMs = 40;
    n.maxLagMs = 3;
    const k2 = keyFigures(r);
    expect(k2.replicas!.maxLagMs).toBe(40);
    expect(k2.replicas!.worst).toEqual({ name: 'db-10-r1', maxLagMs: 40 });
    for (const x of k2.replicas!.nodes) expect(x.maxLagMs).toBeGreaterThanOrEqual(x.lagMs);
    const md = reportMarkdown(r);
    expect(md).toContain('| replica | of | configured lag at end | max lag | lag at end | stale reads |');
    expect(md).toContain('| db-10-r1 | db-10 | 20 ms | 40 ms | 40 ms | 0 |');
    const order = [...md.matchAll(/^\| (db-\d+-r1) \|/gm)].map((m) => m[1]);
    expect(order.indexOf('db-2-r1')).toBeLessThan(order.indexOf('db-10-r1'));
    expect(order.indexOf('db-9-r1')).toBeLessThan(order.indexOf('db-10-r1'));
    expect(reportHtml(r)).toContain('Lag peaked at 40 ms on db-10-r1;');
  });

  it('makes no finding of a hot shard on a tiny volume, of the cold start, or of a constant rate', () => {
    const r = structuredClone(load('android-launch'));
    const c = r.telemetry!.hotspots.clusters[0]!;
    // One query on the hottest shard: 171× the mean says nothing.
    c.hottest = [{ ...c.hottest[0]!, ops: 1, share: 1 / 171 }];
    expect(findings(r).join(' ')).not.toContain('Hottest logical shard');
    // The cold start (the first tenth of the run) is not named as the lowest cache hit ratio.
    const k = keyFigures(load('android-launch'));
    expect(k.caches!.lowest!.x).toBeGreaterThanOrEqual((0.1 * r.durationMs) / 1000);
    // A constant request rate has no "peak load".
    const flat = structuredClone(load('android-launch'));
    const reqs = flat.series.series.find((s) => s.metric === 'http_reqs' && Object.keys(s.tags).length === 0)!;
    reqs.count = reqs.count.map(() => 100);
    expect(keyFigures(flat).caches!.atPeak).toBeNull();
    expect(findings(flat).join(' ')).not.toContain('peak load');
    expect(keyFigures(load('android-launch')).caches!.atPeak).not.toBeNull();
  });

  it('ranks a route with a 22 s p99 near the top', () => {
    const r = structuredClone(load('cache-node-loss'));
    const feed = r.series.series.find((s) => s.metric === 'http_req_duration' && s.tags.name === 'feed' && Object.keys(s.tags).length === 1)!;
    const i = feed.count.findIndex((n) => n > 0);
    // One bucket's slowest requests take 22 s: the route's p99 is far above its p50.
    const slow = structuredClone(r);
    const s2 = slow.series.series.find((s) => s.metric === 'http_req_duration' && s.tags.name === 'feed' && Object.keys(s.tags).length === 1)!;
    s2.max[i] = 22_000;
    expect(i).toBeGreaterThanOrEqual(0);
    const before = findings(r);
    expect(before.findIndex((f) => f.startsWith('Slowest route'))).toBe(2);
    const k = keyFigures(r);
    const route = k.routes.find((x) => x.name === 'feed')!;
    k.routes = k.routes.map((x) => (x.name === 'feed' ? { ...route, p99: 22_000 } : x));
    const f = findings(r, k);
    expect(f.findIndex((x) => x.startsWith('Slowest route: feed, p99 22 s'))).toBeLessThan(2);
  });

  it('clamps HDR percentiles to the exact min and max', () => {
    for (const run of RUNS) {
      for (const x of keyFigures(load(run)).routes) {
        expect(x.p50, `${run} ${x.name}`).toBeLessThanOrEqual(x.p95);
        expect(x.p99, `${run} ${x.name}`).toBeLessThanOrEqual(x.max);
      }
    }
    // android-launch's one seeding request took 1,161 ms; its HDR bucket reads 1,163 ms. Every
    // percentile of a route of one request is that request's exact duration.
    const seed = keyFigures(load('android-launch')).routes.find((x) => x.name === 'sim_seed')!;
    expect(seed.count).toBe(1);
    expect(seed.max).toBeCloseTo(1161, 0);
    expect([seed.p50, seed.p95, seed.p99]).toEqual([seed.max, seed.max, seed.max]);
    expect(reportMarkdown(load('android-launch'))).toContain('| sim_seed | 1 | 0 | 1.16 s | 1.16 s | 1.16 s | 1.16 s |');
    const r = load('android-launch');
    const feed = r.series.series.find((s) => s.metric === 'http_req_duration' && s.tags.name === 'feed' && Object.keys(s.tags).length === 1)!;
    const tl = timeline(r);
    const p99 = bucketValues(feed, seriesBuckets(r, tl), { p: 99 });
    const max = bucketValues(feed, seriesBuckets(r, tl), 'max');
    expect(p99.length).toBeGreaterThan(0);
    p99.forEach((p, i) => expect(p[1]).toBeLessThanOrEqual(max[i]![1]));
  });

  it('says "no samples" for a sub-metric threshold that matched nothing, and draws no other latencies for it', () => {
    const r = structuredClone(load('cache-node-loss'));
    r.thresholds.push({ metric: 'http_req_duration{name:nonexistent}', expression: 'p(95)<500', ok: true, value: 0, abortOnFail: false });
    expect(reportMarkdown(r)).toContain('| ✓ | `http_req_duration{name:nonexistent}` | `p(95)<500` | no samples |');
    const html = reportHtml(r);
    expect(htmlStructure(html).empty).toContain('threshold-1-http-req-duration-name-nonexistent');
    expect(html).toContain('No data in this run — no samples in this run');
    // A sub-metric with samples keeps its observed value.
    expect(reportMarkdown(r)).toContain('| ✓ | `http_req_duration{name:feed}` | `p(99)<1000` | 87.1 ms |');
  });

  it('gives three findings with numbers for every run', () => {
    for (const run of RUNS) {
      const f = findings(load(run));
      expect(f).toHaveLength(3);
      for (const s of f) expect(s).toMatch(/\d/);
    }
  });

  it('marks the cache-node kill and the delayed scenarios on every time axis', () => {
    const { plots } = htmlStructure(reportHtml(load('cache-node-loss')));
    expect(plots.length).toBeGreaterThan(8);
    for (const p of plots) {
      expect(p.markers, p.plot).toContain('▶ kill');
      expect(p.markers, p.plot).toContain('▶ revive');
      expect(p.markers.some((m) => /^cache-2 killed/.test(m)), p.plot).toBe(true);
    }
  });

  it('draws each threshold on the plot of what it judges', () => {
    const { plots } = htmlStructure(reportHtml(load('cache-node-loss')));
    const on = (id: string) => plots.find((p) => p.plot === id)!.thresholds;
    expect(on('latency-feed')).toEqual(['ok: http_req_duration{name:feed} p(99)<1000 ✓']);
    expect(on('cache-hit-ratio')).toEqual(['ok: cache_hit_rate min>0.3 ✓']);
    expect(on('errors')).toEqual(['ok: http_req_failed rate<0.01 ✓']);
    // Per-route latency comes from per-bucket HDR percentiles: p50, p95, p99 and max.
    expect(plots.find((p) => p.plot === 'latency-feed')!.series).toEqual(expect.arrayContaining(['p50', 'p95', 'p99', 'max']));
  });

  it('shows a "no data" panel, not a broken plot, for what a run does not have', () => {
    const cnl = htmlStructure(reportHtml(load('cache-node-loss')));
    expect(cnl.empty).toEqual(expect.arrayContaining(['fanout-deliveries', 'fanout-lag']));
    expect(cnl.plots.map((p) => p.plot)).not.toContain('fanout-deliveries');
    const ld = htmlStructure(reportHtml(load('launch-day')));
    expect(ld.empty).toEqual(expect.arrayContaining(['replica-lag', 'stale-reads']));
    expect(reportHtml(load('launch-day'))).toContain('No data in this run — no database replicas');
    expect(reportMarkdown(load('launch-day'))).toContain('No database replicas in this run.');
  });

  it('draws heatmaps of load per logical-shard band and per physical server', () => {
    const { plots } = htmlStructure(reportHtml(load('android-launch')));
    const shard = plots.find((p) => p.plot === 'shard-heat-main')!;
    const server = plots.find((p) => p.plot === 'server-heat-main')!;
    expect(shard.kind).toBe('heat');
    expect(shard.cells).toBeGreaterThan(64);
    const r = load('android-launch');
    expect(server.cells).toBe(r.telemetry!.hotspots.clusters[0]!.servers.reduce((a, s) => a + s.opsPerS.length, 0));
  });

  it('loads nothing from outside the file', () => {
    for (const run of RUNS) {
      const html = reportHtml(load(run));
      expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i);
      expect(html).not.toMatch(/<link\b|@import|url\(/i);
      expect(html).toContain("default-src 'none'");
    }
  });

  it('escapes what the scenario named, in both reports', () => {
    const r = structuredClone(load('cache-node-loss'));
    for (const s of r.series.series) if (s.tags.name === 'feed') s.tags.name = '<img src=x onerror=alert(1)>|feed';
    r.scenario = 'a <b>bold</b> | name';
    const html = reportHtml(r);
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<b>bold</b>');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;|feed');
    const md = reportMarkdown(r);
    expect(md).toContain('\\|feed');
  });

  it('refuses a document that is not a Scalegram result, naming what is wrong', () => {
    expect(() => checkResult({ format: 'k6-summary' }, 'x.json')).toThrow(ResultInputError);
    expect(() => checkResult({ format: 'k6-summary' }, 'x.json')).toThrow('x.json is not a Scalegram result (expected format "scalegram-result/1", found format "k6-summary")');
    expect(() => checkResult([], 'x.json')).toThrow('x.json is not a JSON object');
    const r = structuredClone(load('launch-day')) as unknown as Record<string, unknown>;
    delete r.series;
    expect(() => checkResult(r, 'y.json')).toThrow('y.json: field "series" is missing or malformed');
  });

  it('gives every threshold no area plot draws a plot of its own, with its limit', () => {
    const r = structuredClone(load('cache-node-loss'));
    r.thresholds.push(
      { metric: 'iteration_duration', expression: 'p(95)<250', ok: true, value: 12, abortOnFail: false },
      { metric: 'checks', expression: 'rate>0.99', ok: true, value: 1, abortOnFail: false },
      { metric: 'http_req_duration{expected_response:true}', expression: 'avg<0.5', ok: false, value: 2.1, abortOnFail: false },
      { metric: 'signups_completed', expression: 'count>10', ok: false, abortOnFail: false },
    );
    const html = reportHtml(r);
    const { plots, empty, sections } = htmlStructure(html);
    expect(sections).toContain('thresholds-plots');
    const own = plots.filter((p) => p.plot.startsWith('threshold-'));
    expect(own.map((p) => [p.plot, p.thresholds])).toEqual([
      ['threshold-1-iteration-duration', ['ok: iteration_duration p(95)<250 ✓']],
      ['threshold-2-checks', ['ok: checks rate>0.99 ✓']],
      ['threshold-3-http-req-duration-expected-response-true', ['failed: http_req_duration{expected_response:true} avg<0.5 ✗']],
    ]);
    // A sub-metric without its own series is plotted from the whole metric, and says so.
    expect(html).toContain('the series covers every sample of the metric, not only this sub-metric');
    expect(empty).toContain('threshold-4-signups-completed');
    expect(html).toContain('No data in this run — the metric has no time series');
    // The table links each threshold to the plot that draws it.
    expect(html).toContain('<a href="#plot-threshold-2-checks">threshold-2-checks</a>');
    expect(html).toContain('<a href="#plot-latency-feed">latency-feed</a>');
  });

  it('reports a run whose target answered no telemetry or topology', () => {
    const r = structuredClone(load('launch-day'));
    r.telemetry = null;
    r.topology = null;
    const { plots, empty } = htmlStructure(reportHtml(r));
    expect(plots.map((p) => p.plot)).toContain('throughput');
    expect(empty).toEqual(expect.arrayContaining(['fanout-deliveries', 'shard-heat', 'cache-hit-ratio', 'replica-lag']));
    expect(reportMarkdown(r)).toContain('No hotspot telemetry in this run.');
    expect(findings(r).length).toBeGreaterThan(0);
  });
});
