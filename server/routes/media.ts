// Media: upload (multipart), read by id or shortcode, delete (owner only), geo search, popular.
// Private media are visible to the owner and approved followers only; lists drop what the viewer
// cannot see.

import type { MultipartFile, MultipartValue } from '@fastify/multipart';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { fromShortcode } from '../../sim/parts/ids.ts';
import type { MediaRecord, NewMedia } from '../../sim/domain/store.ts';
import { requireAuth } from '../auth.ts';
import { baseUrl, type ServerContext } from '../context.ts';
import { EnvelopeSchema, ok, responses } from '../envelope.ts';
import { ApiError, apiError, invalidParam } from '../errors.ts';
import { SECURED } from '../openapi.ts';
import { Count, DistanceM, idOf, Latitude, Longitude, MediaIdParams, TimeRangeQuery } from '../params.ts';
import { MediaSchema } from '../schemas.ts';
import { FOURSQUARE_ID, FOURSQUARE_V2_ID } from './locations.ts';
import { hiddenFromViewer, mediaListV1, mediaV1, usersOfMedia } from '../serializers.ts';

const ShortcodeParams = Type.Object({ code: Type.String({ pattern: '^[A-Za-z0-9_-]{1,11}$', description: 'The media’s shortcode (from its link).' }) });
const SearchQuery = Type.Object({ lat: Latitude, lng: Longitude, distance: DistanceM, count: Count(20, 100), ...TimeRangeQuery });
const PopularQuery = Type.Object({ count: Count(20, 100) });

/** Instagram's caption limit (characters). */
const CAPTION_MAX_CHARS = 2200;

/** The multipart form of POST /v1/media, for the docs (the handler reads the parts itself). */
const UploadForm = Type.Object({
  photo: Type.String({ format: 'binary', description: 'A JPEG or PNG image (at most blobs.maxUploadBytes).' }),
  caption: Type.Optional(Type.String({ maxLength: CAPTION_MAX_CHARS, description: 'Hashtags in it become tags.' })),
  lat: Type.Optional(Type.Number({ minimum: -90, maximum: 90 })),
  lng: Type.Optional(Type.Number({ minimum: -180, maximum: 180 })),
  location_name: Type.Optional(Type.String({ maxLength: 100 })),
  filter: Type.Optional(Type.String({ maxLength: 40, default: 'Normal' })),
  foursquare_id: Type.Optional(Type.String({ pattern: FOURSQUARE_ID, description: 'The place’s Foursquare v1 venue id: the media goes to the location carrying it, else the new place (lat, lng, location_name) carries it.' })),
  foursquare_v2_id: Type.Optional(Type.String({ pattern: FOURSQUARE_V2_ID, description: 'The place’s Foursquare v2 venue id (24 hex digits), likewise.' })),
});

