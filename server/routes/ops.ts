// Operations: the favicon (browsers ask on every page, so it is served from memory and cached),
// /healthz, Prometheus /metrics, and the minimal HTML page behind each media's link (/p/<code>/).

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { fromShortcode } from '../../sim/parts/ids.ts';
import type { Assets } from '../assets.ts';
import { baseUrl, type ServerContext } from '../context.ts';
import { cdnUrl, pictureUrl } from '../serializers.ts';
import { sendCached } from './cdn.ts';

const FAVICON_CACHE = 'public, max-age=604800';
const ShortcodeParams = Type.Object({ shortcode: Type.String({ maxLength: 64 }) });

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>body{font:15px/1.4 system-ui,sans-serif;max-width:640px;margin:2em auto;padding:0 14px;color:#262626}img{max-width:100%;height:auto;display:block;background:#efefef}.who{display:flex;gap:10px;align-items:center;margin:12px 0}.who img{width:32px;height:32px;border-radius:50%}</style></head><body>${body}</body></html>`;
}

export function opsRoutes(app: FastifyInstance, ctx: ServerContext, assets: Assets): void {
  const store = ctx.store;

  app.get('/favicon.ico', { schema: { hide: true } }, async (request, reply) => sendCached(request, reply, assets.favicon, FAVICON_CACHE));

  app.get(
    '/healthz',
    {
      schema: {
        tags: ['ops'],
        summary: 'Liveness',
        response: { 200: Type.Object({ status: Type.String(), uptime_s: Type.Number(), topology: Type.String(), seed: Type.Number() }) },
      },
    },
    async () => ({
      status: 'ok',
      uptime_s: Math.max(0, (ctx.topology.clock.nowMs() - ctx.startedMs) / 1000),
      topology: ctx.topology.config.name,
      seed: ctx.topology.seed,
    }),
  );

  app.get('/metrics', { schema: { tags: ['ops'], summary: 'Every metric in Prometheus text format 0.0.4' } }, async (_request, reply) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    // A tier's leader answers for every server process (server/tier/): their metrics merged.
    return (ctx.tier ? (await ctx.tier.metrics()).metrics : ctx.topology.metrics).prometheus();
  });

  app.get<{ Params: Static<typeof ShortcodeParams> }>('/p/:shortcode', { schema: { hide: true, params: ShortcodeParams } }, async (request, reply) => {
    reply.type('text/html; charset=utf-8');
    const id = fromShortcode(request.params.shortcode);
    const media = id === null ? null : await store.getMedia(id.toString());
    const owner = media ? await store.getUser(media.userId) : null;
    if (!media || !owner) {
      reply.code(404);
      return page('Page not found • Scalegram', '<h1>Sorry, this page isn’t available.</h1><p>The link may be broken, or the photo may have been removed.</p>');
    }
    const base = baseUrl(ctx, request);
    const who = `<div class="who"><img src="${escapeHtml(pictureUrl(base, owner.profilePicture))}" alt=""><b>${escapeHtml(owner.username)}</b></div>`;
    if (owner.isPrivate) {
      return page(`@${owner.username} • Scalegram`, `${who}<h2>This account is private</h2><p>Follow ${escapeHtml(owner.username)} in the app to see their photos.</p>`);
    }
    const img = media.images.standardResolution;
    const caption = media.caption ? `<p><b>${escapeHtml(owner.username)}</b> ${escapeHtml(media.caption.text)}</p>` : '';
    const when = new Date(media.createdMs).toISOString();
    return page(
      `${owner.username} on Scalegram${media.caption ? `: “${media.caption.text.slice(0, 60)}”` : ''}`,
      `${who}<img src="${escapeHtml(cdnUrl(base, img.key))}" width="${img.width}" height="${img.height}" alt="${escapeHtml(media.caption?.text ?? 'Photo')}">${caption}<p>${media.likeCount} likes · ${media.commentCount} comments · <time datetime="${when}">${when.slice(0, 10)}</time></p>`,
    );
  });
}
