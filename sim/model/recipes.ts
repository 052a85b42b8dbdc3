// The work each route does besides its main stages, written once as data: what the live code path
// (server/routes, sim/domain/photo-store.ts) does before and after the part of a request the model
// stages one by one (a feed page's media multiget and fills, a like's write and delete, a follow's
// two edge writes, an upload's resize, write and fan-out, a signup's two writes). The simulator
// runs these steps against its own caches, shards, Redis and workers — a cache lookup hits or misses
// the node's LRU and a miss is read and set; a write lands on the shard it names — so the work it
// counts per request follows the code's, and test/work-agreement.test.ts holds the two side by side
// on the same seeded workload. A change to a live route that this table does not follow fails there.
//
// What is left out, on purpose: the likers and commenters whose user objects a media list also
// looks up (the model keeps no per-media likes), the LTRIM a fan-out sends only for lists past
// feed.maxLength, private accounts' follow checks (the scenarios' accounts are public).

import type { OpName } from './plan.ts';

/** Whose key or shard a step touches: the acting account, the op's target account, the media's owner, a new account, or a tag (a shard by the tag's hash). */
export type Subject = 'actor' | 'target' | 'owner' | 'new' | 'tag';

/** Cache families the steps read (sim/model/virtual-topology.ts KEY). */
export type StepFamily = 'user' | 'token' | 'blocks' | 'blockedEither' | 'media';

/** The report's name for what loaded a shard (sim/model/model.ts SHARD_KINDS). */
export type StepKind = 'token' | 'user' | 'block' | 'graph' | 'like_check' | 'user_media' | 'media' | 'like' | 'activity' | 'counts' | 'tag';

/** Every step may say `ifWritten`: only when the op wrote (a follow of an account already followed writes nothing). */
export type Step = { ifWritten?: boolean } & (
  /** A look-aside read of one key: on a miss, one query (by primary key) on the subject's shard, then a set. */
  | { get: StepFamily; of: Subject; kind: StepKind; unlessSelf?: boolean; ifPage?: boolean }
  /** The user objects of the page's media owners, one multiget; misses read per logical shard (one query each), then set. */
  | { getOwners: true }
  /** A query that is not a cache fill: by primary key or a range scan of one page. */
  | { read: 'pk' | 'range'; on: Subject; kind: StepKind; unlessSelf?: boolean; ifPage?: boolean }
  | { write: StepKind; on: Subject; unlessSelf?: boolean }
  | { del: StepFamily; of: Subject; unlessSelf?: boolean }
  /** Redis commands (the follow graph's cache). */
  | { redis: number }
  /** A job queued (and run by a worker: its overhead only). */
  | { job: 'notify'; unlessSelf?: boolean }
);

export interface Recipe {
  /** Before the main stages (after the access token's lookup, which every authenticated route makes). */
  pre: Step[];
  /** After the main stages, before the answer. */
  tail: Step[];
  /** Whether the route authenticates (one `t:` lookup, its miss read from the account's shard). */
  authenticated: boolean;
}

/** canView(viewer, owner): the owner's user object, then both block lists (photo-store canView, isBlockedEitherWay). */
const canView = (of: Subject): Step[] => [
  { get: 'user', of, kind: 'user', unlessSelf: true },
  { get: 'blocks', of: 'actor', kind: 'block', unlessSelf: true },
  { get: 'blocks', of, kind: 'block', unlessSelf: true },
];

