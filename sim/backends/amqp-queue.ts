// The job queue on a real RabbitMQ (amqplib), in place of the in-process Gearman stand-in: one
// durable queue per job kind, persistent messages, and manual acks sent only after the work is done,
// so a worker killed mid-job loses nothing: the broker hands the job to another consumer, flagged
// `redelivered` (counted; handlers that must not repeat an effect check the flag). Whoever submits a
// job hears how it ended through RabbitMQ's direct reply-to, whichever process ran it, so the
// submitter's promise settles as the in-process queue's does.

import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Clock } from '../engine/clock.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { WorkCounts, WorkMeter } from '../observability/work-meter.ts';
import type { TopologyConfig } from '../topology-config.ts';
import { isSimError, simError, SimError, type ErrorCode, ERROR_CODES } from '../engine/errors.ts';
import { currentActor, currentWork, runInScope } from '../engine/actor-context.ts';
import type { JobHandler, JobInfo, JobKind, Jobs } from '../parts/job-queue.ts';

const REPLY_TO = 'amq.rabbitmq.reply-to';
/** How long close() waits, by default, for jobs this process submitted before leaving them to the broker. */
const CLOSE_GRACE_MS = 10_000;

export interface AmqpQueueOptions {
  /** amqp://user:pass@host:port/vhost */
  url: string;
  /** Queue names: `<prefix>.<kind>`. One prefix per deployment (servers and workers share it). */
  prefix: string;
  /**
   * Kinds this process works. Undefined: every kind it registers a handler for, except `remote`.
   * A `scalegram worker` names the kinds it can do.
   */
  consume?: readonly string[];
  /** Kinds this process publishes but leaves to `scalegram worker` processes. */
  remote?: readonly string[];
  /** Delete the queues on close (a run whose data lives only as long as it does). */
  deleteOnClose?: boolean;
  /** How often the broker's queue depths are read for the gauges (ms); 0: never. */
  sampleEveryMs?: number;
  /** Called once if the connection to the broker is lost (jobs waiting on it are rejected). */
  onLost?: (err: Error) => void;
  /** Told what close() is waiting for, when it waits. */
  onWait?: (message: string) => void;
  /** How long close() waits for jobs this process submitted (ms; default 10 s). */
  closeGraceMs?: number;
}

interface Pending {
  kind: string;
  resolve: (result: unknown) => void;
  reject: (err: unknown) => void;
}

/** A reply: how the job ended, and what its handler returned. */
interface Reply {
  ok: boolean;
  result?: unknown;
  error?: { code?: string; message: string };
}

