// A full-scale population for the virtual-time simulator: tens of millions of accounts with no
// object per account. Each account is an index into typed arrays (followers, logical shard, latest
// photo); edges are not stored, nor anything no figure reads. The follow graph is directed and
// heavy-tailed: in-degrees follow a Zipf law over a seeded ranking of the accounts (rank r gets a
// share ∝ r^-s, s = ZIPF_EXPONENT, so the top accounts have millions of followers and the median a
// handful), and "whom does a viewer follow" is answered by sampling that same law — the sampling
// rule of preferential attachment (P(follow j) ∝ followers(j)) — instead of reading stored edges.
// Logical shards come from the rule live signups use (`shardForSignup`), by signup order.

import { simError } from '../engine/errors.ts';
import type { Prng } from '../engine/prng.ts';
import { shardForSignup } from '../parts/shard-map.ts';
import type { TopologyConfig } from '../topology-config.ts';

/** The rank exponent of in-degrees: a degree exponent of 1 + 1/s ≈ 2.3, as measured for directed social graphs. */
export const ZIPF_EXPONENT = 0.75;

export interface FullPopulationSpec {
  accounts: number;
  avgFollows: number;
  celebrities: number;
  mediaPerUser: number;
  /** Share of all accounts that follow the first celebrity (0–1). */
  celebrityReach?: number;
}

/** Most accounts one simulation may hold (base and signups): the typed arrays must fit in memory. */
export const MAX_ACCOUNTS = 100_000_000;
/** Most photos a simulated population may hold before the event (base accounts × mediaPerUser). */
export const MAX_MEDIA = 900_000_000;

export class FullPopulation {
  /** Accounts that exist (base and signed up so far). */
  size: number;
  readonly base: number;
  followers: Uint32Array;
  shard: Uint16Array;
  /** Latest media id per account (−1: none). Media ids are integers: base photos first, then uploads in order. */
  lastMedia: Int32Array;
  /** Accounts by rank of in-degree (0 = most followed). */
  readonly byRank: Int32Array;
  readonly celebrities: Int32Array;
  /** The next media id an upload gets. */
  nextMediaId: number;
  /** The first id an upload got (ids below are the base's photos). */
  readonly firstUploadId: number;
  readonly followEdges: number;
  private readonly zipfNorm: number;

  constructor(
    readonly spec: FullPopulationSpec,
    private readonly shards: TopologyConfig['shards'],
    rng: Prng,
    capacity = spec.accounts,
  ) {
    const n = Math.round(spec.accounts);
    if (!(n >= 1) || n > MAX_ACCOUNTS) throw simError('SG_ERR_INVALID_PARAM', `a simulated population holds 1 to ${MAX_ACCOUNTS.toLocaleString('en-US')} accounts (got ${spec.accounts})`);
    if (!(spec.avgFollows >= 0)) throw simError('SG_ERR_INVALID_PARAM', `avgFollows must be ≥ 0 (got ${spec.avgFollows})`);
    const cap = Math.min(MAX_ACCOUNTS, Math.max(n, Math.ceil(capacity)));
    this.base = n;
    this.size = n;
    this.followers = new Uint32Array(cap);
    this.shard = new Uint16Array(cap);
    this.lastMedia = new Int32Array(cap).fill(-1);
    // A seeded ranking: a Fisher–Yates shuffle, so which accounts are celebrities (and their shards) depends on the seed.
    const byRank = new Int32Array(n);
    for (let i = 0; i < n; i++) byRank[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      const t = byRank[i]!;
      byRank[i] = byRank[j]!;
      byRank[j] = t;
    }
    this.byRank = byRank;
    // In-degrees: edges × r^-s / Σ r^-s, at most n − 1; the first celebrity reaches `celebrityReach` of everyone when given.
    const s = ZIPF_EXPONENT;
    let norm = 0;
    for (let r = 1; r <= n; r++) norm += Math.pow(r, -s);
    this.zipfNorm = norm;
    const edges = n * spec.avgFollows;
    let total = 0;
    for (let r = 0; r < n; r++) {
      // A seeded jitter (±50%) keeps degrees from being a deterministic staircase.
      const d = Math.min(n - 1, Math.round(((edges * Math.pow(r + 1, -s)) / norm) * (0.5 + rng.next())));
      this.followers[byRank[r]!] = d;
      total += d;
    }
    if (spec.celebrityReach !== undefined && n > 1) {
      const first = byRank[0]!;
      const reach = Math.min(n - 1, Math.round(spec.celebrityReach * n));
      total += reach - this.followers[first]!;
      this.followers[first] = reach;
    }
    this.followEdges = total;
    for (let i = 0; i < n; i++) this.shard[i] = shardForSignup(i, shards);
    const mpu = Math.max(0, Math.round(spec.mediaPerUser));
    // Media and account ids travel in 32-bit cache keys (sim/model): at most 2^30 of each.
    if (n * mpu > MAX_MEDIA) throw simError('SG_ERR_INVALID_PARAM', `accounts × mediaPerUser is at most ${MAX_MEDIA.toLocaleString('en-US')} in a simulation (got ${(n * mpu).toLocaleString('en-US')})`);
    for (let i = 0; i < n; i++) {
      this.lastMedia[i] = mpu > 0 ? i * mpu + (mpu - 1) : -1;
    }
    this.nextMediaId = n * mpu;
    this.firstUploadId = this.nextMediaId;
    const k = Math.max(1, Math.min(n, Math.round(spec.celebrities)));
    this.celebrities = byRank.slice(0, k);
  }

  /** A base account picked uniformly. */
  uniform(rng: Prng): number {
    return Math.floor(rng.next() * this.base);
  }

  /** A base account picked with probability ∝ its rank weight (whom a viewer follows; whose posts fill feeds). */
  followee(rng: Prng): number {
    // Inverse of the continuous rank CDF, F(r) ≈ r^(1−s) / n^(1−s).
    const r = Math.min(this.base - 1, Math.floor(this.base * Math.pow(rng.next(), 1 / (1 - ZIPF_EXPONENT))));
    return this.byRank[r]!;
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

  /** The owner of a media id minted by this population (base photos by arithmetic, uploads by lookup). */
  ownerOfBase(mediaId: number): number {
    const mpu = Math.max(1, Math.round(this.spec.mediaPerUser));
    return Math.floor(mediaId / mpu);
  }

  /** In-degree quantiles for the report: the most followed, the 99th percentile, the median. */
  degreeSummary(): { max: number; p99: number; p50: number; edges: number } {
    const s = ZIPF_EXPONENT;
    const at = (r: number) => Math.round((this.base * this.spec.avgFollows * Math.pow(r, -s)) / this.zipfNorm);
    return { max: this.followers[this.byRank[0]!]!, p99: at(Math.max(1, Math.round(this.base * 0.01))), p50: at(Math.max(1, Math.round(this.base * 0.5))), edges: this.followEdges };
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
