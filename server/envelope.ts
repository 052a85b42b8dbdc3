// The v1 envelope: `{ meta: { code }, data, pagination }` on success and `{ meta: { code,
// error_type, error_message } }` on failure, with meta.code always equal to the HTTP status.

import { Type, type TSchema } from '@sinclair/typebox';
import type { V1Error } from './errors.ts';

export interface Pagination {
  next_url?: string;
  next_max_id?: string;
  next_cursor?: string;
  next_max_like_id?: string;
  next_max_tag_id?: string;
}

const OK_META = Object.freeze({ code: 200 });

export function ok<T>(data: T): { meta: { code: number }; data: T } {
  return { meta: OK_META, data };
}

export function paged<T>(data: T, pagination: Pagination): { meta: { code: number }; data: T; pagination: Pagination } {
  return { meta: OK_META, data, pagination };
}

export function errorBody(e: V1Error): { meta: { code: number; error_type: string; error_message: string } } {
  return { meta: { code: e.status, error_type: e.type, error_message: e.message } };
}

// Schemas: Fastify serializes through them (fast-json-stringify) and @fastify/swagger documents them.

export const MetaSchema = Type.Object({ code: Type.Integer({ description: 'Equal to the HTTP status.' }) });

export const PaginationSchema = Type.Object(
  {
    next_url: Type.Optional(Type.String({ description: 'Absolute URL of the next (older) page, usable as given.' })),
    next_max_id: Type.Optional(Type.String()),
    next_cursor: Type.Optional(Type.String()),
    next_max_like_id: Type.Optional(Type.String()),
    next_max_tag_id: Type.Optional(Type.String()),
  },
  { description: 'Empty ({}) on the last page.' },
);

export const ErrorEnvelopeSchema = Type.Object({
  meta: Type.Object({
    code: Type.Integer(),
    error_type: Type.String({ description: 'APINotFoundError, APIInvalidParametersError, APIRequiresAuthenticationError, OAuthAccessTokenException, OAuthException, APINotAllowedError, OAuthRateLimitException, OAuthParameterException, OAuthClientException, APISubscriptionError or APIError.' }),
    error_message: Type.String(),
  }),
});

export function EnvelopeSchema<T extends TSchema>(data: T) {
  return Type.Object({ meta: MetaSchema, data });
}

export function PagedEnvelopeSchema<T extends TSchema>(data: T) {
  return Type.Object({ meta: MetaSchema, data, pagination: PaginationSchema });
}

/** The `response` part of a route schema: the success body plus the error envelope. */
export function responses(success: TSchema): Record<string, TSchema> {
  return { 200: success, '4xx': ErrorEnvelopeSchema, '5xx': ErrorEnvelopeSchema };
}
