// The bulk seeding path: users with working tokens and passwords, usernames kept unique with
// nothing written on a clash, follow edges deduplicated and counted, fast enough for big graphs,
// and the same seed on the same virtual start time gives the same ids and tokens.

import { afterEach, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { seedFollows, seedUsers, type SeedUser } from '../sim/workload/bulk-loader.ts';
import { VirtualClock } from '../sim/engine/clock.ts';
import { isSimError } from '../sim/engine/errors.ts';
import { shardOf } from '../sim/parts/ids.ts';
import { Prng } from '../sim/engine/prng.ts';
import { buildTopology, type Topology } from '../sim/topology.ts';
import { loadTopology, type TopologyInput } from '../sim/topology-config.ts';

const open: Topology[] = [];
afterEach(async () => {
  for (const top of open.splice(0)) await top.close();
});

async function makeTopology(opts: { seed?: number; startMs?: number; shards?: TopologyInput['shards'] } = {}): Promise<Topology> {
  const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4, ...opts.shards }, database: { readPolicy: 'primary' }, feed: { replicas: 0 } });
  const top = await buildTopology({ config, seed: opts.seed ?? 1, sampleEveryMs: 0, ...(opts.startMs !== undefined ? { clock: new VirtualClock(opts.startMs) } : {}) });
  open.push(top);
  return top;
}

const people = (n: number, prefix = 'user'): SeedUser[] => Array.from({ length: n }, (_, i) => ({ username: `${prefix}_${i}`, fullName: `${prefix} ${i}` }));

async function totalUsers(top: Topology): Promise<number> {
  const parts = await top.db.scatter('users', 'test.count', async (sql) => Number((await sql.get<{ n: bigint }>('SELECT count(*) AS n FROM users'))!.n), { primary: true });
  return parts.reduce((a, b) => a + b, 0);
}

async function totalRows(top: Topology, table: string): Promise<number> {
  const parts = await top.db.scatter('users', 'test.count', async (sql) => Number((await sql.get<{ n: bigint }>(`SELECT count(*) AS n FROM ${table}`))!.n), { primary: true });
  return parts.reduce((a, b) => a + b, 0);
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return isSimError(e) ? e.code : String(e);
  }
}

