// Faults and topology changes on a live topology, for scenarios and demos: a cache node dies or comes
// back, a database primary fails over to its replica (unreplicated writes are lost, and counted),
// replicas lag, servers are added and logical shards moved or split off while traffic continues.
//
// Every operation answers with a plain JSON report and is counted (`faults{kind}`); the history of
// the last reports and the progress of shard moves can be read back. Bad input is SG_ERR_INVALID_PARAM.

import { existsSync, renameSync, rmSync } from 'node:fs';
import { writeFileAtomic } from './parts/data-dir.ts';
import type { ClusterGroup, MoveReport, PhysicalServer } from './parts/database-cluster.ts';
import { entryRows, entryShards, PrimaryNode } from './parts/db-node.ts';
import { isSimError, simError } from './engine/errors.ts';
import type { ReplicaNode } from './parts/replica.ts';
import { ConnectionPool } from './parts/connection-pool.ts';
import type { Topology } from './topology.ts';

/** Largest replica lag that can be set (ms): one hour, as the topology config allows. */
export const MAX_LAG_MS = 3_600_000;
/** Reports kept in the history (count). */
const HISTORY_LIMIT = 200;
/** Move jobs kept for progress reads (count). */
const JOBS_LIMIT = 100;

export interface FaultReport {
  fault: string;
  /** Topology clock time of the fault (unix ms). */
  atMs: number;
  [detail: string]: unknown;
}

export interface MoveJob {
  id: number;
  kind: 'move' | 'split';
  cluster: string;
  /** Server the shards leave (name). */
  from: string;
  /** Server the shards go to (name). */
  to: string;
  /** Logical shards planned, in order. */
  shards: number[];
  state: 'queued' | 'running' | 'done' | 'failed';
  /** Shards moved so far (count). */
  done: number;
  rowsCopied: number;
  entriesCaughtUp: number;
  /** The shard being moved now, or null. */
  current: number | null;
  startedMs: number | null;
  finishedMs: number | null;
  error: string | null;
  moves: MoveReport[];
}

const invalid = (message: string, field?: string) => simError('SG_ERR_INVALID_PARAM', message, field ? { field } : undefined);

/** A change to a real server made by a tier's leader, which the other server processes adopt. */
export type TierChange = { kind: 'failover'; node: string; promotedUrl: string; endLsn: number } | { kind: 'down'; node: string } | { kind: 'revive'; node: string };

export class Faults {
  private readonly history: FaultReport[] = [];
  private readonly jobs: MoveJob[] = [];
  /** Real servers whose failover is under way (a second one, or a move, waits for it to end). */
  private readonly failing = new Set<string>();
  private nextJob = 1;
  /** Replicas being copied now (names), so two provisions never take the same name. */
  private readonly provisioning = new Set<string>();
  /** Move jobs run one after another, as one operator would run them. */
  private chain: Promise<void> = Promise.resolve();

  /**
   * Set by a tier's leader (serve --workers; server/tier/): tells the other server processes of a
   * change to a real server they must adopt, and resolves with what each made of it.
   */
  tierFollowers: ((change: TierChange) => Promise<Array<{ index: number; writesLost: number; complete: boolean; lostByShard: Array<{ shard: number; writes: number }> } | { index: number; error: string }>>) | null = null;

  constructor(private readonly t: Topology) {
    const m = t.metrics;
    m.describe('faults', 'Faults and topology changes injected, by kind');
    m.describe('db_writes_lost', 'Writes a failed primary had committed that its promoted replica never applied (log entries)');
    m.describe('db_rows_lost', 'Rows in the lost writes (bulk entries count each row)');
    m.describe('db_failovers', 'Primary failures, by node and outcome (promoted or down)');
  }

  /** The last reports, oldest first. */
  log(): FaultReport[] {
    return [...this.history];
  }

  private record(fault: string, details: Record<string, unknown>): FaultReport {
    const report: FaultReport = { fault, atMs: this.t.clock.nowMs(), ...details };
    this.history.push(report);
    if (this.history.length > HISTORY_LIMIT) this.history.shift();
    this.t.metrics.inc('faults', { kind: fault });
    return report;
  }

