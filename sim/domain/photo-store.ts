// The Store on the simulated topology: where each row lives (users, photos and graph families,
// routed by the logical shard in every id), what is cached, what is queued, and what is counted.
// Reads go through memcached look-aside; writes go to the owning shard, then delete cached copies.

import type { BlobStore } from '../parts/blob-store.ts';
import type { CacheCluster } from '../parts/cache-cluster.ts';
import type { Clock } from '../engine/clock.ts';
import { hashPassword, mintAccessToken, tokenDigest, verifyPassword } from './credentials.ts';
import type { DatabaseCluster } from '../parts/database-cluster.ts';
import type { Row, Sql } from '../parts/db-node.ts';
import { simError, isSimError } from '../engine/errors.ts';
import type { FeedStore } from '../parts/feed-store.ts';
import type { GeoIndex } from '../parts/geo-index.ts';
import type { GraphCache } from '../parts/graph-cache.ts';
import { IdGenerator, type IdPartition, isIdString, minIdAt, shardOf, toShortcode } from '../parts/ids.ts';
import { probeAndDecode, renderVariants, variantsFromPixels, type VariantPixels } from '../parts/image-resizer.ts';
import type { JobJournal, JournalEntry } from '../parts/job-journal.ts';
import { jobAbandoned, type JobInfo, type Jobs } from '../parts/job-queue.ts';
import type { Metrics } from '../observability/metrics.ts';
import { SCAN_BUDGET_ROWS, scanVisible, type ScanBatch, type ScanResult } from './page-scan.ts';
import type { Prng } from '../engine/prng.ts';
import { shardForKey, shardForSignup } from '../parts/shard-map.ts';
import type {
  ActivityRecord,
  CommentRecord,
  LocationProvider,
  LocationRecord,
  MediaRecord,
  NewMedia,
  Page,
  PageQuery,
  Relationship,
  RelationshipAction,
  Store,
  TimeRange,
  UserRecord,
} from './store.ts';
import type { TopologyConfig } from '../topology-config.ts';
import { parseTags } from '../parts/tags.ts';
import { registerDelivery, type DeliveryJob } from './fanout-delivery.ts';
import { randomUUID } from 'node:crypto';

export { parseTags };

export interface PhotoStoreDeps {
  config: TopologyConfig;
  clock: Clock;
  prng: Prng;
  metrics: Metrics;
  db: DatabaseCluster;
  cache: CacheCluster;
  feeds: FeedStore;
  graph: GraphCache;
  queue: Jobs;
  /** Where jobs an answered request promised are kept until done (a no-op without a data dir). */
  journal: JobJournal;
  geo: GeoIndex | null;
  blobs: BlobStore;
  /** This process's share of the id sequences when several server processes mint ids (serve --workers). */
  idPartition?: IdPartition;
}

/** What the job journal keeps of a post's fan-out: enough to run it again after a crash. */
interface FanoutPromise {
  mediaId: string;
  ownerId: string;
  postedMs: number;
}

/** The `fanout` job: plan the deliveries of one post. */
interface FanoutPlanJob extends FanoutPromise {
  /** The submitter's tracker (PhotoStore.fanouts of the store whose `origin` this is). */
  fanout: number;
  origin: string;
  replay: boolean;
}

interface GeoIndexJob {
  mediaId: string;
  lat: number;
  lng: number;
  createdMs: number;
}

/** Media ids kept per user for pull-mode feed merges (count). */
const RECENT_PER_USER = 50;
/** How long the popular list is reused before it is recomputed (ms). */
const POPULAR_TTL_MS = 10_000;
/** Window of media considered for /media/popular (ms). */
const POPULAR_WINDOW_MS = 24 * 3600_000;
/** Most recent posts of an account removed from a feed on unfollow or block (count). */
const FEED_PURGE_LIMIT = 800;
/** The largest id (2^63 - 1) as text: "no upper bound" for id-paged lists. */
const MAX_ID_TEXT = (2n ** 63n - 1n).toString();
const str = (v: unknown): string => String(v);
const NO_ONE: ReadonlySet<string> = new Set();
const num = (v: unknown): number => Number(v);
const json = (ids: readonly string[]): string => JSON.stringify(ids);
const byIdDesc = (a: string, b: string): number => (a.length !== b.length ? b.length - a.length : a < b ? 1 : a > b ? -1 : 0);
/** a < b for decimal id strings without leading zeros. */
const idLess = (a: string, b: string): boolean => (a.length !== b.length ? a.length < b.length : a < b);

/** Accounts warmed at once, and photos read per page, by warmCaches. */
const WARM_BATCH = 500;
const WARM_MEDIA_PAGE = 100;
/** Blocks copied to `blocked_by` when an older data dir is opened (count). */
const BACKFILL_BLOCKS_LIMIT = 1_000_000;
/** Decoded cache values remembered (count): parsing the same JSON on every read dominated reads. */
const DECODE_MEMO_LIMIT = 100_000;

/** A row of a media list: where the list resumes after it, and the media it names. */
interface MediaRow {
  cursor: string;
  id: string;
}

/** Called after a post is stored (real-time subscriptions listen here). */
export type PostListener = (media: MediaRecord, owner: UserRecord) => void;

/**
 * A fan-out as the process that queued it follows it. Jobs carry only its number (`fanout`), so
 * they can travel through a real broker; a plan job whose tracker is not here (run by another
 * process, or after its submitter died) makes one of its own that delivers as a replay.
 */
interface Tracker {
  /** Key in PhotoStore.fanouts (0: not kept there). */
  id: number;
  postedMs: number;
  chunks: number;
  done: number;
  planned: boolean;
  size: number;
  /** The journal entry promising this fan-out, ended with its last chunk (null once ended). */
  entry: number | null;
  /** A replay after a crash: deliveries skip lists that already hold the post (FeedStore.pushOnce). */
  replay: boolean;
  /** Called once when the fan-out is over, delivered or failed. */
  settled?: () => void;
}

export class PhotoStore implements Store {
  private readonly ids: IdGenerator;
  private signups = 0;
  private popular: { atMs: number; ids: string[] } | null = null;
  private readonly logical: number;
  private readonly decoded = new Map<string, { raw: string; value: unknown }>();
  private readonly postListeners: PostListener[] = [];
  private readonly blockSets = new Map<string, { raw: string; set: ReadonlySet<string> }>();
  private readonly fanouts = new Map<number, Tracker>();
  private nextFanout = 1;
  /** Tells this store's fan-out numbers from those of another process, or of this one before a restart. */
  private readonly origin = randomUUID();

  constructor(private readonly d: PhotoStoreDeps) {
    this.ids = new IdGenerator(() => d.clock.nowMs(), d.config.idEpochMs, d.idPartition);
    this.logical = d.config.shards.logical;
    const m = d.metrics;
    m.describe('fanout_posts', 'Posts fanned out, by how (push, pull, hybrid-pulled)');
    m.describe('fanout_deliveries', 'Feed list writes made by fan-out');
    m.describe('fanout_lag_ms', 'Post time to the last follower list written');
    m.describe('fanout_size', 'Followers reached per post (count)');
    m.describe('list_scan_budget_exhausted', 'Pages that stopped filling on their scan budget (sim/domain/page-scan.ts), by list');
    m.describe('password_hash_ms', 'Argon2id work per signup (hash) and login (verify), on the thread pool, queueing included (ms)');
    d.queue.register('resize', (p: { mediaId: string; bytes: Buffer; pixels: VariantPixels | null }) => this.resizeJob(p.mediaId, p.bytes, p.pixels));
    d.queue.register('fanout', (p: FanoutPlanJob, job: JobInfo) => this.fanoutPlanJob(p, job));
    registerDelivery(d.queue, d.feeds, d.metrics);
    d.queue.register('geo-index', async (p: GeoIndexJob) => {
      d.geo?.indexMedia(p.mediaId, p.lat, p.lng, p.createdMs);
    });
    d.queue.register('notify', async (p: { userId: string; kind: string }) => {
      // Push notifications (APNs/C2DM in 2012) leave the system here; only their volume matters.
      d.metrics.inc('notifications_sent', { kind: p.kind });
    });
  }

  /** Runs a password hash or check on the thread pool and records how long it took (app-tier work). */
  private async timedHash<T>(work: () => Promise<T>, op: 'hash' | 'verify'): Promise<T> {
    const t0 = this.d.clock.nowMs();
    try {
      return await work();
    } finally {
      this.d.metrics.observe('password_hash_ms', { op }, this.d.clock.nowMs() - t0);
    }
  }

  /**
   * Restores the signup counter from the data (a restart must not refill range shard 0), backfills
   * blocks of older data dirs, then finishes the jobs the job journal says a previous run promised
   * and did not finish.
   */
  async init(): Promise<void> {
    const counts = await this.d.db.scatter('users', 'user.count', async (sql, shards) => num((await sql.get<{ n: bigint }>(`SELECT count(*) AS n FROM users WHERE shard_id IN (SELECT value FROM json_each(?))`, JSON.stringify(shards)))!.n));
    this.signups = counts.reduce((a, b) => a + b, 0);
    await this.backfillBlockedBy();
    await this.recoverJobs(this.d.journal.recovered);
  }

  /**
   * Data dirs written before `blocked_by` existed hold blocks only on the blocker's shard: copy
   * them to the blocked user's shard once (blocks are few; bounded by BACKFILL_BLOCKS_LIMIT).
   */
  private async backfillBlockedBy(): Promise<void> {
    const count = (table: string) => this.d.db.scatter('graph', 'block.count', async (sql, shards) => num((await sql.get<{ n: bigint }>(`SELECT count(*) AS n FROM ${table} WHERE shard_id IN (SELECT value FROM json_each(?))`, JSON.stringify(shards)))!.n));
    // One after the other: at start a pool may be one connection with no queue (a topology's budget).
    const blocks = await count('blocks');
    const reverse = await count('blocked_by');
    if (blocks.reduce((a, b) => a + b, 0) === reverse.reduce((a, b) => a + b, 0)) return;
    const parts = await this.d.db.scatter('graph', 'block.backfill-read', (sql, shards) =>
      sql.all<{ source_id: bigint; target_id: bigint }>('SELECT source_id, target_id FROM blocks WHERE shard_id IN (SELECT value FROM json_each(?)) LIMIT ?', JSON.stringify(shards), BACKFILL_BLOCKS_LIMIT));
    const byShard = new Map<number, Array<{ source_id: bigint; target_id: bigint }>>();
    for (const r of parts.flat()) {
      const t = shardOf(r.target_id);
      (byShard.get(t) ?? byShard.set(t, []).get(t)!).push(r);
    }
    for (const [t, rows] of byShard) {
      await this.d.db.write('graph', t, 'block.backfill', async (sql) => {
        for (const r of rows) await sql.run('INSERT OR IGNORE INTO blocked_by (shard_id, target_id, source_id) VALUES (?,?,?)', t, r.target_id, r.source_id);
      });
    }
  }

