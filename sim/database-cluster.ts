// The database tier: one cluster per table family group (one for everything, or users / photos /
// graph when vertically partitioned), each a set of physical servers (a primary, its replicas and a
// pgbouncer pool each) that logical shards map onto. Every query is routed, pooled, timed, counted.

import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from './clock.ts';
import { makePrivateDir, writeFileAtomic } from './data-dir.ts';
import { currentActor } from './actor-context.ts';
import { ConnectionPool } from './connection-pool.ts';
import { PrimaryNode, type Conflict, type LogConsumer, type LogEntry, type Sql } from './db-node.ts';
import { simError } from './errors.ts';
import { shardOf } from './ids.ts';
import { HeavyHitters, type CounterHandle, type HistogramHandle, type Metrics } from './metrics.ts';
import type { Prng } from './prng.ts';
import { ReplicaNode } from './replica.ts';
import { ShardMap } from './shard-map.ts';
import { TABLES, TABLE_FAMILY, type Family } from './sql-schema.ts';
import type { TopologyConfig } from './topology-config.ts';

interface NodeStats {
  reads: CounterHandle;
  writes: CounterHandle;
  queryMs: HistogramHandle;
  poolWaitMs: HistogramHandle;
}

export interface PhysicalServer {
  index: number;
  name: string;
  primary: PrimaryNode;
  primaryPool: ConnectionPool;
  replicas: ReplicaNode[];
  replicaPools: ConnectionPool[];
  down: boolean;
}

export interface ClusterGroup {
  name: string;
  families: Family[];
  servers: PhysicalServer[];
  map: ShardMap;
  shardOps: CounterHandle[];
}

export interface ReadOptions {
  /** Who is reading (for read-your-writes and hotspot attribution). */
  actorId?: string;
  /** Force the primary (e.g. read-modify-write decisions). */
  primary?: boolean;
  /**
   * Skip a replica that still owes writes to this logical shard (cache fills: a stale row put in
   * memcached would be served until the next write deletes it). Counted as db_stale_avoided.
   */
  avoidStale?: boolean;
}

export interface MoveReport {
  group: string;
  shardId: number;
  from: string;
  to: string;
  rowsCopied: number;
  entriesCaughtUp: number;
  copyMs: number;
  totalMs: number;
}

/** Who loads one logical shard: the users running queries on it and the rows (ids) they touch. */
export interface ShardAttribution {
  /** Users whose requests ran the queries (the request's actor). */
  actors: HeavyHitters<string>;
  /** The first id on this shard among each query's parameters: the user, media, comment… it is about. */
  subjects: HeavyHitters<bigint>;
  /** Store operation kinds (like.add, user.create, …). */
  kinds: HeavyHitters<string>;
}

/** Keys kept per logical shard in each attribution summary (count). */
const ATTRIBUTION_K = 5;
/** Logical shards whose ops keep a point in each one-second bucket of `shard_ops` (count). */
const SHARD_SERIES_TOP_K = 16;
/** Bands of logical shards whose ops each bucket keeps, for heatmaps (count). */
export const HEAT_BANDS = 128;

/** Wraps `sql` to note the first id (bigint) on `shardId` among its statements' parameters. */
function watchSubject(sql: Sql, shardId: number, seen: { id: bigint | null }): Sql {
  const note = (params: unknown[]) => {
    if (seen.id !== null) return;
    for (const p of params) {
      if (typeof p === 'bigint' && shardOf(p) === shardId) {
        seen.id = p;
        return;
      }
    }
  };
  return {
    get: (q, ...p) => (note(p), sql.get(q, ...p)),
    all: (q, ...p) => (note(p), sql.all(q, ...p)),
    run: (q, ...p) => (note(p), sql.run(q, ...p)),
    column: (q, ...p) => (note(p), sql.column(q, ...p)),
  };
}

