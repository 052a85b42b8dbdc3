// `scalegram stack up|down|status`: the real parts on one machine, for a try-out. It uses what the
// machine has installed: Debian's Postgres cluster tools (pg_createcluster, pg_basebackup) for one
// Postgres cluster per physical server plus a streaming replica of each, memcached daemons on free
// ports, and the machine's Redis and RabbitMQ (started if installed and not answering). It writes
// stack.json (where everything is, so status, down and the service find it) and topology.json (a
// topology file whose shards, replicas and cache nodes match what it started).

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { simError } from '../engine/errors.ts';
import { ShardMap } from '../parts/shard-map.ts';
import { writeFileAtomic } from '../parts/data-dir.ts';
import { freePort, MemcachedDaemon, MemcachedNode, type StackMemcached } from './memcached.ts';
import { migrate } from './postgres/migrations.ts';
import type { PostgresServerSpec } from './postgres/pg-tier.ts';
import { DEFAULT_AMQP_URL, DEFAULT_REDIS_URL, probeAmqp, probeRedis } from './probe.ts';

/** Where a stack's files live unless a command is given --dir: $SCALEGRAM_STACK_DIR, else .scalegram/stack. */
export const DEFAULT_STACK_DIR = process.env.SCALEGRAM_STACK_DIR || '.scalegram/stack';

export type StackLayout = 'small' | '2012';

/** What each layout starts: Postgres primaries (each with one streaming replica), logical shards, memcached nodes. */
export const LAYOUTS: Record<StackLayout, { primaries: number; logical: number; memcached: number; description: string }> = {
  small: { primaries: 4, logical: 256, memcached: 4, description: '4 Postgres primaries, each streaming to a replica; 256 logical shards; 4 memcached nodes' },
  '2012': { primaries: 12, logical: 2048, memcached: 6, description: "Instagram's 2012 layout: 12 Postgres primaries, each streaming to a replica; 2048 logical shards; 6 memcached nodes" },
};

export interface StackPostgres {
  /** pg_createcluster's name (`scalegram-<id>-p<i>`), its port and URL (database `scalegram`). */
  cluster: string;
  port: number;
  url: string;
  /** The logical shards whose schemas it holds (the topology's shard map at start). */
  shards: number[];
  replicas: Array<{ cluster: string; port: number; url: string }>;
  /** Clusters that were this server's primary until a failover promoted a replica (stopped; `down` drops them). */
  retired?: string[];
}

export interface StackState {
  version: 1;
  /** Names this stack's Postgres clusters (a digest of the directory), so down finds them after a crash. */
  id: string;
  dir: string;
  layout: StackLayout;
  createdAt: string;
  redisUrl: string;
  amqpUrl: string;
  memcached: StackMemcached[];
  /** Null when Postgres was not started (--no-postgres, or no cluster tools). */
  postgres: { version: string; servers: StackPostgres[] } | null;
  /** Why Postgres is absent, when it is. */
  postgresSkipped?: string;
  topologyFile: string;
}

export type Progress = (line: string) => void;

export function stackId(dir: string): string {
  return createHash('sha256').update(resolve(dir)).digest('hex').slice(0, 8);
}

function statePath(dir: string): string {
  return join(dir, 'stack.json');
}

export function readStack(dir: string): StackState | null {
  const path = statePath(dir);
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as StackState;
  } catch (err) {
    throw simError('SG_ERR_CONFIG_INVALID', `${path} is not a stack file: ${(err as Error).message}; scalegram stack down --dir ${dir} removes what it can find`, { path });
  }
}

/** Written whole or not at all (a temp file renamed): an `up` killed mid-write leaves the last state, not half of one. */
function writeState(state: StackState): void {
  writeFileAtomic(statePath(state.dir), JSON.stringify(state, null, 2) + '\n');
}

