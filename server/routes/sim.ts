// Admin endpoints of the simulation, without authentication: they describe and change the simulated
// machine, not anyone's data. Plain HTTP + JSON, so scenario scripts drive them from real k6 too.
//
// GET  /_sim/topology, /_sim/metrics          the topology and every metric
// POST /_sim/reset                            a new world: this topology and seed, nothing else kept
// GET  /_sim/reset                            which world (generation, since when, seed, topology name)
// PUT|GET /_sim/reset/rounds/:round/setup     a segmented run's setup data, shared by its first part
// POST /_sim/seed                             seed a population through the bulk path
// GET  /_sim/users                            seeded accounts with their tokens (for load scripts)
// POST /_sim/cache/:node/kill | /revive       memcached node faults
// POST /_sim/cache/leases                     memcached leases on or off, from the next miss on
// POST /_sim/celebrity/post                   the rank-th most-followed seeded account posts a photo
// POST /_sim/db/:node/fail | /revive | /replicas   primary failover, restart, a new replica
// POST /_sim/db/lag, /_sim/db/service-time    replication lag, query service time
// POST /_sim/shards/move, /_sim/shards/split  logical shard moves (background, with progress)
// GET  /_sim/shards/moves[/:id], /_sim/faults the moves' progress, the fault history
// GET  /_sim/telemetry, /_sim/scalars         fan-out, hotspots, caches, replicas
// Bad input is 400 APIInvalidParametersError (schema or sim validation), never a 5xx.

import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import sharp from 'sharp';
import { MAX_LAG_MS } from '../../sim/faults.ts';
import { checkSeedBudget, MAX_AVG_FOLLOWS, MAX_MEDIA_PER_USER, MAX_POPULATION_USERS, MAX_ROSTER_PAGE, MAX_SEED_SAMPLE, MAX_SEED_USERS } from '../../sim/workload/population.ts';
import type { ServerContext } from '../context.ts';
import { apiError, invalidParam } from '../errors.ts';
import { isSimError } from '../../sim/engine/errors.ts';
import { topologyFromValue } from '../../sim/topology-config.ts';
import { FINITE } from '../params.ts';

const TAGS = ['sim'];
/** Largest body of POST /_sim/seed (bytes): its dozen fields fit many times over. */
export const SEED_BODY_LIMIT_BYTES = 4096;
const Num = (min: number, max: number, description: string) => Type.Number({ minimum: min, maximum: max, [FINITE]: true, description });
const Int = (min: number, max: number, description: string) => Type.Integer({ minimum: min, maximum: max, [FINITE]: true, description });
const Json = Type.Unknown({ description: 'JSON (see the README section "Admin endpoints (/_sim)")' });
const NodeParams = Type.Object({ node: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'A node name: cache-0, db-0, usersdb-1, …' }) });

const SeedBody = Type.Object(
  {
    users: Int(1, MAX_SEED_USERS, `Accounts to create (count; at most ${MAX_SEED_USERS} per call: seed more in several calls).`),
    avgFollows: Num(0, MAX_AVG_FOLLOWS, 'Mean follows per account (count).'),
    celebrities: Type.Optional(Int(0, MAX_SEED_USERS, 'Accounts given a head start in attractiveness (count; default users / 20,000, at least 1).')),
    privateFraction: Type.Optional(Num(0, 1, 'Share of private accounts (0–1; default 0.05).')),
    mediaPerUser: Type.Optional(Num(0, MAX_MEDIA_PER_USER, 'Mean seeded photos per account (count; default 0).')),
    seed: Type.Optional(Int(0, 2 ** 32 - 1, "Seed of the population (default: the topology's).")),
    sample: Type.Optional(Int(0, MAX_SEED_SAMPLE, 'Accounts with tokens returned, celebrities first (count; default 20).')),
    attractiveness: Type.Optional(Num(0.001, 1e6, 'Initial attractiveness a: P(follow j) ∝ followers(j) + a (default 1).')),
    discoveryFraction: Type.Optional(Num(0, 1, 'Share of follows made by earlier accounts of a newcomer (0–1; default 0.1).')),
    celebrityReach: Type.Optional(Num(0, 1, 'Share of all accounts that also follow the first celebrity (0–1; default 0).')),
    mediaSpanMs: Type.Optional(Num(0, 10 * 365 * 86_400_000, 'Seeded photos are dated over this span before now (ms; default 30 days).')),
    password: Type.Optional(Type.String({ minLength: 6, maxLength: 128, description: 'Password of every seeded account (default "scalegram").' })),
    warmCaches: Type.Optional(Type.Boolean({ description: "After seeding, read each new account's token, user object, block lists and photos through the service's own reads, so the run starts from a warm cache (the state `scalegram simulate` starts from) instead of an empty one (default false)." })),
  },
  { additionalProperties: false },
);

