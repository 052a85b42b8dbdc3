// Builds the whole simulated Instagram from one validated config and one seed: database clusters,
// memcached, Redis feeds and graph cache, the job queue, the geo index and the blob store, wired
// into the PhotoStore. Every component gets the same clock and a PRNG forked from the seed.
// With a data dir it also makes them durable: see README, "Security and durability".

import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { ApiClients } from './domain/api-clients.ts';
import { createBlobStore, type BlobStore } from './parts/blob-store.ts';
import { CacheCluster } from './parts/cache-cluster.ts';
import { RealClock, type Clock } from './engine/clock.ts';
import { prepareDataDir } from './parts/data-dir.ts';
import { DatabaseCluster } from './parts/database-cluster.ts';
import { Faults } from './faults.ts';
import { FeedStore } from './parts/feed-store.ts';
import { GeoIndex } from './parts/geo-index.ts';
import { GraphCache } from './parts/graph-cache.ts';
import { JobJournal } from './parts/job-journal.ts';
import { createHash, randomBytes } from 'node:crypto';
import { JobQueue, type Jobs } from './parts/job-queue.ts';
import { AmqpJobQueue, redact } from './backends/amqp-queue.ts';
import { namespaceProblem } from './backends/namespace.ts';
import { MemcachedTier, type MemcachedSpec } from './backends/memcached.ts';
import { PgTier, type PostgresServerSpec } from './backends/postgres/pg-tier.ts';
import { simError } from './engine/errors.ts';
import { Metrics } from './observability/metrics.ts';
import { WorkMeter } from './observability/work-meter.ts';
import { PhotoStore } from './domain/photo-store.ts';
import { PopulationRoster } from './workload/population.ts';
import { Subscriptions } from './domain/subscriptions.ts';
import { Prng } from './engine/prng.ts';
import { closeRedis, createRedis, isMockRedis, markMockView } from './parts/redis-client.ts';
import { PersistentRedis } from './parts/redis-aof.ts';
import { installTelemetry, telemetryScalars, telemetrySnapshot, type TelemetryOptions, type TelemetryScalars, type TelemetrySnapshot } from './observability/telemetry.ts';
import type { TopologyConfig } from './topology-config.ts';

export interface BuildOptions {
  config: TopologyConfig;
  seed: number;
  /** Directory for durable files (databases, blobs, geo index, the in-process Redis's AOF, the job journal); default all in memory. */
  dataDir?: string;
  /** A real Redis for feeds and the graph cache (default: ioredis-mock in process). */
  redisUrl?: string;
  /** RabbitMQ as the job queue (amqp://…; default: the in-process queue). */
  amqpUrl?: string;
  /**
   * memcached as the cache tier: `local` starts one memcached process per node (the ring's, then
   * the gutter's) on free ports of this machine, killed at close; a list gives one host:port per
   * node, in that order. Default: LRUs in this process.
   */
  memcached?: MemcachedSpec;
  /**
   * Postgres as the store: one entry per physical server (its primary's URL, its streaming
   * replicas' URLs, and the cluster names when this machine runs them), each logical shard a schema
   * of the server holding it (`scalegram stack up` makes them). Default: SQLite in this process.
   */
  postgres?: readonly PostgresServerSpec[];
  /** Told what is worth knowing about the real parts at start (pool sizes capped, migrations applied). */
  onNotice?: (message: string) => void;
  /**
   * Names this deployment's RabbitMQ queues (`scalegram.<namespace>.<kind>`) and real-Redis keys
   * (`scalegram:<namespace>:`), so `scalegram worker` processes given the same name share them.
   * Default: one per data dir, else one per topology (removed when it closes).
   */
  namespace?: string;
  /** Job kinds this process queues but leaves to `scalegram worker` processes (RabbitMQ only). */
  remoteJobs?: readonly string[];
  /** Told what the RabbitMQ queue does that an operator should know: a lost connection, a wait at close. */
  onQueueNotice?: (message: string) => void;
  /** How long closing waits for queued jobs on RabbitMQ before leaving them there (ms; default 10 s). */
  queueCloseGraceMs?: number;
  clock?: Clock;
  /** Interval for sampling gauges (pool use, replica lag, queue depth) into time series (ms; 0 = off). */
  sampleEveryMs?: number;
  /** With a data dir and the in-process Redis: how often the AOF is checked for a rewrite (ms; 0 = only on close). */
  aofCheckEveryMs?: number;
  /**
   * This topology is one of the server processes of `serve --workers N` (server/tier/): the
   * Postgres pools are divided among the processes, ids are minted from this process's share of
   * the sequences, and the store is neither emptied nor its replicas settled here (the tier's
   * primary did both once, before starting the processes).
   */
  tier?: { index: number; processes: number };
  /**
   * A directory the server processes of a tier share for the image store and the geo index (what
   * Instagram kept in S3 and Solr); without a data dir only. Default: in memory.
   */
  sharedDir?: string;
}

