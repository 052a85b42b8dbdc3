// The Gearman stand-in: a bounded FIFO drained by a fixed worker pool. These tests pin the limits a
// fan-out scenario depends on: concurrency, order, the depth budget, wait times and failure handling.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobQueue, type JobInfo } from '../sim/parts/job-queue.ts';
import { RealClock, VirtualClock, type Clock } from '../sim/engine/clock.ts';
import { Metrics } from '../sim/observability/metrics.ts';
import { isSimError, type SimError } from '../sim/engine/errors.ts';

function makeQueue(workers: number, maxDepth = 1_000_000, clock: Clock = new RealClock()) {
  const metrics = new Metrics(clock);
  const queue = new JobQueue({ workers, maxDepth }, { clock, metrics });
  return { queue, metrics, clock };
}

/** A promise a test opens by hand, to hold handlers mid-job. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

function caught(fn: () => unknown): SimError {
  try {
    fn();
  } catch (err) {
    if (isSimError(err)) return err;
    throw err;
  }
  throw new Error('expected a SimError');
}

describe('JobQueue', () => {
  it('never runs more handlers at once than it has workers', async () => {
    const { queue } = makeQueue(3);
    let now = 0;
    let peak = 0;
    let peakReported = 0;
    let done = 0;
    queue.register('resize', async (ms: number) => {
      now++;
      peak = Math.max(peak, now);
      peakReported = Math.max(peakReported, queue.running());
      await new Promise((r) => setTimeout(r, ms));
      now--;
      done++;
    });
    for (let i = 0; i < 20; i++) void queue.submit('resize', 1 + (i % 4));
    expect(queue.running()).toBe(3);
    expect(queue.depth()).toBe(17);
    await queue.idle();
    expect(done).toBe(20);
    expect(peak).toBe(3);
    expect(peakReported).toBe(3);
  });

  it('starts jobs in the order they were submitted', async () => {
    const { queue } = makeQueue(2);
    const started: number[] = [];
    queue.register('notify', async (n: number) => {
      started.push(n);
      await turn();
    });
    for (let i = 0; i < 50; i++) void queue.submit('notify', i);
    await queue.idle();
    expect(started).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('refuses a job with SG_ERR_QUEUE_FULL once maxDepth jobs are waiting', async () => {
    const { queue, metrics } = makeQueue(1, 2);
    const hold = gate();
    queue.register('fanout', () => hold.wait);
    void queue.submit('fanout', 1); // taken by the only worker
    void queue.submit('fanout', 2);
    void queue.submit('fanout', 3);
    const err = caught(() => queue.submit('fanout', 4));
    expect(err.code).toBe('SG_ERR_QUEUE_FULL');
    expect(queue.depth()).toBe(2);
    expect(queue.running()).toBe(1);
    expect(metrics.value('queue_rejected', { kind: 'fanout' })).toBe(1);
    expect(metrics.value('queue_enqueued', { kind: 'fanout' })).toBe(3);
    expect(metrics.gauge('queue_depth')).toBe(2);
    hold.open();
    await queue.idle();
    expect(metrics.value('queue_jobs', { kind: 'fanout', result: 'ok' })).toBe(3);
    expect(metrics.gauge('queue_depth')).toBe(0);
    expect(metrics.gauge('queue_running')).toBe(0);
  });

  it('records each job’s wait from enqueue to start and its run time on the injected clock', async () => {
    const clock = new VirtualClock();
    const { queue, metrics } = makeQueue(1, 100, clock);
    const infos: JobInfo[] = [];
    queue.register('geo-index', async (_payload: unknown, job: JobInfo) => {
      infos.push(job);
      await clock.sleep(10);
    });
    for (let i = 0; i < 3; i++) void queue.submit('geo-index', i);
    // Each step lets pending turns run (workers take jobs on the next turn), then moves time 1 ms.
    for (let budget = 0; budget < 100; budget++) {
      await turn();
      if (queue.running() === 0 && queue.depth() === 0) break;
      await clock.advance(1);
    }
    expect(queue.depth() + queue.running()).toBe(0);
    expect(infos.map((j) => j.startedMs - j.enqueuedMs)).toEqual([0, 10, 20]);
    expect(infos.map((j) => j.id)).toEqual([1, 2, 3]);
    expect(metrics.histogramCount('queue_wait_ms', { kind: 'geo-index' })).toBe(3);
    expect(metrics.percentile('queue_wait_ms', { kind: 'geo-index' }, 100)).toBeCloseTo(20, 1);
    expect(metrics.percentile('queue_wait_ms', { kind: 'geo-index' }, 60)).toBeCloseTo(10, 1);
    expect(metrics.histogramCount('queue_run_ms', { kind: 'geo-index' })).toBe(3);
    expect(metrics.percentile('queue_run_ms', { kind: 'geo-index' }, 50)).toBeCloseTo(10, 1);
  });

  it('resolves idle() at once when empty, and only after the last job otherwise', async () => {
    const { queue } = makeQueue(4);
    await queue.idle();
    let finished = 0;
    queue.register('resize', async () => {
      await new Promise((r) => setTimeout(r, 5));
      finished++;
    });
    for (let i = 0; i < 9; i++) void queue.submit('resize', i);
    await queue.idle();
    expect(finished).toBe(9);
    expect(queue.running()).toBe(0);
    expect(queue.depth()).toBe(0);
  });

  describe('failing handlers', () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    beforeEach(() => {
      unhandled.length = 0;
      process.on('unhandledRejection', onUnhandled);
    });
    afterEach(() => {
      process.off('unhandledRejection', onUnhandled);
    });

    it('counts a failed job, rejects only its own promise, and leaves no unhandled rejection when ignored', async () => {
      const { queue, metrics } = makeQueue(2);
      queue.register('notify', async (p: string) => {
        await turn();
        if (p === 'bad') throw new Error('boom');
      });
      queue.register('resize', (() => {
        throw new Error('sync boom');
      }) as () => Promise<void>);
      void queue.submit('notify', 'bad'); // ignored
      void queue.submit('resize', 'x'); // ignored, throws before returning a promise
      const awaited = queue.submit('notify', 'bad');
      const fine = queue.submit('notify', 'good');
      await expect(awaited).rejects.toThrow('boom');
      await expect(fine).resolves.toBeUndefined();
      await queue.idle();
      // Unhandled rejections are reported after the microtask queue drains; give it a few turns.
      for (let i = 0; i < 5; i++) await turn();
      await new Promise((r) => setTimeout(r, 10));
      expect(unhandled).toHaveLength(0);
      expect(metrics.value('queue_jobs', { kind: 'notify', result: 'error' })).toBe(2);
      expect(metrics.value('queue_jobs', { kind: 'notify', result: 'ok' })).toBe(1);
      expect(metrics.value('queue_jobs', { kind: 'resize', result: 'error' })).toBe(1);
      expect(queue.running()).toBe(0);
    });
  });

  it('refuses a kind with no handler with SG_ERR_INVALID_PARAM', () => {
    const { queue } = makeQueue(1);
    expect(caught(() => queue.submit('no-such-kind', {})).code).toBe('SG_ERR_INVALID_PARAM');
  });

  it('close() finishes the backlog, including jobs its handlers submit, then refuses jobs with SG_ERR_NODE_DOWN', async () => {
    const { queue } = makeQueue(2);
    const ran: string[] = [];
    queue.register('fanout', async (n: number) => {
      await turn();
      ran.push(`fanout:${n}`);
      if (n < 3) void queue.submit('fanout', n + 1); // a chunk that enqueues the next chunk
    });
    void queue.submit('fanout', 0);
    await queue.close();
    expect(ran).toEqual(['fanout:0', 'fanout:1', 'fanout:2', 'fanout:3']);
    expect(caught(() => queue.submit('fanout', 9)).code).toBe('SG_ERR_NODE_DOWN');
  });

  it('drains a backlog of 200,000 jobs in linear time', async () => {
    const { queue, metrics } = makeQueue(200, 1_000_000);
    let sum = 0;
    queue.register('notify', async (n: number) => {
      sum += n;
    });
    const t0 = performance.now();
    for (let i = 0; i < 200_000; i++) void queue.submit('notify', 1);
    await queue.idle();
    const ms = performance.now() - t0;
    console.log(`job queue: 200,000 jobs in ${ms.toFixed(0)} ms (${Math.round(200_000 / (ms / 1000))} jobs/s)`);
    expect(sum).toBe(200_000);
    expect(metrics.value('queue_jobs', { kind: 'notify', result: 'ok' })).toBe(200_000);
    expect(metrics.snapshot({ encode: false }).gauges.find((g) => g.name === 'queue_depth')?.max).toBe(200_000 - 200);
    expect(ms).toBeLessThan(10_000);
  });
});