describe('seedUsers', () => {
  it('returns ids in input order with tokens that authenticate and a password that logs in', async () => {
    const top = await makeTopology();
    const seeded = await seedUsers(top, [...people(99), { username: 'Private_Pat', fullName: 'Pat', isPrivate: true, bio: 'hi' }]);
    expect(seeded).toHaveLength(100);
    expect(new Set(seeded.map((s) => s.id)).size).toBe(100);
    expect(seeded[3]!.username).toBe('user_3');
    for (const s of seeded) expect(await top.store.authenticate(s.accessToken)).toBe(s.id);
    const pat = (await top.store.getUser(seeded[99]!.id))!;
    expect(pat).toMatchObject({ username: 'Private_Pat', fullName: 'Pat', isPrivate: true, bio: 'hi', counts: { media: 0, follows: 0, followedBy: 0 } });
    expect((await top.store.login('private_pat', 'scalegram')).user.id).toBe(pat.id);
    expect(await codeOf(top.store.login('private_pat', 'wrong-one'))).toBe('SG_ERR_INVALID_CREDENTIALS');
    // Modulo placement: 100 signups over 64 shards touch every shard.
    expect(new Set(seeded.map((s) => shardOf(s.id))).size).toBe(64);
    expect(await totalUsers(top)).toBe(100);
    expect(top.metrics.value('signups')).toBe(100);
    // Seeded usernames are taken for the Store too, and the Store's signups follow on.
    expect(await codeOf(top.store.createUser({ username: 'USER_7', password: 'secret123', fullName: 'x', isPrivate: false }))).toBe('SG_ERR_USERNAME_TAKEN');
    expect((await top.store.searchUsers('user_1', 3)).map((u) => u.username)).toEqual(['user_1', 'user_10', 'user_11']);
  });

  it('takes a custom password', async () => {
    const top = await makeTopology();
    await seedUsers(top, [{ username: 'custom', fullName: 'C' }], { password: 'hunter22' });
    expect(await codeOf(top.store.login('custom', 'hunter22'))).toBe('ok');
    expect(await codeOf(top.store.login('custom', 'scalegram'))).toBe('SG_ERR_INVALID_CREDENTIALS');
  });

  it('rejects a username repeated in the seed (in any case) with SG_ERR_USERNAME_TAKEN and writes nothing', async () => {
    const top = await makeTopology();
    const code = await codeOf(seedUsers(top, [...people(10), { username: 'USER_4', fullName: 'dup' }]));
    expect(code).toBe('SG_ERR_USERNAME_TAKEN');
    expect(await totalUsers(top)).toBe(0);
    expect(await totalRows(top, 'usernames')).toBe(0);
    expect(await totalRows(top, 'tokens')).toBe(0);
  });

  it('rejects a username that already exists in the database with SG_ERR_USERNAME_TAKEN and writes nothing', async () => {
    const top = await makeTopology();
    await top.store.createUser({ username: 'Taken', password: 'secret123', fullName: 'T', isPrivate: false });
    const code = await codeOf(seedUsers(top, [...people(20), { username: 'taken', fullName: 'clash' }, ...people(20, 'more')]));
    expect(code).toBe('SG_ERR_USERNAME_TAKEN');
    expect(await totalUsers(top)).toBe(1);
    expect(await totalRows(top, 'usernames')).toBe(1);
    expect(await totalRows(top, 'tokens')).toBe(1);
  });

  it('rejects a bad username with SG_ERR_INVALID_PARAM and writes nothing', async () => {
    const top = await makeTopology();
    expect(await codeOf(seedUsers(top, [...people(5), { username: 'bad name!', fullName: 'x' }]))).toBe('SG_ERR_INVALID_PARAM');
    expect(await codeOf(seedUsers(top, [{ username: 'x'.repeat(31), fullName: 'x' }]))).toBe('SG_ERR_INVALID_PARAM');
    expect(await totalUsers(top)).toBe(0);
  });

  it('same seed and same virtual start time → the same user ids in two topologies, but never the same tokens (they come from the CSPRNG)', async () => {
    const start = 1_400_000_000_000;
    const a = await seedUsers(await makeTopology({ seed: 42, startMs: start }), people(300));
    const b = await seedUsers(await makeTopology({ seed: 42, startMs: start }), people(300));
    expect(b.map((s) => [s.id, s.username])).toEqual(a.map((s) => [s.id, s.username]));
    const sameTokens = b.filter((s, i) => s.accessToken === a[i]!.accessToken).length;
    expect(sameTokens).toBe(0);
    for (const s of a) expect(s.accessToken).toMatch(new RegExp(`^${s.id}\\.[0-9a-f]{32}$`));
  });

  it('under range sharding (usersPerRange 50) 120 seeded users fill shards 0, 1 and 2 in order', async () => {
    const top = await makeTopology({ shards: { strategy: 'range', usersPerRange: 50 } });
    const seeded = await seedUsers(top, people(120));
    const shards = seeded.map((s) => shardOf(s.id));
    expect(shards.slice(0, 50).every((s) => s === 0)).toBe(true);
    expect(shards.slice(50, 100).every((s) => s === 1)).toBe(true);
    expect(shards.slice(100).every((s) => s === 2)).toBe(true);
  });
});

