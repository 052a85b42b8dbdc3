// Seeded populations for growth scenarios: realistic accounts from faker and a directed, heavy-tailed
// follow graph (preferential attachment), written through the bulk path with photos and feeds.
//
// The graph is Price's model: accounts arrive one by one and each follows earlier accounts chosen
// with probability ∝ (followers + a), so the earliest and the boosted "celebrity" accounts gather
// very large followings. A small share of edges are "discovery" follows of the newcomer by a
// random earlier account, so early accounts follow someone too. Edges are never symmetrised:
// a follow back happens only by chance.

import { Faker, base, en } from '@faker-js/faker';
import sharp from 'sharp';
import { seedUsers, type SeedUser } from './bulk-loader.ts';
import { simError } from '../engine/errors.ts';
import { encodeId, shardOf } from '../parts/ids.ts';
import { makeVariants } from '../parts/image-resizer.ts';
import { parseTags } from '../domain/photo-store.ts';
import { Prng } from '../engine/prng.ts';
import { PackedStrings } from '../parts/packed-strings.ts';
import { celebrityPositions, graphStream } from './celebrities.ts';
import { shardForKey } from '../parts/shard-map.ts';
import { sortIndexes } from '../parts/sliced-sort.ts';
import { runToEnd, type TimeSlicer } from '../engine/time-slicer.ts';
import type { RowSource } from '../parts/db-node.ts';
import type { Topology } from '../topology.ts';

export interface PopulationOptions {
  /** Accounts to create (count). */
  users: number;
  /** Mean follows per account (count); each account's out-degree is drawn around it. */
  avgFollows: number;
  /** Accounts whose attractiveness is boosted, so they gather the largest followings (count; default users / 20,000, at least 1). */
  celebrities?: number;
  /** Share of accounts that are private (0–1; default 0.05). */
  privateFraction?: number;
  /** Attractiveness every account starts with: P(follow j) ∝ followers(j) + a (default 1). */
  attractiveness?: number;
  /** Share of the follow budget spent on random earlier accounts following the newcomer (0–1; default 0.1). */
  discoveryFraction?: number;
  /** Share of all accounts that also follow the first celebrity (0–1; default 0): the audience of a celebrity-post. */
  celebrityReach?: number;
}

export interface PopulationUser extends SeedUser {
  username: string;
  fullName: string;
  bio: string;
  website: string;
  isPrivate: boolean;
}

export interface Population {
  seed: number;
  options: Required<PopulationOptions>;
  /** In signup order: index i is the i-th account to arrive. */
  users: PopulationUser[];
  /** Follow edges sources[k] → targets[k], as indexes into `users`; no self-follows, no duplicates. */
  sources: Int32Array;
  targets: Int32Array;
  /** Indexes of the boosted accounts. */
  celebrities: number[];
}

/** Largest population one call may generate (count); a budget, not a modelling limit. */
export const MAX_POPULATION_USERS = 1_000_000;
/** Largest users × avgFollows one call may generate (edges): ~10 GB and minutes of seeding at the top. */
export const MAX_POPULATION_EDGES = 10_000_000;
/** Largest mean out-degree accepted (count). */
export const MAX_AVG_FOLLOWS = 1000;
/**
 * Extra attractiveness of a celebrity, per unit of mean out-degree: with 20 follows per account a
 * celebrity starts as if it already had 20 × 40 = 800 followers, so it keeps winning new ones.
 */
const CELEBRITY_BOOST_PER_FOLLOW = 40;

/** Fills defaults and rejects out-of-range options with SG_ERR_INVALID_PARAM naming the field. */
export function resolvePopulationOptions(o: PopulationOptions): Required<PopulationOptions> {
  const int = (v: unknown, field: string, min: number, max: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw simError('SG_ERR_INVALID_PARAM', `${field} must be an integer in [${min}, ${max}]`, { field });
    return v;
  };
  const frac = (v: unknown, field: string, def: number): number => {
    if (v === undefined) return def;
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw simError('SG_ERR_INVALID_PARAM', `${field} must be a number in [0, 1]`, { field });
    return v;
  };
  const users = int(o.users, 'users', 1, MAX_POPULATION_USERS);
  if (typeof o.avgFollows !== 'number' || !(o.avgFollows >= 0 && o.avgFollows <= MAX_AVG_FOLLOWS)) throw simError('SG_ERR_INVALID_PARAM', `avgFollows must be a number in [0, ${MAX_AVG_FOLLOWS}]`, { field: 'avgFollows' });
  if (users * o.avgFollows > MAX_POPULATION_EDGES) throw simError('SG_ERR_INVALID_PARAM', `users × avgFollows must be at most ${MAX_POPULATION_EDGES} follows`, { field: 'avgFollows' });
  const celebrities = o.celebrities === undefined ? Math.max(1, Math.round(users / 20_000)) : int(o.celebrities, 'celebrities', 0, users);
  const attractiveness = o.attractiveness === undefined ? 1 : o.attractiveness;
  if (typeof attractiveness !== 'number' || !(attractiveness > 0 && attractiveness <= 1e6)) throw simError('SG_ERR_INVALID_PARAM', 'attractiveness must be a number in (0, 1e6]', { field: 'attractiveness' });
  return {
    users,
    avgFollows: o.avgFollows,
    celebrities,
    privateFraction: frac(o.privateFraction, 'privateFraction', 0.05),
    attractiveness,
    discoveryFraction: frac(o.discoveryFraction, 'discoveryFraction', 0.1),
    celebrityReach: frac(o.celebrityReach, 'celebrityReach', 0),
  };
}

