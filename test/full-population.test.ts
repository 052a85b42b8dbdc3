// FullPopulation: the simulator's 30M-account base without an object per account. Checked against
// plain arithmetic: the Zipf normaliser against the direct sum, the seeded permutation as a
// bijection, the sampling rule against the law it claims (P(rank < k) = (k/n)^(1−s)).
import { describe, expect, it } from 'vitest';
import { Prng } from '../sim/engine/prng.ts';
import { resolveTopology } from '../sim/topology-config.ts';
import { FullPopulation, liveCelebrityPositions, SeededPermutation, ZIPF_EXPONENT, zipfNorm } from '../sim/workload/full-population.ts';
import { generatePopulation } from '../sim/workload/population.ts';

const shards = resolveTopology({}).shards;

describe('zipfNorm', () => {
  it('equals the plain sum Σ r^−s to 12 significant digits, below and above the summed head', () => {
    for (const n of [1, 7, 10_000, 10_001, 123_457, 3_000_000]) {
      for (const s of [0.5, ZIPF_EXPONENT, 1, 1.2]) {
        let plain = 0;
        for (let r = n; r >= 1; r--) plain += Math.pow(r, -s); // smallest first: the accurate order
        expect(Math.abs(zipfNorm(n, s) - plain) / plain, `n=${n} s=${s}`).toBeLessThan(1e-12);
      }
    }
  });
});

describe('SeededPermutation', () => {
  it('maps [0, n) onto itself one to one, for sizes on and off powers of four', () => {
    for (const n of [1, 2, 3, 4, 5, 1000, 4096, 12_345, 262_145]) {
      const p = new SeededPermutation(n, new Prng(7));
      const seen = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const j = p.at(i);
        expect(j >= 0 && j < n).toBe(true);
        seen[j]!++;
      }
      expect(seen.every((c) => c === 1), `n=${n}`).toBe(true);
    }
  });

  it('is undone by its inverse, for sizes on and off powers of four', () => {
    for (const n of [1, 2, 3, 5, 1000, 4096, 12_345]) {
      const p = new SeededPermutation(n, new Prng(11));
      for (let i = 0; i < n; i++) expect(p.inverse(p.at(i))).toBe(i);
    }
  });

  it('depends on the seed and is not the identity', () => {
    const a = new SeededPermutation(100_000, new Prng(1));
    const b = new SeededPermutation(100_000, new Prng(2));
    let same = 0;
    let fixed = 0;
    for (let i = 0; i < 100_000; i++) {
      if (a.at(i) === b.at(i)) same++;
      if (a.at(i) === i) fixed++;
    }
    // A random permutation agrees with another (or fixes a point) about once: allow a handful.
    expect(same).toBeLessThan(10);
    expect(fixed).toBeLessThan(10);
  });
});

