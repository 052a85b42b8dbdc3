// The v1 objects as JSON Schemas (TypeBox): User, Media, Comment, Tag, Location, Relationship,
// Activity. Responses are serialized through them, so a field not listed here never leaks out.

import { Type, type TSchema } from '@sinclair/typebox';

/** `nullable` is the OpenAPI 3.0 spelling, which fast-json-stringify also understands. */
function Nullable<T extends TSchema>(schema: T): T {
  return { ...schema, nullable: true } as T;
}

export const UserShortSchema = Type.Object({
  id: Type.String(),
  username: Type.String(),
  full_name: Type.String(),
  profile_picture: Type.String({ description: 'Absolute URL.' }),
});

export const UserSchema = Type.Object({
  id: Type.String(),
  username: Type.String(),
  full_name: Type.String(),
  profile_picture: Type.String({ description: 'Absolute URL.' }),
  bio: Type.String(),
  website: Type.String(),
  counts: Type.Object({ media: Type.Integer(), follows: Type.Integer(), followed_by: Type.Integer() }),
});

export const CommentSchema = Type.Object({
  id: Type.String(),
  text: Type.String(),
  created_time: Type.String({ description: 'Unix seconds, as a string.' }),
  from: UserShortSchema,
});

export const ImageSchema = Type.Object({ url: Type.String(), width: Type.Integer(), height: Type.Integer() });

export const LocationSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  latitude: Type.Number(),
  longitude: Type.Number(),
});

export const MediaSchema = Type.Object({
  id: Type.String(),
  type: Type.String({ enum: ['image'] }),
  user: UserShortSchema,
  images: Type.Object({ thumbnail: ImageSchema, low_resolution: ImageSchema, standard_resolution: ImageSchema }),
  caption: Nullable(CommentSchema),
  likes: Type.Object({ count: Type.Integer(), data: Type.Array(UserShortSchema, { description: 'Up to 4 most recent likers.' }) }),
  comments: Type.Object({ count: Type.Integer(), data: Type.Array(CommentSchema, { description: 'Up to 8 most recent comments, oldest first.' }) }),
  created_time: Type.String({ description: 'Unix seconds, as a string.' }),
  location: Nullable(LocationSchema),
  tags: Type.Array(Type.String()),
  link: Type.String(),
  filter: Type.String(),
  user_has_liked: Type.Boolean(),
  users_in_photo: Type.Array(Type.Any(), { maxItems: 0 }),
  attribution: Type.Null(),
});

export const TagSchema = Type.Object({ name: Type.String(), media_count: Type.Integer() });

export const RelationshipSchema = Type.Object({
  outgoing_status: Type.String({ enum: ['follows', 'requested', 'none'] }),
  incoming_status: Type.String({ enum: ['followed_by', 'requested_by', 'blocked_by_you', 'none'] }),
  target_user_is_private: Type.Boolean(),
});

export const ActivitySchema = Type.Object({
  id: Type.String(),
  type: Type.String({ enum: ['like', 'comment', 'follow', 'follow_request'] }),
  created_time: Type.String({ description: 'Unix seconds, as a string.' }),
  user: UserSchema,
  media: Nullable(MediaSchema),
  comment: Nullable(CommentSchema),
});

export const SessionSchema = Type.Object({ access_token: Type.String(), user: UserSchema });
