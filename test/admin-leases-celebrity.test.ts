// Two admin actions of the live service for the teaching dashboard: POST /_sim/cache/leases turns
// memcached leases on or off at run time (a herd of concurrent misses on one key makes one shard
// read with them, one per miss without; the topology reports the live value), and POST
// /_sim/celebrity/post has the rank-th most-followed seeded account post a photo through the upload
// path (its fan-out reaches every follower's feed list). Both are events on the telemetry's
// timeline, need the admin token, and refuse bodies that are not exactly theirs.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { makeEnv, signup, simInject, upload, type TestEnv } from './helpers/app.ts';

const post = (env: TestEnv, url: string, payload?: unknown) =>
  simInject(env.app, { method: 'POST', url, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });

interface Event {
  t: number;
  kind: string;
  label: string;
  detail: Record<string, unknown>;
}

const events = async (env: TestEnv): Promise<Event[]> => ((await simInject(env.app, '/_sim/telemetry')).json() as { events: Event[] }).events;
const liveLeases = async (env: TestEnv): Promise<unknown> => ((await simInject(env.app, '/_sim/topology')).json() as { cache: { leases: unknown } }).cache.leases;

/** A fill that waits until released, counting its calls (the shard reads of a herd). */
function gatedFill(value: string) {
  let calls = 0;
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  return {
    fill: async () => {
      calls++;
      await gate;
      return value;
    },
    release: () => open(),
    calls: () => calls,
  };
}

/** Ten concurrent misses on one cold key of the live cache: the shard reads they made. */
async function herd(env: TestEnv, key: string): Promise<number> {
  const g = gatedFill('v');
  const all = Promise.all(Array.from({ length: 10 }, () => env.topology.cache.getOrFill(key, g.fill)));
  g.release();
  expect(await all).toEqual(Array(10).fill('v'));
  return g.calls();
}

/** Empties every cache node (dead and back, as a restart would), so the next reads all miss. */
function flushCaches(env: TestEnv): void {
  for (const n of env.topology.cache.nodes()) {
    env.topology.cache.markDead(n.name);
    env.topology.cache.markAlive(n.name);
  }
}

function expectError(res: LightMyRequestResponse, status: number, type: string): void {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.json()).toEqual({ meta: { code: status, error_type: type, error_message: expect.any(String) } });
}