  /**
   * Runs the journal's open entries again, all of them idempotent: indexing a point replaces it,
   * and a replayed fan-out skips followers whose lists hold the post. A post deleted since has
   * nothing left to deliver or index.
   */
  private async recoverJobs(entries: readonly JournalEntry[]): Promise<void> {
    const runs = entries.map(async (entry) => {
      const p = entry.payload as Partial<FanoutPromise & GeoIndexJob>;
      const known = (entry.kind === 'fanout' || entry.kind === 'geo-index') && typeof p.mediaId === 'string' && isIdString(p.mediaId);
      if (!known || !(await this.getMediaMany([p.mediaId!])).has(p.mediaId!)) {
        this.d.journal.end(entry.id);
        return;
      }
      if (entry.kind === 'geo-index') {
        const job = p as GeoIndexJob;
        this.d.geo?.indexMedia(job.mediaId, job.lat, job.lng, job.createdMs);
        this.d.journal.end(entry.id);
        return;
      }
      const job = p as FanoutPromise;
      await new Promise<void>((settled) => this.fanOut(job, { entry: entry.id, replay: true, settled }));
    });
    await Promise.all(runs);
  }

  /** Registers a listener called after each post is stored (not for bulk-seeded media). */
  onPost(listener: PostListener): void {
    this.postListeners.push(listener);
  }

  /**
   * JSON.parse of a cached value, remembered while the cached string stays the same. Decoded
   * records are shared between callers and must be treated as read-only.
   */
  private decode<T>(key: string, raw: string): T {
    const hit = this.decoded.get(key);
    if (hit && hit.raw === raw) return hit.value as T;
    const value = JSON.parse(raw) as T;
    if (this.decoded.size >= DECODE_MEMO_LIMIT) this.decoded.clear();
    this.decoded.set(key, { raw, value });
    return value;
  }

  /** The next signup's logical shard (also used by the bulk loader). */
  nextUserShard(): number {
    return shardForSignup(this.signups++, this.d.config.shards);
  }

  mintId(table: string, shardId: number): string {
    return this.ids.next(table, shardId).toString();
  }

  private notify(userId: string, kind: string): void {
    this.d.queue.submit('notify', { userId, kind }).catch(() => undefined);
  }

  // ---------------------------------------------------------------- accounts

  async createUser(input: { username: string; password: string; fullName: string; isPrivate: boolean; bio?: string; website?: string }): Promise<{ user: UserRecord; accessToken: string }> {
    const { username, password } = input;
    if (!/^[A-Za-z0-9._]{1,30}$/.test(username)) throw simError('SG_ERR_INVALID_PARAM', 'username must be 1-30 letters, digits, dots or underscores', { field: 'username' });
    if (typeof password !== 'string' || password.length < 6 || password.length > 128) throw simError('SG_ERR_INVALID_PARAM', 'password must be 6-128 characters', { field: 'password' });
    const lower = username.toLowerCase();
    const shardId = this.nextUserShard();
    const id = this.mintId('users', shardId);
    const nameShard = shardForKey(lower, this.logical);
    const taken = await this.d.db.write('users', nameShard, 'username.claim', async (sql) => (await sql.run('INSERT OR IGNORE INTO usernames (shard_id, username_lower, user_id) VALUES (?, ?, ?)', nameShard, lower, BigInt(id))).changes === 0);
    if (taken) throw simError('SG_ERR_USERNAME_TAKEN', `the username ${username} is taken`, { field: 'username' });
    const hash = await this.timedHash(() => hashPassword(password), 'hash');
    const token = mintAccessToken(id);
    const now = Math.floor(this.d.clock.nowMs());
    await this.d.db.write(
      'users',
      shardId,
      'user.create',
      async (sql) => {
        await sql.run(
          'INSERT INTO users (shard_id, id, username, full_name, bio, website, is_private, password_hash, created_ms) VALUES (?,?,?,?,?,?,?,?,?)',
          shardId, BigInt(id), username, input.fullName ?? '', input.bio ?? '', input.website ?? '', input.isPrivate ? 1 : 0, hash, now,
        );
        await sql.run('INSERT INTO tokens (shard_id, token_hash, user_id, created_ms) VALUES (?,?,?,?)', shardId, tokenDigest(token), BigInt(id), now);
      },
      { actorId: id },
    );
    this.d.metrics.inc('signups');
    const user = (await this.getUsers([id], { actorId: id })).get(id)!;
    return { user, accessToken: token };
  }

