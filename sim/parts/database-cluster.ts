// The database tier: one cluster per table family group (one for everything, or users / photos /
// graph when vertically partitioned), each a set of physical servers (a primary, its replicas and a
// pgbouncer pool each) that logical shards map onto. Every query is routed, pooled, timed, counted.
// A query is an async callback over `Sql`; it runs holding its node's lock (node-lock.ts), a write
// as one transaction.

import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../engine/clock.ts';
import { makePrivateDir, writeFileAtomic } from './data-dir.ts';
import { currentActor, currentWork } from '../engine/actor-context.ts';
import { ConnectionPool } from './connection-pool.ts';
import { PrimaryNode, type Conflict, type Row, type RowSource, type Sql } from './db-node.ts';
import { lockOrder, withLock } from './node-lock.ts';
import { isSimError, simError } from '../engine/errors.ts';
import { shardOf } from './ids.ts';
import { HeavyHitters, type CounterHandle, type HistogramHandle, type Metrics } from '../observability/metrics.ts';
import type { Prng } from '../engine/prng.ts';
import { ReplicaNode } from './replica.ts';
import { RowCopy, type RowSink } from './row-copy.ts';
import { ShardMap } from './shard-map.ts';
import { TABLES, TABLE_FAMILY, type Family } from '../domain/sql-schema.ts';
import { TimeSlicer } from '../engine/time-slicer.ts';
import type { TopologyConfig } from '../topology-config.ts';

interface NodeStats {
  reads: CounterHandle;
  writes: CounterHandle;
  queryMs: HistogramHandle;
  poolWaitMs: HistogramHandle;
}

/** A node of a real database server (backends/postgres/pg-tier.ts): a primary or a streaming replica. */
export interface RemoteDbNode {
  readonly name: string;
  /** pgbouncer in front of it: the pool a query waits in (the same size as the client pool behind it). */
  readonly gate: ConnectionPool;
  /** A replica's replay position as last seen (a read's or the poll's): never ahead of the real one. */
  readonly replayLsn: number;
}

/** What a real failover did (RemoteDbServer.failover). */
export interface RemoteFailover {
  /** The replica promoted, or null when there was none (the server is down). */
  promoted: string | null;
  /** Writes committed on the old primary past what the promoted replica had received: lost (count). */
  writesLost: number;
  /** The same by logical shard, largest first. */
  lostByShard: Array<{ shard: number; writes: number }>;
  /** False when more writes were made than the record of commits keeps: writesLost is then a lower bound. */
  complete: boolean;
  /** WAL positions: the old primary's last write noted, and what the promoted replica had received and replayed. */
  positions: { lastWrite: number; received: number | null; replayed: number };
  /** Where the promoted replica's recovery ended (WAL past it was lost), and its URL: what the other processes of a tier adopt (0 and null when none was promoted). */
  endLsn: number;
  promotedUrl: string | null;
}

/** What another process's failover of a server means for this one (a tier's follower: RemoteDbServer.adoptFailover). */
export interface AdoptedFailover {
  /** Writes this process committed past where recovery ended: lost with the old primary (count). */
  writesLost: number;
  /** The same by logical shard, largest first (ten at most). */
  lostByShard: Array<{ shard: number; writes: number }>;
  complete: boolean;
}

/** A running copy of a logical shard from one real server to another (RemoteDatabase.copyShard). */
export interface RemoteShardCopy {
  /** Resolves when the initial copy is done (writes go on meanwhile, followed). */
  synced(): Promise<void>;
  /** Writes to the shard are stopped: waits until the destination has all of them. */
  finish(): Promise<{ rowsCopied: number; catchUpMs: number }>;
  /** Ends the copy: keep the destination's rows (a finished move) or drop them (an aborted one). */
  close(keep: boolean): Promise<void>;
  /** After the switch: the source drops its copy. */
  dropSource(): Promise<void>;
}

/**
 * A physical server on a real database, as DatabaseCluster routes to it. Its data lives there: the
 * cluster keeps no SQLite copy (a PhysicalServer's `primary` is then an empty, unused node).
 */
export interface RemoteDbServer {
  primary: RemoteDbNode;
  replicas: RemoteDbNode[];
  /** One transaction on the primary in the shard's schema; resolves with the WAL position after its COMMIT. */
  write<T>(shardId: number, fn: (sql: Sql) => Promise<T>, atMs: number): Promise<{ result: T; lsn: number }>;
  /** One read transaction on `node` in one shard's schema, or across several (a scatter); with the replay position its snapshot saw (0 on a primary). */
  read<T>(node: RemoteDbNode, shards: number | readonly number[], fn: (sql: Sql) => Promise<T>): Promise<{ result: T; replayLsn: number }>;
  /** Rows of one logical shard in one transaction; `written` per row when perRow. */
  writeRows(shardId: number, table: string, columns: readonly string[], rows: readonly unknown[][], conflict: Conflict, perRow: boolean, atMs: number): Promise<{ changes: number; written: boolean[] | null; lsn: number }>;
  /** The WAL position after the shard's last write through this process (0: none). */
  lastWriteLsn(shardId: number): number;
  /** How old the oldest write a replica had not replayed was at its last reading (ms). */
  lagMs(replica: RemoteDbNode): number;
  /** The position a replica must have replayed to hold the shard (a move brought it to this server then), or 0. */
  arrivedLsn(shardId: number): number;
  /** A move (made by another process of a tier) brought the shard here: its replicas hold it once they replay past `lsn`. */
  adoptShard(shardId: number, lsn: number): void;
  /** Writes through this process a replica has not replayed (count). */
  backlog(replica: RemoteDbNode): number;
  /** A replica's configured apply delay (ms). */
  applyDelayMs(replica: RemoteDbNode): number;
  /** Fails the primary (its server process is stopped, as a crash) over to the replica that received the most; with none, the server is down. */
  failover(): Promise<RemoteFailover>;
  /** Starts a primary stopped by a failover without a replica again (a restart: its data is all there). */
  restart(): Promise<void>;
  /**
   * Another process of the tier failed this server over (serve --workers): the replica at
   * `promotedUrl` is the primary now, and recovery ended at `endLsn`; nothing is stopped or promoted here.
   */
  adoptFailover(promotedUrl: string, endLsn: number): Promise<AdoptedFailover>;
  /** Another process of the tier restarted this server's primary: connect to it again. */
  adoptRestart(): void;
  /** Real replication lag: the replica applies each commit `ms` after it was made (0: at once). */
  setApplyDelay(replica: RemoteDbNode, ms: number): Promise<void>;
  /** Pauses or resumes the replica's replay (it still receives WAL). */
  setReplayPaused(replica: RemoteDbNode, paused: boolean): Promise<void>;
  /** Cuts or restores the replica's WAL stream (a partition: what it does not receive is lost if the primary fails meanwhile). */
  setStreaming(replica: RemoteDbNode, on: boolean): Promise<void>;
}