export function run(cmd: string, args: string[], what: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  if (r.error || r.status !== 0) {
    throw simError('SG_ERR_BACKEND_UNREACHABLE', `${what} failed: ${cmd} ${args.join(' ')}: ${r.error?.message ?? (r.stderr || r.stdout || `exit ${r.status}`).trim()}`, { command: cmd });
  }
  return r.stdout;
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

/** The newest Postgres major version installed (Debian's /usr/lib/postgresql/<v>), or null. */
export function postgresVersion(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base).filter((v) => /^\d+$/.test(v) && existsSync(join(base, v, 'bin', 'postgres')));
  return versions.sort((a, b) => Number(b) - Number(a))[0] ?? null;
}

/** Why this machine cannot make Postgres clusters, or null when it can. */
export function postgresProblem(): string | null {
  if (!has('pg_createcluster') || !has('pg_dropcluster')) return "Debian's Postgres cluster tools (pg_createcluster) are not installed (apt-get install postgresql)";
  if (postgresVersion() === null) return 'no Postgres server is installed under /usr/lib/postgresql';
  if (process.getuid?.() !== 0) return 'making Postgres clusters needs root (pg_createcluster, and pg_basebackup as the postgres user)';
  return null;
}

/** The machine's clusters whose names start with `prefix` (pg_lsclusters), as [version, name]. */
export function clustersNamed(prefix: string): Array<[string, string]> {
  if (!has('pg_lsclusters')) return [];
  const out = spawnSync('pg_lsclusters', ['--no-header'], { encoding: 'utf8' }).stdout ?? '';
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 2 && f[1]!.startsWith(prefix))
    .map((f) => [f[0]!, f[1]!]);
}

async function ensureRedis(url: string, progress: Progress): Promise<void> {
  if ((await probeRedis(url)) === null) return;
  if (url !== DEFAULT_REDIS_URL || !has('redis-server')) throw simError('SG_ERR_BACKEND_UNREACHABLE', (await probeRedis(url))!, { url });
  progress('starting redis-server on 127.0.0.1:6379 (installed, not running)');
  mkdirSync('/tmp/scalegram-redis', { recursive: true });
  run('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no', '--dir', '/tmp/scalegram-redis', '--logfile', '/tmp/scalegram-redis/redis.log'], 'starting Redis');
  for (let i = 0; i < 50; i++) {
    if ((await probeRedis(url)) === null) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw simError('SG_ERR_BACKEND_UNREACHABLE', `Redis did not come up at ${url}`, { url });
}

async function ensureRabbit(url: string, progress: Progress): Promise<void> {
  if ((await probeAmqp(url)) === null) return;
  if (url !== DEFAULT_AMQP_URL || !has('rabbitmq-server')) throw simError('SG_ERR_BACKEND_UNREACHABLE', (await probeAmqp(url))!, {});
  progress('starting rabbitmq-server (installed, not running; this takes a few seconds)');
  run('rabbitmq-server', ['-detached'], 'starting RabbitMQ');
  for (let i = 0; i < 60; i++) {
    if ((await probeAmqp(url)) === null) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw simError('SG_ERR_BACKEND_UNREACHABLE', 'RabbitMQ did not come up on 127.0.0.1:5672 within a minute', {});
}

/**
 * A Postgres cluster of this stack: made, configured for a small machine, started. wal_level is
 * logical (replicas too: one may be promoted), so a logical shard can move to another server by
 * logical replication (postgres/shard-move.ts); wal_retrieve_retry_interval 200 ms, because a
 * server starts a new subscription's workers at most once per that interval (default 5 s: moves
 * one after the other to one server synced in ~5.3 s each, ~0.4 s at 200 ms).
 */
export function createPrimary(version: string, name: string, port: number): void {
  run(
    'pg_createcluster',
    [version, name, '-p', String(port), '--start', '-o', 'shared_buffers=32MB', '-o', 'max_connections=100', '-o', 'wal_level=logical', '-o', 'wal_retrieve_retry_interval=200ms', '--', '--auth=trust'],
    `creating Postgres cluster ${name}`,
  );
}

/** A streaming replica of the primary on `primaryPort`: a cluster whose data is a base backup of it (with standby.signal). */
export function createReplica(version: string, name: string, port: number, primaryPort: number): void {
  // hot_standby_feedback: the primary keeps the row versions the replica's queries still read, so
  // its cleanup does not conflict with them (a conflict stalls replay for up to 30 s, then cancels them).
  run('pg_createcluster', [version, name, '-p', String(port), '-o', 'shared_buffers=32MB', '-o', 'max_connections=100', '-o', 'wal_level=logical', '-o', 'wal_retrieve_retry_interval=200ms', '-o', 'hot_standby_feedback=on', '--', '--auth=trust'], `creating Postgres cluster ${name}`);
  const dataDir = `/var/lib/postgresql/${version}/${name}`;
  rmSync(dataDir, { recursive: true, force: true });
  run('install', ['-d', '-o', 'postgres', '-g', 'postgres', '-m', '700', dataDir], `making ${dataDir}`);
  run('runuser', ['-u', 'postgres', '--', 'pg_basebackup', '-h', '127.0.0.1', '-p', String(primaryPort), '-U', 'postgres', '-D', dataDir, '-R', '-X', 'stream', '-c', 'fast'], `base backup of the primary on port ${primaryPort} for ${name}`);
  run('pg_ctlcluster', [version, name, 'start'], `starting replica ${name}`);
}

export async function createDatabase(port: number): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    await client.query('CREATE DATABASE scalegram');
  } finally {
    await client.end();
  }
}

