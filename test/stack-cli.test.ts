// `scalegram stack up|down|status` as a user runs it: the small layout's Postgres clusters (each
// primary streaming to a replica, 64 shard schemas each), memcached daemons, the machine's Redis and
// RabbitMQ; a server on the stack kills and revives a memcached daemon through the admin API; a
// scenario runs on it; status sees a part killed from outside; down leaves nothing behind, also
// when up was killed half-way. Needs root, Debian's Postgres cluster tools, memcached, Redis and
// RabbitMQ: skipped with a message where one is missing, except in CI (CI=true).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { postgresProblem, stackId, type StackState } from '../sim/backends/local-stack.ts';
import { probeMemcached } from '../sim/backends/probe.ts';
import { realBackendsDown } from './helpers/real-backends.ts';

const mustRun = process.env.CI === 'true';
const missing = postgresProblem() ?? (await probeMemcached('local')) ?? (await realBackendsDown());
if (missing && !mustRun) console.warn(`scalegram stack tests skipped: ${missing}`);

const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['AMQP_URL', 'REDIS_URL', 'MEMCACHED_SERVERS', 'SCALEGRAM_STACK_DIR'].includes(k)));

function cli(timeout: number, ...args: string[]) {
  return spawnSync(process.execPath, ['bin/scalegram.mjs', ...args], { encoding: 'utf8', timeout, env });
}

function clustersOf(dir: string): string[] {
  const out = spawnSync('pg_lsclusters', ['--no-header'], { encoding: 'utf8' }).stdout ?? '';
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[1] ?? '')
    .filter((name) => name.startsWith(`scalegram-${stackId(dir)}-`));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Status {
  up: boolean;
  parts: Array<{ part: string; name: string; up: boolean; detail: string }>;
}

