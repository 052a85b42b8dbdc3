// The admin API (`/_sim/*`) changes the topology, fails servers, seeds populations and lists the
// seeded accounts' tokens, so every request to it carries `Authorization: Bearer <admin token>`.
// The token is the operator's: generated from the CSPRNG at start (or given by --admin-token /
// SCALEGRAM_ADMIN_TOKEN) and compared in constant time. Without it: 401 in the v1 envelope, for
// every path under /_sim, existing or not, so the API cannot be mapped without the token.

import type { FastifyReply, FastifyRequest } from 'fastify';
import { secretEquals } from '../sim/domain/credentials.ts';
import type { Metrics } from '../sim/observability/metrics.ts';
import { errorBody } from './envelope.ts';
import { SERVER_ERRORS } from './errors.ts';
import { routedPath } from './request-path.ts';

/** The prefix of every admin path. */
export const ADMIN_PREFIX = '/_sim';
/** Shortest admin token accepted (characters): shorter ones are guessable. */
export const MIN_ADMIN_TOKEN_CHARS = 16;
/** Longest admin token accepted (characters). */
export const MAX_ADMIN_TOKEN_CHARS = 512;

/** Why an admin token is unusable, or null when it is fine. */
export function adminTokenProblem(token: string): string | null {
  if (token.length < MIN_ADMIN_TOKEN_CHARS) return `the admin token must be at least ${MIN_ADMIN_TOKEN_CHARS} characters`;
  if (token.length > MAX_ADMIN_TOKEN_CHARS) return `the admin token must be at most ${MAX_ADMIN_TOKEN_CHARS} characters`;
  if (!/^[\x21-\x7e]+$/.test(token)) return 'the admin token must be printable ASCII without spaces';
  return null;
}

function isAdminPath(path: string): boolean {
  return path === ADMIN_PREFIX || path.startsWith(ADMIN_PREFIX + '/');
}

/** The onRequest hook that refuses /_sim requests without the admin token. */
export function requireAdminForSim(adminToken: string, metrics: Metrics): (request: FastifyRequest, reply: FastifyReply, done: () => void) => void {
  const problem = adminTokenProblem(adminToken);
  if (problem) throw new RangeError(problem);
  metrics.describe('admin_auth_failures', 'Requests to /_sim refused for a missing or wrong admin token');
  const spec = SERVER_ERRORS.SG_HTTP_ADMIN_AUTH_REQUIRED;
  const body = errorBody({ status: spec.status, type: spec.type, message: spec.message, isBug: false });
  return function adminAuth(request, reply, done) {
    if (!isAdminPath(routedPath(request))) {
      done();
      return;
    }
    const header = request.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
    if (m && m[1]!.length <= MAX_ADMIN_TOKEN_CHARS && secretEquals(m[1]!, adminToken)) {
      done();
      return;
    }
    metrics.inc('admin_auth_failures');
    reply.header('WWW-Authenticate', 'Bearer realm="scalegram-admin"');
    reply.code(spec.status).send(body);
  };
}