export const RECIPES: Record<Exclude<OpName, 'admin'>, Recipe> = {
  // users.ts /v1/users/self/feed → getFeed (mediaPage, keepMedia 'not-blocked': bx once), then
  // mediaListJson (getUsers of the owners, hasLiked, hiddenFromViewer: bx again).
  feed: {
    authenticated: true,
    pre: [],
    tail: [
      { get: 'blockedEither', of: 'actor', kind: 'block', ifPage: true },
      { getOwners: true },
      { read: 'range', on: 'actor', kind: 'like_check', ifPage: true },
      { get: 'blockedEither', of: 'actor', kind: 'block', ifPage: true },
    ],
  },
  // users.ts /v1/users/:id/media/recent → visibleUser (getUser ∥ canView), listUserMedia (the
  // media.by-user range read is the model's stage 1), then mediaListV1 as the feed's.
  user_media: {
    authenticated: true,
    pre: [{ get: 'user', of: 'target', kind: 'user' }, ...canView('target')],
    tail: [{ getOwners: true }, { read: 'range', on: 'actor', kind: 'like_check', ifPage: true }, { get: 'blockedEither', of: 'actor', kind: 'block', ifPage: true }],
  },
  // media.ts /v1/media/:id → getMedia (the model's multiget), then fullMedia: canView ∥ hasLiked ∥ getUsers ∥ hiddenFromViewer.
  media: {
    authenticated: true,
    pre: [],
    tail: [...canView('owner'), { read: 'range', on: 'actor', kind: 'like_check' }, { getOwners: true }, { get: 'blockedEither', of: 'actor', kind: 'block' }],
  },
  // likes.ts POST → visibleMediaId (getMedia, canView), like(): requireMedia, like.add (the model's
  // write), delete m:, user-like.add on the liker's shard, activity for the owner (not for a self-like) and its notify job.
  like: {
    authenticated: true,
    pre: [{ get: 'media', of: 'owner', kind: 'media' }, ...canView('owner'), { get: 'media', of: 'owner', kind: 'media' }],
    tail: [{ write: 'like', on: 'actor' }, { write: 'activity', on: 'owner', unlessSelf: true }, { job: 'notify', unlessSelf: true }],
  },
  // comments.ts POST → visibleMediaId, addComment(): requireMedia, comment.add (the model's write),
  // delete m:, activity; alongside it, the commenter's user object for the answer.
  comment: {
    authenticated: true,
    pre: [{ get: 'media', of: 'owner', kind: 'media' }, ...canView('owner'), { get: 'media', of: 'owner', kind: 'media' }, { get: 'user', of: 'actor', kind: 'user' }],
    tail: [{ write: 'activity', on: 'owner', unlessSelf: true }, { job: 'notify', unlessSelf: true }],
  },
  // relationships.ts POST follow → target() getUser, setRelationship: requireUser, isBlockedEitherWay,
  // edge (primary), the two edge writes (the model's stage), both accounts' counts (and their u:
  // deleted), the graph cache's write-through, activity and notify, then getRelationship:
  // requireUser (a miss: just deleted), both edges, the viewer's block list. Following an account
  // already followed writes nothing (edge() finds it): only the checks and the answer's reads.
  follow: {
    authenticated: true,
    pre: [
      { get: 'user', of: 'target', kind: 'user' },
      { get: 'user', of: 'target', kind: 'user' },
      { get: 'blocks', of: 'actor', kind: 'block' },
      { get: 'blocks', of: 'target', kind: 'block' },
      { read: 'pk', on: 'actor', kind: 'graph' },
    ],
    tail: [
      { write: 'counts', on: 'actor', ifWritten: true },
      { write: 'counts', on: 'target', ifWritten: true },
      { del: 'user', of: 'actor', ifWritten: true },
      { del: 'user', of: 'target', ifWritten: true },
      { redis: 1, ifWritten: true },
      { write: 'activity', on: 'target', ifWritten: true },
      { job: 'notify', ifWritten: true },
      { get: 'user', of: 'target', kind: 'user' },
      { read: 'pk', on: 'actor', kind: 'graph' },
      { read: 'pk', on: 'target', kind: 'graph' },
      { get: 'blocks', of: 'actor', kind: 'block' },
    ],
  },
  // media.ts POST → createMedia: requireUser, the resize job, media.create, a write per hashtag of
  // the caption (sim/parts/tags.ts parses both), the owner's counts (u: deleted), r: deleted, the
  // owner's own feed, the fan-out (the model's stages), then getMediaMany of the new media (a miss)
  // and the answer's owner object (a miss: just deleted).
  upload: {
    authenticated: true,
    pre: [{ get: 'user', of: 'actor', kind: 'user' }],
    tail: [
      { write: 'tag', on: 'tag' },
      { write: 'counts', on: 'actor' },
      { del: 'user', of: 'actor' },
      { get: 'media', of: 'owner', kind: 'media' },
      { get: 'user', of: 'actor', kind: 'user' },
    ],
  },
  // accounts.ts POST → createUser: the claim and the account (the model's stages), then getUsers of the new account (a miss).
  signup: { authenticated: false, pre: [], tail: [{ get: 'user', of: 'new', kind: 'user' }] },
};
