// Merging a tier's metrics (serve --workers): processes that started at different moments export
// their state as JSON, and the leader's merged Metrics reads as one Metrics that saw every process's
// counts (counters, family totals and bands, histograms and their windows), with gauges added or
// maxed by what they measure. Virtual clocks only: every assertion is on exact counts.

import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../sim/engine/clock.ts';
import { Prng } from '../sim/engine/prng.ts';
import { Metrics, TIER_SUMMED_GAUGES, labelKey, type Labels, type MetricsState } from '../sim/observability/metrics.ts';

const T0 = 1_400_000_000_000;

/** What the leader receives over IPC: a process's state through JSON. */
function viaJson(m: Metrics): MetricsState {
  return JSON.parse(JSON.stringify(m.exportState())) as MetricsState;
}

/** One wall clock read by several processes: every clock moves on together. */
async function advance(clocks: readonly VirtualClock[], ms: number): Promise<void> {
  for (const c of clocks) await c.advance(ms);
}

function setUp(m: Metrics, topK: number): void {
  m.describe('requests', 'Requests served, by route');
  m.limitSeries('shard_ops', { topK, partitionBy: 'cluster', bands: { label: 'shard', width: 4, count: 2 } });
  m.trackOverTime('lag_ms', 2000);
}

/** One random operation, recorded the same in each of `into`. */
function feed(rng: Prng, into: readonly Metrics[]): void {
  const route = ['feed', 'like', 'post'][rng.int(0, 2)]!;
  const cluster = rng.chance(0.5) ? 'users' : 'media';
  const shard = rng.int(0, 7);
  const lag = rng.exponential(30);
  const ms = rng.exponential(20);
  for (const m of into) {
    m.inc('requests', { route });
    m.inc('shard_ops', { cluster, shard }, 1 + (shard % 3));
    m.observe('lag_ms', {}, lag);
    m.observe('http_ms', { route }, ms);
  }
}

const byLabels = <T extends { name: string; labels: Labels }>(list: readonly T[]) => [...list].sort((x, y) => labelKey(x.name, x.labels).localeCompare(labelKey(y.name, y.labels)));

/** A family's summary as plain data, partitions in name order. */
function summaryOf(m: Metrics, name: string) {
  return Object.fromEntries([...m.familySummary(name)].sort(([x], [y]) => x.localeCompare(y)));
}

