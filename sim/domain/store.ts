// The photo service's data API: what the HTTP layer may ask of the topology. Every method is
// routed through shards, replicas, caches, feed lists and queues, and counted. Ids are decimal
// strings; times are ms since the unix epoch. Expected refusals throw SimError with a code.

export interface UserRecord {
  id: string;
  username: string;
  fullName: string;
  bio: string;
  website: string;
  profilePicture: string;
  isPrivate: boolean;
  createdMs: number;
  counts: { media: number; follows: number; followedBy: number };
  /** Posts made while hybrid fan-out pulled this account (never pushed), so readers keep pulling it. */
  pulledPosts: number;
}

export interface LocationRecord {
  id: string;
  name: string;
  lat: number;
  lng: number;
}
/** External place ids a location may carry (Foursquare's v1 numeric ids and v2 hex ids). */
export type LocationProvider = 'foursquare' | 'foursquare_v2';

export interface CommentRecord {
  id: string;
  mediaId: string;
  userId: string;
  text: string;
  createdMs: number;
}

export interface ImageVariant {
  /** Blob key under the CDN path, e.g. "media/<id>/150.jpg". */
  key: string;
  width: number;
  height: number;
}

export interface MediaRecord {
  id: string;
  userId: string;
  shortcode: string;
  /** The caption as a comment by the owner, or null. */
  caption: CommentRecord | null;
  createdMs: number;
  filter: string;
  tags: string[];
  location: LocationRecord | null;
  likeCount: number;
  commentCount: number;
  images: { thumbnail: ImageVariant; lowResolution: ImageVariant; standardResolution: ImageVariant };
  /** Up to 4 most recent likers, newest first (v1 put a few in `likes.data`). */
  recentLikerIds: string[];
  /** Up to 8 most recent comments, oldest first (v1 put them in `comments.data`). */
  recentComments: CommentRecord[];
}

export type OutgoingStatus = 'follows' | 'requested' | 'none';
export type IncomingStatus = 'followed_by' | 'requested_by' | 'blocked_by_you' | 'none';
export type RelationshipAction = 'follow' | 'unfollow' | 'block' | 'unblock' | 'approve' | 'ignore';

export interface Relationship {
  outgoingStatus: OutgoingStatus;
  incomingStatus: IncomingStatus;
  targetUserIsPrivate: boolean;
}

export interface ActivityRecord {
  id: string;
  kind: 'like' | 'comment' | 'follow' | 'follow_request';
  actorId: string;
  mediaId: string | null;
  commentId: string | null;
  text: string | null;
  createdMs: number;
}

/** A page of results and the cursor for the next (older) page, or null at the end. */
export interface Page<T> {
  items: T[];
  nextMaxId: string | null;
}

export interface PageQuery {
  /** Items wanted (already clamped by the caller to 1..max). */
  count: number;
  /** Only items with id strictly less than this (the next_max_id of the previous page). */
  maxId?: string;
  /** Only items with id strictly greater than this. */
  minId?: string;
  /**
   * The user asking. When set, items this viewer may not see (private owners not followed, users
   * blocked either way, deleted media) are left out and the page is filled past them
   * (sim/domain/page-scan.ts), so `nextMaxId` is set only when a visible item follows.
   */
  viewerId?: string;
}

export interface TimeRange {
  /** Unix seconds, inclusive bounds. */
  minTimestamp?: number;
  maxTimestamp?: number;
}

export interface NewMedia {
  userId: string;
  caption: string | null;
  filter: string;
  lat: number | null;
  lng: number | null;
  locationName: string | null;
  /** External ids of the place (the media goes to the location that already carries one, if any). */
  foursquareId?: string | null;
  foursquareV2Id?: string | null;
  /** The uploaded image, already checked to be a JPEG or PNG by the caller. */
  image: Buffer;
}

export interface Store {
  // Accounts and tokens
  createUser(input: { username: string; password: string; fullName: string; isPrivate: boolean; bio?: string; website?: string }): Promise<{ user: UserRecord; accessToken: string }>;
  login(username: string, password: string): Promise<{ user: UserRecord; accessToken: string }>;
  /** The user id an access token belongs to, or null for an unknown token. */
  authenticate(accessToken: string): Promise<string | null>;
  /**
   * Puts what requests by and about these accounts read into the cache, through the same reads
   * (their token, user object, block lists, and every photo they posted, with its owner): the warm
   * steady state `scalegram simulate` starts from, for a live run. Returns the keys read.
   */
  warmCaches(accounts: ReadonlyArray<{ id: string; accessToken: string }>): Promise<number>;

