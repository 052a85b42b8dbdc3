// Records from the Store → v1 objects. Pure functions of a record and the link base, plus the
// batch hydration of lists: one getUsers and one hasLiked per list, never a call per media.

import type { ActivityRecord, CommentRecord, LocationRecord, MediaRecord, Relationship, Store, UserRecord } from '../sim/domain/store.ts';
import { DEFAULT_AVATAR_KEY } from './assets.ts';
import { visibleOwners } from './visibility.ts';

export interface V1UserShort {
  id: string;
  username: string;
  full_name: string;
  profile_picture: string;
}
export interface V1User extends V1UserShort {
  bio: string;
  website: string;
  counts: { media: number; follows: number; followed_by: number };
}
export interface V1Comment {
  id: string;
  text: string;
  created_time: string;
  from: V1UserShort;
}
export interface V1Image {
  url: string;
  width: number;
  height: number;
}
export interface V1Location {
  id: string;
  name: string;
  latitude: number;
  longitude: number;
}
export interface V1Media {
  id: string;
  type: 'image';
  user: V1UserShort;
  images: { thumbnail: V1Image; low_resolution: V1Image; standard_resolution: V1Image };
  caption: V1Comment | null;
  likes: { count: number; data: V1UserShort[] };
  comments: { count: number; data: V1Comment[] };
  created_time: string;
  location: V1Location | null;
  tags: string[];
  link: string;
  filter: string;
  user_has_liked: boolean;
  users_in_photo: never[];
  attribution: null;
}
export interface V1Activity {
  id: string;
  type: ActivityRecord['kind'];
  created_time: string;
  user: V1User;
  media: V1Media | null;
  comment: V1Comment | null;
}

const NONE: never[] = [];

export function unixSeconds(ms: number): string {
  return String(Math.floor(ms / 1000));
}

export function cdnUrl(base: string, key: string): string {
  return `${base}/cdn/${key}`;
}

/** A profile picture is a CDN key, an absolute URL, or empty (the default avatar). */
export function pictureUrl(base: string, picture: string): string {
  if (picture === '') return cdnUrl(base, DEFAULT_AVATAR_KEY);
  if (picture.startsWith('http://') || picture.startsWith('https://')) return picture;
  return cdnUrl(base, picture.charCodeAt(0) === 47 /* / */ ? picture.replace(/^\/+/, '') : picture);
}

export function userShortV1(u: UserRecord, base: string): V1UserShort {
  return { id: u.id, username: u.username, full_name: u.fullName, profile_picture: pictureUrl(base, u.profilePicture) };
}

export function userV1(u: UserRecord, base: string): V1User {
  return {
    id: u.id,
    username: u.username,
    full_name: u.fullName,
    profile_picture: pictureUrl(base, u.profilePicture),
    bio: u.bio,
    website: u.website,
    counts: { media: u.counts.media, follows: u.counts.follows, followed_by: u.counts.followedBy },
  };
}

export function commentV1(c: CommentRecord, from: UserRecord, base: string): V1Comment {
  return { id: c.id, text: c.text, created_time: unixSeconds(c.createdMs), from: userShortV1(from, base) };
}

export function locationV1(l: LocationRecord): V1Location {
  return { id: l.id, name: l.name, latitude: l.lat, longitude: l.lng };
}

export function relationshipV1(r: Relationship): { outgoing_status: string; incoming_status: string; target_user_is_private: boolean } {
  return { outgoing_status: r.outgoingStatus, incoming_status: r.incomingStatus, target_user_is_private: r.targetUserIsPrivate };
}

export function tagV1(t: { name: string; mediaCount: number }): { name: string; media_count: number } {
  return { name: t.name, media_count: t.mediaCount };
}

/** What a viewer must not see of a media's likes and comments: users blocked either way, and how many likes and comments they made. */
export interface HiddenFromViewer {
  users: ReadonlySet<string>;
  counts: ReadonlyMap<string, { likes: number; comments: number }>;
}

const NOTHING_HIDDEN: HiddenFromViewer = { users: new Set(), counts: new Map() };

/**
 * A media as v1 showed it, with up to 4 recent likers and 8 recent comments taken from the record
 * (`users` must hold the owner, those likers and those commenters; missing ones are skipped).
 * Likers and commenters in `hidden` are left out of the summaries and of the counts.
 */
