// Likes of a media: who liked it, like, unlike. All need the viewer to be able to see the media.

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireAuth } from '../auth.ts';
import { baseUrl, type ServerContext } from '../context.ts';
import { EnvelopeSchema, ok, responses } from '../envelope.ts';
import { SECURED } from '../openapi.ts';
import { Count, MediaIdParams } from '../params.ts';
import { UserShortSchema } from '../schemas.ts';
import { userShortV1 } from '../serializers.ts';
import { visibleMediaId } from '../visibility.ts';

const LikersQuery = Type.Object({ count: Count(120, 500) });

export function likeRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const store = ctx.store;
  const onRequest = requireAuth(ctx);
  const done = responses(EnvelopeSchema(Type.Null()));

  app.get<{ Params: Static<typeof MediaIdParams>; Querystring: Static<typeof LikersQuery> }>(
    '/v1/media/:id/likes',
    { onRequest, schema: { tags: ['likes'], summary: 'Users who liked a media', security: SECURED, params: MediaIdParams, querystring: LikersQuery, response: responses(EnvelopeSchema(Type.Array(UserShortSchema))) } },
    async (request) => {
      const id = await visibleMediaId(store, request.viewerId, request.params.id);
      // Users blocked either way with the viewer are left out (and the list filled past them).
      const users = await store.listLikers(id, request.query.count, request.viewerId);
      const base = baseUrl(ctx, request);
      return ok(users.map((u) => userShortV1(u, base)));
    },
  );

  app.post<{ Params: Static<typeof MediaIdParams> }>(
    '/v1/media/:id/likes',
    { onRequest, schema: { tags: ['likes'], summary: 'Like a media', security: SECURED, params: MediaIdParams, response: done } },
    async (request) => {
      const id = await visibleMediaId(store, request.viewerId, request.params.id);
      await store.like(id, request.viewerId);
      return ok(null);
    },
  );

  app.delete<{ Params: Static<typeof MediaIdParams> }>(
    '/v1/media/:id/likes',
    { onRequest, schema: { tags: ['likes'], summary: 'Remove the viewer’s like', security: SECURED, params: MediaIdParams, response: done } },
    async (request) => {
      const id = await visibleMediaId(store, request.viewerId, request.params.id);
      await store.unlike(id, request.viewerId);
      return ok(null);
    },
  );
}