/** The database tier on real servers (backends/postgres/pg-tier.ts). */
export interface RemoteDatabase {
  readonly servers: readonly RemoteDbServer[];
  /** Logical shard → index of the server holding it, as the servers say at open. */
  readonly map: readonly number[];
  /** Starts copying a logical shard between two servers (by index). */
  copyShard(shardId: number, from: number, to: number): Promise<RemoteShardCopy>;
  /** Waits until every replica has replayed what its primary had written when called (bounded). */
  catchUp(timeoutMs: number): Promise<void>;
  /** Reads every position now. */
  pollNow(): Promise<void>;
  describe(): unknown;
}

export interface PhysicalServer {
  index: number;
  name: string;
  primary: PrimaryNode;
  primaryPool: ConnectionPool;
  replicas: ReplicaNode[];
  replicaPools: ConnectionPool[];
  down: boolean;
  /** The real server behind it, when the tier is on real databases (then `primary` and `replicas` are unused). */
  remote: RemoteDbServer | null;
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
  /** Rows the scan copied (count). */
  rowsCopied: number;
  /** Rows written during the copy and copied again, or deleted, before the switch (count). */
  entriesCaughtUp: number;
  /** Slices the move ran in, each a turn of the event loop given back first (count). */
  slices: number;
  /** From the start to the switch-over (ms). */
  copyMs: number;
  /** Set when the move switched but the source could not drop its copy (why): the shard is served from the destination. */
  sourceKept?: string;
  /** Including the removal of the rows from the source (ms). */
  totalMs: number;
}

/** Where a store callback runs, as a tap (SqlTap) sees it. */
export interface TapScope {
  op: 'read' | 'write' | 'scatter';
  family: Family;
  /** The store operation kind (user.get, like.add, …). */
  kind: string;
  /** The callback's logical shard (a scatter's: the first of shardIds, whose server it runs on). */
  shardId: number;
  /** A scatter's logical shards (every one its server holds), else null. */
  shardIds: readonly number[] | null;
  /** The node it runs on. */
  node: string;
}

/** Rows a bulk insert wrote outside any callback, as a tap sees them (after they were written). */
export interface TapBulk {
  table: string;
  columns: readonly string[];
  /** Every row given, written or not (first column shard_id). */
  rows: readonly unknown[][];
  conflict: Conflict;
  /** Rows written (count). */
  changes: number;
  /** Per row, whether it was written, when the caller asked to know. */
  inserted: readonly boolean[] | null;
}

/**
 * Sees every store callback and bulk insert, for tests that record the statements the service
 * runs (test/postgres-dialect.test.ts replays them on Postgres). DatabaseCluster.tap is null
 * unless a test sets it: then each callback costs one property test more, and nothing else.
 */
export interface SqlTap {
  /** Runs callback `fn`, handing it `sql` or a wrapper of it, and returns what it returns. */
  callback<T>(scope: TapScope, sql: Sql, fn: (sql: Sql) => Promise<T>): Promise<T>;
  /** Told of each bulk insert once it has written its rows. */
  bulk?(write: TapBulk): void;
}

/** The RowSource of rows held as arrays. */
function arraySource(rows: readonly unknown[][]): RowSource {
  return {
    length: rows.length,
    shardOf: (i) => Number(rows[i]![0]),
    fill: (i, params, at) => {
      const r = rows[i]!;
      for (let c = 0; c < r.length; c++) params[at + c] = r[c];
    },
  };
}

/** Parameters per statement of the bulk path on real servers (Postgres takes at most 65,535). */
const REMOTE_BULK_PARAMS = 8000;
/** How long a bulk load waits for real replicas to replay it (ms). */
const REMOTE_CATCH_UP_MS = 120_000;

/** A statement named a table or schema that is not there (Postgres 42P01, 3F000). */
function isMissingRelation(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === '42P01' || code === '3F000';
}

/** Rows deleted per statement when a moved shard leaves a server (count). */
const DELETE_ROWS = 1000;

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

/**
 * Wraps `sql` to note the first id (bigint) on `shardId` among its statements' parameters (`id`),
 * and refuses statements once ended (a read's callback is over: the node's lock is no longer its).
 * A class, not an object of closures: one is made per query, and the TypeScript loader names
 * every closure it makes (a defineProperty each).
 */
class WatchedSql implements Sql {
  id: bigint | null = null;
  private ended = false;
  constructor(
    private readonly sql: Sql,
    private readonly shardId: number,
  ) {}

  end(): void {
    this.ended = true;
  }

  /** Notes the id; false once ended. */
  private note(params: unknown[]): boolean {
    if (this.ended) return false;
    if (this.id !== null) return true;
    for (const p of params) {
      if (typeof p === 'bigint' && shardOf(p) === this.shardId) {
        this.id = p;
        return true;
      }
    }
    return true;
  }

  get<T = Row>(q: string, ...p: unknown[]): Promise<T | undefined> {
    return this.note(p) ? this.sql.get<T>(q, ...p) : afterEnd();
  }
  all<T = Row>(q: string, ...p: unknown[]): Promise<T[]> {
    return this.note(p) ? this.sql.all<T>(q, ...p) : afterEnd();
  }
  run(q: string, ...p: unknown[]): Promise<{ changes: number }> {
    return this.note(p) ? this.sql.run(q, ...p) : afterEnd();
  }
  column<T = unknown>(q: string, ...p: unknown[]): Promise<T[]> {
    return this.note(p) ? this.sql.column<T>(q, ...p) : afterEnd();
  }
}