export interface UpOptions {
  dir: string;
  layout: StackLayout;
  /** Make Postgres clusters (default true when the machine can). */
  postgres: boolean;
  redisUrl?: string;
  amqpUrl?: string;
  progress: Progress;
}

/**
 * Brings the stack up. Refused when one is already up in `dir`. Each part is recorded in stack.json
 * as soon as it exists, so a stack that failed half-way is taken down by `down`.
 */
export async function stackUp(o: UpOptions): Promise<StackState> {
  const dir = resolve(o.dir);
  if (readStack(dir)) throw simError('SG_ERR_INVALID_PARAM', `a stack is already up in ${dir}: scalegram stack status shows it, scalegram stack down takes it down`, { dir });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const layout = LAYOUTS[o.layout];
  const id = stackId(dir);
  const state: StackState = {
    version: 1,
    id,
    dir,
    layout: o.layout,
    createdAt: new Date().toISOString(),
    redisUrl: o.redisUrl ?? DEFAULT_REDIS_URL,
    amqpUrl: o.amqpUrl ?? DEFAULT_AMQP_URL,
    memcached: [],
    postgres: null,
    topologyFile: join(dir, 'topology.json'),
  };
  writeState(state);
  o.progress(`stack ${id} in ${dir}: ${layout.description}`);
  await ensureRedis(state.redisUrl, o.progress);
  o.progress(`Redis answers at ${state.redisUrl}`);
  await ensureRabbit(state.amqpUrl, o.progress);
  o.progress('RabbitMQ answers at 127.0.0.1:5672');

  const capacityMb = 64;
  for (let i = 0; i < layout.memcached; i++) {
    const port = await freePort();
    const d = new MemcachedDaemon(port, capacityMb, join(dir, `memcached-${i}.pid`));
    state.memcached.push({ address: d.address, pidFile: d.pidFile, memoryMb: capacityMb });
    writeState(state);
    await d.start();
    o.progress(`memcached cache-${i} on ${d.address} (pid ${d.pid})`);
  }

  const problem = o.postgres ? postgresProblem() : 'not asked for (--no-postgres)';
  if (problem) {
    state.postgresSkipped = problem;
    o.progress(`Postgres: skipped: ${problem}`);
  } else {
    const version = postgresVersion()!;
    state.postgres = { version, servers: [] };
    const map = new ShardMap(layout.logical, layout.primaries);
    for (let i = 0; i < layout.primaries; i++) {
      const t0 = process.hrtime.bigint();
      const name = `scalegram-${id}-p${i}`;
      const port = await freePort();
      const server: StackPostgres = { cluster: name, port, url: `postgres://postgres@127.0.0.1:${port}/scalegram`, shards: map.shardsOn(i), replicas: [] };
      state.postgres.servers.push(server);
      writeState(state);
      createPrimary(version, name, port);
      await createDatabase(port);
      const pool = new pg.Pool({ connectionString: server.url, max: 2 });
      try {
        await migrate(pool, server.shards);
      } finally {
        await pool.end();
      }
      const rname = `${name}-r0`;
      const rport = await freePort();
      server.replicas.push({ cluster: rname, port: rport, url: `postgres://postgres@127.0.0.1:${rport}/scalegram` });
      writeState(state);
      createReplica(version, rname, rport, port);
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      o.progress(`Postgres ${i + 1}/${layout.primaries}: primary ${name} on 127.0.0.1:${port} (${server.shards.length} shard schemas, shard_${String(server.shards[0]).padStart(4, '0')} …), streaming to ${rname} on 127.0.0.1:${rport} (${secs.toFixed(1)} s)`);
    }
  }

  const topology = {
    extends: '2012-sharded',
    name: `stack-${o.layout}`,
    description: `The real stack in ${dir}: ${layout.description}`,
    shards: { logical: layout.logical, physical: layout.primaries, strategy: 'modulo' },
    database: { replicas: 1 },
    cache: { nodes: layout.memcached, gutter: 0, capacityBytes: capacityMb * 1024 * 1024 },
  };
  writeFileSync(state.topologyFile, JSON.stringify(topology, null, 2) + '\n');
  writeState(state);
  return state;
}

