// The dashboard's per-route series (dashboard/routes.ts) read from a real MetricRegistry: requests per
// second per bucket, percentiles of the bucket's histograms merged across tag sets (never averaged),
// only the buckets from `sinceMs` on, on an x axis that counts from the origin given.

import { describe, expect, it } from 'vitest';
import { MetricRegistry, type SeriesData, type SeriesEntry, type Tags } from '../scenarios/runner/k6-metrics.ts';
import { routeSeries } from '../dashboard/routes.ts';

const T0 = 1_700_000_000_000;
const BUCKET_MS = 500;

function registry(opts: { bucketMs?: number; maxBuckets?: number } = {}) {
  const clock = { t: T0 };
  const r = new MetricRegistry(() => clock.t, { bucketMs: BUCKET_MS, ...opts });
  /** One request: http_reqs and http_req_duration with the same tags, at `atMs` since the start. */
  const request = (atMs: number, ms: number, tags: Tags) => {
    clock.t = T0 + atMs;
    r.add('http_reqs', 1, tags);
    r.add('http_req_duration', ms, tags);
  };
  return { r, clock, request };
}

const feed = (status: number, scenario = 'browse'): Tags => ({ name: 'feed', method: 'GET', status: String(status), scenario, expected_response: String(status < 400) });
const upload = (status: number, scenario = 'post'): Tags => ({ name: 'upload', method: 'POST', status: String(status), scenario, expected_response: String(status < 400) });

/**
 * Buckets of 500 ms: 0 has 99 feed requests of 10 ms (200, browse) and one of 1000 ms (500, post)
 * plus 2 uploads; 1 has nothing; 2 has 3 feed requests (two scenarios) and one upload of 40 ms; 3 has
 * one upload of 250 ms and an admin call.
 */
function populated() {
  const { r, request } = registry();
  for (let k = 0; k < 99; k++) request(10 + k, 10, feed(200));
  request(200, 1000, feed(500, 'post'));
  request(300, 80, upload(201));
  request(400, 120, upload(500, 'browse'));
  request(1000, 20, feed(200));
  request(1100, 30, feed(200, 'post'));
  request(1200, 25, feed(404));
  request(1300, 40, upload(201));
  request(1600, 250, upload(201));
  request(1700, 5, { name: 'sim_admin', method: 'POST', status: '200', scenario: 'setup' });
  request(1750, 5, { name: 'sim_seed', method: 'POST', status: '200', scenario: 'setup' });
  return r;
}