  // ------------------------------------------------------------------------------------ caches

  private cacheNode(name: string) {
    const node = this.t.cache.nodes().find((n) => n.name === name);
    if (!node) throw invalid(`no cache node "${name}" (have ${this.t.cache.nodeNames.join(', ') || 'none'})`, 'node');
    return node;
  }

  /**
   * Kills a memcached node: its contents are lost and its keys miss (as "dead") and fall through to
   * the shards, or go to the gutter pool where one is configured. With `removeFromRing`, clients
   * also stop sending it keys, so they move to the next node on the ring (what a client does once
   * it notices). A gutter node can be killed, not taken off the ring (it is not on it).
   */
  async killCacheNode(name: string, options: { removeFromRing?: boolean } = {}): Promise<FaultReport> {
    // On real memcached, what the node holds is what its stats said last: read them now.
    await this.t.cache.pollStats();
    const before = this.cacheNode(name);
    if (before.gutter && options.removeFromRing) throw invalid(`"${name}" is a gutter node: it is not on the ring, so it cannot be removed from it`, 'removeFromRing');
    // On real memcached, its process is killed (SIGKILL).
    await this.t.cache.kill(name);
    if (options.removeFromRing) this.t.cache.removeNode(name);
    const after = this.cacheNode(name);
    return this.record('cache_kill', { node: name, itemsLost: before.items, bytesLost: before.bytes, wasAlive: before.alive, alive: after.alive, onRing: after.onRing });
  }

  /** Brings a cache node back, empty, and on the ring (a real node's process is started again). */
  async reviveCacheNode(name: string): Promise<FaultReport> {
    const before = this.cacheNode(name);
    // On real memcached, its process is started again, empty.
    await this.t.cache.revive(name);
    if (!before.onRing && !before.gutter) this.t.cache.addNode(name);
    const after = this.cacheNode(name);
    return this.record('cache_revive', { node: name, wasAlive: before.alive, alive: after.alive, onRing: after.onRing, items: after.items });
  }

  /**
   * Turns memcached leases (Facebook's thundering-herd protection) on or off for the misses from
   * now on; the topology's `cache.leases` is only where they start.
   */
  setCacheLeases(enabled: boolean): FaultReport {
    const was = this.t.cache.leases;
    this.t.cache.setLeases(enabled);
    return this.record('cache_leases', { leases: this.t.cache.leases, was });
  }

  /**
   * Records something done to the service through its own paths rather than to the topology (a
   * celebrity's post), so that it is in the history and on the telemetry's event timeline.
   */
  recordAction(kind: string, details: Record<string, unknown>): FaultReport {
    return this.record(kind, details);
  }

  // --------------------------------------------------------------------------------- databases

  private findServer(name: string): { group: ClusterGroup; server: PhysicalServer } {
    for (const group of this.t.db.groups) for (const server of group.servers) if (server.name === name) return { group, server };
    const names = this.t.db.groups.flatMap((g) => g.servers.map((s) => s.name));
    throw invalid(`no database server "${name}" (have ${names.join(', ')})`, 'node');
  }

  private movingServers(): Set<string> {
    const busy = new Set<string>();
    for (const j of this.jobs) if (j.state === 'running' || j.state === 'queued') busy.add(j.from).add(j.to);
    return busy;
  }

