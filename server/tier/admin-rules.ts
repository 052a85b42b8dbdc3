// Which admin requests act differently on a tier of several server processes (serve --workers N):
// those every process must also apply in its own memory, and those a tier refuses because their
// state would live in one process only.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TierView } from '../context.ts';
import { apiError, invalidParam } from '../errors.ts';

/** Admin changes each process keeps in its own memory: the leader makes them, then every follower. */
export const APPLIED_BY_EVERY_PROCESS: ReadonlySet<string> = new Set(['POST /_sim/cache/leases', 'POST /_sim/db/service-time']);

/** Refused on a tier of several processes, with why (method and route → reason). */
export const REFUSED_ACROSS_PROCESSES: ReadonlyMap<string, string> = new Map([
  ['POST /_sim/reset', 'the server processes of a tier share the store, the queues and the Redis keys: a new world cannot start under the others; stop the tier and start it again (its tables are emptied at start), or run a scenario against it as it is (-e RESET=0)'],
  ['POST /_sim/shards/split', 'a split needs a new server and a move of half its shards; neither works across the processes of a tier'],
]);

/**
 * On the app of a tier's process: refuses what a tier cannot do, and has the leader tell the other
 * processes of each change they must apply too.
 */
export function installTierRules(app: FastifyInstance, tier: TierView): void {
  // Which processes serve, and how many requests each has answered (the leader's answer is the tier's).
  app.get('/_sim/tier', { schema: { tags: ['sim'], summary: 'The server processes of this tier (serve --workers): pids and requests answered by each' } }, async () => {
    const { answered, missing } = await tier.metrics();
    return { processes: tier.processes, answered, missing };
  });
  const keyOf = (request: FastifyRequest) => `${request.method} ${request.routeOptions.url ?? ''}`;
  if (tier.processes > 1) {
    app.addHook('onRequest', async (request) => {
      const key = keyOf(request);
      const why = REFUSED_ACROSS_PROCESSES.get(key);
      if (why === undefined) return;
      const refusal = `This server runs as ${tier.processes} processes (serve --workers): ${why}`;
      throw key === 'POST /_sim/reset' ? apiError('SG_HTTP_RESET_REFUSED', refusal) : invalidParam(refusal);
    });
  }
  const broadcast = tier.broadcast;
  if (!broadcast) return;
  app.addHook('onResponse', (request, reply, done) => {
    if (reply.statusCode < 300 && APPLIED_BY_EVERY_PROCESS.has(keyOf(request))) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (typeof request.headers.authorization === 'string') headers.authorization = request.headers.authorization;
      broadcast({ method: request.method, url: request.url, headers, body: Buffer.from(JSON.stringify(request.body ?? {})).toString('base64'), remoteAddress: request.ip });
    }
    done();
  });
}
