// FeedStore and GraphCache against a real Redis (REDIS_URL, default 127.0.0.1:6379), proving the code
// is not tied to ioredis-mock. Skipped with a warning when Redis is down, except under CI=true.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { FeedStore } from '../sim/parts/feed-store.ts';
import { GraphCache } from '../sim/parts/graph-cache.ts';
import { closeRedis, createRedis } from '../sim/parts/redis-client.ts';
import { RealClock } from '../sim/engine/clock.ts';
import { Metrics } from '../sim/observability/metrics.ts';
import { loadTopology, resolveTopology, type TopologyConfig } from '../sim/topology-config.ts';
import { buildTopology } from '../sim/topology.ts';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const mustRun = process.env.CI === 'true';

/** Null when Redis answers PING within a second, else why not. */
async function probe(): Promise<string | null> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => {}); // the failure is reported below, not as an unhandled 'error' event
  try {
    await client.connect();
    await client.ping();
    return null;
  } catch (err) {
    return (err as Error).message || String(err);
  } finally {
    client.disconnect();
  }
}

const unreachable = await probe();
if (unreachable !== null && !mustRun) console.warn(`Redis not reachable at ${url} (${unreachable}); skipping real-Redis tests`);

/** The replica is the next logical database on the same server, so its keys never meet the primary's. */
function replicaUrl(): string {
  const u = new URL(url);
  const db = Number(u.pathname.slice(1) || '0');
  u.pathname = `/${(db + 1) % 16}`;
  return u.toString();
}

