// Instagram v1's limit: N requests per hour, in a fixed window on the topology clock, with
// `X-Ratelimit-Limit` / `X-Ratelimit-Remaining` on every response and OAuthRateLimitException (429)
// past the limit. The budget belongs to the *user*: every token of one account draws on the same
// budget, so minting more tokens buys nothing. A request without a valid token (none, malformed, or
// one that names no session) draws on its client address's budget — so guessing tokens is throttled
// like any anonymous traffic. The token is resolved once here and reused by the route's auth hook.
// Every API request (/v1, /oauth) counts, including errors and 404s there. Image bytes, docs,
// health, metrics and /_sim answer with the headers but are not counted or refused: a page of
// images or a Prometheus scrape must not use up a client's API quota.
// With limit 0 (unlimited) both headers are sent as UNLIMITED_HEADER and nothing is counted.
// On a real Redis the budgets live there (`<prefix>rl:<window>:<key>`, one INCR per request, the key
// expiring with its window), so every server process of a deployment (one --namespace) draws on the
// same budget; if Redis fails, the request is counted in this process instead (fails open, counted as
// rate_limit_store_errors). Requests refused before any route (framework errors, malformed HTTP)
// are counted in this process only.

import type { FastifyReply, FastifyRequest } from 'fastify';
import { resolveToken } from './auth.ts';
import type { ServerContext } from './context.ts';
import { errorBody } from './envelope.ts';
import { SERVER_ERRORS } from './errors.ts';
import { routedPath } from './request-path.ts';

export const WINDOW_MS = 3_600_000;
/** What the headers say when there is no limit. */
export const UNLIMITED_HEADER = '2147483647';
/**
 * Keys tracked per window (users + addresses). Past the budget, new keys share one overflow
 * counter, so a flood of new addresses cannot grow memory without bound.
 */
export const MAX_TRACKED_KEYS = 100_000;
const OVERFLOW_KEY = '\u0000overflow';

/** INCR, and on the first request of a window the key's expiry: one round trip. */
const DRAW_SCRIPT = "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n";

const LIMITED_BODY = errorBody({ status: 429, type: SERVER_ERRORS.SG_HTTP_RATE_LIMITED.type, message: SERVER_ERRORS.SG_HTTP_RATE_LIMITED.message, isBug: false });

export interface RateLimiter {
  /** Counts a request by its client address only (framework errors, before any route) and sets the headers; true when over. */
  takeAnonymous(request: FastifyRequest, reply: FastifyReply): boolean;
  /** Counts a request known only by its client address (a malformed HTTP request); the two header values. */
  takeIp(ip: string): { limit: string; remaining: string };
  /**
   * The onRequest hook: resolves the token, counts the request against its user or address, answers
   * 429 when over. Without a limit it only sets the headers, as a callback hook (no promise).
   */
  hook: ((request: FastifyRequest, reply: FastifyReply) => Promise<unknown>) | ((request: FastifyRequest, reply: FastifyReply, done: () => void) => void);
}

/** Whether a request draws on the hourly budget (the API), or only reports it. */
function isCounted(request: FastifyRequest): boolean {
  const path = routedPath(request);
  return path.startsWith('/v1') || path.startsWith('/oauth');
}

export function createRateLimiter(ctx: ServerContext): RateLimiter {
  const limit = ctx.rateLimitPerHour;
  const limitHeader = String(limit);
  const clock = ctx.topology.clock;
  let window = -1;
  const used = new Map<string, number>();

  /** Requests used in the current window by `key`, this one included when `count`. */
  function draw(key: string, count: boolean): number {
    const w = Math.floor(clock.nowMs() / WINDOW_MS);
    if (w !== window) {
      if (!count) return 0;
      window = w;
      used.clear();
    }
    if (!count) return used.get(key) ?? 0;
    if (!used.has(key) && used.size >= MAX_TRACKED_KEYS) key = OVERFLOW_KEY;
    const n = (used.get(key) ?? 0) + 1;
    used.set(key, n);
    return n;
  }

  function headers(reply: FastifyReply, n: number): void {
    reply.header('X-Ratelimit-Limit', limitHeader);
    reply.header('X-Ratelimit-Remaining', String(n >= limit ? 0 : limit - n));
  }

  function unlimited(reply: FastifyReply): void {
    reply.header('X-Ratelimit-Limit', UNLIMITED_HEADER);
    reply.header('X-Ratelimit-Remaining', UNLIMITED_HEADER);
  }

  const ipKey = (ip: string | undefined) => `ip:${ip ?? ''}`;
  const shared = limit > 0 ? ctx.topology.sharedRedis() : null;
  if (shared) ctx.topology.metrics.describe('rate_limit_store_errors', 'Requests whose rate-limit count could not be kept in Redis and was kept in this process instead.');

  /** draw() on the deployment's Redis when there is one; this process's count if it fails. */
  async function drawShared(key: string, count: boolean): Promise<number> {
    if (!shared) return draw(key, count);
    const w = Math.floor(clock.nowMs() / WINDOW_MS);
    const redisKey = `${shared.keyPrefix}rl:${w}:${key}`;
    // A Redis that is away (ioredis queues commands and retries for seconds) must not hold the request: fail open now.
    if (shared.client.status !== 'ready') {
      ctx.topology.metrics.inc('rate_limit_store_errors');
      return draw(key, count);
    }
    try {
      if (!count) return Number((await shared.client.get(redisKey)) ?? 0);
      return Number(await shared.client.eval(DRAW_SCRIPT, 1, redisKey, String(WINDOW_MS + 60_000)));
    } catch {
      ctx.topology.metrics.inc('rate_limit_store_errors');
      return draw(key, count);
    }
  }

  return {
    takeAnonymous(request, reply) {
      if (limit === 0) {
        unlimited(reply);
        return false;
      }
      const counted = isCounted(request);
      const n = draw(ipKey(request.ip), counted);
      headers(reply, n);
      return counted && n > limit;
    },
    takeIp(ip) {
      if (limit === 0) return { limit: UNLIMITED_HEADER, remaining: UNLIMITED_HEADER };
      const n = draw(ipKey(ip), true);
      return { limit: limitHeader, remaining: String(n >= limit ? 0 : limit - n) };
    },
    hook: limit === 0 ? unlimitedHook : limitedHook,
  };

  function unlimitedHook(_request: FastifyRequest, reply: FastifyReply, done: () => void): void {
    unlimited(reply);
    done();
  }

  async function limitedHook(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const counted = isCounted(request);
    // The user a valid token names, else the address. A lookup that fails (its shard is down)
    // counts against the address; the route's own auth then answers with the same error.
    const userId = await resolveToken(ctx, request).catch(() => null);
    const n = await drawShared(userId ? `u:${userId}` : ipKey(request.ip), counted);
    headers(reply, n);
    if (counted && n > limit) {
      reply.code(429).send(LIMITED_BODY);
      return reply;
    }
    return undefined;
  }
}
