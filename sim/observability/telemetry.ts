// What every run measures inside the topology, read from the metrics as time series a runner can
// poll and summarise: fan-out, hotspots (with the users behind them), caches, replicas, and peak
// utilisation against the topology's budgets (pools, cache bytes, queue); and a few scalars that
// thresholds can name (cache_hit_rate, fanout_lag_ms, shard_skew, …).
//
// Memory stays bounded on hour-long runs: counters and gauges keep one point per one-second bucket
// per label set, and the one family that would not fit (a counter per logical shard) keeps only its
// 16 busiest shards per bucket plus each bucket's total and max (Metrics.limitSeries), which is all
// that skew and "hottest shards" need. Fan-out lag is also kept per 10-second window as a small
// packed HDR histogram, so its percentiles can be plotted over time. Attribution of a shard's load
// to users is a space-saving summary of 5 keys per shard (DatabaseCluster.shardAttribution).

import type { ClusterGroup, PhysicalServer } from '../parts/database-cluster.ts';
import type { FamilyBucket, Labels, WindowSnapshot } from './metrics.ts';
import type { Topology } from '../topology.ts';
import type { WorkSnapshot } from './work-meter.ts';

/** [time since the topology started (ms), value] */
export type Point = [number, number];

export interface Summary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export interface TelemetryOptions {
  /** Only points at or after this time (ms since the topology started, as `nowMs` of a previous snapshot). */
  sinceMs?: number;
  /** Merge points into steps of this width (ms, a multiple of the bucket); rates stay per second. */
  stepMs?: number;
  /** Hottest shards listed per cluster (count; default 5). */
  hottest?: number;
  /**
   * Peaks of the utilisation section only from this time on (ms since the topology started), e.g.
   * when the load began, so that seeding does not count as peak load. Default: `sinceMs`.
   */
  utilisationSinceMs?: number;
}

export interface HotShard {
  shard: number;
  server: string;
  /** Queries on the shard in the period (count). */
  ops: number;
  /** Its share of the cluster's queries in the period (0–1). */
  share: number;
  /** Store operations that loaded it, most frequent first (space-saving estimates since start). */
  kinds: Array<{ kind: string; count: number }>;
  /**
   * Users whose data the queries touched (the owners of the rows), most first. `count` is what the
   * space-saving summary guarantees (its estimate minus its error, a lower bound), so a crowd of
   * distinct users each shows a small count and share, and one dominant user a large one.
   */
  users: Array<{ id: string; username: string | null; count: number; share: number; via: string[] }>;
  /** Users whose requests ran the queries, most first (count and share as for `users`). */
  actors: Array<{ id: string; username: string | null; count: number; share: number }>;
}

export interface ClusterHotspots {
  cluster: string;
  logicalShards: number;
  servers: Array<{ name: string; index: number; down: boolean; logicalShards: number; replicas: number; ops: number; opsPerS: Point[] }>;
  /** max / mean of ops over logical shards in the period (idle shards count in the mean). */
  skew: number | null;
  /** max / mean of ops over the servers holding shards. */
  serverSkew: number | null;
  /** Cluster queries per second. */
  opsPerS: Point[];
  skewOverTime: Point[];
  serverSkewOverTime: Point[];
  /** The busiest logical shards per step: [shard, ops]. */
  topShardsOverTime: Array<{ t: number; shards: Array<[number, number]> }>;
  /**
   * Load per band of logical shards per step (a heatmap): band i holds shards
   * [i × bandWidth, (i + 1) × bandWidth); `ops[i]` is their queries in the step. Finished buckets only.
   */
  heat: { bandWidth: number; bands: number; rows: Array<{ t: number; ops: number[] }> };
  hottest: HotShard[];
}

/** One database node's pgbouncer pool: how full it got (peaks are high-water marks, not once-a-second looks). */
export interface PoolNodeUtilisation {
  /** The node: a primary (its server's name, `db-3`) or a replica (`db-3-r1`). */
  name: string;
  role: 'primary' | 'replica';
  /** Most connections in use at once (count, of the server's poolSize). */
  peakInUse: number;
  /** Most queries waiting for a connection at once (count); above 0 the pool was full. */
  peakWaiting: number;
  /** Peak connections in use ÷ poolSize per step (0–1). */
  useOverTime: Point[];
}

/** One physical server (a primary and its replicas): its peaks against the budgets the topology sets. */
export interface ServerUtilisation {
  cluster: string;
  name: string;
  /** Connections per node (database.poolSize). */
  poolSize: number;
  /** Most connections in use at once on the busiest of its nodes (count). */
  poolPeakInUse: number;
  /** poolPeakInUse ÷ poolSize (0–1). */
  poolUse: number;
  /** Most queries waiting for a connection at once on the busiest of its nodes (count). */
  poolPeakWaiting: number;
  /** poolPeakWaiting ÷ database.poolQueueLimit (0–1; at 1 new queries fail). */
  poolQueueUse: number;
  /**
   * Queries per second on the server (primary and replicas) in its busiest second, and when (ms since
   * start). The topology sets no query budget, so this is a rate, not a fraction: compare servers.
   */
  peakOpsPerS: number;
  peakOpsAtMs: number | null;
  /** Most replication log entries its slowest replica owed, sampled each second (entries). */
  replicationBacklogPeak: number;
  /** replicationBacklogPeak ÷ database.replicationLogLimit (0–1; at 1 writes fail). */
  replicationLogUse: number;
  nodes: PoolNodeUtilisation[];
}

