// The /_sim admin endpoints through app.inject: seeding with working tokens, the roster for load
// scripts, cache and database faults (a server without a replica answers 503 until revived),
// lag, shard moves and splits with progress, telemetry for pollers, OpenAPI, and a table of bad
// inputs that all answer 400 APIInvalidParametersError, never a 5xx.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { shardOf } from '../sim/parts/ids.ts';
import { makeEnv, signup, simInject, type TestEnv } from './helpers/app.ts';

const post = (env: TestEnv, url: string, payload?: unknown) =>
  simInject(env.app, { method: 'POST', url, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });

function json<T = Record<string, unknown>>(res: LightMyRequestResponse): T {
  return res.json() as T;
}

interface Entry {
  id: string;
  username: string;
  access_token: string;
  followed_by: number;
  follows: number;
}

describe('seeding and the roster', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await makeEnv();
  });
  afterAll(async () => {
    await env.close();
  });

  it('POST /_sim/seed seeds through the bulk path and answers counts, the celebrities and working tokens', async () => {
    const res = await post(env, '/_sim/seed', { users: 500, avgFollows: 5, celebrities: 2, mediaPerUser: 1, seed: 3, sample: 10 });
    expect(res.statusCode).toBe(200);
    const body = json<{ users: number; follows: number; media: number; celebrities: Entry[]; sample: Entry[]; inDegree: { max: number }; ms: { total: number } }>(res);
    expect(body.users).toBe(500);
    expect(body.follows).toBeGreaterThan(2000);
    expect(body.media).toBeGreaterThan(300);
    expect(body.sample).toHaveLength(10);
    expect(body.sample[0]).toEqual(body.celebrities[0]);
    expect(body.celebrities[0]!.followed_by).toBe(body.inDegree.max);
    const me = await env.app.inject(`/v1/users/self?access_token=${body.sample[3]!.access_token}`);
    expect(me.statusCode).toBe(200);
    expect(me.json().data).toMatchObject({ id: body.sample[3]!.id, username: body.sample[3]!.username, counts: { followed_by: body.sample[3]!.followed_by } });
    const feed = await env.app.inject(`/v1/users/self/feed?access_token=${body.sample[5]!.access_token}`);
    expect(feed.statusCode).toBe(200);
  });

  it('GET /_sim/users pages through seeded accounts with tokens, in signup order or by followers', async () => {
    const first = json<{ total: number; offset: number; users: Entry[] }>(await simInject(env.app, '/_sim/users?offset=0&limit=200'));
    const second = json<{ users: Entry[] }>(await simInject(env.app, '/_sim/users?offset=200&limit=200'));
    expect(first.total).toBe(500);
    expect(first.users).toHaveLength(200);
    expect(new Set([...first.users, ...second.users].map((u) => u.id)).size).toBe(400);
    const top = json<{ users: Entry[] }>(await simInject(env.app, '/_sim/users?limit=20&order=followers')).users;
    expect(top.map((u) => u.followed_by)).toEqual([...top.map((u) => u.followed_by)].sort((a, b) => b - a));
    const last = json<{ users: Entry[] }>(await simInject(env.app, '/_sim/users?offset=499&limit=10')).users;
    expect(last).toHaveLength(1);
    // stride=k: every k-th account, an evenly spaced sample.
    const spaced = json<{ users: Entry[] }>(await simInject(env.app, '/_sim/users?offset=0&limit=10&stride=50')).users;
    expect(spaced).toHaveLength(10);
    expect(spaced.slice(0, 8).map((u) => u.id)).toEqual([...first.users, ...second.users].filter((_, i) => i % 50 === 0).map((u) => u.id));
    const bad = await simInject(env.app, '/_sim/users?stride=0');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().meta).toMatchObject({ code: 400 });
  });
});

