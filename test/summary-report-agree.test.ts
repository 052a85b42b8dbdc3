// The end-of-run summary (the terminal) and report.md show many of the same figures; a reader who
// sees two values for one figure trusts neither. Both texts are parsed back into figures here, for
// the fixture results and for a real short run (uploads fanned out, a replica lag spike, a cache
// node killed): every figure the summary prints must be printed identically by report.md, and no
// percentile printed for a route may exceed the max printed beside it.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadResult } from '../reports/load-result.ts';
import { reportMarkdown } from '../reports/report-md.ts';
import { resultSummaryText } from '../scenarios/runner/summary-text.ts';

const FIXTURES = 'test/fixtures/reports';
const RUNS = ['android-launch', 'cache-node-loss', 'hash-vs-range', 'launch-day'] as const;

/** Figures by name, as printed; a name printed twice with two values is a conflict. */
class Figures {
  readonly values = new Map<string, string>();
  readonly conflicts: string[] = [];
  set(name: string, value: string | undefined): void {
    if (value === undefined) return;
    const had = this.values.get(name);
    if (had !== undefined && had !== value) this.conflicts.push(`${name}: ${had} vs ${value}`);
    this.values.set(name, value);
  }
}

/** What the summary prints that report.md does not (the intended-time max is a summary line only). */
const SUMMARY_ONLY = new Set(['http intended max']);

/** Text of a section: from its heading to the next one. */
function section(text: string, heading: RegExp, next: RegExp): string {
  const from = text.search(heading);
  if (from < 0) return '';
  const rest = text.slice(from).replace(heading, '');
  const to = rest.search(next);
  return to < 0 ? rest : rest.slice(0, to);
}

function route(f: Figures, name: string, count: string, failed: string, p50: string, p95: string, p99: string, max: string): void {
  f.set(`route ${name} count`, count);
  f.set(`route ${name} failed`, failed);
  f.set(`route ${name} p50`, p50);
  f.set(`route ${name} p95`, p95);
  f.set(`route ${name} p99`, p99);
  f.set(`route ${name} max`, max);
}

function hottest(f: Figures, cluster: string, shard: string, server: string, queries: string, times: string, share: string | undefined, user: string | undefined): void {
  f.set(`hottest ${cluster} ${shard} server`, server);
  f.set(`hottest ${cluster} ${shard} queries`, queries);
  f.set(`hottest ${cluster} ${shard} × mean`, times);
  f.set(`hottest ${cluster} ${shard} share`, share);
  f.set(`hottest ${cluster} ${shard} top user`, user);
}

