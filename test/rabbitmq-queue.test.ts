// The job queue on a real RabbitMQ (AMQP_URL, default amqp://guest:guest@127.0.0.1:5672): payloads
// that travel, replies wherever the job ran, failures, budgets, the photo service's jobs on it, and
// a `scalegram worker` killed with SIGKILL in the middle of a fan-out to 100,000 followers losing
// nothing and duplicating nothing. Skipped with a warning when RabbitMQ or Redis is down, except
// under CI=true, where that fails.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { AmqpJobQueue, decodeJob, encodeJob } from '../sim/backends/amqp-queue.ts';
import { RealClock } from '../sim/engine/clock.ts';
import { isSimError, simError } from '../sim/engine/errors.ts';
import { Metrics } from '../sim/observability/metrics.ts';
import { loadTopology } from '../sim/topology-config.ts';
import { buildTopology, type Topology } from '../sim/topology.ts';
import { seedFollows, seedUsers } from '../sim/workload/bulk-loader.ts';
import { amqpUrl, realBackendsDown, redisUrl, removeNamespace } from './helpers/real-backends.ts';

const mustRun = process.env.CI === 'true';
const bin = fileURLToPath(new URL('../bin/scalegram.mjs', import.meta.url));

const unreachable = await realBackendsDown();
if (unreachable !== null && !mustRun) console.warn(`${unreachable}; skipping the RabbitMQ tests`);

const queueConfig = { workers: 4, maxDepth: 1000 };
const deps = () => ({ clock: new RealClock(), metrics: new Metrics(new RealClock()) });
const prefix = () => `sgtest.${process.pid}.${randomUUID().slice(0, 8)}`;

