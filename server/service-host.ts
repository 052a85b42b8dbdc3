// The listening socket of `scalegram serve` (and of the server `scalegram run` starts), and the
// photo service behind it, which POST /_sim/reset replaces with a new one: a generation is a
// topology and the app built on it. The socket, its keep-alive connections and the admin token stay;
// the world (accounts, media, caches, queues, metrics, rate-limit windows) is new.
//
// Each app is built with a server of its own that never listens (Fastify's serverFactory): the
// listening server hands every event its app and connection guard listen for ('request',
// 'clientError', 'timeout', 'connection') to the listeners the current generation put on its own
// server, leaving out Node's internal ones. A reset builds the next generation beside the current
// one, switches in one step (requests already in the old app finish there), and closes the old
// topology once its last request has answered.

import type { FastifyInstance } from 'fastify';
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TopologyConfig } from '../sim/topology-config.ts';
import { buildTopology, type BuildOptions, type Topology } from '../sim/topology.ts';
import { buildApp, type BuildAppOptions } from './app.ts';
import type { ResetRequest, ResetResult, ResetStatus, SetupShare } from './context.ts';
import { newConnectionBook } from './connection-guard.ts';
import { apiError, invalidParam } from './errors.ts';
import { isSimError } from '../sim/engine/errors.ts';

/** The events of the listening server that the current generation's listeners receive. */
const FORWARDED = ['request', 'clientError', 'timeout', 'connection'] as const;
type Forwarded = (typeof FORWARDED)[number];
type Listener = (...args: unknown[]) => void;

/**
 * A part of a segmented run joins the round of resets begun by another part this long before it
 * at most (ms): k6-operator starts every runner's test at once, so their setups begin within
 * seconds of each other; a part later than that is taken for the first of a new run.
 */
export const ROUND_JOIN_MS = 60_000;

export interface ServiceHostOptions {
  config: TopologyConfig;
  seed: number;
  /** How each generation's topology is built, besides its config and seed (a data dir, a real Redis). */
  topology?: Omit<BuildOptions, 'config' | 'seed'>;
  /** How each generation's app is built, besides its topology. */
  app: Omit<BuildAppOptions, 'topology' | 'serverFactory' | 'control' | 'connectionBook'>;
  /** Told of each reset once its generation serves (serve prints it). */
  onReset?: (status: ResetStatus) => void;
  /**
   * Sees every request first; true when it has taken the request and will answer it (a tier's
   * follower hands admin requests to its leader: server/tier/worker.ts).
   */
  intercept?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

/** The parts of one segmented run: one reset, and the setup data its first part shares with the others. */
interface Round {
  readonly id: number;
  readonly key: string;
  readonly parts: Set<string>;
  readonly size: number;
  readonly startedMs: number;
  readonly result: Promise<ResetResult>;
  setup: SetupShare | null;
}

interface Generation {
  readonly number: number;
  /** When it began serving (unix ms). */
  sinceMs: number;
  readonly topology: Topology;
  readonly app: FastifyInstance;
  /** The app's own server, which never listens, and the options it was made with (the connection guard's timeouts). */
  readonly server: Server;
  readonly httpOptions: ServerOptions;
  /** Its listeners, by forwarded event, without Node's internal ones. */
  readonly listeners: Record<Forwarded, Listener[]>;
  inflight: number;
  drained: (() => void) | null;
}

export class ServiceHost {
  private gen!: Generation;
  private listening: Server | null = null;
  /** Resets run one after the other. */
  private chain: Promise<unknown> = Promise.resolve();
  private readonly retiring = new Set<Promise<void>>();
  /** One book of open connections for the guards of every generation (the per-address cap holds across resets). */
  private readonly connectionBook = newConnectionBook();
  /** The resets asked for by the parts of a segmented run: one reset, answered to each part. */
  private round: Round | null = null;
  private rounds = 0;
  private closed = false;

  private constructor(private readonly options: ServiceHostOptions) {}

