// Long admin work does not freeze the server: while POST /_sim/seed loads 50,000 accounts, and then
// while a split moves half of a server's logical shards, a steady stream of API requests on a real
// socket keeps being answered, the slowest in under 250 ms, and the work completes with the right
// counts. The bound is about the event loop (one process serves the API and does the admin work),
// so this file runs after the parallel suite, on a quiet machine (vitest.config.ts).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_HEADERS, makeEnv, relate, signup, upload, type Account, type TestEnv } from './helpers/app.ts';

/**
 * The slowest API answer allowed while admin work runs (ms), as issue 8 asks. Work runs in 10 ms
 * slices (sim/engine/time-slicer.ts); what remains is the API's own time, a GC pause and one unit of work.
 */
const WORST_API_MS = 250;

let env: TestEnv;
let base: string;
let reader: Account;

beforeAll(async () => {
  env = await makeEnv();
  const author = await signup(env.app, 'author');
  reader = await signup(env.app, 'reader');
  await relate(env.app, reader, author.id, 'follow');
  await upload(env.app, author, { caption: 'before the seed' });
  await env.topology.idle();
  base = await env.app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await env?.close();
});

/**
 * Reads as `reader` (profile, then feed) from two clients, each pausing 5 ms between requests,
 * until stop() is called; returns every latency (ms) and the statuses seen.
 */
function apiStream(): { stop(): Promise<{ latenciesMs: number[]; statuses: Set<number> }> } {
  const latenciesMs: number[] = [];
  const statuses = new Set<number>();
  let running = true;
  const paths = [`/v1/users/self?access_token=${encodeURIComponent(reader.token)}`, `/v1/users/self/feed?count=5&access_token=${encodeURIComponent(reader.token)}`];
  const client = async () => {
    for (let i = 0; running; i++) {
      const t0 = performance.now();
      const res = await fetch(base + paths[i % 2]!);
      await res.arrayBuffer();
      latenciesMs.push(performance.now() - t0);
      statuses.add(res.status);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const clients = [client(), client()];
  return {
    async stop() {
      running = false;
      await Promise.all(clients);
      return { latenciesMs, statuses };
    },
  };
}

async function admin(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(base + path, { method: 'POST', headers: { ...ADMIN_HEADERS, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function sum(sql: string): Promise<number> {
  const parts = await env.topology.db.scatter('users', 'test.sum', async (q) => Number((await q.get<{ n: bigint | null }>(sql))!.n ?? 0), { primary: true });
  return parts.reduce((a, b) => a + b, 0);
}

describe('admin work runs in slices while the API keeps answering', () => {
  it(`a 50,000-account seed: every API request answered, the slowest in under ${WORST_API_MS} ms, and the seed complete`, { timeout: 180_000 }, async () => {
    const stream = apiStream();
    const seed = await admin('/_sim/seed', { users: 50_000, avgFollows: 5, seed: 8 });
    const { latenciesMs, statuses } = await stream.stop();

    expect(seed.status).toBe(200);
    expect(seed.json.users).toBe(50_000);
    const follows = seed.json.follows as number;
    expect(follows).toBeGreaterThan(200_000);
    // Both directions of every edge and the counts, plus the one follow made through the API.
    expect(await sum('SELECT count(*) AS n FROM users')).toBe(50_002);
    expect(await sum('SELECT count(*) AS n FROM follows')).toBe(follows + 1);
    expect(await sum('SELECT count(*) AS n FROM followers')).toBe(follows + 1);
    expect(await sum('SELECT sum(follows_count) AS n FROM users')).toBe(follows + 1);
    expect(await sum('SELECT sum(followed_by_count) AS n FROM users')).toBe(follows + 1);
    // The replicas hold what their primaries hold before the seed answers.
    for (const s of env.topology.db.groupFor('users').servers) expect(s.replicas.every((r) => r.backlog() === 0)).toBe(true);

    // The stream ran all along (hundreds of answers over the seconds the seed takes), all fine.
    expect(latenciesMs.length).toBeGreaterThan(100);
    expect([...statuses]).toEqual([200]);
    expect(Math.max(...latenciesMs)).toBeLessThan(WORST_API_MS);
  });

  it(`a split of db-0 under the same stream: the slowest API answer under ${WORST_API_MS} ms, every shard moved, no row lost`, { timeout: 120_000 }, async () => {
    const usersBefore = await sum('SELECT count(*) AS n FROM users');
    const followsBefore = await sum('SELECT count(*) AS n FROM follows');
    const stream = apiStream();
    const split = await admin('/_sim/shards/split', { cluster: 'main', server: 'db-0', wait: true });
    const { latenciesMs, statuses } = await stream.stop();

    expect(split.status).toBe(200);
    expect(split.json).toMatchObject({ state: 'done', done: 8, error: null });
    expect(split.json.rowsCopied as number).toBeGreaterThan(50_000 / 8);
    const group = env.topology.db.groupFor('users');
    expect(group.map.shardsOn(4)).toHaveLength(8);
    expect(await sum('SELECT count(*) AS n FROM users')).toBe(usersBefore);
    expect(await sum('SELECT count(*) AS n FROM follows')).toBe(followsBefore);

    expect(latenciesMs.length).toBeGreaterThan(20);
    expect([...statuses]).toEqual([200]);
    expect(Math.max(...latenciesMs)).toBeLessThan(WORST_API_MS);
  });
});
