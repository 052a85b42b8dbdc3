// `scalegram serve`: builds a topology and listens with the v1 photo service on it.

import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { runTier } from '../server/tier/primary.ts';
import { adminTokenProblem } from '../server/admin-auth.ts';
import { DEFAULT_CONNECTION_LIMITS as CONN, MAX_TIMEOUT_MS } from '../server/connection-guard.ts';
import { randomSecret } from '../sim/domain/credentials.ts';
import { DEFAULT_PRESET, loadTopology, PRESETS } from '../sim/topology-config.ts';
import { AdminApiSource } from '../dashboard/admin-source.ts';
import { startDashboard, type Dashboard } from '../dashboard/server.ts';
import { ServiceHost } from '../server/service-host.ts';
import type { Topology } from '../sim/topology.ts';
import { namespaceProblem } from '../sim/backends/namespace.ts';
import { parseAddress } from '../sim/backends/memcached.ts';
import { readStack, stackPostgres } from '../sim/backends/local-stack.ts';
import { parsePostgresServers, type PostgresServerSpec } from '../sim/backends/postgres/pg-tier.ts';
import { probeMemcached, probeRedis } from '../sim/backends/probe.ts';
import { DELIVERY_KIND } from '../sim/domain/fanout-delivery.ts';
import { redact } from '../sim/backends/amqp-queue.ts';
import { intOption, parse, seedOption } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { boundUrl, checkCanListen, exposureWarning, listenErrorMessage } from './listen.ts';
import { UsageError } from './usage-error.ts';

