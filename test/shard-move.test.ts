// Moving a logical shard to another physical server while it keeps taking writes: every write ends
// up exactly once on the destination, nothing is left on the source, reads still find everything,
// replicas follow; bad moves are refused; addServer plus moves is a split.

import { afterEach, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { seedUsers, type SeededUser } from '../sim/workload/bulk-loader.ts';
import { VirtualClock } from '../sim/engine/clock.ts';
import type { PhysicalServer } from '../sim/parts/database-cluster.ts';
import type { DbNode, Sql } from '../sim/parts/db-node.ts';
import { isSimError } from '../sim/engine/errors.ts';
import { encodeId, shardOf } from '../sim/parts/ids.ts';
import { TABLES } from '../sim/domain/sql-schema.ts';
import { buildTopology, type Topology } from '../sim/topology.ts';
import { loadTopology, type TopologyInput } from '../sim/topology-config.ts';

let t: Topology | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function makeTopology(over: TopologyInput = {}): Promise<Topology> {
  const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 }, ...over });
  t = await buildTopology({ config, seed: 77, sampleEveryMs: 0 });
  return t;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Rows of logical shard `shardId` on one node, over every table. */
function rowsOfShard(node: DbNode, shardId: number, tables: readonly string[] = TABLES): number {
  let n = 0;
  for (const table of tables) n += Number((node.db.prepare(`SELECT count(*) AS n FROM ${table} WHERE shard_id = ?`).get(shardId) as { n: number }).n);
  return n;
}

function count(node: DbNode, sql: string, ...params: unknown[]): number {
  return Number((node.db.prepare(sql).get(...params) as { n: number }).n);
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return isSimError(e) ? e.code : String(e);
  }
}

const jpeg = () => sharp({ create: { width: 64, height: 64, channels: 3, background: '#888' } }).jpeg().toBuffer();

async function seed(top: Topology, n: number): Promise<SeededUser[]> {
  return seedUsers(
    top,
    Array.from({ length: n }, (_, i) => ({ username: `user_${i}`, fullName: `User ${i}` })),
  );
}