/** A faker instance whose every answer follows from `seed`. */
function seededFaker(seed: number): Faker {
  const f = new Faker({ locale: [en, base] });
  f.seed(seed);
  return f;
}

/**
 * A username that fits Instagram's rule (letters, digits, dots, underscores; 1–30) and is not taken
 * yet; `namespace` is kept whole at the end, so later seedings never collide with earlier ones.
 */
function uniqueUsername(raw: string, namespace: string, taken: Set<string>, rng: Prng): string {
  let name = ((raw.replace(/[^A-Za-z0-9._]/g, '') || 'user').slice(0, 30 - namespace.length) + namespace).slice(0, 30);
  for (let attempt = 0; taken.has(name.toLowerCase()); attempt++) {
    // Budgeted: each retry widens the random suffix, so a clash soon becomes impossible.
    if (attempt > 50) throw simError('SG_ERR_BUDGET_EXHAUSTED', 'could not find a free username');
    const suffix = String(rng.int(0, 10 ** Math.min(9, 2 + (attempt >> 2)) - 1));
    const stem = name.slice(0, name.length - namespace.length);
    name = stem.slice(0, 30 - namespace.length - suffix.length - 1) + '_' + suffix + namespace;
  }
  taken.add(name.toLowerCase());
  return name;
}

/** Accounts with faker names, bios and websites; `namespace` keeps a second seeding's usernames apart. */
function* generateUsers(seed: number, n: number, privateFraction: number, namespace = ''): Generator<void, PopulationUser[]> {
  const f = seededFaker(seed);
  const rng = new Prng(seed).fork('population/users');
  const taken = new Set<string>();
  const users: PopulationUser[] = new Array(n);
  for (let i = 0; i < n; i++) {
    if ((i & 127) === 127) yield;
    const firstName = f.person.firstName();
    const lastName = f.person.lastName();
    const username = uniqueUsername(f.internet.username({ firstName, lastName }), namespace, taken, rng);
    // About a third of 2012 profiles had a bio, fewer a website.
    const bio = rng.chance(0.35) ? f.person.bio() : '';
    const website = rng.chance(0.08) ? f.internet.url() : '';
    users[i] = { username, fullName: `${firstName} ${lastName}`, bio, website, isPrivate: rng.chance(privateFraction) };
  }
  return users;
}

/** Geometric out-degree with the given mean (count), so most follow a few and some follow many. */
function geometric(rng: Prng, mean: number): number {
  if (mean <= 0) return 0;
  const p = 1 / (mean + 1);
  return Math.floor(Math.log(1 - rng.next()) / Math.log(1 - p));
}

/** Generates accounts and a directed preferential-attachment follow graph; the same seed gives the same population. */
export function generatePopulation(seed: number, options: PopulationOptions, namespace = ''): Population {
  return runToEnd(populationSteps(seed, options, namespace));
}

/** generatePopulation in slices of the event loop: the same population, step for step. */
export function generatePopulationSliced(slicer: TimeSlicer, seed: number, options: PopulationOptions, namespace = ''): Promise<Population> {
  return slicer.run(populationSteps(seed, options, namespace));
}

/** The generation as a generator that yields every few hundred accounts or edges (see TimeSlicer.run). */
function* populationSteps(seed: number, options: PopulationOptions, namespace: string): Generator<void, Population> {
  const o = resolvePopulationOptions(options);
  const n = o.users;
  const users = yield* generateUsers(seed, n, o.privateFraction, namespace);
  const rng = graphStream(seed);

  const celebrities = celebrityPositions(rng, n, o.celebrities);
  const boost = Math.max(1, o.avgFollows) * CELEBRITY_BOOST_PER_FOLLOW;

  const a = o.attractiveness;
  const pushMean = o.avgFollows * (1 - o.discoveryFraction);
  const pullMean = o.avgFollows * o.discoveryFraction;
  let cap = Math.ceil(n * o.avgFollows * 1.2) + 1024;
  let sources = new Int32Array(cap);
  let targets = new Int32Array(cap);
  let m = 0;
  const add = (s: number, t: number) => {
    if (m === cap) {
      cap *= 2;
      const ns = new Int32Array(cap);
      const nt = new Int32Array(cap);
      ns.set(sources);
      nt.set(targets);
      sources = ns;
      targets = nt;
    }
    sources[m] = s;
    targets[m] = t;
    m++;
  };

  const celebsPresent: number[] = [];
  let nextCeleb = 0;
  const chosen = new Set<number>();
  for (let i = 0; i < n; i++) {
    if ((i & 255) === 255) yield;
    // i accounts exist before this one: 0 … i-1.
    chosen.clear();
    const want = Math.min(i, geometric(rng, pushMean));
    // targets[0 … m-1] hold one entry per follower gained so far: picking one uniformly is
    // picking an account in proportion to its followers.
    const edgesBefore = m;
    for (let k = 0, budget = 0; k < want && budget < want * 20 + 20; budget++) {
      const w = rng.next() * (edgesBefore + a * i + boost * celebsPresent.length);
      let j: number;
      if (w < edgesBefore) j = targets[Math.floor(w)]!;
      else if (w < edgesBefore + a * i) j = Math.min(i - 1, Math.floor((w - edgesBefore) / a));
      else j = celebsPresent[Math.min(celebsPresent.length - 1, Math.floor((w - edgesBefore - a * i) / boost))]!;
      if (chosen.has(j)) continue;
      chosen.add(j);
      add(i, j);
      k++;
    }
    // Discovery: random earlier accounts follow the newcomer (each at most once).
    chosen.clear();
    const found = Math.min(i, geometric(rng, pullMean));
    for (let k = 0, budget = 0; k < found && budget < found * 20 + 20; budget++) {
      const s = rng.int(0, i - 1);
      if (chosen.has(s)) continue;
      chosen.add(s);
      add(s, i);
      k++;
    }
    if (nextCeleb < celebrities.length && celebrities[nextCeleb] === i) {
      celebsPresent.push(i);
      nextCeleb++;
    }
  }
  if (o.celebrityReach > 0 && celebrities.length > 0) {
    // The first celebrity's audience: every account follows it with probability celebrityReach.
    const c = celebrities[0]!;
    const already = new Uint8Array(n);
    for (let k = 0; k < m; k++) {
      if ((k & 65535) === 65535) yield;
      if (targets[k] === c) already[sources[k]!] = 1;
    }
    for (let i = 0; i < n; i++) {
      if ((i & 16383) === 16383) yield;
      if (i !== c && !already[i] && rng.chance(o.celebrityReach)) add(i, c);
    }
  }
  return { seed, options: o, users, sources: sources.slice(0, m), targets: targets.slice(0, m), celebrities };
}

