// The Store on a small simulated topology, through its public API only: accounts, the follow graph
// with private accounts and blocks, fan-out by push, pull and hybrid, likes, comments, deletes,
// tags, paging, search, popular, geo, activity, and hostile strings stored verbatim.

import { afterEach, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { VirtualClock, type Clock } from '../sim/engine/clock.ts';
import { isSimError } from '../sim/engine/errors.ts';
import type { MediaRecord } from '../sim/domain/store.ts';
import { TABLES } from '../sim/domain/sql-schema.ts';
import { buildTopology, type Topology } from '../sim/topology.ts';
import { loadTopology, type TopologyInput } from '../sim/topology-config.ts';

let t: Topology | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/**
 * 64 logical shards on 4 servers. Reads go to primaries and feeds have no lagging replica, so these
 * tests judge the Store's logic; replication lag has its own tests in database-cluster.test.ts.
 */
async function makeTopology(over: { feed?: TopologyInput['feed']; database?: TopologyInput['database'] } = {}, clock?: Clock): Promise<Topology> {
  const config = loadTopology('2012-sharded', {
    shards: { logical: 64, physical: 4 },
    database: { readPolicy: 'primary', ...over.database },
    feed: { replicas: 0, ...over.feed },
  });
  t = await buildTopology({ config, seed: 2012, sampleEveryMs: 0, ...(clock ? { clock } : {}) });
  return t;
}

let jpegBytes: Buffer | undefined;
async function jpeg(): Promise<Buffer> {
  return (jpegBytes ??= await sharp({ create: { width: 64, height: 64, channels: 3, background: '#888' } }).jpeg().toBuffer());
}

async function user(top: Topology, username: string, isPrivate = false): Promise<string> {
  return (await top.store.createUser({ username, password: 'secret123', fullName: `${username} Name`, isPrivate })).user.id;
}

/** createUser's promise, for tests about its refusals. */
function user2(top: Topology, username: string) {
  return top.store.createUser({ username, password: 'secret123', fullName: 'x', isPrivate: false });
}

async function post(top: Topology, userId: string, caption: string | null, where?: { lat: number; lng: number; name: string }): Promise<MediaRecord> {
  return top.store.createMedia({ userId, caption, filter: 'Valencia', lat: where?.lat ?? null, lng: where?.lng ?? null, locationName: where?.name ?? null, image: await jpeg() });
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return isSimError(e) ? e.code : String(e);
  }
}

async function feedIds(top: Topology, userId: string, count = 50): Promise<string[]> {
  return (await top.store.getFeed(userId, { count })).items.map((m) => m.id);
}

describe('accounts', () => {
  it('creates a user with a working token and password, and refuses a taken username in any case', async () => {
    const top = await makeTopology();
    const { user, accessToken } = await top.store.createUser({ username: 'Kevin', password: 'secret123', fullName: 'Kevin S', isPrivate: false, bio: 'founder' });
    expect(user).toMatchObject({ username: 'Kevin', fullName: 'Kevin S', bio: 'founder', isPrivate: false, counts: { media: 0, follows: 0, followedBy: 0 } });
    expect(await top.store.authenticate(accessToken)).toBe(user.id);
    expect(await top.store.authenticate(accessToken + 'x')).toBeNull();
    expect(await top.store.authenticate('garbage')).toBeNull();
    const login = await top.store.login('kevin', 'secret123');
    expect(login.user.id).toBe(user.id);
    expect(await top.store.authenticate(login.accessToken)).toBe(user.id);
    expect(await codeOf(top.store.login('kevin', 'wrong-password'))).toBe('SG_ERR_INVALID_CREDENTIALS');
    expect(await codeOf(top.store.login('nobody', 'secret123'))).toBe('SG_ERR_INVALID_CREDENTIALS');
    expect(await codeOf(user2(top, 'KEVIN'))).toBe('SG_ERR_USERNAME_TAKEN');
    expect(await codeOf(user2(top, 'no spaces'))).toBe('SG_ERR_INVALID_PARAM');
    expect(await codeOf(top.store.createUser({ username: 'shortpw', password: '123', fullName: '', isPrivate: false }))).toBe('SG_ERR_INVALID_PARAM');
    expect(await top.store.getUser('123')).toBeNull();
    expect(await top.store.getUser('not-an-id')).toBeNull();
  });

  it('searchUsers finds usernames by case-insensitive prefix, in order, up to count', async () => {
    const top = await makeTopology();
    for (const name of ['anna', 'Annabel', 'anne_x', 'bob', 'annie.k', 'zed', 'an']) await user(top, name);
    const names = async (q: string, n: number) => (await top.store.searchUsers(q, n)).map((u) => u.username);
    expect(await names('ann', 10)).toEqual(['anna', 'Annabel', 'anne_x', 'annie.k']);
    expect(await names('ANN', 2)).toEqual(['anna', 'Annabel']);
    expect(await names('an', 10)).toEqual(['an', 'anna', 'Annabel', 'anne_x', 'annie.k']);
    expect(await names('annabel', 10)).toEqual(['Annabel']);
    expect(await names('q', 10)).toEqual([]);
    expect(await names('', 10)).toEqual([]);
  });
});

