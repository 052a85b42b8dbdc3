// Every operation in the topology is counted here: counters (also bucketed into time series),
// gauges, and latencies in HDR histograms. Raw, mergeable data is stored; percentiles and ratios
// are computed when read.
//
// A tier of server processes (serve --workers) has one Metrics per process; the leader answers for
// all of them by merging their exportState()s (plain JSON, sent over IPC) with Metrics.fromStates:
// series are realigned by absolute time (every process started at its own moment), counters and
// histograms add, gauges add or take the max by what they measure (TIER_SUMMED_GAUGES).

import * as hdr from 'hdr-histogram-js';
import type { Clock } from '../engine/clock.ts';

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
  /** Set when this counter's name keeps only its busiest series per bucket (Metrics.limitSeries). */
  family: SeriesFamily | null = null;
  constructor(
    readonly name: string,
    readonly labels: Labels,
    private readonly owner: Metrics,
  ) {}
  inc(n = 1): void {
    this.value += n;
    const b = this.owner.bucketIndex();
    this.series.buckets.set(b, (this.series.buckets.get(b) ?? 0) + n);
    if (this.family !== null && this.family.lastBucket !== b) this.family.touched(b);
  }
}

/** Per partition and finished bucket: the sum over every label set, the largest one, how many were non-zero. */
export interface FamilyBucket {
  /** Bucket start (ms since the metrics started). */
  t: number;
  total: number;
  max: number;
  active: number;
  /** With `bands`: the bucket's sum per band of the numeric band label (index = value ÷ width). */
  bands?: number[];
}

/** Sums a limited family per band of a numeric label (e.g. logical shards 0–15, 16–31, …) in every bucket. */
export interface FamilyBands {
  label: string;
  /** Label values per band. */
  width: number;
  /** Bands kept (values at or past count × width go to the last). */
  count: number;
}

/** The partition of a limited family a label set belongs to ('' when the family has none). */
function partitionOf(labels: Labels, partitionBy: string | null): string {
  return partitionBy === null ? '' : String(labels[partitionBy]);
}

/** The band a label set's numeric band label falls in (values past the last band go to it). */
function bandOf(labels: Labels, bands: FamilyBands): number {
  return Math.min(bands.count - 1, Math.floor(Number(labels[bands.label]) / bands.width));
}

/**
 * Counters of one name whose per-bucket series are capped: when a bucket ends, only the `topK`
 * busiest label sets keep their point for it, and the bucket's total, max and count of active
 * label sets are kept per partition. Values (totals since start) are unaffected. This bounds, say,
 * 2048 logical shards × 3600 one-second buckets to topK points per bucket.
 */
class SeriesFamily {
  readonly counters: Counter[] = [];
  lastBucket = -1;
  private readonly dirty = new Set<number>();
  readonly summary = new Map<string, FamilyBucket[]>();
  /**
   * Only in a merged tier (Metrics.fromStates): per bucket and partition, what other processes'
   * summaries held beyond the points they kept (their dropped points' total and bands, their max
   * and active), added when the bucket is compacted here.
   */
  private carried: Map<number, Map<string, FamilyBucket>> | null = null;

  constructor(
    readonly topK: number,
    readonly partitionBy: string | null,
    private readonly bucketMs: number,
    readonly bands: FamilyBands | null = null,
  ) {}

  touched(b: number): void {
    this.lastBucket = b;
    this.dirty.add(b);
    this.compactBefore(b);
  }