const SEGMENT = '^[0-9./]{1,32}:[0-9./]{1,32}$';
const ResetBody = Type.Object(
  {
    topology: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Object({}, { additionalProperties: true })], {
        description: "A preset's name, or an object of changes to a preset (`extends`: the preset, default 2012-sharded), as a scenario exports `topology` (default: the current topology's config).",
      }),
    ),
    seed: Type.Optional(Int(0, 2 ** 32 - 1, "Seed of the new world (default: the current one's).")),
    segment: Type.Optional(Type.String({ pattern: SEGMENT, description: 'The k6 execution segment of the caller (`exec.test.options.executionSegment`, e.g. "1/2:1"), when a run is split over runners that each run setup: one reset per run, each part gets its answer. With `sequence`.' })),
    sequence: Type.Optional(Type.String({ pattern: '^[0-9./]+(,[0-9./]+){1,63}$', maxLength: 1024, description: 'The run\'s execution segment sequence (e.g. "0,1/2,1"). With `segment`.' })),
  },
  { additionalProperties: false },
);

const RESET_FIELDS = Object.keys(ResetBody.properties);
/** Largest setup data a segmented run's first part may share (bytes): tokens of many seeded accounts. */
const SETUP_SHARE_LIMIT_BYTES = 64 * 1024 * 1024;
const SetupShareBody = Type.Object(
  {
    data: Type.Optional(Type.Unknown({ description: "What the scenario's setup returned (JSON)." })),
    error: Type.Optional(Type.String({ maxLength: 4096, description: "The setup's error, when it threw." })),
  },
  { additionalProperties: false },
);

const UsersQuery = Type.Object(
  {
    offset: Type.Integer({ minimum: 0, maximum: MAX_POPULATION_USERS * 10, default: 0, [FINITE]: true, description: 'Accounts to skip (count).' }),
    limit: Type.Integer({ minimum: 1, maximum: MAX_ROSTER_PAGE, default: 100, [FINITE]: true, description: `Accounts wanted, 1–${MAX_ROSTER_PAGE} (default 100).` }),
    stride: Type.Integer({ minimum: 1, maximum: MAX_POPULATION_USERS * 10, default: 1, [FINITE]: true, description: 'Every stride-th account from offset on (default 1: each one); with the population size ÷ limit, an evenly spaced sample of it.' }),
    order: Type.Union([Type.Literal('signup'), Type.Literal('followers')], { default: 'signup', description: "'signup' (seeding order) or 'followers' (most followed first)." }),
  },
  { additionalProperties: false },
);

const ReplayBody = Type.Object(
  {
    node: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'A server (its replicas) or a replica; default every database replica.' })),
    paused: Type.Optional(Type.Boolean({ description: 'Pause (true) or resume (false) replay: pg_wal_replay_pause/resume.' })),
    streaming: Type.Optional(Type.Boolean({ description: 'Cut (false) or restore (true) the WAL stream from the primary: a partition.' })),
  },
  { additionalProperties: false },
);

const LagBody = Type.Object(
  {
    node: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'A server (its replicas), a replica, or "feed-replica"; default every database replica.' })),
    lagMs: Num(0, MAX_LAG_MS, 'Replication lag (ms).'),
  },
  { additionalProperties: false },
);

const ServiceTimeBody = Type.Object({ serviceTimeMs: Num(0, 60_000, 'Mean extra service time per database query (ms).') }, { additionalProperties: false });

