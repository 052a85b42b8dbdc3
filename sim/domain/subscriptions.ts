// Real-time subscriptions, as API v1 had them: a registered client asks to be told when media is
// posted by a user who authorized it, with a tag, at a location, or inside a geography (a circle it
// defines). Creating one verifies the callback (hub.challenge echoed back); each post is matched
// in a queued job and the client's callback gets one POST per post with the v1 JSON array of
// updates, signed with X-Hub-Signature (HMAC-SHA1 of the body with the client secret, hex).
// Deliveries go through the job queue with bounded retries and backoff; every outcome is counted
// (realtime_notifications{result=sent|failed|retried|dropped}).
//
// Where things live: a subscription on its client's logical shard (listing and deleting are one
// shard); tag and location subscriptions again in subscription_index on the shard of the object
// they watch (a post finds them in one read per tag, cached); geographies, being few and spatial,
// in one cached list. Tag, location and geography updates are sent for public accounts' media only.

import { createHmac } from 'node:crypto';
import type { ApiClients } from './api-clients.ts';
import type { CacheCluster } from '../parts/cache-cluster.ts';
import { CallbackPolicy, callbackUrlProblem, callCallback, type Resolver } from './callbacks.ts';
import type { Clock } from '../engine/clock.ts';
import { randomSecret } from './credentials.ts';
import type { DatabaseCluster } from '../parts/database-cluster.ts';
import { simError } from '../engine/errors.ts';
import { haversineM } from '../parts/geo-index.ts';
import { isIdString, shardOf } from '../parts/ids.ts';
import type { Jobs } from '../parts/job-queue.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { PhotoStore } from './photo-store.ts';
import { shardForKey } from '../parts/shard-map.ts';
import type { MediaRecord, NewSubscription, SubscriptionObject, SubscriptionRecord, SubscriptionRegistry, UserRecord } from './store.ts';

/** Subscriptions one client may hold (count). */
export const MAX_SUBSCRIPTIONS_PER_CLIENT = 100;
/** Largest geography radius (m), as v1 allowed. */
export const MAX_GEOGRAPHY_RADIUS_M = 5000;
/** Time the callback has to answer the verification request (ms). */
export const VERIFY_TIMEOUT_MS = 5000;
/** Time the callback has to answer one notification (ms). */
export const DELIVERY_TIMEOUT_MS = 5000;
/** Tries per notification, the first included (count). */
export const DELIVERY_ATTEMPTS = 4;
/** Wait before the first retry (ms); each further retry waits 4× longer: 0.5 s, 2 s, 8 s. */
export const RETRY_BACKOFF_MS = 500;
/** Notifications allowed to wait for a retry at once (count); beyond, a failed one is dropped. */
export const MAX_PENDING_RETRIES = 10_000;
/** Geography subscriptions a post is matched against (count). */
const MAX_GEOGRAPHIES = 10_000;
/** Updates one post may produce, over all clients (count); the rest are dropped and counted. */
const MAX_UPDATES_PER_POST = 1000;

const OBJECTS: readonly SubscriptionObject[] = ['user', 'tag', 'location', 'geography'];
const TAG_RE = /^[\p{L}\p{N}_]{1,100}$/u;
const str = (v: unknown): string => String(v);

/** One update of the v1 notification array. */
export interface V1Update {
  changed_aspect: 'media';
  object: SubscriptionObject;
  object_id: string;
  /** Unix seconds. */
  time: number;
  subscription_id: string;
  data: { media_id: string };
}

interface Watcher {
  id: string;
  clientId: string;
  callbackUrl: string;
}

interface GeoWatcher extends Watcher {
  lat: number;
  lng: number;
  radiusM: number;
}

interface UserWatcher extends Watcher {
  objectId: string | null;
}

interface Posted {
  mediaId: string;
  ownerId: string;
  ownerPrivate: boolean;
  tags: string[];
  locationId: string | null;
  lat: number | null;
  lng: number | null;
  timeS: number;
}

interface Delivery {
  clientId: string;
  callbackUrl: string;
  body: string;
  /** 1 for the first try. */
  attempt: number;
}

