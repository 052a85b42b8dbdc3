// The end-of-test summary in k6's shapes: --summary-export compared key by key with real k6 v0.48
// output (/work/shared/reference), and the data object handleSummary(data) receives.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MetricRegistry } from '../scenarios/runner/k6-metrics.ts';
import { Thresholds } from '../scenarios/runner/thresholds.ts';
import { CheckRecorder, summaryData, summaryExport } from '../scenarios/runner/summary-export.ts';

const T0 = 1_700_000_000_000;
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

interface Reference {
  root_group: unknown;
  metrics: Record<string, Record<string, unknown>>;
}
/**
 * `k6 run --summary-export` from real k6 v0.48.0 (../shared/reference/k6-summary-export.json, copied
 * here so the test does not depend on a path outside the repository): two scenarios, a custom
 * trend, one check, thresholds on http_req_failed, checks and http_req_duration{scenario:open}.
 */
const reference: Reference = {
  "root_group": {
    "id": "d41d8cd98f00b204e9800998ecf8427e",
    "groups": {},
    "checks": {
      "status 200": {
        "name": "status 200",
        "path": "::status 200",
        "id": "fad9fa412b86fcb03bee97c80dcd61f1",
        "passes": 161,
        "fails": 0
      }
    },
    "name": "",
    "path": ""
  },
  "metrics": {
    "feed_ms": {
      "med": 0.795257,
      "max": 10.925739,
      "p(90)": 0.999576,
      "p(95)": 1.048533,
      "avg": 0.8925721614906835,
      "min": 0.57435
    },
    "data_sent": {
      "rate": 3717.5104235255276,
      "count": 14877
    },
    "http_req_tls_handshaking": {
      "p(90)": 0,
      "p(95)": 0,
      "avg": 0,
      "min": 0,
      "med": 0,
      "max": 0
    },
    "http_req_sending": {
      "avg": 0.03138824561403508,
      "min": 0.00652,
      "med": 0.024757,
      "max": 0.256179,
      "p(90)": 0.04703,
      "p(95)": 0.0601385
    },
    "http_req_duration{expected_response:true}": {
      "p(95)": 1.0692689999999998,
      "avg": 0.8842929239766082,
      "min": 0.555773,
      "med": 0.788914,
      "max": 10.925739,
      "p(90)": 0.999576
    },
    "vus": {
      "value": 0,
      "min": 0,
      "max": 0
    },
    "http_req_duration{scenario:open}": {
      "med": 0.795257,
      "max": 10.925739,
      "p(90)": 0.999576,
      "p(95)": 1.048533,
      "avg": 0.8925721614906835,
      "min": 0.57435,
      "thresholds": {
        "p(95)<0.0001": true
      }
    },
    "http_reqs": {
      "rate": 42.73000486810951,
      "count": 171
    },
    "http_req_duration": {
      "med": 0.788914,
      "max": 10.925739,
      "p(90)": 0.999576,
      "p(95)": 1.0692689999999998,
      "avg": 0.8842929239766082,
      "min": 0.555773
    },
    "http_req_failed": {
      "passes": 0,
      "fails": 171,
      "thresholds": {
        "rate<0.5": false
      },
      "value": 0
    },
    "http_req_receiving": {
      "med": 0.070935,
      "max": 0.154429,
      "p(90)": 0.118745,
      "p(95)": 0.1257985,
      "avg": 0.0726681461988304,
      "min": 0.008913
    },
    "http_req_waiting": {
      "avg": 0.7802365321637427,
      "min": 0.487042,
      "med": 0.694279,
      "max": 10.77728,
      "p(90)": 0.890114,
      "p(95)": 0.944671
    },
    "data_received": {
      "count": 31122,
      "rate": 7776.860885995931
    },
    "iteration_duration": {
      "p(95)": 100.85487900000001,
      "avg": 7.044161900584793,
      "min": 0.772558,
      "med": 1.067721,
      "max": 102.05086,
      "p(90)": 1.502225
    },
    "iterations": {
      "rate": 42.73000486810951,
      "count": 171
    },
    "checks": {
      "passes": 161,
      "fails": 0,
      "thresholds": {
        "rate>0.9": false
      },
      "value": 1
    },
    "vus_max": {
      "value": 7,
      "min": 7,
      "max": 7
    },
    "http_req_blocked": {
      "med": 0.00639,
      "max": 0.929817,
      "p(90)": 0.008352,
      "p(95)": 0.011782,
      "avg": 0.02688379532163743,
      "min": 0.002133
    },
    "http_req_connecting": {
      "avg": 0.01654104678362573,
      "min": 0,
      "med": 0,
      "max": 0.752194,
      "p(90)": 0,
      "p(95)": 0
    }
  }
};

