// Faults on a live topology: a dead cache node's keys miss and fill from the shards, a failed
// primary's replica takes over and exactly the writes it had not applied are lost (and counted),
// a server without a replica is down until revived, lag shows in replica_lag_ms and stale reads,
// and a split moves half a server's logical shards while writes continue, losing none.

import { afterEach, describe, expect, it } from 'vitest';
import { seedUsers } from '../sim/workload/bulk-loader.ts';
import { VirtualClock } from '../sim/engine/clock.ts';
import type { Sql } from '../sim/parts/db-node.ts';
import { isSimError } from '../sim/engine/errors.ts';
import { encodeId } from '../sim/parts/ids.ts';
import { buildTopology, type Topology } from '../sim/topology.ts';
import { loadTopology, type TopologyInput } from '../sim/topology-config.ts';

const open: Topology[] = [];
afterEach(async () => {
  for (const top of open.splice(0)) await top.close();
});

async function makeTopology(over: TopologyInput = {}, clock?: VirtualClock): Promise<Topology> {
  const config = loadTopology('2012-sharded', {
    shards: { logical: 64, physical: 4 },
    cache: { nodes: 4 },
    feed: { replicas: 1 },
    ...over,
    database: { readPolicy: 'primary', replicas: 1, ...over.database },
  });
  const top = await buildTopology({ config, seed: 31, sampleEveryMs: 0, ...(clock ? { clock } : {}) });
  open.push(top);
  return top;
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
    return 'ok';
  } catch (e) {
    return isSimError(e) ? e.code : String(e);
  }
}

/** A row in `users` on logical shard `shard`, with a unique id derived from `n`. */
function insertUser(shard: number, n: number) {
  const id = encodeId(1_400_000_000_000 + n, shard, n % 1024);
  return { id, run: (sql: Sql) => sql.run('INSERT INTO users (shard_id, id, username, full_name, password_hash, created_ms) VALUES (?,?,?,?,?,?)', shard, id, `u${n}`, `User ${n}`, 'x', 0) };
}

function countOn(top: Topology, serverName: string, sql: string, ...params: unknown[]): number {
  const s = top.db.groups.flatMap((g) => g.servers).find((x) => x.name === serverName)!;
  return Number((s.primary.db.prepare(sql).get(...params) as { n: number }).n);
}

describe('cache node faults', () => {
  it("a killed node's lookups become dead misses that fill from the shards; revived, it is empty and fills again", async () => {
    const top = await makeTopology();
    const ids = (await seedUsers(top, Array.from({ length: 400 }, (_, i) => ({ username: `c${i}`, fullName: `C ${i}` })))).map((s) => s.id);
    await top.store.getUsers(ids);
    const onNode1 = ids.filter((id) => top.cache.nodeFor('u:' + id) === 'cache-1').length;
    expect(onNode1).toBeGreaterThan(50);
    const m = top.metrics;
    const dead = () => m.value('cache_requests', { node: 'cache-1', result: 'dead' });
    const fills = () => m.value('cache_fills', { node: 'cache-1' });
    const hitsElsewhere = () => m.sum('cache_requests', { result: 'hit' }) - m.value('cache_requests', { node: 'cache-1', result: 'hit' });
    const before = { dead: dead(), fills: fills(), hits: hitsElsewhere() };

    const report = await top.faults.killCacheNode('cache-1');
    expect(report).toMatchObject({ fault: 'cache_kill', node: 'cache-1', itemsLost: onNode1, alive: false, onRing: true });
    await top.store.getUsers(ids);
    expect(dead() - before.dead).toBe(onNode1);
    expect(fills() - before.fills).toBe(onNode1);
    expect(hitsElsewhere() - before.hits).toBe(400 - onNode1);
    // Still dead: the next read fills again (no node to keep the value).
    await top.store.getUsers(ids);
    expect(fills() - before.fills).toBe(2 * onNode1);

    const revived = await top.faults.reviveCacheNode('cache-1');
    expect(revived).toMatchObject({ fault: 'cache_revive', alive: true, onRing: true, items: 0 });
    await top.store.getUsers(ids);
    expect(m.value('cache_requests', { node: 'cache-1', result: 'miss' })).toBe(onNode1 * 2); // once at warm-up, once now
    const hitsBefore = m.value('cache_requests', { node: 'cache-1', result: 'hit' });
    await top.store.getUsers(ids);
    expect(m.value('cache_requests', { node: 'cache-1', result: 'hit' }) - hitsBefore).toBe(onNode1);
    expect(m.value('faults', { kind: 'cache_kill' })).toBe(1);
  });

  it('a node taken off the ring sends its keys to the other nodes instead of answering dead', async () => {
    const top = await makeTopology();
    const ids = (await seedUsers(top, Array.from({ length: 300 }, (_, i) => ({ username: `r${i}`, fullName: `R ${i}` })))).map((s) => s.id);
    await top.store.getUsers(ids);
    const onNode2 = ids.filter((id) => top.cache.nodeFor('u:' + id) === 'cache-2').length;
    await top.faults.killCacheNode('cache-2', { removeFromRing: true });
    const missesBefore = top.metrics.sum('cache_requests', { result: 'miss' });
    await top.store.getUsers(ids);
    expect(top.metrics.value('cache_requests', { node: 'cache-2', result: 'dead' })).toBe(0);
    expect(top.metrics.sum('cache_requests', { result: 'miss' }) - missesBefore).toBe(onNode2);
    expect(ids.some((id) => top.cache.nodeFor('u:' + id) === 'cache-2')).toBe(false);
    await top.faults.reviveCacheNode('cache-2');
    expect(ids.filter((id) => top.cache.nodeFor('u:' + id) === 'cache-2').length).toBe(onNode2);
  });

  it('an unknown node is SG_ERR_INVALID_PARAM', async () => {
    const top = await makeTopology();
    expect(await codeOf(() => top.faults.killCacheNode('cache-9'))).toBe('SG_ERR_INVALID_PARAM');
    expect(await codeOf(() => top.faults.reviveCacheNode(''))).toBe('SG_ERR_INVALID_PARAM');
  });
});

