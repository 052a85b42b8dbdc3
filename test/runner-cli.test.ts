// `scalegram run` as a user runs it, in a child process: exit codes (0, 99, 104, 107), the result
// directory and k6-shaped summary export, handleSummary, and the same seed giving the same population.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const tmp = mkdtempSync(join(tmpdir(), 'scalegram-run-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(script: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'run', `test/fixtures/runs/${script}`, '--quiet', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('scalegram run', () => {
  it('exits 0 when thresholds hold, and writes result.json and a k6-shaped summary export', () => {
    const out = join(tmp, 'pass');
    const r = run('pass.ts', '--seed', '7', '--out', out, '--summary-export', join(tmp, 'export.json'), '-e', `OUT_FILE=${join(tmp, 'pass-summary.json')}`);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    const exported = JSON.parse(readFileSync(join(tmp, 'export.json'), 'utf8')) as { metrics: Record<string, Record<string, unknown>>; root_group: { checks: Record<string, { passes: number; fails: number }> } };
    // The shapes of k6's summary export (shared/reference/k6-summary-export.json).
    expect(Object.keys(exported.metrics.http_req_duration!).sort()).toEqual(['avg', 'max', 'med', 'min', 'p(90)', 'p(95)']);
    expect(Object.keys(exported.metrics.http_reqs!).sort()).toEqual(['count', 'rate']);
    expect(Object.keys(exported.metrics.checks!).sort()).toEqual(['fails', 'passes', 'thresholds', 'value']);
    expect(exported.metrics['http_req_duration{name:health}']!.thresholds).toEqual({ 'p(95)<1000': false });
    expect(exported.root_group.checks['status 200']!.passes).toBeGreaterThan(10);
    expect(exported.root_group.checks['status 200']!.fails).toBe(0);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { seed: number; options: { scenarios: Array<{ executor: string }> }; series: { series: unknown[] }; metrics: { metrics: unknown[] } };
    expect(result.seed).toBe(7);
    expect(result.options.scenarios[0]!.executor).toBe('constant-vus');
    expect(result.series.series.length).toBeGreaterThan(5);
    expect(existsSync(join(out, 'summary.json'))).toBe(true);
  }, 120_000);

  it('serves the topology from a worker thread of its own by default and records both loops\' delay; --in-process shares one', () => {
    type Harness = { server: string; eventLoopDelayMs: { p99: number }; serverEventLoopDelayMs?: { p99: number } };
    const harness = (dir: string) => (JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as { harness: Harness }).harness;
    const a = run('pass.ts', '--seed', '7', '--out', join(tmp, 'thread'), '-e', `OUT_FILE=${join(tmp, 'thread.json')}`);
    expect(a.status).toBe(0);
    const t = harness(join(tmp, 'thread'));
    expect(t.server).toBe('thread');
    expect(t.serverEventLoopDelayMs!.p99).toBeGreaterThan(0);
    expect(t.eventLoopDelayMs.p99).toBeGreaterThan(0);
    const b = run('pass.ts', '--seed', '7', '--in-process', '--out', join(tmp, 'inproc'), '-e', `OUT_FILE=${join(tmp, 'inproc.json')}`);
    expect(b.status).toBe(0);
    const i = harness(join(tmp, 'inproc'));
    expect(i.server).toBe('in-process');
    expect(i.serverEventLoopDelayMs).toBeUndefined();
    // The same seeded population either way: the server thread builds it from the same config and seed.
    expect(readFileSync(join(tmp, 'thread.json'), 'utf8').match(/"setup":[^\]]*\]/)![0]).toBe(readFileSync(join(tmp, 'inproc.json'), 'utf8').match(/"setup":[^\]]*\]/)![0]);
    expect(run('pass.ts', '--in-process', '--target', 'http://127.0.0.1:1').status).toBe(2);
  }, 120_000);

  it('gives the same seeded population for the same seed, and another for another seed', () => {
    const a = run('pass.ts', '--seed', '11', '--out', join(tmp, 'a'), '-e', `OUT_FILE=${join(tmp, 'a.json')}`);
    const b = run('pass.ts', '--seed', '11', '--out', join(tmp, 'b'), '-e', `OUT_FILE=${join(tmp, 'b.json')}`);
    const c = run('pass.ts', '--seed', '12', '--out', join(tmp, 'c'), '-e', `OUT_FILE=${join(tmp, 'c.json')}`);
    expect([a.status, b.status, c.status]).toEqual([0, 0, 0]);
    const setupOf = (f: string) => (JSON.parse(readFileSync(join(tmp, f), 'utf8')) as { setup: { sample: string[] } }).setup.sample;
    expect(setupOf('a.json').length).toBeGreaterThan(0);
    expect(setupOf('b.json')).toEqual(setupOf('a.json'));
    expect(setupOf('c.json')).not.toEqual(setupOf('a.json'));
  }, 180_000);

  it('exits 99 when a threshold fails, and says which', () => {
    const r = run('fail-threshold.ts', '--out', join(tmp, 'fail'));
    expect(r.status).toBe(99);
    expect(r.stdout).toMatch(/✗ http_req_duration\s+p\(95\)<0.000001/);
  }, 120_000);

  it('exits 104 on options k6 would refuse, naming the field', () => {
    const r = run('bad-options.ts');
    expect(r.status).toBe(104);
    expect(r.stderr).toMatch(/scenarios\.x\.executor/);
  }, 60_000);

  it('exits 104 on a threshold outside k6 grammar', () => {
    const r = run('bad-threshold.ts');
    expect(r.status).toBe(104);
    expect(r.stderr).toMatch(/p95 < 20/);
  }, 60_000);

  it('exits 107 when the script throws', () => {
    const r = run('throws.ts');
    expect(r.status).toBe(107);
    expect(r.stderr).toMatch(/broken on purpose/);
    // As k6 shows it: the message and the frame in the script, not the runner's or Node's frames.
    expect(r.stderr).toMatch(/at .*throws\.ts:\d+:\d+/);
    expect(r.stderr).not.toMatch(/node:internal|scenarios[/\\]runner[/\\]/);
  }, 60_000);

  it('counts iterations that threw in iterations and iteration_duration, as k6 does, and exits 0', () => {
    const out = join(tmp, 'odd-throw');
    const r = run('odd-iterations-throw.ts', '--out', out, '--summary-export', join(tmp, 'odd-throw.json'));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr.match(/odd iteration/g)?.length).toBe(3);
    const exported = JSON.parse(readFileSync(join(tmp, 'odd-throw.json'), 'utf8')) as { metrics: Record<string, Record<string, number>> };
    expect(exported.metrics.iterations!.count).toBe(6);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { iterations: { completed: number; errors: number }; series: { series: Array<{ metric: string; tags: Record<string, string>; count: number[] }> } };
    // The run's own accounting still tells them apart (the findings name iterations that threw).
    expect(result.iterations).toMatchObject({ completed: 3, errors: 3 });
    const durations = result.series.series.find((s) => s.metric === 'iteration_duration' && Object.keys(s.tags).length === 0)!;
    expect(durations.count.reduce((a, b) => a + b, 0)).toBe(6);
  }, 60_000);

  it("keeps k6's vus gauge (VUs busy in an iteration for arrival-rate, the last value at the end) and a counter's rate over the whole test including setup", () => {
    const exported = join(tmp, 'gauges.json');
    const r = run('k6-gauges.js', '--seed', '1', '--out', join(tmp, 'gauges'), '--summary-export', exported);
    expect(r.status).toBe(0);
    const m = (JSON.parse(readFileSync(exported, 'utf8')) as { metrics: Record<string, Record<string, number>> }).metrics;
    // The run ended with 3 constant VUs: the gauge keeps 3 (it is not sampled after the VUs are gone).
    expect(m.vus!.value).toBe(3);
    expect(m.vus!.max).toBe(3);
    // k6's plan: the arrival-rate phase's 20 VUs (one at a time busy) until its gracefulStop ends, and the 3 beside them.
    expect(m.vus_max!.value).toBe(23);
    const result = JSON.parse(readFileSync(join(tmp, 'gauges', 'result.json'), 'utf8')) as { durationMs: number; testRunDurationMs: number };
    // setup's second is in k6's test run duration, and the rate divides by it.
    expect(result.testRunDurationMs - result.durationMs).toBeGreaterThanOrEqual(1000);
    expect(m.arrivals!.count).toBe(15);
    expect(m.arrivals!.rate).toBeCloseTo(15 / (result.testRunDurationMs / 1000), 6);
  }, 120_000);

  it("keeps Scalegram's own metrics out of the k6 metrics of the summary export unless the script declared them or a threshold names them", () => {
    const exported = join(tmp, 'declares.json');
    const r = run('declares-topology.js', '--seed', '1', '--out', join(tmp, 'declares'), '--summary-export', exported);
    expect(r.status).toBe(0);
    const e = JSON.parse(readFileSync(exported, 'utf8')) as { metrics: Record<string, unknown>; scalegram?: { metrics: Record<string, unknown> } };
    // Declared (a Trend in init code) and thresholded: with k6's.
    expect(Object.keys(e.metrics)).toEqual(expect.arrayContaining(['shard_skew', 'queue_depth', 'http_reqs', 'iterations']));
    // Neither: apart, under the export's own key.
    for (const name of ['server_skew', 'http_req_intended_duration', 'iteration_start_delay']) {
      expect(e.metrics[name], name).toBeUndefined();
      expect(e.scalegram!.metrics[name], name).toBeDefined();
    }
    // The result directory's summary.json, rebuilt by `scalegram report` from result.json, files them alike.
    const summary = JSON.parse(readFileSync(join(tmp, 'declares', 'summary.json'), 'utf8')) as typeof e;
    expect(Object.keys(summary.metrics).sort()).toEqual(Object.keys(e.metrics).sort());
    expect(Object.keys(summary.scalegram!.metrics).sort()).toEqual(Object.keys(e.scalegram!.metrics).sort());
  }, 120_000);

  it('exits 108 when the script aborts the test', () => {
    const r = run('aborts.ts', '--out', join(tmp, 'aborts'));
    expect(r.status).toBe(108);
    expect(r.stdout).toMatch(/ABORTED/);
  }, 60_000);

  it("runs the README's scenario example with its thresholds holding", () => {
    const r = run('readme-example.ts', '--speed', '120', '--scale', '0.05', '--out', join(tmp, 'readme'));
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/✓ http_req_duration\{name:feed\}\s+p\(95\)<100/);
  }, 60_000);

  it('export-k6 bundles every scenario into one module that imports only k6 and uses no Node globals', () => {
    const out = join(tmp, 'k6');
    for (const name of ['android-launch', 'launch-day', 'celebrity-post', 'cache-node-loss', 'replica-failover', 'shard-split', 'hash-vs-range', 'ci-gate']) {
      const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'export-k6', `scenarios/${name}.ts`, '--out', out], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const js = readFileSync(join(out, `${name}.js`), 'utf8');
      const imports = [...js.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
      expect(imports.length).toBeGreaterThan(0);
      expect(imports.every((i) => i === 'k6' || i!.startsWith('k6/')), imports.join(',')).toBe(true);
      expect(js).not.toMatch(/\bprocess\.|\brequire\(|__dirname/);
      // Topology thresholds name metrics the bundle itself declares (k6 refuses unknown ones).
      expect(js).toMatch(/new Trend\("cache_hit_rate"\)/);
    }
    expect(existsSync(join(out, 'assets', 'photo.jpg'))).toBe(true);
  }, 60_000);

  it('export-k6 refuses a script that imports what k6 does not have, with exit 107', () => {
    const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'export-k6', 'test/fixtures/runs/uses-node.ts', '--out', join(tmp, 'k6bad')], { encoding: 'utf8' });
    expect(r.status).toBe(107);
    expect(r.stderr).toMatch(/node:fs/);
  });

  it("refuses k6's other --out outputs with a usage error, and an unwritable json file before running", () => {
    const r = run('pass.ts', '--out', 'csv=results.csv');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/json=FILE only/);
    const j = run('pass.ts', '--out', `json=${join(tmp, 'no', 'such', 'dir', 'x.jsonl')}`);
    expect(j.status).toBe(2);
    expect(j.stderr).toMatch(/cannot write there/);
  });

  it("writes k6's JSON output with --out json=FILE: a Metric line per metric, then a Point per sample, in k6 v0.48's shape", () => {
    const file = join(tmp, 'points.jsonl');
    const exported = join(tmp, 'points-export.json');
    const r = run('plain-sync/script.js', '--seed', '2', '--out', `json=${file}`, '--out', join(tmp, 'points'), '--summary-export', exported);
    expect(r.status).toBe(0);
    type Line = { type: 'Metric'; metric: string; data: { name: string; type: string; contains: string; thresholds: string[]; submetrics: Array<{ name: string; suffix: string; tags: Record<string, string> }> | null } } | { type: 'Point'; metric: string; data: { time: string; value: number; tags: Record<string, string> } };
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
    // The same keys in the same order as real k6 v0.48's lines (its `--out json` of a small run).
    const shape = (l: Line) => [Object.keys(l), Object.keys(l.data)];
    expect(shape(lines.find((l) => l.type === 'Metric')!)).toEqual([['type', 'data', 'metric'], ['name', 'type', 'contains', 'thresholds', 'submetrics']]);
    expect(shape(lines.find((l) => l.type === 'Point')!)).toEqual([['metric', 'type', 'data'], ['time', 'value', 'tags']]);
    // Every metric is declared once, before its first point.
    const declared = new Set<string>();
    for (const l of lines) {
      if (l.type === 'Metric') {
        expect(declared.has(l.metric)).toBe(false);
        declared.add(l.metric);
      } else expect(declared.has(l.metric)).toBe(true);
    }
    const metric = (name: string) => lines.find((l): l is Extract<Line, { type: 'Metric' }> => l.type === 'Metric' && l.metric === name)!.data;
    expect(metric('http_reqs')).toMatchObject({ type: 'counter', contains: 'default' });
    expect(metric('per_vu_state_ok').thresholds).toEqual(['count==12']);
    expect(metric('http_reqs').submetrics!.map((x) => x.suffix)).toEqual(expect.arrayContaining(['name:health', 'group:::pair']));
    // The points add up to the summary's figures.
    const m = (JSON.parse(readFileSync(exported, 'utf8')) as { metrics: Record<string, Record<string, number>> }).metrics;
    const points = (name: string) => lines.filter((l): l is Extract<Line, { type: 'Point' }> => l.type === 'Point' && l.metric === name);
    expect(points('http_reqs').reduce((n, p) => n + p.data.value, 0)).toBe(m.http_reqs!.count);
    expect(points('http_reqs').filter((p) => p.data.tags.group === '::pair')).toHaveLength(24);
    expect(Math.max(...points('slept_ms').map((p) => p.data.value))).toBe(m.slept_ms!.max);
    expect(points('http_req_duration')[0]!.data.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
  }, 120_000);

  it('exits 2 with a usage message for a missing scenario file', () => {
    const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'run', 'no/such.ts'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no such scenario file/);
  });
});