const GROUPS_NONE: Array<[string, Family[]]> = [['main', ['users', 'photos', 'graph']]];
const GROUPS_VERTICAL: Array<[string, Family[]]> = [
  ['users', ['users']],
  ['photos', ['photos']],
  ['graph', ['graph']],
];

export class DatabaseCluster {
  readonly groups: ClusterGroup[];
  private readonly byFamily = new Map<Family, ClusterGroup>();
  private readonly stats = new Map<string, NodeStats>();
  private readonly kindCounters = new Map<string, CounterHandle>();
  private readonly lastWriteMs = new Map<string, number>();
  /** When each logical shard last moved to another server (ms). */
  private readonly movedAtMs = new Map<number, number>();
  private readonly rrState = new Map<string, number>();
  private readonly serviceRng: Prng;
  private readonly cfg: TopologyConfig['database'];
  private readonly attribution = new Map<string, Array<ShardAttribution | undefined>>();
  /** Mean extra service time per query (ms); starts at the config's, changeable at run time (faults). */
  serviceTimeMs: number;

  constructor(
    private readonly config: TopologyConfig,
    private readonly deps: { clock: Clock; prng: Prng; metrics: Metrics; dataDir?: string },
  ) {
    this.cfg = config.database;
    this.serviceRng = deps.prng.fork('db-service-time');
    this.serviceTimeMs = config.database.serviceTimeMs;
    if (deps.dataDir) makePrivateDir(join(deps.dataDir, 'db'));
    const m = deps.metrics;
    m.describe('db_ops', 'Queries per database node and operation (read or write)');
    m.describe('db_ops_by_kind', 'Queries per store operation kind');
    m.describe('shard_ops', 'Queries per logical shard');
    m.describe('db_stale_reads', 'Reads served by a replica that had not yet applied writes to that logical shard');
    m.describe('db_query_ms', 'Query latency per node including pool wait and service time');
    m.describe('db_pool_wait_ms', 'Time spent waiting for a pgbouncer connection');
    m.describe('db_pool_peak_in_use', 'Most pooled connections in use at once in the second, by node (primary or replica)');
    m.describe('db_pool_peak_waiting', 'Most queries waiting for a pooled connection at once in the second, by node');
    m.describe('db_replication_backlog', "Replication log entries a primary's slowest replica has not applied, by server");
    m.describe('replica_lag_ms', 'Age of the oldest write a replica has not applied');
    // One counter per logical shard: keeping every shard's point in every bucket of an hour-long
    // run would be millions of points, so only the busiest shards keep theirs (plus bucket totals).
    // Each bucket also keeps its ops per band of logical shards (at most HEAT_BANDS bands), the
    // rows of the report's shard heatmap.
    const bandWidth = Math.ceil(config.shards.logical / HEAT_BANDS);
    m.limitSeries('shard_ops', { topK: SHARD_SERIES_TOP_K, partitionBy: 'cluster', bands: { label: 'shard', width: bandWidth, count: Math.ceil(config.shards.logical / bandWidth) } });
    const layout = config.database.partitioning === 'vertical' ? GROUPS_VERTICAL : GROUPS_NONE;
    this.groups = layout.map(([name, families]) => this.buildGroup(name, families));
    for (const g of this.groups) for (const f of g.families) this.byFamily.set(f, g);
  }

  private buildGroup(name: string, families: Family[]): ClusterGroup {
    const { logical, physical } = this.config.shards;
    let initial: number[] | undefined;
    let count = physical;
    const mapFile = this.deps.dataDir ? join(this.deps.dataDir, `shard-map-${name}.json`) : null;
    if (mapFile && existsSync(mapFile)) {
      const saved = JSON.parse(readFileSync(mapFile, 'utf8')) as { logical: number; servers: number; map: number[] };
      if (saved.logical !== logical) {
        throw simError('SG_ERR_CONFIG_INVALID', `data dir was created with ${saved.logical} logical shards, topology says ${logical}`, { field: 'shards.logical' });
      }
      initial = saved.map;
      count = Math.max(saved.servers, physical);
    }
    const group: ClusterGroup = { name, families, servers: [], map: new ShardMap(logical, physical, initial), shardOps: [] };
    for (let i = 0; i < count; i++) group.servers.push(this.buildServer(group, i));
    for (let s = 0; s < logical; s++) group.shardOps.push(this.deps.metrics.counter('shard_ops', { cluster: name, shard: s }));
    return group;
  }

