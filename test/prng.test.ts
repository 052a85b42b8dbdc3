// The seeded generator every component forks from: same seed, same stream; forks named apart are
// independent of each other and of how much the parent has drawn; bounds hold; seeds parse.

import { describe, expect, it } from 'vitest';
import { Prng, parseSeed } from '../sim/engine/prng.ts';

const draw = (p: Prng, n: number) => Array.from({ length: n }, () => p.nextUint32());

/** Fraction of positions at which two streams agree (≈ 2^-32 for independent streams). */
function agreement(a: number[], b: number[]): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

describe('Prng', () => {
  it('replays the same 1000 numbers for the same seed, and different ones for seed + 1', () => {
    const a = draw(new Prng(42), 1000);
    expect(draw(new Prng(42), 1000)).toEqual(a);
    expect(agreement(a, draw(new Prng(43), 1000))).toBe(0);
  });

  it('keeps a stable stream across versions: the first draws of seed 42 are pinned', () => {
    // Scenario results recorded with a seed must replay; a change here breaks every stored baseline.
    expect(draw(new Prng(42), 3)).toEqual([1028872839, 2516511472, 400437680]);
    expect(new Prng(42).fork('db').nextUint32()).toBe(4119921749);
    expect(new Prng(42).seed).toBe(42);
    expect(new Prng(-1).seed).toBe(4294967295);
  });

  it('next() is uniform in [0, 1): 20,000 draws have mean ≈ 0.5 and fill 10 buckets within ±5%', () => {
    const p = new Prng(7);
    const buckets = new Array<number>(10).fill(0);
    let sum = 0;
    let min = 1;
    let max = 0;
    for (let i = 0; i < 20_000; i++) {
      const x = p.next();
      min = Math.min(min, x);
      max = Math.max(max, x);
      sum += x;
      buckets[Math.floor(x * 10)]!++;
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    expect(sum / 20_000).toBeCloseTo(0.5, 1);
    for (const b of buckets) expect(Math.abs(b - 2000)).toBeLessThan(100);
  });

  it('int(min, max) stays inside its inclusive bounds and reaches both ends', () => {
    const p = new Prng(3);
    const seen = new Map<number, number>();
    for (let i = 0; i < 7000; i++) {
      const v = p.int(-3, 3);
      seen.set(v, (seen.get(v) ?? 0) + 1);
    }
    // Only the seven integers in [-3, 3] ever come out.
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual([-3, -2, -1, 0, 1, 2, 3]);
    for (const n of seen.values()) expect(Math.abs(n - 1000)).toBeLessThan(150);
    expect(p.int(5, 5)).toBe(5);
  });

  it('exponential(mean) has the requested mean (±3% over 50,000 draws) and is never negative', () => {
    const p = new Prng(11);
    let sum = 0;
    let min = Infinity;
    for (let i = 0; i < 50_000; i++) {
      const x = p.exponential(10);
      min = Math.min(min, x);
      sum += x;
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(Math.abs(sum / 50_000 - 10)).toBeLessThan(0.3);
  });

  it('chance(p) comes true about p of the time, never for 0, always for 1', () => {
    const p = new Prng(13);
    let hits = 0;
    for (let i = 0; i < 10_000; i++) if (p.chance(0.25)) hits++;
    expect(Math.abs(hits - 2500)).toBeLessThan(150);
    const never = Array.from({ length: 1000 }, () => p.chance(0));
    const always = Array.from({ length: 1000 }, () => p.chance(1));
    expect(never.some(Boolean)).toBe(false);
    expect(always.every(Boolean)).toBe(true);
  });

  it('hex(bytes) gives exactly 2·bytes lowercase hex digits, replayable by seed', () => {
    const p = new Prng(17);
    for (const n of [1, 3, 4, 8, 16, 33]) expect(p.hex(n)).toMatch(new RegExp(`^[0-9a-f]{${2 * n}}$`));
    expect(new Prng(9).hex(16)).toBe(new Prng(9).hex(16));
    expect(new Prng(9).hex(16)).not.toBe(new Prng(10).hex(16));
  });

  it('refuses a non-finite seed', () => {
    expect(() => new Prng(Number.NaN)).toThrow(TypeError);
    expect(() => new Prng(Infinity)).toThrow(TypeError);
  });
});

describe('Prng.fork', () => {
  it('is deterministic: the same name on the same seed gives the same stream', () => {
    expect(draw(new Prng(99).fork('db'), 200)).toEqual(draw(new Prng(99).fork('db'), 200));
  });

  it("does not depend on how much the parent has drawn, and drawing from a fork leaves the parent's stream alone", () => {
    const fresh = new Prng(99);
    const used = new Prng(99);
    draw(used, 500);
    expect(draw(used.fork('db'), 50)).toEqual(draw(fresh.fork('db'), 50));
    const parent = new Prng(5);
    const reference = draw(new Prng(5), 100);
    draw(parent.fork('cache'), 1000);
    expect(draw(parent, 100)).toEqual(reference);
  });

  it('gives streams unrelated to each other and to the parent for different names', () => {
    const root = new Prng(2012);
    const names = ['db', 'cache', 'photo-store', 'db-service-time', 'feed', 'queue'];
    const streams = names.map((n) => draw(root.fork(n), 500));
    streams.push(draw(new Prng(2012), 500));
    for (let i = 0; i < streams.length; i++) for (let j = i + 1; j < streams.length; j++) expect(agreement(streams[i]!, streams[j]!)).toBe(0);
  });

  it('gives different streams for the same name under different seeds', () => {
    expect(agreement(draw(new Prng(1).fork('db'), 500), draw(new Prng(2).fork('db'), 500))).toBe(0);
  });

  // Regression: fork() used to seed the child with `seed ^ fnv(name)`, which made nested forks
  // commutative and self-inverse (a→b replayed b→a; x→x replayed the root).
  it('nested forks are independent: a→b differs from b→a, and x→x differs from the root', () => {
    const root = new Prng(7);
    expect(agreement(draw(root.fork('a').fork('b'), 200), draw(root.fork('b').fork('a'), 200))).toBe(0);
    expect(agreement(draw(root.fork('x').fork('x'), 200), draw(new Prng(7), 200))).toBe(0);
  });
});

describe('parseSeed', () => {
  it('takes integers as they are (mod 2^32), numeric strings as numbers, and hashes anything else stably', () => {
    expect(parseSeed(42)).toBe(42);
    expect(parseSeed('42')).toBe(42);
    expect(parseSeed(' 42 ')).toBe(42);
    expect(parseSeed(-1)).toBe(4294967295);
    expect(parseSeed('4294967297')).toBe(1);
    expect(parseSeed('99999999999999999999999')).toBe(Number(99999999999999999999999n & 0xffffffffn));
    const h = parseSeed('android-launch');
    expect(Number.isInteger(h)).toBe(true);
    expect(h).toBeGreaterThanOrEqual(0);
    expect(h).toBeLessThan(2 ** 32);
    expect(parseSeed('android-launch')).toBe(h);
    expect(parseSeed('celebrity-post')).not.toBe(h);
  });
});