  /**
   * The primary of server `name` fails. With a replica, the most caught-up one is promoted in place
   * (its database becomes the primary's; nothing is copied): writes it had not applied are lost
   * (counted as db_writes_lost), the other replicas, behind it on the same log, follow it from
   * where they are, and the server keeps serving with one replica fewer. Without one the server is
   * down until reviveServer: its queries fail with SG_ERR_NODE_DOWN (503 through the API).
   */
  async failPrimary(name: string): Promise<FaultReport> {
    const { group, server } = this.findServer(name);
    if (server.down) throw invalid(`database server ${name} is already down`, 'node');
    if (this.movingServers().has(name)) throw invalid(`a shard move involving ${name} is in progress; fail it once the move is done`, 'node');
    const m = this.t.metrics;
    if (server.remote) return this.failRemotePrimary(group, server, server.remote);
    if (server.replicas.length === 0) {
      server.down = true;
      m.inc('db_failovers', { node: name, outcome: 'down' });
      return this.record('db_fail', { node: name, cluster: group.name, promoted: null, down: true, writesLost: 0, rowsLost: 0, replicasLeft: 0 });
    }
    const old = server.primary;
    // Each replica applies everything that has reached it (is due); the one furthest along becomes the primary.
    for (const r of server.replicas) r.catchUp(false, Infinity);
    let best = server.replicas[0]!;
    for (const r of server.replicas) if (r.backlog() < best.backlog()) best = r;
    let writesLost = 0;
    let rowsLost = 0;
    const lostByShard = new Map<number, number>();
    for (let seq = best.position(); seq < old.logEnd; seq++) {
      const e = old.entryAt(seq);
      if (!e) continue;
      writesLost++;
      rowsLost += entryRows(e);
      for (const shardId of entryShards(e)) lostByShard.set(shardId, (lostByShard.get(shardId) ?? 0) + 1);
    }
    const others = server.replicas.filter((r) => r !== best);
    const from = Math.min(best.position(), ...others.map((r) => r.position()));
    const carried = old.entriesFrom(from);
    // A durable primary keeps its file: the promoted replica's image replaces it (a synchronous
    // copy, with --data-dir only; in memory the promoted replica's database is used as it is).
    const file = old.db.name && old.db.name !== ':memory:' && !old.db.memory ? old.db.name : null;
    let promoted: PrimaryNode;
    if (file) {
      const image = best.serialize();
      best.close();
      old.close();
      // The image is complete on disk (0600) before the old files go; their WAL must not outlive
      // them, or SQLite would apply it to the new image.
      writeFileAtomic(file + '.promoted', image);
      for (const f of [file + '-wal', file + '-shm']) if (existsSync(f)) rmSync(f);
      renameSync(file + '.promoted', file);
      promoted = new PrimaryNode(server.name, file, old.logLimit);
    } else {
      const db = best.release();
      old.close();
      promoted = new PrimaryNode(server.name, db, old.logLimit);
    }
    promoted.continueLog(carried, from, best.position());
    server.primary = promoted;
    for (const r of others) r.follow(promoted);
    server.replicas = others;
    server.replicaPools = server.replicaPools.filter((_, i) => i < server.replicas.length);
    m.inc('db_writes_lost', { node: name }, writesLost);
    m.inc('db_rows_lost', { node: name }, rowsLost);
    m.inc('db_failovers', { node: name, outcome: 'promoted' });
    const shards = [...lostByShard.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([shard, writes]) => ({ shard, writes }));
    return this.record('db_fail', { node: name, cluster: group.name, promoted: best.name, down: false, writesLost, rowsLost, lostByShard: shards, replicasLeft: server.replicas.length });
  }

