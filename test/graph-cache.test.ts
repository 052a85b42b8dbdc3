// The follow-graph cache on ioredis-mock: look-aside fills, cached empty sets, and write-through that
// only touches sets already cached. The same cache runs against a real Redis in redis-real.test.ts.

import { describe, expect, it } from 'vitest';
import { GraphCache } from '../sim/parts/graph-cache.ts';
import { createRedis } from '../sim/parts/redis-client.ts';
import { RealClock } from '../sim/engine/clock.ts';
import { Metrics } from '../sim/observability/metrics.ts';

let nodeSeq = 0;

function makeCache() {
  const metrics = new Metrics(new RealClock());
  const redis = createRedis({ name: `graph-test-${++nodeSeq}` });
  const cache = new GraphCache({ metrics, redis });
  return { cache, metrics, redis };
}

/** A stand-in for the database query, counting how often the cache falls through to it. */
function db(ids: string[]) {
  const load = async () => {
    load.calls++;
    return [...ids];
  };
  load.calls = 0;
  return load;
}

describe('GraphCache', () => {
  it('loads a miss from the database once, then serves hits, in ascending id order', async () => {
    const { cache, metrics } = makeCache();
    const load = db(['300', '20', '1000', '20']);
    expect(await cache.following('u1', load)).toEqual(['20', '300', '1000']);
    expect(await cache.following('u1', load)).toEqual(['20', '300', '1000']);
    expect(load.calls).toBe(1);
    expect(metrics.value('graph_cache_requests', { result: 'miss' })).toBe(1);
    expect(metrics.value('graph_cache_requests', { result: 'hit' })).toBe(1);
  });

  it('caches an empty following list too', async () => {
    const { cache, metrics } = makeCache();
    const load = db([]);
    expect(await cache.following('loner', load)).toEqual([]);
    expect(await cache.following('loner', load)).toEqual([]);
    expect(await cache.follows('loner', '5', load)).toBe(false);
    expect(load.calls).toBe(1);
    expect(metrics.value('graph_cache_requests', { result: 'hit' })).toBe(2);
  });

  it('answers follows() from the cached set, filling it on a miss', async () => {
    const { cache, metrics } = makeCache();
    const load = db(['5', '6']);
    expect(await cache.follows('u1', '5', load)).toBe(true);
    expect(await cache.follows('u1', '7', load)).toBe(false);
    expect(await cache.follows('u1', '6', load)).toBe(true);
    expect(load.calls).toBe(1);
    expect(metrics.value('graph_cache_requests', { result: 'miss' })).toBe(1);
    expect(metrics.value('graph_cache_requests', { result: 'hit' })).toBe(2);
  });

  it('writes follows and unfollows through to a cached set', async () => {
    const { cache } = makeCache();
    const load = db(['1']);
    await cache.following('u1', load);
    await cache.added('u1', '9');
    expect(await cache.following('u1', load)).toEqual(['1', '9']);
    expect(await cache.follows('u1', '9', load)).toBe(true);
    await cache.removed('u1', '1');
    expect(await cache.following('u1', load)).toEqual(['9']);
    expect(load.calls).toBe(1);
  });

  it('leaves an uncached user uncached on write-through, so the next read asks the database', async () => {
    const { cache, redis, metrics } = makeCache();
    await cache.added('u2', '9');
    await cache.removed('u2', '8');
    expect(await redis.exists('following:u2')).toBe(0);
    const load = db(['1', '9']);
    expect(await cache.following('u2', load)).toEqual(['1', '9']);
    expect(load.calls).toBe(1);
    expect(metrics.value('graph_cache_requests', { result: 'miss' })).toBe(1);
  });

  it('treats a set without its cached marker (a write racing an invalidation) as a miss', async () => {
    const { cache, redis } = makeCache();
    await redis.sadd('following:u3', '42');
    const load = db(['1', '2']);
    expect(await cache.following('u3', load)).toEqual(['1', '2']);
    expect(await cache.follows('u3', '42', load)).toBe(false);
    expect(load.calls).toBe(1);
  });

  it('sends the next read to the database after invalidate()', async () => {
    const { cache, metrics } = makeCache();
    const load = db(['1']);
    await cache.following('u1', load);
    await cache.invalidate('u1');
    await cache.following('u1', load);
    expect(load.calls).toBe(2);
    expect(metrics.value('graph_cache_requests', { result: 'miss' })).toBe(2);
  });

  it('keeps key prefixes apart', async () => {
    const metrics = new Metrics(new RealClock());
    const redis = createRedis({ name: `graph-test-${++nodeSeq}` });
    const a = new GraphCache({ metrics, redis, keyPrefix: 'a:' });
    const b = new GraphCache({ metrics, redis, keyPrefix: 'b:' });
    await a.following('u1', db(['1']));
    expect(await b.following('u1', db(['2']))).toEqual(['2']);
    expect(await redis.exists('a:following:u1', 'b:following:u1')).toBe(2);
  });
});