/** Followers per account (in-degree), by index. */
export function inDegrees(p: Population): Int32Array {
  const d = new Int32Array(p.users.length);
  for (let k = 0; k < p.targets.length; k++) d[p.targets[k]!]!++;
  return d;
}

/** max, p99, median and mean of the in-degree distribution (followers per account). */
export function degreeSummary(p: Population): { max: number; p99: number; median: number; mean: number } {
  const d = inDegrees(p);
  const n = d.length;
  // A counting sort (linear: degrees are below n) read at ranks ⌊q·n⌋, as a sorted copy would be.
  let max = 0;
  for (let i = 0; i < n; i++) if (d[i]! > max) max = d[i]!;
  const count = new Int32Array(max + 1);
  for (let i = 0; i < n; i++) count[d[i]!]!++;
  const at = (q: number) => {
    const rank = Math.min(n - 1, Math.floor(q * n));
    let seen = 0;
    for (let v = 0; v <= max; v++) if ((seen += count[v]!) > rank) return v;
    return max;
  };
  return { max: n ? max : 0, p99: n ? at(0.99) : 0, median: n ? at(0.5) : 0, mean: n ? p.targets.length / n : 0 };
}

// ------------------------------------------------------------------------------------------------
// Seeding a generated population into a topology

export interface SeedOptions {
  /** Mean photos per account (count; default 0). Each account gets 0 … 2 × mean, uniformly. */
  mediaPerUser?: number;
  /** Password of every seeded account (default "scalegram"). */
  password?: string;
  /** Seeded photos are dated uniformly over this span before now (ms; default 30 days). */
  mediaSpanMs?: number;
}

export interface SeedReport {
  users: number;
  follows: number;
  media: number;
  tags: number;
  locations: number;
  /** Feed lists written. */
  feeds: number;
  inDegree: { max: number; p99: number; median: number; mean: number };
  /** Wall time of each step (ms). */
  ms: { generate?: number; users: number; follows: number; media: number; replicas: number; feeds: number; total: number };
}

export interface SeededPopulation {
  report: SeedReport;
  /** User ids and tokens, by population index. */
  ids: string[];
  tokens: string[];
  followedBy: Int32Array;
  follows: Int32Array;
}

/** Largest mean of photos per seeded account (count). */
export const MAX_MEDIA_PER_USER = 100;
/** Seeded posts per followed account placed in each feed (count): the newest ones. */
const FEED_POSTS_PER_AUTHOR = 5;
/** Distinct photos shared by every seeded post, so nothing is resized per row (count). */
const SHARED_IMAGES = 8;
/** Share of seeded photos with a place (0–1). */
const LOCATED_FRACTION = 0.3;
/** Instagram's 2012 filters; "Normal" is the commonest. */
const FILTERS = ['Normal', 'Normal', 'Normal', 'Amaro', 'Rise', 'Hudson', 'X-Pro II', 'Sierra', 'Lo-fi', 'Earlybird', 'Sutro', 'Toaster', 'Brannan', 'Inkwell', 'Walden', 'Hefe', 'Valencia', 'Nashville', '1977', 'Kelvin'];
/** Tags at the head of 2012's popularity list; faker words make up the long tail. */
const POPULAR_TAGS = ['love', 'instagood', 'photooftheday', 'tbt', 'cute', 'me', 'beautiful', 'happy', 'sunset', 'food', 'nofilter', 'iphoneonly', 'igers', 'instadaily', 'friends', 'summer'];

const now = (t: Topology) => Math.floor(t.clock.nowMs());
const since = (t0: number) => Math.round(performance.now() - t0);

function byIdDesc(a: string, b: string): number {
  return a.length !== b.length ? b.length - a.length : a < b ? 1 : a > b ? -1 : 0;
}

/**
 * Writes both directions of every edge in bulk and updates follow counts (the users are new, so
 * nothing can clash). Rows go in primary-key order, (source, target) for `follows` and (target,
 * source) for `followers`: B-tree inserts in key order touch each page once instead of at random,
 * and the secondary indexes (by source or target, then id) grow at their ends too, since ids are
 * minted in that order. Every step is linear or sliced, so none holds the event loop for long.
 */
