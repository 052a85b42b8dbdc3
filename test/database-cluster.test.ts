// The database tier on its own: where signups land under modulo and range sharding, stale replica
// reads on a virtual clock, read-your-writes routing, pgbouncer queueing and its budget, and
// writes that throw leaving no trace on the primary or its replicas.

import { afterEach, describe, expect, it } from 'vitest';
import { runAsActor } from '../sim/engine/actor-context.ts';
import { RealClock, VirtualClock, type Clock } from '../sim/engine/clock.ts';
import { DatabaseCluster } from '../sim/parts/database-cluster.ts';
import type { Sql } from '../sim/parts/db-node.ts';
import { isSimError } from '../sim/engine/errors.ts';
import { encodeId, INSTAGRAM_EPOCH_MS } from '../sim/parts/ids.ts';
import { Metrics } from '../sim/observability/metrics.ts';
import { Prng } from '../sim/engine/prng.ts';
import { ShardMap, shardForKey, shardForSignup } from '../sim/parts/shard-map.ts';
import { loadTopology, type TopologyConfig, type TopologyInput } from '../sim/topology-config.ts';

const open: DatabaseCluster[] = [];
afterEach(() => {
  for (const db of open.splice(0)) db.close();
});

function makeCluster<C extends Clock = VirtualClock>(over: { shards?: TopologyInput['shards']; database?: TopologyInput['database'] } = {}, clock: C = new VirtualClock() as unknown as C) {
  const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4, ...over.shards }, database: { ...over.database } });
  const metrics = new Metrics(clock);
  const db = new DatabaseCluster(config, { clock, prng: new Prng(1), metrics });
  open.push(db);
  return { db, metrics, config, clock };
}

/** A user id minted on `shardId`. */
const userId = (shardId: number, seq = 0) => encodeId(INSTAGRAM_EPOCH_MS + 1_000_000, shardId, seq);

const INSERT_USER = 'INSERT INTO users (shard_id, id, username, full_name, password_hash, created_ms) VALUES (?,?,?,?,?,?)';
const insertUser = (shardId: number, id: bigint, name: string) => (sql: Sql) => sql.run(INSERT_USER, shardId, id, name, name, 'x', 0);
/** A store callback, or a look at a node directly (its synchronous sql()). */
const readName = (id: bigint) => async (sql: { get<T>(s: string, ...p: unknown[]): T | undefined | Promise<T | undefined> }) => (await sql.get<{ full_name: string }>('SELECT full_name FROM users WHERE id = ?', id))?.full_name ?? null;
const rename = (id: bigint, name: string) => (sql: Sql) => sql.run('UPDATE users SET full_name = ? WHERE id = ?', name, id);

function codeOf(e: unknown): string {
  return isSimError(e) ? e.code : String(e);
}

