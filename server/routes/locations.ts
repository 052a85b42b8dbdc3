// Locations: one by id, its recent media, and locations near a point. Lists drop media the viewer
// cannot see.

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireAuth } from '../auth.ts';
import { baseUrl, type ServerContext } from '../context.ts';
import { EnvelopeSchema, ok, paged, PagedEnvelopeSchema, responses } from '../envelope.ts';
import { apiError, invalidParam } from '../errors.ts';
import { SECURED } from '../openapi.ts';
import { pageQuery, paginationFor } from '../pagination.ts';
import { Count, DistanceM, IdString, idOf, Latitude, Longitude, PagingQuery, TimeRangeQuery } from '../params.ts';
import { LocationSchema, MediaSchema } from '../schemas.ts';
import { locationV1, mediaListV1 } from '../serializers.ts';

const LocationParams = Type.Object({ id: IdString('A location id.') });
const RecentQuery = Type.Object({ ...PagingQuery(20, 100), ...TimeRangeQuery });
/** Foursquare's ids as v1 accepted them: v1 venue ids are numbers, v2 ids 24 hex digits. */
export const FOURSQUARE_ID = '^[0-9]{1,20}$';
export const FOURSQUARE_V2_ID = '^[0-9A-Fa-f]{24}$';
const SearchQuery = Type.Object({
  lat: Type.Optional(Latitude),
  lng: Type.Optional(Longitude),
  distance: DistanceM,
  count: Count(20, 100),
  foursquare_id: Type.Optional(Type.String({ pattern: FOURSQUARE_ID, description: 'A Foursquare v1 venue id: the location carrying it (lat and lng not needed).' })),
  foursquare_v2_id: Type.Optional(Type.String({ pattern: FOURSQUARE_V2_ID, description: 'A Foursquare v2 venue id (24 hex digits): the location carrying it.' })),
});

export function locationRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const store = ctx.store;
  const onRequest = requireAuth(ctx);

  app.get<{ Querystring: Static<typeof SearchQuery> }>(
    '/v1/locations/search',
    { onRequest, schema: { tags: ['locations'], summary: 'Locations near a point, or the location carrying a Foursquare id', security: SECURED, querystring: SearchQuery, response: responses(EnvelopeSchema(Type.Array(LocationSchema))) } },
    async (request) => {
      const q = request.query;
      // A Foursquare id names one place: the answer is that location, or an empty list.
      if (q.foursquare_v2_id !== undefined || q.foursquare_id !== undefined) {
        const found = q.foursquare_v2_id !== undefined
          ? await store.findLocationByExternalId('foursquare_v2', q.foursquare_v2_id.toLowerCase())
          : await store.findLocationByExternalId('foursquare', q.foursquare_id!);
        return ok(found ? [locationV1(found)] : []);
      }
      if (q.lat === undefined || q.lng === undefined) throw invalidParam('lat and lng are required, unless foursquare_id or foursquare_v2_id is given');
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