async function seedEdges(t: Topology, p: Population, ids: readonly string[], shards: Int32Array): Promise<{ followedBy: Int32Array; follows: Int32Array }> {
  const slicer = t.db.slicer;
  const n = ids.length;
  const m = p.sources.length;
  // Accounts in id order: rank[u] is u's place in it.
  const big: bigint[] = new Array(n);
  for (let i = 0; i < n; i++) {
    if ((i & 16383) === 16383) await slicer.yieldIfDue();
    big[i] = BigInt(ids[i]!);
  }
  const byId = await slicer.run(sortIndexes(n, (a, b) => big[a]! < big[b]!));
  const rank = new Int32Array(n);
  for (let r = 0; r < n; r++) rank[byId[r]!] = r;
  // Edges in (rank of source, rank of target) order: a counting sort by source rank, then each
  // source's few targets sorted by rank.
  const outStart = new Int32Array(n + 1);
  for (let k = 0; k < m; k++) {
    if ((k & 65535) === 65535) await slicer.yieldIfDue();
    outStart[rank[p.sources[k]!]! + 1]!++;
  }
  for (let r = 0; r < n; r++) outStart[r + 1]! += outStart[r]!;
  const targetRank = new Int32Array(m);
  const fill = outStart.slice(0, n);
  for (let k = 0; k < m; k++) {
    if ((k & 65535) === 65535) await slicer.yieldIfDue();
    targetRank[fill[rank[p.sources[k]!]!]!++] = rank[p.targets[k]!]!;
  }
  for (let r = 0; r < n; r++) {
    if ((r & 1023) === 1023) await slicer.yieldIfDue();
    if (outStart[r + 1]! - outStart[r]! > 1) targetRank.subarray(outStart[r]!, outStart[r + 1]!).sort();
  }
  // Edge j (in that order) is edgeSrc[j] → edgeDst[j]; its follow id is minted in that order too.
  // Only typed arrays are kept: rows are made when written, so millions of them never all exist.
  const edgeSrc = new Int32Array(m);
  const edgeDst = new Int32Array(m);
  const followIds = new BigInt64Array(m);
  const follows = new Int32Array(n);
  const followedBy = new Int32Array(n);
  const inStart = new Int32Array(n + 1);
  for (let r = 0, j = 0; r < n; r++) {
    const s = byId[r]!;
    for (; j < outStart[r + 1]!; j++) {
      if ((j & 4095) === 4095) await slicer.yieldIfDue();
      const d = byId[targetRank[j]!]!;
      edgeSrc[j] = s;
      edgeDst[j] = d;
      followIds[j] = BigInt(t.store.mintId('follows', shards[s]!));
      follows[s]!++;
      followedBy[d]!++;
      inStart[targetRank[j]! + 1]!++;
    }
  }
  // The incoming rows in (target, source) order: a stable counting sort of the edges (already in
  // source order) by target rank.
  for (let r = 0; r < n; r++) inStart[r + 1]! += inStart[r]!;
  const incOrder = new Int32Array(m);
  for (let j = 0; j < m; j++) {
    if ((j & 65535) === 65535) await slicer.yieldIfDue();
    incOrder[inStart[targetRank[j]!]!++] = j;
  }
  // Account ids bind as 64-bit integers (SQLite then skips converting decimal text: ~20% of the insert).
  const edgeRows = (first: Int32Array, second: Int32Array, order: Int32Array | null): RowSource => ({
    length: m,
    shardOf: (i) => shards[first[order ? order[i]! : i]!]!,
    fill: (i, params, at) => {
      const j = order ? order[i]! : i;
      params[at] = shards[first[j]!];
      params[at + 1] = big[first[j]!];
      params[at + 2] = big[second[j]!];
      params[at + 3] = 'approved';
      params[at + 4] = followIds[j];
    },
  });
  const out = edgeRows(edgeSrc, edgeDst, null);
  const inc = edgeRows(edgeDst, edgeSrc, incOrder);
  await t.db.bulkInsertSliced('follows', ['shard_id', 'source_id', 'target_id', 'status', 'id'], out, { conflict: 'ignore' });
  await t.db.bulkInsertSliced('followers', ['shard_id', 'target_id', 'source_id', 'status', 'id'], inc, { conflict: 'ignore' });
  const deltas = async (counts: Int32Array) => {
    const map = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      if ((i & 16383) === 16383) await slicer.yieldIfDue();
      if (counts[i]! > 0) map.set(ids[i]!, counts[i]!);
    }
    return map;
  };
  await t.db.bulkAdd('users', 'follows_count', await deltas(follows));
  await t.db.bulkAdd('users', 'followed_by_count', await deltas(followedBy));
  return { followedBy, follows };
}

interface SeededMedia {
  count: number;
  tags: number;
  locations: number;
  /** Media ids per author index, newest first. */
  byAuthor: Map<number, string[]>;
}

/**
 * Seeded places carry Foursquare ids (a v1 numeric id and a v2 24-hex id), drawn from their own
 * fork of the seed so that every other seeded value stays as it was. Each id is stored on the
 * shard of a hash of it (location_external_ids), where /v1/locations/search looks it up.
 */
async function seedPlaceIds(t: Topology, seed: number, places: ReadonlyArray<{ id: string }>): Promise<void> {
  const rng = new Prng(seed).fork('population/places-foursquare');
  const byShard = new Map<number, Array<[string, string, string]>>();
  for (const pl of places) {
    for (const [provider, externalId] of [['foursquare', String(rng.int(1, 99_999_999))], ['foursquare_v2', rng.hex(12)]] as const) {
      const s = shardForKey(`${provider}:${externalId}`, t.config.shards.logical);
      (byShard.get(s) ?? byShard.set(s, []).get(s)!).push([provider, externalId, pl.id]);
    }
  }
  for (const [s, rows] of byShard) {
    await t.db.write('photos', s, 'bulk.location-ids', async (sql) => {
      for (const [provider, externalId, locationId] of rows) {
        await sql.run('INSERT OR IGNORE INTO location_external_ids (shard_id, provider, external_id, location_id) VALUES (?,?,?,?)', s, provider, externalId, BigInt(locationId));
      }
    });
  }
}

