// Registered API clients, managed by the operator through the admin API (behind the admin token,
// server/admin-auth.ts): register one (its secret is in that answer only), list them (no secrets),
// revoke one (its subscriptions go with it). `scalegram clients …` drives these from the shell.

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { CLIENT_ID_PATTERN, MAX_CLIENT_NAME_CHARS } from '../../sim/domain/api-clients.ts';
import type { ApiClientRecord } from '../../sim/domain/store.ts';
import type { ServerContext } from '../context.ts';
import { apiError } from '../errors.ts';
import { unixSeconds } from '../serializers.ts';

const TAGS = ['sim'];
const RegisterBody = Type.Object({ name: Type.String({ minLength: 1, maxLength: MAX_CLIENT_NAME_CHARS, description: 'What the client is called (shown in lists).' }) }, { additionalProperties: false });
const ClientParams = Type.Object({ id: Type.String({ pattern: CLIENT_ID_PATTERN, description: 'A client_id.' }) });

const ClientSchema = Type.Object({ client_id: Type.String(), name: Type.String(), created_time: Type.String({ description: 'Unix seconds, as a string.' }) });
const RegisteredSchema = Type.Object({ ...ClientSchema.properties, client_secret: Type.String({ description: 'Shown here only: it cannot be read again.' }) });

function clientV1(c: ApiClientRecord): Static<typeof ClientSchema> {
  return { client_id: c.clientId, name: c.name, created_time: unixSeconds(c.createdMs) };
}

export function clientRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const clients = ctx.topology.clients;

  app.post<{ Body: Static<typeof RegisterBody> }>(
    '/_sim/clients',
    { schema: { tags: TAGS, summary: 'Register an API client: answers its client_id and, once, its client_secret', body: RegisterBody, response: { 200: RegisteredSchema } } },
    async (request) => {
      const { client, secret } = await clients.register(request.body.name);
      return { ...clientV1(client), client_secret: secret };
    },
  );

  app.get(
    '/_sim/clients',
    { schema: { tags: TAGS, summary: 'Registered API clients, oldest first (no secrets)', response: { 200: Type.Object({ clients: Type.Array(ClientSchema) }) } } },
    async () => ({ clients: (await clients.list()).map(clientV1) }),
  );

  app.delete<{ Params: Static<typeof ClientParams> }>(
    '/_sim/clients/:id',
    { schema: { tags: TAGS, summary: 'Revoke an API client: its credentials stop working and its subscriptions are deleted', params: ClientParams, response: { 200: Type.Object({ revoked: Type.String() }) } } },
    async (request) => {
      if (!(await clients.revoke(request.params.id))) throw apiError('SG_HTTP_NOT_FOUND', 'No client with this client_id');
      return { revoked: request.params.id };
    },
  );
}
