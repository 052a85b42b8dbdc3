// What one iteration of each exec function does, declared as data: which v1 operations, how many,
// on whom. `scalegram simulate` reads these declarations (with the k6 `options` for rates, phases
// and start times, and `population` for the base the scenario starts from); the live functions are
// made from the same declarations (`iteration()` below), so no rate, size or count is written twice.
// Like every file under scenarios/, this imports only k6 modules and scenario files.

/** Whose account a step acts as, or whose data it reads or writes. */
export type Who =
  /** The account this iteration signed up (after a `signup` step). */
  | 'new'
  /** A base account picked uniformly. */
  | 'user'
  /** One of the population's celebrities (the most-followed accounts), picked uniformly. */
  | 'celebrity';

/** A `Who`, or a mix: `{ celebrity: 0.5 }` is a celebrity half the time, else a base account. */
export type Whom = Who | { celebrity: number };

/** The admin actions a scenario may take (each one `POST /_sim/...`). */
export type AdminAction =
  | { action: 'cache_kill'; node: string; removeFromRing?: boolean }
  | { action: 'cache_revive'; node: string }
  | { action: 'db_lag'; lagMs: number }
  | { action: 'db_fail'; server: string }
  | { action: 'shard_split'; cluster: string; server: number };

/** One v1 operation (or a choice between sequences of them). */
export type Step =
  /** POST /v1/accounts: a new account; later steps may act as `new`. */
  | { op: 'signup' }
  /** POST /v1/users/{id}/relationship action=follow, `count` times (each a fresh pick of `whom`). */
  | { op: 'follow'; who: Who; whom: Whom; count?: number }
  /** POST /v1/media: a photo upload (resized to three sizes, fanned out to the followers). */
  | { op: 'upload'; who: Who }
  /** GET /v1/users/self/feed?count=N. */
  | { op: 'feed'; who: Who; count?: number }
  /** GET /v1/users/{owner}/media/recent?count=N; later `like`, `comment` and `media` steps use what it returned. */
  | { op: 'user_media'; who: Who; owner: Whom; count?: number }
  /** POST /v1/media/{id}/likes on a media item the previous `user_media` step returned (skipped when it returned none). */
  | { op: 'like'; who: Who }
  /** POST /v1/media/{id}/comments on a media item the previous `user_media` step returned. */
  | { op: 'comment'; who: Who }
  /** GET /v1/media/{id} on a media item the previous `user_media` step returned. */
  | { op: 'media'; who: Who }
  /** An admin action through /_sim (faults, lag, shard moves). */
  | ({ op: 'admin' } & AdminAction)
  /** Exactly one of the branches, with its probability (the probabilities sum to 1). */
  | { op: 'choice'; branches: Array<{ p: number; steps: Step[] }> };

/**
 * The base population a scenario starts from, at full scale (× --scale in both modes). A live run
 * seeds it through POST /_sim/seed (at least `minAccounts`, and within the seeding budget); the
 * simulator generates it in typed arrays.
 */
export interface Population {
  accounts: number;
  /** Mean accounts each account follows (count). */
  avgFollows: number;
  /** The most-followed accounts, which `celebrity` picks from (count). */
  celebrities: number;
  /** Photos each base account has posted before the event (count). */
  mediaPerUser: number;
  /** Share of all accounts that follow the first celebrity (0–1), as /_sim/seed takes it. */
  celebrityReach?: number;
  /** Live runs seed at least this many accounts whatever the scale (count). */
  minAccounts?: number;
}

/** Per exec function (by name), the steps of one iteration; an exec function with no v1 operations declares []. */
export type Work = Record<string, Step[]>;