  /**
   * A real primary fails: its Postgres cluster is stopped as a crash (pg_ctlcluster stop -m
   * immediate) and the replica that received the most WAL is promoted (pg_promote). Writes lost
   * are counted from WAL positions: those this process committed past what the promoted replica
   * had received (backends/postgres/replication.ts says what Postgres replays on promotion).
   */
  private async failRemotePrimary(group: ClusterGroup, server: PhysicalServer, remote: NonNullable<PhysicalServer['remote']>): Promise<FaultReport> {
    const m = this.t.metrics;
    const name = server.name;
    if (this.failing.has(name)) throw invalid(`a failover of ${name} is under way`, 'node');
    this.failing.add(name);
    let r: Awaited<ReturnType<typeof remote.failover>>;
    try {
      r = await remote.failover();
    } catch (e) {
      // Stopped but not promoted (or not even stopped cleanly): down until revived, not half-served.
      server.down = true;
      m.inc('db_failovers', { node: name, outcome: 'failed' });
      this.record('db_fail', { node: name, cluster: group.name, promoted: null, down: true, error: e instanceof Error ? e.message : String(e), backend: 'postgres' });
      throw e;
    } finally {
      this.failing.delete(name);
    }
    if (r.promoted === null) {
      server.down = true;
      await this.tierFollowers?.({ kind: 'down', node: name });
      m.inc('db_failovers', { node: name, outcome: 'down' });
      return this.record('db_fail', { node: name, cluster: group.name, promoted: null, down: true, writesLost: 0, rowsLost: 0, replicasLeft: 0, backend: 'postgres' });
    }
    // The promoted replica's pool is the primary's now.
    server.primaryPool = remote.primary.gate;
    m.inc('db_writes_lost', { node: name }, r.writesLost);
    m.inc('db_failovers', { node: name, outcome: 'promoted' });
    // The other processes of a tier move to the promoted replica and count the writes they lost.
    const followed = await this.tierFollowers?.({ kind: 'failover', node: name, promotedUrl: r.promotedUrl!, endLsn: r.endLsn });
    const byProcess = followed ? [{ index: 0, writesLost: r.writesLost, complete: r.complete, lostByShard: r.lostByShard }, ...followed] : null;
    const tierLost = byProcess ? byProcess.reduce((n, p) => n + ('writesLost' in p ? p.writesLost : 0), 0) : r.writesLost;
    // Per shard over every process (each reports its ten largest: a lower bound past the first ten).
    const shardLost = new Map<number, number>();
    for (const p of byProcess ?? [{ lostByShard: r.lostByShard }]) if ('lostByShard' in p) for (const x of p.lostByShard) shardLost.set(x.shard, (shardLost.get(x.shard) ?? 0) + x.writes);
    const lostByShard = [...shardLost.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([shard, writes]) => ({ shard, writes }));
    return this.record('db_fail', {
      node: name,
      cluster: group.name,
      promoted: r.promoted,
      down: false,
      writesLost: tierLost,
      writesLostComplete: r.complete && (byProcess ?? []).every((p) => 'complete' in p && p.complete),
      ...(byProcess ? { writesLostByProcess: byProcess.map((p) => ('writesLost' in p ? { index: p.index, writesLost: p.writesLost, complete: p.complete } : p)) } : {}),
      lostByShard,
      positions: r.positions,
      replicasLeft: remote.replicas.length,
      backend: 'postgres',
    });
  }

  /**
   * A tier's follower: another process (the leader) changed a real server; this process adopts the
   * change (serve --workers). A failover's writes lost through this process are counted here.
   */
  async adoptTierChange(change: TierChange): Promise<{ writesLost: number; complete: boolean; lostByShard: Array<{ shard: number; writes: number }> }> {
    const { server } = this.findServer(change.node);
    const remote = server.remote;
    if (!remote) throw invalid(`${change.node} is not a real server`, 'node');
    if (change.kind === 'down') {
      server.down = true;
      return { writesLost: 0, complete: true, lostByShard: [] };
    }
    if (change.kind === 'revive') {
      remote.adoptRestart();
      server.down = false;
      return { writesLost: 0, complete: true, lostByShard: [] };
    }
    const r = await remote.adoptFailover(change.promotedUrl, change.endLsn);
    server.primaryPool = remote.primary.gate;
    this.t.metrics.inc('db_writes_lost', { node: change.node }, r.writesLost);
    this.record('db_fail_adopted', { node: change.node, writesLost: r.writesLost, writesLostComplete: r.complete, backend: 'postgres' });
    return r;
  }