describe('relationships', () => {
  it('following a public account is immediate and counted on both sides; unfollowing undoes it', async () => {
    const top = await makeTopology();
    const a = await user(top, 'alice');
    const b = await user(top, 'bob');
    expect(await top.store.setRelationship(a, b, 'follow')).toEqual({ outgoingStatus: 'follows', incomingStatus: 'none', targetUserIsPrivate: false });
    await top.store.setRelationship(a, b, 'follow'); // idempotent
    expect((await top.store.getUser(a))!.counts.follows).toBe(1);
    expect((await top.store.getUser(b))!.counts.followedBy).toBe(1);
    expect((await top.store.getRelationship(b, a)).incomingStatus).toBe('followed_by');
    expect((await top.store.listFollows(a, { count: 10 })).items.map((u) => u.id)).toEqual([b]);
    expect((await top.store.listFollowedBy(b, { count: 10 })).items.map((u) => u.id)).toEqual([a]);

    expect((await top.store.setRelationship(a, b, 'unfollow')).outgoingStatus).toBe('none');
    expect((await top.store.getUser(a))!.counts.follows).toBe(0);
    expect((await top.store.getUser(b))!.counts.followedBy).toBe(0);
    expect((await top.store.listFollowedBy(b, { count: 10 })).items).toEqual([]);
    await top.store.setRelationship(a, b, 'unfollow'); // no-op
    expect((await top.store.getUser(b))!.counts.followedBy).toBe(0);
  });

  it('following a private account is a request until approved; ignore drops it; counts move only on approval', async () => {
    const top = await makeTopology();
    const p = await user(top, 'private_pat', true);
    const a = await user(top, 'amy');
    const c = await user(top, 'carl');
    expect((await top.store.setRelationship(a, p, 'follow')).outgoingStatus).toBe('requested');
    expect((await top.store.setRelationship(c, p, 'follow')).outgoingStatus).toBe('requested');
    expect((await top.store.listRequestedBy(p)).map((u) => u.id).sort()).toEqual([a, c].sort());
    expect((await top.store.getRelationship(p, a)).incomingStatus).toBe('requested_by');
    expect((await top.store.getUser(p))!.counts.followedBy).toBe(0);
    expect(await top.store.canView(a, p)).toBe(false);

    expect((await top.store.setRelationship(p, a, 'approve')).incomingStatus).toBe('followed_by');
    expect((await top.store.getRelationship(a, p)).outgoingStatus).toBe('follows');
    expect(await top.store.canView(a, p)).toBe(true);
    expect((await top.store.getUser(p))!.counts.followedBy).toBe(1);
    expect((await top.store.getUser(a))!.counts.follows).toBe(1);

    expect((await top.store.setRelationship(p, c, 'ignore')).incomingStatus).toBe('none');
    expect((await top.store.getRelationship(c, p)).outgoingStatus).toBe('none');
    expect(await top.store.listRequestedBy(p)).toEqual([]);
    expect(await top.store.canView(c, p)).toBe(false);
    expect((await top.store.getUser(p))!.counts.followedBy).toBe(1);
    expect((await top.store.getUser(c))!.counts.follows).toBe(0);

    expect(await codeOf(top.store.setRelationship(p, c, 'approve'))).toBe('SG_ERR_INVALID_PARAM');
    expect(await codeOf(top.store.setRelationship(p, p, 'follow'))).toBe('SG_ERR_INVALID_PARAM');
    expect(await codeOf(top.store.setRelationship(a, '1234567', 'follow'))).toBe('SG_ERR_NOT_FOUND');
  });

  it('a block hides both ways: no viewing, follow edges gone, feeds purged, no re-follow until unblocked', async () => {
    const top = await makeTopology();
    const a = await user(top, 'ann');
    const b = await user(top, 'ben');
    await top.store.setRelationship(a, b, 'follow');
    await top.store.setRelationship(b, a, 'follow');
    const pa = await post(top, a, 'from ann');
    const pb = await post(top, b, 'from ben');
    await top.idle();
    expect(await feedIds(top, a)).toEqual([pb.id, pa.id]);
    expect(await feedIds(top, b)).toEqual([pb.id, pa.id]);

    const rel = await top.store.setRelationship(a, b, 'block');
    expect(rel).toEqual({ outgoingStatus: 'none', incomingStatus: 'blocked_by_you', targetUserIsPrivate: false });
    expect(await top.store.canView(a, b)).toBe(false);
    expect(await top.store.canView(b, a)).toBe(false);
    expect(await top.store.getRelationship(b, a)).toEqual({ outgoingStatus: 'none', incomingStatus: 'none', targetUserIsPrivate: false });
    expect(await feedIds(top, a)).toEqual([pa.id]);
    expect(await feedIds(top, b)).toEqual([pb.id]);
    for (const id of [a, b]) expect((await top.store.getUser(id))!.counts).toMatchObject({ follows: 0, followedBy: 0 });
    expect((await top.store.listFollows(a, { count: 10 })).items).toEqual([]);
    expect((await top.store.listFollowedBy(a, { count: 10 })).items).toEqual([]);
    expect(await codeOf(top.store.setRelationship(b, a, 'follow'))).toBe('SG_ERR_NOT_ALLOWED');
    expect(await codeOf(top.store.setRelationship(a, b, 'follow'))).toBe('SG_ERR_NOT_ALLOWED');

    await top.store.setRelationship(a, b, 'unblock');
    expect(await top.store.canView(b, a)).toBe(true);
    expect((await top.store.getRelationship(a, b)).outgoingStatus).toBe('none');
    expect((await top.store.setRelationship(b, a, 'follow')).outgoingStatus).toBe('follows');
  });

  it("unfollowing removes the account's posts from your feed (push)", async () => {
    const top = await makeTopology();
    const a = await user(top, 'reader');
    const b = await user(top, 'writer');
    const c = await user(top, 'other_writer');
    await top.store.setRelationship(a, b, 'follow');
    await top.store.setRelationship(a, c, 'follow');
    const pb = [await post(top, b, 'b1'), await post(top, b, 'b2')];
    const pc = await post(top, c, 'c1');
    await top.idle();
    expect(await feedIds(top, a)).toEqual([pc.id, pb[1]!.id, pb[0]!.id]);
    await top.store.setRelationship(a, b, 'unfollow');
    expect(await feedIds(top, a)).toEqual([pc.id]);
  });

  it("blocking someone with a pending request drops the request and its activity", async () => {
    const top = await makeTopology();
    const p = await user(top, 'priv', true);
    const x = await user(top, 'xavier');
    await top.store.setRelationship(x, p, 'follow');
    expect((await top.store.listActivity(p, { count: 10 })).items.map((i) => i.kind)).toEqual(['follow_request']);
    await top.store.setRelationship(p, x, 'block');
    expect(await top.store.listRequestedBy(p)).toEqual([]);
    expect((await top.store.listActivity(p, { count: 10 })).items).toEqual([]);
    expect((await top.store.getRelationship(x, p)).outgoingStatus).toBe('none');
  });
});

