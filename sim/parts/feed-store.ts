// Feed lists in Redis, as Instagram kept them: fan-out pushes a media id onto each follower's list,
// capped at maxLength; reads page through a list by max_id, from a lagging read replica when there is one.

import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Clock } from '../engine/clock.ts';
import { currentWork } from '../engine/actor-context.ts';
import type { CounterHandle, HistogramHandle, Metrics } from '../observability/metrics.ts';
import type { TopologyConfig } from '../topology-config.ts';
import { simError } from '../engine/errors.ts';
import { isMockRedis } from './redis-client.ts';

export type FeedNode = 'feed-primary' | 'feed-replica';

/**
 * Commands in flight per await. Large enough that awaiting costs nothing next to the commands,
 * small enough that a 1M-follower push yields to timers and sockets ~250 times (the HTTP server
 * and the replica's timer share this thread).
 */
const CHUNK = 4096;
/** Lists written per script call on a real Redis: Redis runs a script alone, so it stays short (a few ms). */
const SCRIPT_LISTS = 1000;
/**
 * LPUSH the id (ARGV[1]) onto the list ARGV[3]..user for every user id in ARGV[4] (space-separated),
 * trimming lists past the cap (ARGV[2]); returns the trims. The ids travel as one string, not as
 * KEYS: on one Redis that is what takes the client out of the way (keys are not declared, so this
 * is not for Redis Cluster, whose slots need them).
 */
const PUSH_SCRIPT = `local cap = tonumber(ARGV[2])
local prefix = ARGV[3]
local trims = 0
for id in string.gmatch(ARGV[4], '%S+') do
  local key = prefix .. id
  if redis.call('LPUSH', key, ARGV[1]) > cap then
    redis.call('LTRIM', key, 0, cap - 1)
    trims = trims + 1
  end
end
return trims`;
const PUSH_SHA = createHash('sha1').update(PUSH_SCRIPT).digest('hex');
/** Entries fetched per LRANGE while scanning a list for ids below max_id. */
const RANGE_WINDOW = 200;
/** Keys asked for per SCAN call when dumping a real Redis. */
const SCAN_COUNT = 1000;
/** Reads of a list before a replayed delivery gives up placing its id (count; see insertOnce). */
const INSERT_ATTEMPTS = 5;

/** A write the replica has yet to apply; `keys` say which lists it touches, for counting stale reads. */
interface ReplicaWrite {
  dueMs: number;
  keys: readonly string[];
  /** Built on the first stale-read check only: most writes are applied before anyone reads their keys. */
  keySet?: Set<string>;
  apply: (replica: Redis) => Promise<void>;
}