/** The shared image variants under `seed/<k>/<size>.jpg`, made once per blob store. */
async function sharedImages(t: Topology): Promise<string[]> {
  const keys: string[] = [];
  for (let k = 0; k < SHARED_IMAGES; k++) {
    const prefix = `seed/${k}`;
    keys.push(prefix);
    if (await t.blobs.get(`${prefix}/612.jpg`)) continue;
    const hue = Math.round((360 * k) / SHARED_IMAGES);
    const photo = await sharp({ create: { width: 640, height: 640, channels: 3, background: `hsl(${hue}, 55%, 55%)` } }).jpeg().toBuffer();
    const variants = await makeVariants(photo);
    for (const size of [150, 306, 612] as const) await t.blobs.put(`${prefix}/${size}.jpg`, variants[size], 'image/jpeg');
  }
  return keys;
}

/**
 * Photos in bulk: media rows on each owner's shard, hashtags and places on theirs, the geo index,
 * media counts. Captions, tags and places come from faker; images are shared blobs.
 */
async function seedMedia(t: Topology, p: Population, ids: readonly string[], shards: Int32Array, images: readonly string[], options: SeedOptions): Promise<SeededMedia> {
  const mean = options.mediaPerUser ?? 0;
  const byAuthor = new Map<number, string[]>();
  if (mean <= 0) return { count: 0, tags: 0, locations: 0, byAuthor };
  const slicer = t.db.slicer;
  const rng = new Prng(p.seed).fork('population/media');
  const f = seededFaker(rng.nextUint32());
  const spanMs = options.mediaSpanMs ?? 30 * 24 * 3600_000;
  const end = now(t) - 1000; // strictly older than any live post, so live ids never clash with these

  // A vocabulary of tags with a heavy head, and a set of places.
  const vocab = [...POPULAR_TAGS];
  const seenTag = new Set(vocab);
  for (let i = 0; vocab.length < 400 && i < 4000; i++) {
    const w = f.word.noun().toLowerCase().replace(/[^a-z0-9_]/g, '');
    if (!w || seenTag.has(w)) continue;
    vocab.push(w);
    seenTag.add(w);
  }
  const placeCount = Math.max(5, Math.min(300, Math.round(p.users.length / 20)));
  const places = Array.from({ length: placeCount }, () => {
    const name = f.location.city();
    const lat = Number(f.location.latitude({ max: 70, min: -55, precision: 4 }).toFixed(4));
    const lng = Number(f.location.longitude({ precision: 4 }).toFixed(4));
    return { name, lat, lng, placeKey: `${name.trim().toLowerCase()}@${lat.toFixed(4)},${lng.toFixed(4)}`, id: '' };
  });

  // Places first: an existing place (same key) keeps its id.
  const placesByShard = new Map<number, typeof places>();
  for (const pl of places) {
    const s = shardForKey(pl.placeKey, t.config.shards.logical);
    (placesByShard.get(s) ?? placesByShard.set(s, []).get(s)!).push(pl);
  }
  for (const [s, list] of placesByShard) {
    await slicer.yieldIfDue();
    await t.db.write('photos', s, 'bulk.locations', async (sql) => {
      for (const pl of list) {
        const minted = t.store.mintId('locations', s);
        await sql.run('INSERT OR IGNORE INTO locations (shard_id, id, place_key, name, lat, lng) VALUES (?,?,?,?,?,?)', s, minted, pl.placeKey, pl.name, pl.lat, pl.lng);
        pl.id = String((await sql.get<{ id: bigint }>('SELECT id FROM locations WHERE place_key = ?', pl.placeKey))!.id);
        if (pl.id === minted) t.geo?.indexLocation(pl.id, pl.lat, pl.lng);
      }
    });
  }
  await seedPlaceIds(t, p.seed, places);

  const mediaRows: unknown[][] = [];
  const tagRows: unknown[][] = [];
  const tagCounts = new Map<string, number>();
  const locRows: unknown[][] = [];
  const mediaCounts = new Map<string, number>();
  const seq = new Map<number, number>();
  const used = new Set<string>();
  const logical = t.config.shards.logical;
  for (let u = 0; u < ids.length; u++) {
    if ((u & 63) === 63) await slicer.yieldIfDue();
    const n = Math.floor(rng.next() * (2 * mean + 1));
    if (n === 0) continue;
    const shard = shards[u]!;
    const mine: string[] = [];
    for (let j = 0; j < n; j++) {
      let createdMs = Math.floor(end - rng.next() * spanMs);
      let id: string;
      for (let budget = 0; ; budget++) {
        if (budget > 10_000) throw simError('SG_ERR_BUDGET_EXHAUSTED', 'no free media id for a seeded photo');
        const k = seq.get(shard) ?? 0;
        seq.set(shard, k + 2);
        id = encodeId(createdMs, shard, k, t.config.idEpochMs).toString();
        if (!used.has(id)) break;
        createdMs -= 1;
      }
      used.add(id);
      const captionId = encodeId(createdMs, shard, (seq.get(shard)! - 1) % 1024, t.config.idEpochMs).toString();
      const tagCount = rng.int(0, 4);
      const picked = new Set<string>();
      for (let i = 0; i < tagCount; i++) picked.add(vocab[Math.floor(vocab.length * rng.next() ** 2.5)]!);
      const words = f.word.words({ count: { min: 2, max: 7 } });
      const caption = rng.chance(0.1) ? null : [words.charAt(0).toUpperCase() + words.slice(1), ...[...picked].map((x) => '#' + x)].join(' ');
      const tags = parseTags(caption);
      const place = rng.chance(LOCATED_FRACTION) ? places[rng.int(0, places.length - 1)]! : null;
      const img = images[rng.int(0, images.length - 1)]!;
      const imageJson = JSON.stringify({
        thumbnail: { key: `${img}/150.jpg`, width: 150, height: 150 },
        lowResolution: { key: `${img}/306.jpg`, width: 306, height: 306 },
        standardResolution: { key: `${img}/612.jpg`, width: 612, height: 612 },
      });
      mediaRows.push([shard, id, ids[u], caption, caption ? captionId : null, createdMs, FILTERS[rng.int(0, FILTERS.length - 1)], JSON.stringify(tags), place?.id ?? null, place?.name ?? null, place?.lat ?? null, place?.lng ?? null, imageJson]);
      for (const tag of tags) {
        tagRows.push([shardForKey(tag, logical), tag, id]);
        tagCounts.set(tag, (tagCounts.get(tag) ?? 0) + 1);
      }
      if (place) {
        locRows.push([shardOf(place.id), place.id, id, createdMs]);
        t.geo?.indexMedia(id, place.lat, place.lng, createdMs);
      }
      mine.push(id);
    }
    mine.sort(byIdDesc);
    byAuthor.set(u, mine);
    mediaCounts.set(ids[u]!, n);
  }

  await t.db.bulkInsertSliced('media', ['shard_id', 'id', 'user_id', 'caption', 'caption_id', 'created_ms', 'filter', 'tags', 'location_id', 'location_name', 'lat', 'lng', 'images'], mediaRows, { conflict: 'ignore' });
  await t.db.bulkInsertSliced('tag_media', ['shard_id', 'tag', 'media_id'], tagRows, { conflict: 'ignore' });
  await t.db.bulkInsertSliced('location_media', ['shard_id', 'location_id', 'media_id', 'created_ms'], locRows, { conflict: 'ignore' });
  const tagsByShard = new Map<number, Array<[string, number]>>();
  for (const [tag, c] of tagCounts) {
    const s = shardForKey(tag, logical);
    (tagsByShard.get(s) ?? tagsByShard.set(s, []).get(s)!).push([tag, c]);
  }
  for (const [s, list] of tagsByShard) {
    await slicer.yieldIfDue();
    await t.db.write('photos', s, 'bulk.tags', async (sql) => {
      for (const [tag, c] of list) await sql.run('INSERT INTO tags (shard_id, name, media_count) VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET media_count = media_count + excluded.media_count', s, tag, c);
    });
  }
  await t.db.bulkAdd('users', 'media_count', mediaCounts);
  await forEachSliced(slicer, mediaCounts.keys(), (id) => t.cache.delete('r:' + id));
  return { count: mediaRows.length, tags: tagCounts.size, locations: places.length, byAuthor };
}

