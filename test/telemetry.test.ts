// Telemetry read back from a running topology: skew under a signup surge (range ≫ modulo), the
// users behind a hot shard, fan-out size and lag, cache hit ratio per node over time, replica lag
// over time, and series that stay bounded however many logical shards there are.

import { afterEach, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { runAsActor } from '../sim/engine/actor-context.ts';
import { seedUsers } from '../sim/workload/bulk-loader.ts';
import { VirtualClock } from '../sim/engine/clock.ts';
import { shardOf } from '../sim/parts/ids.ts';
import { HeavyHitters, Metrics } from '../sim/observability/metrics.ts';
import { Prng } from '../sim/engine/prng.ts';
import { buildTopology, type Topology } from '../sim/topology.ts';
import { loadTopology, type TopologyInput } from '../sim/topology-config.ts';

const open: Topology[] = [];
afterEach(async () => {
  for (const top of open.splice(0)) await top.close();
});

async function makeTopology(over: TopologyInput = {}, clock?: VirtualClock): Promise<Topology> {
  const config = loadTopology('2012-sharded', {
    shards: { logical: 64, physical: 4, ...over.shards },
    cache: { nodes: 4, ...over.cache },
    feed: { replicas: 0, ...over.feed },
    database: { readPolicy: 'primary', ...over.database },
  });
  const top = await buildTopology({ config, seed: 17, sampleEveryMs: 0, ...(clock ? { clock } : {}) });
  open.push(top);
  return top;
}

const jpeg = () => sharp({ create: { width: 64, height: 64, channels: 3, background: '#c33' } }).jpeg().toBuffer();

describe('hotspots', () => {
  it('a signup surge under range sharding is tens of times more skewed than under modulo sharding', async () => {
    const skew = async (strategy: 'range' | 'modulo') => {
      const top = await makeTopology({ shards: { strategy, usersPerRange: 1000 } });
      for (let i = 0; i < 200; i++) await top.store.createUser({ username: `surge_${i}`, password: 'secret123', fullName: `Surge ${i}`, isPrivate: false });
      const snap = top.telemetry();
      expect(top.scalars().shard_skew).toBe(snap.hotspots.shardSkew);
      return snap.hotspots.clusters[0]!;
    };
    const range = await skew('range');
    const modulo = await skew('modulo');
    expect(range.skew!).toBeGreaterThan(10 * modulo.skew!);
    expect(range.skew!).toBeGreaterThan(20);
    expect(modulo.skew!).toBeLessThan(4);
    // Range: every signup lands on logical shard 0, and the hottest-shard report says so and why.
    const hot = range.hottest[0]!;
    expect(hot.shard).toBe(0);
    expect(hot.share).toBeGreaterThan(0.5);
    expect(hot.kinds.map((k) => k.kind)).toContain('user.create');
    // Many users, none dominant: the load is the surge, not one account.
    expect(hot.users.length).toBeGreaterThan(0);
    expect(hot.users[0]!.share).toBeLessThan(0.1);
    expect(range.servers[0]!.ops).toBeGreaterThan(range.servers[1]!.ops * 5);
    expect(range.serverSkew!).toBeGreaterThan(modulo.serverSkew! * 1.5);
  });

  it('the hottest shard names the celebrity whose post drew 150 likes as the user behind it', async () => {
    const top = await makeTopology();
    const seeded = await top.population.seed({ users: 300, avgFollows: 6, seed: 4 });
    const celeb = seeded.celebrities[0]!;
    const media = await top.store.createMedia({ userId: celeb.id, caption: 'big news #hello', filter: 'Normal', lat: null, lng: null, locationName: null, image: await jpeg() });
    await top.idle();
    const fans = top.population.page({ limit: 300 }).users.filter((u) => u.id !== celeb.id).slice(0, 150);
    for (const fan of fans) await runAsActor(fan.id, () => top.store.like(media.id, fan.id));
    const cluster = top.telemetry().hotspots.clusters[0]!;
    const hot = cluster.hottest[0]!;
    expect(hot.shard).toBe(shardOf(celeb.id));
    expect(hot.users[0]!.id).toBe(celeb.id);
    expect(hot.users[0]!.username).toBe(celeb.username);
    expect(hot.users[0]!.share).toBeGreaterThan(0.5);
    expect(hot.users[0]!.via).toContain('media');
    expect(hot.kinds.map((k) => k.kind)).toContain('like.add');
    // The requests came from many fans, each a small share.
    expect(hot.actors.length).toBeGreaterThan(0);
    expect(hot.actors.every((a) => a.share < 0.1)).toBe(true);
  });
});

describe('fan-out', () => {
  it('reports deliveries per second, fan-out size per post and delivery lag after a post to followers', async () => {
    const top = await makeTopology();
    const seeded = await top.population.seed({ users: 400, avgFollows: 6, seed: 8 });
    const celeb = seeded.celebrities[0]!;
    expect(celeb.followed_by).toBeGreaterThan(50);
    await top.store.createMedia({ userId: celeb.id, caption: null, filter: 'Normal', lat: null, lng: null, locationName: null, image: await jpeg() });
    await top.idle();
    const f = top.telemetry().fanout;
    expect(f.posts).toEqual({ push: 1 });
    expect(f.completed).toBe(1);
    expect(f.deliveries).toBe(celeb.followed_by);
    expect(Math.abs(f.sizePerPost!.max - celeb.followed_by)).toBeLessThanOrEqual(celeb.followed_by * 0.01);
    expect(f.lagMs!.count).toBe(1);
    expect(f.lagMs!.p99).toBeGreaterThan(0);
    expect(f.lagOverTime.reduce((a, w) => a + w.count, 0)).toBe(1);
    expect(f.deliveriesPerS.reduce((a, [, v]) => a + v, 0)).toBe(celeb.followed_by);
    expect(top.scalars().fanout_lag_ms).toBe(f.lagMs!.p99);
  });
});

describe('caches and replicas over time', () => {
  it("a node's hit ratio per second drops to 0 when it dies, and its keys' fills show per second", async () => {
    const clock = new VirtualClock(1_500_000_000_000);
    const top = await makeTopology({}, clock);
    const ids = (await seedUsers(top, Array.from({ length: 200 }, (_, i) => ({ username: `h${i}`, fullName: `H ${i}` })))).map((s) => s.id);
    await top.store.getUsers(ids); // misses and fills
    await top.store.getUsers(ids); // hits
    await clock.advance(1000);
    await top.faults.killCacheNode('cache-1');
    await top.store.getUsers(ids);
    const onNode1 = ids.filter((id) => top.cache.nodeFor('u:' + id) === 'cache-1').length;
    const c = top.telemetry().caches;
    const node1 = c.nodes.find((n) => n.name === 'cache-1')!;
    expect(node1.hitRatioOverTime).toEqual([
      [0, 0.5],
      [1000, 0],
    ]);
    expect(node1.dead).toBe(onNode1);
    expect(c.fillsPerS).toEqual([
      [0, 200],
      [1000, onNode1],
    ]);
    expect(c.hitRatioOverTime[0]).toEqual([0, 0.5]);
    expect(c.hitRatioOverTime[1]![1]).toBeCloseTo((200 - onNode1) / 200, 3);
    expect(top.scalars().cache_hit_rate).toBeCloseTo((200 + 200 - onNode1) / 600, 3);
  });

  it("with a gutter pool, a dead node's row counts the lookups of its keys the gutter took, and the gutter's own row those that found it dead too", async () => {
    const top = await makeTopology({ cache: { gutter: 1 } });
    const ids = (await seedUsers(top, Array.from({ length: 200 }, (_, i) => ({ username: `g${i}`, fullName: `G ${i}` })))).map((s) => s.id);
    await top.store.getUsers(ids);
    await top.faults.killCacheNode('cache-1');
    await top.store.getUsers(ids);
    const onNode1 = ids.filter((id) => top.cache.nodeFor('u:' + id) === 'cache-1').length;
    expect(onNode1).toBeGreaterThan(0);
    const row = (name: string) => top.telemetry().caches.nodes.find((n) => n.name === name)!;
    expect(row('cache-1')).toMatchObject({ alive: false, dead: 0, toGutter: onNode1 });
    expect(row('gutter-0')).toMatchObject({ dead: 0, toGutter: 0 });
    expect(row('gutter-0').hits + row('gutter-0').misses).toBe(onNode1);
    await top.faults.killCacheNode('gutter-0');
    await top.store.getUsers(ids);
    expect(row('cache-1')).toMatchObject({ dead: 0, toGutter: 2 * onNode1 });
    expect(row('gutter-0')).toMatchObject({ alive: false, dead: onNode1 });
    const events = top.telemetry().events.map((e) => [e.kind, e.detail.node]);
    expect(events).toEqual([
      ['cache_kill', 'cache-1'],
      ['cache_kill', 'gutter-0'],
    ]);
  });

  it('replica lag is a series sampled each second, and `since` and `step` cut and merge it', async () => {
    const clock = new VirtualClock(1_500_000_000_000);
    const top = await makeTopology({ database: { replicaLagMs: 10 } }, clock);
    await top.faults.setReplicaLag({ lagMs: 60_000 });
    await top.db.write('users', 2, 'test.insert', (sql) => sql.run('INSERT INTO tokens (shard_id, token_hash, user_id, created_ms) VALUES (?,?,?,?)', 2, 'digest', 1, 0));
    const replica = top.db.serverFor('users', 2).replicas[0]!.name;
    for (let s = 0; s < 3; s++) {
      await clock.advance(1000);
      top.sample();
    }
    const lagOf = (opts?: Parameters<Topology['telemetry']>[0]) => top.telemetry(opts).replicas.nodes.find((n) => n.name === replica)!;
    expect(lagOf().lagOverTime).toEqual([
      [0, 0],
      [1000, 1000],
      [2000, 2000],
      [3000, 3000],
    ]);
    expect(lagOf().maxLagMs).toBe(3000);
    expect(lagOf({ sinceMs: 1500 }).lagOverTime).toEqual([
      [2000, 2000],
      [3000, 3000],
    ]);
    expect(lagOf({ stepMs: 2000 }).lagOverTime).toEqual([
      [0, 1000],
      [2000, 3000],
    ]);
    expect(top.scalars().replica_lag_ms).toBe(3000);
  });

  it('the scalars name every measure thresholds use', async () => {
    const top = await makeTopology();
    const s = top.scalars();
    for (const key of ['cache_hit_rate', 'fanout_lag_ms', 'shard_skew', 'stale_reads', 'replica_lag_ms', 'queue_depth']) expect(s).toHaveProperty(key);
    expect(s.stale_reads).toBe(0);
    expect(s.queue_depth).toBe(0);
    expect(s.fanout_lag_ms).toBeNull();
  });
});

describe('bounded series', () => {
  it('2048 shard counters over 120 s keep at most 16 points per bucket, with exact bucket totals and maxima', async () => {
    const clock = new VirtualClock(0);
    const m = new Metrics(clock, 1000);
    m.limitSeries('shard_ops', { topK: 16, partitionBy: 'cluster' });
    const counters = Array.from({ length: 2048 }, (_, s) => m.counter('shard_ops', { cluster: 'main', shard: s }));
    const rng = new Prng(5);
    const expected: Array<{ total: number; max: number }> = [];
    for (let b = 0; b < 120; b++) {
      const per = new Map<number, number>();
      for (let i = 0; i < 500; i++) {
        // Skewed on purpose: low shards are hotter.
        const s = Math.floor(2048 * rng.next() ** 3);
        counters[s]!.inc();
        per.set(s, (per.get(s) ?? 0) + 1);
      }
      expected.push({ total: 500, max: Math.max(...per.values()) });
      await clock.advance(1000);
    }
    const points = m.series(['shard_ops']).reduce((a, s) => a + s.points.length, 0);
    expect(points).toBeLessThanOrEqual(16 * 120);
    const summary = m.familySummary('shard_ops').get('main')!;
    expect(summary).toHaveLength(120);
    expect(summary.map((b) => ({ total: b.total, max: b.max }))).toEqual(expected);
    // Totals since start are untouched by the cap.
    expect(counters.reduce((a, c) => a + c.value, 0)).toBe(120 * 500);
  });

  it('space-saving keeps any key above n/k of the stream, with a bounded overcount', () => {
    const hh = new HeavyHitters<string>(5);
    const rng = new Prng(9);
    let x = 0;
    for (let i = 0; i < 1000; i++) {
      if (rng.chance(0.3)) {
        hh.offer('x');
        x++;
      } else hh.offer(`k${rng.int(0, 500)}`);
    }
    const top = hh.top()[0]!;
    expect(top.key).toBe('x');
    expect(top.count).toBeGreaterThanOrEqual(x);
    expect(top.count - top.error).toBeLessThanOrEqual(x);
    expect(hh.total).toBe(1000);
  });
});
