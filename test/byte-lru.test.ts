// ByteLru, the simulator's LRU by bytes over integer keys: eviction by recency, byte accounting,
// updates, deletes and growth; then the hit ratio on independent Zipf(0.8) and Zipf(1.0) key
// streams against Che's approximation, for ByteLru and for the live cache's LRU (CacheCluster's
// lru-cache with maxSize in bytes) on the same stream, so both modes answer to the same theory.

import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../sim/engine/clock.ts';
import { Prng } from '../sim/engine/prng.ts';
import { Metrics } from '../sim/observability/metrics.ts';
import { ByteLru } from '../sim/parts/byte-lru.ts';
import { CacheCluster } from '../sim/parts/cache-cluster.ts';
import { resolveTopology } from '../sim/topology-config.ts';

describe('ByteLru: behaviour', () => {
  it('evicts the least recently used items, where a get counts as a use and has() does not', () => {
    const c = new ByteLru(300);
    c.set(1, 100);
    c.set(2, 100);
    c.set(3, 100);
    expect(c.get(1)).toBe(true); // 1 is now the most recent: order 1, 3, 2
    expect(c.has(2)).toBe(true); // no change
    c.set(4, 100);
    expect(c.keysByRecency()).toEqual([4, 1, 3]);
    expect(c.has(2)).toBe(false);
    expect(c.get(2)).toBe(false);
    expect(c.evictions).toBe(1);
    expect(c.items).toBe(3);
    expect(c.bytes).toBe(300);
  });

  it('accounts bytes of unequal items and evicts as many as it takes to fit a big one', () => {
    const c = new ByteLru(1000);
    for (let k = 0; k < 10; k++) c.set(k, 10 * (k + 1)); // 10 + 20 + … + 100 = 550
    expect(c.bytes).toBe(550);
    c.set(100, 900);
    // 900 + the most recent items that still fit: 100 (key 9) = 1000.
    expect(c.keysByRecency()).toEqual([100, 9]);
    expect(c.bytes).toBe(1000);
    expect(c.evictions).toBe(9);
  });

  it('an update replaces the size and makes the item the most recent; growing it may evict others', () => {
    const c = new ByteLru(100);
    c.set(1, 30);
    c.set(2, 30);
    c.set(3, 30);
    c.set(1, 10);
    expect(c.bytes).toBe(70);
    expect(c.sizeOf(1)).toBe(10);
    expect(c.keysByRecency()).toEqual([1, 3, 2]);
    c.set(3, 60); // 10 + 30 + 60 = 100 fits exactly
    expect(c.evictions).toBe(0);
    c.set(3, 61); // 10 + 30 + 61 > 100: the least recent (2) goes
    expect(c.keysByRecency()).toEqual([3, 1]);
    expect(c.bytes).toBe(71);
    expect(c.evictions).toBe(1);
  });

  it('does not store an item larger than the capacity, and drops an older copy of it', () => {
    const c = new ByteLru(100);
    c.set(1, 50);
    c.set(2, 50);
    c.set(3, 101);
    expect(c.has(3)).toBe(false);
    expect(c.keysByRecency()).toEqual([2, 1]);
    c.set(1, 500);
    expect(c.has(1)).toBe(false);
    expect(c.bytes).toBe(50);
    expect(c.evictions).toBe(0);
    // Zero-byte items and an exactly full cache are fine.
    c.set(9, 0);
    c.set(8, 50);
    expect(c.bytes).toBe(100);
    expect(c.items).toBe(3);
  });

  it('delete removes an item (not an eviction) and frees its bytes; clear empties it', () => {
    const c = new ByteLru(1000);
    c.set(5, 100);
    c.set(6, 200);
    expect(c.delete(5)).toBe(true);
    expect(c.delete(5)).toBe(false);
    expect(c.bytes).toBe(200);
    expect(c.items).toBe(1);
    expect(c.evictions).toBe(0);
    c.clear();
    expect(c.items).toBe(0);
    expect(c.bytes).toBe(0);
    expect(c.get(6)).toBe(false);
    c.set(6, 1);
    expect(c.keysByRecency()).toEqual([6]);
  });

  it('takes keys up to 2^53 − 1, including ones equal modulo 2^32, and refuses others', () => {
    const c = new ByteLru(1e9);
    const big = [0, 2 ** 32, 2 ** 32 * 7 + 5, 5, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 2 ** 32];
    for (const k of big) c.set(k, 1);
    for (const k of big) expect(c.has(k)).toBe(true);
    expect(c.has(2 ** 33)).toBe(false);
    expect(c.items).toBe(big.length);
    for (const bad of [-1, 1.5, 2 ** 53, Number.NaN]) expect(() => c.set(bad, 1)).toThrow(RangeError);
    expect(() => c.set(1, -1)).toThrow(RangeError);
    expect(() => new ByteLru(Number.NaN)).toThrow(RangeError);
  });

  it('grows from 16 slots to a million items and keeps every key findable through deletes (backward shift)', () => {
    const c = new ByteLru(1e12, 1);
    const n = 1_000_000;
    // Keys spread over 2^53 and dense small ones, so both halves of the key feed the hash.
    const key = (i: number) => (i % 2 === 0 ? i : (i * 2_654_435_761) % Number.MAX_SAFE_INTEGER);
    for (let i = 0; i < n; i++) c.set(key(i), 1);
    expect(c.items).toBe(n);
    expect(c.bytes).toBe(n);
    // (Counted, not one expect per key: a million expects would take seconds.)
    let deleted = 0;
    for (let i = 0; i < n; i += 3) if (c.delete(key(i))) deleted++;
    expect(deleted).toBe(Math.ceil(n / 3));
    let wrong = 0;
    for (let i = 0; i < n; i++) if (c.has(key(i)) !== (i % 3 !== 0)) wrong++;
    expect(wrong).toBe(0);
    // Freed slots are reused: refilling does not lose anything.
    for (let i = 0; i < n; i += 3) c.set(key(i), 2);
    expect(c.items).toBe(n);
    expect(c.bytes).toBe(n + Math.ceil(n / 3));
  });

  it('with expiries (the gutter pool): an item is a hit until its expiry, then a miss that frees its bytes', () => {
    const c = new ByteLru(1000, 16, { ttl: true });
    c.set(1, 100, 10_000);
    c.set(2, 100); // no expiry given: never expires
    expect(c.get(1, 10_000)).toBe(true); // at its expiry it still hits (lru-cache: stale once age > ttl)
    expect(c.get(2, 1e12)).toBe(true);
    expect(c.items).toBe(2);
    expect(c.get(1, 10_001)).toBe(false); // past it: gone
    expect(c.items).toBe(1);
    expect(c.bytes).toBe(100);
    expect(c.get(1, 0)).toBe(false); // dropped, not hidden
    // Setting again gives a new expiry, and expiries survive the slots growing.
    for (let k = 10; k < 40; k++) c.set(k, 10, 5_000 + k);
    c.set(1, 100, 20_000);
    expect(c.get(1, 19_999)).toBe(true);
    expect(c.get(39, 5_039)).toBe(true);
    expect(c.get(39, 5_040)).toBe(false);
    // Without { ttl: true } the time is ignored: nothing expires.
    const plain = new ByteLru(1000);
    plain.set(1, 100, 5);
    expect(plain.get(1, 1e12)).toBe(true);
  });

  it('agrees with a Map-based reference LRU on a random mix of 200,000 sets, gets and deletes', () => {
    const c = new ByteLru(5_000, 16);
    const ref = new Map<number, number>(); // insertion order = recency (oldest first)
    let refBytes = 0;
    let refEvictions = 0;
    const p = new Prng(11);
    let mismatches = 0;
    for (let step = 0; step < 200_000; step++) {
      const k = p.int(0, 400);
      const op = p.int(0, 9);
      if (op < 5) {
        const hit = ref.has(k);
        if (hit) {
          const b = ref.get(k)!;
          ref.delete(k);
          ref.set(k, b);
        }
        if (c.get(k) !== hit) mismatches++;
      } else if (op < 9) {
        const b = p.int(1, 120);
        if (ref.has(k)) refBytes -= ref.get(k)!;
        ref.delete(k);
        ref.set(k, b);
        refBytes += b;
        while (refBytes > 5_000) {
          const [oldest, ob] = ref.entries().next().value!;
          ref.delete(oldest);
          refBytes -= ob;
          refEvictions++;
        }
        c.set(k, b);
      } else {
        const had = ref.has(k);
        if (had) refBytes -= ref.get(k)!;
        ref.delete(k);
        if (c.delete(k) !== had) mismatches++;
      }
    }
    expect(mismatches).toBe(0);
    expect(c.keysByRecency()).toEqual([...ref.keys()].reverse());
    expect(c.bytes).toBe(refBytes);
    expect(c.evictions).toBe(refEvictions);
  });
});

