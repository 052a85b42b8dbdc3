// The simulator counts the work it charges each request with in the live work meter's figures and
// shape (telemetry.work, work.json), so a simulation can be held against a live run of the same
// scenario (`scalegram compare LIVE SIMULATED --gate 'work_*'`). The counts follow what the model
// does: every request counted once under its route, a like's three writes and one delete, every
// delivery of the fan-out under the chunk jobs; and they repeat exactly for a seed. (That they
// match the live code's is test/work-agreement.test.ts.)

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { WorkSnapshot } from '../sim/observability/work-meter.ts';

const tmp = mkdtempSync(join(tmpdir(), 'scalegram-model-work-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let runs = 0;

/** `scalegram simulate scenarios/ci-gate.ts --seed 1`: its work.json and its fan-out deliveries. */
function simulate(): { work: WorkSnapshot; deliveries: number } {
  const out = join(tmp, String(runs++));
  const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'simulate', 'scenarios/ci-gate.ts', '--seed', '1', '--quiet', '--out', out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`simulate exited ${r.status}: ${r.stderr}`);
  const work = JSON.parse(readFileSync(join(out, 'work.json'), 'utf8')) as WorkSnapshot & { simulated: boolean };
  expect(work.simulated).toBe(true);
  const doc = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { telemetry: { fanout: { deliveries: number }; work: WorkSnapshot } };
  expect(doc.telemetry.work).toEqual({ routes: work.routes, jobs: work.jobs });
  return { work: { routes: work.routes, jobs: work.jobs }, deliveries: doc.telemetry.fanout.deliveries };
}

describe("the simulator's work per request", () => {
  it('counts each route the way the model serves it, and every fan-out delivery under the chunk jobs', () => {
    const { work, deliveries } = simulate();
    const feed = work.routes['GET /v1/users/self/feed']!;
    const like = work.routes['POST /v1/media/:id/likes']!;
    const upload = work.routes['POST /v1/media']!;
    // ci-gate: 50 feed reads and 5 uploads a second for 6 s.
    expect(feed.count).toBe(300);
    expect(upload.count).toBe(30);
    expect(feed.redisCommands).toBe(feed.count);
    expect(feed.dbWrites).toBe(0);
    expect(feed.cacheLookups).toBeGreaterThanOrEqual(feed.count);
    // A miss is filled (set) when its read returns, or waited for.
    expect(feed.cacheSets).toBeLessThanOrEqual(feed.cacheMisses);
    // A like writes the like, the liker's index row and (not for a self-like) the owner's activity,
    // with its notify job; the media object is deleted from the cache.
    expect(like.dbWrites).toBeGreaterThan(2.9 * like.count);
    expect(like.dbWrites).toBeLessThanOrEqual(3 * like.count);
    expect(like.jobsQueued).toBe(like.dbWrites - 2 * like.count);
    expect(like.cacheDeletes).toBe(like.count);
    // Every authenticated request looks its token up first.
    expect(like.cacheLookups).toBeGreaterThanOrEqual(like.count);
    // The owner's own feed on the request, the followers' in the chunk jobs.
    expect(upload.feedDeliveries).toBe(upload.count);
    expect(upload.jobsQueued).toBe(2 * upload.count);
    expect(work.jobs.fanout!.count).toBe(upload.count);
    expect(work.jobs['fanout-chunk']!.feedDeliveries).toBe(deliveries);
    // One LPUSH per delivery (the lists stay below feed.maxLength: no LTRIM).
    expect(work.jobs['fanout-chunk']!.redisCommands).toBe(deliveries);
  }, 60_000);

  it('repeats exactly for a seed', () => {
    const [a, b] = [simulate(), simulate()];
    expect(b.work).toEqual(a.work);
  }, 60_000);
});
