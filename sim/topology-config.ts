// The topology a run builds, as one validated, frozen document. Defaults live in the schema; a bad
// config is rejected with the JSON path of the offending field. Presets follow Instagram's history.

import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { readFileSync } from 'node:fs';
import { simError } from './engine/errors.ts';
import { INSTAGRAM_EPOCH_MS, MAX_LOGICAL_SHARDS } from './parts/ids.ts';

const Int = (min: number, max: number, def: number, description: string) =>
  Type.Integer({ minimum: min, maximum: max, default: def, description });
const Num = (min: number, max: number, def: number, description: string) =>
  Type.Number({ minimum: min, maximum: max, default: def, description });

export const ShardsSchema = Type.Object(
  {
    logical: Int(1, MAX_LOGICAL_SHARDS, 2048, 'Logical shards (Postgres schemas in Instagram). At most 8192 (13 id bits).'),
    physical: Int(1, 1024, 12, 'Physical primaries per database cluster; logical shards are spread over them in contiguous blocks.'),
    strategy: Type.Union([Type.Literal('modulo'), Type.Literal('range')], {
      default: 'modulo',
      description: "How a new user picks a logical shard: 'modulo' (signup number mod logical shards, Instagram's) or 'range' (consecutive signups fill one shard before the next, as range sharding does).",
    }),
    usersPerRange: Int(1, 1e9, 10000, "Range strategy: users per logical shard before the next shard is used (count)."),
  },
  { additionalProperties: false, default: {} },
);

export const DatabaseSchema = Type.Object(
  {
    partitioning: Type.Union([Type.Literal('none'), Type.Literal('vertical')], {
      default: 'none',
      description: "'vertical' puts users, photos and the follow graph on separate database clusters (Django DB routers, 2011); 'none' keeps every table family together.",
    }),
    replicas: Int(0, 4, 1, 'Streaming replicas per primary.'),
    replicaLagMs: Num(0, 3_600_000, 20, 'Delay before a replica applies a primary write (ms).'),
    readPolicy: Type.Union([Type.Literal('primary'), Type.Literal('replica'), Type.Literal('read-your-writes')], {
      default: 'read-your-writes',
      description: "Where reads go: 'primary', 'replica' (may be stale; counted), or 'read-your-writes' (replica, unless the request's user has a write that replica has not applied yet).",
    }),
    poolSize: Int(1, 10000, 32, 'Connections per node in its pgbouncer pool; further queries queue.'),
    poolQueueLimit: Int(0, 10_000_000, 100_000, 'Queries allowed to wait for a pool connection before new ones fail (count).'),
    serviceTimeMs: Num(0, 60_000, 0, 'Mean extra service time per query, held on a pooled connection (ms; 0 = only the real SQLite time); the simulator adds it to every modelled query.'),
    serviceTimeDistribution: Type.Union([Type.Literal('constant'), Type.Literal('exponential')], {
      default: 'exponential',
      description: 'Distribution of the extra service time around its mean.',
    }),
    replicationLogLimit: Int(1000, 100_000_000, 5_000_000, 'Unapplied replication entries a primary may hold before writes fail (count).'),
  },
  { additionalProperties: false, default: {} },
);

export const CacheSchema = Type.Object(
  {
    nodes: Int(0, 256, 6, 'memcached nodes (0 disables the cache).'),
    capacityBytes: Int(1024, 2 ** 40, 64 * 1024 * 1024, 'LRU capacity of each node (bytes).'),
    pointsPerNode: Int(1, 1000, 160, 'Points per node on the ketama ring (ketama uses 160).'),
    hashing: Type.Union([Type.Literal('ketama'), Type.Literal('modulo')], {
      default: 'ketama',
      description: "Key placement: 'ketama' consistent hashing, or 'modulo' (hash mod N) to show what losing a node does without it.",
    }),
    leases: Type.Boolean({ default: false, description: 'Facebook-style leases: concurrent misses on one key wait for a single fill instead of all reaching the shard.' }),
    gutter: Int(0, 64, 0, "Gutter pool nodes (count; 0 = none). While a node is down (and still on the ring), clients read its keys from the gutter and fill their misses into it, with a short expiry, instead of sending every lookup to the shards (Facebook's gutter: about 1% of the memcached servers)."),
    gutterTtlMs: Num(1, 3_600_000, 10_000, 'How long a value filled into the gutter pool lives (ms). Deletes are not sent to the gutter: the expiry bounds how stale it can be (assumed 10 s; Facebook says only that gutter entries expire quickly).'),
  },
  { additionalProperties: false, default: {} },
);

