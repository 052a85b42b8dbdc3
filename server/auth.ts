// Who is asking: an access token in the `access_token` query parameter (on every method, as v1
// had it) or in an `Authorization: Bearer` header, resolved once per request by the Store.
// No token → APIRequiresAuthenticationError (401); a token naming no session →
// OAuthAccessTokenException (400, as v1 answered).

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from './context.ts';
import { apiError } from './errors.ts';
import type { WorkCounts } from '../sim/observability/work-meter.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated user's id; '' on routes that do not authenticate. */
    viewerId: string;
    /** The lookup of this request's token, made once (by the rate limiter, else by the route's auth). */
    tokenLookup: Promise<string | null> | null;
    /** Where this request's work is counted (its own counts, added to its route's when answered); null for admin and unmatched routes. */
    workCounts: WorkCounts | null;
  }
}

/** Tokens are opaque to the server; anything longer than this cannot be one. */
const MAX_TOKEN_CHARS = 512;

/**
 * The token a request carries: a string, undefined when there is none, or null when one is there
 * but malformed (a repeated query parameter, an empty value, a non-Bearer Authorization header).
 */
export function tokenOf(request: FastifyRequest): string | undefined | null {
  const fromQuery = (request.query as Record<string, unknown> | undefined)?.access_token;
  if (fromQuery !== undefined) return typeof fromQuery === 'string' && fromQuery !== '' ? fromQuery : null;
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : null;
}

/**
 * The user this request's token names: null without a well-formed token or when it names no
 * session. Looked up once per request; a store error (the token's shard is down) rejects.
 */
export function resolveToken(ctx: ServerContext, request: FastifyRequest): Promise<string | null> {
  if (request.tokenLookup) return request.tokenLookup;
  const token = tokenOf(request);
  request.tokenLookup = typeof token === 'string' && token.length <= MAX_TOKEN_CHARS ? ctx.store.authenticate(token) : Promise.resolve(null);
  // The limiter may look up and move on without awaiting a failure; the route awaits it again.
  request.tokenLookup.catch(() => undefined);
  return request.tokenLookup;
}

/** The onRequest hook of every route that needs a user: sets `request.viewerId` or refuses. */
export function requireAuth(ctx: ServerContext): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async function authenticate(request) {
    const token = tokenOf(request);
    if (token === undefined) throw apiError('SG_HTTP_AUTH_REQUIRED');
    if (token === null || token.length > MAX_TOKEN_CHARS) throw apiError('SG_HTTP_INVALID_TOKEN');
    const userId = await resolveToken(ctx, request);
    if (userId === null) throw apiError('SG_HTTP_INVALID_TOKEN');
    request.viewerId = userId;
  };
}

/** `self` → the viewer's id; anything else is returned as given (already pattern-checked). */
export function resolveUserId(request: FastifyRequest, id: string): string {
  return id === 'self' ? request.viewerId : id;
}
