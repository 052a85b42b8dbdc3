// Feed lists on ioredis-mock: the cap, max_id paging, the lagging read replica, persistence, and the
// fan-out rate. The same FeedStore runs against a real Redis in redis-real.test.ts.

import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { FeedStore, idBelow } from '../sim/parts/feed-store.ts';
import { closeRedis, createRedis } from '../sim/parts/redis-client.ts';
import { RealClock, VirtualClock, type Clock } from '../sim/engine/clock.ts';
import { Metrics } from '../sim/observability/metrics.ts';
import { resolveTopology, type TopologyConfig } from '../sim/topology-config.ts';

let nodeSeq = 0;
/** A fresh mock node: every test gets its own data. */
function node(role: string): Redis {
  return createRedis({ name: `feed-test-${role}-${++nodeSeq}` });
}

function feedConfig(over: Partial<TopologyConfig['feed']> = {}): TopologyConfig['feed'] {
  return resolveTopology({ feed: { replicas: 0, ...over } }).feed;
}

function makeStore(over: Partial<TopologyConfig['feed']> = {}, clock: Clock = new RealClock()) {
  const config = feedConfig(over);
  const metrics = new Metrics(clock);
  const primary = node('primary');
  const replica = config.replicas === 1 ? node('replica') : undefined;
  const store = new FeedStore(config, { clock, metrics, primary, replica });
  return { store, metrics, primary, replica, clock };
}

/** Ids of mixed decimal lengths (37 … 1110), so string order and numeric order disagree. */
const mixedIds = (n: number) => Array.from({ length: n }, (_, i) => String((i + 1) * 37));

describe('idBelow', () => {
  it('compares decimal ids as numbers, beyond 2^53', () => {
    expect(idBelow('999', '1000')).toBe(true);
    expect(idBelow('1000', '999')).toBe(false);
    expect(idBelow('5', '5')).toBe(false);
    // These differ only past double precision: Number() would call them equal.
    const a = '1814773929473802240';
    const b = '1814773929473802241';
    expect(Number(a)).toBe(Number(b));
    expect(idBelow(a, b)).toBe(true);
    expect(idBelow(b, a)).toBe(false);
  });
});