describe('seedFollows', () => {
  it('adds approved edges both ways, skips self-follows and duplicates, and updates counts', async () => {
    const top = await makeTopology();
    const [a, b, c, d] = (await seedUsers(top, people(4))).map((s) => s.id) as [string, string, string, string];
    const added = await seedFollows(top, [
      [a, b],
      [a, c],
      [a, b], // duplicate
      [b, b], // self
      [c, a],
      [d, a],
      [a, d],
    ]);
    expect(added).toBe(5);
    const counts = async (id: string) => (await top.store.getUser(id))!.counts;
    expect(await counts(a)).toMatchObject({ follows: 3, followedBy: 2 });
    expect(await counts(b)).toMatchObject({ follows: 0, followedBy: 1 });
    expect(await counts(c)).toMatchObject({ follows: 1, followedBy: 1 });
    expect(await counts(d)).toMatchObject({ follows: 1, followedBy: 1 });
    expect((await top.store.listFollows(a, { count: 10 })).items.map((u) => u.id).sort()).toEqual([b, c, d].sort());
    expect((await top.store.listFollowedBy(a, { count: 10 })).items.map((u) => u.id).sort()).toEqual([c, d].sort());
    expect((await top.store.getRelationship(a, b)).outgoingStatus).toBe('follows');
    expect((await top.store.getRelationship(b, a)).incomingStatus).toBe('followed_by');
    expect(await top.store.canView(b, a)).toBe(true);

    // Seeding the same edges again, or edges the Store already made, adds nothing and counts nothing.
    await top.store.setRelationship(b, c, 'follow');
    expect(await seedFollows(top, [[a, b], [b, c], [c, a]])).toBe(0);
    expect(await counts(a)).toMatchObject({ follows: 3, followedBy: 2 });
    expect(await counts(c)).toMatchObject({ follows: 1, followedBy: 2 });
  });

  it('seeded followers receive fan-out like any other follower', async () => {
    const top = await makeTopology();
    const [star, ...fans] = (await seedUsers(top, people(12))).map((s) => s.id) as [string, ...string[]];
    await seedFollows(top, fans.slice(0, 8).map((f) => [f, star] as const));
    const image = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#888' } }).jpeg().toBuffer();
    const m = await top.store.createMedia({ userId: star, caption: 'hello fans', filter: 'Normal', lat: null, lng: null, locationName: null, image });
    await top.idle();
    const reached: string[] = [];
    for (const f of fans) if ((await top.store.getFeed(f, { count: 5 })).items.some((x) => x.id === m.id)) reached.push(f);
    expect(reached.sort()).toEqual(fans.slice(0, 8).sort());
  });

  it('seeds 20,000 follow edges among 1,000 users, counts matching the edges', async () => {
    const top = await makeTopology();
    const ids = (await seedUsers(top, people(1000))).map((s) => s.id);
    const rng = new Prng(20000);
    const edges: Array<[string, string]> = [];
    const unique = new Set<string>();
    while (unique.size < 20_000) {
      const s = ids[rng.int(0, 999)]!;
      const d = ids[rng.int(0, 999)]!;
      edges.push([s, d]);
      if (s !== d) unique.add(s + '>' + d);
    }
    const added = await seedFollows(top, edges);
    expect(added).toBe(20_000);
    const sums = await top.db.scatter('users', 'test.sum', async (sql) => (await sql.get<{ f: bigint; fb: bigint }>('SELECT sum(follows_count) AS f, sum(followed_by_count) AS fb FROM users'))!, { primary: true });
    expect(sums.reduce((acc, r) => acc + Number(r.f), 0)).toBe(20_000);
    expect(sums.reduce((acc, r) => acc + Number(r.fb), 0)).toBe(20_000);
    const rows = await top.db.scatter('graph', 'test.count', async (sql) => (await sql.get<{ a: bigint; b: bigint }>("SELECT (SELECT count(*) FROM follows WHERE status = 'approved') AS a, (SELECT count(*) FROM followers) AS b"))!, { primary: true });
    expect(rows.reduce((acc, r) => acc + Number(r.a), 0)).toBe(20_000);
    expect(rows.reduce((acc, r) => acc + Number(r.b), 0)).toBe(20_000);
    // Spot-check one user's count against its edges.
    const someone = ids[17]!;
    const out = [...unique].filter((k) => k.startsWith(someone + '>')).length;
    expect((await top.store.getUser(someone))!.counts.follows).toBe(out);
  });
});
