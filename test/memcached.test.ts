// The cache tier on real memcached processes (sim/backends/memcached.ts): the project's ketama ring
// chooses the process each key lives in, look-aside with delete on write reaches the real nodes,
// their `stats` are the telemetry, killing a node kills its process (through the admin API, with
// the service under load: no request fails), a node that dies on its own is noticed, and one that
// answers again is flushed before use. Needs Debian's memcached; skipped with a message where it is
// absent, except in CI (CI=true), where its absence fails.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import memjs from 'memjs';
import { buildTopology } from '../sim/topology.ts';
import { loadTopology } from '../sim/topology-config.ts';
import { MemcachedProcess, MemcachedTier } from '../sim/backends/memcached.ts';
import { probeMemcached } from '../sim/backends/probe.ts';
import { seedUsers } from '../sim/workload/bulk-loader.ts';
import { isSimError } from '../sim/engine/errors.ts';
import { makeEnv, signup, simInject, type TestEnv } from './helpers/app.ts';

const down = await probeMemcached('local');
const mustRun = process.env.CI === 'true';
if (down && !mustRun) console.warn(`memcached tests skipped: ${down}`);

/** What a plain client (not the project's) finds for `key` at `address`. */
async function rawGet(address: string, key: string): Promise<string | null> {
  const c = memjs.Client.create(address, { retries: 0, logger: { log: () => {} } });
  try {
    const { value } = await c.get(key);
    return value === null ? null : value.toString('utf8');
  } finally {
    c.close();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const counter = (env: TestEnv, name: string, labels: Record<string, string>) => env.topology.metrics.value(name, labels);

describe.skipIf(down !== null && !mustRun)('the cache on real memcached', () => {
  let env: TestEnv;
  let ids: string[];
  let viewer: { token: string };
  beforeAll(async () => {
    env = await makeEnv({ topology: { cache: { nodes: 4, leases: false } }, backends: { memcached: 'local' } });
    ids = (await seedUsers(env.topology, Array.from({ length: 300 }, (_, i) => ({ username: `mc${i}`, fullName: `Mc ${i}` })))).map((s) => s.id);
    viewer = await signup(env.app, 'mcviewer');
  });
  afterAll(async () => {
    const pids = env?.topology.memcached?.describe().map((n) => n.pid) ?? [];
    await env?.close();
    // The processes the topology started are gone with it.
    for (const pid of pids) if (pid !== null) expect(alive(pid)).toBe(false);
  });

  const getUser = (id: string) => env.app.inject({ method: 'GET', url: `/v1/users/${id}?access_token=${viewer.token}` });

  it('one process per node; every key lives in the process the ketama ring names, and nowhere else', async () => {
    const tier = env.topology.memcached!.describe();
    const px = env.topology.memcached!.prefix;
    expect(px).toMatch(/^t\d+-\d+-[0-9a-f]{6}:$/); // this topology's own name: nothing else reads its entries
    expect(tier.map((n) => n.name)).toEqual(['cache-0', 'cache-1', 'cache-2', 'cache-3']);
    expect(new Set(tier.map((n) => n.pid)).size).toBe(4);
    for (const n of tier) expect(alive(n.pid!)).toBe(true);
    for (const id of ids.slice(0, 60)) expect((await getUser(id)).statusCode).toBe(200);
    const address = new Map(tier.map((n) => [n.name, n.address]));
    const perNode = new Map<string, number>();
    for (const id of ids.slice(0, 60)) {
      const key = 'u:' + id;
      const owner = env.topology.cache.nodeFor(key)!;
      perNode.set(owner, (perNode.get(owner) ?? 0) + 1);
      for (const n of tier) {
        const v = await rawGet(n.address, px + key);
        expect(await rawGet(n.address, key)).toBeNull(); // never under the bare key
        if (n.name === owner) expect(v, `${key} on ${owner}`).toContain(id);
        else expect(v, `${key} also on ${n.name}`).toBeNull();
      }
      expect(address.get(owner)).toBeDefined();
    }
    // Spread over every node, as the ring spreads keys.
    expect(perNode.size).toBe(4);
  });

  it('an answer that waits in the socket while the event loop is blocked past the deadline is still an answer, not a dead node', async () => {
    const key = 'u:' + ids[5];
    expect((await getUser(ids[5]!)).statusCode).toBe(200); // cached
    const node = env.topology.cache.nodeFor(key)!;
    const errors = counter(env, 'cache_remote_errors', { node, op: 'get' });
    const dead = counter(env, 'cache_requests', { node, result: 'dead' });
    const pending = env.topology.cache.fetch(key);
    const until = performance.now() + 1500; // longer than an operation's deadline (1 s)
    while (performance.now() < until) {
      /* the server's loop busy elsewhere */
    }
    expect(await pending).toContain(ids[5]);
    expect(counter(env, 'cache_remote_errors', { node, op: 'get' })).toBe(errors);
    expect(counter(env, 'cache_requests', { node, result: 'dead' })).toBe(dead);
  });

  it('a write deletes the cached copy in the real node; the next read fills it again', async () => {
    const me = await signup(env.app, 'mcwriter');
    const key = env.topology.memcached!.prefix + 'u:' + me.id;
    const owner = env.topology.memcached!.describe().find((n) => n.name === env.topology.cache.nodeFor('u:' + me.id))!;
    expect((await getUser(me.id)).statusCode).toBe(200);
    expect(await rawGet(owner.address, key)).toContain('mcwriter Fullname');
    const follows = async () => ((await getUser(me.id)).json() as { data: { counts: { follows: number } } }).data.counts.follows;
    const res = await env.app.inject({ method: 'POST', url: `/v1/users/${ids[0]}/relationship?access_token=${me.token}`, payload: { action: 'follow' } });
    expect(res.statusCode, res.body).toBe(200);
    // Sent in order on the node's one connection: a read after the write's reply finds it gone.
    expect(await rawGet(owner.address, key)).toBeNull();
    expect(await follows()).toBe(1);
    expect(await rawGet(owner.address, key)).toContain('"follows":1');
  });

  it("the nodes' own stats are the telemetry: items and bytes as memcached counts them", async () => {
    await env.topology.cache.pollStats();
    const nodes = env.topology.cache.nodes();
    for (const n of nodes) {
      expect(n.memcached!.reachable).toBe(true);
      expect(n.capacityBytes).toBe(1024 * 1024 * Math.ceil(env.topology.config.cache.capacityBytes / 2 ** 20));
    }
    const items = nodes.reduce((a, n) => a + n.items, 0);
    expect(items).toBeGreaterThanOrEqual(61);
    expect(nodes.every((n) => n.bytes > 0)).toBe(true);
    const body = (await simInject(env.app, '/_sim/topology')).json() as { cache: { backend: string; nodes: Array<{ memcached?: { pid: number } }> } };
    expect(body.cache.backend).toBe('memcached');
    expect(body.cache.nodes.map((n) => n.memcached?.pid)).toEqual(env.topology.memcached!.describe().map((n) => n.pid));
  });

  it('kill of a memcached process under load through the admin API: 0 failed requests; revived, it is a new, empty process that serves again', async () => {
    for (const id of ids) expect((await getUser(id)).statusCode).toBe(200); // warm every node
    const victim = 'cache-1';
    const before = env.topology.memcached!.describe().find((n) => n.name === victim)!;
    const deadBefore = counter(env, 'cache_requests', { node: victim, result: 'dead' });
    const statuses = new Map<number, number>();
    let done = 0;
    let killed: Promise<unknown> | null = null;
    let killReport: { statusCode: number; body: string } | null = null;
    const worker = async (w: number) => {
      for (let i = 0; i < 250; i++) {
        const res = await getUser(ids[(w * 37 + i * 11) % ids.length]!);
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        if (++done === 600) killed = simInject(env.app, { method: 'POST', url: `/_sim/cache/${victim}/kill` }).then((r) => (killReport = r));
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    await killed;
    expect(killReport!.statusCode, killReport!.body).toBe(200);
    expect(Object.fromEntries(statuses)).toEqual({ 200: 2000 });
    expect(alive(before.pid!)).toBe(false);
    expect(counter(env, 'cache_requests', { node: victim, result: 'dead' })).toBeGreaterThan(deadBefore);
    expect(env.topology.cache.nodes().find((n) => n.name === victim)!.alive).toBe(false);

    const revived = await simInject(env.app, { method: 'POST', url: `/_sim/cache/${victim}/revive` });
    expect(revived.statusCode, revived.body).toBe(200);
    const after = env.topology.memcached!.describe().find((n) => n.name === victim)!;
    expect(after.address).toBe(before.address);
    expect(after.pid).not.toBe(before.pid);
    expect(alive(after.pid!)).toBe(true);
    // The first lookup probes it (a flush) in the background; then it serves and fills again.
    const hitsBefore = counter(env, 'cache_requests', { node: victim, result: 'hit' });
    for (let round = 0; round < 3; round++) for (const id of ids) expect((await getUser(id)).statusCode).toBe(200);
    expect(counter(env, 'cache_remote_returns', { node: victim })).toBe(1);
    expect(counter(env, 'cache_requests', { node: victim, result: 'hit' })).toBeGreaterThan(hitsBefore);
    // The run's telemetry (result.json, the report) carries them too.
    const remote = env.topology.telemetry().caches.remote!;
    expect(remote.returns).toBe(env.topology.metrics.sum('cache_remote_returns'));
    expect(remote.returns).toBeGreaterThanOrEqual(1);
    expect(remote.errors).toBe(env.topology.metrics.sum('cache_remote_errors'));
  });

  it('a process that dies on its own is noticed (dead lookups, no failed request) and, answering again, is flushed before use', async () => {
    const victim = 'cache-2';
    const node = env.topology.memcached!.describe().find((n) => n.name === victim)!;
    const key = ids.map((id) => 'u:' + id).find((k) => env.topology.cache.nodeFor(k) === victim)!;
    const id = key.slice(2);
    expect((await getUser(id)).statusCode).toBe(200);
    process.kill(node.pid!, 'SIGKILL');
    while (alive(node.pid!)) await new Promise((r) => setTimeout(r, 10));
    const errorsBefore = counter(env, 'cache_remote_errors', { node: victim, op: 'get' });
    for (let i = 0; i < 20; i++) expect((await getUser(id)).statusCode).toBe(200);
    expect(counter(env, 'cache_remote_errors', { node: victim, op: 'get' })).toBe(errorsBefore + 1); // then left alone for a second
    // Started again by someone else, holding a value this process never deleted: the probe flushes it.
    await env.topology.memcached!.node(victim).revive();
    const plain = memjs.Client.create(node.address, { retries: 0, logger: { log: () => {} } });
    const wireKey = env.topology.memcached!.prefix + key;
    await plain.set(wireKey, 'stale', {});
    plain.close();
    const returns = counter(env, 'cache_remote_returns', { node: victim });
    await new Promise((r) => setTimeout(r, 1100));
    expect((await getUser(id)).statusCode).toBe(200); // probes
    await new Promise((r) => setTimeout(r, 50));
    expect(counter(env, 'cache_remote_returns', { node: victim })).toBe(returns + 1);
    expect(await rawGet(node.address, wireKey)).toBeNull();
    const res = await getUser(id);
    expect((res.json() as { data: { id: string } }).data.id).toBe(id);
    expect(await rawGet(node.address, wireKey)).toContain(id);
  });
});

describe.skipIf(down !== null && !mustRun)('memcached nodes someone else runs', () => {
  it('are used by address; kill and revive are refused (nothing changes), and a count that does not match the topology is refused', async () => {
    const procs = await Promise.all([MemcachedProcess.start(8), MemcachedProcess.start(8)]);
    try {
      const addresses = procs.map((p) => p.address);
      const mismatch = await makeEnv({ topology: { cache: { nodes: 3 } }, backends: { memcached: addresses } }).then(
        () => 'built',
        (e: unknown) => (isSimError(e) ? `${e.code}: ${e.message}` : String(e)),
      );
      expect(mismatch).toMatch(/^SG_ERR_CONFIG_INVALID: the topology has 3 memcached node\(s\) .* but 2 address\(es\)/);
      const env = await makeEnv({ topology: { cache: { nodes: 2 } }, backends: { memcached: addresses } });
      try {
        const me = await signup(env.app, 'extern');
        expect((await env.app.inject({ method: 'GET', url: `/v1/users/${me.id}?access_token=${me.token}` })).statusCode).toBe(200);
        const owner = env.topology.cache.nodeFor('u:' + me.id)!;
        expect(await rawGet(addresses[Number(owner.slice(-1))]!, env.topology.memcached!.prefix + 'u:' + me.id)).toContain('extern');
        const res = await simInject(env.app, { method: 'POST', url: `/_sim/cache/${owner}/kill` });
        expect(res.statusCode).toBe(400);
        expect((res.json() as { meta: { error_message: string } }).meta.error_message).toMatch(/was not started by this process/);
        expect(env.topology.cache.nodes().every((n) => n.alive)).toBe(true);
        for (const p of procs) expect(p.running).toBe(true);
      } finally {
        await env.close();
      }
      // Closing the topology leaves processes it did not start running.
      for (const p of procs) expect(p.running).toBe(true);
    } finally {
      for (const p of procs) await p.kill();
    }
  });

  it('a topology whose build fails after it started memcached processes stops them again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scalegram-failed-build-'));
    try {
      mkdirSync(join(dir, 'geo.sqlite')); // the geo index cannot open its file: the build throws after the cache tier started
      const children = () => spawnSync('pgrep', ['-P', String(process.pid), '-x', 'memcached'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).length;
      const before = children();
      const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 }, cache: { nodes: 3 } });
      await expect(buildTopology({ config, seed: 1, dataDir: dir, memcached: 'local', sampleEveryMs: 0 })).rejects.toThrow();
      expect(children()).toBe(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a server killed with SIGKILL leaves no memcached process of its own behind', async () => {
    const serve = spawn(process.execPath, ['bin/scalegram.mjs', 'serve', '--memcached', 'local', '--port', '0', '--topology', '2012-sharded'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const pids = await new Promise<number[]>((resolve, reject) => {
      serve.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const found = [...out.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]));
        if (found.length === 6) resolve(found);
      });
      serve.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
    });
    expect(pids.every(alive)).toBe(true);
    serve.kill('SIGKILL');
    for (let i = 0; i < 50 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
    expect(pids.filter(alive)).toEqual([]);
  }, 30_000);

  it('a node whose address does not answer rejects with SG_ERR_BACKEND_UNREACHABLE; serve refuses such addresses at start (exit 69)', async () => {
    const tier = await MemcachedTier.open(['127.0.0.1:1'], ['cache-0'], 1 << 20);
    try {
      await expect(tier.node('cache-0').get('k')).rejects.toMatchObject({ code: 'SG_ERR_BACKEND_UNREACHABLE' });
    } finally {
      await tier.close();
    }
    expect(await probeMemcached(['127.0.0.1:1'])).toMatch(/^memcached at 127\.0\.0\.1:1 did not answer/);
    const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'serve', '--memcached', Array(6).fill('127.0.0.1:1').join(','), '--port', '0'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(69);
    expect(r.stderr).toMatch(/memcached at 127\.0\.0\.1:1 did not answer/);
  }, 60_000);
});