describe('FeedStore', () => {
  it('keeps the newest maxLength ids: 900 pushes leave 800, newest first', async () => {
    const { store, metrics } = makeStore({ maxLength: 800 });
    for (let i = 1; i <= 900; i++) await store.push(['u1'], String(1000 + i));
    expect(await store.length('u1')).toBe(800);
    expect(await store.range('u1', 3)).toEqual(['1900', '1899', '1898']);
    const all = await store.range('u1', 1000);
    expect(all).toHaveLength(800);
    expect(all.at(-1)).toBe('1101');
    expect(metrics.value('feed_trims')).toBe(100);
    expect(metrics.value('feed_deliveries')).toBe(900);
    expect(metrics.value('feed_writes', { node: 'feed-primary' })).toBe(900);
    expect(metrics.histogramCount('feed_push_ms')).toBe(900);
  });

  it('delivers to every follower and returns the count', async () => {
    const { store, metrics } = makeStore();
    const followers = Array.from({ length: 10_000 }, (_, i) => `f${i}`);
    expect(await store.push(followers, '42')).toBe(10_000);
    expect(await store.push([], '43')).toBe(0);
    expect(await store.range('f0', 5)).toEqual(['42']);
    expect(await store.range('f9999', 5)).toEqual(['42']);
    expect(await store.length('f10000')).toBe(0);
    expect(metrics.value('feed_deliveries')).toBe(10_000);
    expect(metrics.value('feed_trims')).toBe(0);
  });

  it('pages with max_id across three pages without gaps or duplicates', async () => {
    const { store, metrics } = makeStore();
    const ids = mixedIds(30);
    for (const id of ids) await store.push(['reader'], id);
    const newestFirst = [...ids].reverse();

    const page1 = await store.range('reader', 10);
    const page2 = await store.range('reader', 10, page1.at(-1));
    const page3 = await store.range('reader', 10, page2.at(-1));
    const page4 = await store.range('reader', 10, page3.at(-1));
    expect(page1).toEqual(newestFirst.slice(0, 10));
    expect(page2).toEqual(newestFirst.slice(10, 20));
    expect(page3).toEqual(newestFirst.slice(20, 30));
    expect(page4).toEqual([]);
    // A max_id between stored ids starts the page at the next lower id.
    expect(await store.range('reader', 2, '1000')).toEqual(['999', '962']);
    expect(metrics.value('feed_reads', { node: 'feed-primary' })).toBe(5);
  });

  it('finds ids below max_id deep in a list longer than one read window', async () => {
    const { store } = makeStore({ maxLength: 1000 });
    const ids = Array.from({ length: 1000 }, (_, i) => String(10_000 + i));
    for (let i = 0; i < ids.length; i += 100) await Promise.all(ids.slice(i, i + 100).map((id) => store.push(['deep'], id)));
    const top = await store.range('deep', 1000);
    expect(top).toHaveLength(1000);
    const anchor = top[949]!;
    const page = await store.range('deep', 100, anchor);
    expect(page).toEqual(top.slice(950, 1000));
  });

  it('removes a media id from the named feeds only', async () => {
    const { store } = makeStore();
    await store.push(['a', 'b', 'c'], '100');
    await store.push(['a', 'b', 'c'], '200');
    await store.remove(['a', 'b'], '100');
    expect(await store.range('a', 10)).toEqual(['200']);
    expect(await store.range('b', 10)).toEqual(['200']);
    expect(await store.range('c', 10)).toEqual(['200', '100']);
  });

  describe('with a read replica', () => {
    it('a read right after a push misses the new id and counts a stale read; after the lag it is there', async () => {
      const clock = new VirtualClock();
      const { store, metrics, primary } = makeStore({ replicas: 1, replicaLagMs: 50 }, clock);
      await store.push(['u1', 'u2'], '7001');
      expect(await primary.lrange('feed:u1', 0, -1)).toEqual(['7001']);
      expect(await store.range('u1', 10)).toEqual([]);
      expect(metrics.value('feed_stale_reads')).toBe(1);
      await clock.advance(49);
      expect(await store.length('u1')).toBe(0);
      expect(metrics.value('feed_stale_reads')).toBe(2);
      expect(store.replicaBacklog()).toBe(1);
      await clock.advance(1);
      expect(await store.range('u1', 10)).toEqual(['7001']);
      expect(await store.range('u2', 10)).toEqual(['7001']);
      expect(metrics.value('feed_stale_reads')).toBe(2);
      expect(metrics.value('feed_reads', { node: 'feed-replica' })).toBe(4);
      expect(metrics.value('feed_reads', { node: 'feed-primary' })).toBe(0);
      expect(metrics.value('feed_writes', { node: 'feed-replica' })).toBe(2);
      expect(store.replicaBacklog()).toBe(0);
    });

    it('a read of an untouched list during the lag is not counted stale', async () => {
      const clock = new VirtualClock();
      const { store, metrics } = makeStore({ replicas: 1, replicaLagMs: 50 }, clock);
      await store.push(['u1'], '1');
      expect(await store.range('someone-else', 10)).toEqual([]);
      expect(metrics.value('feed_stale_reads')).toBe(0);
    });

    it('applies writes on the replica in primary order, so both end up equal', async () => {
      const clock = new VirtualClock();
      const { store, primary, replica } = makeStore({ replicas: 1, replicaLagMs: 20, maxLength: 5 }, clock);
      for (let i = 1; i <= 8; i++) {
        await store.push(['x', 'y'], String(i));
        await clock.advance(3);
      }
      await store.remove(['x'], '7');
      await store.push(['x'], '9');
      expect(await replica!.lrange('feed:x', 0, -1)).not.toEqual(await primary.lrange('feed:x', 0, -1));
      await clock.advance(20);
      expect(await replica!.lrange('feed:x', 0, -1)).toEqual(['9', '8', '6', '5', '4']);
      expect(await primary.lrange('feed:x', 0, -1)).toEqual(['9', '8', '6', '5', '4']);
      expect(await replica!.lrange('feed:y', 0, -1)).toEqual(await primary.lrange('feed:y', 0, -1));
    });

    it('with no lag the replica has every write when push returns', async () => {
      const { store, metrics } = makeStore({ replicas: 1, replicaLagMs: 0 }, new VirtualClock());
      await store.push(['u1'], '5');
      expect(await store.range('u1', 10)).toEqual(['5']);
      expect(metrics.value('feed_stale_reads')).toBe(0);
    });

    it('applies the replica on real timers too', async () => {
      const { store, replica } = makeStore({ replicas: 1, replicaLagMs: 20 }, new RealClock());
      await store.push(['u1'], '5');
      expect(await replica!.llen('feed:u1')).toBe(0);
      await new Promise((r) => setTimeout(r, 60));
      expect(await replica!.llen('feed:u1')).toBe(1);
    });

    it('close() applies writes still waiting for the replica', async () => {
      const clock = new VirtualClock();
      const { store, replica } = makeStore({ replicas: 1, replicaLagMs: 1000 }, clock);
      await store.push(['u1'], '5');
      await store.close();
      expect(await replica!.lrange('feed:u1', 0, -1)).toEqual(['5']);
    });
  });

  it('dumps and restores every feed list, on both nodes, trimmed to maxLength', async () => {
    const a = makeStore();
    await a.store.push(['u1', 'u2', 'u3'], '10');
    await a.store.push(['u1', 'u2'], '20');
    await a.store.push(['u1'], '30');
    const dumped = await a.store.dump();
    expect(dumped).toEqual({ u1: ['30', '20', '10'], u2: ['20', '10'], u3: ['10'] });

    const clock = new VirtualClock();
    const b = makeStore({ replicas: 1, replicaLagMs: 50, maxLength: 2 }, clock);
    await b.store.restore(JSON.parse(JSON.stringify(dumped)) as Record<string, string[]>);
    expect(await b.store.dump()).toEqual({ u1: ['30', '20'], u2: ['20', '10'], u3: ['10'] });
    // Restored data is on the replica at once, not after the lag.
    expect(await b.store.range('u1', 10)).toEqual(['30', '20']);
    expect(b.metrics.value('feed_stale_reads')).toBe(0);
  });

  it('pushOnce (a replayed fan-out) adds a post only to lists that lack it, at its place by id, on both nodes', async () => {
    const { store, replica } = makeStore({ maxLength: 5, replicas: 1, replicaLagMs: 0 });
    for (const id of ['10', '20', '40']) await store.push(['u1', 'u2'], id);
    await store.push(['u1'], '30');
    expect(await store.pushOnce(['u1', 'u2', 'u3'], '30')).toBe(2);
    expect(await store.range('u1', 10)).toEqual(['30', '40', '20', '10']);
    expect(await store.range('u2', 10)).toEqual(['40', '30', '20', '10']);
    expect(await store.range('u3', 10)).toEqual(['30']);
    expect(await replica!.lrange('feed:u2', 0, -1)).toEqual(['40', '30', '20', '10']);
    // A full list keeps maxLength: an id older than all it holds is not added, a newer one trims.
    for (const id of ['50', '60']) await store.push(['u2'], id);
    expect(await store.pushOnce(['u2'], '5')).toBe(0);
    expect(await store.pushOnce(['u2'], '55')).toBe(1);
    expect(await store.range('u2', 10)).toEqual(['60', '55', '50', '40', '30']);
    expect(await replica!.lrange('feed:u2', 0, -1)).toEqual(['60', '55', '50', '40', '30']);
  });

  it('resyncReplica makes the replica a copy of the primary', async () => {
    const { store, primary, replica } = makeStore({ replicas: 1, replicaLagMs: 0 });
    await primary.rpush('feed:u1', '2', '1');
    await primary.rpush('feed:u2', '3');
    await replica!.rpush('feed:u1', 'stale');
    expect(await store.resyncReplica()).toBe(2);
    expect(await replica!.lrange('feed:u1', 0, -1)).toEqual(['2', '1']);
    expect(await replica!.lrange('feed:u2', 0, -1)).toEqual(['3']);
  });

  it('dumps only its own key prefix', async () => {
    const primary = node('shared');
    const clock = new RealClock();
    const metrics = new Metrics(clock);
    const mine = new FeedStore(feedConfig(), { clock, metrics, primary, keyPrefix: 'run1:' });
    const theirs = new FeedStore(feedConfig(), { clock, metrics, primary, keyPrefix: 'run2:' });
    await mine.push(['u1'], '1');
    await theirs.push(['u1', 'u2'], '2');
    await primary.set('run1:not-a-feed', 'x');
    expect(await mine.dump()).toEqual({ u1: ['1'] });
    expect(await theirs.dump()).toEqual({ u1: ['2'], u2: ['2'] });
  });

  it('pushes 200,000 deliveries in one call on ioredis-mock, every follower once (its speed is npm run bench\'s fan-out figure)', async () => {
    const { store, metrics } = makeStore();
    const followers = Array.from({ length: 200_000 }, (_, i) => String(5_000_000 + i));
    await store.push(followers.slice(0, 5000), '1'); // warm up the JIT
    const t0 = performance.now();
    const delivered = await store.push(followers, '2');
    const ms = performance.now() - t0;
    const ratePerS = Math.round(delivered / (ms / 1000));
    console.log(`feed push: ${delivered} deliveries in ${ms.toFixed(0)} ms = ${ratePerS} deliveries/s`);
    expect(delivered).toBe(200_000);
    expect(metrics.value('feed_deliveries')).toBe(205_000);
    expect(await store.range(followers[199_999]!, 5)).toEqual(['2']);
    expect(await store.range(followers[0]!, 5)).toEqual(['2', '1']);
  });
});

describe('createRedis', () => {
  it('gives each node name its own mock data, and the same name the same data', async () => {
    const a = createRedis({ name: 'isolation-a' });
    const b = createRedis({ name: 'isolation-b' });
    await a.set('k', 'from-a');
    await b.set('k', 'from-b');
    expect(await a.get('k')).toBe('from-a');
    expect(await b.get('k')).toBe('from-b');
    const a2 = createRedis({ name: 'isolation-a' });
    expect(await a2.get('k')).toBe('from-a');
    expect(await createRedis({ name: 'isolation-c' }).get('k')).toBeNull();
    await closeRedis(a);
    await closeRedis(b);
    await closeRedis(a2);
  });
});