export interface SubscriptionsDeps {
  db: DatabaseCluster;
  cache: CacheCluster;
  clock: Clock;
  metrics: Metrics;
  queue: Jobs;
  store: PhotoStore;
  clients: ApiClients;
  logicalShards: number;
  /** Name resolution for callbacks (tests); default the system's. */
  resolve?: Resolver;
}

type Row = Record<string, unknown>;

export class Subscriptions implements SubscriptionRegistry {
  private policy = CallbackPolicy.loopbackOnly();
  /** Subscriptions stored, kept so that posts cost nothing while there are none. */
  private total = 0;
  private closed = false;
  private inFlight = 0;
  private pendingRetries = 0;
  private idleWaiters: Array<() => void> = [];
  private readonly closing: Promise<void>;
  private signalClosed!: () => void;

  constructor(private readonly d: SubscriptionsDeps) {
    const m = d.metrics;
    m.describe('realtime_notifications', 'Real-time notification POSTs: sent (2xx), failed (a try that did not get a 2xx), retried (a retry scheduled), dropped (given up: tries or retry budget spent, callback refused by the allowlist, client revoked, queue full, shutting down)');
    m.describe('realtime_verifications', 'Subscription callback verifications, by result (ok, failed, refused)');
    m.describe('realtime_subscriptions', 'Real-time subscriptions stored (count)');
    this.closing = new Promise((resolve) => (this.signalClosed = resolve));
    d.queue.register('realtime-match', (p: Posted) => this.matchJob(p));
    d.queue.register('realtime-notify', (p: Delivery) => this.notifyJob(p));
    d.store.onPost((media, owner) => this.onPost(media, owner));
    d.clients.onRevoke(async (clientId) => {
      await this.remove(clientId, { object: 'all' });
    });
  }

  /** Counts the stored subscriptions (a restart on a data dir finds them again). */
  async init(): Promise<void> {
    const counts = await this.d.db.scatter('users', 'subscription.count', async (sql, shards) => Number((await sql.get<{ n: bigint }>('SELECT count(*) AS n FROM subscriptions WHERE shard_id IN (SELECT value FROM json_each(?))', JSON.stringify(shards)))!.n));
    this.total = counts.reduce((a, b) => a + b, 0);
    this.d.metrics.set('realtime_subscriptions', {}, this.total);
  }

  async allowCallbacks(entries: readonly string[]): Promise<void> {
    this.policy = await CallbackPolicy.from(entries, this.d.resolve);
  }

  callbackAllowlist(): readonly string[] {
    return this.policy.entries;
  }

  private clientShard(clientId: string): number {
    return shardForKey(clientId, this.d.logicalShards);
  }

  private record(r: Row): SubscriptionRecord {
    return {
      id: str(r.id),
      clientId: str(r.client_id),
      object: str(r.object) as SubscriptionObject,
      objectId: r.object_id === null ? null : str(r.object_id),
      aspect: 'media',
      callbackUrl: str(r.callback_url),
      lat: r.lat === null ? null : Number(r.lat),
      lng: r.lng === null ? null : Number(r.lng),
      radiusM: r.radius_m === null ? null : Number(r.radius_m),
      createdMs: Number(r.created_ms),
    };
  }

