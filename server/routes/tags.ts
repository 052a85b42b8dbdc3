// Hashtags: a tag's media count, its recent media (max_tag_id / min_tag_id paging, v1's names),
// and search by prefix. Lists drop media the viewer cannot see.

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireAuth } from '../auth.ts';
import { baseUrl, type ServerContext } from '../context.ts';
import { EnvelopeSchema, ok, paged, PagedEnvelopeSchema, responses } from '../envelope.ts';
import { apiError } from '../errors.ts';
import { SECURED } from '../openapi.ts';
import { pageQuery, paginationFor } from '../pagination.ts';
import { Count, IdString } from '../params.ts';
import { MediaSchema, TagSchema } from '../schemas.ts';
import { mediaListV1, tagV1 } from '../serializers.ts';

const TAG_PATTERN = '^[\\p{L}\\p{N}_]{1,100}$';
const TagParams = Type.Object({ name: Type.String({ pattern: TAG_PATTERN, description: 'A tag, without the #.' }) });
const RecentQuery = Type.Object({
  count: Count(20, 100),
  max_tag_id: Type.Optional(IdString('Media older than this (the previous page’s next_max_tag_id).')),
  min_tag_id: Type.Optional(IdString('Media newer than this.')),
  max_id: Type.Optional(IdString('Alias of max_tag_id.')),
  min_id: Type.Optional(IdString('Alias of min_tag_id.')),
});
const SearchQuery = Type.Object({ q: Type.String({ minLength: 1, maxLength: 100, description: 'Start of a tag (a leading # is ignored).' }), count: Count(20, 100) });

/** Tags are matched case-insensitively, as Instagram's were. */
export function normalizeTag(name: string): string {
  return name.toLowerCase();
}

export function tagRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const store = ctx.store;
  const onRequest = requireAuth(ctx);

  app.get<{ Querystring: Static<typeof SearchQuery> }>(
    '/v1/tags/search',
    { onRequest, schema: { tags: ['tags'], summary: 'Tags by prefix', security: SECURED, querystring: SearchQuery, response: responses(EnvelopeSchema(Type.Array(TagSchema))) } },
    async (request) => {
      const q = normalizeTag(request.query.q.replace(/^#+/, ''));
      if (q === '') return ok([]);
      const tags = await store.searchTags(q, request.query.count);
      return ok(tags.map(tagV1));
    },
  );

  app.get<{ Params: Static<typeof TagParams> }>(
    '/v1/tags/:name',
    { onRequest, schema: { tags: ['tags'], summary: 'A tag and its media count', security: SECURED, params: TagParams, response: responses(EnvelopeSchema(TagSchema)) } },
    async (request) => {
      const tag = await store.getTag(normalizeTag(request.params.name));
      if (!tag) throw apiError('SG_HTTP_NOT_FOUND', 'This tag does not exist');
      return ok(tagV1(tag));
    },
  );

  app.get<{ Params: Static<typeof TagParams>; Querystring: Static<typeof RecentQuery> }>(
    '/v1/tags/:name/media/recent',
    { onRequest, schema: { tags: ['tags'], summary: 'Recent media with a tag', security: SECURED, params: TagParams, querystring: RecentQuery, response: responses(PagedEnvelopeSchema(Type.Array(MediaSchema))) } },
    async (request) => {
      const q = request.query;
      const page = pageQuery(q.count, q.max_tag_id ?? q.max_id, q.min_tag_id ?? q.min_id, { max: 'max_tag_id', min: 'min_tag_id' });
      const result = await store.listTagMedia(normalizeTag(request.params.name), { ...page, viewerId: request.viewerId });
      // The store filled the page with media the viewer may see.
      const data = await mediaListV1(store, request.viewerId, result.items, baseUrl(ctx, request), { checkVisibility: false });
      return paged(data, paginationFor(ctx, request, result.nextMaxId, 'max_tag_id'));
    },
  );
}