let instances = 0;


export class Topology {
  readonly store: PhotoStore;
  /** Registered API clients (sim/domain/api-clients.ts). */
  readonly clients: ApiClients;
  /** Real-time subscriptions and their notifications (sim/domain/subscriptions.ts). */
  readonly subscriptions: Subscriptions;
  private sampler: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    readonly config: TopologyConfig,
    readonly seed: number,
    readonly clock: Clock,
    readonly metrics: Metrics,
    readonly db: DatabaseCluster,
    readonly cache: CacheCluster,
    readonly feeds: FeedStore,
    readonly graph: GraphCache,
    readonly queue: Jobs,
    readonly journal: JobJournal,
    readonly geo: GeoIndex | null,
    readonly blobs: BlobStore,
    private readonly redis: { feedPrimary: Redis; feedReplica?: Redis; graph: Redis; keyPrefix: string; aof: PersistentRedis | null; shared: boolean },
    readonly dataDir: string | undefined,
    prng: Prng,
    /** The work each route and job kind did, counted by the parts (sim/observability/work-meter.ts). */
    readonly work: WorkMeter,
    idPartition?: { index: number; count: number },
  ) {
    this.store = new PhotoStore({ config, clock, prng, metrics, db, cache, feeds, graph, queue, journal, geo, blobs, ...(idPartition ? { idPartition } : {}) });
    this.clients = new ApiClients({ db, cache, clock, metrics, logicalShards: config.shards.logical });
    this.subscriptions = new Subscriptions({ db, cache, clock, metrics, queue, store: this.store, clients: this.clients, logicalShards: config.shards.logical });
    installTelemetry(this);
  }

  private faultsInstance: Faults | null = null;
  /** The memcached processes or addresses behind the cache, when it is real (closed with the topology). */
  memcached: MemcachedTier | null = null;
  /** The Postgres servers behind the store, when it is on real ones (closed with the topology). */
  postgres: PgTier | null = null;
  /** The directory a tier's server processes share for images and the geo index (BuildOptions.sharedDir), or null. */
  sharedDir: string | null = null;
  private rosterInstance: PopulationRoster | null = null;

  /** Faults and topology changes at run time (sim/faults.ts). */
  get faults(): Faults {
    return (this.faultsInstance ??= new Faults(this));
  }

  /** Seeded populations and their accounts (sim/workload/population.ts). */
  get population(): PopulationRoster {
    return (this.rosterInstance ??= new PopulationRoster(this));
  }

  /** Fan-out, hotspot, cache and replica measures as time series (sim/observability/telemetry.ts). */
  telemetry(options?: TelemetryOptions, metrics?: Metrics): TelemetrySnapshot {
    return telemetrySnapshot(metrics ? this.withMetrics(metrics) : this, options);
  }

  /** The measures thresholds name, as numbers (sim/observability/telemetry.ts). */
  scalars(metrics?: Metrics): TelemetryScalars {
    return telemetryScalars(metrics ? this.withMetrics(metrics) : this);
  }

  /**
   * This topology read through other metrics: a tier's leader computes the telemetry of every
   * server process from their merged metrics (server/tier/), the parts' state being its own.
   */
  private withMetrics(metrics: Metrics): Topology {
    return Object.create(this, { metrics: { value: metrics } }) as Topology;
  }

  startSampling(everyMs: number): void {
    if (everyMs <= 0 || this.sampler) return;
    this.sampler = setInterval(() => this.sample(), everyMs);
    this.sampler.unref();
  }

  /** What the real Redis said of itself at the last sample (INFO), or null. */
  private redisInfo: { version: string; usedMemoryBytes: number; connectedClients: number; opsPerSec: number; commandsProcessed: number; keyspaceHits: number; keyspaceMisses: number } | null = null;

  /** Reads the feed Redis's INFO into describe().feed.info (a failure leaves the last reading). */
  async pollRedisInfo(): Promise<void> {
    try {
      const text = await this.redis.feedPrimary.info();
      const f = new Map(text.split(/\r?\n/).map((l) => l.split(':') as [string, string]));
      const n = (k: string) => Number(f.get(k) ?? 0);
      this.redisInfo = { version: f.get('redis_version') ?? '', usedMemoryBytes: n('used_memory'), connectedClients: n('connected_clients'), opsPerSec: n('instantaneous_ops_per_sec'), commandsProcessed: n('total_commands_processed'), keyspaceHits: n('keyspace_hits'), keyspaceMisses: n('keyspace_misses') };
    } catch {
      this.metrics.inc('redis_info_errors');
    }
  }

  /** The real Redis (the graph cache's client) and the deployment's key prefix; null on the in-process Redis or without a namespace. */
  sharedRedis(): { client: Redis; keyPrefix: string } | null {
    // Only a deployment's (an explicit namespace) is shared: without one nothing else sees its keys.
    return isMockRedis(this.redis.graph) || !this.redis.shared ? null : { client: this.redis.graph, keyPrefix: this.redis.keyPrefix };
  }

  /** Records gauges that are states rather than events (depths, lags, pool use, sizes). */
  sample(): void {
    this.db.sample();
    // Real memcached nodes report through their stats, read in the background for the next sample,
    // and a real Redis through INFO.
    if (this.cache.isRemote) void this.cache.pollStats();
    if (!isMockRedis(this.redis.feedPrimary)) void this.pollRedisInfo();
    const m = this.metrics;
    m.set('queue_depth', {}, this.queue.depth());
    m.set('queue_running', {}, this.queue.running());
    for (const n of this.cache.nodes()) {
      m.set('cache_items', { node: n.name }, n.items);
      m.set('cache_bytes', { node: n.name }, n.bytes);
    }
  }

  describe(): unknown {
    this.sample();
    const blobStats = this.blobs.stats();
    return {
      name: this.config.name,
      description: this.config.description,
      seed: this.seed,
      config: this.config,
      databases: this.db.describe(),
      // leases: the live value (POST /_sim/cache/leases switches it), which `config` shows as it started.
      cache: { backend: this.memcached ? 'memcached' : 'in-process', hashing: this.config.cache.hashing, leases: this.cache.leases, nodes: this.cache.nodes() },
      feed: {
        backend: isMockRedis(this.redis.feedPrimary) ? 'ioredis-mock' : 'redis',
        fanout: this.config.feed.fanout,
        maxLength: this.config.feed.maxLength,
        replica: this.redis.feedReplica ? { lagMs: this.config.feed.replicaLagMs } : null,
        // The server's own figures (INFO, every sample); the whole server's, shared with whatever else uses it.
        ...(this.redisInfo ? { info: this.redisInfo } : {}),
      },
      queue: {
        backend: this.queue instanceof AmqpJobQueue ? 'rabbitmq' : 'in-process',
        ...(this.queue instanceof AmqpJobQueue ? { url: redact(this.queue.url), prefix: this.queue.prefix, remote: this.queue.remote } : {}),
        workers: this.config.queue.workers, depth: this.queue.depth(), running: this.queue.running(), maxDepth: this.config.queue.maxDepth },
      geo: this.geo ? this.geo.stats() : null,
      blobs: { backend: this.dataDir || this.sharedDir ? 'dir' : 'memory', ...blobStats },
    };
  }

  /** Resolves once queued work (resizes, fan-out, geo indexing, notifications) has finished and replicas have caught up. */
  async idle(): Promise<void> {
    await this.queue.idle();
    // Settled also means replicated: replicas apply what they owe (tests, benchmarks, shutdown).
    this.db.drainReplicas();
    await this.feeds.settle();
  }

  private aofChecks: NodeJS.Timeout | null = null;

  /**
   * The in-process Redis's AOF grows with every write; every `everyMs` it is rewritten (a snapshot
   * and a fresh generation) once its policy says so, which bounds the disk it takes and the replay
   * at the next start. Durability does not depend on it: every write is in the AOF already.
   */
  startAofRewrites(everyMs: number): void {
    const aof = this.redis.aof;
    if (!aof || everyMs <= 0 || this.aofChecks) return;
    this.aofChecks = setInterval(() => {
      if (aof.rewriteDue()) void aof.rewrite().catch(() => this.metrics.inc('redis_aof_rewrite_failures'));
    }, everyMs);
    this.aofChecks.unref();
  }

  /** Rewrites the in-process Redis's AOF now (a snapshot and a fresh generation); no-op without one. */
  async rewriteAof(): Promise<void> {
    await this.redis.aof?.rewrite();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sampler) clearInterval(this.sampler);
    // Notifications waiting for a retry are dropped (counted); those queued are still sent.
    this.subscriptions.close();
    await this.queue.close();
    this.db.drainReplicas();
    if (this.aofChecks) clearInterval(this.aofChecks);
    if (!this.dataDir && !this.redis.shared && !isMockRedis(this.redis.feedPrimary)) {
      // A Redis that is away must not keep the rest of close (its clients, memcached, SQLite) from running.
      if (this.redis.feedPrimary.status === 'ready') await deleteKeys(this.redis.feedPrimary, this.redis.keyPrefix).catch(() => undefined);
    }
    await this.feeds.close();
    // After the queue drained: every journal entry has ended, and the snapshot holds every write.
    await this.redis.aof?.close();
    this.journal.close();
    for (const c of [this.redis.feedPrimary, this.redis.feedReplica, this.redis.graph]) if (c) await closeRedis(c).catch(() => undefined);
    this.geo?.close();
    await this.blobs.close();
    await this.memcached?.close();
    this.db.close();
    await this.postgres?.close();
  }
}