  /** A server that went down without a replica comes back with its data (a restart, not a failover). */
  async reviveServer(name: string): Promise<FaultReport> {
    const { group, server } = this.findServer(name);
    const wasDown = server.down;
    if (server.remote && wasDown) {
      if (this.failing.has(name)) throw invalid(`${name} is being revived`, 'node');
      this.failing.add(name);
      try {
        await server.remote.restart();
        await this.tierFollowers?.({ kind: 'revive', node: name });
      } finally {
        this.failing.delete(name);
      }
    }
    server.down = false;
    return this.record('db_revive', { node: name, cluster: group.name, wasDown });
  }

  /**
   * Provisions one more replica for a server: a copy of its primary made in slices while it keeps
   * serving (row-copy.ts), then following its log (seconds for millions of rows; 2012's took ~20 min).
   */
  async addReplica(name: string, options: { lagMs?: number } = {}): Promise<FaultReport> {
    const { group, server } = this.findServer(name);
    const lagMs = options.lagMs ?? this.t.config.database.replicaLagMs;
    checkLag(lagMs);
    if (server.down) throw invalid(`database server ${name} is down; revive it first`, 'node');
    const taken = new Set([...server.replicas.map((r) => r.name), ...this.provisioning]);
    let k = 1;
    while (taken.has(`${server.name}-r${k}`)) k++;
    const replicaName = `${server.name}-r${k}`;
    this.provisioning.add(replicaName);
    let replica: ReplicaNode;
    try {
      replica = await this.t.db.provisionReplica(server, replicaName, lagMs);
    } finally {
      this.provisioning.delete(replicaName);
    }
    server.replicas.push(replica);
    const cfg = this.t.config.database;
    while (server.replicaPools.length < server.replicas.length) server.replicaPools.push(new ConnectionPool(replica.name, cfg.poolSize, cfg.poolQueueLimit));
    return this.record('db_add_replica', { node: name, cluster: group.name, replica: replica.name, lagMs, replicas: server.replicas.length });
  }

  /**
   * Sets replication lag: of every database replica (no node), of one server's replicas ("db-0"),
   * of one replica ("db-0-r1"), or of the feed store's replica ("feed-replica").
   */
  async setReplicaLag(options: { node?: string; lagMs: number }): Promise<FaultReport> {
    checkLag(options.lagMs);
    const lagMs = options.lagMs;
    const changed: Array<{ node: string; fromMs: number; toMs: number }> = [];
    const node = options.node;
    if (node === 'feed-replica') {
      if (!this.t.feeds.hasReplica) throw invalid('there is no feed replica (a real Redis has one only with $REDIS_REPLICA_URL)', 'node');
      changed.push({ node, fromMs: this.t.feeds.replicaLagMs, toMs: lagMs });
      this.t.feeds.setReplicaLag(lagMs);
    } else {
      let matched = false;
      for (const g of this.t.db.groups) {
        for (const s of g.servers) {
          const remote = s.remote;
          if (remote) {
            // Real lag: the replica applies each commit lagMs after it was made (recovery_min_apply_delay).
            for (const r of remote.replicas) {
              if (node !== undefined && node !== s.name && node !== r.name) continue;
              matched = true;
              changed.push({ node: r.name, fromMs: remote.applyDelayMs(r), toMs: lagMs });
              await remote.setApplyDelay(r, lagMs);
            }
            if (node === s.name) {
              if (remote.replicas.length === 0) throw invalid(`${s.name} has no replica (a failover promoted it)`, 'node');
              matched = true;
            }
            continue;
          }
          for (const r of s.replicas) {
            if (node !== undefined && node !== s.name && node !== r.name) continue;
            matched = true;
            changed.push({ node: r.name, fromMs: r.lagMs, toMs: lagMs });
            r.setLag(lagMs);
          }
          if (node === s.name) matched = true;
        }
      }
      if (node !== undefined && !matched) throw invalid(`no database server or replica "${node}" (nor "feed-replica")`, 'node');
    }
    this.t.db.sample();
    return this.record('replica_lag', { node: node ?? 'all', lagMs, replicas: changed });
  }