describe('primary failure', () => {
  it('the replica is promoted and exactly the 7 writes it had not applied are lost and counted', async () => {
    const clock = new VirtualClock(1_400_000_000_000);
    const top = await makeTopology({ database: { replicaLagMs: 1000 } }, clock);
    const S = 5;
    const server = top.db.serverFor('users', S);
    const old = server.primary;
    const applied = Array.from({ length: 5 }, (_, i) => insertUser(S, i));
    for (const w of applied) await top.db.write('users', S, 'test.insert', w.run);
    await clock.advance(1000); // the replica applies those five
    expect(server.replicas[0]!.backlog()).toBe(0);
    const unapplied = Array.from({ length: 7 }, (_, i) => insertUser(S, 100 + i));
    for (const w of unapplied) await top.db.write('users', S, 'test.insert', w.run);
    expect(server.replicas[0]!.backlog()).toBe(7);

    const report = await top.faults.failPrimary(server.name);
    expect(report).toMatchObject({ fault: 'db_fail', node: server.name, promoted: `${server.name}-r1`, down: false, writesLost: 7, rowsLost: 7, replicasLeft: 0 });
    expect(top.metrics.value('db_writes_lost', { node: server.name })).toBe(7);
    expect(top.metrics.value('db_failovers', { node: server.name, outcome: 'promoted' })).toBe(1);
    expect(server.primary).not.toBe(old);
    const has = (id: bigint) => top.db.read('users', S, 'test.get', async (sql) => (await sql.get('SELECT id FROM users WHERE id = ?', id)) !== undefined);
    for (const w of applied) expect(await has(w.id)).toBe(true);
    for (const w of unapplied) expect(await has(w.id)).toBe(false);
    // The promoted primary takes writes.
    const after = insertUser(S, 500);
    await top.db.write('users', S, 'test.insert', after.run);
    expect(await has(after.id)).toBe(true);

    // With no replica left, a second failure takes the server down until it is revived.
    expect(await top.faults.failPrimary(server.name)).toMatchObject({ down: true, promoted: null, writesLost: 0 });
    expect(await codeOf(top.db.write('users', S, 'test.insert', insertUser(S, 600).run))).toBe('SG_ERR_NODE_DOWN');
    expect(await codeOf(has(after.id))).toBe('SG_ERR_NODE_DOWN');
    // Other servers are unaffected.
    const other = (S + 32) % 64;
    expect(await codeOf(top.db.write('users', other, 'test.insert', insertUser(other, 700).run))).toBe('ok');
    expect(await top.faults.reviveServer(server.name)).toMatchObject({ wasDown: true });
    expect(await has(after.id)).toBe(true);
    // A new replica is a copy of the primary (made in slices while it serves) and follows it.
    const added = await top.faults.addReplica(server.name, { lagMs: 0 });
    expect(added).toMatchObject({ replica: `${server.name}-r1`, replicas: 1 });
    const replicaUsers = () => Number((server.replicas[0]!.db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n);
    expect(replicaUsers()).toBe(6);
    await top.db.write('users', S, 'test.insert', insertUser(S, 800).run);
    expect(replicaUsers()).toBe(7);
  });

  it('with several replicas the most caught-up one is promoted and the others follow it', async () => {
    const clock = new VirtualClock(1_400_000_000_000);
    const top = await makeTopology({ database: { replicas: 2, replicaLagMs: 1000 } }, clock);
    const S = 9;
    const server = top.db.serverFor('users', S);
    for (let i = 0; i < 4; i++) await top.db.write('users', S, 'test.insert', insertUser(S, i).run);
    await top.faults.setReplicaLag({ node: `${server.name}-r2`, lagMs: 0 }); // r2 catches up at once
    for (let i = 4; i < 6; i++) await top.db.write('users', S, 'test.insert', insertUser(S, i).run);
    const report = await top.faults.failPrimary(server.name);
    expect(report).toMatchObject({ promoted: `${server.name}-r2`, writesLost: 0, replicasLeft: 1 });
    expect(server.replicas.map((r) => r.name)).toEqual([`${server.name}-r1`]);
    // r1 had applied none of the six writes: it keeps its place on the same log and takes them, and
    // the next write, from the promoted primary once its lag has passed (nothing is copied).
    const onR1 = () => Number((server.replicas[0]!.db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n);
    expect(onR1()).toBe(0);
    expect(server.replicas[0]!.backlog()).toBe(6);
    await top.db.write('users', S, 'test.insert', insertUser(S, 6).run);
    await clock.advance(1000);
    expect(onR1()).toBe(7);
    expect(server.replicas[0]!.backlog()).toBe(0);
  });
});

describe('replica lag', () => {
  it('a raised lag shows in replica_lag_ms and makes replica reads stale; lowering it catches the replica up', async () => {
    const clock = new VirtualClock(1_400_000_000_000);
    const top = await makeTopology({ database: { readPolicy: 'replica', replicaLagMs: 10 } }, clock);
    const report = await top.faults.setReplicaLag({ lagMs: 5000 });
    expect(report.replicas).toHaveLength(4);
    const S = 3;
    const replica = top.db.serverFor('users', S).replicas[0]!;
    const w = insertUser(S, 1);
    await top.db.write('users', S, 'test.insert', w.run);
    await clock.advance(2000);
    top.db.sample();
    expect(top.metrics.gauge('replica_lag_ms', { node: replica.name })).toBe(2000);
    const read = () => top.db.read('users', S, 'test.get', async (sql) => (await sql.get('SELECT id FROM users WHERE id = ?', w.id)) !== undefined);
    expect(await read()).toBe(false);
    expect(top.metrics.value('db_stale_reads', { node: replica.name })).toBe(1);
    const scalars = top.scalars();
    expect(scalars.replica_lag_ms).toBe(2000);
    expect(scalars.stale_reads).toBe(1);
    await top.faults.setReplicaLag({ node: replica.name, lagMs: 0 });
    expect(replica.backlog()).toBe(0);
    expect(await read()).toBe(true);
    expect(top.scalars().replica_lag_ms).toBe(0);
    // The feed store's replica has its own lag.
    await top.faults.setReplicaLag({ node: 'feed-replica', lagMs: 750 });
    expect(top.feeds.replicaLagMs).toBe(750);
    expect(await codeOf(() => top.faults.setReplicaLag({ node: 'db-9', lagMs: 5 }))).toBe('SG_ERR_INVALID_PARAM');
    expect(await codeOf(() => top.faults.setReplicaLag({ lagMs: -1 }))).toBe('SG_ERR_INVALID_PARAM');
  });

  it('a raised service time holds every query for that long', async () => {
    const clock = new VirtualClock(1_400_000_000_000);
    const top = await makeTopology({ database: { serviceTimeDistribution: 'constant' } }, clock);
    expect(top.faults.setServiceTime(40)).toMatchObject({ fromMs: 0, toMs: 40 });
    let done = false;
    const q = top.db.read('users', 1, 'test.get', async () => (done = true));
    await clock.advance(39);
    expect(done).toBe(false);
    await clock.advance(1);
    await q;
    expect(done).toBe(true);
  });
});

describe('moving and splitting shards', () => {
  it('a split moves the upper half of a server’s logical shards to a new server and loses none of 300 concurrent writes', async () => {
    const top = await makeTopology({ database: { replicaLagMs: 5 } });
    const group = top.db.groupFor('users');
    const shardsOn0 = group.map.shardsOn(0);
    expect(shardsOn0).toHaveLength(16);
    const job = await top.faults.splitServer({ cluster: 'main', server: 'db-0' });
    expect(job).toMatchObject({ kind: 'split', from: 'db-0', to: 'db-4', shards: shardsOn0.slice(8) });
    const written: Array<{ shard: number; id: bigint }> = [];
    let midway = 0;
    for (let n = 0; n < 300; n++) {
      const shard = shardsOn0[n % 16]!;
      const w = insertUser(shard, n);
      await top.db.write('users', shard, 'test.insert', w.run);
      written.push({ shard, id: w.id });
      const progress = top.faults.move(job.id)!.done;
      if (progress > 0 && progress < 8) midway++;
      if (n % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    // Writes really did land while the split was under way.
    expect(midway).toBeGreaterThan(10);
    for (let i = 0; i < 1000 && top.faults.move(job.id)!.state !== 'done'; i++) await new Promise((r) => setTimeout(r, 5));
    const finished = top.faults.move(job.id)!;
    expect(finished).toMatchObject({ state: 'done', done: 8, error: null });
    expect(group.map.shardsOn(0)).toEqual(shardsOn0.slice(0, 8));
    expect(group.map.shardsOn(4)).toEqual(shardsOn0.slice(8));
    for (const { shard, id } of written) {
      const owner = group.servers[group.map.physicalOf(shard)]!.name;
      let copies = 0;
      for (const s of group.servers) copies += countOn(top, s.name, 'SELECT count(*) AS n FROM users WHERE id = ?', id);
      expect(copies).toBe(1);
      expect(countOn(top, owner, 'SELECT count(*) AS n FROM users WHERE id = ?', id)).toBe(1);
    }
    for (const shard of shardsOn0.slice(8)) expect(countOn(top, 'db-0', 'SELECT count(*) AS n FROM users WHERE shard_id = ?', shard)).toBe(0);
  });

  it('moves one shard and refuses bad moves with SG_ERR_INVALID_PARAM', async () => {
    const top = await makeTopology();
    const w = insertUser(20, 1);
    await top.db.write('users', 20, 'test.insert', w.run);
    const from = top.db.groupFor('users').map.physicalOf(20);
    const to = (from + 1) % 4;
    const job = await top.faults.moveShard({ cluster: 'main', shard: 20, to, wait: true });
    expect(job).toMatchObject({ state: 'done', done: 1, rowsCopied: 1, to: `db-${to}` });
    expect(top.db.groupFor('users').map.physicalOf(20)).toBe(to);
    expect(top.faults.moves()).toHaveLength(1);
    const code = (o: Parameters<typeof top.faults.moveShard>[0]) => codeOf(top.faults.moveShard(o));
    expect(await code({ cluster: 'nope', shard: 1, to: 1 })).toBe('SG_ERR_INVALID_PARAM');
    expect(await code({ cluster: 'main', shard: 64, to: 1 })).toBe('SG_ERR_INVALID_PARAM');
    expect(await code({ cluster: 'main', shard: 20, to })).toBe('SG_ERR_INVALID_PARAM');
    expect(await code({ cluster: 'main', shard: 1, to: 'db-77' })).toBe('SG_ERR_INVALID_PARAM');
    expect(await codeOf(top.faults.splitServer({ cluster: 'main', server: 9 }))).toBe('SG_ERR_INVALID_PARAM');
  });
});