/** Runs `fn` on every item, pausing whenever a slice is used up. */
async function forEachSliced<T>(slicer: TimeSlicer, items: Iterable<T>, fn: (item: T) => void): Promise<void> {
  let k = 0;
  for (const item of items) {
    if ((++k & 63) === 0) await slicer.yieldIfDue();
    fn(item);
  }
}

/** Feed lists written per call to the feed store (count): one call runs without a pause (~10 ms for 32 on ioredis-mock). */
const FEED_LISTS_PER_WRITE = 32;

/**
 * Each account's feed as fan-out would have left it: its own posts and the newest posts of the
 * accounts it follows, newest first, capped at the list length. Accounts that hybrid or pull
 * fan-out reads at request time are left out, as fan-out would have left them out.
 */
async function seedFeeds(t: Topology, p: Population, ids: readonly string[], followedBy: Int32Array, media: SeededMedia): Promise<number> {
  if (media.count === 0) return 0;
  const slicer = t.db.slicer;
  const n = ids.length;
  const { fanout, hybridThreshold, maxLength } = t.config.feed;
  const pushed = (author: number) => fanout === 'push' || (fanout === 'hybrid' && followedBy[author]! < hybridThreshold);
  // Following lists as CSR: start[s] … start[s + 1] index into `following`.
  const start = new Int32Array(n + 1);
  for (let k = 0; k < p.sources.length; k++) {
    if ((k & 65535) === 65535) await slicer.yieldIfDue();
    start[p.sources[k]! + 1]!++;
  }
  for (let i = 0; i < n; i++) start[i + 1]! += start[i]!;
  const fill = start.slice(0, n);
  const following = new Int32Array(p.sources.length);
  for (let k = 0; k < p.sources.length; k++) {
    if ((k & 65535) === 65535) await slicer.yieldIfDue();
    following[fill[p.sources[k]!]!++] = p.targets[k]!;
  }
  let lists: Record<string, string[]> = {};
  let pending = 0;
  let written = 0;
  for (let u = 0; u < n; u++) {
    if ((u & 63) === 63) await slicer.yieldIfDue();
    const items: string[] = [...(media.byAuthor.get(u) ?? [])];
    for (let k = start[u]!; k < start[u + 1]!; k++) {
      const a = following[k]!;
      const posts = media.byAuthor.get(a);
      if (!posts || !pushed(a)) continue;
      for (let j = 0; j < posts.length && j < FEED_POSTS_PER_AUTHOR; j++) items.push(posts[j]!);
    }
    if (items.length === 0) continue;
    items.sort(byIdDesc);
    lists[ids[u]!] = items.slice(0, maxLength);
    written++;
    if (++pending === FEED_LISTS_PER_WRITE) {
      await t.feeds.restore(lists);
      lists = {};
      pending = 0;
    }
  }
  if (pending > 0) await t.feeds.restore(lists);
  return written;
}