  private buildServer(group: ClusterGroup, index: number): PhysicalServer {
    const prefix = group.name === 'main' ? 'db' : `${group.name}db`;
    const name = `${prefix}-${index}`;
    const file = this.deps.dataDir ? join(this.deps.dataDir, 'db', `${name}.sqlite`) : null;
    const primary = new PrimaryNode(name, file, this.cfg.replicationLogLimit);
    const replicas: ReplicaNode[] = [];
    const replicaPools: ConnectionPool[] = [];
    for (let r = 0; r < this.cfg.replicas; r++) {
      const rname = `${name}-r${r + 1}`;
      replicas.push(new ReplicaNode(rname, primary, this.cfg.replicaLagMs, this.deps.clock));
      replicaPools.push(new ConnectionPool(rname, this.cfg.poolSize, this.cfg.poolQueueLimit));
    }
    return { index, name, primary, primaryPool: new ConnectionPool(name, this.cfg.poolSize, this.cfg.poolQueueLimit), replicas, replicaPools, down: false };
  }

  groupFor(family: Family): ClusterGroup {
    return this.byFamily.get(family)!;
  }

  groupByName(name: string): ClusterGroup {
    const g = this.groups.find((x) => x.name === name);
    if (!g) throw simError('SG_ERR_INVALID_PARAM', `no database cluster "${name}" (have ${this.groups.map((x) => x.name).join(', ')})`);
    return g;
  }

  serverFor(family: Family, shardId: number): PhysicalServer {
    const g = this.groupFor(family);
    return g.servers[g.map.physicalOf(shardId)]!;
  }

  private nodeStats(node: string): NodeStats {
    let s = this.stats.get(node);
    if (!s) {
      const m = this.deps.metrics;
      s = {
        reads: m.counter('db_ops', { node, op: 'read' }),
        writes: m.counter('db_ops', { node, op: 'write' }),
        queryMs: m.histogram('db_query_ms', { node }),
        poolWaitMs: m.histogram('db_pool_wait_ms', { node }),
      };
      this.stats.set(node, s);
    }
    return s;
  }

  private countKind(kind: string, op: 'read' | 'write'): void {
    const key = kind + '|' + op;
    let c = this.kindCounters.get(key);
    if (!c) {
      c = this.deps.metrics.counter('db_ops_by_kind', { kind, op });
      this.kindCounters.set(key, c);
    }
    c.inc();
  }

  /** Holds a pooled connection for the query's service time; resolves to the ms spent waiting. */
  private async hold(pool: ConnectionPool): Promise<number> {
    const t0 = this.deps.clock.nowMs();
    if (!pool.tryAcquire()) await pool.acquire();
    const waited = this.deps.clock.nowMs() - t0;
    const mean = this.serviceTimeMs;
    if (mean > 0) {
      const ms = this.cfg.serviceTimeDistribution === 'constant' ? mean : this.serviceRng.exponential(mean);
      try {
        await this.deps.clock.sleep(ms);
      } catch (e) {
        pool.release();
        throw e;
      }
    }
    return waited;
  }

