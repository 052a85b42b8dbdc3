// `scalegram worker`, `scalegram serve --amqp-url … --remote-jobs fanout-chunk` and `scalegram run
// --stack real` as a user starts them: refusals with exit 2 before anything runs, exit 69 when
// RabbitMQ does not answer, a server and a worker process sharing RabbitMQ and Redis (the worker
// delivering a celebrity's post), and a growth event replayed with its jobs on RabbitMQ.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { amqpUrl, realBackendsDown, redisUrl, removeNamespace } from './helpers/real-backends.ts';
import { probeMemcached } from '../sim/backends/probe.ts';
import { parseCalibration } from '../sim/calibration.ts';

const mustRun = process.env.CI === 'true';
// Neither variable may leak into the commands that must find none.
// No stack either (scalegram stack up): a run with --stack real would use it.
const bareEnv = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'AMQP_URL' && k !== 'REDIS_URL' && k !== 'MEMCACHED_SERVERS')), SCALEGRAM_STACK_DIR: '/nonexistent/scalegram-stack' };

function cli(...args: string[]) {
  return spawnSync(process.execPath, ['bin/scalegram.mjs', ...args], { encoding: 'utf8', timeout: 60_000, env: bareEnv });
}

function cliWith(env: Record<string, string>, timeout: number, ...args: string[]) {
  return spawnSync(process.execPath, ['bin/scalegram.mjs', ...args], { encoding: 'utf8', timeout, env: { ...bareEnv, ...env } });
}

const down = await realBackendsDown();
if (down !== null && !mustRun) console.warn(`${down}; skipping the server-and-worker test`);

describe('scalegram worker and serve --remote-jobs: refusals', () => {
  it.each([
    [['worker'], /--namespace is required/],
    [['worker', '--namespace', 'a b'], /--namespace "a b" must be/],
    [['worker', '--namespace', 'n'], /RabbitMQ is required: --amqp-url URL or \$AMQP_URL/],
    [['worker', '--namespace', 'n', '--amqp-url', amqpUrl], /a real Redis is required/],
    [['worker', '--namespace', 'n', '--amqp-url', amqpUrl, '--redis-url', redisUrl, '--concurrency', '0'], /--concurrency/],
    [['run', 'scenarios/ci-gate.ts', '--stack', 'cloud'], /--stack cloud: embedded or real/],
    [['run', 'scenarios/ci-gate.ts', '--stack', 'real', '--target', 'http://127.0.0.1:1'], /--stack real and --target exclude each other/],
    [['serve', '--remote-jobs', 'fanout-chunk'], /--remote-jobs needs RabbitMQ as the job queue/],
    [['serve', '--memcached', 'nowhere'], /--memcached: memcached address "nowhere" is not host:port \(give "local" or a comma-separated list of host:port\)/],
    [['serve', '--amqp-url', amqpUrl, '--remote-jobs', 'fanout-chunk'], /--remote-jobs needs --namespace NAME/],
    [['serve', '--amqp-url', amqpUrl, '--namespace', 'n', '--remote-jobs', 'fanout-chunk'], /--remote-jobs needs a real Redis/],
    [['serve', '--amqp-url', amqpUrl, '--redis-url', redisUrl, '--namespace', 'n', '--remote-jobs', 'fanout-chunk,resize'], /resize cannot run in a worker process/],
  ])('scalegram %j: exit 2 with a message', (args, message) => {
    const r = cli(...args);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  }, 60_000);

  it('run --stack real with a broker that does not answer: exit 69 before the run, naming it', () => {
    const r = cliWith({ AMQP_URL: 'amqp://guest:hunter2@127.0.0.1:1', REDIS_URL: redisUrl }, 60_000, 'run', 'scenarios/ci-gate.ts', '--stack', 'real', '--quiet');
    if (down?.startsWith('Redis') && !mustRun) return;
    expect(r.status, r.stderr).toBe(69);
    expect(r.stderr).toMatch(/--stack real: RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1 did not answer/);
    expect(r.stderr).not.toContain('hunter2');
  }, 60_000);

  it('run --stack real with a memcached that does not answer: exit 69 before the run, naming it', () => {
    const r = cliWith({ AMQP_URL: amqpUrl, REDIS_URL: redisUrl, MEMCACHED_SERVERS: '127.0.0.1:1' }, 60_000, 'run', 'scenarios/ci-gate.ts', '--stack', 'real', '--quiet');
    if (down !== null && !mustRun) return;
    expect(r.status, r.stderr).toBe(69);
    expect(r.stderr).toMatch(/--stack real: memcached at 127\.0\.0\.1:1 did not answer/);
  }, 60_000);

  it('a worker whose Redis does not answer: exit 69 within seconds, the password not shown', () => {
    const r = cli('worker', '--namespace', 'n', '--amqp-url', amqpUrl, '--redis-url', 'redis://:hunter2@127.0.0.1:1');
    expect(r.status, r.stderr).toBe(69);
    expect(r.stderr.trim()).toMatch(/^scalegram worker: Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 did not answer: .*\[SG_ERR_BACKEND_UNREACHABLE\]$/);
  }, 60_000);

  it('serve with a broker that does not answer: exit 69 at once, not a process kept alive by its other connections', () => {
    const r = cliWith({}, 60_000, 'serve', '--port', '0', '--amqp-url', 'amqp://guest:hunter2@127.0.0.1:1', '--redis-url', redisUrl);
    expect(r.status, r.stderr).toBe(69);
    expect(r.stderr.trim()).toMatch(/^scalegram serve: RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1 did not answer: .*\[SG_ERR_BACKEND_UNREACHABLE\]$/);
  }, 60_000);

  it('a broker that does not answer: exit 69, the URL without its password, the code', () => {
    const r = cli('worker', '--namespace', 'n', '--amqp-url', 'amqp://guest:hunter2@127.0.0.1:1', '--redis-url', redisUrl);
    if (down?.startsWith('Redis') && !mustRun) return; // it checks Redis first
    expect(r.status, r.stderr).toBe(69);
    expect(r.stderr).toMatch(/RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1 did not answer/);
    expect(r.stderr).toContain('[SG_ERR_BACKEND_UNREACHABLE]');
    expect(r.stderr).not.toContain('hunter2');
  }, 60_000);
});