const ServerRef = Type.Union([Type.Integer({ minimum: 0, maximum: 1023 }), Type.String({ minLength: 1, maxLength: 64 })]);
const MoveBody = Type.Object(
  {
    cluster: Type.String({ minLength: 1, maxLength: 32, description: 'Database cluster: main, or users / photos / graph when vertically partitioned.' }),
    shard: Int(0, 8191, 'Logical shard to move.'),
    to: { ...ServerRef, description: 'Target server, by index or name.' },
    wait: Type.Optional(Type.Boolean({ description: 'Answer when the move is done (default: at once, with the job to poll).' })),
  },
  { additionalProperties: false },
);
const SplitBody = Type.Object(
  {
    cluster: Type.String({ minLength: 1, maxLength: 32, description: 'Database cluster.' }),
    server: { ...ServerRef, description: 'Server to split, by index or name: a new server takes the upper half of its logical shards.' },
    wait: Type.Optional(Type.Boolean({ description: 'Answer when every move is done (default: at once).' })),
  },
  { additionalProperties: false },
);

const TelemetryQuery = Type.Object(
  {
    since: Type.Optional(Type.Number({ minimum: 0, [FINITE]: true, description: 'Only points from this time on (ms since the topology started; a previous answer’s nowMs).' })),
    step: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400_000, [FINITE]: true, description: 'Merge points into steps of this width (ms).' })),
    hottest: Type.Optional(Type.Integer({ minimum: 1, maximum: 50, [FINITE]: true, description: 'Hottest shards listed per cluster (default 5).' })),
    utilisationFrom: Type.Optional(Type.Number({ minimum: 0, [FINITE]: true, description: 'Peaks of the utilisation section only from this unix time (ms) on, e.g. when the load began, so that seeding is not peak load.' })),
    settleMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000, [FINITE]: true, description: 'First wait, up to this long (ms), for the job queue to go idle, so that the work of every job queued is counted whole (the end of a run).' })),
  },
  { additionalProperties: false },
);

const LeasesBody = Type.Object(
  { enabled: Type.Boolean({ description: 'true: concurrent misses on one key wait for a single fill (Facebook leases); false: each miss reads the shard.' }) },
  { additionalProperties: false },
);
const CelebrityPostBody = Type.Object(
  { rank: Type.Optional(Int(0, MAX_POPULATION_USERS * 10, 'Which account posts: 0 the most followed, 1 the next, … (default 0).')) },
  { additionalProperties: false },
);

/** The fields of a body and the JavaScript type each must already have. */
type FieldTypes = Record<string, 'boolean' | 'integer'>;

/**
 * A preValidation hook that takes a body as it is, before the validator would coerce it ("yes" is
 * no boolean, "3" no integer) or drop its unknown fields: an object with only these fields, each of
 * its type, and `required` present. No body at all is {} (every field absent).
 */
function strictBody(route: string, fields: FieldTypes, required: readonly string[] = []): (request: FastifyRequest) => Promise<void> {
  const names = Object.keys(fields);
  return async (request) => {
    const raw = request.body as unknown;
    if (raw === undefined || raw === null || raw === '') request.body = {};
    const body = request.body as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidParam(`the body of ${route} must be a JSON object`);
    const b = body as Record<string, unknown>;
    const unknown = Object.keys(b).filter((k) => !names.includes(k));
    if (unknown.length) throw invalidParam(`body/${unknown[0]} is not a field of ${route} (its fields: ${names.join(', ')})`);
    for (const name of required) if (!(name in b)) throw invalidParam(`body/${name} is required`);
    for (const [name, type] of Object.entries(fields)) {
      if (!(name in b)) continue;
      const v = b[name];
      if (type === 'boolean' ? typeof v !== 'boolean' : typeof v !== 'number' || !Number.isInteger(v)) throw invalidParam(`body/${name} must be ${type === 'boolean' ? 'true or false' : 'an integer'}`);
    }
  };
}

/** The photo an admin-triggered post uploads: one 640×640 JPEG, made once per process. */
let postPhoto: Promise<Buffer> | null = null;
function celebrityPhoto(): Promise<Buffer> {
  postPhoto ??= sharp({ create: { width: 640, height: 640, channels: 3, background: '#e1306c' } }).jpeg().toBuffer();
  return postPhoto;
}

