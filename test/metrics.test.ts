// Metrics on a virtual clock: counters and gauges bucketed into time series, HDR histograms with
// their percentiles, encoded histograms that merge exactly, and Prometheus text a scraper accepts.

import { afterEach, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { VirtualClock } from '../sim/engine/clock.ts';
import { Metrics, decodeHistogram, labelKey, newHistogram } from '../sim/observability/metrics.ts';
import { Prng } from '../sim/engine/prng.ts';
import { buildTopology, type Topology } from '../sim/topology.ts';
import { loadTopology } from '../sim/topology-config.ts';

const PROM_LINE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? -?[0-9.eE+-]+$|^# (HELP|TYPE) /;

function badPromLines(text: string): string[] {
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n').filter((l) => !PROM_LINE.test(l));
}

describe('counters and time series', () => {
  it('counts into 1-second buckets of virtual time: 2 at 0–1 s, 3 at 1–2 s, none at 2–3 s, 1 at 3–4 s', async () => {
    const clock = new VirtualClock(1_400_000_000_000);
    const m = new Metrics(clock, 1000);
    const c = m.counter('uploads', { shard: 3 });
    c.inc();
    await clock.advance(500);
    c.inc();
    await clock.advance(1000);
    c.inc(3);
    await clock.advance(2000);
    m.inc('uploads', { shard: 3 });
    expect(c.value).toBe(6);
    expect(m.value('uploads', { shard: 3 })).toBe(6);
    expect(m.value('uploads', { shard: 4 })).toBe(0);
    const [series] = m.series(['uploads']);
    expect(series!.kind).toBe('counter');
    expect(series!.points).toEqual([
      [0, 2],
      [1000, 3],
      [3000, 1],
    ]);
  });

  it('one handle per name and label set, whatever the label order', () => {
    const m = new Metrics(new VirtualClock());
    m.inc('db_ops', { node: 'db-0', op: 'read' });
    m.counter('db_ops', { op: 'read', node: 'db-0' }).inc(2);
    expect(m.value('db_ops', { node: 'db-0', op: 'read' })).toBe(3);
    expect(labelKey('db_ops', { op: 'read', node: 'db-0' })).toBe('db_ops{node="db-0",op="read"}');
    expect(labelKey('db_ops', {})).toBe('db_ops');
  });

  it('sums a counter over the label sets a filter matches', () => {
    const m = new Metrics(new VirtualClock());
    m.inc('db_ops', { node: 'db-0', op: 'read' }, 5);
    m.inc('db_ops', { node: 'db-0', op: 'write' }, 2);
    m.inc('db_ops', { node: 'db-1', op: 'read' }, 7);
    m.inc('other', { node: 'db-0' }, 100);
    expect(m.sum('db_ops')).toBe(14);
    expect(m.sum('db_ops', { op: 'read' })).toBe(12);
    expect(m.sum('db_ops', { node: 'db-0' })).toBe(7);
    expect(m.sum('db_ops', { node: 'db-9' })).toBe(0);
  });

  it('gauges keep the last value per bucket, and their min and max', async () => {
    const clock = new VirtualClock(0);
    const m = new Metrics(clock, 100);
    m.set('queue_depth', {}, 5);
    await clock.advance(50);
    m.set('queue_depth', {}, 9);
    await clock.advance(100);
    m.set('queue_depth', {}, 2);
    expect(m.gauge('queue_depth')).toBe(2);
    expect(m.gauge('missing')).toBeUndefined();
    const snap = m.snapshot();
    expect(snap.gauges).toEqual([{ name: 'queue_depth', labels: {}, value: 2, min: 2, max: 9 }]);
    expect(m.series(['queue_depth'])[0]!.points).toEqual([
      [0, 9],
      [100, 2],
    ]);
    expect(snap.bucketMs).toBe(100);
    expect(snap.nowMs - snap.startMs).toBe(150);
  });
});

describe('histograms', () => {
  it('record 1..1000 ms: p50 ≈ 500, p99 ≈ 990, max ≈ 1000 within HDR precision (0.1%)', () => {
    const m = new Metrics(new VirtualClock());
    for (let ms = 1; ms <= 1000; ms++) m.observe('db_query_ms', { node: 'db-0' }, ms);
    const near = (got: number | undefined, want: number) => {
      expect(got).toBeDefined();
      expect(Math.abs(got! - want) / want).toBeLessThan(0.001);
    };
    near(m.percentile('db_query_ms', { node: 'db-0' }, 50), 500);
    near(m.percentile('db_query_ms', { node: 'db-0' }, 99), 990);
    near(m.percentile('db_query_ms', { node: 'db-0' }, 100), 1000);
    expect(m.histogramCount('db_query_ms', { node: 'db-0' })).toBe(1000);
    const [h] = m.snapshot().histograms;
    near(h!.meanMs, 500.5);
    near(h!.p90Ms, 900);
    expect(h!.minMs).toBe(1);
  });

  it('keeps microsecond resolution below 1 ms and clamps values outside its range', () => {
    const m = new Metrics(new VirtualClock());
    m.observe('tiny', {}, 0.25);
    expect(m.percentile('tiny', {}, 50)).toBe(0.25);
    m.observe('clamped', {}, 0);
    m.observe('clamped', {}, -5);
    m.observe('clamped', {}, 10 * 3_600_000);
    expect(m.histogramCount('clamped', {})).toBe(3);
    expect(m.percentile('clamped', {}, 0)).toBe(0); // zero and negatives clamp to zero
    expect(m.percentile('clamped', {}, 100)).toBeCloseTo(3_600_000, -4);
  });

  it('has no percentile until something is recorded', () => {
    const m = new Metrics(new VirtualClock());
    m.histogram('empty');
    expect(m.percentile('empty', undefined, 50)).toBeUndefined();
    expect(m.percentile('never', undefined, 50)).toBeUndefined();
    expect(m.snapshot().histograms[0]).toMatchObject({ count: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 });
  });

  it('encoded histograms from two runs decode and merge exactly: counts add and percentiles match one run that saw both', () => {
    const rng = new Prng(1234);
    const a = new Metrics(new VirtualClock());
    const b = new Metrics(new VirtualClock());
    const both = newHistogram();
    for (let i = 0; i < 3000; i++) {
      const ms = rng.exponential(20);
      (i % 3 === 0 ? a : b).observe('http_ms', { route: 'feed' }, ms);
      both.recordValue(Math.max(1, Math.round(ms * 1000)));
    }
    const ea = a.snapshot().histograms[0]!;
    const eb = b.snapshot().histograms[0]!;
    expect(ea.count).toBe(1000);
    expect(eb.count).toBe(2000);
    const merged = decodeHistogram(ea.encoded);
    expect(merged.totalCount).toBe(1000);
    merged.add(decodeHistogram(eb.encoded));
    expect(merged.totalCount).toBe(3000);
    for (const p of [50, 90, 99, 99.9, 100]) expect(merged.getValueAtPercentile(p)).toBe(both.getValueAtPercentile(p));
    // Decoding keeps bucket counts, not raw values: the mean agrees to HDR precision.
    expect(Math.abs(merged.mean - both.mean) / both.mean).toBeLessThan(0.001);
  });

  it('snapshot({ encode: false }) skips the encoding but keeps the numbers', () => {
    const m = new Metrics(new VirtualClock());
    m.observe('x', {}, 3);
    const h = m.snapshot({ encode: false }).histograms[0]!;
    expect(h.encoded).toBe('');
    expect(h.count).toBe(1);
    expect(h.p50Ms).toBeCloseTo(3, 2);
  });
});

describe('prometheus()', () => {
  it('writes counters as _total, gauges, and histograms as summaries in seconds (db_query_ms → db_query_seconds)', () => {
    const m = new Metrics(new VirtualClock());
    m.describe('db_ops', 'Queries per node');
    m.inc('db_ops', { node: 'db-0', op: 'read' }, 4);
    m.set('queue_depth', {}, 12);
    for (let ms = 1; ms <= 100; ms++) m.observe('db_query_ms', { node: 'db-0' }, ms);
    const text = m.prometheus();
    expect(badPromLines(text)).toEqual([]);
    const lines = text.split('\n');
    expect(lines).toContain('# HELP scalegram_db_ops_total Queries per node');
    expect(lines).toContain('# TYPE scalegram_db_ops_total counter');
    expect(lines).toContain('scalegram_db_ops_total{node="db-0",op="read"} 4');
    expect(lines).toContain('# TYPE scalegram_queue_depth gauge');
    expect(lines).toContain('scalegram_queue_depth 12');
    expect(lines).toContain('# TYPE scalegram_db_query_seconds summary');
    expect(lines).toContain('scalegram_db_query_seconds_count{node="db-0"} 100');
    const p50 = lines.find((l) => l.startsWith('scalegram_db_query_seconds{node="db-0",quantile="0.5"}'));
    expect(Number(p50!.split(' ')[1])).toBeCloseTo(0.05, 3);
    const sum = lines.find((l) => l.startsWith('scalegram_db_query_seconds_sum'));
    expect(Number(sum!.split(' ')[1])).toBeCloseTo(5.05, 2);
  });

  it('escapes label values with quotes, backslashes and newlines, and sanitises odd names', () => {
    const m = new Metrics(new VirtualClock());
    m.inc('http-requests.v1', { route: '/v1/media/"x"\\\n', 'bad-key': 1 });
    const text = m.prometheus();
    expect(badPromLines(text)).toEqual([]);
    expect(text).toContain('scalegram_http_requests_v1_total{bad_key="1",route="/v1/media/\\"x\\"\\\\\\n"} 1');
  });

  // Regression: HELP text was written raw; the exposition format requires `\` → `\\` and newline →
  // `\n` there, or a multi-line description splits into a line a scraper rejects.
  it('escapes backslashes and newlines in HELP text', () => {
    const m = new Metrics(new VirtualClock());
    m.describe('x', 'first line\nsecond line with a \\ backslash');
    m.inc('x');
    const text = m.prometheus();
    expect(badPromLines(text)).toEqual([]);
    expect(text).toContain('# HELP scalegram_x_total first line\\nsecond line with a \\\\ backslash');
  });

  describe('on a whole topology', () => {
    let t: Topology | undefined;
    afterEach(async () => {
      await t?.close();
      t = undefined;
    });

    it('every line of a busy small topology is valid exposition text', async () => {
      const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 } });
      t = await buildTopology({ config, seed: 3, sampleEveryMs: 0 });
      const image = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#888' } }).jpeg().toBuffer();
      const a = await t.store.createUser({ username: 'ann', password: 'secret123', fullName: 'Ann', isPrivate: false });
      const b = await t.store.createUser({ username: 'bo', password: 'secret123', fullName: 'Bo "the" \\ one', isPrivate: false });
      await t.store.setRelationship(b.user.id, a.user.id, 'follow');
      const media = await t.store.createMedia({ userId: a.user.id, caption: 'hi #sun', filter: 'Normal', lat: 1, lng: 2, locationName: 'x', image });
      await t.store.like(media.id, b.user.id);
      await t.idle();
      await t.store.getFeed(b.user.id, { count: 10 });
      t.describe();
      const text = t.metrics.prometheus();
      expect(text.split('\n').length).toBeGreaterThan(100);
      expect(badPromLines(text)).toEqual([]);
    });
  });
});