describe('fan-out', () => {
  /**
   * A private celebrity with 30 would-be followers: 25 approved, 5 left requested, then 3 of the
   * approved blocked; a small public account with 2 followers; 10 strangers. Both accounts post.
   */
  async function buildGraph(top: Topology) {
    const celeb = await user(top, 'celeb', true);
    const small = await user(top, 'small');
    const fans: string[] = [];
    for (let i = 0; i < 30; i++) fans.push(await user(top, `fan_${i}`));
    const strangers: string[] = [];
    for (let i = 0; i < 10; i++) strangers.push(await user(top, `stranger_${i}`));
    for (const f of fans) await top.store.setRelationship(f, celeb, 'follow');
    for (const f of fans.slice(0, 25)) await top.store.setRelationship(celeb, f, 'approve');
    for (const f of fans.slice(0, 3)) await top.store.setRelationship(celeb, f, 'block');
    await top.store.setRelationship(fans[5]!, small, 'follow');
    await top.store.setRelationship(strangers[0]!, small, 'follow');
    const celebPost = await post(top, celeb, 'celebrity post');
    const smallPost = await post(top, small, 'small post');
    await top.idle();
    const everyone = [celeb, small, ...fans, ...strangers];
    /** Each user's feed as captions, so topologies with different ids compare. */
    const feeds = new Map<string, string[]>();
    for (const [i, u] of everyone.entries()) feeds.set(String(i), (await top.store.getFeed(u, { count: 50 })).items.map((m) => m.caption?.text ?? ''));
    return { celeb, small, fans, strangers, celebPost, smallPost, feeds, everyone };
  }

  it('push: a post reaches exactly the 22 approved, unblocked followers (and its owner), in chunks of 4', async () => {
    const top = await makeTopology({ feed: { fanout: 'push', chunkSize: 4 } });
    const g = await buildGraph(top);
    expect((await top.store.getUser(g.celeb))!.counts.followedBy).toBe(22);
    const reached: string[] = [];
    for (const u of g.everyone) if ((await feedIds(top, u)).includes(g.celebPost.id)) reached.push(u);
    expect(reached.sort()).toEqual([g.celeb, ...g.fans.slice(3, 25)].sort());
    const smallReached: string[] = [];
    for (const u of g.everyone) if ((await feedIds(top, u)).includes(g.smallPost.id)) smallReached.push(u);
    expect(smallReached.sort()).toEqual([g.small, g.fans[5]!, g.strangers[0]!].sort());
    expect(await feedIds(top, g.fans[5]!)).toEqual([g.smallPost.id, g.celebPost.id]);
    // 22 + 2 deliveries by the queue; each owner's own list is written at post time.
    expect(top.metrics.sum('fanout_deliveries')).toBe(24);
    expect(top.metrics.value('fanout_completed')).toBe(2);
    expect(top.metrics.value('queue_jobs', { kind: 'fanout-chunk', result: 'ok' })).toBe(Math.ceil(22 / 4) + 1);
    // fanout_size is recorded in "ms" units that stand for followers: the largest post reached 22.
    expect(Math.abs(top.metrics.percentile('fanout_size', {}, 100)! - 22)).toBeLessThan(0.05);
  });

  it.each(['pull', 'hybrid'] as const)('%s gives every user the same feed as push for the same graph', async (mode) => {
    const push = await makeTopology({ feed: { fanout: 'push' } });
    const pushed = await buildGraph(push);
    await push.close();
    t = undefined;
    const other = await makeTopology({ feed: { fanout: mode, hybridThreshold: 10 } });
    const g = await buildGraph(other);
    expect([...g.feeds.entries()]).toEqual([...pushed.feeds.entries()]);
    // The comparison is not vacuous: index 0 is celeb, 1 small, 2–31 fans, 32–41 strangers.
    const feedOf = (i: number) => g.feeds.get(String(i));
    expect(feedOf(0)).toEqual(['celebrity post']);
    expect(feedOf(2)).toEqual([]); // fan_0: blocked
    expect(feedOf(5)).toEqual(['celebrity post']); // fan_3: approved
    expect(feedOf(7)).toEqual(['small post', 'celebrity post']); // fan_5 follows both
    expect(feedOf(27)).toEqual([]); // fan_25: still requested
    expect(feedOf(32)).toEqual(['small post']); // stranger_0 follows small
    expect(feedOf(33)).toEqual([]);
    if (mode === 'hybrid') {
      // celeb (22 followers ≥ 10) is pulled; small (2) is pushed.
      expect(other.metrics.value('fanout_posts', { mode: 'hybrid-pulled' })).toBe(1);
      expect(other.metrics.value('fanout_posts', { mode: 'hybrid-pushed' })).toBe(1);
    } else {
      expect(other.metrics.value('fanout_posts', { mode: 'pull' })).toBe(2);
      expect(other.metrics.sum('fanout_deliveries')).toBe(0);
    }
  });
});

