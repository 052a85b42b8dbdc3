// The follow graph: who a user follows and who follows them (cursor-paged; private accounts show
// these lists to approved followers only), and the viewer's relationship with a user, which
// POST changes with action=follow|unfollow|block|unblock|approve|ignore.

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RelationshipAction } from '../../sim/domain/store.ts';
import { requireAuth, resolveUserId } from '../auth.ts';
import { baseUrl, type ServerContext } from '../context.ts';
import { EnvelopeSchema, ok, paged, PagedEnvelopeSchema, responses } from '../envelope.ts';
import { apiError, invalidParam } from '../errors.ts';
import { SECURED } from '../openapi.ts';
import { pageQuery, paginationFor } from '../pagination.ts';
import { Count, IdString, idOf, mergeQueryIntoBody, UserIdParams } from '../params.ts';
import { RelationshipSchema, UserShortSchema } from '../schemas.ts';
import { relationshipV1, userShortV1 } from '../serializers.ts';
import { visibleUser } from '../visibility.ts';

const ListQuery = Type.Object({
  count: Count(50, 100),
  cursor: Type.Optional(IdString('The previous page’s next_cursor.')),
  max_id: Type.Optional(IdString('Alias of cursor.')),
});

const ACTIONS = ['follow', 'unfollow', 'block', 'unblock', 'approve', 'ignore'] as const;
const ActionBody = Type.Object({
  action: Type.String({ enum: [...ACTIONS], description: 'follow, unfollow, block, unblock, approve or ignore.' }),
});

export function relationshipRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const store = ctx.store;
  const onRequest = requireAuth(ctx);

  const listSchema = (summary: string) => ({
    tags: ['relationships'],
    summary,
    security: SECURED,
    params: UserIdParams,
    querystring: ListQuery,
    response: responses(PagedEnvelopeSchema(Type.Array(UserShortSchema))),
  });

  for (const [path, list, summary] of [
    ['/v1/users/:id/follows', store.listFollows.bind(store), 'Users this user follows'],
    ['/v1/users/:id/followed-by', store.listFollowedBy.bind(store), 'Users who follow this user'],
  ] as const) {
    app.get<{ Params: Static<typeof UserIdParams>; Querystring: Static<typeof ListQuery> }>(path, { onRequest, schema: listSchema(summary) }, async (request) => {
      const id = idOf(resolveUserId(request, request.params.id), 'id');
      const q = request.query;
      const page = pageQuery(q.count, q.cursor ?? q.max_id, undefined, { max: 'cursor', min: 'min_id' });
      await visibleUser(store, request.viewerId, id);
      const result = await list(id, { ...page, viewerId: request.viewerId });
      const base = baseUrl(ctx, request);
      return paged(
        result.items.map((u) => userShortV1(u, base)),
        paginationFor(ctx, request, result.nextMaxId, 'cursor'),
      );
    });
  }

  const target = async (request: FastifyRequest<{ Params: Static<typeof UserIdParams> }>): Promise<string> => {
    const id = idOf(resolveUserId(request, request.params.id), 'id');
    const user = await store.getUser(id);
    if (!user) throw apiError('SG_HTTP_NOT_FOUND', 'This user does not exist');
    return id;
  };

  app.get<{ Params: Static<typeof UserIdParams> }>(
    '/v1/users/:id/relationship',
    { onRequest, schema: { tags: ['relationships'], summary: 'The viewer’s relationship with a user', security: SECURED, params: UserIdParams, response: responses(EnvelopeSchema(RelationshipSchema)) } },
    async (request) => {
      const id = await target(request);
      return ok(relationshipV1(await store.getRelationship(request.viewerId, id)));
    },
  );

  app.post<{ Params: Static<typeof UserIdParams>; Body: Static<typeof ActionBody> }>(
    '/v1/users/:id/relationship',
    {
      onRequest,
      preValidation: mergeQueryIntoBody,
      schema: { tags: ['relationships'], summary: 'Follow, unfollow, block, unblock, approve or ignore a user', security: SECURED, params: UserIdParams, body: ActionBody, response: responses(EnvelopeSchema(RelationshipSchema)) },
    },
    async (request) => {
      const id = await target(request);
      if (id === request.viewerId) throw invalidParam('You cannot change your relationship with yourself');
      return ok(relationshipV1(await store.setRelationship(request.viewerId, id, request.body.action as RelationshipAction)));
    },
  );
}
