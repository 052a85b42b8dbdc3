// What the dashboard shows of a live service, read through the service's own admin API (/_sim) with
// its admin token, as any other client reads it: the topology (GET /_sim/topology) and the new
// telemetry points since the last read (GET /_sim/telemetry?since=…), once a second; and the
// actions a lesson needs, each a POST to the admin API. The page never sees the admin token.

import type { SeriesData } from '../scenarios/runner/k6-metrics.ts';
import { lessonFor } from './lessons.ts';
import { routeSeries } from './routes.ts';

/** One update of the page: the topology now, and the telemetry points since the previous frame. */
export interface DashboardFrame {
  /** 1, 2, … for each frame of this source. */
  seq: number;
  /** Unix ms when it was read. */
  atMs: number;
  /** GET /_sim/topology (the diagram). */
  topology: unknown;
  /** GET /_sim/telemetry?since=… (the plots' new points; `events` are faults and admin actions). */
  telemetry: unknown;
  /** GET /_sim/reset (generation, seed, topology name), when the server has it; a simulation's virtual clock (`sim`). */
  world: unknown;
  /** Per route: requests/s and latency percentiles (dashboard/routes.ts), where the load's k6 metrics are at hand. */
  routes?: unknown;
  /** The width of the metric buckets behind `routes` (ms): when it grows, `routes` holds every point again, and the page drops the narrower ones. */
  routesBucketMs?: number;
  /** The scenario's lesson panel (dashboard/lessons.ts), where the scenario is known. */
  lesson?: unknown;
}

/** An action a button asks for. */
export interface DashboardAction {
  /** An ACTIONS name; a simulation also takes sim.pause, sim.resume, sim.step and sim.speed. */
  action: string;
  /** A node's name (cache-2, db-0, db-0-r1), when the action takes one. */
  node?: string;
  /** lagMs, serviceTimeMs, …, when the action takes a number ('max': a simulation's top speed). */
  value?: number | 'max';
}

export const ACTIONS = {
  'cache.kill': { method: 'POST', path: (a: DashboardAction) => `/_sim/cache/${node(a)}/kill`, body: () => ({}) },
  'cache.revive': { method: 'POST', path: (a: DashboardAction) => `/_sim/cache/${node(a)}/revive`, body: () => ({}) },
  'db.fail': { method: 'POST', path: (a: DashboardAction) => `/_sim/db/${node(a)}/fail`, body: () => ({}) },
  'db.revive': { method: 'POST', path: (a: DashboardAction) => `/_sim/db/${node(a)}/revive`, body: () => ({}) },
  'db.lag': { method: 'POST', path: () => '/_sim/db/lag', body: (a: DashboardAction) => ({ ...(a.node ? { node: a.node } : {}), lagMs: num(a, 0, 600_000) }) },
  'db.service-time': { method: 'POST', path: () => '/_sim/db/service-time', body: (a: DashboardAction) => ({ serviceTimeMs: num(a, 0, 60_000) }) },
  'shards.split': { method: 'POST', path: () => '/_sim/shards/split', body: (a: DashboardAction) => ({ cluster: 'main', server: node(a) }) },
  'shards.move': { method: 'POST', path: () => '/_sim/shards/move', body: (a: DashboardAction) => ({ cluster: 'main', shard: num(a, 0, 1_000_000), to: node(a) }) },
  'cache.leases': { method: 'POST', path: () => '/_sim/cache/leases', body: (a: DashboardAction) => ({ enabled: flag(a) }) },
  'celebrity.post': { method: 'POST', path: () => '/_sim/celebrity/post', body: (a: DashboardAction) => (a.value === undefined ? {} : { rank: num(a, 0, 1_000_000) }) },
} as const satisfies Record<string, { method: string; path: (a: DashboardAction) => string; body: (a: DashboardAction) => unknown }>;

export type ActionName = keyof typeof ACTIONS;

export class DashboardInputError extends Error {}

function node(a: DashboardAction): string {
  if (typeof a.node !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(a.node)) throw new DashboardInputError(`${a.action} needs a node name (got ${JSON.stringify(a.node)})`);
  return a.node;
}