/** One memcached node: bytes held against its LRU capacity. */
export interface CacheUtilisation {
  name: string;
  /** cache.capacityBytes (bytes). */
  capacityBytes: number;
  /** Most key + value bytes held at once (bytes; the gauge is set on every store). */
  peakBytes: number;
  /** peakBytes ÷ capacityBytes (0–1); near 1 the LRU evicts. */
  use: number;
  /** Values evicted to stay within capacity (count). */
  evictions: number;
  /** Bytes held ÷ capacityBytes per step (0–1; the largest value sampled in the step). */
  useOverTime: Point[];
}

/**
 * Peak utilisation of what the topology budgets: database pools (poolSize, poolQueueLimit) and
 * replication logs (replicationLogLimit) per physical server, cache bytes (capacityBytes) per node,
 * the job queue (workers, maxDepth); plus peak rates where no budget is configured (queries per
 * server, feed list operations per Redis node). Peaks run from `since` (whole run by default).
 */
export interface Utilisation {
  servers: ServerUtilisation[];
  caches: CacheUtilisation[];
  queue: {
    /** queue.workers (count). */
    workers: number;
    /** Most jobs running at once (count). */
    peakRunning: number;
    /** peakRunning ÷ workers (0–1). */
    workerUse: number;
    /** queue.maxDepth (jobs). */
    maxDepth: number;
    /** Most jobs waiting at once (jobs). */
    peakDepth: number;
    /** peakDepth ÷ maxDepth (0–1; at 1 enqueue fails). */
    depthUse: number;
  };
  /** Feed list reads + writes per second on each Redis node in its busiest second (no budget is configured; Instagram's Redis hit a wall above 40k/s). */
  feeds: Array<{ name: string; peakOpsPerS: number; peakAtMs: number | null }>;
  /** The server with the highest poolUse (ties: the most ops/s), or null without servers. */
  busiestServer: string | null;
  /** The cache node with the highest byte use, or null without a cache. */
  busiestCache: string | null;
}

export interface TelemetrySnapshot {
  /** Unix ms at which the series start (t = 0). */
  startMs: number;
  /** Now, in ms since the start: pass it as `since` next time. */
  nowMs: number;
  sinceMs: number;
  bucketMs: number;
  stepMs: number;
  fanout: {
    posts: Record<string, number>;
    completed: number;
    failures: number;
    deliveries: number;
    deliveriesPerS: Point[];
    /** Followers reached per post (count). */
    sizePerPost: Summary | null;
    /** Post to last delivery (ms), whole run. */
    lagMs: Summary | null;
    lagOverTime: WindowSnapshot[];
    queueDepth: Point[];
    queueDepthMax: number;
    queueDepthNow: number;
  };
  hotspots: { shardSkew: number | null; serverSkew: number | null; clusters: ClusterHotspots[] };
  caches: {
    hitRatio: number | null;
    hitRatioOverTime: Point[];
    lookups: number;
    hits: number;
    misses: number;
    dead: number;
    evictions: number;
    /** Misses that went to a shard. */
    fills: number;
    fillsPerS: Point[];
    herdEvents: number;
    herdPerS: Point[];
    /** Shard reads for keys whose fill was already in flight: the herd's load on the shards (leases turn them into waits). */
    herdFills: number;
    herdFillsPerS: Point[];
    evictionsPerS: Point[];
    /**
     * Ring nodes, then the gutter pool's (`gutter: true`; never on the ring). A key's lookup is counted
     * once, on the node that answered it (hits, misses, dead); `toGutter` counts, on a down ring node,
     * the lookups of its keys the gutter pool took instead (absent from results older than it).
     */
    nodes: Array<{ name: string; alive: boolean; onRing: boolean; gutter: boolean; items: number; hitRatio: number | null; hits: number; misses: number; dead: number; toGutter?: number; evictions: number; fills: number; herdEvents: number; herdFills: number; hitRatioOverTime: Point[] }>;
    /**
     * The gutter pool, where one is configured: the lookups of down nodes' keys sent to it (those that
     * found a gutter node down too are its nodes' `dead`), and its hits (each a shard read it saved).
     */
    gutter?: { nodes: number; ttlMs: number; lookups: number; hits: number; fills: number };
    /**
     * On real memcached nodes (absent in process): requests to them that failed (a get that failed
     * is one of the `dead` lookups), and the times a node that had stopped answering answered again
     * (flushed first: it missed deletes meanwhile).
     */
    remote?: { errors: number; returns: number };
  };
  /**
   * What changed in the topology, at the time it happened (ms since start): faults injected, shard
   * moves and splits (started and finished), replicas added, lag and service time changed.
   */
  events: TopologyEvent[];
  replicas: {
    maxLagMs: number;
    staleReads: { db: number; feed: number; total: number };
    staleReadsPerS: Point[];
    writesLost: number;
    nodes: Array<{ name: string; server: string; lagMs: number; configuredLagMs: number; maxLagMs: number; backlog: number; staleReads: number; lagOverTime: Point[] }>;
    feed: { lagMs: number; backlog: number; staleReads: number } | null;
  };
  /** How close each budgeted resource came to its limit (see Utilisation). */
  utilisation: Utilisation;
  /**
   * The work each route and job kind did over the whole run (not since `sinceMs`), counted by the
   * parts as they did it: what the CI gate judges. A simulation's is what its model charged each
   * request with (no bytes), in the same shape, to hold against a live run's.
   */
  work?: WorkSnapshot;
}