describe.skipIf(down !== null && !mustRun)('a server and a worker process sharing RabbitMQ and Redis', () => {
  const ns = `sgcli-${process.pid}-${randomUUID().slice(0, 8)}`;
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (down !== null) return;
    await removeNamespace(ns);
  });

  const start = (args: string[], ready: RegExp) => {
    const child = spawn(process.execPath, ['bin/scalegram.mjs', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: bareEnv });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const isReady = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready in 60 s: ${out}`)), 60_000);
      child.stdout!.on('data', () => {
        if (ready.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    return { child, output: () => out, isReady };
  };

  it("the worker delivers a celebrity's post to every follower; the server answers for the fan-out", async () => {
    if (down !== null) throw new Error(`CI=true requires RabbitMQ and Redis: ${down}`);
    const token = randomUUID().replace(/-/g, '') + 'Aa1';
    const serve = start(['serve', '--port', '0', '--seed', '4', '--admin-token', token, '--amqp-url', amqpUrl, '--redis-url', redisUrl, '--namespace', ns, '--remote-jobs', 'fanout-chunk'], /\n {2}storage /);
    await serve.isReady;
    expect(serve.output()).toMatch(/queue {6}RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672\/?, queues scalegram\.sgcli-[\w-]+\.<kind>/);
    expect(serve.output()).toContain(`left to workers: fanout-chunk; start them with: scalegram worker --namespace ${ns}`);
    const base = `http://127.0.0.1:${/listening on http:\/\/[^ ]+:(\d+) /.exec(serve.output())![1]}`;
    const admin = (path: string, body?: unknown) =>
      fetch(base + path, { method: body === undefined ? 'GET' : 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const topology = (await (await admin('/_sim/topology')).json()) as { queue: { backend: string; remote: string[] } };
    expect(topology.queue).toMatchObject({ backend: 'rabbitmq', remote: ['fanout-chunk'] });
    expect((await admin('/_sim/seed', { users: 3000, avgFollows: 3, celebrityReach: 0.5, sample: 0 })).status).toBe(200);

    const worker = start(['worker', '--namespace', ns, '--amqp-url', amqpUrl, '--redis-url', redisUrl, '--progress-every-ms', '100'], /taking fanout-chunk jobs/);
    await worker.isReady;
    const posted = (await (await admin('/_sim/celebrity/post', {})).json()) as { followers: number; fanout: string };
    expect(posted.fanout).toBe('push');
    expect(posted.followers).toBeGreaterThan(1000);
    // The server hears of each chunk from the worker; the fan-out is over when all have come back.
    let completed = 0;
    for (let i = 0; i < 300 && completed < 1; i++) {
      const metrics = await (await fetch(`${base}/metrics`)).text();
      completed = Number(/^scalegram_fanout_completed_total (\d+)/m.exec(metrics)?.[1] ?? 0);
      if (completed < 1) await new Promise((r) => setTimeout(r, 100));
    }
    expect(completed).toBe(1);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(Number(/^scalegram_fanout_deliveries_total (\d+)/m.exec(metrics)?.[1])).toBe(posted.followers);

    worker.child.kill('SIGTERM');
    expect(await new Promise((r) => worker.child.once('exit', r))).toBe(0);
    const last = worker.output().trim().split('\n').at(-1)!;
    expect(last).toMatch(new RegExp(`^worker: \\d+ jobs \\(0 failed, 0 handed out again\\), ${posted.followers.toLocaleString('en-US')} deliveries, 0 skipped`));
    serve.child.kill('SIGTERM');
    expect(await new Promise((r) => serve.child.once('exit', r))).toBe(0);
  }, 180_000);
});