  /** Runs `fn` as one transaction on the primary of `shardId`'s server. */
  async write<T>(family: Family, shardId: number, kind: string, fn: (sql: Sql) => T, opts: ReadOptions = {}): Promise<T> {
    const group = this.groupFor(family);
    for (let attempt = 0; attempt < 8; attempt++) {
      const server = group.servers[group.map.physicalOf(shardId)]!;
      const t0 = this.deps.clock.nowMs();
      const waited = await this.hold(server.primaryPool);
      try {
        // The shard may have moved while this query waited for a connection.
        if (group.map.physicalOf(shardId) !== server.index) continue;
        if (server.down) throw simError('SG_ERR_NODE_DOWN', `database primary ${server.name} is down`, { node: server.name });
        if (server.primary.overBudget()) {
          throw simError('SG_ERR_BUDGET_EXHAUSTED', `replication log of ${server.name} is over its budget of ${this.cfg.replicationLogLimit} entries`, { node: server.name });
        }
        const now = this.deps.clock.nowMs();
        const seen = { id: null as bigint | null };
        const result = server.primary.write(shardId, now, (sql) => fn(watchSubject(sql, shardId, seen)));
        const s = this.nodeStats(server.name);
        s.writes.inc();
        s.poolWaitMs.observeMs(waited);
        s.queryMs.observeMs(this.deps.clock.nowMs() - t0);
        group.shardOps[shardId]!.inc();
        this.countKind(kind, 'write');
        const actor = opts.actorId ?? currentActor();
        if (actor) this.noteWrite(actor, shardId, now);
        this.attribute(group, shardId, kind, actor, seen.id);
        return result;
      } finally {
        server.primaryPool.release();
      }
    }
    throw simError('SG_ERR_SHARD_MOVE', `logical shard ${shardId} kept moving while a write waited`);
  }

  /** Space-saving summaries of who and what loads a logical shard (bounded: k keys each per shard). */
  private attribute(group: ClusterGroup, shardId: number, kind: string, actor: string | undefined, subject: bigint | null): void {
    let list = this.attribution.get(group.name);
    if (!list) this.attribution.set(group.name, (list = []));
    let a = list[shardId];
    if (!a) list[shardId] = a = { actors: new HeavyHitters(ATTRIBUTION_K), subjects: new HeavyHitters(ATTRIBUTION_K), kinds: new HeavyHitters(ATTRIBUTION_K) };
    a.kinds.offer(kind);
    if (actor) a.actors.offer(actor);
    if (subject !== null) a.subjects.offer(subject);
  }

  /** Who and what has loaded a logical shard since start, or null if nothing was attributed. */
  shardAttribution(groupName: string, shardId: number): ShardAttribution | null {
    return this.attribution.get(groupName)?.[shardId] ?? null;
  }

  /** Remembers when `actorId` last wrote to logical shard `shardId` (read-your-writes is per shard). */
  private noteWrite(actorId: string, shardId: number, now: number): void {
    if (this.cfg.readPolicy !== 'read-your-writes' || this.cfg.replicas === 0) return;
    this.lastWriteMs.set(actorId + '|' + shardId, now);
    if (this.lastWriteMs.size > 200_000) {
      // Forget writes every replica has applied.
      let oldest = now;
      for (const g of this.groups) for (const s of g.servers) for (const r of s.replicas) oldest = Math.min(oldest, r.oldestPendingMs() ?? now);
      for (const [k, t] of this.lastWriteMs) if (t < oldest) this.lastWriteMs.delete(k);
    }
  }

  private pickReplica(server: PhysicalServer, shardId: number, opts: ReadOptions): number {
    if (opts.primary || server.replicas.length === 0) return -1;
    const policy = this.cfg.readPolicy;
    if (policy === 'primary') return -1;
    const alive = server.replicas.length;
    const i = (this.rrState.get(server.name) ?? 0) % alive;
    this.rrState.set(server.name, i + 1);
    server.replicas[i]!.catchUp();
    if (opts.avoidStale && server.replicas[i]!.isStale(shardId)) {
      this.deps.metrics.inc('db_stale_avoided', { node: server.replicas[i]!.name });
      return -1;
    }
    const actor = opts.actorId ?? currentActor();
    if (policy === 'read-your-writes' && actor) {
      const last = this.lastWriteMs.get(actor + '|' + shardId);
      // The reader's own last write to this shard may not have reached this replica (whatever its
      // lag is now): then the read goes to the primary.
      if (last !== undefined) {
        const replica = server.replicas[i]!;
        const pending = replica.oldestPendingMs();
        if (pending !== null && pending <= last) return -1;
        // Rows a shard move copied here carry the move's time, later than the reader's write.
        const moved = this.movedAtMs.get(shardId);
        if (moved !== undefined && moved >= last && replica.isStale(shardId)) return -1;
      }
    }
    return i;
  }

