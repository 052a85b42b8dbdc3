// Instagram v1's limit: N requests per hour per access token (per client IP when anonymous), in a
// fixed window on the topology clock, with `X-Ratelimit-Limit` / `X-Ratelimit-Remaining` on every
// response and OAuthRateLimitException (429) past the limit. Every API request (/v1, /oauth)
// counts, including errors and 404s there; the token is counted as sent, before it is checked.
// Image bytes, docs, health, metrics and /_sim answer with the headers but are not counted or
// refused: a page of images or a Prometheus scrape must not use up a client's API quota.
// With limit 0 (unlimited) both headers are sent as UNLIMITED_HEADER and nothing is counted.

import type { FastifyReply, FastifyRequest } from 'fastify';
import { tokenOf } from './auth.ts';
import type { ServerContext } from './context.ts';
import { errorBody } from './envelope.ts';
import { SERVER_ERRORS } from './errors.ts';

export const WINDOW_MS = 3_600_000;
/** What the headers say when there is no limit. */
export const UNLIMITED_HEADER = '2147483647';
/**
 * Keys tracked per window (tokens + IPs). Past the budget, new keys share one overflow counter,
 * so a flood of made-up tokens cannot grow memory without bound.
 */
export const MAX_TRACKED_KEYS = 100_000;
const OVERFLOW_KEY = '\u0000overflow';

const LIMITED_BODY = errorBody({ status: 429, type: SERVER_ERRORS.SG_HTTP_RATE_LIMITED.type, message: SERVER_ERRORS.SG_HTTP_RATE_LIMITED.message, isBug: false });

export interface RateLimiter {
  /** Counts the request and sets the headers; true when it is over the limit (the caller answers 429). */
  take(request: FastifyRequest, reply: FastifyReply): boolean;
  /** Counts a request known only by its client address (a malformed HTTP request); the two header values. */
  takeIp(ip: string): { limit: string; remaining: string };
  /** The onRequest hook: take() and answer 429 when over. */
  hook(request: FastifyRequest, reply: FastifyReply, done: () => void): void;
}

export function createRateLimiter(ctx: ServerContext): RateLimiter {
  const limit = ctx.rateLimitPerHour;
  const limitHeader = String(limit);
  const clock = ctx.topology.clock;
  let window = -1;
  const byToken = new Map<string, number>();
  const byIp = new Map<string, number>();

  /** Requests used in the current window by `key`, this one included. */
  function count(map: Map<string, number>, key: string): number {
    const w = Math.floor(clock.nowMs() / WINDOW_MS);
    if (w !== window) {
      window = w;
      byToken.clear();
      byIp.clear();
    }
    if (!map.has(key) && byToken.size + byIp.size >= MAX_TRACKED_KEYS) key = OVERFLOW_KEY;
    const used = (map.get(key) ?? 0) + 1;
    map.set(key, used);
    return used;
  }

  /** Requests used so far by `key` in the current window, without counting one. */
  function peek(map: Map<string, number>, key: string): number {
    return Math.floor(clock.nowMs() / WINDOW_MS) === window ? (map.get(key) ?? 0) : 0;
  }

  function take(request: FastifyRequest, reply: FastifyReply): boolean {
    if (limit === 0) {
      reply.header('X-Ratelimit-Limit', UNLIMITED_HEADER);
      reply.header('X-Ratelimit-Remaining', UNLIMITED_HEADER);
      return false;
    }
    const token = tokenOf(request);
    const url = request.url;
    const counted = url.startsWith('/v1') || url.startsWith('/oauth');
    const map = typeof token === 'string' ? byToken : byIp;
    const key = typeof token === 'string' ? token : (request.ip ?? '');
    const used = counted ? count(map, key) : peek(map, key);
    reply.header('X-Ratelimit-Limit', limitHeader);
    reply.header('X-Ratelimit-Remaining', String(used >= limit ? 0 : limit - used));
    return counted && used > limit;
  }

  return {
    take,
    takeIp(ip) {
      if (limit === 0) return { limit: UNLIMITED_HEADER, remaining: UNLIMITED_HEADER };
      const used = count(byIp, ip);
      return { limit: limitHeader, remaining: String(used >= limit ? 0 : limit - used) };
    },
    hook(request, reply, done) {
      if (take(request, reply)) {
        reply.code(429).send(LIMITED_BODY);
        return;
      }
      done();
    },
  };
}
