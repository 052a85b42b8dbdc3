// What the plots draw, read out of a result document onto one time axis: seconds since the
// scenarios started (setup runs before 0). The runner's series and the topology's telemetry each
// count from their own start (both unix ms), so every point is shifted onto that axis here, once.

import { parseSelector, TREND_UNITS_PER_VALUE, type SeriesEntry } from '../../scenarios/runner/k6-metrics.ts';
import { parseThreshold } from '../../scenarios/runner/thresholds.ts';
import { decodeHistogram } from '../../sim/metrics.ts';
import type { ResultDocument } from '../load-result.ts';

/** [seconds since the scenarios started, value] */
export type XY = [number, number];

export interface Timeline {
  /** Unix ms of x = 0: when the scenarios started. */
  zeroMs: number;
  /** How zero was found (see timeline()). */
  zeroFrom: 'telemetry' | 'metrics';
  /** First and last second with data (the first may be negative: setup). */
  startS: number;
  endS: number;
  /** Unix ms at which the runner's series and the telemetry start. */
  seriesStartMs: number;
  telemetryStartMs: number | null;
  /** Unix ms at which the runner's series and the telemetry were taken (end of their last bucket). */
  seriesEndMs: number;
  telemetryEndMs: number | null;
}

/**
 * result.json does not record when the scenarios started, only the duration from then to the end
 * (durationMs, taken right after the final telemetry snapshot). So zero = the snapshot's time minus
 * the duration: within the few ms the snapshot takes. Without telemetry, the metric snapshot's time
 * (taken when the result was written, slightly later) stands in.
 */
export function timeline(r: ResultDocument): Timeline {
  const tel = r.telemetry;
  const seriesStartMs = r.series.startMs;
  const seriesEndMs = r.metrics.nowMs;
  let zeroMs: number;
  let zeroFrom: Timeline['zeroFrom'];
  if (tel && Number.isFinite(tel.startMs) && Number.isFinite(tel.nowMs)) {
    zeroMs = tel.startMs + tel.nowMs - r.durationMs;
    zeroFrom = 'telemetry';
  } else {
    zeroMs = r.metrics.nowMs - r.durationMs;
    zeroFrom = 'metrics';
  }
  zeroMs = Math.max(zeroMs, seriesStartMs);
  const telemetryStartMs = tel ? tel.startMs : null;
  const telemetryEndMs = tel ? tel.startMs + tel.nowMs : null;
  const startS = (Math.min(seriesStartMs, telemetryStartMs ?? seriesStartMs) - zeroMs) / 1000;
  const endS = (Math.max(seriesEndMs, telemetryEndMs ?? seriesEndMs) - zeroMs) / 1000;
  return { zeroMs, zeroFrom, startS, endS, seriesStartMs, telemetryStartMs, seriesEndMs, telemetryEndMs };
}

// ------------------------------------------------------------------------------ runner series

/** One bucket of the runner's series on the axis: its middle, and its real width (the last is partial). */
export interface Bucket {
  x: number;
  widthS: number;
}

export function seriesBuckets(r: ResultDocument, tl: Timeline): Bucket[] {
  const { bucketMs, buckets } = r.series;
  const out: Bucket[] = [];
  for (let i = 0; i < buckets; i++) {
    const from = tl.seriesStartMs + i * bucketMs;
    const to = Math.min(from + bucketMs, Math.max(tl.seriesEndMs, from + 1));
    out.push({ x: ((from + to) / 2 - tl.zeroMs) / 1000, widthS: (to - from) / 1000 });
  }
  return out;
}

/** The series of `metric` narrowed to exactly `tags` ({} for the whole metric). */
export function findSeries(r: ResultDocument, metric: string, tags: Record<string, string> = {}): SeriesEntry | undefined {
  const keys = Object.keys(tags);
  return r.series.series.find((s) => s.metric === metric && Object.keys(s.tags).length === keys.length && keys.every((k) => s.tags[k] === tags[k]));
}