  /** Runs `fn` on the node the read policy picks for `shardId` (a replica may be stale; counted). */
  async read<T>(family: Family, shardId: number, kind: string, fn: (sql: Sql) => T, opts: ReadOptions = {}): Promise<T> {
    const group = this.groupFor(family);
    for (let attempt = 0; attempt < 8; attempt++) {
      const server = group.servers[group.map.physicalOf(shardId)]!;
      const r = this.pickReplica(server, shardId, opts);
      const pool = r < 0 ? server.primaryPool : server.replicaPools[r]!;
      const t0 = this.deps.clock.nowMs();
      const waited = await this.hold(pool);
      try {
        if (group.map.physicalOf(shardId) !== server.index) continue;
        // A failover may have removed the replica this read picked while it waited: pick again.
        if (r >= 0 && !server.replicas[r]) continue;
        let node: PrimaryNode | ReplicaNode = server.primary;
        if (r >= 0) {
          // pickReplica caught it up; time spent in the pool may have let more entries fall due.
          const replica = server.replicas[r]!;
          if (this.deps.clock.nowMs() !== t0) replica.catchUp();
          if (replica.isStale(shardId)) this.deps.metrics.inc('db_stale_reads', { node: replica.name });
          node = replica;
        } else if (server.down) {
          throw simError('SG_ERR_NODE_DOWN', `database primary ${server.name} is down`, { node: server.name });
        }
        const seen = { id: null as bigint | null };
        const result = fn(watchSubject(node.sql(), shardId, seen));
        const s = this.nodeStats(node.name);
        s.reads.inc();
        s.poolWaitMs.observeMs(waited);
        s.queryMs.observeMs(this.deps.clock.nowMs() - t0);
        group.shardOps[shardId]!.inc();
        this.countKind(kind, 'read');
        this.attribute(group, shardId, kind, opts.actorId ?? currentActor(), seen.id);
        return result;
      } finally {
        pool.release();
      }
    }
    throw simError('SG_ERR_SHARD_MOVE', `logical shard ${shardId} kept moving while a read waited`);
  }

  /**
   * Scatter-gather: runs `fn` once per physical server of the family's cluster, with the logical
   * shards that server holds. Used for searches that cannot be routed by id.
   */
  async scatter<T>(family: Family, kind: string, fn: (sql: Sql, shardIds: number[]) => T, opts: ReadOptions = {}): Promise<T[]> {
    const group = this.groupFor(family);
    const out: T[] = [];
    for (const server of group.servers) {
      const shards = group.map.shardsOn(server.index);
      if (shards.length === 0) continue;
      out.push(await this.read(family, shards[0]!, kind, (sql) => fn(sql, shards), opts));
    }
    return out;
  }

  /**
   * The bulk path for seeding: rows of one table (first column `shard_id`) grouped by logical
   * shard and written per server in one transaction each, logged once per shard for replicas.
   * Returns, per input row, whether it was written (false: `ignore` kept an existing row).
   */
  bulkInsert(table: string, columns: string[], rows: readonly unknown[][], opts: { conflict?: Conflict } = {}): { inserted: boolean[] } {
    return this.bulkWrite(table, columns, rows, opts, true) as { inserted: boolean[] };
  }

  /**
   * As bulkInsert, many rows per statement, when the caller needs only how many rows were written
   * (seeding fresh rows): the fastest path into the shards.
   */
  bulkInsertCounted(table: string, columns: string[], rows: readonly unknown[][], opts: { conflict?: Conflict } = {}): number {
    return this.bulkWrite(table, columns, rows, opts, false) as number;
  }