const Nullable = (s: TSchema) => ({ ...s, nullable: true });
const ScalarsSchema = Type.Object({
  cache_hit_rate: Nullable(Type.Number({ description: 'Cache hits / lookups over the last 10 s.' })),
  fanout_lag_ms: Nullable(Type.Number({ description: 'p99 of post → last follower list written, whole run (ms).' })),
  fanout_lag_p50_ms: Nullable(Type.Number()),
  shard_skew: Nullable(Type.Number({ description: 'max / mean of queries over logical shards since start (worst cluster).' })),
  server_skew: Nullable(Type.Number({ description: 'max / mean of queries over physical servers since start.' })),
  stale_reads: Type.Number({ description: 'Replica reads that missed in-flight writes, since start.' }),
  replica_lag_ms: Type.Number({ description: 'Largest current database replica lag (ms).' }),
  queue_depth: Type.Number({ description: 'Largest sampled job queue depth over the last 10 s.' }),
  deliveries_per_s: Type.Number(),
  cache_fills_per_s: Type.Number(),
  db_writes_lost: Type.Number(),
});

/** An optional JSON body that must be an object when present (POSTs whose body has no required field). */
function optionalObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || body === '') return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw invalidParam('the body must be a JSON object');
  return body as Record<string, unknown>;
}

