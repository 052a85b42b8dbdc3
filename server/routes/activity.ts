// The viewer's activity: likes, comments, follows and follow requests on what is theirs, newest
// first, paged by max_id.

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireAuth } from '../auth.ts';
import { baseUrl, type ServerContext } from '../context.ts';
import { paged, PagedEnvelopeSchema, responses } from '../envelope.ts';
import { SECURED } from '../openapi.ts';
import { pageQuery, paginationFor } from '../pagination.ts';
import { PagingQuery } from '../params.ts';
import { ActivitySchema } from '../schemas.ts';
import { activityListV1 } from '../serializers.ts';

const ActivityQuery = Type.Object(PagingQuery(20, 100));

export function activityRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const store = ctx.store;
  app.get<{ Querystring: Static<typeof ActivityQuery> }>(
    '/v1/users/self/activity',
    {
      onRequest: requireAuth(ctx),
      schema: { tags: ['activity'], summary: 'Likes, comments, follows and follow requests on what is the viewer’s', security: SECURED, querystring: ActivityQuery, response: responses(PagedEnvelopeSchema(Type.Array(ActivitySchema))) },
    },
    async (request) => {
      const q = request.query;
      const result = await store.listActivity(request.viewerId, pageQuery(q.count, q.max_id, q.min_id));
      const data = await activityListV1(store, request.viewerId, result.items, baseUrl(ctx, request));
      return paged(data, paginationFor(ctx, request, result.nextMaxId));
    },
  );
}