/** 1 (on) or 0 (off), nothing else. */
function flag(a: DashboardAction): boolean {
  if (a.value !== 0 && a.value !== 1) throw new DashboardInputError(`${a.action} needs a value of 1 (on) or 0 (off) (got ${JSON.stringify(a.value)})`);
  return a.value === 1;
}

function num(a: DashboardAction, min: number, max: number): number {
  if (typeof a.value !== 'number' || !Number.isFinite(a.value) || a.value < min || a.value > max) throw new DashboardInputError(`${a.action} needs a value from ${min} to ${max} (got ${JSON.stringify(a.value)})`);
  return a.value;
}

export class AdminApiSource {
  private seq = 0;
  /** Where the next read of the telemetry starts (ms since the topology started), and the world it was read from. */
  private since = 0;
  private generation: unknown = null;
  private routesBucketMs = 0;

  constructor(
    private readonly baseUrl: string,
    private readonly adminToken: string,
    /** Where the load comes from this process (`scalegram run`): its k6 metrics (per-route charts) and its scenario (the lesson). */
    private readonly load: { series: () => SeriesData; scenario: string } | null = null,
  ) {}

  private async get(path: string): Promise<unknown> {
    const res = await fetch(this.baseUrl + path, { headers: { authorization: `Bearer ${this.adminToken}` } });
    if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${(await res.text()).slice(0, 200)}`);
    return res.json();
  }

  /**
   * The next frame: the topology, and the telemetry since the previous frame (all of it after a
   * reset: a new world's clock starts again). `whole`: all of the telemetry so far, for a viewer
   * that has just arrived, leaving the others' next frame as it would be.
   */
  async frame(opts: { whole?: boolean } = {}): Promise<DashboardFrame> {
    const world = await this.get('/_sim/reset').catch(() => null);
    const generation = (world as { generation?: unknown } | null)?.generation ?? null;
    if (generation !== this.generation && !opts.whole) {
      this.generation = generation;
      this.since = 0;
    }
    const since = opts.whole ? 0 : this.since;
    const [topology, telemetry] = await Promise.all([this.get('/_sim/topology'), this.get(`/_sim/telemetry?since=${since}`)]);
    // From the start of the second still filling: its point is sent again, whole, next time.
    const { nowMs, bucketMs, startMs } = telemetry as { nowMs: number; bucketMs: number; startMs: number };
    if (!opts.whole) this.since = Math.floor(nowMs / bucketMs) * bucketMs;
    // The load's own metrics, on the topology's time axis (both clocks are Unix ms).
    const load = this.load ? this.loadPart(startMs, since, nowMs, opts.whole ?? false) : {};
    return { seq: opts.whole ? 0 : ++this.seq, atMs: Date.now(), topology, telemetry, world, ...load };
  }

  /** The load's per-route points (all of them once its metric buckets have widened) and its lesson. */
  private loadPart(startMs: number, since: number, nowMs: number, whole: boolean): { routes: unknown; routesBucketMs: number; lesson: unknown } {
    const data = this.load!.series();
    const widened = data.bucketMs !== this.routesBucketMs;
    if (!whole) this.routesBucketMs = data.bucketMs;
    return { routes: routeSeries(data, startMs, widened || whole ? 0 : Math.max(0, since - 2 * data.bucketMs), nowMs), routesBucketMs: data.bucketMs, lesson: lessonFor(this.load!.scenario) };
  }

  /** Carries an action out through the admin API; answers what the API answered. */
  async act(a: DashboardAction): Promise<{ status: number; body: unknown }> {
    const spec = (ACTIONS as Record<string, (typeof ACTIONS)[ActionName]>)[a.action];
    if (!spec) throw new DashboardInputError(`unknown action ${JSON.stringify(a.action)} (known: ${Object.keys(ACTIONS).join(', ')})`);
    const res = await fetch(this.baseUrl + spec.path(a), {
      method: spec.method,
      headers: { authorization: `Bearer ${this.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(spec.body(a)),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: kept as text
    }
    return { status: res.status, body };
  }
}