export function simRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const t = ctx.topology;

  app.get('/_sim/topology', { schema: { tags: TAGS, summary: 'The topology: config, shards, caches, queues (JSON)', response: { 200: Type.Unknown() } } }, async () => t.describe());
  app.get('/_sim/metrics', { schema: { tags: TAGS, summary: 'Every counter, gauge and histogram (JSON snapshot)', response: { 200: Type.Unknown() } } }, async () => (ctx.tier ? (await ctx.tier.metrics()).metrics : t.metrics).snapshot());

  app.post<{ Body: Static<typeof ResetBody> }>(
    '/_sim/reset',
    {
      schema: {
        tags: TAGS,
        summary:
          'Replace the service with a new one on this topology and seed: every account, photo, cache, queue, metric and fault of the current one is dropped; the address, open connections and admin token stay. Requests already begun finish on the old one. Answers with the new topology.',
        body: ResetBody,
        response: { 200: Json },
      },
      // No body at all: the current topology and seed. A misspelt field is refused, not dropped
      // (Fastify's validator drops unknown fields): it would silently keep the current topology.
      preValidation: async (request) => {
        request.body ??= {};
        const body = request.body as unknown;
        if (body && typeof body === 'object' && !Array.isArray(body)) {
          const b = body as Record<string, unknown>;
          const unknown = Object.keys(b).filter((k) => !RESET_FIELDS.includes(k));
          if (unknown.length) throw invalidParam(`body/${unknown[0]} is not a field of /_sim/reset (its fields: ${RESET_FIELDS.join(', ')})`);
          // Not coerced, as the validator would (null → 0, "7" → 7, [5] → 5): a seed is a number or absent.
          if ('seed' in b && typeof b.seed !== 'number') throw invalidParam('body/seed must be an integer (leave it out to keep the current seed)');
          if ('topology' in b && (b.topology === null || (typeof b.topology !== 'string' && (typeof b.topology !== 'object' || Array.isArray(b.topology))))) {
            throw invalidParam("body/topology must be a preset's name or an object of changes to one");
          }
        }
      },
    },
    async (request) => {
      if (!ctx.control) throw apiError('SG_HTTP_RESET_UNAVAILABLE');
      const b = request.body;
      let config;
      try {
        config = b.topology === undefined ? undefined : topologyFromValue(b.topology, { presetsOnly: true });
      } catch (e) {
        if (isSimError(e, 'SG_ERR_CONFIG_INVALID')) throw invalidParam(`body/topology: ${e.message}`);
        throw e;
      }
      if ((b.segment === undefined) !== (b.sequence === undefined)) throw invalidParam('body/segment and body/sequence go together');
      const part = b.segment !== undefined && b.sequence !== undefined ? { segment: b.segment, sequence: b.sequence } : undefined;
      return ctx.control.reset({ ...(config ? { config } : {}), ...(b.seed !== undefined ? { seed: b.seed } : {}), ...(part ? { part } : {}) });
    },
  );

  app.get('/_sim/reset', { schema: { tags: TAGS, summary: 'Which world the server serves: its generation (1 at start, one more per reset), since when (unix ms), its seed and topology name', response: { 200: Json } } }, async () => {
    if (!ctx.control) throw apiError('SG_HTTP_RESET_UNAVAILABLE');
    return ctx.control.status();
  });

  const RoundParams = Type.Object({ round: Type.Integer({ minimum: 1, maximum: 2 ** 31, description: 'The round, as POST /_sim/reset answered it.' }) });
  app.put<{ Params: Static<typeof RoundParams>; Body: Static<typeof SetupShareBody> }>(
    '/_sim/reset/rounds/:round/setup',
    {
      schema: { tags: TAGS, summary: "The first part of a segmented run shares its setup's data (or error) with the other parts", params: RoundParams, body: SetupShareBody, response: { 200: Json } },
      bodyLimit: SETUP_SHARE_LIMIT_BYTES,
      preValidation: async (request) => {
        const body = request.body as Record<string, unknown> | null;
        const unknown = body && typeof body === 'object' ? Object.keys(body).filter((k) => k !== 'data' && k !== 'error') : [];
        if (unknown.length) throw invalidParam(`body/${unknown[0]} is not a field of this route (its fields: data, error)`);
      },
    },
    async (request) => {
      if (!ctx.control) throw apiError('SG_HTTP_RESET_UNAVAILABLE');
      const b = request.body;
      if ((b.error === undefined) === !('data' in b)) throw invalidParam('give either body/data or body/error');
      ctx.control.shareSetup(request.params.round, b.error !== undefined ? { error: b.error } : { data: b.data ?? null });
      return { round: request.params.round, shared: true };
    },
  );
  app.get<{ Params: Static<typeof RoundParams> }>(
    '/_sim/reset/rounds/:round/setup',
    { schema: { tags: TAGS, summary: "What the first part of a segmented run shared: {data} or {error}, or {pending: true} while its setup runs", params: RoundParams, response: { 200: Json } } },
    async (request) => {
      if (!ctx.control) throw apiError('SG_HTTP_RESET_UNAVAILABLE');
      return ctx.control.sharedSetup(request.params.round) ?? { pending: true };
    },
  );

  app.post<{ Body: Static<typeof SeedBody> }>(
    '/_sim/seed',
    {
      schema: { tags: TAGS, summary: 'Seed a population (faker accounts, directed heavy-tailed follow graph, photos, feeds) through the bulk path, in slices while the API keeps answering; one at a time (409 while one runs)', body: SeedBody, response: { 200: Json } },
      bodyLimit: SEED_BODY_LIMIT_BYTES,
      // The declared length is checked before the body is read, so the refusal can name the limit.
      onRequest: async (request) => {
        if (Number(request.headers['content-length'] ?? 0) > SEED_BODY_LIMIT_BYTES) throw invalidParam(`the body of /_sim/seed must be at most ${SEED_BODY_LIMIT_BYTES} bytes`);
      },
    },
    async (request) => {
      const b = request.body;
      if (b.celebrities !== undefined && b.celebrities > b.users) throw invalidParam('body/celebrities must be <= users');
      checkSeedBudget(b);
      const { warmCaches, ...wanted } = b;
      const answer = await t.population.seed(wanted);
      if (!warmCaches) return answer;
      // This seeding's accounts are the roster's last `users`, in pages.
      const accounts: Array<{ id: string; accessToken: string }> = [];
      for (let at = t.population.size - answer.users; at < t.population.size; at += MAX_ROSTER_PAGE) {
        for (const u of t.population.page({ offset: at, limit: MAX_ROSTER_PAGE }).users) accounts.push({ id: u.id, accessToken: u.access_token });
      }
      return { ...answer, warmed: await ctx.store.warmCaches(accounts) };
    },
  );

  app.get<{ Querystring: Static<typeof UsersQuery> }>(
    '/_sim/users',
    { schema: { tags: TAGS, summary: 'Seeded accounts with ids, usernames, access tokens and follower counts (for load-script VUs)', querystring: UsersQuery, response: { 200: Json } } },
    async (request) => t.population.page(request.query),
  );

  app.post<{ Params: Static<typeof NodeParams> }>(
    '/_sim/cache/:node/kill',
    { schema: { tags: TAGS, summary: 'Kill a memcached node (its keys miss and fall to the shards); body {removeFromRing?: boolean}', params: NodeParams, response: { 200: Json } } },
    async (request) => {
      const body = optionalObject(request.body);
      const remove = body.removeFromRing;
      if (remove !== undefined && typeof remove !== 'boolean') throw invalidParam('body/removeFromRing must be a boolean');
      return t.faults.killCacheNode(request.params.node, { removeFromRing: remove === true });
    },
  );
  app.post<{ Params: Static<typeof NodeParams> }>(
    '/_sim/cache/:node/revive',
    { schema: { tags: TAGS, summary: 'Bring a memcached node back, empty, on the ring', params: NodeParams, response: { 200: Json } } },
    async (request) => t.faults.reviveCacheNode(request.params.node),
  );

  app.post<{ Body: Static<typeof LeasesBody> }>(
    '/_sim/cache/leases',
    {
      schema: { tags: TAGS, summary: "Turn memcached leases (Facebook's thundering-herd protection) on or off for the misses from now on; answers {leases}", body: LeasesBody, response: { 200: Json } },
      preValidation: strictBody('/_sim/cache/leases', { enabled: 'boolean' }, ['enabled']),
    },
    async (request) => ({ leases: t.faults.setCacheLeases(request.body.enabled).leases as boolean }),
  );

  app.post<{ Body: Static<typeof CelebrityPostBody> }>(
    '/_sim/celebrity/post',
    {
      schema: {
        tags: TAGS,
        summary:
          "The rank-th most-followed seeded account (by followers when seeded, as GET /_sim/users?order=followers lists them) posts a photo through the upload path, so its fan-out runs as any post's; answers {media: {id}, user: {id, username}, followers, fanout} at once, before the fan-out lands. 409 when no seeded account has that rank.",
        body: CelebrityPostBody,
        response: { 200: Json },
      },
      preValidation: strictBody('/_sim/celebrity/post', { rank: 'integer' }),
    },
    async (request) => {
      const rank = request.body.rank ?? 0;
      const roster = t.population;
      const entry = rank < roster.size ? roster.page({ offset: rank, limit: 1, order: 'followers' }).users[0] : undefined;
      if (!entry) {
        throw apiError('SG_HTTP_NO_ACCOUNT', roster.size === 0 ? undefined : `Only ${roster.size} seeded accounts: rank must be below ${roster.size}`);
      }
      // The follower count now (follows made since the seeding count too), as the fan-out reads it.
      const owner = await ctx.store.getUser(entry.id);
      if (!owner) throw apiError('SG_HTTP_NO_ACCOUNT', `The seeded account at rank ${rank} no longer exists`);
      const followers = owner.counts.followedBy;
      const feed = t.config.feed;
      const fanout = feed.fanout === 'pull' ? 'pull' : feed.fanout === 'push' ? 'push' : followers >= feed.hybridThreshold ? 'hybrid-pulled' : 'hybrid-pushed';
      const media = await ctx.store.createMedia({ userId: owner.id, caption: null, filter: 'Normal', lat: null, lng: null, locationName: null, image: await celebrityPhoto() });
      t.faults.recordAction('celebrity_post', { rank, user: owner.id, username: owner.username, media: media.id, followers, fanout });
      return { media: { id: media.id }, user: { id: owner.id, username: owner.username }, followers, fanout };
    },
  );

  app.post<{ Params: Static<typeof NodeParams> }>(
    '/_sim/db/:node/fail',
    { schema: { tags: TAGS, summary: 'Fail a database primary: its replica is promoted (unapplied writes are lost, counted), or with none the server is down (503s)', params: NodeParams, response: { 200: Json } } },
    async (request) => t.faults.failPrimary(request.params.node),
  );
  app.post<{ Params: Static<typeof NodeParams> }>(
    '/_sim/db/:node/revive',
    { schema: { tags: TAGS, summary: 'Restart a database server that went down without a replica', params: NodeParams, response: { 200: Json } } },
    async (request) => t.faults.reviveServer(request.params.node),
  );
  app.post<{ Params: Static<typeof NodeParams> }>(
    '/_sim/db/:node/replicas',
    { schema: { tags: TAGS, summary: 'Provision one more replica of a server (a base backup of its primary); body {lagMs?}', params: NodeParams, response: { 200: Json } } },
    async (request) => {
      const body = optionalObject(request.body);
      const lag = body.lagMs;
      if (lag !== undefined && (typeof lag !== 'number' || !(lag >= 0 && lag <= MAX_LAG_MS))) throw invalidParam(`body/lagMs must be a number in [0, ${MAX_LAG_MS}]`);
      return t.faults.addReplica(request.params.node, lag === undefined ? {} : { lagMs: lag as number });
    },
  );
  app.post<{ Body: Static<typeof LagBody> }>(
    '/_sim/db/lag',
    { schema: { tags: TAGS, summary: 'Set replication lag of every database replica, one server’s, one replica’s, or the feed replica’s', body: LagBody, response: { 200: Json } } },
    async (request) => t.faults.setReplicaLag(request.body.node === undefined ? { lagMs: request.body.lagMs } : { node: request.body.node, lagMs: request.body.lagMs }),
  );
  app.post<{ Body: Static<typeof ReplayBody> }>(
    '/_sim/db/replay',
    { schema: { tags: TAGS, summary: 'Real Postgres replicas: pause or resume replay, cut or restore the WAL stream', body: ReplayBody, response: { 200: Json } } },
    async (request) => t.faults.setReplay(request.body),
  );
  app.post<{ Body: Static<typeof ServiceTimeBody> }>(
    '/_sim/db/service-time',
    { schema: { tags: TAGS, summary: 'Set the mean extra service time of every database query', body: ServiceTimeBody, response: { 200: Json } } },
    async (request) => t.faults.setServiceTime(request.body.serviceTimeMs),
  );

  app.post<{ Body: Static<typeof MoveBody> }>(
    '/_sim/shards/move',
    { schema: { tags: TAGS, summary: 'Move one logical shard to another server while it keeps serving (a background job unless wait)', body: MoveBody, response: { 200: Json } } },
    async (request) => {
      const b = request.body;
      return t.faults.moveShard({ cluster: b.cluster, shard: b.shard, to: b.to, wait: b.wait ?? false });
    },
  );
  app.post<{ Body: Static<typeof SplitBody> }>(
    '/_sim/shards/split',
    { schema: { tags: TAGS, summary: 'Split a server: add one and move the upper half of its logical shards there (background unless wait)', body: SplitBody, response: { 200: Json } } },
    async (request) => {
      const b = request.body;
      return t.faults.splitServer({ cluster: b.cluster, server: b.server, wait: b.wait ?? false });
    },
  );
  app.get('/_sim/shards/moves', { schema: { tags: TAGS, summary: 'Shard move jobs with their progress', response: { 200: Json } } }, async () => ({ moves: t.faults.moves() }));
  const JobParams = Type.Object({ id: Type.String({ pattern: '^[0-9]{1,9}$' }) });
  app.get<{ Params: Static<typeof JobParams> }>(
    '/_sim/shards/moves/:id',
    { schema: { tags: TAGS, summary: 'One shard move job', params: JobParams, response: { 200: Json } } },
    async (request) => {
      const job = t.faults.move(Number(request.params.id));
      if (!job) throw invalidParam(`no shard move job ${request.params.id}`);
      return job;
    },
  );
  app.get('/_sim/faults', { schema: { tags: TAGS, summary: 'Faults and topology changes injected so far (the last 200)', response: { 200: Json } } }, async () => ({ faults: t.faults.log() }));

  app.get<{ Querystring: Static<typeof TelemetryQuery> }>(
    '/_sim/telemetry',
    { schema: { tags: TAGS, summary: 'Fan-out, hotspots (with the users behind them), caches and replicas as time series', querystring: TelemetryQuery, response: { 200: Json } } },
    async (request) => {
      const q = request.query;
      if (q.settleMs) await Promise.race([t.idle(), new Promise((resolve) => setTimeout(resolve, q.settleMs).unref())]);
      // A tier's: every server process's metrics merged, read through the leader's parts.
      const tierMetrics = ctx.tier ? (await ctx.tier.metrics()).metrics : undefined;
      return t.telemetry(
        {
          ...(q.since !== undefined ? { sinceMs: q.since } : {}),
          ...(q.step !== undefined ? { stepMs: q.step } : {}),
          ...(q.hottest !== undefined ? { hottest: q.hottest } : {}),
          ...(q.utilisationFrom !== undefined ? { utilisationSinceMs: Math.max(0, q.utilisationFrom - t.metrics.startMs) } : {}),
        },
        tierMetrics,
      );
    },
  );
  app.get('/_sim/scalars', { schema: { tags: TAGS, summary: 'The topology measures thresholds name (cache_hit_rate, fanout_lag_ms, shard_skew, stale_reads, …)', response: { 200: ScalarsSchema } } }, async () => t.scalars(ctx.tier ? (await ctx.tier.metrics()).metrics : undefined));
}
