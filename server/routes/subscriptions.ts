// The real-time API of v1: POST|GET|DELETE /v1/subscriptions, authenticated with a registered
// client's client_id and client_secret (sim/domain/api-clients.ts), and the recent media of a geography
// subscription, GET /v1/geographies/{geo-id}/media/recent (the creating client by client_id, or
// any user by access token). Verification and notifications: sim/domain/subscriptions.ts.

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { SubscriptionObject, SubscriptionRecord } from '../../sim/domain/store.ts';
import { resolveToken, tokenOf } from '../auth.ts';
import { clientParam, requireClient } from '../client-auth.ts';
import { baseUrl, type ServerContext } from '../context.ts';
import { EnvelopeSchema, ok, paged, PagedEnvelopeSchema, responses } from '../envelope.ts';
import { apiError, invalidParam } from '../errors.ts';
import { SECURED } from '../openapi.ts';
import { pageQuery, paginationFor } from '../pagination.ts';
import { FINITE, IdString, mergeQueryIntoBody, PagingQuery } from '../params.ts';
import { MediaSchema } from '../schemas.ts';
import { mediaListV1 } from '../serializers.ts';

const Credentials = {
  client_id: Type.Optional(Type.String({ maxLength: 200, description: 'The registered client’s id (`scalegram clients register`).' })),
  client_secret: Type.Optional(Type.String({ maxLength: 200, description: 'The registered client’s secret.' })),
};

const OBJECTS = ['user', 'tag', 'location', 'geography'] as const;

const CreateBody = Type.Object({
  ...Credentials,
  object: Type.String({ enum: [...OBJECTS], description: 'user (users who authorized the client), tag, location or geography.' }),
  aspect: Type.String({ enum: ['media'], description: 'Only media, as in v1.' }),
  object_id: Type.Optional(Type.String({ maxLength: 100, description: 'The tag, the location id, or a user id (users: optional). Ignored for geographies.' })),
  callback_url: Type.String({ minLength: 1, maxLength: 2000, description: 'Where verification and notifications go; only addresses the server’s callback allowlist admits (default loopback).' }),
  verify_token: Type.Optional(Type.String({ maxLength: 200, default: '', description: 'Echoed to the callback as hub.verify_token.' })),
  lat: Type.Optional(Type.Number({ minimum: -90, maximum: 90, [FINITE]: true, description: 'Geography: centre latitude.' })),
  lng: Type.Optional(Type.Number({ minimum: -180, maximum: 180, [FINITE]: true, description: 'Geography: centre longitude.' })),
  radius: Type.Optional(Type.Number({ minimum: 1, maximum: 5000, [FINITE]: true, description: 'Geography: radius in metres (1–5000).' })),
});

const ListQuery = Type.Object(Credentials);

const DeleteQuery = Type.Object({
  ...Credentials,
  id: Type.Optional(IdString('One subscription.')),
  object: Type.Optional(Type.String({ enum: ['all', ...OBJECTS], description: 'Every subscription of this object type, or all.' })),
});

export const SubscriptionSchema = Type.Object({
  id: Type.String(),
  type: Type.String({ enum: ['subscription'] }),
  object: Type.String({ enum: [...OBJECTS] }),
  object_id: Type.Union([Type.String(), Type.Null()], { description: 'The tag, location id, user id (null: every user who authorized the client) or geography id (= id).' }),
  aspect: Type.String({ enum: ['media'] }),
  callback_url: Type.String(),
  lat: Type.Optional(Type.Number()),
  lng: Type.Optional(Type.Number()),
  radius: Type.Optional(Type.Number()),
});

const GeoParams = Type.Object({ id: IdString('A geography id: the id of a geography subscription.') });
const GeoQuery = Type.Object({ ...PagingQuery(20, 100), client_id: Type.Optional(Type.String({ maxLength: 200, description: 'The client that created the geography (without an access token).' })) });

function subscriptionV1(r: SubscriptionRecord): Static<typeof SubscriptionSchema> {
  return {
    id: r.id,
    type: 'subscription',
    object: r.object,
    object_id: r.objectId,
    aspect: r.aspect,
    callback_url: r.callbackUrl,
    ...(r.object === 'geography' ? { lat: r.lat!, lng: r.lng!, radius: r.radiusM! } : {}),
  };
}