  /** Builds the first generation (it does not listen yet: see listen()). */
  static async start(options: ServiceHostOptions): Promise<ServiceHost> {
    const host = new ServiceHost(options);
    host.gen = await host.build(options.config, options.seed, 1);
    return host;
  }

  get topology(): Topology {
    return this.gen.topology;
  }
  get app(): FastifyInstance {
    return this.gen.app;
  }
  /** 1 for the service the host started with, one more with each reset. */
  get generation(): number {
    return this.gen.number;
  }
  /** The listening server (null before listen()). */
  get server(): Server | null {
    return this.listening;
  }

  /** Listens on host:port; the server's timeouts are the first generation's connection guard's. */
  async listen(port: number, host: string): Promise<AddressInfo> {
    const g = this.gen;
    const server = createServer(g.httpOptions);
    this.copyTimeouts(g, server);
    for (const event of FORWARDED) {
      server.on(event, (...args: unknown[]) => this.dispatch(event, args));
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.listening = server;
    return server.address() as AddressInfo;
  }

  /**
   * A new world: the topology (default the current one's config) built from the seed (default the
   * current one's), and a new app on it, switched in once built. A failed build leaves the current
   * generation serving.
   */
  reset(request: ResetRequest): Promise<ResetResult> {
    const part = request.part;
    if (part) {
      // One reset per run: the first of its parts to ask resets (and runs the scenario's setup);
      // each other part (its own segment, the same sequence, topology and seed) gets that answer,
      // until every part has asked. A part that asks again, or later than ROUND_JOIN_MS after the
      // round began, begins another round.
      const key = JSON.stringify([part.sequence, request.config ?? null, request.seed ?? null]);
      const size = part.sequence.split(',').length - 1;
      const r = this.round;
      if (r && r.key === key && !r.parts.has(part.segment) && r.parts.size < r.size && Date.now() - r.startedMs < ROUND_JOIN_MS) {
        r.parts.add(part.segment);
        return r.result.then((answer) => ({ ...answer, round: { id: r.id, first: false } }));
      }
      const { part: _, ...whole } = request;
      const result = this.reset(whole);
      const id = ++this.rounds;
      this.round = { id, key, parts: new Set([part.segment]), size, startedMs: Date.now(), result, setup: null };
      // A refused reset (a durable server, a failed build) opens no round.
      result.catch(() => {
        if (this.round?.id === id) this.round = null;
      });
      return result.then((answer) => ({ ...answer, round: { id, first: true } }));
    }
    // The data of a durable server is the user's: a reset would have to discard it.
    if (this.options.topology?.dataDir) return Promise.reject(apiError('SG_HTTP_RESET_REFUSED'));
    // Workers share a named namespace's queues and Redis keys: a new world cannot start empty there.
    if (this.options.topology?.namespace !== undefined) return Promise.reject(apiError('SG_HTTP_RESET_REFUSED', `This server shares the namespace "${this.options.topology.namespace}" with worker processes: a reset would mix two worlds in its queues and Redis keys; start another server with another --namespace instead`));
    const next = this.chain.then(async () => {
      if (this.closed) throw apiError('SG_HTTP_RESET_UNAVAILABLE', 'the server is closing');
      const old = this.gen;
      const config = request.config ?? old.topology.config;
      const seed = request.seed ?? old.topology.seed;
      let gen: Generation;
      try {
        gen = await this.build(config, seed, old.number + 1);
      } catch (e) {
        // A topology that does not fit the real parts this server was given (servers, cache nodes,
        // partitioning) is the reset's bad input, not the server's fault: 400, and the world stays.
        if (isSimError(e, 'SG_ERR_CONFIG_INVALID')) throw invalidParam(`the reset's topology does not fit this server's parts: ${e.message}`);
        throw e;
      }
      if (this.listening) this.copyTimeouts(gen, this.listening);
      gen.sinceMs = Date.now();
      this.gen = gen;
      this.retire(old);
      this.options.onReset?.(this.status());
      return { ...this.status(), topology: gen.topology.describe() };
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** The first part of a round shares what the scenario's setup returned (or how it failed). */
  shareSetup(round: number, share: SetupShare): void {
    const r = this.round;
    if (!r || r.id !== round) throw apiError('SG_HTTP_NOT_FOUND', `no round ${round} of resets is open (the latest is ${this.rounds || 'none'})`);
    r.setup = share;
  }

  /** What the first part of a round shared, or null while its setup runs. */
  sharedSetup(round: number): SetupShare | null {
    const r = this.round;
    if (!r || r.id !== round) throw apiError('SG_HTTP_NOT_FOUND', `no round ${round} of resets is open (the latest is ${this.rounds || 'none'})`);
    return r.setup;
  }

  status(): ResetStatus {
    const g = this.gen;
    return { generation: g.number, sinceMs: g.sinceMs, seed: g.topology.seed, name: g.topology.config.name };
  }

  /** Stops listening, lets requests in flight finish, and closes every generation. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    const server = this.listening;
    if (server) {
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      this.retire(this.gen);
      await Promise.all(this.retiring);
      server.closeAllConnections();
      await done;
    } else {
      this.retire(this.gen);
      await Promise.all(this.retiring);
    }
  }

  private async build(config: TopologyConfig, seed: number, number: number): Promise<Generation> {
    const topology = await buildTopology({ ...this.options.topology, config, seed });
    let server: Server | null = null;
    let httpOptions: ServerOptions = {};
    let native: Record<Forwarded, Set<Listener>> | null = null;
    try {
      const app = await buildApp({
        ...this.options.app,
        topology,
        connectionBook: this.connectionBook,
        control: { reset: (r) => this.reset(r), status: () => this.status(), shareSetup: (round, share) => this.shareSetup(round, share), sharedSetup: (round) => this.sharedSetup(round) },
        serverFactory: (handler, opts) => {
          httpOptions = (opts as { http?: ServerOptions }).http ?? {};
          server = createServer(httpOptions, handler);
          // Node's own listeners (the HTTP parser's 'connection' one) are not the app's.
          native = Object.fromEntries(FORWARDED.map((e) => [e, new Set(server!.listeners(e) as Listener[])])) as Record<Forwarded, Set<Listener>>;
          native.request.clear();
          return server;
        },
      });
      const own = server as Server | null;
      if (!own || !native) throw new Error('the app did not build its server');
      const skip = native as Record<Forwarded, Set<Listener>>;
      const listeners = Object.fromEntries(FORWARDED.map((e) => [e, (own.listeners(e) as Listener[]).filter((l) => !skip[e].has(l))])) as Record<Forwarded, Listener[]>;
      return { number, sinceMs: Date.now(), topology, app, server: own, httpOptions, listeners, inflight: 0, drained: null };
    } catch (e) {
      await topology.close().catch(() => undefined);
      throw e;
    }
  }

  private dispatch(event: Forwarded, args: unknown[]): void {
    const g = this.gen;
    if (event === 'request' && this.options.intercept?.(args[0] as IncomingMessage, args[1] as ServerResponse)) return;
    if (event === 'request') {
      g.inflight++;
      (args[1] as ServerResponse).once('close', () => {
        if (--g.inflight === 0) g.drained?.();
      });
    }
    for (const l of g.listeners[event]) l.apply(g.server, args);
  }

  private copyTimeouts(g: Generation, server: Server): void {
    server.keepAliveTimeout = g.server.keepAliveTimeout;
    server.requestTimeout = g.server.requestTimeout;
    server.headersTimeout = g.server.headersTimeout;
  }

  /**
   * Closes a generation's app and topology once its requests have answered: however long they take
   * (a seeding of a million accounts takes minutes), each is bounded by its own deadlines.
   */
  private retire(g: Generation): void {
    const p = (async () => {
      if (g.inflight > 0) await new Promise<void>((resolve) => (g.drained = resolve));
      await g.app.close().catch(() => undefined);
      await g.topology.close().catch(() => undefined);
    })();
    this.retiring.add(p);
    void p.finally(() => this.retiring.delete(p));
  }
}
