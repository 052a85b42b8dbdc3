// One server process of `serve --workers N` (node:cluster worker). It builds its own topology on the
// tier's real parts (Postgres, memcached, Redis, RabbitMQ: nothing that matters is in its memory)
// and serves the photo service on the port every process shares.
//
// Process 0, the leader, also answers the admin API (/_sim/*) and /metrics for the whole tier: the
// population registry, the fault log and shard moves live in one place, and the tier's metrics are
// gathered from every process and merged there. The other processes (followers) hand such requests
// to the leader through the primary and send its answer back unchanged; an admin change that each
// process must make in its own memory (memcached leases, the databases' extra service time) is
// applied by the leader, then by every follower.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isSimError, simError } from '../../sim/engine/errors.ts';
import { Metrics, type MetricsState } from '../../sim/observability/metrics.ts';
import type { Topology } from '../../sim/topology.ts';
import { errorBody } from '../envelope.ts';
import type { V1ErrorType } from '../errors.ts';
import { ServiceHost } from '../service-host.ts';
import type { TierView } from '../context.ts';
import type { CarriedAnswer, CarriedRequest, Question, Reply, ToPrimary, ToWorker, WorkerStart } from './messages.ts';

/**
 * How long a follower waits for the leader's answer to a forwarded request (ms): as long as the
 * longest admin work (a seeding of a million accounts takes minutes); a leader that dies meanwhile
 * is answered for at once by the primary (503).
 */
const FORWARD_TIMEOUT_MS = 30 * 60_000;
/** How long the leader waits for the other processes' metrics (ms). */
const GATHER_TIMEOUT_MS = 5_000;
/** How long the leader waits for the other processes to adopt a failover, a restart or a move's step (ms). */
const ADOPT_TIMEOUT_MS = 60_000;
/** How long a follower holds writes to a shard whose move's switch-over the leader began (ms). */
const FREEZE_LIMIT_MS = 120_000;
/** Largest request body a follower forwards (bytes): the app's own body limit. */
const FORWARD_BODY_LIMIT = 1024 * 1024;

/** True for the requests a follower hands to the leader: the admin API and the metrics exposition. */
export function answeredByLeader(url: string): boolean {
  let path = url.split('?', 1)[0]!;
  // As the router sees it: /%5Fsim/faults is /_sim/faults (server/request-path.ts).
  try {
    path = decodeURIComponent(path);
  } catch {
    return false; // malformed: the app answers 400
  }
  return path === '/metrics' || path === '/metrics/' || path === '/_sim' || path.startsWith('/_sim/');
}

function send(message: ToPrimary): void {
  if (process.connected) process.send?.(message);
}

