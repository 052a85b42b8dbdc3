// Users: profiles, search, a user's media, the viewer's feed, liked media and pending requests.
// Profiles are public; media and lists of a private account need an approved follow (canView).

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireAuth, resolveUserId } from '../auth.ts';
import { baseUrl, type ServerContext } from '../context.ts';
import { EnvelopeSchema, ok, paged, PagedEnvelopeSchema, PagedJsonMemo, PaginationSchema, responses } from '../envelope.ts';
import { apiError } from '../errors.ts';
import { SECURED } from '../openapi.ts';
import { pageQuery, paginationFor } from '../pagination.ts';
import { Count, IdString, idOf, PagingQuery, TimeRangeQuery, UserIdParams } from '../params.ts';
import { MediaSchema, UserSchema, UserShortSchema } from '../schemas.ts';
import { MediaJsonMemo, mediaListJson, mediaListV1, userShortV1, userV1, type MediaSerializer } from '../serializers.ts';
import { visibleUser } from '../visibility.ts';

const SearchQuery = Type.Object({
  q: Type.String({ minLength: 1, maxLength: 100, description: 'Start of a username or full name.' }),
  count: Count(20, 100),
});
const RecentQuery = Type.Object({ ...PagingQuery(20, 100), ...TimeRangeQuery });
const FeedQuery = Type.Object(PagingQuery(20, 100));
const LikedQuery = Type.Object({
  count: Count(20, 100),
  max_like_id: Type.Optional(IdString('Media liked before this (the previous page’s next_max_like_id).')),
  max_id: Type.Optional(IdString('Alias of max_like_id.')),
});

export function userRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const store = ctx.store;
  const onRequest = requireAuth(ctx);
  const feedJson = new MediaJsonMemo();
  const feedPages = new PagedJsonMemo();

  app.get<{ Querystring: Static<typeof SearchQuery> }>(
    '/v1/users/search',
    { onRequest, schema: { tags: ['users'], summary: 'Search users by name', security: SECURED, querystring: SearchQuery, response: responses(EnvelopeSchema(Type.Array(UserShortSchema))) } },
    async (request) => {
      const users = await store.searchUsers(request.query.q, request.query.count, request.viewerId);
      const base = baseUrl(ctx, request);
      return ok(users.map((u) => userShortV1(u, base)));
    },
  );

  app.get<{ Params: Static<typeof UserIdParams> }>(
    '/v1/users/:id',
    { onRequest, schema: { tags: ['users'], summary: 'A user’s profile (public, also for private accounts)', security: SECURED, params: UserIdParams, response: responses(EnvelopeSchema(UserSchema)) } },
    async (request) => {
      const id = idOf(resolveUserId(request, request.params.id), 'id');
      const user = await store.getUser(id);
      if (!user) throw apiError('SG_HTTP_NOT_FOUND', 'This user does not exist');
      return ok(userV1(user, baseUrl(ctx, request)));
    },
  );

  app.get<{ Params: Static<typeof UserIdParams>; Querystring: Static<typeof RecentQuery> }>(
    '/v1/users/:id/media/recent',
    {
      onRequest,
      schema: { tags: ['users'], summary: 'A user’s most recent media (private accounts: approved followers only)', security: SECURED, params: UserIdParams, querystring: RecentQuery, response: responses(PagedEnvelopeSchema(Type.Array(MediaSchema))) },
    },
    async (request) => {
      const viewer = request.viewerId;
      const id = idOf(resolveUserId(request, request.params.id), 'id');
      const q = request.query;
      const page = { ...pageQuery(q.count, q.max_id, q.min_id), minTimestamp: q.min_timestamp, maxTimestamp: q.max_timestamp };
      await visibleUser(store, viewer, id);
      const result = await store.listUserMedia(id, page);
      const data = await mediaListV1(store, viewer, result.items, baseUrl(ctx, request), { checkVisibility: false });
      return paged(data, paginationFor(ctx, request, result.nextMaxId));
    },
  );

  app.get<{ Querystring: Static<typeof FeedQuery> }>(
    '/v1/users/self/feed',
    { onRequest, schema: { tags: ['users'], summary: 'The viewer’s feed, newest first', security: SECURED, querystring: FeedQuery, response: responses(PagedEnvelopeSchema(Type.Array(MediaSchema))) } },
    async (request, reply) => {
      const viewer = request.viewerId;
      const q = request.query;
      const result = await store.getFeed(viewer, pageQuery(q.count, q.max_id, q.min_id));
      // No per-owner canView here: fan-out only reaches approved followers, and the store purges
      // an account's posts from a feed on unfollow and on block (test/server-privacy checks both),
      // and leaves out deleted media and users blocked either way while filling the page.
      // The hottest read: each media's JSON is remembered (feedJson), and the page is sent as the
      // bytes the response schema would write (test/server-feed-json checks they are the same),
      // the viewer's last page reused when it is made of the same JSON (feedPages).
      const serialize: MediaSerializer = reply.compileSerializationSchema(MediaSchema);
      const items = await mediaListJson(store, viewer, result.items, baseUrl(ctx, request), { checkVisibility: false }, feedJson, serialize);
      const pagination = reply.compileSerializationSchema(PaginationSchema)({ ...paginationFor(ctx, request, result.nextMaxId) });
      return reply.type('application/json; charset=utf-8').send(feedPages.body(viewer, items, pagination));
    },
  );

  app.get<{ Querystring: Static<typeof LikedQuery> }>(
    '/v1/users/self/media/liked',
    { onRequest, schema: { tags: ['users'], summary: 'Media the viewer liked, most recent like first', security: SECURED, querystring: LikedQuery, response: responses(PagedEnvelopeSchema(Type.Array(MediaSchema))) } },
    async (request) => {
      const viewer = request.viewerId;
      const q = request.query;
      const result = await store.listLikedMedia(viewer, { ...pageQuery(q.count, q.max_like_id ?? q.max_id, undefined, { max: 'max_like_id', min: 'min_id' }), viewerId: viewer });
      // The store filled the page with media the viewer may see.
      const data = await mediaListV1(store, viewer, result.items, baseUrl(ctx, request), { checkVisibility: false });
      return paged(data, paginationFor(ctx, request, result.nextMaxId, 'max_like_id'));
    },
  );

  app.get(
    '/v1/users/self/requested-by',
    { onRequest, schema: { tags: ['users'], summary: 'Users who asked to follow the viewer', security: SECURED, response: responses(EnvelopeSchema(Type.Array(UserShortSchema))) } },
    async (request) => {
      const users = await store.listRequestedBy(request.viewerId);
      const base = baseUrl(ctx, request);
      return ok(users.map((u) => userShortV1(u, base)));
    },
  );
}
