// The work each request does, counted by the topology's parts as they do it: cache lookups and
// misses, sets and deletes, database reads and writes, Redis commands, jobs queued, feed deliveries,
// bytes answered. Totals are kept per route (`GET /v1/users/self/feed`) and per job kind (`job fanout`):
// a request's scope (sim/engine/actor-context.ts) points at its route's counts, and a job runs in a
// scope of its own, so the fan-out a post causes is counted under the job, not under the upload.
// These figures do not depend on the machine's speed: they are what the CI gate judges, and what
// the simulator's model of each route is checked against.

/** The counted figures, in the order reports list them. */
export const WORK_FIELDS = [
  'cacheLookups',
  'cacheMisses',
  'cacheWaits',
  'cacheSets',
  'cacheDeletes',
  'dbReads',
  'dbWrites',
  'redisCommands',
  'jobsQueued',
  'feedDeliveries',
  'responseBytes',
] as const;
export type WorkField = (typeof WORK_FIELDS)[number];

/** What a reader is told each figure is (per request or job). */
export const WORK_FIELD_TEXT: Record<WorkField, string> = {
  cacheLookups: 'memcached keys looked up',
  cacheMisses: 'memcached keys missed and filled from the database (a dead node counts as a miss)',
  cacheWaits: "memcached keys missed that waited for another request's fill (a lease) instead: how requests overlapped, not what the code does",
  cacheSets: 'memcached sets',
  cacheDeletes: 'memcached deletes',
  dbReads: 'database reads (queries on a primary or a replica)',
  dbWrites: 'database writes (transactions on a primary)',
  redisCommands: 'Redis commands (feed lists and the follow-graph cache; replica applies not counted)',
  jobsQueued: 'jobs queued',
  feedDeliveries: 'feed lists a post was pushed onto',
  responseBytes: 'bytes of the answer (Content-Length)',
};

export class WorkCounts {
  /** Requests (or jobs) counted. */
  count = 0;
  /** Of those, answered with a status ≥ 400 (or jobs that threw). */
  failed = 0;
  cacheLookups = 0;
  cacheMisses = 0;
  cacheWaits = 0;
  cacheSets = 0;
  cacheDeletes = 0;
  dbReads = 0;
  dbWrites = 0;
  redisCommands = 0;
  jobsQueued = 0;
  feedDeliveries = 0;
  responseBytes = 0;
}

export type WorkTotals = { count: number; failed: number } & Record<WorkField, number>;

export interface WorkSnapshot {
  /** Per route (`METHOD /path/pattern`), totals over the run: divide by `count` for work per request. */
  routes: Record<string, WorkTotals>;
  /** Per job kind (`fanout`, `resize`, …), totals over the run: work per job. */
  jobs: Record<string, WorkTotals>;
}

export class WorkMeter {
  private readonly routes = new Map<string, WorkCounts>();
  private readonly jobs = new Map<string, WorkCounts>();

  /** The counts of a route, made on first use. */
  route(name: string): WorkCounts {
    let c = this.routes.get(name);
    if (!c) this.routes.set(name, (c = new WorkCounts()));
    return c;
  }

  /** The counts of a job kind, made on first use. */
  job(kind: string): WorkCounts {
    let c = this.jobs.get(kind);
    if (!c) this.jobs.set(kind, (c = new WorkCounts()));
    return c;
  }

  snapshot(): WorkSnapshot {
    const out = (m: Map<string, WorkCounts>): Record<string, WorkTotals> =>
      Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, c]) => [k, { ...c }]));
    return { routes: out(this.routes), jobs: out(this.jobs) };
  }
}
