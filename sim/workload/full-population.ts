// A full-scale population for the virtual-time simulator: tens of millions of accounts with no
// object per account. Each account is an index into typed arrays (followers, logical shard, latest
// photo); edges are not stored, nor anything no figure reads. The follow graph is directed and
// heavy-tailed: in-degrees follow a Zipf law over a seeded ranking of the accounts (rank r gets a
// share ∝ r^-s, s = ZIPF_EXPONENT, so the top accounts have millions of followers and the median a
// handful), and "whom does a viewer follow" is answered by sampling that same law — the sampling
// rule of preferential attachment (P(follow j) ∝ followers(j)) — instead of reading stored edges.
// Logical shards come from the rule live signups use (`shardForSignup`), by signup order.
//
// Base accounts are indexed by rank (index 0 is the most followed): the sampling rule returns an
// index directly, and the accounts feeds touch most sit together at the front of every array, so
// the simulator's hottest reads stay in the CPU's caches. Which signup-order id (and so which
// name and shard) each rank has is a seeded permutation, computed on demand (`userId`), not stored,
// except for the celebrities: they sit where the live seeding with the same seed puts them
// (celebrities.ts: among the first 1% of signups), each swapped with the rank the permutation had
// put there.

import { simError } from '../engine/errors.ts';
import type { Prng } from '../engine/prng.ts';
import { celebrityPositions, graphStream } from './celebrities.ts';
import { shardForSignup } from '../parts/shard-map.ts';
import type { TopologyConfig } from '../topology-config.ts';

/** The rank exponent of in-degrees: a degree exponent of 1 + 1/s ≈ 2.3, as measured for directed social graphs. */
export const ZIPF_EXPONENT = 0.75;
/** Share of an account's follows made by the accounts that found it later (the live generator's discoveryFraction default). */
const DISCOVERY = 0.1;

export interface FullPopulationSpec {
  accounts: number;
  avgFollows: number;
  celebrities: number;
  mediaPerUser: number;
  /** Share of all accounts that follow the first celebrity (0–1). */
  celebrityReach?: number;
}

/** The signup positions of the celebrities for a seed, as the live seeding draws them (celebrities.ts). */
export function liveCelebrityPositions(seed: number, accounts: number, celebrities: number): number[] {
  const n = Math.round(accounts);
  return celebrityPositions(graphStream(seed), n, Math.max(1, Math.min(n, Math.round(celebrities))));
}

/** Most accounts one simulation may hold (base and signups): the typed arrays must fit in memory. */
export const MAX_ACCOUNTS = 100_000_000;
/** Most photos a simulated population may hold before the event (base accounts × mediaPerUser). */
export const MAX_MEDIA = 900_000_000;

export class FullPopulation {
  /** Accounts that exist (base and signed up so far). */
  size: number;
  readonly base: number;
  /** Per account index: followers (count). Base accounts are indexed by rank; signups follow in order. */
  followers: Uint32Array;
  shard: Uint16Array;
  /** Latest media id per account (−1: none). Media ids are integers: base photos first, then uploads in order. */
  lastMedia: Int32Array;
  /** The most followed accounts (indices 0 … k − 1). */
  readonly celebrities: Int32Array;
  /** The next media id an upload gets. */
  nextMediaId: number;
  /** The first id an upload got (ids below are the base's photos). */
  readonly firstUploadId: number;
  readonly followEdges: number;
  private readonly zipfNorm: number;
  private readonly perm: SeededPermutation;
  /** Ranks whose signup position is not the permutation's (the celebrities and the ranks swapped with them), and their inverse. */
  private readonly moved = new Map<number, number>();
  private readonly movedAt = new Map<number, number>();
  /** Media ids per base account's slot (2 × mediaPerUser): account r's photos are r × slot + 0 … count − 1. */
  readonly slot: number;
  private readonly salt: number;
  private readonly followSalt: number;
  private readonly dateSalt: number;

