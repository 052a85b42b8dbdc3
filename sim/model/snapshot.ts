// What a simulation leaves for the reports: the same telemetry snapshot and topology description a
// live run reads from /_sim/telemetry and /_sim/topology, built from the model's per-step tallies,
// plus what only a simulation has — the resources in the order they saturated, fan-out delivery
// lag per follower, and the model's parameters.

import type { Point, Summary, TelemetrySnapshot, HotShard, ClusterHotspots } from '../observability/telemetry.ts';
import { WORK_ROW_FANOUT, WORK_ROW_FANOUT_CHUNK, WORK_ROW_NOTIFY, WORK_ROW_RESIZE, type VirtualModel } from './model.ts';
import { LIVE_ROUTE_OF, OPS } from './plan.ts';
import { WORK_FIELDS } from '../engine/work-counts.ts';
import type { WorkSnapshot, WorkTotals } from '../observability/work-meter.ts';

/** Virtual time 0 as Unix ms: 00:00 UTC on 3 April 2012, the day Instagram for Android launched. */
export const SIM_EPOCH_MS = Date.UTC(2012, 3, 3);

/** A resource counts as saturated in a step at this share of its capacity busy, or when it refused work. */
export const SATURATED_USE = 0.95;

export interface SaturationRecord {
  resource: string;
  /** ms since the start when it first saturated. */
  atMs: number;
  /** Its busy share in that step (0–1) and the work it refused then (count). */
  use: number;
  refused: number;
  /** Requests per second the service was answering in that step. */
  reqPerS: number;
}

export interface ResourcePeak {
  resource: string;
  servers: number;
  peakUse: number;
  peakAtMs: number;
  meanUse: number;
  refused: number;
  maxWaitMs: number;
  meanWaitMs: number;
}

/** Quantiles of weighted samples (value, weight), exact over the samples. */
export function weightedQuantiles(values: readonly number[], weights: readonly number[], qs: readonly number[]): number[] {
  const idx = values.map((_, i) => i).sort((a, b) => values[a]! - values[b]!);
  const total = weights.reduce((a, w) => a + w, 0);
  return qs.map((q) => {
    if (total === 0) return 0;
    let acc = 0;
    const target = q * total;
    for (const i of idx) {
      acc += weights[i]!;
      if (acc >= target) return values[i]!;
    }
    return values[idx[idx.length - 1]!]!;
  });
}

function summary(values: number[]): Summary | null {
  if (values.length === 0) return null;
  const s = Float64Array.from(values).sort();
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  return { count: s.length, p50: at(0.5), p99: at(0.99), max: s[s.length - 1]! };
}

export function saturation(m: VirtualModel): { first: SaturationRecord[]; peaks: ResourcePeak[] } {
  const S = m.series;
  const first: SaturationRecord[] = [];
  const peaks: ResourcePeak[] = [];
  const resources = new Map<string, { servers: number; maxWaitMs: number; waitSumMs: number; arrivals: number }>();
  const add = (name: string, r: { servers: number; maxWaitMs: number; waitSumMs: number; arrivals: number }) => resources.set(name, r);
  add('app', m.topo.app);
  add('workers', m.topo.workers);
  add('feed-primary', m.topo.redis);
  if (m.topo.redisReplica) add('feed-replica', m.topo.redisReplica);
  for (const n of m.topo.caches) add(n.name, n.server);
  for (const s of m.topo.servers) {
    add(s.name, s.primary);
    if (s.replica) add(s.replicaName!, s.replica);
  }
  for (const [name, use] of S.use) {
    const refused = S.refusals.get(name) ?? [];
    let peak = 0;
    let peakAt = 0;
    let sum = 0;
    let firstAt = -1;
    for (let i = 0; i < use.length; i++) {
      const u = use[i]!;
      sum += u;
      if (u > peak) {
        peak = u;
        peakAt = S.t[i]! - m.stepMs;
      }
      if (firstAt < 0 && (u >= SATURATED_USE || (refused[i] ?? 0) > 0)) {
        firstAt = i;
        first.push({ resource: name, atMs: Math.max(0, S.t[i]! - m.stepMs), use: u, refused: refused[i] ?? 0, reqPerS: (S.requests[i] ?? 0) / (m.stepMs / 1000) });
      }
    }
    const r = resources.get(name);
    peaks.push({
      resource: name,
      servers: r?.servers ?? 1,
      peakUse: peak,
      peakAtMs: Math.max(0, peakAt),
      meanUse: use.length ? sum / use.length : 0,
      refused: refused.reduce((a, b) => a + b, 0),
      maxWaitMs: r?.maxWaitMs ?? 0,
      meanWaitMs: r && r.arrivals ? r.waitSumMs / r.arrivals : 0,
    });
  }
  first.sort((a, b) => a.atMs - b.atMs || b.use - a.use);
  peaks.sort((a, b) => b.peakUse - a.peakUse);
  return { first, peaks };
}