export interface TopologyEvent {
  /** ms since the topology started (the axis of every series). */
  t: number;
  /** cache_kill, cache_revive, cache_leases, celebrity_post, db_fail, db_revive, db_add_replica, replica_lag, db_service_time, db_add_server, shard_move, shard_split, shard_move_done, shard_split_done, … */
  kind: string;
  /** One line for a time axis, e.g. "cache-2 killed (1,204 items lost)". */
  label: string;
  detail: Record<string, unknown>;
}

function eventLabel(kind: string, d: Record<string, unknown>): string {
  const n = (v: unknown) => (typeof v === 'number' ? v.toLocaleString('en-US') : String(v));
  switch (kind) {
    case 'cache_kill':
      return `${String(d.node)} killed (${n(d.itemsLost)} items lost${d.onRing === false ? ', off the ring' : ''})`;
    case 'cache_revive':
      return `${String(d.node)} revived (empty)`;
    case 'cache_leases':
      return `leases ${d.leases ? 'on' : 'off'}`;
    case 'celebrity_post':
      return `@${String(d.username)} posts to ${n(d.followers)} followers${d.fanout === 'pull' || d.fanout === 'hybrid-pulled' ? ' (pulled, not pushed)' : ''}`;
    case 'db_fail':
      return d.promoted ? `${String(d.node)} failed, ${String(d.promoted)} promoted (${n(d.writesLost)} writes lost)` : `${String(d.node)} failed (down)`;
    case 'db_revive':
      return `${String(d.node)} revived`;
    case 'db_add_replica':
      return `replica ${String(d.replica)} added to ${String(d.node)}`;
    case 'replica_lag':
      return `replica lag ${n(d.lagMs)} ms on ${String(d.node)}`;
    case 'db_service_time':
      return `db service time ${n(d.fromMs)} → ${n(d.toMs)} ms`;
    case 'db_add_server':
      return `server ${String(d.server)} added`;
    case 'shard_move':
    case 'shard_split':
      return `${kind === 'shard_split' ? 'split' : 'move'} of ${n(d.shards)} shard${d.shards === 1 ? '' : 's'} ${String(d.from)} → ${String(d.to)} started`;
    case 'shard_move_done':
    case 'shard_split_done':
      return `${kind === 'shard_split_done' ? 'split' : 'move'} of ${n(d.shards)} shard${d.shards === 1 ? '' : 's'} ${String(d.from)} → ${String(d.to)} ${d.state === 'failed' ? 'failed' : 'done'}`;
    default:
      return kind;
  }
}

function topologyEvents(t: Topology, startMs: number, sinceMs: number): TopologyEvent[] {
  const events: TopologyEvent[] = t.faults.log().map(({ fault, atMs, ...detail }) => ({ t: atMs - startMs, kind: fault, label: eventLabel(fault, detail), detail }));
  for (const job of t.faults.moves()) {
    if (job.finishedMs === null) continue;
    const detail = { job: job.id, cluster: job.cluster, from: job.from, to: job.to, shards: job.done, state: job.state, rowsCopied: job.rowsCopied };
    const kind = job.kind === 'split' ? 'shard_split_done' : 'shard_move_done';
    events.push({ t: job.finishedMs - startMs, kind, label: eventLabel(kind, detail), detail });
  }
  return events.filter((e) => e.t >= sinceMs).sort((a, b) => a.t - b.t);
}

export interface TelemetryScalars {
  /** Cache hits / lookups over the last 10 s (null with no lookups). */
  cache_hit_rate: number | null;
  /** p99 of post → last follower list written, whole run (ms; null before the first fan-out completes). */
  fanout_lag_ms: number | null;
  fanout_lag_p50_ms: number | null;
  /** max / mean of queries over logical shards since start, worst cluster (null before any query). */
  shard_skew: number | null;
  /** max / mean of queries over physical servers since start, worst cluster. */
  server_skew: number | null;
  /** Replica reads (database and feed) that missed writes still in flight, since start (count). */
  stale_reads: number;
  /** Largest current lag over the database replicas (ms). */
  replica_lag_ms: number;
  /** Largest queue depth sampled over the last 10 s (jobs). */
  queue_depth: number;
  /** Fan-out list writes per second over the last 10 s. */
  deliveries_per_s: number;
  /** Cache misses that reached a shard, per second over the last 10 s. */
  cache_fills_per_s: number;
  /** Writes lost to failovers since start (count). */
  db_writes_lost: number;
}

/** Width of the windows fan-out lag is kept in (ms). */
export const LAG_WINDOW_MS = 10_000;
/** Buckets the "recent" scalars look back over (count of one-second buckets). */
const RECENT_BUCKETS = 10;

/** Starts what telemetry needs recorded from the beginning (called when the topology is built). */
export function installTelemetry(t: Topology): void {
  t.metrics.trackOverTime('fanout_lag_ms', LAG_WINDOW_MS);
  t.metrics.trackOverTime('fanout_size', LAG_WINDOW_MS);
}

// ------------------------------------------------------------------------------------ helpers

type Merge = 'sum' | 'max';

/** Points from `sinceMs` on, merged into steps of `stepMs`. */
function shape(points: readonly Point[], sinceMs: number, stepMs: number, bucketMs: number, merge: Merge): Point[] {
  const out: Point[] = [];
  for (const [t, v] of points) {
    if (t < sinceMs) continue;
    const s = stepMs > bucketMs ? Math.floor(t / stepMs) * stepMs : t;
    const last = out[out.length - 1];
    if (last && last[0] === s) last[1] = merge === 'sum' ? last[1] + v : Math.max(last[1], v);
    else out.push([s, v]);
  }
  return out;
}