/** Runs this process as a server of the tier; `banner` describes the leader's topology for the primary to print. */
export async function runTierWorker(o: { banner: (t: Topology, redisUrl: string | undefined) => string }): Promise<void> {
  if (!process.send) throw new Error('server/tier/worker.ts runs as a node:cluster worker of scalegram serve --workers');
  // The primary stops the tier: a terminal's Ctrl-C reaches every process of the group, and is left to it.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
  // A primary that died (kill -9) leaves no one to serve for: close (once there is something to close) and exit.
  let stop: () => Promise<void> = async () => process.exit(0);
  process.on('disconnect', () => void stop());
  const start = await new Promise<WorkerStart>((resolve) => {
    const first = (m: ToWorker) => {
      if (m.type !== 'start') return;
      process.off('message', first);
      resolve(m);
    };
    process.on('message', first);
    send({ type: 'hello' });
  });
  const leader = start.index === 0;
  let host: ServiceHost | null = null;
  let bound: AddressInfo | undefined;
  let nextId = 1;
  const pendingForward = new Map<number, (a: CarriedAnswer) => void>();
  const pendingAsk = new Map<number, (replies: ToWorker & { type: 'replies' }) => void>();
  /** Asks every other process (through the primary) and waits for their replies, or for `timeoutMs`. */
  const askOthers = (question: Question, timeoutMs: number) =>
    new Promise<ToWorker & { type: 'replies' }>((resolve) => {
      const id = nextId++;
      pendingAsk.set(id, resolve);
      send({ type: 'ask', id, question, timeoutMs });
    });

  // The tier's metrics: this process's first, then every other's that answered in time.
  const tierView: TierView = {
    processes: start.processes,
    metrics: async () => {
      const t = host!.topology;
      const all = [{ index: start.index, pid: process.pid, metrics: t.metrics.exportState() }];
      let missing: number[] = [];
      if (start.processes > 1) {
        const got = await askOthers({ kind: 'export' }, GATHER_TIMEOUT_MS);
        for (const r of got.replies.sort((a, b) => a.index - b.index)) if (r.reply.kind === 'export') all.push({ index: r.index, pid: r.pid, metrics: r.reply.metrics });
        missing = got.missing.sort((a, b) => a - b);
      }
      const requests = (m: MetricsState) => m.counters.reduce((n, c) => (c.name === 'http_requests' ? n + c.value : n), 0);
      return { metrics: Metrics.fromStates(t.clock, all.map((s) => s.metrics)), answered: all.map((s) => ({ index: s.index, pid: s.pid, requests: requests(s.metrics) })), missing };
    },
    // The leader's app tells of an admin change every process must make (server/tier/admin-rules.ts).
    ...(leader ? { broadcast: (request: CarriedRequest) => send({ type: 'apply', request }) } : {}),
  };

  const notice = (message: string) => send({ type: 'notice', index: start.index, message });
  try {
    host = await ServiceHost.start({
      config: start.config,
      seed: start.seed,
      topology: { ...start.topology, tier: { index: start.index, processes: start.processes }, onNotice: notice, onQueueNotice: notice },
      app: { ...start.app, tier: tierView },
      ...(leader ? {} : { intercept: (req: IncomingMessage, res: ServerResponse) => forwardToLeader(req, res) }),
    });
    bound = await host.listen(start.port, start.host);
  } catch (e) {
    await host?.close().catch(() => undefined);
    // Exit once the message is on its way (an exit at once could drop it).
    const failed: ToPrimary = { type: 'failed', index: start.index, message: e instanceof Error ? e.message : String(e), code: isSimError(e) ? e.code : null };
    if (process.connected) process.send!(failed, undefined, {}, () => process.exit(1));
    else process.exit(1);
    return;
  }
  const h = host;
  send({ type: 'ready', index: start.index, address: { address: bound!.address, family: bound!.family, port: bound!.port }, ...(leader ? { banner: o.banner(h.topology, start.topology.redisUrl) } : {}) });

  /** A follower's admin or /metrics request, answered by the leader. */
  function forwardToLeader(req: IncomingMessage, res: ServerResponse): boolean {
    if (!answeredByLeader(req.url ?? '/')) return false;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= FORWARD_BODY_LIMIT) chunks.push(c);
    });
    req.on('end', () => {
      if (size > FORWARD_BODY_LIMIT) return reply(res, failure(413, 'APIInvalidParametersError', 'The request body is too large'));
      const id = nextId++;
      const timer = setTimeout(() => {
        pendingForward.delete(id);
        reply(res, failure(503, 'APIError', 'The tier’s leader process did not answer in time (SG_ERR_NODE_DOWN)'));
      }, FORWARD_TIMEOUT_MS);
      pendingForward.set(id, (answer) => {
        clearTimeout(timer);
        reply(res, answer);
      });
      send({ type: 'admin', id, request: carry(req, Buffer.concat(chunks)) });
    });
    return true;
  }

  process.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'admin':
        // The leader answers through its own app, as if the request had come to it.
        void inject(h, m.request).then((answer) => send({ type: 'answer', id: m.id, answer }));
        return;
      case 'answer':
        pendingForward.get(m.id)?.(m.answer);
        pendingForward.delete(m.id);
        return;
      case 'ask':
        void answer(m.question).then((reply) => send({ type: 'reply', id: m.id, reply }));
        return;
      case 'replies':
        pendingAsk.get(m.id)?.(m);
        pendingAsk.delete(m.id);
        return;
      case 'apply':
        void inject(h, m.request);
        return;
      case 'stop':
        void stop();
        return;
      default:
    }
  });
  /** Per logical shard frozen for the leader's move: when writes to it go on regardless. */
  const freezeLimits = new Map<number, NodeJS.Timeout>();
  /** A follower's answer to the leader's question. */
  async function answer(q: Question): Promise<Reply> {
    try {
      if (q.kind === 'export') return { kind: 'export', metrics: h.topology.metrics.exportState() };
      if (q.kind === 'move') {
        const db = h.topology.db;
        clearTimeout(freezeLimits.get(q.shard));
        freezeLimits.delete(q.shard);
        if (q.step === 'freeze') {
          // A leader that died mid-switch must not hold this process's writes forever.
          const limit = setTimeout(() => {
            freezeLimits.delete(q.shard);
            db.tierThaw(q.shard);
            notice(`writes to logical shard ${q.shard} went on after ${FREEZE_LIMIT_MS / 1000} s without the end of its move's switch-over`);
          }, FREEZE_LIMIT_MS);
          freezeLimits.set(q.shard, limit);
          await db.tierFreeze(q.group, q.shard);
        } else if (q.step === 'commit') db.tierCommit(q.group, q.shard, q.to, q.arrivedLsn);
        else db.tierThaw(q.shard);
        return { kind: 'done' };
      }
      const r = await h.topology.faults.adoptTierChange(q.change);
      return { kind: 'adopt', writesLost: r.writesLost, complete: r.complete, lostByShard: r.lostByShard };
    } catch (e) {
      return { kind: 'error', message: e instanceof Error ? e.message : String(e) };
    }
  }
  // The leader's failovers and restarts of real servers are adopted by every other process before it answers.
  if (leader && start.processes > 1) {
    h.topology.faults.tierFollowers = async (change) => {
      const got = await askOthers({ kind: 'adopt', change }, ADOPT_TIMEOUT_MS);
      return [
        ...got.replies.map((r) => (r.reply.kind === 'adopt' ? { index: r.index, writesLost: r.reply.writesLost, complete: r.reply.complete, lostByShard: r.reply.lostByShard } : { index: r.index, error: r.reply.kind === 'error' ? r.reply.message : 'no answer' })),
        ...got.missing.map((index) => ({ index, error: `did not answer in ${ADOPT_TIMEOUT_MS / 1000} s` })),
      ].sort((a, b) => a.index - b.index);
    };
  }

  // A shard move's switch-over, made by the leader, is made by every other process too (writes to the shard stop everywhere, then go on at the destination).
  if (leader && start.processes > 1) {
    const everyone = async (question: Question, what: string) => {
      const got = await askOthers(question, ADOPT_TIMEOUT_MS);
      const failed = [...got.replies.filter((r) => r.reply.kind !== 'done').map((r) => `process ${r.index}: ${r.reply.kind === 'error' ? r.reply.message : 'no answer'}`), ...got.missing.map((i) => `process ${i}: no answer in ${ADOPT_TIMEOUT_MS / 1000} s`)];
      if (failed.length > 0) throw simError('SG_ERR_SHARD_MOVE', `${what}: ${failed.join('; ')}`);
    };
    h.topology.db.tierSwitch = {
      freeze: (group, shard) => everyone({ kind: 'move', step: 'freeze', group, shard }, `the other server processes did not stop writing to logical shard ${shard}`),
      commit: (group, shard, to, arrivedLsn) => everyone({ kind: 'move', step: 'commit', group, shard, to, arrivedLsn }, `the other server processes did not all repoint logical shard ${shard}`),
      abort: (group, shard) => everyone({ kind: 'move', step: 'abort', group, shard }, `the other server processes did not all go on writing to logical shard ${shard}`),
    };
  }

  let stopping = false;
  stop = async () => {
    if (stopping) return;
    stopping = true;
    await h.close().catch(() => undefined);
    process.exit(0);
  };
  if (!process.connected) await stop();
}