export const FeedSchema = Type.Object(
  {
    maxLength: Int(1, 100000, 800, 'Entries kept per feed list (Twitter capped at 800).'),
    fanout: Type.Union([Type.Literal('push'), Type.Literal('pull'), Type.Literal('hybrid')], {
      default: 'push',
      description: "'push' writes each post to every follower's list (Instagram's); 'pull' merges followed accounts at read time; 'hybrid' pulls accounts above hybridThreshold and pushes the rest.",
    }),
    hybridThreshold: Int(1, 1e9, 100000, 'Hybrid fan-out: accounts with at least this many followers are pulled at read time (followers).'),
    chunkSize: Int(1, 1_000_000, 4000, 'Followers per fan-out job (Twitter fanned out in chunks of ~4K).'),
    replicas: Int(0, 1, 1, 'Read replica of the feed store (Instagram added one when Redis passed 40k req/s).'),
    replicaLagMs: Num(0, 3_600_000, 5, 'Delay before the feed replica applies a write (ms).'),
  },
  { additionalProperties: false, default: {} },
);

export const QueueSchema = Type.Object(
  {
    workers: Int(1, 100000, 200, 'Workers taking jobs concurrently (Instagram ran ~200 Gearman workers).'),
    maxDepth: Int(1, 100_000_000, 1_000_000, 'Jobs allowed to wait before enqueue fails (count).'),
  },
  { additionalProperties: false, default: {} },
);

export const GeoSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'Index located media (asynchronously, through the queue) for /v1/media/search.' }),
  },
  { additionalProperties: false, default: {} },
);

export const BlobSchema = Type.Object(
  {
    maxUploadBytes: Int(1024, 1024 ** 3, 8 * 1024 * 1024, 'Largest accepted photo upload (bytes).'),
  },
  { additionalProperties: false, default: {} },
);

/**
 * What each modelled resource can do, in real units, for `scalegram simulate` (the live service
 * runs the real code and measures its own costs). Defaults model Instagram's 2012 hardware from the
 * anchors in BRIEF.md; each default's source is in the README's resource table. Pool sizes, queue
 * budgets, worker counts and replica lag come from the sections above, shared with live runs.
 */