async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  for (let i = 0; i < 1_000_000; i++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', prefix + '*', 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
    if (cursor === '0') return;
  }
}

export async function buildTopology(options: BuildOptions): Promise<Topology> {
  const { config, seed } = options;
  const clock = options.clock ?? new RealClock();
  const sinceEpochMs = clock.nowMs() - config.idEpochMs;
  if (!(sinceEpochMs >= 0 && sinceEpochMs < 2 ** 40)) {
    // Ids hold 41 bits of time but must stay below 2^63; refuse now rather than at the first signup.
    throw simError('SG_ERR_CONFIG_INVALID', `invalid topology config: idEpochMs: the clock is ${Math.round(sinceEpochMs)} ms from it; ids need 0 to ${2 ** 40 - 1}`, { field: 'idEpochMs' });
  }
  // The server processes of a tier draw their own numbers (service times, jitter); process 0 the
  // seed's own, as one process does, so what it seeds is the same world.
  const prng = options.tier && options.tier.index > 0 ? new Prng(seed).fork(`tier-${options.tier.index}`) : new Prng(seed);
  const metrics = new Metrics(clock);
  const dataDir = options.dataDir ? resolve(options.dataDir) : undefined;
  if (dataDir) prepareDataDir(dataDir);
  // Unique beyond this process: containers sharing a broker or a Redis can have the same pid.
  const instance = `t${process.pid}-${++instances}-${randomBytes(3).toString('hex')}`;

  const redisUrl = options.redisUrl;
  // Keys of a real Redis are namespaced: per data dir (durable), or per instance (removed on close).
  const ns = options.namespace ?? (dataDir ? Buffer.from(dataDir).toString('base64url').slice(-24) : instance);
  const nsProblem = namespaceProblem(ns);
  if (nsProblem) throw simError('SG_ERR_INVALID_PARAM', nsProblem, { namespace: ns });
  const keyPrefix = redisUrl ? `scalegram:${ns}:` : '';
  if (options.remoteJobs?.length && !options.amqpUrl) throw simError('SG_ERR_INVALID_PARAM', 'jobs can be left to worker processes only with RabbitMQ as the job queue (an AMQP URL)', { remoteJobs: options.remoteJobs });
  const work = new WorkMeter();
  // The broker first: if it does not answer, nothing else has been opened that would keep the process alive.
  // A data dir's queues are named by a digest of its whole path (two data dirs whose paths end
  // alike must not share queues: each would take the other's jobs and purge them at start).
  const queueNs = options.namespace ?? (dataDir ? `d-${createHash('sha256').update(dataDir).digest('hex').slice(0, 20)}` : instance);
  const amqpQueue = options.amqpUrl
    ? await AmqpJobQueue.connect(config.queue, { url: options.amqpUrl, prefix: `scalegram.${queueNs}`, ...(options.onQueueNotice ? { onLost: (e: Error) => options.onQueueNotice!(`the connection to RabbitMQ is lost (${e.message}); jobs fail with SG_ERR_NODE_DOWN until the server is restarted`), onWait: options.onQueueNotice } : {}), remote: options.remoteJobs ?? [], ...(options.queueCloseGraceMs !== undefined ? { closeGraceMs: options.queueCloseGraceMs } : {}), deleteOnClose: !dataDir && options.namespace === undefined }, { clock, metrics, work })
    : null;
  // What is opened is closed again if a later step throws (a data dir that will not open, a
  // memcached that will not start): once the topology exists, by its close(); before, step by step.
  const undo: Array<() => unknown> = [];
  if (amqpQueue) undo.push(() => amqpQueue.close());
  let built: Topology | null = null;
  try {
    let memcached: MemcachedTier | null = null;
    if (options.memcached && config.cache.nodes > 0) {
      const names = [...Array.from({ length: config.cache.nodes }, (_, i) => `cache-${i}`), ...Array.from({ length: config.cache.gutter }, (_, i) => `gutter-${i}`)];
      // Keys go to memcached under the deployment's namespace (or this topology's own name): the
      // servers of one --namespace share entries; any other topology on the same processes (a
      // stack's) starts cold and never reads another's. The ring hashes the key itself, as the
      // simulator's does.
      memcached = await MemcachedTier.open(options.memcached, names, config.cache.capacityBytes, `${options.namespace ?? instance}:`);
      const tier = memcached;
      undo.push(() => tier.close());
    }
    let feedPrimary = createRedis({ name: `${instance}-feed-primary`, ...(redisUrl ? { url: redisUrl } : {}) });
    const firstPrimary = feedPrimary;
    undo.push(() => closeRedis(firstPrimary));
    // The in-process Redis keeps its data in memory; with a data dir it gets an AOF (a real Redis
    // persists, or not, as it is configured to).
    let aof: PersistentRedis | null = null;
    if (dataDir && !redisUrl) {
      aof = (await PersistentRedis.open(join(dataDir, 'redis'), feedPrimary, { metrics, node: 'feed-primary' })).redis;
      feedPrimary = markMockView(aof.client);
      const opened = aof;
      undo.push(() => opened.close());
    }
    // A real Redis has no replica here unless one is given; the mock gets a simulated one.
    const replicaUrl = process.env.REDIS_REPLICA_URL;
    const feedReplica = config.feed.replicas > 0 && (!redisUrl || replicaUrl) ? createRedis({ name: `${instance}-feed-replica`, ...(redisUrl ? { url: replicaUrl! } : {}) }) : undefined;
    const graphRedis = createRedis({ name: `${instance}-graph`, ...(redisUrl ? { url: redisUrl } : {}) });
    undo.push(() => closeRedis(graphRedis));
    if (feedReplica) undo.push(() => closeRedis(feedReplica));

    let postgres: PgTier | null = null;
    if (options.postgres) {
      // Its tables are emptied at start unless a data dir says this deployment keeps what it has.
      const tier = options.tier;
      postgres = await PgTier.open(options.postgres, config, { empty: !dataDir && !tier, settle: !tier, processes: tier?.processes ?? 1, nowMs: () => clock.nowMs(), ...(options.onNotice ? { notice: options.onNotice } : {}) });
      const opened = postgres;
      undo.push(() => opened.close());
    }
    const db = new DatabaseCluster(config, { clock, prng: prng.fork('db'), metrics, ...(dataDir ? { dataDir } : {}), ...(postgres ? { remote: postgres } : {}) });
    undo.push(() => db.close());
    const cache = new CacheCluster(config.cache, { clock, metrics, ...(memcached ? { remote: (name: string) => memcached.node(name) } : {}) });
    const feeds = new FeedStore(config.feed, { clock, metrics, primary: feedPrimary, ...(feedReplica ? { replica: feedReplica } : {}), keyPrefix });
    const graph = new GraphCache({ metrics, redis: graphRedis, keyPrefix });
    const queue: Jobs = amqpQueue ?? new JobQueue(config.queue, { clock, metrics, work });
    const journal = JobJournal.open(dataDir ? join(dataDir, 'jobs.journal') : null, { metrics });
    undo.push(() => journal.close());
    // A tier's processes share the images and the geo index through a directory (SQLite's locks and
    // atomic renames keep them consistent on one machine).
    const filesDir = dataDir ?? (options.sharedDir ? resolve(options.sharedDir) : undefined);
    const geo = config.geo.enabled ? new GeoIndex({ metrics }, filesDir ? { path: join(filesDir, 'geo.sqlite') } : {}) : null;
    if (geo) undo.push(() => geo.close());
    const blobs = createBlobStore(filesDir, { metrics });
    undo.push(() => blobs.close());

    const topology = new Topology(config, seed, clock, metrics, db, cache, feeds, graph, queue, journal, geo, blobs, { feedPrimary, ...(feedReplica ? { feedReplica } : {}), graph: graphRedis, keyPrefix, aof, shared: options.namespace !== undefined }, dataDir, prng, work, options.tier ? { index: options.tier.index, count: options.tier.processes } : undefined);
    topology.memcached = memcached;
    topology.postgres = postgres;
    if (!dataDir && filesDir) topology.sharedDir = filesDir;
    built = topology;
    if (aof) {
      // A restarted replica resyncs from its primary, as a Redis replica does.
      await feeds.resyncReplica();
      // Data dirs from before the AOF kept feed lists in feeds.json: taken in once, then snapshotted.
      const legacy = join(dataDir!, 'feeds.json');
      if (existsSync(legacy)) {
        await feeds.restore(JSON.parse(readFileSync(legacy, 'utf8')) as Record<string, string[]>);
        await aof.rewrite();
        rmSync(legacy);
      }
    }
    // Cached follow sets are derived from the databases; one written by a run that then died (or
    // lost by a real Redis without persistence) could be stale, so a durable start begins cold.
    if (dataDir) await graph.clear();
    // With a data dir the job journal is the book of what earlier runs promised, and its start runs
    // those jobs again (idempotently); what they left in the broker would run a second time, not
    // idempotently (a chunk's LPUSH), so it is dropped first.
    if (queue instanceof AmqpJobQueue) {
      if (dataDir) await queue.purge();
      // Before the store's start, which may wait for the jobs it runs again.
      await queue.start();
    }
    if (options.remoteJobs?.length && journal.recovered.length > 0) {
      options.onQueueNotice?.(`running again ${journal.recovered.length} job(s) an earlier run promised; with ${options.remoteJobs.join(', ')} left to workers, the server listens once workers have done them`);
    }
    await topology.store.init();
    await topology.subscriptions.init();
    // Jobs run again from the journal answer from caught-up replicas once the server listens.
    if (journal.recovered.length > 0) await topology.idle();
    if (redisUrl) await topology.pollRedisInfo();
    if (memcached) await cache.pollStats();
    postgres?.startPolling();
    topology.startSampling(options.sampleEveryMs ?? 1000);
    topology.startAofRewrites(options.aofCheckEveryMs ?? 30_000);
    return topology;
  } catch (err) {
    if (built) await (built as Topology).close().catch(() => undefined);
    else for (const f of undo.reverse()) await Promise.resolve().then(f).catch(() => undefined);
    throw err;
  }
}