/** The stack's Postgres servers as the store takes them (PgTier), or undefined when it made none. */
export function stackPostgres(state: StackState): PostgresServerSpec[] | undefined {
  const p = state.postgres;
  if (!p) return undefined;
  return p.servers.map((s) => ({ url: s.url, replicas: s.replicas.map((r) => r.url), clusters: { version: p.version, primary: s.cluster, replicas: s.replicas.map((r) => r.cluster), stackDir: state.dir } }));
}

/**
 * A failover promoted replica cluster `promoted` of the server whose primary was cluster `primary`:
 * stack.json says so (the replica is that server's primary now, the old one retired), so `status`
 * shows the stack as it is and the next `serve --stack` uses the promoted one. Unknown names change nothing.
 */
export function recordPromotion(dir: string, primary: string, promoted: string): void {
  const state = readStackLoose(resolve(dir));
  const server = state?.postgres?.servers.find((s) => s.cluster === primary);
  const replica = server?.replicas.find((r) => r.cluster === promoted);
  if (!state || !server || !replica) return;
  server.retired = [...(server.retired ?? []), server.cluster];
  server.cluster = replica.cluster;
  server.port = replica.port;
  server.url = replica.url;
  server.replicas = server.replicas.filter((r) => r !== replica);
  writeState(state);
}

export interface PartStatus {
  part: string;
  name: string;
  address: string;
  up: boolean;
  detail: string;
}

