// Admin endpoints of the simulation, without authentication (they describe the simulated machine,
// not anyone's data; later work adds fault injection here): the topology and every metric as JSON.

import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';

export function simRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/_sim/topology', { schema: { tags: ['sim'], summary: 'The topology: config, shards, caches, queues (JSON)', response: { 200: Type.Unknown() } } }, async () => ctx.topology.describe());
  app.get('/_sim/metrics', { schema: { tags: ['sim'], summary: 'Every counter, gauge and histogram (JSON snapshot)', response: { 200: Type.Unknown() } } }, async () =>
    ctx.topology.metrics.snapshot(),
  );
}
