// k6's metric model for the scenario runner: counters, gauges, rates and trends with k6's sink values,
// sub-metrics selected by tags, and bucketed time series whose memory stays flat however long the run.

import { deflateSync } from 'node:zlib';
import type { JsHistogram } from 'hdr-histogram-js';
import { decodeHistogram } from '../../sim/observability/metrics.ts';

export type MetricType = 'counter' | 'gauge' | 'rate' | 'trend';
export type ValueKind = 'time' | 'data' | 'default';
export type Tags = Record<string, string>;

/** k6's built-in metrics, plus Scalegram's two measures of queueing in open-model executors. */
export const BUILTIN_METRICS: Readonly<Record<string, { readonly type: MetricType; readonly kind: ValueKind }>> = Object.freeze({
  vus: { type: 'gauge', kind: 'default' },
  vus_max: { type: 'gauge', kind: 'default' },
  iterations: { type: 'counter', kind: 'default' },
  iteration_duration: { type: 'trend', kind: 'time' },
  dropped_iterations: { type: 'counter', kind: 'default' },
  data_sent: { type: 'counter', kind: 'data' },
  data_received: { type: 'counter', kind: 'data' },
  checks: { type: 'rate', kind: 'default' },
  http_reqs: { type: 'counter', kind: 'default' },
  http_req_duration: { type: 'trend', kind: 'time' },
  http_req_blocked: { type: 'trend', kind: 'time' },
  http_req_connecting: { type: 'trend', kind: 'time' },
  http_req_tls_handshaking: { type: 'trend', kind: 'time' },
  http_req_sending: { type: 'trend', kind: 'time' },
  http_req_waiting: { type: 'trend', kind: 'time' },
  http_req_receiving: { type: 'trend', kind: 'time' },
  http_req_failed: { type: 'rate', kind: 'default' },
  group_duration: { type: 'trend', kind: 'time' },
  /** Scheduled → actual start of an iteration (ms); 0 for closed-model executors. */
  iteration_start_delay: { type: 'trend', kind: 'time' },
  /** http_req_duration plus the iteration's start delay: latency measured from the intended send time. */
  http_req_intended_duration: { type: 'trend', kind: 'time' },
});

/** Sub-metrics k6 registers by default (its `expected_response` system tag is on by default). */
export const DEFAULT_SUBMETRICS: readonly string[] = ['http_req_duration{expected_response:true}'];

/** k6's default `summaryTrendStats`, the values every trend reports. */
/**
 * Topology measures sampled from /_sim/scalars each tick, as trends thresholds can name (max, min,
 * p(N) over the run: a spike must be able to fail a gate). scenarios/lib/telemetry.ts declares the
 * same metrics for scripts, so they exist under real k6 too.
 */
export const TOPOLOGY_METRICS = ['cache_hit_rate', 'fanout_lag_ms', 'shard_skew', 'server_skew', 'stale_reads', 'replica_lag_ms', 'queue_depth', 'db_writes_lost'] as const;

/**
 * Metrics Scalegram records that k6 does not: the topology's, and the runner's own measures of
 * lateness. A k6-shaped summary lists them with k6's metrics only when the script declared them
 * (k6/metrics) or a threshold names them; otherwise they are under the summary's own `scalegram` key.
 */
export const SCALEGRAM_METRICS: ReadonlySet<string> = new Set<string>([...TOPOLOGY_METRICS, 'http_req_intended_duration', 'iteration_start_delay']);

export const DEFAULT_TREND_STATS: readonly string[] = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)'];