function carry(req: IncomingMessage, body: Buffer): CarriedRequest {
  return { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: body.toString('base64'), remoteAddress: req.socket.remoteAddress ?? '127.0.0.1' };
}

async function inject(h: ServiceHost, r: CarriedRequest): Promise<CarriedAnswer> {
  try {
    const { 'content-length': _length, 'transfer-encoding': _te, connection: _c, ...headers } = r.headers;
    const res = await h.app.inject({
      method: r.method as 'GET',
      url: r.url,
      headers: headers as Record<string, string>,
      payload: Buffer.from(r.body, 'base64'),
      remoteAddress: r.remoteAddress,
    });
    const { connection: _conn, 'transfer-encoding': _enc, ...out } = res.headers;
    return { status: res.statusCode, headers: out, body: res.rawPayload.toString('base64') };
  } catch (e) {
    return failure(500, 'APIError', `The tier’s leader could not answer: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function failure(status: number, type: V1ErrorType, message: string): CarriedAnswer {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8' }, body: Buffer.from(JSON.stringify(errorBody({ status, type, message, isBug: false }))).toString('base64') };
}

function reply(res: ServerResponse, a: CarriedAnswer): void {
  if (res.headersSent || res.destroyed) return;
  const body = Buffer.from(a.body, 'base64');
  const headers: Record<string, string | string[] | number> = {};
  for (const [k, v] of Object.entries(a.headers)) if (v !== undefined && k !== 'content-length') headers[k] = v;
  headers['content-length'] = body.length;
  res.writeHead(a.status, headers);
  res.end(body);
}
