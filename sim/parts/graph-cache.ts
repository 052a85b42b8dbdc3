// "Who does X follow" cached as Redis sets in front of the database, as Instagram later did.
// The database stays the source of truth; this cache is look-aside with write-through on follow changes.

import type { Redis } from 'ioredis';
import { currentWork } from '../engine/actor-context.ts';
import type { CounterHandle, Metrics } from '../observability/metrics.ts';
import { simError } from '../engine/errors.ts';
import { escapeGlob, idBelow } from './feed-store.ts';

/** SCAN calls allowed to clear the cache (each covers ~1000 keys of a real server). */
const CLEAR_ROUNDS = 1_000_000;

/**
 * A member no user id can equal (ids are decimal). Its presence is what makes a set "cached": it
 * lets an empty following list be cached, and a set that SADD created after an invalidation
 * (write-through racing a DEL) has no marker, so it reads as a miss instead of a wrong answer.
 */
const MARKER = '#cached';

function byId(a: string, b: string): number {
  return a === b ? 0 : idBelow(a, b) ? -1 : 1;
}

export class GraphCache {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly hits: CounterHandle;
  private readonly misses: CounterHandle;

  constructor(deps: { metrics: Metrics; redis: Redis; keyPrefix?: string }) {
    this.redis = deps.redis;
    this.prefix = `${deps.keyPrefix ?? ''}following:`;
    deps.metrics.describe('graph_cache_requests', 'Follow-graph cache lookups, by result (hit|miss)');
    this.hits = deps.metrics.counter('graph_cache_requests', { result: 'hit' });
    this.misses = deps.metrics.counter('graph_cache_requests', { result: 'miss' });
  }

  /** Ids `userId` follows (approved only), in ascending id order; load() is the database query, run on a miss. */
  async following(userId: string, load: () => Promise<string[]>): Promise<string[]> {
    const key = this.prefix + userId;
    countCommands(1);
    const members = await this.redis.smembers(key);
    const markerAt = members.indexOf(MARKER);
    if (markerAt >= 0) {
      this.hits.inc();
      members.splice(markerAt, 1);
      // Sorted so that a hit and a miss give the same order, and a seeded run replays exactly.
      return members.sort(byId);
    }
    this.misses.inc();
    return this.fill(key, load);
  }

  /** Does userId follow targetId? One round trip on a hit; load() fills the set on a miss. */
  async follows(userId: string, targetId: string, load: () => Promise<string[]>): Promise<boolean> {
    const key = this.prefix + userId;
    countCommands(2);
    const [isMember, isCached] = await Promise.all([this.redis.sismember(key, targetId), this.redis.sismember(key, MARKER)]);
    if (isCached === 1) {
      this.hits.inc();
      return isMember === 1;
    }
    this.misses.inc();
    const ids = await this.fill(key, load);
    return ids.includes(targetId);
  }

  /** Write-through of a follow (or an approval): only a cached set is touched; an uncached one fills from the database later. */
  async added(userId: string, targetId: string): Promise<void> {
    const key = this.prefix + userId;
    countCommands(1);
    if ((await this.redis.sismember(key, MARKER)) === 1) {
      countCommands(1);
      await this.redis.sadd(key, targetId);
    }
  }

  /** Write-through of an unfollow or a block. */
  async removed(userId: string, targetId: string): Promise<void> {
    const key = this.prefix + userId;
    countCommands(1);
    if ((await this.redis.sismember(key, MARKER)) === 1) {
      countCommands(1);
      await this.redis.srem(key, targetId);
    }
  }

  /**
   * Drops every cached set (SCAN, never KEYS, on a real server); returns how many. A durable start
   * does this: a set cached by a run that died between a database write and its write-through
   * would otherwise answer without that follow until it was next invalidated.
   */
  async clear(): Promise<number> {
    let cursor = '0';
    let dropped = 0;
    for (let round = 0; round < CLEAR_ROUNDS; round++) {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', escapeGlob(this.prefix) + '*', 'COUNT', 1000);
      if (keys.length > 0) dropped += await this.redis.del(...keys);
      cursor = next;
      if (cursor === '0') return dropped;
    }
    throw simError('SG_ERR_BUDGET_EXHAUSTED', `the graph cache did not finish clearing in ${CLEAR_ROUNDS} SCAN rounds`);
  }

  invalidate(userId: string): Promise<void> {
    countCommands(1);
    return this.redis.del(this.prefix + userId).then(() => undefined);
  }

  /**
   * Replaces the set in one MULTI, so no reader sees it half-built. A follow committed while load()
   * was reading can still be lost until the next invalidation: the inconsistency Instagram lived with.
   */
  private async fill(key: string, load: () => Promise<string[]>): Promise<string[]> {
    const ids = [...new Set(await load())].sort(byId);
    countCommands(2);
    await this.redis.multi().del(key).sadd(key, MARKER, ...ids).exec();
    return ids;
  }
}

/** Adds Redis commands (the data commands; a MULTI's framing is not counted) to the current request's or job's work. */
function countCommands(n: number): void {
  const work = currentWork();
  if (work) work.redisCommands += n;
}
