// The Gearman stand-in: jobs wait in one FIFO and a fixed pool of workers takes them in order.
// Its depth, wait and run times are what the fan-out scenarios watch back up and drain.

import type { Clock } from '../engine/clock.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { TopologyConfig } from '../topology-config.ts';
import { isSimError, simError } from '../engine/errors.ts';
import { currentActor, currentWork, runInScope } from '../engine/actor-context.ts';
import type { WorkCounts, WorkMeter } from '../observability/work-meter.ts';

/**
 * True for the error a job's promise rejects with when its outcome is unknown: the queue closed, or
 * lost its broker, before the job ended. The job may still run (it is durable in the broker), so a
 * caller must not count it as done, nor as failed.
 */
export function jobAbandoned(err: unknown): boolean {
  return isSimError(err, 'SG_ERR_NODE_DOWN') && err.details?.abandoned === true;
}

export type JobKind = 'fanout' | 'geo-index' | 'resize' | 'notify' | (string & {});

export interface JobInfo {
  id: number;
  kind: JobKind;
  /** Clock time the job was submitted (ms). */
  enqueuedMs: number;
  /** Clock time a worker took it (ms). */
  startedMs: number;
  /**
   * Handed out before to a worker that died before finishing it (a real broker's redelivery); a
   * handler whose effect must not repeat checks it. Always false in process.
   */
  redelivered: boolean;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type JobHandler = (payload: any, job: JobInfo) => Promise<unknown>;
type Handler = JobHandler;

/**
 * What the store asks of a job queue: this in-process one, or RabbitMQ (`sim/backends/amqp-queue.ts`).
 * submit() settles when the job has ended, wherever it ran.
 */
export interface Jobs {
  /** Jobs run in this process only (payloads are passed by reference, not sent). */
  readonly inProcess: boolean;
  register(kind: JobKind, handler: JobHandler): void;
  /** Settles with what the handler returned (JSON-shaped when it ran in another process). */
  submit(kind: JobKind, payload: unknown): Promise<unknown>;
  /** Jobs waiting for a worker. */
  depth(): number;
  /** Jobs being worked (by this process). */
  running(): number;
  /** Resolves when the jobs this process submitted have ended and it works none. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

interface Job {
  id: number;
  kind: JobKind;
  payload: unknown;
  enqueuedMs: number;
  resolve: (result: unknown) => void;
  reject: (err: unknown) => void;
  /** Whom the job is done for: the actor of the request or job that submitted it. */
  actor: string | undefined;
}

/** Compact the waiting array once this many taken jobs sit before its head. */
const COMPACT_AFTER = 4096;

export class JobQueue implements Jobs {
  readonly inProcess = true;
  private readonly handlers = new Map<JobKind, Handler>();
  /** Waiting jobs live in waiting[head..]; taking one only moves head, so a deep backlog drains in O(1) per job. */
  private waiting: Array<Job | undefined> = [];
  private head = 0;
  private active = 0;
  private nextId = 1;
  private pumpScheduled = false;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  private readonly clock: Clock;
  private readonly metrics: Metrics;
  private readonly work: WorkMeter | null;

  constructor(
    private readonly config: TopologyConfig['queue'],
    deps: { clock: Clock; metrics: Metrics; work?: WorkMeter },
  ) {
    this.clock = deps.clock;
    this.metrics = deps.metrics;
    this.work = deps.work ?? null;
    this.metrics.describe('queue_depth', 'Jobs waiting for a worker');
    this.metrics.describe('queue_running', 'Jobs being worked');
    this.metrics.describe('queue_jobs', 'Jobs finished, by kind and result');
    this.metrics.describe('queue_enqueued', 'Jobs accepted, by kind');
    this.metrics.describe('queue_rejected', 'Jobs refused because the queue was full, by kind');
    this.metrics.describe('queue_wait_ms', 'Time from enqueue to a worker taking the job');
    this.metrics.describe('queue_run_ms', 'Time a worker spent on the job');
    this.publishGauges();
  }

  register(kind: JobKind, handler: Handler): void {
    this.handlers.set(kind, handler);
  }

