// The database tier on real Postgres: one primary cluster per physical server (one URL each, several
// may share a machine on different ports), each with the streaming replicas named for it, every
// logical shard a schema in database `scalegram` of the server that holds it (schema.ts). This file
// opens and watches them; DatabaseCluster (sim/parts/database-cluster.ts) routes each store callback
// to one of them, as it routes to a SQLite node in the embedded mode.
//
// What lives where:
//  - The shard map is what the servers hold: at open, each server's record of migrated schemas
//    (public.scalegram_migrations) says which logical shards it has. A shard on two servers is a
//    move that stopped half-way: the copy with a move subscription (sg_move_<n>) is the unfinished
//    one; any other doubt is refused. There is no map file to disagree with the databases.
//  - Pools: node-postgres pools, one per node, sized as pgbouncer would be in front of it:
//    the topology's poolSize, capped so that every process of the tier together stays under the
//    server's max_connections less its reserved connections and a margin for tools, replication
//    and moves (RESERVED_CONNECTIONS). A ConnectionPool of the same size in front of each gives
//    the queue limit and the pool telemetry of the embedded mode.
//  - Positions: each committed write leaves the WAL position read with its COMMIT (pg-sql.ts
//    WalPosition), kept per logical shard and in a CommitLog (replication.ts); each replica read
//    reads the replica's replay position as its snapshot is taken. A read is stale when that
//    position is behind its shard's last write: counted from positions, not simulated. A poll
//    (every POLL_MS) reads each replica's receive/replay positions for lag, routing and telemetry.

import pg from 'pg';
import { ConnectionPool } from '../../parts/connection-pool.ts';
import { insertSql, type Conflict, type Sql } from '../../parts/db-node.ts';
import type { AdoptedFailover, RemoteDatabase, RemoteDbNode, RemoteDbServer, RemoteFailover, RemoteShardCopy } from '../../parts/database-cluster.ts';
import { withShard, withShards, type WalPosition } from './pg-sql.ts';
import { conninfoOf, dropShard, PgShardCopy } from './shard-move.ts';
import { recordPromotion } from '../local-stack.ts';
import { simError } from '../../engine/errors.ts';
import { redact } from '../amqp-queue.ts';
import { CommitLog, parseLsn, primaryLsn, promote, replicaPosition, setApplyDelay, setReplayPaused, setStreaming, startCluster, stopCluster, type ReplicaPosition } from './replication.ts';
import { migrate, schemaVersions } from './migrations.ts';
import { shardIdOfSchema } from './schema.ts';
import type { TopologyConfig } from '../../topology-config.ts';

/** One physical server: its primary's URL, its streaming replicas' URLs, and (when this machine runs them) their cluster names. */
export interface PostgresServerSpec {
  url: string;
  replicas?: string[];
  /**
   * Debian's names of the clusters (pg_ctlcluster <version> <name>), when they run on this machine
   * (a stack's): failing the primary over stops its cluster. Without them, failover is refused.
   */
  clusters?: { version: string; primary: string; replicas: string[]; /** The stack's directory, whose stack.json a failover updates. */ stackDir?: string };
}

/**
 * Servers from text, as --postgres and $POSTGRES_SERVERS give them: one entry per physical server,
 * comma-separated, each its primary's URL and its replicas' URLs joined by "+":
 * `postgres://h:5433/scalegram+postgres://h:5434/scalegram,postgres://h:5435/scalegram`.
 */
export function parsePostgresServers(text: string): PostgresServerSpec[] {
  const servers = text.split(',').map((e) => e.trim()).filter((e) => e !== '');
  if (servers.length === 0) throw simError('SG_ERR_INVALID_PARAM', 'no Postgres server given: URL[+REPLICA_URL…],… one entry per physical server');
  return servers.map((entry) => {
    const [url, ...replicas] = entry.split('+').map((u) => u.trim());
    for (const u of [url!, ...replicas]) {
      let parsed: URL;
      try {
        parsed = new URL(u);
      } catch {
        throw simError('SG_ERR_INVALID_PARAM', `${JSON.stringify(u)} is not a postgres:// URL`);
      }
      if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw simError('SG_ERR_INVALID_PARAM', `${redact(u)} is not a postgres:// URL`);
    }
    return { url: url!, replicas };
  });
}

