// The work each request does is counted by the parts as they do it, under the request's route; a
// job's work under its kind, not under the request that queued it; admin routes not at all. These
// are the figures the CI gate judges (reports/compare.ts's work_* gauges).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkTotals } from '../sim/observability/work-meter.ts';
import { get, makeEnv, relate, signup, simInject, upload, type Account, type TestEnv } from './helpers/app.ts';

let env: TestEnv;
let alice: Account;
let bob: Account;

beforeAll(async () => {
  env = await makeEnv();
  alice = await signup(env.app, 'alice');
  bob = await signup(env.app, 'bob');
  await relate(env.app, bob, alice.id, 'follow');
});
afterAll(() => env.close());

const route = (name: string): WorkTotals => env.topology.work.snapshot().routes[name]!;
/** The change in a route's (or job's) totals over `fn`. */
async function delta(read: () => WorkTotals | undefined, fn: () => Promise<unknown>): Promise<WorkTotals> {
  const before = { ...(read() ?? {}) } as Partial<WorkTotals>;
  await fn();
  await env.topology.idle();
  const after = read()!;
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - ((before as Record<string, number>)[k] ?? 0)])) as WorkTotals;
}

describe('work per request', () => {
  it('counts a like: its writes, the cache delete that invalidates the media, the job it queues, its answer', async () => {
    const media = await upload(env.app, alice);
    const d = await delta(
      () => route('POST /v1/media/:id/likes'),
      () => env.app.inject({ method: 'POST', url: `/v1/media/${media.id}/likes?access_token=${bob.token}` }),
    );
    expect(d.count).toBe(1);
    expect(d.failed).toBe(0);
    expect(d.dbWrites).toBeGreaterThanOrEqual(1);
    expect(d.cacheDeletes).toBeGreaterThanOrEqual(1);
    expect(d.jobsQueued).toBe(1);
    expect(d.responseBytes).toBeGreaterThan(0);
    expect(d.redisCommands).toBe(0);
  });

  it('counts a feed read: one LRANGE, cache lookups, and no writes; a second read hits what the first filled, and reads less', async () => {
    await upload(env.app, alice);
    await env.topology.idle();
    const feed = () => get(env.app, '/v1/users/self/feed?count=5', bob);
    const first = await delta(() => route('GET /v1/users/self/feed'), feed);
    expect(first.count).toBe(1);
    expect(first.redisCommands).toBe(1);
    expect(first.dbWrites).toBe(0);
    expect(first.cacheLookups).toBeGreaterThan(0);
    const second = await delta(() => route('GET /v1/users/self/feed'), feed);
    expect(second.cacheLookups).toBe(first.cacheLookups);
    expect(first.cacheMisses).toBeGreaterThan(0);
    expect(second.cacheMisses).toBe(0);
    expect(second.dbReads).toBeLessThan(first.dbReads);
  });

  it("counts an upload's fan-out under the fanout jobs, not under POST /v1/media", async () => {
    const jobs = () => env.topology.work.snapshot().jobs;
    const deliveriesBefore = Object.values(jobs()).reduce((s, j) => s + j.feedDeliveries, 0);
    const d = await delta(() => route('POST /v1/media'), () => upload(env.app, alice));
    expect(d.count).toBe(1);
    expect(d.jobsQueued).toBeGreaterThanOrEqual(1);
    // The owner's own feed is pushed by the request; the follower's by the job.
    expect(d.feedDeliveries).toBe(1);
    const deliveriesAfter = Object.values(jobs()).reduce((s, j) => s + j.feedDeliveries, 0);
    expect(deliveriesAfter - deliveriesBefore).toBe(1);
    expect(jobs().fanout!.count).toBeGreaterThanOrEqual(1);
  });

  it("counts a request refused before its handler (no token: 400) as failed, and the token lookup as the route's work", async () => {
    const media = await upload(env.app, alice);
    const refused = await delta(
      () => route('POST /v1/media/:id/likes'),
      () => env.app.inject({ method: 'POST', url: `/v1/media/${media.id}/likes` }),
    );
    expect(refused.count).toBe(1);
    expect(refused.failed).toBe(1);
    expect(refused.dbWrites).toBe(0);
    // A well-formed token that is not valid is looked up (memcached t:<digest>, then the tokens
    // table) in the first hooks and refused there: that lookup is the route's work too.
    const forged = alice.token.slice(0, -1) + (alice.token.endsWith('a') ? 'b' : 'a');
    const lookedUp = await delta(
      () => route('POST /v1/media/:id/likes'),
      () => env.app.inject({ method: 'POST', url: `/v1/media/${media.id}/likes?access_token=${forged}` }),
    );
    expect(lookedUp.count).toBe(1);
    expect(lookedUp.failed).toBe(1);
    expect(lookedUp.cacheLookups).toBe(1);
    expect(lookedUp.dbReads).toBeGreaterThanOrEqual(1);
    expect(lookedUp.dbWrites).toBe(0);
  });

  it('counts a failed request as failed, and nothing for the admin API', async () => {
    const d = await delta(() => route('GET /v1/media/:id'), () => get(env.app, '/v1/media/123456789', bob));
    expect(d.count).toBe(1);
    expect(d.failed).toBe(1);
    const routes = () => Object.keys(env.topology.work.snapshot().routes);
    const known = routes();
    await simInject(env.app, '/_sim/topology');
    expect(routes()).toEqual(known);
    expect(known.some((r) => r.includes('/_sim'))).toBe(false);
  });
});