  /** Caps every bucket before `current` that still holds all its points. */
  compactBefore(current: number): void {
    if (this.carried === null && this.dirty.size <= 1 && (this.dirty.size === 0 || this.dirty.has(current))) return;
    const due = this.carried === null ? [...this.dirty] : [...new Set([...this.dirty, ...this.carried.keys()])];
    const done = due.filter((b) => b < current).sort((a, b) => a - b);
    for (const b of done) {
      this.dirty.delete(b);
      const byPartition = new Map<string, Array<[Counter, number]>>();
      for (const c of this.counters) {
        const v = c.series.buckets.get(b);
        if (v === undefined) continue;
        const key = partitionOf(c.labels, this.partitionBy);
        (byPartition.get(key) ?? byPartition.set(key, []).get(key)!).push([c, v]);
      }
      const extra = this.carried?.get(b);
      if (extra) for (const key of extra.keys()) if (!byPartition.has(key)) byPartition.set(key, []);
      for (const [key, list] of byPartition) {
        let total = 0;
        for (const [, v] of list) total += v;
        list.sort((x, y) => y[1] - x[1]);
        for (let i = this.topK; i < list.length; i++) list[i]![0].series.buckets.delete(b);
        const points = this.summary.get(key) ?? this.summary.set(key, []).get(key)!;
        const point: FamilyBucket = { t: b * this.bucketMs, total, max: list[0]?.[1] ?? 0, active: list.length };
        if (this.bands) {
          const bands = new Array<number>(this.bands.count).fill(0);
          for (const [c, v] of list) bands[bandOf(c.labels, this.bands)]! += v;
          point.bands = bands;
        }
        const x = extra?.get(key);
        if (x) addPart(point, x);
        points.push(point);
      }
      if (extra) this.carried!.delete(b);
    }
    if (this.carried?.size === 0) this.carried = null;
  }

  /** Adds to a bucket's carried part (see `carried`); `bucket` is on this family's axis. */
  carry(bucket: number, partition: string, part: { total: number; max: number; active: number; bands: readonly number[] | null }): void {
    const carried = (this.carried ??= new Map());
    const byPartition = carried.get(bucket) ?? carried.set(bucket, new Map()).get(bucket)!;
    let x = byPartition.get(partition);
    if (!x) {
      x = { t: bucket * this.bucketMs, total: 0, max: 0, active: 0 };
      if (this.bands) x.bands = new Array<number>(this.bands.count).fill(0);
      byPartition.set(partition, x);
    }
    addPart(x, part);
  }

  /** After a merge put its counters' points in place: compacts every finished bucket, leaves the rest for later. */
  adopt(current: number): void {
    for (const c of this.counters) for (const b of c.series.buckets.keys()) this.dirty.add(b);
    this.compactBefore(current);
  }
}

/**
 * Adds another process's part of a bucket: totals and bands add; max and active take the larger,
 * a lower bound of the tier's (a label set's parts in several processes are not summed here).
 */
function addPart(into: FamilyBucket, part: { total: number; max: number; active: number; bands?: readonly number[] | null }): void {
  into.total += part.total;
  into.max = Math.max(into.max, part.max);
  into.active = Math.max(into.active, part.active);
  if (into.bands && part.bands) for (let i = 0; i < part.bands.length; i++) into.bands[Math.min(into.bands.length - 1, i)]! += part.bands[i]!;
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
  /**
   * Records a value in milliseconds (kept at microsecond resolution). Histograms whose name does
   * not end in `_ms` hold plain values (sizes, counts) the same way: value × 1000, read back ÷ 1000.
   */
  observeMs(ms: number): void;
}

/** A window's histogram: µs, 2 significant digits, packed (a few hundred bytes each). */
function newWindowHistogram(): hdr.Histogram {
  return hdr.build({ ...HDR_OPTIONS, numberOfSignificantValueDigits: 2, bitBucketSize: 'packed' });
}

/** A histogram per time window, for latencies that must be read over time (e.g. fan-out lag). */
interface HistogramWindows {
  windowMs: number;
  /** Windows kept (count); the oldest are dropped beyond it. */
  limit: number;
  /** window index → histogram of that window (µs, 2 significant digits, packed: a few hundred bytes each) */
  byWindow: Map<number, hdr.Histogram>;
}

class Histo implements HistogramHandle {
  readonly h = newHistogram();
  windows: HistogramWindows | null = null;
  constructor(
    readonly name: string,
    readonly labels: Labels,
    private readonly owner: Metrics,
  ) {}
  observeMs(ms: number): void {
    // Zero stays zero (a post with no followers has fan-out size 0, not 1 µs).
    const us = Math.max(0, Math.min(HDR_OPTIONS.highestTrackableValue, Math.round(ms * 1000)));
    this.h.recordValue(us);
    if (this.windows) {
      const w = this.windows;
      const i = Math.floor(this.owner.elapsedMs() / w.windowMs);
      let h = w.byWindow.get(i);
      if (!h) {
        h = newWindowHistogram();
        w.byWindow.set(i, h);
        if (w.byWindow.size > w.limit) w.byWindow.delete(w.byWindow.keys().next().value!);
      }
      h.recordValue(us);
    }
  }
}