/** k6's rule for metric names (lib/metrics registry, v0.48). */
const METRIC_NAME = /^[\p{L}\p{N}._ !?/&#()<>%-]{1,128}$/u;

export const METRIC_ERRORS = {
  K6_METRIC_NAME: 'A metric name does not follow k6 naming rules',
  K6_METRIC_REDEFINED: 'A metric already exists with another type or kind',
  K6_METRIC_UNKNOWN: 'No metric of that name is defined',
  K6_METRIC_SELECTOR: 'A sub-metric selector is malformed',
  K6_METRIC_VALUE: 'A sample value is not a finite number',
  K6_METRIC_AGGREGATION: 'The metric type has no such aggregation',
  K6_METRIC_OPTIONS: 'Registry options are out of range',
} as const;
export type MetricErrorCode = keyof typeof METRIC_ERRORS;

export class MetricError extends Error {
  readonly code: MetricErrorCode;
  constructor(code: MetricErrorCode, message: string) {
    super(message);
    this.name = 'MetricError';
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------
// HDR storage. Every trend records round(value × 1000): microseconds for time trends (as
// sim/observability/metrics.ts does), thousandths for the others. Exact min/max/sum/count live beside it.
//
// Recording goes through the small class below rather than hdr-histogram-js's recordValue: it lays
// counts out exactly as HdrHistogram does (same index for every value, same V2 encoding, so
// decodeHistogram() reads what it writes and histograms merge with sim/observability/metrics.ts's), but one
// record is an index computation and an increment — about a tenth of the library's cost, which
// matters at five histograms per sample on the hot path.

/** Histogram units per metric unit (µs per ms for time trends). */
export const TREND_UNITS_PER_VALUE = 1000;
/** Time trends: 1 µs to one hour (sim/observability/metrics.ts's histograms). */
const TIME_HIGHEST = 3_600_000_000;
/** Other trends (bytes, fan-out sizes, counts) can be far larger than an hour of µs: up to 1e10 units. */
const WIDE_HIGHEST = 1e13;
/** Whole-run sinks keep 3 significant digits (±0.05%), as sim/observability/metrics.ts. */
const RUN_DIGITS = 3;
/** Series buckets keep 2 (±0.5%): enough for plots, and 7× smaller per open bucket. */
const SERIES_DIGITS = 2;
const TWO_32 = 2 ** 32;

/** An HdrHistogram (lowest discernible value 1) with the library's layout, recording integers ≥ 0. */
class Hdr {
  readonly counts: Float64Array;
  /** log2 of half the sub-bucket count (10 for 3 digits, 7 for 2). */
  private readonly halfMag: number;
  private readonly half: number;
  private readonly mask: number;
  total = 0;
  /** Highest index with a count, -1 when empty. */
  maxIdx = -1;

  constructor(
    readonly digits: number,
    readonly highest: number,
  ) {
    const subCountMag = Math.ceil(Math.log2(2 * 10 ** digits));
    this.halfMag = subCountMag - 1;
    this.half = 2 ** this.halfMag;
    this.mask = 2 * this.half - 1;
    let buckets = 1;
    for (let untrackable = 2 * this.half; untrackable <= highest; untrackable *= 2) buckets++;
    this.counts = new Float64Array((buckets + 1) * this.half);
  }

  /** HdrHistogram's countsArrayIndex for value ≥ 0. */
  index(v: number): number {
    if (v <= this.mask) return v;
    const bits = v < TWO_32 ? 32 - Math.clz32(v) : 64 - Math.clz32(Math.floor(v / TWO_32));
    const bucket = bits - this.halfMag - 1;
    const sub = v < TWO_32 ? v >>> bucket : Math.floor(v / 2 ** bucket);
    return ((bucket + 1) << this.halfMag) + (sub - this.half);
  }

  record(v: number): void {
    const i = this.index(v > this.highest ? this.highest : v);
    this.counts[i]!++;
    this.total++;
    if (i > this.maxIdx) this.maxIdx = i;
  }

  /** The middle of the value range slot `i` stands for (HdrHistogram's medianEquivalentValue). */
  median(i: number): number {
    let bucket = (i >> this.halfMag) - 1;
    let sub = (i & (this.half - 1)) + this.half;
    if (bucket < 0) {
      sub -= this.half;
      bucket = 0;
    }
    const size = 2 ** bucket;
    return sub * size + Math.floor(size / 2);
  }

  reset(): void {
    if (this.maxIdx >= 0) this.counts.fill(0, 0, this.maxIdx + 1);
    this.total = 0;
    this.maxIdx = -1;
  }

  /** The V2 payload of the counts (see below). */
  payload(): Uint8Array {
    const w = writer.reset();
    const c = this.counts;
    for (let i = 0; i <= this.maxIdx; i++) if (c[i] !== 0) w.count(i, c[i]!);
    return w.take();
  }

  encode(): string {
    return encodePayload(this.total === 0 ? Uint8Array.of(0) : this.payload(), this.digits, this.highest);
  }
}

function scaled(value: number): number {
  const v = Math.round(value * TREND_UNITS_PER_VALUE);
  // HDR cannot hold negatives (or values past its range: Hdr.record clamps); exact min/max keep
  // the truth, and percentiles are clamped to them when read.
  return v < 0 ? 0 : v;
}

/**
 * Percentiles (0–100) the way k6 computes them from sorted samples: linear interpolation between the
 * samples at ranks floor(p·(n−1)) and ceil(p·(n−1)). Each sample is read from the histogram as the
 * middle of its slot (error centred, ±half a slot, rather than biased up), clamped to the exact min
 * and max, which are also exactly ranks 0 and n−1.
 */
function percentiles(h: Hdr, min: number, max: number, ps: readonly number[]): number[] {
  const n = h.total;
  if (n === 0) return ps.map(() => 0);
  if (n === 1) return ps.map(() => min);
  const pos = ps.map((p) => (Math.min(100, Math.max(0, p)) / 100) * (n - 1));
  const ranks = [...new Set(pos.flatMap((i) => [Math.floor(i), Math.ceil(i)]))].sort((a, b) => a - b);
  const at = new Map<number, number>();
  const c = h.counts;
  let cum = 0;
  let r = 0;
  for (let i = 0; i <= h.maxIdx && r < ranks.length; i++) {
    if (c[i] === 0) continue;
    cum += c[i]!;
    if (ranks[r]! >= cum) continue;
    const v = Math.min(max, Math.max(min, h.median(i) / TREND_UNITS_PER_VALUE));
    for (; r < ranks.length && ranks[r]! < cum; r++) at.set(ranks[r]!, ranks[r] === 0 ? min : ranks[r] === n - 1 ? max : v);
  }
  return pos.map((i) => {
    const lo = at.get(Math.floor(i))!;
    const hi = at.get(Math.ceil(i))!;
    return lo + (hi - lo) * (i - Math.floor(i));
  });
}

// ---------------------------------------------------------------------------------------------
// HDR V2 payloads. A closed series bucket is kept as the body of HDR's V2 encoding (ZigZag LEB128
// counts, negative numbers for runs of empty slots): a few hundred bytes, mergeable by walking two
// payloads side by side, and wrapped into the standard compressed base64 only when written out.
// The bytes are exactly what hdr-histogram-js writes, so decodeHistogram() reads them.

const V2_COOKIE = 0x1c849303 | 0x10;
const V2_COMPRESSED_COOKIE = 0x1c849304 | 0x10;

class ByteWriter {
  buf = new Uint8Array(4096);
  len = 0;
  /** Index the next count would occupy, for run-length coding of empty slots. */
  next = 0;
  reset(): this {
    this.len = 0;
    this.next = 0;
    return this;
  }
  private byte(b: number): void {
    if (this.len === this.buf.length) {
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.len++] = b;
  }
  zigzag(value: number): void {
    let v = value >= 0 ? value * 2 : -value * 2 - 1;
    // LEB128; values stay far below 2^56, where the 64b9B variant would differ.
    while (v >= 128) {
      this.byte((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    this.byte(v);
  }
  /** Appends a non-zero count at `index` (indexes strictly increasing). */
  count(index: number, count: number): void {
    const gap = index - this.next;
    if (gap === 1) this.zigzag(0);
    else if (gap > 1) this.zigzag(-gap);
    this.zigzag(count);
    this.next = index + 1;
  }
  take(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

const writer = new ByteWriter();

class PayloadReader {
  private pos = 0;
  private index = 0;
  /** Slot and count of the entry next() last found. */
  at = -1;
  count = 0;
  constructor(private readonly bytes: Uint8Array) {}
  private zigzag(): number {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = this.bytes[this.pos++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) break;
      mul *= 128;
    }
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
  }
  /** Advances to the next non-zero count; false at the end. */
  next(): boolean {
    while (this.pos < this.bytes.length) {
      const v = this.zigzag();
      if (v < 0) this.index += -v;
      else if (v === 0) this.index++;
      else {
        this.count = v;
        this.at = this.index++;
        return true;
      }
    }
    return false;
  }
}

function mergePayloads(a: Uint8Array, b: Uint8Array): Uint8Array {
  const w = writer.reset();
  const ra = new PayloadReader(a);
  const rb = new PayloadReader(b);
  let ha = ra.next();
  let hb = rb.next();
  while (ha || hb) {
    if (ha && (!hb || ra.at < rb.at)) {
      w.count(ra.at, ra.count);
      ha = ra.next();
    } else if (hb && (!ha || rb.at < ra.at)) {
      w.count(rb.at, rb.count);
      hb = rb.next();
    } else {
      w.count(ra.at, ra.count + rb.count);
      ha = ra.next();
      hb = rb.next();
    }
  }
  return w.take();
}

function putInt64(buf: Buffer, value: number, offset: number): void {
  buf.writeUInt32BE(Math.floor(value / TWO_32) >>> 0, offset);
  buf.writeUInt32BE(value % TWO_32 >>> 0, offset + 4);
}

/** Wraps a V2 payload as HdrHistogram's compressed base64 (what encodeIntoCompressedBase64 returns). */
function encodePayload(payload: Uint8Array, digits: number, highest: number): string {
  const raw = Buffer.allocUnsafe(40 + payload.length);
  raw.writeUInt32BE(V2_COOKIE, 0);
  raw.writeUInt32BE(payload.length, 4);
  raw.writeUInt32BE(1, 8); // normalizing index offset, as hdr-histogram-js writes it
  raw.writeUInt32BE(digits, 12);
  putInt64(raw, 1, 16); // lowest discernible value
  putInt64(raw, highest, 24);
  putInt64(raw, 1, 32); // integer-to-double conversion ratio
  raw.set(payload, 40);
  const z = deflateSync(raw);
  const out = Buffer.allocUnsafe(8 + z.length);
  out.writeUInt32BE(V2_COMPRESSED_COOKIE, 0);
  out.writeUInt32BE(z.length, 4);
  out.set(z, 8);
  return out.toString('base64');
}

// ---------------------------------------------------------------------------------------------
// Sinks: k6's aggregation per metric type, with the raw data kept mergeable.

const COUNTER = 0;
const GAUGE = 1;
const RATE = 2;
const TREND = 3;
const TYPE_CODE: Record<MetricType, number> = { counter: COUNTER, gauge: GAUGE, rate: RATE, trend: TREND };

/**
 * Samples a trend keeps exactly (8 bytes each): up to this many, its percentiles are k6's own,
 * computed from the sorted samples; past it, from the HDR histogram (3 significant digits).
 */
export const EXACT_TREND_SAMPLES = 100_000;

/** k6's TrendSink.P: linear interpolation between the sorted samples at ranks floor and ceil of p·(n−1). */
function exactPercentiles(sorted: Float64Array, n: number, ps: readonly number[]): number[] {
  if (n === 0) return ps.map(() => 0);
  if (n === 1) return ps.map(() => sorted[0]!);
  return ps.map((p) => {
    const i = (Math.min(100, Math.max(0, p)) / 100) * (n - 1);
    const lo = sorted[Math.floor(i)]!;
    const hi = sorted[Math.ceil(i)]!;
    return lo + (hi - lo) * (i - Math.floor(i));
  });
}

class Sink {
  readonly t: number;
  /** trend: its samples while there are at most EXACT_TREND_SAMPLES (then null), sorted when `sorted`. */
  private exact: Float64Array | null = null;
  private sorted = true;
  samples = 0;
  /** counter and trend: sum of values; rate: passes (non-zero samples). */
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  /** gauge: last value set. */
  last = 0;
  readonly hist: Hdr | null;
  constructor(type: MetricType, kind: ValueKind) {
    this.t = TYPE_CODE[type];
    this.hist = type === 'trend' ? new Hdr(RUN_DIGITS, kind === 'time' ? TIME_HIGHEST : WIDE_HIGHEST) : null;
  }
  add(v: number): void {
    this.samples++;
    switch (this.t) {
      case COUNTER:
        this.sum += v;
        return;
      case RATE:
        if (v !== 0) this.sum++;
        return;
      case GAUGE:
        this.last = v;
        if (v < this.min) this.min = v;
        if (v > this.max) this.max = v;
        return;
      default:
        this.sum += v;
        if (v < this.min) this.min = v;
        if (v > this.max) this.max = v;
        this.hist!.record(scaled(v));
        this.keep(v);
    }
  }

  private keep(v: number): void {
    const n = this.samples;
    if (n > EXACT_TREND_SAMPLES) {
      this.exact = null;
      return;
    }
    if (n === 1) this.exact = new Float64Array(64);
    else if (!this.exact) return;
    else if (n > this.exact.length) {
      const grown = new Float64Array(Math.min(EXACT_TREND_SAMPLES, this.exact.length * 2));
      grown.set(this.exact);
      this.exact = grown;
    }
    if (this.sorted && n > 1 && v < this.exact[n - 2]!) this.sorted = false;
    this.exact[n - 1] = v;
  }

  /** Whether a trend's samples are all kept (its percentiles are exact). */
  isExact(): boolean {
    return this.exact !== null && this.samples > 0 && this.samples <= EXACT_TREND_SAMPLES;
  }

  /** A trend's percentiles (0–100): exact while its samples are all kept, else from the histogram. */
  percentiles(ps: readonly number[]): number[] {
    const n = this.samples;
    if (this.exact && n <= EXACT_TREND_SAMPLES) {
      if (!this.sorted) {
        this.exact.subarray(0, n).sort();
        this.sorted = true;
      }
      return exactPercentiles(this.exact, n, ps);
    }
    return percentiles(this.hist!, this.min, this.max, ps);
  }
}

class Metric {
  readonly sink: Sink;
  /** Sub-metrics of this metric, checked on every sample (a flat array for the hot path). */
  readonly subs: Submetric[] = [];
  readonly subsById = new Map<string, Submetric>();
  readonly series: MetricSeries;
  constructor(
    readonly name: string,
    readonly type: MetricType,
    readonly kind: ValueKind,
  ) {
    this.sink = new Sink(type, kind);
    this.series = new MetricSeries(this);
  }
}

interface Submetric {
  /** The selector as first registered, trimmed inside the braces (k6's sub-metric name). */
  readonly key: string;
  readonly parent: Metric;
  readonly tags: Tags;
  readonly tagKeys: string[];
  readonly tagValues: string[];
  readonly sink: Sink;
}

// ---------------------------------------------------------------------------------------------
// Sub-metric selectors.

export interface Selector {
  /** The metric name before the braces. */
  name: string;
  /** Tag pairs a sample must carry to be counted; empty for a plain metric name. */
  tags: Tags;
  /** The text inside the braces, trimmed (k6's sub-metric suffix); null for a plain metric name. */
  suffix: string | null;
}

/**
 * Parses `metric{tag:value,...}`. Whitespace around names, keys, values and commas is ignored;
 * a key or value may be quoted with " or ' (a quoted value may hold , : { }); a bare value may
 * hold ':' (URLs), as in k6. Empty braces, empty keys or bare values, a duplicate key and anything
 * after the closing brace are errors.
 */
export function parseSelector(text: string): Selector {
  const bad = (why: string) => new MetricError('K6_METRIC_SELECTOR', `invalid metric selector ${JSON.stringify(text)}: ${why}`);
  const src = text.trim();
  const open = src.indexOf('{');
  if (open < 0) {
    if (src.includes('}')) throw bad("'}' without '{'");
    if (src.length === 0) throw bad('empty metric name');
    return { name: src, tags: {}, suffix: null };
  }
  if (!src.endsWith('}')) throw bad("the selector must end with '}'");
  const name = src.slice(0, open).trim();
  if (name.length === 0) throw bad('empty metric name');
  const inner = src.slice(open + 1, -1);
  const tags: Tags = {};
  let i = 0;
  const ws = () => {
    while (i < inner.length && /\s/.test(inner[i]!)) i++;
  };
  const token = (stops: string): { text: string; quoted: boolean } => {
    ws();
    const q = inner[i];
    if (q === '"' || q === "'") {
      const end = inner.indexOf(q, i + 1);
      if (end < 0) throw bad(`unterminated ${q}`);
      const t = inner.slice(i + 1, end);
      i = end + 1;
      ws();
      return { text: t, quoted: true };
    }
    const start = i;
    while (i < inner.length && !stops.includes(inner[i]!)) {
      if ('{}"\''.includes(inner[i]!)) throw bad(`unexpected ${inner[i]}`);
      i++;
    }
    return { text: inner.slice(start, i).trim(), quoted: false };
  };
  for (;;) {
    const key = token(':,');
    if (key.text.length === 0) throw bad(inner.trim().length === 0 ? 'empty braces' : 'empty tag key');
    if (inner[i] !== ':') throw bad(`tag ${JSON.stringify(key.text)} has no ':value'`);
    i++;
    const value = token(',');
    if (!value.quoted && value.text.length === 0) throw bad(`tag ${JSON.stringify(key.text)} has an empty value`);
    if (key.text in tags && tags[key.text] !== value.text) throw bad(`tag ${JSON.stringify(key.text)} given twice`);
    tags[key.text] = value.text;
    if (i >= inner.length) break;
    if (inner[i] !== ',') throw bad(`unexpected ${inner[i]} after a tag value`);
    i++;
  }
  return { name, tags, suffix: inner.trim() };
}

function tagsId(tags: Tags): string {
  return Object.keys(tags)
    .sort()
    .map((k) => `${k}\u0000${tags[k]}`)
    .join('\u0001');
}

// ---------------------------------------------------------------------------------------------
// Time series: per metric, per value of the `name` tag and per value of the `scenario` tag.

/** A series tag value past the per-metric budget is folded into this one. */
export const OTHER_TAG_VALUE = '(other)';

class SeriesBuf {
  readonly count: number[] = [];
  readonly sum: number[] = [];
  readonly min: number[] = [];
  readonly max: number[] = [];
  /** gauges: the last value in each bucket. */
  readonly last: number[] | null;
  /** trends: closed buckets as V2 payloads, their encodings once asked for, and the open bucket. */
  readonly payload: Array<Uint8Array | null> | null;
  readonly encoded: Array<string | null> | null;
  readonly live: Hdr | null;
  liveIdx = -1;
  constructor(
    readonly metric: Metric,
    readonly tags: Tags,
  ) {
    this.last = metric.type === 'gauge' ? [] : null;
    const trend = metric.type === 'trend';
    this.payload = trend ? [] : null;
    this.encoded = trend ? [] : null;
    this.live = trend ? new Hdr(SERIES_DIGITS, metric.kind === 'time' ? TIME_HIGHEST : WIDE_HIGHEST) : null;
  }

  grow(len: number): void {
    while (this.count.length < len) {
      this.count.push(0);
      this.sum.push(0);
      this.min.push(Number.POSITIVE_INFINITY);
      this.max.push(Number.NEGATIVE_INFINITY);
      this.last?.push(Number.NaN);
      this.payload?.push(null);
      this.encoded?.push(null);
    }
  }

  record(idx: number, v: number): void {
    if (this.count.length <= idx) this.grow(idx + 1);
    // A rate's bucket counts passes: each sample is 1 (non-zero) or 0.
    if (this.metric.sink.t === RATE) v = v !== 0 ? 1 : 0;
    this.count[idx]!++;
    this.sum[idx]! += v;
    if (v < this.min[idx]!) this.min[idx] = v;
    if (v > this.max[idx]!) this.max[idx] = v;
    if (this.last) this.last[idx] = v;
    if (this.live) {
      if (this.liveIdx !== idx) {
        this.close();
        this.liveIdx = idx;
      }
      this.live.record(scaled(v));
    }
  }

  /** Moves the open bucket's histogram into the payload of its bucket. */
  close(): void {
    const live = this.live;
    if (!live || this.liveIdx < 0) return;
    if (live.total > 0) {
      const p = live.payload();
      const prev = this.payload![this.liveIdx];
      this.payload![this.liveIdx] = prev ? mergePayloads(prev, p) : p;
      this.encoded![this.liveIdx] = null;
      live.reset();
    }
    this.liveIdx = -1;
  }

  /** Merges buckets pairwise (2j and 2j+1 → j): exact for counts, sums, extremes and histograms. */
  halve(): void {
    this.close();
    const n = this.count.length;
    const m = Math.ceil(n / 2);
    for (let j = 0; j < m; j++) {
      const a = 2 * j;
      const b = a + 1;
      const hasB = b < n;
      this.count[j] = this.count[a]! + (hasB ? this.count[b]! : 0);
      this.sum[j] = this.sum[a]! + (hasB ? this.sum[b]! : 0);
      this.min[j] = hasB ? Math.min(this.min[a]!, this.min[b]!) : this.min[a]!;
      this.max[j] = hasB ? Math.max(this.max[a]!, this.max[b]!) : this.max[a]!;
      if (this.last) this.last[j] = hasB && this.count[b]! > 0 ? this.last[b]! : this.last[a]!;
      if (this.payload && this.encoded) {
        const pa = this.payload[a] ?? null;
        const pb = hasB ? (this.payload[b] ?? null) : null;
        if (pa && pb) {
          this.payload[j] = mergePayloads(pa, pb);
          this.encoded[j] = null;
        } else {
          // One side empty: the other's bytes (and any cached encoding) carry over unchanged.
          this.payload[j] = pa ?? pb;
          this.encoded[j] = (pa ? this.encoded[a] : hasB ? this.encoded[b] : null) ?? null;
        }
      }
    }
    for (const arr of [this.count, this.sum, this.min, this.max, this.last, this.payload, this.encoded]) {
      if (arr) arr.length = m;
    }
  }

  hdrAt(idx: number): string | null {
    const stored = this.payload![idx] ?? null;
    const live = this.live!;
    if (idx === this.liveIdx && live.total > 0) {
      const p = live.payload();
      return encodePayload(stored ? mergePayloads(stored, p) : p, SERIES_DIGITS, live.highest);
    }
    if (!stored) return null;
    return (this.encoded![idx] ??= encodePayload(stored, SERIES_DIGITS, live.highest));
  }
}

class MetricSeries {
  readonly total: SeriesBuf;
  readonly byName = new Map<string, SeriesBuf>();
  readonly byScenario = new Map<string, SeriesBuf>();
  constructor(readonly metric: Metric) {
    this.total = new SeriesBuf(metric, {});
  }
  *all(): Iterable<SeriesBuf> {
    yield this.total;
    yield* this.byName.values();
    yield* this.byScenario.values();
  }
}

/** One series: a metric, optionally narrowed to one `name` or one `scenario` tag value. */
export interface SeriesEntry {
  metric: string;
  type: MetricType;
  kind: ValueKind;
  /** {} for the whole metric, else {name: …} or {scenario: …}. */
  tags: Tags;
  /** Per bucket, aligned with SeriesData's buckets. count: samples; sum: their total (rates: passes). */
  count: number[];
  sum: number[];
  /** null where a bucket has no samples. Rates record 1 for a pass, 0 for a fail. */
  min: Array<number | null>;
  max: Array<number | null>;
  /** Gauges: the value last set in each bucket. */
  last?: Array<number | null>;
  /** Trends: HdrHistogram compressed base64 of value × 1000 (µs for time trends), 2 significant digits. */
  hdr?: Array<string | null>;
}

export interface SeriesData {
  /** Unix ms when the registry started; bucket i covers [startMs + i·bucketMs, startMs + (i+1)·bucketMs). */
  startMs: number;
  bucketMs: number;
  buckets: number;
  /** Samples whose `name` or `scenario` value went past the per-metric budget into '(other)'. */
  foldedTagValues: number;
  series: SeriesEntry[];
}

// ---------------------------------------------------------------------------------------------
// Snapshots: raw, mergeable data for result files; values are computed from them when read.

interface SnapshotBase {
  key: string;
  name: string;
  kind: ValueKind;
  submetric: boolean;
  /** Sub-metrics: the tags they select. */
  tags?: Tags;
  samples: number;
}
export type MetricSnapshot =
  | (SnapshotBase & { type: 'counter'; sum: number })
  | (SnapshotBase & { type: 'rate'; passes: number; fails: number })
  | (SnapshotBase & { type: 'gauge'; value: number; min: number; max: number })
  | (SnapshotBase & {
      type: 'trend';
      count: number;
      sum: number;
      min: number;
      max: number;
      /** HdrHistogram compressed base64 of value × hdrUnitsPerValue, 3 significant digits. */
      hdr: string;
      hdrUnitsPerValue: number;
      /**
       * The percentiles in SNAPSHOT_PERCENTILES computed exactly from the samples, as k6 does, when
       * the run kept them all (at most EXACT_TREND_SAMPLES); other percentiles come from `hdr`.
       */
      exact?: Record<string, number>;
    });

/** Percentiles a trend's snapshot keeps exactly (the summary's med, p(90), p(95), and the usual tails). */
export const SNAPSHOT_PERCENTILES: readonly number[] = [50, 90, 95, 99, 99.9];

export interface RegistrySnapshot {
  startMs: number;
  nowMs: number;
  metrics: MetricSnapshot[];
  /** The metrics the script declared itself (absent in older results). */
  declared?: string[];
}

/** Sink values of a snapshot entry, as MetricRegistry.values computes them live. */
export function snapshotValues(s: MetricSnapshot, durationMs: number, extraPercentiles: readonly number[] = []): Record<string, number> {
  switch (s.type) {
    case 'counter':
      return { count: s.sum, rate: perSecond(s.sum, durationMs) };
    case 'rate':
      return { rate: s.samples ? s.passes / s.samples : 0, passes: s.passes, fails: s.fails };
    case 'gauge':
      return { value: s.value, min: s.min, max: s.max };
    case 'trend': {
      const exact = s.exact;
      const fromExact = exact && [50, 90, 95, ...extraPercentiles].every((p) => pKey(p) in exact);
      return trendValues(hdrFromEncoded(s.hdr), s.sum, s.min, s.max, extraPercentiles, fromExact ? (ps) => ps.map((p) => exact[pKey(p)]!) : undefined);
    }
  }
}

function perSecond(count: number, durationMs: number): number {
  return durationMs > 0 ? count / (durationMs / 1000) : 0;
}

function pKey(p: number): string {
  return `p(${p})`;
}

/** Reads an encoded histogram (any HdrHistogram with lowest discernible value 1) into an Hdr. */
function hdrFromEncoded(encoded: string): Hdr {
  return hdrFromLib(decodeHistogram(encoded) as unknown as JsHistogram);
}

/**
 * Percentiles of encoded histograms merged (a series' buckets), as thresholds and the summary
 * export compute them, within the exact `min` and `max` of the samples: so a route's p95 in a table
 * means what `p(95)` means in a threshold.
 */
export function mergedPercentiles(encoded: readonly string[], min: number, max: number, ps: readonly number[]): number[] {
  const [first, ...rest] = encoded;
  if (first === undefined) return ps.map(() => 0);
  const lib = decodeHistogram(first);
  for (const e of rest) lib.add(decodeHistogram(e));
  return percentiles(hdrFromLib(lib as unknown as JsHistogram), min, max, ps);
}

function hdrFromLib(lib: JsHistogram): Hdr {
  const h = new Hdr(lib.numberOfSignificantValueDigits, lib.highestTrackableValue);
  const n = Math.min(lib.countsArrayLength, h.counts.length);
  for (let i = 0; i < n; i++) {
    const c = lib.getCountAtIndex(i);
    if (c === 0) continue;
    h.counts[i] = c;
    h.total += c;
    h.maxIdx = i;
  }
  return h;
}

function trendValues(h: Hdr, sum: number, min: number, max: number, extra: readonly number[], exact?: (ps: readonly number[]) => number[]): Record<string, number> {
  const count = h.total;
  const ps = [50, 90, 95, ...extra];
  const v = exact ? exact(ps) : percentiles(h, min, max, ps);
  const out: Record<string, number> = { avg: count ? sum / count : 0, min: count ? min : 0, med: v[0]!, max: count ? max : 0, 'p(90)': v[1]!, 'p(95)': v[2]! };
  extra.forEach((p, i) => (out[pKey(p)] = v[3 + i]!));
  return out;
}

/** A bound recorder for one metric: skips the name lookup on hot paths. */
export interface MetricHandle {
  readonly name: string;
  add(value: number, tags: Tags): void;
}

export interface MetricInfo {
  key: string;
  name: string;
  type: MetricType;
  kind: ValueKind;
  submetric: boolean;
}

export interface RegistryOptions {
  /** Width of a time-series bucket at the start (ms); doubles whenever buckets would exceed maxBuckets. */
  bucketMs?: number;
  /** Most buckets a series holds (≥ 2); beyond it adjacent buckets merge. */
  maxBuckets?: number;
  /** Distinct `name` (and, separately, `scenario`) values given their own series per metric; the rest fold into '(other)'. */
  maxTagValues?: number;
  /** Define BUILTIN_METRICS and DEFAULT_SUBMETRICS up front (default true). */
  builtins?: boolean;
}

export class MetricRegistry {
  /** Unix ms when the registry started (counter rates and series buckets count from here). */
  readonly startMs: number;
  private readonly metrics = new Map<string, Metric>();
  private bucketMsNow: number;
  private readonly maxBuckets: number;
  private readonly maxTagValues: number;
  /** Index of the newest bucket any sample went into. */
  private curIdx = 0;
  private folded = 0;

  constructor(
    private readonly nowMs: () => number,
    opts: RegistryOptions = {},
  ) {
    this.startMs = nowMs();
    this.bucketMsNow = opts.bucketMs ?? 1000;
    this.maxBuckets = opts.maxBuckets ?? 720;
    this.maxTagValues = opts.maxTagValues ?? 100;
    if (!(this.bucketMsNow > 0) || !Number.isFinite(this.bucketMsNow)) throw new MetricError('K6_METRIC_OPTIONS', `bucketMs must be a positive number of ms, got ${opts.bucketMs}`);
    if (!Number.isInteger(this.maxBuckets) || this.maxBuckets < 2) throw new MetricError('K6_METRIC_OPTIONS', `maxBuckets must be an integer ≥ 2, got ${opts.maxBuckets}`);
    if (!Number.isInteger(this.maxTagValues) || this.maxTagValues < 0) throw new MetricError('K6_METRIC_OPTIONS', `maxTagValues must be an integer ≥ 0, got ${opts.maxTagValues}`);
    if (opts.builtins ?? true) {
      for (const [name, d] of Object.entries(BUILTIN_METRICS)) this.define(name, d.type, d.kind);
      for (const sel of DEFAULT_SUBMETRICS) this.addSubmetric(sel);
    }
  }

  /** ms since the registry started. */
  elapsedMs(): number {
    return this.nowMs() - this.startMs;
  }

  /** Current width of a series bucket (ms). */
  get bucketMs(): number {
    return this.bucketMsNow;
  }

  /** Metrics the script declared itself (k6/metrics), as opposed to those the runner defined. */
  readonly declared = new Set<string>();

  /** Notes that the script declared `name` (k6/metrics' constructors call it). */
  markDeclared(name: string): void {
    this.declared.add(name);
  }

  define(name: string, type: MetricType, kind: ValueKind = 'default'): void {
    const existing = this.metrics.get(name);
    if (existing) {
      if (existing.type !== type || existing.kind !== kind) {
        throw new MetricError('K6_METRIC_REDEFINED', `metric "${name}" already exists as a ${existing.type} (${existing.kind}); it cannot be redefined as a ${type} (${kind})`);
      }
      return;
    }
    if (!METRIC_NAME.test(name)) {
      throw new MetricError('K6_METRIC_NAME', `invalid metric name "${name}": 1–128 letters, digits or ._ !?/&#()<>%- (k6's rule)`);
    }
    if (!(type in TYPE_CODE)) throw new MetricError('K6_METRIC_AGGREGATION', `metric "${name}": unknown type ${String(type)}`);
    if (kind !== 'time' && kind !== 'data' && kind !== 'default') throw new MetricError('K6_METRIC_AGGREGATION', `metric "${name}": unknown kind ${String(kind)}`);
    this.metrics.set(name, new Metric(name, type, kind));
  }

  add(name: string, value: number, tags: Tags): void {
    const m = this.metrics.get(name);
    if (!m) throw new MetricError('K6_METRIC_UNKNOWN', `no metric named "${name}" is defined`);
    this.record(m, value, tags);
  }

  /** A recorder bound to one metric (throws now if it is unknown). */
  metric(name: string): MetricHandle {
    const m = this.metrics.get(name);
    if (!m) throw new MetricError('K6_METRIC_UNKNOWN', `no metric named "${name}" is defined`);
    return { name, add: (value, tags) => this.record(m, value, tags) };
  }

  /**
   * A recorder for one metric and one fixed tag set, for hot loops (the simulator records tens of
   * millions of samples): the sub-metrics the tags match and the series they feed are found once,
   * so a sample is the same work as `add` without the tag matching and map lookups. Sub-metrics
   * added later (thresholds are parsed before any sample) are not seen by it.
   */
  bound(name: string, tags: Tags): (value: number) => void {
    const m = this.metrics.get(name);
    if (!m) throw new MetricError('K6_METRIC_UNKNOWN', `no metric named "${name}" is defined`);
    const subs = m.subs.filter((sub) => sub.tagKeys.every((k, i) => tags[k] === sub.tagValues[i]));
    const total = m.series.total;
    const byName = tags.name !== undefined ? this.tagSeries(m.series.byName, 'name', tags.name, m) : null;
    const byScenario = tags.scenario !== undefined ? this.tagSeries(m.series.byScenario, 'scenario', tags.scenario, m) : null;
    const sink = m.sink;
    return (value: number) => {
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new MetricError('K6_METRIC_VALUE', `metric "${name}": sample value must be a finite number, got ${String(value)}`);
      sink.add(value);
      for (let i = 0; i < subs.length; i++) subs[i]!.sink.add(value);
      const idx = this.bucketIndex();
      total.record(idx, value);
      byName?.record(idx, value);
      byScenario?.record(idx, value);
    };
  }

  private record(m: Metric, value: number, tags: Tags): void {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new MetricError('K6_METRIC_VALUE', `metric "${m.name}": sample value must be a finite number, got ${String(value)}`);
    }
    this.tap?.(m.name, value, tags);
    m.sink.add(value);
    const subs = m.subs;
    for (let s = 0; s < subs.length; s++) {
      const sub = subs[s]!;
      const keys = sub.tagKeys;
      let match = true;
      for (let k = 0; k < keys.length; k++) {
        if (tags[keys[k]!] !== sub.tagValues[k]) {
          match = false;
          break;
        }
      }
      if (match) sub.sink.add(value);
    }
    const idx = this.bucketIndex();
    const series = m.series;
    series.total.record(idx, value);
    const name = tags.name;
    if (name !== undefined) this.tagSeries(series.byName, 'name', name, m).record(idx, value);
    const scenario = tags.scenario;
    if (scenario !== undefined) this.tagSeries(series.byScenario, 'scenario', scenario, m).record(idx, value);
  }

  private tagSeries(map: Map<string, SeriesBuf>, key: string, value: string, m: Metric): SeriesBuf {
    let s = map.get(value);
    if (s) return s;
    if (map.size >= this.maxTagValues) {
      // Budget: URLs used as names would otherwise make one series per URL.
      this.folded++;
      value = OTHER_TAG_VALUE;
      s = map.get(value);
      if (s) return s;
    }
    s = new SeriesBuf(m, { [key]: value });
    map.set(value, s);
    return s;
  }

  private bucketIndex(): number {
    let idx = Math.floor((this.nowMs() - this.startMs) / this.bucketMsNow);
    // A clock that steps back puts samples in the newest bucket rather than rewriting history.
    if (!(idx >= this.curIdx)) idx = this.curIdx;
    while (idx >= this.maxBuckets) {
      for (const m of this.metrics.values()) for (const s of m.series.all()) s.halve();
      this.bucketMsNow *= 2;
      this.curIdx = Math.floor(this.curIdx / 2);
      idx = Math.floor(idx / 2);
    }
    this.curIdx = idx;
    return idx;
  }

  /**
   * Sees every sample recorded through add() and metric() (not bound(), the simulator's path), after
   * it is checked: `scalegram run --out json=FILE` writes k6's JSON output from it.
   */
  tap: ((name: string, value: number, tags: Tags) => void) | null = null;

  /** The sub-metrics registered on a metric, as k6's JSON output lists them. */
  submetricsOf(name: string): Array<{ name: string; suffix: string; tags: Tags }> {
    const m = this.metrics.get(name);
    return m ? m.subs.map((sub) => ({ name: sub.key, suffix: sub.key.slice(sub.key.indexOf('{') + 1, -1), tags: { ...sub.tags } })) : [];
  }

  addSubmetric(selector: string): string {
    const sel = parseSelector(selector);
    if (sel.suffix === null) throw new MetricError('K6_METRIC_SELECTOR', `"${selector}" selects no tags; a sub-metric is metric{tag:value,...}`);
    const parent = this.metrics.get(sel.name);
    if (!parent) throw new MetricError('K6_METRIC_UNKNOWN', `sub-metric "${selector}": no metric named "${sel.name}" is defined`);
    const id = tagsId(sel.tags);
    const existing = parent.subsById.get(id);
    if (existing) return existing.key;
    const tagKeys = Object.keys(sel.tags);
    const sub: Submetric = {
      key: `${sel.name}{${sel.suffix}}`,
      parent,
      tags: sel.tags,
      tagKeys,
      tagValues: tagKeys.map((k) => sel.tags[k]!),
      sink: new Sink(parent.type, parent.kind),
    };
    parent.subs.push(sub);
    parent.subsById.set(id, sub);
    return sub.key;
  }

  /** The key a metric or registered sub-metric is reported under (a sub-metric's first spelling), or undefined. */
  resolve(nameOrSelector: string): string | undefined {
    const found = this.find(nameOrSelector);
    return found ? ('parent' in found ? found.key : found.name) : undefined;
  }

  private find(nameOrSelector: string): Metric | Submetric | undefined {
    const direct = this.metrics.get(nameOrSelector);
    if (direct) return direct;
    let sel: Selector;
    try {
      sel = parseSelector(nameOrSelector);
    } catch {
      return undefined;
    }
    const m = this.metrics.get(sel.name);
    if (!m || sel.suffix === null) return m;
    return m.subsById.get(tagsId(sel.tags));
  }

  private sinkOf(nameOrSelector: string): { sink: Sink; type: MetricType } {
    const found = this.find(nameOrSelector);
    if (!found) throw new MetricError('K6_METRIC_UNKNOWN', `no metric or registered sub-metric "${nameOrSelector}"`);
    return 'parent' in found ? { sink: found.sink, type: found.parent.type } : { sink: found.sink, type: found.type };
  }

  has(nameOrSelector: string): boolean {
    return this.find(nameOrSelector) !== undefined;
  }

  type(name: string): MetricType | undefined {
    const found = this.find(name);
    return found ? ('parent' in found ? found.parent.type : found.type) : undefined;
  }

  /** Whether the metric or sub-metric has no samples yet. */
  isEmpty(nameOrSelector: string): boolean {
    return this.sinkOf(nameOrSelector).sink.samples === 0;
  }

  values(nameOrSelector: string, extraPercentiles: readonly number[] = [], durationMs?: number): Record<string, number> {
    const { sink, type } = this.sinkOf(nameOrSelector);
    const empty = sink.samples === 0;
    switch (type) {
      case 'counter':
        return { count: sink.sum, rate: perSecond(sink.sum, durationMs ?? this.elapsedMs()) };
      case 'rate':
        return { rate: empty ? 0 : sink.sum / sink.samples, passes: sink.sum, fails: sink.samples - sink.sum };
      case 'gauge':
        return { value: sink.last, min: empty ? 0 : sink.min, max: empty ? 0 : sink.max };
      case 'trend':
        return trendValues(sink.hist!, sink.sum, sink.min, sink.max, extraPercentiles, (ps) => sink.percentiles(ps));
    }
  }

  /**
   * One aggregation: trend avg|min|max|med|count|p(N); counter count|rate; rate rate|passes|fails;
   * gauge value|min|max. Empty sinks read as k6's do (zeros). `durationMs` (default: since start) is
   * what a counter's rate divides by.
   */
  stat(nameOrSelector: string, aggregation: string, durationMs?: number): number {
    const { sink, type } = this.sinkOf(nameOrSelector);
    if (type === 'trend') {
      if (aggregation === 'count') return sink.samples;
      const pm = /^p\((.+)\)$/.exec(aggregation);
      if (pm) {
        const p = Number(pm[1]);
        if (!Number.isFinite(p) || p < 0 || p > 100) throw new MetricError('K6_METRIC_AGGREGATION', `bad percentile ${aggregation}`);
        return sink.percentiles([p])[0]!;
      }
      if (aggregation === 'med') return sink.percentiles([50])[0]!;
    }
    const v = this.values(nameOrSelector, [], durationMs)[aggregation];
    if (v === undefined) throw new MetricError('K6_METRIC_AGGREGATION', `a ${type} has no ${aggregation} (metric "${nameOrSelector}")`);
    return v;
  }

  /** Every metric and sub-metric with samples (or every one defined, with includeEmpty), parents before their sub-metrics. */
  list(opts: { includeEmpty?: boolean } = {}): MetricInfo[] {
    const out: MetricInfo[] = [];
    for (const m of this.metrics.values()) {
      if (opts.includeEmpty || m.sink.samples > 0) out.push({ key: m.name, name: m.name, type: m.type, kind: m.kind, submetric: false });
      for (const s of m.subs) {
        if (opts.includeEmpty || s.sink.samples > 0) out.push({ key: s.key, name: m.name, type: m.type, kind: m.kind, submetric: true });
      }
    }
    return out;
  }

  /** Metadata of one metric or registered sub-metric. */
  info(nameOrSelector: string): MetricInfo | undefined {
    const found = this.find(nameOrSelector);
    if (!found) return undefined;
    if ('parent' in found) return { key: found.key, name: found.parent.name, type: found.parent.type, kind: found.parent.kind, submetric: true };
    return { key: found.name, name: found.name, type: found.type, kind: found.kind, submetric: false };
  }

  series(): SeriesData {
    const buckets = this.curIdx + 1;
    const out: SeriesEntry[] = [];
    const nullIfEmpty = (count: number[], arr: number[]) => arr.map((v, i) => (count[i]! > 0 ? v : null));
    for (const m of this.metrics.values()) {
      if (m.sink.samples === 0) continue;
      for (const s of m.series.all()) {
        s.grow(buckets);
        const e: SeriesEntry = {
          metric: m.name,
          type: m.type,
          kind: m.kind,
          tags: { ...s.tags },
          count: s.count.slice(0, buckets),
          sum: s.sum.slice(0, buckets),
          min: nullIfEmpty(s.count, s.min.slice(0, buckets)),
          max: nullIfEmpty(s.count, s.max.slice(0, buckets)),
        };
        if (s.last) e.last = nullIfEmpty(s.count, s.last.slice(0, buckets));
        if (s.payload) e.hdr = Array.from({ length: buckets }, (_, i) => s.hdrAt(i));
        out.push(e);
      }
    }
    return { startMs: this.startMs, bucketMs: this.bucketMsNow, buckets, foldedTagValues: this.folded, series: out };
  }

  toJSON(): RegistrySnapshot {
    const metrics: MetricSnapshot[] = [];
    const snap = (key: string, name: string, type: MetricType, kind: ValueKind, sink: Sink, tags?: Tags): MetricSnapshot => {
      const base = { key, name, kind, submetric: tags !== undefined, ...(tags ? { tags: { ...tags } } : {}), samples: sink.samples };
      const empty = sink.samples === 0;
      switch (type) {
        case 'counter':
          return { ...base, type, sum: sink.sum };
        case 'rate':
          return { ...base, type, passes: sink.sum, fails: sink.samples - sink.sum };
        case 'gauge':
          return { ...base, type, value: sink.last, min: empty ? 0 : sink.min, max: empty ? 0 : sink.max };
        case 'trend':
          return {
            ...base,
            type,
            count: sink.samples,
            sum: sink.sum,
            min: empty ? 0 : sink.min,
            max: empty ? 0 : sink.max,
            hdr: sink.hist!.encode(),
            hdrUnitsPerValue: TREND_UNITS_PER_VALUE,
            ...(sink.isExact() ? { exact: Object.fromEntries(sink.percentiles(SNAPSHOT_PERCENTILES).map((v, i) => [pKey(SNAPSHOT_PERCENTILES[i]!), v])) } : {}),
          };
      }
    };
    for (const m of this.metrics.values()) {
      if (m.sink.samples > 0) metrics.push(snap(m.name, m.name, m.type, m.kind, m.sink));
      for (const s of m.subs) if (s.sink.samples > 0) metrics.push(snap(s.key, m.name, m.type, m.kind, s.sink, s.tags));
    }
    return { startMs: this.startMs, nowMs: this.nowMs(), metrics, declared: [...this.declared].sort() };
  }
}
