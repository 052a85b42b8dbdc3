// A finished run or simulation, replayed in the dashboard from its result.json: the telemetry it
// recorded is shown up to a cursor that moves `speed` seconds of the run per second of replay, so
// the charts and the event marks build up as they did during the run; the diagram shows the
// topology as the run left it. A replay cannot act: its buttons are hidden.

import type { SeriesData } from '../scenarios/runner/k6-metrics.ts';
import type { DashboardFrame } from './admin-source.ts';
import { lessonFor } from './lessons.ts';
import { routeSeries } from './routes.ts';

export interface RecordedRun {
  /** As GET /_sim/topology answered at the end. */
  topology: unknown;
  /** As GET /_sim/telemetry answered at the end (points [ms since start, value]). */
  telemetry: { nowMs: number; events: Array<{ t: number }> } & Record<string, unknown>;
  seed: number;
  scenario: string;
  /** The run's k6 metric series (result.json `series`), for the per-route charts, when it has them. */
  series?: SeriesData;
}

/** A copy of `v` without the points (`[t, value]` pairs and objects with `t`) after `untilMs`. */
export function telemetryUntil(v: unknown, untilMs: number): unknown {
  return telemetryWindow(v, -Infinity, untilMs);
}

/** A copy of `v` with only the points (`[t, value]` pairs and objects with `t`) from `fromMs` to `untilMs`. */
export function telemetryWindow(v: unknown, fromMs: number, untilMs: number): unknown {
  const keep = (t: number) => t >= fromMs && t <= untilMs;
  if (Array.isArray(v)) {
    const isPoints = v.length > 0 && v.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'number');
    if (isPoints) return v.filter((p) => keep((p as [number, unknown])[0]));
    const isEvents = v.length > 0 && v.every((e) => e !== null && typeof e === 'object' && typeof (e as { t?: unknown }).t === 'number');
    if (isEvents) return v.filter((e) => keep((e as { t: number }).t));
    return v.map((x) => telemetryWindow(x, fromMs, untilMs));
  }
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, telemetryWindow(x, fromMs, untilMs)]));
  return v;
}

export class ReplaySource {
  private seq = 0;
  /** When the replay began: when the first viewer arrived (Date.now() ms; null before). */
  private startedAt: number | null = null;

  constructor(
    private readonly run: RecordedRun,
    /** Seconds of the run per second of replay. */
    private readonly speed: number,
  ) {}

  /** Where the replay is: ms since the run's topology started. */
  cursorMs(): number {
    if (this.startedAt === null) return 0;
    return Math.min(this.run.telemetry.nowMs, (Date.now() - this.startedAt) * this.speed);
  }

  async frame(opts: { whole?: boolean } = {}): Promise<DashboardFrame> {
    await Promise.resolve();
    // The replay starts with its first viewer, not with the command.
    this.startedAt ??= Date.now();
    const at = this.cursorMs();
    const telemetry = { ...(telemetryUntil(this.run.telemetry, at) as Record<string, unknown>), nowMs: at };
    const name = (this.run.topology as { name?: string }).name ?? '';
    return {
      seq: opts.whole ? 0 : ++this.seq,
      atMs: Date.now(),
      topology: this.run.topology,
      telemetry,
      world: { generation: 1, seed: this.run.seed, name, replay: { scenario: this.run.scenario, speed: this.speed, atMs: at, endMs: this.run.telemetry.nowMs } },
      ...(this.run.series ? { routes: routeSeries(this.run.series, (this.run.telemetry as { startMs?: number }).startMs ?? this.run.series.startMs, 0, at), routesBucketMs: this.run.series.bucketMs } : {}),
      lesson: lessonFor(this.run.scenario),
    };
  }
}