export interface WindowSnapshot {
  /** Window start (ms since the metrics started). */
  t: number;
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
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

/** A number as JSON can carry it: finite ones as they are, ±Infinity and NaN by name (JSON has none of them). */
export type JsonNumber = number | 'Infinity' | '-Infinity' | 'NaN';

function toJsonNumber(v: number): JsonNumber {
  return Number.isFinite(v) ? v : (String(v) as JsonNumber);
}

export interface CounterState {
  name: string;
  labels: Labels;
  value: number;
  /** [bucket index, count] pairs, in index order (a limited family's finished buckets: the kept points only). */
  buckets: Array<[number, number]>;
}
export interface GaugeState {
  name: string;
  labels: Labels;
  value: JsonNumber;
  /** 'Infinity' / '-Infinity' while never lowered / raised (a gauge set only to NaN). */
  min: JsonNumber;
  max: JsonNumber;
  /** [bucket index, last value set in it] pairs, in index order. */
  buckets: Array<[number, JsonNumber]>;
}
export interface HistogramState {
  name: string;
  labels: Labels;
  /** As histogramSnapshot encodes it (HdrHistogram compressed base64, µs). */
  encoded: string;
  /** With trackOverTime: [window index, encoded window histogram] pairs, in index order. */
  windows: { windowMs: number; limit: number; byWindow: Array<[number, string]> } | null;
}
export interface FamilyState {
  name: string;
  topK: number;
  partitionBy: string | null;
  bands: FamilyBands | null;
  /** Buckets before this index are compacted (summary, `topK` points kept); from it on every point is there. */
  compactedBefore: number;
  summary: Array<{ partition: string; buckets: Array<{ t: number; total: number; max: number; active: number; bands: number[] | null }> }>;
}
/** Everything a Metrics holds, as plain JSON (no Map, bigint or undefined), for Metrics.fromStates. */
export interface MetricsState {
  startMs: number;
  bucketMs: number;
  help: Array<[string, string]>;
  counters: CounterState[];
  gauges: GaugeState[];
  histograms: HistogramState[];
  families: FamilyState[];
  windowed: Array<{ name: string; windowMs: number; limit: number }>;
}

/**
 * Gauges a merged tier adds over its processes (Metrics.fromStates), because each process reads
 * only its own share. Every other gauge reads one shared thing that each process sees alike, and a
 * tier takes the max:
 * - db_pool_in_use, db_pool_waiting, db_pool_peak_in_use, db_pool_peak_waiting: each process has
 *   its own pools to every node, so the node's connections are the sum.
 * - queue_running: the jobs this process is working (the in-process queue and RabbitMQ alike).
 * - journal_open: this process's job journal entries not yet finished.
 * Taking the max: queue_depth (on RabbitMQ, the broker's ready jobs, every process's together),
 * replica_lag_ms and db_replication_backlog (the database's state), cache_items and cache_bytes (a
 * real memcached node's stats; an in-process cache is each process's own copy, read against its
 * own capacity), redis_aof_bytes (one node's file), blob_objects, blob_bytes and
 * realtime_subscriptions (counted from the shared store at start, then by each process's own
 * changes: the max is a lower bound there).
 */
export const TIER_SUMMED_GAUGES: ReadonlySet<string> = new Set(['db_pool_in_use', 'db_pool_waiting', 'db_pool_peak_in_use', 'db_pool_peak_waiting', 'queue_running', 'journal_open']);

export class Metrics {
  /** Set by the constructor, or by fromStates to the leader's start. */
  private start: number;
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Gauge>();
  private readonly histograms = new Map<string, Histo>();
  private readonly help = new Map<string, string>();
  private readonly families = new Map<string, SeriesFamily>();
  private readonly windowed = new Map<string, { windowMs: number; limit: number }>();

