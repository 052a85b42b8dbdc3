// Per-route series for the teaching dashboard, from the runner's metric registry (MetricRegistry.series()):
// requests per second and latency percentiles per bucket, for each value of the k6 `name` tag.
//
// Percentiles are those of each bucket's histograms merged (mergedPercentiles, as thresholds and the
// report's route table compute them), never an average of percentiles: the p99 of 99 fast requests
// and one slow one is not the mean of the fast p99 and the slow one. The registry keeps one series
// per `name` value already covering every other tag (status, scenario, method, …); series data that
// splits a name further (a name with other tags) is merged here, bucket by bucket.
//
// Called once a second on a registry that may hold hours of buckets, so only the buckets from
// `sinceMs` on are read: the cost is that of the buckets asked for, whatever the run's length.

import { mergedPercentiles, type SeriesData, type SeriesEntry } from '../scenarios/runner/k6-metrics.ts';

/** [ms since the origin (the bucket's start), value] */
export type Point = [number, number];

export interface RouteSeries {
  reqsPerS: Point[];
  p50: Point[];
  p95: Point[];
  p99: Point[];
}

/** Routes the dashboard leaves out: the harness's own calls to the admin API (sim_admin, sim_seed, sim_users, …). */
const hidden = (name: string): boolean => name.startsWith('sim_');
const PERCENTILES: readonly number[] = [50, 95, 99];

// A closed bucket's histogram is the same string on every call (the registry keeps its encoding), and
// decoding it is most of the work: a window of the last minutes, read each second, decodes only the
// buckets that are new. Keyed by the histograms; the exact min and max (which bound the percentiles)
// are checked on a hit. Cleared when full: a bound on memory, not a policy.
const CACHE_LIMIT = 16_384;
const cache = new Map<string, { min: number; max: number; ps: number[] }>();

function percentiles(hdrs: readonly string[], min: number, max: number): number[] {
  const key = hdrs.length === 1 ? hdrs[0]! : hdrs.join('\n');
  const hit = cache.get(key);
  if (hit && hit.min === min && hit.max === max) return hit.ps;
  const ps = mergedPercentiles(hdrs, min, max, PERCENTILES);
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, { min, max, ps });
  return ps;
}

/** The entries of one metric per route: the route's own series ({name} only) when there is one, else every entry naming it. */
function byRoute(entries: readonly SeriesEntry[], metric: string): Map<string, SeriesEntry[]> {
  const out = new Map<string, SeriesEntry[]>();
  const whole = new Set<string>();
  for (const e of entries) {
    if (e.metric !== metric) continue;
    const name = e.tags.name;
    if (name === undefined || hidden(name) || whole.has(name)) continue;
    // {name} alone already covers every other tag: adding the narrower entries too would count twice.
    if (Object.keys(e.tags).length === 1) {
      whole.add(name);
      out.set(name, [e]);
      continue;
    }
    const list = out.get(name);
    if (list) list.push(e);
    else out.set(name, [e]);
  }
  return out;
}

/**
 * Index of the first bucket that reaches past `sinceMs` (on the x axis: ms since `originMs`): the one
 * under way at `sinceMs`, then every later one. A caller that asks again from a little before its
 * last frame gets that frame's last bucket again, whole, however wide the registry's buckets have grown.
 */
function firstBucket(data: SeriesData, originMs: number, sinceMs: number): number {
  const { startMs, bucketMs, buckets } = data;
  const end = (i: number) => startMs + (i + 1) * bucketMs - originMs;
  if (!(sinceMs >= end(0))) return 0;
  if (buckets === 0 || sinceMs >= end(buckets - 1)) return buckets;
  let i = Math.floor((sinceMs - end(0)) / bucketMs) + 1;
  // Floating-point rounding either way: settle on the exact rule.
  while (i > 0 && end(i - 1) > sinceMs) i--;
  while (end(i) <= sinceMs) i++;
  return i;
}

/**
 * Per route (the k6 `name` tag of http_reqs / http_req_duration, e.g. "feed", "upload"): requests per
 * second and latency percentiles (ms) per bucket, at x = ms since `originMs` (the bucket's start).
 * Only buckets at or after `sinceMs`, on the same axis (ms since `originMs`; default 0: from the
 * origin on): the bucket under way at `sinceMs` and every later one (-Infinity: every bucket);
 * buckets before it are not read at all. Requests per second is the bucket's count over its full
 * width; `untilMs` (same axis) leaves out the buckets not over by then (one still filling would read
 * low). Buckets without requests have no latency points. The harness's calls to the admin API
 * (`sim_admin`, `sim_seed`, `sim_users`, … ) and entries without a `name` tag are left out.
 */
export function routeSeries(data: SeriesData, originMs: number, sinceMs = 0, untilMs = Infinity): Record<string, RouteSeries> {
  const from = firstBucket(data, originMs, sinceMs);
  // Only the buckets over by `untilMs` (x axis): one still filling would read low.
  const to = Math.min(data.buckets, Math.floor((untilMs + originMs - data.startMs) / data.bucketMs));
  const widthS = data.bucketMs / 1000;
  const x = (i: number) => data.startMs + i * data.bucketMs - originMs;
  const reqs = byRoute(data.series, 'http_reqs');
  const durations = byRoute(data.series, 'http_req_duration');
  const out: Record<string, RouteSeries> = {};
  const names = [...new Set([...reqs.keys(), ...durations.keys()])].sort();

  for (const name of names) {
    const r: RouteSeries = { reqsPerS: [], p50: [], p95: [], p99: [] };
    out[name] = r;

    const counted = reqs.get(name) ?? [];
    for (let i = from; i < to; i++) {
      let n = 0;
      for (const e of counted) n += e.count[i] ?? 0;
      r.reqsPerS.push([x(i), n / widthS]);
    }

    const timed = durations.get(name) ?? [];
    const hdrs: string[] = [];
    for (let i = from; i < to; i++) {
      hdrs.length = 0;
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      for (const e of timed) {
        if (!((e.count[i] ?? 0) > 0)) continue;
        const h = e.hdr?.[i];
        if (!h) continue;
        hdrs.push(h);
        const lo = e.min[i];
        const hi = e.max[i];
        if (typeof lo === 'number' && lo < min) min = lo;
        if (typeof hi === 'number' && hi > max) max = hi;
      }
      if (hdrs.length === 0 || !(min <= max)) continue;
      const [p50, p95, p99] = percentiles(hdrs, min, max);
      const at = x(i);
      r.p50.push([at, p50!]);
      r.p95.push([at, p95!]);
      r.p99.push([at, p99!]);
    }
  }
  return out;
}
