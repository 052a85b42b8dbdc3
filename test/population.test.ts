// Seeded populations: the same seed gives the same accounts and graph, the follow graph is directed
// and heavy-tailed with celebrities, usernames are valid and unique, and the bulk path seeds tens of
// thousands of accounts with their follows, photos and feeds in seconds, ready for the Store.

import { afterEach, describe, expect, it } from 'vitest';
import { shardOf } from '../sim/parts/ids.ts';
import { degreeSummary, generatePopulation, inDegrees, resolvePopulationOptions, type Population } from '../sim/workload/population.ts';
import { isSimError } from '../sim/engine/errors.ts';
import { buildTopology, type Topology } from '../sim/topology.ts';
import { loadTopology, type TopologyInput } from '../sim/topology-config.ts';

const open: Topology[] = [];
afterEach(async () => {
  for (const top of open.splice(0)) await top.close();
});

async function makeTopology(over: TopologyInput = {}): Promise<Topology> {
  const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 }, database: { readPolicy: 'primary' }, feed: { replicas: 0 }, ...over });
  const top = await buildTopology({ config, seed: 11, sampleEveryMs: 0 });
  open.push(top);
  return top;
}

function edgeSet(p: Population): Set<number> {
  const n = p.users.length;
  const s = new Set<number>();
  for (let k = 0; k < p.sources.length; k++) s.add(p.sources[k]! * n + p.targets[k]!);
  return s;
}

describe('generatePopulation', () => {
  it('the same seed gives the same accounts and edges; another seed gives other ones', () => {
    const a = generatePopulation(42, { users: 3000, avgFollows: 10 });
    const b = generatePopulation(42, { users: 3000, avgFollows: 10 });
    const c = generatePopulation(43, { users: 3000, avgFollows: 10 });
    expect(b.users).toEqual(a.users);
    expect(Array.from(b.sources)).toEqual(Array.from(a.sources));
    expect(Array.from(b.targets)).toEqual(Array.from(a.targets));
    expect(b.celebrities).toEqual(a.celebrities);
    const sameNames = c.users.filter((u, i) => u.username === a.users[i]!.username).length;
    expect(sameNames).toBeLessThan(30);
    const ea = edgeSet(a);
    let shared = 0;
    for (const e of edgeSet(c)) if (ea.has(e)) shared++;
    expect(shared / ea.size).toBeLessThan(0.5);
  });

  it('follows are directed: no self-follows, no duplicates, under 2% of edges reciprocated, mean out-degree near avgFollows', () => {
    const p = generatePopulation(7, { users: 20_000, avgFollows: 10 });
    const n = p.users.length;
    const edges = edgeSet(p);
    expect(edges.size).toBe(p.sources.length);
    let selfLoops = 0;
    let reciprocated = 0;
    for (let k = 0; k < p.sources.length; k++) {
      if (p.sources[k] === p.targets[k]) selfLoops++;
      if (edges.has(p.targets[k]! * n + p.sources[k]!)) reciprocated++;
    }
    expect(selfLoops).toBe(0);
    expect(reciprocated / p.sources.length).toBeLessThan(0.02);
    expect(p.sources.length / n).toBeGreaterThan(9);
    expect(p.sources.length / n).toBeLessThan(11);
  });

  it('in-degree is heavy-tailed: the max is over 100 × the median, the top 1% hold over a quarter of all follows, celebrities lead', () => {
    const p = generatePopulation(7, { users: 20_000, avgFollows: 10, celebrities: 3 });
    const d = inDegrees(p);
    const summary = degreeSummary(p);
    expect(summary.max).toBeGreaterThan(100 * Math.max(1, summary.median));
    expect(summary.p99).toBeGreaterThan(10 * Math.max(1, summary.median));
    const sorted = Array.from(d).sort((x, y) => y - x);
    const top1 = sorted.slice(0, 200).reduce((a, b) => a + b, 0);
    expect(top1 / p.sources.length).toBeGreaterThan(0.25);
    // The boosted accounts are among the ten most followed.
    const tenth = sorted[9]!;
    expect(p.celebrities).toHaveLength(3);
    for (const c of p.celebrities) expect(d[c]!).toBeGreaterThanOrEqual(tenth);
  });

  it('usernames are valid for Instagram and unique ignoring case; profiles carry faker names, some bios, some websites, ~5% private', () => {
    const p = generatePopulation(9, { users: 20_000, avgFollows: 1 });
    const lower = new Set(p.users.map((u) => u.username.toLowerCase()));
    expect(lower.size).toBe(20_000);
    expect(p.users.every((u) => /^[A-Za-z0-9._]{1,30}$/.test(u.username))).toBe(true);
    expect(p.users.every((u) => / /.test(u.fullName))).toBe(true);
    const withBio = p.users.filter((u) => u.bio).length / 20_000;
    const withSite = p.users.filter((u) => u.website.startsWith('http')).length / 20_000;
    const privateShare = p.users.filter((u) => u.isPrivate).length / 20_000;
    expect(withBio).toBeGreaterThan(0.3);
    expect(withBio).toBeLessThan(0.4);
    expect(withSite).toBeGreaterThan(0.05);
    expect(withSite).toBeLessThan(0.11);
    expect(privateShare).toBeGreaterThan(0.04);
    expect(privateShare).toBeLessThan(0.06);
  });

  it('rejects bad options with SG_ERR_INVALID_PARAM naming the field', () => {
    const field = (o: Parameters<typeof resolvePopulationOptions>[0]) => {
      try {
        resolvePopulationOptions(o);
        return 'ok';
      } catch (e) {
        return isSimError(e, 'SG_ERR_INVALID_PARAM') ? String(e.details?.field) : String(e);
      }
    };
    expect(field({ users: 0, avgFollows: 1 })).toBe('users');
    expect(field({ users: 1.5, avgFollows: 1 })).toBe('users');
    expect(field({ users: 10, avgFollows: -1 })).toBe('avgFollows');
    expect(field({ users: 10, avgFollows: 1, celebrities: 11 })).toBe('celebrities');
    expect(field({ users: 10, avgFollows: 1, privateFraction: 1.5 })).toBe('privateFraction');
    expect(field({ users: 10, avgFollows: 1, attractiveness: 0 })).toBe('attractiveness');
    expect(field({ users: 10, avgFollows: 1 })).toBe('ok');
  });
});