describe('faults through HTTP', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await makeEnv({ topology: { database: { replicas: 0, readPolicy: 'primary' } } });
  });
  afterAll(async () => {
    await env.close();
  });

  it('a killed cache node shows as dead in /_sim/topology and comes back empty', async () => {
    const kill = await post(env, '/_sim/cache/cache-2/kill', { removeFromRing: false });
    expect(kill.statusCode).toBe(200);
    expect(kill.json()).toMatchObject({ fault: 'cache_kill', node: 'cache-2', alive: false });
    const nodes = (json<{ cache: { nodes: Array<{ name: string; alive: boolean }> } }>(await simInject(env.app, '/_sim/topology'))).cache.nodes;
    expect(nodes.find((n) => n.name === 'cache-2')!.alive).toBe(false);
    const revive = await post(env, '/_sim/cache/cache-2/revive');
    expect(revive.json()).toMatchObject({ fault: 'cache_revive', alive: true, items: 0 });
  });

  it('failing a primary with no replica makes its queries answer 503 APIError until the server is revived', async () => {
    const me = await signup(env.app, 'down_user');
    const server = env.topology.db.serverFor('photos', shardOf(me.id)).name;
    const url = `/v1/users/${me.id}/media/recent?access_token=${me.token}`;
    expect((await env.app.inject(url)).statusCode).toBe(200);
    const fail = await post(env, `/_sim/db/${server}/fail`);
    expect(fail.statusCode).toBe(200);
    expect(fail.json()).toMatchObject({ fault: 'db_fail', node: server, down: true, promoted: null });
    const down = await env.app.inject(url);
    expect(down.statusCode).toBe(503);
    expect(down.json()).toEqual({ meta: { code: 503, error_type: 'APIError', error_message: expect.any(String) } });
    // Failing it again is bad input, not a crash.
    expect((await post(env, `/_sim/db/${server}/fail`)).statusCode).toBe(400);
    expect((await post(env, `/_sim/db/${server}/revive`)).json()).toMatchObject({ wasDown: true });
    expect((await env.app.inject(url)).statusCode).toBe(200);
    const replica = await post(env, `/_sim/db/${server}/replicas`, { lagMs: 5 });
    expect(replica.json()).toMatchObject({ replica: `${server}-r1`, lagMs: 5, replicas: 1 });
  });

  it('lag, service time, shard moves and a background split with progress', async () => {
    const lag = await post(env, '/_sim/db/lag', { lagMs: 250 });
    expect(lag.statusCode).toBe(200);
    expect(lag.json()).toMatchObject({ fault: 'replica_lag', node: 'all', lagMs: 250 });
    expect((await post(env, '/_sim/db/service-time', { serviceTimeMs: 0 })).json()).toMatchObject({ toMs: 0 });
    const move = await post(env, '/_sim/shards/move', { cluster: 'main', shard: 3, to: 'db-2', wait: true });
    expect(move.json()).toMatchObject({ kind: 'move', state: 'done', from: 'db-0', to: 'db-2', shards: [3], done: 1 });
    const split = await post(env, '/_sim/shards/split', { cluster: 'main', server: 1 });
    expect(split.statusCode).toBe(200);
    const job = json<{ id: number; shards: number[]; to: string }>(split);
    expect(job.shards).toEqual([24, 25, 26, 27, 28, 29, 30, 31]);
    let state = '';
    for (let i = 0; i < 200 && state !== 'done'; i++) {
      state = json<{ state: string }>(await simInject(env.app, `/_sim/shards/moves/${job.id}`)).state;
      if (state !== 'done') await new Promise((r) => setTimeout(r, 5));
    }
    expect(state).toBe('done');
    const moves = json<{ moves: Array<{ id: number }> }>(await simInject(env.app, '/_sim/shards/moves')).moves;
    expect(moves.map((m) => m.id)).toEqual([1, job.id]);
    const dbs = json<{ databases: Array<{ servers: Array<{ name: string; logicalShards: number }> }> }>(await simInject(env.app, '/_sim/topology')).databases;
    expect(dbs[0]!.servers.find((s) => s.name === job.to)!.logicalShards).toBe(8);
    const faults = json<{ faults: Array<{ fault: string }> }>(await simInject(env.app, '/_sim/faults')).faults.map((f) => f.fault);
    expect(faults).toEqual(expect.arrayContaining(['cache_kill', 'db_fail', 'replica_lag', 'shard_move', 'db_add_server', 'shard_split']));
  });

  it('GET /_sim/telemetry and /_sim/scalars answer JSON a poller can use; `since` drops older points', async () => {
    const snap = json<{ nowMs: number; fanout: object; hotspots: { clusters: Array<{ servers: unknown[]; hottest: unknown[] }> }; caches: { nodes: unknown[] }; replicas: object }>(await simInject(env.app, '/_sim/telemetry?hottest=3'));
    expect(Object.keys(snap)).toEqual(expect.arrayContaining(['startMs', 'nowMs', 'fanout', 'hotspots', 'caches', 'replicas']));
    expect(snap.hotspots.clusters[0]!.servers).toHaveLength(5);
    expect(snap.hotspots.clusters[0]!.hottest.length).toBeLessThanOrEqual(3);
    expect(snap.caches.nodes).toHaveLength(6);
    const later = json<{ sinceMs: number; caches: { hitRatioOverTime: Array<[number, number]> } }>(await simInject(env.app, `/_sim/telemetry?since=${snap.nowMs + 60_000}`));
    expect(later.caches.hitRatioOverTime).toEqual([]);
    // utilisationFrom (unix ms) leaves earlier peaks out of the utilisation section only.
    type Util = { startMs: number; utilisation: { servers: Array<{ peakOpsPerS: number }> }; caches: { hitRatioOverTime: unknown[] } };
    const all = json<Util>(await simInject(env.app, '/_sim/telemetry'));
    expect(Math.max(...all.utilisation.servers.map((x) => x.peakOpsPerS))).toBeGreaterThan(0);
    const fromLater = json<Util>(await simInject(env.app, `/_sim/telemetry?utilisationFrom=${Math.ceil(all.startMs + snap.nowMs + 60_000)}`));
    expect(Math.max(...fromLater.utilisation.servers.map((x) => x.peakOpsPerS))).toBe(0);
    expect(fromLater.caches.hitRatioOverTime).toEqual(all.caches.hitRatioOverTime);
    const scalars = await simInject(env.app, '/_sim/scalars');
    expect(scalars.statusCode).toBe(200);
    const s = json<Record<string, number | null>>(scalars);
    for (const key of ['cache_hit_rate', 'fanout_lag_ms', 'shard_skew', 'stale_reads', 'replica_lag_ms', 'queue_depth']) expect(key in s).toBe(true);
    expect(typeof s.shard_skew).toBe('number');
  });

  it('/docs/json lists the admin endpoints under the sim tag', async () => {
    const doc = json<{ paths: Record<string, Record<string, { tags?: string[] }>> }>(await env.app.inject('/docs/json'));
    for (const [path, method] of [
      ['/_sim/seed', 'post'],
      ['/_sim/users', 'get'],
      ['/_sim/cache/{node}/kill', 'post'],
      ['/_sim/db/{node}/fail', 'post'],
      ['/_sim/db/lag', 'post'],
      ['/_sim/shards/move', 'post'],
      ['/_sim/shards/split', 'post'],
      ['/_sim/telemetry', 'get'],
      ['/_sim/scalars', 'get'],
    ] as const) {
      expect(doc.paths[path]?.[method]?.tags, path).toEqual(['sim']);
    }
  });
});