describe('POST /_sim/cache/leases', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await makeEnv({ topology: { cache: { leases: false }, database: { readPolicy: 'primary', serviceTimeMs: 5, serviceTimeDistribution: 'constant' } } });
  });
  afterAll(async () => {
    await env.close();
  });

  it('switches leases on and off for the next misses: a herd of 10 makes 10 shard reads without, 1 with', async () => {
    expect(await liveLeases(env)).toBe(false);
    expect(await herd(env, 'herd:a')).toBe(10);

    const on = await post(env, '/_sim/cache/leases', { enabled: true });
    expect(on.statusCode).toBe(200);
    expect(on.json()).toEqual({ leases: true });
    expect(await liveLeases(env)).toBe(true);
    expect(await herd(env, 'herd:b')).toBe(1);

    const off = await post(env, '/_sim/cache/leases', { enabled: false });
    expect(off.json()).toEqual({ leases: false });
    expect(await liveLeases(env)).toBe(false);
    expect(await herd(env, 'herd:c')).toBe(10);
    // The config the topology was built from is unchanged: `cache.leases` is the live value.
    const topo = (await simInject(env.app, '/_sim/topology')).json() as { config: { cache: { leases: boolean } } };
    expect(topo.config.cache.leases).toBe(false);
  });

  it('through HTTP: concurrent reads of one cold photo herd onto the shard without leases and wait with them', async () => {
    const owner = await signup(env.app, 'herdowner');
    const reader = await signup(env.app, 'herdreader');
    const media = await upload(env.app, owner);
    await env.topology.idle();
    const m = env.topology.metrics;
    const burst = async () => {
      flushCaches(env);
      const herdFills = m.sum('cache_herd_fills');
      const waits = m.sum('cache_herd_events');
      const answers = await Promise.all(Array.from({ length: 10 }, () => env.app.inject(`/v1/media/${media.id}?access_token=${reader.token}`)));
      for (const a of answers) expect(a.statusCode).toBe(200);
      return { herdFills: m.sum('cache_herd_fills') - herdFills, herdEvents: m.sum('cache_herd_events') - waits };
    };
    await post(env, '/_sim/cache/leases', { enabled: false });
    const without = await burst();
    expect(without.herdEvents).toBeGreaterThanOrEqual(9);
    // Without leases every miss of the herd read the shard itself.
    expect(without.herdFills).toBe(without.herdEvents);
    await post(env, '/_sim/cache/leases', { enabled: true });
    const withLeases = await burst();
    expect(withLeases.herdEvents).toBeGreaterThanOrEqual(9);
    // With them the same herd waited on one fill per key.
    expect(withLeases.herdFills).toBe(0);
  });

  it('each switch is a cache_leases event on the telemetry timeline and in the fault history', async () => {
    await post(env, '/_sim/cache/leases', { enabled: true });
    const before = (await events(env)).filter((e) => e.kind === 'cache_leases').length;
    await post(env, '/_sim/cache/leases', { enabled: false });
    await post(env, '/_sim/cache/leases', { enabled: true });
    const mine = (await events(env)).filter((e) => e.kind === 'cache_leases');
    expect(mine).toHaveLength(before + 2);
    expect(mine.slice(-2).map((e) => [e.label, e.detail])).toEqual([
      ['leases off', { leases: false, was: true }],
      ['leases on', { leases: true, was: false }],
    ]);
    for (const e of mine) expect(e.t).toBeGreaterThanOrEqual(0);
    const faults = (await simInject(env.app, '/_sim/faults')).json() as { faults: Array<{ fault: string }> };
    expect(faults.faults.filter((f) => f.fault === 'cache_leases')).toHaveLength(before + 2);
  });

  it.each<[string, unknown]>([
    ['no body', undefined],
    ['an empty object', {}],
    ['enabled as text', { enabled: 'yes' }],
    ['enabled as "true"', { enabled: 'true' }],
    ['enabled as 1', { enabled: 1 }],
    ['enabled null', { enabled: null }],
    ['an unknown field', { enabled: true, node: 'cache-1' }],
    ['an array body', [true]],
  ])('%s → 400 APIInvalidParametersError, leases unchanged', async (_name, payload) => {
    const was = await liveLeases(env);
    expectError(await post(env, '/_sim/cache/leases', payload), 400, 'APIInvalidParametersError');
    expect(await liveLeases(env)).toBe(was);
  });

  it('a JSON body that is not an object is 400', async () => {
    const res = await simInject(env.app, { method: 'POST', url: '/_sim/cache/leases', headers: { 'content-type': 'application/json' }, payload: 'true' });
    expectError(res, 400, 'APIInvalidParametersError');
  });

  it('without the admin token: 401', async () => {
    const was = await liveLeases(env);
    const res = await env.app.inject({ method: 'POST', url: '/_sim/cache/leases', payload: { enabled: !was } });
    expectError(res, 401, 'APIRequiresAuthenticationError');
    const wrong = await env.app.inject({ method: 'POST', url: '/_sim/cache/leases', headers: { authorization: 'Bearer not-the-admin-token-at-all' }, payload: { enabled: !was } });
    expect(wrong.statusCode).toBe(401);
    expect(await liveLeases(env)).toBe(was);
  });
});