  /**
   * Enqueues a job. Throws at once (not through the promise) SG_ERR_QUEUE_FULL when the waiting jobs
   * would exceed config.maxDepth, SG_ERR_INVALID_PARAM for a kind with no handler, and
   * SG_ERR_NODE_DOWN after close(). The promise settles when the job finishes and rejects with the
   * handler's error; ignoring it is safe, since failures are always counted and never unhandled.
   */
  submit(kind: JobKind, payload: unknown): Promise<unknown> {
    if (this.closed) throw simError('SG_ERR_NODE_DOWN', 'the job queue is closed', { node: 'queue', kind });
    if (!this.handlers.has(kind)) throw simError('SG_ERR_INVALID_PARAM', `no handler registered for job kind "${kind}"`, { kind });
    const canStartNow = this.active < this.config.workers && this.depth() === 0;
    if (!canStartNow && this.depth() >= this.config.maxDepth) {
      this.metrics.inc('queue_rejected', { kind });
      throw simError('SG_ERR_QUEUE_FULL', undefined, { kind, maxDepth: this.config.maxDepth });
    }
    let resolve!: (result: unknown) => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Marks the promise handled; a caller that awaits it still sees the rejection.
    done.catch(() => {});
    const job: Job = { id: this.nextId++, kind, payload, enqueuedMs: this.clock.nowMs(), resolve, reject, actor: currentActor() };
    const work = currentWork();
    if (work) work.jobsQueued++;
    this.metrics.inc('queue_enqueued', { kind });
    if (canStartNow) this.start(job);
    else this.waiting.push(job);
    this.publishGauges();
    return done;
  }

  /** Jobs waiting for a worker. */
  depth(): number {
    return this.waiting.length - this.head;
  }

  /** Jobs being worked. */
  running(): number {
    return this.active;
  }

  /** Resolves when nothing is waiting or running. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Lets the queue drain (jobs submitted meanwhile, e.g. by handlers, are still taken), then refuses new ones. */
  async close(): Promise<void> {
    await this.idle();
    this.closed = true;
  }

  private isIdle(): boolean {
    return this.active === 0 && this.depth() === 0;
  }

  private start(job: Job): void {
    this.active++;
    const startedMs = this.clock.nowMs();
    const info: JobInfo = { id: job.id, kind: job.kind, enqueuedMs: job.enqueuedMs, startedMs, redelivered: false };
    this.metrics.observe('queue_wait_ms', { kind: job.kind }, startedMs - job.enqueuedMs);
    const handler = this.handlers.get(job.kind)!;
    // The handler runs in a later microtask so that a handler which throws synchronously, or which
    // submits more jobs, never runs inside the caller's submit(). It runs in a scope of its own: for
    // the submitter's actor, its work counted under its kind (not under the request that queued it).
    const work = this.work?.job(job.kind) ?? null;
    queueMicrotask(() => {
      runInScope({ actor: job.actor, work }, () => {
        let ran: Promise<unknown>;
        try {
          ran = Promise.resolve(handler(job.payload, info));
        } catch (err) {
          ran = Promise.reject(err);
        }
        ran.then(
          (result: unknown) => this.finish(job, startedMs, 'ok', undefined, work, result),
          (err: unknown) => this.finish(job, startedMs, 'error', err, work),
        );
      });
    });
  }

  private finish(job: Job, startedMs: number, result: 'ok' | 'error', err: unknown, work: WorkCounts | null, value?: unknown): void {
    this.active--;
    if (work) {
      work.count++;
      if (result === 'error') work.failed++;
    }
    this.metrics.observe('queue_run_ms', { kind: job.kind }, this.clock.nowMs() - startedMs);
    this.metrics.inc('queue_jobs', { kind: job.kind, result });
    if (result === 'ok') job.resolve(value);
    else job.reject(err);
    if (this.depth() > 0) this.schedulePump();
    this.publishGauges();
    this.wakeIdle();
  }

  /**
   * Freed workers take their next jobs on the next turn of the event loop rather than in the same
   * microtask chain: a backlog of quick jobs would otherwise starve timers and sockets (the HTTP
   * server shares this thread), and one turn is the simulated Gearman round trip.
   */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.active < this.config.workers && this.head < this.waiting.length) {
      const job = this.waiting[this.head]!;
      this.waiting[this.head] = undefined; // taken: let the GC have it
      this.head++;
      this.start(job);
    }
    if (this.head >= COMPACT_AFTER && this.head * 2 >= this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    } else if (this.head === this.waiting.length) {
      this.waiting = [];
      this.head = 0;
    }
    this.publishGauges();
  }

  private publishGauges(): void {
    this.metrics.set('queue_depth', {}, this.depth());
    this.metrics.set('queue_running', {}, this.active);
  }

  private wakeIdle(): void {
    if (!this.isIdle() || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