describe('bad input to /_sim', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await makeEnv();
  });
  afterAll(async () => {
    await env.close();
  });

  const cases: Array<[string, string, string, unknown?]> = [
    ['seed without a body', 'POST', '/_sim/seed'],
    ['seed with an empty object', 'POST', '/_sim/seed', {}],
    ['seed with 0 users', 'POST', '/_sim/seed', { users: 0, avgFollows: 1 }],
    ['seed with users as text', 'POST', '/_sim/seed', { users: 'many', avgFollows: 1 }],
    ['seed with fractional users', 'POST', '/_sim/seed', { users: 10.5, avgFollows: 1 }],
    ['seed with too many users', 'POST', '/_sim/seed', { users: 1e9, avgFollows: 1 }],
    ['seed with negative follows', 'POST', '/_sim/seed', { users: 10, avgFollows: -1 }],
    ['seed with more celebrities than users', 'POST', '/_sim/seed', { users: 10, avgFollows: 1, celebrities: 11 }],
    ['seed with a private fraction above 1', 'POST', '/_sim/seed', { users: 10, avgFollows: 1, privateFraction: 2 }],
    ['seed with too many photos each', 'POST', '/_sim/seed', { users: 10, avgFollows: 1, mediaPerUser: 1000 }],
    ['seed with a negative seed', 'POST', '/_sim/seed', { users: 10, avgFollows: 1, seed: -1 }],
    ['seed with a short password', 'POST', '/_sim/seed', { users: 10, avgFollows: 1, password: 'x' }],
    ['seed with an array body', 'POST', '/_sim/seed', [1, 2]],
    ['users with limit 0', 'GET', '/_sim/users?limit=0'],
    ['users with a huge limit', 'GET', '/_sim/users?limit=20000'],
    ['users with a negative offset', 'GET', '/_sim/users?offset=-1'],
    ['users with an unknown order', 'GET', '/_sim/users?order=random'],
    ['users with a non-numeric limit', 'GET', '/_sim/users?limit=abc'],
    ['users with an infinite offset', 'GET', '/_sim/users?offset=1e400'],
    ['kill an unknown cache node', 'POST', '/_sim/cache/cache-99/kill'],
    ['kill a node with a bad name', 'POST', '/_sim/cache/bad%20name!/kill'],
    ['kill with removeFromRing as text', 'POST', '/_sim/cache/cache-1/kill', { removeFromRing: 'yes' }],
    ['kill with an array body', 'POST', '/_sim/cache/cache-1/kill', [true]],
    ['revive an unknown cache node', 'POST', '/_sim/cache/nope/revive'],
    ['fail an unknown server', 'POST', '/_sim/db/db-99/fail'],
    ['revive an unknown server', 'POST', '/_sim/db/db-99/revive'],
    ['add a replica with a bad lag', 'POST', '/_sim/db/db-1/replicas', { lagMs: -4 }],
    ['lag without lagMs', 'POST', '/_sim/db/lag', {}],
    ['lag negative', 'POST', '/_sim/db/lag', { lagMs: -5 }],
    ['lag above an hour', 'POST', '/_sim/db/lag', { lagMs: 1e12 }],
    ['lag of an unknown node', 'POST', '/_sim/db/lag', { node: 'nope', lagMs: 5 }],
    ['service time as text', 'POST', '/_sim/db/service-time', { serviceTimeMs: 'slow' }],
    ['move without fields', 'POST', '/_sim/shards/move', { cluster: 'main' }],
    ['move in an unknown cluster', 'POST', '/_sim/shards/move', { cluster: 'nope', shard: 1, to: 1 }],
    ['move a shard that does not exist', 'POST', '/_sim/shards/move', { cluster: 'main', shard: 9999, to: 1 }],
    ['move a shard to its own server', 'POST', '/_sim/shards/move', { cluster: 'main', shard: 0, to: 0 }],
    ['move to an unknown server', 'POST', '/_sim/shards/move', { cluster: 'main', shard: 0, to: 77 }],
    ['split an unknown server', 'POST', '/_sim/shards/split', { cluster: 'main', server: 'db-77' }],
    ['split in an unknown cluster', 'POST', '/_sim/shards/split', { cluster: 'photos', server: 0 }],
    ['an unknown move job', 'GET', '/_sim/shards/moves/999'],
    ['a move job that is not a number', 'GET', '/_sim/shards/moves/abc'],
    ['telemetry since a negative time', 'GET', '/_sim/telemetry?since=-1'],
    ['telemetry with a zero step', 'GET', '/_sim/telemetry?step=0'],
    ['telemetry with too many hottest shards', 'GET', '/_sim/telemetry?hottest=999'],
  ];

  it.each(cases)('%s → 400 APIInvalidParametersError', async (_name, method, url, payload) => {
    const res = await simInject(env.app, { method: method as 'GET' | 'POST', url, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ meta: { code: 400, error_type: 'APIInvalidParametersError', error_message: expect.any(String) } });
  });

  it('a malformed JSON body is 400 too', async () => {
    const res = await simInject(env.app, { method: 'POST', url: '/_sim/db/lag', headers: { 'content-type': 'application/json' }, payload: '{"lagMs": ' });
    expect(res.statusCode).toBe(400);
    expect(res.json().meta.error_type).toBe('APIInvalidParametersError');
  });
});