/**
 * Writes a generated population into the topology through the bulk path, in slices of the event
 * loop (the API keeps answering). Replicas follow the load through their logs, lagging behind it;
 * before answering, they are caught up, so what follows the seeding finds them complete.
 */
export async function seedPopulation(t: Topology, p: Population, options: SeedOptions = {}): Promise<SeededPopulation> {
  const mean = options.mediaPerUser ?? 0;
  if (!(mean >= 0 && mean <= MAX_MEDIA_PER_USER)) throw simError('SG_ERR_INVALID_PARAM', `mediaPerUser must be a number in [0, ${MAX_MEDIA_PER_USER}]`, { field: 'mediaPerUser' });
  const slicer = t.db.slicer;
  const t0 = performance.now();
  let t1 = t0;
  const ms = { users: 0, follows: 0, media: 0, replicas: 0, feeds: 0 };
  const lap = (step: keyof typeof ms) => {
    ms[step] = since(t1);
    t1 = performance.now();
  };
  const images = mean > 0 ? await sharedImages(t) : [];
  const seeded = await seedUsers(t, p.users, options.password ? { password: options.password } : {});
  lap('users');
  const ids = seeded.map((s) => s.id);
  const shards = new Int32Array(ids.length);
  await forEachSliced(slicer, ids.keys(), (i) => (shards[i] = shardOf(ids[i]!)));
  const edges = await seedEdges(t, p, ids, shards);
  lap('follows');
  const media = await seedMedia(t, p, ids, shards, images, options);
  await forEachSliced(slicer, ids, (id) => t.cache.delete('u:' + id));
  lap('media');
  await t.db.catchUpReplicas();
  lap('replicas');
  const feeds = await seedFeeds(t, p, ids, edges.followedBy, media);
  lap('feeds');
  t.metrics.inc('seeded_users', {}, ids.length);
  t.metrics.inc('seeded_follows', {}, p.sources.length);
  t.metrics.inc('seeded_media', {}, media.count);
  const report: SeedReport = {
    users: ids.length,
    follows: p.sources.length,
    media: media.count,
    tags: media.tags,
    locations: media.locations,
    feeds,
    inDegree: degreeSummary(p),
    ms: { ...ms, total: since(t0) },
  };
  return { report, ids, tokens: seeded.map((s) => s.accessToken), followedBy: edges.followedBy, follows: edges.follows };
}

// ------------------------------------------------------------------------------------------------
// The roster: populations seeded into one topology, and their accounts for load scripts

export interface SeedRequest extends PopulationOptions, SeedOptions {
  /** Seed of the population (default: the topology's). */
  seed?: number;
  /** Accounts returned in `sample`, celebrities first (count; default 20). */
  sample?: number;
}

export interface RosterEntry {
  id: string;
  username: string;
  access_token: string;
  /** Followers when seeded (count). */
  followed_by: number;
  /** Accounts followed when seeded (count). */
  follows: number;
}

export interface SeedAnswer extends SeedReport {
  seed: number;
  /** Accounts with the most followers, most first. */
  celebrities: RosterEntry[];
  sample: RosterEntry[];
}

/** Largest page of GET /_sim/users (count). */
export const MAX_ROSTER_PAGE = 10_000;
/** Largest `sample` of a seeding answer (count). */
export const MAX_SEED_SAMPLE = 1000;
/**
 * The budget of one seeding call: accounts, follows (users × avgFollows) and photos (users ×
 * mediaPerUser), so that each call's memory and length stay bounded. A million accounts fit one
 * call (celebrity-post at scale 1 seeds one audience of a million); larger populations, or the
 * smoothest serving meanwhile (a call's objects are what the garbage collector walks), take
 * several calls.
 */
export const MAX_SEED_USERS = 1_000_000;
export const MAX_SEED_FOLLOWS = 5_000_000;
export const MAX_SEED_MEDIA = 1_000_000;

/** Refuses a seeding request over the budget of one call, naming the limit (SG_ERR_INVALID_PARAM). */
export function checkSeedBudget(request: Pick<SeedRequest, 'users' | 'avgFollows' | 'mediaPerUser'>): void {
  const { users, avgFollows } = request;
  const media = request.mediaPerUser ?? 0;
  if (typeof users === 'number' && users > MAX_SEED_USERS) throw simError('SG_ERR_INVALID_PARAM', `users must be at most ${MAX_SEED_USERS} per seeding call; seed larger populations in several calls`, { field: 'users' });
  if (typeof users === 'number' && typeof avgFollows === 'number' && users * avgFollows > MAX_SEED_FOLLOWS) {
    throw simError('SG_ERR_INVALID_PARAM', `users × avgFollows must be at most ${MAX_SEED_FOLLOWS} follows per seeding call (got ${Math.round(users * avgFollows)})`, { field: 'avgFollows' });
  }
  if (typeof users === 'number' && typeof media === 'number' && users * media > MAX_SEED_MEDIA) {
    throw simError('SG_ERR_INVALID_PARAM', `users × mediaPerUser must be at most ${MAX_SEED_MEDIA} photos per seeding call (got ${Math.round(users * media)})`, { field: 'mediaPerUser' });
  }
}

export class PopulationRoster {
  // Packed (see packed-strings.ts): a million accounts' strings would otherwise lengthen every full GC by ~0.3 s.
  private readonly ids = new PackedStrings();
  private readonly usernames = new PackedStrings();
  private readonly tokens = new PackedStrings();
  private readonly followedBy: number[] = [];
  private readonly follows: number[] = [];
  /** Roster indexes by followers, most first (ties in seeding order); kept up to date by each seeding. */
  private byFollowers: Int32Array = new Int32Array(0);
  private rounds = 0;
  /** The seeding running now: one at a time, a second one is refused (SG_ERR_BUSY). */
  private running: Promise<SeedAnswer> | null = null;