describe('signup placement: modulo vs range', () => {
  const signupsPerServer = (shards: TopologyConfig['shards'], n: number) => {
    const map = new ShardMap(shards.logical, shards.physical);
    const perServer = new Array<number>(shards.physical).fill(0);
    const perShard = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const s = shardForSignup(i, shards);
      perShard.set(s, (perShard.get(s) ?? 0) + 1);
      perServer[map.physicalOf(s)]!++;
    }
    return { perServer, perShard };
  };

  it('modulo spreads 10,000 signups over all 4 servers within ±10% of the mean', () => {
    const { config } = makeCluster();
    const { perServer, perShard } = signupsPerServer(config.shards, 10_000);
    const mean = 10_000 / 4;
    for (const n of perServer) expect(Math.abs(n - mean) / mean).toBeLessThanOrEqual(0.1);
    expect(perShard.size).toBe(64);
  });

  it('range (usersPerRange 10,000) sends all 10,000 signups to one logical shard on one server: skew max/mean = 4', () => {
    const { config } = makeCluster({ shards: { strategy: 'range', usersPerRange: 10_000 } });
    const { perServer, perShard } = signupsPerServer(config.shards, 10_000);
    expect([...perShard.keys()]).toEqual([0]);
    const mean = perServer.reduce((a, b) => a + b, 0) / perServer.length;
    expect(Math.max(...perServer) / mean).toBe(4);
    // The next signup opens the next range.
    expect(shardForSignup(10_000, config.shards)).toBe(1);
    expect(shardForSignup(64 * 10_000, config.shards)).toBe(0);
  });

  it('the rows really land there: 10,000 bulk-inserted users are 2,512/2,496/2,496/2,496 per server under modulo (10,000 = 156·64 + 16), all on db-0 under range', () => {
    for (const strategy of ['modulo', 'range'] as const) {
      const { db, config } = makeCluster({ shards: { strategy, usersPerRange: 10_000 } });
      const rows: unknown[][] = [];
      for (let i = 0; i < 10_000; i++) {
        const s = shardForSignup(i, config.shards);
        rows.push([s, encodeId(INSTAGRAM_EPOCH_MS + 1_000_000 + i, s, 0), `u${i}`, `u${i}`, 'x', 0]);
      }
      db.bulkInsert('users', ['shard_id', 'id', 'username', 'full_name', 'password_hash', 'created_ms'], rows);
      const counts = db.groups[0]!.servers.map((srv) => Number((srv.primary.db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n));
      expect(counts).toEqual(strategy === 'modulo' ? [2512, 2496, 2496, 2496] : [10_000, 0, 0, 0]);
    }
  });

  it('maps logical shards to servers in contiguous blocks (0–15 on db-0, …, 48–63 on db-3)', () => {
    const map = new ShardMap(64, 4);
    expect(map.ranges()).toEqual([
      { from: 0, to: 15, physical: 0 },
      { from: 16, to: 31, physical: 1 },
      { from: 32, to: 47, physical: 2 },
      { from: 48, to: 63, physical: 3 },
    ]);
    expect(map.shardsOn(2)).toHaveLength(16);
  });

  it('spreads string keys (usernames, tags) over logical shards: 6,400 keys touch all 64 shards, none over 2× the mean', () => {
    const counts = new Array<number>(64).fill(0);
    for (let i = 0; i < 6400; i++) counts[shardForKey(`user_${i}`, 64)]!++;
    expect(Math.min(...counts)).toBeGreaterThan(0);
    expect(Math.max(...counts)).toBeLessThan(200);
    expect(shardForKey('sun', 64)).toBe(shardForKey('sun', 64));
  });
});

