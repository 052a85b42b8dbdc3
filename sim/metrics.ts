// Every operation in the topology is counted here: counters (also bucketed into time series),
// gauges, and latencies in HDR histograms. Raw, mergeable data is stored; percentiles and ratios
// are computed when read.

import * as hdr from 'hdr-histogram-js';
import type { Clock } from './clock.ts';

export type Labels = Readonly<Record<string, string | number>>;

/** Histograms record microseconds, from 1 µs to one hour, to 3 significant digits. */
const HDR_OPTIONS = { lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 as const };

export function newHistogram(): hdr.Histogram {
  return hdr.build(HDR_OPTIONS);
}

export function decodeHistogram(encoded: string): hdr.Histogram {
  return hdr.decodeFromCompressedBase64(encoded);
}

export function labelKey(name: string, labels?: Labels): string {
  if (!labels) return name;
  const keys = Object.keys(labels);
  if (keys.length === 0) return name;
  keys.sort();
  let out = name + '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    out += (i ? ',' : '') + k + '="' + String(labels[k]) + '"';
  }
  return out + '}';
}

interface Series {
  /** bucket index (floor((t - startMs) / bucketMs)) → value */
  buckets: Map<number, number>;
}

export interface CounterHandle {
  inc(n?: number): void;
  readonly value: number;
}

class Counter implements CounterHandle {
  value = 0;
  readonly series: Series = { buckets: new Map() };
  constructor(
    readonly name: string,
    readonly labels: Labels,
    private readonly owner: Metrics,
  ) {}
  inc(n = 1): void {
    this.value += n;
    const b = this.owner.bucketIndex();
    this.series.buckets.set(b, (this.series.buckets.get(b) ?? 0) + n);
  }
}

class Gauge {
  value = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  readonly series: Series = { buckets: new Map() };
  constructor(
    readonly name: string,
    readonly labels: Labels,
  ) {}
}

export interface HistogramHandle {
  /** Records a value in milliseconds (kept at microsecond resolution). */
  observeMs(ms: number): void;
}

class Histo implements HistogramHandle {
  readonly h = newHistogram();
  constructor(
    readonly name: string,
    readonly labels: Labels,
  ) {}
  observeMs(ms: number): void {
    const us = Math.max(1, Math.min(HDR_OPTIONS.highestTrackableValue, Math.round(ms * 1000)));
    this.h.recordValue(us);
  }
}

export interface CounterSnapshot {
  name: string;
  labels: Labels;
  value: number;
}
export interface GaugeSnapshot extends CounterSnapshot {
  min: number;
  max: number;
}
export interface HistogramSnapshot {
  name: string;
  labels: Labels;
  count: number;
  /** All in milliseconds. */
  minMs: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  /** HdrHistogram compressed base64 of microsecond values; merge by decoding and adding. */
  encoded: string;
}
export interface SeriesSnapshot {
  name: string;
  labels: Labels;
  kind: 'counter' | 'gauge';
  /** [bucket start (ms since the metrics started), value] pairs, in time order. */
  points: Array<[number, number]>;
}
export interface MetricsSnapshot {
  startMs: number;
  nowMs: number;
  bucketMs: number;
  counters: CounterSnapshot[];
  gauges: GaugeSnapshot[];
  histograms: HistogramSnapshot[];
}

export class Metrics {
  readonly startMs: number;
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Gauge>();
  private readonly histograms = new Map<string, Histo>();
  private readonly help = new Map<string, string>();

  constructor(
    private readonly clock: Clock,
    /** Width of a time-series bucket (ms). */
    readonly bucketMs = 1000,
  ) {
    this.startMs = clock.nowMs();
  }

  bucketIndex(): number {
    return Math.floor((this.clock.nowMs() - this.startMs) / this.bucketMs);
  }

  describe(name: string, help: string): void {
    this.help.set(name, help);
  }

  counter(name: string, labels: Labels = {}): CounterHandle {
    const key = labelKey(name, labels);
    let c = this.counters.get(key);
    if (!c) {
      c = new Counter(name, labels, this);
      this.counters.set(key, c);
    }
    return c;
  }

  inc(name: string, labels?: Labels, n = 1): void {
    this.counter(name, labels).inc(n);
  }

  /** Current value of a counter (0 if never counted). */
  value(name: string, labels?: Labels): number {
    return this.counters.get(labelKey(name, labels))?.value ?? 0;
  }

  /** Sum of a counter over every label set that matches `filter`. */
  sum(name: string, filter: Labels = {}): number {
    let total = 0;
    for (const c of this.counters.values()) {
      if (c.name !== name) continue;
      if (Object.entries(filter).every(([k, v]) => String(c.labels[k]) === String(v))) total += c.value;
    }
    return total;
  }

  set(name: string, labels: Labels, value: number): void {
    const key = labelKey(name, labels);
    let g = this.gauges.get(key);
    if (!g) {
      g = new Gauge(name, labels);
      this.gauges.set(key, g);
    }
    g.value = value;
    if (value < g.min) g.min = value;
    if (value > g.max) g.max = value;
    g.series.buckets.set(this.bucketIndex(), value);
  }

  gauge(name: string, labels?: Labels): number | undefined {
    return this.gauges.get(labelKey(name, labels))?.value;
  }

  histogram(name: string, labels: Labels = {}): HistogramHandle {
    const key = labelKey(name, labels);
    let h = this.histograms.get(key);
    if (!h) {
      h = new Histo(name, labels);
      this.histograms.set(key, h);
    }
    return h;
  }