/** Adds series point-wise (by time). */
function addSeries(list: ReadonlyArray<readonly Point[]>): Point[] {
  const m = new Map<number, number>();
  for (const pts of list) for (const [t, v] of pts) m.set(t, (m.get(t) ?? 0) + v);
  return [...m.entries()].sort((a, b) => a[0] - b[0]);
}

function perSecond(points: Point[], widthMs: number): Point[] {
  return points.map(([t, v]) => [t, round(v / (widthMs / 1000))]);
}

function ratio(num: readonly Point[], den: readonly Point[]): Point[] {
  const n = new Map(num);
  return den.filter(([, d]) => d > 0).map(([t, d]) => [t, round((n.get(t) ?? 0) / d, 4)]);
}

function round(v: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function histogramSummary(t: Topology, name: string, labels: Labels = {}): Summary | null {
  const m = t.metrics;
  const count = m.histogramCount(name, labels);
  if (count === 0) return null;
  return { count, p50: round(m.percentile(name, labels, 50)!), p99: round(m.percentile(name, labels, 99)!), max: round(m.percentile(name, labels, 100)!) };
}

function recentSum(points: readonly Point[], fromMs: number, toMs: number): number {
  let s = 0;
  for (const [t, v] of points) if (t >= fromMs && t < toMs) s += v;
  return s;
}

/** The nodes of a server: its primary and replicas (ops per physical server count both). */
function nodeNames(s: PhysicalServer): string[] {
  return [s.name, ...(s.remote?.replicas ?? s.replicas).map((r) => r.name)];
}

function skewOf(values: readonly number[], over: number): number | null {
  let total = 0;
  let max = 0;
  for (const v of values) {
    total += v;
    if (v > max) max = v;
  }
  return total > 0 && over > 0 ? round(max / (total / over)) : null;
}

// ---------------------------------------------------------------------- who is behind a shard

/** A raw, uncounted lookup on a node: telemetry observes the topology, it does not load it. */
function lookup(server: PhysicalServer, sql: string, ...params: unknown[]): Record<string, unknown> | undefined {
  // On real Postgres a lookup is a round trip, and this one is synchronous: owners go unnamed there.
  if (server.remote) return undefined;
  try {
    return server.primary.db.prepare(sql).safeIntegers(true).get(...params) as Record<string, unknown> | undefined;
  } catch {
    return undefined;
  }
}

class OwnerResolver {
  private readonly usernames = new Map<string, string | null>();
  constructor(private readonly t: Topology) {}

  private server(family: 'users' | 'photos' | 'graph', shard: number): PhysicalServer {
    return this.t.db.serverFor(family, shard);
  }

  username(userId: string): string | null {
    if (this.usernames.has(userId)) return this.usernames.get(userId)!;
    let name: string | null = null;
    try {
      const shard = Number((BigInt(userId) >> 10n) & 0x1fffn);
      if (shard < this.t.config.shards.logical) name = (lookup(this.server('users', shard), 'SELECT username FROM users WHERE id = ?', BigInt(userId))?.username as string | undefined) ?? null;
    } catch {
      name = null;
    }
    this.usernames.set(userId, name);
    return name;
  }

  /** The user who owns the row with this id on `shard`, and what the row is. */
  owner(shard: number, id: bigint): { userId: string; via: string } | null {
    const u = this.server('users', shard);
    const p = this.server('photos', shard);
    const g = this.server('graph', shard);
    const probes: Array<[PhysicalServer, string, string, unknown[]]> = [
      [u, 'user', 'SELECT id AS owner FROM users WHERE id = ?', [id]],
      [p, 'media', 'SELECT user_id AS owner FROM media WHERE id = ?', [id]],
      [p, 'comment', 'SELECT m.user_id AS owner FROM comments c JOIN media m ON m.id = c.media_id WHERE c.id = ?', [id]],
      [p, 'like', 'SELECT m.user_id AS owner FROM likes l JOIN media m ON m.id = l.media_id WHERE l.shard_id = ? AND l.id = ?', [shard, id]],
      [u, 'activity', 'SELECT user_id AS owner FROM activity WHERE id = ?', [id]],
      [g, 'follow', 'SELECT source_id AS owner FROM follows WHERE shard_id = ? AND id = ?', [shard, id]],
      [g, 'follower', 'SELECT target_id AS owner FROM followers WHERE shard_id = ? AND id = ?', [shard, id]],
    ];
    for (const [server, via, sql, params] of probes) {
      const row = lookup(server, sql, ...params);
      if (row && row.owner !== null && row.owner !== undefined) return { userId: String(row.owner), via };
    }
    return null;
  }
}

function hottestShards(t: Topology, group: ClusterGroup, opsByShard: ReadonlyMap<number, number>, total: number, count: number, resolver: OwnerResolver): HotShard[] {
  const top = [...opsByShard.entries()].sort((a, b) => b[1] - a[1]).slice(0, count);
  return top.map(([shard, ops]) => {
    const a = t.db.shardAttribution(group.name, shard);
    const users = new Map<string, { sure: number; via: Set<string> }>();
    if (a) {
      for (const s of a.subjects.top()) {
        const o = resolver.owner(shard, s.key);
        if (!o) continue;
        const e = users.get(o.userId) ?? users.set(o.userId, { sure: 0, via: new Set() }).get(o.userId)!;
        e.sure += s.count - s.error;
        e.via.add(o.via);
      }
    }
    const subjectTotal = a?.subjects.total || 1;
    const actorTotal = a?.actors.total || 1;
    return {
      shard,
      server: group.servers[group.map.physicalOf(shard)]!.name,
      ops,
      share: total > 0 ? round(ops / total, 4) : 0,
      kinds: a ? a.kinds.top().map((k) => ({ kind: k.key, count: k.count })) : [],
      users: [...users.entries()]
        .sort((x, y) => y[1].sure - x[1].sure)
        .map(([id, e]) => ({ id, username: resolver.username(id), count: e.sure, share: round(e.sure / subjectTotal, 4), via: [...e.via] })),
      actors: a ? a.actors.top().map((x) => ({ id: x.key, username: resolver.username(x.key), count: x.count - x.error, share: round((x.count - x.error) / actorTotal, 4) })) : [],
    };
  });
}

// -------------------------------------------------------------------------------- the snapshot

/** Every measure of the brief's "what every run must measure" (topology side) as series and summaries. */
export function telemetrySnapshot(t: Topology, options: TelemetryOptions = {}): TelemetrySnapshot {
  t.sample();
  const m = t.metrics;
  const bucketMs = m.bucketMs;
  const sinceMs = Math.max(0, options.sinceMs ?? 0);
  const stepMs = Math.max(bucketMs, Math.round((options.stepMs ?? bucketMs) / bucketMs) * bucketMs);
  const nowMs = m.elapsedMs();
  const sum = (points: readonly Point[]) => shape(points, sinceMs, stepMs, bucketMs, 'sum');
  const max = (points: readonly Point[]) => shape(points, sinceMs, stepMs, bucketMs, 'max');
  const counterSeries = (name: string, filter: Labels = {}) =>
    addSeries(m.countersNamed(name).filter((c) => Object.entries(filter).every(([k, v]) => String(c.labels[k]) === String(v))).map((c) => m.seriesOf(name, c.labels)));
  const resolver = new OwnerResolver(t);

  // Fan-out.
  const posts: Record<string, number> = {};
  for (const c of m.countersNamed('fanout_posts')) posts[String(c.labels.mode)] = c.value;
  const fanout: TelemetrySnapshot['fanout'] = {
    posts,
    completed: m.sum('fanout_completed'),
    failures: m.sum('fanout_failures'),
    deliveries: m.sum('fanout_deliveries'),
    deliveriesPerS: perSecond(sum(m.seriesOf('fanout_deliveries')), stepMs),
    sizePerPost: histogramSummary(t, 'fanout_size'),
    lagMs: histogramSummary(t, 'fanout_lag_ms'),
    lagOverTime: m.histogramWindows('fanout_lag_ms').filter((w) => w.t + LAG_WINDOW_MS > sinceMs),
    queueDepth: max(m.seriesOf('queue_depth')),
    queueDepthMax: m.gaugeMax('queue_depth') ?? 0,
    queueDepthNow: t.queue.depth(),
  };

  // Hotspots, per database cluster.
  const families = m.familySummary('shard_ops');
  const clusters: ClusterHotspots[] = t.db.groups.map((group) => {
    const logical = group.map.logical;
    const buckets = (families.get(group.name) ?? []).filter((b) => b.t >= sinceMs);
    // Per-shard ops in the period: exact totals since start, or the kept (busiest) points since `since`.
    const opsByShard = new Map<number, number>();
    let total = 0;
    if (sinceMs === 0) {
      group.shardOps.forEach((c, s) => {
        if (c.value > 0) opsByShard.set(s, c.value);
        total += c.value;
      });
    } else {
      // Finished buckets are summarised (exact totals); the bucket under way still has every point.
      const current = Math.floor(nowMs / bucketMs) * bucketMs;
      total = buckets.reduce((a, b) => a + b.total, 0);
      for (let s = 0; s < logical; s++) {
        const pts = m.seriesOf('shard_ops', { cluster: group.name, shard: s });
        const v = recentSum(pts, sinceMs, Number.POSITIVE_INFINITY);
        if (v > 0) opsByShard.set(s, v);
        if (current >= sinceMs) total += recentSum(pts, current, Number.POSITIVE_INFINITY);
      }
    }
    const maxShard = Math.max(0, ...opsByShard.values());
    const skew = total > 0 ? round(maxShard / (total / logical)) : null;

    const holding = group.servers.filter((s) => group.map.shardsOn(s.index).length > 0);
    const servers = group.servers.map((s) => {
      const series = addSeries(nodeNames(s).map((n) => counterSeries('db_ops', { node: n })));
      const ops = nodeNames(s).reduce((a, n) => a + m.sum('db_ops', { node: n }), 0);
      return { name: s.name, index: s.index, down: s.down, logicalShards: group.map.shardsOn(s.index).length, replicas: (s.remote?.replicas ?? s.replicas).length, ops, opsPerS: perSecond(sum(series), stepMs), raw: series };
    });
    const heldNames = new Set(holding.map((s) => s.name));
    const heldServers = servers.filter((s) => heldNames.has(s.name));
    const serverTotals = heldServers.map((s) => (sinceMs === 0 ? s.ops : recentSum(s.raw, sinceMs, Number.POSITIVE_INFINITY)));
    // Server skew per step: the busiest server's ops against the mean over servers holding shards.
    const serverSteps = new Map<number, number[]>();
    heldServers.forEach((s, i) => {
      for (const [tt, v] of sum(s.raw)) (serverSteps.get(tt) ?? serverSteps.set(tt, new Array(heldServers.length).fill(0)).get(tt)!)[i] = v;
    });
    const serverSkewOverTime: Point[] = [...serverSteps.entries()].sort((a, b) => a[0] - b[0]).flatMap(([tt, vs]) => {
      const k = skewOf(vs, heldServers.length);
      return k === null ? [] : [[tt, k] as Point];
    });
    const skewOverTime = max(buckets.filter((b) => b.total > 0).map((b) => [b.t, round(b.max / (b.total / logical))] as Point));
    const opsPerS = perSecond(sum(buckets.map((b) => [b.t, b.total] as Point)), stepMs);
    // The busiest shards per step, from the points the capped series kept.
    const perStep = new Map<number, Map<number, number>>();
    for (const s of opsByShard.keys()) {
      for (const [tt, v] of sum(m.seriesOf('shard_ops', { cluster: group.name, shard: s }))) {
        const row = perStep.get(tt) ?? perStep.set(tt, new Map()).get(tt)!;
        row.set(s, (row.get(s) ?? 0) + v);
      }
    }
    const topShardsOverTime = [...perStep.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([tt, row]) => ({ t: tt, shards: [...row.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5) as Array<[number, number]> }));
    return {
      cluster: group.name,
      logicalShards: logical,
      servers: servers.map(({ raw: _raw, ...s }) => s),
      skew,
      serverSkew: skewOf(serverTotals, heldServers.length),
      opsPerS,
      skewOverTime,
      serverSkewOverTime,
      topShardsOverTime,
      heat: shardHeat(buckets, logical, stepMs),
      hottest: hottestShards(t, group, opsByShard, total, options.hottest ?? 5, resolver),
    };
  });
  const worst = (xs: Array<number | null>) => xs.reduce<number | null>((a, b) => (b === null ? a : a === null ? b : Math.max(a, b)), null);

  // Caches.
  const cacheNodes = t.cache.nodes().map((n) => {
    const hits = m.seriesOf('cache_requests', { node: n.name, result: 'hit' });
    const lookups = addSeries([hits, m.seriesOf('cache_requests', { node: n.name, result: 'miss' }), m.seriesOf('cache_requests', { node: n.name, result: 'dead' })]);
    const h = m.value('cache_requests', { node: n.name, result: 'hit' });
    const miss = m.value('cache_requests', { node: n.name, result: 'miss' });
    const dead = m.value('cache_requests', { node: n.name, result: 'dead' });
    return {
      name: n.name,
      alive: n.alive,
      onRing: n.onRing,
      gutter: n.gutter,
      items: n.items,
      hitRatio: h + miss + dead > 0 ? round(h / (h + miss + dead), 4) : null,
      hits: h,
      misses: miss,
      dead,
      toGutter: m.value('cache_gutter_lookups', { node: n.name }),
      evictions: n.evictions,
      fills: m.value('cache_fills', { node: n.name }),
      herdEvents: m.value('cache_herd_events', { node: n.name }),
      herdFills: m.value('cache_herd_fills', { node: n.name }),
      hitRatioOverTime: ratio(sum(hits), sum(lookups)),
    };
  });
  const allHits = counterSeries('cache_requests', { result: 'hit' });
  const allLookups = counterSeries('cache_requests');
  const hits = m.sum('cache_requests', { result: 'hit' });
  const lookups = m.sum('cache_requests');
  const caches: TelemetrySnapshot['caches'] = {
    hitRatio: lookups > 0 ? round(hits / lookups, 4) : null,
    hitRatioOverTime: ratio(sum(allHits), sum(allLookups)),
    lookups,
    hits,
    misses: m.sum('cache_requests', { result: 'miss' }),
    dead: m.sum('cache_requests', { result: 'dead' }),
    evictions: m.sum('cache_evictions'),
    fills: m.sum('cache_fills'),
    fillsPerS: perSecond(sum(counterSeries('cache_fills')), stepMs),
    herdEvents: m.sum('cache_herd_events'),
    herdPerS: perSecond(sum(counterSeries('cache_herd_events')), stepMs),
    herdFills: m.sum('cache_herd_fills'),
    herdFillsPerS: perSecond(sum(counterSeries('cache_herd_fills')), stepMs),
    evictionsPerS: perSecond(sum(counterSeries('cache_evictions')), stepMs),
    nodes: cacheNodes,
    ...(t.config.cache.gutter > 0 ? { gutter: gutterTotals(cacheNodes, t.config.cache.gutter, t.config.cache.gutterTtlMs) } : {}),
    ...(t.memcached ? { remote: { errors: m.sum('cache_remote_errors'), returns: m.sum('cache_remote_returns') } } : {}),
  };

  // Replicas.
  const replicaNodes = t.db.groups.flatMap((g) =>
    g.servers.flatMap((s) =>
      t.db.replicasOf(s).map((r) => ({
        name: r.name,
        server: s.name,
        lagMs: round(r.lagMs),
        configuredLagMs: r.configuredLagMs,
        maxLagMs: round(m.gaugeMax('replica_lag_ms', { node: r.name }) ?? 0),
        backlog: r.backlog,
        staleReads: m.value('db_stale_reads', { node: r.name }),
        lagOverTime: max(m.seriesOf('replica_lag_ms', { node: r.name })),
      })),
    ),
  );
  const dbStale = m.sum('db_stale_reads');
  const feedStale = m.sum('feed_stale_reads');
  const replicas: TelemetrySnapshot['replicas'] = {
    maxLagMs: replicaNodes.reduce((a, r) => Math.max(a, r.lagMs), 0),
    staleReads: { db: dbStale, feed: feedStale, total: dbStale + feedStale },
    staleReadsPerS: perSecond(sum(addSeries([counterSeries('db_stale_reads'), counterSeries('feed_stale_reads')])), stepMs),
    writesLost: m.sum('db_writes_lost'),
    nodes: replicaNodes,
    feed: t.feeds.hasReplica ? { lagMs: t.feeds.replicaLagMs, backlog: t.feeds.replicaBacklog(), staleReads: feedStale } : null,
  };

  return {
    startMs: m.startMs,
    nowMs,
    sinceMs,
    bucketMs,
    stepMs,
    fanout,
    hotspots: { shardSkew: worst(clusters.map((c) => c.skew)), serverSkew: worst(clusters.map((c) => c.serverSkew)), clusters },
    caches,
    events: topologyEvents(t, m.startMs, sinceMs),
    replicas,
    utilisation: utilisationOf(t, Math.max(sinceMs, options.utilisationSinceMs ?? 0), stepMs),
    work: t.work.snapshot(),
  };
}

/** The gutter pool's totals from its nodes' rows: lookups sent to it, hits, misses that reached a shard (the model's snapshot sums the same rows). */
function gutterTotals(nodes: ReadonlyArray<{ gutter: boolean; hits: number; misses: number; dead: number; fills: number }>, count: number, ttlMs: number): NonNullable<TelemetrySnapshot['caches']['gutter']> {
  const g = nodes.filter((n) => n.gutter);
  const add = (f: (n: (typeof g)[number]) => number) => g.reduce((a, n) => a + f(n), 0);
  return { nodes: count, ttlMs, lookups: add((n) => n.hits + n.misses + n.dead), hits: add((n) => n.hits), fills: add((n) => n.fills) };
}

/** The largest point from `sinceMs` on (the earliest if tied), or null with none. */
function peakOf(points: readonly Point[], sinceMs: number): Point | null {
  let best: Point | null = null;
  for (const p of points) if (p[0] >= sinceMs && (!best || p[1] > best[1])) best = p;
  return best;
}

function share(value: number, budget: number): number {
  return budget > 0 ? round(value / budget, 4) : 0;
}

/** Peaks against budgets (the Utilisation section); gauges were just sampled by telemetrySnapshot. */
function utilisationOf(t: Topology, sinceMs: number, stepMs: number): Utilisation {
  const m = t.metrics;
  const bucketMs = m.bucketMs;
  const cfg = t.config;
  const perS = bucketMs / 1000;
  // A gauge's peak: exact since start (the gauge keeps its max); from its kept points after `since`.
  const gaugePeak = (name: string, labels: Labels) => (sinceMs === 0 ? (m.gaugeMax(name, labels) ?? 0) : (peakOf(m.seriesOf(name, labels), sinceMs)?.[1] ?? 0));
  const useOverTime = (name: string, labels: Labels, budget: number) =>
    shape(m.seriesOf(name, labels), sinceMs, stepMs, bucketMs, 'max').map(([tt, v]) => [tt, share(v, budget)] as Point);
  const opsOf = (node: string) => addSeries(m.countersNamed('db_ops').filter((c) => String(c.labels.node) === node).map((c) => m.seriesOf('db_ops', c.labels)));

  const servers: ServerUtilisation[] = t.db.groups.flatMap((g) =>
    g.servers.map((s) => {
      const nodes: PoolNodeUtilisation[] = [
        { name: s.name, role: 'primary' as const },
        ...(s.remote?.replicas ?? s.replicas).map((r) => ({ name: r.name, role: 'replica' as const })),
      ].map((n) => ({
        ...n,
        peakInUse: gaugePeak('db_pool_peak_in_use', { node: n.name }),
        peakWaiting: gaugePeak('db_pool_peak_waiting', { node: n.name }),
        useOverTime: useOverTime('db_pool_peak_in_use', { node: n.name }, cfg.database.poolSize),
      }));
      const poolPeakInUse = Math.max(0, ...nodes.map((n) => n.peakInUse));
      const poolPeakWaiting = Math.max(0, ...nodes.map((n) => n.peakWaiting));
      const ops = peakOf(addSeries(nodeNames(s).map(opsOf)), sinceMs);
      const backlog = gaugePeak('db_replication_backlog', { node: s.name });
      return {
        cluster: g.name,
        name: s.name,
        poolSize: cfg.database.poolSize,
        poolPeakInUse,
        poolUse: share(poolPeakInUse, cfg.database.poolSize),
        poolPeakWaiting,
        poolQueueUse: share(poolPeakWaiting, cfg.database.poolQueueLimit),
        peakOpsPerS: ops ? round(ops[1] / perS) : 0,
        peakOpsAtMs: ops ? ops[0] : null,
        replicationBacklogPeak: backlog,
        replicationLogUse: share(backlog, cfg.database.replicationLogLimit),
        nodes,
      };
    }),
  );

  const caches: CacheUtilisation[] = t.cache.nodes().map((n) => {
    const peakBytes = gaugePeak('cache_bytes', { node: n.name });
    return {
      name: n.name,
      capacityBytes: n.capacityBytes,
      peakBytes,
      use: share(peakBytes, n.capacityBytes),
      evictions: n.evictions,
      useOverTime: useOverTime('cache_bytes', { node: n.name }, n.capacityBytes),
    };
  });

  const peakRunning = gaugePeak('queue_running', {});
  const peakDepth = gaugePeak('queue_depth', {});
  const feedNodes = t.feeds.hasReplica ? ['feed-primary', 'feed-replica'] : ['feed-primary'];
  const feeds = feedNodes.map((name) => {
    const p = peakOf(addSeries([m.seriesOf('feed_reads', { node: name }), m.seriesOf('feed_writes', { node: name })]), sinceMs);
    return { name, peakOpsPerS: p ? round(p[1] / perS) : 0, peakAtMs: p ? p[0] : null };
  });

  const busiestServer = servers.reduce<ServerUtilisation | null>((a, b) => (!a || b.poolUse > a.poolUse || (b.poolUse === a.poolUse && b.peakOpsPerS > a.peakOpsPerS) ? b : a), null);
  const busiestCache = caches.reduce<CacheUtilisation | null>((a, b) => (!a || b.use > a.use ? b : a), null);
  return {
    servers,
    caches,
    queue: {
      workers: cfg.queue.workers,
      peakRunning,
      workerUse: share(peakRunning, cfg.queue.workers),
      maxDepth: cfg.queue.maxDepth,
      peakDepth,
      depthUse: share(peakDepth, cfg.queue.maxDepth),
    },
    feeds,
    busiestServer: busiestServer?.name ?? null,
    busiestCache: busiestCache?.name ?? null,
  };
}

/** The family's per-band sums, merged into steps of `stepMs`. */
function shardHeat(buckets: FamilyBucket[], logical: number, stepMs: number): ClusterHotspots['heat'] {
  const first = buckets.find((b) => b.bands);
  const bands = first?.bands?.length ?? 1;
  const bandWidth = Math.ceil(logical / bands);
  const rows: Array<{ t: number; ops: number[] }> = [];
  for (const b of buckets) {
    if (!b.bands) continue;
    const t = Math.floor(b.t / stepMs) * stepMs;
    let row = rows[rows.length - 1];
    if (!row || row.t !== t) rows.push((row = { t, ops: new Array<number>(bands).fill(0) }));
    b.bands.forEach((v, i) => (row.ops[i]! += v));
  }
  return { bandWidth, bands, rows };
}

/** The measures thresholds name, as numbers (see TelemetryScalars for each one's meaning). */
export function telemetryScalars(t: Topology): TelemetryScalars {
  t.sample();
  const m = t.metrics;
  const bucketMs = m.bucketMs;
  const nowBucketStart = Math.floor(m.elapsedMs() / bucketMs) * bucketMs;
  const from = nowBucketStart - RECENT_BUCKETS * bucketMs;
  const recent = (name: string, filter: Labels = {}, to = nowBucketStart) =>
    m
      .countersNamed(name)
      .filter((c) => Object.entries(filter).every(([k, v]) => String(c.labels[k]) === String(v)))
      .reduce((a, c) => a + recentSum(m.seriesOf(name, c.labels), from, to), 0);
  // The hit rate includes the bucket under way (a ratio does not mind a partial bucket).
  const hits = recent('cache_requests', { result: 'hit' }, Number.POSITIVE_INFINITY);
  const lookups = recent('cache_requests', {}, Number.POSITIVE_INFINITY);
  let shardSkew: number | null = null;
  let serverSkew: number | null = null;
  for (const g of t.db.groups) {
    const k = skewOf(g.shardOps.map((c) => c.value), g.map.logical);
    if (k !== null) shardSkew = Math.max(shardSkew ?? 0, k);
    const holding = g.servers.filter((s) => g.map.shardsOn(s.index).length > 0);
    const ks = skewOf(holding.map((s) => nodeNames(s).reduce((a, n) => a + m.sum('db_ops', { node: n }), 0)), holding.length);
    if (ks !== null) serverSkew = Math.max(serverSkew ?? 0, ks);
  }
  let replicaLag = 0;
  for (const g of t.db.groups) for (const s of g.servers) for (const r of t.db.replicasOf(s)) replicaLag = Math.max(replicaLag, r.lagMs);
  let queueDepth = t.queue.depth();
  for (const [tt, v] of m.seriesOf('queue_depth')) if (tt >= from) queueDepth = Math.max(queueDepth, v);
  const p = (q: number) => {
    const v = m.percentile('fanout_lag_ms', {}, q);
    return v === undefined ? null : round(v);
  };
  return {
    cache_hit_rate: lookups > 0 ? round(hits / lookups, 4) : null,
    fanout_lag_ms: p(99),
    fanout_lag_p50_ms: p(50),
    shard_skew: shardSkew,
    server_skew: serverSkew,
    stale_reads: m.sum('db_stale_reads') + m.sum('feed_stale_reads'),
    replica_lag_ms: round(replicaLag),
    queue_depth: queueDepth,
    deliveries_per_s: round(recent('fanout_deliveries') / ((RECENT_BUCKETS * bucketMs) / 1000)),
    cache_fills_per_s: round(recent('cache_fills') / ((RECENT_BUCKETS * bucketMs) / 1000)),
    db_writes_lost: m.sum('db_writes_lost'),
  };
}
