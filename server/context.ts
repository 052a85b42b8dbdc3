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
  telemetry(options?: TelemetryOptions): TelemetrySnapshot;
  scalars(): TelemetryScalars;
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