describe.skipIf(unreachable !== null && !mustRun)('the job queue on RabbitMQ', () => {
  const opened: AmqpJobQueue[] = [];
  beforeAll(() => {
    if (unreachable !== null) throw new Error(`CI=true requires RabbitMQ and Redis: ${unreachable}`);
  });
  afterAll(async () => {
    for (const q of opened) await q.close();
  });
  const open = async (p: string, opts: { consume?: string[]; remote?: string[]; maxDepth?: number } = {}) => {
    const q = await AmqpJobQueue.connect({ ...queueConfig, ...(opts.maxDepth ? { maxDepth: opts.maxDepth } : {}) }, { url: amqpUrl, prefix: p, deleteOnClose: true, sampleEveryMs: 0, ...opts }, deps());
    opened.push(q);
    return q;
  };

  it('carries Buffers, typed arrays and bigints, and refuses what only works by reference', () => {
    const value = { b: Buffer.from([0, 1, 255]), t: new Int32Array([-1, 2 ** 30]), f: new Float64Array([0.5]), n: 2n ** 63n - 1n, s: 'x', a: [1, { k: null }] };
    expect(decodeJob(encodeJob(value))).toEqual(value);
    expect(() => encodeJob({ f: () => 1 })).toThrow(/function at "f"/);
    expect(() => encodeJob({ m: new Map() })).toThrow(/class Map/);
  });

  it('runs a job and settles the submitter with what the handler returned, from another connection', async () => {
    const p = prefix();
    const submitter = await open(p, { remote: ['echo'] });
    const worker = await open(p, { consume: ['echo'] });
    const seen: boolean[] = [];
    const handler = async (payload: { x: bigint; buf: Buffer }, job: { redelivered: boolean }) => {
      seen.push(job.redelivered);
      return { twice: (payload.x * 2n).toString(), bytes: payload.buf.length };
    };
    submitter.register('echo', handler);
    worker.register('echo', handler);
    await submitter.start();
    await worker.start();
    const results = await Promise.all([1n, 2n, 3n].map((x) => submitter.submit('echo', { x, buf: Buffer.alloc(Number(x)) })));
    expect(results).toEqual([{ twice: '2', bytes: 1 }, { twice: '4', bytes: 2 }, { twice: '6', bytes: 3 }]);
    expect(seen).toEqual([false, false, false]);
    await submitter.idle();
    expect(submitter.outstanding()).toBe(0);
  });

  it("rejects with the handler's error code, counts it, and does not run it again", async () => {
    const q = await open(prefix());
    let runs = 0;
    q.register('fail', async () => {
      runs++;
      throw simError('SG_ERR_NOT_FOUND', 'no such media');
    });
    await q.start();
    const err = await q.submit('fail', {}).catch((e: unknown) => e);
    expect(isSimError(err, 'SG_ERR_NOT_FOUND')).toBe(true);
    expect((err as Error).message).toBe('no such media');
    await q.idle();
    expect(runs).toBe(1);
  });

  it('refuses a payload that cannot travel through the promise, and a job past its budget at once', async () => {
    const q = await open(prefix(), { maxDepth: 2 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    q.register('slow', () => gate);
    await q.start();
    await expect(q.submit('slow', { f: () => 1 })).rejects.toThrow(/cannot be sent/);
    const a = q.submit('slow', {});
    const b = q.submit('slow', {});
    let full: unknown;
    try {
      void q.submit('slow', {});
    } catch (e) {
      full = e;
    }
    expect(isSimError(full, 'SG_ERR_QUEUE_FULL')).toBe(true);
    expect(() => q.submit('nobody', {})).toThrow(/no handler/);
    release();
    await Promise.all([a, b]);
  });

  it('hands the jobs of a consumer that vanished without acking to another, flagged as redelivered', async () => {
    const p = prefix();
    const submitter = await open(p, { remote: ['work'] });
    submitter.register('work', async () => 'never here');
    await submitter.start();
    // A consumer on a raw connection takes one job and dies (its connection drops) without acking.
    const raw = await amqp.connect(amqpUrl);
    const ch = await raw.createChannel();
    await ch.assertQueue(`${p}.work`, { durable: true });
    await ch.prefetch(1);
    const taken = new Promise<void>((resolve) => void ch.consume(`${p}.work`, (m) => m && resolve()));
    const done = submitter.submit('work', { n: 1 });
    await taken;
    await raw.close();
    const second = await open(p, { consume: ['work'] });
    const flags: boolean[] = [];
    second.register('work', async (_p: unknown, job: { redelivered: boolean }) => {
      flags.push(job.redelivered);
      return 'ran again';
    });
    await second.start();
    await expect(done).resolves.toBe('ran again');
    expect(flags).toEqual([true]);
  });

  it('sends a job whose backend did not answer back to the broker, not to the submitter as failed', async () => {
    const q = await open(prefix());
    const seen: boolean[] = [];
    q.register('flaky', async (_p: unknown, job: { redelivered: boolean }) => {
      seen.push(job.redelivered);
      if (seen.length === 1) throw simError('SG_ERR_BACKEND_UNREACHABLE', 'Redis did not answer');
      return 'done';
    });
    await q.start();
    await expect(q.submit('flaky', {})).resolves.toBe('done');
    expect(seen).toEqual([false, true]);
  });

  it('deletes its queues on close when told to (a run whose data lives only as long as it does)', async () => {
    const p = prefix();
    const q = await AmqpJobQueue.connect(queueConfig, { url: amqpUrl, prefix: p, deleteOnClose: true, sampleEveryMs: 0 }, deps());
    q.register('k', async () => 1);
    await q.start();
    await q.submit('k', {});
    await q.close();
    const c = await amqp.connect(amqpUrl);
    const ch = await c.createChannel();
    ch.on('error', () => {}); // checking a queue that is gone closes the channel, which is the answer
    const gone = await ch.checkQueue(`${p}.k`).then(() => false, () => true);
    await c.close().catch(() => undefined);
    expect(gone).toBe(true);
  });

  it('says which broker did not answer, with a code', async () => {
    const err = await AmqpJobQueue.connect(queueConfig, { url: 'amqp://guest:secret@127.0.0.1:1', prefix: 'x' }, deps()).catch((e: unknown) => e);
    expect(isSimError(err, 'SG_ERR_BACKEND_UNREACHABLE')).toBe(true);
    expect((err as Error).message).toContain('amqp://guest:***@127.0.0.1:1');
  });

  it("runs the photo service's jobs: a post's resize, fan-out and geo index, through RabbitMQ", async () => {
    const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 2 } });
    const t = await buildTopology({ config, seed: 3, sampleEveryMs: 0, amqpUrl });
    try {
      expect((t.describe() as { queue: { backend: string } }).queue.backend).toBe('rabbitmq');
      const a = await t.store.createUser({ username: 'ann', password: 'secret1', fullName: 'A', isPrivate: false });
      const b = await t.store.createUser({ username: 'ben', password: 'secret1', fullName: 'B', isPrivate: false });
      await t.store.setRelationship(b.user.id, a.user.id, 'follow');
      const photo = await sharp({ create: { width: 700, height: 500, channels: 3, background: '#468' } }).jpeg().toBuffer();
      const m = await t.store.createMedia({ userId: a.user.id, caption: 'over #rabbits', filter: 'Normal', lat: 48.85, lng: 2.35, locationName: 'Paris', image: photo });
      await t.idle();
      expect((await t.store.getFeed(b.user.id, { count: 5 })).items.map((x) => x.id)).toEqual([m.id]);
      expect((await t.store.searchMedia({ lat: 48.85, lng: 2.35, distanceM: 1000, count: 5 })).map((x) => x.id)).toEqual([m.id]);
      for (const kind of ['resize', 'fanout', 'fanout-chunk', 'geo-index']) expect(t.metrics.value('queue_jobs', { kind, result: 'ok' }), kind).toBeGreaterThanOrEqual(1);
      expect(t.metrics.value('fanout_deliveries')).toBe(1);
      expect(t.metrics.value('fanout_completed')).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('a stop while a fan-out waits for workers leaves it open in the journal: the next start delivers it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scalegram-amqp-stop-'));
    const ns = `sgtest-stop-${process.pid}-${randomUUID().slice(0, 8)}`;
    const config = loadTopology('2012-sharded', { shards: { logical: 16, physical: 2 } });
    const base = { config, seed: 3, sampleEveryMs: 0, aofCheckEveryMs: 0, amqpUrl, redisUrl, dataDir: join(dir, 'data'), namespace: ns, queueCloseGraceMs: 200 };
    const redis = new Redis(redisUrl);
    try {
      const t1 = await buildTopology({ ...base, remoteJobs: ['fanout-chunk'] });
      const a = await t1.store.createUser({ username: 'ann', password: 'secret1', fullName: 'A', isPrivate: false });
      const b = await t1.store.createUser({ username: 'ben', password: 'secret1', fullName: 'B', isPrivate: false });
      await t1.store.setRelationship(b.user.id, a.user.id, 'follow');
      const photo = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#468' } }).jpeg().toBuffer();
      const m = await t1.store.createMedia({ userId: a.user.id, caption: null, filter: 'Normal', lat: null, lng: null, locationName: null, image: photo });
      await t1.close(); // no worker ran: the chunk is still queued, and its fan-out not over
      expect(t1.metrics.value('fanout_completed')).toBe(0);
      expect(t1.metrics.value('fanout_failures')).toBe(0);
      // The next start, working its chunks itself: the journal's entry runs again.
      const t2 = await buildTopology(base);
      try {
        await t2.idle();
        expect(t2.metrics.value('queue_purged_at_start')).toBe(1);
        expect(await redis.lrange(`scalegram:${ns}:feed:${b.user.id}`, 0, -1)).toEqual([m.id]);
      } finally {
        await t2.close();
      }
    } finally {
      redis.disconnect();
      await removeNamespace(ns);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with a data dir, jobs an earlier run left in the broker are dropped at start: the job journal runs what it promised', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scalegram-amqp-'));
    const ns = `sgtest-dd-${process.pid}-${randomUUID().slice(0, 8)}`;
    const c = await amqp.connect(amqpUrl);
    const ch = await c.createChannel();
    try {
      await ch.assertQueue(`scalegram.${ns}.fanout-chunk`, { durable: true });
      ch.sendToQueue(`scalegram.${ns}.fanout-chunk`, encodeJob({ mediaId: '999', userIds: ['1', '2'], replay: false }), { persistent: true });
      await ch.checkQueue(`scalegram.${ns}.fanout-chunk`); // a round trip: the message is in
      const config = loadTopology('2012-sharded', { shards: { logical: 16, physical: 2 } });
      const t = await buildTopology({ config, seed: 3, sampleEveryMs: 0, aofCheckEveryMs: 0, amqpUrl, dataDir: join(dir, 'data'), namespace: ns });
      try {
        expect(t.metrics.value('queue_purged_at_start')).toBe(1);
        await t.idle();
        expect(t.metrics.value('queue_jobs', { kind: 'fanout-chunk', result: 'ok' })).toBe(0);
        expect(await t.feeds.length('1')).toBe(0);
      } finally {
        await t.close();
      }
    } finally {
      await c.close().catch(() => undefined);
      await removeNamespace(ns);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a worker killed with SIGKILL mid-fan-out to 100,000 followers: every list gets the post exactly once', async () => {
    const ns = `sgtest-${process.pid}-${randomUUID().slice(0, 8)}`;
    const followers = 100_000;
    const config = loadTopology('2012-sharded', { feed: { chunkSize: 5000 } });
    const t: Topology = await buildTopology({ config, seed: 5, sampleEveryMs: 0, amqpUrl, redisUrl, namespace: ns, remoteJobs: ['fanout-chunk'] });
    const redis = new Redis(redisUrl);
    const workers: ChildProcess[] = [];
    const startWorker = (concurrency: number) => {
      const child = spawn(process.execPath, [bin, 'worker', '--namespace', ns, '--amqp-url', amqpUrl, '--redis-url', redisUrl, '--concurrency', String(concurrency), '--progress-every-ms', '50'], { stdio: ['ignore', 'pipe', 'pipe'] });
      workers.push(child);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      return { child, output: () => out };
    };
    try {
      const [star] = await seedUsers(t, [{ username: 'star', fullName: 'Star' }]);
      const fans: string[] = [];
      for (let i = 0; i < followers; i += 50_000) {
        const batch = await seedUsers(t, Array.from({ length: 50_000 }, (_, j) => ({ username: `fan${i + j}`, fullName: `Fan ${i + j}` })));
        await seedFollows(t, batch.map((f) => [f.id, star!.id] as const));
        for (const f of batch) fans.push(f.id);
      }
      const photo = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#a37' } }).jpeg().toBuffer();
      const media = await t.store.createMedia({ userId: star!.id, caption: 'to everyone', filter: 'Normal', lat: null, lng: null, locationName: null, image: photo });
      // Every chunk waits in the broker: the server plans, only workers deliver.
      const chunks = followers / 5000;
      const conn = await amqp.connect(amqpUrl);
      const ch = await conn.createChannel();
      await ch.assertQueue(`scalegram.${ns}.fanout-chunk`, { durable: true }); // as the queue declares it, so it can be watched before it is used
      for (let i = 0; i < 600; i++) {
        if ((await ch.checkQueue(`scalegram.${ns}.fanout-chunk`)).messageCount >= chunks) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect((await ch.checkQueue(`scalegram.${ns}.fanout-chunk`)).messageCount).toBe(chunks);

      const first = startWorker(4);
      // SIGKILL once it has done some jobs: it holds up to 4 more, unacked.
      for (let i = 0; i < 1200 && !/worker: [1-9][\d,]* jobs/.test(first.output()); i++) await new Promise((r) => setTimeout(r, 25));
      first.child.kill('SIGKILL');
      await new Promise((r) => first.child.once('exit', r));
      const printed = [...first.output().matchAll(/worker: ([\d,]+) jobs/g)].at(-1);
      const doneByFirst = Number(printed?.[1]?.replace(/,/g, '') ?? 'NaN');
      expect(doneByFirst).toBeGreaterThan(0);
      expect(doneByFirst).toBeLessThan(chunks);

      const second = startWorker(4);
      await t.idle(); // every chunk's reply has come back to the server
      second.child.kill('SIGTERM');
      const code = await new Promise((r) => second.child.once('exit', r));
      expect(code, second.output()).toBe(0);
      const last = /worker: ([\d,]+) jobs \((\d+) failed, (\d+) handed out again\), ([\d,]+) deliveries, (\d+) skipped/.exec(second.output().trim().split('\n').at(-1)!);
      expect(last, second.output()).not.toBeNull();
      const [, jobs, failed, again] = last!.map((x) => Number(x?.replace(/,/g, '')));
      expect(failed).toBe(0);
      // The at-least-once bound: only what the killed worker held (its prefetch) runs twice.
      expect(again).toBeGreaterThanOrEqual(1);
      expect(again).toBeLessThanOrEqual(4);
      // The first worker's last printed count may lag what it did; it cannot exceed it.
      expect(jobs! + doneByFirst).toBeLessThanOrEqual(chunks + 4);

      // The truth is in Redis: each follower's list holds the post exactly once.
      const counts = new Map<number, number>();
      for (let i = 0; i < fans.length; i += 5000) {
        const pipe = redis.pipeline();
        for (const f of fans.slice(i, i + 5000)) pipe.lpos(`scalegram:${ns}:feed:${f}`, media.id, 'COUNT', 0);
        for (const [err, pos] of (await pipe.exec())!) {
          expect(err).toBeNull();
          const n = (pos as number[]).length;
          counts.set(n, (counts.get(n) ?? 0) + 1);
        }
      }
      expect(Object.fromEntries(counts)).toEqual({ 1: followers });
      expect(t.metrics.value('fanout_completed')).toBe(1);
      await conn.close();
    } finally {
      for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
      await t.close();
      redis.disconnect();
      await removeNamespace(ns);
    }
  }, 240_000);
});
