// What the dashboard shows of a simulation under way (`scalegram simulate --dashboard`): the model's
// topology and telemetry, read as the result document reads them at the end (sim/model/snapshot.ts),
// so a point plotted during the run is the point the result keeps; the per-route charts from the
// runner's own k6 metrics; and the virtual clock. Its actions are the live admin API's, taken by the
// model at the current virtual time, and the clock's: pause, resume, step, speed.

import { isSimError } from '../sim/engine/errors.ts';
import type { ModelAction } from '../sim/model/model.ts';
import { SIM_EPOCH_MS, telemetrySnapshot, topologyDescription } from '../sim/model/snapshot.ts';
import type { SimulationView } from '../scenarios/runner/virtual-run.ts';
import { MAX_NUMERIC_SPEED, MIN_SPEED, type PaceSpeed, type VirtualPacer } from '../scenarios/runner/virtual-pacer.ts';
import { DashboardInputError, type DashboardAction, type DashboardFrame } from './admin-source.ts';
import { lessonFor } from './lessons.ts';
import { telemetryWindow } from './replay-source.ts';
import { routeSeries } from './routes.ts';

/** The steps the page offers (virtual ms): 1 s, 1 min, 1 h; any step up to a day may be asked. */
export const STEPS_MS = [1000, 60_000, 3_600_000] as const;
const MAX_STEP_MS = 86_400_000;

export class SimulationSource {
  private seq = 0;
  /** Where the next frame's points start (virtual ms): the previous frame's last sample is sent again. */
  private since = 0;
  /** The width of the metric buckets the last frame's per-route points had: when the registry widens them, every point is sent again. */
  private routesBucketMs = 0;

  constructor(
    private readonly view: SimulationView,
    private readonly pacer: VirtualPacer,
  ) {}

  async frame(opts: { whole?: boolean } = {}): Promise<DashboardFrame> {
    await Promise.resolve();
    const m = this.view.model;
    const from = opts.whole ? 0 : this.since;
    const snapshot = telemetrySnapshot(m);
    const telemetry = { ...(telemetryWindow(snapshot, from, Infinity) as Record<string, unknown>), sinceMs: from };
    if (!opts.whole) this.since = Math.max(0, m.sim.now - 2 * m.stepMs);
    const topology = topologyDescription(m, this.view.seed);
    const name = (topology as { name?: string }).name ?? '';
    return {
      seq: opts.whole ? 0 : ++this.seq,
      atMs: Date.now(),
      topology,
      telemetry,
      world: { generation: 1, seed: this.view.seed, name, scenario: this.view.scenario, sim: { ...this.pacer.state(), stepMs: m.stepMs, steps: STEPS_MS } },
      ...this.routes(from, opts.whole ?? false),
      lesson: lessonFor(this.view.scenario),
    };
  }

  /** Per-route points from `from` (all of them once the buckets have widened), of the buckets over by now. */
  private routes(from: number, whole: boolean): { routes: unknown; routesBucketMs: number } {
    const data = this.view.registry.series();
    const widened = data.bucketMs !== this.routesBucketMs;
    if (!whole) this.routesBucketMs = data.bucketMs;
    // Once the simulation is over every bucket is final, the last one included.
    const until = this.pacer.state().done ? Infinity : this.view.model.sim.now;
    return { routes: routeSeries(data, SIM_EPOCH_MS, widened || whole ? 0 : from, until), routesBucketMs: data.bucketMs };
  }

  async act(a: DashboardAction): Promise<{ status: number; body: unknown }> {
    const p = this.pacer;
    try {
      switch (a.action as string) {
        case 'sim.pause':
          p.pause();
          return this.answer(a);
        case 'sim.resume':
          p.resume();
          return this.answer(a);
        case 'sim.step': {
          const ms = value(a, 1, MAX_STEP_MS);
          const reached = await p.step(ms);
          return { status: 200, body: { stepMs: ms, nowMs: reached, state: p.state() } };
        }
        case 'sim.speed': {
          const v = (a as { value?: unknown }).value;
          if (v !== 'max' && typeof v !== 'number') throw new DashboardInputError(`sim.speed needs a number of virtual seconds per real second (${MIN_SPEED} to ${MAX_NUMERIC_SPEED.toLocaleString('en-US')}) or "max" (got ${JSON.stringify(v)})`);
          const speed: PaceSpeed = v;
          p.setSpeed(speed);
          return this.answer(a);
        }
        default: {
          const at = await p.act(this.modelAction(a));
          return { status: 200, body: { action: a.action, atMs: at } };
        }
      }
    } catch (e) {
      if (isSimError(e)) throw new DashboardInputError(e.message);
      throw e;
    }
  }

  private answer(a: DashboardAction): { status: number; body: unknown } {
    return { status: 200, body: { action: a.action, state: this.pacer.state() } };
  }

  /** A button's action as the model's admin action (the scenario's admin step of the same name). */
  private modelAction(a: DashboardAction): ModelAction {
    const m = this.view.model;
    switch (a.action as string) {
      case 'cache.kill':
        return { action: 'cache_kill', node: node(a) };
      case 'cache.revive':
        return { action: 'cache_revive', node: node(a) };
      case 'db.fail':
        return { action: 'db_fail', server: node(a) };
      case 'db.revive':
        return { action: 'db_revive', server: node(a) };
      case 'db.lag':
        return { action: 'db_lag', lagMs: value(a, 0, 600_000) };
      case 'db.service-time':
        return { action: 'db_service_time', serviceTimeMs: value(a, 0, 60_000) };
      case 'shards.split': {
        const name = node(a);
        const server = m.topo.servers.find((s) => s.name === name);
        if (!server) throw new DashboardInputError(`no database server "${name}" (${m.topo.servers.map((s) => s.name).join(', ')})`);
        return { action: 'shard_split', cluster: 'main', server: server.index };
      }
      case 'shards.move':
        return { action: 'shard_move', cluster: 'main', shard: whole(a, 0, 1_000_000), to: node(a) };
      case 'cache.leases':
        return { action: 'cache_leases', enabled: flag(a) };
      case 'celebrity.post':
        return { action: 'celebrity_post', rank: a.value === undefined ? 0 : whole(a, 0, 1_000_000) };
      default:
        throw new DashboardInputError(`unknown action ${JSON.stringify(a.action)}`);
    }
  }
}

function node(a: DashboardAction): string {
  if (typeof a.node !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(a.node)) throw new DashboardInputError(`${a.action} needs a node name (got ${JSON.stringify(a.node)})`);
  return a.node;
}

/** 1 (on) or 0 (off), nothing else. */
function flag(a: DashboardAction): boolean {
  if (a.value !== 0 && a.value !== 1) throw new DashboardInputError(`${a.action} needs a value of 1 (on) or 0 (off) (got ${JSON.stringify(a.value)})`);
  return a.value === 1;
}

function whole(a: DashboardAction, min: number, max: number): number {
  const v = value(a, min, max);
  if (!Number.isInteger(v)) throw new DashboardInputError(`${a.action} needs a whole number (got ${v})`);
  return v;
}

function value(a: DashboardAction, min: number, max: number): number {
  const v = (a as { value?: unknown }).value;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new DashboardInputError(`${a.action} needs a value from ${min} to ${max} (got ${JSON.stringify(v)})`);
  return v;
}
