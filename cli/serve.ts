// `scalegram serve`: builds a topology and listens with the v1 photo service on it.

import { adminTokenProblem } from '../server/admin-auth.ts';
import { buildApp } from '../server/app.ts';
import { randomSecret } from '../sim/credentials.ts';
import { DEFAULT_PRESET, loadTopology, PRESETS } from '../sim/topology-config.ts';
import { buildTopology, type Topology } from '../sim/topology.ts';
import { intOption, parse, seedOption } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { UsageError } from './usage-error.ts';

const HELP = `Usage: scalegram serve [options]

Start the photo service (Instagram API v1) on a simulated topology.

Options:
  --port N            port to listen on (default 8080; 0 picks a free one)
  --host H            address to bind (default 127.0.0.1)
  --topology T        a preset (${Object.keys(PRESETS).join(', ')}) or a JSON file (default ${DEFAULT_PRESET})
  --seed S            seed for every generator (default: random, printed)
  --data-dir DIR      keep databases, images and feeds in DIR (default: in memory)
  --redis-url URL     use a real Redis for feeds and the graph cache (default: $REDIS_URL, else in-process ioredis-mock)
  --rate-limit N      requests per hour per user (or client address without a valid token; default 5000, as Instagram's v1; 0 = unlimited)
  --admin-token T     the bearer token the admin API (/_sim/*) requires (default: $SCALEGRAM_ADMIN_TOKEN, else a new
                      random one, printed once at start)
  --callback-allow L  addresses real-time subscription callbacks may reach: a comma-separated list of CIDR
                      ranges, addresses and host names (resolved once, at start); default loopback only
                      (127.0.0.0/8, ::1)
  -h, --help          show this help
`;

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    port: { type: 'string' },
    host: { type: 'string' },
    topology: { type: 'string' },
    seed: { type: 'string' },
    'data-dir': { type: 'string' },
    'redis-url': { type: 'string' },
    'rate-limit': { type: 'string' },
    'admin-token': { type: 'string' },
    'callback-allow': { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  const port = intOption(values.port, 'port', 8080, 0, 65535);
  const rateLimitPerHour = intOption(values['rate-limit'], 'rate-limit', 5000);
  const config = loadTopology(values.topology ?? DEFAULT_PRESET);
  const seed = seedOption(values.seed);
  const redisUrl = values['redis-url'] ?? process.env.REDIS_URL;
  // The operator's token, else one from the CSPRNG (never from --seed), printed once below.
  const givenAdminToken = values['admin-token'] ?? process.env.SCALEGRAM_ADMIN_TOKEN;
  if (givenAdminToken !== undefined) {
    const problem = adminTokenProblem(givenAdminToken);
    if (problem) throw new UsageError(`${problem} (${values['admin-token'] !== undefined ? '--admin-token' : 'SCALEGRAM_ADMIN_TOKEN'})`);
  }
  const adminToken = givenAdminToken ?? randomSecret();
  const topology = await buildTopology({ config, seed, ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}), ...(redisUrl ? { redisUrl } : {}) });
  const callbackAllow = values['callback-allow']?.split(',').map((e) => e.trim()).filter((e) => e !== '');
  if (callbackAllow !== undefined && callbackAllow.length === 0) throw new UsageError('--callback-allow needs at least one address, range or host name');
  const app = await buildApp({ topology, rateLimitPerHour, adminToken, ...(callbackAllow ? { callbackAllow } : {}) });
  const address = await app.listen({ port, host: values.host ?? '127.0.0.1' });
  process.stdout.write(`scalegram: listening on ${address}  (API ${address}/v1, docs ${address}/docs, metrics ${address}/metrics)\n`);
  process.stdout.write(describeTopology(topology, values['data-dir'], redisUrl));
  process.stdout.write(
    givenAdminToken === undefined
      ? `admin token: ${adminToken}\n  (/_sim/* needs "Authorization: Bearer <token>"; runs against this server take -e ADMIN_TOKEN=<token>; it is not shown again)\n`
      : `admin token: as given by ${values['admin-token'] !== undefined ? '--admin-token' : 'SCALEGRAM_ADMIN_TOKEN'} (/_sim/* needs "Authorization: Bearer <token>")\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = async (signal: string) => {
      process.stdout.write(`\nscalegram: ${signal}, draining queued work and closing\n`);
      await app.close();
      await topology.close();
      resolve();
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
  });
  return EXIT.OK;
}

export function describeTopology(t: Topology, dataDir: string | undefined, redisUrl: string | undefined): string {
  const c = t.config;
  const groups = t.db.groups;
  const feedReplica = ((t.describe() as { feed?: { replica?: unknown } }).feed?.replica ?? null) !== null;
  const lines = [
    `topology ${c.name} (seed ${t.seed})${c.description ? ` — ${c.description}` : ''}`,
    `  databases  ${groups.map((g) => `${g.name}: ${g.servers.length} primar${g.servers.length === 1 ? 'y' : 'ies'} × ${c.database.replicas} replica${c.database.replicas === 1 ? '' : 's'} (lag ${c.database.replicaLagMs} ms)`).join('; ')}`,
    `             ${c.shards.logical} logical shards, ${c.shards.strategy} sharding, reads: ${c.database.readPolicy}, pool ${c.database.poolSize}/node` +
      (c.database.serviceTimeMs > 0 ? `, service time ${c.database.serviceTimeMs} ms (${c.database.serviceTimeDistribution})` : ''),
    `  cache      ${c.cache.nodes} memcached node${c.cache.nodes === 1 ? '' : 's'} × ${(c.cache.capacityBytes / 2 ** 20).toFixed(0)} MiB, ${c.cache.hashing}${c.cache.leases ? ', leases' : ''}`,
    `  feeds      ${redisUrl ? `Redis at ${redisUrl}` : 'ioredis-mock'}, ${c.feed.fanout} fan-out, lists capped at ${c.feed.maxLength}, chunks of ${c.feed.chunkSize}${feedReplica ? ', read replica' : c.feed.replicas ? ' (no read replica: set REDIS_REPLICA_URL for one with a real Redis)' : ''}`,
    `  queue      ${c.queue.workers} workers (budget ${c.queue.maxDepth} jobs)`,
    `  geo index  ${c.geo.enabled ? 'on' : 'off'}`,
    `  storage    ${dataDir ? `durable in ${dataDir}` : 'in memory (use --data-dir to keep it)'}`,
    `  callbacks  real-time subscriptions may call ${t.subscriptions.callbackAllowlist().join(', ')}`,
  ];
  return lines.join('\n') + '\n';
}