export const CapacitySchema = Type.Object(
  {
    appServers: Int(1, 10_000, 25, 'Django app servers (count; Instagram ran 25+ in 2012).'),
    workersPerServer: Int(1, 1024, 8, 'gunicorn worker processes per app server, one per core (count; assumed 8-core High-CPU Extra Large instances).'),
    appQueueLimit: Int(0, 10_000_000, 10_000, 'Requests allowed to wait for an app worker before new ones are refused with 503 (count).'),
    cpuMs: Type.Object(
      {
        feed: Num(0, 10_000, 20, 'App CPU per feed page (ms).'),
        user_media: Num(0, 10_000, 10, "App CPU per user's recent media page (ms)."),
        media: Num(0, 10_000, 6, 'App CPU per media read (ms).'),
        like: Num(0, 10_000, 6, 'App CPU per like (ms).'),
        comment: Num(0, 10_000, 8, 'App CPU per comment (ms).'),
        follow: Num(0, 10_000, 6, 'App CPU per follow (ms).'),
        upload: Num(0, 10_000, 30, 'App CPU per upload, without resizing (ms).'),
        signup: Num(0, 10_000, 10, 'App CPU per signup, without the password hash (ms).'),
      },
      { additionalProperties: false, default: {} },
    ),
    cpuSpread: Type.Object(
      {
        feed: Num(1, 1000, 1, "p99 ÷ median of a feed page's app CPU: 1 charges cpuMs every time; above 1, a log-normal draw with median cpuMs and this p99."),
        user_media: Num(1, 1000, 1, "p99 ÷ median of a user's media page's app CPU."),
        media: Num(1, 1000, 1, "p99 ÷ median of a media read's app CPU."),
        like: Num(1, 1000, 1, "p99 ÷ median of a like's app CPU."),
        comment: Num(1, 1000, 1, "p99 ÷ median of a comment's app CPU."),
        follow: Num(1, 1000, 1, "p99 ÷ median of a follow's app CPU."),
        upload: Num(1, 1000, 1, "p99 ÷ median of an upload's app CPU."),
        signup: Num(1, 1000, 1, "p99 ÷ median of a signup's app CPU (the password hash is charged apart)."),
      },
      { additionalProperties: false, default: {}, description: "1 by default: the 2012 model's costs are constants and its tail is queueing alone; scalegram calibrate measures each route's spread on this machine, one request at a time (garbage collection, timers)." },
    ),
    sharedThread: Type.Boolean({
      default: false,
      description:
        "Whether every part's work (memcached, queries, Redis commands, job overheads) is also done by the app workers, one after another with the requests' CPU: true models the live server, whose caches, SQLite databases, Redis client and jobs run in its one event loop (a calibrated profile sets it; the password hash and the resize then wait in libuv's pool, off the thread). False (the 2012 model): each part is a server of its own.",
    }),
    wakeMs: Num(0, 10_000, 0, "The wake-up an app worker owes after a long idle (ms): the event loop's and the CPU's, paid with the CPU of the requests that follow (wakeShare of what is left each); an idle of t builds it up by 1 − e^(−t ÷ wakeTauMs) of what is missing. 0 by default; scalegram calibrate measures it."),
    wakeTauMs: Num(0.001, 60_000, 10, 'How fast the wake-up grows with the idle time before a request (ms).'),
    wakeShare: Num(
      0.01,
      1,
      1,
      "The share of the wake-up still owed that a request pays (0–1): the cold state wears off over the next requests' work, each paying this share of what is left, and idle time builds it up again towards wakeMs. 1 by default: the first request after an idle pays it all; scalegram calibrate measures it from a read that follows the first at once.",
    ),
    missCpuMs: Type.Object(
      {
        feed: Num(0, 10_000, 0, 'App CPU per cache key a feed page missed and filled (ms): rows to objects, objects to the cache.'),
        user_media: Num(0, 10_000, 0, "App CPU per cache key a user's media page missed and filled (ms)."),
        media: Num(0, 10_000, 0, 'App CPU per cache key a media read missed and filled (ms).'),
        like: Num(0, 10_000, 0, 'App CPU per cache key a like missed and filled (ms).'),
        comment: Num(0, 10_000, 0, 'App CPU per cache key a comment missed and filled (ms).'),
        follow: Num(0, 10_000, 0, 'App CPU per cache key a follow missed and filled (ms).'),
        upload: Num(0, 10_000, 0, 'App CPU per cache key an upload missed and filled (ms).'),
        signup: Num(0, 10_000, 0, 'App CPU per cache key a signup missed and filled (ms).'),
      },
      { additionalProperties: false, default: {}, description: "Charged on the app worker before the answer, beyond cpuMs (which is a request's whose keys all hit). 0 by default: the 2012 model folds it into cpuMs; scalegram calibrate measures it." },
    ),
    passwordHashMs: Num(0, 10_000, 30, 'CPU of one password hash on an app worker, charged per signup (ms).'),
    queryMs: Type.Object(
      {
        pkRead: Num(0, 10_000, 0.5, 'A read by primary key (ms, on a pooled connection).'),
        rangeRead: Num(0, 10_000, 2, 'An index range scan of one page (ms).'),
        write: Num(0, 10_000, 1.5, 'An insert or update, committed (ms).'),
      },
      { additionalProperties: false, default: {} },
    ),
    replicaApplyPerS: Num(1, 1e9, 5_000, 'Writes a replica applies per second (writes/s); writes beyond it queue and become replica lag.'),
    memcachedThreads: Int(1, 256, 4, 'Worker threads per memcached node (count; memcached 1.4 defaulted to 4).'),
    memcachedOpUs: Num(0, 1e6, 80, 'Server time per memcached request (µs): 4 threads at 80 µs make the ~50k requests/s at which requests got stuck (seeds).'),
    memcachedKeyUs: Num(0, 1e6, 2, 'Extra server time per key of a multiget (µs).'),
    memcachedQueueLimit: Int(0, 10_000_000, 100_000, 'memcached requests allowed to wait per node (count); beyond, the client sees a miss.'),
    redisOpUs: Num(0, 1e6, 25, 'Server time per Redis command (µs): one thread at 25 µs is the ~40k requests/s wall Instagram hit (seeds).'),
    redisPushUs: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1e6,
        description: "Server time per delivery of a fan-out chunk (µs): one LPUSH, pipelined with the chunk's others. Unset: redisOpUs (the 2012 model charges a delivery as a command); scalegram calibrate measures it.",
      }),
    ),
    redisQueueLimit: Int(0, 100_000_000, 1_000_000, 'Redis commands allowed to wait per node (count).'),
    jobOverheadMs: Num(0, 60_000, 2, 'Worker time per job besides its work (ms).'),
    resizeMs: Num(0, 60_000, 150, 'Worker time to make the 150/306/612 px JPEGs of one upload (ms; assumed for 2012 CPUs).'),
    blobPutMs: Num(0, 60_000, 80, 'Latency of one S3 PUT of the three sizes (ms; S3 is elastic: a delay, not a queue).'),
    leaseRetryMs: Num(0, 60_000, 10, 'With cache leases, how long a client told to wait sleeps before it looks again (ms).'),
    objectBytes: Type.Object(
      {
        media: Int(1, 1e7, 1_200, 'A cached media object (bytes).'),
        user: Int(1, 1e7, 600, 'A cached user object (bytes).'),
        token: Int(1, 1e7, 100, 'A cached access-token entry (bytes).'),
        recent: Int(1, 1e7, 400, "A cached list of a user's recent media ids (bytes)."),
        blocks: Int(1, 1e7, 60, "A cached block list (b:, bx: — whom an account blocks, or is blocked by; usually empty) (bytes)."),
      },
      { additionalProperties: false, default: {} },
    ),
    cacheBytesPerNode: Int(1024, 2 ** 40, 1024 ** 3, 'Memory per memcached node given to the objects the simulator models (bytes; assumed 1 GiB: the sources give the node count, not the size).'),
  },
  { additionalProperties: false, default: {} },
);

