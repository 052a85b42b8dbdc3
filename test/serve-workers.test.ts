// `scalegram serve --workers N` as a user starts it: refused (exit 2, saying what is missing) unless
// every part is a real, shared one; on two Postgres servers with replicas, two memcached daemons,
// Redis and RabbitMQ, two server processes answer on one port: an account made through one is used
// through the other, images and the geo index are shared, ids minted at once by both never collide,
// the admin API and /metrics answer for the whole tier (counts add up over both processes), a change
// each process keeps in memory (leases) reaches both, what a tier cannot do is refused with why,
// a failover of a Postgres primary is adopted by every process (the writes each lost counted, their
// sum the answer), a killed process is started again, and the stop removes the made-up namespace.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import amqp from 'amqplib';
import pg from 'pg';
import { Redis } from 'ioredis';
import { amqpUrl, realBackendsDown, redisUrl } from './helpers/real-backends.ts';
import { makePgServers, pgClustersProblem, pgClustersRequired, type PgServers } from './support/pg-servers.ts';
import { freePort, MemcachedDaemon } from '../sim/backends/memcached.ts';
import { probeMemcached } from '../sim/backends/probe.ts';
import { shardOf } from '../sim/parts/ids.ts';
import { ShardMap } from '../sim/parts/shard-map.ts';
import { shardSchema } from '../sim/backends/postgres/schema.ts';
import type { StackState } from '../sim/backends/local-stack.ts';
import { QUEUED_JOB_KINDS } from '../sim/backends/namespace.ts';
import { image, multipart } from './helpers/app.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'scalegram.mjs');
const ADMIN = 'serve-workers-admin-token-0123';
const mustRun = process.env.CI === 'true';
// No stack and no real parts from the environment: the refusals must find none.
const bareEnv = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !['AMQP_URL', 'REDIS_URL', 'MEMCACHED_SERVERS', 'POSTGRES_SERVERS'].includes(k))), SCALEGRAM_STACK_DIR: '/nonexistent/scalegram-stack' };