describe('feed paging and hybrid edge cases', () => {
  it.each(['push', 'pull', 'hybrid'] as const)('%s: getFeed pages 9 posts from 3 accounts 2 at a time, newest first, with no gaps or duplicates', async (fanout) => {
    const top = await makeTopology({ feed: { fanout, hybridThreshold: 2 } });
    const v = await user(top, 'viewer');
    const a = await user(top, 'acct_a');
    const b = await user(top, 'acct_b');
    const c = await user(top, 'acct_c');
    await top.store.setRelationship(v, a, 'follow');
    await top.store.setRelationship(v, b, 'follow');
    await top.store.setRelationship(c, a, 'follow'); // a has 2 followers: pulled under hybrid; b (1) pushed
    for (let i = 0; i < 9; i++) await post(top, [a, b, v][i % 3]!, `p${i}`);
    await post(top, c, 'not followed');
    await top.idle();
    const pages: string[][] = [];
    let maxId: string | undefined;
    for (let guard = 0; guard < 10; guard++) {
      const page = await top.store.getFeed(v, { count: 2, ...(maxId ? { maxId } : {}) });
      pages.push(page.items.map((m) => m.caption!.text));
      if (!page.nextMaxId) break;
      maxId = page.nextMaxId;
    }
    expect(pages).toEqual([['p8', 'p7'], ['p6', 'p5'], ['p4', 'p3'], ['p2', 'p1'], ['p0']]);
  });

  // Regression: a post made while the account was pulled was never pushed; readers must keep pulling
  // the account after it drops below the threshold.
  it("hybrid: a post made while the account was pulled stays in followers' feeds after the account drops below the threshold", async () => {
    const top = await makeTopology({ feed: { fanout: 'hybrid', hybridThreshold: 3 } });
    const owner = await user(top, 'was_famous');
    const fans = [await user(top, 'fan1'), await user(top, 'fan2'), await user(top, 'fan3')];
    for (const f of fans) await top.store.setRelationship(f, owner, 'follow');
    const m = await post(top, owner, 'while famous');
    await top.idle();
    expect(await feedIds(top, fans[0]!)).toEqual([m.id]);
    await top.store.setRelationship(fans[2]!, owner, 'unfollow');
    expect(await feedIds(top, fans[0]!)).toEqual([m.id]);
  });
});