/** Values of the `name` tag that have their own series for `metric`, busiest first. */
export function routeNames(r: ResultDocument, metric = 'http_reqs'): string[] {
  return r.series.series
    .filter((s) => s.metric === metric && s.tags.name !== undefined)
    .map((s) => ({ name: s.tags.name!, n: s.count.reduce((a, b) => a + b, 0) }))
    .sort((a, b) => b.n - a.n || a.name.localeCompare(b.name))
    .map((s) => s.name);
}

/** A statistic of each bucket of one series, for buckets with samples. */
export type BucketStat = 'count/s' | 'sum/s' | 'mean' | 'min' | 'max' | 'last' | 'ratio' | 'cumsum' | { p: number };

// A latency plot asks each bucket for three percentiles: decode each histogram once.
const decoded = new Map<string, ReturnType<typeof decodeHistogram>>();
function histogram(encoded: string): ReturnType<typeof decodeHistogram> {
  let h = decoded.get(encoded);
  if (!h) {
    if (decoded.size >= 4096) decoded.clear();
    h = decodeHistogram(encoded);
    decoded.set(encoded, h);
  }
  return h;
}

export function bucketValues(s: SeriesEntry, buckets: Bucket[], stat: BucketStat): XY[] {
  const out: XY[] = [];
  let running = 0;
  for (let i = 0; i < buckets.length && i < s.count.length; i++) {
    const b = buckets[i]!;
    const n = s.count[i] ?? 0;
    const sum = s.sum[i] ?? 0;
    running += sum;
    if (stat === 'count/s') {
      out.push([b.x, n / b.widthS]);
      continue;
    }
    if (stat === 'sum/s') {
      out.push([b.x, sum / b.widthS]);
      continue;
    }
    if (stat === 'cumsum') {
      out.push([b.x, running]);
      continue;
    }
    if (n === 0) continue;
    let v: number | null | undefined;
    if (stat === 'mean' || stat === 'ratio') v = sum / n;
    else if (stat === 'min') v = s.min[i];
    else if (stat === 'max') v = s.max[i];
    else if (stat === 'last') v = s.last?.[i];
    else {
      const h = s.hdr?.[i];
      v = h ? histogram(h).getValueAtPercentile(stat.p) / TREND_UNITS_PER_VALUE : null;
      // HDR buckets round up: a percentile never reads outside the bucket's exact min and max.
      const lo = s.min[i];
      const hi = s.max[i];
      if (typeof v === 'number' && typeof hi === 'number') v = Math.min(v, hi);
      if (typeof v === 'number' && typeof lo === 'number') v = Math.max(v, lo);
    }
    if (v !== null && v !== undefined && Number.isFinite(v)) out.push([b.x, v]);
  }
  return out;
}

// -------------------------------------------------------------------------------- telemetry

/** Telemetry points ([ms since its start, value], t = the step's start) onto the axis at the step's middle. */
export function telemetryXY(points: ReadonlyArray<readonly [number, number]> | undefined, r: ResultDocument, tl: Timeline, opts: { perSecond?: boolean; widthMs?: number } = {}): XY[] {
  if (!points || !r.telemetry || tl.telemetryStartMs === null) return [];
  const step = opts.widthMs ?? r.telemetry.stepMs ?? r.telemetry.bucketMs ?? 1000;
  const now = r.telemetry.nowMs;
  return points.map(([t, v]) => {
    const to = Math.min(t + step, Math.max(now, t + 1));
    // A per-second value of the step under way was divided by the whole step: scale it to the part that passed.
    const value = opts.perSecond && to - t < step ? (v * step) / (to - t) : v;
    return [(tl.telemetryStartMs! + (t + to) / 2 - tl.zeroMs) / 1000, value] as XY;
  });
}

/** A telemetry time (ms since its start) on the axis. */
export function telemetryX(t: number, tl: Timeline): number {
  return ((tl.telemetryStartMs ?? tl.zeroMs) + t - tl.zeroMs) / 1000;
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