/** The reference run, replayed: two scenarios' samples, a custom trend, 161 checks, its three thresholds. */
function referenceRun() {
  const r = new MetricRegistry(() => T0);
  r.define('feed_ms', 'trend', 'time');
  const thresholds = new Thresholds(
    { http_req_failed: ['rate<0.5'], checks: ['rate>0.9'], 'http_req_duration{scenario:open}': ['p(95)<0.0001'] },
    r,
  );
  const checks = new CheckRecorder();
  for (let i = 0; i < 171; i++) {
    const scenario = i < 161 ? 'open' : 'closed';
    const tags = { expected_response: 'true', group: '', method: 'GET', name: 'health', proto: 'HTTP/1.1', scenario, status: '200', url: 'health' };
    for (const m of ['http_req_duration', 'http_req_blocked', 'http_req_connecting', 'http_req_tls_handshaking', 'http_req_sending', 'http_req_waiting', 'http_req_receiving']) {
      r.add(m, 0.5 + (i % 10) / 10, tags);
    }
    r.add('http_reqs', 1, tags);
    r.add('http_req_failed', 0, tags);
    r.add('data_sent', 87, tags);
    r.add('data_received', 182, tags);
    r.add('iterations', 1, { scenario });
    r.add('iteration_duration', 1 + i / 100, { scenario });
    if (scenario === 'open') {
      r.add('feed_ms', 0.8, { scenario });
      r.add('checks', 1, { scenario, check: 'status 200' });
      checks.record([], 'status 200', true);
    }
  }
  r.add('vus', 0, {});
  r.add('vus_max', 7, {});
  return { r, results: thresholds.evaluate(4002).results, tree: checks.tree() };
}

describe('--summary-export', () => {
  const { r, results, tree } = referenceRun();
  const out = summaryExport(r, results, tree, { testRunDurationMs: 4001.87 }) as unknown as Reference;

  it('has the same top-level keys and the same metric keys as real k6 for the same run', () => {
    expect(Object.keys(out).sort()).toEqual(Object.keys(reference).sort());
    expect(Object.keys(out.metrics).sort()).toEqual(Object.keys(reference.metrics).sort());
  });

  it('gives every metric the same value keys as real k6, type by type (thresholds included)', () => {
    for (const [key, ref] of Object.entries(reference.metrics)) {
      expect(Object.keys(out.metrics[key]!).sort(), key).toEqual(Object.keys(ref).sort());
    }
  });

  it('maps each threshold expression to true when it FAILED, as k6 does', () => {
    expect(out.metrics['http_req_duration{scenario:open}']!.thresholds).toEqual({ 'p(95)<0.0001': true });
    expect(out.metrics.checks!.thresholds).toEqual({ 'rate>0.9': false });
    expect(out.metrics.http_req_failed!.thresholds).toEqual({ 'rate<0.5': false });
    for (const [key, ref] of Object.entries(reference.metrics)) expect(out.metrics[key]!.thresholds, key).toEqual(ref.thresholds);
  });

  it("a rate's share is `value`, beside passes and fails; a counter's rate is per second of the test run", () => {
    expect(out.metrics.checks).toMatchObject({ passes: 161, fails: 0, value: 1 });
    expect(out.metrics.http_req_failed).toMatchObject({ passes: 0, fails: 171, value: 0 });
    expect(out.metrics.http_reqs).toEqual({ count: 171, rate: 171 / 4.00187 });
    expect(out.metrics.vus_max).toEqual({ value: 7, min: 7, max: 7 });
  });

  it('reproduces the root group of the reference exactly: ids are md5 of the paths', () => {
    expect(out.root_group).toEqual(reference.root_group);
    expect(md5('')).toBe('d41d8cd98f00b204e9800998ecf8427e');
  });

  it('nests groups as maps keyed by name with paths ::outer::inner', () => {
    const checks = new CheckRecorder();
    checks.record(['feed', 'page 2'], 'has items', false);
    checks.record(['feed'], 'status 200', true);
    const g = summaryExport(r, [], checks.tree()).root_group;
    expect(g.groups.feed).toMatchObject({ name: 'feed', path: '::feed', id: md5('::feed') });
    expect(g.groups.feed!.checks['status 200']).toEqual({ name: 'status 200', path: '::feed::status 200', id: md5('::feed::status 200'), passes: 1, fails: 0 });
    expect(g.groups.feed!.groups['page 2']!.checks['has items']).toMatchObject({ path: '::feed::page 2::has items', passes: 0, fails: 1 });
  });

  it('follows summaryTrendStats for trends, count and p(99.9) included', () => {
    const r2 = new MetricRegistry(() => T0);
    for (let i = 1; i <= 1000; i++) r2.add('http_req_duration', i, {});
    const m = summaryExport(r2, [], new CheckRecorder().tree(), { options: { summaryTrendStats: ['avg', 'p(99.9)', 'count'] } }).metrics.http_req_duration!;
    expect(Object.keys(m)).toEqual(['avg', 'p(99.9)', 'count']);
    expect(m.count).toBe(1000);
    expect(Math.abs((m['p(99.9)'] as number) - 999.001)).toBeLessThanOrEqual(1);
    expect(() => summaryExport(r2, [], new CheckRecorder().tree(), { options: { summaryTrendStats: ['p95'] } })).toThrow(/summaryTrendStats\[0\]/);
  });
});