describe('serve --workers: refusals', () => {
  it.each([
    [['--workers', '0'], /--workers/],
    [['--workers', '2'], /--workers 2 needs the store on Postgres .*; memcached given by address .*; a real Redis .*; RabbitMQ/],
    [['--workers', '2', '--memcached', 'local'], /"local" would start a set of memcached processes per server process/],
    [['--workers', '2', '--data-dir', '/tmp/x'], /no --data-dir/],
  ])('serve %j: exit 2 with what is missing', (args, message) => {
    const r = spawnSync(process.execPath, [BIN, 'serve', ...args], { encoding: 'utf8', timeout: 60_000, env: bareEnv });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

const backendsDown = (await realBackendsDown()) ?? (await probeMemcached('local')) ?? pgClustersProblem;
if (backendsDown && !mustRun) console.warn(`serve --workers: the tier test is skipped: ${backendsDown}`);

describe.skipIf(backendsDown !== null && !mustRun)('serve --workers 2 on real parts', () => {
  let servers: PgServers;
  let dir: string;
  const daemons: MemcachedDaemon[] = [];
  let tier: ChildProcess;
  let output = '';
  let base = '';
  let namespace = '';
  let pids: number[] = [];
  const admin = { authorization: `Bearer ${ADMIN}` };

  beforeAll(async () => {
    if (backendsDown) throw new Error(`CI=true needs Postgres clusters, Redis, RabbitMQ and memcached: ${backendsDown}`);
    expect(pgClustersRequired || !pgClustersProblem).toBe(true);
    dir = mkdtempSync(join(tmpdir(), 'sg-workers-'));
    servers = await makePgServers({ servers: 2, logical: 16, replicas: 1 });
    for (let i = 0; i < 2; i++) {
      const d = new MemcachedDaemon(await freePort(), 16, join(dir, `mc${i}.pid`));
      await d.start();
      daemons.push(d);
    }
    const topology = join(dir, 'topology.json');
    writeFileSync(topology, JSON.stringify({ extends: '2012-sharded', name: 'workers-test', shards: { logical: 16, physical: 2 }, database: { replicas: 1 }, cache: { nodes: 2, gutter: 0, capacityBytes: 16 * 2 ** 20 }, feed: { replicas: 0 } }));
    // As scalegram stack up records its parts: the admin API's failover and cache faults act on these clusters and daemons.
    const map = new ShardMap(16, 2);
    const port = (url: string) => Number(new URL(url).port);
    const state: StackState = {
      version: 1,
      id: 'workers-test',
      dir,
      layout: 'small',
      createdAt: new Date().toISOString(),
      redisUrl,
      amqpUrl,
      memcached: daemons.map((d) => ({ address: d.address, pidFile: d.pidFile, memoryMb: d.memoryMb })),
      postgres: {
        version: servers.specs[0]!.clusters!.version,
        servers: servers.specs.map((sp, i) => ({
          cluster: sp.clusters!.primary,
          port: port(sp.url),
          url: sp.url,
          shards: map.shardsOn(i),
          replicas: (sp.replicas ?? []).map((url, r) => ({ cluster: sp.clusters!.replicas[r]!, port: port(url), url })),
        })),
      },
      topologyFile: topology,
    };
    writeFileSync(join(dir, 'stack.json'), JSON.stringify(state));
    tier = spawn(
      process.execPath,
      [BIN, 'serve', '--workers', '2', '--port', '0', '--seed', '5', '--stack', dir, '--admin-token', ADMIN, '--rate-limit', '0', '--max-connections-per-address', '0'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: bareEnv },
    );
    tier.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve --workers did not start: ${output}`)), 150_000);
      tier.stdout!.on('data', (d: Buffer) => {
        output += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(output);
        const t = /app tier\s+2 server processes on one port \(pids (\d+), (\d+)\).*namespace (\S+) \(removed at stop\)/.exec(output);
        if (m && t && /admin token: as given/.test(output)) {
          clearTimeout(timer);
          base = m[1]!;
          pids = [Number(t[1]), Number(t[2])];
          namespace = t[3]!;
          resolve();
        }
      });
      tier.on('exit', (code) => reject(new Error(`serve --workers exited with ${code}: ${output}`)));
    });
  }, 240_000);

  afterAll(async () => {
    if (tier && tier.exitCode === null) {
      // A clean stop first (it removes the made-up namespace's queues and keys), then a kill.
      const exited = new Promise((r) => tier.once('exit', r));
      tier.kill('SIGTERM');
      const killer = setTimeout(() => tier.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(killer);
    }
    for (const d of daemons) await d.kill().catch(() => undefined);
    servers?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  /** A request on a connection of its own: the primary hands each connection to the next process. */
  const call = async (method: string, path: string, body?: Record<string, string>, headers: Record<string, string> = {}) => {
    const res = await fetch(base + path, {
      method,
      signal: AbortSignal.timeout(30_000),
      headers: { connection: 'close', ...headers, ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      ...(body ? { body: new URLSearchParams(body).toString() } : {}),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> & { data?: unknown; meta: { code: number; error_message?: string } } };
  };
  const callJson = async (method: string, path: string, body: unknown) => {
    const res = await fetch(base + path, { method, signal: AbortSignal.timeout(60_000), headers: { connection: 'close', 'content-type': 'application/json', ...admin }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const tierInfo = async () => (await call('GET', '/_sim/tier', undefined, admin).catch(() => call('GET', '/_sim/tier', undefined, admin))).json as unknown as { processes: number; answered: Array<{ index: number; pid: number; requests: number }>; missing: number[] };

  const accounts: Array<{ id: string; token: string }> = [];

  it('two processes answer on one port, each for some of the requests; an account made through one works through the other', async () => {
    expect(pids[0]).not.toBe(pids[1]);
    const before = await tierInfo();
    expect(before.processes).toBe(2);
    expect(before.answered.map((p) => p.pid).sort()).toEqual([...pids].sort());
    // Sign-ups and reads spread over both processes; every token works wherever it is used.
    for (let i = 0; i < 12; i++) {
      const r = await call('POST', '/v1/accounts', { username: `w${i}`, password: 'correct horse battery', full_name: `W ${i}` });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      const d = r.json.data as { access_token: string; user: { id: string } };
      accounts.push({ id: d.user.id, token: d.access_token });
    }
    for (const a of accounts) expect((await call('GET', `/v1/users/self?access_token=${a.token}`)).status).toBe(200);
    const after = await tierInfo();
    // Every process answered some of the 24 requests (round-robin hands each new connection to the next).
    for (const p of after.answered) expect(p.requests - (before.answered.find((b) => b.index === p.index)?.requests ?? 0)).toBeGreaterThan(0);
    // /metrics answers for the tier wherever it is asked: the 12 reads of /v1/users/self, over both processes.
    for (let i = 0; i < 4; i++) {
      const text = await (await fetch(`${base}/metrics`, { headers: { connection: 'close' } })).text();
      const line = text.split('\n').find((l) => l.startsWith('scalegram_http_requests_total{') && l.includes('route="/v1/users/:id"') && l.includes('method="GET"') && l.includes('status="200"'));
      expect(line, text.slice(0, 400)).toBeDefined();
      expect(Number(line!.split(' ').pop())).toBe(12);
    }
  }, 60_000);

  it('ids minted at once by both processes never collide: 120 comments on one photo, all kept, all distinct', async () => {
    const [owner] = accounts;
    const photo = await image();
    const up = await fetch(`${base}/v1/media?access_token=${owner!.token}`, { method: 'POST', ...multipartInit({ caption: 'tier', lat: '40.7128', lng: '-74.006' }, photo) });
    expect(up.status).toBe(200);
    const media = ((await up.json()) as { data: { id: string; images: { standard_resolution: { url: string } } } }).data;
    const results = await Promise.all(
      Array.from({ length: 120 }, (_, i) => call('POST', `/v1/media/${media.id}/comments?access_token=${accounts[i % accounts.length]!.token}`, { text: `c${i}` })),
    );
    expect(results.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    const ids = results.map((r) => (r.json.data as { id: string }).id);
    expect(new Set(ids).size).toBe(120);
    // Minted on the photo's shard, by both processes (their sequences are ≡ 0 and ≡ 1 mod 2).
    expect(new Set(ids.map((id) => shardOf(id)))).toEqual(new Set([shardOf(media.id)]));
    expect(new Set(ids.map((id) => Number(BigInt(id) & 1n)))).toEqual(new Set([0, 1]));
    const listed = await call('GET', `/v1/media/${media.id}/comments?access_token=${owner!.token}`);
    expect((listed.json.data as unknown[]).length).toBe(120);
    // The image and the geo index are shared: every process serves the photo and finds it by place.
    for (let i = 0; i < 4; i++) {
      const img = await fetch(media.images.standard_resolution.url, { headers: { connection: 'close' } });
      expect(img.status).toBe(200);
      expect((await img.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }
    let found = 0;
    for (let i = 0; i < 40 && found < 4; i++) {
      const near = await call('GET', `/v1/media/search?lat=40.7128&lng=-74.006&distance=1000&access_token=${owner!.token}`);
      expect(near.status).toBe(200);
      if ((near.json.data as Array<{ id: string }>).some((m) => m.id === media.id)) found++;
      else await new Promise((r) => setTimeout(r, 250)); // the geo-index job runs after the answer
    }
    expect(found).toBe(4);
  }, 60_000);

  it('the admin API answers for the tier wherever it is asked, and refuses what one process could not do for all', async () => {
    const tele = (await call('GET', '/_sim/telemetry', undefined, admin)).json as unknown as { fanout: unknown };
    expect(tele.fanout).toBeDefined();
    for (let i = 0; i < 2; i++) {
      const split = await callJson('POST', '/_sim/shards/split', { cluster: 'main', server: 0 });
      expect(split.status).toBe(400);
      expect(JSON.stringify(split.json)).toMatch(/runs as 2 processes \(serve --workers\): a split needs a new server/);
      const reset = await call('POST', '/_sim/reset', {}, admin);
      expect(reset.status).toBe(409);
    }
    // A memcached daemon killed through the admin API under reads from both processes: none fails, every process goes on.
    const reads = Promise.all(Array.from({ length: 200 }, (_, i) => call('GET', `/v1/users/${accounts[i % accounts.length]!.id}?access_token=${accounts[0]!.token}`)));
    const kill = await callJson('POST', '/_sim/cache/cache-1/kill', {});
    expect(kill.status, JSON.stringify(kill.json)).toBe(200);
    expect((await reads).map((r) => r.status).filter((st) => st !== 200)).toEqual([]);
    for (let i = 0; i < 20; i++) expect((await call('GET', `/v1/users/${accounts[i % accounts.length]!.id}?access_token=${accounts[0]!.token}`)).status).toBe(200);
    expect((await callJson('POST', '/_sim/cache/cache-1/revive', {})).status).toBe(200);
    // Spelled as the router reads it (percent-encoded), still the leader's: its fault log, wherever asked.
    for (let i = 0; i < 4; i++) {
      const faults = (await call('GET', '/%5Fsim/faults', undefined, admin)).json as unknown as { faults: Array<{ fault: string }> };
      expect(faults.faults.map((f) => f.fault)).toEqual(expect.arrayContaining(['cache_kill', 'cache_revive']));
    }
    // Without the token the leader refuses, wherever the request arrived.
    for (let i = 0; i < 2; i++) expect((await call('GET', '/_sim/tier')).status).toBe(401);
  }, 60_000);

  it('a shard moves between the servers while both processes write to it: every write lands, and both write to the destination after', async () => {
    // Not the shard of the account the failover test posts as (that test finds its server by the map at start).
    const owner = accounts.find((a, i) => i !== 1 && shardOf(a.id) !== shardOf(accounts[1]!.id))!;
    const shard = shardOf(owner.id);
    const map = new ShardMap(16, 2);
    const from = map.physicalOf(shard);
    const up = await fetch(`${base}/v1/media?access_token=${owner.token}`, { method: 'POST', ...multipartInit({ caption: 'moving' }, await image()) });
    expect(up.status).toBe(200);
    const mediaId = ((await up.json()) as { data: { id: string } }).data.id;
    let writing = true;
    let made = 0;
    const failures: number[] = [];
    // Paced (4 writers, 10 writes/s each) and at most 480 in all, so the API can list them on one page (count ≤ 500)
    // however long the move takes on a busy machine.
    const writer = async (k: number) => {
      for (let i = 0; writing && made + failures.length < 480; i++) {
        const r = await call('POST', `/v1/media/${mediaId}/comments?access_token=${accounts[(k + i) % accounts.length]!.token}`, { text: `m${k}.${i}` });
        if (r.status === 200) made++;
        else failures.push(r.status);
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    const writers = Promise.all(Array.from({ length: 4 }, (_, k) => writer(k)));
    await new Promise((r) => setTimeout(r, 300));
    const move = await callJson('POST', '/_sim/shards/move', { cluster: 'main', shard, to: 1 - from, wait: true });
    await new Promise((r) => setTimeout(r, 300));
    writing = false;
    await writers;
    expect(move.status, JSON.stringify(move.json)).toBe(200);
    expect(failures).toEqual([]);
    expect(made).toBeGreaterThan(0);
    // Every comment is on the destination, written by both processes before, during and after the switch.
    // (Counted in Postgres: the API's list may come from memcached, filled while the writers ran.)
    const srcPool = new pg.Pool({ connectionString: servers.specs[from]!.url, max: 1 });
    const dstPool = new pg.Pool({ connectionString: servers.specs[1 - from]!.url, max: 1 });
    try {
      const schema = shardSchema(shard);
      expect((await srcPool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount).toBe(0);
      expect(Number((await dstPool.query(`SELECT count(*) AS n FROM ${schema}.comments WHERE media_id = $1`, [mediaId])).rows[0].n)).toBe(made);
    } finally {
      await srcPool.end();
      await dstPool.end();
    }
    // Each write after deletes the cached list: the API then lists every comment, from the destination.
    for (let i = 0; i < 6; i++) expect((await call('POST', `/v1/media/${mediaId}/comments?access_token=${owner.token}`, { text: `after${i}` })).status).toBe(200);
    expect(((await call('GET', `/v1/media/${mediaId}/comments?count=500&access_token=${owner.token}`)).json.data as unknown[]).length).toBe(made + 6);
  }, 180_000);

  it('a failover through the admin API moves every process to the promoted replica; the writes each process lost are counted, and their sum is the answer', async () => {
    const owner = accounts[1]!;
    const server = `db-${new ShardMap(16, 2).physicalOf(shardOf(owner.id))}`;
    const up = await fetch(`${base}/v1/media?access_token=${owner.token}`, { method: 'POST', ...multipartInit({ caption: 'before the failover' }, await image()) });
    expect(up.status).toBe(200);
    const mediaId = ((await up.json()) as { data: { id: string } }).data.id;
    const comment = (i: number) => call('POST', `/v1/media/${mediaId}/comments?access_token=${accounts[i % accounts.length]!.token}`, { text: `f${i}` });
    for (let i = 0; i < 10; i++) expect((await comment(i)).status).toBe(200);
    // The replica keeps what it has, and receives nothing more: a partition.
    const waitReplayed = async () => {
      for (let i = 0; i < 100; i++) {
        const listed = await call('GET', `/v1/media/${mediaId}/comments?access_token=${owner.token}`);
        if ((listed.json.data as unknown[]).length === 10) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await waitReplayed();
    const cut = await callJson('POST', '/_sim/db/replay', { node: server, streaming: false });
    expect(cut.status, JSON.stringify(cut.json)).toBe(200);
    const after = await Promise.all(Array.from({ length: 40 }, (_, i) => comment(100 + i)));
    expect(after.map((r) => r.status).filter((st) => st !== 200)).toEqual([]);
    const fail = await callJson('POST', `/_sim/db/${server}/fail`, {});
    expect(fail.status, JSON.stringify(fail.json)).toBe(200);
    const report = fail.json as unknown as { promoted: string; writesLost: number; writesLostByProcess: Array<{ index: number; writesLost: number }> };
    expect(report.promoted).toBe(`${server}-r1`);
    // Each comment is at least one write past the cut; both processes made some of them and lost theirs.
    expect(report.writesLost).toBeGreaterThanOrEqual(40);
    expect(report.writesLostByProcess.map((p) => p.index)).toEqual([0, 1]);
    for (const p of report.writesLostByProcess) expect(p.writesLost).toBeGreaterThan(0);
    expect(report.writesLost).toBe(report.writesLostByProcess.reduce((n, p) => n + p.writesLost, 0));
    const text = await (await fetch(`${base}/metrics`, { headers: { connection: 'close' } })).text();
    const counted = text.split('\n').filter((l) => l.startsWith('scalegram_db_writes_lost_total{')).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    expect(counted).toBe(report.writesLost);
    // The 40 comments made after the cut went with the old primary; every process writes to the promoted one.
    expect(((await call('GET', `/v1/media/${mediaId}/comments?access_token=${owner.token}`)).json.data as unknown[]).length).toBe(10);
    for (let i = 0; i < 10; i++) expect((await comment(200 + i)).status).toBe(200);
    expect(((await call('GET', `/v1/media/${mediaId}/comments?access_token=${owner.token}`)).json.data as unknown[]).length).toBe(20);
  }, 120_000);

  it('a killed process is started again, and the others answer meanwhile (process 0 too: its admin API answers 503 until it is back)', async () => {
    const victim = pids[1]!;
    process.kill(victim, 'SIGKILL');
    // A connection handed to the process as it died is reset (what kill -9 does to requests in flight); the next one is answered.
    const again = async (path: string) => {
      try {
        return await call('GET', path);
      } catch {
        return call('GET', path);
      }
    };
    for (let i = 0; i < 6; i++) expect((await again(`/v1/users/self?access_token=${accounts[0]!.token}`).catch((e: unknown) => ({ status: `${String(e)}\n${output}` }))).status).toBe(200);
    let info = await tierInfo();
    // Starting a process (tsx, the topology on every real part) takes seconds, more on a busy machine.
    for (let i = 0; i < 300 && (info.answered.length < 2 || info.answered.some((p) => p.pid === victim)); i++) {
      await new Promise((r) => setTimeout(r, 500));
      info = await tierInfo();
    }
    expect(info.answered.length).toBe(2);
    expect(info.answered.map((p) => p.pid)).not.toContain(victim);
    expect(output).toMatch(new RegExp(`server process 1 \\(pid ${victim}\\) died \\(SIGKILL\\); starting it again`));
    // Process 0 killed: the admin API answers 503 (retry) until it is back, the API goes on meanwhile.
    const leaderPid = info.answered.find((p) => p.index === 0)!.pid;
    process.kill(leaderPid, 'SIGKILL');
    const seen = new Set<number>();
    let back = false;
    for (let i = 0; i < 300 && !back; i++) {
      const r = await call('GET', '/_sim/tier', undefined, admin).catch(() => null);
      if (r) seen.add(r.status);
      const answered = (r?.json as unknown as { answered?: Array<{ pid: number }> } | undefined)?.answered;
      back = r?.status === 200 && answered !== undefined && answered.length === 2 && !answered.some((p) => p.pid === leaderPid);
      if (!back) {
        expect((await again(`/v1/users/self?access_token=${accounts[0]!.token}`)).status).toBe(200);
        await new Promise((res) => setTimeout(res, 500));
      }
    }
    expect(back).toBe(true);
    expect([...seen].filter((st) => st !== 200 && st !== 503)).toEqual([]);
  }, 240_000);

  it('stops on SIGTERM, and removes the queues and Redis keys of the namespace it made up', async () => {
    const exited = new Promise<number | null>((r) => tier.once('exit', (code) => r(code)));
    tier.kill('SIGTERM');
    expect(await exited, output).toBe(0);
    const redis = new Redis(redisUrl);
    try {
      expect((await redis.scan('0', 'MATCH', `scalegram:${namespace}:*`, 'COUNT', 10000))[1]).toEqual([]);
    } finally {
      redis.disconnect();
    }
    const conn = await amqp.connect(amqpUrl);
    try {
      for (const kind of QUEUED_JOB_KINDS) {
        const ch = await conn.createChannel();
        ch.on('error', () => undefined);
        await expect(ch.checkQueue(`scalegram.${namespace}.${kind}`)).rejects.toThrow(/NOT_FOUND/);
      }
    } finally {
      await conn.close().catch(() => undefined);
    }
  }, 90_000);
});

function multipartInit(fields: Record<string, string>, photo: Buffer): { body: Buffer; headers: Record<string, string> } {
  const m = multipart(fields, [{ field: 'photo', filename: 'photo.jpg', contentType: 'image/jpeg', bytes: photo }]);
  return { body: m.payload, headers: { ...m.headers, connection: 'close' } };
}