describe('replicas on a virtual clock (lag 50 ms)', () => {
  const lagged = (readPolicy: 'replica' | 'read-your-writes') => makeCluster({ database: { replicas: 1, replicaLagMs: 50, readPolicy } }, new VirtualClock(1_400_000_000_000));

  it("a replica read right after a write returns the old value and counts a stale read; 50 ms later it returns the new one and doesn't", async () => {
    const { db, metrics, clock } = lagged('replica');
    const id = userId(5);
    await db.write('users', 5, 'user.create', insertUser(5, id, 'old'));
    await clock.advance(50);
    expect(await db.read('users', 5, 'user.get', readName(id))).toBe('old');
    expect(metrics.sum('db_stale_reads')).toBe(0);

    await db.write('users', 5, 'user.rename', rename(id, 'new'));
    expect(await db.read('users', 5, 'user.get', readName(id))).toBe('old');
    expect(metrics.value('db_stale_reads', { node: 'db-0-r1' })).toBe(1);
    await clock.advance(49);
    expect(await db.read('users', 5, 'user.get', readName(id))).toBe('old');
    expect(metrics.value('db_stale_reads', { node: 'db-0-r1' })).toBe(2);

    await clock.advance(1);
    expect(await db.read('users', 5, 'user.get', readName(id))).toBe('new');
    expect(metrics.value('db_stale_reads', { node: 'db-0-r1' })).toBe(2);
    // Every read went to the replica, none to the primary.
    expect(metrics.value('db_ops', { node: 'db-0-r1', op: 'read' })).toBe(4);
    expect(metrics.value('db_ops', { node: 'db-0', op: 'read' })).toBe(0);
  });

  it('a pending write to one logical shard does not make reads of another shard on the same server stale', async () => {
    const { db, metrics } = lagged('replica');
    await db.write('users', 3, 'user.create', insertUser(3, userId(3), 'x'));
    expect(db.serverFor('users', 3)).toBe(db.serverFor('users', 4));
    expect(await db.read('users', 4, 'user.get', readName(userId(4)))).toBeNull();
    expect(metrics.sum('db_stale_reads')).toBe(0);
    expect(await db.read('users', 3, 'user.get', readName(userId(3)))).toBeNull();
    expect(metrics.sum('db_stale_reads')).toBe(1);
  });

  it('applies the log in the background on the clock: the replica node holds the row after 50 ms without any read', async () => {
    const { db, clock } = lagged('replica');
    const id = userId(9);
    await db.write('users', 9, 'user.create', insertUser(9, id, 'bg'));
    const replica = db.serverFor('users', 9).replicas[0]!;
    expect(replica.backlog()).toBe(1);
    await clock.advance(25);
    expect(replica.currentLagMs()).toBe(25);
    await clock.advance(25);
    expect(replica.backlog()).toBe(0);
    expect(await readName(id)(replica.sql())).toBe('bg');
  });

  it('read-your-writes: the writer reads its write at once from the primary, another reader gets the stale replica', async () => {
    const { db, metrics, clock } = lagged('read-your-writes');
    const id = userId(7);
    await db.write('users', 7, 'user.create', insertUser(7, id, 'v1'), { actorId: 'alice' });
    expect(await db.read('users', 7, 'user.get', readName(id), { actorId: 'alice' })).toBe('v1');
    expect(metrics.value('db_ops', { node: 'db-0', op: 'read' })).toBe(1);
    expect(await db.read('users', 7, 'user.get', readName(id), { actorId: 'bob' })).toBeNull();
    expect(metrics.value('db_ops', { node: 'db-0-r1', op: 'read' })).toBe(1);
    expect(metrics.sum('db_stale_reads')).toBe(1);
    // Readers with no identity are treated like strangers.
    expect(await db.read('users', 7, 'user.get', readName(id))).toBeNull();
    // Long after the window (2·lag + 50 ms), the writer is back on the replica, which has caught up.
    await clock.advance(200);
    expect(await db.read('users', 7, 'user.get', readName(id), { actorId: 'alice' })).toBe('v1');
    expect(metrics.value('db_ops', { node: 'db-0-r1', op: 'read' })).toBe(3);
    expect(metrics.sum('db_stale_reads')).toBe(2);
  });

  it('read-your-writes also follows the actor carried by runAsActor, and { primary: true } always reads the primary', async () => {
    const { db } = lagged('read-your-writes');
    const id = userId(12);
    await runAsActor('carol', () => db.write('users', 12, 'user.create', insertUser(12, id, 'c')));
    expect(await runAsActor('carol', () => db.read('users', 12, 'user.get', readName(id)))).toBe('c');
    expect(await runAsActor('dave', () => db.read('users', 12, 'user.get', readName(id)))).toBeNull();
    expect(await db.read('users', 12, 'user.get', readName(id), { primary: true })).toBe('c');
  });

  // Regression: read-your-writes used a fixed window of 2·config.replicaLagMs + 50 ms, but a
  // replica's lag is a live knob (the replica-lag scenario spikes it); past the window the writer
  // was sent to a replica that had not applied their write.
  it('read-your-writes still holds when a replica lags far beyond the configured lag (a lag spike)', async () => {
    const { db, clock } = lagged('read-your-writes');
    const id = userId(11);
    await db.write('users', 11, 'user.create', insertUser(11, id, 'v1'), { actorId: 'alice' });
    await clock.advance(200);
    db.serverFor('users', 11).replicas[0]!.lagMs = 1000; // the spike
    await db.write('users', 11, 'user.rename', rename(id, 'v2'), { actorId: 'alice' });
    await clock.advance(200); // past 2·50 + 50 ms, well inside the 1000 ms lag
    expect(await db.read('users', 11, 'user.get', readName(id), { actorId: 'alice' })).toBe('v2');
  });

  it('spreads replica reads round-robin over two replicas', async () => {
    const { db, metrics } = makeCluster({ database: { replicas: 2, readPolicy: 'replica' } });
    for (let i = 0; i < 6; i++) await db.read('users', 1, 'user.get', readName(userId(1)));
    expect(metrics.value('db_ops', { node: 'db-0-r1', op: 'read' })).toBe(3);
    expect(metrics.value('db_ops', { node: 'db-0-r2', op: 'read' })).toBe(3);
  });

  it('a replica that falls replicationLogLimit (1000) entries behind makes the next write fail with SG_ERR_BUDGET_EXHAUSTED until it catches up', async () => {
    const { db, clock } = makeCluster({ database: { replicas: 1, replicaLagMs: 1000, readPolicy: 'primary', replicationLogLimit: 1000 } }, new VirtualClock());
    for (let i = 0; i < 1000; i++) await db.write('users', 2, 'user.create', insertUser(2, userId(2, i), `u${i}`));
    await expect(db.write('users', 2, 'user.create', insertUser(2, userId(2, 1000), 'over'))).rejects.toSatisfy((e) => codeOf(e) === 'SG_ERR_BUDGET_EXHAUSTED');
    // Other servers are unaffected.
    await db.write('users', 20, 'user.create', insertUser(20, userId(20), 'elsewhere'));
    await clock.advance(1000);
    await db.write('users', 2, 'user.create', insertUser(2, userId(2, 1000), 'after'));
    expect(db.serverFor('users', 2).primaryPool.inUse).toBe(0);
  });
});