/** Whether each part of the stack answers, with what it reports (memcached items, replication lag). */
export async function stackStatus(dir: string): Promise<{ state: StackState | null; parts: PartStatus[] }> {
  const state = readStack(resolve(dir));
  if (!state) return { state: null, parts: [] };
  const parts: PartStatus[] = [];
  const redis = await probeRedis(state.redisUrl);
  parts.push({ part: 'redis', name: 'redis', address: state.redisUrl, up: redis === null, detail: redis ?? 'answers PING' });
  const amqp = await probeAmqp(state.amqpUrl);
  parts.push({ part: 'rabbitmq', name: 'rabbitmq', address: state.amqpUrl.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@'), up: amqp === null, detail: amqp ?? 'accepts connections' });
  for (const [i, m] of state.memcached.entries()) {
    const node = new MemcachedNode(m.address);
    try {
      const st = await node.stats();
      parts.push({ part: 'memcached', name: `cache-${i}`, address: m.address, up: true, detail: `pid ${st.pid}, ${st.items} items, ${st.bytes} bytes of ${st.capacityBytes}` });
    } catch (err) {
      parts.push({ part: 'memcached', name: `cache-${i}`, address: m.address, up: false, detail: (err as Error).message });
    } finally {
      await node.close();
    }
  }
  for (const s of state.postgres?.servers ?? []) {
    parts.push(await postgresStatus(s.cluster, s.port, false));
    for (const r of s.replicas) parts.push(await postgresStatus(r.cluster, r.port, true));
  }
  return { state, parts };
}

async function postgresStatus(cluster: string, port: number, replica: boolean): Promise<PartStatus> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'scalegram', connectionTimeoutMillis: 2000 });
  const base = { part: replica ? 'postgres replica' : 'postgres primary', name: cluster, address: `127.0.0.1:${port}` };
  try {
    await client.connect();
    if (replica) {
      const r = await client.query<{ rec: boolean; lag: string | null; receive: string | null; replay: string | null; receiver: string | null }>(
        'SELECT pg_is_in_recovery() AS rec, EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::text AS lag, pg_last_wal_receive_lsn()::text AS receive, pg_last_wal_replay_lsn()::text AS replay, (SELECT status FROM pg_stat_wal_receiver) AS receiver',
      );
      const row = r.rows[0]!;
      const positions = `replayed ${row.replay} of ${row.receive} received${row.lag !== null ? `; last replayed commit ${Number(row.lag).toFixed(1)} s ago` : ''}`;
      if (!row.rec) return { ...base, up: true, detail: 'not in recovery: promoted' };
      // In recovery with no WAL receiver: its primary does not answer, so it is not streaming.
      return { ...base, up: true, detail: row.receiver === 'streaming' ? `streaming; ${positions}` : `NOT streaming (WAL receiver: ${row.receiver ?? 'none'}; is its primary up?); ${positions}` };
    }
    const r = await client.query<{ lsn: string; n: string }>("SELECT pg_current_wal_lsn()::text AS lsn, (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'shard\\_%')::text AS n");
    return { ...base, up: true, detail: `WAL at ${r.rows[0]!.lsn}; ${r.rows[0]!.n} shard schemas` };
  } catch (err) {
    return { ...base, up: false, detail: (err as Error).message };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Takes the stack down: kills its memcached daemons (by their pid files, with or without
 * stack.json) and drops its Postgres clusters (found by name on the machine, so a stack that
 * crashed half-way is cleaned up too), then removes stack.json and topology.json. The machine's
 * Redis and RabbitMQ keep running: they are its services, not the stack's.
 */
export async function stackDown(dir: string, progress: Progress): Promise<{ memcached: number; clusters: number }> {
  const abs = resolve(dir);
  const state = existsSync(statePath(abs)) ? readStackLoose(abs) : null;
  let memcached = 0;
  const pidFiles = new Set(state?.memcached.map((m) => m.pidFile) ?? []);
  if (existsSync(abs)) for (const f of readdirSync(abs)) if (/^memcached-\d+\.pid$/.test(f)) pidFiles.add(join(abs, f));
  for (const pidFile of pidFiles) {
    const d = new MemcachedDaemon(0, 0, pidFile);
    const pid = d.pid;
    if (pid !== null) {
      await d.kill();
      memcached++;
      progress(`memcached pid ${pid}: killed`);
    }
    rmSync(pidFile, { force: true });
  }
  let clusters = 0;
  const id = state?.id ?? stackId(abs);
  // Replicas first: a primary dropped first would leave them retrying.
  const found = clustersNamed(`scalegram-${id}-`).sort((a, b) => b[1].length - a[1].length);
  for (const [version, name] of found) {
    run('pg_dropcluster', [version, name, '--stop'], `dropping Postgres cluster ${name}`);
    clusters++;
    progress(`Postgres cluster ${name}: dropped`);
  }
  rmSync(statePath(abs), { force: true });
  rmSync(join(abs, 'topology.json'), { force: true });
  return { memcached, clusters };
}

function readStackLoose(dir: string): StackState | null {
  try {
    return readStack(dir);
  } catch {
    return null;
  }
}