/** Connections of each server kept out of the tier's pools: psql, the poll, moves' subscriptions, replication (count). */
export const RESERVED_CONNECTIONS = 10;
/** How often replica positions are read (ms). */
export const POLL_MS = 250;
/** Writes remembered for counting a failover's losses (count; older ones are counted as dropped). */
const COMMIT_LOG_LIMIT = 1_000_000;

/** Errors that say the node is not there (refused, reset, shutting down, starting up, in recovery). */
const DOWN_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', '57P01', '57P02', '57P03', '08000', '08003', '08006', '08001', '08004', '25006']);

export function isNodeDown(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && DOWN_CODES.has(code)) return true;
  const msg = e instanceof Error ? e.message : '';
  return /Connection terminated|connect ECONNREFUSED|terminating connection|Cannot use a pool after calling end|Client was closed|not queryable/.test(msg);
}

/**
 * A replica cancelled the query for a conflict with recovery (SQLSTATE 40001 on a standby, or
 * 40P01): the read is sound on the primary. Replay waits for queries up to
 * max_standby_streaming_delay, then cancels them; the stack's replicas send hot_standby_feedback.
 */
export function isRecoveryConflict(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  const msg = e instanceof Error ? e.message : '';
  return code === '40P01' || (code === '40001' && /conflict with recovery/.test(msg)) || /conflict with recovery/.test(msg);
}

/** One Postgres node (a primary or a streaming replica) and the pools in front of it. */
export class PgNode implements RemoteDbNode {
  readonly pool: pg.Pool;
  readonly gate: ConnectionPool;
  /** The latest position this replica was seen to have replayed (a read's, or the poll's): never ahead of the real one. */
  replayLsn = 0;
  /** The last poll's reading (replicas), or null before the first. */
  position: ReplicaPosition | null = null;
  /** When the last poll that read `position` was sent (ms, the tier's clock): the replica had replayed at least that much by then. */
  polledAtMs = 0;
  /** Why the last poll failed, or null. */
  pollError: string | null = null;

  /** The stream's conninfo a cut replica had, to restore it. */
  cutConninfo: string | null = null;

  constructor(
    /** Its name in metrics: a promoted replica takes its server's. */
    public name: string,
    readonly url: string,
    size: number,
    queueLimit: number,
    /** pg_ctlcluster's name of this node's cluster, when known. */
    readonly cluster: string | null,
    /** The gate of the node this one replaces (a restart), kept: DatabaseCluster holds it. */
    gate?: ConnectionPool,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: size, connectionTimeoutMillis: 10_000 });
    // An idle client whose server went away emits 'error' on the pool; the next query reports it.
    this.pool.on('error', () => undefined);
    this.gate = gate ?? new ConnectionPool(name, size, queueLimit);
  }

  noteReplay(lsn: number): void {
    if (lsn > this.replayLsn) this.replayLsn = lsn;
  }

  describe(): unknown {
    return { name: this.name, url: redact(this.url), cluster: this.cluster, pool: this.gate.size };
  }
}

/** An error of `node` as the tier reports it: one that says the node is not there becomes SG_ERR_NODE_DOWN (503 through the API). */
function asDown(e: unknown, node: PgNode): unknown {
  if (!isNodeDown(e)) return e;
  return simError('SG_ERR_NODE_DOWN', `database ${node.name} does not answer: ${e instanceof Error ? e.message : String(e)}`, { node: node.name });
}