  constructor(
    readonly spec: FullPopulationSpec,
    private readonly shards: TopologyConfig['shards'],
    rng: Prng,
    capacity = spec.accounts,
    /** Where the celebrities (ranks 0 … k − 1, in this order) signed up: liveCelebrityPositions; by default where the permutation puts them. */
    celebrityAt: readonly number[] = [],
  ) {
    const n = Math.round(spec.accounts);
    if (!(n >= 1) || n > MAX_ACCOUNTS) throw simError('SG_ERR_INVALID_PARAM', `a simulated population holds 1 to ${MAX_ACCOUNTS.toLocaleString('en-US')} accounts (got ${spec.accounts})`);
    if (!(spec.avgFollows >= 0)) throw simError('SG_ERR_INVALID_PARAM', `avgFollows must be ≥ 0 (got ${spec.avgFollows})`);
    const mpu = Math.max(0, Math.round(spec.mediaPerUser));
    if (n * mpu > MAX_MEDIA) throw simError('SG_ERR_INVALID_PARAM', `accounts × mediaPerUser is at most ${MAX_MEDIA.toLocaleString('en-US')} in a simulation (got ${(n * mpu).toLocaleString('en-US')})`);
    const cap = Math.min(MAX_ACCOUNTS, Math.max(n, Math.ceil(capacity)));
    this.base = n;
    this.size = n;
    this.followers = new Uint32Array(cap);
    this.shard = new Uint16Array(cap);
    this.lastMedia = new Int32Array(cap).fill(-1);
    // A seeded ranking: which signup-order id has rank r (so which accounts are celebrities, and their shards, depend on the seed).
    this.perm = new SeededPermutation(n, rng);
    for (let c = 0; c < Math.min(n, celebrityAt.length); c++) this.place(c, celebrityAt[c]!);
    // In-degrees: edges × r^-s / Σ r^-s, at most n − 1; the first celebrity reaches `celebrityReach` of everyone when given.
    const s = ZIPF_EXPONENT;
    this.zipfNorm = zipfNorm(n, s);
    const scale = (n * spec.avgFollows) / this.zipfNorm;
    let total = 0;
    for (let r = 0; r < n; r++) {
      // (r+1)^−3/4 as 1 / (√x · ⁴√x): two square roots cost a tenth of Math.pow, for 30M accounts.
      const x = r + 1;
      const sq = Math.sqrt(x);
      const w = s === 0.75 ? 1 / (sq * Math.sqrt(sq)) : Math.pow(x, -s);
      // A seeded jitter (±50%) keeps degrees from being a deterministic staircase.
      const d = Math.min(n - 1, Math.round(scale * w * (0.5 + rng.next())));
      this.followers[r] = d;
      total += d;
    }
    if (spec.celebrityReach !== undefined && n > 1) {
      const reach = Math.min(n - 1, Math.round(spec.celebrityReach * n));
      total += reach - this.followers[0]!;
      this.followers[0] = reach;
    }
    this.followEdges = total;
    // Photos: 0 … 2 × mean per account, uniformly (the live seeding's rule), in a slot of 2 × mean
    // ids per account (ids past an account's count are never used).
    this.slot = 2 * mpu;
    this.salt = Math.floor(rng.next() * 2 ** 31);
    this.followSalt = Math.floor(rng.next() * 2 ** 31);
    this.dateSalt = Math.floor(rng.next() * 2 ** 31);
    for (let r = 0; r < n; r++) {
      this.shard[r] = shardForSignup(this.perm.at(r), shards);
      const c = this.mediaCount(r);
      this.lastMedia[r] = c > 0 ? r * this.slot + c - 1 : -1;
    }
    // The ranks placed off the permutation (the celebrities and those swapped with them): their shards.
    for (const [r, position] of this.moved) this.shard[r] = shardForSignup(position, shards);
    this.nextMediaId = n * this.slot;
    this.firstUploadId = this.nextMediaId;
    const k = Math.max(1, Math.min(n, Math.round(spec.celebrities)));
    this.celebrities = Int32Array.from({ length: k }, (_, i) => i);
  }

  /** The signup-order id of account `i` (what the live service's seeding would have numbered it). */
  userId(i: number): number {
    if (i >= this.base) return i;
    return this.moved.size > 0 ? (this.moved.get(i) ?? this.perm.at(i)) : this.perm.at(i);
  }

  /** The rank that signed up at `position` (a base account's). */
  rankAt(position: number): number {
    return this.movedAt.get(position) ?? this.perm.inverse(position);
  }

  /** Puts rank r at signup position `position`, swapping with the rank there. */
  private place(r: number, position: number): void {
    const from = this.userId(r);
    if (from === position) return;
    const other = this.rankAt(position);
    this.moved.set(r, position);
    this.movedAt.set(position, r);
    this.moved.set(other, from);
    this.movedAt.set(from, other);
  }

  /** A base account picked uniformly. */
  uniform(rng: Prng): number {
    return Math.floor(rng.next() * this.base);
  }