function afterEnd(): Promise<never> {
  return Promise.reject(new Error('a statement ran after the end of its read callback (a missing await?)'));
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
  /** Gives long work (bulk loads, moves, replica copies and catch-up) the event loop in slices. */
  readonly slicer: TimeSlicer;
  /** Sees every callback and bulk insert when set (tests only; see SqlTap). */
  tap: SqlTap | null = null;

  constructor(
    private readonly config: TopologyConfig,
    private readonly deps: { clock: Clock; prng: Prng; metrics: Metrics; dataDir?: string; slicer?: TimeSlicer; remote?: RemoteDatabase },
  ) {
    this.cfg = config.database;
    this.slicer = deps.slicer ?? new TimeSlicer();
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
    m.describe('replica_lag_ms', 'Replication delay per sample: the longest a write applied since the last sample waited, or the age of the oldest write still owed (ms)');
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
    const remote = this.deps.remote;
    if (remote) {
      // The servers say which shards they hold (pg-tier.ts): no map file to disagree with them.
      initial = [...remote.map];
      count = remote.servers.length;
    }
    const mapFile = this.deps.dataDir && !remote ? join(this.deps.dataDir, `shard-map-${name}.json`) : null;
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
    const remote = this.deps.remote?.servers[index];
    if (remote) {
      // The rows live on the real server; the SQLite node is there for the type only, empty, never used.
      const primary = new PrimaryNode(name, null, this.cfg.replicationLogLimit);
      return { index, name, primary, primaryPool: remote.primary.gate, replicas: [], replicaPools: [], down: false, remote };
    }
    const file = this.deps.dataDir ? join(this.deps.dataDir, 'db', `${name}.sqlite`) : null;
    const primary = new PrimaryNode(name, file, this.cfg.replicationLogLimit);
    const replicas: ReplicaNode[] = [];
    const replicaPools: ConnectionPool[] = [];
    for (let r = 0; r < this.cfg.replicas; r++) {
      const rname = `${name}-r${r + 1}`;
      // A byte copy: the primary is new (empty, or just opened from its file) and serves nothing yet.
      replicas.push(new ReplicaNode(rname, primary, this.cfg.replicaLagMs, this.deps.clock, this.slicer, 'image'));
      replicaPools.push(new ConnectionPool(rname, this.cfg.poolSize, this.cfg.poolQueueLimit));
    }
    return { index, name, primary, primaryPool: new ConnectionPool(name, this.cfg.poolSize, this.cfg.poolQueueLimit), replicas, replicaPools, down: false, remote: null };
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

  /** A store callback that ran on `node`: its op, pool wait and latency, its logical shard and its kind. */
  private countQuery(group: ClusterGroup, node: string, op: 'read' | 'write', shardId: number, kind: string, waited: number, t0: number): void {
    const s = this.nodeStats(node);
    (op === 'read' ? s.reads : s.writes).inc();
    s.poolWaitMs.observeMs(waited);
    s.queryMs.observeMs(this.deps.clock.nowMs() - t0);
    group.shardOps[shardId]!.inc();
    this.countKind(kind, op);
  }

  /** Every query is counted here: by kind, and in the work of the request or job that made it. */
  private countKind(kind: string, op: 'read' | 'write'): void {
    const work = currentWork();
    if (work) {
      if (op === 'read') work.dbReads++;
      else work.dbWrites++;
    }
    const key = kind + '|' + op;
    let c = this.kindCounters.get(key);
    if (!c) {
      c = this.deps.metrics.counter('db_ops_by_kind', { kind, op });
      this.kindCounters.set(key, c);
    }
    c.inc();
  }

  /**
   * Holds a pooled connection for the query's service time; resolves to the ms spent waiting.
   * Callers take a free connection themselves when there is no service time (no promise then).
   */
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

  /**
   * Runs `fn` as one transaction on the primary of `shardId`'s server, holding the primary's lock
   * from before BEGIN until after COMMIT or ROLLBACK.
   */
  async write<T>(family: Family, shardId: number, kind: string, fn: (sql: Sql) => Promise<T>, opts: ReadOptions = {}): Promise<T> {
    const group = this.groupFor(family);
    if (this.deps.remote) return this.remoteWrite(group, family, shardId, kind, fn, opts);
    for (let attempt = 0; attempt < 8; attempt++) {
      const server = group.servers[group.map.physicalOf(shardId)]!;
      const t0 = this.deps.clock.nowMs();
      const waited = this.serviceTimeMs <= 0 && server.primaryPool.tryAcquire() ? 0 : await this.hold(server.primaryPool);
      try {
        // The shard may have moved while this query waited for a connection.
        if (group.map.physicalOf(shardId) !== server.index) continue;
        if (server.down) throw simError('SG_ERR_NODE_DOWN', `database primary ${server.name} is down`, { node: server.name });
        const primary = server.primary;
        // Taken at once when free; otherwise the shard may move, or the primary fail over, meanwhile.
        if (!primary.lock.tryAcquire()) {
          await primary.lock.acquire();
          if (group.map.physicalOf(shardId) !== server.index || server.primary !== primary || server.down) {
            primary.lock.release();
            continue;
          }
        }
        try {
          if (primary.overBudget()) {
            throw simError('SG_ERR_BUDGET_EXHAUSTED', `replication log of ${server.name} is over its budget of ${this.cfg.replicationLogLimit} entries`, { node: server.name });
          }
          const now = this.deps.clock.nowMs();
          // One transaction: BEGIN, the callback, then COMMIT (and the log) or ROLLBACK.
          const sql = primary.begin();
          const seen = new WatchedSql(sql, shardId);
          let result: T;
          try {
            result = await (this.tap ? this.tap.callback({ op: 'write', family, kind, shardId, shardIds: null, node: primary.name }, seen, fn) : fn(seen));
          } catch (e) {
            primary.rollback(sql);
            throw e;
          }
          primary.commit(sql, shardId, now);
          this.countQuery(group, server.name, 'write', shardId, kind, waited, t0);
          const actor = opts.actorId ?? currentActor();
          if (actor) this.noteWrite(actor, shardId, now);
          this.attribute(group, shardId, kind, actor, seen.id);
          return result;
        } finally {
          primary.lock.release();
        }
      } finally {
        server.primaryPool.release();
      }
    }
    throw simError('SG_ERR_SHARD_MOVE', `logical shard ${shardId} kept moving while a write waited`);
  }

  // ------------------------------------------------------------------ on real database servers

  /** Writes to a logical shard whose move is switching over wait on its promise (remote moves). */
  private readonly frozen = new Map<number, Promise<void>>();
  /** Opens what tierFreeze froze (a tier's follower, per logical shard). */
  private readonly thaw = new Map<number, () => void>();
  /**
   * Set by a tier's leader (serve --workers; server/tier/): a move's switch-over across the other
   * server processes: `freeze` resolves once every one has stopped writing to the shard and its
   * writes under way have ended; `commit` repoints the shard in every one and lets their writes go
   * on (to the destination); `abort` lets them go on where they were.
   */
  tierSwitch: {
    freeze(group: string, shardId: number): Promise<void>;
    commit(group: string, shardId: number, to: number, arrivedLsn: number): Promise<void>;
    abort(group: string, shardId: number): Promise<void>;
  } | null = null;
  /** Writes under way per logical shard, and who waits for them to end (remote moves). */
  private readonly writing = new Map<number, number>();
  private readonly drained = new Map<number, () => void>();
  /**
   * Per reader and logical shard: the WAL position after the reader's last write, and on which
   * server (read-your-writes on real replicas; a position means nothing on another server).
   */
  private readonly lastWriteLsnOf = new Map<string, { server: RemoteDbServer; lsn: number }>();

  /**
   * Runs `op` on the primary of `shardId`'s real server: after a move's switch-over, with a pooled
   * connection, counted among the shard's writes under way (a move waits for them), again on the
   * new server if the shard moved meanwhile.
   */
  private async onRemotePrimary<T>(group: ClusterGroup, shardId: number, op: (server: PhysicalServer, remote: RemoteDbServer, waited: number, t0: number) => Promise<T>): Promise<T> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const frozen = this.frozen.get(shardId);
      if (frozen) await frozen;
      const server = group.servers[group.map.physicalOf(shardId)]!;
      const remote = server.remote!;
      const pool = remote.primary.gate;
      const t0 = this.deps.clock.nowMs();
      const waited = this.serviceTimeMs <= 0 && pool.tryAcquire() ? 0 : await this.hold(pool);
      try {
        if (group.map.physicalOf(shardId) !== server.index || this.frozen.has(shardId)) continue;
        if (server.down) throw simError('SG_ERR_NODE_DOWN', `database primary ${server.name} is down`, { node: server.name });
        this.writing.set(shardId, (this.writing.get(shardId) ?? 0) + 1);
        try {
          return await op(server, remote, waited, t0);
        } finally {
          const n = this.writing.get(shardId)! - 1;
          if (n > 0) this.writing.set(shardId, n);
          else {
            this.writing.delete(shardId);
            this.drained.get(shardId)?.();
          }
        }
      } finally {
        pool.release();
      }
    }
    throw simError('SG_ERR_SHARD_MOVE', `logical shard ${shardId} kept moving while a write waited`);
  }

  private async remoteWrite<T>(group: ClusterGroup, family: Family, shardId: number, kind: string, fn: (sql: Sql) => Promise<T>, opts: ReadOptions): Promise<T> {
    return this.onRemotePrimary(group, shardId, async (server, remote, waited, t0) => {
      const now = this.deps.clock.nowMs();
      let seen: WatchedSql | null = null;
      const { result, lsn } = await remote.write(
        shardId,
        (sql) => {
          seen = new WatchedSql(sql, shardId);
          return this.tap ? this.tap.callback({ op: 'write', family, kind, shardId, shardIds: null, node: server.name }, seen, fn) : fn(seen);
        },
        now,
      );
      this.countQuery(group, server.name, 'write', shardId, kind, waited, t0);
      const actor = opts.actorId ?? currentActor();
      if (actor && lsn > 0 && this.cfg.readPolicy === 'read-your-writes' && remote.replicas.length > 0) this.noteRemoteWrite(remote, actor, shardId, lsn);
      this.attribute(group, shardId, kind, actor, (seen as WatchedSql | null)?.id ?? null);
      return result;
    });
  }

  private noteRemoteWrite(remote: RemoteDbServer, actor: string, shardId: number, lsn: number): void {
    this.lastWriteLsnOf.set(actor + '|' + shardId, { server: remote, lsn });
    if (this.lastWriteLsnOf.size > 200_000) {
      // Forget writes every replica of their server has replayed.
      for (const [k, v] of this.lastWriteLsnOf) if (v.server.replicas.every((r) => r.replayLsn >= v.lsn)) this.lastWriteLsnOf.delete(k);
    }
  }

  /** The replica a read goes to (its index), or -1 for the primary: as pickReplica, by WAL positions. */
  private pickRemoteReplica(server: PhysicalServer, remote: RemoteDbServer, shardId: number, opts: ReadOptions): number {
    const policy = this.cfg.readPolicy;
    if (opts.primary || remote.replicas.length === 0 || policy === 'primary') return -1;
    const i = (this.rrState.get(server.name) ?? 0) % remote.replicas.length;
    this.rrState.set(server.name, i + 1);
    const replica = remote.replicas[i]!;
    // replayLsn is the position last seen, never ahead of the real one: these decisions err towards the primary.
    // A shard a move just brought here is on the replica once it has replayed the copy.
    if (replica.replayLsn < remote.arrivedLsn(shardId)) return -1;
    if (opts.avoidStale && replica.replayLsn < remote.lastWriteLsn(shardId)) {
      this.deps.metrics.inc('db_stale_avoided', { node: replica.name });
      return -1;
    }
    const actor = opts.actorId ?? currentActor();
    if (policy === 'read-your-writes' && actor) {
      const last = this.lastWriteLsnOf.get(actor + '|' + shardId);
      // A write on another server (before a move) is on this one's primary, and on its replicas once they hold the shard (above).
      if (last !== undefined && last.server === remote && last.lsn > replica.replayLsn) return -1;
    }
    return i;
  }

  private async remoteRead<T>(group: ClusterGroup, family: Family, shardId: number, kind: string, fn: (sql: Sql) => Promise<T>, opts: ReadOptions, scatterShards: readonly number[] | null): Promise<T> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const version = group.map.version;
      const server = group.servers[group.map.physicalOf(shardId)]!;
      const remote = server.remote!;
      const r = this.pickRemoteReplica(server, remote, shardId, opts);
      const node = r < 0 ? remote.primary : remote.replicas[r]!;
      const t0 = this.deps.clock.nowMs();
      const waited = this.serviceTimeMs <= 0 && node.gate.tryAcquire() ? 0 : await this.hold(node.gate);
      let out: { result: T; replayLsn: number };
      let seen: WatchedSql | null = null;
      // The writes committed before this read began: a replica snapshot without one of them is stale.
      let before = 0;
      if (r >= 0) for (const sh of scatterShards ?? [shardId]) before = Math.max(before, remote.lastWriteLsn(sh));
      try {
        if (group.map.physicalOf(shardId) !== server.index) continue;
        // A failover may have promoted the replica this read picked while it waited: pick again.
        if (r >= 0 && remote.replicas[r] !== node) continue;
        if (r < 0 && server.down) throw simError('SG_ERR_NODE_DOWN', `database primary ${server.name} is down`, { node: server.name });
        try {
          out = await remote.read(node, scatterShards ?? shardId, (sql) => {
            seen = new WatchedSql(sql, shardId);
            return this.tap ? this.tap.callback({ op: scatterShards ? 'scatter' : 'read', family, kind, shardId, shardIds: scatterShards, node: node.name }, seen, fn) : fn(seen);
          });
        } catch (e) {
          // The shard moved away while this read was on its way there (its schema is gone): read it where it is now.
          if (group.map.version !== version && isMissingRelation(e)) continue;
          // A replica that failed the read (gone, or cancelled it for a conflict with recovery): once more, on the primary.
          if (r >= 0 && !opts.primary && isSimError(e, 'SG_ERR_NODE_DOWN')) {
            this.deps.metrics.inc('db_replica_read_retries', { node: node.name });
            opts = { ...opts, primary: true };
            continue;
          }
          throw e;
        }
      } finally {
        node.gate.release();
      }
      if (r >= 0) {
        // Stale: the replica's snapshot was behind a write this process had committed to a shard read before the read began.
        if (out.replayLsn < before) this.deps.metrics.inc('db_stale_reads', { node: node.name });
        const work = currentWork();
        if (work) work.replicaReads++;
      }
      this.countQuery(group, node.name, 'read', shardId, kind, waited, t0);
      this.attribute(group, shardId, kind, opts.actorId ?? currentActor(), (seen as WatchedSql | null)?.id ?? null);
      return out.result;
    }
    throw simError('SG_ERR_SHARD_MOVE', `logical shard ${shardId} kept moving while a read waited`);
  }

  /** The bulk path on real servers: rows grouped by logical shard, CHUNK rows a statement, a transaction per chunk. */
  private async remoteBulk(group: ClusterGroup, table: string, columns: string[], rows: RowSource, conflict: Conflict, perRow: boolean): Promise<{ count: number; inserted: boolean[] }> {
    const byShard = new Map<number, number[]>();
    for (let i = 0; i < rows.length; i++) {
      if ((i & 16383) === 16383) await this.slicer.yieldIfDue();
      const s = rows.shardOf(i);
      let list = byShard.get(s);
      if (!list) byShard.set(s, (list = []));
      list.push(i);
    }
    const inserted: boolean[] = perRow ? new Array<boolean>(rows.length).fill(false) : [];
    let count = 0;
    const chunk = Math.max(1, Math.floor(REMOTE_BULK_PARAMS / columns.length));
    for (const [shardId, idx] of byShard) {
      for (let k = 0; k < idx.length; k += chunk) {
        await this.slicer.yieldIfDue();
        const part = idx.slice(k, k + chunk);
        const list = part.map((i) => {
          const r = new Array<unknown>(columns.length);
          rows.fill(i, r, 0);
          return r;
        });
        const r = await this.onRemotePrimary(group, shardId, (_server, remote) => remote.writeRows(shardId, table, columns, list, conflict, perRow, this.deps.clock.nowMs()));
        count += r.changes;
        if (r.written) r.written.forEach((w, j) => (inserted[part[j]!] = w));
      }
      const server = group.servers[group.map.physicalOf(shardId)]!;
      this.nodeStats(server.name).writes.inc();
      group.shardOps[shardId]!.inc();
      this.countKind(`bulk.${table}`, 'write');
    }
    return { count, inserted };
  }

  /**
   * Moves a logical shard between real servers (remote.copyShard: a copy that follows writes),
   * then switches over: writes to the shard wait, those under way end, the destination catches up,
   * the shard is repointed, writes go on there; last, the source drops its copy.
   */
  private async remoteMove(group: ClusterGroup, shardId: number, src: PhysicalServer, dst: PhysicalServer): Promise<MoveReport> {
    const clock = this.deps.clock;
    const t0 = clock.nowMs();
    const copy = await this.deps.remote!.copyShard(shardId, src.index, dst.index);
    let stats: { rowsCopied: number; catchUpMs: number };
    let copyMs: number;
    try {
      await copy.synced();
      let open!: () => void;
      this.frozen.set(shardId, new Promise<void>((r) => (open = r)));
      const tier = this.tierSwitch;
      let others: 'none' | 'frozen' | 'done' = 'none';
      try {
        if (this.writing.has(shardId)) await new Promise<void>((r) => this.drained.set(shardId, r));
        this.drained.delete(shardId);
        // The other server processes of a tier stop writing to the shard too.
        if (tier) {
          others = 'frozen';
          await tier.freeze(group.name, shardId);
        }
        stats = await copy.finish();
        if (group.map.physicalOf(shardId) !== src.index || src.down || dst.down) throw simError('SG_ERR_SHARD_MOVE', `logical shard ${shardId} or its servers changed while it was being copied`);
        group.map.repoint(shardId, dst.index);
        this.movedAtMs.set(shardId, clock.nowMs());
        copyMs = clock.nowMs() - t0;
        if (tier) {
          await tier.commit(group.name, shardId, dst.index, dst.remote!.arrivedLsn(shardId));
          others = 'done';
        }
      } finally {
        if (tier && others === 'frozen') await tier.abort(group.name, shardId).catch(() => undefined);
        this.frozen.delete(shardId);
        open();
      }
    } catch (e) {
      await copy.close(false).catch(() => undefined);
      throw e;
    }
    // Switched: what fails from here leaves the source's copy behind, not the move undone.
    let sourceKept: string | undefined;
    try {
      await copy.close(true);
      await copy.dropSource();
    } catch (e) {
      sourceKept = e instanceof Error ? e.message : String(e);
      this.deps.metrics.inc('shard_move_cleanup_errors', { cluster: group.name });
    }
    this.deps.metrics.inc('shard_moves', { cluster: group.name });
    return { group: group.name, shardId, from: src.name, to: dst.name, rowsCopied: stats.rowsCopied, entriesCaughtUp: 0, slices: 0, copyMs, totalMs: clock.nowMs() - t0, ...(sourceKept ? { sourceKept } : {}) };
  }

  /**
   * A tier's follower: another process is switching a move of `shardId` over; writes to it wait
   * from now on, and this resolves once those under way here have ended.
   */
  async tierFreeze(groupName: string, shardId: number): Promise<void> {
    this.groupByName(groupName);
    if (this.thaw.has(shardId)) return;
    let open!: () => void;
    this.frozen.set(shardId, new Promise<void>((r) => (open = r)));
    this.thaw.set(shardId, open);
    if (this.writing.has(shardId)) await new Promise<void>((r) => this.drained.set(shardId, r));
    this.drained.delete(shardId);
  }

  /** A tier's follower: the move switched; the shard is on server `to` now (its replicas hold it past `arrivedLsn`), writes go on there. */
  tierCommit(groupName: string, shardId: number, to: number, arrivedLsn: number): void {
    const group = this.groupByName(groupName);
    const dst = group.servers[to];
    if (!dst?.remote) throw simError('SG_ERR_INVALID_PARAM', `no real server ${to} in cluster ${groupName}`);
    dst.remote.adoptShard(shardId, arrivedLsn);
    group.map.repoint(shardId, to);
    this.movedAtMs.set(shardId, this.deps.clock.nowMs());
    this.tierThaw(shardId);
  }

  /** A tier's follower: the move did not switch; writes to the shard go on where they were. */
  tierThaw(shardId: number): void {
    this.frozen.delete(shardId);
    this.thaw.get(shardId)?.();
    this.thaw.delete(shardId);
  }

  /** A server's replicas as telemetry shows them, whichever kind they are. */
  replicasOf(server: PhysicalServer): Array<{ name: string; lagMs: number; configuredLagMs: number; backlog: number }> {
    const remote = server.remote;
    if (remote) {
      return remote.replicas.map((r) => ({ name: r.name, lagMs: remote.lagMs(r), configuredLagMs: remote.applyDelayMs(r), backlog: remote.backlog(r) }));
    }
    return server.replicas.map((r) => ({ name: r.name, lagMs: r.currentLagMs(), configuredLagMs: r.lagMs, backlog: r.backlog() }));
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

  /**
   * Runs `fn` on the node the read policy picks for `shardId` (a replica may be stale; counted),
   * holding the node's lock from its first statement to its end.
   */
  read<T>(family: Family, shardId: number, kind: string, fn: (sql: Sql) => Promise<T>, opts: ReadOptions = {}): Promise<T> {
    return this.readOn(family, shardId, kind, fn, opts, null);
  }

  /** read(), for a scatter when `scatterShards` (the server's logical shards, which a tap is told). */
  private async readOn<T>(family: Family, shardId: number, kind: string, fn: (sql: Sql) => Promise<T>, opts: ReadOptions, scatterShards: readonly number[] | null): Promise<T> {
    const group = this.groupFor(family);
    if (this.deps.remote) return this.remoteRead(group, family, shardId, kind, fn, opts, scatterShards);
    for (let attempt = 0; attempt < 8; attempt++) {
      const server = group.servers[group.map.physicalOf(shardId)]!;
      const r = this.pickReplica(server, shardId, opts);
      const pool = r < 0 ? server.primaryPool : server.replicaPools[r]!;
      const t0 = this.deps.clock.nowMs();
      const waited = this.serviceTimeMs <= 0 && pool.tryAcquire() ? 0 : await this.hold(pool);
      try {
        if (group.map.physicalOf(shardId) !== server.index) continue;
        // A failover may have removed the replica this read picked while it waited: pick again.
        if (r >= 0 && !server.replicas[r]) continue;
        const node: PrimaryNode | ReplicaNode = r >= 0 ? server.replicas[r]! : server.primary;
        if (r < 0 && server.down) throw simError('SG_ERR_NODE_DOWN', `database primary ${server.name} is down`, { node: server.name });
        // Taken at once when free; otherwise the shard may move, or the node change, meanwhile.
        const lockWaited = !node.lock.tryAcquire();
        if (lockWaited) {
          await node.lock.acquire();
          if (group.map.physicalOf(shardId) !== server.index || node !== (r >= 0 ? server.replicas[r] : server.primary) || (r < 0 && server.down)) {
            node.lock.release();
            continue;
          }
        }
        let result: T;
        let seen: WatchedSql;
        try {
          if (r >= 0) {
            // pickReplica caught it up (unless a read held the lock); time spent in the pool may
            // have let more entries fall due.
            const replica = node as ReplicaNode;
            if (this.deps.clock.nowMs() !== t0 || lockWaited || replica.catchUpDeferred) replica.catchUpLocked();
            if (replica.isStale(shardId)) this.deps.metrics.inc('db_stale_reads', { node: replica.name });
          }
          seen = new WatchedSql(node.readSql(), shardId);
          try {
            result = await (this.tap ? this.tap.callback({ op: scatterShards ? 'scatter' : 'read', family, kind, shardId, shardIds: scatterShards, node: node.name }, seen, fn) : fn(seen));
          } finally {
            seen.end();
          }
        } finally {
          node.lock.release();
        }
        this.countQuery(group, node.name, 'read', shardId, kind, waited, t0);
        if (r >= 0) {
          // A request's outcome names where its reads went (work-meter.ts).
          const work = currentWork();
          if (work) work.replicaReads++;
        }
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
  async scatter<T>(family: Family, kind: string, fn: (sql: Sql, shardIds: number[]) => Promise<T>, opts: ReadOptions = {}): Promise<T[]> {
    const group = this.groupFor(family);
    const out: T[] = [];
    for (const server of group.servers) {
      const shards = group.map.shardsOn(server.index);
      if (shards.length === 0) continue;
      out.push(await this.readOn(family, shards[0]!, kind, (sql) => fn(sql, shards), opts, shards));
    }
    return out;
  }

  /**
   * The bulk path at once, for small loads (tests, tools): rows of one table (first column
   * `shard_id`) grouped by logical shard and written per server in one transaction each, logged
   * once per shard for replicas. Returns, per input row, whether it was written (false: `ignore`
   * kept an existing row). Anything large goes through bulkInsertSliced.
   */
  bulkInsert(table: string, columns: string[], rows: readonly unknown[][], opts: { conflict?: Conflict } = {}): { inserted: boolean[] } {
    const family = TABLE_FAMILY[table];
    if (!family) throw simError('SG_ERR_INVALID_PARAM', `unknown table ${table}`);
    if (columns[0] !== 'shard_id') throw simError('SG_ERR_INVALID_PARAM', 'bulk rows must start with shard_id');
    if (this.deps.remote) throw simError('SG_ERR_INVALID_PARAM', 'the store is on real database servers: bulk loads go through bulkInsertSliced');
    const group = this.groupFor(family);
    const byShard = new Map<number, number[]>();
    rows.forEach((r, i) => {
      const s = Number(r[0]);
      if (!(s >= 0 && s < group.map.logical)) throw simError('SG_ERR_INVALID_PARAM', `row ${i} of ${table} has no valid shard_id`);
      let list = byShard.get(s);
      if (!list) byShard.set(s, (list = []));
      list.push(i);
    });
    const inserted = new Array<boolean>(rows.length).fill(false);
    const now = this.deps.clock.nowMs();
    for (const [shardId, idx] of byShard) {
      const server = group.servers[group.map.physicalOf(shardId)]!;
      if (server.down) throw simError('SG_ERR_NODE_DOWN', `database primary ${server.name} is down`, { node: server.name });
      server.primary.writeRows(shardId, now, table, columns, idx.map((i) => rows[i]!), opts.conflict ?? 'replace').forEach((w, j) => (inserted[idx[j]!] = w));
      this.nodeStats(server.name).writes.inc();
      group.shardOps[shardId]!.inc();
      this.countKind(`bulk.${table}`, 'write');
    }
    if (this.tap?.bulk) this.tap.bulk({ table, columns, rows, conflict: opts.conflict ?? 'replace', changes: inserted.filter(Boolean).length, inserted });
    return { inserted };
  }

  /**
   * The bulk path in slices, for loads of any size while the cluster serves: rows (first column
   * `shard_id`) grouped by physical server, kept in their given order (best: key order, so B-trees
   * grow at their ends), and written in transactions that each end with the slice (TimeSlicer),
   * logged as one entry per logical shard. Shards may move or fail over meanwhile: the rows left
   * are grouped again whenever the shard map changes, and every transaction goes to the server's
   * primary of the moment. With `perRow`, `inserted` says which rows were written.
   */
  async bulkInsertSliced(table: string, columns: string[], input: readonly unknown[][] | RowSource, opts: { conflict?: Conflict; perRow?: boolean } = {}): Promise<{ count: number; inserted: boolean[] }> {
    const rows: RowSource = Array.isArray(input) ? arraySource(input) : (input as RowSource);
    const family = TABLE_FAMILY[table];
    if (!family) throw simError('SG_ERR_INVALID_PARAM', `unknown table ${table}`);
    if (columns[0] !== 'shard_id') throw simError('SG_ERR_INVALID_PARAM', 'bulk rows must start with shard_id');
    const group = this.groupFor(family);
    const slicer = this.slicer;
    const conflict = opts.conflict ?? 'replace';
    const perRow = opts.perRow ?? false;
    for (let i = 0; i < rows.length; i++) {
      if ((i & 16383) === 16383) await slicer.yieldIfDue();
      const s = rows.shardOf(i);
      if (!(s >= 0 && s < group.map.logical)) throw simError('SG_ERR_INVALID_PARAM', `row ${i} of ${table} has no valid shard_id`);
    }
    if (this.deps.remote) {
      const out = await this.remoteBulk(group, table, columns, rows, conflict, perRow);
      if (this.tap?.bulk) this.tapBulk(table, columns, rows, conflict, out.count, perRow ? out.inserted : null);
      return out;
    }
    const inserted: boolean[] = perRow ? new Array<boolean>(rows.length).fill(false) : [];
    let count = 0;
    const touched = new Set<number>();
    let left = new Int32Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      if ((i & 65535) === 65535) await slicer.yieldIfDue();
      left[i] = i;
    }
    while (left.length > 0) {
      const version = group.map.version;
      const byServer = await this.groupByServer(group, rows, left);
      const rest: Int32Array[] = [];
      for (const [index, order] of byServer) {
        let from = 0;
        while (from < order.length) {
          await slicer.yieldIfDue();
          if (group.map.version !== version) break;
          const server = group.servers[index]!;
          if (server.down) throw simError('SG_ERR_NODE_DOWN', `database primary ${server.name} is down`, { node: server.name });
          // Between store callbacks on the primary (its lock), and only if nothing changed while it waited for them.
          const primary = server.primary;
          const r = await withLock(primary.lock, () =>
            group.map.version === version && server.primary === primary && !server.down
              ? primary.writeBulk(this.deps.clock.nowMs(), table, columns, (k, params, at) => rows.fill(order[k]!, params, at), from, order.length, conflict, slicer.deadline(), perRow)
              : null,
          );
          if (r === null) continue;
          if (r.written) for (let j = 0; j < r.written.length; j++) inserted[order[from + j]!] = r.written[j]!;
          for (let k = from; k < r.next; k++) touched.add(rows.shardOf(order[k]!));
          count += r.changes;
          from = r.next;
        }
        if (from < order.length) rest.push(order.subarray(from));
      }
      // What the map change interrupted, grouped again by the new map.
      left = new Int32Array(rest.reduce((n, r) => n + r.length, 0));
      let at = 0;
      for (const r of rest) {
        left.set(r, at);
        at += r.length;
      }
    }
    // Counted as bulkInsert counts: one write per logical shard written (and its server).
    for (const shardId of touched) {
      this.nodeStats(group.servers[group.map.physicalOf(shardId)]!.name).writes.inc();
      group.shardOps[shardId]!.inc();
      this.countKind(`bulk.${table}`, 'write');
    }
    if (this.tap?.bulk) this.tapBulk(table, columns, rows, conflict, count, perRow ? inserted : null);
    return { count, inserted };
  }

  private tapBulk(table: string, columns: string[], rows: RowSource, conflict: Conflict, changes: number, inserted: boolean[] | null): void {
    const list = Array.from({ length: rows.length }, (_, i) => {
      const r = new Array<unknown>(columns.length);
      rows.fill(i, r, 0);
      return r;
    });
    this.tap?.bulk?.({ table, columns, rows: list, conflict, changes, inserted });
  }

  /** Row indexes by the physical server their shard maps to now, keeping their order (a counting sort). */
  private async groupByServer(group: ClusterGroup, rows: RowSource, order: Int32Array): Promise<Map<number, Int32Array>> {
    const serverOf = new Int32Array(order.length);
    const counts = new Int32Array(group.servers.length);
    for (let k = 0; k < order.length; k++) {
      if ((k & 16383) === 16383) await this.slicer.yieldIfDue();
      const index = group.map.physicalOf(rows.shardOf(order[k]!));
      serverOf[k] = index;
      counts[index]!++;
    }
    const out = new Map<number, Int32Array>();
    const fill = new Int32Array(group.servers.length);
    for (let i = 0; i < counts.length; i++) if (counts[i]! > 0) out.set(i, new Int32Array(counts[i]!));
    const lists = Array.from({ length: counts.length }, (_, i) => out.get(i));
    for (let k = 0; k < order.length; k++) {
      if ((k & 16383) === 16383) await this.slicer.yieldIfDue();
      const index = serverOf[k]!;
      lists[index]![fill[index]!++] = order[k]!;
    }
    return out;
  }

  /** Adds per-row deltas to an integer column, keyed by `id`: one statement per logical shard. */
  async bulkAdd(table: string, column: string, deltas: ReadonlyMap<string, number>): Promise<void> {
    const family = TABLE_FAMILY[table];
    if (!family) throw simError('SG_ERR_INVALID_PARAM', `unknown table ${table}`);
    if (!/^[a-z_]+$/.test(column)) throw simError('SG_ERR_INVALID_PARAM', `bad column ${column}`);
    const byShard = new Map<number, Record<string, number>>();
    let k = 0;
    for (const [id, d] of deltas) {
      if ((++k & 1023) === 0) await this.slicer.yieldIfDue();
      const s = shardOf(id);
      const o = byShard.get(s) ?? {};
      o[id] = d;
      byShard.set(s, o);
    }
    for (const [shardId, obj] of byShard) {
      await this.slicer.yieldIfDue();
      await this.write(family, shardId, `bulk.${table}.${column}`, (sql) =>
        sql.run(`UPDATE ${table} SET ${column} = ${column} + CAST(d.value AS INTEGER) FROM json_each(?) AS d WHERE ${table}.id = CAST(d.key AS INTEGER)`, JSON.stringify(obj)),
      );
    }
  }

  /** Adds an empty physical server to a cluster (the target of a split). */
  addServer(groupName: string): PhysicalServer {
    if (this.deps.remote) throw simError('SG_ERR_INVALID_PARAM', 'the store is on real database servers: a new server is a new Postgres cluster in the stack (move shards between the servers there are)');
    const group = this.groupByName(groupName);
    const server = this.buildServer(group, group.servers.length);
    group.servers.push(server);
    this.saveMap(group);
    return server;
  }

  /**
   * Moves one logical shard to another physical server while it keeps serving, in slices of the
   * event loop: copy its rows while noting every row written meanwhile (row-copy.ts), copy those
   * again until a slice has caught up with all of them, then, in that same slice, repoint the shard;
   * last, delete its rows from the source. `batch` is the rows read per statement of the copy.
   */
  async moveShard(groupName: string, shardId: number, toIndex: number, opts: { batch?: number } = {}): Promise<MoveReport> {
    const group = this.groupByName(groupName);
    if (!Number.isInteger(shardId) || shardId < 0 || shardId >= group.map.logical) throw simError('SG_ERR_SHARD_MOVE', `no logical shard ${shardId}`);
    const src = group.servers[group.map.physicalOf(shardId)]!;
    const dst = group.servers[toIndex];
    if (!dst) throw simError('SG_ERR_SHARD_MOVE', `no physical server ${toIndex} in cluster ${groupName}`);
    if (dst === src) throw simError('SG_ERR_SHARD_MOVE', `logical shard ${shardId} is already on ${src.name}`);
    if (src.down || dst.down) throw simError('SG_ERR_SHARD_MOVE', 'both servers must be up to move a shard');
    if (this.deps.remote) return this.remoteMove(group, shardId, src, dst);
    const clock = this.deps.clock;
    const t0 = clock.nowMs();
    const tables = TABLES.filter((table) => group.families.includes(TABLE_FAMILY[table]!));
    // Rows an earlier move that failed may have left on the destination are stale: the shard was never switched there.
    await this.deleteShardRows(dst, shardId, tables);
    const source = src.primary;
    const target = dst.primary;
    const copy = new RowCopy(source.db, tables, shardId, this.loggedSink(target, shardId), this.slicer, lockOrder([source.lock, target.lock]), opts.batch);
    let copyMs: number;
    try {
      await copy.run();
      // The switch-over, in the slice that caught up with every write, holding both primaries'
      // locks: nothing can run on either in between, and writes that waited find the shard moved.
      if (group.map.physicalOf(shardId) !== src.index || src.primary !== source || dst.primary !== target) throw simError('SG_ERR_SHARD_MOVE', `logical shard ${shardId} or its servers changed while it was being copied`);
      if (src.down || dst.down) throw simError('SG_ERR_SHARD_MOVE', 'a server of the move went down while it was copied');
      group.map.repoint(shardId, dst.index);
      this.movedAtMs.set(shardId, clock.nowMs());
      this.saveMap(group);
      copyMs = clock.nowMs() - t0;
    } finally {
      await copy.close();
    }
    // The source drops the rows (logged, so its replicas drop them too); nothing reads them there now.
    await this.deleteShardRows(src, shardId, tables);
    this.deps.metrics.inc('shard_moves', { cluster: group.name });
    const { rowsCopied, changesCaughtUp, slices } = copy.stats;
    return { group: group.name, shardId, from: src.name, to: dst.name, rowsCopied, entriesCaughtUp: changesCaughtUp, slices, copyMs, totalMs: clock.nowMs() - t0 };
  }

  /**
   * Writes copied rows of `shardId` to a primary through its log, so its replicas follow (in the
   * copy's slices, which hold the primary's lock).
   */
  private loggedSink(primary: PrimaryNode, shardId: number): RowSink {
    const stats = this.nodeStats(primary.name);
    return {
      upsert: (table, columns, rows) => {
        primary.writeRowsCounted(shardId, this.deps.clock.nowMs(), table, columns, rows, 'replace');
        stats.writes.inc();
      },
      remove: (table, keyColumns, keys) => {
        const where = keyColumns.map((k) => `${k} = ?`).join(' AND ');
        primary.writeEach(shardId, this.deps.clock.nowMs(), `DELETE FROM ${table} WHERE ${where}`, keys);
        stats.writes.inc();
      },
    };
  }

  /** Deletes every row of `shardId` from a server's primary, logged, a bounded statement per slice step (each between store callbacks). */
  private async deleteShardRows(server: PhysicalServer, shardId: number, tables: readonly string[]): Promise<void> {
    for (const table of tables) {
      for (;;) {
        await this.slicer.yieldIfDue();
        const primary = server.primary;
        const deleted = await withLock(primary.lock, () =>
          primary.writeEach(shardId, this.deps.clock.nowMs(), `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE shard_id = ? LIMIT ${DELETE_ROWS})`, [[shardId]]),
        );
        if (deleted < DELETE_ROWS) break;
      }
    }
  }

  private saveMap(group: ClusterGroup): void {
    if (!this.deps.dataDir || this.deps.remote) return;
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
        if (s.remote) {
          const remote = s.remote;
          remote.replicas.forEach((r) => this.samplePool(r.name, r.gate));
          m.set('db_replication_backlog', { node: s.name }, Math.max(0, ...remote.replicas.map((r) => remote.backlog(r))));
          for (const r of remote.replicas) m.set('replica_lag_ms', { node: r.name }, remote.lagMs(r));
          continue;
        }
        m.set('db_replication_backlog', { node: s.name }, s.primary.backlog());
        for (const r of s.replicas) {
          r.catchUp();
          m.set('replica_lag_ms', { node: r.name }, r.takePeakLagMs());
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
        replicationBacklog: s.remote ? Math.max(0, ...this.replicasOf(s).map((r) => r.backlog)) : s.primary.backlog(),
        replicas: this.replicasOf(s).map((r) => ({ ...r, reads: this.nodeStats(r.name).reads.value })),
      })),
      ...(this.deps.remote ? { backend: 'postgres', postgres: this.deps.remote.describe() } : {}),
    }));
  }

  /**
   * Applies every entry each replica owes, due or not, in slices: after a bulk load, so that the
   * replicas hold the loaded rows before it answers (they follow it all along, lagging behind).
   */
  async catchUpReplicas(): Promise<void> {
    if (this.deps.remote) return this.deps.remote.catchUp(REMOTE_CATCH_UP_MS);
    for (const g of this.groups) for (const s of g.servers) for (const r of [...s.replicas]) await r.catchUpAll();
  }

  /** A new replica of a serving server, copied from its primary in slices (see ReplicaNode.provision). */
  provisionReplica(server: PhysicalServer, name: string, lagMs: number): Promise<ReplicaNode> {
    if (server.remote) return Promise.reject(simError('SG_ERR_INVALID_PARAM', `${server.name} is a real Postgres server: a new replica is a base backup of it (pg_basebackup -R, as scalegram stack up makes them), added to the stack`));
    return ReplicaNode.provision(name, server.primary, lagMs, this.deps.clock, this.slicer);
  }

  /** Applies every pending replica entry (graceful shutdown, tests). */
  drainReplicas(): void {
    for (const g of this.groups) for (const s of g.servers) for (const r of s.replicas) r.catchUp(true, Infinity);
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
