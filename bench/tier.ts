// The app tier on the real stack: `scalegram serve --stack DIR --workers N` as a child in a process
// group of its own, for N = 1, 2, 2, 1 (a drift in the machine's load falls on both sides), each
// start on the same population seeded alike (the tier empties the tables at its start), warmed
// (every reader's feed read once), then GET /v1/users/self/feed over many readers' tokens and
// POST /v1/media (a 640×640 JPEG) under autocannon. The stack: the one in --stack-dir, else the
// one up in the default directory, else one brought up in a temp directory for the run and taken
// down at its end.

import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { randomSecret } from '../sim/domain/credentials.ts';
import { DEFAULT_STACK_DIR, postgresProblem, readStack, stackDown, stackStatus, stackUp, type StackState } from '../sim/backends/local-stack.ts';
import { probeAmqp, probeMemcached, probeRedis, realStack } from '../sim/backends/probe.ts';
import { benchPhoto, measure, multipart, type HttpRow } from './http.ts';

const BIN = fileURLToPath(new URL('../bin/scalegram.mjs', import.meta.url));

/** Server processes of each start, in order: the two sides alternate so a drift falls on both. */
export const TIER_ORDER = [1, 2, 2, 1] as const;
/** The population every start is seeded with (POST /_sim/seed; the same seed each time). */
export const TIER_POPULATION = { users: 2000, avgFollows: 20, mediaPerUser: 2, sample: 3, seed: 1 } as const;
/** Readers whose tokens the feed requests rotate over (evenly spaced over the population). */
export const TIER_READERS = 500;
/** Warm-up of the uploads before they are measured (s). */
const WARM_S = 2;
/** How long a tier may take to listen, and to stop, before it is given up (ms). */
const START_TIMEOUT_MS = 300_000;
const STOP_TIMEOUT_MS = 60_000;

export interface TierRound {
  processes: number;
  feed: HttpRow;
  upload: HttpRow;
  /** Requests each server process answered in this start, warm-up and seeding included (by index). */
  answered: number[];
}

export interface TierStack {
  dir: string;
  /** Brought up by the bench for this run (and taken down at its end). */
  own: boolean;
  primaries: number;
  /** Postgres clusters: the primaries and their replicas (count). */
  postgresClusters: number;
  memcached: number;
}

export type TierBench =
  | { outcome: 'skipped'; reason: string }
  | { outcome: 'failed'; reason: string; stack?: TierStack; rounds: TierRound[]; teardown?: string }
  | { outcome: 'done'; stack: TierStack; rounds: TierRound[]; readers: number; feedConnections: number; uploadConnections: number; teardown?: string };

export interface TierBenchOptions {
  /** --stack-dir: this stack, which must be up. */
  stackDir?: string;
  durationS: number;
  connections: number;
  progress: (line: string) => void;
}

/** Why `state` cannot carry a tier (no Postgres, a part that does not answer), or null. */
async function stackProblem(state: StackState): Promise<string | null> {
  if (!state.postgres) return `it has no Postgres (${state.postgresSkipped ?? 'none started'}), and serve --workers keeps its store there`;
  const { parts } = await stackStatus(state.dir);
  const down = parts.filter((p) => !p.up);
  return down.length === 0 ? null : down.map((p) => `${p.part} ${p.name} (${p.address}) does not answer: ${p.detail}`).join('; ');
}

/** Why this machine cannot bring a stack up (no cluster tools or root, no memcached, Redis or RabbitMQ not answering), or null. */
async function machineProblem(): Promise<string | null> {
  const { redisUrl, amqpUrl } = realStack(process.env);
  return postgresProblem() ?? (await probeMemcached('local')) ?? (await probeRedis(redisUrl)) ?? (await probeAmqp(amqpUrl));
}

function describeStack(state: StackState, own: boolean): TierStack {
  const servers = state.postgres?.servers ?? [];
  return { dir: state.dir, own, primaries: servers.length, postgresClusters: servers.reduce((n, s) => n + 1 + s.replicas.length, 0), memcached: state.memcached.length };
}

interface Tier {
  /** The tier's URL once every process listens; rejects (the tier stopped) if it exits or times out first. */
  ready: Promise<string>;
  /** SIGTERM to the tier's primary, then waits for it to exit (the whole group is killed if it does not in time). Once. */
  stop(): Promise<void>;
}