  private bulkWrite(table: string, columns: string[], rows: readonly unknown[][], opts: { conflict?: Conflict }, perRow: boolean): { inserted: boolean[] } | number {
    const family = TABLE_FAMILY[table];
    if (!family) throw simError('SG_ERR_INVALID_PARAM', `unknown table ${table}`);
    if (columns[0] !== 'shard_id') throw simError('SG_ERR_INVALID_PARAM', 'bulk rows must start with shard_id');
    const group = this.groupFor(family);
    const byShard = new Map<number, number[]>();
    rows.forEach((r, i) => {
      const s = Number(r[0]);
      if (!(s >= 0 && s < group.map.logical)) throw simError('SG_ERR_INVALID_PARAM', `row ${i} of ${table} has no valid shard_id`);
      let list = byShard.get(s);
      if (!list) byShard.set(s, (list = []));
      list.push(i);
    });
    const inserted: boolean[] = perRow ? new Array<boolean>(rows.length).fill(false) : [];
    let count = 0;
    const now = this.deps.clock.nowMs();
    for (const [shardId, idx] of byShard) {
      const server = group.servers[group.map.physicalOf(shardId)]!;
      if (server.down) throw simError('SG_ERR_NODE_DOWN', `database primary ${server.name} is down`, { node: server.name });
      const shardRows = idx.map((i) => rows[i]!);
      if (perRow) server.primary.writeRows(shardId, now, table, columns, shardRows, opts.conflict ?? 'replace').forEach((w, j) => (inserted[idx[j]!] = w));
      else count += server.primary.writeRowsCounted(shardId, now, table, columns, shardRows, opts.conflict ?? 'replace');
      this.nodeStats(server.name).writes.inc();
      group.shardOps[shardId]!.inc();
      this.countKind(`bulk.${table}`, 'write');
    }
    return perRow ? { inserted } : count;
  }

  /** Adds per-row deltas to an integer column, keyed by `id`: one statement per logical shard. */
  async bulkAdd(table: string, column: string, deltas: ReadonlyMap<string, number>): Promise<void> {
    const family = TABLE_FAMILY[table];
    if (!family) throw simError('SG_ERR_INVALID_PARAM', `unknown table ${table}`);
    if (!/^[a-z_]+$/.test(column)) throw simError('SG_ERR_INVALID_PARAM', `bad column ${column}`);
    const byShard = new Map<number, Record<string, number>>();
    for (const [id, d] of deltas) {
      const s = shardOf(id);
      const o = byShard.get(s) ?? {};
      o[id] = d;
      byShard.set(s, o);
    }
    for (const [shardId, obj] of byShard) {
      await this.write(family, shardId, `bulk.${table}.${column}`, (sql) =>
        sql.run(`UPDATE ${table} SET ${column} = ${column} + CAST(d.value AS INTEGER) FROM json_each(?) AS d WHERE ${table}.id = CAST(d.key AS INTEGER)`, JSON.stringify(obj)),
      );
    }
  }

  /** Adds an empty physical server to a cluster (the target of a split). */
  addServer(groupName: string): PhysicalServer {
    const group = this.groupByName(groupName);
    const server = this.buildServer(group, group.servers.length);
    group.servers.push(server);
    this.saveMap(group);
    return server;
  }

