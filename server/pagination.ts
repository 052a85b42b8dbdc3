// Paging, v1 style: lists go newest first; `count` items per page; the next (older) page is asked
// for with `max_id` (or the v1 name for that list: `cursor`, `max_like_id`, `max_tag_id`); every
// page carries `pagination.next_url`, the same URL with only that cursor replaced, absolute and
// usable as given (access_token included if it was in the query). `{}` on the last page.

import type { FastifyRequest } from 'fastify';
import type { PageQuery } from '../sim/domain/store.ts';
import { baseUrl, type ServerContext } from './context.ts';
import type { Pagination } from './envelope.ts';
import { idOf } from './params.ts';

/** The cursor parameter of a list, as v1 named it. */
export type CursorParam = 'max_id' | 'cursor' | 'max_like_id' | 'max_tag_id';

const PAGINATION_KEY: Record<CursorParam, keyof Pagination> = {
  max_id: 'next_max_id',
  cursor: 'next_cursor',
  max_like_id: 'next_max_like_id',
  max_tag_id: 'next_max_tag_id',
};

export function pageQuery(count: number, maxId: string | undefined, minId: string | undefined, names: { max: string; min: string } = { max: 'max_id', min: 'min_id' }): PageQuery {
  const q: PageQuery = { count };
  if (maxId !== undefined) q.maxId = idOf(maxId, names.max);
  if (minId !== undefined) q.minId = idOf(minId, names.min);
  return q;
}

const EMPTY: Pagination = Object.freeze({}) as Pagination;

/**
 * The pagination object for a page whose store cursor is `nextMaxId` (null at the end). The next
 * URL is the URL the client called (including a `.json` suffix) with `param` set, and the aliases
 * of the cursor removed so the two cannot disagree.
 */
export function paginationFor(ctx: ServerContext, request: FastifyRequest, nextMaxId: string | null, param: CursorParam = 'max_id'): Pagination {
  if (nextMaxId === null) return EMPTY;
  const url = request.originalUrl;
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const params = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
  if (param !== 'max_id') params.delete('max_id');
  params.set(param, nextMaxId);
  const out: Pagination = { next_url: `${baseUrl(ctx, request)}${path}?${params.toString()}`, next_max_id: nextMaxId };
  if (param !== 'max_id') out[PAGINATION_KEY[param]] = nextMaxId;
  return out;
}