  /**
   * Real replicas only: pauses or resumes replay (pg_wal_replay_pause/resume: the replica still
   * receives WAL, reads on it fall behind), and cuts or restores its WAL stream (a partition: what it
   * does not receive is lost if its primary fails meanwhile). Of every replica, one server's, or one.
   */
  async setReplay(options: { node?: string; paused?: boolean; streaming?: boolean }): Promise<FaultReport> {
    if (options.paused === undefined && options.streaming === undefined) throw invalid('give paused or streaming (booleans)', 'paused');
    const node = options.node;
    const changed: Array<{ node: string; paused?: boolean; streaming?: boolean }> = [];
    let matched = false;
    for (const g of this.t.db.groups) {
      for (const s of g.servers) {
        if (node !== undefined && node === s.name) matched = true;
        const remote = s.remote;
        if (!remote) continue;
        for (const r of remote.replicas) {
          if (node !== undefined && node !== s.name && node !== r.name) continue;
          matched = true;
          if (options.paused !== undefined) await remote.setReplayPaused(r, options.paused);
          if (options.streaming !== undefined) await remote.setStreaming(r, options.streaming);
          changed.push({ node: r.name, ...(options.paused !== undefined ? { paused: options.paused } : {}), ...(options.streaming !== undefined ? { streaming: options.streaming } : {}) });
        }
      }
    }
    if (!this.t.db.groups.some((g) => g.servers.some((s) => s.remote))) throw invalid('pausing replay and cutting the stream act on real Postgres replicas (serve --stack); embedded replicas take a lag (POST /_sim/db/lag)', 'node');
    if (node !== undefined && !matched) throw invalid(`no database server or replica "${node}"`, 'node');
    this.t.db.sample();
    return this.record('replica_replay', { node: node ?? 'all', replicas: changed });
  }

  /** Sets the mean extra service time of every database query (ms), as a slower disk or a busier box would. */
  setServiceTime(serviceTimeMs: number): FaultReport {
    if (typeof serviceTimeMs !== 'number' || !(serviceTimeMs >= 0 && serviceTimeMs <= 60_000)) throw invalid('serviceTimeMs must be a number in [0, 60000]', 'serviceTimeMs');
    const fromMs = this.t.db.serviceTimeMs;
    this.t.db.serviceTimeMs = serviceTimeMs;
    return this.record('db_service_time', { fromMs, toMs: serviceTimeMs });
  }

  // ------------------------------------------------------------------------------------ shards

  private group(cluster: string): ClusterGroup {
    const g = this.t.db.groups.find((x) => x.name === cluster);
    if (!g) throw invalid(`no database cluster "${cluster}" (have ${this.t.db.groups.map((x) => x.name).join(', ')})`, 'cluster');
    return g;
  }

  private serverIn(group: ClusterGroup, ref: string | number, field: string): PhysicalServer {
    const s = typeof ref === 'number' ? group.servers[ref] : group.servers.find((x) => x.name === ref || String(x.index) === ref);
    if (!s) throw invalid(`no server ${JSON.stringify(ref)} in cluster ${group.name} (have ${group.servers.map((x) => x.name).join(', ')})`, field);
    return s;
  }

  /** Move jobs, oldest first, with their progress. */
  moves(): MoveJob[] {
    return this.jobs.map((j) => ({ ...j, shards: [...j.shards], moves: [...j.moves] }));
  }

  /** The job with this id, or null. */
  move(id: number): MoveJob | null {
    return this.moves().find((j) => j.id === id) ?? null;
  }

  /** Moves one logical shard to another server of its cluster, in the background (or awaited with `wait`). */
  async moveShard(options: { cluster: string; shard: number; to: string | number; wait?: boolean }): Promise<MoveJob> {
    const group = this.group(options.cluster);
    const shard = options.shard;
    if (!Number.isInteger(shard) || shard < 0 || shard >= group.map.logical) throw invalid(`shard must be an integer in [0, ${group.map.logical - 1}]`, 'shard');
    const from = group.servers[group.map.physicalOf(shard)]!;
    const to = this.serverIn(group, options.to, 'to');
    if (to === from) throw invalid(`logical shard ${shard} is already on ${from.name}`, 'to');
    if (from.down || to.down) throw invalid(`${from.down ? from.name : to.name} is down; both servers must be up to move a shard`, 'to');
    for (const s of [from, to]) if (this.failing.has(s.name)) throw invalid(`a failover of ${s.name} is under way; move the shard once it is done`, 'to');
    return this.startJob('move', group, from, to, [shard], options.wait ?? false);
  }

