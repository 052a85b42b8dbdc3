// Lists never come back short: a page holds `count` visible items when that many exist, past
// items the viewer may not see (private owners, blocks either way, deleted media), and offers a
// next page only when a visible item follows. The scan behind it is budgeted (sim/domain/page-scan.ts).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanVisible, type ScanBatch } from '../sim/domain/page-scan.ts';
import { get, makeEnv, pathOf, relate, signup, upload, type Account, type TestEnv, type V1MediaLike } from './helpers/app.ts';

/** A list of rows 1000, 999, …, 1 (newest first); row i is visible when `visible(i)`. */
function list(visible: (i: number) => boolean, size = 1000) {
  let fetches = 0;
  return {
    fetches: () => fetches,
    fetch: async (after: string | undefined, limit: number): Promise<ScanBatch<{ cursor: string }>> => {
      fetches++;
      const start = after === undefined ? size : Number(after) - 1;
      const rows = [];
      for (let i = start; i >= 1 && rows.length < limit; i--) rows.push({ cursor: String(i) });
      return { rows, exhausted: rows.length < limit || rows[rows.length - 1]!.cursor === '1' };
    },
    keep: async (rows: readonly { cursor: string }[]) => rows.map((r) => (visible(Number(r.cursor)) ? Number(r.cursor) : null)),
  };
}

describe('scanVisible', () => {
  it('an unfiltered page costs one batch of count + 1 rows', async () => {
    const l = list(() => true);
    const r = await scanVisible({ count: 20, fetch: l.fetch, keep: l.keep });
    expect(r.items).toEqual(Array.from({ length: 20 }, (_, i) => 1000 - i));
    expect([r.nextCursor, r.rowsRead, l.fetches(), r.budgetSpent]).toEqual(['981', 21, 1, false]);
  });

  it('fills past hidden rows over several batches, and the next page starts after the last item', async () => {
    const l = list((i) => i % 10 === 0);
    const r = await scanVisible({ count: 3, fetch: l.fetch, keep: l.keep });
    expect(r.items).toEqual([1000, 990, 980]);
    expect(r.nextCursor).toBe('980');
    const next = await scanVisible({ count: 3, after: r.nextCursor!, fetch: l.fetch, keep: l.keep });
    expect(next.items).toEqual([970, 960, 950]);
  });

  it('offers no next page when nothing visible follows, however many hidden rows do', async () => {
    const l = list((i) => i === 1000 || i === 999);
    const r = await scanVisible({ count: 2, fetch: l.fetch, keep: l.keep });
    expect(r.items).toEqual([1000, 999]);
    expect(r.nextCursor).toBeNull();
    expect(r.rowsRead).toBe(1000);
  });

  it('stops on its budget with what it found and a cursor after the last row read, and says so', async () => {
    const l = list((i) => i % 200 === 0);
    const r = await scanVisible({ count: 2, fetch: l.fetch, keep: l.keep, budgetRows: 150 });
    expect(r.items).toEqual([1000]);
    expect(r.budgetSpent).toBe(true);
    expect(r.rowsRead).toBe(150);
    expect(r.nextCursor).toBe('851');
    // The next page goes on from there and finds the next visible row.
    const next = await scanVisible({ count: 1, after: r.nextCursor!, fetch: l.fetch, keep: l.keep, budgetRows: 150 });
    expect(next.items).toEqual([800]);
    // Its look-ahead for a next visible row (600) spends the budget too: the cursor goes on after row 701.
    expect([next.budgetSpent, next.nextCursor]).toEqual([true, '701']);
  });
});

let env: TestEnv;
let viewer: Account;
let pub: Account;
let priv: Account;

beforeAll(async () => {
  env = await makeEnv();
  viewer = await signup(env.app, 'fill_viewer');
  pub = await signup(env.app, 'fill_public');
  priv = await signup(env.app, 'fill_private', { isPrivate: true });
});
afterAll(async () => {
  await env.close();
});

const ids = (data: unknown) => (data as Array<{ id: string }>).map((m) => m.id);

