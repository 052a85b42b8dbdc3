// What every route module receives: the topology (through its Store), the resolved server options
// and the shared helpers that turn records into v1 objects for one request.

import type { FastifyRequest } from 'fastify';
import type { Clock } from '../sim/engine/clock.ts';
import type { Faults } from '../sim/faults.ts';
import type { Metrics } from '../sim/observability/metrics.ts';
import type { PopulationRoster } from '../sim/workload/population.ts';
import type { ClientRegistry, Store, SubscriptionRegistry } from '../sim/domain/store.ts';
import type { TelemetryOptions, TelemetryScalars, TelemetrySnapshot } from '../sim/observability/telemetry.ts';
import type { TopologyConfig } from '../sim/topology-config.ts';
import type { WorkMeter } from '../sim/observability/work-meter.ts';
import type { Redis } from 'ioredis';
import type { CarriedRequest } from './tier/messages.ts';

/**
 * The members of sim/topology.ts's `Topology` the server uses. Declared here so the server depends
 * on a shape, not on how a topology is built; the real `Topology` fits it structurally.
 */
export interface ServerTopology {
  readonly config: TopologyConfig;
  readonly seed: number;
  readonly clock: Clock;
  readonly metrics: Metrics;
  /** The work each route does, counted by the topology's parts (sim/observability/work-meter.ts). */
  readonly work: WorkMeter;
  readonly store: Store;
  /** Registered API clients. */
  readonly clients: ClientRegistry;
  /** Real-time subscriptions. */
  readonly subscriptions: SubscriptionRegistry;
  describe(): unknown;
  idle(): Promise<void>;
  close(): Promise<void>;
  /** The /_sim admin operations: fault injection, seeding, telemetry. */
  readonly faults: Faults;
  readonly population: PopulationRoster;
  /** With `metrics`: computed from those (a tier's merged metrics) instead of the topology's own. */
  telemetry(options?: TelemetryOptions, metrics?: Metrics): TelemetrySnapshot;
  scalars(metrics?: Metrics): TelemetryScalars;
  /**
   * The real Redis the deployment shares (its client and this deployment's key prefix), or null on
   * the in-process Redis: state every server process must see alike (rate limits) lives there.
   */
  sharedRedis(): { client: Redis; keyPrefix: string } | null;
}

/** POST /_sim/reset: a new world from this config and seed (each defaults to the current one's). */
export interface ResetRequest {
  config?: TopologyConfig;
  seed?: number;
  /**
   * The caller is one part of a run split by k6 execution segments (k6-operator's runner pods, each
   * of which runs setup): the first part of a round to ask resets, the other parts of the same run
   * get that reset's answer (server/service-host.ts).
   */
  part?: { segment: string; sequence: string };
}

/** GET /_sim/reset: which world the server is in, and since when. */
export interface ResetStatus {
  /** 1 for the service the server started with, one more with each reset. */
  generation: number;
  /** When this generation began serving (unix ms, the server's clock). */
  sinceMs: number;
  seed: number;
  /** The topology's name. */
  name: string;
}

export interface ResetResult extends ResetStatus {
  /** The new topology, as GET /_sim/topology describes it. */
  topology: unknown;
  /** For a part of a segmented run: its round, and whether this part is the one that reset (and runs setup). */
  round?: { id: number; first: boolean };
}

/** What a segmented run's first part shares with the others: its setup's data, or its error. */
export type SetupShare = { data: unknown } | { error: string };

/** What the owner of the listening server (server/service-host.ts) lets the admin API do. */
export interface ServiceControl {
  reset(request: ResetRequest): Promise<ResetResult>;
  status(): ResetStatus;
  shareSetup(round: number, share: SetupShare): void;
  sharedSetup(round: number): SetupShare | null;
}

/** The tier of server processes this app is one of (serve --workers N; server/tier/). */
export interface TierView {
  /** Server processes in the tier (N). */
  readonly processes: number;
  /**
   * The tier's metrics, every process's merged; `answered` the processes whose metrics are in
   * them (with the requests each answered), `missing` those that did not answer in time.
   */
  metrics(): Promise<{ metrics: Metrics; answered: Array<{ index: number; pid: number; requests: number }>; missing: number[] }>;
  /** The leader's: tells every other process to apply an admin change it has made (server/tier/admin-rules.ts). */
  broadcast?(request: CarriedRequest): void;
}

export interface ServerContext {
  readonly topology: ServerTopology;
  readonly store: Store;
  /** Absolute base for links without a trailing slash, or null to derive it from each request. */
  readonly publicUrl: string | null;
  /** Requests per token (or client IP) per hour; 0 = unlimited. */
  readonly rateLimitPerHour: number;
  /** ms at which the app was built, on the topology clock (for /healthz uptime). */
  readonly startedMs: number;
  /** Replaces the service with a new one (server/service-host.ts); null when the app was built alone (tests, embedders). */
  readonly control: ServiceControl | null;
  /** The tier this process serves in, or null when it serves alone. */
  readonly tier: TierView | null;
}

const HOST_RE = /^[A-Za-z0-9.\-_:[\]]{1,255}$/;

/**
 * The absolute base of links in answers to `request`: the configured public URL, else the
 * request's protocol and Host (a Host header that is not a plain host[:port] falls back to localhost,
 * so a forged header cannot inject markup into links).
 */
export function baseUrl(ctx: ServerContext, request: FastifyRequest): string {
  if (ctx.publicUrl !== null) return ctx.publicUrl;
  const host = request.host;
  return `${request.protocol}://${host && HOST_RE.test(host) ? host : 'localhost'}`;
}