describe.skipIf(down !== null && !mustRun)('scalegram run --stack real', () => {
  it("replays android-launch with the feed lists on Redis, the jobs on RabbitMQ and the cache on memcached processes of its own, and says so in the result", async () => {
    if (down !== null) throw new Error(`CI=true requires RabbitMQ and Redis: ${down}`);
    const noMemcached = await probeMemcached('local');
    if (noMemcached !== null) throw new Error(`run --stack real needs memcached: ${noMemcached}`);
    const out = mkdtempSync(join(tmpdir(), 'scalegram-stack-'));
    try {
      // No stack (bareEnv): the run starts memcached processes of its own.
      const r = cliWith({ AMQP_URL: amqpUrl, REDIS_URL: redisUrl }, 170_000, 'run', 'scenarios/android-launch.ts', '--stack', 'real', '--quiet', '--seed', '3', '--speed', '14400', '--scale', '0.002', '-e', 'BASE_ACCOUNTS=200', '--out', out);
      expect([0, 99], r.stderr).toContain(r.status);
      expect(r.stderr).toContain('stack real: feed lists on Redis at redis://127.0.0.1:6379');
      expect(r.stderr).toContain('the cache on memcached processes the run starts (one per cache node)');
      const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as {
        harness: { stack?: string };
        topology: { feed: { backend: string }; queue: { backend: string }; cache: { backend: string; nodes: Array<{ hits: number; memcached?: { address: string } }> } };
        telemetry: { fanout: { completed: number; deliveries: number } };
      };
      expect(result.harness.stack).toBe('real');
      expect(result.topology.feed.backend).toBe('redis');
      expect(result.topology.queue.backend).toBe('rabbitmq');
      expect(result.topology.cache.backend).toBe('memcached');
      expect(result.topology.cache.nodes.every((n) => /^127\.0\.0\.1:\d+$/.test(n.memcached?.address ?? ''))).toBe(true);
      expect(result.topology.cache.nodes.reduce((a, n) => a + n.hits, 0)).toBeGreaterThan(0);
      expect(result.telemetry.fanout.completed).toBeGreaterThan(0);
      expect(result.telemetry.fanout.deliveries).toBeGreaterThan(0);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 180_000);
});

describe.skipIf(down !== null && !mustRun)('scalegram calibrate --stack real', () => {
  it('measures the parts and every route on memcached processes, Redis and RabbitMQ, and says so in the profile', async () => {
    if (down !== null) throw new Error(`CI=true requires RabbitMQ and Redis: ${down}`);
    const noMemcached = await probeMemcached('local');
    if (noMemcached !== null) throw new Error(`calibrate --stack real needs memcached: ${noMemcached}`);
    const dir = mkdtempSync(join(tmpdir(), 'scalegram-cal-real-'));
    try {
      const file = join(dir, 'profile.json');
      const r = cliWith({ AMQP_URL: amqpUrl, REDIS_URL: redisUrl }, 170_000, 'calibrate', '--stack', 'real', '--iterations', '6', '--part-samples', '20', '--idle-seconds', '1', '--out', file);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain('the cache on memcached processes the run starts (one per cache node)');
      expect(r.stdout).toContain('on the real parts (memcached, Redis, RabbitMQ; databases embedded)');
      const p = parseCalibration(readFileSync(file, 'utf8'));
      expect(p.stack).toBe('real');
      expect(Object.keys(p.routes).sort()).toEqual(['comment', 'feed', 'follow', 'like', 'media', 'signup', 'upload', 'user_media']);
      expect(p.parts['cache.get']!.samples).toBe(20);
      expect(p.parts['cache.getMany20']!.p50Us).toBeGreaterThan(0);
      const bad = cliWith({ AMQP_URL: amqpUrl, REDIS_URL: redisUrl, MEMCACHED_SERVERS: '127.0.0.1:1' }, 60_000, 'calibrate', '--stack', 'real', '--out', file);
      expect(bad.status, bad.stderr).toBe(69);
      expect(bad.stderr).toMatch(/--stack real: memcached at 127\.0\.0\.1:1 did not answer/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
