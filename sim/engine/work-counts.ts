// What one request or job does, as counts the topology's parts add to as they work (through the
// scope in actor-context.ts): the figures sim/observability/work-meter.ts totals per route and job
// kind. Here, in the engine, so that the scope that carries them imports nothing above it.

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
  /** Of dbReads, those a replica served: not a reported figure, it names a request's outcome (work-meter.ts). */
  replicaReads = 0;
}
