// The figures a reader looks for first, computed once from a result document for both reports, and
// the three findings that matter most in this run as short sentences with numbers: failed
// thresholds first, then whatever the run shows most strongly (dropped load, a hot shard, the cache
// dip, fan-out lag, replica lag and stale reads, the slowest route).

import { snapshotValues, type MetricSnapshot } from '../scenarios/runner/k6-metrics.ts';
import { routeStats } from '../scenarios/runner/summary-text.ts';
import type { HotShard } from '../sim/telemetry.ts';
import type { ResultDocument } from './load-result.ts';
import { bucketValues, findSeries, seriesBuckets, telemetryX, telemetryXY, thresholdLines, thresholdsOn, timeline, type XY } from './plots/data.ts';
import { formatSeconds, formatValue, num } from './plots/format.ts';

export type RouteRow = ReturnType<typeof routeStats>[number];

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
  scenarioS: number;
  http: { requests: number; perS: number; failedRate: number; avg: number; p95: number; p99: number; max: number; intendedP95: number | null } | null;
  /** errors: iterations that threw (0 in results written before they were recorded); errorMessages: the first distinct ones. */
  iterations: { completed: number; interrupted: number; dropped: number; droppedShare: number; errors: number; errorMessages: Array<{ message: string; scenario: string; count: number }> };
  routes: RouteRow[];
  fanout: {
    posts: number;
    deliveries: number;
    failures: number;
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
    dead: number;
    nodes: NonNullable<ResultDocument['telemetry']>['caches']['nodes'];
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

/** Names in natural order: db-2 before db-10. */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

function metric(r: ResultDocument, key: string): MetricSnapshot | undefined {
  return r.metrics.metrics.find((m) => m.key === key);
}

function values(r: ResultDocument, key: string, extra: number[] = []): Record<string, number> | null {
  const m = metric(r, key);
  return m ? snapshotValues(m, r.durationMs, extra) : null;
}

/** Event-loop delay p99 (ms) from which a run's harness counts as saturated (a finding). */
export const HARNESS_LOOP_P99_MS = 100;

/** The share of the run treated as warm-up (cold caches, the start-up burst) by the cache findings. */
export const WARM_UP_SHARE = 0.1;
/** The request rate must peak this far above its median before a finding mentions "peak load". */
export const PEAK_OVER_MEDIAN = 1.5;
/** A hot shard is a finding only with this many queries on it and in its cluster: a few queries prove nothing. */
export const HOT_SHARD_MIN_OPS = 100;
export const HOT_CLUSTER_MIN_OPS = 1000;

/** End of the warm-up on the time axis (s): the first WARM_UP_SHARE of the scenarios' duration. */
function warmUpEndS(r: ResultDocument): number {
  return (WARM_UP_SHARE * r.durationMs) / 1000;
}

/** The point with the largest (or smallest) value, among points at or after x = 0 when there are any. */
function extreme(points: XY[], pick: 'min' | 'max'): XY | null {
  const inRun = points.filter((p) => p[0] >= 0);
  const pts = inRun.length ? inRun : points;
  let best: XY | null = null;
  for (const p of pts) if (!best || (pick === 'min' ? p[1] < best[1] : p[1] > best[1])) best = p;
  return best;
}

/**
 * Per-route percentiles from the merged HDR histograms, clamped to the exact min and max the series
 * kept: HDR buckets round up, so a percentile could read above the slowest request (p50 3,228 ms
 * with max 3,211 ms).
 */
function clampedRoutes(r: ResultDocument): RouteRow[] {
  return routeStats(r.series.series).map((x) => {
    const s = findSeries(r, 'http_req_duration', { name: x.name });
    const mins = (s?.min ?? []).filter((v): v is number => typeof v === 'number');
    const lo = mins.length ? Math.min(...mins) : 0;
    const c = (v: number) => Math.min(Math.max(v, lo), x.max);
    return { ...x, p50: c(x.p50), p95: c(x.p95), p99: c(x.p99) };
  });
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
  const http = reqs && dur ? { requests: reqs.count ?? 0, perS: (reqs.count ?? 0) / Math.max(wallS, 1e-9), failedRate: failedRate?.rate ?? 0, avg: dur.avg ?? 0, p95: dur['p(95)'] ?? 0, p99: dur['p(99)'] ?? 0, max: dur.max ?? 0, intendedP95: intended ? (intended['p(95)'] ?? null) : null } : null;
  const planned = r.iterations.completed + r.iterations.interrupted + r.iterations.dropped;

  const tel = r.telemetry;
  let fanout: KeyFigures['fanout'] = null;
  if (tel && (tel.fanout.completed > 0 || tel.fanout.deliveries > 0 || tel.fanout.failures > 0)) {
    const worst = tel.fanout.lagOverTime.reduce<(typeof tel.fanout.lagOverTime)[number] | null>((a, w) => (!a || w.p99Ms > a.p99Ms ? w : a), null);
    fanout = {
      posts: tel.fanout.completed,
      deliveries: tel.fanout.deliveries,
      failures: tel.fanout.failures,
      sizeP50: tel.fanout.sizePerPost?.p50 ?? null,
      sizeMax: tel.fanout.sizePerPost?.max ?? null,
      lagP50: tel.fanout.lagMs?.p50 ?? null,
      lagP99: tel.fanout.lagMs?.p99 ?? null,
      lagMax: tel.fanout.lagMs?.max ?? null,
      worstWindow: worst ? { x: telemetryXY([[worst.t, 0]], r, tl, { widthMs: 10_000 })[0]![0], p99Ms: worst.p99Ms, count: worst.count } : null,
      queueDepthMax: tel.fanout.queueDepthMax,
    };
  }

  const clusters: ClusterFigures[] = (tel?.hotspots.clusters ?? []).map((c) => {
    const totalOps = c.hottest[0] && c.hottest[0].share > 0 ? c.hottest[0].ops / c.hottest[0].share : c.servers.reduce((a, s) => a + s.ops, 0);
    return {
      cluster: c.cluster,
      logicalShards: c.logicalShards,
      totalOps,
      meanShardOps: c.logicalShards > 0 ? totalOps / c.logicalShards : 0,
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
    caches = { hitRatio: tel.caches.hitRatio, lowest: low ? { x: low[0], ratio: low[1] } : null, atPeak, lookups: tel.caches.lookups, fills: tel.caches.fills, evictions: tel.caches.evictions, herdEvents: tel.caches.herdEvents, dead: tel.caches.dead, nodes: tel.caches.nodes };
  }

  let replicas: KeyFigures['replicas'] = null;
  if (tel && (tel.replicas.nodes.length > 0 || tel.replicas.feed)) {
    // The telemetry keeps the largest lag of each second per replica, the runner's replica_lag_ms
    // trend samples it too (and may catch a higher moment), and the lag at the end may exceed both:
    // the peak is the largest of the three, as the end-of-run summary reports it.
    const nodes = tel.replicas.nodes.map((n) => ({ ...n, maxLagMs: Math.max(n.maxLagMs, n.lagMs) })).sort((a, b) => naturalCompare(a.name, b.name));
    const worst = nodes.reduce<{ name: string; maxLagMs: number } | null>((a, n) => (!a || n.maxLagMs > a.maxLagMs ? { name: n.name, maxLagMs: n.maxLagMs } : a), null);
    const trendMax = values(r, 'replica_lag_ms')?.max ?? 0;
    replicas = { maxLagMs: Math.max(0, trendMax, ...nodes.map((n) => n.maxLagMs)), worst, staleReads: tel.replicas.staleReads, writesLost: tel.replicas.writesLost, nodes };
  }

  return {
    passed: failed.length === 0 && !r.aborted,
    thresholds,
    failed,
    aborted: r.aborted,
    wallS,
    scenarioS: wallS * r.speed,
    http,
    iterations: { completed: r.iterations.completed, interrupted: r.iterations.interrupted, dropped: r.iterations.dropped, droppedShare: planned > 0 ? r.iterations.dropped / planned : 0, errors: r.iterations.errors ?? 0, errorMessages: r.iterations.errorMessages ?? [] },
    routes: clampedRoutes(r),
    fanout,
    clusters,
    caches,
    replicas,
  };
}

/** An error message on one line, a JSON error body shown by its error_message ("… failed: 400 no cache node …"). */
function errorMessageText(message: string): string {
  const body = /\{.*"error_message"\s*:\s*("(?:[^"\\]|\\.)*").*\}/.exec(message);
  let text = message;
  if (body) {
    try {
      text = message.slice(0, body.index) + String(JSON.parse(body[1]!)) + message.slice(body.index + body[0].length);
    } catch {
      // Not JSON after all: the message as it is.
    }
  }
  return text.replace(/\s+/g, ' ').trim();
}

/** Iterations that threw, with the first distinct messages: "2 iterations threw (kill: … failed: 400 …)". */
export function iterationErrorsText(k: KeyFigures, maxMessages = 2, maxChars = 100): string {
  const n = k.iterations.errors;
  const one = (m: { message: string; scenario: string; count: number }) => {
    const msg = errorMessageText(m.message);
    return `${m.scenario}: ${msg.length > maxChars ? msg.slice(0, maxChars - 1) + '…' : msg}${m.count > 1 && k.iterations.errorMessages.length > 1 ? ` ×${num(m.count)}` : ''}`;
  };
  const shown = k.iterations.errorMessages.slice(0, maxMessages).map(one);
  const more = k.iterations.errorMessages.length > maxMessages ? '; …' : '';
  return `${num(n)} iteration${n === 1 ? '' : 's'} threw${shown.length ? ` (${shown.join('; ')}${more})` : ''}`;
}

/** A threshold's observed value in its metric's unit. */
export function observedText(t: ThresholdRow): string {
  if (t.observed === null) return 'no samples';
  const rate = /^(rate)/.test(t.expression) || t.metric.startsWith('http_req_failed') || t.metric.startsWith('checks') || t.metric.startsWith('cache_hit_rate');
  if (rate && t.observed <= 1 && !/^(count|value)/.test(t.expression)) return formatValue(t.observed, 'ratio');
  if (/_duration|_ms\b|_ms\{|_ms$/.test(t.metric) && !/^count/.test(t.expression)) return formatValue(t.observed, 'ms');
  return num(t.observed);
}

/** " on db-0-r1", or, when the trend caught a higher lag than any replica's per-second peak, that replica's own peak. */
export function worstText(rp: NonNullable<KeyFigures['replicas']>): string {
  if (!rp.worst || rp.worst.maxLagMs <= 0) return '';
  return rp.worst.maxLagMs >= rp.maxLagMs ? ` on ${rp.worst.name}` : ` (replica_lag_ms; the largest per-second peak of one replica: ${rp.worst.name}, ${formatValue(rp.worst.maxLagMs, 'ms')})`;
}

interface Candidate {
  score: number;
  text: string;
}

function userPart(h: HotShard): string {
  const u = h.users[0];
  if (!u || u.share < 0.2) return '';
  return `; ${num(100 * u.share, 2)}% of its rows touched belong to @${u.username ?? u.id}`;
}

/** The three findings that matter most in this run, as sentences with numbers. */
export function findings(r: ResultDocument, k: KeyFigures = keyFigures(r)): string[] {
  const out: Candidate[] = [];
  const eventKinds = new Set((r.telemetry?.events ?? []).map((e) => e.kind));
  const events = r.telemetry?.events ?? [];

  if (k.failed.length === 1) {
    const t = k.failed[0]!;
    out.push({ score: 1000, text: `Threshold failed: ${t.metric} ${t.expression} (observed ${observedText(t)}).` });
  } else if (k.failed.length > 1) {
    const list = k.failed.slice(0, 4).map((t) => `${t.metric} ${t.expression} (observed ${observedText(t)})`);
    out.push({ score: 1000, text: `${k.failed.length} of ${k.thresholds.length} thresholds failed: ${list.join('; ')}${k.failed.length > 4 ? '; …' : ''}.` });
  }
  // An iteration that threw skipped the rest of what it was to do (a fault not injected, a write
  // not made): whatever the thresholds say, the run is not the one the scenario describes.
  if (k.iterations.errors > 0) out.push({ score: 995, text: `${iterationErrorsText(k)} — the scenario did not run as written.` });
  if (r.aborted) out.push({ score: 990, text: `The run was aborted: ${r.aborted}.` });

  // In process, the server and the load generator share one event loop: when it ran late, every
  // latency includes that queueing, whatever the simulated topology did.
  const loop = r.harness?.eventLoopDelayMs;
  if (loop && loop.p99 >= HARNESS_LOOP_P99_MS) {
    out.push({
      score: 950,
      text: `The harness was saturated: its event loop (shared in process by the server and the load generator) ran up to ${num(loop.p99)} ms late (p99; max ${num(loop.max)} ms), so latencies include queueing in this machine, not only in the simulated topology — lower --speed or --scale, or run on a quieter machine.`,
    });
  }

  if (k.iterations.droppedShare > 0.1) {
    out.push({
      score: 900,
      text: `${num(100 * k.iterations.droppedShare, 2)}% of planned iterations were dropped (${num(k.iterations.dropped)} of ${num(k.iterations.dropped + k.iterations.completed + k.iterations.interrupted)}): the load served was well below the load planned, so read the figures as the load actually served.`,
    });
  }

  for (const c of k.clusters) {
    const h = c.hottest[0];
    if (!h || c.meanShardOps <= 0 || h.ops < HOT_SHARD_MIN_OPS || c.totalOps < HOT_CLUSTER_MIN_OPS) continue;
    const times = h.ops / c.meanShardOps;
    const moved = eventKinds.has('shard_split') || eventKinds.has('shard_move');
    // A shard at 50× the mean or more is the story of the run (range sharding under a surge).
    const score = moved ? 700 + Math.min(times, 200) : times >= 50 ? 700 : 400 + times;
    out.push({ score, text: `Hottest logical shard: ${h.shard} on ${h.server}${k.clusters.length > 1 ? ` (${c.cluster})` : ''} with ${num(h.ops)} queries, ${num(times)}× the mean shard (${num(c.meanShardOps)})${userPart(h)}.${c.servers.length > 1 && c.serverSkew !== null ? ` Physical server skew ${num(c.serverSkew)} (max/mean).` : ''}` });
  }

  if (k.caches && k.caches.lowest) {
    const c = k.caches;
    const tl = timeline(r);
    const peak = c.atPeak ? `${formatValue(c.atPeak.ratio, 'ratio')} at peak load (${num(c.atPeak.reqPerS)} req/s at ${formatSeconds(c.atPeak.x)})` : '';
    const overall = `${formatValue(c.hitRatio ?? 0, 'ratio')} over the run, ${num(c.fills)} misses reached a shard`;
    // With a cache node killed, the dip after it is the point: before, lowest after, and the end.
    const kill = events.find((e) => e.kind === 'cache_kill');
    const ratio = telemetryXY(r.telemetry!.caches.hitRatioOverTime, r, tl);
    if (kill) {
      const kx = telemetryX(kill.t, tl);
      const before = ratio.filter((p) => p[0] < kx).pop();
      const after = extreme(ratio.filter((p) => p[0] >= kx), 'min');
      const dip = after ? `lowest after it ${formatValue(after[1], 'ratio')} (at ${formatSeconds(after[0])})` : 'no lookups after it';
      // The node itself: it comes back empty, so its own ratio shows the refill.
      const node = c.nodes.find((n) => n.name === kill.detail.node);
      const own = node ? extreme(telemetryXY(node.hitRatioOverTime, r, tl).filter((p) => p[0] >= kx), 'min') : null;
      const ownText = node && own ? `, ${node.name}'s own lowest ${formatValue(own[1], 'ratio')} (at ${formatSeconds(own[0])})` : '';
      out.push({ score: 800, text: `${kill.label} at ${formatSeconds(kx)}: cache hit ratio ${before ? `${formatValue(before[1], 'ratio')} just before, ` : ''}${dip}${ownText}${peak ? `; ${peak}` : ''}; ${overall}.` });
    } else {
      const low = c.lowest!;
      out.push({ score: low.ratio < 0.5 ? 680 : 380, text: `Cache hit ratio was lowest at ${formatValue(low.ratio, 'ratio')} (${formatSeconds(low.x)})${peak ? ` and ${peak}` : ''}; ${overall}.` });
    }
  }

  if (k.fanout) {
    const f = k.fanout;
    const slow = (f.lagP99 ?? 0) > 1000 ? 300 : 0;
    const w = f.worstWindow ? `, worst 10-s window p99 ${formatValue(f.worstWindow.p99Ms, 'ms')} at ${formatSeconds(f.worstWindow.x)}` : '';
    out.push({ score: 360 + slow, text: `Fan-out delivered ${num(f.deliveries)} feed entries for ${num(f.posts)} posts (up to ${f.sizeMax === null ? '–' : num(f.sizeMax)} followers each): delivery lag p50 ${f.lagP50 === null ? '–' : formatValue(f.lagP50, 'ms')}, p99 ${f.lagP99 === null ? '–' : formatValue(f.lagP99, 'ms')}${w}; queue depth peaked at ${num(f.queueDepthMax)}.` });
  }

  if (k.replicas && (k.replicas.staleReads.total > 0 || k.replicas.writesLost > 0 || k.replicas.maxLagMs > 0)) {
    const rp = k.replicas;
    const failover = eventKinds.has('db_fail') || eventKinds.has('replica_lag');
    const score = (failover ? 750 : 300) + (rp.writesLost > 0 ? 200 : 0);
    const lost = rp.writesLost > 0 ? `; ${num(rp.writesLost)} writes lost on promotion` : '';
    const fail = events.find((e) => e.kind === 'db_fail');
    const failText = fail ? `${fail.label} at ${formatSeconds(telemetryX(fail.t, timeline(r)))}. ` : '';
    out.push({ score, text: `${failText}Replica lag peaked at ${formatValue(rp.maxLagMs, 'ms')}${worstText(rp)}; ${num(rp.staleReads.total)} stale reads were served (${num(rp.staleReads.db)} database, ${num(rp.staleReads.feed)} feed)${lost}.` });
  }

  // The slowest route is scored by how far its tail is above its median and above any latency
  // threshold on it: a route with p99 ≥ 1 s or ≥ 20× its p50 ranks near the top.
  const lines = thresholdLines(r);
  const routeScore = (x: RouteRow): number => {
    const spread = x.p99 / Math.max(x.p50, 0.001);
    let score = x.p99 >= 1000 || spread >= 20 ? 850 : 200 + 10 * spread;
    const limits = thresholdsOn(lines, 'http_req_duration', { name: x.name }).filter((t) => t.aggregation.startsWith('p(') || t.aggregation === 'max' || t.aggregation === 'avg' || t.aggregation === 'med');
    if (limits.some((t) => t.value > 0 && x.p99 > t.value)) score += 100;
    return score;
  };
  const routes = k.routes.filter((x) => !x.name.startsWith('sim_') && x.count >= 10).map((x) => ({ x, score: routeScore(x) }));
  const slowestRoute = routes.reduce<{ x: RouteRow; score: number } | null>((a, c) => (!a || c.score > a.score || (c.score === a.score && c.x.p99 > a.x.p99) ? c : a), null);
  const slowest = slowestRoute?.x;
  if (slowest) out.push({ score: slowestRoute.score, text: `Slowest route: ${slowest.name}, p99 ${formatValue(slowest.p99, 'ms')} over ${num(slowest.count)} requests (p50 ${formatValue(slowest.p50, 'ms')}${slowest.failed ? `, ${num(slowest.failed)} failed` : ''}).` });

  if (out.length === 0 && k.http) out.push({ score: 0, text: `${num(k.http.requests)} requests, ${formatValue(k.http.failedRate, 'ratio')} failed, p95 ${formatValue(k.http.p95, 'ms')}.` });
  return out
    .sort((a, b) => b.score - a.score)
    .slice(0, 3)
    .map((c) => c.text);
}
