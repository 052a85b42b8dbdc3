// Locations: one by id, its recent media, and locations near a point. Lists drop media the viewer
// cannot see.

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireAuth } from '../auth.ts';
import { baseUrl, type ServerContext } from '../context.ts';
import { EnvelopeSchema, ok, paged, PagedEnvelopeSchema, responses } from '../envelope.ts';
import { apiError } from '../errors.ts';
import { SECURED } from '../openapi.ts';
import { pageQuery, paginationFor } from '../pagination.ts';
import { Count, DistanceM, IdString, idOf, Latitude, Longitude, PagingQuery, TimeRangeQuery } from '../params.ts';
import { LocationSchema, MediaSchema } from '../schemas.ts';
import { locationV1, mediaListV1 } from '../serializers.ts';

const LocationParams = Type.Object({ id: IdString('A location id.') });
const RecentQuery = Type.Object({ ...PagingQuery(20, 100), ...TimeRangeQuery });
const SearchQuery = Type.Object({ lat: Latitude, lng: Longitude, distance: DistanceM, count: Count(20, 100) });

export function locationRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const store = ctx.store;
  const onRequest = requireAuth(ctx);

  app.get<{ Querystring: Static<typeof SearchQuery> }>(
    '/v1/locations/search',
    { onRequest, schema: { tags: ['locations'], summary: 'Locations near a point', security: SECURED, querystring: SearchQuery, response: responses(EnvelopeSchema(Type.Array(LocationSchema))) } },
    async (request) => {
      const q = request.query;
      const locations = await store.searchLocations({ lat: q.lat, lng: q.lng, distanceM: q.distance, count: q.count });
      return ok(locations.map(locationV1));
    },
  );

  app.get<{ Params: Static<typeof LocationParams> }>(
    '/v1/locations/:id',
    { onRequest, schema: { tags: ['locations'], summary: 'A location', security: SECURED, params: LocationParams, response: responses(EnvelopeSchema(LocationSchema)) } },
    async (request) => {
      const location = await store.getLocation(idOf(request.params.id, 'id'));
      if (!location) throw apiError('SG_HTTP_NOT_FOUND', 'This location does not exist');
      return ok(locationV1(location));
    },
  );

  app.get<{ Params: Static<typeof LocationParams>; Querystring: Static<typeof RecentQuery> }>(
    '/v1/locations/:id/media/recent',
    { onRequest, schema: { tags: ['locations'], summary: 'Recent media at a location', security: SECURED, params: LocationParams, querystring: RecentQuery, response: responses(PagedEnvelopeSchema(Type.Array(MediaSchema))) } },
    async (request) => {
      const q = request.query;
      const id = idOf(request.params.id, 'id');
      const page = { ...pageQuery(q.count, q.max_id, q.min_id), minTimestamp: q.min_timestamp, maxTimestamp: q.max_timestamp };
      const location = await store.getLocation(id);
      if (!location) throw apiError('SG_HTTP_NOT_FOUND', 'This location does not exist');
      const result = await store.listLocationMedia(id, { ...page, viewerId: request.viewerId });
      // The store filled the page with media the viewer may see.
      const data = await mediaListV1(store, request.viewerId, result.items, baseUrl(ctx, request), { checkVisibility: false });
      return paged(data, paginationFor(ctx, request, result.nextMaxId));
    },
  );
}