  constructor(private readonly t: Topology) {}

  get size(): number {
    return this.ids.length;
  }

  /**
   * Generates a population and seeds it; later seedings get distinct usernames. One seeding runs at
   * a time: another one asked for meanwhile is refused with SG_ERR_BUSY (409), not queued.
   */
  seed(request: SeedRequest): Promise<SeedAnswer> {
    try {
      checkSeedBudget(request);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.running) return Promise.reject(simError('SG_ERR_BUSY', 'a seeding is already running; seedings run one at a time: send the next one when this one has answered'));
    const run = this.seedNow(request);
    this.running = run;
    const done = () => {
      if (this.running === run) this.running = null;
    };
    run.then(done, done);
    return run;
  }

  private async seedNow(request: SeedRequest): Promise<SeedAnswer> {
    const sampleSize = request.sample ?? 20;
    if (!Number.isInteger(sampleSize) || sampleSize < 0 || sampleSize > MAX_SEED_SAMPLE) throw simError('SG_ERR_INVALID_PARAM', `sample must be an integer in [0, ${MAX_SEED_SAMPLE}]`, { field: 'sample' });
    const seed = request.seed ?? this.t.seed;
    const slicer = this.t.db.slicer;
    const t0 = performance.now();
    const population = await generatePopulationSliced(slicer, seed, request, this.rounds === 0 ? '' : `_r${this.rounds + 1}`);
    const generateMs = since(t0);
    const { mediaPerUser, password, mediaSpanMs } = request;
    const seeded = await seedPopulation(this.t, population, { ...(mediaPerUser !== undefined ? { mediaPerUser } : {}), ...(password ? { password } : {}), ...(mediaSpanMs !== undefined ? { mediaSpanMs } : {}) });
    this.rounds++;
    const base = this.ids.length;
    for (let i = 0; i < population.users.length; i++) {
      if ((i & 1023) === 1023) await slicer.yieldIfDue();
      this.ids.push(seeded.ids[i]!);
      this.usernames.push(population.users[i]!.username);
      this.tokens.push(seeded.tokens[i]!);
      this.followedBy.push(seeded.followedBy[i]!);
      this.follows.push(seeded.follows[i]!);
    }
    // This seeding's accounts by followers (a sliced sort), merged into the roster's order.
    const fb = seeded.followedBy;
    const local = await slicer.run(sortIndexes(population.users.length, (a, b) => fb[a]! > fb[b]!));
    const mine = new Int32Array(local.length);
    for (let k = 0; k < local.length; k++) mine[k] = base + local[k]!;
    this.byFollowers = await slicer.run(mergeByFollowers(this.byFollowers, mine, this.followedBy));
    const celebrities = Array.from(mine.subarray(0, Math.max(population.celebrities.length, Math.min(5, mine.length))), (i) => this.entry(i));
    const sample: RosterEntry[] = [...celebrities.slice(0, sampleSize)];
    for (let i = base; sample.length < sampleSize && i < this.ids.length; i++) if (!sample.some((e) => e.id === this.ids.get(i))) sample.push(this.entry(i));
    const report = seeded.report;
    return { seed, ...report, ms: { generate: generateMs, ...report.ms, total: report.ms.total + generateMs }, celebrities, sample };
  }

  private entry(i: number): RosterEntry {
    return { id: this.ids.get(i), username: this.usernames.get(i), access_token: this.tokens.get(i), followed_by: this.followedBy[i]!, follows: this.follows[i]! };
  }

  /** A page of seeded accounts, in signup order or by followers (most first). */
  /** Up to `limit` accounts in `order` from `offset` on, every `stride`-th (an evenly spaced sample of the population with stride > 1). */
  page(options: { offset?: number; limit?: number; stride?: number; order?: 'signup' | 'followers' } = {}): { total: number; offset: number; users: RosterEntry[] } {
    const offset = options.offset ?? 0;
    const limit = options.limit ?? 100;
    const stride = options.stride ?? 1;
    if (!Number.isInteger(offset) || offset < 0) throw simError('SG_ERR_INVALID_PARAM', 'offset must be an integer ≥ 0', { field: 'offset' });
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_ROSTER_PAGE) throw simError('SG_ERR_INVALID_PARAM', `limit must be an integer in [1, ${MAX_ROSTER_PAGE}]`, { field: 'limit' });
    if (!Number.isInteger(stride) || stride < 1) throw simError('SG_ERR_INVALID_PARAM', 'stride must be an integer ≥ 1', { field: 'stride' });
    const order = options.order === 'followers' ? this.byFollowers : null;
    const users: RosterEntry[] = [];
    for (let k = offset, n = 0; k < this.ids.length && n < limit; k += stride, n++) users.push(this.entry(order ? order[k]! : k));
    return { total: this.ids.length, offset, users };
  }
}

/** Merges two lists of roster indexes sorted by followers (most first, ties by index) into one. */
function* mergeByFollowers(a: Int32Array, b: Int32Array, followedBy: readonly number[]): Generator<void, Int32Array> {
  const out = new Int32Array(a.length + b.length);
  let i = 0;
  let j = 0;
  // Every index in `b` is above every index in `a`: on a tie, `a` comes first.
  for (let k = 0; k < out.length; k++) {
    if ((k & 8191) === 8191) yield;
    out[k] = j >= b.length || (i < a.length && followedBy[a[i]!]! >= followedBy[b[j]!]!) ? a[i++]! : b[j++]!;
  }
  return out;
}