describe('likes and comments', () => {
  it('like is counted once per user, unlike takes it back, and hasLiked / listLikers / listLikedMedia agree', async () => {
    const top = await makeTopology();
    const owner = await user(top, 'owner');
    const likers = [await user(top, 'l1'), await user(top, 'l2'), await user(top, 'l3')];
    const m = await post(top, owner, 'like me');
    const other = await post(top, owner, 'not me');
    for (const l of likers) await top.store.like(m.id, l);
    await top.store.like(m.id, likers[0]!); // again: no change
    let got = (await top.store.getMedia(m.id))!;
    expect(got.likeCount).toBe(3);
    expect(got.recentLikerIds).toEqual([...likers].reverse());
    expect((await top.store.listLikers(m.id, 10)).map((u) => u.id)).toEqual([...likers].reverse());
    expect(await top.store.hasLiked(likers[1]!, [m.id, other.id])).toEqual(new Set([m.id]));
    expect((await top.store.listLikedMedia(likers[1]!, { count: 10 })).items.map((x) => x.id)).toEqual([m.id]);

    await top.store.unlike(m.id, likers[1]!);
    await top.store.unlike(m.id, likers[1]!); // again: no change
    got = (await top.store.getMedia(m.id))!;
    expect(got.likeCount).toBe(2);
    expect(got.recentLikerIds).toEqual([likers[2], likers[0]]);
    expect(await top.store.hasLiked(likers[1]!, [m.id])).toEqual(new Set());
    expect((await top.store.listLikedMedia(likers[1]!, { count: 10 })).items).toEqual([]);
    expect(await codeOf(top.store.like('12345678', likers[0]!))).toBe('SG_ERR_NOT_FOUND');
  });

  it('a comment may be deleted by its author or the media owner; anyone else gets SG_ERR_NOT_ALLOWED', async () => {
    const top = await makeTopology();
    const owner = await user(top, 'owner');
    const author = await user(top, 'author');
    const stranger = await user(top, 'stranger');
    const m = await post(top, owner, 'discuss');
    const c1 = await top.store.addComment(m.id, author, '  first!  ');
    const c2 = await top.store.addComment(m.id, author, 'second');
    const c3 = await top.store.addComment(m.id, stranger, 'third');
    expect(c1.text).toBe('first!');
    expect((await top.store.listComments(m.id, 10)).map((c) => c.id)).toEqual([c1.id, c2.id, c3.id]);
    expect((await top.store.listComments(m.id, 2)).map((c) => c.id)).toEqual([c2.id, c3.id]);
    expect((await top.store.getMedia(m.id))!.commentCount).toBe(3);

    expect(await codeOf(top.store.deleteComment(m.id, c1.id, stranger))).toBe('SG_ERR_NOT_ALLOWED');
    expect(await codeOf(top.store.deleteComment(m.id, c1.id, author))).toBe('ok');
    expect(await codeOf(top.store.deleteComment(m.id, c2.id, owner))).toBe('ok');
    expect(await codeOf(top.store.deleteComment(m.id, c3.id, author))).toBe('SG_ERR_NOT_ALLOWED');
    expect(await codeOf(top.store.deleteComment(m.id, c1.id, author))).toBe('SG_ERR_NOT_FOUND');
    const left = (await top.store.getMedia(m.id))!;
    expect(left.commentCount).toBe(1);
    expect(left.recentComments.map((c) => c.id)).toEqual([c3.id]);
    expect(await codeOf(top.store.addComment(m.id, author, '   '))).toBe('SG_ERR_INVALID_PARAM');
    expect(await codeOf(top.store.addComment(m.id, author, 'x'.repeat(2201)))).toBe('SG_ERR_INVALID_PARAM');
  });
});