  /**
   * Moves one logical shard to another physical server while it keeps serving: copy a consistent
   * snapshot of its rows, catch up on the writes made meanwhile from the source's log, then flip
   * the map in one step and drop the rows from the source.
   */
  async moveShard(groupName: string, shardId: number, toIndex: number, opts: { batch?: number } = {}): Promise<MoveReport> {
    const group = this.groupByName(groupName);
    if (!Number.isInteger(shardId) || shardId < 0 || shardId >= group.map.logical) throw simError('SG_ERR_SHARD_MOVE', `no logical shard ${shardId}`);
    const src = group.servers[group.map.physicalOf(shardId)]!;
    const dst = group.servers[toIndex];
    if (!dst) throw simError('SG_ERR_SHARD_MOVE', `no physical server ${toIndex} in cluster ${groupName}`);
    if (dst === src) throw simError('SG_ERR_SHARD_MOVE', `logical shard ${shardId} is already on ${src.name}`);
    if (src.down || dst.down) throw simError('SG_ERR_SHARD_MOVE', 'both servers must be up to move a shard');
    const clock = this.deps.clock;
    const t0 = clock.nowMs();

    // Follow the source's log for this shard from the snapshot point on.
    let cursor = src.primary.logEnd;
    const follower: LogConsumer = { onAppend: () => undefined, position: () => cursor };
    src.primary.addConsumer(follower);
    let rowsCopied = 0;
    let caught = 0;
    try {
      // 1. Snapshot: synchronous, so no write can interleave with the copy.
      for (const table of TABLES) {
        if (!group.families.includes(TABLE_FAMILY[table]!)) continue;
        const rows = src.primary.db.prepare(`SELECT * FROM ${table} WHERE shard_id = ?`).raw(true).safeIntegers(true).all(shardId) as unknown[][];
        if (rows.length === 0) continue;
        const columns = src.primary.db.prepare(`SELECT * FROM ${table} LIMIT 0`).columns().map((c) => c.name);
        for (let i = 0; i < rows.length; i += 50_000) dst.primary.writeRows(shardId, clock.nowMs(), table, columns, rows.slice(i, i + 50_000), 'replace');
        rowsCopied += rows.length;
      }
      const copyMs = clock.nowMs() - t0;
      const applyUpTo = (end: number) => {
        for (; cursor < end; cursor++) {
          const e = src.primary.entryAt(cursor) as LogEntry;
          if (e.shardId === shardId) {
            dst.primary.applyLogged(e, clock.nowMs());
            caught++;
          }
        }
      };
      // 2. Catch up in batches while writes continue (budgeted).
      const batch = opts.batch ?? 1000;
      for (let round = 0; src.primary.logEnd - cursor > batch; round++) {
        if (round > 100_000) throw simError('SG_ERR_BUDGET_EXHAUSTED', `shard ${shardId} move could not catch up with its writes`);
        applyUpTo(Math.min(src.primary.logEnd, cursor + batch));
        await new Promise((r) => setImmediate(r));
      }
      // 3. Flip: the rest of the log and the repoint happen in one synchronous step.
      applyUpTo(src.primary.logEnd);
      group.map.repoint(shardId, dst.index);
      this.movedAtMs.set(shardId, clock.nowMs());
      this.saveMap(group);
      src.primary.removeConsumer(follower);
      // 4. Drop the moved rows from the source (logged, so its replicas drop them too).
      src.primary.write(shardId, clock.nowMs(), (sql) => {
        for (const table of TABLES) if (group.families.includes(TABLE_FAMILY[table]!)) sql.run(`DELETE FROM ${table} WHERE shard_id = ?`, shardId);
      });
      this.deps.metrics.inc('shard_moves', { cluster: group.name });
      return { group: group.name, shardId, from: src.name, to: dst.name, rowsCopied, entriesCaughtUp: caught, copyMs, totalMs: clock.nowMs() - t0 };
    } catch (e) {
      src.primary.removeConsumer(follower);
      throw e;
    }
  }

  private saveMap(group: ClusterGroup): void {
    if (!this.deps.dataDir) return;
    const file = join(this.deps.dataDir, `shard-map-${group.name}.json`);
    writeFileAtomic(file, JSON.stringify({ logical: group.map.logical, servers: group.servers.length, map: group.map.toArray() }));
  }

  /** Per pool: the one-second bucket its peaks were last recorded in, and the peaks so far in it. */
  private readonly poolPeaks = new Map<string, { bucket: number; inUse: number; waiting: number }>();