export function mediaRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const store = ctx.store;
  const onRequest = requireAuth(ctx);
  const mediaResponse = responses(EnvelopeSchema(MediaSchema));
  const listResponse = responses(EnvelopeSchema(Type.Array(MediaSchema)));

  app.post(
    '/v1/media',
    {
      onRequest,
      schema: { tags: ['media'], summary: 'Upload a photo (multipart/form-data)', security: SECURED, consumes: ['multipart/form-data'], body: UploadForm, response: mediaResponse },
      // The body schema is documentation only: a multipart body is read from its parts below.
      validatorCompiler: () => () => true,
    },
    async (request) => {
      const input = await readUpload(request, ctx.topology.config.blobs.maxUploadBytes);
      const media = await store.createMedia(input);
      const v = mediaV1(media, await store.getUsers([request.viewerId]), baseUrl(ctx, request), false);
      if (!v) throw apiError('SG_HTTP_NOT_FOUND', 'This user does not exist');
      return ok(v);
    },
  );

  app.get<{ Querystring: Static<typeof SearchQuery> }>(
    '/v1/media/search',
    { onRequest, schema: { tags: ['media'], summary: 'Media near a point (from the geo index)', security: SECURED, querystring: SearchQuery, response: listResponse } },
    async (request) => {
      const q = request.query;
      if (q.min_timestamp !== undefined && q.max_timestamp !== undefined && q.min_timestamp > q.max_timestamp) throw invalidParam('min_timestamp is after max_timestamp');
      const items = await store.searchMedia({ lat: q.lat, lng: q.lng, distanceM: q.distance, count: q.count, minTimestamp: q.min_timestamp, maxTimestamp: q.max_timestamp, viewerId: request.viewerId });
      return ok(await mediaListV1(store, request.viewerId, items, baseUrl(ctx, request), { checkVisibility: false }));
    },
  );

  app.get<{ Querystring: Static<typeof PopularQuery> }>(
    '/v1/media/popular',
    { onRequest, schema: { tags: ['media'], summary: 'Popular media right now', security: SECURED, querystring: PopularQuery, response: listResponse } },
    async (request) => {
      const items = await store.popularMedia(request.query.count, request.viewerId);
      return ok(await mediaListV1(store, request.viewerId, items, baseUrl(ctx, request), { checkVisibility: false }));
    },
  );

  app.get<{ Params: Static<typeof ShortcodeParams> }>(
    '/v1/media/shortcode/:code',
    { onRequest, schema: { tags: ['media'], summary: 'A media by its shortcode', security: SECURED, params: ShortcodeParams, response: mediaResponse } },
    async (request) => {
      const id = fromShortcode(request.params.code);
      const media = id === null ? null : await store.getMedia(id.toString());
      if (!media) throw apiError('SG_HTTP_NOT_FOUND', 'This media does not exist');
      return ok(await fullMedia(ctx, request, media));
    },
  );

  app.get<{ Params: Static<typeof MediaIdParams> }>(
    '/v1/media/:id',
    { onRequest, schema: { tags: ['media'], summary: 'A media, with its first likers and comments', security: SECURED, params: MediaIdParams, response: mediaResponse } },
    async (request) => {
      const media = await store.getMedia(idOf(request.params.id, 'id'));
      if (!media) throw apiError('SG_HTTP_NOT_FOUND', 'This media does not exist');
      return ok(await fullMedia(ctx, request, media));
    },
  );

  app.delete<{ Params: Static<typeof MediaIdParams> }>(
    '/v1/media/:id',
    { onRequest, schema: { tags: ['media'], summary: 'Delete a media (its owner only)', security: SECURED, params: MediaIdParams, response: responses(EnvelopeSchema(Type.Null())) } },
    async (request) => {
      await store.deleteMedia(idOf(request.params.id, 'id'), request.viewerId);
      return ok(null);
    },
  );
}

/** One media, if the viewer may see it. The visibility check runs alongside the reads; nothing read is returned unless it passes. */
async function fullMedia(ctx: ServerContext, request: FastifyRequest, media: MediaRecord) {
  const store = ctx.store;
  const viewer = request.viewerId;
  const [allowed, liked, users, hidden] = await Promise.all([
    viewer === media.userId ? true : store.canView(viewer, media.userId),
    store.hasLiked(viewer, [media.id]),
    store.getUsers([...usersOfMedia([media])]),
    hiddenFromViewer(store, viewer, [media]),
  ]);
  if (!allowed) throw apiError('SG_HTTP_NOT_ALLOWED', 'This media belongs to a private account or one that blocked you');
  const v = mediaV1(media, users, baseUrl(ctx, request), liked.has(media.id), hidden);
  if (!v) throw apiError('SG_HTTP_NOT_FOUND', 'This media does not exist');
  return v;
}

const JPEG_MAGIC = Buffer.from([0xff, 0xd8, 0xff]);
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function isJpegOrPng(bytes: Buffer): boolean {
  return (bytes.length > JPEG_MAGIC.length && bytes.subarray(0, 3).equals(JPEG_MAGIC)) || (bytes.length > PNG_MAGIC.length && bytes.subarray(0, 8).equals(PNG_MAGIC));
}

const UPLOAD_FIELDS = new Set(['caption', 'lat', 'lng', 'location_name', 'filter', 'foursquare_id', 'foursquare_v2_id', 'access_token']);

/**
 * Reads the multipart body of an upload into a NewMedia, or refuses with APIInvalidParametersError:
 * not multipart, no `photo`, a file that is not a JPEG or PNG, a file over the limit (the parser
 * stops reading it; nothing is stored), unknown or repeated fields, bad coordinates.
 */