  /** The object id a subscription watches, checked and normalized. */
  private async objectIdOf(clientId: string, input: NewSubscription): Promise<string | null> {
    const invalid = (message: string, field = 'object_id') => simError('SG_ERR_INVALID_PARAM', message, { field });
    switch (input.object) {
      case 'tag': {
        const tag = (input.objectId ?? '').replace(/^#+/, '').toLowerCase();
        if (!TAG_RE.test(tag)) throw invalid('a tag subscription needs object_id, a tag of letters, digits and underscores');
        return tag;
      }
      case 'location': {
        const id = input.objectId ?? '';
        if (!isIdString(id) || !(await this.d.store.getLocation(id))) throw invalid('a location subscription needs object_id, the id of a location');
        return id;
      }
      case 'user': {
        if (input.objectId === null || input.objectId === '') return null;
        // A client hears only of users who authorized it, as in v1.
        if (!isIdString(input.objectId) || !(await this.d.clients.authorizedClients(input.objectId)).includes(clientId)) {
          throw invalid('object_id must be a user who authorized this client (or left out: every user who did)');
        }
        return input.objectId;
      }
      case 'geography': {
        const { lat, lng, radiusM } = input;
        if (lat === null || !(lat >= -90 && lat <= 90)) throw invalid('a geography subscription needs lat in [-90, 90]', 'lat');
        if (lng === null || !(lng >= -180 && lng <= 180)) throw invalid('a geography subscription needs lng in [-180, 180]', 'lng');
        if (radiusM === null || !(radiusM >= 1 && radiusM <= MAX_GEOGRAPHY_RADIUS_M)) throw invalid(`a geography subscription needs radius in [1, ${MAX_GEOGRAPHY_RADIUS_M}] metres`, 'radius');
        return null; // its own id, once minted
      }
      default:
        throw invalid(`object must be one of ${OBJECTS.join(', ')}`, 'object');
    }
  }

  async create(clientId: string, input: NewSubscription): Promise<SubscriptionRecord> {
    if (!OBJECTS.includes(input.object)) throw simError('SG_ERR_INVALID_PARAM', `object must be one of ${OBJECTS.join(', ')}`, { field: 'object' });
    if (input.aspect !== 'media') throw simError('SG_ERR_INVALID_PARAM', 'aspect must be media', { field: 'aspect' });
    const urlProblem = callbackUrlProblem(input.callbackUrl);
    if (urlProblem) throw simError('SG_ERR_INVALID_PARAM', urlProblem, { field: 'callback_url' });
    const objectId = await this.objectIdOf(clientId, input);
    const s = this.clientShard(clientId);
    const held = await this.d.db.read('users', s, 'subscription.count-client', async (sql) => Number((await sql.get<{ n: bigint }>('SELECT count(*) AS n FROM subscriptions WHERE client_id = ?', clientId))!.n), { primary: true });
    if (held >= MAX_SUBSCRIPTIONS_PER_CLIENT) throw simError('SG_ERR_SUBSCRIPTION', `a client may hold at most ${MAX_SUBSCRIPTIONS_PER_CLIENT} subscriptions`, { reason: 'limit' });

    await this.verify(input.callbackUrl, input.verifyToken);

    const id = this.d.store.mintId('subscriptions', s);
    const record: SubscriptionRecord = {
      id,
      clientId,
      object: input.object,
      objectId: input.object === 'geography' ? id : objectId,
      aspect: 'media',
      callbackUrl: input.callbackUrl,
      lat: input.object === 'geography' ? input.lat : null,
      lng: input.object === 'geography' ? input.lng : null,
      radiusM: input.object === 'geography' ? input.radiusM : null,
      createdMs: Math.floor(this.d.clock.nowMs()),
    };
    await this.d.db.write('users', s, 'subscription.create', (sql) =>
      sql.run('INSERT INTO subscriptions (shard_id, id, client_id, object, object_id, aspect, callback_url, lat, lng, radius_m, created_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?)',
        s, BigInt(id), clientId, record.object, record.objectId, 'media', record.callbackUrl, record.lat, record.lng, record.radiusM, record.createdMs));
    const key = this.indexKey(record);
    if (key) {
      const ks = shardForKey(key, this.d.logicalShards);
      await this.d.db.write('users', ks, 'subscription.index', (sql) =>
        sql.run('INSERT OR IGNORE INTO subscription_index (shard_id, object_key, subscription_id, client_id, callback_url) VALUES (?,?,?,?,?)', ks, key, BigInt(id), clientId, record.callbackUrl));
    }
    this.forget(record);
    this.total++;
    this.d.metrics.set('realtime_subscriptions', {}, this.total);
    return record;
  }

  /** GET callback?hub.mode=subscribe&hub.challenge=…&hub.verify_token=…: the answer must be the challenge. */
  private async verify(callbackUrl: string, verifyToken: string): Promise<void> {
    const challenge = randomSecret(18);
    const u = new URL(callbackUrl);
    u.searchParams.set('hub.mode', 'subscribe');
    u.searchParams.set('hub.challenge', challenge);
    u.searchParams.set('hub.verify_token', verifyToken);
    const r = await callCallback({ method: 'GET', url: u.toString(), timeoutMs: VERIFY_TIMEOUT_MS, policy: this.policy, ...(this.d.resolve ? { resolve: this.d.resolve } : {}) });
    if (!r.ok) {
      this.d.metrics.inc('realtime_verifications', { result: r.reason === 'refused' ? 'refused' : 'failed' });
      throw simError('SG_ERR_SUBSCRIPTION', r.reason === 'refused' ? `callback_url is not an address this server may call (${r.detail})` : `Unable to reach the callback URL: ${r.detail}`, { reason: r.reason });
    }
    if (r.status < 200 || r.status >= 300 || r.body.trim() !== challenge) {
      this.d.metrics.inc('realtime_verifications', { result: 'failed' });
      const got = r.body.length > 100 ? r.body.slice(0, 100) + '…' : r.body;
      throw simError('SG_ERR_SUBSCRIPTION', `Challenge verification failed. Sent "${challenge}", received "${got}" (HTTP ${r.status})`, { reason: 'challenge' });
    }
    this.d.metrics.inc('realtime_verifications', { result: 'ok' });
  }

  private indexKey(r: { object: SubscriptionObject; objectId: string | null }): string | null {
    return r.object === 'tag' || r.object === 'location' ? `${r.object}:${r.objectId}` : null;
  }

  /** Drops the cached lists a subscription is in. */
  private forget(r: SubscriptionRecord): void {
    const key = this.indexKey(r);
    if (key) this.d.cache.delete('sx:' + key);
    if (r.object === 'geography') this.d.cache.delete('gs');
    if (r.object === 'user') this.d.cache.delete('su:' + r.clientId);
  }

  async list(clientId: string): Promise<SubscriptionRecord[]> {
    const rows = await this.d.db.read('users', this.clientShard(clientId), 'subscription.list', (sql) => sql.all('SELECT * FROM subscriptions WHERE client_id = ? ORDER BY id', clientId), { primary: true });
    return rows.map((r) => this.record(r));
  }

  async remove(clientId: string, which: { id?: string; object?: SubscriptionObject | 'all' }): Promise<number> {
    const s = this.clientShard(clientId);
    const gone = await this.d.db.write('users', s, 'subscription.delete', async (sql) => {
      let rows: Row[];
      if (which.id !== undefined) rows = isIdString(which.id) ? await sql.all('SELECT * FROM subscriptions WHERE client_id = ? AND id = ?', clientId, BigInt(which.id)) : [];
      else if (which.object === undefined || which.object === 'all') rows = await sql.all('SELECT * FROM subscriptions WHERE client_id = ?', clientId);
      else rows = await sql.all('SELECT * FROM subscriptions WHERE client_id = ? AND object = ?', clientId, which.object);
      for (const r of rows) await sql.run('DELETE FROM subscriptions WHERE id = ?', r.id);
      return rows.map((r) => this.record(r));
    });
    for (const r of gone) {
      const key = this.indexKey(r);
      if (key) {
        const ks = shardForKey(key, this.d.logicalShards);
        await this.d.db.write('users', ks, 'subscription.unindex', (sql) => sql.run('DELETE FROM subscription_index WHERE object_key = ? AND subscription_id = ?', key, BigInt(r.id)));
      }
      this.forget(r);
    }
    this.total = Math.max(0, this.total - gone.length);
    this.d.metrics.set('realtime_subscriptions', {}, this.total);
    return gone.length;
  }

  async geography(id: string): Promise<SubscriptionRecord | null> {
    if (!isIdString(id) || shardOf(id) >= this.d.logicalShards) return null;
    const r = await this.d.db.read('users', shardOf(id), 'subscription.get', (sql) => sql.get("SELECT * FROM subscriptions WHERE id = ? AND object = 'geography'", BigInt(id)), { avoidStale: true });
    return r ? this.record(r) : null;
  }

  // ---------------------------------------------------------------- matching posts

  private onPost(media: MediaRecord, owner: UserRecord): void {
    if (this.total === 0 || this.closed) return;
    const p: Posted = {
      mediaId: media.id,
      ownerId: owner.id,
      ownerPrivate: owner.isPrivate,
      tags: media.tags,
      locationId: media.location?.id ?? null,
      lat: media.location?.lat ?? null,
      lng: media.location?.lng ?? null,
      timeS: Math.floor(media.createdMs / 1000),
    };
    this.inFlight++;
    try {
      this.d.queue.submit('realtime-match', p).catch(() => undefined);
    } catch {
      this.d.metrics.inc('realtime_notifications', { result: 'dropped' });
      this.done();
    }
  }

  private async watchers(key: string): Promise<Watcher[]> {
    const raw = await this.d.cache.getOrFill('sx:' + key, async () => {
      const rows = await this.d.db.read('users', shardForKey(key, this.d.logicalShards), 'subscription.match', (sql) =>
        sql.all<{ subscription_id: bigint; client_id: string; callback_url: string }>('SELECT subscription_id, client_id, callback_url FROM subscription_index WHERE object_key = ?', key), { avoidStale: true });
      return JSON.stringify(rows.map((r) => ({ id: str(r.subscription_id), clientId: r.client_id, callbackUrl: r.callback_url })));
    });
    return raw ? (JSON.parse(raw) as Watcher[]) : [];
  }

  private async geographies(): Promise<GeoWatcher[]> {
    const raw = await this.d.cache.getOrFill('gs', async () => {
      const parts = await this.d.db.scatter('users', 'subscription.geographies', (sql, shards) =>
        sql.all("SELECT id, client_id, callback_url, lat, lng, radius_m FROM subscriptions WHERE object = 'geography' AND shard_id IN (SELECT value FROM json_each(?)) LIMIT ?", JSON.stringify(shards), MAX_GEOGRAPHIES), { avoidStale: true });
      return JSON.stringify(parts.flat().slice(0, MAX_GEOGRAPHIES).map((r) => ({ id: str(r.id), clientId: str(r.client_id), callbackUrl: str(r.callback_url), lat: Number(r.lat), lng: Number(r.lng), radiusM: Number(r.radius_m) })));
    });
    return raw ? (JSON.parse(raw) as GeoWatcher[]) : [];
  }

  private async userWatchers(clientId: string): Promise<UserWatcher[]> {
    const raw = await this.d.cache.getOrFill('su:' + clientId, async () => {
      const rows = await this.d.db.read('users', this.clientShard(clientId), 'subscription.users', (sql) =>
        sql.all("SELECT id, client_id, callback_url, object_id FROM subscriptions WHERE client_id = ? AND object = 'user'", clientId), { avoidStale: true });
      return JSON.stringify(rows.map((r) => ({ id: str(r.id), clientId: str(r.client_id), callbackUrl: str(r.callback_url), objectId: r.object_id === null ? null : str(r.object_id) })));
    });
    return raw ? (JSON.parse(raw) as UserWatcher[]) : [];
  }

  private async matchJob(p: Posted): Promise<void> {
    try {
      await this.match(p);
    } finally {
      this.done();
    }
  }

  private async match(p: Posted): Promise<void> {
    const updates: Array<{ w: Watcher; update: V1Update }> = [];
    const add = (w: Watcher, object: SubscriptionObject, objectId: string) =>
      updates.push({ w, update: { changed_aspect: 'media', object, object_id: objectId, time: p.timeS, subscription_id: w.id, data: { media_id: p.mediaId } } });
    // Tags, places and areas are public streams: a private account's media are never in them.
    if (!p.ownerPrivate) {
      for (const tag of p.tags) for (const w of await this.watchers(`tag:${tag}`)) add(w, 'tag', tag);
      if (p.locationId) for (const w of await this.watchers(`location:${p.locationId}`)) add(w, 'location', p.locationId);
      if (p.lat !== null && p.lng !== null) {
        for (const g of await this.geographies()) if (haversineM(g.lat, g.lng, p.lat, p.lng) <= g.radiusM) add(g, 'geography', g.id);
      }
    }
    for (const clientId of await this.d.clients.authorizedClients(p.ownerId)) {
      for (const w of await this.userWatchers(clientId)) if (w.objectId === null || w.objectId === p.ownerId) add(w, 'user', p.ownerId);
    }
    if (updates.length > MAX_UPDATES_PER_POST) this.d.metrics.inc('realtime_notifications', { result: 'dropped' }, updates.length - MAX_UPDATES_PER_POST);
    // One POST per callback of a client, carrying every update of this post for it, as v1 batched them.
    const groups = new Map<string, { clientId: string; callbackUrl: string; updates: V1Update[] }>();
    for (const { w, update } of updates.slice(0, MAX_UPDATES_PER_POST)) {
      const k = `${w.clientId}\n${w.callbackUrl}`;
      (groups.get(k) ?? groups.set(k, { clientId: w.clientId, callbackUrl: w.callbackUrl, updates: [] }).get(k)!).updates.push(update);
    }
    for (const g of groups.values()) this.enqueue({ clientId: g.clientId, callbackUrl: g.callbackUrl, body: JSON.stringify(g.updates), attempt: 1 });
  }

  // ---------------------------------------------------------------- delivering

  private enqueue(d: Delivery): void {
    this.inFlight++;
    try {
      this.d.queue.submit('realtime-notify', d).catch(() => undefined);
    } catch {
      // The queue is full or closed: this notification is lost, and counted.
      this.d.metrics.inc('realtime_notifications', { result: 'dropped' });
      this.done();
    }
  }

  private done(): void {
    this.inFlight--;
    if (this.inFlight > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async notifyJob(d: Delivery): Promise<void> {
    try {
      const secret = await this.d.clients.signingSecret(d.clientId);
      if (secret === null) {
        this.d.metrics.inc('realtime_notifications', { result: 'dropped' });
        return;
      }
      const signature = createHmac('sha1', secret).update(d.body).digest('hex');
      const r = await callCallback({
        method: 'POST',
        url: d.callbackUrl,
        body: d.body,
        headers: { 'content-type': 'application/json', 'x-hub-signature': signature },
        timeoutMs: DELIVERY_TIMEOUT_MS,
        policy: this.policy,
        ...(this.d.resolve ? { resolve: this.d.resolve } : {}),
      });
      if (r.ok && r.status >= 200 && r.status < 300) {
        this.d.metrics.inc('realtime_notifications', { result: 'sent' });
        return;
      }
      this.d.metrics.inc('realtime_notifications', { result: 'failed' });
      // A callback the policy refuses will never pass: no retry.
      const hopeless = !r.ok && (r.reason === 'refused' || r.reason === 'bad-url');
      if (!hopeless && d.attempt < DELIVERY_ATTEMPTS && this.pendingRetries < MAX_PENDING_RETRIES && !this.closed) {
        this.d.metrics.inc('realtime_notifications', { result: 'retried' });
        this.pendingRetries++;
        this.inFlight++;
        void this.retryLater(d);
      } else {
        this.d.metrics.inc('realtime_notifications', { result: 'dropped' });
      }
    } finally {
      this.done();
    }
  }

  private async retryLater(d: Delivery): Promise<void> {
    await Promise.race([this.d.clock.sleep(RETRY_BACKOFF_MS * 4 ** (d.attempt - 1)), this.closing]);
    this.pendingRetries--;
    if (this.closed) {
      this.d.metrics.inc('realtime_notifications', { result: 'dropped' });
    } else {
      this.enqueue({ ...d, attempt: d.attempt + 1 });
    }
    this.done();
  }

  /** Resolves when no notification is being matched, sent or waiting for a retry. */
  settled(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops retrying: notifications waiting for a retry are dropped (and counted). */
  close(): void {
    this.closed = true;
    this.signalClosed();
  }
}