// ---- Hit ratio against Che's approximation --------------------------------------------------

const KEYS = 100_000;
/** Items that fit (count): 5% of the keys. */
const FIT = 5_000;
const WARMUP = 500_000;
const REQUESTS = 2_000_000;

/** Zipf(s) popularity over `n` keys (p_i ∝ i^-s, i = 1…n) and its cumulative sums for sampling. */
function zipf(n: number, s: number): { p: Float64Array; cdf: Float64Array } {
  const p = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += p[i] = (i + 1) ** -s;
  const cdf = new Float64Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    p[i]! /= sum;
    acc += p[i]!;
    cdf[i] = acc;
  }
  cdf[n - 1] = 1;
  return { p, cdf };
}

/** An independent stream of key ranks (0-based) drawn from `cdf`. */
function stream(cdf: Float64Array, count: number, seed: number): Int32Array {
  const prng = new Prng(seed);
  const out = new Int32Array(count);
  for (let r = 0; r < count; r++) {
    const u = prng.next();
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    out[r] = lo;
  }
  return out;
}

/** Che's approximation of LRU's hit ratio: T solves Σ(1 − e^(−p_i·T)) = C (bisection). */
function che(p: Float64Array, capacityItems: number): number {
  const filled = (t: number) => {
    let s = 0;
    for (let i = 0; i < p.length; i++) s += 1 - Math.exp(-p[i]! * t);
    return s;
  };
  let lo = 0;
  let hi = 1;
  while (filled(hi) < capacityItems) hi *= 2;
  for (let k = 0; k < 100; k++) {
    const mid = (lo + hi) / 2;
    if (filled(mid) < capacityItems) lo = mid;
    else hi = mid;
  }
  const t = (lo + hi) / 2;
  let hit = 0;
  for (let i = 0; i < p.length; i++) hit += p[i]! * (1 - Math.exp(-p[i]! * t));
  return hit;
}

