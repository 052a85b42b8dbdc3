// GET /cdn/<key>: image bytes from the blob store (S3 + CDN in Instagram), immutable and cached
// forever by clients, with ETag revalidation (304). The default avatar is served from memory.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Assets, StaticAsset } from '../assets.ts';
import { DEFAULT_AVATAR_KEY } from '../assets.ts';
import type { ServerContext } from '../context.ts';
import { apiError } from '../errors.ts';

const KEY_RE = /^[A-Za-z0-9_\-.]+(\/[A-Za-z0-9_\-.]+)*$/;
const MAX_KEY_CHARS = 512;
export const IMMUTABLE = 'public, max-age=31536000, immutable';

export function quoteEtag(etag: string): string {
  return etag.startsWith('"') || etag.startsWith('W/"') ? etag : `"${etag}"`;
}

/** RFC 9110 If-None-Match: `*`, or a list of (possibly weak) tags compared weakly. */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === bare);
}

/** Answers with bytes, or 304 when the client's copy is current. */
export function sendCached(request: FastifyRequest, reply: FastifyReply, asset: StaticAsset, cacheControl: string): FastifyReply {
  const etag = quoteEtag(asset.etag);
  reply.header('ETag', etag).header('Cache-Control', cacheControl);
  if (matchesEtag(request.headers['if-none-match'], etag)) return reply.code(304).send();
  return reply.type(asset.contentType).send(asset.bytes);
}

export function cdnRoutes(app: FastifyInstance, ctx: ServerContext, assets: Assets): void {
  app.get<{ Params: { '*': string } }>('/cdn/*', { schema: { hide: true } }, async (request, reply) => {
    const key = request.params['*'];
    if (key.length > MAX_KEY_CHARS || !KEY_RE.test(key) || key.split('/').some((s) => s === '.' || s === '..')) {
      throw apiError('SG_HTTP_NOT_FOUND', 'No such image');
    }
    if (key === DEFAULT_AVATAR_KEY) return sendCached(request, reply, assets.defaultAvatar, IMMUTABLE);
    const blob = await ctx.store.getBlob(key);
    if (!blob) throw apiError('SG_HTTP_NOT_FOUND', 'No such image');
    return sendCached(request, reply, { bytes: blob.bytes, contentType: blob.contentType, etag: blob.etag }, IMMUTABLE);
  });
}
