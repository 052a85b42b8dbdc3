// compare's work figures and --gate: work.json becomes work_* gauges per request, zero-filled against
// the other side; deliveries per post are judged both ways; --gate gates only what it names, must name
// something BASE has, and keeps ungated thresholds out of the verdict.

import { describe, expect, it } from 'vitest';
import { compareRuns, CompareInputError, parseCompareOptions, runSide } from '../reports/compare.ts';

const summary = (failed = 0) => ({
  metrics: {
    http_req_duration: { avg: 10, min: 1, med: 9, max: 50, 'p(90)': 20, 'p(95)': 30, thresholds: { 'p(95)<100': false } },
    http_req_failed: { value: failed, passes: 0, fails: 100 },
  },
});
const totals = (count: number, f: Record<string, number>) => ({
  count,
  failed: 0,
  cacheLookups: 0,
  cacheMisses: 0,
  cacheWaits: 0,
  cacheSets: 0,
  cacheDeletes: 0,
  dbReads: 0,
  dbWrites: 0,
  redisCommands: 0,
  jobsQueued: 0,
  feedDeliveries: 0,
  responseBytes: 0,
  ...f,
});
const work = (feedReads: number, deliveries: number, likeReads = 0) => ({
  format: 'scalegram-work/1',
  scenario: 'ci-gate',
  seed: 1,
  routes: {
    'GET /v1/users/self/feed': totals(100, { cacheLookups: 4000, dbReads: feedReads * 100, redisCommands: 100 }),
    'POST /v1/media/:id/likes': totals(50, { dbWrites: 150, ...(likeReads ? { dbReads: likeReads * 50 } : {}) }),
  },
  jobs: { fanout: totals(10, { dbReads: 10 }), 'fanout-chunk': totals(10, { feedDeliveries: deliveries * 10, redisCommands: deliveries * 10 }) },
});
const gate = parseCompareOptions({ gate: ['work_*,http_req_failed'] });

describe('compare: work per request', () => {
  it('passes on the same work, and names an N+1 on the feed route', () => {
    const base = runSide('base', summary(), undefined, work(7.8, 180));
    expect(compareRuns(base, runSide('new', summary(), undefined, work(7.9, 180)), gate).passed).toBe(true);
    const o = compareRuns(base, runSide('new', summary(), undefined, work(9.9, 180)), gate);
    expect(o.passed).toBe(false);
    expect(o.rows.filter((r) => r.verdict === 'regressed').map((r) => r.metric)).toEqual(['work_db_reads{route:GET /v1/users/self/feed}']);
    expect(o.base.scenario).toBe('ci-gate');
  });

  it('a like that starts reading the database is a change from 0, not a metric only NEW has', () => {
    const o = compareRuns(runSide('base', summary(), undefined, work(7.8, 180)), runSide('new', summary(), undefined, work(7.8, 180, 2)), gate);
    expect(o.rows.find((r) => r.metric === 'work_db_reads{route:POST /v1/media/:id/likes}')).toMatchObject({ base: 0, new: 2, verdict: 'regressed' });
  });

  it('a fan-out that shrank is a regression, as is one that doubled', () => {
    const base = runSide('base', summary(), undefined, work(7.8, 180));
    for (const deliveries of [18, 360]) {
      const o = compareRuns(base, runSide('new', summary(), undefined, work(7.8, deliveries)), gate);
      expect(o.rows.find((r) => r.metric === 'work_feed_deliveries_per_post')?.verdict, String(deliveries)).toBe('regressed');
    }
  });

  it('--gate must name something BASE has: a summary without its work figures is refused, as is a typo', () => {
    const withWork = runSide('new', summary(), undefined, work(7.8, 180));
    expect(() => compareRuns(runSide('base', summary()), withWork, gate)).toThrow(/BASE has no work figures/);
    expect(() => compareRuns(runSide('base', summary(), undefined, work(7.8, 180)), withWork, parseCompareOptions({ gate: ['work_*,http_req_faild'] }))).toThrow(CompareInputError);
  });

  it('thresholds of metrics outside --gate are shown and do not fail the comparison', () => {
    const base = runSide('base', summary(), undefined, work(7.8, 180));
    const failing = summary();
    failing.metrics.http_req_duration.thresholds['p(95)<100'] = true;
    const o = compareRuns(base, runSide('new', failing, undefined, work(7.8, 180)), gate);
    expect(o.thresholds.find((t) => t.metric === 'http_req_duration')?.verdict).toBe('failing');
    expect(o.passed).toBe(true);
    expect(compareRuns(base, runSide('new', failing, undefined, work(7.8, 180))).passed).toBe(false);
  });
});
