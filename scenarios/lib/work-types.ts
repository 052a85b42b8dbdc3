// The declaration types of what one iteration of an exec function does (see work.ts), and the pure
// rules on them. No k6 import: the simulator (sim/model/plan.ts) reads these as data, outside k6.

/**
 * Whose account a step acts as, or whose data it reads or writes. As a step's `who` (the account it
 * acts as), each is one account per iteration, picked on first use; as a `whom` or `owner` (the
 * account acted on), a fresh pick at each use.
 */
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
  | { action: 'db_revive'; server: string }
  | { action: 'db_service_time'; serviceTimeMs: number }
  | { action: 'shard_split'; cluster: string; server: number }
  /** One logical shard copied to server `to` (an index or a name) while it serves, then repointed. */
  | { action: 'shard_move'; cluster: string; shard: number; to: number | string }
  /** Memcached leases (Facebook's thundering-herd guard) on or off from now on. */
  | { action: 'cache_leases'; enabled: boolean }
  /** The rank-th most-followed account (default 0: the first celebrity) posts a photo: a fan-out to all its followers. */
  | { action: 'celebrity_post'; rank?: number };

/**
 * How a live run judges a v1 step's answer with k6's check(): the check's name (default per op:
 * `DEFAULT_CHECKS`) and the statuses that pass it (default [200]). `user_media` and admin steps are
 * not checked (an admin step that fails throws).
 */
export interface Checked {
  check?: string;
  ok?: number[];
}

/** One v1 operation (or a choice between sequences of them). */
export type Step =
  /**
   * POST /v1/accounts: a new account; later steps may act as `new`. Live, its username is
   * `<username>_<VU>_<iteration>` and its full name `<fullName> <iteration>`; `counter` names a k6
   * Counter incremented by 1 per account created.
   */
  | ({ op: 'signup'; username?: string; fullName?: string; counter?: string } & Checked)
  /** POST /v1/users/{id}/relationship action=follow, `count` times (each a fresh pick of `whom`). */
  | ({ op: 'follow'; who: Who; whom: Whom; count?: number } & Checked)
  /** POST /v1/media: a photo upload (resized to three sizes, fanned out to the followers); the caption, or one of several picked uniformly. */
  | ({ op: 'upload'; who: Who; caption?: string | string[] } & Checked)
  /** GET /v1/users/self/feed?count=N (one page of N items, default 20: not a repetition). */
  | ({ op: 'feed'; who: Who; count?: number } & Checked)
  /**
   * GET /v1/users/{owner}/media/recent?count=N (default 5); later `like`, `comment` and `media` steps
   * use one of the items it returned: the latest (default) or one picked uniformly (`item: 'any'`).
   * When it returns none, the iteration ends.
   */
  | { op: 'user_media'; who: Who; owner: Whom; count?: number; item?: 'latest' | 'any' }
  /** POST /v1/media/{id}/likes on the media item the previous `user_media` step returned. */
  | ({ op: 'like'; who: Who } & Checked)
  /** POST /v1/media/{id}/comments on the media item the previous `user_media` step returned. */
  | ({ op: 'comment'; who: Who; text?: string } & Checked)
  /** GET /v1/media/{id} on the media item the previous `user_media` step returned. */
  | ({ op: 'media'; who: Who } & Checked)
  /** An admin action through /_sim (faults, lag, shard moves). A `db_lag`'s lagMs is real-world: live runs divide it by --speed. */
  | ({ op: 'admin' } & AdminAction)
  /** Think time: the iteration waits `seconds` (k6 sleep; in virtual time, a wait), no request. */
  | { op: 'sleep'; seconds: number }
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
  /** Share of private accounts a live run seeds (0–1; default 0.05). The simulator models none. */
  privateFraction?: number;
  /** Live runs start from warm caches (every seeded account's token, user object, block lists and photos read once after seeding), as simulations do; default false: empty caches. */
  warmCaches?: boolean;
}