/** One physical server: a primary, its replicas, and the positions of the writes made through this process. */
export class PgServer implements RemoteDbServer {
  readonly commits = new CommitLog(COMMIT_LOG_LIMIT);
  /** Per logical shard, the WAL position after its last committed write through this process (absent: none). */
  private readonly lastWrite = new Map<number, number>();
  /** The primary's position at the last poll. */
  primaryLsn = 0;
  /** Per logical shard a move brought here: this server's position once the copy had arrived (its replicas lack the shard before it). */
  private readonly arrived = new Map<number, number>();
  /** A failover of this server is under way. */
  failingOver = false;
  /**
   * The description it was opened from, which a failover rewrites (the promoted replica is the
   * primary): the deployment's, so a reset's new topology opens the servers as they are now.
   */
  spec: PostgresServerSpec | null = null;

  constructor(
    readonly name: string,
    public primary: PgNode,
    public replicas: PgNode[],
    readonly version: string | null,
    /** The stack whose state file records a promotion, when the servers are a stack's. */
    private readonly stackDir: string | null = null,
    /** The topology's clock (ms), which commits are noted in. */
    private readonly nowMs: () => number = () => performance.timeOrigin + performance.now(),
  ) {}

  noteCommit(shardId: number, lsnText: string | null, atMs: number): number {
    if (lsnText === null) return 0;
    const lsn = parseLsn(lsnText);
    const prev = this.lastWrite.get(shardId);
    if (prev === undefined || lsn > prev) this.lastWrite.set(shardId, lsn);
    this.commits.note(lsn, shardId, atMs);
    return lsn;
  }

  /** The WAL position after the shard's last write through this process (0: none). */
  lastWriteLsn(shardId: number): number {
    return this.lastWrite.get(shardId) ?? 0;
  }

  async write<T>(shardId: number, fn: (sql: Sql) => Promise<T>, atMs: number): Promise<{ result: T; lsn: number }> {
    const pos: WalPosition = { lsn: null };
    const node = this.primary;
    let result: T;
    try {
      result = await withShard(node.pool, shardId, 'write', fn, {}, pos);
    } catch (e) {
      throw asDown(e, node);
    }
    return { result, lsn: this.noteCommit(shardId, pos.lsn, atMs) };
  }

  async read<T>(node: RemoteDbNode, shards: number | readonly number[], fn: (sql: Sql) => Promise<T>): Promise<{ result: T; replayLsn: number }> {
    const n = node as PgNode;
    const replica = n !== this.primary;
    const pos: WalPosition = { lsn: null };
    let result: T;
    try {
      result = typeof shards === 'number' ? await withShard(n.pool, shards, 'read', fn, {}, replica ? pos : undefined) : await withShards(n.pool, shards, fn, {}, replica ? pos : undefined);
    } catch (e) {
      if (replica && isRecoveryConflict(e)) throw simError('SG_ERR_NODE_DOWN', `replica ${n.name} cancelled the read (a conflict with recovery): ${e instanceof Error ? e.message : String(e)}`, { node: n.name, retryOnPrimary: true });
      throw asDown(e, n);
    }
    const replayLsn = pos.lsn ? parseLsn(pos.lsn) : 0;
    if (replica) n.noteReplay(replayLsn);
    return { result, replayLsn };
  }

  async writeRows(shardId: number, table: string, columns: readonly string[], rows: readonly unknown[][], conflict: Conflict, perRow: boolean, atMs: number): Promise<{ changes: number; written: boolean[] | null; lsn: number }> {
    const pos: WalPosition = { lsn: null };
    const node = this.primary;
    let changes = 0;
    const written: boolean[] | null = perRow ? [] : null;
    try {
      await withShard(
        node.pool,
        shardId,
        'write',
        async (sql) => {
          if (written) {
            // Which rows an `ignore` kept out: one statement per row (a multi-row statement counts only the total).
            const one = insertSql(table, [...columns], conflict, 1);
            for (const row of rows) {
              const c = (await sql.run(one, ...row)).changes;
              changes += c;
              written.push(c > 0);
            }
          } else {
            changes = (await sql.run(insertSql(table, [...columns], conflict, rows.length), ...rows.flat())).changes;
          }
        },
        {},
        pos,
      );
    } catch (e) {
      throw asDown(e, node);
    }
    return { changes, written, lsn: this.noteCommit(shardId, pos.lsn, atMs) };
  }