describe('pgbouncer pools', () => {
  it('with poolSize 2 and 10 ms of service time, 10 concurrent reads on one server take five rounds (≥ ~50 ms) and wait in the pool', async () => {
    const { db, metrics } = makeCluster({ database: { replicas: 0, readPolicy: 'primary', poolSize: 2, serviceTimeMs: 10, serviceTimeDistribution: 'constant' } }, new RealClock());
    const pool = db.serverFor('users', 0).primaryPool;
    let maxInUse = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        db.read('users', i % 16, 'user.get', (sql) => {
          maxInUse = Math.max(maxInUse, pool.inUse);
          return readName(userId(i % 16))(sql);
        }),
      ),
    );
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(45);
    expect(elapsed).toBeLessThan(1000);
    expect(maxInUse).toBe(2);
    expect(metrics.histogramCount('db_pool_wait_ms', { node: 'db-0' })).toBe(10);
    // The last pair waited for four rounds of ~10 ms.
    expect(metrics.percentile('db_pool_wait_ms', { node: 'db-0' }, 99)!).toBeGreaterThanOrEqual(30);
    expect(metrics.percentile('db_pool_wait_ms', { node: 'db-0' }, 10)!).toBeLessThan(5);
    expect(metrics.percentile('db_query_ms', { node: 'db-0' }, 50)!).toBeGreaterThanOrEqual(9);
    expect(pool.inUse).toBe(0);
    expect(pool.waiting).toBe(0);
  });

  it('beyond poolQueueLimit, queries fail at once with SG_ERR_POOL_EXHAUSTED and the pool recovers', async () => {
    const { db, clock } = makeCluster({ database: { replicas: 0, readPolicy: 'primary', poolSize: 1, poolQueueLimit: 2, serviceTimeMs: 10, serviceTimeDistribution: 'constant' } });
    const pool = db.serverFor('users', 0).primaryPool;
    // Outcomes are observed as the queries start: a refusal is a value here, not an unhandled rejection.
    const outcome = (p: Promise<unknown>) => p.then(() => 'ok', codeOf);
    const reads = Array.from({ length: 5 }, () => outcome(db.read('users', 0, 'user.get', readName(userId(0)))));
    const writes = [outcome(db.write('users', 1, 'user.create', insertUser(1, userId(1), 'w')))];
    expect(pool.inUse).toBe(1);
    expect(pool.waiting).toBe(2);
    await clock.advance(100);
    expect(await Promise.all([...reads, ...writes])).toEqual(['ok', 'ok', 'ok', 'SG_ERR_POOL_EXHAUSTED', 'SG_ERR_POOL_EXHAUSTED', 'SG_ERR_POOL_EXHAUSTED']);
    expect(pool.inUse).toBe(0);
    expect(pool.waiting).toBe(0);
    const again = db.write('users', 1, 'user.create', insertUser(1, userId(1), 'w'));
    await clock.advance(10);
    await again;
    const read = db.read('users', 1, 'user.get', readName(userId(1)));
    await clock.advance(10);
    expect(await read).toBe('w');
  });

  it('exponential service time (mean 5 ms, seeded) holds connections about 5 ms on average', async () => {
    const { db, metrics, clock } = makeCluster({ database: { replicas: 0, readPolicy: 'primary', poolSize: 1000, serviceTimeMs: 5, serviceTimeDistribution: 'exponential' } });
    const done = Promise.all(Array.from({ length: 400 }, (_, i) => db.read('users', i % 64, 'user.get', readName(userId(i % 64)))));
    await clock.advance(200);
    await done;
    let total = 0;
    let count = 0;
    for (const s of db.groups[0]!.servers) {
      const n = metrics.histogramCount('db_query_ms', { node: s.name });
      count += n;
      total += n * metrics.snapshot().histograms.find((h) => h.labels.node === s.name && h.name === 'db_query_ms')!.meanMs;
    }
    expect(count).toBe(400);
    expect(total / count).toBeGreaterThan(4);
    expect(total / count).toBeLessThan(6);
  });
});