describe('routeSeries', () => {
  it('gives each route its requests per second in every bucket, summed over statuses and scenarios', () => {
    const routes = routeSeries(populated().series(), T0);
    expect(Object.keys(routes).sort()).toEqual(['feed', 'upload']);
    // count ÷ 0.5 s
    expect(routes.feed!.reqsPerS).toEqual([
      [0, 200],
      [500, 0],
      [1000, 6],
      [1500, 0],
    ]);
    expect(routes.upload!.reqsPerS).toEqual([
      [0, 4],
      [500, 0],
      [1000, 2],
      [1500, 2],
    ]);
  });

  it('reads the percentiles of the merged histograms, not an average of per-tag percentiles', () => {
    const routes = routeSeries(populated().series(), T0);
    const f = routes.feed!;
    // Bucket 0: 99 × 10 ms and 1 × 1000 ms. k6's p(99) over the samples: ranks 98 and 99 → 10 + 0.01 × 990 = 19.9.
    // Averaging the per-status percentiles would give (10 + 1000) / 2 = 505 for each of them.
    const [x0, p50] = f.p50[0]!;
    expect(x0).toBe(0);
    expect(p50).toBeCloseTo(10, 0); // 2 significant digits: within ±0.5 %
    expect(Math.abs(p50 - 10)).toBeLessThan(0.1);
    expect(Math.abs(f.p95[0]![1] - 10)).toBeLessThan(0.1);
    expect(Math.abs(f.p99[0]![1] - 19.9)).toBeLessThan(0.1);
    // Bucket 2: 20, 25, 30 ms over three tag sets: p50 25, p95 = 25 + 0.9 × 5 = 29.5.
    expect(f.p50[1]![0]).toBe(1000);
    expect(Math.abs(f.p50[1]![1] - 25)).toBeLessThan(0.25);
    expect(Math.abs(f.p95[1]![1] - 29.5)).toBeLessThan(0.25);
    // A single request is its own percentiles, exactly.
    expect(routes.upload!.p99[2]).toEqual([1500, 250]);
  });

  it('has no latency point for a bucket without requests', () => {
    const routes = routeSeries(populated().series(), T0);
    expect(routes.feed!.p50.map(([x]) => x)).toEqual([0, 1000]);
    expect(routes.feed!.p99.map(([x]) => x)).toEqual([0, 1000]);
    expect(routes.upload!.p95.map(([x]) => x)).toEqual([0, 1000, 1500]);
  });

  it('merges a route split into several tag sets bucket by bucket, as the registry merges it when recording', () => {
    // The same samples in three registries: all together, status 200 only, status 500 only.
    const all = registry();
    const ok = registry();
    const failed = registry();
    for (let k = 0; k < 99; k++) {
      all.request(10 + k, 10, feed(200));
      ok.request(10 + k, 10, feed(200));
    }
    all.request(200, 1000, feed(500, 'post'));
    failed.request(200, 1000, feed(500, 'post'));
    all.request(700, 35, feed(200));
    ok.request(700, 35, feed(200));
    all.request(800, 2000, feed(503));
    failed.request(800, 2000, feed(503));
    const routeOf = (data: SeriesData, metric: string, tags: Tags): SeriesEntry => ({ ...data.series.find((s) => s.metric === metric && s.tags.name === 'feed')!, tags });
    const okData = ok.r.series();
    const failedData = failed.r.series();
    const split: SeriesData = {
      ...okData,
      series: [
        ...['http_reqs', 'http_req_duration'].flatMap((m) => [routeOf(okData, m, { name: 'feed', status: '200' }), routeOf(failedData, m, { name: 'feed', status: '5xx' })]),
        // Series without a name tag are not routes.
        ...okData.series.filter((s) => s.tags.name === undefined),
      ],
    };
    const merged = routeSeries(split, T0);
    expect(merged).toEqual(routeSeries(all.r.series(), T0));
    expect(merged.feed!.reqsPerS).toEqual([
      [0, 200],
      [500, 4],
    ]);
    // Per-status p99s averaged would be (10 + 1000) / 2 = 505.
    expect(Math.abs(merged.feed!.p99[0]![1] - 19.9)).toBeLessThan(0.1);
    // Bucket 1: 35 and 2000 ms: p50 = 35 + 0.5 × 1965.
    expect(merged.feed!.p50[1]![1]).toBeCloseTo(1017.5, 6);
  });

  it("counts a route's own series once when narrower series of it are also present", () => {
    const data = populated().series();
    const feedEntries = data.series.filter((s) => s.tags.name === 'feed');
    const narrower = feedEntries.map((s) => ({ ...s, tags: { name: 'feed', status: '200' } }));
    const routes = routeSeries({ ...data, series: [...narrower, ...data.series] }, T0);
    expect(routes).toEqual(routeSeries(data, T0));
  });

  it('leaves out the admin route and series without a name', () => {
    const routes = routeSeries(populated().series(), T0);
    expect('sim_admin' in routes).toBe(false);
    expect('sim_seed' in routes).toBe(false);
    expect(Object.keys(routes)).not.toContain('');
  });

  it('leaves out the buckets not over by untilMs (a bucket still filling would read low)', () => {
    const data = populated().series();
    expect(routeSeries(data, T0, 1000, 1499).feed!.reqsPerS).toEqual([]);
    expect(routeSeries(data, T0, 1000, 1500).feed!.reqsPerS).toEqual([[1000, 6]]);
    expect(routeSeries(data, T0, 1000, 2000).feed!.reqsPerS).toEqual([
      [1000, 6],
      [1500, 0],
    ]);
  });

  it('reads only the buckets from sinceMs on (ms since the origin), the one under way at sinceMs included', () => {
    const data = populated().series();
    const routes = routeSeries(data, T0, 1000);
    expect(routes.feed!.reqsPerS).toEqual([
      [1000, 6],
      [1500, 0],
    ]);
    expect(routes.feed!.p50.map(([x]) => x)).toEqual([1000]);
    // Mid-bucket: the bucket under way then is read whole.
    expect(routeSeries(data, T0, 999).feed!.reqsPerS.map(([x]) => x)).toEqual([500, 1000, 1500]);
    expect(routeSeries(data, T0, 1001).feed!.reqsPerS.map(([x]) => x)).toEqual([1000, 1500]);
    expect(routeSeries(data, T0, 1499).feed!.reqsPerS.map(([x]) => x)).toEqual([1000, 1500]);
    expect(routeSeries(data, T0, 1500).feed!.reqsPerS.map(([x]) => x)).toEqual([1500]);
    // At the end of the last bucket and past it: nothing (the route is still named).
    expect(routeSeries(data, T0, 2000).feed).toEqual({ reqsPerS: [], p50: [], p95: [], p99: [] });
    expect(routeSeries(data, T0, Infinity).feed).toEqual({ reqsPerS: [], p50: [], p95: [], p99: [] });
    expect(routeSeries(data, T0, 0)).toEqual(routeSeries(data, T0));
    expect(routeSeries(data, T0, -Infinity)).toEqual(routeSeries(data, T0));
    // Buckets before it are not even decoded: damaged histograms there do not matter.
    const damaged: SeriesData = { ...data, series: data.series.map((s) => (s.hdr ? { ...s, hdr: s.hdr.map((h, i) => (i < 2 ? 'not a histogram' : h)) } : s)) };
    expect(routeSeries(damaged, T0, 1000)).toEqual(routes);
    expect(() => routeSeries(damaged, T0)).toThrow();
  });

  it('reads each call its own exact min and max, though the histogram is the same', () => {
    const { r, request } = registry();
    request(100, 20, feed(200));
    request(200, 40, feed(200));
    const data = r.series();
    // Two samples: p50 is halfway between the exact min and max.
    expect(routeSeries(data, T0).feed!.p50).toEqual([[0, 30]]);
    const wider: SeriesData = { ...data, series: data.series.map((s) => (s.metric === 'http_req_duration' ? { ...s, max: [40.4] } : s)) };
    expect(routeSeries(wider, T0).feed!.p50).toEqual([[0, 30.2]]);
  });

  it('puts x in ms since the origin given, at the start of each bucket; sinceMs is on that axis', () => {
    const data = populated().series();
    const origin = T0 + 1000;
    // By default, from the origin on.
    expect(routeSeries(data, origin).upload!.reqsPerS).toEqual([
      [0, 2],
      [500, 2],
    ]);
    const all = routeSeries(data, origin, -Infinity);
    expect(all.upload!.reqsPerS.map(([x]) => x)).toEqual([-1000, -500, 0, 500]);
    expect(all.upload!.p99.map(([x]) => x)).toEqual([-1000, 0, 500]);
    expect(routeSeries(data, origin, -600).upload!.reqsPerS.map(([x]) => x)).toEqual([-1000, -500, 0, 500]);
    expect(routeSeries(data, origin, 500).upload!.p99).toEqual([[500, 250]]);
    // The registry started at the origin's own clock: the dashboard's simulation asks from virtual ms.
    expect(routeSeries(data, T0, 1500).upload!.p99).toEqual([[1500, 250]]);
  });

  it('follows the registry when its buckets widen', () => {
    const { r, request } = registry({ maxBuckets: 4 });
    request(100, 10, feed(200));
    request(600, 10, feed(200));
    request(2100, 10, feed(200)); // bucket 4 of 500 ms: the buckets double to 1000 ms
    const data = r.series();
    expect(data.bucketMs).toBe(1000);
    expect(routeSeries(data, T0).feed!.reqsPerS).toEqual([
      [0, 2],
      [1000, 0],
      [2000, 1],
    ]);
    // A caller that asked from 1.5 s before still gets the (now 1 s wide) bucket under way then.
    expect(routeSeries(data, T0, 1500).feed!.reqsPerS).toEqual([
      [1000, 0],
      [2000, 1],
    ]);
  });
});