const HELP = `Usage: scalegram serve [options]

Start the photo service (Instagram API v1) on a simulated topology.

Options:
  --port N            port to listen on (default 8080; 0 picks a free one)
  --host H            address to bind (default 127.0.0.1)
  --topology T        a preset (${Object.keys(PRESETS).join(', ')}) or a JSON file (default ${DEFAULT_PRESET})
  --seed N            seed of the simulated world: populations, graphs, media (default: random, printed);
                      never of a credential (tokens, salts and the admin token come from the CSPRNG)
  --data-dir DIR      keep everything in DIR (0700): every acknowledged write survives kill -9 (default: in memory)
  --redis-url URL     use a real Redis for feeds and the graph cache (default: $REDIS_URL, else in-process ioredis-mock)
  --amqp-url URL      use RabbitMQ as the job queue: durable queues, acks after the work (default: $AMQP_URL,
                      else the in-process queue)
  --memcached M       real memcached for the cache: "local" starts one memcached process per node on free ports
                      (killed at stop; the admin API's cache kill/revive act on them), or HOST:PORT,… one
                      address per node, ring nodes then gutter (default: $MEMCACHED_SERVERS, else in process)
  --postgres S        Postgres as the store: one entry per physical server, comma-separated, each its primary's
                      URL and its streaming replicas' URLs joined by "+" (postgres://h:5433/scalegram+postgres://h:5434/scalegram,…);
                      each logical shard a schema there (scalegram stack up makes them); tables emptied at
                      start unless --data-dir (default: $POSTGRES_SERVERS, else SQLite in process)
  --stack DIR         the real parts scalegram stack up started in DIR: its topology (unless --topology), its
                      Postgres servers and replicas (failover and replay faults act on their clusters), its
                      memcached processes (the admin API's cache kill/revive act on them), Redis and RabbitMQ
                      (unless --redis-url/--amqp-url)
  --workers N         run N server processes on the one port (node:cluster), sharing the real parts: the store on
                      Postgres (--postgres or --stack), memcached by address (or --stack), Redis and RabbitMQ;
                      process 0 answers the admin API and /metrics for all of them (default: one process)
  --namespace NAME    name this deployment's queues and real-Redis keys, so that scalegram worker processes
                      given the same name share them (default: one per run, removed when it stops)
  --remote-jobs KINDS job kinds to leave to scalegram worker processes (comma-separated; today: fanout-chunk)
  --rate-limit N      requests per hour per user (or client address without a valid token; default 5000, as Instagram's v1; 0 = unlimited)
  --admin-token T     the bearer token the admin API (/_sim/*) requires (default: $SCALEGRAM_ADMIN_TOKEN, else a new
                      random one, printed once at start)
  --headers-timeout-ms MS
                      408 when a request's headers are not all in MS ms after it began (default ${CONN.headersTimeoutMs}; 0 = none)
  --request-timeout-ms MS
                      408 when a request, headers and body, is not all in MS ms after it began (default ${CONN.requestTimeoutMs}; 0 = none)
  --idle-timeout-ms MS
                      close a keep-alive connection idle for MS ms (default ${CONN.idleTimeoutMs}; 0 = never)
  --max-connections-per-address N
                      open connections per client address; more are reset at once (default ${CONN.maxConnectionsPerAddress}; 0 = no cap)
  --callback-allow L  addresses real-time subscription callbacks may reach: a comma-separated list of CIDR
                      ranges, addresses and host names (resolved once, at start); default loopback only
                      (127.0.0.0/8, ::1)
  --dashboard         also serve the live teaching dashboard (loopback only), and print its URL with its key
  --dashboard-port N  the dashboard's port (default: a free one)
  -h, --help          show this help

POST /_sim/reset {"topology": "<preset>", "seed": N} replaces the service behind the port with a new
world (not with --data-dir); exported k6 bundles call it at setup.

A load test from one machine (scalegram run --target, k6) opens a connection per VU from one
address: give --max-connections-per-address more than its peak VUs plus its largest http.batch (or 0),
and --idle-timeout-ms 65000 so that VUs keep their connections between iterations.
`;

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    port: { type: 'string' },
    host: { type: 'string' },
    topology: { type: 'string' },
    seed: { type: 'string' },
    'data-dir': { type: 'string' },
    'redis-url': { type: 'string' },
    'amqp-url': { type: 'string' },
    memcached: { type: 'string' },
    stack: { type: 'string' },
    postgres: { type: 'string' },
    namespace: { type: 'string' },
    workers: { type: 'string' },
    'remote-jobs': { type: 'string' },
    'rate-limit': { type: 'string' },
    'admin-token': { type: 'string' },
    'headers-timeout-ms': { type: 'string' },
    'request-timeout-ms': { type: 'string' },
    'idle-timeout-ms': { type: 'string' },
    'max-connections-per-address': { type: 'string' },
    'callback-allow': { type: 'string' },
    dashboard: { type: 'boolean' },
    'dashboard-port': { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  const port = intOption(values.port, 'port', 8080, 0, 65535);
  if (values['dashboard-port'] !== undefined && !values.dashboard) throw new UsageError('--dashboard-port goes with --dashboard');
  const dashboardPort = intOption(values['dashboard-port'], 'dashboard-port', 0, 0, 65535);
  const rateLimitPerHour = intOption(values['rate-limit'], 'rate-limit', 5000);
  const connections = connectionOptions(values);
  const host = values.host ?? '127.0.0.1';
  const stack = values.stack === undefined ? null : readStack(values.stack);
  if (values.stack !== undefined && !stack) throw new UsageError(`--stack ${values.stack}: no stack there (scalegram stack up --dir ${values.stack} starts one)`);
  if (stack && values.memcached !== undefined) throw new UsageError('--stack and --memcached exclude each other: the stack names its memcached processes');
  const config = loadTopology(values.topology ?? stack?.topologyFile ?? DEFAULT_PRESET);
  const seed = seedOption(values.seed);
  const redisUrl = values['redis-url'] ?? stack?.redisUrl ?? process.env.REDIS_URL;
  const amqpUrl = values['amqp-url'] ?? stack?.amqpUrl ?? (process.env.AMQP_URL || undefined);
  if (stack && values.postgres !== undefined) throw new UsageError('--stack and --postgres exclude each other: the stack names its Postgres servers');
  const postgres: PostgresServerSpec[] | undefined = stack ? stackPostgres(stack) : postgresOption(values.postgres ?? (process.env.POSTGRES_SERVERS || undefined), values.postgres !== undefined ? '--postgres' : 'POSTGRES_SERVERS');
  const memcached = stack ? stack.memcached : memcachedOption(values.memcached ?? (process.env.MEMCACHED_SERVERS || undefined), values.memcached !== undefined ? '--memcached' : 'MEMCACHED_SERVERS');
  const remoteJobs = values['remote-jobs']?.split(',').map((k) => k.trim()).filter((k) => k !== '');
  if (remoteJobs !== undefined) {
    if (!amqpUrl) throw new UsageError('--remote-jobs needs RabbitMQ as the job queue (--amqp-url or $AMQP_URL): the in-process queue has no other process to leave jobs to');
    if (values.namespace === undefined) throw new UsageError('--remote-jobs needs --namespace NAME: the name scalegram worker processes are given to find the queues and Redis keys');
    if (!redisUrl) throw new UsageError('--remote-jobs needs a real Redis (--redis-url or $REDIS_URL): a worker delivers to the feed lists the server reads');
    const unknown = remoteJobs.filter((k) => !REMOTE_KINDS.includes(k));
    if (unknown.length > 0) throw new UsageError(`--remote-jobs: ${unknown.join(', ')} cannot run in a worker process (only ${REMOTE_KINDS.join(', ')} needs nothing but Redis; the others read the server's embedded databases)`);
  }
  const nsProblem = values.namespace === undefined ? null : namespaceProblem(values.namespace);
  if (nsProblem) throw new UsageError(`--${nsProblem}`);
  // The operator's token, else one from the CSPRNG (never from --seed), printed once below.
  const givenAdminToken = values['admin-token'] ?? (process.env.SCALEGRAM_ADMIN_TOKEN || undefined);
  if (givenAdminToken !== undefined) {
    const problem = adminTokenProblem(givenAdminToken);
    if (problem) throw new UsageError(`${problem} (${values['admin-token'] !== undefined ? '--admin-token' : 'SCALEGRAM_ADMIN_TOKEN'})`);
  }
  const adminToken = givenAdminToken ?? randomSecret();
  const workers = values.workers === undefined ? undefined : intOption(values.workers, 'workers', 1, 1, MAX_WORKERS);
  if (workers !== undefined) {
    // Nothing that matters may live in one process's memory: every part is a real one, shared.
    const missing = [
      postgres ? null : 'the store on Postgres (--postgres, $POSTGRES_SERVERS or --stack): each process\'s embedded SQLite would hold accounts the others never see',
      Array.isArray(memcached) ? null : memcached === 'local' ? 'memcached given by address (--memcached HOST:PORT,… or --stack): "local" would start a set of memcached processes per server process' : 'memcached given by address (--memcached HOST:PORT,… or --stack): an in-process cache per server would serve what another process has changed',
      redisUrl ? null : 'a real Redis (--redis-url, $REDIS_URL or --stack): feeds, the graph cache and rate limits are shared there',
      amqpUrl ? null : 'RabbitMQ (--amqp-url, $AMQP_URL or --stack): the processes share the job queues',
      values['data-dir'] === undefined ? null : 'no --data-dir: the tier keeps its store in Postgres, and its images and geo index in a directory of its own',
    ].filter((m): m is string => m !== null);
    if (missing.length > 0) throw new UsageError(`--workers ${workers} needs ${missing.join('; ')}`);
    // The processes share Redis (rate limits, feeds): it must answer before they start, as the others must.
    const redisDown = await probeRedis(redisUrl!);
    if (redisDown) {
      process.stderr.write(`scalegram serve: ${redisDown} [SG_ERR_BACKEND_UNREACHABLE]\n`);
      return EXIT.UNAVAILABLE;
    }
  }
  // As run --stack real does: nodes given by address (or a stack's) must answer before the server claims them.
  if (memcached && memcached !== 'local') {
    const problem = await probeMemcached(memcached);
    if (problem) {
      process.stderr.write(`scalegram serve: ${problem} [SG_ERR_BACKEND_UNREACHABLE]\n`);
      return EXIT.UNAVAILABLE;
    }
  }
  await checkCanListen(host, port);
  const callbackAllow = values['callback-allow']?.split(',').map((e) => e.trim()).filter((e) => e !== '');
  if (callbackAllow !== undefined && callbackAllow.length === 0) throw new UsageError('--callback-allow needs at least one address, range or host name');
  const adminLine =
    givenAdminToken === undefined
      ? `admin token: ${adminToken}\n  (/_sim/* needs "Authorization: Bearer <token>"; runs against this server take -e ADMIN_TOKEN=<token>; it is not shown again)\n`
      : `admin token: as given by ${values['admin-token'] !== undefined ? '--admin-token' : 'SCALEGRAM_ADMIN_TOKEN'} (/_sim/* needs "Authorization: Bearer <token>")\n`;
  if (workers !== undefined) {
    const namespace = values.namespace ?? `tier-${randomBytes(6).toString('hex')}`;
    let dashboard: Dashboard | null = null;
    const failed = await runTier({
      processes: workers,
      port,
      host,
      config,
      seed,
      topology: { redisUrl: redisUrl!, amqpUrl: amqpUrl!, memcached: memcached!, postgres: postgres!, namespace, ...(remoteJobs ? { remoteJobs } : {}) },
      app: { rateLimitPerHour, adminToken, connections, ...(callbackAllow ? { callbackAllow } : {}) },
      ownNamespace: values.namespace === undefined,
      workerEntry: fileURLToPath(new URL('./serve-worker.mjs', import.meta.url)),
      log: (line) => process.stderr.write(`scalegram serve: ${line}\n`),
      onReady: (bound, banner, pids) => {
        const url = boundUrl(bound);
        process.stdout.write(`scalegram: listening on ${url}  (API ${url}/v1, docs ${url}/docs, metrics ${url}/metrics)\n`);
        process.stdout.write(exposureWarning(bound) ?? '');
        process.stdout.write(`  app tier   ${workers} server process${workers === 1 ? '' : 'es'} on one port (pids ${pids.join(', ')}); process 0 answers the admin API and /metrics for all; namespace ${namespace}${values.namespace === undefined ? ' (removed at stop)' : ''}\n`);
        process.stdout.write(banner);
        process.stdout.write(adminLine);
        if (values.dashboard) {
          const apiUrl = bound.address === '0.0.0.0' ? `http://127.0.0.1:${bound.port}` : bound.address === '::' ? `http://[::1]:${bound.port}` : url;
          startDashboard({ source: new AdminApiSource(apiUrl, adminToken), port: dashboardPort }).then(
            (d) => {
              dashboard = d;
              process.stdout.write(`dashboard: ${d.url}\n  (open it in a browser on this machine; the key in it lets that browser act as the admin)\n`);
            },
            (err: unknown) => process.stderr.write(`scalegram serve: the dashboard could not start: ${listenErrorMessage(err, '127.0.0.1', dashboardPort, '--dashboard-port') ?? (err as Error).message}\n`),
          );
        }
      },
    });
    await (dashboard as Dashboard | null)?.close();
    if (failed) {
      process.stderr.write(`scalegram serve: the tier stopped: ${failed} [SG_ERR_NODE_DOWN]\n`);
      return EXIT.UNAVAILABLE;
    }
    return EXIT.OK;
  }
  // The service behind the port; POST /_sim/reset replaces it with another topology and seed.
  const service = await ServiceHost.start({
    config,
    seed,
    topology: {
      ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
      ...(redisUrl ? { redisUrl } : {}),
      ...(amqpUrl ? { amqpUrl } : {}),
      ...(memcached ? { memcached } : {}),
      ...(postgres ? { postgres, onNotice: (m: string) => process.stderr.write(`scalegram serve: ${m}\n`) } : {}),
      ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
      ...(remoteJobs ? { remoteJobs } : {}),
      ...(amqpUrl ? { onQueueNotice: (m: string) => process.stderr.write(`scalegram serve: ${m}\n`) } : {}),
    },
    app: { rateLimitPerHour, adminToken, connections, ...(callbackAllow ? { callbackAllow } : {}) },
    // A reset drops every account: the log says when it happened and what the server serves now.
    onReset: (s) => process.stdout.write(`scalegram: POST /_sim/reset: now topology ${s.name} (seed ${s.seed}), generation ${s.generation}\n`),
  });
  let bound: AddressInfo;
  try {
    bound = await service.listen(port, host);
  } catch (err) {
    const message = listenErrorMessage(err, host, port);
    await service.close();
    if (!message) throw err;
    throw new UsageError(message);
  }
  const url = boundUrl(bound);
  process.stdout.write(`scalegram: listening on ${url}  (API ${url}/v1, docs ${url}/docs, metrics ${url}/metrics)\n`);
  process.stdout.write(exposureWarning(bound) ?? '');
  process.stdout.write(describeTopology(service.topology, values['data-dir'], redisUrl));
  process.stdout.write(adminLine);
  let dashboard: Dashboard | null = null;
  if (values.dashboard) {
    // A client of the admin API like any other, on loopback: the page acts through it, never with the token.
    // The address the service is bound to (a wildcard one is reached on loopback).
    const apiUrl = bound.address === '0.0.0.0' ? `http://127.0.0.1:${bound.port}` : bound.address === '::' ? `http://[::1]:${bound.port}` : boundUrl(bound);
    try {
      dashboard = await startDashboard({ source: new AdminApiSource(apiUrl, adminToken), port: dashboardPort });
    } catch (err) {
      await service.close();
      throw new UsageError(listenErrorMessage(err, '127.0.0.1', dashboardPort, '--dashboard-port') ?? `the dashboard could not start: ${(err as Error).message}`);
    }
    process.stdout.write(`dashboard: ${dashboard.url}\n  (open it in a browser on this machine; the key in it lets that browser act as the admin)\n`);
  }
  await new Promise<void>((resolve) => {
    const stop = async (signal: string) => {
      process.stdout.write(`\nscalegram: ${signal}, draining queued work and closing\n`);
      await dashboard?.close();
      await service.close();
      resolve();
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
    // A closed terminal stops it as cleanly (its memcached processes, its queues).
    process.once('SIGHUP', () => void stop('SIGHUP'));
  });
  return EXIT.OK;
}

/** The connection limits from their flags; the header deadline cannot outlast the request's (Node's rule). */
function connectionOptions(values: Record<string, string | boolean | undefined>) {
  const ms = (name: string, def: number) => intOption(values[name] as string | undefined, name, def, 0, MAX_TIMEOUT_MS);
  const limits = {
    headersTimeoutMs: ms('headers-timeout-ms', CONN.headersTimeoutMs),
    requestTimeoutMs: ms('request-timeout-ms', CONN.requestTimeoutMs),
    idleTimeoutMs: ms('idle-timeout-ms', CONN.idleTimeoutMs),
    maxConnectionsPerAddress: intOption(values['max-connections-per-address'] as string | undefined, 'max-connections-per-address', CONN.maxConnectionsPerAddress),
  };
  if (limits.requestTimeoutMs > 0 && limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new UsageError(`--headers-timeout-ms (${limits.headersTimeoutMs}) must not exceed --request-timeout-ms (${limits.requestTimeoutMs})`);
  }
  return limits;
}

/** `local`, or a list of host:port (one per cache node); refused with a usage error otherwise. */
export function memcachedOption(text: string | undefined, name: string): 'local' | string[] | undefined {
  if (text === undefined) return undefined;
  if (text.trim() === 'local') return 'local';
  const list = text.split(',').map((a) => a.trim()).filter((a) => a !== '');
  if (list.length === 0) throw new UsageError(`${name}: "local" or a comma-separated list of host:port`);
  for (const a of list) {
    try {
      parseAddress(a);
    } catch (e) {
      throw new UsageError(`${name}: ${(e as Error).message} (give "local" or a comma-separated list of host:port)`);
    }
  }
  return list;
}

/** Postgres servers from --postgres or $POSTGRES_SERVERS; refused with a usage error when malformed. */
function postgresOption(text: string | undefined, name: string): PostgresServerSpec[] | undefined {
  if (text === undefined) return undefined;
  try {
    return parsePostgresServers(text);
  } catch (e) {
    throw new UsageError(`${name}: ${(e as Error).message}`);
  }
}

/** Server processes `--workers` takes at most (count). */
const MAX_WORKERS = 64;

/** Job kinds a `scalegram worker` can do: those that need nothing but Redis. */
const REMOTE_KINDS: readonly string[] = [DELIVERY_KIND];

function queueLine(t: Topology): string {
  const c = t.config;
  const q = (t.describe() as { queue: { backend: string; url?: string; prefix?: string; remote?: string[] } }).queue;
  if (q.backend !== 'rabbitmq') return `  queue      in process: ${c.queue.workers} workers (budget ${c.queue.maxDepth} jobs)`;
  const remote = q.remote ?? [];
  return (
    `  queue      RabbitMQ at ${q.url}, queues ${q.prefix}.<kind> (durable, acked after the work); ${c.queue.workers} jobs at a time here` +
    (remote.length ? `\n             left to workers: ${remote.join(', ')}; start them with: scalegram worker --namespace ${q.prefix!.replace(/^scalegram\./, '')} (same --amqp-url and --redis-url)` : '')
  );
}

export function describeTopology(t: Topology, dataDir: string | undefined, redisUrl: string | undefined): string {
  const c = t.config;
  const groups = t.db.groups;
  const feedReplica = ((t.describe() as { feed?: { replica?: unknown } }).feed?.replica ?? null) !== null;
  const lines = [
    `topology ${c.name} (seed ${t.seed})${c.description ? ` — ${c.description}` : ''}`,
    t.postgres
      ? `  databases  Postgres: ${t.postgres.servers.map((s) => `${s.name} ${redact(s.primary.url)}${s.replicas.length ? ` (replica${s.replicas.length === 1 ? '' : 's'} ${s.replicas.map((r) => redact(r.url)).join(', ')})` : ''}`).join('; ')}`
      : `  databases  ${groups.map((g) => `${g.name}: ${g.servers.length} primar${g.servers.length === 1 ? 'y' : 'ies'} × ${c.database.replicas} replica${c.database.replicas === 1 ? '' : 's'} (lag ${c.database.replicaLagMs} ms)`).join('; ')}`,
    `             ${c.shards.logical} logical shards${t.postgres ? ' (a schema each)' : ''}, ${c.shards.strategy} sharding, reads: ${c.database.readPolicy}, pool ${t.postgres ? t.postgres.poolSize : c.database.poolSize}/node` +
      (c.database.serviceTimeMs > 0 ? `, service time ${c.database.serviceTimeMs} ms (${c.database.serviceTimeDistribution})` : ''),
    `  cache      ${c.cache.nodes} memcached node${c.cache.nodes === 1 ? '' : 's'} × ${(c.cache.capacityBytes / 2 ** 20).toFixed(0)} MiB, ${c.cache.hashing}${c.cache.leases ? ', leases' : ''}` +
      (t.memcached ? `, on memcached: ${t.memcached.describe().map((n) => `${n.name} ${n.address}${n.controllable ? ` (pid ${n.pid})` : ''}`).join(', ')}` : ', in process'),
    `  feeds      ${redisUrl ? `Redis at ${redact(redisUrl)}` : 'ioredis-mock'}, ${c.feed.fanout} fan-out, lists capped at ${c.feed.maxLength}, chunks of ${c.feed.chunkSize}${feedReplica ? ', read replica' : c.feed.replicas ? ' (no read replica: set REDIS_REPLICA_URL for one with a real Redis)' : ''}`,
    queueLine(t),
    `  geo index  ${c.geo.enabled ? 'on' : 'off'}`,
    `  storage    ${
      t.sharedDir
        ? `the store in Postgres (its tables emptied at the tier's start); images and the geo index in ${t.sharedDir}, shared by the server processes (removed at stop)`
        : t.postgres
          ? `the store in Postgres (${dataDir ? `kept; the rest durable in ${dataDir}` : 'its tables emptied at start; --data-dir keeps them'})`
          : dataDir
            ? `durable in ${dataDir}`
            : 'in memory (use --data-dir to keep it)'
    }`,
    `  callbacks  real-time subscriptions may call ${t.subscriptions.callbackAllowlist().join(', ')}`,
  ];
  return lines.join('\n') + '\n';
}
