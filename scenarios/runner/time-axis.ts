// One time axis for a result document: seconds since the scenarios started (setup runs before 0).
// The runner's series and the topology's telemetry each count from their own start (both unix ms),
// so every point is shifted onto that axis here, once, for the summary, the key figures and the plots.

import { decodeHistogram } from '../../sim/observability/metrics.ts';
import { TREND_UNITS_PER_VALUE, type SeriesEntry } from './k6-metrics.ts';
import type { ResultDocument } from './results.ts';

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