describe('media', () => {
  it('parses tags from the caption once per tag, case-folded (#Sun #sun → sun), and lists tag media newest first', async () => {
    const top = await makeTopology();
    const u = await user(top, 'tagger');
    const m1 = await post(top, u, 'Morning #Sun #sun #SUN at the #beach_2012! not#atag? #café');
    expect(m1.tags).toEqual(['sun', 'beach_2012', 'atag', 'café']);
    const m2 = await post(top, u, 'more #sun');
    expect(await top.store.getTag('SUN')).toEqual({ name: 'sun', mediaCount: 2 });
    expect(await top.store.getTag('beach_2012')).toEqual({ name: 'beach_2012', mediaCount: 1 });
    expect(await top.store.getTag('moon')).toBeNull();
    expect((await top.store.listTagMedia('Sun', { count: 10 })).items.map((m) => m.id)).toEqual([m2.id, m1.id]);
    const page1 = await top.store.listTagMedia('sun', { count: 1 });
    expect(page1.items.map((m) => m.id)).toEqual([m2.id]);
    expect((await top.store.listTagMedia('sun', { count: 1, maxId: page1.nextMaxId! })).items.map((m) => m.id)).toEqual([m1.id]);
    expect(await top.store.searchTags('#su', 5)).toEqual([{ name: 'sun', mediaCount: 2 }]);
  });

  it('deleteMedia by anyone but the owner is refused and changes nothing', async () => {
    const top = await makeTopology();
    const owner = await user(top, 'owner');
    const other = await user(top, 'other');
    const m = await post(top, owner, 'mine #mine');
    expect(await codeOf(top.store.deleteMedia(m.id, other))).toBe('SG_ERR_NOT_ALLOWED');
    expect((await top.store.getMedia(m.id))!.id).toBe(m.id);
    expect((await top.store.getUser(owner))!.counts.media).toBe(1);
    expect(await codeOf(top.store.deleteMedia('98765432', owner))).toBe('SG_ERR_NOT_FOUND');
  });

  it("deleteMedia removes the post from feeds, tags, likes, the owner's list, popular, activity and the blob store", async () => {
    const top = await makeTopology();
    const owner = await user(top, 'owner');
    const fan = await user(top, 'fan');
    await top.store.setRelationship(fan, owner, 'follow');
    const keep = await post(top, owner, 'keeper #sun');
    const gone = await post(top, owner, 'doomed #sun #doom', { lat: 48.8584, lng: 2.2945, name: 'Eiffel Tower' });
    await top.store.like(gone.id, fan);
    await top.store.addComment(gone.id, fan, 'nice');
    await top.idle();
    expect(await feedIds(top, fan)).toEqual([gone.id, keep.id]);
    expect((await top.store.getBlob(gone.images.thumbnail.key))!.bytes.length).toBeGreaterThan(0);
    expect((await top.store.popularMedia(10)).map((m) => m.id)).toEqual([gone.id, keep.id]);
    expect((await top.store.listActivity(owner, { count: 10 })).items.map((a) => a.kind)).toEqual(['comment', 'like', 'follow']);

    await top.store.deleteMedia(gone.id, owner);
    expect(await top.store.getMedia(gone.id)).toBeNull();
    expect(await feedIds(top, fan)).toEqual([keep.id]);
    expect(await feedIds(top, owner)).toEqual([keep.id]);
    expect((await top.store.listUserMedia(owner, { count: 10 })).items.map((m) => m.id)).toEqual([keep.id]);
    expect((await top.store.listTagMedia('sun', { count: 10 })).items.map((m) => m.id)).toEqual([keep.id]);
    expect(await top.store.getTag('sun')).toEqual({ name: 'sun', mediaCount: 1 });
    expect((await top.store.getTag('doom'))?.mediaCount ?? 0).toBe(0);
    expect(await top.store.hasLiked(fan, [gone.id])).toEqual(new Set());
    expect((await top.store.listLikedMedia(fan, { count: 10 })).items).toEqual([]);
    expect((await top.store.getUser(owner))!.counts.media).toBe(1);
    expect((await top.store.popularMedia(10)).map((m) => m.id)).toEqual([keep.id]);
    expect((await top.store.listActivity(owner, { count: 10 })).items.map((a) => a.kind)).toEqual(['follow']);
    expect(await top.store.searchMedia({ lat: 48.8584, lng: 2.2945, distanceM: 1000, count: 10 })).toEqual([]);
    expect((await top.store.listLocationMedia(gone.location!.id, { count: 10 })).items).toEqual([]);
    for (const v of [gone.images.thumbnail, gone.images.lowResolution, gone.images.standardResolution]) expect(await top.store.getBlob(v.key)).toBeNull();
    expect(await codeOf(top.store.deleteMedia(gone.id, owner))).toBe('SG_ERR_NOT_FOUND');
    expect(await codeOf(top.store.like(gone.id, fan))).toBe('SG_ERR_NOT_FOUND');
  });

  it('listUserMedia pages through 7 posts 3 at a time with no gaps or duplicates, and filters by min/max timestamp (inclusive seconds)', async () => {
    const clock = new VirtualClock(1_400_000_000_000);
    const top = await makeTopology({}, clock);
    const u = await user(top, 'poster');
    const posts: MediaRecord[] = [];
    for (let i = 0; i < 7; i++) {
      posts.push(await post(top, u, `post ${i}`));
      await clock.advance(10_000);
    }
    const newestFirst = posts.map((p) => p.id).reverse();
    const seen: string[] = [];
    const sizes: number[] = [];
    let maxId: string | undefined;
    for (let guard = 0; guard < 10; guard++) {
      const page = await top.store.listUserMedia(u, { count: 3, ...(maxId ? { maxId } : {}) });
      sizes.push(page.items.length);
      seen.push(...page.items.map((m) => m.id));
      if (!page.nextMaxId) break;
      maxId = page.nextMaxId;
    }
    expect(sizes).toEqual([3, 3, 1]);
    expect(seen).toEqual(newestFirst);

    const sec = (i: number) => (1_400_000_000_000 + i * 10_000) / 1000;
    expect(posts[2]!.createdMs).toBe(sec(2) * 1000);
    const window = await top.store.listUserMedia(u, { count: 10, minTimestamp: sec(2), maxTimestamp: sec(5) });
    expect(window.items.map((m) => m.caption!.text)).toEqual(['post 5', 'post 4', 'post 3', 'post 2']);
    const after = await top.store.listUserMedia(u, { count: 10, minTimestamp: sec(5) + 1 });
    expect(after.items.map((m) => m.caption!.text)).toEqual(['post 6']);
    const before = await top.store.listUserMedia(u, { count: 10, maxTimestamp: sec(1) - 1 });
    expect(before.items.map((m) => m.caption!.text)).toEqual(['post 0']);
    const minId = await top.store.listUserMedia(u, { count: 10, minId: posts[4]!.id });
    expect(minId.items.map((m) => m.caption!.text)).toEqual(['post 6', 'post 5']);
    expect((await top.store.listUserMedia('not-an-id', { count: 10 })).items).toEqual([]);
  });

  it('popularMedia orders recent media by likes, most first', async () => {
    const top = await makeTopology();
    const owner = await user(top, 'owner');
    const fans = [await user(top, 'f1'), await user(top, 'f2'), await user(top, 'f3')];
    const one = await post(top, owner, 'one like');
    const three = await post(top, owner, 'three likes');
    const none = await post(top, owner, 'no likes');
    const two = await post(top, owner, 'two likes');
    for (const f of fans) await top.store.like(three.id, f);
    for (const f of fans.slice(0, 2)) await top.store.like(two.id, f);
    await top.store.like(one.id, fans[2]!);
    expect((await top.store.popularMedia(10)).map((m) => m.id)).toEqual([three.id, two.id, one.id, none.id]);
    expect((await top.store.popularMedia(2)).map((m) => m.likeCount)).toEqual([3, 2]);
  });

  it('geo search finds located media after the index job has run, near the point and nowhere else', async () => {
    const top = await makeTopology();
    const u = await user(top, 'traveller');
    const sf = await post(top, u, 'golden gate', { lat: 37.8199, lng: -122.4783, name: 'Golden Gate Bridge' });
    const ny = await post(top, u, 'liberty', { lat: 40.6892, lng: -74.0445, name: 'Statue of Liberty' });
    await post(top, u, 'nowhere');
    await top.idle();
    expect(sf.location).toMatchObject({ name: 'Golden Gate Bridge', lat: 37.8199, lng: -122.4783 });
    expect((await top.store.searchMedia({ lat: 37.82, lng: -122.478, distanceM: 1000, count: 10 })).map((m) => m.id)).toEqual([sf.id]);
    expect((await top.store.searchMedia({ lat: 40.69, lng: -74.045, distanceM: 1000, count: 10 })).map((m) => m.id)).toEqual([ny.id]);
    expect(await top.store.searchMedia({ lat: 0, lng: 0, distanceM: 100_000, count: 10 })).toEqual([]);
    // Coast to coast (~4,130 km) finds both.
    expect((await top.store.searchMedia({ lat: 39, lng: -98, distanceM: 3_000_000, count: 10 })).map((m) => m.id).sort()).toEqual([sf.id, ny.id].sort());
    expect((await top.store.searchLocations({ lat: 37.82, lng: -122.478, distanceM: 1000, count: 10 })).map((l) => l.name)).toEqual(['Golden Gate Bridge']);
    expect(await top.store.getLocation(sf.location!.id)).toEqual(sf.location);
    // The same place named the same way is one location.
    const again = await post(top, u, 'golden gate again', { lat: 37.8199, lng: -122.4783, name: 'golden gate bridge ' });
    expect(again.location!.id).toBe(sf.location!.id);
    expect((await top.store.listLocationMedia(sf.location!.id, { count: 10 })).items.map((m) => m.id)).toEqual([again.id, sf.id]);
    expect(await codeOf(post(top, u, 'bad', { lat: 91, lng: 0, name: 'x' }))).toBe('SG_ERR_INVALID_PARAM');
  });
});