export function telemetrySnapshot(m: VirtualModel): TelemetrySnapshot {
  const S = m.series;
  const step = m.stepMs;
  const perS = step / 1000;
  const at = (i: number) => Math.max(0, S.t[i]! - step);
  const pts = (vals: readonly number[], scale = 1): Point[] => vals.map((v, i) => [at(i), v * scale]);
  const cfg = m.opts.config;
  const f = m.fanout;

  // Caches
  const nodes = m.topo.caches.map((n, k) => {
    const lookups = n.hits + n.misses + n.dead;
    const over: Point[] = [];
    S.cacheLookups.forEach((row, i) => {
      const l = row[k] ?? 0;
      if (l > 0) over.push([at(i), (S.cacheHits[i]![k] ?? 0) / l]);
    });
    return { name: n.name, alive: n.alive, onRing: n.onRing, gutter: n.gutter, items: n.lru.items, hitRatio: lookups ? n.hits / lookups : null, hits: n.hits, misses: n.misses, dead: n.dead, toGutter: n.toGutter, evictions: n.evictions, fills: n.fills, herdEvents: n.herd, herdFills: n.herdFills, hitRatioOverTime: over };
  });
  const gutterNodes = nodes.filter((n) => n.gutter);
  const hits = nodes.reduce((a, n) => a + n.hits, 0);
  const misses = nodes.reduce((a, n) => a + n.misses, 0);
  const dead = nodes.reduce((a, n) => a + n.dead, 0);
  const hitOver: Point[] = [];
  S.cacheLookups.forEach((row, i) => {
    const l = row.reduce((a, b) => a + b, 0);
    if (l > 0) hitOver.push([at(i), S.cacheHits[i]!.reduce((a, b) => a + b, 0) / l]);
  });
  const evictionSteps = S.evictions.map((v, i) => (i === 0 ? v : v - S.evictions[i - 1]!));

  // Hotspots
  const L = m.shardOps.length;
  let totalOps = 0;
  let maxShard = 0;
  for (let s = 0; s < L; s++) {
    totalOps += m.shardOps[s]!;
    if (m.shardOps[s]! > maxShard) maxShard = m.shardOps[s]!;
  }
  const meanShard = totalOps / L;
  const servers = m.topo.servers;
  const serverOpsTotal = servers.map((s) => s.ops);
  const holding = servers.filter((s) => m.topo.shardMap.shardsOn(s.index).length > 0);
  const meanServer = holding.length ? holding.reduce((a, s) => a + s.ops, 0) / holding.length : 0;
  const serverSkew = meanServer > 0 ? Math.max(...holding.map((s) => s.ops)) / meanServer : null;
  const order = Array.from({ length: L }, (_, i) => i).sort((a, b) => m.shardOps[b]! - m.shardOps[a]! || a - b);
  const hottest: HotShard[] = order.slice(0, 5).filter((s) => m.shardOps[s]! > 0).map((s) => {
    const ops = m.shardOps[s]!;
    const kinds = m.shardKinds(s);
    const users = m.shardUsers(s).map((u) => ({ id: String(u.id), username: userName(m, u.id), count: u.count, share: u.count / ops, via: kinds.slice(0, 2).map((k) => k.kind) }));
    return { shard: s, server: servers[m.topo.shardMap.physicalOf(s)]!.name, ops, share: totalOps ? ops / totalOps : 0, kinds, users, actors: [] };
  });
  const stepTotals = S.serverOps.map((row) => row.reduce((a, b) => a + b, 0));
  const cluster: ClusterHotspots = {
    cluster: 'main',
    logicalShards: L,
    servers: servers.map((s, k) => ({ name: s.name, index: s.index, down: s.down, logicalShards: m.topo.shardMap.shardsOn(s.index).length, replicas: s.replica ? 1 : 0, ops: s.ops, opsPerS: S.serverOps.map((row, i) => [at(i), (row[k] ?? 0) / perS] as Point) })),
    skew: meanShard > 0 ? maxShard / meanShard : null,
    serverSkew,
    opsPerS: pts(stepTotals, 1 / perS),
    skewOverTime: S.topShards.map((top, i) => [at(i), stepTotals[i]! > 0 && top[0] ? top[0][1] / (stepTotals[i]! / L) : 0] as Point),
    serverSkewOverTime: S.serverOps.map((row, i) => {
      const active = row.filter((_, k) => k < servers.length);
      const mean = active.reduce((a, b) => a + b, 0) / Math.max(1, active.length);
      return [at(i), mean > 0 ? Math.max(...active) / mean : 0] as Point;
    }),
    topShardsOverTime: S.topShards.map((shards, i) => ({ t: at(i), shards })),
    heat: { bandWidth: Math.ceil(L / (S.shardBands[0]?.length || 1)), bands: S.shardBands[0]?.length ?? 0, rows: S.shardBands.map((ops, i) => ({ t: at(i), ops })) },
    hottest,
  };
  void serverOpsTotal;

  // Replicas
  const lagNodes = servers
    .map((s, k) => ({ s, k }))
    .filter(({ s }) => s.replicaName !== null || s.maxLagMs > 0)
    .map(({ s, k }) => ({
      name: s.replicaName ?? `${s.name}-r1`,
      server: s.name,
      lagMs: S.replicaLag[S.replicaLag.length - 1]?.[k] ?? 0,
      configuredLagMs: m.topo.replicaDelayMs,
      maxLagMs: s.maxLagMs,
      backlog: s.owed.after(m.sim.now),
      staleReads: s.staleReads,
      lagOverTime: S.replicaLag.map((row, i) => [at(i), row[k] ?? 0] as Point),
    }));
  const maxLag = Math.max(0, ...servers.map((s) => s.maxLagMs));

  // Utilisation
  const peakOf = (vals: number[]) => vals.reduce((a, b) => Math.max(a, b), 0);
  const sat = saturation(m);
  const peakUse = new Map(sat.peaks.map((p) => [p.resource, p]));
  const utilServers = servers.map((s, k) => {
    const inUse = peakOf(S.poolInUse.map((r) => r[k] ?? 0));
    const waiting = peakOf(S.poolWaiting.map((r) => r[k] ?? 0));
    let peakOps = 0;
    let peakOpsAt: number | null = null;
    S.serverOps.forEach((r, i) => {
      if ((r[k] ?? 0) / perS > peakOps) {
        peakOps = (r[k] ?? 0) / perS;
        peakOpsAt = at(i);
      }
    });
    const pool = cfg.database.poolSize;
    return {
      cluster: 'main',
      name: s.name,
      poolSize: pool,
      poolPeakInUse: Math.max(inUse, Math.round((peakUse.get(s.name)?.peakUse ?? 0) * pool)),
      poolUse: Math.max(inUse / pool, peakUse.get(s.name)?.peakUse ?? 0),
      poolPeakWaiting: Math.max(waiting, s.primary.maxQueue),
      poolQueueUse: Math.max(waiting, s.primary.maxQueue) / cfg.database.poolQueueLimit,
      peakOpsPerS: peakOps,
      peakOpsAtMs: peakOpsAt,
      replicationBacklogPeak: 0,
      replicationLogUse: 0,
      nodes: [
        { name: s.name, role: 'primary' as const, peakInUse: inUse, peakWaiting: s.primary.maxQueue, useOverTime: S.poolInUse.map((r, i) => [at(i), (r[k] ?? 0) / pool] as Point) },
      ],
    };
  });
  const utilCaches = m.topo.caches.map((n, k) => ({
    name: n.name,
    capacityBytes: n.capacityBytes,
    peakBytes: n.peakBytes,
    use: n.peakBytes / n.capacityBytes,
    evictions: n.evictions,
    useOverTime: S.cacheBytes.map((r, i) => [at(i), (r[k] ?? 0) / n.capacityBytes] as Point),
  }));
  const peakRunning = peakOf(S.running);
  const peakDepth = Math.max(peakOf(S.queueDepth), m.topo.workers.maxQueue);
  let redisPeak = 0;
  let redisPeakAt: number | null = null;
  S.redisOps.forEach((v, i) => {
    if (v / perS > redisPeak) {
      redisPeak = v / perS;
      redisPeakAt = at(i);
    }
  });
  const busiestServer = [...utilServers].sort((a, b) => b.poolUse - a.poolUse || b.peakOpsPerS - a.peakOpsPerS)[0]?.name ?? null;
  const busiestCache = [...utilCaches].sort((a, b) => b.use - a.use)[0]?.name ?? null;

  const lagWindows = [...f.lagWindows.entries()].sort((a, b) => a[0] - b[0]).map(([w, lags]) => {
    const s = summary(lags)!;
    return { t: w * 10_000, count: s.count, p50Ms: s.p50, p99Ms: s.p99, maxMs: s.max };
  });

  return {
    startMs: SIM_EPOCH_MS,
    nowMs: m.sim.now,
    sinceMs: 0,
    bucketMs: step,
    stepMs: step,
    fanout: {
      posts: { push: f.pushed, [cfg.feed.fanout === 'hybrid' ? 'hybrid-pulled' : 'pull']: f.pulled },
      completed: f.completed,
      failures: f.failures,
      deliveries: f.deliveries,
      deliveriesPerS: pts(S.deliveries, 1 / perS),
      sizePerPost: summary(f.sizes),
      lagMs: summary(f.lags),
      lagOverTime: lagWindows,
      queueDepth: pts(S.queueDepth),
      queueDepthMax: peakDepth,
      queueDepthNow: S.queueDepth[S.queueDepth.length - 1] ?? 0,
    },
    hotspots: { shardSkew: cluster.skew, serverSkew, clusters: [cluster] },
    caches: {
      hitRatio: hits + misses + dead ? hits / (hits + misses + dead) : null,
      hitRatioOverTime: hitOver,
      lookups: hits + misses + dead,
      hits,
      misses,
      dead,
      evictions: nodes.reduce((a, n) => a + n.evictions, 0),
      fills: m.fills,
      fillsPerS: pts(S.fills, 1 / perS),
      herdEvents: m.herdEvents,
      herdPerS: pts(S.herd, 1 / perS),
      herdFills: m.herdFills,
      herdFillsPerS: pts(S.herdFills, 1 / perS),
      evictionsPerS: pts(evictionSteps, 1 / perS),
      nodes,
      ...(cfg.cache.gutter > 0 ? { gutter: { nodes: cfg.cache.gutter, ttlMs: cfg.cache.gutterTtlMs, lookups: gutterNodes.reduce((a, n) => a + n.hits + n.misses + n.dead, 0), hits: gutterNodes.reduce((a, n) => a + n.hits, 0), fills: gutterNodes.reduce((a, n) => a + n.fills, 0) } } : {}),
    },
    events: m.events.map((e) => ({ ...e })),
    replicas: {
      maxLagMs: maxLag,
      staleReads: { db: m.staleReads, feed: 0, total: m.staleReads },
      staleReadsPerS: pts(S.staleReads, 1 / perS),
      writesLost: m.topo.writesLost,
      nodes: lagNodes,
      feed: m.topo.redisReplica ? { lagMs: cfg.feed.replicaLagMs, backlog: 0, staleReads: 0 } : null,
    },
    utilisation: {
      servers: utilServers,
      caches: utilCaches,
      queue: { workers: cfg.queue.workers, peakRunning, workerUse: peakRunning / cfg.queue.workers, maxDepth: cfg.queue.maxDepth, peakDepth, depthUse: peakDepth / cfg.queue.maxDepth },
      feeds: [{ name: 'feed-primary', peakOpsPerS: redisPeak, peakAtMs: redisPeakAt }],
      busiestServer,
      busiestCache,
    },
    work: modelWork(m),
  };
}

