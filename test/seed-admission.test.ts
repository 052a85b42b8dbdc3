// What POST /_sim/seed admits, and what it guarantees while the API keeps working: a budget per call
// (accounts, follows, photos, body bytes) refused with 400 naming the limit, one seeding at a time
// (a second one is 409, not queued), and signups and follows made through the API during a seeding
// leave every count and both directions of every follow consistent; a username a signup claims
// meanwhile fails the seeding, with nothing of it left behind.

import type { LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { generatePopulation, MAX_SEED_FOLLOWS, MAX_SEED_MEDIA, MAX_SEED_USERS } from '../sim/workload/population.ts';
import { SEED_BODY_LIMIT_BYTES } from '../server/routes/sim.ts';
import { errorType, makeEnv, relate, signup, simInject, type TestEnv } from './helpers/app.ts';

const envs: TestEnv[] = [];
afterEach(async () => {
  for (const e of envs.splice(0)) await e.close();
});

async function env(): Promise<TestEnv> {
  const e = await makeEnv();
  envs.push(e);
  return e;
}

const seed = (e: TestEnv, body: unknown) => simInject(e.app, { method: 'POST', url: '/_sim/seed', payload: body as Record<string, unknown> });
const message = (res: LightMyRequestResponse) => (res.json() as { meta: { error_message: string } }).meta.error_message;

async function sum(e: TestEnv, sql: string): Promise<number> {
  const parts = await e.topology.db.scatter('users', 'test.sum', async (q) => Number((await q.get<{ n: bigint | null }>(sql))!.n ?? 0), { primary: true });
  return parts.reduce((a, b) => a + b, 0);
}

describe('the budget of one seeding call', () => {
  it('refuses more accounts, follows or photos than one call may seed, and a larger body, with 400 naming the limit', async () => {
    const e = await env();
    const cases: Array<[unknown, string]> = [
      [{ users: MAX_SEED_USERS + 1, avgFollows: 1 }, String(MAX_SEED_USERS)],
      [{ users: 200_000, avgFollows: 30 }, String(MAX_SEED_FOLLOWS)],
      [{ users: 100_000, avgFollows: 1, mediaPerUser: 20 }, String(MAX_SEED_MEDIA)],
    ];
    for (const [body, limit] of cases) {
      const res = await seed(e, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(errorType(res)).toBe('APIInvalidParametersError');
      expect(message(res)).toContain(limit);
    }
    const padded = `{"users": 10, "avgFollows": 1${' '.repeat(SEED_BODY_LIMIT_BYTES)}}`;
    const big = await simInject(e.app, { method: 'POST', url: '/_sim/seed', payload: padded, headers: { 'content-type': 'application/json' } });
    expect(big.statusCode).toBe(400);
    expect(errorType(big)).toBe('APIInvalidParametersError');
    expect(message(big)).toContain(String(SEED_BODY_LIMIT_BYTES));
    // Nothing was seeded by any of them; a call within the budget is accepted.
    expect(e.topology.population.size).toBe(0);
    expect((await seed(e, { users: 50, avgFollows: 2 })).statusCode).toBe(200);
    expect(e.topology.population.size).toBe(50);
  });
});

describe('one seeding at a time', () => {
  it('a second seeding while one runs is refused with 409 (not queued); the first completes, and the next one afterwards is accepted', async () => {
    const e = await env();
    const first = seed(e, { users: 4000, avgFollows: 4, seed: 1 });
    // The first one is under way (generating in slices) when the second arrives.
    await new Promise((r) => setImmediate(r));
    const second = await seed(e, { users: 10, avgFollows: 1, seed: 2 });
    expect(second.statusCode).toBe(409);
    expect(errorType(second)).toBe('APIError');
    expect((await first).statusCode).toBe(200);
    expect(e.topology.population.size).toBe(4000);
    expect((await seed(e, { users: 10, avgFollows: 1, seed: 2 })).statusCode).toBe(200);
    expect(e.topology.population.size).toBe(4010);
  });
});

describe('API writes during a seeding', () => {
  it('signups and follows made while 10,000 accounts are seeded leave the counts and both directions of every follow consistent', async () => {
    const e = await env();
    const early = await Promise.all([signup(e.app, 'early_a'), signup(e.app, 'early_b')]);
    const running = seed(e, { users: 10_000, avgFollows: 6, seed: 4 });
    let seeded = false;
    void running.then(() => (seeded = true));
    const during = [];
    let whileSeeding = 0;
    for (let i = 0; i < 12; i++) {
      const who = await signup(e.app, `during_${i}`);
      during.push(who);
      await relate(e.app, who, early[i % 2]!.id, 'follow');
      if (i > 0) await relate(e.app, who, during[i - 1]!.id, 'follow');
      if (!seeded) whileSeeding++;
    }
    const res = await running;
    expect(res.statusCode).toBe(200);
    // The API's writes really were made while the seeding ran.
    expect(whileSeeding).toBeGreaterThanOrEqual(3);
    expect(e.topology.population.size).toBe(10_000);
    const follows = (res.json() as { follows: number }).follows;
    const apiFollows = 12 + 11;
    const users = 10_000 + 2 + 12;
    expect(await sum(e, 'SELECT count(*) AS n FROM users')).toBe(users);
    expect(await sum(e, 'SELECT count(*) AS n FROM usernames')).toBe(users);
    // Every username names its own account (they live on other shards than the accounts: compare all).
    const all = async (sql: string) => (await e.topology.db.scatter('users', 'test.rows', (q) => q.all<{ k: string; v: bigint }>(sql), { primary: true })).flat();
    const nameOf = new Map((await all('SELECT id AS v, lower(username) AS k FROM users')).map((r) => [String(r.v), r.k]));
    const claims = await all('SELECT user_id AS v, username_lower AS k FROM usernames');
    expect(claims.filter((c) => nameOf.get(String(c.v)) === c.k)).toHaveLength(users);
    for (const q of ['SELECT count(*) AS n FROM follows', 'SELECT count(*) AS n FROM followers', 'SELECT sum(follows_count) AS n FROM users', 'SELECT sum(followed_by_count) AS n FROM users']) {
      expect(await sum(e, q), q).toBe(follows + apiFollows);
    }
    // Counts seen through the API are the writes made through it.
    const me = await e.app.inject(`/v1/users/self?access_token=${encodeURIComponent(early[0]!.token)}`);
    expect((me.json() as { data: { counts: { followed_by: number } } }).data.counts.followed_by).toBe(6);
  });

  it('a username a signup claims while the seeding runs fails the seeding (400, username taken) and leaves nothing of it behind', async () => {
    const e = await env();
    // The seeding's last account, known in advance: the same seed gives the same population.
    const last = generatePopulation(6, { users: 3000, avgFollows: 3 }).users[2999]!.username;
    const running = seed(e, { users: 3000, avgFollows: 3, seed: 6 });
    const api = await signup(e.app, last);
    const res = await running;
    expect(res.statusCode).toBe(400);
    expect(errorType(res)).toBe('APIInvalidParametersError');
    expect(message(res)).toContain(last.toLowerCase());
    expect(await sum(e, 'SELECT count(*) AS n FROM users')).toBe(1);
    expect(await sum(e, 'SELECT count(*) AS n FROM usernames')).toBe(1);
    expect(await sum(e, 'SELECT count(*) AS n FROM tokens')).toBe(1);
    expect(e.topology.population.size).toBe(0);
    const me = await e.app.inject(`/v1/users/self?access_token=${encodeURIComponent(api.token)}`);
    expect((me.json() as { data: { username: string } }).data.username).toBe(last);
    // The seeding can run again once the name is free of it: another seed, other names.
    expect((await seed(e, { users: 3000, avgFollows: 3, seed: 7 })).statusCode).toBe(200);
  });
});