/** `scalegram serve --stack DIR --workers N` in a process group of its own; `stop` can be called before it listens. */
function spawnTier(stackDir: string, processes: number, adminToken: string, progress: (line: string) => void): Tier {
  const args = ['serve', '--stack', stackDir, '--workers', String(processes), '--port', '0', '--seed', '1', '--admin-token', adminToken, '--rate-limit', '0', '--max-connections-per-address', '0', '--idle-timeout-ms', '65000'];
  // Its own group: a Ctrl-C at the terminal reaches the bench alone, which stops the tier before it
  // takes a stack down; whatever is left of the group can be killed as one.
  const child = spawn(process.execPath, [BIN, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    log.push(line);
    if (log.length > 40) log.shift();
  });
  const out = createInterface({ input: child.stdout! });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<void> | null = null;
  // Once: a second SIGTERM would find the tier's handler spent and kill its primary outright.
  const stop = () =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => {
          progress(`the tier (pid ${child.pid}) did not stop in ${STOP_TIMEOUT_MS / 1000} s: killing its process group`);
          killGroup(child, 'SIGKILL');
        }, STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      // The primary waits for its server processes; anything of the group still there is a leftover.
      if (groupAlive(child)) {
        killGroup(child, 'SIGKILL');
        for (let i = 0; i < 50 && groupAlive(child); i++) await new Promise((r) => setTimeout(r, 100));
      }
    })());
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve --workers ${processes} did not listen within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    out.on('line', (line) => {
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`serve --workers ${processes} exited (${signal ?? `exit code ${code}`}) before it listened`));
    });
  });
  const ready = listening.catch(async (e: unknown) => {
    await stop();
    throw new Error(`${(e as Error).message}; its last lines:\n${log.map((l) => `    ${l}`).join('\n')}`, { cause: e });
  });
  return { ready, stop };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // The group is gone already.
  }
}

function groupAlive(child: ChildProcess): boolean {
  try {
    process.kill(-child.pid!, 0);
    return true;
  } catch {
    return false;
  }
}