  /** A base account picked with probability ∝ its rank weight (whom a viewer follows; whose posts fill feeds). */
  followee(rng: Prng): number {
    // Inverse of the continuous rank CDF, F(r) ≈ r^(1−s) / n^(1−s): r = n·u^(1/(1−s)) (u⁴ for s = 3/4).
    const u = rng.next();
    const v = FOLLOWEE_POWER === 4 ? u * u * (u * u) : Math.pow(u, FOLLOWEE_POWER);
    return Math.min(this.base - 1, Math.floor(this.base * v));
  }

  /** A celebrity picked uniformly. */
  celebrity(rng: Prng): number {
    return this.celebrities[Math.floor(rng.next() * this.celebrities.length)]!;
  }

  /** Adds a signed-up account; returns its index. */
  signup(): number {
    if (this.size === this.followers.length) this.grow();
    const i = this.size++;
    this.shard[i] = shardForSignup(i, this.shards);
    this.lastMedia[i] = -1;
    return i;
  }

  follow(_follower: number, followee: number): void {
    this.followers[followee]!++;
  }

  /** A new photo by `owner`: its media id. */
  post(owner: number): number {
    const id = this.nextMediaId++;
    this.lastMedia[owner] = id;
    return id;
  }

  /** The owner of a base photo's id (by arithmetic; uploads are looked up by the model). */
  ownerOfBase(mediaId: number): number {
    return Math.floor(mediaId / Math.max(1, this.slot));
  }

  /** Photos base account `r` had posted before the event: 0 … 2 × mediaPerUser, uniformly, seeded (no array). */
  mediaCount(r: number): number {
    if (this.slot === 0 || r >= this.base) return 0;
    return mix32(r, this.salt) % (this.slot + 1);
  }

  /**
   * When base photo `i` of account `r` was posted, as a share of the span before the event (0–1):
   * the live seeding dates photos uniformly over a span, and an account's photos get ids in the
   * order of their dates, so photo i is the (i+1)-th oldest of the account's draws. Fills `out`
   * (length ≥ mediaCount(r)) with the dates of photos 0 … count − 1, oldest first.
   */
  mediaDates(r: number, out: Float64Array): number {
    const c = this.mediaCount(r);
    for (let i = 0; i < c; i++) {
      const d = mix32(r * this.slot + i, this.dateSalt) / 4294967296;
      let j = i;
      while (j > 0 && out[j - 1]! > d) {
        out[j] = out[j - 1]!;
        j--;
      }
      out[j] = d;
    }
    return c;
  }

  /**
   * Accounts base account `r` follows (its feed's sources), seeded, as the live generator makes
   * them: a geometric number of its own picks around (1 − DISCOVERY) × avgFollows, and the
   * newcomers that found it later (Poisson, DISCOVERY × avgFollows). Signed-up accounts: none
   * before the event.
   */
  follows(r: number): number {
    if (r >= this.base) return 0;
    const a = this.spec.avgFollows;
    const u = (mix32(r, this.followSalt) + 0.5) / 4294967296;
    const p = 1 / ((1 - DISCOVERY) * a + 1);
    let n = Math.floor(Math.log(u) / Math.log(1 - p));
    // Poisson by inversion of its CDF, from a second draw.
    const v = (mix32(r, this.followSalt ^ 0x5bd1e995) + 0.5) / 4294967296;
    const mean = DISCOVERY * a;
    let term = Math.exp(-mean);
    let cdf = term;
    for (let k = 0; cdf < v && k < 1000; k++) {
      term *= mean / (k + 1);
      cdf += term;
      n++;
    }
    return Math.min(this.base - 1, n);
  }

  /** In-degree quantiles for the report: the most followed, the 99th percentile, the median. */
  degreeSummary(): { max: number; p99: number; p50: number; edges: number } {
    const s = ZIPF_EXPONENT;
    const at = (r: number) => Math.round((this.base * this.spec.avgFollows * Math.pow(r, -s)) / this.zipfNorm);
    return { max: this.followers[0]!, p99: at(Math.max(1, Math.round(this.base * 0.01))), p50: at(Math.max(1, Math.round(this.base * 0.5))), edges: this.followEdges };
  }

  private grow(): void {
    const cap = Math.min(MAX_ACCOUNTS, Math.ceil(this.followers.length * 1.5) + 1024);
    if (cap <= this.followers.length) throw simError('SG_ERR_BUDGET_EXHAUSTED', `a simulated population holds at most ${MAX_ACCOUNTS.toLocaleString('en-US')} accounts`);
    const g = <T extends Uint32Array | Uint16Array | Int32Array>(old: T, make: (n: number) => T): T => {
      const x = make(cap);
      x.set(old);
      return x;
    };
    this.followers = g(this.followers, (n) => new Uint32Array(n));
    this.shard = g(this.shard, (n) => new Uint16Array(n));
    this.lastMedia = g(this.lastMedia, (n) => new Int32Array(n).fill(-1));
  }
}