  async login(username: string, password: string): Promise<{ user: UserRecord; accessToken: string }> {
    const lower = String(username ?? '').toLowerCase();
    const nameShard = shardForKey(lower, this.logical);
    const row = await this.d.db.read('users', nameShard, 'username.lookup', (sql) => sql.get<{ user_id: bigint }>('SELECT user_id FROM usernames WHERE username_lower = ?', lower), { primary: true });
    const bad = simError('SG_ERR_INVALID_CREDENTIALS', 'the username or password is wrong');
    if (!row) throw bad;
    const id = str(row.user_id);
    const shardId = shardOf(id);
    const u = await this.d.db.read('users', shardId, 'user.auth', (sql) => sql.get<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = ?', BigInt(id)), { primary: true });
    if (!u) throw bad;
    const check = await this.timedHash(() => verifyPassword(String(password ?? ''), u.password_hash), 'verify');
    if (!check.ok) throw bad;
    const token = mintAccessToken(id);
    const newHash = check.rehash ? await this.timedHash(() => hashPassword(String(password)), 'hash') : null;
    await this.d.db.write(
      'users',
      shardId,
      'token.create',
      async (sql) => {
        await sql.run('INSERT INTO tokens (shard_id, token_hash, user_id, created_ms) VALUES (?,?,?,?)', shardId, tokenDigest(token), BigInt(id), Math.floor(this.d.clock.nowMs()));
        // A hash of an older, weaker kind is replaced while the password is at hand.
        if (newHash !== null) await sql.run('UPDATE users SET password_hash = ? WHERE id = ?', newHash, BigInt(id));
      },
      { actorId: id },
    );
    return { user: (await this.getUsers([id], { actorId: id })).get(id)!, accessToken: token };
  }

  async authenticate(accessToken: string): Promise<string | null> {
    const dot = accessToken.indexOf('.');
    const id = dot > 0 ? accessToken.slice(0, dot) : '';
    if (!isIdString(id) || accessToken.length > 100) return null;
    const shardId = shardOf(id);
    if (shardId >= this.logical) return null;
    // Only the digest is looked up and cached: neither the database nor memcached holds a token.
    const digest = tokenDigest(accessToken);
    const v = await this.d.cache.getOrFill('t:' + digest, async () => {
      const row = await this.d.db.read('users', shardId, 'token.lookup', (sql) => sql.get<{ user_id: bigint }>('SELECT user_id FROM tokens WHERE token_hash = ?', digest), { primary: true });
      return row ? str(row.user_id) : null;
    });
    // The digest names a token of this user only if the token's own id says so.
    return v === id ? v : null;
  }

  async warmCaches(accounts: ReadonlyArray<{ id: string; accessToken: string }>): Promise<number> {
    let keys = 0;
    for (let i = 0; i < accounts.length; i += WARM_BATCH) {
      const batch = accounts.slice(i, i + WARM_BATCH);
      const ids = batch.map((a) => a.id);
      await Promise.all(batch.map((a) => this.authenticate(a.accessToken)));
      await this.getUsers(ids);
      await Promise.all(ids.map((id) => Promise.all([this.blockedEitherWay(id), this.blockedBy(id)])));
      keys += 4 * batch.length;
      for (const id of ids) {
        for (let page = await this.listUserMedia(id, { count: WARM_MEDIA_PAGE }); ; ) {
          keys += page.items.length;
          if (!page.nextMaxId) break;
          page = await this.listUserMedia(id, { count: WARM_MEDIA_PAGE, maxId: page.nextMaxId });
        }
      }
    }
    return keys;
  }

  // ---------------------------------------------------------------- users

  private userFromRow(r: Row): UserRecord {
    return {
      id: str(r.id),
      username: str(r.username),
      fullName: str(r.full_name),
      bio: str(r.bio),
      website: str(r.website),
      profilePicture: str(r.profile_picture),
      isPrivate: num(r.is_private) === 1,
      createdMs: num(r.created_ms),
      counts: { media: num(r.media_count), follows: num(r.follows_count), followedBy: num(r.followed_by_count) },
      pulledPosts: num(r.pulled_posts),
    };
  }

  private validShard(id: string): number | null {
    if (!isIdString(id)) return null;
    const s = shardOf(id);
    return s < this.logical ? s : null;
  }

  async getUser(id: string): Promise<UserRecord | null> {
    return (await this.getUsers([id])).get(id) ?? null;
  }

  async getUsers(ids: readonly string[], opts: { actorId?: string } = {}): Promise<Map<string, UserRecord>> {
    const found = await this.d.cache.getOrFillMany(
      this.cacheKeys('u:', ids),
      async (missing) => {
        const out = new Map<string, string>();
        const byShard = this.groupByShard(missing.map((k) => k.slice(2)));
        for (const [shardId, list] of byShard) {
          const q = (ids: string[]) => (sql: Sql) => sql.all('SELECT * FROM users WHERE id IN (SELECT CAST(value AS INTEGER) FROM json_each(?))', json(ids));
          const rows = await this.d.db.read('users', shardId, 'user.get', q(list), { ...opts, avoidStale: true });
          if (rows.length < list.length) rows.push(...(await this.d.db.read('users', shardId, 'user.get-primary', q(this.missingIds(list, rows)), { primary: true })));
          for (const r of rows) out.set('u:' + str(r.id), JSON.stringify(this.userFromRow(r)));
        }
        return out;
      },
    );
    const result = new Map<string, UserRecord>();
    for (const [k, v] of found) result.set(k.slice(2), this.decode<UserRecord>(k, v));
    return result;
  }

  /** `prefix` + each distinct id that names one of this store's shards, in order (one pass: the hottest reads call it). */
  private cacheKeys(prefix: string, ids: readonly string[]): string[] {
    const keys: string[] = [];
    const seen = ids.length > 1 ? new Set<string>() : null;
    for (const id of ids) {
      if (seen) {
        if (seen.has(id)) continue;
        seen.add(id);
      }
      if (this.validShard(id) !== null) keys.push(prefix + id);
    }
    return keys;
  }

  /**
   * Ids a (possibly replica) read did not return. A replica that has not yet applied an insert
   * says "no such row"; lookups by id retry those on the primary rather than answer 404.
   */
  private missingIds(wanted: readonly string[], rows: readonly Row[]): string[] {
    const got = new Set(rows.map((r) => str(r.id)));
    return wanted.filter((id) => !got.has(id));
  }

  private groupByShard(ids: readonly string[]): Map<number, string[]> {
    const m = new Map<number, string[]>();
    for (const id of ids) {
      const s = shardOf(id);
      let l = m.get(s);
      if (!l) m.set(s, (l = []));
      l.push(id);
    }
    return m;
  }

  async searchUsers(query: string, count: number, viewerId?: string): Promise<UserRecord[]> {
    const q = query.toLowerCase();
    if (!q) return [];
    const hidden = viewerId ? await this.blockedEitherWay(viewerId) : NO_ONE;
    // Usernames are sharded by hash, so a prefix search asks every server (scatter-gather). At most
    // hidden.size of the matches can be hidden, so asking for that many more fills the page (within
    // the scan budget: past it, a page may come back short).
    const limit = count + Math.min(hidden.size, SCAN_BUDGET_ROWS);
    const hi = q.slice(0, -1) + String.fromCharCode(q.charCodeAt(q.length - 1) + 1);
    const parts = await this.d.db.scatter('users', 'user.search', (sql) =>
      sql.all<{ username_lower: string; user_id: bigint }>('SELECT username_lower, user_id FROM usernames WHERE username_lower >= ? AND username_lower < ? ORDER BY username_lower LIMIT ?', q, hi, limit),
    );
    const rows = parts.flat().filter((r) => !hidden.has(str(r.user_id))).sort((a, b) => (a.username_lower < b.username_lower ? -1 : 1)).slice(0, count);
    const users = await this.getUsers(rows.map((r) => str(r.user_id)));
    return rows.map((r) => users.get(str(r.user_id))).filter((u): u is UserRecord => !!u);
  }

  private async bumpUserCounts(id: string, delta: { media?: number; follows?: number; followedBy?: number }): Promise<void> {
    const shardId = shardOf(id);
    await this.d.db.write('users', shardId, 'user.counts', (sql) =>
      sql.run(
        'UPDATE users SET media_count = max(0, media_count + ?), follows_count = max(0, follows_count + ?), followed_by_count = max(0, followed_by_count + ?) WHERE id = ?',
        delta.media ?? 0, delta.follows ?? 0, delta.followedBy ?? 0, BigInt(id),
      ),
    );
    this.d.cache.delete('u:' + id);
  }

  private async requireUser(id: string): Promise<UserRecord> {
    const u = await this.getUser(id);
    if (!u) throw simError('SG_ERR_NOT_FOUND', `user ${id} does not exist`);
    return u;
  }

  // ---------------------------------------------------------------- graph

  /** The follow edge source → target as stored on the source's shard. */
  private async edge(sourceId: string, targetId: string, primary = false): Promise<'approved' | 'requested' | null> {
    const r = await this.d.db.read('graph', shardOf(sourceId), 'follow.get', (sql) => sql.get<{ status: string }>('SELECT status FROM follows WHERE source_id = ? AND target_id = ?', BigInt(sourceId), BigInt(targetId)), { primary, actorId: sourceId });
    return (r?.status as 'approved' | 'requested' | undefined) ?? null;
  }

  /** Whom `userId` blocks, from their graph shard, as the JSON cached under `b:<id>`. */
  private async loadBlocks(userId: string): Promise<string> {
    const rows = await this.d.db.read('graph', shardOf(userId), 'block.list', (sql) => sql.all<{ target_id: bigint }>('SELECT target_id FROM blocks WHERE source_id = ?', BigInt(userId)), { actorId: userId, avoidStale: true });
    return JSON.stringify(rows.map((r) => str(r.target_id)));
  }

  /** Whom `userId` follows (approved), from their graph shard: the graph cache's source of truth. */
  private async loadFollowing(userId: string): Promise<string[]> {
    const rows = await this.d.db.read('graph', shardOf(userId), 'follow.list-out', (sql) => sql.all<{ target_id: bigint }>("SELECT target_id FROM follows WHERE source_id = ? AND status = 'approved'", BigInt(userId)), { actorId: userId });
    return rows.map((r) => str(r.target_id));
  }

  private async blockedBy(userId: string): Promise<string[]> {
    const v = await this.d.cache.getOrFill('b:' + userId, () => this.loadBlocks(userId));
    return v ? this.decode<string[]>('b:' + userId, v) : [];
  }

  private async isBlockedEitherWay(a: string, b: string): Promise<boolean> {
    const [ab, ba] = await Promise.all([this.blockedBy(a), this.blockedBy(b)]);
    return ab.includes(b) || ba.includes(a);
  }

  private followingIds(userId: string): Promise<string[]> {
    return this.d.graph.following(userId, () => this.loadFollowing(userId));
  }

  async canView(viewerId: string, ownerId: string): Promise<boolean> {
    if (viewerId === ownerId) return true;
    const owner = await this.getUser(ownerId);
    if (!owner) return false;
    if (await this.isBlockedEitherWay(viewerId, ownerId)) return false;
    if (!owner.isPrivate) return true;
    return this.d.graph.follows(viewerId, ownerId, () => this.loadFollowing(viewerId));
  }

  /** canView for many owners at once: one user multiget, one block list each, one follow set. */
  async canViewMany(viewerId: string, ownerIds: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    const others = [...new Set(ownerIds)].filter((id) => {
      if (id === viewerId) out.add(id);
      return id !== viewerId && this.validShard(id) !== null;
    });
    if (others.length === 0) return out;
    const owners = await this.getUsers(others);
    const blockLists = await this.d.cache.getOrFillMany(
      [viewerId, ...others].map((id) => 'b:' + id),
      async (missing) => new Map(await Promise.all(missing.map(async (key) => [key, await this.loadBlocks(key.slice(2))] as [string, string]))),
    );
    const blocks = (id: string): string[] => {
      const raw = blockLists.get('b:' + id);
      return raw ? this.decode<string[]>('b:' + id, raw) : [];
    };
    const mine = blocks(viewerId);
    let following: Set<string> | null = null;
    for (const id of others) {
      const owner = owners.get(id);
      if (!owner || mine.includes(id) || blocks(id).includes(viewerId)) continue;
      if (owner.isPrivate) {
        following ??= new Set(await this.followingIds(viewerId));
        if (!following.has(id)) continue;
      }
      out.add(id);
    }
    return out;
  }

  async blockedEitherWay(userId: string): Promise<ReadonlySet<string>> {
    if (this.validShard(userId) === null) return NO_ONE;
    const key = 'bx:' + userId;
    // Both halves live on the user's shard: whom they block (blocks) and who blocks them (blocked_by).
    const raw = await this.d.cache.getOrFill(key, async () => {
      const ids = await this.d.db.read('graph', shardOf(userId), 'block.both-ways', async (sql) => [
        ...(await sql.column<string>('SELECT CAST(target_id AS TEXT) FROM blocks WHERE source_id = ?', BigInt(userId))),
        ...(await sql.column<string>('SELECT CAST(source_id AS TEXT) FROM blocked_by WHERE target_id = ?', BigInt(userId))),
      ], { actorId: userId, avoidStale: true });
      return JSON.stringify([...new Set(ids)]);
    });
    if (!raw || raw === '[]') return NO_ONE;
    const hit = this.blockSets.get(key);
    if (hit && hit.raw === raw) return hit.set;
    const set = new Set(JSON.parse(raw) as string[]);
    if (this.blockSets.size >= DECODE_MEMO_LIMIT) this.blockSets.clear();
    this.blockSets.set(key, { raw, set });
    return set;
  }

  async countByUsers(mediaIds: readonly string[], userIds: ReadonlySet<string>): Promise<Map<string, { likes: number; comments: number }>> {
    const out = new Map<string, { likes: number; comments: number }>();
    const valid = [...new Set(mediaIds)].filter((id) => this.validShard(id) !== null);
    if (valid.length === 0 || userIds.size === 0) return out;
    const users = json([...userIds]);
    for (const [shardId, list] of this.groupByShard(valid)) {
      const counts = await this.d.db.read('photos', shardId, 'media.hidden-counts', async (sql) => {
        const ids = json(list);
        return {
          likes: await sql.all<{ media_id: bigint; n: bigint }>('SELECT media_id, count(*) AS n FROM likes WHERE media_id IN (SELECT CAST(value AS INTEGER) FROM json_each(?)) AND user_id IN (SELECT CAST(value AS INTEGER) FROM json_each(?)) GROUP BY media_id', ids, users),
          comments: await sql.all<{ media_id: bigint; n: bigint }>('SELECT media_id, count(*) AS n FROM comments WHERE media_id IN (SELECT CAST(value AS INTEGER) FROM json_each(?)) AND user_id IN (SELECT CAST(value AS INTEGER) FROM json_each(?)) GROUP BY media_id', ids, users),
        };
      });
      const at = (id: bigint) => {
        const k = str(id);
        return out.get(k) ?? out.set(k, { likes: 0, comments: 0 }).get(k)!;
      };
      for (const r of counts.likes) at(r.media_id).likes = num(r.n);
      for (const r of counts.comments) at(r.media_id).comments = num(r.n);
    }
    return out;
  }

  async getRelationship(viewerId: string, targetId: string): Promise<Relationship> {
    const target = await this.requireUser(targetId);
    const [out, inc, blocks] = await Promise.all([this.edge(viewerId, targetId), this.edge(targetId, viewerId), this.blockedBy(viewerId)]);
    return {
      outgoingStatus: out === 'approved' ? 'follows' : out === 'requested' ? 'requested' : 'none',
      incomingStatus: blocks.includes(targetId) ? 'blocked_by_you' : inc === 'approved' ? 'followed_by' : inc === 'requested' ? 'requested_by' : 'none',
      targetUserIsPrivate: target.isPrivate,
    };
  }

  private async writeEdge(sourceId: string, targetId: string, status: 'approved' | 'requested' | null): Promise<void> {
    const id = this.mintId('follows', shardOf(sourceId));
    const s = shardOf(sourceId);
    const t = shardOf(targetId);
    const src = BigInt(sourceId);
    const dst = BigInt(targetId);
    await this.d.db.write('graph', s, status ? 'follow.write' : 'follow.delete', async (sql) => {
      if (status) await sql.run('INSERT INTO follows (shard_id, source_id, target_id, status, id) VALUES (?,?,?,?,?) ON CONFLICT(source_id, target_id) DO UPDATE SET status = excluded.status', s, src, dst, status, BigInt(id));
      else await sql.run('DELETE FROM follows WHERE source_id = ? AND target_id = ?', src, dst);
    }, { actorId: sourceId });
    await this.d.db.write('graph', t, status ? 'follower.write' : 'follower.delete', async (sql) => {
      if (status) await sql.run('INSERT INTO followers (shard_id, target_id, source_id, status, id) VALUES (?,?,?,?,?) ON CONFLICT(target_id, source_id) DO UPDATE SET status = excluded.status', t, dst, src, status, BigInt(id));
      else await sql.run('DELETE FROM followers WHERE target_id = ? AND source_id = ?', dst, src);
    }, { actorId: sourceId });
  }

  private async activity(recipientId: string, kind: ActivityRecord['kind'], actorId: string, extra: { mediaId?: string; commentId?: string; text?: string } = {}): Promise<void> {
    if (recipientId === actorId) return;
    const shardId = shardOf(recipientId);
    const id = this.mintId('activity', shardId);
    await this.d.db.write('users', shardId, 'activity.write', (sql) =>
      sql.run('INSERT INTO activity (shard_id, id, user_id, kind, actor_id, media_id, comment_id, text, created_ms) VALUES (?,?,?,?,?,?,?,?,?)',
        shardId, BigInt(id), BigInt(recipientId), kind, BigInt(actorId), extra.mediaId ? BigInt(extra.mediaId) : null, extra.commentId ? BigInt(extra.commentId) : null, extra.text ?? null, Math.floor(this.d.clock.nowMs())),
    );
    this.notify(recipientId, kind);
  }

  private async deleteRequestActivity(recipientId: string, actorId: string): Promise<void> {
    await this.d.db.write('users', shardOf(recipientId), 'activity.delete', (sql) => sql.run("DELETE FROM activity WHERE user_id = ? AND actor_id = ? AND kind = 'follow_request'", BigInt(recipientId), BigInt(actorId)));
  }

  /** Removes `ownerId`'s most recent posts from `userId`'s feed (after an unfollow or a block). */
  private async purgeFeed(userId: string, ownerId: string): Promise<void> {
    const rows = await this.d.db.read('photos', shardOf(ownerId), 'media.recent-ids', (sql) => sql.all<{ id: bigint }>('SELECT id FROM media WHERE user_id = ? ORDER BY id DESC LIMIT ?', BigInt(ownerId), FEED_PURGE_LIMIT), { primary: true });
    await Promise.all(rows.map((r) => this.d.feeds.remove([userId], str(r.id))));
  }

  private async approveEdge(sourceId: string, targetId: string): Promise<void> {
    await this.writeEdge(sourceId, targetId, 'approved');
    await Promise.all([this.bumpUserCounts(sourceId, { follows: 1 }), this.bumpUserCounts(targetId, { followedBy: 1 })]);
    await this.d.graph.added(sourceId, targetId);
  }

  private async removeEdge(sourceId: string, targetId: string): Promise<void> {
    const status = await this.edge(sourceId, targetId, true);
    if (!status) return;
    await this.writeEdge(sourceId, targetId, null);
    if (status === 'approved') {
      await Promise.all([this.bumpUserCounts(sourceId, { follows: -1 }), this.bumpUserCounts(targetId, { followedBy: -1 })]);
      await this.d.graph.removed(sourceId, targetId);
      await this.purgeFeed(sourceId, targetId);
    } else {
      await this.deleteRequestActivity(targetId, sourceId);
    }
  }

  async setRelationship(viewerId: string, targetId: string, action: RelationshipAction): Promise<Relationship> {
    if (viewerId === targetId) throw simError('SG_ERR_INVALID_PARAM', 'you cannot change your relationship with yourself');
    const target = await this.requireUser(targetId);
    switch (action) {
      case 'follow': {
        if (await this.isBlockedEitherWay(viewerId, targetId)) throw simError('SG_ERR_NOT_ALLOWED', 'you cannot follow this user');
        if (await this.edge(viewerId, targetId, true)) break;
        if (target.isPrivate) {
          await this.writeEdge(viewerId, targetId, 'requested');
          await this.activity(targetId, 'follow_request', viewerId);
        } else {
          await this.approveEdge(viewerId, targetId);
          await this.activity(targetId, 'follow', viewerId);
        }
        break;
      }
      case 'unfollow':
        await this.removeEdge(viewerId, targetId);
        break;
      case 'approve': {
        // The viewer approves a request that `targetId` sent them.
        if ((await this.edge(targetId, viewerId, true)) !== 'requested') throw simError('SG_ERR_INVALID_PARAM', 'there is no pending request from this user');
        await this.approveEdge(targetId, viewerId);
        await this.deleteRequestActivity(viewerId, targetId);
        await this.activity(viewerId, 'follow', targetId);
        break;
      }
      case 'ignore': {
        if ((await this.edge(targetId, viewerId, true)) !== 'requested') throw simError('SG_ERR_INVALID_PARAM', 'there is no pending request from this user');
        await this.writeEdge(targetId, viewerId, null);
        await this.deleteRequestActivity(viewerId, targetId);
        break;
      }
      case 'block': {
        const s = shardOf(viewerId);
        await this.d.db.write('graph', s, 'block.write', (sql) => sql.run('INSERT OR IGNORE INTO blocks (shard_id, source_id, target_id) VALUES (?,?,?)', s, BigInt(viewerId), BigInt(targetId)), { actorId: viewerId });
        const t = shardOf(targetId);
        await this.d.db.write('graph', t, 'blocked-by.write', (sql) => sql.run('INSERT OR IGNORE INTO blocked_by (shard_id, target_id, source_id) VALUES (?,?,?)', t, BigInt(targetId), BigInt(viewerId)), { actorId: viewerId });
        this.d.cache.delete('b:' + viewerId);
        this.d.cache.delete('bx:' + viewerId);
        this.d.cache.delete('bx:' + targetId);
        // A block ends follows both ways and clears both feeds of the other's posts.
        await this.removeEdge(viewerId, targetId);
        await this.removeEdge(targetId, viewerId);
        await this.purgeFeed(viewerId, targetId);
        await this.purgeFeed(targetId, viewerId);
        break;
      }
      case 'unblock': {
        const s = shardOf(viewerId);
        await this.d.db.write('graph', s, 'block.delete', (sql) => sql.run('DELETE FROM blocks WHERE source_id = ? AND target_id = ?', BigInt(viewerId), BigInt(targetId)), { actorId: viewerId });
        const t = shardOf(targetId);
        await this.d.db.write('graph', t, 'blocked-by.delete', (sql) => sql.run('DELETE FROM blocked_by WHERE target_id = ? AND source_id = ?', BigInt(targetId), BigInt(viewerId)), { actorId: viewerId });
        this.d.cache.delete('b:' + viewerId);
        this.d.cache.delete('bx:' + viewerId);
        this.d.cache.delete('bx:' + targetId);
        break;
      }
      default:
        throw simError('SG_ERR_INVALID_PARAM', `unknown action ${String(action)}`, { field: 'action' });
    }
    return this.getRelationship(viewerId, targetId);
  }

  private async edgePage(table: 'follows' | 'followers', userId: string, status: string, page: PageQuery): Promise<Page<UserRecord>> {
    if (this.validShard(userId) === null) return { items: [], nextMaxId: null };
    const [own, other] = table === 'follows' ? ['source_id', 'target_id'] : ['target_id', 'source_id'];
    const max = page.maxId && isIdString(page.maxId) ? BigInt(page.maxId) : 2n ** 63n - 1n;
    // Users blocked either way with the viewer are left out in the query itself, so pages stay full.
    const hidden = json(page.viewerId ? [...(await this.blockedEitherWay(page.viewerId))] : []);
    const rows = await this.d.db.read('graph', shardOf(userId), `${table}.page`, (sql) =>
      sql.all<{ other: bigint; id: bigint }>(`SELECT ${other} AS other, id FROM ${table} WHERE ${own} = ? AND status = ? AND id < ? AND ${other} NOT IN (SELECT CAST(value AS INTEGER) FROM json_each(?)) ORDER BY id DESC LIMIT ?`, BigInt(userId), status, max, hidden, page.count + 1),
    );
    const more = rows.length > page.count;
    const slice = rows.slice(0, page.count);
    const users = await this.getUsers(slice.map((r) => str(r.other)));
    return {
      items: slice.map((r) => users.get(str(r.other))).filter((u): u is UserRecord => !!u),
      nextMaxId: more ? str(slice[slice.length - 1]!.id) : null,
    };
  }

  listFollows(userId: string, page: PageQuery): Promise<Page<UserRecord>> {
    return this.edgePage('follows', userId, 'approved', page);
  }
  listFollowedBy(userId: string, page: PageQuery): Promise<Page<UserRecord>> {
    return this.edgePage('followers', userId, 'approved', page);
  }
  async listRequestedBy(userId: string): Promise<UserRecord[]> {
    return (await this.edgePage('followers', userId, 'requested', { count: 1000 })).items;
  }

  // ---------------------------------------------------------------- media

  private async resizeJob(mediaId: string, bytes: Buffer, pixels: VariantPixels | null): Promise<void> {
    // Only createMedia queues a resize, with bytes probeAndDecode has just checked: the sizes
    // alone, without makeVariants' second read of the same headers, from the check's own decode
    // when it kept one (images of ordinary proportions), else from the bytes.
    const variants = pixels ? await variantsFromPixels(pixels) : await renderVariants(bytes);
    for (const size of [150, 306, 612] as const) await this.d.blobs.put(`media/${mediaId}/${size}.jpg`, variants[size], 'image/jpeg');
  }

  private async findOrCreateLocation(name: string, lat: number, lng: number): Promise<LocationRecord> {
    const placeKey = `${name.trim().toLowerCase()}@${lat.toFixed(4)},${lng.toFixed(4)}`;
    const shardId = shardForKey(placeKey, this.logical);
    const newId = this.mintId('locations', shardId);
    const row = await this.d.db.write('photos', shardId, 'location.upsert', async (sql) => {
      await sql.run('INSERT OR IGNORE INTO locations (shard_id, id, place_key, name, lat, lng) VALUES (?,?,?,?,?,?)', shardId, BigInt(newId), placeKey, name.trim(), lat, lng);
      return (await sql.get<Row>('SELECT * FROM locations WHERE place_key = ?', placeKey))!;
    });
    const loc = { id: str(row.id), name: str(row.name), lat: num(row.lat), lng: num(row.lng) };
    if (loc.id === newId) this.d.geo?.indexLocation(loc.id, loc.lat, loc.lng);
    return loc;
  }

  /**
   * The location of an upload: the one that already carries one of its external ids, else the
   * place of that name at those coordinates (created if new), which then carries the ids given.
   */
  private async placeOf(input: NewMedia): Promise<LocationRecord | null> {
    const external: Array<[LocationProvider, string]> = [];
    if (input.foursquareId) external.push(['foursquare', input.foursquareId]);
    if (input.foursquareV2Id) external.push(['foursquare_v2', input.foursquareV2Id.toLowerCase()]);
    let location: LocationRecord | null = null;
    for (const [provider, id] of external) location ??= await this.findLocationByExternalId(provider, id);
    if (!location && input.lat !== null && input.lng !== null) location = await this.findOrCreateLocation(input.locationName ?? '', input.lat, input.lng);
    if (!location && external.length > 0) throw simError('SG_ERR_INVALID_PARAM', 'an unknown place id needs lat, lng and location_name', { field: 'lat' });
    if (location) for (const [provider, id] of external) await this.tagLocation(location.id, provider, id);
    return location;
  }

  /** Records that `locationId` carries an external id (the first location to claim an id keeps it). */
  async tagLocation(locationId: string, provider: LocationProvider, externalId: string): Promise<void> {
    const key = `${provider}:${externalId}`;
    const s = shardForKey(key, this.logical);
    await this.d.db.write('photos', s, 'location.external-id', (sql) =>
      sql.run('INSERT OR IGNORE INTO location_external_ids (shard_id, provider, external_id, location_id) VALUES (?,?,?,?)', s, provider, externalId, BigInt(locationId)));
  }

  async findLocationByExternalId(provider: LocationProvider, externalId: string): Promise<LocationRecord | null> {
    const s = shardForKey(`${provider}:${externalId}`, this.logical);
    const row = await this.d.db.read('photos', s, 'location.by-external-id', (sql) =>
      sql.get<{ location_id: bigint }>('SELECT location_id FROM location_external_ids WHERE provider = ? AND external_id = ?', provider, externalId), { avoidStale: true });
    return row ? this.getLocation(str(row.location_id)) : null;
  }

  async createMedia(input: NewMedia): Promise<MediaRecord> {
    const { userId } = input;
    const owner = await this.requireUser(userId);
    const { pixels } = await probeAndDecode(input.image, this.d.config.blobs.maxUploadBytes);
    if ((input.lat === null) !== (input.lng === null)) throw simError('SG_ERR_INVALID_PARAM', 'lat and lng go together', { field: input.lat === null ? 'lat' : 'lng' });
    if (input.lat !== null && (!(input.lat >= -90 && input.lat <= 90) || !(input.lng! >= -180 && input.lng! <= 180))) throw simError('SG_ERR_INVALID_PARAM', 'lat must be in [-90, 90] and lng in [-180, 180]', { field: 'lat' });
    const shardId = shardOf(userId);
    const id = this.mintId('media', shardId);
    // Resizing is a queued job (the worker pool bounds concurrent resizes); the post waits for it
    // so that a media object never points at bytes that are not there yet.
    // The decoded pixels (1.1 MB at 612 px) travel only by reference; through a broker the job
    // carries the upload's bytes and decodes them again.
    await this.d.queue.submit('resize', { mediaId: id, bytes: input.image, pixels: this.d.queue.inProcess ? pixels : null });
    const location = await this.placeOf(input);
    const tags = parseTags(input.caption);
    const now = Math.floor(this.d.clock.nowMs());
    const captionId = input.caption ? this.mintId('comments', shardId) : null;
    const images = {
      thumbnail: { key: `media/${id}/150.jpg`, width: 150, height: 150 },
      lowResolution: { key: `media/${id}/306.jpg`, width: 306, height: 306 },
      standardResolution: { key: `media/${id}/612.jpg`, width: 612, height: 612 },
    };
    await this.d.db.write('photos', shardId, 'media.create', (sql) =>
      sql.run('INSERT INTO media (shard_id, id, user_id, caption, caption_id, created_ms, filter, tags, location_id, location_name, lat, lng, images) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)',
        shardId, BigInt(id), BigInt(userId), input.caption, captionId ? BigInt(captionId) : null, now, input.filter || 'Normal', JSON.stringify(tags),
        location ? BigInt(location.id) : null, location?.name ?? null, location?.lat ?? null, location?.lng ?? null, JSON.stringify(images)),
    { actorId: userId });
    for (const tag of tags) {
      const ts = shardForKey(tag, this.logical);
      await this.d.db.write('photos', ts, 'tag.add', async (sql) => {
        if ((await sql.run('INSERT OR IGNORE INTO tag_media (shard_id, tag, media_id) VALUES (?,?,?)', ts, tag, BigInt(id))).changes > 0) {
          await sql.run('INSERT INTO tags (shard_id, name, media_count) VALUES (?,?,1) ON CONFLICT(name) DO UPDATE SET media_count = media_count + 1', ts, tag);
        }
      });
    }
    if (location) {
      const ls = shardOf(location.id);
      await this.d.db.write('photos', ls, 'location.add-media', (sql) => sql.run('INSERT OR IGNORE INTO location_media (shard_id, location_id, media_id, created_ms) VALUES (?,?,?,?)', ls, BigInt(location.id), BigInt(id), now));
      if (this.d.geo) {
        const job: GeoIndexJob = { mediaId: id, lat: location.lat, lng: location.lng, createdMs: now };
        const done = this.d.queue.submit('geo-index', job);
        // Journaled before the post is answered; the job cannot run before this turn ends.
        const entry = this.d.journal.begin('geo-index', job);
        const end = () => this.d.journal.end(entry);
        // A job abandoned by a closing queue may still run: its entry stays for the next start.
        done.then(end, (err: unknown) => (jobAbandoned(err) ? undefined : end()));
      }
    }
    await this.bumpUserCounts(userId, { media: 1 });
    this.d.cache.delete('r:' + userId);
    // The owner sees the post at once; followers get it through the queue.
    await this.d.feeds.push([userId], id);
    await this.startFanout(id, owner, now);
    const media = (await this.getMediaMany([id], { actorId: userId })).get(id)!;
    for (const listener of this.postListeners) {
      try {
        listener(media, owner);
      } catch {
        // A listener's failure (a full queue) never fails the post; listeners count their own.
      }
    }
    return media;
  }

  private async startFanout(mediaId: string, owner: UserRecord, postedMs: number): Promise<void> {
    const mode = this.d.config.feed.fanout;
    if (mode === 'pull') {
      this.d.metrics.inc('fanout_posts', { mode: 'pull' });
      return;
    }
    if (mode === 'hybrid' && owner.counts.followedBy >= this.d.config.feed.hybridThreshold) {
      this.d.metrics.inc('fanout_posts', { mode: 'hybrid-pulled' });
      // This post is in no follower's list, so readers must keep pulling the account even if it
      // later drops below the threshold.
      const s = shardOf(owner.id);
      await this.d.db.write('users', s, 'user.pulled-post', (sql) => sql.run('UPDATE users SET pulled_posts = pulled_posts + 1 WHERE id = ?', BigInt(owner.id)));
      this.d.cache.delete('u:' + owner.id);
      return;
    }
    this.d.metrics.inc('fanout_posts', { mode: mode === 'push' ? 'push' : 'hybrid-pushed' });
    this.fanOut({ mediaId, ownerId: owner.id, postedMs }, { entry: null, replay: false });
  }

  /**
   * Queues the fan-out of a post. A new one (entry null) is written to the job journal before the
   * post is answered; the entry is ended when the last chunk has landed, so a kill at any point
   * in between leaves it for the next start to run again.
   */
  private fanOut(job: FanoutPromise, how: { entry: number | null; replay: boolean; settled?: () => void }): void {
    const id = this.nextFanout++;
    const tracker: Tracker = { id, postedMs: job.postedMs, chunks: 0, done: 0, planned: false, size: 0, entry: how.entry, replay: how.replay, ...(how.settled ? { settled: how.settled } : {}) };
    this.fanouts.set(id, tracker);
    const plan: FanoutPlanJob = { mediaId: job.mediaId, ownerId: job.ownerId, postedMs: job.postedMs, fanout: id, origin: this.origin, replay: how.replay };
    let planned: Promise<unknown>;
    try {
      planned = this.d.queue.submit('fanout', plan);
    } catch (err) {
      this.fanouts.delete(id);
      throw err;
    }
    tracker.entry ??= this.d.journal.begin('fanout', job);
    planned.catch((err: unknown) => {
      if (jobAbandoned(err)) return; // may still run: the fan-out (and its journal entry) stays open
      // Chunks already queued still land; those never planned are lost, counted, not retried.
      this.d.metrics.inc('fanout_failures');
      this.settleFanout(tracker);
    });
  }

  private settleFanout(t: Tracker): void {
    this.fanouts.delete(t.id);
    if (t.entry !== null) this.d.journal.end(t.entry);
    t.entry = null;
    const settled = t.settled;
    t.settled = undefined;
    settled?.();
  }

  /** Reads the owner's approved followers in chunks and queues one delivery job per chunk. */
  private async fanoutPlanJob(p: FanoutPlanJob, job: JobInfo): Promise<void> {
    const { mediaId, ownerId } = p;
    const tracker = (p.origin === this.origin ? this.fanouts.get(p.fanout) : undefined) ?? { id: 0, postedMs: p.postedMs, chunks: 0, done: 0, planned: false, size: 0, entry: null, replay: true };
    // Planned before by a worker that died: some of its chunks may have landed.
    if (job.redelivered) tracker.replay = true;
    const chunk = this.d.config.feed.chunkSize;
    let cursor = 2n ** 63n - 1n;
    const shardId = shardOf(ownerId);
    for (let round = 0; ; round++) {
      if (round > 1_000_000) throw simError('SG_ERR_BUDGET_EXHAUSTED', 'fan-out planning exceeded its budget');
      // Ids come back as text (no bigint per row); the cursor is the last row's follow id.
      const page = await this.d.db.read('graph', shardId, 'follower.fanout-page', async (sql) => {
        const ids = await sql.column<string>("SELECT CAST(source_id AS TEXT) FROM followers WHERE target_id = ? AND status = 'approved' AND id < ? ORDER BY id DESC LIMIT ?", BigInt(ownerId), cursor, chunk);
        const last = ids.length ? await sql.get<{ id: bigint }>('SELECT id FROM followers WHERE target_id = ? AND source_id = ?', BigInt(ownerId), BigInt(ids[ids.length - 1]!)) : undefined;
        return { ids, last: last?.id };
      }, { primary: true });
      const rows = page.ids;
      if (rows.length === 0 || page.last === undefined) break;
      cursor = page.last;
      tracker.chunks++;
      tracker.size += rows.length;
      const userIds = rows;
      const delivery: DeliveryJob = { mediaId, userIds, replay: tracker.replay };
      this.d.queue.submit('fanout-chunk', delivery).then(
        (n) => {
          // Counted here, not where it ran: a worker process's counts are its own.
          this.d.metrics.inc('fanout_deliveries', {}, typeof n === 'number' ? n : 0);
          tracker.done++;
          this.finishFanoutIfDone(tracker);
        },
        (err: unknown) => {
          // Not known to have ended (the queue closed or lost its broker): the fan-out stays open,
          // its journal entry too, for the next start to run again.
          if (jobAbandoned(err)) return;
          this.d.metrics.inc('fanout_failures');
          tracker.done++;
          this.finishFanoutIfDone(tracker);
        },
      );
      if (rows.length < chunk) break;
    }
    tracker.planned = true;
    this.finishFanoutIfDone(tracker);
  }

  private finishFanoutIfDone(t: Tracker): void {
    if (!t.planned || t.done < t.chunks) return;
    t.planned = false; // record once
    const lag = this.d.clock.nowMs() - t.postedMs;
    this.d.metrics.observe('fanout_lag_ms', {}, lag);
    this.d.metrics.observe('fanout_size', {}, t.size);
    this.d.metrics.inc('fanout_completed');
    this.settleFanout(t);
  }

  private mediaFromRows(r: Row, likers: string[], comments: CommentRecord[]): MediaRecord {
    const id = str(r.id);
    const images = JSON.parse(str(r.images)) as MediaRecord['images'];
    const createdMs = num(r.created_ms);
    return {
      id,
      userId: str(r.user_id),
      shortcode: toShortcode(id),
      caption: r.caption === null ? null : { id: str(r.caption_id), mediaId: id, userId: str(r.user_id), text: str(r.caption), createdMs },
      createdMs,
      filter: str(r.filter),
      tags: JSON.parse(str(r.tags)) as string[],
      location: r.location_id === null ? null : { id: str(r.location_id), name: str(r.location_name), lat: num(r.lat), lng: num(r.lng) },
      likeCount: num(r.like_count),
      commentCount: num(r.comment_count),
      images,
      recentLikerIds: likers,
      recentComments: comments,
    };
  }

  async getMedia(id: string): Promise<MediaRecord | null> {
    return (await this.getMediaMany([id])).get(id) ?? null;
  }

  async getMediaMany(ids: readonly string[], opts: { actorId?: string } = {}): Promise<Map<string, MediaRecord>> {
    const found = await this.d.cache.getOrFillMany(
      this.cacheKeys('m:', ids),
      async (missing) => {
        const out = new Map<string, string>();
        for (const [shardId, list] of this.groupByShard(missing.map((k) => k.slice(2)))) {
          // The 4 latest likes and 8 latest comments of each media: one index seek each (a window
          // over the ids read every like of a media, and a media being liked is read again after
          // each like). Ids go in as text, as in json_each, so the read's subject is unchanged.
          const q = (ids: string[]) => async (sql: Sql) => {
            const likes: Array<{ media_id: bigint; user_id: bigint }> = [];
            const comments: Row[] = [];
            for (const id of ids) {
              likes.push(...(await sql.all<{ media_id: bigint; user_id: bigint }>('SELECT media_id, user_id FROM likes WHERE media_id = CAST(? AS INTEGER) ORDER BY id DESC LIMIT 4', id)));
              comments.push(...(await sql.all('SELECT * FROM comments WHERE media_id = CAST(? AS INTEGER) ORDER BY id DESC LIMIT 8', id)).reverse());
            }
            return { rows: await sql.all('SELECT * FROM media WHERE id IN (SELECT CAST(value AS INTEGER) FROM json_each(?))', json(ids)), likes, comments };
          };
          const { rows, likes, comments } = await this.d.db.read('photos', shardId, 'media.get', q(list), { ...opts, avoidStale: true });
          if (rows.length < list.length) {
            const more = await this.d.db.read('photos', shardId, 'media.get-primary', q(this.missingIds(list, rows)), { primary: true });
            rows.push(...more.rows);
            likes.push(...more.likes);
            comments.push(...more.comments);
          }
          const likeMap = new Map<string, string[]>();
          for (const l of likes) {
            const k = str(l.media_id);
            (likeMap.get(k) ?? likeMap.set(k, []).get(k)!).push(str(l.user_id));
          }
          const commentMap = new Map<string, CommentRecord[]>();
          for (const c of comments) {
            const k = str(c.media_id);
            (commentMap.get(k) ?? commentMap.set(k, []).get(k)!).push(this.commentFromRow(c));
          }
          for (const r of rows) {
            const id = str(r.id);
            out.set('m:' + id, JSON.stringify(this.mediaFromRows(r, likeMap.get(id) ?? [], commentMap.get(id) ?? [])));
          }
        }
        return out;
      },
    );
    const result = new Map<string, MediaRecord>();
    for (const [k, v] of found) result.set(k.slice(2), this.decode<MediaRecord>(k, v));
    return result;
  }

  /** Media for ids, in the order given, skipping any that no longer exist. */
  private async mediaInOrder(ids: readonly string[]): Promise<MediaRecord[]> {
    const m = await this.getMediaMany(ids);
    return ids.map((id) => m.get(id)).filter((x): x is MediaRecord => !!x);
  }

  private commentFromRow(c: Row): CommentRecord {
    return { id: str(c.id), mediaId: str(c.media_id), userId: str(c.user_id), text: str(c.text), createdMs: num(c.created_ms) };
  }

  async deleteMedia(id: string, byUserId: string): Promise<void> {
    const media = await this.getMedia(id);
    if (!media) throw simError('SG_ERR_NOT_FOUND', `media ${id} does not exist`);
    if (media.userId !== byUserId) throw simError('SG_ERR_NOT_ALLOWED', 'only the owner can delete this media');
    const shardId = shardOf(id);
    const likers = await this.d.db.write('photos', shardId, 'media.delete', async (sql) => {
      const ls = (await sql.all<{ user_id: bigint }>('SELECT user_id FROM likes WHERE media_id = ?', BigInt(id))).map((r) => str(r.user_id));
      await sql.run('DELETE FROM likes WHERE media_id = ?', BigInt(id));
      await sql.run('DELETE FROM comments WHERE media_id = ?', BigInt(id));
      await sql.run('DELETE FROM media WHERE id = ?', BigInt(id));
      return ls;
    }, { actorId: byUserId });
    this.d.cache.delete('m:' + id);
    this.d.cache.delete('r:' + media.userId);
    for (const [s, list] of this.groupByShard(likers)) {
      await this.d.db.write('photos', s, 'user-like.delete', async (sql) => {
        for (const u of list) await sql.run('DELETE FROM user_likes WHERE user_id = ? AND media_id = ?', BigInt(u), BigInt(id));
      });
    }
    for (const tag of media.tags) {
      const ts = shardForKey(tag, this.logical);
      await this.d.db.write('photos', ts, 'tag.remove', async (sql) => {
        if ((await sql.run('DELETE FROM tag_media WHERE tag = ? AND media_id = ?', tag, BigInt(id))).changes > 0) await sql.run('UPDATE tags SET media_count = max(0, media_count - 1) WHERE name = ?', tag);
      });
    }
    if (media.location) {
      const ls = shardOf(media.location.id);
      await this.d.db.write('photos', ls, 'location.remove-media', (sql) => sql.run('DELETE FROM location_media WHERE location_id = ? AND media_id = ?', BigInt(media.location!.id), BigInt(id)));
      this.d.geo?.removeMedia(id);
    }
    await this.bumpUserCounts(media.userId, { media: -1 });
    for (const size of [150, 306, 612]) await this.d.blobs.delete(`media/${id}/${size}.jpg`);
    await this.d.feeds.remove([media.userId], id);
    this.popular = null;
  }

  async listUserMedia(userId: string, page: PageQuery & TimeRange): Promise<Page<MediaRecord>> {
    if (this.validShard(userId) === null) return { items: [], nextMaxId: null };
    let max = page.maxId && isIdString(page.maxId) ? BigInt(page.maxId) : 2n ** 63n - 1n;
    let min = page.minId && isIdString(page.minId) ? BigInt(page.minId) : -1n;
    // Ids begin with their timestamp, so a time window is an id range.
    if (page.maxTimestamp !== undefined) {
      const hi = minIdAt((page.maxTimestamp + 1) * 1000, this.d.config.idEpochMs);
      if (hi < max) max = hi;
    }
    if (page.minTimestamp !== undefined) {
      const lo = minIdAt(page.minTimestamp * 1000, this.d.config.idEpochMs) - 1n;
      if (lo > min) min = lo;
    }
    const rows = await this.d.db.read('photos', shardOf(userId), 'media.by-user', (sql) =>
      sql.all<{ id: bigint }>('SELECT id FROM media WHERE user_id = ? AND id < ? AND id > ? ORDER BY id DESC LIMIT ?', BigInt(userId), max, min, page.count + 1), { actorId: userId });
    return this.pageOf(rows.map((r) => str(r.id)), page.count);
  }

  private async pageOf(ids: string[], count: number): Promise<Page<MediaRecord>> {
    const more = ids.length > count;
    const slice = ids.slice(0, count);
    return { items: await this.mediaInOrder(slice), nextMaxId: more ? slice[slice.length - 1]! : null };
  }

  /** The most recent media ids of many users (cached per user), for pull and hybrid feeds. */
  private async recentIds(userIds: readonly string[]): Promise<Map<string, string[]>> {
    const found = await this.d.cache.getOrFillMany(
      userIds.map((u) => 'r:' + u),
      async (missing) => {
        const out = new Map<string, string>();
        for (const [shardId, list] of this.groupByShard(missing.map((k) => k.slice(2)))) {
          const rows = await this.d.db.read('photos', shardId, 'media.recent-by-users', (sql) =>
            sql.all<{ user_id: bigint; id: bigint }>('SELECT user_id, id FROM (SELECT user_id, id, row_number() OVER (PARTITION BY user_id ORDER BY id DESC) AS rn FROM media WHERE user_id IN (SELECT CAST(value AS INTEGER) FROM json_each(?))) WHERE rn <= ? ORDER BY id DESC', json(list), RECENT_PER_USER), { avoidStale: true });
          const per = new Map<string, string[]>(list.map((u) => [u, []]));
          for (const r of rows) per.get(str(r.user_id))?.push(str(r.id));
          for (const [u, ids] of per) out.set('r:' + u, JSON.stringify(ids));
        }
        return out;
      },
    );
    const result = new Map<string, string[]>();
    for (const [k, v] of found) result.set(k.slice(2), this.decode<string[]>(k, v));
    return result;
  }

  async getFeed(userId: string, page: PageQuery): Promise<Page<MediaRecord>> {
    // Pull and hybrid feeds merge in the recent posts of followed accounts, read once per request.
    const pulled: { lists: Promise<Map<string, string[]> | null> | null } = { lists: null };
    // Fan-out reaches approved followers only and unfollows and blocks purge the feed, so the
    // feed is not checked per owner (its hottest read); what is dropped is deleted media and, as a
    // guard against a delivery racing a block, users blocked either way (one cached set).
    // (The batch reader is an inline arrow and the rest methods: the TypeScript loader names every
    // closure bound to a name, a defineProperty each, on the hottest read.)
    return this.mediaPage('feed', { ...page, viewerId: userId }, (after, limit) => this.feedBatch(userId, pulled, after, limit), 'not-blocked');
  }

  /** Up to `limit` ids of `userId`'s feed after `after`, with the pulled posts merged in (pull and hybrid). */
  private async feedBatch(userId: string, pulled: { lists: Promise<Map<string, string[]> | null> | null }, after: string | undefined, limit: number): Promise<ScanBatch<MediaRow>> {
    const mode = this.d.config.feed.fanout;
    let ids = await this.d.feeds.range(userId, limit, after);
    let exhausted = ids.length < limit;
    if (mode !== 'push') {
      const recent = await (pulled.lists ??= this.pullLists(userId, mode));
      if (recent) {
        const merged = new Set(ids);
        for (const list of recent.values()) for (const id of list) if (!after || idLess(id, after)) merged.add(id);
        const all = [...merged].sort(byIdDesc);
        // The list's own end is only the end once every pulled id below it is taken too.
        exhausted = exhausted && all.length <= limit;
        ids = all.slice(0, limit);
      }
    }
    return { rows: ids.map((id) => ({ cursor: id, id })), exhausted };
  }

  /** The recent ids of the accounts `userId`'s feed pulls from (pull: all it follows; hybrid: the big ones), or null when none. */
  private async pullLists(userId: string, mode: 'pull' | 'hybrid'): Promise<Map<string, string[]> | null> {
    let pullFrom = await this.followingIds(userId);
    if (mode === 'hybrid') {
      const users = await this.getUsers(pullFrom);
      pullFrom = pullFrom.filter((u) => {
        const f = users.get(u);
        return !!f && (f.counts.followedBy >= this.d.config.feed.hybridThreshold || f.pulledPosts > 0);
      });
    }
    if (pullFrom.length === 0) return null;
    this.d.metrics.inc('feed_pull_merges', { mode });
    return this.recentIds(pullFrom);
  }

  /** For each row, its media if it still exists and the viewer may see it under `rule`. */
  private keepMedia(viewerId: string | undefined, rule: 'visible' | 'not-blocked' | 'public') {
    return async (rows: readonly MediaRow[]): Promise<Array<MediaRecord | null>> => {
      const media = await this.getMediaMany(rows.map((r) => r.id));
      let allowed: ReadonlySet<string> | null = null;
      let blocked: ReadonlySet<string> = NO_ONE;
      if (rule === 'public' && !viewerId) {
        const users = await this.getUsers(ownersOf(media));
        allowed = new Set([...users.values()].filter((u) => !u.isPrivate).map((u) => u.id));
      } else if (viewerId && rule === 'not-blocked') {
        blocked = await this.blockedEitherWay(viewerId);
      } else if (viewerId && media.size > 0) {
        allowed = await this.canViewMany(viewerId, ownersOf(media));
      }
      return rows.map((r) => {
        const m = media.get(r.id);
        if (!m || blocked.has(m.userId) || (allowed && !allowed.has(m.userId))) return null;
        return m;
      });
    };
  }

  /** A page of a media list, filled past hidden and deleted media (sim/domain/page-scan.ts). */
  private async mediaPage(list: string, page: PageQuery, fetch: (after: string | undefined, limit: number) => Promise<ScanBatch<MediaRow>>, rule: 'visible' | 'not-blocked' | 'public' = 'visible'): Promise<Page<MediaRecord>> {
    const r = await scanVisible({ count: page.count, after: page.maxId && isIdString(page.maxId) ? page.maxId : undefined, fetch, keep: this.keepMedia(page.viewerId, rule) });
    this.noteScan(list, r);
    return { items: r.items, nextMaxId: r.nextCursor };
  }

  private noteScan(list: string, r: ScanResult<unknown>): void {
    if (r.budgetSpent) this.d.metrics.inc('list_scan_budget_exhausted', { list });
  }

  /** Geo-index rows after `after` (ids below it, newest first), as a scan batch. */
  private geoFetch(q: { lat: number; lng: number; distanceM: number; minId?: string | undefined } & TimeRange) {
    return async (after: string | undefined, limit: number): Promise<ScanBatch<MediaRow>> => {
      const geo = this.d.geo;
      if (!geo) return { rows: [], exhausted: true };
      const ids = geo.searchMedia({
        lat: q.lat, lng: q.lng, distanceM: q.distanceM, limit, beforeId: after ?? MAX_ID_TEXT,
        ...(q.minId !== undefined ? { afterId: q.minId } : {}),
        ...(q.minTimestamp !== undefined ? { minMs: q.minTimestamp * 1000 } : {}),
        ...(q.maxTimestamp !== undefined ? { maxMs: q.maxTimestamp * 1000 + 999 } : {}),
      });
      return { rows: ids.map((id) => ({ cursor: id, id })), exhausted: ids.length < limit };
    };
  }

  async searchMedia(q: { lat: number; lng: number; distanceM: number; count: number; viewerId?: string } & TimeRange): Promise<MediaRecord[]> {
    return (await this.mediaPage('media-search', { count: q.count, ...(q.viewerId ? { viewerId: q.viewerId } : {}) }, this.geoFetch(q))).items;
  }

  async listMediaNear(point: { lat: number; lng: number; radiusM: number }, page: PageQuery): Promise<Page<MediaRecord>> {
    return this.mediaPage('geography', page, this.geoFetch({ lat: point.lat, lng: point.lng, distanceM: point.radiusM, minId: page.minId }), 'public');
  }

  async popularMedia(count: number, viewerId?: string): Promise<MediaRecord[]> {
    const now = this.d.clock.nowMs();
    if (!this.popular || now - this.popular.atMs > POPULAR_TTL_MS) {
      const since = Math.floor(now - POPULAR_WINDOW_MS);
      const parts = await this.d.db.scatter('photos', 'media.popular', (sql) =>
        sql.all<{ id: bigint; like_count: bigint }>('SELECT id, like_count FROM media WHERE created_ms >= ? ORDER BY like_count DESC, id DESC LIMIT 100', since));
      const top = parts.flat().sort((a, b) => Number(b.like_count - a.like_count) || (a.id < b.id ? 1 : -1)).slice(0, 100);
      this.popular = { atMs: now, ids: top.map((r) => str(r.id)) };
    }
    // The page is filled from the top list, read in batches past what the viewer may not see.
    const top = this.popular.ids;
    const r = await scanVisible({
      count,
      fetch: async (after, limit) => {
        const start = after === undefined ? 0 : Number(after) + 1;
        const rows = top.slice(start, start + limit).map((id, i) => ({ cursor: String(start + i), id }));
        return { rows, exhausted: start + limit >= top.length };
      },
      keep: this.keepMedia(viewerId, 'visible'),
    });
    return r.items;
  }

  // ---------------------------------------------------------------- likes and comments

  private async requireMedia(id: string): Promise<MediaRecord> {
    const m = await this.getMedia(id);
    if (!m) throw simError('SG_ERR_NOT_FOUND', `media ${id} does not exist`);
    return m;
  }

  async like(mediaId: string, userId: string): Promise<void> {
    const media = await this.requireMedia(mediaId);
    const shardId = shardOf(mediaId);
    const likeId = this.mintId('likes', shardId);
    const added = await this.d.db.write('photos', shardId, 'like.add', async (sql) => {
      if ((await sql.run('INSERT OR IGNORE INTO likes (shard_id, media_id, user_id, id, created_ms) VALUES (?,?,?,?,?)', shardId, BigInt(mediaId), BigInt(userId), BigInt(likeId), Math.floor(this.d.clock.nowMs()))).changes === 0) return false;
      await sql.run('UPDATE media SET like_count = like_count + 1 WHERE id = ?', BigInt(mediaId));
      return true;
    }, { actorId: userId });
    if (!added) return;
    this.d.cache.delete('m:' + mediaId);
    const us = shardOf(userId);
    await this.d.db.write('photos', us, 'user-like.add', (sql) => sql.run('INSERT OR IGNORE INTO user_likes (shard_id, user_id, media_id, like_id) VALUES (?,?,?,?)', us, BigInt(userId), BigInt(mediaId), BigInt(likeId)), { actorId: userId });
    await this.activity(media.userId, 'like', userId, { mediaId });
  }

  async unlike(mediaId: string, userId: string): Promise<void> {
    await this.requireMedia(mediaId);
    const shardId = shardOf(mediaId);
    const removed = await this.d.db.write('photos', shardId, 'like.remove', async (sql) => {
      if ((await sql.run('DELETE FROM likes WHERE media_id = ? AND user_id = ?', BigInt(mediaId), BigInt(userId))).changes === 0) return false;
      await sql.run('UPDATE media SET like_count = max(0, like_count - 1) WHERE id = ?', BigInt(mediaId));
      return true;
    }, { actorId: userId });
    if (!removed) return;
    this.d.cache.delete('m:' + mediaId);
    const us = shardOf(userId);
    await this.d.db.write('photos', us, 'user-like.remove', (sql) => sql.run('DELETE FROM user_likes WHERE user_id = ? AND media_id = ?', BigInt(userId), BigInt(mediaId)), { actorId: userId });
  }

  async listLikers(mediaId: string, count: number, viewerId?: string): Promise<UserRecord[]> {
    await this.requireMedia(mediaId);
    const hidden = json(viewerId ? [...(await this.blockedEitherWay(viewerId))] : []);
    const rows = await this.d.db.read('photos', shardOf(mediaId), 'like.list', (sql) =>
      sql.all<{ user_id: bigint }>('SELECT user_id FROM likes WHERE media_id = ? AND user_id NOT IN (SELECT CAST(value AS INTEGER) FROM json_each(?)) ORDER BY id DESC LIMIT ?', BigInt(mediaId), hidden, count));
    const users = await this.getUsers(rows.map((r) => str(r.user_id)));
    return rows.map((r) => users.get(str(r.user_id))).filter((u): u is UserRecord => !!u);
  }

  async hasLiked(userId: string, mediaIds: readonly string[]): Promise<Set<string>> {
    const valid = mediaIds.filter(isIdString);
    if (valid.length === 0 || this.validShard(userId) === null) return new Set();
    // One range scan of the (user_id, media_id) key between the page's lowest and highest id.
    let lo = valid[0]!;
    let hi = valid[0]!;
    for (const id of valid) {
      if (idLess(id, lo)) lo = id;
      if (idLess(hi, id)) hi = id;
    }
    const wanted = new Set(valid);
    const rows = await this.d.db.read('photos', shardOf(userId), 'user-like.check', (sql) =>
      sql.all<{ media_id: bigint }>('SELECT media_id FROM user_likes WHERE user_id = ? AND media_id BETWEEN ? AND ?', BigInt(userId), BigInt(lo), BigInt(hi)), { actorId: userId });
    const out = new Set<string>();
    for (const r of rows) {
      const id = str(r.media_id);
      if (wanted.has(id)) out.add(id);
    }
    return out;
  }

  async listLikedMedia(userId: string, page: PageQuery): Promise<Page<MediaRecord>> {
    if (this.validShard(userId) === null) return { items: [], nextMaxId: null };
    // Paged by like id (most recent like first); the cursor is the like's id, not the media's.
    return this.mediaPage('liked', page, async (after, limit) => {
      const rows = await this.d.db.read('photos', shardOf(userId), 'user-like.page', (sql) =>
        sql.all<{ media_id: bigint; like_id: bigint }>('SELECT media_id, like_id FROM user_likes WHERE user_id = ? AND like_id < ? ORDER BY like_id DESC LIMIT ?', BigInt(userId), BigInt(after ?? MAX_ID_TEXT), limit), { actorId: userId });
      return { rows: rows.map((r) => ({ cursor: str(r.like_id), id: str(r.media_id) })), exhausted: rows.length < limit };
    });
  }

  async addComment(mediaId: string, userId: string, text: string): Promise<CommentRecord> {
    const media = await this.requireMedia(mediaId);
    const body = String(text ?? '').trim();
    if (body.length === 0 || body.length > 2200) throw simError('SG_ERR_INVALID_PARAM', 'comment text must be 1-2200 characters', { field: 'text' });
    const shardId = shardOf(mediaId);
    const id = this.mintId('comments', shardId);
    const now = Math.floor(this.d.clock.nowMs());
    await this.d.db.write('photos', shardId, 'comment.add', async (sql) => {
      await sql.run('INSERT INTO comments (shard_id, id, media_id, user_id, text, created_ms) VALUES (?,?,?,?,?,?)', shardId, BigInt(id), BigInt(mediaId), BigInt(userId), body, now);
      await sql.run('UPDATE media SET comment_count = comment_count + 1 WHERE id = ?', BigInt(mediaId));
    }, { actorId: userId });
    this.d.cache.delete('m:' + mediaId);
    await this.activity(media.userId, 'comment', userId, { mediaId, commentId: id, text: body });
    return { id, mediaId, userId, text: body, createdMs: now };
  }

  async deleteComment(mediaId: string, commentId: string, byUserId: string): Promise<void> {
    const media = await this.requireMedia(mediaId);
    if (!isIdString(commentId)) throw simError('SG_ERR_NOT_FOUND', `comment ${commentId} does not exist`);
    const shardId = shardOf(mediaId);
    await this.d.db.write('photos', shardId, 'comment.delete', async (sql) => {
      const c = await sql.get<{ user_id: bigint }>('SELECT user_id FROM comments WHERE id = ? AND media_id = ?', BigInt(commentId), BigInt(mediaId));
      if (!c) throw simError('SG_ERR_NOT_FOUND', `comment ${commentId} does not exist`);
      if (str(c.user_id) !== byUserId && media.userId !== byUserId) throw simError('SG_ERR_NOT_ALLOWED', 'only the author or the media owner can delete this comment');
      await sql.run('DELETE FROM comments WHERE id = ?', BigInt(commentId));
      await sql.run('UPDATE media SET comment_count = max(0, comment_count - 1) WHERE id = ?', BigInt(mediaId));
    }, { actorId: byUserId });
    this.d.cache.delete('m:' + mediaId);
  }

  async listComments(mediaId: string, count: number, viewerId?: string): Promise<CommentRecord[]> {
    await this.requireMedia(mediaId);
    const hidden = json(viewerId ? [...(await this.blockedEitherWay(viewerId))] : []);
    const rows = await this.d.db.read('photos', shardOf(mediaId), 'comment.list', (sql) =>
      sql.all('SELECT * FROM (SELECT * FROM comments WHERE media_id = ? AND user_id NOT IN (SELECT CAST(value AS INTEGER) FROM json_each(?)) ORDER BY id DESC LIMIT ?) ORDER BY id', BigInt(mediaId), hidden, count));
    return rows.map((r) => this.commentFromRow(r));
  }

  // ---------------------------------------------------------------- tags and locations

  async getTag(name: string): Promise<{ name: string; mediaCount: number } | null> {
    const tag = name.toLowerCase();
    const r = await this.d.db.read('photos', shardForKey(tag, this.logical), 'tag.get', (sql) => sql.get<{ media_count: bigint }>('SELECT media_count FROM tags WHERE name = ?', tag));
    return r ? { name: tag, mediaCount: num(r.media_count) } : null;
  }

  async listTagMedia(name: string, page: PageQuery): Promise<Page<MediaRecord>> {
    const tag = name.toLowerCase();
    const min = page.minId && isIdString(page.minId) ? BigInt(page.minId) : -1n;
    return this.mediaPage('tag', page, async (after, limit) => {
      const rows = await this.d.db.read('photos', shardForKey(tag, this.logical), 'tag.media', (sql) =>
        sql.column<string>('SELECT CAST(media_id AS TEXT) FROM tag_media WHERE tag = ? AND media_id < ? AND media_id > ? ORDER BY media_id DESC LIMIT ?', tag, BigInt(after ?? MAX_ID_TEXT), min, limit));
      return { rows: rows.map((id) => ({ cursor: id, id })), exhausted: rows.length < limit };
    });
  }

  async searchTags(query: string, count: number): Promise<Array<{ name: string; mediaCount: number }>> {
    const q = query.toLowerCase().replace(/^#/, '');
    if (!q) return [];
    const hi = q.slice(0, -1) + String.fromCharCode(q.charCodeAt(q.length - 1) + 1);
    const parts = await this.d.db.scatter('photos', 'tag.search', (sql) =>
      sql.all<{ name: string; media_count: bigint }>('SELECT name, media_count FROM tags WHERE name >= ? AND name < ? ORDER BY media_count DESC LIMIT ?', q, hi, count));
    return parts.flat().sort((a, b) => Number(b.media_count - a.media_count) || a.name.localeCompare(b.name)).slice(0, count).map((r) => ({ name: r.name, mediaCount: num(r.media_count) }));
  }

  private async locationsById(ids: readonly string[]): Promise<Map<string, LocationRecord>> {
    const out = new Map<string, LocationRecord>();
    for (const [shardId, list] of this.groupByShard(ids.filter((id) => this.validShard(id) !== null))) {
      const rows = await this.d.db.read('photos', shardId, 'location.get', (sql) => sql.all('SELECT * FROM locations WHERE id IN (SELECT CAST(value AS INTEGER) FROM json_each(?))', json(list)));
      for (const r of rows) out.set(str(r.id), { id: str(r.id), name: str(r.name), lat: num(r.lat), lng: num(r.lng) });
    }
    return out;
  }

  async getLocation(id: string): Promise<LocationRecord | null> {
    return (await this.locationsById([id])).get(id) ?? null;
  }

  async listLocationMedia(id: string, page: PageQuery & TimeRange): Promise<Page<MediaRecord>> {
    if (this.validShard(id) === null) return { items: [], nextMaxId: null };
    const min = page.minId && isIdString(page.minId) ? BigInt(page.minId) : -1n;
    const lo = page.minTimestamp !== undefined ? page.minTimestamp * 1000 : 0;
    const hi = page.maxTimestamp !== undefined ? page.maxTimestamp * 1000 + 999 : Number.MAX_SAFE_INTEGER;
    return this.mediaPage('location', page, async (after, limit) => {
      const rows = await this.d.db.read('photos', shardOf(id), 'location.media', (sql) =>
        sql.column<string>('SELECT CAST(media_id AS TEXT) FROM location_media WHERE location_id = ? AND media_id < ? AND media_id > ? AND created_ms BETWEEN ? AND ? ORDER BY media_id DESC LIMIT ?', BigInt(id), BigInt(after ?? MAX_ID_TEXT), min, lo, hi, limit));
      return { rows: rows.map((m) => ({ cursor: m, id: m })), exhausted: rows.length < limit };
    });
  }

  async searchLocations(q: { lat: number; lng: number; distanceM: number; count: number }): Promise<LocationRecord[]> {
    if (!this.d.geo) return [];
    const ids = this.d.geo.searchLocations({ lat: q.lat, lng: q.lng, distanceM: q.distanceM, limit: q.count });
    const m = await this.locationsById(ids);
    return ids.map((id) => m.get(id)).filter((x): x is LocationRecord => !!x);
  }

  // ---------------------------------------------------------------- activity and blobs

  async listActivity(userId: string, page: PageQuery): Promise<Page<ActivityRecord>> {
    if (this.validShard(userId) === null) return { items: [], nextMaxId: null };
    const r = await scanVisible({
      count: page.count,
      after: page.maxId && isIdString(page.maxId) ? page.maxId : undefined,
      fetch: async (after, limit) => {
        const rows = await this.d.db.read('users', shardOf(userId), 'activity.page', (sql) =>
          sql.all('SELECT * FROM activity WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?', BigInt(userId), BigInt(after ?? MAX_ID_TEXT), limit), { actorId: userId });
        return { rows: rows.map((row) => ({ cursor: str(row.id), row })), exhausted: rows.length < limit };
      },
      keep: async (rows) => {
        const [media, hidden] = await Promise.all([
          this.getMediaMany(rows.filter((x) => x.row.media_id !== null).map((x) => str(x.row.media_id))),
          this.blockedEitherWay(userId),
        ]);
        return rows.map(({ row }): ActivityRecord | null => {
          // Activity on media deleted since, or by a user blocked either way, is left out, not shown broken.
          if (row.media_id !== null && !media.has(str(row.media_id))) return null;
          if (hidden.has(str(row.actor_id))) return null;
          return {
            id: str(row.id),
            kind: row.kind as ActivityRecord['kind'],
            actorId: str(row.actor_id),
            mediaId: row.media_id === null ? null : str(row.media_id),
            commentId: row.comment_id === null ? null : str(row.comment_id),
            text: row.text === null ? null : str(row.text),
            createdMs: num(row.created_ms),
          };
        });
      },
    });
    this.noteScan('activity', r);
    return { items: r.items, nextMaxId: r.nextCursor };
  }

  async getBlob(key: string): Promise<{ bytes: Buffer; contentType: string; etag: string } | null> {
    try {
      return await this.d.blobs.get(key);
    } catch (e) {
      if (isSimError(e, 'SG_ERR_INVALID_PARAM')) return null;
      throw e;
    }
  }
}

/** The distinct owners of some media. */
function ownersOf(media: ReadonlyMap<string, MediaRecord>): string[] {
  return [...new Set([...media.values()].map((m) => m.userId))];
}
