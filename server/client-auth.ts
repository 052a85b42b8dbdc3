// API clients authenticate as in v1: `client_id` and `client_secret` as parameters (the query, or
// the form body of a POST). Used by the real-time subscription endpoints; the secret is compared
// in constant time by the registry and never echoed.

import type { FastifyRequest } from 'fastify';
import type { ApiClientRecord } from '../sim/domain/store.ts';
import type { ServerContext } from './context.ts';
import { apiError } from './errors.ts';

/** Longest client_id or client_secret considered (characters). */
const MAX_CREDENTIAL_CHARS = 200;

/**
 * A parameter from the query or, for a POST, the body: a string, undefined when absent, or null
 * when malformed (repeated, empty, too long).
 */
export function clientParam(request: FastifyRequest, name: string): string | undefined | null {
  const body = request.body;
  const fromBody = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>)[name] : undefined;
  const fromQuery = (request.query as Record<string, unknown> | undefined)?.[name];
  const v = fromQuery ?? fromBody;
  if (v === undefined) return undefined;
  return typeof v === 'string' && v !== '' && v.length <= MAX_CREDENTIAL_CHARS ? v : null;
}

/** The registered client whose client_id and client_secret the request carries, or a v1 error. */
export async function requireClient(ctx: ServerContext, request: FastifyRequest): Promise<ApiClientRecord> {
  const clientId = clientParam(request, 'client_id');
  const secret = clientParam(request, 'client_secret');
  if (clientId === undefined || secret === undefined) throw apiError('SG_HTTP_CLIENT_REQUIRED');
  if (clientId === null || secret === null) throw apiError('SG_HTTP_INVALID_CLIENT');
  const client = await ctx.topology.clients.authenticate(clientId, secret);
  if (!client) throw apiError('SG_HTTP_INVALID_CLIENT');
  return client;
}
