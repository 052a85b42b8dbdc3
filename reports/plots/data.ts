// What the plots draw, read out of a result document on the time axis of scenarios/runner/time-axis.ts
// (seconds since the scenarios started): the routes, the event and scenario markers, the thresholds.

import { parseSelector } from '../../scenarios/runner/k6-metrics.ts';
import type { ResultDocument } from '../../scenarios/runner/results.ts';
import { parseThreshold } from '../../scenarios/runner/thresholds.ts';
import { telemetryX, type Timeline, type XY } from '../../scenarios/runner/time-axis.ts';

/** Values of the `name` tag that have their own series for `metric`, busiest first. */
export function routeNames(r: ResultDocument, metric = 'http_reqs'): string[] {
  return r.series.series
    .filter((s) => s.metric === metric && s.tags.name !== undefined)
    .map((s) => ({ name: s.tags.name!, n: s.count.reduce((a, b) => a + b, 0) }))
    .sort((a, b) => b.n - a.n || a.name.localeCompare(b.name))
    .map((s) => s.name);
}

// ------------------------------------------------------------------------ markers and thresholds

export interface Marker {
  x: number;
  label: string;
  kind: 'event' | 'scenario';
}

/** The topology's events and the start of every scenario that does not start at 0, in time order. */
export function markers(r: ResultDocument, tl: Timeline): Marker[] {
  const out: Marker[] = [];
  for (const s of r.options.scenarios) if (s.startTimeMs > 0) out.push({ x: s.startTimeMs / 1000, label: `▶ ${s.name}`, kind: 'scenario' });
  for (const e of r.telemetry?.events ?? []) out.push({ x: telemetryX(e.t, tl), label: e.label, kind: 'event' });
  return out.sort((a, b) => a.x - b.x || a.label.localeCompare(b.label));
}

export interface ThresholdLine {
  /** The threshold key as written: metric or metric{tag:value}. */
  metric: string;
  name: string;
  tags: Record<string, string>;
  expression: string;
  aggregation: string;
  percentile?: number;
  value: number;
  ok: boolean;
  observed: number | null;
}

/** Every threshold with its parsed selector and expression (ones that do not parse are left out). */
export function thresholdLines(r: ResultDocument): ThresholdLine[] {
  const out: ThresholdLine[] = [];
  for (const t of r.thresholds) {
    try {
      const sel = parseSelector(t.metric);
      const ex = parseThreshold(t.expression);
      out.push({ metric: t.metric, name: sel.name, tags: { ...sel.tags }, expression: t.expression, aggregation: ex.aggregation === 'p' ? `p(${ex.percentile})` : ex.aggregation, ...(ex.percentile !== undefined ? { percentile: ex.percentile } : {}), value: ex.value, ok: t.ok, observed: typeof t.value === 'number' ? t.value : null });
    } catch {
      // A document from another version may hold an expression this one does not parse: listed, not drawn.
    }
  }
  return out;
}

/** Thresholds on `name` whose selector is exactly `tags`. */
export function thresholdsOn(lines: ThresholdLine[], name: string, tags: Record<string, string> = {}): ThresholdLine[] {
  const keys = Object.keys(tags);
  return lines.filter((l) => l.name === name && Object.keys(l.tags).length === keys.length && keys.every((k) => l.tags[k] === tags[k]));
}

/** Keeps at most `max` points, merging neighbours by mean or max (long runs: one pixel per point is plenty). */
export function thin(points: XY[], max: number, how: 'mean' | 'max' = 'mean'): XY[] {
  if (points.length <= max) return points;
  const k = Math.ceil(points.length / max);
  const out: XY[] = [];
  for (let i = 0; i < points.length; i += k) {
    const chunk = points.slice(i, i + k);
    const x = chunk.reduce((a, p) => a + p[0], 0) / chunk.length;
    const y = how === 'max' ? Math.max(...chunk.map((p) => p[1])) : chunk.reduce((a, p) => a + p[1], 0) / chunk.length;
    out.push([x, y]);
  }
  return out;
}