describe('FullPopulation', () => {
  const spec = { accounts: 1_000_000, avgFollows: 20, celebrities: 5, mediaPerUser: 2 };

  it('indexes the base by rank: followers fall with the index, celebrities are the first indices', () => {
    const pop = new FullPopulation(spec, shards, new Prng(2012));
    expect(Array.from(pop.celebrities)).toEqual([0, 1, 2, 3, 4]);
    expect(pop.followers[0]!).toBeGreaterThan(100 * pop.followers[10_000]!);
    // The edges add up to accounts × avgFollows within the ±50% jitter's averaging (1%).
    expect(Math.abs(pop.followEdges / (spec.accounts * spec.avgFollows) - 1)).toBeLessThan(0.01);
    expect(pop.degreeSummary().max).toBe(pop.followers[0]);
  });

  it('samples followees with P(rank < k) = (k/n)^(1−s), the law the degrees follow', () => {
    const pop = new FullPopulation(spec, shards, new Prng(3));
    const rng = new Prng(4);
    const draws = 1_000_000;
    const ks = [10, 1000, 100_000];
    const below = ks.map(() => 0);
    for (let d = 0; d < draws; d++) {
      const r = pop.followee(rng);
      for (let j = 0; j < ks.length; j++) if (r < ks[j]!) below[j]!++;
    }
    ks.forEach((k, j) => {
      const expected = Math.pow(k / spec.accounts, 1 - ZIPF_EXPONENT);
      expect(Math.abs(below[j]! / draws - expected), `k=${k}`).toBeLessThan(0.005);
    });
  });

  it("gives every base account a distinct signup-order id, whose shard is the live signup rule's", () => {
    const pop = new FullPopulation({ ...spec, accounts: 50_000 }, shards, new Prng(5));
    const ids = new Set<number>();
    for (let i = 0; i < pop.base; i++) {
      const id = pop.userId(i);
      ids.add(id);
      expect(pop.shard[i]).toBe(id % shards.logical);
    }
    expect(ids.size).toBe(pop.base);
    const s = pop.signup();
    expect(s).toBe(pop.base);
    expect(pop.userId(s)).toBe(pop.base);
  });

  it('puts its celebrities where a live seeding with the same seed puts them, still one id per account', () => {
    for (const seed of [1, 3, 2012]) {
      const live = generatePopulation(seed, { users: 5000, avgFollows: 10, celebrities: 3 });
      const at = liveCelebrityPositions(seed, 5000, 3);
      expect(at).toEqual(live.celebrities);
      const pop = new FullPopulation({ ...spec, accounts: 5000, celebrities: 3 }, shards, new Prng(seed), 5000, at);
      // The most followed ranks are the live seeding's celebrities, in signup order: the same ids, the same shards.
      expect([0, 1, 2].map((r) => pop.userId(r))).toEqual(live.celebrities);
      expect([0, 1, 2].map((r) => pop.shard[r])).toEqual(live.celebrities.map((id) => id % shards.logical));
      const ids = new Set<number>();
      for (let r = 0; r < pop.base; r++) {
        ids.add(pop.userId(r));
        expect(pop.rankAt(pop.userId(r))).toBe(r);
      }
      expect(ids.size).toBe(5000);
    }
  });
});

describe("FullPopulation: the live seeding's laws, by seeded hashes", () => {
  const pop = new FullPopulation({ accounts: 200_000, avgFollows: 20, celebrities: 5, mediaPerUser: 2 }, shards, new Prng(11));

  it('gives each account 0 … 2 × mediaPerUser photos, uniformly (sim/workload/population.ts draws the same law), the latest last in its slot', () => {
    const counts = new Array<number>(5).fill(0);
    for (let r = 0; r < pop.base; r++) {
      const c = pop.mediaCount(r);
      counts[c]!++;
      expect(pop.lastMedia[r]).toBe(c > 0 ? r * pop.slot + c - 1 : -1);
      if (c > 0) expect(pop.ownerOfBase(pop.lastMedia[r]!)).toBe(r);
    }
    // Each of 0 … 4 within half a point of a fifth (binomial σ ≈ 0.09 points at 200,000).
    for (const c of counts) expect(Math.abs(c / pop.base - 0.2)).toBeLessThan(0.005);
  });

  it("dates an account's photos oldest first, uniformly over the span", () => {
    const out = new Float64Array(pop.slot);
    let sum = 0;
    let n = 0;
    for (let r = 0; r < 20_000; r++) {
      const c = pop.mediaDates(r, out);
      for (let i = 0; i < c; i++) {
        if (i > 0) expect(out[i]!).toBeGreaterThanOrEqual(out[i - 1]!);
        expect(out[i]! >= 0 && out[i]! < 1).toBe(true);
        sum += out[i]!;
        n++;
      }
    }
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.01);
  });

  it('makes each account follow about avgFollows accounts (geometric picks and Poisson discoveries), none for a signup', () => {
    let sum = 0;
    let zero = 0;
    for (let r = 0; r < pop.base; r++) {
      const f = pop.follows(r);
      sum += f;
      if (f === 0) zero++;
    }
    expect(Math.abs(sum / pop.base - 20)).toBeLessThan(0.5);
    // P(0) = P(geometric 0) × P(Poisson 0) = (1 / 19) × e^−2 ≈ 0.71%.
    expect(Math.abs(zero / pop.base - Math.exp(-2) / 19)).toBeLessThan(0.002);
    expect(pop.follows(pop.signup())).toBe(0);
  });
});