  /**
   * Records a pool's high-water marks since the last sample as gauges. Samples come several times a
   * second (timer, telemetry, describe); the bucket keeps the largest, so no peak is overwritten.
   */
  private samplePool(node: string, pool: ConnectionPool): void {
    const m = this.deps.metrics;
    const bucket = m.bucketIndex();
    const now = pool.takePeaks();
    const prev = this.poolPeaks.get(node);
    const peaks = prev && prev.bucket === bucket ? { bucket, inUse: Math.max(prev.inUse, now.inUse), waiting: Math.max(prev.waiting, now.waiting) } : { bucket, ...now };
    this.poolPeaks.set(node, peaks);
    m.set('db_pool_peak_in_use', { node }, peaks.inUse);
    m.set('db_pool_peak_waiting', { node }, peaks.waiting);
  }

  /** Samples replica lag, pool and replication-log gauges into the metrics (called on a timer and on describe). */
  sample(): void {
    const m = this.deps.metrics;
    for (const g of this.groups) {
      for (const s of g.servers) {
        m.set('db_pool_in_use', { node: s.name }, s.primaryPool.inUse);
        m.set('db_pool_waiting', { node: s.name }, s.primaryPool.waiting);
        this.samplePool(s.name, s.primaryPool);
        s.replicas.forEach((r, i) => {
          const pool = s.replicaPools[i];
          if (pool) this.samplePool(r.name, pool);
        });
        m.set('db_replication_backlog', { node: s.name }, s.primary.backlog());
        for (const r of s.replicas) {
          r.catchUp();
          m.set('replica_lag_ms', { node: r.name }, r.currentLagMs());
        }
      }
    }
  }

  describe(): unknown {
    this.sample();
    return this.groups.map((g) => ({
      name: g.name,
      families: g.families,
      logicalShards: g.map.logical,
      map: g.map.ranges(),
      servers: g.servers.map((s) => ({
        name: s.name,
        index: s.index,
        down: s.down,
        logicalShards: g.map.shardsOn(s.index).length,
        pool: { size: s.primaryPool.size, inUse: s.primaryPool.inUse, waiting: s.primaryPool.waiting },
        ops: { reads: this.nodeStats(s.name).reads.value, writes: this.nodeStats(s.name).writes.value },
        replicationBacklog: s.primary.backlog(),
        replicas: s.replicas.map((r) => ({ name: r.name, lagMs: r.currentLagMs(), configuredLagMs: r.lagMs, backlog: r.backlog(), reads: this.nodeStats(r.name).reads.value })),
      })),
    }));
  }

  /**
   * Stops every replica from following its primary (writes are no longer logged for it), for a
   * bulk load that ends with reprovisionReplicas: replaying millions of logged rows on each replica
   * would cost as much again as the load. Until then replicas serve what they had.
   */
  pauseReplication(): void {
    for (const g of this.groups) for (const s of g.servers) for (const r of s.replicas) s.primary.removeConsumer(r);
  }

  /**
   * Replaces every replica of every server with a fresh base backup of its primary, keeping its
   * name and lag, as provisioning a new replica does (after a bulk load; see pauseReplication).
   */
  reprovisionReplicas(): void {
    for (const g of this.groups) {
      for (const s of g.servers) {
        s.replicas = s.replicas.map((old) => {
          old.close();
          return new ReplicaNode(old.name, s.primary, old.lagMs, this.deps.clock);
        });
      }
    }
  }

  /** Applies every pending replica entry (graceful shutdown, tests). */
  drainReplicas(): void {
    for (const g of this.groups) for (const s of g.servers) for (const r of s.replicas) r.catchUp(true);
  }

  close(): void {
    for (const g of this.groups) {
      this.saveMap(g);
      for (const s of g.servers) {
        for (const r of s.replicas) r.close();
        s.primary.close();
      }
    }
  }
}