async function admin<T>(base: string, token: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await fetch(base + path, {
    method,
    signal: AbortSignal.timeout(300_000),
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** One start: seeded, the roster read, each route warmed then measured; the requests each process answered. */
async function measureRound(base: string, adminToken: string, processes: number, photo: Buffer, o: TierBenchOptions): Promise<TierRound> {
  const label = `${processes} process${processes === 1 ? '' : 'es'}`;
  const t0 = performance.now();
  const seeded = await admin<{ users: number; follows: number; media: number }>(base, adminToken, 'POST', '/_sim/seed', TIER_POPULATION);
  o.progress(`${label}: seeded ${seeded.users.toLocaleString('en')} accounts, ${seeded.follows.toLocaleString('en')} follows, ${seeded.media.toLocaleString('en')} photos in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const roster = await admin<{ users: Array<{ access_token: string }> }>(base, adminToken, 'GET', `/_sim/users?limit=${TIER_READERS}&stride=${Math.floor(TIER_POPULATION.users / TIER_READERS)}`);
  const tokens = roster.users.map((u) => u.access_token);
  if (tokens.length === 0) throw new Error('GET /_sim/users gave no accounts after the seeding');
  let i = 0;
  const feedOpts: autocannon.Options = { url: base, duration: o.durationS, connections: o.connections, requests: [{ setupRequest: (req) => ({ ...req, path: `/v1/users/self/feed?access_token=${tokens[i++ % tokens.length]}` }) }] };
  const { body, contentType } = multipart(photo);
  let j = 0;
  // Each upload by the next reader: its photo lands on that reader's shard, its fan-out to its followers.
  const uploadOpts: autocannon.Options = {
    url: base, method: 'POST', headers: { 'content-type': contentType }, body, duration: o.durationS, connections: Math.min(o.connections, 8),
    requests: [{ method: 'POST', setupRequest: (req) => ({ ...req, path: `/v1/media?access_token=${tokens[j++ % tokens.length]}` }) }],
  };
  // Every reader's feed once: the tier starts on an empty cache (a namespace of its own each start),
  // and what is measured is the warm path, as in the service's own feed row. A timed warm-up of a
  // few seconds reaches only a fraction of the readers on a 2-core machine.
  o.progress(`${label}: warming up: every reader's feed once (${tokens.length} requests)`);
  await autocannon({ url: base, connections: o.connections, amount: tokens.length, requests: feedOpts.requests! });
  const feed = await measure(`GET /v1/users/self/feed, ${label}`, feedOpts);
  o.progress(`${label}: warming up the uploads (${WARM_S} s)`);
  await autocannon({ ...uploadOpts, duration: WARM_S });
  const upload = await measure(`POST /v1/media (640×640 JPEG), ${label}`, uploadOpts);
  const tier = await admin<{ processes: number; answered: Array<{ index: number; requests: number }>; missing: number[] }>(base, adminToken, 'GET', '/_sim/tier');
  if (tier.processes !== processes || tier.missing.length > 0) throw new Error(`GET /_sim/tier: ${tier.processes} processes, ${tier.missing.length} not answering (${processes} started)`);
  const answered = Array.from({ length: processes }, (_, k) => tier.answered.find((a) => a.index === k)?.requests ?? 0);
  return { processes, feed: { ...feed, name: 'GET /v1/users/self/feed' }, upload: { ...upload, name: 'POST /v1/media (640×640 JPEG)' }, answered };
}

/**
 * The tier section of `scalegram bench`. Skipped (with why) when no stack is given or up and this
 * machine cannot bring one up; failed when the given stack is not whole, or a tier does not start
 * or seed. A stack it brought up is taken down at the end, also on a failure or a SIGINT/SIGTERM
 * (after which the signal is raised again).
 */
export async function benchTier(o: TierBenchOptions): Promise<TierBench> {
  let state: StackState | null = null;
  let own = false;
  if (o.stackDir !== undefined) {
    state = readStack(o.stackDir);
    if (!state) return { outcome: 'failed', reason: `no stack in ${o.stackDir}`, rounds: [] };
    const problem = await stackProblem(state);
    if (problem) return { outcome: 'failed', reason: `the stack in ${state.dir}: ${problem}`, rounds: [] };
  } else {
    let up: StackState | null = null;
    try {
      up = readStack(DEFAULT_STACK_DIR);
    } catch (e) {
      o.progress(`not using ${DEFAULT_STACK_DIR}: ${(e as Error).message}`);
    }
    const problem = up ? await stackProblem(up) : null;
    if (up && problem) o.progress(`not using the stack in ${up.dir}: ${problem}`);
    if (up && !problem) state = up;
    else {
      const why = await machineProblem();
      if (why) return { outcome: 'skipped', reason: `no stack up in ${DEFAULT_STACK_DIR} or given with --stack-dir, and this machine cannot bring one up: ${why}` };
      own = true;
    }
  }

  const ownDir = own ? mkdtempSync(join(tmpdir(), 'scalegram-bench-stack-')) : null;
  let tier: Tier | null = null;
  let bringingUp: Promise<StackState> | null = null;
  let teardown: Promise<string | undefined> | null = null;
  const takeDown = () =>
    (teardown ??= (async () => {
      await tier?.stop();
      tier = null;
      if (!ownDir) return undefined;
      // A signal during stack up: it goes on between its steps, so it is let finish (or fail) first;
      // a cluster made after the teardown looked would be left behind.
      await bringingUp?.catch(() => undefined);
      o.progress(`taking the stack in ${ownDir} down`);
      try {
        await stackDown(ownDir, (line) => o.progress(`stack: ${line}`));
        rmSync(ownDir, { recursive: true, force: true });
        return undefined;
      } catch (e) {
        return `the stack in ${ownDir} was not all taken down (${(e as Error).message}); scalegram stack down --dir ${ownDir} finishes it`;
      }
    })());
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = true;
    o.progress(`${signal}: stopping the tier${ownDir ? ' and taking the stack down' : ''}`);
    void takeDown().finally(() => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.kill(process.pid, signal);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const rounds: TierRound[] = [];
  let stack: TierStack | undefined;
  let failure: string | null = null;
  let teardownProblem: string | undefined;
  try {
    if (ownDir) {
      o.progress(`bringing a stack up in ${ownDir} for this run (about a minute)`);
      const { redisUrl, amqpUrl } = realStack(process.env);
      bringingUp = stackUp({ dir: ownDir, layout: 'small', postgres: true, redisUrl, amqpUrl, progress: (line) => o.progress(`stack: ${line}`) });
      state = await bringingUp;
    }
    // Nothing new is started once a signal has begun the teardown.
    const goOn = () => {
      if (interrupted) throw new Error('interrupted');
    };
    goOn();
    stack = describeStack(state!, own);
    const photo = await benchPhoto();
    const adminToken = randomSecret();
    for (const processes of TIER_ORDER) {
      goOn();
      o.progress(`serve --stack ${stack.dir} --workers ${processes} …`);
      const t0 = performance.now();
      tier = spawnTier(stack.dir, processes, adminToken, o.progress);
      const url = await tier.ready;
      o.progress(`listening after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      rounds.push(await measureRound(url, adminToken, processes, photo, o));
      const t1 = performance.now();
      await tier.stop();
      tier = null;
      o.progress(`the tier of ${processes} stopped in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    }
  } catch (e) {
    failure = (e as Error).message;
  } finally {
    teardownProblem = await takeDown();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const extra = teardownProblem ? { teardown: teardownProblem } : {};
  if (failure !== null) return { outcome: 'failed', reason: failure, ...(stack ? { stack } : {}), rounds, ...extra };
  return { outcome: 'done', stack: stack!, rounds, readers: TIER_READERS, feedConnections: o.connections, uploadConnections: Math.min(o.connections, 8), ...extra };
}
