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

const PAGED_HEAD = Buffer.from('{"meta":{"code":200},"data":[');
const COMMA = Buffer.from(',');
const PAGINATION_KEY = Buffer.from('],"pagination":');
const CLOSE = Buffer.from('}');

/**
 * paged(data, pagination) as the bytes PagedEnvelopeSchema's serializer writes, from the items'
 * JSON and the pagination's JSON (each written by its own schema's serializer).
 */
export function pagedJson(items: readonly Buffer[], pagination: string): Buffer {
  const parts: Buffer[] = [PAGED_HEAD];
  items.forEach((item, i) => {
    if (i > 0) parts.push(COMMA);
    parts.push(item);
  });
  parts.push(PAGINATION_KEY, Buffer.from(pagination), CLOSE);
  return Buffer.concat(parts);
}

/** Bytes of remembered pages kept by a PagedJsonMemo before it starts again (bytes). */
const PAGE_MEMO_BYTES = 16 * 1024 * 1024;

/**
 * The last page answered per key (a viewer): a page made of the same item buffers (the same
 * objects, so the same JSON) and the same pagination is the same bytes, reused rather than copied
 * together again. Bounded by PAGE_MEMO_BYTES.
 */
export class PagedJsonMemo {
  private readonly last = new Map<string, { items: readonly Buffer[]; pagination: string; body: Buffer }>();
  private bytes = 0;

  body(key: string, items: readonly Buffer[], pagination: string): Buffer {
    const hit = this.last.get(key);
    if (hit && hit.pagination === pagination && hit.items.length === items.length && hit.items.every((b, i) => b === items[i])) return hit.body;
    const body = pagedJson(items, pagination);
    if (hit) this.bytes -= hit.body.length;
    if (this.bytes + body.length > PAGE_MEMO_BYTES) {
      this.last.clear();
      this.bytes = 0;
    }
    this.last.set(key, { items, pagination, body });
    this.bytes += body.length;
    return body;
  }
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