describe('handleSummary(data)', () => {
  it('has k6 v0.48 keys: root_group with arrays, options, state, and metrics with type, contains, values, thresholds', () => {
    const { r, results, tree } = referenceRun();
    const data = summaryData(r, results, tree, { testRunDurationMs: 4001.87 }, { summaryTimeUnit: 'ms' });
    expect(Object.keys(data).sort()).toEqual(['metrics', 'options', 'root_group', 'state']);
    expect(data.options).toEqual({ summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)'], summaryTimeUnit: 'ms', noColor: false });
    expect(data.state).toEqual({ isStdOutTTY: false, isStdErrTTY: false, testRunDurationMs: 4001.87 });
    expect(data.root_group).toEqual({
      name: '',
      path: '',
      id: 'd41d8cd98f00b204e9800998ecf8427e',
      groups: [],
      checks: [{ name: 'status 200', path: '::status 200', id: 'fad9fa412b86fcb03bee97c80dcd61f1', passes: 161, fails: 0 }],
    });
    expect(data.metrics.checks).toEqual({ type: 'rate', contains: 'default', values: { rate: 1, passes: 161, fails: 0 }, thresholds: { 'rate>0.9': { ok: true } } });
    expect(data.metrics['http_req_duration{scenario:open}']).toMatchObject({ type: 'trend', contains: 'time', thresholds: { 'p(95)<0.0001': { ok: false } } });
    expect(Object.keys(data.metrics.feed_ms!.values)).toEqual(['avg', 'min', 'med', 'max', 'p(90)', 'p(95)']);
    expect(data.metrics.data_sent).toEqual({ type: 'counter', contains: 'data', values: { count: 171 * 87, rate: (171 * 87) / 4.00187 } });
    expect(data.metrics.vus).toEqual({ type: 'gauge', contains: 'default', values: { value: 0, min: 0, max: 0 } });
    expect(data.metrics.http_reqs!.thresholds).toBeUndefined();
  });

  it('carries setup_data when setup returned some', () => {
    const r = new MetricRegistry(() => T0);
    const data = summaryData(r, [], new CheckRecorder().tree(), { testRunDurationMs: 1 }, {}, { users: [1, 2] });
    expect(data.setup_data).toEqual({ users: [1, 2] });
  });

  it('shows a thresholded metric and its parent even without samples, with zero values', () => {
    const r = new MetricRegistry(() => T0);
    const t = new Thresholds({ 'http_req_duration{name:feed}': ['p(95)<50'] }, r);
    r.add('http_reqs', 1, {});
    const data = summaryData(r, t.evaluate(1000, { final: true }).results, new CheckRecorder().tree(), { testRunDurationMs: 1000 }, undefined);
    expect(Object.keys(data.metrics)).toEqual(['http_req_duration', 'http_req_duration{name:feed}', 'http_reqs']);
    expect(data.metrics['http_req_duration{name:feed}']).toEqual({
      type: 'trend',
      contains: 'time',
      values: { avg: 0, min: 0, med: 0, max: 0, 'p(90)': 0, 'p(95)': 0 },
      thresholds: { 'p(95)<50': { ok: true } },
    });
  });
});

describe('check recorder', () => {
  it('keeps groups and checks in first-seen order and counts passes and fails', () => {
    const c = new CheckRecorder();
    c.enterGroup(['setup']);
    c.record([], 'b', true);
    c.record([], 'a', false);
    c.record([], 'b', true);
    const t = c.tree();
    expect(t.groups.map((g) => [g.name, g.path, g.checks.length])).toEqual([['setup', '::setup', 0]]);
    expect(t.checks.map((x) => [x.name, x.passes, x.fails])).toEqual([
      ['b', 2, 0],
      ['a', 0, 1],
    ]);
    c.record([], 'a', true);
    expect(t.checks[1]!.passes).toBe(0);
  });

  it("refuses check and group names containing '::', which k6 reserves for paths", () => {
    const c = new CheckRecorder();
    expect(() => c.record([], 'a::b', true)).toThrow(/::/);
    expect(() => c.record(['x::y'], 'ok', true)).toThrow(/::/);
  });
});