  observe(name: string, labels: Labels | undefined, ms: number): void {
    this.histogram(name, labels).observeMs(ms);
  }

  /** Percentile (0–100) of a histogram in ms, or undefined if it has no values. */
  percentile(name: string, labels: Labels | undefined, p: number): number | undefined {
    const h = this.histograms.get(labelKey(name, labels));
    if (!h || h.h.totalCount === 0) return undefined;
    return h.h.getValueAtPercentile(p) / 1000;
  }

  histogramCount(name: string, labels?: Labels): number {
    return this.histograms.get(labelKey(name, labels))?.h.totalCount ?? 0;
  }

  snapshot(options: { encode?: boolean } = {}): MetricsSnapshot {
    const encode = options.encode ?? true;
    const counters = [...this.counters.values()].map((c) => ({ name: c.name, labels: c.labels, value: c.value }));
    const gauges = [...this.gauges.values()].map((g) => ({ name: g.name, labels: g.labels, value: g.value, min: g.min, max: g.max }));
    const histograms = [...this.histograms.values()].map((x) => histogramSnapshot(x.name, x.labels, x.h, encode));
    return { startMs: this.startMs, nowMs: this.clock.nowMs(), bucketMs: this.bucketMs, counters, gauges, histograms };
  }

  /** Every counter and gauge as a time series; `names` limits which. */
  series(names?: readonly string[]): SeriesSnapshot[] {
    const want = names ? new Set(names) : null;
    const out: SeriesSnapshot[] = [];
    const toPoints = (s: Series): Array<[number, number]> =>
      [...s.buckets.entries()].sort((a, b) => a[0] - b[0]).map(([b, v]) => [b * this.bucketMs, v]);
    for (const c of this.counters.values()) if (!want || want.has(c.name)) out.push({ name: c.name, labels: c.labels, kind: 'counter', points: toPoints(c.series) });
    for (const g of this.gauges.values()) if (!want || want.has(g.name)) out.push({ name: g.name, labels: g.labels, kind: 'gauge', points: toPoints(g.series) });
    return out;
  }

  /** Prometheus text exposition format (version 0.0.4). Histograms appear as summaries. */
  prometheus(prefix = 'scalegram_'): string {
    const lines: string[] = [];
    const escHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
    const esc = (v: string | number) => String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
    const fmtLabels = (labels: Labels, extra?: Record<string, string>) => {
      const all = { ...labels, ...extra };
      const keys = Object.keys(all).sort();
      return keys.length ? '{' + keys.map((k) => `${sanitize(k)}="${esc(all[k]!)}"`).join(',') + '}' : '';
    };
    const byName = <T extends { name: string }>(items: Iterable<T>) => {
      const m = new Map<string, T[]>();
      for (const it of items) {
        const list = m.get(it.name) ?? [];
        list.push(it);
        m.set(it.name, list);
      }
      return [...m.entries()].sort((a, b) => a[0].localeCompare(b[0]));
    };
    for (const [name, list] of byName(this.counters.values())) {
      const n = prefix + sanitize(name) + '_total';
      lines.push(`# HELP ${n} ${escHelp(this.help.get(name) ?? name)}`, `# TYPE ${n} counter`);
      for (const c of list) lines.push(`${n}${fmtLabels(c.labels)} ${c.value}`);
    }
    for (const [name, list] of byName(this.gauges.values())) {
      const n = prefix + sanitize(name);
      lines.push(`# HELP ${n} ${escHelp(this.help.get(name) ?? name)}`, `# TYPE ${n} gauge`);
      for (const g of list) lines.push(`${n}${fmtLabels(g.labels)} ${g.value}`);
    }
    for (const [name, list] of byName(this.histograms.values())) {
      const n = prefix + sanitize(name).replace(/_ms$/, '') + '_seconds';
      lines.push(`# HELP ${n} ${escHelp(this.help.get(name) ?? name)}`, `# TYPE ${n} summary`);
      for (const x of list) {
        for (const q of [0.5, 0.9, 0.99]) {
          const v = x.h.totalCount ? x.h.getValueAtPercentile(q * 100) / 1e6 : 0;
          lines.push(`${n}${fmtLabels(x.labels, { quantile: String(q) })} ${v}`);
        }
        lines.push(`${n}_sum${fmtLabels(x.labels)} ${(x.h.mean * x.h.totalCount) / 1e6}`);
        lines.push(`${n}_count${fmtLabels(x.labels)} ${x.h.totalCount}`);
      }
    }
    return lines.join('\n') + '\n';
  }
}

function sanitize(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

export function histogramSnapshot(name: string, labels: Labels, h: hdr.Histogram, encode = true): HistogramSnapshot {
  const empty = h.totalCount === 0;
  return {
    name,
    labels,
    count: h.totalCount,
    minMs: empty ? 0 : h.minNonZeroValue / 1000,
    meanMs: empty ? 0 : h.mean / 1000,
    p50Ms: empty ? 0 : h.getValueAtPercentile(50) / 1000,
    p90Ms: empty ? 0 : h.getValueAtPercentile(90) / 1000,
    p95Ms: empty ? 0 : h.getValueAtPercentile(95) / 1000,
    p99Ms: empty ? 0 : h.getValueAtPercentile(99) / 1000,
    maxMs: empty ? 0 : h.maxValue / 1000,
    encoded: encode ? hdr.encodeIntoCompressedBase64(h) : '',
  };
}