/** Per exec function (by name), the steps of one iteration; an exec function with no v1 operations declares []. */
export type Work = Record<string, Step[]>;

// ---------------------------------------------------------------------------------------------
// Pure: what a declaration expands to, and what an admin step sends.

/** The requests a step makes, by their `name` tag (the tags scenarios/lib/api.ts gives). */
export type OpName = 'signup' | 'follow' | 'upload' | 'feed' | 'user_media' | 'like' | 'comment' | 'media' | 'sim_admin';

/** The `name` tag of the request a (non-choice) step makes. */
export function opName(step: Exclude<Step, { op: 'choice' | 'sleep' }>): OpName {
  return step.op === 'admin' ? 'sim_admin' : step.op;
}

/** Check names of the v1 steps when the step gives none. */
export const DEFAULT_CHECKS = { signup: 'signed up', follow: 'follow ok', upload: 'upload ok', feed: 'feed ok', like: 'like ok', comment: 'comment ok', media: 'read ok' } as const;

/** Most choice combinations expandSteps lists (a guard on nested choices). */
const MAX_EXPANSIONS = 10_000;

/**
 * Every sequence of requests one iteration may make, by `name` tag, when each step succeeds and
 * each `user_media` returns an item: one sequence per combination of `choice` branches, with the
 * product of their probabilities. (A failed signup or an empty `user_media` ends the iteration
 * there: a live iteration then makes a prefix of one of these, ending at that step.)
 */
export function expandSteps(steps: readonly Step[]): Array<{ p: number; ops: OpName[] }> {
  let out: Array<{ p: number; ops: OpName[] }> = [{ p: 1, ops: [] }];
  for (const step of steps) {
    if (step.op === 'choice') {
      const next: Array<{ p: number; ops: OpName[] }> = [];
      for (const head of out) {
        for (const b of step.branches) for (const tail of expandSteps(b.steps)) next.push({ p: head.p * b.p * tail.p, ops: [...head.ops, ...tail.ops] });
      }
      if (next.length > MAX_EXPANSIONS) throw new Error(`expandSteps: more than ${MAX_EXPANSIONS} combinations of choices`);
      out = next;
    } else if (step.op !== 'sleep') {
      const n = step.op === 'follow' ? (step.count ?? 1) : 1;
      const name = opName(step);
      for (const seq of out) for (let i = 0; i < n; i++) seq.ops.push(name);
    }
  }
  return out;
}

/** The request an admin action makes: POST `path` with the JSON `body`. `speed` compresses a lag (live --speed; 1 in virtual time). */
export function adminRequest(a: AdminAction, speed = 1): { path: string; body: Record<string, unknown> } {
  switch (a.action) {
    case 'cache_kill':
      return { path: `/_sim/cache/${a.node}/kill`, body: a.removeFromRing === undefined ? {} : { removeFromRing: a.removeFromRing } };
    case 'cache_revive':
      return { path: `/_sim/cache/${a.node}/revive`, body: {} };
    case 'db_lag':
      return { path: '/_sim/db/lag', body: { lagMs: a.lagMs / speed } };
    case 'db_fail':
      return { path: `/_sim/db/${a.server}/fail`, body: {} };
    case 'db_revive':
      return { path: `/_sim/db/${a.server}/revive`, body: {} };
    case 'db_service_time':
      return { path: '/_sim/db/service-time', body: { serviceTimeMs: a.serviceTimeMs } };
    case 'shard_split':
      return { path: '/_sim/shards/split', body: { cluster: a.cluster, server: a.server } };
    case 'shard_move':
      return { path: '/_sim/shards/move', body: { cluster: a.cluster, shard: a.shard, to: a.to } };
    case 'cache_leases':
      return { path: '/_sim/cache/leases', body: { enabled: a.enabled } };
    case 'celebrity_post':
      return { path: '/_sim/celebrity/post', body: a.rank === undefined ? {} : { rank: a.rank } };
  }
}