  applyDelayMs(replica: RemoteDbNode): number {
    return (replica as PgNode).position?.applyDelayMs ?? 0;
  }

  private clusterOf(node: PgNode, what: string): { version: string; name: string } {
    if (!this.version || !node.cluster) {
      throw simError('SG_ERR_INVALID_PARAM', `${what} ${node.name} acts on its Postgres cluster, and its cluster is not known: the servers of a stack are (serve --stack DIR)`, { node: node.name });
    }
    return { version: this.version, name: node.cluster };
  }

  async failover(): Promise<RemoteFailover> {
    if (this.failingOver) throw simError('SG_ERR_INVALID_PARAM', `a failover of ${this.name} is under way`, { node: this.name });
    this.failingOver = true;
    try {
      return await this.failoverNow();
    } finally {
      this.failingOver = false;
    }
  }

  private async failoverNow(): Promise<RemoteFailover> {
    const old = this.primary;
    const cluster = this.clusterOf(old, 'failing over');
    let lastWrite = 0;
    for (const lsn of this.lastWrite.values()) lastWrite = Math.max(lastWrite, lsn);
    // A crash: no shutdown checkpoint, no last WAL sent. Queries on it meanwhile fail as on any
    // dead server (SG_ERR_NODE_DOWN, 503); its pool is ended once the promoted one has taken over.
    await stopCluster(cluster.version, cluster.name, 'immediate');
    if (this.replicas.length === 0) {
      await old.pool.end().catch(() => undefined);
      return { promoted: null, writesLost: 0, lostByShard: [], complete: true, positions: { lastWrite, received: null, replayed: 0 }, endLsn: 0, promotedUrl: null };
    }
    // The replica that received the most WAL becomes the primary.
    const positions = await Promise.all(this.replicas.map((r) => replicaPosition(r.pool)));
    let best = 0;
    const reach = (p: ReplicaPosition) => Math.max(p.receiveLsn ?? 0, p.replayLsn);
    positions.forEach((p, i) => {
      if (reach(p) > reach(positions[best]!)) best = i;
    });
    const chosen = this.replicas[best]!;
    const got = await promote(chosen.pool);
    // Where recovery ended: WAL past it was never on the replica (replication.ts: what was received is replayed first).
    const have = got.endLsn;
    const promotedName = chosen.name;
    if (this.stackDir && chosen.cluster) recordPromotion(this.stackDir, cluster.name, chosen.cluster);
    const lost = this.takeOver(chosen, have);
    // The others follow the new primary (on its new timeline: recovery_target_timeline is 'latest').
    for (const r of this.replicas) await setStreaming(r.pool, true, conninfoOf(chosen.url));
    await old.pool.end().catch(() => undefined);
    return { promoted: promotedName, ...lost, positions: { lastWrite, received: got.receiveLsn, replayed: got.replayLsn }, endLsn: have, promotedUrl: chosen.url };
  }

  async adoptFailover(promotedUrl: string, endLsn: number): Promise<AdoptedFailover> {
    const chosen = this.replicas.find((r) => r.url === promotedUrl);
    if (!chosen) throw simError('SG_ERR_INVALID_PARAM', `${this.name} has no replica at ${redact(promotedUrl)} to adopt as its primary`, { node: this.name });
    const old = this.primary;
    const lost = this.takeOver(chosen, endLsn);
    await old.pool.end().catch(() => undefined);
    return lost;
  }