describe('pages of count=1 with hidden items before the visible one', () => {
  let a: V1MediaLike;
  let b: V1MediaLike;
  beforeAll(async () => {
    a = await upload(env.app, pub, { caption: 'A #filltag', lat: 51.5007, lng: -0.1246, locationName: 'Big Ben' });
    await upload(env.app, priv, { caption: 'H1 #filltag', lat: 51.5007, lng: -0.1246, locationName: 'Big Ben' });
    b = await upload(env.app, pub, { caption: 'B #filltag', lat: 51.5007, lng: -0.1246, locationName: 'Big Ben' });
    for (let i = 0; i < 3; i++) await upload(env.app, priv, { caption: `H #filltag ${i}`, lat: 51.5007, lng: -0.1246, locationName: 'Big Ben' });
    await env.topology.idle();
  });

  it.each([
    ['tag', (): string => '/v1/tags/filltag/media/recent?count=1', 'next_max_tag_id'],
    ['location', (): string => `/v1/locations/${a.location!.id}/media/recent?count=1`, 'next_max_id'],
  ] as const)('%s: page 1 is [B] with a next page, page 2 is [A] with none', async (_name, url, key) => {
    const p1 = await get(env.app, url(), viewer);
    expect(p1.status, JSON.stringify(p1.body)).toBe(200);
    expect(ids(p1.body.data)).toEqual([b.id]);
    expect(p1.body.pagination?.[key]).toBe(b.id);
    const p2 = await get(env.app, pathOf(p1.body.pagination!.next_url!));
    expect(p2.status, JSON.stringify(p2.body)).toBe(200);
    expect(ids(p2.body.data)).toEqual([a.id]);
    expect(p2.body.pagination).toEqual({});
  });

  it('the private account\'s follower sees every item: the filter is per viewer', async () => {
    const fan = await signup(env.app, 'fill_fan');
    await relate(env.app, fan, priv.id, 'follow');
    await relate(env.app, priv, fan.id, 'approve');
    const page = await get(env.app, '/v1/tags/filltag/media/recent?count=6', fan);
    expect((page.body.data as unknown[]).length).toBe(6);
  });

  it('media/search and popular fill count from what the viewer may see', async () => {
    const near = await get(env.app, '/v1/media/search?lat=51.5007&lng=-0.1246&distance=100&count=2', viewer);
    expect(ids(near.body.data)).toEqual([b.id, a.id]);
    const popular = await get(env.app, '/v1/media/popular?count=2', viewer);
    expect((popular.body.data as Array<{ user: { id: string } }>).every((m) => m.user.id !== priv.id)).toBe(true);
    expect((popular.body.data as unknown[]).length).toBe(2);
  });
});

describe('deleted media leave no holes', () => {
  it('a feed page of count=1 skips posts deleted after they were delivered, with no next page when none is left', async () => {
    const poster = await signup(env.app, 'fill_poster');
    const reader = await signup(env.app, 'fill_reader');
    await relate(env.app, reader, poster.id, 'follow');
    const kept = await upload(env.app, poster, { caption: 'kept' });
    for (let i = 0; i < 3; i++) {
      const m = await upload(env.app, poster, { caption: `gone ${i}` });
      await env.topology.idle();
      expect((await env.app.inject({ method: 'DELETE', url: `/v1/media/${m.id}?access_token=${poster.token}` })).statusCode).toBe(200);
    }
    await env.topology.idle();
    const page = await get(env.app, '/v1/users/self/feed?count=1', reader);
    expect(ids(page.body.data)).toEqual([kept.id]);
    expect(page.body.pagination).toEqual({});
  });

  it('activity of count=1 skips entries about deleted media', async () => {
    const owner = await signup(env.app, 'fill_owner');
    const fan = await signup(env.app, 'fill_liker');
    const keep = await upload(env.app, owner, { caption: 'keep' });
    await env.app.inject({ method: 'POST', url: `/v1/media/${keep.id}/likes?access_token=${fan.token}` });
    for (let i = 0; i < 3; i++) {
      const m = await upload(env.app, owner, { caption: `x${i}` });
      await env.app.inject({ method: 'POST', url: `/v1/media/${m.id}/likes?access_token=${fan.token}` });
      await env.app.inject({ method: 'DELETE', url: `/v1/media/${m.id}?access_token=${owner.token}` });
    }
    const page = await get(env.app, '/v1/users/self/activity?count=1', owner);
    expect((page.body.data as Array<{ media: { id: string } }>).map((a) => a.media.id)).toEqual([keep.id]);
    expect(page.body.pagination).toEqual({});
  });
});

describe('user lists', () => {
  it('followed-by of count=1 skips a follower blocked by the viewer, and offers a next page only when one follows', async () => {
    const star = await signup(env.app, 'fill_star');
    const first = await signup(env.app, 'fill_first');
    const blocked = await signup(env.app, 'fill_blocked');
    await relate(env.app, first, star.id, 'follow');
    await relate(env.app, blocked, star.id, 'follow');
    await relate(env.app, viewer, blocked.id, 'block');
    const p1 = await get(env.app, `/v1/users/${star.id}/followed-by?count=1`, viewer);
    expect(ids(p1.body.data)).toEqual([first.id]);
    expect(p1.body.pagination).toEqual({});
    // Someone else still sees both.
    expect(ids((await get(env.app, `/v1/users/${star.id}/followed-by?count=5`, pub)).body.data)).toEqual([blocked.id, first.id]);
  });
});
