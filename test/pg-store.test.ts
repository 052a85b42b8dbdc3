// The store on real Postgres servers (backends/postgres/pg-tier.ts behind DatabaseCluster): two
// primaries, each streaming to a replica, every logical shard a schema of the server holding it.
// The service's own code runs on them: signups, follows, posts, per-shard counts; stale reads are
// counted from WAL positions under a real apply delay; a shard moves between the servers while
// writes go on; a primary fails over to its replica and the writes lost are exactly those the
// replica never received (its stream was cut), counted from positions and checked row by row.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTopology, type Topology } from '../sim/topology.ts';
import { loadTopology } from '../sim/topology-config.ts';
import { seedUsers } from '../sim/workload/bulk-loader.ts';
import { shardSchema } from '../sim/backends/postgres/schema.ts';
import { shardOf } from '../sim/parts/ids.ts';
import { isSimError } from '../sim/engine/errors.ts';
import { makePgServers, pgClustersProblem, pgClustersRequired, type PgServers } from './support/pg-servers.ts';

const LOGICAL = 16;

if (pgClustersProblem && !pgClustersRequired) console.warn(`pg-store: skipped: Postgres clusters cannot be made here (${pgClustersProblem})`);

describe.skipIf(pgClustersProblem !== null && !pgClustersRequired)('the store on real Postgres servers', () => {
  let servers: PgServers;
  let top: Topology;
  const pools: pg.Pool[] = [];
  const poolOf = (url: string) => {
    const p = new pg.Pool({ connectionString: url, max: 2 });
    // An idle connection to the primary the failover stops reports the end here.
    p.on('error', () => undefined);
    pools.push(p);
    return p;
  };
  const count = async (url: string, sql: string, ...params: unknown[]) => Number((await poolOf(url).query<{ n: string }>(sql, params)).rows[0]!.n);

  beforeAll(async () => {
    if (pgClustersProblem) throw new Error(`CI=true needs Postgres clusters: ${pgClustersProblem}`);
    servers = await makePgServers({ servers: 2, logical: LOGICAL, replicas: 1 });
    const config = loadTopology('2012-sharded', {
      shards: { logical: LOGICAL, physical: 2 },
      cache: { nodes: 2 },
      feed: { replicas: 0 },
      database: { replicas: 1, readPolicy: 'replica' },
    });
    top = await buildTopology({ config, seed: 7, sampleEveryMs: 0, postgres: servers.specs });
  }, 180_000);

  afterAll(async () => {
    await top?.close();
    for (const p of pools) await p.end().catch(() => undefined);
    servers?.drop();
  }, 120_000);

  it('runs signups, follows and posts of the service on the servers, each row in its shard’s schema, counted per shard', async () => {
    const seeded = await seedUsers(top, Array.from({ length: 120 }, (_, i) => ({ username: `pg${i}`, fullName: `Pg ${i}` })));
    const signup = await top.store.createUser({ username: 'alice', password: 'correct horse', fullName: 'Alice', isPrivate: false });
    const alice = signup.user.id;
    for (const u of seeded.slice(0, 30)) await top.store.setRelationship(u.id, alice, 'follow');
    // Every seeded user is in the users table of its shard's schema on the server the map names, and nowhere else.
    let found = 0;
    for (const [i, spec] of servers.specs.entries()) {
      for (const shard of top.db.groups[0]!.map.shardsOn(i)) {
        found += await count(spec.url, `SELECT count(*) AS n FROM ${shardSchema(shard)}.users`);
        expect(await count(spec.url, `SELECT count(*) AS n FROM ${shardSchema(shard)}.users WHERE shard_id <> $1`, shard)).toBe(0);
      }
    }
    expect(found).toBe(121);
    const got = await top.store.getUsers([alice, seeded[5]!.id]);
    expect(got.get(alice)?.username).toBe('alice');
    expect(got.get(seeded[5]!.id)?.username).toBe('pg5');
    const user = await top.store.getUser(alice);
    expect(user?.counts.followedBy).toBe(30);
    // Counted per logical shard and per node, as the embedded store counts them.
    const m = top.metrics;
    expect(m.value('shard_ops', { cluster: 'main', shard: shardOf(alice) })).toBeGreaterThan(0);
    expect(m.sum('db_ops')).toBeGreaterThan(150);
    const described = top.describe() as { databases: Array<{ backend?: string }> };
    expect(described.databases[0]!.backend).toBe('postgres');
  }, 120_000);

  it('counts a read stale when the replica’s replay position is behind the shard’s last write (a real apply delay)', async () => {
    const m = top.metrics;
    const { user } = await top.store.createUser({ username: 'staler', password: 'correct horse', fullName: 'Stale', isPrivate: false });
    // The replicas apply each commit the topology's replicaLagMs after it: wait until they hold the user.
    await top.db.catchUpReplicas();
    const before = m.sum('db_stale_reads');
    await top.faults.setReplicaLag({ lagMs: 3000 });
    await top.db.write('users', shardOf(user.id), 'test.rename', (sql) => sql.run('UPDATE users SET full_name = ? WHERE id = ?', 'Changed', BigInt(user.id)));
    // Read from the replica (policy replica): the change is not there yet, and the read says so.
    const stale = await top.db.read('users', shardOf(user.id), 'test.read', (sql) => sql.get<{ full_name: string }>('SELECT full_name FROM users WHERE id = ?', BigInt(user.id)));
    expect(stale?.full_name).toBe('Stale');
    expect(m.sum('db_stale_reads')).toBe(before + 1);
    await top.faults.setReplicaLag({ lagMs: 0 });
    // Once replayed, a read is not stale.
    const deadline = Date.now() + 30_000;
    let fresh: string | undefined;
    while (Date.now() < deadline) {
      fresh = (await top.db.read('users', shardOf(user.id), 'test.read', (sql) => sql.get<{ full_name: string }>('SELECT full_name FROM users WHERE id = ?', BigInt(user.id))))?.full_name;
      if (fresh === 'Changed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(fresh).toBe('Changed');
    const after = m.sum('db_stale_reads');
    await top.db.read('users', shardOf(user.id), 'test.read', (sql) => sql.get('SELECT 1 AS one FROM users WHERE id = ?', BigInt(user.id)));
    expect(m.sum('db_stale_reads')).toBe(after);
  }, 60_000);

  it('moves a logical shard to the other server while writes go on: every row there, none left behind', async () => {
    const group = top.db.groups[0]!;
    const shard = group.map.shardsOn(0)[0]!;
    const [src, dst] = [servers.specs[0]!, servers.specs[1]!];
    const before = await count(src.url, `SELECT count(*) AS n FROM ${shardSchema(shard)}.users`);
    // The destination's replica will lag: reads of the moved shard must not reach it before it holds the copy.
    await top.faults.setReplicaLag({ lagMs: 4000 });
    // Writers on that shard during the move.
    let stop = false;
    let written = 0;
    const writer = (async () => {
      let n = 0;
      while (!stop) {
        await seedUsersOnShard(top, shard, `mv${n++}`);
        written++;
      }
    })();
    const job = await top.faults.moveShard({ cluster: 'main', shard, to: 1, wait: true });
    stop = true;
    await writer;
    expect(job.state).toBe('done');
    expect(group.map.physicalOf(shard)).toBe(1);
    expect(written).toBeGreaterThan(0);
    expect(await count(dst.url, `SELECT count(*) AS n FROM ${shardSchema(shard)}.users`)).toBe(before + written);
    expect(await count(src.url, "SELECT count(*) AS n FROM pg_namespace WHERE nspname = $1", shardSchema(shard))).toBe(0);
    // The service reads it where it is now.
    const ids = (await poolOf(dst.url).query<{ id: string }>(`SELECT id::text AS id FROM ${shardSchema(shard)}.users ORDER BY id LIMIT 3`)).rows.map((r) => r.id);
    // Right after the switch, with the destination's replica 4 s behind: reads answer, from where the rows are.
    const read = await top.db.read('users', shard, 'test.read', (sql) => sql.all<{ id: bigint }>('SELECT id FROM users ORDER BY id LIMIT 3'));
    expect(read.map((r) => String(r.id))).toEqual(ids);
    const got = await top.store.getUsers(ids);
    expect(got.size).toBe(ids.length);
    await top.faults.setReplicaLag({ lagMs: 0 });
    // A split needs a new server, which is a new cluster: refused as bad input.
    await expect(top.faults.splitServer({ cluster: 'main', server: 'db-1' })).rejects.toMatchObject({ code: 'SG_ERR_INVALID_PARAM' });
  }, 180_000);

  it('answers a read whose replica connection ends mid-transaction from the primary, never failing it', async () => {
    const shards = top.db.groups[0]!.map.shardsOn(1);
    const replicaUrl = servers.specs[1]!.replicas![0]!;
    const m = top.metrics;
    const retriesBefore = m.sum('db_replica_read_retries');
    let stop = false;
    const errors: unknown[] = [];
    let reads = 0;
    const load = Promise.all(
      Array.from({ length: 6 }, async (_, k) => {
        for (let n = 0; !stop; n++) {
          try {
            await top.db.read('users', shards[(k + n) % shards.length]!, 'test.read', async (sql) => [await sql.all('SELECT id FROM users LIMIT 20'), await sql.all('SELECT id FROM users ORDER BY id DESC LIMIT 20')]);
            reads++;
          } catch (e) {
            errors.push(e);
          }
        }
      }),
    );
    // End replica sessions that are inside a read (what a conflict with recovery or a restart does to them).
    let ended = 0;
    const deadline = Date.now() + 20_000;
    while (ended < 3 && Date.now() < deadline) {
      ended += await count(replicaUrl, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = 'scalegram' AND state IN ('active', 'idle in transaction') AND pid <> pg_backend_pid()");
      await new Promise((r) => setTimeout(r, 5));
    }
    stop = true;
    await load;
    expect(ended).toBeGreaterThanOrEqual(3);
    expect(reads).toBeGreaterThan(0);
    expect(errors.map(String)).toEqual([]);
    expect(m.sum('db_replica_read_retries')).toBeGreaterThan(retriesBefore);
  }, 60_000);

  it('fails a primary over to its replica: the writes lost are those the replica never received, counted from positions and missing row by row', async () => {
    const server = top.db.groups[0]!.servers[0]!;
    const shards = top.db.groups[0]!.map.shardsOn(0);
    const spec = servers.specs[0]!;
    const replicaUrl = spec.replicas![0]!;
    // Everything so far reaches the replica; then a partition: its stream is cut.
    await top.db.catchUpReplicas();
    await top.faults.setReplay({ node: server.name, streaming: false });
    const lostIds: string[] = [];
    for (let i = 0; i < 23; i++) lostIds.push(await seedUsersOnShard(top, shards[i % shards.length]!, `lost${i}`));
    // Reads of the failing server's shards and writes elsewhere go on meanwhile: they answer or fail
    // as a dead server's queries do (SG_ERR_NODE_DOWN), and nothing else escapes (an unheard
    // connection error would end the process).
    let stop = false;
    const errors: unknown[] = [];
    let answered = 0;
    const other = top.db.groups[0]!.map.shardsOn(1);
    const load = Promise.all(
      Array.from({ length: 6 }, async (_, k) => {
        for (let n = 0; !stop; n++) {
          try {
            const shard = shards[(k + n) % shards.length]!;
            await top.db.read('users', shard, 'test.read', (sql) => sql.all('SELECT id FROM users LIMIT 5'), { primary: k % 2 === 0 });
            if (k === 5) await seedUsersOnShard(top, other[n % other.length]!, `bg${n}`);
            answered++;
          } catch (e) {
            errors.push(e);
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 200));
    const [first, second] = await Promise.allSettled([top.faults.failPrimary(server.name), top.faults.failPrimary(server.name)]);
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await load;
    expect(answered).toBeGreaterThan(0);
    expect(errors.filter((e) => !isSimError(e, 'SG_ERR_NODE_DOWN')).map(String)).toEqual([]);
    // One failover at a time: the second is refused.
    expect(second.status).toBe('rejected');
    expect((second as PromiseRejectedResult).reason).toMatchObject({ code: 'SG_ERR_INVALID_PARAM' });
    expect(first.status).toBe('fulfilled');
    const report = (first as PromiseFulfilledResult<unknown>).value as { promoted: string; writesLost: number; writesLostComplete: boolean };
    expect(report.promoted).toBe(`${server.name}-r1`);
    // Each of those users was one committed write; none reached the replica now serving.
    const onServer0 = await Promise.all(lostIds.map(async (id) => count(replicaUrl, `SELECT count(*) AS n FROM ${shardSchema(shardOf(id))}.users WHERE id = $1`, id)));
    expect(onServer0.every((n) => n === 0)).toBe(true);
    expect(report.writesLostComplete).toBe(true);
    expect(report.writesLost).toBe(top.metrics.sum('db_writes_lost'));
    expect(report.writesLost).toBe(23);
    // The promoted replica serves writes.
    const after = await seedUsersOnShard(top, shards[0]!, 'afterfail');
    expect(await count(replicaUrl, `SELECT count(*) AS n FROM ${shardSchema(shardOf(after))}.users WHERE id = $1`, after)).toBe(1);
    // The deployment's description follows: the next topology (a reset's) opens the promoted server.
    expect(spec.url).toBe(replicaUrl);
    expect(spec.replicas).toEqual([]);
  }, 180_000);

  it('starts a new topology on the servers as it says, undoing the lag, pause and cut an earlier one left', async () => {
    const server = top.db.groups[0]!.servers[1]!;
    await top.faults.setReplicaLag({ node: server.name, lagMs: 5000 });
    await top.faults.setReplay({ node: server.name, streaming: false });
    await top.faults.setReplay({ node: server.name, paused: true });
    await top.close();
    const config = loadTopology('2012-sharded', { shards: { logical: LOGICAL, physical: 2 }, cache: { nodes: 2 }, feed: { replicas: 0 }, database: { replicas: 1, readPolicy: 'replica', replicaLagMs: 15 } });
    const notices: string[] = [];
    top = await buildTopology({ config, seed: 8, sampleEveryMs: 0, postgres: servers.specs, onNotice: (m) => notices.push(m) });
    const replica = (top.describe() as { databases: Array<{ postgres: { servers: Array<{ replicas: Array<{ position: { paused: boolean; streaming: boolean; applyDelayMs: number } }> }> } }> }).databases[0]!.postgres.servers[1]!.replicas[0]!;
    expect(replica.position).toMatchObject({ paused: false, streaming: true, applyDelayMs: 15 });
    expect(notices.join('\n')).toMatch(/resumed/);
    expect(notices.join('\n')).toMatch(/streaming from its primary again/);
    // And it serves: server 0 is the promoted replica now.
    const { user } = await top.store.createUser({ username: 'reborn', password: 'correct horse', fullName: 'Reborn', isPrivate: false });
    expect((await top.store.getUser(user.id))?.username).toBe('reborn');
  }, 180_000);
});

/** One user written on logical shard `shard` (a users row through the store's write path); its id. */
async function seedUsersOnShard(top: Topology, shard: number, name: string): Promise<string> {
  const id = top.store.mintId('users', shard);
  await top.db.write('users', shard, 'test.user', (sql) => sql.run('INSERT INTO users (shard_id, id, username, full_name, password_hash, created_ms) VALUES (?,?,?,?,?,?)', shard, BigInt(id), name, name, 'x', 0));
  return id;
}