export const TopologySchema = Type.Object(
  {
    name: Type.String({ default: 'custom', minLength: 1, maxLength: 100, description: 'A name for reports.' }),
    description: Type.String({ default: '', description: 'What this topology stands for.' }),
    idEpochMs: Type.Integer({ default: INSTAGRAM_EPOCH_MS, minimum: 0, description: 'Epoch of the 41-bit id timestamp (ms since unix epoch).' }),
    shards: ShardsSchema,
    database: DatabaseSchema,
    cache: CacheSchema,
    feed: FeedSchema,
    queue: QueueSchema,
    geo: GeoSchema,
    blobs: BlobSchema,
    capacity: CapacitySchema,
  },
  { additionalProperties: false },
);

export type TopologyConfig = Static<typeof TopologySchema>;
/** What users write: every field optional. */
export type TopologyInput = DeepPartial<TopologyConfig>;
type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export const PRESETS: Record<string, TopologyInput> = {
  '2010-single': {
    name: '2010-single',
    description: 'Launch day, October 2010: one box runs the whole service on one database.',
    shards: { logical: 2048, physical: 1 },
    database: { partitioning: 'none', replicas: 0, readPolicy: 'primary', poolSize: 16 },
    cache: { nodes: 1 },
    feed: { replicas: 0 },
    queue: { workers: 4 },
    // One box serves the app too: its cores, shared by Django's workers.
    capacity: { appServers: 1, workersPerServer: 4 },
  },
  '2011-vertical': {
    name: '2011-vertical',
    description: 'Mid 2011: users, photos and the follow graph on separate databases (Django DB routers), each with a replica.',
    shards: { logical: 2048, physical: 1 },
    database: { partitioning: 'vertical', replicas: 1 },
    cache: { nodes: 3 },
    queue: { workers: 50 },
  },
  '2012-sharded': {
    name: '2012-sharded',
    description: '2012: 2048 logical shards over 12 physical Postgres primaries, each streaming to a replica; 6 memcached nodes; Redis feeds with a read replica; ~200 Gearman workers; a geo index.',
    shards: { logical: 2048, physical: 12, strategy: 'modulo' },
    database: { partitioning: 'none', replicas: 1 },
    cache: { nodes: 6 },
    feed: { replicas: 1 },
    queue: { workers: 200 },
  },
};

export const DEFAULT_PRESET = '2012-sharded';

function firstError(schema: TSchema, value: unknown): string | null {
  for (const e of Value.Errors(schema, value)) {
    const field = e.path === '' ? '(root)' : e.path.slice(1).replaceAll('/', '.');
    return `${field}: ${e.message}${e.value === undefined ? '' : ` (got ${JSON.stringify(e.value)})`}`;
  }
  return null;
}

function deepFreeze<T>(obj: T): T {
  if (obj && typeof obj === 'object') {
    for (const v of Object.values(obj)) deepFreeze(v);
    Object.freeze(obj);
  }
  return obj;
}

function merge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (base && over && typeof base === 'object' && typeof over === 'object' && !Array.isArray(base) && !Array.isArray(over)) {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [k, v] of Object.entries(over as Record<string, unknown>)) out[k] = merge(out[k], v);
    return out;
  }
  return over;
}