function summaryFigures(text: string): Figures {
  const f = new Figures();
  const m = (re: RegExp) => re.exec(text);
  let x = m(/^ {2}scenario \S+ {2}seed (\S+) {2}speed (\S+) {2}scale (\S+) {2}(\S+) of wall time(?:, (\S+) of scenario time)?/m);
  if (x) ['seed', 'speed', 'scale', 'wall time', 'scenario time'].forEach((k, i) => f.set(k, x![i + 1]));
  for (const t of text.matchAll(/^ {4}([✓✗]) (\S+) {2}(.+) {2}\((.+)\)$/gm)) f.set(`threshold ${t[2]} ${t[3]}`, `${t[1]} ${t[4]}`);
  x = m(/requests (\S+) \((\S+)\/s\) {2}failed (\S+) {2}duration avg (.+?) {2}p95 (.+?) {2}p99 (.+?) {2}max (.+)$/m);
  if (x) ['requests', 'req/s', 'failed', 'avg', 'p95', 'p99', 'max'].forEach((k, i) => f.set(`http ${k}`, x![i + 1]));
  x = m(/from the intended send time: p95 (.+?) {2}max (.+)$/m);
  if (x) {
    f.set('http intended p95', x[1]);
    f.set('http intended max', x[2]);
  }
  x = m(/iterations (\S+) completed, (\S+) interrupted, (\S+) dropped \((\S+) of planned\)(?:, (\S+) threw)?/);
  if (x) ['completed', 'interrupted', 'dropped', 'dropped share', 'threw'].forEach((k, i) => f.set(`iterations ${k}`, x![i + 1]));
  x = m(/harness saturated: event loop ran up to (\S+) ms late \(p99; max (\S+) ms\)/);
  if (x) {
    f.set('harness p99', x[1]);
    f.set('harness max', x[2]);
  }
  const http = section(text, /^ {2}HTTP$/m, /^ {2}[A-Z-]+$/m);
  for (const r of http.matchAll(/^ {4}(\S+) +([\d,]+) +([\d,]+) +(\S+ m?s) +(\S+ m?s) +(\S+ m?s) +(\S+ m?s)$/gm)) route(f, r[1]!, r[2]!, r[3]!, r[4]!, r[5]!, r[6]!, r[7]!);
  x = m(/posts (\S+) {2}deliveries (\S+) {2}failures (\S+) {2}followers per post p50 (\S+) max (\S+) {2}delivery lag p50 (.+?) {2}p99 (.+?) {2}max (.+?) {2}queue depth max (\S+)/);
  if (x) ['posts', 'deliveries', 'failures', 'followers p50', 'followers max', 'lag p50', 'lag p99', 'lag max', 'queue depth max'].forEach((k, i) => f.set(`fan-out ${k}`, x![i + 1]));
  for (const c of text.matchAll(/^ {4}(\S+): logical shard skew (\S+), physical server skew (\S+) \(max\/mean\)$/gm)) {
    f.set(`skew ${c[1]} shards`, c[2]);
    f.set(`skew ${c[1]} servers`, c[3]);
  }
  for (const h of text.matchAll(/hottest: shard (\d+) on (\S+): (\S+) queries, (\S+) the mean shard, (\S+) of (\S+?)(?:; (@\S+ \(\S+\)))?$/gm)) hottest(f, h[6]!, h[1]!, h[2]!, h[3]!, h[4]!, h[5], h[7]);
  x = m(/hit ratio (\S+) over the run(?:, lowest (\S+) at (\S+))? {2}misses that reached a shard (\S+) {2}evictions (\S+) {2}herd events (\S+)/);
  if (x) ['hit ratio', 'lowest', 'lowest at', 'fills', 'evictions', 'herd events'].forEach((k, i) => f.set(`caches ${k}`, x![i + 1]));
  x = m(/lag max (.+?) {2}stale reads (\S+) {2}writes lost on promotion (\S+)/);
  if (x) ['lag max', 'stale reads', 'writes lost'].forEach((k, i) => f.set(`replicas ${k}`, x![i + 1]));
  return f;
}

