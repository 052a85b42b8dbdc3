// POST /v1/accounts: sign-up. Parameters in a JSON body, a form body or the query string.

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { baseUrl, type ServerContext } from '../context.ts';
import { EnvelopeSchema, ok, responses } from '../envelope.ts';
import { mergeQueryIntoBody } from '../params.ts';
import { SessionSchema } from '../schemas.ts';
import { userV1 } from '../serializers.ts';

export const USERNAME_PATTERN = '^[A-Za-z0-9._]{1,30}$';

const SignupBody = Type.Object({
  username: Type.String({ pattern: USERNAME_PATTERN, description: '1–30 letters, digits, dots and underscores.' }),
  password: Type.String({ minLength: 6, maxLength: 128, description: '6–128 characters.' }),
  full_name: Type.String({ maxLength: 100, default: '' }),
  is_private: Type.Boolean({ default: false, description: 'true or false.' }),
  bio: Type.Optional(Type.String({ maxLength: 150 })),
  website: Type.Optional(Type.String({ maxLength: 200 })),
});

export function accountRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Body: Static<typeof SignupBody> }>(
    '/v1/accounts',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Create an account; answers a session (access_token and user)',
        body: SignupBody,
        response: responses(EnvelopeSchema(SessionSchema)),
      },
      preValidation: mergeQueryIntoBody,
    },
    async (request) => {
      const b = request.body;
      const { user, accessToken } = await ctx.store.createUser({
        username: b.username,
        password: b.password,
        fullName: b.full_name,
        isPrivate: b.is_private,
        ...(b.bio === undefined ? {} : { bio: b.bio }),
        ...(b.website === undefined ? {} : { website: b.website }),
      });
      return ok({ access_token: accessToken, user: userV1(user, baseUrl(ctx, request)) });
    },
  );
}