/** The exponent of the followee sampling rule, 1 / (1 − s). */
const FOLLOWEE_POWER = 1 / (1 - ZIPF_EXPONENT);

/**
 * Σ_{r=1..n} r^−s: the first terms summed, the rest by Euler–Maclaurin (the integral, the end
 * corrections and the first derivative term), whose error past 10,000 terms is below 10^−15 of the
 * sum — so 30M accounts cost 10,000 powers, not 30M. test/full-population.test.ts checks it
 * against the plain sum.
 */
export function zipfNorm(n: number, s: number): number {
  const head = Math.min(n, 10_000);
  let sum = 0;
  for (let r = 1; r <= head; r++) sum += Math.pow(r, -s);
  if (n === head) return sum;
  const a = head;
  const f = (x: number) => Math.pow(x, -s);
  const df = (x: number) => -s * Math.pow(x, -s - 1);
  const integral = s === 1 ? Math.log(n / a) : (Math.pow(n, 1 - s) - Math.pow(a, 1 - s)) / (1 - s);
  return sum + integral + (f(n) - f(a)) / 2 + (df(n) - df(a)) / 12;
}

/**
 * A seeded bijection of [0, n) computed on demand: a four-round Feistel network over the smallest
 * power of four ≥ n (two halves of equal width), walked until it lands inside [0, n) — the
 * standard cycle-walking construction, so every index maps to a distinct one without a table.
 */
export class SeededPermutation {
  private readonly bits: number;
  private readonly mask: number;
  private readonly k0: number;
  private readonly k1: number;
  private readonly k2: number;
  private readonly k3: number;

  constructor(
    readonly n: number,
    rng: Prng,
  ) {
    let bits = 1;
    while (2 ** (2 * bits) < n) bits++;
    // Both halves fit one int32 (n ≤ MAX_ACCOUNTS < 2^28): shifts and masks do the splitting.
    if (bits > 15) throw simError('SG_ERR_INVALID_PARAM', `a seeded permutation covers at most 2^30 indices (got ${n})`);
    this.bits = bits;
    this.mask = (1 << bits) - 1;
    this.k0 = rng.nextUint32() | 0;
    this.k1 = rng.nextUint32() | 0;
    this.k2 = rng.nextUint32() | 0;
    this.k3 = rng.nextUint32() | 0;
  }

  at(i: number): number {
    let x = i;
    do x = this.round(x);
    while (x >= this.n);
    return x;
  }

  /** The index that `at` maps to `j` (cycle-walking the inverse rounds). */
  inverse(j: number): number {
    let x = j;
    do x = this.unround(x);
    while (x >= this.n);
    return x;
  }

  /** The rounds of `round` undone, last first: each (l, r) → (r, l ^ F(r ^ k)) is undone by (l', r') → (r' ^ F(l' ^ k), l'). */
  private unround(x: number): number {
    const bits = this.bits;
    const mask = this.mask;
    let l = (x >>> bits) & mask;
    let r = x & mask;
    for (const k of [this.k3, this.k2, this.k1, this.k0]) {
      const prevR = l;
      const prevL = (r ^ feistelMix(l ^ k)) & mask;
      l = prevL;
      r = prevR;
    }
    return (l << bits) | r;
  }

  private round(x: number): number {
    const bits = this.bits;
    const mask = this.mask;
    let l = (x >>> bits) & mask;
    let r = x & mask;
    let t = r;
    r = (l ^ feistelMix(r ^ this.k0)) & mask;
    l = t;
    t = r;
    r = (l ^ feistelMix(r ^ this.k1)) & mask;
    l = t;
    t = r;
    r = (l ^ feistelMix(r ^ this.k2)) & mask;
    l = t;
    t = r;
    r = (l ^ feistelMix(r ^ this.k3)) & mask;
    l = t;
    return (l << bits) | r;
  }
}

function feistelMix(v: number): number {
  let h = Math.imul(v, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  return h ^ (h >>> 13);
}

/** A 32-bit mix of a non-negative integer and a salt (murmur3's finaliser): a seeded hash, unsigned. */
function mix32(x: number, salt: number): number {
  let h = (x ^ salt) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h ^ Math.floor(x / 4294967296), 0x27d4eb2f);
  return (h ^ (h >>> 15)) >>> 0;
}