describe('activity', () => {
  it('lists likes, comments, follows and follow requests on what is yours, newest first, in pages', async () => {
    const top = await makeTopology();
    const a = await user(top, 'alice');
    const p = await user(top, 'private_pam', true);
    const b = await user(top, 'bob');
    const c = await user(top, 'cat');
    await top.store.setRelationship(b, a, 'follow');
    const m = await post(top, a, 'pic');
    await top.store.like(m.id, b);
    await top.store.like(m.id, a); // your own like is not news
    const comment = await top.store.addComment(m.id, c, 'lovely');
    await top.store.setRelationship(c, p, 'follow');

    const items = (await top.store.listActivity(a, { count: 10 })).items;
    expect(items.map((i) => [i.kind, i.actorId])).toEqual([
      ['comment', c],
      ['like', b],
      ['follow', b],
    ]);
    expect(items[0]).toMatchObject({ mediaId: m.id, commentId: comment.id, text: 'lovely' });
    expect(items[2]).toMatchObject({ mediaId: null, commentId: null });
    expect(items.map((i) => i.id)).toEqual([...items.map((i) => i.id)].sort((x, y) => (BigInt(x) < BigInt(y) ? 1 : -1)));

    const first = await top.store.listActivity(a, { count: 2 });
    expect(first.items).toHaveLength(2);
    const rest = await top.store.listActivity(a, { count: 2, maxId: first.nextMaxId! });
    expect(rest.items.map((i) => i.kind)).toEqual(['follow']);
    expect(rest.nextMaxId).toBeNull();

    expect((await top.store.listActivity(p, { count: 10 })).items.map((i) => [i.kind, i.actorId])).toEqual([['follow_request', c]]);
    await top.store.setRelationship(p, c, 'approve');
    expect((await top.store.listActivity(p, { count: 10 })).items.map((i) => [i.kind, i.actorId])).toEqual([['follow', c]]);
  });
});