/**
 * The work each route and job kind did in the model, in the live work meter's shape (work.json): what
 * the model charges each request with, to hold against a live run's counts (`scalegram compare`).
 * Bytes answered are not modelled (0).
 */
function modelWork(m: VirtualModel): WorkSnapshot {
  const WF = WORK_FIELDS.length;
  const row = (r: number): WorkTotals => {
    const out = { count: m.workCount[r]!, failed: m.workFailed[r]! } as WorkTotals;
    WORK_FIELDS.forEach((f, i) => (out[f] = m.work[r * WF + i]!));
    return out;
  };
  const routes: Record<string, WorkTotals> = {};
  OPS.forEach((op, i) => {
    const name = LIVE_ROUTE_OF[op];
    if (name && m.workCount[i]! > 0) routes[name] = row(i);
  });
  const jobs: Record<string, WorkTotals> = {};
  if (m.workCount[WORK_ROW_FANOUT]! > 0) jobs.fanout = row(WORK_ROW_FANOUT);
  if (m.workCount[WORK_ROW_FANOUT_CHUNK]! > 0) jobs['fanout-chunk'] = row(WORK_ROW_FANOUT_CHUNK);
  if (m.workCount[WORK_ROW_NOTIFY]! > 0) jobs.notify = row(WORK_ROW_NOTIFY);
  if (m.workCount[WORK_ROW_RESIZE]! > 0) jobs.resize = row(WORK_ROW_RESIZE);
  const sorted = (o: Record<string, WorkTotals>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { routes: sorted(routes), jobs: sorted(jobs) };
}

/** A synthetic account's name, as the live seeding would call it (user_<signup-order id>); celebrities say so. */
export function userName(m: VirtualModel, id: number): string {
  const rank = m.pop.celebrities.indexOf(id);
  if (rank >= 0) return `celebrity_${rank + 1}`;
  return id >= m.pop.base ? `signup_${id - m.pop.base + 1}` : `user_${m.pop.userId(id)}`;
}

/** The topology as /_sim/topology describes it at the end (the parts reports read). */
export function topologyDescription(m: VirtualModel, seed: number): Record<string, unknown> {
  const cfg = m.opts.config;
  return {
    name: cfg.name,
    description: cfg.description,
    seed,
    config: cfg,
    databases: [
      {
        name: 'main',
        families: ['users', 'media', 'graph'],
        logicalShards: cfg.shards.logical,
        // The pool and the replica's lag as the last sample saw them (at the end: the last step's).
        servers: m.topo.servers.map((s, k) => ({ name: s.name, index: s.index, down: s.down, logicalShards: m.topo.shardMap.shardsOn(s.index).length, pool: { size: cfg.database.poolSize, inUse: m.series.poolInUse.at(-1)?.[k] ?? 0, waiting: m.series.poolWaiting.at(-1)?.[k] ?? 0 }, ops: { reads: s.reads, writes: s.writes }, replicas: s.replicaName ? [{ name: s.replicaName, lagMs: m.series.replicaLag.at(-1)?.[k] ?? 0 }] : [] })),
      },
    ],
    cache: { hashing: cfg.cache.hashing, leases: m.topo.leases !== null, nodes: m.topo.caches.map((n) => ({ name: n.name, alive: n.alive, onRing: n.onRing, gutter: n.gutter, items: n.lru.items, bytes: n.lru.bytes, capacityBytes: n.capacityBytes, hits: n.hits, misses: n.misses, evictions: n.evictions })) },
    feed: { backend: 'modelled', fanout: cfg.feed.fanout, maxLength: cfg.feed.maxLength, replica: cfg.feed.replicas ? { lagMs: cfg.feed.replicaLagMs } : null },
    queue: { workers: cfg.queue.workers, depth: m.topo.workers.queued(m.sim.now), running: m.topo.workers.busy(m.sim.now), maxDepth: cfg.queue.maxDepth },
  };
}
