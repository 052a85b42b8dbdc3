// POST /oauth/access_token with grant_type=password: a session for a username and password. Like
// v1's OAuth endpoint it answers a bare `{access_token, user}` (no envelope); errors keep the
// envelope. Clients often send the form without a Content-Type; app.ts parses that as a form.

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { baseUrl, type ServerContext } from '../context.ts';
import { ErrorEnvelopeSchema } from '../envelope.ts';
import { requireClient } from '../client-auth.ts';
import { apiError } from '../errors.ts';
import { mergeQueryIntoBody } from '../params.ts';
import { SessionSchema } from '../schemas.ts';
import { userV1 } from '../serializers.ts';

const TokenBody = Type.Object({
  grant_type: Type.String({ maxLength: 50, description: 'Only `password` is supported.' }),
  username: Type.String({ minLength: 1, maxLength: 100 }),
  password: Type.String({ minLength: 1, maxLength: 200 }),
  client_id: Type.Optional(Type.String({ maxLength: 200, description: 'A registered client: the user authorizes it (its `user` subscriptions then follow the user’s posts). Needs client_secret.' })),
  client_secret: Type.Optional(Type.String({ maxLength: 200, description: 'The client’s secret.' })),
});

export function oauthRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Body: Static<typeof TokenBody> }>(
    '/oauth/access_token',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Exchange a username and password for an access token (grant_type=password)',
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        body: TokenBody,
        response: { 200: SessionSchema, '4xx': ErrorEnvelopeSchema, '5xx': ErrorEnvelopeSchema },
      },
      preValidation: mergeQueryIntoBody,
    },
    async (request) => {
      const b = request.body;
      if (b.grant_type !== 'password') throw apiError('SG_HTTP_BAD_GRANT');
      // Client credentials are optional; when given they must be a registered client's.
      const client = b.client_id !== undefined || b.client_secret !== undefined ? await requireClient(ctx, request) : null;
      const { user, accessToken } = await ctx.store.login(b.username, b.password);
      if (client) await ctx.topology.clients.authorize(user.id, client.clientId);
      return { access_token: accessToken, user: userV1(user, baseUrl(ctx, request)) };
    },
  );
}