export function mediaV1(m: MediaRecord, users: ReadonlyMap<string, UserRecord>, base: string, liked: boolean, hidden: HiddenFromViewer = NOTHING_HIDDEN): V1Media | null {
  const owner = users.get(m.userId);
  if (!owner) return null;
  const user = userShortV1(owner, base);
  const img = m.images;
  const likers: V1UserShort[] = [];
  const hiddenUsers = hidden.users;
  for (const id of m.recentLikerIds) {
    const u = users.get(id);
    if (u && !hiddenUsers.has(id)) likers.push(userShortV1(u, base));
  }
  const comments: V1Comment[] = [];
  for (const c of m.recentComments) {
    const from = users.get(c.userId);
    if (from && !hiddenUsers.has(c.userId)) comments.push(commentV1(c, from, base));
  }
  const minus = hidden.counts.get(m.id);
  return {
    id: m.id,
    type: 'image',
    user,
    images: {
      thumbnail: { url: cdnUrl(base, img.thumbnail.key), width: img.thumbnail.width, height: img.thumbnail.height },
      low_resolution: { url: cdnUrl(base, img.lowResolution.key), width: img.lowResolution.width, height: img.lowResolution.height },
      standard_resolution: { url: cdnUrl(base, img.standardResolution.key), width: img.standardResolution.width, height: img.standardResolution.height },
    },
    caption: m.caption ? { id: m.caption.id, text: m.caption.text, created_time: unixSeconds(m.caption.createdMs), from: user } : null,
    likes: { count: minus ? Math.max(0, m.likeCount - minus.likes) : m.likeCount, data: likers },
    comments: { count: minus ? Math.max(0, m.commentCount - minus.comments) : m.commentCount, data: comments },
    created_time: unixSeconds(m.createdMs),
    location: m.location ? locationV1(m.location) : null,
    tags: m.tags,
    link: `${base}/p/${m.shortcode}/`,
    filter: m.filter,
    user_has_liked: liked,
    users_in_photo: NONE,
    attribution: null,
  };
}

/** A schema's serializer, as reply.compileSerializationSchema returns it (here: MediaSchema's). */
export type MediaSerializer = (payload: { [key: string]: unknown }) => string;

/** Fastify types a serializer's input as an index-signature object, which an interface is not. */
function serializeMedia(serialize: MediaSerializer, v: V1Media): string {
  return serialize(v as unknown as { [key: string]: unknown });
}

interface MediaJson {
  base: string;
  /** The records the JSON was made from: the owner, then each recent liker and commenter (undefined when missing). */
  users: Array<UserRecord | undefined>;
  /** The JSON with user_has_liked false and true (null until made). */
  json: [Buffer | null, Buffer | null];
}

/**
 * Each media's v1 JSON, remembered per media record and made again when anything it was made
 * from is not the same object any more. The Store hands out one object per cached value for as
 * long as that value is unchanged (its decode memo), so a changed media, owner, liker or
 * commenter is a different object and misses here; a list with users hidden from the viewer is
 * never remembered. What a hit saves is building and serializing the object again (the warm
 * feed's largest cost after the socket write), not any read: the records are read as before.
 */
export class MediaJsonMemo {
  private readonly memo = new WeakMap<MediaRecord, MediaJson>();

  /** `m` as the JSON `serialize` writes for mediaV1(m, …), or null when mediaV1 drops it. */
  json(m: MediaRecord, users: ReadonlyMap<string, UserRecord>, base: string, liked: boolean, hidden: HiddenFromViewer, serialize: MediaSerializer): Buffer | null {
    if (hidden.users.size > 0) {
      const v = mediaV1(m, users, base, liked, hidden);
      return v ? Buffer.from(serializeMedia(serialize, v)) : null;
    }
    const owner = users.get(m.userId);
    if (!owner) return null;
    let entry = this.memo.get(m);
    if (!entry || entry.base !== base || !sameUsers(entry.users, m, users)) {
      entry = { base, users: usersOf(m, users), json: [null, null] };
      this.memo.set(m, entry);
    }
    const i = liked ? 1 : 0;
    return (entry.json[i] ??= Buffer.from(serializeMedia(serialize, mediaV1(m, users, base, liked)!)));
  }
}

function usersOf(m: MediaRecord, users: ReadonlyMap<string, UserRecord>): Array<UserRecord | undefined> {
  const out = [users.get(m.userId)];
  for (const id of m.recentLikerIds) out.push(users.get(id));
  for (const c of m.recentComments) out.push(users.get(c.userId));
  return out;
}

function sameUsers(had: ReadonlyArray<UserRecord | undefined>, m: MediaRecord, users: ReadonlyMap<string, UserRecord>): boolean {
  if (had.length !== 1 + m.recentLikerIds.length + m.recentComments.length || had[0] !== users.get(m.userId)) return false;
  let i = 1;
  for (const id of m.recentLikerIds) if (had[i++] !== users.get(id)) return false;
  for (const c of m.recentComments) if (had[i++] !== users.get(c.userId)) return false;
  return true;
}

/** Every user a list of media mentions: owners, recent likers, recent commenters. */
export function usersOfMedia(records: Iterable<MediaRecord>, into: Set<string> = new Set()): Set<string> {
  for (const m of records) {
    into.add(m.userId);
    for (const id of m.recentLikerIds) into.add(id);
    for (const c of m.recentComments) into.add(c.userId);
  }
  return into;
}

export interface ListOptions {
  /**
   * Drop media whose owner the viewer may not see (private accounts not followed, blocks either way).
   * Lists of one owner already checked (media/recent) pass false.
   */
  checkVisibility: boolean;
}

