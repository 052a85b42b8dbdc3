// `scalegram serve --workers N`: the primary of a node:cluster tier of N server processes sharing
// one port (Linux: the primary accepts and hands connections round-robin). The primary serves
// nothing itself: it prepares the store once (migrates the shard schemas, empties the tables,
// settles the replicas), starts the processes (server/tier/worker.ts), relays what they say to each
// other, starts a process again when one dies, and at stop closes them all and removes what a
// made-up namespace left in RabbitMQ and Redis.

import cluster, { type Worker } from 'node:cluster';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simError } from '../../sim/engine/errors.ts';
import { PgTier } from '../../sim/backends/postgres/pg-tier.ts';
import { removeNamespace } from '../../sim/backends/namespace.ts';
import { errorBody } from '../envelope.ts';
import type { CarriedAnswer, ProcessReply, ToPrimary, ToWorker, WorkerStart } from './messages.ts';

export interface TierOptions extends Omit<WorkerStart, 'type' | 'index'> {
  /** The namespace was made up for this tier: its queues and keys are removed at stop. */
  ownNamespace: boolean;
  /** Told of what is worth knowing (notices, restarts, the stop). */
  log: (line: string) => void;
  /** The module each server process runs (it calls runTierWorker: cli/serve-worker.mjs). */
  workerEntry: string;
  /** Called once every process listens, with the leader's description of its topology and the processes' pids. */
  onReady: (bound: AddressInfo, banner: string, pids: number[]) => void;
}

/** The answer to an admin or /metrics request while process 0 is away (it died, and starts again). */
function leaderAway(): CarriedAnswer {
  const body = errorBody({ status: 503, type: 'APIError', message: 'The tier’s process 0, which answers the admin API and /metrics, is starting again: retry in a few seconds (SG_ERR_NODE_DOWN)', isBug: false });
  return { status: 503, headers: { 'content-type': 'application/json; charset=utf-8', 'retry-after': '5' }, body: Buffer.from(JSON.stringify(body)).toString('base64') };
}

/** Deaths of listening processes within RESTART_WINDOW_MS, at most, before the tier gives up (count). */
const MAX_RESTARTS = 20;
const RESTART_WINDOW_MS = 10 * 60_000;
/** How long stop waits for a process to close before killing it (ms). */
const STOP_GRACE_MS = 30_000;
/** Waits before starting a process again after a start that failed (a server down, say), growing to the last (ms). */
const RETRY_BACKOFF_MS = [2_000, 5_000, 10_000, 30_000];

/**
 * Runs the tier until SIGINT, SIGTERM or SIGHUP; resolves when every process has stopped and the
 * namespace is cleaned: with null, or with why the tier stopped itself (too many deaths). Throws
 * (every process stopped) when the tier cannot start.
 */