describe('POST /_sim/celebrity/post', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await makeEnv();
  });
  afterAll(async () => {
    await env.close();
  });

  interface Entry {
    id: string;
    username: string;
    followed_by: number;
  }
  interface Answer {
    media: { id: string };
    user: { id: string; username: string };
    followers: number;
    fanout: string;
  }

  it('with no seeded account: 409 APIError', async () => {
    expectError(await post(env, '/_sim/celebrity/post'), 409, 'APIError');
    expectError(await post(env, '/_sim/celebrity/post', { rank: 0 }), 409, 'APIError');
    // An account that signed up (not seeded) is not ranked.
    await signup(env.app, 'unseeded');
    expectError(await post(env, '/_sim/celebrity/post', {}), 409, 'APIError');
    expect((await events(env)).some((e) => e.kind === 'celebrity_post')).toBe(false);
  });

  it('the most-followed account posts through the upload path and its fan-out reaches every follower', async () => {
    const seeded = await post(env, '/_sim/seed', { users: 400, avgFollows: 4, celebrities: 2, privateFraction: 0, seed: 7 });
    expect(seeded.statusCode).toBe(200);
    const top = ((await simInject(env.app, '/_sim/users?order=followers&limit=2')).json() as { users: Entry[] }).users;
    await env.topology.idle();
    const m = env.topology.metrics;
    const deliveries = m.sum('fanout_deliveries');
    const posts = m.sum('fanout_posts');

    const res = await post(env, '/_sim/celebrity/post');
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as Answer;
    expect(body).toEqual({ media: { id: expect.stringMatching(/^\d+$/) }, user: { id: top[0]!.id, username: top[0]!.username }, followers: top[0]!.followed_by, fanout: 'push' });
    expect(body.followers).toBeGreaterThan(20);

    await env.topology.idle();
    expect(m.sum('fanout_posts') - posts).toBe(1);
    expect(m.sum('fanout_deliveries') - deliveries).toBe(body.followers);
    // Every follower's Redis list holds the post (and the owner's own list).
    const lists = await env.topology.feeds.dump();
    const holders = Object.entries(lists).filter(([, ids]) => ids.includes(body.media.id)).map(([user]) => user);
    expect(holders).toContain(body.user.id);
    expect(holders.filter((u) => u !== body.user.id)).toHaveLength(body.followers);
    // The post is a real photo of the account's, served by the v1 API.
    const token = ((await simInject(env.app, '/_sim/users?order=followers&limit=1')).json() as { users: Array<{ access_token: string }> }).users[0]!.access_token;
    const media = await env.app.inject(`/v1/media/${body.media.id}?access_token=${token}`);
    expect(media.statusCode).toBe(200);
    expect(media.json().data.user.id).toBe(body.user.id);

    const e = (await events(env)).filter((x) => x.kind === 'celebrity_post');
    expect(e).toHaveLength(1);
    expect(e[0]!.label).toBe(`@${body.user.username} posts to ${body.followers.toLocaleString('en-US')} followers`);
    expect(e[0]!.detail).toEqual({ rank: 0, user: body.user.id, username: body.user.username, media: body.media.id, followers: body.followers, fanout: 'push' });
  });

  it('rank picks the next most-followed account; a rank past the roster is 409', async () => {
    const top = ((await simInject(env.app, '/_sim/users?order=followers&limit=2')).json() as { users: Entry[] }).users;
    const res = await post(env, '/_sim/celebrity/post', { rank: 1 });
    expect(res.statusCode).toBe(200);
    expect((res.json() as Answer).user).toEqual({ id: top[1]!.id, username: top[1]!.username });
    expectError(await post(env, '/_sim/celebrity/post', { rank: 400 }), 409, 'APIError');
    await env.topology.idle();
  });

  it.each<[string, unknown]>([
    ['rank negative', { rank: -1 }],
    ['rank as text', { rank: '1' }],
    ['rank fractional', { rank: 1.5 }],
    ['rank null', { rank: null }],
    ['rank true', { rank: true }],
    ['an unknown field', { rank: 0, user: 'someone' }],
    ['an array body', [0]],
  ])('%s → 400 APIInvalidParametersError, nothing posted', async (_name, payload) => {
    const before = env.topology.metrics.sum('fanout_posts');
    expectError(await post(env, '/_sim/celebrity/post', payload), 400, 'APIInvalidParametersError');
    expect(env.topology.metrics.sum('fanout_posts')).toBe(before);
  });

  it('without the admin token: 401, nothing posted', async () => {
    const before = env.topology.metrics.sum('fanout_posts');
    expectError(await env.app.inject({ method: 'POST', url: '/_sim/celebrity/post', payload: {} }), 401, 'APIRequiresAuthenticationError');
    expect(env.topology.metrics.sum('fanout_posts')).toBe(before);
  });

  it('/docs/json lists both under the sim tag', async () => {
    const doc = (await env.app.inject('/docs/json')).json() as { paths: Record<string, Record<string, { tags?: string[] }>> };
    expect(doc.paths['/_sim/cache/leases']?.post?.tags).toEqual(['sim']);
    expect(doc.paths['/_sim/celebrity/post']?.post?.tags).toEqual(['sim']);
  });
});