describe('scalegram stack: refusals', () => {
  it.each([
    [[], /say up, down or status; scalegram stack --help/],
    [['sideways'], /say up, down or status \(not "sideways"\)/],
    [['up', 'now'], /unexpected argument: now/],
    [['up', '--layout', 'huge'], /--layout huge: small or 2012/],
    [['status', '--layout', '2012'], /--layout and --no-postgres go with stack up/],
    [['down', '--json'], /--json goes with stack status/],
  ])('scalegram stack %j: exit 2 with a message', (args, message) => {
    const r = cli(30_000, 'stack', ...args);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('status and down with no stack: said plainly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'scalegram-nostack-'));
    try {
      const s = cli(30_000, 'stack', 'status', '--dir', dir);
      expect(s.status).toBe(1);
      expect(s.stdout).toContain(`no stack in ${dir}`);
      const d = cli(30_000, 'stack', 'down', '--dir', dir);
      expect(d.status, d.stderr).toBe(0);
      expect(d.stdout).toContain('stack down: 0 memcached process(es) killed, 0 Postgres cluster(s) dropped');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(missing !== null && !mustRun)('scalegram stack up, status, down', () => {
  it('brings the small layout up, serves and runs on it, notices a killed part, and takes it all down', async () => {
    if (missing) throw new Error(`CI=true requires what scalegram stack needs: ${missing}`);
    const dir = mkdtempSync(join(tmpdir(), 'scalegram-stack-'));
    try {
      const up = cli(240_000, 'stack', 'up', '--dir', dir);
      expect(up.status, up.stderr).toBe(0);
      expect(up.stderr).toMatch(/Postgres 4\/4: primary scalegram-\w+-p3 on 127\.0\.0\.1:\d+ \(64 shard schemas, shard_0192 …\), streaming to scalegram-\w+-p3-r0/);
      const state = JSON.parse(readFileSync(join(dir, 'stack.json'), 'utf8')) as StackState;
      expect(state.postgres!.servers.map((s) => s.shards.length)).toEqual([64, 64, 64, 64]);
      expect(clustersOf(dir)).toHaveLength(8);
      expect(JSON.parse(readFileSync(state.topologyFile, 'utf8'))).toMatchObject({ extends: '2012-sharded', shards: { logical: 256, physical: 4 }, cache: { nodes: 4 } });
      // Up twice is refused, the first left as it was.
      const again = cli(60_000, 'stack', 'up', '--dir', dir);
      expect(again.status, again.stderr).toBe(2);
      expect(again.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
      expect(again.stderr).toContain(`a stack is already up in ${dir}`);

      let status = JSON.parse(cli(60_000, 'stack', 'status', '--dir', dir, '--json').stdout) as Status;
      expect(status.parts.map((p) => `${p.part}:${p.up}`)).toEqual([
        'redis:true',
        'rabbitmq:true',
        ...Array(4).fill('memcached:true'),
        ...Array(4).fill(['postgres primary:true', 'postgres replica:true']).flat(),
      ]);
      expect(status.parts.filter((p) => p.part === 'postgres replica').every((p) => p.detail.startsWith('streaming; replayed'))).toBe(true);

      // A server on the stack kills and revives a memcached daemon through the admin API.
      const serve = spawn(process.execPath, ['bin/scalegram.mjs', 'serve', '--stack', dir, '--port', '0', '--admin-token', 'stack-test-admin-token-0123'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        let out = '';
        const url = await new Promise<string>((resolve, reject) => {
          serve.stdout!.on('data', (d: Buffer) => {
            out += d.toString();
            const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
            if (m && out.includes('admin token')) resolve(m[1]!);
          });
          serve.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
        });
        expect(out).toContain('topology stack-small');
        const pid1 = Number(readFileSync(state.memcached[1]!.pidFile, 'utf8'));
        const admin = { authorization: 'Bearer stack-test-admin-token-0123' };
        expect((await fetch(`${url}/_sim/cache/cache-1/kill`, { method: 'POST', headers: admin })).status).toBe(200);
        expect(alive(pid1)).toBe(false);
        status = JSON.parse(cli(60_000, 'stack', 'status', '--dir', dir, '--json').stdout) as Status;
        expect(status.parts.find((p) => p.name === 'cache-1')!.up).toBe(false);
        expect((await fetch(`${url}/_sim/cache/cache-1/revive`, { method: 'POST', headers: admin })).status).toBe(200);
        const pid2 = Number(readFileSync(state.memcached[1]!.pidFile, 'utf8'));
        expect(pid2).not.toBe(pid1);
        expect(alive(pid2)).toBe(true);
      } finally {
        serve.kill('SIGTERM');
        await new Promise((r) => serve.once('exit', r));
      }
      // The server's stop leaves the stack's daemons running: they are the stack's.
      for (const m of state.memcached) expect(alive(Number(readFileSync(m.pidFile, 'utf8')))).toBe(true);

      const out = join(dir, 'run');
      const run = cli(170_000, 'run', 'scenarios/android-launch.ts', '--stack', 'real', '--stack-dir', dir, '--quiet', '--seed', '5', '--speed', '14400', '--scale', '0.002', '-e', 'BASE_ACCOUNTS=200', '--out', out);
      expect([0, 99], run.stderr).toContain(run.status);
      expect(run.stderr).toContain(`stack real: the stack in ${dir}, topology ${state.topologyFile}`);
      const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as {
        topology: { name: string; databases: Array<{ backend?: string }>; cache: { backend: string; nodes: Array<{ hits: number; memcached: { address: string } }> } };
        telemetry: { caches: { lookups: number; dead: number; hitRatio: number } };
      };
      expect(result.topology.name).toBe('stack-small');
      // The store ran on the stack's Postgres servers.
      expect(run.stderr).toContain('the store on 4 Postgres server(s)');
      expect(result.topology.databases[0]!.backend).toBe('postgres');
      expect(result.topology.cache.backend).toBe('memcached');
      expect(result.topology.cache.nodes.map((n) => n.memcached.address)).toEqual(state.memcached.map((m) => m.address));
      expect(result.topology.cache.nodes.reduce((a, n) => a + n.hits, 0)).toBeGreaterThan(0);
      // No node was down during the run, so the cache served: a client that timed out healthy nodes
      // under load showed 99% of lookups dead here. Bounds a busy machine cannot break: a lookup can
      // still miss its 1 s deadline when the machine is overloaded, and the hit ratio depends on how
      // much the run served (12% in one run here, 1.7% in another beside a foreign load), so it is
      // not asserted beyond the hits above.
      expect(result.telemetry.caches.lookups).toBeGreaterThan(100);
      expect(result.telemetry.caches.dead).toBeLessThan(0.2 * result.telemetry.caches.lookups);

      // Killed from outside: status names it and exits 1.
      process.kill(Number(readFileSync(state.memcached[3]!.pidFile, 'utf8')), 'SIGKILL');
      const seen = cli(60_000, 'stack', 'status', '--dir', dir);
      expect(seen.status).toBe(1);
      expect(seen.stdout).toMatch(/DOWN {2}memcached +cache-3 /);

      const down = cli(120_000, 'stack', 'down', '--dir', dir);
      expect(down.status, down.stderr).toBe(0);
      expect(down.stdout).toContain('stack down: 3 memcached process(es) killed, 8 Postgres cluster(s) dropped');
      expect(clustersOf(dir)).toEqual([]);
      for (const m of state.memcached) expect(existsSync(m.pidFile)).toBe(false);
      expect(existsSync(join(dir, 'stack.json'))).toBe(false);
    } finally {
      cli(120_000, 'stack', 'down', '--dir', dir);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);

  it('down after up was killed half-way removes what up had started', async () => {
    if (missing) throw new Error(`CI=true requires what scalegram stack needs: ${missing}`);
    const dir = mkdtempSync(join(tmpdir(), 'scalegram-stack-crash-'));
    try {
      const up = spawn(process.execPath, ['bin/scalegram.mjs', 'stack', 'up', '--dir', dir], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      await new Promise<void>((resolve, reject) => {
        up.stderr!.on('data', (d: Buffer) => {
          err += d.toString();
          if (err.includes('Postgres 1/4')) resolve();
        });
        up.once('exit', (code) => reject(new Error(`stack up exited ${code} before its first Postgres pair: ${err}`)));
      });
      up.kill('SIGKILL');
      await new Promise((r) => up.once('exit', r));
      const state = JSON.parse(readFileSync(join(dir, 'stack.json'), 'utf8')) as StackState;
      const pids = state.memcached.map((m) => Number(readFileSync(m.pidFile, 'utf8')));
      expect(pids.every(alive)).toBe(true);
      expect(clustersOf(dir).length).toBeGreaterThanOrEqual(2);
      const down = cli(120_000, 'stack', 'down', '--dir', dir);
      expect(down.status, down.stderr).toBe(0);
      expect(clustersOf(dir)).toEqual([]);
      expect(pids.some(alive)).toBe(false);
    } finally {
      cli(120_000, 'stack', 'down', '--dir', dir);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