describe('writes', () => {
  it('a write that throws inside its fn leaves no row, no log entry and nothing for the replica', async () => {
    const { db, clock } = makeCluster({ database: { replicas: 1, replicaLagMs: 50, readPolicy: 'replica' } });
    const server = db.serverFor('users', 6);
    const replica = server.replicas[0]!;
    const logBefore = server.primary.logEnd;
    const id = userId(6);
    await expect(
      db.write('users', 6, 'user.create', async (sql) => {
        await insertUser(6, id, 'ghost')(sql);
        await rename(id, 'ghost2')(sql);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await readName(id)(server.primary.sql())).toBeNull();
    expect(server.primary.logEnd).toBe(logBefore);
    expect(replica.backlog()).toBe(0);
    expect(server.primaryPool.inUse).toBe(0);
    await clock.advance(100);
    db.drainReplicas();
    expect(await readName(id)(replica.sql())).toBeNull();
    expect(replica.appliedCount).toBe(0);

    // The next good write is the only thing the replica ever sees.
    await db.write('users', 6, 'user.create', insertUser(6, id, 'real'));
    expect(server.primary.logEnd).toBe(logBefore + 1);
    await clock.advance(50);
    expect(await readName(id)(replica.sql())).toBe('real');
    expect(replica.appliedCount).toBe(1);
  });

  it('logs only statements that changed rows, tagged with their logical shard', async () => {
    const { db } = makeCluster({ database: { replicas: 1 } });
    const server = db.serverFor('users', 8);
    const before = server.primary.logEnd;
    await db.write('users', 8, 'noop', (sql) => sql.run('UPDATE users SET full_name = ? WHERE id = ?', 'x', userId(8)));
    expect(server.primary.logEnd).toBe(before);
    await db.write('users', 8, 'user.create', insertUser(8, userId(8), 'y'));
    expect(server.primary.logEnd).toBe(before + 1);
    expect(server.primary.entryAt(before)!.shardId).toBe(8);
  });

  it('a down primary refuses writes with SG_ERR_NODE_DOWN while its replica still serves reads', async () => {
    const { db, clock } = makeCluster({ database: { replicas: 1, replicaLagMs: 10, readPolicy: 'replica' } });
    const id = userId(10);
    await db.write('users', 10, 'user.create', insertUser(10, id, 'kept'));
    await clock.advance(10);
    db.serverFor('users', 10).down = true;
    await expect(db.write('users', 10, 'user.rename', rename(id, 'lost'))).rejects.toSatisfy((e) => codeOf(e) === 'SG_ERR_NODE_DOWN');
    await expect(db.read('users', 10, 'user.get', readName(id), { primary: true })).rejects.toSatisfy((e) => codeOf(e) === 'SG_ERR_NODE_DOWN');
    expect(await db.read('users', 10, 'user.get', readName(id))).toBe('kept');
    // Other servers keep working.
    await db.write('users', 40, 'user.create', insertUser(40, userId(40), 'fine'));
  });

  it('bulkAdd adds deltas per row on their shards and leaves other rows alone', async () => {
    const { db } = makeCluster({ database: { replicas: 0 } });
    const ids = [userId(0, 1), userId(17, 2), userId(63, 3), userId(63, 4)];
    db.bulkInsert('users', ['shard_id', 'id', 'username', 'full_name', 'password_hash', 'created_ms'], ids.map((id, i) => [Number((id >> 10n) & 0x1fffn), id, `b${i}`, `b${i}`, 'x', 0]));
    await db.bulkAdd('users', 'follows_count', new Map([[ids[0]!.toString(), 3], [ids[1]!.toString(), -1], [ids[2]!.toString(), 5]]));
    const counts = await Promise.all(ids.map((id) => db.read('users', Number((id >> 10n) & 0x1fffn), 'g', async (sql) => Number((await sql.get<{ c: bigint }>('SELECT follows_count AS c FROM users WHERE id = ?', id))!.c))));
    expect(counts).toEqual([3, -1, 5, 0]);
    await expect(db.bulkAdd('users', 'follows_count; DROP TABLE users', new Map())).rejects.toSatisfy((e) => codeOf(e) === 'SG_ERR_INVALID_PARAM');
  });

  it('bulkInsert refuses rows without a valid shard_id and unknown tables', () => {
    const { db } = makeCluster({ database: { replicas: 0 } });
    expect(() => db.bulkInsert('users', ['id', 'shard_id'], [])).toThrow(expect.objectContaining({ code: 'SG_ERR_INVALID_PARAM' }));
    expect(() => db.bulkInsert('users', ['shard_id', 'id'], [[64, 1n]])).toThrow(expect.objectContaining({ code: 'SG_ERR_INVALID_PARAM' }));
    expect(() => db.bulkInsert('nope', ['shard_id'], [[0]])).toThrow(expect.objectContaining({ code: 'SG_ERR_INVALID_PARAM' }));
  });
});

describe('layout', () => {
  it('scatter asks each physical server once, with exactly the logical shards it holds', async () => {
    const { db } = makeCluster({ database: { replicas: 0 } });
    const seen = await db.scatter('users', 'scan', async (_sql, shards) => shards);
    expect(seen).toHaveLength(4);
    expect(seen.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 64 }, (_, i) => i));
  });

  it('vertical partitioning builds users, photos and graph clusters, each over its own servers', () => {
    const { db } = makeCluster({ database: { partitioning: 'vertical', replicas: 1 } });
    expect(db.groups.map((g) => g.name)).toEqual(['users', 'photos', 'graph']);
    expect(db.serverFor('users', 0).name).toBe('usersdb-0');
    expect(db.serverFor('photos', 63).name).toBe('photosdb-3');
    expect(db.serverFor('graph', 20).replicas[0]!.name).toBe('graphdb-1-r1');
    expect(() => db.groupByName('main')).toThrow(expect.objectContaining({ code: 'SG_ERR_INVALID_PARAM' }));
  });
});