describe.skipIf(unreachable !== null && !mustRun)(`real Redis at ${url}`, () => {
  // Every key this run writes starts with this prefix, and is deleted afterwards.
  const prefix = `sgtest:${process.pid}:${randomUUID().slice(0, 8)}:`;
  let primary: Redis;
  let replica: Redis;

  beforeAll(() => {
    if (unreachable !== null) throw new Error(`Redis not reachable at ${url} and CI=true requires it: ${unreachable}`);
    primary = createRedis({ url, name: 'sgtest-feed-primary' });
    replica = createRedis({ url: replicaUrl(), name: 'sgtest-feed-replica' });
  });

  afterAll(async () => {
    if (unreachable !== null) return;
    for (const client of [primary, replica]) {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        if (keys.length > 0) await client.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      expect(await client.keys(`${prefix}*`)).toEqual([]);
      await closeRedis(client);
    }
  });

  let storeSeq = 0;
  function makeStore(over: Partial<TopologyConfig['feed']> = {}) {
    const config = resolveTopology({ feed: { replicas: 0, ...over } }).feed;
    const clock = new RealClock();
    const metrics = new Metrics(clock);
    const keyPrefix = `${prefix}${++storeSeq}:`;
    const store = new FeedStore(config, { clock, metrics, primary, replica, keyPrefix });
    return { store, metrics, keyPrefix };
  }

  describe('FeedStore', () => {
    it('keeps the newest maxLength ids: 900 pushes leave 800, newest first', async () => {
      const { store, metrics } = makeStore({ maxLength: 800 });
      for (let i = 1; i <= 900; i++) await store.push(['u1'], String(1000 + i));
      expect(await store.length('u1')).toBe(800);
      expect(await store.range('u1', 3)).toEqual(['1900', '1899', '1898']);
      expect((await store.range('u1', 1000)).at(-1)).toBe('1101');
      expect(metrics.value('feed_trims')).toBe(100);
    });

    it('pages with max_id across three pages without gaps or duplicates', async () => {
      const { store } = makeStore();
      const ids = Array.from({ length: 30 }, (_, i) => String((i + 1) * 37));
      for (const id of ids) await store.push(['reader'], id);
      const newestFirst = [...ids].reverse();
      const page1 = await store.range('reader', 10);
      const page2 = await store.range('reader', 10, page1.at(-1));
      const page3 = await store.range('reader', 10, page2.at(-1));
      expect([...page1, ...page2, ...page3]).toEqual(newestFirst);
      expect(await store.range('reader', 10, page3.at(-1))).toEqual([]);
    });

    it('delivers to 20,000 followers and removes from some of them', async () => {
      const { store } = makeStore();
      const followers = Array.from({ length: 20_000 }, (_, i) => `f${i}`);
      expect(await store.push(followers, '1')).toBe(20_000);
      await store.push(followers.slice(0, 10), '2');
      await store.remove(followers.slice(0, 5), '1');
      expect(await store.range('f0', 10)).toEqual(['2']);
      expect(await store.range('f9', 10)).toEqual(['2', '1']);
      expect(await store.range('f19999', 10)).toEqual(['1']);
    });

    it('a replica read right after a push misses the new id and counts a stale read; after the lag it is there', async () => {
      const { store, metrics, keyPrefix } = makeStore({ replicas: 1, replicaLagMs: 50 });
      await store.push(['u1'], '7001');
      expect(await primary.lrange(`${keyPrefix}feed:u1`, 0, -1)).toEqual(['7001']);
      expect(await store.range('u1', 10)).toEqual([]);
      expect(metrics.value('feed_stale_reads')).toBe(1);
      await new Promise((r) => setTimeout(r, 120));
      expect(await store.range('u1', 10)).toEqual(['7001']);
      expect(metrics.value('feed_stale_reads')).toBe(1);
      expect(metrics.value('feed_reads', { node: 'feed-replica' })).toBe(2);
    });

    it('dumps and restores its feed lists', async () => {
      const a = makeStore();
      await a.store.push(['u1', 'u2'], '10');
      await a.store.push(['u1'], '20');
      const dumped = await a.store.dump();
      expect(dumped).toEqual({ u1: ['20', '10'], u2: ['10'] });
      const b = makeStore({ replicas: 1, replicaLagMs: 50 });
      await b.store.restore(dumped);
      expect(await b.store.dump()).toEqual(dumped);
      expect(await b.store.range('u1', 10)).toEqual(['20', '10']);
    });
  });

  describe('GraphCache', () => {
    function makeCache() {
      const metrics = new Metrics(new RealClock());
      const cache = new GraphCache({ metrics, redis: primary, keyPrefix: `${prefix}${++storeSeq}:` });
      return { cache, metrics };
    }
    function db(ids: string[]) {
      const load = async () => {
        load.calls++;
        return [...ids];
      };
      load.calls = 0;
      return load;
    }

    it('loads a miss once, then hits; caches an empty set', async () => {
      const { cache, metrics } = makeCache();
      const load = db(['300', '20']);
      expect(await cache.following('u1', load)).toEqual(['20', '300']);
      expect(await cache.following('u1', load)).toEqual(['20', '300']);
      expect(await cache.follows('u1', '300', load)).toBe(true);
      const none = db([]);
      expect(await cache.following('u2', none)).toEqual([]);
      expect(await cache.follows('u2', '1', none)).toBe(false);
      expect(load.calls).toBe(1);
      expect(none.calls).toBe(1);
      expect(metrics.value('graph_cache_requests', { result: 'miss' })).toBe(2);
      expect(metrics.value('graph_cache_requests', { result: 'hit' })).toBe(3);
    });

    it('writes through only to cached sets', async () => {
      const { cache } = makeCache();
      const load = db(['1']);
      await cache.following('u1', load);
      await cache.added('u1', '9');
      await cache.added('u3', '9'); // not cached: must stay so
      expect(await cache.following('u1', load)).toEqual(['1', '9']);
      await cache.removed('u1', '1');
      expect(await cache.following('u1', load)).toEqual(['9']);
      const load3 = db(['4']);
      expect(await cache.following('u3', load3)).toEqual(['4']);
      expect(load.calls).toBe(1);
      expect(load3.calls).toBe(1);
      await cache.invalidate('u1');
      await cache.following('u1', load);
      expect(load.calls).toBe(2);
    });
  });

  describe('a topology with a data dir on this Redis', () => {
    it('starts with the follow-graph cache cold, so a follow whose write-through was lost is answered from the database', async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'scalegram-graph-'));
      const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 }, feed: { replicas: 0 } });
      try {
        const t = await buildTopology({ config, seed: 7, dataDir, redisUrl: url, sampleEveryMs: 0 });
        const a = await t.store.createUser({ username: 'ann', password: 'secret1', fullName: 'A', isPrivate: false });
        const b = await t.store.createUser({ username: 'ben', password: 'secret1', fullName: 'B', isPrivate: false });
        await t.graph.following(a.user.id, async () => []); // cached: Ann follows nobody
        await t.store.setRelationship(a.user.id, b.user.id, 'follow');
        // The run dies between the database write and the cache's write-through (or this Redis
        // loses that write): the cached set says Ann follows nobody.
        await t.graph.removed(a.user.id, b.user.id);
        expect(await t.graph.following(a.user.id, async () => ['unused'])).toEqual([]);
        await t.close();
        const after = await buildTopology({ config, seed: 7, dataDir, redisUrl: url, sampleEveryMs: 0 });
        try {
          expect(await after.graph.following(a.user.id, async () => [b.user.id])).toEqual([b.user.id]);
          expect(after.metrics.value('graph_cache_requests', { result: 'miss' })).toBe(1);
        } finally {
          await after.graph.clear();
          await after.close();
        }
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });

  describe("the server's own figures", () => {
    it('a topology on this Redis reports its INFO (version, memory, commands) in describe().feed.info, and the reading moves', async () => {
      const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 }, feed: { replicas: 0 } });
      const t = await buildTopology({ config, seed: 7, redisUrl: url, sampleEveryMs: 0 });
      try {
        type Info = { version: string; usedMemoryBytes: number; commandsProcessed: number };
        const info = () => (t.describe() as { feed: { backend: string; info?: Info } }).feed;
        expect(info().backend).toBe('redis');
        const first = info().info!;
        expect(first.version).toMatch(/^\d+\.\d+/);
        expect(first.usedMemoryBytes).toBeGreaterThan(0);
        await t.store.createUser({ username: 'infoer', password: 'secret1', fullName: 'I', isPrivate: false });
        await t.pollRedisInfo();
        expect(info().info!.commandsProcessed).toBeGreaterThan(first.commandsProcessed);
      } finally {
        await t.close();
      }
    });
  });

  describe('FeedStore.pushOnce (the replay of a fan-out)', () => {
    it('adds a post only to lists that lack it, at its place by id', async () => {
      const { store } = makeStore({ maxLength: 5 });
      for (const id of ['10', '20', '40']) await store.push(['u1', 'u2'], id);
      await store.push(['u1'], '30');
      expect(await store.pushOnce(['u1', 'u2', 'u3'], '30')).toBe(2);
      expect(await store.range('u1', 10)).toEqual(['30', '40', '20', '10']);
      expect(await store.range('u2', 10)).toEqual(['40', '30', '20', '10']);
      expect(await store.range('u3', 10)).toEqual(['30']);
      // A full list keeps maxLength: an older id than all it holds is not added, a newer one trims.
      for (const id of ['50', '60']) await store.push(['u2'], id);
      expect(await store.pushOnce(['u2'], '5')).toBe(0);
      expect(await store.pushOnce(['u2'], '55')).toBe(1);
      expect(await store.range('u2', 10)).toEqual(['60', '55', '50', '40', '30']);
    });
  });
});