/**
 * A page of media records → v1 media, in order, with one batched user lookup (owners, likers,
 * commenters), one batched hasLiked and (when asked) one canView per distinct owner, all in
 * parallel. Media whose owner is gone or hidden are dropped.
 */
export async function mediaListV1(store: Store, viewerId: string, records: readonly MediaRecord[], base: string, opts: ListOptions): Promise<V1Media[]> {
  const out: V1Media[] = [];
  await eachMediaV1(store, viewerId, records, opts, (m, users, liked, hiddenUsers) => {
    const v = mediaV1(m, users, base, liked, hiddenUsers);
    if (v) out.push(v);
  });
  return out;
}

/**
 * mediaListV1 as JSON: each media as `serialize` writes it (remembered in `memo`), in order, with
 * the same reads. Joined by pagedJson into the bytes the route's response schema would write.
 */
export async function mediaListJson(store: Store, viewerId: string, records: readonly MediaRecord[], base: string, opts: ListOptions, memo: MediaJsonMemo, serialize: MediaSerializer): Promise<Buffer[]> {
  const out: Buffer[] = [];
  await eachMediaV1(store, viewerId, records, opts, (m, users, liked, hiddenUsers) => {
    const json = memo.json(m, users, base, liked, hiddenUsers, serialize);
    if (json) out.push(json);
  });
  return out;
}

/** The batched reads of a media list, then `each` for every media whose owner is not hidden, in order. */
async function eachMediaV1(
  store: Store,
  viewerId: string,
  records: readonly MediaRecord[],
  opts: ListOptions,
  each: (m: MediaRecord, users: ReadonlyMap<string, UserRecord>, liked: boolean, hiddenUsers: HiddenFromViewer) => void,
): Promise<void> {
  if (records.length === 0) return;
  const ownerIds = distinct(records.map((m) => m.userId));
  const [users, liked, hidden, hiddenUsers] = await Promise.all([
    store.getUsers([...usersOfMedia(records)]),
    store.hasLiked(
      viewerId,
      records.map((m) => m.id),
    ),
    opts.checkVisibility ? hiddenOwners(store, viewerId, ownerIds) : null,
    hiddenFromViewer(store, viewerId, records),
  ]);
  for (const m of records) {
    if (hidden && hidden.has(m.userId)) continue;
    each(m, users, liked.has(m.id), hiddenUsers);
  }
}

/**
 * Users blocked either way with the viewer (one cached read) and, only when there are any, how
 * many of these media's likes and comments they made (one query per media shard).
 */
export async function hiddenFromViewer(store: Store, viewerId: string, records: Iterable<MediaRecord>): Promise<HiddenFromViewer> {
  if (!viewerId) return NOTHING_HIDDEN;
  const users = await store.blockedEitherWay(viewerId);
  if (users.size === 0) return NOTHING_HIDDEN;
  const ids: string[] = [];
  for (const m of records) if (m.likeCount > 0 || m.commentCount > 0) ids.push(m.id);
  return { users, counts: ids.length ? await store.countByUsers(ids, users) : new Map() };
}

async function hiddenOwners(store: Store, viewerId: string, ownerIds: readonly string[]): Promise<Set<string> | null> {
  const visible = await visibleOwners(store, viewerId, ownerIds);
  if (visible.size === ownerIds.length) return null;
  return new Set(ownerIds.filter((id) => !visible.has(id)));
}

/** Activity records → v1 entries, batching the actors, the media and their likes. */
export async function activityListV1(store: Store, viewerId: string, records: readonly ActivityRecord[], base: string): Promise<V1Activity[]> {
  if (records.length === 0) return [];
  const mediaIds = distinct(records.flatMap((a) => (a.mediaId ? [a.mediaId] : [])));
  const [media, liked] = await Promise.all([
    mediaIds.length ? store.getMediaMany(mediaIds) : new Map<string, MediaRecord>(),
    mediaIds.length ? store.hasLiked(viewerId, mediaIds) : new Set<string>(),
  ]);
  const hidden = await hiddenFromViewer(store, viewerId, media.values());
  const userIds = usersOfMedia(media.values(), new Set(records.map((a) => a.actorId)));
  const users = await store.getUsers([...userIds]);
  const out: V1Activity[] = [];
  for (const a of records) {
    const actor = users.get(a.actorId);
    if (!actor) continue;
    const m = a.mediaId ? media.get(a.mediaId) : undefined;
    out.push({
      id: a.id,
      type: a.kind,
      created_time: unixSeconds(a.createdMs),
      user: userV1(actor, base),
      media: m ? mediaV1(m, users, base, liked.has(m.id), hidden) : null,
      comment:
        a.kind === 'comment' && a.commentId
          ? { id: a.commentId, text: a.text ?? '', created_time: unixSeconds(a.createdMs), from: userShortV1(actor, base) }
          : null,
    });
  }
  return out;
}

export function distinct(ids: readonly string[]): string[] {
  if (ids.length <= 1) return ids.slice();
  return [...new Set(ids)];
}