describe('one callback at a time per node (the async Sql and the node lock)', () => {
  /** Gives the event loop a turn inside a callback, as waiting for a real database's answer would. */
  const elsewhere = () => new Promise<void>((resolve) => setImmediate(resolve));
  const count = async (sql: Sql) => Number((await sql.get<{ n: bigint }>('SELECT count(*) AS n FROM users'))!.n);

  it('a read on the primary waits for the write in progress there: it never sees the rows of a transaction that then rolls back', async () => {
    const { db } = makeCluster({ database: { replicas: 0, readPolicy: 'primary' } });
    const primary = db.serverFor('users', 3).primary;
    const id = userId(3);
    const order: string[] = [];
    const write = db.write('users', 3, 'user.create', async (sql) => {
      await insertUser(3, id, 'uncommitted')(sql);
      order.push('write inserted');
      await elsewhere();
      order.push('write throws');
      throw new Error('boom');
    });
    const read = db.read('users', 3, 'user.get', async (sql) => {
      order.push('read runs');
      return readName(id)(sql);
    });
    await expect(write).rejects.toThrow('boom');
    expect(await read).toBeNull();
    expect(order).toEqual(['write inserted', 'write throws', 'read runs']);
    // Rolled back, and the lock let go.
    expect(primary.db.inTransaction).toBe(false);
    expect(primary.lock.locked).toBe(false);
    expect(await readName(id)(primary.sql())).toBeNull();
  });

  it('two writes on one primary run one after the other, each its own transaction: the one that throws leaves nothing, the other commits and is logged', async () => {
    const { db } = makeCluster({ database: { replicas: 1, replicaLagMs: 50, readPolicy: 'primary' } });
    // Logical shards 1 and 2 are on the same server (db-0).
    const server = db.serverFor('users', 1);
    expect(db.serverFor('users', 2)).toBe(server);
    const before = server.primary.logEnd;
    const a = userId(1);
    const b = userId(2);
    const first = db.write('users', 1, 'user.create', async (sql) => {
      await insertUser(1, a, 'a')(sql);
      await elsewhere();
      await rename(a, 'a2')(sql);
      throw new Error('boom');
    });
    const second = db.write('users', 2, 'user.create', async (sql) => {
      await insertUser(2, b, 'b')(sql);
      await elsewhere();
      return count(sql);
    });
    const outcomes = await Promise.allSettled([first, second]);
    expect(outcomes[0]).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ message: 'boom' }) });
    // The second saw its own row and none of the first's.
    expect(outcomes[1]).toEqual({ status: 'fulfilled', value: 1 });
    expect(await readName(a)(server.primary.sql())).toBeNull();
    expect(await readName(b)(server.primary.sql())).toBe('b');
    expect(server.primary.logEnd).toBe(before + 1);
    expect(server.primary.entryAt(before)).toMatchObject({ shardId: 2, params: [2, b, 'b', 'b', 'x', 0] });
    expect(server.primary.lock.locked).toBe(false);
    expect(server.primaryPool.inUse).toBe(0);
  });

  it('a replica read sees one state from its first statement to its last: a lag-0 catch-up waits for it', async () => {
    const { db, metrics } = makeCluster({ database: { replicas: 1, replicaLagMs: 0, readPolicy: 'replica' } });
    const replica = db.serverFor('users', 5).replicas[0]!;
    let committed = false;
    const read = db.read('users', 5, 'user.count', async (sql) => {
      const first = await count(sql);
      // A write commits on the primary meanwhile; the replica would apply it at once.
      await db.write('users', 5, 'user.create', insertUser(5, userId(5), 'during'));
      committed = true;
      await elsewhere();
      return [first, await count(sql)];
    });
    expect(await read).toEqual([0, 0]);
    expect(committed).toBe(true);
    expect(metrics.value('db_ops', { node: replica.name, op: 'read' })).toBe(1);
    // Applied once the read was over, by the replica's own timer, or else by the next read.
    await elsewhere();
    expect(await db.read('users', 5, 'user.count', count)).toBe(1);
    expect(replica.backlog()).toBe(0);
    expect(replica.lock.locked).toBe(false);
  });

  it('a statement a callback leaves running after its end is refused', async () => {
    const { db } = makeCluster({ database: { replicas: 0, readPolicy: 'primary' } });
    let leaked: Sql | null = null;
    await db.write('users', 4, 'user.create', async (sql) => {
      leaked = sql;
      await insertUser(4, userId(4), 'w')(sql);
    });
    await expect(rename(userId(4), 'late')(leaked!)).rejects.toThrow(/after the end/);
    await db.read('users', 4, 'user.get', async (sql) => {
      leaked = sql;
      return null;
    });
    await expect(readName(userId(4))(leaked!)).rejects.toThrow(/after the end/);
    expect(await readName(userId(4))(db.serverFor('users', 4).primary.sql())).toBe('w');
  });
});
