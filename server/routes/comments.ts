// Comments on a media: list, add (text in the body or the query), delete (the comment's author or
// the media's owner). Reading and commenting need the viewer to be able to see the media.

import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireAuth } from '../auth.ts';
import { baseUrl, type ServerContext } from '../context.ts';
import { EnvelopeSchema, ok, responses } from '../envelope.ts';
import { invalidParam } from '../errors.ts';
import { SECURED } from '../openapi.ts';
import { Count, IdString, idOf, MediaIdParams, mergeQueryIntoBody } from '../params.ts';
import { CommentSchema } from '../schemas.ts';
import { commentV1, distinct } from '../serializers.ts';
import { visibleMediaId } from '../visibility.ts';

const CommentsQuery = Type.Object({ count: Count(150, 500) });
const CommentBody = Type.Object({ text: Type.String({ minLength: 1, maxLength: 2200, description: 'The comment (hashtags and @mentions allowed).' }) });
const CommentParams = Type.Object({ id: IdString('A media id.'), cid: IdString('A comment id.') });

export function commentRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const store = ctx.store;
  const onRequest = requireAuth(ctx);

  app.get<{ Params: Static<typeof MediaIdParams>; Querystring: Static<typeof CommentsQuery> }>(
    '/v1/media/:id/comments',
    { onRequest, schema: { tags: ['comments'], summary: 'Comments on a media', security: SECURED, params: MediaIdParams, querystring: CommentsQuery, response: responses(EnvelopeSchema(Type.Array(CommentSchema))) } },
    async (request) => {
      const id = await visibleMediaId(store, request.viewerId, request.params.id);
      // Comments by users blocked either way with the viewer are left out (and the list filled past them).
      const comments = await store.listComments(id, request.query.count, request.viewerId);
      const users = await store.getUsers(distinct(comments.map((c) => c.userId)));
      const base = baseUrl(ctx, request);
      return ok(
        comments.flatMap((c) => {
          const from = users.get(c.userId);
          return from ? [commentV1(c, from, base)] : [];
        }),
      );
    },
  );

  app.post<{ Params: Static<typeof MediaIdParams>; Body: Static<typeof CommentBody> }>(
    '/v1/media/:id/comments',
    {
      onRequest,
      preValidation: mergeQueryIntoBody,
      schema: { tags: ['comments'], summary: 'Comment on a media', security: SECURED, params: MediaIdParams, body: CommentBody, response: responses(EnvelopeSchema(CommentSchema)) },
    },
    async (request) => {
      const text = request.body.text;
      if (text.trim() === '') throw invalidParam('text is empty');
      const id = await visibleMediaId(store, request.viewerId, request.params.id);
      const [comment, from] = await Promise.all([store.addComment(id, request.viewerId, text), store.getUser(request.viewerId)]);
      if (!from) throw invalidParam('The viewer no longer exists');
      return ok(commentV1(comment, from, baseUrl(ctx, request)));
    },
  );

  app.delete<{ Params: Static<typeof CommentParams> }>(
    '/v1/media/:id/comments/:cid',
    { onRequest, schema: { tags: ['comments'], summary: 'Delete a comment (its author or the media’s owner)', security: SECURED, params: CommentParams, response: responses(EnvelopeSchema(Type.Null())) } },
    async (request) => {
      await store.deleteComment(idOf(request.params.id, 'id'), idOf(request.params.cid, 'cid'), request.viewerId);
      return ok(null);
    },
  );
}