describe('seeding a population', () => {
  it('seeds 20,000 accounts and ~200,000 follows, with counts matching the edges', async () => {
    const top = await makeTopology({ database: { readPolicy: 'primary', replicas: 1 } });
    const p = generatePopulation(3, { users: 20_000, avgFollows: 10 });
    const answer = await top.population.seed({ users: 20_000, avgFollows: 10, seed: 3 });
    expect(answer.users).toBe(20_000);
    expect(answer.follows).toBe(p.sources.length);
    // How long it takes is the bench's figure (bench/seed.ts, the fan-out measurement's seeding), not a test's.
    expect(answer.ms.users + answer.ms.follows).toBeGreaterThan(0);
    const sums = await top.db.scatter('users', 'test.sum', async (sql) => (await sql.get<{ f: bigint; fb: bigint; n: bigint }>('SELECT sum(follows_count) AS f, sum(followed_by_count) AS fb, count(*) AS n FROM users'))!, { primary: true });
    expect(sums.reduce((a, r) => a + Number(r.n), 0)).toBe(20_000);
    expect(sums.reduce((a, r) => a + Number(r.f), 0)).toBe(p.sources.length);
    expect(sums.reduce((a, r) => a + Number(r.fb), 0)).toBe(p.sources.length);
    const rows = await top.db.scatter('graph', 'test.count', async (sql) => (await sql.get<{ a: bigint; b: bigint }>('SELECT (SELECT count(*) FROM follows) AS a, (SELECT count(*) FROM followers) AS b'))!, { primary: true });
    expect(rows.reduce((a, r) => a + Number(r.a), 0)).toBe(p.sources.length);
    expect(rows.reduce((a, r) => a + Number(r.b), 0)).toBe(p.sources.length);
    // The most followed account as the Store sees it; its followers page through in order.
    const celeb = answer.celebrities[0]!;
    expect(celeb.followed_by).toBe(Math.max(...inDegrees(p)));
    expect((await top.store.getUser(celeb.id))!.counts.followedBy).toBe(celeb.followed_by);
    const page = await top.store.listFollowedBy(celeb.id, { count: 50 });
    expect(page.items).toHaveLength(50);
    expect(await top.store.authenticate(celeb.access_token)).toBe(celeb.id);
    // Replicas were re-provisioned from their primaries: they hold every seeded row and owe nothing.
    for (const s of top.db.groupFor('users').servers) {
      const onPrimary = Number((s.primary.db.prepare('SELECT count(*) AS n FROM followers').get() as { n: number }).n);
      expect(Number((s.replicas[0]!.db.prepare('SELECT count(*) AS n FROM followers').get() as { n: number }).n)).toBe(onPrimary);
      expect(s.replicas[0]!.backlog()).toBe(0);
    }
  });

  it('seeded photos carry faker captions with hashtags and places, and feeds hold the newest posts of followed accounts', async () => {
    const top = await makeTopology();
    const answer = await top.population.seed({ users: 600, avgFollows: 8, mediaPerUser: 2, seed: 5 });
    expect(answer.media).toBeGreaterThan(900);
    expect(answer.media).toBeLessThan(1500);
    const roster = top.population.page({ limit: 600 }).users;
    // A reader who follows someone sees that account's newest post in their feed.
    let checked = 0;
    for (const reader of roster) {
      const following = (await top.store.listFollows(reader.id, { count: 50 })).items.filter((u) => u.counts.media > 0);
      if (following.length === 0) continue;
      const author = following[0]!;
      const newest = (await top.store.listUserMedia(author.id, { count: 1 })).items[0]!;
      const feed = await top.store.getFeed(reader.id, { count: 200 });
      expect(feed.items.map((m) => m.id)).toContain(newest.id);
      // Newest first.
      const ids = feed.items.map((m) => BigInt(m.id));
      expect(ids.every((id, i) => i === 0 || ids[i - 1]! > id)).toBe(true);
      if (++checked === 20) break;
    }
    expect(checked).toBe(20);
    // Captions, tags and places are real rows: tag pages and place search find the photos.
    const all = [];
    for (const u of roster.slice(0, 100)) all.push(...(await top.store.listUserMedia(u.id, { count: 10 })).items);
    const tagged = all.find((m) => m.tags.length > 0)!;
    expect(tagged.caption!.text).toContain('#' + tagged.tags[0]);
    expect(all.filter((m) => m.location !== null).length / all.length).toBeGreaterThan(0.15);
    const tag = (await top.store.getTag(tagged.tags[0]!))!;
    expect(tag.mediaCount).toBeGreaterThan(0);
    expect((await top.store.listTagMedia(tagged.tags[0]!, { count: 100 })).items.length).toBeGreaterThan(0);
    const located = all.find((m) => m.location !== null)!;
    expect(located.location!.lat).toBeGreaterThanOrEqual(-90);
    await top.idle();
    const near = await top.store.searchMedia({ lat: located.location!.lat, lng: located.location!.lng, distanceM: 1000, count: 50 });
    expect(near.map((m) => m.id)).toContain(located.id);
    // Images are a few shared blobs that exist.
    expect(await top.store.getBlob(located.images.thumbnail.key)).not.toBeNull();
    // Seeded photos are older than anything posted live, so live ids never collide with them.
    expect(located.createdMs).toBeLessThan(top.clock.nowMs());
  });

  it('a second seeding adds other accounts (no username clash) and the roster pages by followers', async () => {
    const top = await makeTopology();
    const first = await top.population.seed({ users: 500, avgFollows: 5, seed: 1 });
    const second = await top.population.seed({ users: 500, avgFollows: 5, seed: 1 });
    expect(first.users + second.users).toBe(1000);
    const page = top.population.page({ offset: 0, limit: 1000 });
    expect(page.total).toBe(1000);
    expect(new Set(page.users.map((u) => u.username.toLowerCase())).size).toBe(1000);
    const byFollowers = top.population.page({ limit: 10, order: 'followers' }).users;
    expect(byFollowers.map((u) => u.followed_by)).toEqual([...byFollowers.map((u) => u.followed_by)].sort((a, b) => b - a));
    expect(byFollowers[0]!.followed_by).toBe(Math.max(first.celebrities[0]!.followed_by, second.celebrities[0]!.followed_by));
    expect(first.sample.slice(0, first.celebrities.length).map((u) => u.id)).toEqual(first.celebrities.slice(0, first.sample.length).map((u) => u.id));
    // Modulo placement spreads seeded accounts over every logical shard.
    expect(new Set(page.users.map((u) => shardOf(u.id))).size).toBe(64);
    // Every k-th account: an evenly spaced sample of the population (the default live roster above 10,000).
    const sample = top.population.page({ offset: 0, limit: 100, stride: 10 });
    expect(sample.users.map((u) => u.id)).toEqual(page.users.filter((_, i) => i % 10 === 0).map((u) => u.id));
    expect(top.population.page({ offset: 5, limit: 1000, stride: 400 }).users.map((u) => u.id)).toEqual([page.users[5]!.id, page.users[405]!.id, page.users[805]!.id]);
    expect(() => top.population.page({ stride: 0 })).toThrow(/stride must be an integer ≥ 1/);
  });
});