  // Users
  getUser(id: string): Promise<UserRecord | null>;
  getUsers(ids: readonly string[]): Promise<Map<string, UserRecord>>;
  /** Users by username prefix; with `viewerId`, users blocked either way are left out (and the list filled). */
  searchUsers(query: string, count: number, viewerId?: string): Promise<UserRecord[]>;

  // Relationships (viewer → target). Blocks hide both ways; private accounts need approval.
  getRelationship(viewerId: string, targetId: string): Promise<Relationship>;
  setRelationship(viewerId: string, targetId: string, action: RelationshipAction): Promise<Relationship>;
  /** May `viewerId` see `ownerId`'s media and lists? */
  canView(viewerId: string, ownerId: string): Promise<boolean>;
  /** The subset of `ownerIds` whose media and lists `viewerId` may see (one batched check). */
  canViewMany(viewerId: string, ownerIds: readonly string[]): Promise<Set<string>>;
  /** Users `userId` blocks or is blocked by: hidden from each other everywhere (one cached read on `userId`'s shard). */
  blockedEitherWay(userId: string): Promise<ReadonlySet<string>>;
  /** Likes and comments made on each media by `userIds` (to take hidden users out of the counts a viewer sees). */
  countByUsers(mediaIds: readonly string[], userIds: ReadonlySet<string>): Promise<Map<string, { likes: number; comments: number }>>;
  listFollows(userId: string, page: PageQuery): Promise<Page<UserRecord>>;
  listFollowedBy(userId: string, page: PageQuery): Promise<Page<UserRecord>>;
  /** Pending follow requests to `userId`. */
  listRequestedBy(userId: string): Promise<UserRecord[]>;

  // Media
  createMedia(input: NewMedia): Promise<MediaRecord>;
  getMedia(id: string): Promise<MediaRecord | null>;
  getMediaMany(ids: readonly string[]): Promise<Map<string, MediaRecord>>;
  /** Deletes media; SG_ERR_NOT_ALLOWED unless `byUserId` owns it. */
  deleteMedia(id: string, byUserId: string): Promise<void>;
  listUserMedia(userId: string, page: PageQuery & TimeRange): Promise<Page<MediaRecord>>;
  /** The viewer's feed, newest first (push, pull or hybrid, as the topology says). */
  getFeed(userId: string, page: PageQuery): Promise<Page<MediaRecord>>;
  /** Media near a point, from the geo index, newest first; with `viewerId`, only what that viewer may see (filled). */
  searchMedia(q: { lat: number; lng: number; distanceM: number; count: number; viewerId?: string } & TimeRange): Promise<MediaRecord[]>;
  /**
   * Media within `radiusM` of a point, newest first, paged by id (a geography's recent media).
   * Without `page.viewerId` only media of public accounts are listed.
   */
  listMediaNear(point: { lat: number; lng: number; radiusM: number }, page: PageQuery): Promise<Page<MediaRecord>>;
  /** The most liked recent media; with `viewerId`, only what that viewer may see (filled from the top 100). */
  popularMedia(count: number, viewerId?: string): Promise<MediaRecord[]>;

  // Likes and comments
  like(mediaId: string, userId: string): Promise<void>;
  unlike(mediaId: string, userId: string): Promise<void>;
  /** Users who liked a media, newest first; with `viewerId`, users blocked either way are left out. */
  listLikers(mediaId: string, count: number, viewerId?: string): Promise<UserRecord[]>;
  /** Which of `mediaIds` `userId` has liked. */
  hasLiked(userId: string, mediaIds: readonly string[]): Promise<Set<string>>;
  listLikedMedia(userId: string, page: PageQuery): Promise<Page<MediaRecord>>;
  addComment(mediaId: string, userId: string, text: string): Promise<CommentRecord>;
  /** SG_ERR_NOT_ALLOWED unless `byUserId` wrote the comment or owns the media. */
  deleteComment(mediaId: string, commentId: string, byUserId: string): Promise<void>;
  /** The last `count` comments, oldest first; with `viewerId`, comments by users blocked either way are left out. */
  listComments(mediaId: string, count: number, viewerId?: string): Promise<CommentRecord[]>;