export class AmqpJobQueue implements Jobs {
  readonly inProcess = false;
  private readonly handlers = new Map<string, JobHandler>();
  private readonly declared = new Map<string, Promise<unknown>>();
  private readonly consuming = new Map<string, Promise<string>>();
  private readonly pending = new Map<string, Pending>();
  /** Ready messages per kind, as last read from the broker. */
  private readonly brokerDepth = new Map<string, number>();
  private readonly origin = randomBytes(6).toString('hex');
  private nextId = 1;
  private active = 0;
  private closed = false;
  private started = false;
  private lost: Error | null = null;
  private idleWaiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];
  private sampler: NodeJS.Timeout | null = null;

  private constructor(
    private readonly conn: ChannelModel,
    private readonly pub: ConfirmChannel,
    private readonly sub: Channel,
    private readonly config: TopologyConfig['queue'],
    private readonly opts: AmqpQueueOptions,
    private readonly deps: { clock: Clock; metrics: Metrics; work?: WorkMeter },
  ) {
    const m = deps.metrics;
    m.describe('queue_depth', 'Jobs waiting for a worker');
    m.describe('queue_running', 'Jobs being worked');
    m.describe('queue_jobs', 'Jobs finished, by kind and result');
    m.describe('queue_enqueued', 'Jobs accepted, by kind');
    m.describe('queue_rejected', 'Jobs refused because the queue was full, by kind');
    m.describe('queue_wait_ms', 'Time from enqueue to a worker taking the job');
    m.describe('queue_run_ms', 'Time a worker spent on the job');
    m.describe('queue_redelivered', 'Jobs handed out again by the broker after a consumer died before acking them, by kind');
    m.describe('queue_connection_lost', 'Connections to RabbitMQ lost (this process no longer queues or takes jobs until restarted)');
    m.describe('queue_purged_at_start', "Jobs an earlier run left in the namespace's queues, dropped at a start with a data dir (its journal runs them again)");
    this.publishGauges();
    const lose = (err: unknown) => this.loseConnection(err instanceof Error ? err : new Error(String(err)));
    conn.on('error', lose);
    conn.on('close', () => lose(new Error('the connection to RabbitMQ closed')));
    pub.on('error', lose);
    sub.on('error', lose);
  }

  /** Connects and sets up the reply consumer; SG_ERR_BACKEND_UNREACHABLE when RabbitMQ does not answer. */
  static async connect(config: TopologyConfig['queue'], opts: AmqpQueueOptions, deps: { clock: Clock; metrics: Metrics; work?: WorkMeter }): Promise<AmqpJobQueue> {
    if (!/^[A-Za-z0-9_.:-]{1,200}$/.test(opts.prefix)) throw simError('SG_ERR_INVALID_PARAM', `queue prefix "${opts.prefix}" must be 1–200 letters, digits or _ . : -`, { prefix: opts.prefix });
    let conn: ChannelModel;
    try {
      conn = await amqp.connect(opts.url, { timeout: 5000 });
    } catch (err) {
      throw simError('SG_ERR_BACKEND_UNREACHABLE', `RabbitMQ at ${redact(opts.url)} did not answer: ${(err as Error).message || String(err)}`, { backend: 'rabbitmq' });
    }
    try {
      const pub = await conn.createConfirmChannel();
      const sub = await conn.createChannel();
      // One budget of unacked jobs for the whole process, across kinds: queue.workers, as the
      // in-process queue's worker pool.
      await sub.prefetch(config.workers, true);
      const q = new AmqpJobQueue(conn, pub, sub, config, opts, deps);
      await pub.consume(REPLY_TO, (msg) => q.onReply(msg), { noAck: true });
      q.startSampling(opts.sampleEveryMs ?? 1000);
      return q;
    } catch (err) {
      await conn.close().catch(() => undefined);
      throw err;
    }
  }

  /** The queue's name for a kind. */
  queueName(kind: string): string {
    return `${this.opts.prefix}.${kind}`;
  }

  /** The broker's address (with its password: redact() it for display). */
  get url(): string {
    return this.opts.url;
  }

  get prefix(): string {
    return this.opts.prefix;
  }

  /** Kinds left to worker processes. */
  get remote(): readonly string[] {
    return this.opts.remote ?? [];
  }

  register(kind: JobKind, handler: JobHandler): void {
    this.handlers.set(kind, handler);
    if (this.started && this.works(kind)) this.startConsuming(kind);
  }

  /**
   * Starts taking jobs, for every kind registered and to come, and resolves once each has a
   * consumer on the broker. Until then jobs can be submitted but none is taken: a process that
   * finds jobs left in the broker by an earlier run takes them only when it is ready for them.
   */
  async start(): Promise<void> {
    this.started = true;
    for (const kind of this.handlers.keys()) if (this.works(kind)) this.startConsuming(kind);
    await Promise.all([...this.consuming.values()]);
  }

  /**
   * Queues a job; settles with what the handler returned (sent back as JSON). Throws at once
   * SG_ERR_NODE_DOWN when closed or the broker is lost, SG_ERR_INVALID_PARAM for a kind with no
   * handler, SG_ERR_QUEUE_FULL when this process already waits on queue.maxDepth jobs.
   */
  submit(kind: JobKind, payload: unknown): Promise<unknown> {
    if (this.closed) throw simError('SG_ERR_NODE_DOWN', 'the job queue is closed', { node: 'queue', kind });
    if (this.lost) throw simError('SG_ERR_NODE_DOWN', `the connection to RabbitMQ is lost: ${this.lost.message}`, { node: 'queue', kind });
    if (!this.handlers.has(kind)) throw simError('SG_ERR_INVALID_PARAM', `no handler registered for job kind "${kind}"`, { kind });
    if (this.pending.size >= this.config.maxDepth) {
      this.deps.metrics.inc('queue_rejected', { kind });
      throw simError('SG_ERR_QUEUE_FULL', undefined, { kind, maxDepth: this.config.maxDepth });
    }
    const id = `${this.origin}-${this.nextId++}`;
    const done = new Promise<unknown>((resolve, reject) => this.pending.set(id, { kind, resolve, reject }));
    done.catch(() => {});
    const work = currentWork();
    if (work) work.jobsQueued++;
    this.deps.metrics.inc('queue_enqueued', { kind });
    const actor = currentActor();
    const headers: Record<string, unknown> = { enqueuedMs: this.deps.clock.nowMs(), origin: this.origin };
    if (actor !== undefined) headers.actor = actor;
    let body: Buffer;
    try {
      body = encodeJob(payload);
    } catch (err) {
      this.settle(id, { ok: false, error: { message: `the job's payload cannot be sent: ${(err as Error).message}` } });
      return done;
    }
    this.declare(kind)
      .then(
        () =>
          new Promise<void>((resolve, reject) => {
            this.pub.sendToQueue(this.queueName(kind), body, { persistent: true, contentType: 'application/json', correlationId: id, replyTo: REPLY_TO, headers }, (err) => (err ? reject(err) : resolve()));
          }),
      )
      .catch((err: unknown) => this.settle(id, { ok: false, error: { code: 'SG_ERR_NODE_DOWN', message: `RabbitMQ refused the job: ${(err as Error)?.message ?? String(err)}` } }));
    return done;
  }

  /**
   * Drops the jobs waiting in the broker for every kind this process has registered (a start whose
   * job journal will run again whatever an earlier run promised: its leftovers would run twice).
   * Returns how many were dropped.
   */
  async purge(): Promise<number> {
    let n = 0;
    for (const kind of this.handlers.keys()) {
      await this.declare(kind);
      n += (await this.sub.purgeQueue(this.queueName(kind))).messageCount;
    }
    if (n > 0) this.deps.metrics.inc('queue_purged_at_start', {}, n);
    return n;
  }

  /** Jobs ready in the broker for the kinds this process knows (as last read), all processes' together. */
  depth(): number {
    let n = 0;
    for (const d of this.brokerDepth.values()) n += d;
    return n;
  }

  /** Jobs this process is working. */
  running(): number {
    return this.active;
  }

  /** Jobs this process submitted that have not ended. */
  outstanding(): number {
    return this.pending.size;
  }

  /** Resolves when every job this process submitted has ended and it works none. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Waits up to closeGraceMs (10 s) for the jobs this process submitted, still taking jobs meanwhile;
   * then stops taking jobs, lets those it holds finish (and be acked) and closes the connection.
   * Jobs it submitted that have not ended stay in the broker (durable: another process or the next
   * start works them); their promises reject as abandoned (jobAbandoned()), neither done nor failed.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    // Jobs this process works may queue more (a fan-out's chunks), so it keeps taking jobs while
    // its own submitted ones may still end; then it stops taking them and lets those it holds finish.
    if (!this.isIdle()) {
      const grace = this.opts.closeGraceMs ?? CLOSE_GRACE_MS;
      this.opts.onWait?.(`waiting up to ${grace / 1000} s for ${this.pending.size} queued job(s) to end; those left stay in RabbitMQ`);
      await withDeadline(this.idle(), grace);
    }
    this.closed = true;
    if (this.sampler) clearInterval(this.sampler);
    if (!this.lost) {
      for (const tag of await Promise.all([...this.consuming.values()].map((p) => p.catch(() => '')))) if (tag) await this.sub.cancel(tag).catch(() => undefined);
      await withDeadline(this.drained(), CLOSE_GRACE_MS);
      if (this.opts.deleteOnClose) for (const kind of this.declared.keys()) await this.sub.deleteQueue(this.queueName(kind)).catch(() => undefined);
    }
    for (const [id] of this.pending) this.abandon(id, 'the job queue closed before the job ended (it stays in the broker)');
    await this.conn.close().catch(() => undefined);
  }

  private works(kind: string): boolean {
    if (this.opts.consume) return this.opts.consume.includes(kind);
    return !(this.opts.remote ?? []).includes(kind);
  }

  private declare(kind: string): Promise<unknown> {
    let d = this.declared.get(kind);
    if (!d) {
      d = this.sub.assertQueue(this.queueName(kind), { durable: true });
      d.catch(() => this.declared.delete(kind));
      this.declared.set(kind, d);
    }
    return d;
  }

  private startConsuming(kind: string): void {
    if (this.consuming.has(kind)) return;
    const started = this.declare(kind).then(async () => (await this.sub.consume(this.queueName(kind), (msg) => this.onJob(kind, msg), { noAck: false })).consumerTag);
    started.catch((err: unknown) => this.loseConnection(err instanceof Error ? err : new Error(String(err))));
    this.consuming.set(kind, started);
  }

  private onJob(kind: string, msg: ConsumeMessage | null): void {
    if (msg === null) return; // the broker cancelled the consumer (the queue was deleted)
    const handler = this.handlers.get(kind)!;
    const h = msg.properties.headers ?? {};
    const startedMs = this.deps.clock.nowMs();
    const enqueuedMs = typeof h.enqueuedMs === 'number' ? h.enqueuedMs : startedMs;
    const redelivered = msg.fields.redelivered;
    const info: JobInfo = { id: msg.fields.deliveryTag, kind, enqueuedMs, startedMs, redelivered };
    const m = this.deps.metrics;
    this.active++;
    this.publishGauges();
    // Clocks of processes on other machines need not agree: a wait below zero is not one.
    m.observe('queue_wait_ms', { kind }, Math.max(0, startedMs - enqueuedMs));
    if (redelivered) m.inc('queue_redelivered', { kind });
    const work = this.deps.work?.job(kind) ?? null;
    let payload: unknown;
    try {
      payload = decodeJob(msg.content);
    } catch (err) {
      this.finish(msg, kind, startedMs, work, { ok: false, error: { message: `the job's payload is not JSON: ${(err as Error).message}` } });
      return;
    }
    const actor = typeof h.actor === 'string' ? h.actor : undefined;
    runInScope({ actor, work }, () => {
      let ran: Promise<unknown>;
      try {
        ran = Promise.resolve(handler(payload, info));
      } catch (err) {
        ran = Promise.reject(err);
      }
      ran.then(
        (result: unknown) => this.finish(msg, kind, startedMs, work, { ok: true, ...(result === undefined ? {} : { result }) }),
        (err: unknown) => this.finish(msg, kind, startedMs, work, { ok: false, error: describeError(err) }),
      );
    });
  }

  private finish(msg: ConsumeMessage, kind: string, startedMs: number, work: WorkCounts | null, reply: Reply): void {
    this.active--;
    if (work) {
      work.count++;
      if (!reply.ok) work.failed++;
    }
    const m = this.deps.metrics;
    m.observe('queue_run_ms', { kind }, this.deps.clock.nowMs() - startedMs);
    m.inc('queue_jobs', { kind, result: reply.ok ? 'ok' : 'error' });
    if (!this.lost) {
      // Reply before the ack: a kill in between runs the job again (at least once), never zero times.
      const { replyTo, correlationId } = msg.properties;
      const requeued = !reply.ok && reply.error?.code === 'SG_ERR_BACKEND_UNREACHABLE';
      if (!requeued && typeof replyTo === 'string' && typeof correlationId === 'string') {
        try {
          this.sub.sendToQueue(replyTo, Buffer.from(JSON.stringify(reply)), { correlationId });
        } catch {
          // The submitter is gone or the channel closed; the work is done either way.
        }
      }
      // A job whose handler failed is acked too: failures are counted, not retried (as in-process);
      // except when a backend it needs did not answer: then it goes back to the broker, for this
      // or another worker once the backend is back, and no reply is sent.
      try {
        if (reply.ok || reply.error?.code !== 'SG_ERR_BACKEND_UNREACHABLE') this.sub.ack(msg);
        else this.sub.nack(msg, false, true);
      } catch {
        // The channel closed under us: the broker gives the job to another consumer.
      }
    }
    this.publishGauges();
    this.wakeIdle();
  }

  private onReply(msg: ConsumeMessage | null): void {
    if (!msg) return;
    const id = msg.properties.correlationId;
    if (typeof id !== 'string') return;
    let reply: Reply;
    try {
      reply = JSON.parse(msg.content.toString('utf8')) as Reply;
    } catch {
      reply = { ok: false, error: { message: 'the reply is not JSON' } };
    }
    this.settle(id, reply);
  }

  /** Rejects a job whose outcome this process will not hear (jobAbandoned() tells it apart). */
  private abandon(id: string, message: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.reject(simError('SG_ERR_NODE_DOWN', message, { node: 'queue', kind: p.kind, abandoned: true }));
    this.wakeIdle();
  }

  private settle(id: string, reply: Reply): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (reply.ok) p.resolve(reply.result);
    else p.reject(errorFrom(reply.error));
    this.wakeIdle();
  }

  private loseConnection(err: Error): void {
    if (this.lost || this.closed) return;
    this.lost = err;
    // Jobs sent before the loss are in the broker (durable) and run when a consumer comes back;
    // their replies can no longer reach this connection.
    for (const [id] of this.pending) this.abandon(id, `the connection to RabbitMQ is lost: ${err.message}`);
    this.deps.metrics.inc('queue_connection_lost');
    this.opts.onLost?.(err);
  }

  private startSampling(everyMs: number): void {
    if (everyMs <= 0) return;
    this.sampler = setInterval(() => void this.sample(), everyMs);
    this.sampler.unref();
  }

  /** Reads each declared queue's ready messages from the broker (the tier's depth, not this process's). */
  async sample(): Promise<void> {
    if (this.closed || this.lost) return;
    for (const kind of this.declared.keys()) {
      try {
        const q = await this.sub.checkQueue(this.queueName(kind));
        this.brokerDepth.set(kind, q.messageCount);
      } catch {
        return;
      }
    }
    this.publishGauges();
  }

  private drained(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.active === 0 && this.pending.size === 0;
  }

  private publishGauges(): void {
    this.deps.metrics.set('queue_depth', {}, this.depth());
    this.deps.metrics.set('queue_running', {}, this.active);
  }

  private wakeIdle(): void {
    if (this.active === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
    if (!this.isIdle() || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(an unparsable URL)';
  }
}

function withDeadline(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
    void p.then(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

function describeError(err: unknown): { code?: string; message: string } {
  if (isSimError(err)) return { code: err.code, message: err.message };
  return { message: err instanceof Error ? err.message : String(err) };
}

function errorFrom(e: Reply['error']): Error {
  const message = e?.message ?? 'the job failed';
  if (e?.code && e.code in ERROR_CODES) return new SimError(e.code as ErrorCode, message);
  return new Error(message);
}

/**
 * A job's payload as JSON, keeping what JSON would lose: Buffers and typed arrays (as base64) and
 * bigints. Functions and class instances other than those are refused, so a payload that only
 * worked by reference in one process fails at submit, not on another machine.
 */
export function encodeJob(value: unknown): Buffer {
  return Buffer.from(
    JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
      const raw = key === '' ? value : this[key];
      if (typeof raw === 'bigint') return { $big: raw.toString() };
      if (Buffer.isBuffer(raw)) return { $buf: raw.toString('base64') };
      if (ArrayBuffer.isView(raw)) return { $ta: raw.constructor.name, b64: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') };
      if (typeof raw === 'function') throw new TypeError(`a function at "${key}" cannot travel in a job`);
      if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
        const proto = Object.getPrototypeOf(raw) as unknown;
        if (proto !== Object.prototype && proto !== null) throw new TypeError(`an object of class ${(raw as object).constructor?.name ?? '?'} at "${key}" cannot travel in a job`);
      }
      return v;
    }),
  );
}

const TYPED: Record<string, new (b: ArrayBuffer) => ArrayBufferView> = {
  Uint8Array,
  Int8Array,
  Uint16Array,
  Int16Array,
  Uint32Array,
  Int32Array,
  Float32Array,
  Float64Array,
  Uint8ClampedArray,
  BigInt64Array,
  BigUint64Array,
};

export function decodeJob(body: Buffer): unknown {
  return JSON.parse(body.toString('utf8'), (_key, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      if (typeof o.$big === 'string' && Object.keys(o).length === 1) return BigInt(o.$big);
      if (typeof o.$buf === 'string' && Object.keys(o).length === 1) return Buffer.from(o.$buf, 'base64');
      if (typeof o.$ta === 'string' && typeof o.b64 === 'string' && Object.keys(o).length === 2) {
        const Ctor = TYPED[o.$ta];
        if (!Ctor) throw new TypeError(`unknown typed array ${o.$ta}`);
        const bytes = Buffer.from(o.b64, 'base64');
        const copy = new ArrayBuffer(bytes.length);
        new Uint8Array(copy).set(bytes);
        return new Ctor(copy);
      }
    }
    return v;
  });
}