describe('hostile input', () => {
  it("SQL-looking usernames are refused; SQL-looking captions and comments are stored verbatim and the tables survive", async () => {
    const top = await makeTopology();
    expect(await codeOf(user2(top, "x'; DROP TABLE users; --"))).toBe('SG_ERR_INVALID_PARAM');
    expect(await codeOf(user2(top, 'robert"); DROP TABLE users;--'))).toBe('SG_ERR_INVALID_PARAM');
    const u = await user(top, 'bobby_tables');
    const caption = "'; DROP TABLE media; --";
    const text = "Robert'); DROP TABLE comments; -- \" \\ %_ \u0000 ☃";
    const m = await post(top, u, caption);
    const c = await top.store.addComment(m.id, u, text);
    expect((await top.store.getMedia(m.id))!.caption!.text).toBe(caption);
    expect((await top.store.listComments(m.id, 5)).map((x) => x.text)).toEqual([text]);
    expect(c.text).toBe(text);
    expect((await top.store.listUserMedia(u, { count: 5 })).items.map((x) => x.caption!.text)).toEqual([caption]);
    expect(await top.store.searchUsers("' OR 1=1 --", 10)).toEqual([]);
    expect(await top.store.searchUsers('%', 10)).toEqual([]);
    expect(await top.store.getTag("'; DROP TABLE tags; --")).toBeNull();
    expect(await top.store.searchTags("'; DROP TABLE tags; --", 10)).toEqual([]);
    for (const server of top.db.groups[0]!.servers) {
      const tables = (server.primary.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name);
      expect(tables.sort()).toEqual([...TABLES].sort());
    }
  });
});

describe('under the default 2012 read policy (read-your-writes, lagging replicas)', () => {
  it("a user sees their own new profile and post at once, and followers see the post once fan-out and the lag are over", async () => {
    const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 } });
    expect(config.database.readPolicy).toBe('read-your-writes');
    const top = (t = await buildTopology({ config, seed: 9, sampleEveryMs: 0 }));
    const a = await user(top, 'author');
    const f = await user(top, 'follower');
    expect((await top.store.getUser(a))!.username).toBe('author');
    await top.store.setRelationship(f, a, 'follow');
    const m = await post(top, a, 'fresh');
    expect((await top.store.getMedia(m.id))!.caption!.text).toBe('fresh');
    expect((await top.store.listUserMedia(a, { count: 5 })).items.map((x) => x.id)).toEqual([m.id]);
    await top.idle();
    await new Promise((r) => setTimeout(r, 3 * config.feed.replicaLagMs + 2 * config.database.replicaLagMs));
    expect(await feedIds(top, f)).toEqual([m.id]);
  });
});