  constructor(
    private readonly clock: Clock,
    /** Width of a time-series bucket (ms). */
    readonly bucketMs = 1000,
  ) {
    this.start = clock.nowMs();
  }

  /** When the metrics started (ms since the unix epoch): time 0 of every series. */
  get startMs(): number {
    return this.start;
  }

  bucketIndex(): number {
    return Math.floor((this.clock.nowMs() - this.start) / this.bucketMs);
  }

  /** Time since the metrics started (ms), the axis of every series. */
  elapsedMs(): number {
    return this.clock.nowMs() - this.start;
  }

  /**
   * Keeps, for every finished bucket, the points of only the `topK` busiest counters named `name`
   * (per value of the `partitionBy` label), plus each bucket's total, max and active count
   * (familySummary). For counters with many label sets, such as one per logical shard.
   */
  limitSeries(name: string, options: { topK: number; partitionBy?: string; bands?: FamilyBands }): void {
    if (this.families.has(name)) return;
    const family = new SeriesFamily(options.topK, options.partitionBy ?? null, this.bucketMs, options.bands ?? null);
    this.families.set(name, family);
    for (const c of this.counters.values()) {
      if (c.name !== name) continue;
      c.family = family;
      family.counters.push(c);
      for (const b of c.series.buckets.keys()) family.touched(b);
    }
    family.compactBefore(this.bucketIndex());
  }

  /** Per partition of a limited counter family: each finished bucket's total, max and active label sets. */
  familySummary(name: string): Map<string, FamilyBucket[]> {
    const family = this.families.get(name);
    if (!family) return new Map();
    family.compactBefore(this.bucketIndex());
    return family.summary;
  }

  /**
   * Also records every histogram named `name` per window of `windowMs`, keeping the last `limit`
   * windows, so its percentiles can be read over time (histogramWindows).
   */
  trackOverTime(name: string, windowMs: number, limit = 2000): void {
    this.windowed.set(name, { windowMs, limit });
    for (const h of this.histograms.values()) if (h.name === name && !h.windows) h.windows = { windowMs, limit, byWindow: new Map() };
  }

  /** Percentiles of a tracked histogram per window, oldest first (empty if untracked). */
  histogramWindows(name: string, labels?: Labels): WindowSnapshot[] {
    const h = this.histograms.get(labelKey(name, labels));
    if (!h?.windows) return [];
    const w = h.windows;
    return [...w.byWindow.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([i, x]) => ({ t: i * w.windowMs, count: x.totalCount, p50Ms: x.getValueAtPercentile(50) / 1000, p99Ms: x.getValueAtPercentile(99) / 1000, maxMs: x.maxValue / 1000 }));
  }

  /** The time series of one counter or gauge (points as in series()), or [] if it does not exist. */
  seriesOf(name: string, labels?: Labels): Array<[number, number]> {
    const key = labelKey(name, labels);
    const s = this.counters.get(key)?.series ?? this.gauges.get(key)?.series;
    if (!s) return [];
    this.families.get(name)?.compactBefore(this.bucketIndex());
    return [...s.buckets.entries()].sort((a, b) => a[0] - b[0]).map(([b, v]) => [b * this.bucketMs, v]);
  }

  /** Every counter with this name, with its labels and total value. */
  countersNamed(name: string): CounterSnapshot[] {
    const out: CounterSnapshot[] = [];
    for (const c of this.counters.values()) if (c.name === name) out.push({ name: c.name, labels: c.labels, value: c.value });
    return out;
  }

  /** Max over the run of a gauge (undefined if never set). */
  gaugeMax(name: string, labels?: Labels): number | undefined {
    return this.gauges.get(labelKey(name, labels))?.max;
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
      const family = this.families.get(name);
      if (family) {
        c.family = family;
        family.counters.push(c);
      }
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
    this.setGauge(labelKey(name, labels), name, labels, value);
  }

  /** set(name, labels, ·) for one label set, its key made once (for gauges set on every operation). */
  gaugeSetter(name: string, labels: Labels): (value: number) => void {
    const key = labelKey(name, labels);
    return (value) => this.setGauge(key, name, labels, value);
  }