  /**
   * The promoted replica `chosen` is this server's primary now (in this process and in the spec a
   * reset reopens), recovery having ended at `endLsn`: what this process committed past it was lost
   * with the old primary, and positions past it are forgotten. The old primary's pool is the caller's to end.
   */
  private takeOver(chosen: PgNode, endLsn: number): AdoptedFailover {
    const lost = this.commits.lostAfter(endLsn);
    if (this.spec) {
      const others = this.replicas.filter((r) => r !== chosen);
      this.spec.url = chosen.url;
      this.spec.replicas = others.map((r) => r.url);
      if (this.spec.clusters && chosen.cluster) this.spec.clusters = { ...this.spec.clusters, primary: chosen.cluster, replicas: others.map((r) => r.cluster ?? '') };
    }
    chosen.name = this.name;
    this.primary = chosen;
    this.replicas = this.replicas.filter((r) => r !== chosen);
    this.commits.forget(Number.MAX_SAFE_INTEGER);
    for (const [shard, lsn] of this.lastWrite) if (lsn > endLsn) this.lastWrite.set(shard, endLsn);
    const lostByShard = [...lost.byShard.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([shard, writes]) => ({ shard, writes }));
    return { writesLost: lost.writes, lostByShard, complete: lost.complete };
  }

  async restart(): Promise<void> {
    const cluster = this.clusterOf(this.primary, 'restarting');
    await startCluster(cluster.version, cluster.name);
    this.adoptRestart();
  }

  adoptRestart(): void {
    const old = this.primary;
    // A new pool: the old one was ended when the server went down.
    void old.pool.end().catch(() => undefined);
    this.primary = new PgNode(old.name, old.url, old.gate.size, old.gate.queueLimit, old.cluster, old.gate);
  }

  async setApplyDelay(replica: RemoteDbNode, ms: number): Promise<void> {
    // recovery_min_apply_delay takes whole ms (a scenario's lag divided by its speed need not be one).
    await setApplyDelay((replica as PgNode).pool, Math.round(ms));
    await this.poll();
  }

  async setReplayPaused(replica: RemoteDbNode, paused: boolean): Promise<void> {
    await setReplayPaused((replica as PgNode).pool, paused);
    await this.poll();
  }

  async setStreaming(replica: RemoteDbNode, on: boolean): Promise<void> {
    const r = replica as PgNode;
    if (on) {
      if (r.cutConninfo === null) return;
      await setStreaming(r.pool, true, r.cutConninfo);
      r.cutConninfo = null;
    } else {
      if (r.cutConninfo !== null) return;
      r.cutConninfo = await setStreaming(r.pool, false);
    }
    await this.poll();
  }

  describe(): unknown {
    return {
      name: this.name,
      primary: { ...(this.primary.describe() as object), lsn: this.primaryLsn },
      replicas: this.replicas.map((r) => ({ ...(r.describe() as object), replayLsn: r.replayLsn, position: r.position, cut: r.cutConninfo !== null, pollError: r.pollError })),
    };
  }

  /** A move copied the shard here: its writes so far are on this server as of its current position. */
  adoptShard(shardId: number, lsn: number): void {
    this.lastWrite.set(shardId, lsn);
    this.arrived.set(shardId, lsn);
  }

  /** The position a replica must have replayed to hold the shard (a move brought it here then), or 0. */
  arrivedLsn(shardId: number): number {
    return this.arrived.get(shardId) ?? 0;
  }

  /** Reads each replica's position and the primary's; forgets commits every replica has replayed. */
  async poll(): Promise<void> {
    const sentMs = this.nowMs();
    await Promise.all([
      primaryLsn(this.primary.pool).then(
        (lsn) => {
          this.primaryLsn = lsn;
          this.primary.pollError = null;
        },
        (e: unknown) => {
          this.primary.pollError = e instanceof Error ? e.message : String(e);
        },
      ),
      ...this.replicas.map((r) =>
        replicaPosition(r.pool).then(
          (p) => {
            r.position = p;
            r.polledAtMs = sentMs;
            r.noteReplay(p.replayLsn);
            r.pollError = null;
          },
          (e: unknown) => {
            r.pollError = e instanceof Error ? e.message : String(e);
          },
        ),
      ),
    ]);
    if (this.replicas.length > 0) this.commits.forget(Math.min(...this.replicas.map((r) => r.replayLsn)));
    else this.commits.forget(Number.MAX_SAFE_INTEGER);
  }