/** True when decimal id `a` is numerically below `b` (64-bit ids do not fit a double; no leading zeros). */
export function idBelow(a: string, b: string): boolean {
  return a.length !== b.length ? a.length < b.length : a < b;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** `text` as a literal in a Redis MATCH pattern. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

export class FeedStore {
  private readonly clock: Clock;
  private readonly primary: Redis;
  private readonly replica: Redis | undefined;
  private readonly listPrefix: string;
  private readonly maxLength: number;
  private lagMs: number;

  /** Replica writes not yet applied live in pending[head..], in the order the primary took them. */
  private pending: Array<ReplicaWrite | undefined> = [];
  private head = 0;
  /** Serialises replica application, whether the timer or a read triggers it. */
  private replicaChain: Promise<void> = Promise.resolve();
  private drainRunning = false;
  private closed = false;

  private readonly deliveries: CounterHandle;
  private readonly trims: CounterHandle;
  private readonly staleReads: CounterHandle;
  private readonly replicaErrors: CounterHandle;
  private readonly reads: Record<FeedNode, CounterHandle>;
  private readonly writes: Record<FeedNode, CounterHandle>;
  private readonly pushMs: HistogramHandle;

  constructor(
    config: TopologyConfig['feed'],
    deps: { clock: Clock; metrics: Metrics; primary: Redis; replica?: Redis; keyPrefix?: string },
  ) {
    this.clock = deps.clock;
    this.primary = deps.primary;
    this.replica = config.replicas === 1 ? deps.replica : undefined;
    this.listPrefix = `${deps.keyPrefix ?? ''}feed:`;
    this.maxLength = config.maxLength;
    this.lagMs = config.replicaLagMs;

    const m = deps.metrics;
    m.describe('feed_deliveries', 'Media ids pushed onto feed lists');
    m.describe('feed_reads', 'Feed list reads, by node');
    m.describe('feed_writes', 'Feed list writes (one per list touched), by node');
    m.describe('feed_trims', 'Feed lists trimmed back to maxLength');
    m.describe('feed_stale_reads', 'Replica reads of a list with writes still in flight');
    m.describe('feed_replica_errors', 'Replica writes that failed and were dropped');
    m.describe('feed_push_ms', 'Time to push one media id to a batch of feeds');
    // Handles are looked up once: the fan-out path must not pay for label keys per batch.
    this.deliveries = m.counter('feed_deliveries');
    this.trims = m.counter('feed_trims');
    this.staleReads = m.counter('feed_stale_reads');
    this.replicaErrors = m.counter('feed_replica_errors');
    this.reads = { 'feed-primary': m.counter('feed_reads', { node: 'feed-primary' }), 'feed-replica': m.counter('feed_reads', { node: 'feed-replica' }) };
    this.writes = { 'feed-primary': m.counter('feed_writes', { node: 'feed-primary' }), 'feed-replica': m.counter('feed_writes', { node: 'feed-replica' }) };
    this.pushMs = m.histogram('feed_push_ms');
  }

  /** LPUSHes mediaId onto each user's list, trimming lists that grew past maxLength. Returns deliveries made. */
  async push(userIds: readonly string[], mediaId: string): Promise<number> {
    const n = userIds.length;
    if (n === 0) return 0;
    const startMs = this.clock.nowMs();
    for (let i = 0; i < n; i += CHUNK) {
      if (i > 0) await nextTurn();
      const end = Math.min(i + CHUNK, n);
      const count = end - i;
      // Key strings only where they are used: the mock's commands, and the replica's stale-read book.
      let keys: string[] | null = null;
      if (isMockRedis(this.primary) || this.replica) {
        keys = new Array<string>(count);
        for (let j = i; j < end; j++) keys[j - i] = this.listPrefix + userIds[j]!;
      }
      const trimmed = isMockRedis(this.primary) ? await this.pushTo(this.primary, keys!, mediaId) : await this.pushPacked(this.primary, userIds, i, end, mediaId);
      countWork(count + trimmed, count);
      this.deliveries.inc(count);
      this.writes['feed-primary'].inc(count);
      if (trimmed > 0) this.trims.inc(trimmed);
      if (keys) {
        const from = i;
        await this.replicate(keys, async (replica) => {
          if (isMockRedis(replica)) await this.pushTo(replica, keys, mediaId);
          else await this.pushPacked(replica, userIds, from, end, mediaId);
          this.writes['feed-replica'].inc(count);
        });
      }
    }
    this.pushMs.observeMs(this.clock.nowMs() - startMs);
    return n;
  }

  /**
   * push() for a fan-out run again after a crash (the job journal's replay), which may have reached
   * some of these lists before: a list that holds mediaId is left alone, and one that lacks it gets
   * it where its id puts it among newer and older entries, not on top. Returns deliveries made.
   */
  async pushOnce(userIds: readonly string[], mediaId: string): Promise<number> {
    let delivered = 0;
    for (let i = 0; i < userIds.length; i += CHUNK) {
      if (i > 0) await nextTurn();
      const keys = userIds.slice(i, i + CHUNK).map((u) => this.listPrefix + u);
      const inserted = await Promise.all(keys.map((k) => this.insertOnce(this.primary, k, mediaId)));
      const changed = keys.filter((_, j) => inserted[j]);
      delivered += changed.length;
      countWork(0, changed.length);
      this.deliveries.inc(changed.length);
      this.writes['feed-primary'].inc(changed.length);
      if (changed.length > 0) {
        await this.replicate(changed, async (replica) => {
          await Promise.all(changed.map((k) => this.insertOnce(replica, k, mediaId)));
          this.writes['feed-replica'].inc(changed.length);
        });
      }
    }
    return delivered;
  }

  /**
   * Puts mediaId into the list at its place by id unless it is there; true when it was added. The
   * pivot can vanish between the read and the LINSERT (trimmed by a concurrent push), so a miss
   * reads the list again, a bounded number of times.
   */
  private async insertOnce(client: Redis, key: string, mediaId: string): Promise<boolean> {
    for (let attempt = 0; attempt < INSERT_ATTEMPTS; attempt++) {
      const list = await client.lrange(key, 0, -1);
      if (list.includes(mediaId)) return false;
      const at = list.findIndex((id) => idBelow(id, mediaId));
      if (at === 0 || list.length === 0) {
        const length = await client.lpush(key, mediaId);
        if (length > this.maxLength) {
          await client.ltrim(key, 0, this.maxLength - 1);
          this.trims.inc();
        }
        return true;
      }
      if (at < 0) {
        // Older than everything kept: it belongs past the end, where a full list would trim it.
        if (list.length >= this.maxLength) return false;
        await client.rpush(key, mediaId);
        return true;
      }
      const length = await client.linsert(key, 'BEFORE', list[at]!, mediaId);
      if (length > 0) {
        if (length > this.maxLength) {
          await client.ltrim(key, 0, this.maxLength - 1);
          this.trims.inc();
        }
        return true;
      }
    }
    throw simError('SG_ERR_BUDGET_EXHAUSTED', `could not place ${mediaId} in ${key} in ${INSERT_ATTEMPTS} attempts`, { key });
  }

  /** Removes every occurrence of mediaId from these users' lists (LREM). */
  async remove(userIds: readonly string[], mediaId: string): Promise<void> {
    const n = userIds.length;
    for (let i = 0; i < n; i += CHUNK) {
      if (i > 0) await nextTurn();
      const end = Math.min(i + CHUNK, n);
      const keys = new Array<string>(end - i);
      for (let j = i; j < end; j++) keys[j - i] = this.listPrefix + userIds[j]!;
      await this.removeFrom(this.primary, keys, mediaId);
      countWork(keys.length, 0);
      this.writes['feed-primary'].inc(keys.length);
      await this.replicate(keys, async (replica) => {
        await this.removeFrom(replica, keys, mediaId);
        this.writes['feed-replica'].inc(keys.length);
      });
    }
  }

  /**
   * Newest-first ids: the first `count` ids strictly below maxId (compared as 64-bit numbers), or
   * the first `count` when maxId is undefined. Served by the replica when there is one.
   */
  async range(userId: string, count: number, maxId?: string): Promise<string[]> {
    if (count <= 0) return [];
    const key = this.listPrefix + userId;
    const client = await this.readFrom(key);
    countWork(1, 0);
    if (maxId === undefined) return client.lrange(key, 0, count - 1);
    const out: string[] = [];
    // Lists are short (maxLength), so scanning from the top is bounded; windows keep long lists
    // from being copied whole when the page is near the top.
    for (let start = 0; ; start += RANGE_WINDOW) {
      if (start > 0) countWork(1, 0);
      const window = await client.lrange(key, start, start + RANGE_WINDOW - 1);
      for (const id of window) {
        if (idBelow(id, maxId)) {
          out.push(id);
          if (out.length === count) return out;
        }
      }
      if (window.length < RANGE_WINDOW) return out;
    }
  }

  /** Entries in the user's list (from the replica when there is one). */
  async length(userId: string): Promise<number> {
    const key = this.listPrefix + userId;
    const client = await this.readFrom(key);
    countWork(1, 0);
    return client.llen(key);
  }

  /** Every feed list on the primary (the source of truth), keyed by user id, newest first. */
  async dump(): Promise<Record<string, string[]>> {
    const keys = await this.feedKeys();
    const out: Record<string, string[]> = {};
    for (let i = 0; i < keys.length; i += CHUNK) {
      const batch = keys.slice(i, i + CHUNK);
      const lists = await Promise.all(batch.map((k) => this.primary.lrange(k, 0, -1)));
      for (let j = 0; j < batch.length; j++) {
        const list = lists[j]!;
        if (list.length > 0) out[batch[j]!.slice(this.listPrefix.length)] = list;
      }
    }
    return out;
  }

  /**
   * Replaces the named lists on the primary and the replica at once (a restore is a restart, not a
   * replicated write), trimming each to maxLength. Lists not named are left alone.
   */
  async restore(data: Record<string, string[]>): Promise<void> {
    await this.applyReplica(true);
    const entries = Object.entries(data);
    const nodes: Array<[FeedNode, Redis]> = [['feed-primary', this.primary]];
    if (this.replica) nodes.push(['feed-replica', this.replica]);
    for (let i = 0; i < entries.length; i += CHUNK) {
      const batch = entries.slice(i, i + CHUNK);
      for (const [node, client] of nodes) {
        await Promise.all(
          batch.map(async ([userId, ids]) => {
            const key = this.listPrefix + userId;
            const kept = ids.slice(0, this.maxLength);
            await client.del(key);
            if (kept.length > 0) await client.rpush(key, ...kept);
          }),
        );
        this.writes[node].inc(batch.length);
      }
    }
  }

  /**
   * Makes the replica a copy of the primary's feed lists (a full resync, as a Redis replica does
   * when it restarts): the primary's state after a restart is its AOF's, the replica's is empty.
   * Returns the lists copied.
   */
  async resyncReplica(): Promise<number> {
    const replica = this.replica;
    if (!replica) return 0;
    await this.applyReplica(true);
    const lists = Object.entries(await this.dump());
    for (let i = 0; i < lists.length; i += CHUNK) {
      const batch = lists.slice(i, i + CHUNK);
      await Promise.all(
        batch.map(async ([userId, ids]) => {
          const key = this.listPrefix + userId;
          await replica.del(key);
          await replica.rpush(key, ...ids);
        }),
      );
      this.writes['feed-replica'].inc(batch.length);
    }
    return lists.length;
  }

  /** Applies every pending replica write and stops the replication timer. The Redis clients belong to the caller. */
  async close(): Promise<void> {
    this.closed = true;
    await this.applyReplica(true);
  }

  /** Applies every queued replica write now (the topology settling for tests and benchmarks). */
  settle(): Promise<void> {
    return this.applyReplica(true);
  }

  /** Whether there is a read replica (the config asks for one, and it was given one: a real Redis needs $REDIS_REPLICA_URL). */
  get hasReplica(): boolean {
    return this.replica !== undefined;
  }

  /** Delay before the replica applies a write (ms); writes already queued keep their due time. */
  get replicaLagMs(): number {
    return this.lagMs;
  }

  /** Changes the replica's lag at run time (fault injection). */
  setReplicaLag(lagMs: number): void {
    this.lagMs = lagMs;
    if (lagMs <= 0) void this.applyReplica(true).catch(() => undefined);
  }

  /** Replica writes not yet applied (for reports and tests). */
  replicaBacklog(): number {
    return this.pending.length - this.head;
  }

  private async pushTo(client: Redis, keys: readonly string[], mediaId: string): Promise<number> {
    const pushes = new Array<Promise<number>>(keys.length);
    for (let j = 0; j < keys.length; j++) pushes[j] = client.lpush(keys[j]!, mediaId);
    const lengths = await Promise.all(pushes);
    // LPUSH returns the new length, so only lists that actually outgrew the cap pay for an LTRIM.
    let trims: Array<Promise<unknown>> | undefined;
    for (let j = 0; j < keys.length; j++) {
      if (lengths[j]! > this.maxLength) (trims ??= []).push(client.ltrim(keys[j]!, 0, this.maxLength - 1));
    }
    if (trims) await Promise.all(trims);
    return trims?.length ?? 0;
  }

  /**
   * pushTo() on a real Redis, for users[from, to): one script call per SCRIPT_LISTS lists, the ids
   * packed in one argument. A command per list left the client, not Redis, the limit (83k
   * deliveries/s, measured with 200,000 followers), and a script with the keys as KEYS still spent a
   * third of a 1M-follower fan-out in garbage collection; this way Redis's own work (about 2 s per
   * million new lists on the machine it was measured on) is the floor.
   */
  private async pushPacked(client: Redis, userIds: readonly string[], from: number, to: number, mediaId: string): Promise<number> {
    const calls: Array<Promise<unknown>> = [];
    for (let i = from; i < to; i += SCRIPT_LISTS) {
      const ids = userIds.slice(i, Math.min(i + SCRIPT_LISTS, to)).join(' ');
      calls.push(
        client.evalsha(PUSH_SHA, 0, mediaId, this.maxLength, this.listPrefix, ids).catch(async (err: unknown) => {
          if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err;
          return client.eval(PUSH_SCRIPT, 0, mediaId, this.maxLength, this.listPrefix, ids);
        }),
      );
    }
    let trims = 0;
    for (const n of await Promise.all(calls)) trims += Number(n);
    return trims;
  }

  private async removeFrom(client: Redis, keys: readonly string[], mediaId: string): Promise<void> {
    await Promise.all(keys.map((k) => client.lrem(k, 0, mediaId)));
  }

  /** Queues a write for the replica, due after the lag; with no lag it is applied before returning. */
  private async replicate(keys: readonly string[], apply: (replica: Redis) => Promise<void>): Promise<void> {
    if (!this.replica) return;
    this.pending.push({ dueMs: this.clock.nowMs() + this.lagMs, keys, apply });
    if (this.lagMs <= 0 || this.closed) await this.applyReplica(this.closed);
    else this.startDrain();
  }

  /** The client a read goes to; a replica read first applies what is due, then counts itself stale if writes to `key` are still queued. */
  private async readFrom(key: string): Promise<Redis> {
    if (!this.replica) {
      this.reads['feed-primary'].inc();
      return this.primary;
    }
    await this.applyReplica(false);
    this.reads['feed-replica'].inc();
    if (this.hasPendingWrite(key)) this.staleReads.inc();
    return this.replica;
  }

  private hasPendingWrite(key: string): boolean {
    for (let i = this.head; i < this.pending.length; i++) {
      const w = this.pending[i]!;
      w.keySet ??= new Set(w.keys);
      if (w.keySet.has(key)) return true;
    }
    return false;
  }

  /** Applies due writes (or all, when `all`) in primary order, one application at a time. */
  private applyReplica(all: boolean): Promise<void> {
    const run = this.replicaChain.then(() => this.applyNow(all));
    // The chain must survive a failed step; the caller still sees the failure through `run`.
    this.replicaChain = run.catch(() => {});
    return run;
  }

  private async applyNow(all: boolean): Promise<void> {
    const replica = this.replica;
    if (!replica) return;
    while (this.head < this.pending.length) {
      const w = this.pending[this.head]!;
      if (!all && w.dueMs > this.clock.nowMs()) break;
      try {
        await w.apply(replica);
      } catch {
        // A real replica that refuses a write diverges until it resyncs; counted, not retried forever.
        this.replicaErrors.inc();
      }
      this.pending[this.head] = undefined;
      this.head++;
    }
    if (this.head === this.pending.length) {
      this.pending = [];
      this.head = 0;
    } else if (this.head >= CHUNK && this.head * 2 >= this.pending.length) {
      this.pending = this.pending.slice(this.head);
      this.head = 0;
    }
  }

  /** One timer loop at a time sleeps (on the injected clock) until the oldest write is due. */
  private startDrain(): void {
    if (this.drainRunning) return;
    this.drainRunning = true;
    void this.drainLoop();
  }

  private async drainLoop(): Promise<void> {
    try {
      while (!this.closed && this.head < this.pending.length) {
        const waitMs = this.pending[this.head]!.dueMs - this.clock.nowMs();
        if (waitMs > 0) await this.clock.sleep(waitMs);
        await this.applyReplica(false);
      }
    } finally {
      this.drainRunning = false;
    }
  }

  private async feedKeys(): Promise<string[]> {
    const pattern = escapeGlob(this.listPrefix) + '*';
    // ioredis-mock lists every key on each SCAN call, so paging a big mock would be quadratic;
    // KEYS is one pass there. A real server gets SCAN, which never blocks it.
    if (isMockRedis(this.primary)) return this.primary.keys(pattern);
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.primary.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
      for (const k of batch) keys.push(k);
      cursor = next;
    } while (cursor !== '0');
    return [...new Set(keys)]; // SCAN may return a key more than once
  }
}

/**
 * Adds to the current request's or job's work: Redis commands sent to the primary or read from a
 * replica (applying queued writes to a replica is replication, counted by neither), and deliveries.
 * A replayed fan-out (pushOnce) counts its deliveries, not its commands.
 */
function countWork(commands: number, deliveries: number): void {
  const work = currentWork();
  if (!work) return;
  work.redisCommands += commands;
  work.feedDeliveries += deliveries;
}
