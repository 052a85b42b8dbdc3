// Request parameters shared by routes: id and count schemas (Fastify validates them; failures are
// APIInvalidParametersError), the 2^63 bound on ids, and the v1 habit of accepting a POST's
// parameters in the query string as well as in a JSON or form body.

import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isIdString } from '../sim/parts/ids.ts';
import { invalidParam } from './errors.ts';

/** An id: decimal digits (checked against 2^63 by `idOf`). */
export const IdString = (description: string) => Type.String({ pattern: '^[0-9]{1,20}$', description });

export const UserIdParams = Type.Object({ id: Type.String({ pattern: '^(self|[0-9]{1,20})$', description: 'A user id, or `self`.' }) });
export const MediaIdParams = Type.Object({ id: IdString('A media id.') });

/**
 * Ajv checks minimum/maximum on finite numbers only, so `1e400` or `Infinity` in a query string
 * would pass a range as Infinity. This keyword refuses non-finite numbers; every numeric parameter
 * carries it. Registered through Fastify's `ajv.plugins` option.
 */
export const FINITE = 'x-finite';

interface AjvLike {
  addKeyword(definition: { keyword: string; schemaType: string; validate: ((schema: boolean, data: unknown) => boolean) & { errors?: unknown } }): unknown;
}

export function finiteKeyword<A>(ajv: A): A {
  const validate = Object.assign(
    function finite(schema: boolean, data: unknown): boolean {
      if (!schema || typeof data !== 'number' || Number.isFinite(data)) return true;
      validate.errors = [{ keyword: FINITE, message: 'must be a finite number', params: {} }];
      return false;
    },
    { errors: null as unknown },
  );
  (ajv as AjvLike).addKeyword({ keyword: FINITE, schemaType: 'boolean', validate });
  return ajv;
}

export const Count = (defaultCount: number, maxCount: number) =>
  Type.Integer({ minimum: 1, maximum: maxCount, default: defaultCount, [FINITE]: true, description: `Items wanted, 1–${maxCount} (default ${defaultCount}).` });

/** Unix seconds (inclusive bounds), up to the year 9999. */
export const Timestamp = (description: string) => Type.Integer({ minimum: 0, maximum: 253_402_300_799, [FINITE]: true, description });

export const PagingQuery = (defaultCount: number, maxCount: number) => ({
  count: Count(defaultCount, maxCount),
  max_id: Type.Optional(IdString('Items older than this id (the previous page’s next_max_id).')),
  min_id: Type.Optional(IdString('Items newer than this id.')),
});

export const TimeRangeQuery = {
  min_timestamp: Type.Optional(Timestamp('Only items created at or after this time (unix seconds).')),
  max_timestamp: Type.Optional(Timestamp('Only items created at or before this time (unix seconds).')),
};

export const Latitude = Type.Number({ minimum: -90, maximum: 90, [FINITE]: true, description: 'Degrees.' });
export const Longitude = Type.Number({ minimum: -180, maximum: 180, [FINITE]: true, description: 'Degrees.' });
export const DistanceM = Type.Number({ minimum: 1, maximum: 5000, default: 1000, [FINITE]: true, description: 'Search radius in metres (default 1000, max 5000).' });

/** A validated id string, or APIInvalidParametersError naming the parameter. */
export function idOf(value: string, name: string): string {
  if (!isIdString(value)) throw invalidParam(`${name} must be a decimal id below 2^63`);
  return value;
}

/**
 * preValidation hook for POSTs whose parameters may come in the query, a JSON body or a form body:
 * the body (when it is an object) wins over the query, and the merge is validated as the body.
 * A body that is not an object (an array, a string) is left alone so validation refuses it.
 */
export function mergeQueryIntoBody(request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  const body = request.body;
  const query = request.query as Record<string, unknown>;
  if (body === undefined || body === null) request.body = { ...query };
  else if (typeof body === 'object' && !Array.isArray(body) && !Buffer.isBuffer(body)) request.body = { ...query, ...(body as Record<string, unknown>) };
  done();
}