  /**
   * Splits a server: adds an empty server to the cluster and moves the upper half of the source's
   * logical shards to it, one at a time, while the cluster keeps serving (background unless `wait`).
   */
  async splitServer(options: { cluster: string; server: string | number; wait?: boolean }): Promise<MoveJob> {
    const group = this.group(options.cluster);
    if (group.servers.some((s) => s.remote)) throw invalid('a split moves half a server’s shards to a new server, and on real Postgres servers a new server is a new cluster in the stack: move shards between the servers there are (POST /_sim/shards/move)', 'server');
    const from = this.serverIn(group, options.server, 'server');
    if (from.down) throw invalid(`${from.name} is down; it cannot be split`, 'server');
    const shards = group.map.shardsOn(from.index);
    if (shards.length < 2) throw invalid(`${from.name} holds ${shards.length} logical shard(s); a split needs at least 2`, 'server');
    const to = this.t.db.addServer(group.name);
    this.record('db_add_server', { cluster: group.name, server: to.name });
    return this.startJob('split', group, from, to, shards.slice(Math.ceil(shards.length / 2)), options.wait ?? false);
  }

  private async startJob(kind: MoveJob['kind'], group: ClusterGroup, from: PhysicalServer, to: PhysicalServer, shards: number[], wait: boolean): Promise<MoveJob> {
    const job: MoveJob = {
      id: this.nextJob++, kind, cluster: group.name, from: from.name, to: to.name, shards, state: 'queued',
      done: 0, rowsCopied: 0, entriesCaughtUp: 0, current: null, startedMs: null, finishedMs: null, error: null, moves: [],
    };
    this.jobs.push(job);
    if (this.jobs.length > JOBS_LIMIT) {
      const i = this.jobs.findIndex((j) => j.state === 'done' || j.state === 'failed');
      if (i >= 0) this.jobs.splice(i, 1);
    }
    this.record(kind === 'split' ? 'shard_split' : 'shard_move', { job: job.id, cluster: group.name, from: from.name, to: to.name, shards: shards.length });
    const run = this.chain.then(() => this.runJob(job, group, to.index));
    this.chain = run.catch(() => undefined);
    if (wait) await run;
    return { ...job, shards: [...job.shards], moves: [...job.moves] };
  }

  private async runJob(job: MoveJob, group: ClusterGroup, toIndex: number): Promise<void> {
    job.state = 'running';
    job.startedMs = this.t.clock.nowMs();
    try {
      for (const shard of job.shards) {
        job.current = shard;
        // A shard already on the target (moved by hand meanwhile) counts as done.
        if (group.map.physicalOf(shard) !== toIndex) {
          const r = await this.t.db.moveShard(group.name, shard, toIndex);
          job.moves.push(r);
          job.rowsCopied += r.rowsCopied;
          job.entriesCaughtUp += r.entriesCaughtUp;
        }
        job.done++;
        // Let queued queries run between moves: a split must not stall the process for its length.
        await new Promise((r) => setImmediate(r));
      }
      job.state = 'done';
    } catch (e) {
      job.state = 'failed';
      job.error = isSimError(e) ? `${e.code}: ${e.message}` : String(e);
    } finally {
      job.current = null;
      job.finishedMs = this.t.clock.nowMs();
    }
  }
}

function checkLag(lagMs: unknown): void {
  if (typeof lagMs !== 'number' || !(lagMs >= 0 && lagMs <= MAX_LAG_MS)) throw invalid(`lagMs must be a number in [0, ${MAX_LAG_MS}]`, 'lagMs');
}
