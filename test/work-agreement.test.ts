// The simulator's work per request follows the live code's (issue 10): the same seeded workload
// (test/fixtures/work-agreement.ts: every route the scenarios use, 1,500 iterations of one VU,
// warm caches in both modes) is run live with `scalegram run` and in virtual time with `scalegram
// simulate`, and per route the cache operations (lookups, sets, deletes), the queries (reads and
// writes) and the Redis commands per request must agree within 5%. The live figures are counted by
// the topology as the real code runs (sim/observability/work-meter.ts); the simulator's come from
// its stages and the recipes of sim/model/recipes.ts. A change to a live route that the recipes do
// not follow (one more lookup per page, a query per item instead of per shard, a write moved) fails
// here.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkSnapshot, WorkTotals } from '../sim/observability/work-meter.ts';

const tmp = mkdtempSync(join(tmpdir(), 'scalegram-work-agreement-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const SCRIPT = 'test/fixtures/work-agreement.ts';
const TOLERANCE = 0.05;

/** The three figures the issue names, per request of a route. */
const FIGURES: Record<string, (w: WorkTotals) => number> = {
  'cache operations': (w) => (w.cacheLookups + w.cacheSets + w.cacheDeletes) / w.count,
  queries: (w) => (w.dbReads + w.dbWrites) / w.count,
  'Redis commands': (w) => w.redisCommands / w.count,
};

function work(command: 'run' | 'simulate'): WorkSnapshot {
  const out = join(tmp, command);
  const args = ['bin/scalegram.mjs', command, SCRIPT, '--seed', '1', '--quiet', '--out', out];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 240_000 });
  if (r.status !== 0) throw new Error(`scalegram ${command} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(readFileSync(join(out, 'work.json'), 'utf8')) as WorkSnapshot;
}

/** Where the two disagree by more than the tolerance: one line per route and figure. */
function disagreements(live: WorkSnapshot, model: WorkSnapshot): string[] {
  const out: string[] = [];
  const routes = new Set([...Object.keys(live.routes), ...Object.keys(model.routes)]);
  for (const route of [...routes].sort()) {
    const a = live.routes[route];
    const b = model.routes[route];
    if (!a || !b) {
      out.push(`${route}: ${a ? 'not simulated' : 'not run live'}`);
      continue;
    }
    for (const [name, per] of Object.entries(FIGURES)) {
      const x = per(a);
      const y = per(b);
      // Relative to the live figure; a figure near zero both ways agrees (|Δ| < 0.05 per request).
      if (Math.abs(y - x) > Math.max(0.05, TOLERANCE * Math.abs(x))) out.push(`${route}: ${name} per request live ${x.toFixed(3)}, simulated ${y.toFixed(3)}`);
    }
  }
  return out;
}

describe('the work per request, live and simulated', () => {
  let live: WorkSnapshot;
  let model: WorkSnapshot;
  beforeAll(() => {
    live = work('run');
    model = work('simulate');
  }, 300_000);

  it('runs every route of the workload in both modes, each a few hundred times (the branches are drawn from the same law)', () => {
    expect(Object.keys(model.routes).sort()).toEqual(Object.keys(live.routes).sort());
    expect(Object.keys(live.routes)).toHaveLength(8);
    for (const route of Object.keys(live.routes)) {
      const [a, b] = [live.routes[route]!.count, model.routes[route]!.count];
      expect(Math.abs(a - b) / a, `${route}: ${a} live, ${b} simulated`).toBeLessThan(0.5);
    }
  });

  it('agrees within 5% per route on cache operations, queries and Redis commands', () => {
    expect(disagreements(live, model)).toEqual([]);
  });

  it('would fail on a route that does one more lookup, or a query per item', () => {
    // The comparison itself: the live figures with one change each, as a code change would make them.
    const feed = 'GET /v1/users/self/feed';
    const upload = 'POST /v1/media';
    const changed = (route: string, edit: (w: WorkTotals) => WorkTotals): WorkSnapshot => ({ ...live, routes: { ...live.routes, [route]: edit(live.routes[route]!) } });
    const oneMoreLookup = changed(upload, (w) => ({ ...w, cacheLookups: w.cacheLookups + w.count }));
    expect(disagreements(oneMoreLookup, model).join('\n')).toMatch(/POST \/v1\/media: cache operations/);
    const perItem = changed(feed, (w) => ({ ...w, dbReads: w.dbReads * 2 }));
    expect(disagreements(perItem, model).join('\n')).toMatch(/users\/self\/feed: queries/);
  });
});