async function readUpload(request: FastifyRequest, maxUploadBytes: number): Promise<NewMedia> {
  if (!request.isMultipart()) throw apiError('SG_HTTP_BAD_UPLOAD', 'POST /v1/media takes multipart/form-data with a `photo` file');
  let photo: Buffer | null = null;
  const fields = new Map<string, string>();
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        const file = part as MultipartFile;
        if (file.fieldname !== 'photo') throw apiError('SG_HTTP_BAD_UPLOAD', `Unexpected file field "${file.fieldname}"; the photo goes in "photo"`);
        photo = await file.toBuffer();
      } else {
        const field = part as MultipartValue;
        if (!UPLOAD_FIELDS.has(field.fieldname)) throw invalidParam(`Unknown field "${field.fieldname}"`);
        if (fields.has(field.fieldname)) throw invalidParam(`Field "${field.fieldname}" is repeated`);
        if (field.valueTruncated) throw invalidParam(`Field "${field.fieldname}" is too long`);
        fields.set(field.fieldname, String(field.value));
      }
    }
  } catch (err) {
    if (err instanceof ApiError) throw err;
    const code = (err as { code?: unknown } | null)?.code;
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw apiError('SG_HTTP_UPLOAD_TOO_LARGE', `The photo is larger than ${maxUploadBytes} bytes`);
    // Everything else the parser throws (limits, truncated or malformed multipart) is a bad request.
    throw apiError('SG_HTTP_BAD_UPLOAD', err instanceof Error ? `Malformed upload: ${err.message}` : undefined);
  }
  if (photo === null) throw invalidParam('The `photo` file is missing');
  if (photo.length > maxUploadBytes) throw apiError('SG_HTTP_UPLOAD_TOO_LARGE', `The photo is larger than ${maxUploadBytes} bytes`);
  if (!isJpegOrPng(photo)) throw apiError('SG_HTTP_BAD_UPLOAD', 'The photo must be a JPEG or PNG image');

  const caption = fields.get('caption') ?? '';
  if (caption.length > CAPTION_MAX_CHARS) throw invalidParam(`caption is longer than ${CAPTION_MAX_CHARS} characters`);
  const filter = fields.get('filter') ?? 'Normal';
  if (filter.length === 0 || filter.length > 40) throw invalidParam('filter must be 1–40 characters');
  const lat = coordinate(fields.get('lat'), 'lat', 90);
  const lng = coordinate(fields.get('lng'), 'lng', 180);
  if ((lat === null) !== (lng === null)) throw invalidParam('lat and lng go together');
  const locationName = fields.get('location_name') ?? null;
  if (locationName !== null && (locationName.length === 0 || locationName.length > 100)) throw invalidParam('location_name must be 1–100 characters');
  if (locationName !== null && lat === null) throw invalidParam('location_name needs lat and lng');
  const foursquareId = fields.get('foursquare_id') ?? null;
  if (foursquareId !== null && !new RegExp(FOURSQUARE_ID).test(foursquareId)) throw invalidParam('foursquare_id must be a Foursquare v1 venue id (digits)');
  const foursquareV2Id = fields.get('foursquare_v2_id')?.toLowerCase() ?? null;
  if (foursquareV2Id !== null && !new RegExp(FOURSQUARE_V2_ID).test(foursquareV2Id)) throw invalidParam('foursquare_v2_id must be a Foursquare v2 venue id (24 hex digits)');
  return { userId: request.viewerId, caption: caption === '' ? null : caption, filter, lat, lng, locationName, foursquareId, foursquareV2Id, image: photo };
}

function coordinate(text: string | undefined, name: string, limit: number): number | null {
  if (text === undefined || text === '') return null;
  if (!/^-?\d{1,3}(\.\d{1,15})?$/.test(text.trim())) throw invalidParam(`${name} must be a number of degrees`);
  const v = Number(text);
  if (!Number.isFinite(v) || Math.abs(v) > limit) throw invalidParam(`${name} must be between -${limit} and ${limit}`);
  return v;
}