  private setGauge(key: string, name: string, labels: Labels, value: number): void {
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
      h = new Histo(name, labels, this);
      const w = this.windowed.get(name);
      if (w) h.windows = { ...w, byWindow: new Map() };
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

  /**
   * Everything held, as plain JSON for the leader's fromStates: counters and gauges with their
   * buckets, histograms and their windows encoded, help, and the limited families (compacted up to
   * the bucket under way first, as familySummary does) and tracked histograms' configs.
   */
  exportState(): MetricsState {
    const current = this.bucketIndex();
    const families: FamilyState[] = [];
    for (const [name, f] of this.families) {
      f.compactBefore(current);
      const summary = [...f.summary].map(([partition, points]) => ({
        partition,
        buckets: points.map((p) => ({ t: p.t, total: p.total, max: p.max, active: p.active, bands: p.bands ? [...p.bands] : null })),
      }));
      families.push({ name, topK: f.topK, partitionBy: f.partitionBy, bands: f.bands && { ...f.bands }, compactedBefore: current, summary });
    }
    const pairs = (s: Series): Array<[number, number]> => [...s.buckets.entries()].sort((a, b) => a[0] - b[0]);
    return {
      startMs: this.start,
      bucketMs: this.bucketMs,
      help: [...this.help.entries()],
      counters: [...this.counters.values()].map((c) => ({ name: c.name, labels: { ...c.labels }, value: c.value, buckets: pairs(c.series) })),
      gauges: [...this.gauges.values()].map((g) => ({
        name: g.name,
        labels: { ...g.labels },
        value: toJsonNumber(g.value),
        min: toJsonNumber(g.min),
        max: toJsonNumber(g.max),
        buckets: pairs(g.series).map(([b, v]): [number, JsonNumber] => [b, toJsonNumber(v)]),
      })),
      histograms: [...this.histograms.values()].map((x) => ({
        name: x.name,
        labels: { ...x.labels },
        encoded: hdr.encodeIntoCompressedBase64(x.h),
        windows: x.windows && {
          windowMs: x.windows.windowMs,
          limit: x.windows.limit,
          byWindow: [...x.windows.byWindow.entries()].sort((a, b) => a[0] - b[0]).map(([i, h]): [number, string] => [i, hdr.encodeIntoCompressedBase64(h)]),
        },
      })),
      families,
      windowed: [...this.windowed].map(([name, w]) => ({ name, windowMs: w.windowMs, limit: w.limit })),
    };
  }

  /**
   * One Metrics for a whole tier from its processes' exportState()s, the leader's first: its start
   * and bucket width are the merged axis, and every other process's buckets and windows move onto
   * it by absolute time (each lands in the merged bucket its start falls in, so with starts that are
   * not a whole number of buckets apart a count may show up to one bucket early).
   *
   * Exact: counter values and points, family totals and bands, histogram counts, percentiles and
   * means, the windows' counts and percentiles, help. Limited families: a finished bucket keeps the `topK` largest
   * sums of the points the processes kept (each a lower bound), and its max and active are lower
   * bounds: the larger of those sums and of the processes' own max and active. Gauges named by
   * `sumGauge` (default TIER_SUMMED_GAUGES) add: the value and each bucket sum every process's latest
   * reading, min and max sum theirs (bounds: the processes' extremes need not coincide); the others
   * take the max of the readings (min: the min). Histogram min and max are to HDR precision (the
   * encoding keeps bucket counts, not raw values). Meant to be read; counting into it works (a
   * family bucket still under way then sums what the processes sent and what is counted here).
   */
  static fromStates(clock: Clock, states: readonly MetricsState[], options: { sumGauge?: (name: string) => boolean } = {}): Metrics {
    const lead = states[0];
    if (!lead) throw new RangeError("Metrics.fromStates needs at least the leader's state");
    const m = new Metrics(clock, lead.bucketMs);
    m.start = lead.startMs;
    const sumGauge = options.sumGauge ?? ((name: string) => TIER_SUMMED_GAUGES.has(name));
    // The merged index of a process's bucket or window `i` (1e-6 absorbs the float error of the start difference).
    const align = (s: MetricsState, i: number, widthMs: number, toMs: number) => Math.floor((s.startMs - m.start + i * widthMs) / toMs + 1e-6);

    // Configs first (the first process to name one wins), so counters and histograms join them.
    for (const s of states) {
      for (const [name, text] of s.help) if (!m.help.has(name)) m.help.set(name, text);
      for (const w of s.windowed) if (!m.windowed.has(w.name)) m.windowed.set(w.name, { windowMs: w.windowMs, limit: w.limit });
      for (const f of s.families) if (!m.families.has(f.name)) m.families.set(f.name, new SeriesFamily(f.topK, f.partitionBy, m.bucketMs, f.bands && { ...f.bands }));
    }

    for (const s of states) {
      for (const c of s.counters) {
        m.counter(c.name, c.labels);
        const into = m.counters.get(labelKey(c.name, c.labels))!;
        into.value += c.value;
        for (const [b, v] of c.buckets) {
          const k = align(s, b, s.bucketMs, m.bucketMs);
          into.series.buckets.set(k, (into.series.buckets.get(k) ?? 0) + v);
        }
      }
      // A compacted bucket's points are only those it kept; its summary less them (what it dropped)
      // is carried into the merged family, whose compaction adds it to what the points give.
      for (const f of s.families) {
        const family = m.families.get(f.name)!;
        const kept = new Map<number, Map<string, { total: number; bands: number[] | null }>>();
        for (const c of s.counters) {
          if (c.name !== f.name) continue;
          const partition = partitionOf(c.labels, f.partitionBy);
          for (const [b, v] of c.buckets) {
            if (b >= f.compactedBefore) continue;
            const byPartition = kept.get(b) ?? kept.set(b, new Map()).get(b)!;
            let k = byPartition.get(partition);
            if (!k) byPartition.set(partition, (k = { total: 0, bands: f.bands && new Array<number>(f.bands.count).fill(0) }));
            k.total += v;
            if (k.bands && f.bands) k.bands[bandOf(c.labels, f.bands)]! += v;
          }
        }
        for (const { partition, buckets } of f.summary) {
          for (const p of buckets) {
            const b = Math.round(p.t / s.bucketMs);
            const k = kept.get(b)?.get(partition);
            const bands = p.bands && p.bands.map((v, i) => v - (k?.bands?.[i] ?? 0));
            family.carry(align(s, b, s.bucketMs, m.bucketMs), partition, { total: p.total - (k?.total ?? 0), max: p.max, active: p.active, bands });
          }
        }
      }
    }

    const gauges = new Map<string, Array<{ s: MetricsState; g: GaugeState }>>();
    for (const s of states) for (const g of s.gauges) { const key = labelKey(g.name, g.labels); (gauges.get(key) ?? gauges.set(key, []).get(key)!).push({ s, g }); }
    for (const [key, list] of gauges) {
      const into = new Gauge(list[0]!.g.name, list[0]!.g.labels);
      m.gauges.set(key, into);
      const per = list.map(({ s, g }) => g.buckets.map(([b, v]): [number, number] => [align(s, b, s.bucketMs, m.bucketMs), Number(v)]));
      if (sumGauge(into.name)) {
        into.value = 0;
        into.min = 0;
        into.max = 0;
        for (const { g } of list) {
          into.value += Number(g.value);
          into.min += Number(g.min);
          into.max += Number(g.max);
        }
        // A process's reading holds until it sets the next, so each bucket adds every process's latest.
        const at = per.map(() => -1);
        for (const k of [...new Set(per.flatMap((pts) => pts.map(([b]) => b)))].sort((a, b) => a - b)) {
          let total = 0;
          per.forEach((pts, j) => {
            while (at[j]! + 1 < pts.length && pts[at[j]! + 1]![0] <= k) at[j]!++;
            if (at[j]! >= 0) total += pts[at[j]!]![1];
          });
          into.series.buckets.set(k, total);
        }
      } else {
        into.value = Number.NEGATIVE_INFINITY;
        for (const { g } of list) {
          into.value = Math.max(into.value, Number(g.value));
          into.min = Math.min(into.min, Number(g.min));
          into.max = Math.max(into.max, Number(g.max));
        }
        for (const pts of per) {
          for (const [k, v] of pts) {
            const was = into.series.buckets.get(k);
            into.series.buckets.set(k, was === undefined ? v : Math.max(was, v));
          }
        }
      }
    }

    const windows = new Map<Histo, Map<number, hdr.Histogram>>();
    for (const s of states) {
      for (const x of s.histograms) {
        m.histogram(x.name, x.labels);
        const into = m.histograms.get(labelKey(x.name, x.labels))!;
        into.h.add(decodeHistogram(x.encoded));
        if (!into.windows || !x.windows) continue;
        const byWindow = windows.get(into) ?? windows.set(into, new Map()).get(into)!;
        for (const [i, encoded] of x.windows.byWindow) {
          const k = align(s, i, x.windows.windowMs, into.windows.windowMs);
          (byWindow.get(k) ?? byWindow.set(k, newWindowHistogram()).get(k)!).add(decodeHistogram(encoded));
        }
      }
    }
    // Oldest first and the last `limit` kept, as observeMs keeps them.
    for (const [into, byWindow] of windows) {
      const w = into.windows!;
      for (const k of [...byWindow.keys()].sort((a, b) => a - b).slice(-w.limit)) w.byWindow.set(k, byWindow.get(k)!);
    }

    const current = m.bucketIndex();
    for (const f of m.families.values()) f.adopt(current);
    return m;
  }

  /** Every counter and gauge as a time series; `names` limits which. */
  series(names?: readonly string[]): SeriesSnapshot[] {
    const want = names ? new Set(names) : null;
    const out: SeriesSnapshot[] = [];
    for (const f of this.families.values()) f.compactBefore(this.bucketIndex());
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
      // Durations (names ending in _ms) are exported in seconds, as Prometheus wants; other
      // histograms (sizes, counts) in the unit they were recorded in.
      const isDuration = name.endsWith('_ms');
      const n = prefix + (isDuration ? sanitize(name).replace(/_ms$/, '') + '_seconds' : sanitize(name));
      const scale = isDuration ? 1e6 : 1e3;
      lines.push(`# HELP ${n} ${escHelp(this.help.get(name) ?? name)}`, `# TYPE ${n} summary`);
      for (const x of list) {
        for (const q of [0.5, 0.9, 0.99]) {
          const v = x.h.totalCount ? x.h.getValueAtPercentile(q * 100) / scale : 0;
          lines.push(`${n}${fmtLabels(x.labels, { quantile: String(q) })} ${v}`);
        }
        lines.push(`${n}_sum${fmtLabels(x.labels)} ${(x.h.mean * x.h.totalCount) / scale}`);
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

/**
 * The k most frequent keys of a stream in O(k) memory (Metwally et al.'s space-saving): a new key
 * evicts the least counted one and inherits its count as its error, so any key seen more than
 * n / k times out of n is kept, and count − error ≤ its true count ≤ count.
 */
export class HeavyHitters<K> {
  private readonly keys: K[] = [];
  private readonly counts: number[] = [];
  private readonly errors: number[] = [];
  /** Everything offered (count). */
  total = 0;

  constructor(readonly k: number) {}

  offer(key: K, n = 1): void {
    this.total += n;
    const i = this.keys.indexOf(key);
    if (i >= 0) {
      this.counts[i]! += n;
      return;
    }
    if (this.keys.length < this.k) {
      this.keys.push(key);
      this.counts.push(n);
      this.errors.push(0);
      return;
    }
    let min = 0;
    for (let j = 1; j < this.counts.length; j++) if (this.counts[j]! < this.counts[min]!) min = j;
    this.keys[min] = key;
    this.errors[min] = this.counts[min]!;
    this.counts[min]! += n;
  }

  /** Kept keys, most counted first. */
  top(): Array<{ key: K; count: number; error: number }> {
    return this.keys.map((key, i) => ({ key, count: this.counts[i]!, error: this.errors[i]! })).sort((a, b) => b.count - a.count);
  }
}