  // Tags and locations
  getTag(name: string): Promise<{ name: string; mediaCount: number } | null>;
  listTagMedia(name: string, page: PageQuery): Promise<Page<MediaRecord>>;
  searchTags(query: string, count: number): Promise<Array<{ name: string; mediaCount: number }>>;
  getLocation(id: string): Promise<LocationRecord | null>;
  listLocationMedia(id: string, page: PageQuery & TimeRange): Promise<Page<MediaRecord>>;
  searchLocations(q: { lat: number; lng: number; distanceM: number; count: number }): Promise<LocationRecord[]>;
  /** The location carrying an external id, or null. */
  findLocationByExternalId(provider: LocationProvider, externalId: string): Promise<LocationRecord | null>;

  // Activity on what is yours: likes, comments, follows, follow requests; newest first.
  listActivity(userId: string, page: PageQuery): Promise<Page<ActivityRecord>>;

  // Image bytes (the S3 stand-in).
  getBlob(key: string): Promise<{ bytes: Buffer; contentType: string; etag: string } | null>;
}

// Registered API clients and real-time subscriptions (sim/domain/api-clients.ts, sim/domain/subscriptions.ts).

export interface ApiClientRecord {
  /** 32 hex digits; public. */
  clientId: string;
  name: string;
  createdMs: number;
}

export interface ClientRegistry {
  /** A new client; the secret is returned here only. */
  register(name: string): Promise<{ client: ApiClientRecord; secret: string }>;
  /** Every client, oldest first (no secrets). */
  list(): Promise<ApiClientRecord[]>;
  get(clientId: string): Promise<ApiClientRecord | null>;
  /** The client if the secret is its own (compared in constant time), else null. */
  authenticate(clientId: string, secret: string): Promise<ApiClientRecord | null>;
  /** Removes a client and its subscriptions; false when there was none. */
  revoke(clientId: string): Promise<boolean>;
  /** Records that `userId` took a token through this client (its `user` subscriptions follow them). */
  authorize(userId: string, clientId: string): Promise<void>;
}

export type SubscriptionObject = 'user' | 'tag' | 'location' | 'geography';

export interface SubscriptionRecord {
  id: string;
  clientId: string;
  object: SubscriptionObject;
  /** The tag, the location id, the user id (null: every user who authorized the client), or the geography id (= id). */
  objectId: string | null;
  aspect: 'media';
  callbackUrl: string;
  /** Geographies only: the centre and radius. */
  lat: number | null;
  lng: number | null;
  radiusM: number | null;
  createdMs: number;
}

export interface NewSubscription {
  object: SubscriptionObject;
  objectId: string | null;
  aspect: string;
  callbackUrl: string;
  verifyToken: string;
  lat: number | null;
  lng: number | null;
  radiusM: number | null;
}

export interface SubscriptionRegistry {
  /**
   * Verifies the callback (GET with hub.mode=subscribe, hub.challenge, hub.verify_token; the answer
   * must be the challenge) and stores the subscription. SG_ERR_SUBSCRIPTION when the callback is
   * not allowed, unreachable or does not echo; SG_ERR_INVALID_PARAM for a bad object.
   */
  create(clientId: string, input: NewSubscription): Promise<SubscriptionRecord>;
  list(clientId: string): Promise<SubscriptionRecord[]>;
  /** Deletes one subscription (`id`), those of one object type, or all (`object: 'all'`); returns how many. */
  remove(clientId: string, which: { id?: string; object?: SubscriptionObject | 'all' }): Promise<number>;
  /** A geography subscription by its id (the geo-id), or null. */
  geography(id: string): Promise<SubscriptionRecord | null>;
  /** Replaces the callback policy (which addresses callbacks may reach); entries as for CallbackPolicy.from. */
  allowCallbacks(entries: readonly string[]): Promise<void>;
  /** The entries of the callback policy in force. */
  callbackAllowlist(): readonly string[];
}