function reportFigures(md: string): Figures {
  const f = new Figures();
  const m = (re: RegExp) => re.exec(md);
  let x = m(/^Seed (\S+) · speed (\S+) · scale (\S+) · (\S+) of wall time(?:, (\S+) of scenario time)?/m);
  if (x) ['seed', 'speed', 'scale', 'wall time', 'scenario time'].forEach((k, i) => f.set(k, x![i + 1]));
  for (const t of md.matchAll(/^\| ([✓✗]) \| `(.+?)` \| `(.+?)`(?: \(abortOnFail\))? \| (.+) \|$/gm)) f.set(`threshold ${t[2]} ${t[3]}`, `${t[1]} ${t[4]}`);
  x = m(/\*\*HTTP\*\*: (\S+) requests \((\S+)\/s\), (\S+) failed; duration avg (.+?), p95 (.+?), p99 (.+?), max (.+?)(?:; from the intended send time p95 (.+))?$/m);
  if (x) ['requests', 'req/s', 'failed', 'avg', 'p95', 'p99', 'max', 'intended p95'].forEach((k, i) => f.set(`http ${k}`, x![i + 1]));
  x = m(/\*\*Iterations\*\*: (\S+) completed, (\S+) interrupted, (\S+) dropped \((\S+) of planned\), (\S+) threw/);
  if (x) ['completed', 'interrupted', 'dropped', 'dropped share'].forEach((k, i) => f.set(`iterations ${k}`, x![i + 1]));
  if (x && x[5] !== '0') f.set('iterations threw', x[5]);
  // The findings quote figures too: they must read as the tables do.
  x = m(/ran up to (\S+) ms late \(p99; max (\S+) ms\)/);
  if (x) {
    f.set('harness p99', x[1]);
    f.set('harness max', x[2]);
  }
  x = m(/^\d\. (\S+) of planned iterations were dropped \((\S+) of/m);
  if (x) {
    f.set('iterations dropped share', x[1]);
    f.set('iterations dropped', x[2]);
  }
  x = m(/^\d\. Slowest route: (\S+), p99 (.+?) over (\S+) requests \(p50 (.+?)[,)]/m);
  if (x) {
    f.set(`route ${x[1]} p99`, x[2]);
    f.set(`route ${x[1]} count`, x[3]);
    f.set(`route ${x[1]} p50`, x[4]);
  }
  const routes = section(md, /^### HTTP per route$/m, /^### /m);
  for (const r of routes.matchAll(/^\| (.+?) \| ([\d,]+) \| ([\d,]+) \| (.+?) \| (.+?) \| (.+?) \| (.+?) \|$/gm)) route(f, r[1]!, r[2]!, r[3]!, r[4]!, r[5]!, r[6]!, r[7]!);
  x = m(/\*\*Fan-out\*\*: (\S+) posts, (\S+) deliveries, delivery lag p50 (.+?), p99 (.+?), queue depth max (\S+)$/m);
  if (x) ['posts', 'deliveries', 'lag p50', 'lag p99', 'queue depth max'].forEach((k, i) => f.set(`fan-out ${k}`, x![i + 1]));
  const fan = section(md, /^### Fan-out$/m, /^### /m);
  x = /^\| (\S+) \| (\S+) \| (\S+) \| (\S+) \/ (\S+) \| (.+?) \| (.+?) \| (.+?) \| (.+?) \| (\S+) \|$/m.exec(fan);
  if (x) ['posts', 'deliveries', 'failures', 'followers p50', 'followers max', 'lag p50', 'lag p99', 'lag max', 'worst window', 'queue depth max'].forEach((k, i) => f.set(`fan-out ${k}`, x![i + 1]));
  for (const c of md.matchAll(/\*\*Hotspots\*\* \((\S+)\): logical shard skew (\S+), physical server skew (\S+) \(max\/mean\)/g)) {
    f.set(`skew ${c[1]} shards`, c[2]);
    f.set(`skew ${c[1]} servers`, c[3]);
  }
  const hot = section(md, /^### Hotspots$/m, /^### /m);
  for (const part of hot.split(/^(?=\*\*\S+\*\*: )/m)) {
    const cluster = /^\*\*(\S+)\*\*: /.exec(part)?.[1];
    if (!cluster) continue;
    for (const h of part.matchAll(/^\| (\d+) \| (\S+) \| (\S+) \| (\S+) \| (\S+) \| (.+?) \| .+ \|$/gm)) hottest(f, cluster, h[1]!, h[2]!, h[3]!, h[4]!, h[5], h[6] === '–' ? undefined : h[6]!.split(', ')[0]);
    x = new RegExp(`^\\d\\. Hottest logical shard: (\\d+) on (\\S+)(?: \\(${cluster}\\))? with (\\S+) queries, (\\S+) the mean shard`, 'm').exec(md);
    if (x) hottest(f, cluster, x[1]!, x[2]!, x[3]!, x[4]!, undefined, undefined);
  }
  x = m(/\*\*Caches\*\*: hit ratio (\S+) over the run(?:, lowest (\S+) at (\S+))?; (\S+) misses reached a shard, (\S+) evictions, (\S+) herd events/);
  if (x) ['hit ratio', 'lowest', 'lowest at', 'fills', 'evictions', 'herd events'].forEach((k, i) => f.set(`caches ${k}`, x![i + 1]));
  x = m(/^\d\. Cache hit ratio was lowest at (\S+) \((\S+)\)/m);
  if (x) {
    f.set('caches lowest', x[1]);
    f.set('caches lowest at', x[2]);
  }
  x = m(/; (\S+) over the run, (\S+) misses reached a shard\.$/m);
  if (x) {
    f.set('caches hit ratio', x[1]);
    f.set('caches fills', x[2]);
  }
  x = m(/\*\*Replicas\*\*: lag max (.+?), (\S+) stale reads, (\S+) writes lost on promotion/);
  if (x) ['lag max', 'stale reads', 'writes lost'].forEach((k, i) => f.set(`replicas ${k}`, x![i + 1]));
  x = m(/Replica lag peaked at (.+? m?s)[ ;(].*?(\S+) stale reads were served/);
  if (x) {
    f.set('replicas lag max', x[1]);
    f.set('replicas stale reads', x[2]);
  }
  return f;
}

/** A printed duration back in ms: "30.3 ms", "1.16 s". */
function msOf(text: string): number {
  const x = /^([\d,.]+) (ms|s)$/.exec(text);
  if (!x) throw new Error(`not a duration: ${text}`);
  return Number(x[1]!.replace(/,/g, '')) * (x[2] === 's' ? 1000 : 1);
}

/** Every route's printed percentiles against its printed max (and each other): the problems found. */
function percentileProblems(f: Figures): string[] {
  const out: string[] = [];
  const names = [...f.values.keys()].filter((k) => k.startsWith('route ') && k.endsWith(' max')).map((k) => k.slice(6, -4));
  for (const name of names) {
    const [p50, p95, p99, max] = ['p50', 'p95', 'p99', 'max'].map((p) => msOf(f.values.get(`route ${name} ${p}`)!));
    if (!(p50! <= p95! && p95! <= p99! && p99! <= max!)) out.push(`${name}: p50 ${p50} p95 ${p95} p99 ${p99} max ${max}`);
  }
  const lag = ['lag p50', 'lag p99', 'lag max'].map((k) => f.values.get(`fan-out ${k}`));
  if (lag.every((v) => v !== undefined && v !== '–')) {
    const [p50, p99, max] = lag.map((v) => msOf(v!));
    if (!(p50! <= p99! && p99! <= max!)) out.push(`fan-out lag: p50 ${p50} p99 ${p99} max ${max}`);
    const w = f.values.get('fan-out worst window');
    if (w && w !== '–' && msOf(w.split(' at ')[0]!) > max!) out.push(`fan-out worst window ${w} above max ${max}`);
  }
  return out;
}

/** Every figure of the summary, side by side with report.md's: [name, summary, report] where they differ. */
function disagreements(summary: Figures, report: Figures): Array<[string, string, string | undefined]> {
  const out: Array<[string, string, string | undefined]> = [];
  for (const [name, value] of summary.values) {
    if (SUMMARY_ONLY.has(name)) continue;
    if (report.values.get(name) !== value) out.push([name, value, report.values.get(name)]);
  }
  return out;
}

function expectAgreement(summaryText: string, md: string, label: string): { summary: Figures; report: Figures } {
  const summary = summaryFigures(summaryText);
  const report = reportFigures(md);
  // The parsers found what both texts always print (a parser that silently matched nothing would pass anything).
  for (const name of ['wall time', 'http requests', 'http p95', 'http p99', 'http max', 'iterations dropped', 'iterations dropped share']) {
    expect(summary.values.has(name), `${label}: the summary's ${name}`).toBe(true);
    expect(report.values.has(name), `${label}: report.md's ${name}`).toBe(true);
  }
  expect(disagreements(summary, report), label).toEqual([]);
  expect(summary.conflicts, `${label}: the summary`).toEqual([]);
  expect(report.conflicts, `${label}: report.md`).toEqual([]);
  expect(percentileProblems(summary), `${label}: the summary`).toEqual([]);
  expect(percentileProblems(report), `${label}: report.md`).toEqual([]);
  return { summary, report };
}

describe('the end-of-run summary and report.md', () => {
  for (const run of RUNS) {
    it(`print every figure they share identically, and no route percentile above its max, for ${run}`, () => {
      const r = loadResult(join(FIXTURES, run)).result;
      const { summary } = expectAgreement(resultSummaryText(r), reportMarkdown(r), run);
      // Every route, and the cache and hotspot figures, were compared (not only the headline).
      const routes = [...summary.values.keys()].filter((k) => /^route .+ p99$/.test(k));
      expect(routes.length).toBe(new Set(r.series.series.filter((s) => s.metric === 'http_req_duration' && s.tags.name !== undefined).map((s) => s.tags.name)).size);
      expect(summary.values.has('caches lowest')).toBe(true);
      expect(summary.values.has('skew main shards')).toBe(true);
      expect(new Set([...summary.values.keys()].filter((k) => k.startsWith('hottest main ')).map((k) => k.split(' ')[2])).size).toBe(3);
      expect(summary.values.has('hottest main ' + r.telemetry!.hotspots.clusters[0]!.hottest[0]!.shard + ' × mean')).toBe(true);
    });
  }

  it('print the lowest cache hit ratio after the warm-up, the replica lag of trend and telemetry, and clamped route percentiles (the cases that disagreed)', () => {
    const r = loadResult(join(FIXTURES, 'android-launch')).result;
    const s = summaryFigures(resultSummaryText(r)).values;
    // The summary used to print the lowest of cache_hit_rate (10-s windows, warm-up included): 68.7%.
    expect(s.get('caches lowest')).toBe('57.6%');
    expect(s.get('caches lowest at')).toBe('0.328s');
    expect(s.get('replicas lag max')).toBe('22.6 ms');
    // It printed the like route's p99 as 79.4 ms beside a max of 79.0 ms.
    expect(msOf(s.get('route like p99')!)).toBeLessThanOrEqual(msOf(s.get('route like max')!));
    // A route with a threshold reads the percentiles the threshold judged.
    expect(s.get('threshold http_req_duration{name:feed} p(95)<500')).toBe(`✓ ${s.get('route feed p95')}`);
  });

  it('are caught disagreeing: a report with one figure changed fails the comparison', () => {
    const r = loadResult(join(FIXTURES, 'cache-node-loss')).result;
    const md = reportMarkdown(r).replace(/^(- \*\*Caches\*\*: hit ratio \S+ over the run, lowest )(\S+)/m, '$199.9%');
    const bad = disagreements(summaryFigures(resultSummaryText(r)), reportFigures(md));
    expect(bad).toEqual([['caches lowest', '80.8%', '99.9%']]);
    expect(percentileProblems(reportFigures(reportMarkdown(r).replace('| feed | 471 | 0 | 12.1 ms |', '| feed | 471 | 0 | 900 ms |')))).toEqual(['feed: p50 900 p95 46.4 p99 87.1 max 333']);
  });
});

describe('a real short run: uploads fanned out, a replica lag spike, a cache node killed', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'scalegram-figures-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('prints the same figures in the terminal as in report.md, read from the result.json it wrote', () => {
    const out = join(tmp, 'figures');
    const run = spawnSync(process.execPath, ['bin/scalegram.mjs', 'run', 'test/fixtures/runs/figures.ts', '--quiet', '--seed', '5', '--out', out], { encoding: 'utf8', timeout: 120_000 });
    expect(run.status, run.stderr.slice(-2000)).toBe(0);
    const result = loadResult(out).result;
    // The summary printed is the one `scalegram report` would make from the result.json written.
    expect(run.stdout).toContain(resultSummaryText(result));
    const { summary } = expectAgreement(run.stdout, readFileSync(join(out, 'report.md'), 'utf8'), 'figures run');
    // The figures compared are not trivial ones: the faults happened and showed.
    expect(result.telemetry!.events.map((e) => e.kind)).toEqual(expect.arrayContaining(['cache_kill', 'replica_lag']));
    expect(Number(summary.values.get('fan-out deliveries')!.replace(/,/g, ''))).toBeGreaterThan(0);
    expect(msOf(summary.values.get('replicas lag max')!)).toBeGreaterThan(0);
    expect(summary.values.has('caches lowest')).toBe(true);
    expect([...summary.values.keys()].filter((k) => /^route (feed|user_media|upload) p99$/.test(k))).toHaveLength(3);
  }, 120_000);
});