describe('moving a logical shard under load', () => {
  it('200 concurrent writes (100 likes through the Store, 100 inserts through db.write) all land exactly once on the destination', async () => {
    // Connections are scarce and every query holds one for 2 ms, so writes queue while the shard moves.
    const top = await makeTopology({ database: { poolSize: 2, serviceTimeMs: 2, serviceTimeDistribution: 'constant', replicaLagMs: 10 } });
    const users = await seed(top, 640);
    const group = top.db.groupFor('photos');
    const owner = users.find((u) => shardOf(u.id) === 5)!;
    const S = shardOf(owner.id);
    const src = top.db.serverFor('photos', S);
    const dstIndex = (src.index + 2) % 4;
    const dst = group.servers[dstIndex]!;
    const media = await top.store.createMedia({ userId: owner.id, caption: 'moving day', filter: 'Normal', lat: null, lng: null, locationName: null, image: await jpeg() });
    const likers = users.filter((u) => u.id !== owner.id).slice(0, 100);
    const insertedIds = Array.from({ length: 100 }, (_, i) => encodeId(1_400_000_000_000 + i, S, 0));

    const writes: Array<Promise<void>> = [];
    for (let i = 0; i < 100; i++) {
      writes.push(top.store.like(media.id, likers[i]!.id));
      writes.push(
        top.db
          .write('users', S, 'test.insert', (sql) =>
            sql.run('INSERT INTO users (shard_id, id, username, full_name, password_hash, created_ms) VALUES (?,?,?,?,?,?)', S, insertedIds[i]!, `moved_${i}`, 'M', 'x', 0),
          )
          .then(() => undefined),
      );
    }
    await sleep(40);
    // The move starts mid-stream: some likes are already on the source, others wait for its pool.
    const likesOnSourceBefore = count(src.primary, 'SELECT count(*) AS n FROM likes WHERE media_id = ?', BigInt(media.id));
    const insertsOnSourceBefore = count(src.primary, "SELECT count(*) AS n FROM users WHERE username LIKE 'moved%'");
    const doneBefore = likesOnSourceBefore + insertsOnSourceBefore;
    const waitingAtMove = src.primaryPool.waiting;
    const dstWritesBefore = top.metrics.value('db_ops', { node: dst.name, op: 'write' });
    const report = await top.db.moveShard('main', S, dstIndex, { batch: 1 });
    await Promise.all(writes);
    expect(writes).toHaveLength(200);
    expect(doneBefore).toBeGreaterThan(0);
    expect(doneBefore).toBeLessThan(200);
    expect(waitingAtMove).toBeGreaterThan(0);

    expect(report.from).toBe(src.name);
    expect(report.to).toBe(dst.name);
    expect(report.rowsCopied).toBeGreaterThanOrEqual(doneBefore);
    // Queries that were waiting for the source's pool were retried on the destination.
    expect(top.metrics.value('db_ops', { node: dst.name, op: 'write' })).toBeGreaterThan(dstWritesBefore + 50);

    expect(group.map.physicalOf(S)).toBe(dstIndex);
    expect(rowsOfShard(src.primary, S)).toBe(0);
    expect(count(dst.primary, 'SELECT count(*) AS n FROM likes WHERE media_id = ?', BigInt(media.id))).toBe(100);
    expect(count(dst.primary, 'SELECT like_count AS n FROM media WHERE id = ?', BigInt(media.id))).toBe(100);
    expect(count(dst.primary, "SELECT count(*) AS n FROM activity WHERE user_id = ? AND kind = 'like'", BigInt(owner.id))).toBe(100);
    expect(count(dst.primary, 'SELECT count(*) AS n FROM users WHERE id IN (SELECT CAST(value AS INTEGER) FROM json_each(?))', JSON.stringify(insertedIds.map(String)))).toBe(100);
    // Everything else of the shard came along too: its 10 seeded users and their tokens.
    expect(count(dst.primary, 'SELECT count(*) AS n FROM users WHERE shard_id = ?', S)).toBe(10 + 100);
    expect(count(dst.primary, 'SELECT count(*) AS n FROM tokens WHERE shard_id = ?', S)).toBe(10);

    // Reads through the Store find it all on the new server.
    await sleep(50);
    const m = await top.store.getMedia(media.id);
    expect(m!.likeCount).toBe(100);
    expect((await top.store.listLikers(media.id, 500)).map((u) => u.id).sort()).toEqual(likers.map((u) => u.id).sort());
    for (const l of likers.slice(0, 10)) expect(await top.store.hasLiked(l.id, [media.id])).toEqual(new Set([media.id]));
    expect((await top.store.getUser(owner.id))!.username).toBe(owner.username);
    expect(await top.store.authenticate(owner.accessToken)).toBe(owner.id);
    expect((await top.store.listActivity(owner.id, { count: 200 })).items).toHaveLength(100);

    // The destination's replica catches up; the source's replica drops the shard.
    expect(rowsOfShard(dst.replicas[0]!, S)).toBe(rowsOfShard(dst.primary, S));
    expect(rowsOfShard(src.replicas[0]!, S)).toBe(0);
  });

  // Regression: a writer must not be sent to a replica that still owes writes to the shard. A move logs the copied rows on
  // the destination with the move's time, so right after a move the destination's replica looks
  // "newer" than alice's write although it has not applied the copy: alice reads null.
  it('read-your-writes holds across a move: a writer reads its write at once from the new server', async () => {
    const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 }, database: { readPolicy: 'read-your-writes', replicaLagMs: 50 } });
    const clock = new VirtualClock(1_400_000_000_000);
    const top = (t = await buildTopology({ config, seed: 5, sampleEveryMs: 0, clock }));
    const id = encodeId(clock.nowMs(), 9, 0);
    const insert = (sql: Sql) =>
      sql.run('INSERT INTO users (shard_id, id, username, full_name, password_hash, created_ms) VALUES (?,?,?,?,?,?)', 9, id, 'ryw', 'Mine', 'x', 0);
    const name = async (sql: Sql) => (await sql.get<{ full_name: string }>('SELECT full_name FROM users WHERE id = ?', id))?.full_name ?? null;
    await top.db.write('users', 9, 'user.create', insert, { actorId: 'alice' });
    await clock.advance(10);
    await top.db.moveShard('main', 9, (top.db.groupFor('users').map.physicalOf(9) + 1) % 4);
    expect(await top.db.read('users', 9, 'user.get', name, { actorId: 'alice' })).toBe('Mine');
    // Someone else may read the new server's lagging replica (stale, counted), until it catches up.
    await clock.advance(50);
    expect(await top.db.read('users', 9, 'user.get', name, { actorId: 'bob' })).toBe('Mine');
  });

  it('a move waits for a write in progress on the source (its lock): the rows of a transaction that then rolls back are never copied', async () => {
    const top = await makeTopology({ database: { replicas: 0 } });
    const S = 9;
    const src = top.db.serverFor('users', S);
    const dst = top.db.groupFor('users').servers[(src.index + 1) % 4]!;
    const id = encodeId(1_400_000_000_000, S, 1);
    let letGo!: () => void;
    const held = new Promise<void>((resolve) => (letGo = resolve));
    const write = top.db.write('users', S, 'test.insert', async (sql) => {
      await sql.run('INSERT INTO users (shard_id, id, username, full_name, password_hash, created_ms) VALUES (?,?,?,?,?,?)', S, id, 'never', 'Never', 'x', 0);
      await held;
      throw new Error('rolled back');
    });
    await sleep(5);
    const move = top.db.moveShard('main', S, dst.index);
    await sleep(30);
    // The copy has not begun on the source while the write's transaction is open.
    expect(top.db.groupFor('users').map.physicalOf(S)).toBe(src.index);
    letGo();
    await expect(write).rejects.toThrow('rolled back');
    await move;
    expect(top.db.groupFor('users').map.physicalOf(S)).toBe(dst.index);
    expect(count(dst.primary, 'SELECT count(*) AS n FROM users WHERE id = ?', id)).toBe(0);
    expect(count(src.primary, 'SELECT count(*) AS n FROM users WHERE id = ?', id)).toBe(0);
    expect(src.primary.lock.locked || dst.primary.lock.locked).toBe(false);
  });

  it("a move leaves other shards' rows on the source alone", async () => {
    const top = await makeTopology();
    await seed(top, 128);
    const src = top.db.serverFor('users', 1);
    const others = rowsOfShard(src.primary, 2);
    expect(others).toBeGreaterThan(0);
    await top.db.moveShard('main', 1, 3);
    expect(rowsOfShard(src.primary, 2)).toBe(others);
    expect(rowsOfShard(src.primary, 1)).toBe(0);
    expect(top.db.groupFor('users').map.shardsOn(src.index)).not.toContain(1);
  });

  it('refuses to move to the same server, a bad shard id or a missing server with SG_ERR_SHARD_MOVE', async () => {
    const top = await makeTopology();
    const map = top.db.groupFor('users').map;
    const here = map.physicalOf(7);
    expect(await codeOf(top.db.moveShard('main', 7, here))).toBe('SG_ERR_SHARD_MOVE');
    expect(await codeOf(top.db.moveShard('main', -1, 1))).toBe('SG_ERR_SHARD_MOVE');
    expect(await codeOf(top.db.moveShard('main', 64, 1))).toBe('SG_ERR_SHARD_MOVE');
    expect(await codeOf(top.db.moveShard('main', 1.5, 1))).toBe('SG_ERR_SHARD_MOVE');
    expect(await codeOf(top.db.moveShard('main', 7, 99))).toBe('SG_ERR_SHARD_MOVE');
    expect(await codeOf(top.db.moveShard('nope', 7, 1))).toBe('SG_ERR_INVALID_PARAM');
    top.db.serverFor('users', 7).down = true;
    expect(await codeOf(top.db.moveShard('main', 7, (here + 1) % 4))).toBe('SG_ERR_SHARD_MOVE');
    top.db.serverFor('users', 7).down = false;
    expect(map.physicalOf(7)).toBe(here);
    expect(map.version).toBe(0);
  });

  it('addServer then moving half of db-0 onto it is a split: the new server holds shards 0–7 and serves their reads and writes', async () => {
    const top = await makeTopology();
    const users = await seed(top, 256);
    const added: PhysicalServer = top.db.addServer('main');
    expect(added.name).toBe('db-4');
    expect(added.replicas).toHaveLength(1);
    const group = top.db.groupFor('users');
    for (const s of group.map.shardsOn(0).slice(0, 8)) await top.db.moveShard('main', s, added.index);
    expect(group.map.shardsOn(0)).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    expect(group.map.shardsOn(4)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(count(added.primary, 'SELECT count(*) AS n FROM users')).toBe(32);
    expect(count(group.servers[0]!.primary, 'SELECT count(*) AS n FROM users')).toBe(32);

    const movedUser = users.find((u) => shardOf(u.id) === 3)!;
    expect((await top.store.getUser(movedUser.id))!.username).toBe(movedUser.username);
    const readsBefore = top.metrics.sum('db_ops', { op: 'read', node: 'db-4' }) + top.metrics.sum('db_ops', { op: 'read', node: 'db-4-r1' });
    await top.store.getUsers([users.find((u) => shardOf(u.id) === 4)!.id]);
    expect(top.metrics.sum('db_ops', { op: 'read', node: 'db-4' }) + top.metrics.sum('db_ops', { op: 'read', node: 'db-4-r1' })).toBeGreaterThan(readsBefore);
    // New signups on a moved shard are written to the new server.
    const writesBefore = top.metrics.value('db_ops', { node: 'db-4', op: 'write' });
    const created = await top.store.createUser({ username: 'after_split', password: 'secret123', fullName: 'After', isPrivate: false });
    expect(group.map.physicalOf(shardOf(created.user.id)) === 4).toBe(top.metrics.value('db_ops', { node: 'db-4', op: 'write' }) > writesBefore);
    const described = top.db.describe() as Array<{ servers: Array<{ name: string; logicalShards: number }> }>;
    expect(described[0]!.servers.map((s) => s.logicalShards)).toEqual([8, 16, 16, 16, 8]);
  });

  it('with vertical partitioning a photos shard moves alone: its media go, the users of that shard stay on usersdb', async () => {
    const top = await makeTopology({ database: { partitioning: 'vertical' } });
    const users = await seed(top, 64);
    const owner = users.find((u) => shardOf(u.id) === 2)!;
    const media = await top.store.createMedia({ userId: owner.id, caption: null, filter: 'Normal', lat: null, lng: null, locationName: null, image: await jpeg() });
    const photos = top.db.groupByName('photos');
    const from = photos.servers[photos.map.physicalOf(2)]!;
    await top.db.moveShard('photos', 2, 3);
    expect(rowsOfShard(from.primary, 2)).toBe(0);
    expect(count(photos.servers[3]!.primary, 'SELECT count(*) AS n FROM media WHERE id = ?', BigInt(media.id))).toBe(1);
    expect(top.db.groupByName('users').map.physicalOf(2)).toBe(0);
    expect(rowsOfShard(top.db.serverFor('users', 2).primary, 2, ['users'])).toBe(1);
    expect((await top.store.getMedia(media.id))!.userId).toBe(owner.id);
  });
});