export function subscriptionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const subs = ctx.topology.subscriptions;
  const security = [{ clientCredentials: [] }];

  app.post<{ Body: Static<typeof CreateBody> }>(
    '/v1/subscriptions',
    {
      preValidation: mergeQueryIntoBody,
      schema: {
        tags: ['subscriptions'],
        summary: 'Subscribe to new media of users who authorized the client, a tag, a location or a geography; the callback is verified first (hub.challenge)',
        security,
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        body: CreateBody,
        response: responses(EnvelopeSchema(SubscriptionSchema)),
      },
    },
    async (request) => {
      const client = await requireClient(ctx, request);
      const b = request.body;
      if (b.object === 'geography' && (b.lat === undefined || b.lng === undefined || b.radius === undefined)) throw invalidParam('a geography subscription needs lat, lng and radius');
      const record = await subs.create(client.clientId, {
        object: b.object as SubscriptionObject,
        objectId: b.object_id ?? null,
        aspect: b.aspect,
        callbackUrl: b.callback_url,
        verifyToken: b.verify_token ?? '',
        lat: b.lat ?? null,
        lng: b.lng ?? null,
        radiusM: b.radius ?? null,
      });
      return ok(subscriptionV1(record));
    },
  );

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/v1/subscriptions',
    { schema: { tags: ['subscriptions'], summary: 'The client’s subscriptions', security, querystring: ListQuery, response: responses(EnvelopeSchema(Type.Array(SubscriptionSchema))) } },
    async (request) => {
      const client = await requireClient(ctx, request);
      return ok((await subs.list(client.clientId)).map(subscriptionV1));
    },
  );

  app.delete<{ Querystring: Static<typeof DeleteQuery> }>(
    '/v1/subscriptions',
    { schema: { tags: ['subscriptions'], summary: 'Delete one subscription (id), those of one object type, or all (object=all)', security, querystring: DeleteQuery, response: responses(EnvelopeSchema(Type.Null())) } },
    async (request) => {
      const client = await requireClient(ctx, request);
      const q = request.query;
      if (q.id === undefined && q.object === undefined) throw invalidParam('give id, or object (user, tag, location, geography or all)');
      const removed = await subs.remove(client.clientId, q.id !== undefined ? { id: q.id } : { object: q.object as SubscriptionObject | 'all' });
      if (q.id !== undefined && removed === 0) throw apiError('SG_HTTP_NOT_FOUND', 'The client has no subscription with this id');
      return ok(null);
    },
  );

  app.get<{ Params: Static<typeof GeoParams>; Querystring: Static<typeof GeoQuery> }>(
    '/v1/geographies/:id/media/recent',
    {
      schema: {
        tags: ['geographies'],
        summary: 'Recent media inside a geography subscription’s circle, newest first (by access token, or client_id of the client that created it: public media only)',
        security: [...SECURED, { clientId: [] }],
        params: GeoParams,
        querystring: GeoQuery,
        response: responses(PagedEnvelopeSchema(Type.Array(MediaSchema))),
      },
    },
    async (request) => {
      // A user (access token) sees what they may see; a client alone (client_id) sees public media
      // of its own geographies, as v1 allowed.
      let viewerId = '';
      let clientId: string | null = null;
      const token = tokenOf(request);
      if (token !== undefined) {
        const user = token === null ? null : await resolveToken(ctx, request);
        if (user === null) throw apiError('SG_HTTP_INVALID_TOKEN');
        viewerId = user;
      } else {
        const id = clientParam(request, 'client_id');
        if (id === undefined) throw apiError('SG_HTTP_AUTH_REQUIRED', 'An access_token or client_id is required');
        if (id === null || !(await ctx.topology.clients.get(id))) throw apiError('SG_HTTP_INVALID_CLIENT');
        clientId = id;
      }
      const geo = await subs.geography(request.params.id);
      if (!geo || (clientId !== null && geo.clientId !== clientId)) throw apiError('SG_HTTP_NOT_FOUND', 'This geography does not exist');
      const q = request.query;
      const page = { ...pageQuery(q.count, q.max_id, q.min_id), ...(viewerId ? { viewerId } : {}) };
      const result = await ctx.store.listMediaNear({ lat: geo.lat!, lng: geo.lng!, radiusM: geo.radiusM! }, page);
      const data = await mediaListV1(ctx.store, viewerId, result.items, baseUrl(ctx, request), { checkVisibility: false });
      return paged(data, paginationFor(ctx, request, result.nextMaxId));
    },
  );
}