/** Hit ratio over the requests after the warm-up, look-aside: a miss sets the key. */
function hitRatio(keys: Int32Array, get: (k: number) => boolean, set: (k: number) => void): number {
  let hits = 0;
  for (let r = 0; r < keys.length; r++) {
    const k = keys[r]!;
    if (get(k)) {
      if (r >= WARMUP) hits++;
    } else {
      set(k);
    }
  }
  return hits / (keys.length - WARMUP);
}

describe.each([0.8, 1.0])('hit ratio on a Zipf(%s) stream of 100,000 keys, room for 5%, 2M requests after 500k of warm-up', (s) => {
  const { p, cdf } = zipf(KEYS, s);
  const predicted = che(p, FIT);
  const keys = stream(cdf, WARMUP + REQUESTS, s === 1 ? 101 : 80);
  const seen: { byteLru?: number; live?: number } = {};

  it('Che\'s approximation is in the range the literature gives for these parameters', () => {
    // A sanity check of the solver, not of the cache: Zipf(0.8) ≈ 0.4, Zipf(1.0) ≈ 0.6 at 5%.
    expect(predicted).toBeGreaterThan(s === 1 ? 0.5 : 0.3);
    expect(predicted).toBeLessThan(s === 1 ? 0.7 : 0.5);
  });

  it('ByteLru (equal 100-byte items) is within 2 points of Che', () => {
    const c = new ByteLru(FIT * 100, FIT);
    const hit = hitRatio(keys, (k) => c.get(k), (k) => c.set(k, 100));
    seen.byteLru = hit;
    expect(c.items).toBe(FIT);
    expect(Math.abs(hit - predicted), `ByteLru ${hit.toFixed(4)} vs Che ${predicted.toFixed(4)}`).toBeLessThan(0.02);
  });

  it('the live cache (CacheCluster, one node, lru-cache by bytes) is within 2 points of Che on the same stream', { timeout: 60_000 }, () => {
    const clock = new VirtualClock();
    // Keys of one length and one value, so every item is the same number of bytes (12 + 88).
    const value = 'v'.repeat(88);
    const names = Array.from({ length: KEYS }, (_, k) => `media:${String(k).padStart(6, '0')}`);
    const name = (k: number) => names[k]!;
    const cc = new CacheCluster(resolveTopology({ cache: { nodes: 1, capacityBytes: FIT * 100, leases: false } }).cache, { clock, metrics: new Metrics(clock) });
    const hit = hitRatio(keys, (k) => cc.get(name(k)) !== undefined, (k) => cc.set(name(k), value));
    seen.live = hit;
    expect(cc.nodes()[0]!.items).toBe(FIT);
    expect(Math.abs(hit - predicted), `live ${hit.toFixed(4)} vs Che ${predicted.toFixed(4)}`).toBeLessThan(0.02);
  });

  it('both modes make the same decisions: the same hits on the same stream', () => {
    // Both are exact LRUs by bytes with equal item sizes and the same room, so they agree exactly.
    expect(seen.byteLru).toBeDefined();
    expect(seen.live).toBe(seen.byteLru);
  });
});