  /**
   * How long the oldest write a replica had not replayed at the last poll had waited then (ms; 0
   * when it had them all): a lag as of the poll, not grown by the time since (a late poll would
   * otherwise count its own delay as lag).
   */
  lagMs(replica: PgNode): number {
    const oldest = this.commits.oldestAfter(replica.position?.replayLsn ?? replica.replayLsn);
    return oldest === null ? 0 : Math.max(0, replica.polledAtMs - oldest);
  }

  /** Writes through this process a replica has not replayed (count). */
  backlog(replica: PgNode): number {
    return this.commits.lostAfter(replica.replayLsn).writes;
  }

  async close(): Promise<void> {
    await Promise.all([this.primary, ...this.replicas].map((n) => n.pool.end().catch(() => undefined)));
  }
}

/** A server's clusters/pool sizing as read at open. */
async function serverLimits(pool: pg.Pool): Promise<{ maxConnections: number; reserved: number; walLevel: string }> {
  const { rows } = await pool.query<{ name: string; setting: string }>("SELECT name, setting FROM pg_settings WHERE name IN ('max_connections', 'superuser_reserved_connections', 'wal_level')");
  const get = (n: string) => rows.find((r) => r.name === n)?.setting ?? '';
  return { maxConnections: Number(get('max_connections')), reserved: Number(get('superuser_reserved_connections')), walLevel: get('wal_level') };
}

/** The logical shards a server holds (its migrated schemas), and those a move left half-copied there. */
async function heldShards(pool: pg.Pool): Promise<{ held: number[]; copying: Set<number> }> {
  const held = (await schemaVersions(pool)).filter((s) => s.version > 0).map((s) => shardIdOfSchema(s.schema));
  const copying = new Set<number>();
  const { rows } = await pool.query<{ subname: string }>("SELECT subname FROM pg_subscription WHERE subname LIKE 'sg\\_move\\_%'");
  for (const r of rows) {
    const n = Number(r.subname.slice('sg_move_'.length));
    if (Number.isInteger(n)) copying.add(n);
  }
  return { held, copying };
}

/** A replica as the topology says it starts: replay running, streaming from its primary, applying each commit `lagMs` after it. */
async function settleReplica(r: PgNode, primaryUrl: string, lagMs: number, notice?: (line: string) => void): Promise<void> {
  const p = await replicaPosition(r.pool);
  if (p.paused) {
    await setReplayPaused(r.pool, false);
    notice?.(`${r.name}: its replay was paused (an earlier server's fault); resumed`);
  }
  const { rows } = await r.pool.query<{ setting: string }>("SELECT setting FROM pg_settings WHERE name = 'primary_conninfo'");
  if ((rows[0]?.setting ?? '') === '') {
    await setStreaming(r.pool, true, conninfoOf(primaryUrl));
    notice?.(`${r.name}: its WAL stream was cut (an earlier server's fault); streaming from its primary again`);
  }
  const delay = Math.round(lagMs);
  if (p.applyDelayMs !== delay) await setApplyDelay(r.pool, delay);
}

export interface PgTierOptions {
  /** Server processes sharing these servers (serve --workers): the pools are divided among them. */
  processes?: number;
  /** Told of what is worth knowing at start (pool sizes capped, schemas migrated). */
  notice?: (line: string) => void;
  /** The topology's clock (ms): commits and polls are timed on it. */
  nowMs?: () => number;
  /**
   * Start from empty tables (TRUNCATE every shard's tables), as the embedded store starts in
   * memory: a run is reproducible from its seed only on an empty store. Default true.
   */
  empty?: boolean;
  /**
   * Undo what an earlier server set on the replicas (a lag, a pause, a cut stream) and apply the
   * topology's lag. Default true; the server processes of a tier leave it to the tier's primary.
   */
  settle?: boolean;
}

export class PgTier implements RemoteDatabase {
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;

  private constructor(
    readonly servers: PgServer[],
    /** Logical shard → index of the server holding it. */
    readonly map: number[],
    /** Connections per node pool (count). */
    readonly poolSize: number,
  ) {}