/** Validates `input` (filling defaults) and returns a frozen config, or throws SG_ERR_CONFIG_INVALID naming the field. */
export function resolveTopology(input: unknown): TopologyConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw simError('SG_ERR_CONFIG_INVALID', 'topology config must be a JSON object');
  }
  const value = Value.Default(TopologySchema, structuredClone(input));
  const err = firstError(TopologySchema, value);
  if (err) throw simError('SG_ERR_CONFIG_INVALID', `invalid topology config: ${err}`, { field: err.split(':')[0] });
  const cfg = value as TopologyConfig;
  if (cfg.shards.physical > cfg.shards.logical) {
    throw simError('SG_ERR_CONFIG_INVALID', `invalid topology config: shards.physical (${cfg.shards.physical}) exceeds shards.logical (${cfg.shards.logical})`, { field: 'shards.physical' });
  }
  return deepFreeze(cfg);
}

/**
 * A topology given as a value, as a script exports it and POST /_sim/reset takes it: a preset name,
 * or an object of changes to a preset (`extends`, default the default preset). With `presetsOnly`
 * (the admin API) a string naming a file is refused: a remote caller does not choose files to read.
 */
export function topologyFromValue(value: unknown, opts: { presetsOnly?: boolean } = {}): TopologyConfig {
  if (value === undefined || value === null) return loadTopology(DEFAULT_PRESET);
  if (typeof value === 'string') {
    if (opts.presetsOnly && !Object.hasOwn(PRESETS, value)) {
      throw simError('SG_ERR_CONFIG_INVALID', `unknown topology preset "${value}" (known: ${Object.keys(PRESETS).join(', ')})`, { field: 'topology' });
    }
    return loadTopology(value);
  }
  if (typeof value === 'object' && !Array.isArray(value)) {
    const { extends: parent, ...rest } = value as { extends?: unknown };
    if (parent !== undefined && (typeof parent !== 'string' || !Object.hasOwn(PRESETS, parent))) {
      throw simError('SG_ERR_CONFIG_INVALID', `extends: unknown preset ${JSON.stringify(parent)} (known: ${Object.keys(PRESETS).join(', ')})`, { field: 'extends' });
    }
    return loadTopology((parent as string | undefined) ?? DEFAULT_PRESET, rest as TopologyInput);
  }
  throw simError('SG_ERR_CONFIG_INVALID', 'a topology is a preset name or an object of changes to one (with `extends`)', { field: 'topology' });
}

/**
 * Loads a topology by preset name or JSON file path, optionally with overrides merged on top
 * (`{ cache: { nodes: 3 } }`).
 */
export function loadTopology(presetOrFile: string = DEFAULT_PRESET, overrides?: TopologyInput): TopologyConfig {
  let input: unknown;
  if (Object.hasOwn(PRESETS, presetOrFile)) {
    input = PRESETS[presetOrFile];
  } else if (/\.json$/i.test(presetOrFile)) {
    let text: string;
    try {
      text = readFileSync(presetOrFile, 'utf8');
    } catch (e) {
      throw simError('SG_ERR_CONFIG_INVALID', `cannot read topology file ${presetOrFile}: ${(e as Error).message}`);
    }
    try {
      input = JSON.parse(text);
    } catch (e) {
      throw simError('SG_ERR_CONFIG_INVALID', `topology file ${presetOrFile} is not valid JSON: ${(e as Error).message}`);
    }
    if (input && typeof input === 'object' && typeof (input as { extends?: unknown }).extends === 'string') {
      const { extends: parent, ...rest } = input as { extends: string; name?: string };
      if (!Object.hasOwn(PRESETS, parent)) throw simError('SG_ERR_CONFIG_INVALID', `extends: unknown preset "${parent}" (known: ${Object.keys(PRESETS).join(', ')})`, { field: 'extends' });
      // The preset's description would no longer be true of the changed topology.
      input = merge(PRESETS[parent], { name: rest.name ?? presetOrFile, description: `${parent} with the changes in ${presetOrFile}`, ...rest });
    }
  } else {
    throw simError('SG_ERR_CONFIG_INVALID', `unknown topology "${presetOrFile}": use a preset (${Object.keys(PRESETS).join(', ')}) or a .json file`, { field: 'topology' });
  }
  return resolveTopology(merge(input, overrides));
}

/** A resolved config with `overrides` merged on top, validated again (a calibration's capacities, a sweep point's changes). */
export function withOverrides(config: TopologyConfig, overrides: TopologyInput | undefined): TopologyConfig {
  return overrides ? resolveTopology(merge(structuredClone(config), overrides)) : config;
}