export async function runTier(o: TierOptions): Promise<string | null> {
  const { ownNamespace, log: print, onReady, workerEntry, ...start } = o;
  if (!start.topology.postgres) throw simError('SG_ERR_INVALID_PARAM', 'a tier of server processes keeps its store in Postgres');
  // Every process sees the same parts and says the same things about them: each line once.
  const said = new Set<string>();
  const log = (line: string) => {
    if (said.has(line)) return;
    said.add(line);
    print(line);
  };
  // The servers as they are now: a failover rewrites its entry (the processes started later open the promoted replica).
  const postgres = start.topology.postgres.map((s) => ({ ...s, ...(s.replicas ? { replicas: [...s.replicas] } : {}) }));
  // Images and the geo index, shared by the processes (what S3 and Solr were to Instagram's app servers).
  const sharedDir = mkdtempSync(join(tmpdir(), 'scalegram-tier-'));
  const base: Omit<WorkerStart, 'index'> = { ...start, type: 'start', topology: { ...start.topology, postgres, sharedDir } };

  const byIndex = new Map<number, Worker>();
  /** The processes that listen (a process starting again does not yet, and hears nothing but its start). */
  const ready = new Set<Worker>();
  let stopping = false;
  const deaths: number[] = [];
  let settle!: () => void;
  const stopped = new Promise<void>((resolve) => (settle = resolve));
  let failure: string | null = null;
  const asks = new Map<number, { leader: Worker; leaderId: number; replies: ProcessReply[]; waiting: Set<number>; timer: NodeJS.Timeout }>();
  const forwards = new Map<number, { from: Worker; id: number; leader: Worker }>();
  /** The last of each admin change every process applies (by route): a process that starts again applies them too. */
  const applied = new Map<string, ToWorker>();
  let nextRelay = 1;
  const leader = () => {
    const w = byIndex.get(0);
    return w && ready.has(w) && w.isConnected() ? w : null;
  };

  const finishAsk = (id: number) => {
    const a = asks.get(id);
    if (!a) return;
    asks.delete(id);
    clearTimeout(a.timer);
    const replies: ToWorker = { type: 'replies', id: a.leaderId, replies: a.replies, missing: [...a.waiting] };
    if (a.leader.isConnected()) a.leader.send(replies);
  };

  const adoptPromotion = (node: string, promotedUrl: string) => {
    const spec = postgres[Number(/^db-(\d+)$/.exec(node)?.[1] ?? -1)];
    const r = spec?.replicas?.indexOf(promotedUrl) ?? -1;
    if (!spec || r < 0) return;
    const replicas = spec.replicas!.filter((_, i) => i !== r);
    const clusters = spec.clusters ? { ...spec.clusters, primary: spec.clusters.replicas[r] ?? spec.clusters.primary, replicas: spec.clusters.replicas.filter((_, i) => i !== r) } : undefined;
    postgres[postgres.indexOf(spec)] = { ...spec, url: promotedUrl, replicas, ...(clusters ? { clusters } : {}) };
  };

  const onMessage = (w: Worker, index: number, m: ToPrimary) => {
    switch (m.type) {
      case 'notice':
        log(m.message);
        return;
      case 'admin': {
        const to = leader();
        // No leader (it is starting again): 503 at once, with when to try again.
        if (!to) {
          w.send({ type: 'answer', id: m.id, answer: leaderAway() } satisfies ToWorker);
          return;
        }
        const relay = nextRelay++;
        forwards.set(relay, { from: w, id: m.id, leader: to });
        to.send({ type: 'admin', id: relay, request: m.request } satisfies ToWorker);
        return;
      }
      case 'answer': {
        const f = forwards.get(m.id);
        forwards.delete(m.id);
        if (f?.from.isConnected()) f.from.send({ type: 'answer', id: f.id, answer: m.answer } satisfies ToWorker);
        return;
      }
      case 'ask': {
        // A failover the leader made: a process started from now on opens the promoted replica as the primary.
        if (m.question.kind === 'adopt' && m.question.change.kind === 'failover') adoptPromotion(m.question.change.node, m.question.change.promotedUrl);
        const waiting = new Set<number>();
        const relay = nextRelay++;
        // Only the processes that listen: one starting again opens the servers as they are by then.
        for (const [i, other] of byIndex) {
          if (i === index || !ready.has(other) || !other.isConnected()) continue;
          waiting.add(i);
          other.send({ type: 'ask', id: relay, question: m.question } satisfies ToWorker);
        }
        // The leader's own request id travels back with the replies.
        asks.set(relay, { leader: w, leaderId: m.id, replies: [], waiting, timer: setTimeout(() => finishAsk(relay), m.timeoutMs) });
        if (waiting.size === 0) finishAsk(relay);
        return;
      }
      case 'reply': {
        const a = asks.get(m.id);
        if (!a || !a.waiting.delete(index)) return;
        a.replies.push({ index, pid: w.process.pid ?? 0, reply: m.reply });
        if (a.waiting.size === 0) finishAsk(m.id);
        return;
      }
      case 'apply': {
        const message: ToWorker = { type: 'apply', request: m.request };
        applied.set(`${m.request.method} ${m.request.url.split('?', 1)[0]}`, message);
        for (const [i, other] of byIndex) if (i !== index && ready.has(other) && other.isConnected()) other.send(message);
        return;
      }
      default:
    }
  };

  const readyBanner = new Map<number, string>();
  let leaderAddress: AddressInfo | null = null;

  const fork = (index: number): Promise<Worker> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork({ SCALEGRAM_TIER_INDEX: String(index) });
      byIndex.set(index, w);
      let listening = false;
      w.on('message', (m: ToPrimary) => {
        if (m.type === 'hello') {
          w.send({ ...base, index } satisfies WorkerStart);
          return;
        }
        if (m.type === 'ready') {
          listening = true;
          ready.add(w);
          readyBanner.set(index, m.banner ?? '');
          if (index === 0) leaderAddress = m.address;
          // What the others applied while it was away (or before it started).
          for (const a of applied.values()) w.send(a);
          resolve(w);
          return;
        }
        if (m.type === 'failed') {
          const code = m.code === 'SG_ERR_CONFIG_INVALID' || m.code === 'SG_ERR_INVALID_PARAM' ? m.code : 'SG_ERR_BACKEND_UNREACHABLE';
          reject(simError(code, `server process ${index}: ${m.message}`));
          return;
        }
        onMessage(w, index, m);
      });
      w.once('exit', (code, signal) => {
        ready.delete(w);
        if (byIndex.get(index) === w) byIndex.delete(index);
        // Forwarded requests it was answering (the leader), or that it would have answered to (a follower).
        for (const [id, f] of forwards) {
          if (f.from === w) forwards.delete(id);
          else if (f.leader === w) {
            forwards.delete(id);
            if (f.from.isConnected()) f.from.send({ type: 'answer', id: f.id, answer: leaderAway() } satisfies ToWorker);
          }
        }
        // The questions waiting on it go on without it.
        for (const [id, a] of asks) if (a.waiting.delete(index) && a.waiting.size === 0) finishAsk(id);
        const how = signal ?? `exit code ${code}`;
        if (!listening) {
          reject(simError('SG_ERR_BACKEND_UNREACHABLE', `server process ${index} exited before it listened (${how})`));
          return;
        }
        if (stopping) return;
        const now = Date.now();
        deaths.push(now);
        while (deaths.length > 0 && deaths[0]! < now - RESTART_WINDOW_MS) deaths.shift();
        if (deaths.length > MAX_RESTARTS) {
          const why = `server process ${index} (pid ${w.process.pid}) died (${how}), the ${deaths.length}th death in ${RESTART_WINDOW_MS / 60_000} minutes`;
          log(`${why}: stopping the tier`);
          void stopAll(why);
          return;
        }
        log(`server process ${index} (pid ${w.process.pid}) died (${how}); starting it again`);
        restart(index, 0);
      });
    });

  /** Starts process `index` again; a start that fails (a server down meanwhile) is tried again later, until one listens or the tier stops. */
  const restart = (index: number, attempt: number) => {
    if (stopping) return;
    fork(index).then(
      (again) => log(`server process ${index} listens again (pid ${again.process.pid})`),
      (e: unknown) => {
        if (stopping) return;
        const wait = RETRY_BACKOFF_MS[Math.min(attempt, RETRY_BACKOFF_MS.length - 1)]!;
        log(`server process ${index} could not start again (${e instanceof Error ? e.message : String(e)}); trying again in ${wait / 1000} s`);
        setTimeout(() => restart(index, attempt + 1), wait);
      },
    );
  };

  const stopAll = async (why: string | null = null) => {
    if (stopping) return;
    stopping = true;
    failure = why;
    const exits = [...byIndex.values()].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.isDead()) return resolve();
          const timer = setTimeout(() => {
            log(`server process pid ${w.process.pid} did not close in ${STOP_GRACE_MS / 1000} s: killed`);
            w.process.kill('SIGKILL');
          }, STOP_GRACE_MS);
          w.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          // One that does not listen yet holds nothing: it is ended at once.
          if (ready.has(w) && w.isConnected()) w.send({ type: 'stop' } satisfies ToWorker);
          else w.process.kill('SIGKILL');
        }),
    );
    await Promise.all(exits);
    if (ownNamespace && start.topology.namespace) {
      const r = await removeNamespace({ namespace: start.topology.namespace, ...(start.topology.amqpUrl ? { amqpUrl: start.topology.amqpUrl } : {}), ...(start.topology.redisUrl ? { redisUrl: start.topology.redisUrl } : {}) });
      if (r.failed.length) log(`namespace ${start.topology.namespace} not removed from: ${r.failed.join('; ')}`);
    }
    rmSync(sharedDir, { recursive: true, force: true });
    settle();
  };

  // From the start: a signal while the store is prepared or the processes start stops what there is.
  let signalled: string | null = null;
  const onSignal = (signal: string) => {
    signalled = signal;
    log(`${signal}: closing the ${start.processes} server processes`);
    void stopAll();
  };
  const signals = { SIGINT: () => onSignal('SIGINT'), SIGTERM: () => onSignal('SIGTERM'), SIGHUP: () => onSignal('SIGHUP') };
  for (const [signal, handler] of Object.entries(signals)) process.on(signal, handler);
  try {
    try {
      // Once for the tier: schemas migrated and checked against the topology, tables emptied, replicas settled.
      const prepared = await PgTier.open(postgres, start.config, { processes: start.processes, notice: log });
      await prepared.close();
      if (signalled) return null;
      cluster.setupPrimary({ exec: workerEntry, args: [] });
      // The leader first (it answers for the tier), then the others together.
      const first = await fork(0);
      const others = await Promise.all(Array.from({ length: start.processes - 1 }, (_, i) => fork(i + 1)));
      if (signalled) return null;
      onReady(leaderAddress!, readyBanner.get(0) ?? '', [first, ...others].map((w) => w.process.pid ?? 0));
    } catch (e) {
      await stopAll();
      await stopped;
      // Stopped by a signal while starting: a clean stop, not a failure.
      if (signalled) return null;
      throw e;
    }
    await stopped;
    return failure;
  } finally {
    await stopAll();
    await stopped;
    for (const [signal, handler] of Object.entries(signals)) process.off(signal, handler);
  }
}
