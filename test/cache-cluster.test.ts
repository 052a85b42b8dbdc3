import { describe, it, expect } from 'vitest';
import { CacheCluster } from '../sim/parts/cache-cluster.ts';
import { ByteLru } from '../sim/parts/byte-lru.ts';
import { Prng } from '../sim/engine/prng.ts';
import { VirtualClock } from '../sim/engine/clock.ts';
import { isSimError } from '../sim/engine/errors.ts';
import { Metrics } from '../sim/observability/metrics.ts';
import { resolveTopology, type TopologyInput } from '../sim/topology-config.ts';

function cluster(cache: TopologyInput['cache'] = {}) {
  const clock = new VirtualClock();
  const metrics = new Metrics(clock);
  const cc = new CacheCluster(resolveTopology({ cache }).cache, { clock, metrics });
  return { cc, metrics };
}

/** A fill that stays in flight until released, so concurrent misses overlap. */
function gatedFill(value: string) {
  let calls = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const fill = async () => {
    calls++;
    await gate;
    return value;
  };
  return { fill, release: () => release(), calls: () => calls };
}

const KEYS = Array.from({ length: 600 }, (_, i) => `media:${i}`);

describe('CacheCluster', () => {
  it('names its nodes cache-0 … cache-(N-1) and owns keys by ketama', () => {
    const { cc } = cluster({ nodes: 6 });
    expect(cc.nodeNames).toEqual(['cache-0', 'cache-1', 'cache-2', 'cache-3', 'cache-4', 'cache-5']);
    expect(cc.nodeFor('user:1')).toBe('cache-2');
  });

  it('evicts the least recently used values once a node passes capacityBytes, and counts them', () => {
    const { cc, metrics } = cluster({ nodes: 1, capacityBytes: 1024 });
    const value = 'v'.repeat(97); // 3-byte key + 97-byte value = 100 bytes
    for (let i = 0; i < 10; i++) cc.set(`k0${i}`, value);
    expect(cc.get('k00')).toBe(value); // now most recently used
    for (let i = 10; i < 19; i++) cc.set(`k${i}`, value);
    expect(cc.get('k00')).toBe(value);
    expect(cc.get('k01')).toBeUndefined();
    expect(cc.get('k09')).toBeUndefined();
    expect(cc.get('k18')).toBe(value);
    expect(cc.nodes()[0]).toMatchObject({ items: 10, bytes: 1000, capacityBytes: 1024, evictions: 9 });
    cc.set('k19', value); // k10 is now the least recently used
    expect(cc.get('k10')).toBeUndefined();
    expect(metrics.value('cache_evictions', { node: 'cache-0' })).toBe(10);
    expect(metrics.gauge('cache_bytes', { node: 'cache-0' })).toBe(1000);
    expect(metrics.gauge('cache_items', { node: 'cache-0' })).toBe(10);
  });

  it('sizes values in UTF-8 bytes', () => {
    const { cc } = cluster({ nodes: 1 });
    cc.set('k', 'é'.repeat(10));
    expect(cc.nodes()[0]!.bytes).toBe(21);
  });

  it('counts one multiget request per node touched, and each key as a hit or a miss', () => {
    const { cc, metrics } = cluster({ nodes: 6 });
    for (const k of KEYS.slice(0, 300)) cc.set(k, 'x');
    const found = cc.getMany(KEYS);
    expect(found.size).toBe(300);
    for (const name of cc.nodeNames) expect(metrics.value('cache_multiget_requests', { node: name })).toBe(1);
    expect(metrics.sum('cache_requests', { result: 'hit' })).toBe(300);
    expect(metrics.sum('cache_requests', { result: 'miss' })).toBe(300);
    const perNode = cc.nodes().reduce((n, i) => n + i.hits + i.misses, 0);
    expect(perNode).toBe(600);
  });

  it('deletes on write, so the next read goes back to the shard for the new value', async () => {
    const { cc, metrics } = cluster();
    cc.set('user:7', 'old');
    cc.delete('user:7');
    expect(cc.get('user:7')).toBeUndefined();
    expect(await cc.getOrFill('user:7', async () => 'new')).toBe('new');
    expect(cc.get('user:7')).toBe('new');
    const node = cc.nodeFor('user:7')!;
    expect(metrics.value('cache_deletes', { node })).toBe(1);
    expect(metrics.value('cache_fills', { node })).toBe(1);
  });

  it("a dead node's keys miss as dead and fall back to fill, while other nodes keep hitting", async () => {
    const { cc, metrics } = cluster({ nodes: 6 });
    for (const k of KEYS) cc.set(k, `v:${k}`);
    const victim = 'cache-3';
    cc.markDead(victim);
    const onVictim = KEYS.filter((k) => cc.nodeFor(k) === victim);
    const elsewhere = KEYS.filter((k) => cc.nodeFor(k) !== victim);
    expect(onVictim.length).toBeGreaterThan(50);
    let fills = 0;
    for (const k of KEYS) {
      expect(
        await cc.getOrFill(k, async () => {
          fills++;
          return `shard:${k}`;
        }),
      ).toBe(onVictim.includes(k) ? `shard:${k}` : `v:${k}`);
    }
    expect(fills).toBe(onVictim.length);
    expect(metrics.value('cache_requests', { node: victim, result: 'dead' })).toBe(onVictim.length);
    expect(metrics.value('cache_fills', { node: victim })).toBe(onVictim.length);
    expect(metrics.sum('cache_requests', { result: 'hit' })).toBe(elsewhere.length);
    // Its keys stay on it (still on the ring) and its sets are dropped.
    expect(cc.nodeFor(onVictim[0]!)).toBe(victim);
    expect(cc.get(onVictim[0]!)).toBeUndefined();
    expect(cc.nodes().find((n) => n.name === victim)).toMatchObject({ alive: false, onRing: true, items: 0 });
  });

  it('a node marked alive again comes back empty', () => {
    const { cc, metrics } = cluster({ nodes: 6 });
    for (const k of KEYS) cc.set(k, 'x');
    const key = KEYS.find((k) => cc.nodeFor(k) === 'cache-1')!;
    cc.markDead('cache-1');
    cc.markAlive('cache-1');
    expect(cc.nodes().find((n) => n.name === 'cache-1')).toMatchObject({ alive: true, items: 0, bytes: 0 });
    expect(metrics.gauge('cache_items', { node: 'cache-1' })).toBe(0);
    expect(cc.get(key)).toBeUndefined();
    expect(metrics.value('cache_requests', { node: 'cache-1', result: 'miss' })).toBe(1);
    cc.set(key, 'back');
    expect(cc.get(key)).toBe('back');
  });

  it('without leases, 10 concurrent misses on one cold key all reach the shard (9 herd events)', async () => {
    const { cc, metrics } = cluster({ leases: false });
    const g = gatedFill('photo');
    const all = Promise.all(Array.from({ length: 10 }, () => cc.getOrFill('media:1', g.fill)));
    g.release();
    expect(await all).toEqual(Array(10).fill('photo'));
    const node = cc.nodeFor('media:1')!;
    expect(g.calls()).toBe(10);
    expect(metrics.value('cache_fills', { node })).toBe(10);
    expect(metrics.value('cache_herd_events', { node })).toBe(9);
    expect(metrics.value('cache_herd_fills', { node })).toBe(9); // the herd's reads: all but the first
  });

  it('with leases, 10 concurrent misses on one cold key make one shard read and all get its value', async () => {
    const { cc, metrics } = cluster({ leases: true });
    const g = gatedFill('photo');
    const all = Promise.all(Array.from({ length: 10 }, () => cc.getOrFill('media:1', g.fill)));
    g.release();
    expect(await all).toEqual(Array(10).fill('photo'));
    const node = cc.nodeFor('media:1')!;
    expect(g.calls()).toBe(1);
    expect(metrics.value('cache_fills', { node })).toBe(1);
    expect(metrics.value('cache_herd_events', { node })).toBe(9);
    expect(metrics.value('cache_herd_fills', { node })).toBe(0); // the herd waited instead of reading
    expect(cc.get('media:1')).toBe('photo');
  });

  it('with leases, a delete during a fill keeps the stale value out of the cache', async () => {
    const { cc } = cluster({ leases: true });
    const g = gatedFill('old');
    const pending = cc.getOrFill('user:9', g.fill);
    cc.delete('user:9');
    g.release();
    expect(await pending).toBe('old');
    expect(cc.get('user:9')).toBeUndefined();
  });

  it('a rejected fill rejects every caller waiting on its lease and leaves no fill in flight', async () => {
    const { cc } = cluster({ leases: true });
    let fail!: (e: Error) => void;
    const gate = new Promise<string>((_, reject) => (fail = reject));
    const a = cc.getOrFill('k', () => gate);
    const b = cc.getOrFill('k', () => gate);
    fail(new Error('shard down'));
    await expect(a).rejects.toThrow('shard down');
    await expect(b).rejects.toThrow('shard down');
    expect(await cc.getOrFill('k', async () => 'ok')).toBe('ok');
  });

  it('multiget-fills only the missing keys in one shard call, and serves them from cache next time', async () => {
    const { cc, metrics } = cluster({ nodes: 6 });
    for (const k of KEYS.slice(0, 100)) cc.set(k, 'cached');
    const asked: string[][] = [];
    const fillMany = async (missing: string[]) => {
      asked.push(missing);
      return new Map(missing.filter((k) => k !== 'media:150').map((k) => [k, 'filled']));
    };
    const wanted = KEYS.slice(0, 200);
    const first = await cc.getOrFillMany(wanted, fillMany);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toEqual(KEYS.slice(100, 200));
    expect(first.size).toBe(199);
    expect(first.get('media:0')).toBe('cached');
    expect(first.get('media:199')).toBe('filled');
    expect(metrics.sum('cache_fills')).toBe(100);
    const second = await cc.getOrFillMany(wanted, fillMany);
    expect(asked.map((a) => a.length)).toEqual([100, 1]);
    expect(second.size).toBe(199);
  });

  it('with leases, a multiget waits on fills already in flight instead of repeating them', async () => {
    const { cc, metrics } = cluster({ leases: true });
    const g = gatedFill('single');
    const single = cc.getOrFill('media:1', g.fill);
    let asked: string[] = [];
    const many = cc.getOrFillMany(['media:1', 'media:2'], async (missing) => {
      asked = missing;
      return new Map(missing.map((k) => [k, 'batch']));
    });
    g.release();
    expect(await single).toBe('single');
    expect(Object.fromEntries(await many)).toEqual({ 'media:1': 'single', 'media:2': 'batch' });
    expect(asked).toEqual(['media:2']);
    expect(metrics.sum('cache_herd_events')).toBe(1);
  });

  it('with no nodes every read goes to the shard and nothing is counted per node', async () => {
    const { cc, metrics } = cluster({ nodes: 0 });
    expect(cc.nodeNames).toEqual([]);
    expect(cc.nodeFor('k')).toBeNull();
    cc.set('k', 'v');
    expect(cc.get('k')).toBeUndefined();
    expect(cc.getMany(['k']).size).toBe(0);
    let fills = 0;
    const fill = async () => `v${++fills}`;
    expect(await cc.getOrFill('k', fill)).toBe('v1');
    expect(await cc.getOrFill('k', fill)).toBe('v2');
    expect(Object.fromEntries(await cc.getOrFillMany(['a', 'b', 'a'], async (m) => new Map(m.map((k) => [k, k]))))).toEqual({ a: 'a', b: 'b' });
    expect(metrics.snapshot().counters.filter((c) => c.name.startsWith('cache_'))).toEqual([]);
    expect(cc.nodes()).toEqual([]);
  });

  it("removing a node sends only its keys to the other nodes on the ring, where they start cold", async () => {
    const { cc, metrics } = cluster({ nodes: 6 });
    const before = new Map(KEYS.map((k) => [k, cc.nodeFor(k)!]));
    for (const k of KEYS) cc.set(k, 'x');
    cc.removeNode('cache-4');
    const moved = KEYS.filter((k) => cc.nodeFor(k) !== before.get(k));
    expect(moved.length).toBeGreaterThan(0);
    expect(moved.every((k) => before.get(k) === 'cache-4')).toBe(true);
    expect(KEYS.filter((k) => before.get(k) === 'cache-4')).toEqual(moved);
    expect(new Set(moved.map((k) => cc.nodeFor(k))).size).toBeGreaterThan(1);
    let fills = 0;
    for (const k of KEYS) await cc.getOrFill(k, async () => (fills++, 'y'));
    expect(fills).toBe(moved.length);
    expect(metrics.sum('cache_requests', { result: 'hit' })).toBe(KEYS.length - moved.length);
    expect(cc.nodes().find((n) => n.name === 'cache-4')).toMatchObject({ onRing: false, items: 0 });
  });

  it('with modulo hashing, removing a node moves most keys', () => {
    const { cc } = cluster({ nodes: 6, hashing: 'modulo' });
    const before = KEYS.map((k) => cc.nodeFor(k));
    cc.removeNode('cache-4');
    const moved = KEYS.filter((k, i) => cc.nodeFor(k) !== before[i]).length;
    expect(moved / KEYS.length).toBeGreaterThan(0.7);
  });

  it('adds a new node that takes about 1/N of keys, and re-adds a removed one empty', () => {
    const { cc } = cluster({ nodes: 6 });
    const name = cc.addNode();
    expect(name).toBe('cache-6');
    const share = KEYS.filter((k) => cc.nodeFor(k) === name).length / KEYS.length;
    expect(share).toBeGreaterThan(0.07);
    expect(share).toBeLessThan(0.22);
    cc.set(KEYS.find((k) => cc.nodeFor(k) === 'cache-2')!, 'x');
    cc.removeNode('cache-2');
    expect(cc.addNode('cache-2')).toBe('cache-2');
    expect(cc.nodes().find((n) => n.name === 'cache-2')).toMatchObject({ onRing: true, alive: true, items: 0 });
    expect(cc.addNode()).toBe('cache-7');
  });

  it('rejects an unknown node name with SG_ERR_NOT_FOUND', () => {
    const { cc } = cluster({ nodes: 2 });
    expect(() => cc.markDead('cache-9')).toThrow(expect.objectContaining({ code: 'SG_ERR_NOT_FOUND' }));
    let err: unknown;
    try {
      cc.removeNode('nope');
    } catch (e) {
      err = e;
    }
    expect(isSimError(err, 'SG_ERR_NOT_FOUND')).toBe(true);
  });

  describe('gutter pool (Facebook): a down node\'s keys are read from and filled into the gutter, which forgets them after gutterTtlMs', () => {
    function gutterCluster(gutter: number) {
      const clock = new VirtualClock();
      const metrics = new Metrics(clock);
      const cc = new CacheCluster(resolveTopology({ cache: { nodes: 6, gutter, gutterTtlMs: 10_000 } }).cache, { clock, metrics });
      return { cc, metrics, clock };
    }
    const onDeadNode = (cc: CacheCluster, node: string) => KEYS.filter((k) => cc.nodeFor(k) === node).slice(0, 20);

    it('without a gutter every read of a dead node\'s key reaches the shard; with one, only the first in each gutterTtlMs', async () => {
      for (const gutter of [0, 1]) {
        const { cc, clock, metrics } = gutterCluster(gutter);
        cc.markDead('cache-2');
        const keys = onDeadNode(cc, 'cache-2');
        let shardReads = 0;
        const read = () => Promise.all(keys.map((k) => cc.getOrFill(k, async () => (shardReads++, `v:${k}`))));
        await read();
        await clock.advance(10_000); // at the expiry: still held (stale once older than gutterTtlMs)
        await read();
        expect(shardReads).toBe(gutter ? keys.length : 2 * keys.length);
        await clock.advance(1); // the gutter's values expire: the next read fills again
        await read();
        expect(shardReads).toBe(gutter ? 2 * keys.length : 3 * keys.length);
        if (gutter) {
          // Counted once per lookup, on the node that answered: the gutter, not the dead owner.
          expect(metrics.value('cache_requests', { node: 'gutter-0', result: 'hit' })).toBe(keys.length);
          expect(metrics.value('cache_requests', { node: 'gutter-0', result: 'miss' })).toBe(2 * keys.length);
          expect(metrics.value('cache_requests', { node: 'cache-2', result: 'dead' })).toBe(0);
          // The dead owner counts the lookups of its keys it sent to the gutter.
          expect(metrics.value('cache_gutter_lookups', { node: 'cache-2' })).toBe(3 * keys.length);
        } else {
          expect(metrics.value('cache_requests', { node: 'cache-2', result: 'dead' })).toBe(3 * keys.length);
          expect(metrics.value('cache_gutter_lookups', { node: 'cache-2' })).toBe(0);
        }
      }
    });

    it('the simulator\'s gutter (ByteLru with expiries) makes the same decisions as the live one on the same timed stream', async () => {
      const { cc, clock } = gutterCluster(1);
      cc.markDead('cache-2');
      const keys = onDeadNode(cc, 'cache-2');
      const model = new ByteLru(2 ** 30, 1024, { ttl: true });
      const rng = new Prng(9);
      let liveHits = 0;
      let modelHits = 0;
      let t = clock.nowMs();
      for (let i = 0; i < 5_000; i++) {
        const k = rng.int(0, keys.length - 1);
        let filled = false;
        await cc.getOrFill(keys[k]!, async () => ((filled = true), 'v'));
        if (!filled) liveHits++;
        if (model.get(k, t)) modelHits++;
        else model.set(k, 100, t + 10_000);
        const step = rng.int(0, 999); // 0–999 ms between reads: keys expire and refill
        await clock.advance(step);
        t += step;
      }
      expect(liveHits).toBeGreaterThan(1_000);
      expect(liveHits).toBeLessThan(4_900);
      expect(modelHits).toBe(liveHits);
    });

    it('deletes do not reach the gutter: a value stays (stale) until it expires; the owner, revived, starts empty', async () => {
      const { cc, clock } = gutterCluster(1);
      cc.markDead('cache-2');
      const [key] = onDeadNode(cc, 'cache-2');
      expect(await cc.getOrFill(key!, async () => 'old')).toBe('old');
      cc.delete(key!);
      expect(cc.get(key!)).toBe('old');
      await clock.advance(10_001);
      expect(cc.get(key!)).toBeUndefined();
      cc.set(key!, 'gutter copy');
      cc.markAlive('cache-2');
      expect(cc.get(key!)).toBeUndefined(); // the owner answers again, and it holds nothing
    });

    it('lists gutter nodes after the ring\'s, never on it; they can die but not leave or join the ring', () => {
      const { cc } = gutterCluster(2);
      expect(cc.nodeNames).toEqual(['cache-0', 'cache-1', 'cache-2', 'cache-3', 'cache-4', 'cache-5', 'gutter-0', 'gutter-1']);
      expect(cc.nodes().filter((n) => n.gutter).map((n) => [n.name, n.onRing])).toEqual([['gutter-0', false], ['gutter-1', false]]);
      cc.markDead('gutter-0');
      expect(cc.nodes().find((n) => n.name === 'gutter-0')!.alive).toBe(false);
      for (const act of [() => cc.removeNode('gutter-1'), () => cc.addNode('gutter-1')]) {
        let err: unknown;
        try {
          act();
        } catch (e) {
          err = e;
        }
        expect(isSimError(err, 'SG_ERR_INVALID_PARAM')).toBe(true);
      }
      expect(cc.addNode()).toBe('cache-6');
    });
  });
});
