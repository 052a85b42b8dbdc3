// The figures a reader looks for first, computed once from a result document for the end-of-run
// summary and both reports, so the terminal and report.md never print two values for one figure:
// per-route percentiles as k6 defines them, within the exact min and max; the lowest cache hit ratio
// on whole steps after the warm-up; the replica lag as the largest of the trend and the telemetry;
// skew and "× mean" from one mean; and the short texts (observed values, the duration) they all print.

import type { HotShard } from '../../sim/observability/telemetry.ts';
import { formatSeconds, formatValue, num } from './format.ts';
import { mergedPercentiles, snapshotValues, type MetricSnapshot, type SeriesEntry } from './k6-metrics.ts';
import type { HarnessSection, ResultDocument } from './results.ts';
import { bucketValues, findSeries, seriesBuckets, telemetryXY, timeline, type XY } from './time-axis.ts';

export interface RouteRow {
  name: string;
  count: number;
  failed: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface ThresholdRow {
  metric: string;
  expression: string;
  ok: boolean;
  observed: number | null;
  abortOnFail: boolean;
}

export interface ClusterFigures {
  cluster: string;
  logicalShards: number;
  totalOps: number;
  /** Ops of a logical shard on average (idle shards count). */
  meanShardOps: number;
  skew: number | null;
  serverSkew: number | null;
  hottest: HotShard[];
  servers: Array<{ name: string; ops: number; logicalShards: number; down: boolean; replicas: number }>;
}

export interface KeyFigures {
  passed: boolean;
  thresholds: ThresholdRow[];
  failed: ThresholdRow[];
  aborted: string | null;
  /** Wall-clock seconds of the scenarios, and what they stand for at --speed. */
  wallS: number;
  /** Made by `scalegram simulate`: durations are virtual time. */
  simulated: boolean;
  scenarioS: number;
  http: { requests: number; perS: number; failedRate: number; avg: number; p95: number; p99: number; max: number; intendedP95: number | null; intendedMax: number | null } | null;
  /** errors: iterations that threw (0 in results written before they were recorded); errorMessages: the first distinct ones. */
  iterations: { completed: number; interrupted: number; dropped: number; droppedShare: number; errors: number; errorMessages: Array<{ message: string; scenario: string; count: number }> };
  /**
   * The event loops' delay (ms; null in results written before it was measured): the worst loop's
   * p99 and max, which side it was (`shared`: server and load generator in one thread; otherwise the
   * load generator's or the server thread's), and whether it saturated the harness.
   */
  harness: { p99Ms: number; maxMs: number; saturated: boolean; side: 'shared' | 'load generator' | 'server'; loops: Array<{ side: 'shared' | 'load generator' | 'server'; p99Ms: number; maxMs: number }> } | null;
  /**
   * Whether the run can support conclusions, whatever its thresholds say: not when most of the
   * offered load was dropped, or when a route failed for most of its requests (runValidity).
   */
  validity: { valid: boolean; reasons: string[] };
  routes: RouteRow[];
  fanout: {
    posts: number;
    deliveries: number;
    failures: number;
    /** Followers per post (whole numbers: the histogram's bucket value rounded). */
    sizeP50: number | null;
    sizeMax: number | null;
    lagP50: number | null;
    lagP99: number | null;
    lagMax: number | null;
    worstWindow: { x: number; p99Ms: number; count: number } | null;
    queueDepthMax: number;
  } | null;
  clusters: ClusterFigures[];
  caches: {
    hitRatio: number | null;
    lowest: { x: number; ratio: number } | null;
    atPeak: { x: number; ratio: number; reqPerS: number } | null;
    lookups: number;
    fills: number;
    evictions: number;
    herdEvents: number;
    /** Shard reads the herd made (older results: absent, 0). */
    herdFills: number;
    herdFillsPerS: Array<[number, number]>;
    leases: boolean;
    dead: number;
    nodes: NonNullable<ResultDocument['telemetry']>['caches']['nodes'];
    /** The gutter pool where one was configured (older results and topologies without one: null). */
    gutter: NonNullable<NonNullable<ResultDocument['telemetry']>['caches']['gutter']> | null;
  } | null;
  replicas: {
    /** The largest lag seen: the runner's replica_lag_ms trend, each replica's per-second peak and its lag at the end. */
    maxLagMs: number;
    /** The replica with the largest lag in the telemetry (its maxLagMs may be below the trend's). */
    worst: { name: string; maxLagMs: number } | null;
    staleReads: { db: number; feed: number; total: number };
    writesLost: number;
    /** In natural name order; maxLagMs is at least the lag at the end. */
    nodes: NonNullable<ResultDocument['telemetry']>['replicas']['nodes'];
  } | null;
}

/** Event-loop delay p99 (ms) from which a run's harness counts as saturated (a finding, and a line of the summary). */
export const HARNESS_LOOP_P99_MS = 100;

/** The share of the run treated as warm-up (cold caches, the start-up burst) by the cache figures. */
export const WARM_UP_SHARE = 0.1;
/** The request rate must peak this far above its median before a figure says "peak load". */
export const PEAK_OVER_MEDIAN = 1.5;

/** Names in natural order: db-2 before db-10. */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/**
 * Per-route figures, busiest first, with percentiles as k6 defines them (what thresholds judge and
 * summary.json holds), never outside the exact min and max: HDR buckets round up, so a bucket's value
 * could read above the slowest request (p50 3,228 ms with max 3,211 ms). A route with a sub-metric of
 * its own (`http_req_duration{name:feed}`, registered by a threshold on it) reads that sub-metric, so
 * the table and the threshold's observed value are the same number; the others merge the bucket
 * histograms of their `name`-tagged series.
 */
export function routeStats(series: SeriesEntry[], metric = 'http_req_duration', snapshots: readonly MetricSnapshot[] = []): RouteRow[] {
  const byName = new Map<string, RouteRow>();
  const failed = new Map<string, number>();
  for (const s of series) {
    const name = s.tags.name;
    if (name === undefined) continue;
    if (s.metric === 'http_req_failed') failed.set(name, s.sum.reduce((a, b) => a + b, 0));
    if (s.metric !== metric || !s.hdr) continue;
    const count = s.count.reduce((a, b) => a + b, 0);
    const sub = snapshots.find((m) => m.type === 'trend' && m.name === metric && m.count > 0 && m.tags && Object.keys(m.tags).length === 1 && m.tags.name === name);
    if (sub) {
      const v = snapshotValues(sub, 0, [99]);
      byName.set(name, { name, count, failed: 0, p50: v.med!, p95: v['p(95)']!, p99: v['p(99)']!, max: v.max! });
      continue;
    }
    const { values, max } = seriesPercentiles(s, [50, 95, 99]);
    const [p50, p95, p99] = values;
    byName.set(name, { name, count, failed: 0, p50: p50!, p95: p95!, p99: p99!, max });
  }
  for (const [name, n] of failed) {
    const r = byName.get(name);
    if (r) r.failed = n;
  }
  return [...byName.values()].sort((a, b) => b.count - a.count);
}

/**
 * Percentiles `ps` of a trend series over the whole run: its buckets' HDR histograms merged, never
 * outside the exact min and max (which it also returns).
 */
export function seriesPercentiles(s: SeriesEntry, ps: readonly number[]): { values: number[]; min: number; max: number } {
  const max = s.max.reduce<number>((a, v) => (typeof v === 'number' && v > a ? v : a), 0);
  const low = s.min.reduce<number>((a, v) => (typeof v === 'number' && v < a ? v : a), Number.POSITIVE_INFINITY);
  const min = Number.isFinite(low) ? low : 0;
  return { values: mergedPercentiles((s.hdr ?? []).filter((h): h is string => Boolean(h)), min, max, ps), min, max };
}

/** Above this share of dropped iterations, the load served was well below the load planned (a warning and a finding). */
export const DROPPED_SHARE_WARNING = 0.1;

/** The share of planned iterations (completed, interrupted or dropped) that were dropped. */
export function droppedShare(it: { completed: number; interrupted: number; dropped: number }): number {
  const planned = it.completed + it.interrupted + it.dropped;
  return planned > 0 ? it.dropped / planned : 0;
}

/** From this share of dropped iterations on, the run served less than half the load planned: not valid for conclusions. */
export const INVALID_DROPPED_SHARE = 0.5;
/** Above this share of a route's requests failing (with at least INVALID_ROUTE_MIN_REQUESTS), the operation it exercises did not happen for most users. */
export const INVALID_ROUTE_FAILED_SHARE = 0.5;
export const INVALID_ROUTE_MIN_REQUESTS = 10;

/**
 * Why a run cannot support conclusions, whatever its thresholds say (empty: it can): most of the
 * offered load dropped (the figures describe a fraction of it), or a route that failed for most of
 * its requests (the operation the scenario exercises mostly did not happen). The runner's own
 * requests (`sim_*` routes) are not judged. Shared by the summary, the reports and the sweep.
 */
export function runValidity(it: { completed: number; interrupted: number; dropped: number }, routes: ReadonlyArray<{ name: string; count: number; failed: number }>): { valid: boolean; reasons: string[] } {
  const reasons: string[] = [];
  const share = droppedShare(it);
  if (share >= INVALID_DROPPED_SHARE) reasons.push(`${formatValue(share, 'ratio')} of the planned iterations were dropped (${num(it.dropped)} of ${num(it.completed + it.interrupted + it.dropped)}), so it served a fraction of the load planned`);
  for (const r of routes) {
    if (r.name.startsWith('sim_') || r.count < INVALID_ROUTE_MIN_REQUESTS || r.failed <= INVALID_ROUTE_FAILED_SHARE * r.count) continue;
    reasons.push(`most ${r.name} requests failed (${num(r.failed)} of ${num(r.count)})`);
  }
  return { valid: reasons.length === 0, reasons };
}

/** The harness figures of a result: each loop with its side, and the worst one (ties: the server's, which is the bottleneck to name). */
export function harnessFigures(h: { eventLoopDelayMs: { p99: number; max: number }; server?: HarnessSection['server']; serverEventLoopDelayMs?: { p99: number; max: number } } | undefined): KeyFigures['harness'] {
  if (!h?.eventLoopDelayMs) return null;
  const separate = h.server === 'thread' || h.server === 'target';
  const loops: NonNullable<KeyFigures['harness']>['loops'] = [{ side: separate ? 'load generator' : 'shared', p99Ms: h.eventLoopDelayMs.p99, maxMs: h.eventLoopDelayMs.max }];
  if (h.serverEventLoopDelayMs) loops.push({ side: 'server', p99Ms: h.serverEventLoopDelayMs.p99, maxMs: h.serverEventLoopDelayMs.max });
  const worst = loops.reduce((a, l) => (l.p99Ms >= a.p99Ms ? l : a));
  return { p99Ms: worst.p99Ms, maxMs: worst.maxMs, saturated: worst.p99Ms >= HARNESS_LOOP_P99_MS, side: worst.side, loops };
}

/** How many times the mean logical shard of its cluster `ops` is (null for a cluster with no queries). */
export function timesMean(c: ClusterFigures, ops: number): number | null {
  if (!(c.meanShardOps > 0)) return null;
  // Scaled from the busiest shard, which is the skew by definition: ops / (top / skew) could read
  // 27.450000000000003 for a skew of 27.45 and print as 27.5 beside a skew printed as 27.4.
  const top = c.hottest[0];
  return top && top.ops > 0 && c.skew ? (ops / top.ops) * c.skew : ops / c.meanShardOps;
}

/** "42.6×": how many times the mean logical shard of its cluster `ops` is, or "–" for an idle cluster. */
export function timesText(c: ClusterFigures, ops: number): string {
  const t = timesMean(c, ops);
  return t === null ? '–' : `${num(t)}×`;
}

function metric(r: ResultDocument, key: string): MetricSnapshot | undefined {
  return r.metrics.metrics.find((m) => m.key === key);
}

function values(r: ResultDocument, key: string, extra: number[] = []): Record<string, number> | null {
  const m = metric(r, key);
  return m ? snapshotValues(m, r.durationMs, extra) : null;
}

/** End of the warm-up on the time axis (s): the first WARM_UP_SHARE of the scenarios' duration. */
function warmUpEndS(r: ResultDocument): number {
  return (WARM_UP_SHARE * r.durationMs) / 1000;
}

/** The point with the largest (or smallest) value, among points at or after x = 0 when there are any. */
export function extreme(points: XY[], pick: 'min' | 'max'): XY | null {
  const inRun = points.filter((p) => p[0] >= 0);
  const pts = inRun.length ? inRun : points;
  let best: XY | null = null;
  for (const p of pts) if (!best || (pick === 'min' ? p[1] < best[1] : p[1] > best[1])) best = p;
  return best;
}

export function keyFigures(r: ResultDocument): KeyFigures {
  const tl = timeline(r);
  // A sub-metric that matched no sample reads 0 in the thresholds: it has no observed value.
  const noSamples = (name: string) => {
    if (!name.includes('{')) return false;
    const m = metric(r, name) as { samples?: number; count?: number } | undefined;
    return !(m?.samples ?? m?.count ?? 0);
  };
  const thresholds: ThresholdRow[] = r.thresholds.map((t) => ({ metric: t.metric, expression: t.expression, ok: t.ok, observed: typeof t.value === 'number' && !noSamples(t.metric) ? t.value : null, abortOnFail: t.abortOnFail }));
  const failed = thresholds.filter((t) => !t.ok);
  const wallS = r.durationMs / 1000;

  const reqs = values(r, 'http_reqs');
  const dur = values(r, 'http_req_duration', [99]);
  const failedRate = values(r, 'http_req_failed');
  const intended = values(r, 'http_req_intended_duration');
  // The intended-time figures mean something only when some request had an intended time.
  const hasIntended = intended !== null && (intended.max ?? 0) > 0;
  const http = reqs && dur
    ? {
        requests: reqs.count ?? 0,
        perS: (reqs.count ?? 0) / Math.max(wallS, 1e-9),
        failedRate: failedRate?.rate ?? 0,
        avg: dur.avg ?? 0,
        p95: dur['p(95)'] ?? 0,
        p99: dur['p(99)'] ?? 0,
        max: dur.max ?? 0,
        intendedP95: hasIntended ? (intended['p(95)'] ?? null) : null,
        intendedMax: hasIntended ? (intended.max ?? null) : null,
      }
    : null;
  const harness = harnessFigures(r.harness);

  const tel = r.telemetry;
  let fanout: KeyFigures['fanout'] = null;
  if (tel && (tel.fanout.completed > 0 || tel.fanout.deliveries > 0 || tel.fanout.failures > 0)) {
    const worst = tel.fanout.lagOverTime.reduce<(typeof tel.fanout.lagOverTime)[number] | null>((a, w) => (!a || w.p99Ms > a.p99Ms ? w : a), null);
    const whole = (v: number | undefined) => (v === undefined ? null : Math.round(v));
    const lagMax = tel.fanout.lagMs?.max ?? null;
    // The windows keep coarser histograms than the run's: a window's p99 may read a little above
    // the run's largest lag (60.7 ms beside 60.5 ms), and no percentile is printed above its max.
    const windowP99 = (v: number) => (lagMax === null ? v : Math.min(v, lagMax));
    fanout = {
      posts: tel.fanout.completed,
      deliveries: tel.fanout.deliveries,
      failures: tel.fanout.failures,
      sizeP50: whole(tel.fanout.sizePerPost?.p50),
      sizeMax: whole(tel.fanout.sizePerPost?.max),
      lagP50: tel.fanout.lagMs?.p50 ?? null,
      lagP99: tel.fanout.lagMs?.p99 ?? null,
      lagMax,
      worstWindow: worst ? { x: telemetryXY([[worst.t, 0]], r, tl, { widthMs: 10_000 })[0]![0], p99Ms: windowP99(worst.p99Ms), count: worst.count } : null,
      queueDepthMax: tel.fanout.queueDepthMax,
    };
  }

  const clusters: ClusterFigures[] = (tel?.hotspots.clusters ?? []).map((c) => {
    // The telemetry gives the skew (busiest shard ÷ mean, to 0.01) and each hot shard's share (to
    // 0.0001), not the mean itself. The mean is taken from the skew: then the busiest shard reads
    // exactly the skew times the mean wherever both are printed, and a share of a few ten-thousandths
    // (thousands of logical shards) would be far coarser.
    const top = c.hottest[0];
    const meanShardOps = top && c.skew ? top.ops / c.skew : top && top.share > 0 ? top.ops / top.share / Math.max(c.logicalShards, 1) : c.servers.reduce((a, s) => a + s.ops, 0) / Math.max(c.logicalShards, 1);
    return {
      cluster: c.cluster,
      logicalShards: c.logicalShards,
      totalOps: meanShardOps * c.logicalShards,
      meanShardOps: c.logicalShards > 0 ? meanShardOps : 0,
      skew: c.skew,
      serverSkew: c.serverSkew,
      hottest: c.hottest,
      servers: c.servers.map((s) => ({ name: s.name, ops: s.ops, logicalShards: s.logicalShards, down: s.down, replicas: s.replicas })),
    };
  });

  let caches: KeyFigures['caches'] = null;
  if (tel && tel.caches.lookups > 0) {
    const ratio = telemetryXY(tel.caches.hitRatioOverTime, r, tl);
    // The step under way when the snapshot was taken holds a few lookups only: not a fair lowest.
    const step = tel.stepMs || tel.bucketMs || 1000;
    const whole = telemetryXY(tel.caches.hitRatioOverTime.filter(([t]) => t + step <= tel.nowMs), r, tl);
    // The first tenth of the run is the cold start (empty caches, the first burst of arrivals): the
    // lowest ratio and the peak load are looked for after it (a fault in it is reported on its own).
    const warm = warmUpEndS(r);
    const afterWarm = (pts: XY[]) => (pts.some((p) => p[0] >= warm) ? pts.filter((p) => p[0] >= warm) : pts);
    const low = extreme(afterWarm(whole.length ? whole : ratio), 'min');
    const reqSeries = findSeries(r, 'http_reqs');
    // A partial bucket (the last one) divides a few requests by a short width: not a peak.
    const full = seriesBuckets(r, tl).map((b) => b.widthS >= (0.9 * r.series.bucketMs) / 1000);
    const load = reqSeries ? afterWarm(bucketValues(reqSeries, seriesBuckets(r, tl), 'count/s').filter((p, i) => p[0] >= 0 && full[i])) : [];
    const peak = extreme(load, 'max');
    const sorted = load.map((p) => p[1]).sort((a, b) => a - b);
    const median = sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! : 0;
    let atPeak: NonNullable<KeyFigures['caches']>['atPeak'] = null;
    // "At peak load" says something only when the load varied: a constant rate has no peak.
    if (peak && ratio.length && median > 0 && peak[1] / median > PEAK_OVER_MEDIAN) {
      const near = ratio.reduce((a, p) => (Math.abs(p[0] - peak[0]) < Math.abs(a[0] - peak[0]) ? p : a));
      atPeak = { x: near[0], ratio: near[1], reqPerS: peak[1] };
    }
    caches = { hitRatio: tel.caches.hitRatio, lowest: low ? { x: low[0], ratio: low[1] } : null, atPeak, lookups: tel.caches.lookups, fills: tel.caches.fills, evictions: tel.caches.evictions, herdEvents: tel.caches.herdEvents, herdFills: tel.caches.herdFills ?? 0, herdFillsPerS: tel.caches.herdFillsPerS ?? [], leases: r.topology?.cache.leases === true, dead: tel.caches.dead, nodes: tel.caches.nodes, gutter: tel.caches.gutter ?? null };
  }

  let replicas: KeyFigures['replicas'] = null;
  if (tel && (tel.replicas.nodes.length > 0 || tel.replicas.feed)) {
    // The telemetry keeps the largest lag of each second per replica, the runner's replica_lag_ms
    // trend samples it too (and may catch a higher moment), and the lag at the end may exceed both:
    // the peak is the largest of the three.
    const nodes = tel.replicas.nodes.map((n) => ({ ...n, maxLagMs: Math.max(n.maxLagMs, n.lagMs) })).sort((a, b) => naturalCompare(a.name, b.name));
    const worst = nodes.reduce<{ name: string; maxLagMs: number } | null>((a, n) => (!a || n.maxLagMs > a.maxLagMs ? { name: n.name, maxLagMs: n.maxLagMs } : a), null);
    const trendMax = values(r, 'replica_lag_ms')?.max ?? 0;
    replicas = { maxLagMs: Math.max(0, trendMax, ...nodes.map((n) => n.maxLagMs)), worst, staleReads: tel.replicas.staleReads, writesLost: tel.replicas.writesLost, nodes };
  }

  const routes = routeStats(r.series.series, 'http_req_duration', r.metrics.metrics);
  return {
    passed: failed.length === 0 && !r.aborted,
    thresholds,
    failed,
    aborted: r.aborted,
    wallS,
    simulated: r.simulation !== undefined,
    scenarioS: wallS * r.speed,
    http,
    iterations: { completed: r.iterations.completed, interrupted: r.iterations.interrupted, dropped: r.iterations.dropped, droppedShare: droppedShare(r.iterations), errors: r.iterations.errors ?? 0, errorMessages: r.iterations.errorMessages ?? [] },
    harness,
    validity: runValidity(r.iterations, routes),
    routes,
    fanout,
    clusters,
    caches,
    replicas,
  };
}

/** A threshold's observed value in its metric's unit. */
export function observedText(t: ThresholdRow): string {
  if (t.observed === null) return 'no samples';
  const rate = /^(rate)/.test(t.expression) || t.metric.startsWith('http_req_failed') || t.metric.startsWith('checks') || t.metric.startsWith('cache_hit_rate');
  if (rate && t.observed <= 1 && !/^(count|value)/.test(t.expression)) return formatValue(t.observed, 'ratio');
  if (/_duration|_ms\b|_ms\{|_ms$/.test(t.metric) && !/^count/.test(t.expression)) return formatValue(t.observed, 'ms');
  return num(t.observed);
}

/** "3.04 s of wall time (20 min at --speed 400)". */
export function durationText(k: KeyFigures, speed: number): string {
  if (k.simulated) return `${formatSeconds(k.wallS)} of virtual time (simulated)`;
  const wall = `${formatSeconds(k.wallS)} of wall time`;
  return speed === 1 ? wall : `${wall}, ${formatSeconds(k.scenarioS)} of scenario time at --speed ${num(speed)}`;
}