  /**
   * Connects to every server and replica, checks what each holds, migrates the schemas it holds
   * to the current version, and builds the shard map from them. Refuses (SG_ERR_CONFIG_INVALID) a
   * spec that does not match the topology, a shard that no server holds, a "replica" that is not
   * in recovery; SG_ERR_BACKEND_UNREACHABLE when a node does not answer.
   */
  static async open(specs: readonly PostgresServerSpec[], config: TopologyConfig, opts: PgTierOptions = {}): Promise<PgTier> {
    const d = config.database;
    if (d.partitioning !== 'none') throw simError('SG_ERR_CONFIG_INVALID', 'Postgres as the store takes database.partitioning "none" (one set of servers for every table)', { field: 'database.partitioning' });
    if (specs.length !== config.shards.physical) {
      throw simError('SG_ERR_CONFIG_INVALID', `the topology has ${config.shards.physical} physical servers, ${specs.length} Postgres servers are given`, { field: 'shards.physical' });
    }
    const processes = Math.max(1, opts.processes ?? 1);
    const made: PgNode[] = [];
    const servers: PgServer[] = [];
    const fail = async (e: unknown): Promise<never> => {
      await Promise.all(made.map((n) => n.pool.end().catch(() => undefined)));
      throw e;
    };
    try {
      let size = d.poolSize;
      const limits: Array<{ maxConnections: number; reserved: number; walLevel: string }> = [];
      for (const [i, spec] of specs.entries()) {
        for (const url of [spec.url, ...(spec.replicas ?? [])]) {
          const probe = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 5000 });
          try {
            const l = await serverLimits(probe);
            limits.push(l);
            size = Math.min(size, Math.floor((l.maxConnections - l.reserved - RESERVED_CONNECTIONS) / processes));
          } catch (e) {
            throw simError('SG_ERR_BACKEND_UNREACHABLE', `Postgres server ${i} at ${redact(url)} does not answer: ${e instanceof Error ? e.message : String(e)}`, { url: redact(url) });
          } finally {
            await probe.end().catch(() => undefined);
          }
        }
      }
      if (size < 1) throw simError('SG_ERR_CONFIG_INVALID', `max_connections leaves no connection for ${processes} process(es) after ${RESERVED_CONNECTIONS} reserved`, { field: 'database.poolSize' });
      if (size < d.poolSize) opts.notice?.(`Postgres pools: ${size} connections per node (poolSize ${d.poolSize} capped by max_connections over ${processes} process(es))`);
      for (const [i, spec] of specs.entries()) {
        const name = `db-${i}`;
        const primary = new PgNode(name, spec.url, size, d.poolQueueLimit, spec.clusters?.primary ?? null);
        made.push(primary);
        const replicas = (spec.replicas ?? []).map((url, r) => {
          const node = new PgNode(`${name}-r${r + 1}`, url, size, d.poolQueueLimit, spec.clusters?.replicas[r] ?? null);
          made.push(node);
          return node;
        });
        const server = new PgServer(name, primary, replicas, spec.clusters?.version ?? null, spec.clusters?.stackDir ?? null, opts.nowMs);
        server.spec = spec;
        servers.push(server);
      }
      // Which server holds which shard.
      const owner = new Array<number>(config.shards.logical).fill(-1);
      const conflicts: string[] = [];
      const holdings = await Promise.all(servers.map((s) => heldShards(s.primary.pool)));
      for (const [i, h] of holdings.entries()) {
        for (const shard of h.held) {
          if (shard >= config.shards.logical) throw simError('SG_ERR_CONFIG_INVALID', `${servers[i]!.name} holds logical shard ${shard}; the topology has ${config.shards.logical}`, { field: 'shards.logical' });
          if (h.copying.has(shard)) continue; // a move's unfinished copy
          if (owner[shard]! >= 0) conflicts.push(`shard ${shard} on ${servers[owner[shard]!]!.name} and ${servers[i]!.name}`);
          else owner[shard] = i;
        }
      }
      if (conflicts.length > 0) throw simError('SG_ERR_CONFIG_INVALID', `logical shards held by two servers: ${conflicts.slice(0, 5).join('; ')}`, { field: 'postgres' });
      const missing = owner.flatMap((o, s) => (o < 0 ? [s] : []));
      if (missing.length > 0) {
        throw simError('SG_ERR_CONFIG_INVALID', `${missing.length} logical shard(s) have no schema on any server (${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}): scalegram stack up makes them`, { field: 'postgres' });
      }
      // Replicas must be replicas, and start as the topology says: what an earlier server set on
      // them (a lag, a pause, a cut stream: settings the clusters keep) is undone, so a run is
      // reproducible from its seed and its topology.
      for (const s of servers) {
        for (const r of s.replicas) {
          const { rows } = await r.pool.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
          if (!rows[0]?.rec) throw simError('SG_ERR_CONFIG_INVALID', `${r.name} at ${redact(r.url)} is not a streaming replica (not in recovery)`, { field: 'postgres' });
          if (opts.settle ?? true) await settleReplica(r, s.primary.url, d.replicaLagMs, opts.notice);
        }
      }
      // Held schemas at the current version (a no-op unless this code brings a new migration).
      for (const [i, s] of servers.entries()) {
        const mine = owner.flatMap((o, shard) => (o === i ? [shard] : []));
        const { applied } = await migrate(s.primary.pool, mine);
        if (applied.length > 0) opts.notice?.(`${s.name}: ${applied.length} migration(s) applied`);
      }
      if (opts.empty ?? true) {
        for (const s of servers) {
          const { rows } = await s.primary.pool.query<{ t: string }>("SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables WHERE schemaname ~ '^shard_[0-9]+$'");
          if (rows.length > 0) await s.primary.pool.query(`TRUNCATE ${rows.map((r) => r.t).join(', ')}`);
        }
      }
      const tier = new PgTier(servers, owner, size);
      await Promise.all(servers.map((s) => s.poll()));
      return tier;
    } catch (e) {
      return fail(e);
    }
  }

  async copyShard(shardId: number, from: number, to: number): Promise<RemoteShardCopy> {
    const src = this.servers[from]!;
    const dst = this.servers[to]!;
    const endpoint = (s: PgServer) => ({ pool: s.primary.pool, conninfo: conninfoOf(s.primary.url), name: s.name });
    const copy = await PgShardCopy.start(endpoint(src), endpoint(dst), shardId);
    return {
      synced: () => copy.synced(),
      finish: async () => {
        const stats = await copy.finish();
        // Reads of dst's replicas are stale until they replay past the copy.
        dst.adoptShard(shardId, await primaryLsn(dst.primary.pool));
        return { rowsCopied: stats.rowsCopied, catchUpMs: stats.catchUpMs };
      },
      close: (keep) => copy.close(keep),
      dropSource: () => dropShard(src.primary.pool, shardId),
    };
  }

  async catchUp(timeoutMs: number): Promise<void> {
    const until = performance.now() + timeoutMs;
    for (const s of this.servers) {
      if (s.replicas.length === 0) continue;
      const target = await primaryLsn(s.primary.pool);
      for (;;) {
        await s.poll();
        if (s.replicas.every((r) => r.replayLsn >= target)) break;
        if (performance.now() > until) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  describe(): unknown {
    return { poolSize: this.poolSize, servers: this.servers.map((s) => s.describe()) };
  }

  /** Starts reading positions every POLL_MS (unref'd: it keeps no process alive). */
  startPolling(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.polling) return;
      this.polling = Promise.all(this.servers.map((s) => s.poll())).then(
        () => {
          this.polling = null;
        },
        () => {
          this.polling = null;
        },
      );
    }, POLL_MS);
    this.timer.unref();
  }

  /** Reads every position now (tests, describe before a report). */
  async pollNow(): Promise<void> {
    await this.polling;
    await Promise.all(this.servers.map((s) => s.poll()));
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.polling;
    await Promise.all(this.servers.map((s) => s.close()));
  }
}