/** The counter lines of Prometheus text (HELP, TYPE, samples), sorted: label sets may come in another order. */
function counterLines(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => /^\S+_total[{ ]/.test(l) || /^# (HELP|TYPE) \S+_total /.test(l))
    .sort();
}

/**
 * A leader started at T0 and a second process started 4 s later, both fed for 12.5 s (one random
 * stream each), and `one` Metrics fed both streams on the leader's clock: what a single process
 * serving everything would have counted. Families keep `topK` points per bucket and cluster.
 */
async function twoProcesses(topK: number) {
  const clockA = new VirtualClock(T0);
  const a = new Metrics(clockA);
  const one = new Metrics(clockA);
  // Every point, never capped: the truth a capped family's points are compared with.
  const truth = new Metrics(clockA);
  setUp(a, topK);
  setUp(one, topK);
  const rngA = new Prng(1);
  const rngB = new Prng(2);
  for (let i = 0; i < 16; i++) {
    feed(rngA, [a, one, truth]);
    await clockA.advance(250);
  }
  const clockB = new VirtualClock(T0 + 4000);
  const b = new Metrics(clockB);
  setUp(b, topK);
  for (let i = 0; i < 34; i++) {
    feed(rngA, [a, one, truth]);
    feed(rngB, [b, one, truth]);
    await advance([clockA, clockB], 250);
  }
  return { clockA, clockB, a, b, one, truth };
}

describe('Metrics.fromStates: a tier read as one process', () => {
  it('two processes started 4 s apart, merged through JSON, read as one Metrics fed both streams', async () => {
    const { clockA, a, b, one } = await twoProcesses(8); // 8 shards per cluster: no process drops a point
    const merged = Metrics.fromStates(clockA, [viaJson(a), viaJson(b)]);
    expect(merged.startMs).toBe(T0);
    expect(merged.bucketMs).toBe(1000);
    expect(merged.elapsedMs()).toBe(12_500);

    for (const name of ['requests', 'shard_ops']) {
      expect(byLabels(merged.countersNamed(name))).toEqual(byLabels(one.countersNamed(name)));
      expect(merged.sum(name)).toBe(one.sum(name));
      for (const c of one.countersNamed(name)) {
        expect(merged.value(name, c.labels)).toBe(c.value);
        expect(merged.seriesOf(name, c.labels)).toEqual(one.seriesOf(name, c.labels));
      }
    }
    expect(merged.sum('requests')).toBe(16 + 34 * 2);
    expect(merged.sum('shard_ops', { cluster: 'users' })).toBe(one.sum('shard_ops', { cluster: 'users' }));
    // The second process's first bucket is the leader's fifth: its counts are there, on top of the leader's.
    const feedPoints = new Map(merged.seriesOf('requests', { route: 'feed' }));
    const aPoints = new Map(a.seriesOf('requests', { route: 'feed' }));
    const bPoints = new Map(b.seriesOf('requests', { route: 'feed' }));
    expect(feedPoints.get(4000)).toBe((aPoints.get(4000) ?? 0) + (bPoints.get(0) ?? 0));
    expect(bPoints.get(0)).toBeGreaterThan(0);

    // Family summaries, max and active included (no process dropped a point); bucket 12 is under way.
    expect(summaryOf(merged, 'shard_ops')).toEqual(summaryOf(one, 'shard_ops'));
    expect(merged.familySummary('shard_ops').get('users')!.map((p) => p.t)).toEqual(Array.from({ length: 12 }, (_, i) => i * 1000));

    for (const route of ['feed', 'like', 'post']) {
      expect(merged.histogramCount('http_ms', { route })).toBe(one.histogramCount('http_ms', { route }));
      for (const p of [0, 50, 90, 99, 100]) expect(merged.percentile('http_ms', { route }, p)).toBe(one.percentile('http_ms', { route }, p));
    }
    // Snapshots: exact but for min and max, which the encoding keeps to HDR precision (0.1%).
    const histograms = (m: Metrics) => byLabels(m.snapshot({ encode: false }).histograms);
    histograms(merged).forEach((h, i) => {
      const { minMs, maxMs, ...rest } = histograms(one)[i]!;
      expect(h).toMatchObject(rest);
      expect(Math.abs(h.minMs - minMs)).toBeLessThanOrEqual(minMs * 0.001);
      expect(Math.abs(h.maxMs - maxMs)).toBeLessThanOrEqual(maxMs * 0.001);
    });
    expect(merged.histogramCount('lag_ms')).toBe(84);
    for (const p of [0, 50, 90, 99, 100]) expect(merged.percentile('lag_ms', {}, p)).toBe(one.percentile('lag_ms', {}, p));

    // Windows (2 s) realigned too; their max is kept to HDR precision only (encoding keeps bucket counts).
    const windows = (m: Metrics) => m.histogramWindows('lag_ms').map(({ t, count, p50Ms, p99Ms }) => ({ t, count, p50Ms, p99Ms }));
    expect(windows(merged)).toEqual(windows(one));
    expect(windows(one).map((w) => w.t)).toEqual([0, 2000, 4000, 6000, 8000, 10_000, 12_000]);
    merged.histogramWindows('lag_ms').forEach((w, i) => expect(Math.abs(w.maxMs - one.histogramWindows('lag_ms')[i]!.maxMs)).toBeLessThanOrEqual(w.maxMs * 0.01));

    expect(counterLines(merged.prometheus())).toEqual(counterLines(one.prometheus()));
    expect(merged.prometheus()).toContain('# HELP scalegram_requests_total Requests served, by route');
  });

  it('capped families: exact totals and bands, max and active as lower bounds, at most topK points per bucket, none above the truth', async () => {
    const { clockA, a, b, one, truth } = await twoProcesses(2);
    const merged = Metrics.fromStates(clockA, [viaJson(a), viaJson(b)]);
    expect(merged.sum('shard_ops')).toBe(one.sum('shard_ops'));

    const check = () => {
      const got = merged.familySummary('shard_ops');
      const want = one.familySummary('shard_ops');
      const aSummary = a.familySummary('shard_ops');
      const bSummary = b.familySummary('shard_ops');
      expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [cluster, points] of want) {
        const mine = got.get(cluster)!;
        expect(mine.map((p) => [p.t, p.total, p.bands])).toEqual(points.map((p) => [p.t, p.total, p.bands]));
        mine.forEach((p, i) => {
          const ofA = aSummary.get(cluster)?.find((x) => x.t === p.t);
          const ofB = bSummary.get(cluster)?.find((x) => x.t === p.t - 4000);
          expect(p.max).toBeLessThanOrEqual(points[i]!.max);
          expect(p.max).toBeGreaterThanOrEqual(Math.max(ofA?.max ?? 0, ofB?.max ?? 0));
          expect(p.active).toBeLessThanOrEqual(points[i]!.active);
          expect(p.active).toBeGreaterThanOrEqual(Math.max(ofA?.active ?? 0, ofB?.active ?? 0));
        });
      }
      const underWay = Math.floor(merged.elapsedMs() / 1000) * 1000;
      for (const cluster of ['users', 'media']) {
        const perBucket = new Map<number, number>();
        for (let shard = 0; shard < 8; shard++) {
          const real = new Map(truth.seriesOf('shard_ops', { cluster, shard }));
          for (const [t, v] of merged.seriesOf('shard_ops', { cluster, shard })) {
            expect(v).toBeLessThanOrEqual(real.get(t)!);
            // The bucket under way still has every point.
            if (t === underWay) expect(v).toBe(real.get(t));
            perBucket.set(t, (perBucket.get(t) ?? 0) + 1);
          }
        }
        for (const [t, n] of perBucket) if (t < underWay) expect(n).toBeLessThanOrEqual(2);
      }
    };
    check();
    // Something was capped, or this test proves nothing about the carried parts.
    expect(merged.familySummary('shard_ops').get('users')!.some((p) => p.active > 2)).toBe(true);

    // The bucket under way (12) was raw in both processes: finished on the leader's clock, it is
    // summarised once, exactly, and capped.
    await clockA.advance(1000);
    expect(merged.familySummary('shard_ops').get('users')).toHaveLength(13);
    check();
  });

  it('a bucket still under way when a process exported, finished by the time the leader merges, is summarised once', async () => {
    const { clockA, clockB, a, b, one } = await twoProcesses(2);
    const stateA = viaJson(a);
    const stateB = viaJson(b);
    expect(stateA.families[0]!.compactedBefore).toBe(12);
    await advance([clockA, clockB], 700); // 13.2 s: bucket 12 is finished here
    const merged = Metrics.fromStates(clockA, [stateA, stateB]);
    const totals = (m: Metrics) => [...m.familySummary('shard_ops')].sort(([x], [y]) => x.localeCompare(y)).map(([c, pts]) => [c, pts.map((p) => [p.t, p.total])]);
    expect(totals(merged)).toEqual(totals(one));
    expect(merged.familySummary('shard_ops').get('users')!.at(-1)!.t).toBe(12_000);
    const total = [...merged.familySummary('shard_ops').values()].flat().reduce((s, p) => s + p.total, 0);
    expect(total).toBe(a.sum('shard_ops') + b.sum('shard_ops'));
  });

  it("a bucket a process compacted (its clock ahead) that is still under way on the leader's clock is neither lost nor counted twice", async () => {
    const clockA = new VirtualClock(T0);
    const a = new Metrics(clockA);
    a.limitSeries('shard_ops', { topK: 1, partitionBy: 'cluster' });
    await clockA.advance(2000);
    const clockB = new VirtualClock(T0 + 2000);
    const b = new Metrics(clockB);
    b.limitSeries('shard_ops', { topK: 1, partitionBy: 'cluster' });
    for (let i = 0; i < 22; i++) {
      // 5.5 s: A's buckets 2–7, B's 0–5 (the leader's 2–7); shards 0–3 with 1–4 ops each.
      a.inc('shard_ops', { cluster: 'main', shard: i % 4 }, 1 + (i % 4));
      for (const s of [(2 * i) % 4, (2 * i + 1) % 4]) b.inc('shard_ops', { cluster: 'main', shard: s }, 1 + s);
      await advance([clockA, clockB], 250);
    }
    await clockB.advance(600); // B's clock runs ahead: its bucket 5 (the leader's 7) is finished there
    const stateB = viaJson(b);
    expect(stateB.families[0]!.compactedBefore).toBe(6);
    const merged = Metrics.fromStates(clockA, [viaJson(a), stateB]);
    expect(merged.familySummary('shard_ops').get('main')!.map((p) => p.t)).toEqual([2000, 3000, 4000, 5000, 6000]);

    // Counting into the merged Metrics works too, and adds to the bucket under way.
    merged.inc('shard_ops', { cluster: 'main', shard: 9 }, 5);
    await clockA.advance(1000);
    const bucket7 = merged.familySummary('shard_ops').get('main')!.find((p) => p.t === 7000)!;
    const ofA = a.familySummary('shard_ops').get('main')!.find((p) => p.t === 7000)!;
    const ofB = b.familySummary('shard_ops').get('main')!.find((p) => p.t === 5000)!;
    expect(ofB.active).toBe(4); // B kept one point of four
    expect(bucket7.total).toBe(ofA.total + ofB.total + 5);
    expect(bucket7.active).toBeGreaterThanOrEqual(Math.max(ofA.active, ofB.active));
    const total = merged.familySummary('shard_ops').get('main')!.reduce((s, p) => s + p.total, 0);
    expect(total).toBe(a.sum('shard_ops') + b.sum('shard_ops') + 5);
    expect(merged.value('shard_ops', { cluster: 'main', shard: 9 })).toBe(5);
    merged.observe('lag_ms', {}, 3);
    merged.set('queue_depth', {}, 2);
    expect(merged.histogramCount('lag_ms')).toBe(1);
  });

  it('exportState sends finished family buckets compacted (summary and topK points), even with nothing counted since', async () => {
    const clock = new VirtualClock(T0);
    const m = new Metrics(clock);
    m.limitSeries('shard_ops', { topK: 1, partitionBy: 'cluster' });
    for (const shard of [0, 1, 2]) m.inc('shard_ops', { cluster: 'main', shard }, shard + 1);
    await clock.advance(2500);
    const state = viaJson(m);
    expect(state.families).toEqual([{ name: 'shard_ops', topK: 1, partitionBy: 'cluster', bands: null, compactedBefore: 2, summary: [{ partition: 'main', buckets: [{ t: 0, total: 6, max: 3, active: 3, bands: null }] }] }]);
    expect(state.counters.map((c) => c.buckets)).toEqual([[], [], [[0, 3]]]);
  });

  it('a family keeping no points (topK 0): totals add, max and active are the largest of the processes’', async () => {
    const clockA = new VirtualClock(T0);
    const clockB = new VirtualClock(T0);
    const a = new Metrics(clockA);
    const b = new Metrics(clockB);
    for (const m of [a, b]) m.limitSeries('shard_ops', { topK: 0 });
    for (const shard of [0, 1, 2]) a.inc('shard_ops', { shard }, 2);
    b.inc('shard_ops', { shard: 0 }, 5);
    await advance([clockA, clockB], 1000);
    const merged = Metrics.fromStates(clockA, [viaJson(a), viaJson(b)]);
    expect(merged.familySummary('shard_ops').get('')).toEqual([{ t: 0, total: 11, max: 5, active: 3 }]);
    expect(merged.seriesOf('shard_ops', { shard: 0 })).toEqual([]);
    expect(merged.value('shard_ops', { shard: 0 })).toBe(7);
  });

  it('gauges: per-process readings add (each bucket every process’s latest), shared readings take the max', async () => {
    const clockA = new VirtualClock(T0);
    const a = new Metrics(clockA);
    await clockA.advance(2000);
    const clockB = new VirtualClock(T0 + 2000);
    const b = new Metrics(clockB);
    const db0 = { node: 'db-0' };
    // Bucket 2 on the leader's axis, B's 0.
    a.set('db_pool_in_use', db0, 3);
    b.set('db_pool_in_use', db0, 4);
    a.set('queue_depth', {}, 10);
    b.set('queue_depth', {}, 12);
    a.set('journal_open', {}, 2);
    await advance([clockA, clockB], 1000);
    a.set('db_pool_in_use', db0, 1); // B's 4 holds
    a.set('queue_depth', {}, 15);
    b.set('queue_depth', {}, 14);
    b.set('journal_open', {}, 5); // A's 2 holds
    await advance([clockA, clockB], 1000);
    b.set('db_pool_in_use', db0, 9);
    b.set('queue_depth', {}, 1);
    const states = [viaJson(a), viaJson(b)];
    const merged = Metrics.fromStates(clockA, states);

    expect(merged.gauge('db_pool_in_use', db0)).toBe(1 + 9);
    expect(merged.seriesOf('db_pool_in_use', db0)).toEqual([
      [2000, 3 + 4],
      [3000, 1 + 4],
      [4000, 1 + 9],
    ]);
    // Sums of each process's extremes: bounds, as their peaks need not coincide.
    expect(merged.gaugeMax('db_pool_in_use', db0)).toBe(3 + 9);
    expect(merged.snapshot().gauges.find((g) => g.name === 'db_pool_in_use')).toMatchObject({ value: 10, min: 1 + 4, max: 12 });
    expect(merged.gauge('journal_open')).toBe(7);
    expect(merged.seriesOf('journal_open')).toEqual([
      [2000, 2],
      [3000, 2 + 5],
    ]);

    expect(merged.gauge('queue_depth')).toBe(15);
    expect(merged.gaugeMax('queue_depth')).toBe(15);
    expect(merged.snapshot().gauges.find((g) => g.name === 'queue_depth')).toMatchObject({ min: 1, max: 15 });
    expect(merged.seriesOf('queue_depth')).toEqual([
      [2000, 12],
      [3000, 15],
      [4000, 1],
    ]);
    expect(merged.prometheus()).toContain('\nscalegram_db_pool_in_use{node="db-0"} 10\n');

    const flipped = Metrics.fromStates(clockA, states, { sumGauge: (name) => name === 'queue_depth' });
    expect(flipped.gauge('queue_depth')).toBe(15 + 1);
    expect(flipped.seriesOf('queue_depth')).toEqual([
      [2000, 22],
      [3000, 29],
      [4000, 16],
    ]);
    expect(flipped.gauge('db_pool_in_use', db0)).toBe(9);
    expect(flipped.gaugeMax('db_pool_in_use', db0)).toBe(9);
  });

  it('TIER_SUMMED_GAUGES names the per-process gauges', () => {
    expect([...TIER_SUMMED_GAUGES].sort()).toEqual(['db_pool_in_use', 'db_pool_peak_in_use', 'db_pool_peak_waiting', 'db_pool_waiting', 'journal_open', 'queue_running']);
  });

  it('exportState is plain JSON (a round trip changes nothing, Infinity included), and one process merged reads as itself', async () => {
    const clock = new VirtualClock(T0);
    const m = new Metrics(clock, 500);
    setUp(m, 2);
    const rng = new Prng(7);
    for (let i = 0; i < 20; i++) {
      feed(rng, [m]);
      m.set('replica_lag_ms', { node: 'db-0r' }, i);
      await clock.advance(130);
    }
    m.set('unknown_lag_ms', {}, Number.POSITIVE_INFINITY);
    m.histogram('never_observed');
    const state = m.exportState();
    expect(JSON.parse(JSON.stringify(state))).toStrictEqual(state);
    expect(state.gauges.find((g) => g.name === 'unknown_lag_ms')).toMatchObject({ value: 'Infinity', min: 'Infinity', max: 'Infinity' });

    const merged = Metrics.fromStates(clock, [viaJson(m)]);
    expect(merged.gauge('unknown_lag_ms')).toBe(Number.POSITIVE_INFINITY);
    expect(merged.bucketMs).toBe(500);
    expect(merged.histogramCount('never_observed')).toBe(0);
    expect(merged.prometheus()).toBe(m.prometheus());
    expect(merged.series()).toEqual(m.series());
    expect(summaryOf(merged, 'shard_ops')).toEqual(summaryOf(m, 'shard_ops'));
    expect(merged.histogramWindows('lag_ms').map((w) => [w.t, w.count, w.p99Ms])).toEqual(m.histogramWindows('lag_ms').map((w) => [w.t, w.count, w.p99Ms]));
  });

  it('help texts are the union (the leader’s first); tracked windows keep their last `limit`', async () => {
    const clockA = new VirtualClock(T0);
    const a = new Metrics(clockA);
    a.describe('x', 'X as the leader says');
    a.trackOverTime('lag_ms', 1000, 3);
    a.inc('x');
    for (let i = 0; i < 5; i++) {
      a.observe('lag_ms', {}, 10); // windows 0–4
      await clockA.advance(1000);
    }
    const clockB = new VirtualClock(T0 + 2000);
    const b = new Metrics(clockB);
    b.describe('x', 'X as another says');
    b.describe('y', 'Why');
    b.trackOverTime('lag_ms', 1000, 3);
    b.inc('y');
    for (let i = 0; i < 4; i++) {
      b.observe('lag_ms', {}, 10); // its windows 0–3: the leader's 2–5
      b.observe('lag_ms', {}, 20);
      await clockB.advance(1000);
    }
    const merged = Metrics.fromStates(clockA, [viaJson(a), viaJson(b)]);
    const text = merged.prometheus();
    expect(text).toContain('# HELP scalegram_x_total X as the leader says\n');
    expect(text).toContain('# HELP scalegram_y_total Why\n');
    expect(merged.histogramWindows('lag_ms').map((w) => [w.t, w.count])).toEqual([
      [3000, 3],
      [4000, 3],
      [5000, 2],
    ]);
  });

  it('a process started 1.5 s after the leader: its buckets land where they start (a count may show a bucket early); one started before: before time 0', async () => {
    const clockA = new VirtualClock(T0);
    const a = new Metrics(clockA);
    const clockB = new VirtualClock(T0 + 1500);
    const b = new Metrics(clockB);
    const clockC = new VirtualClock(T0 - 2000);
    const c = new Metrics(clockC);
    c.inc('x', {}, 7); // at the leader's −2 s
    await advance([clockA, clockB, clockC], 200);
    b.inc('x'); // the leader's 1.7 s
    await advance([clockA, clockB, clockC], 600);
    b.inc('x'); // the leader's 2.3 s, in B's first bucket (1.5–2.5 s)
    a.inc('x'); // 0.8 s
    const merged = Metrics.fromStates(clockA, [viaJson(a), viaJson(b), viaJson(c)]);
    expect(merged.value('x')).toBe(10);
    expect(merged.seriesOf('x')).toEqual([
      [-2000, 7],
      [0, 1],
      [1000, 2],
    ]);
  });
});
