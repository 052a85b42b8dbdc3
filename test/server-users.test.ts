import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorType, get, makeEnv, type Envelope, pathOf, relate, signup, upload, type Account, type TestEnv } from './helpers/app.ts';

let env: TestEnv;
let ann: Account;
let ben: Account;
let cat: Account;
const annMedia: string[] = [];

beforeAll(async () => {
  env = await makeEnv();
  ann = await signup(env.app, 'ann', { fullName: 'Ann Arbor' });
  ben = await signup(env.app, 'ben');
  cat = await signup(env.app, 'cat');
  await relate(env.app, ben, ann.id, 'follow');
  for (let i = 0; i < 7; i++) annMedia.unshift((await upload(env.app, ann, { caption: `photo ${i} #series` })).id);
  await env.topology.idle();
});
afterAll(async () => {
  await env.close();
});

/** Follows next_url as given until the end; returns every id seen, in order. */
async function walk(firstUrl: string, who: Account): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let url: string | undefined = firstUrl;
  let pages = 0;
  let first = true;
  while (url) {
    const res: LightMyRequestResponse = await env.app.inject(first ? `${url}${url.includes('?') ? '&' : '?'}access_token=${who.token}` : pathOf(url));
    first = false;
    expect(res.statusCode).toBe(200);
    const body: Envelope = res.json();
    pages++;
    ids.push(...(body.data as Array<{ id: string }>).map((x) => x.id));
    expect(body.pagination).toBeDefined();
    url = body.pagination!.next_url;
    if (url) {
      expect(url).toMatch(/^http:\/\/localhost(:\d+)?\//);
      expect(url).toContain(`access_token=${encodeURIComponent(who.token)}`);
    } else {
      expect(body.pagination).toEqual({});
    }
    if (pages > 50) throw new Error('pagination does not end');
  }
  return { ids, pages };
}

describe('users', () => {
  it('GET /v1/users/self and /v1/users/{id} answer the v1 User', async () => {
    const self = await get(env.app, '/v1/users/self', ann);
    expect(self.status).toBe(200);
    expect(self.body.data).toEqual({
      id: ann.id,
      username: 'ann',
      full_name: 'Ann Arbor',
      profile_picture: expect.stringMatching(/^http:\/\/.+\/cdn\/.+/),
      bio: '',
      website: '',
      counts: { media: 7, follows: 0, followed_by: 1 },
    });
    const other = await get(env.app, `/v1/users/${ann.id}`, ben);
    expect(other.body.data).toEqual(self.body.data);
  });

  it('answers APINotFoundError for an unknown user id and APIInvalidParametersError for a malformed one', async () => {
    const unknown = await get(env.app, '/v1/users/1234567', ann);
    expect(unknown.status).toBe(404);
    expect(unknown.body.meta.error_type).toBe('APINotFoundError');
    for (const bad of ['abc', '-1', '99999999999999999999999', '18446744073709551615']) {
      const res = await get(env.app, `/v1/users/${bad}`, ann);
      expect(res.status, bad).toBe(400);
      expect(res.body.meta.error_type).toBe('APIInvalidParametersError');
    }
  });

  it('GET /v1/users/search finds users by prefix, short user objects', async () => {
    const res = await get(env.app, '/v1/users/search?q=be&count=5', ann);
    expect(res.status).toBe(200);
    const data = res.body.data as Array<Record<string, unknown>>;
    expect(data.map((u) => u.username)).toEqual(['ben']);
    expect(Object.keys(data[0]!).sort()).toEqual(['full_name', 'id', 'profile_picture', 'username']);
    const missing = await get(env.app, '/v1/users/search', ann);
    expect(missing.body.meta.error_type).toBe('APIInvalidParametersError');
  });

  it('media/recent pages through every photo with next_url, no duplicates and no gaps', async () => {
    const { ids, pages } = await walk(`/v1/users/${ann.id}/media/recent?count=3`, ben);
    expect(pages).toBe(3);
    expect(ids).toEqual(annMedia);
    const self = await walk('/v1/users/self/media/recent.json?count=2', ann);
    expect(self.ids).toEqual(annMedia);
  });

  it('next_url keeps the other parameters and the .json suffix, and replaces only max_id', async () => {
    const res = await get(env.app, `/v1/users/${ann.id}/media/recent.json?count=2&max_id=${annMedia[0]}&foo=bar`, ben);
    const next = new URL(res.body.pagination!.next_url!);
    expect(next.pathname).toBe(`/v1/users/${ann.id}/media/recent.json`);
    expect(next.searchParams.get('count')).toBe('2');
    expect(next.searchParams.get('foo')).toBe('bar');
    expect(next.searchParams.getAll('max_id')).toEqual([res.body.pagination!.next_max_id]);
    expect((res.body.data as Array<{ id: string }>).map((m) => m.id)).toEqual(annMedia.slice(1, 3));
  });

  it('uses publicUrl for every absolute link when one is configured', async () => {
    const { makeEnv: make } = await import('./helpers/app.ts');
    const e = await make({ publicUrl: 'https://scalegram.example/' });
    try {
      const who = await signup(e.app, 'linked');
      const m = await upload(e.app, who, {});
      expect(m.link).toMatch(/^https:\/\/scalegram\.example\/p\/[A-Za-z0-9_-]+\/$/);
      expect(m.images.thumbnail!.url).toMatch(/^https:\/\/scalegram\.example\/cdn\/media\//);
    } finally {
      await e.close();
    }
  });

  it('media/recent honours min_id, min_timestamp and max_timestamp', async () => {
    const newer = await get(env.app, `/v1/users/${ann.id}/media/recent?min_id=${annMedia[2]}`, ben);
    expect((newer.body.data as Array<{ id: string }>).map((m) => m.id)).toEqual(annMedia.slice(0, 2));
    const now = Math.floor(Date.now() / 1000);
    const all = await get(env.app, `/v1/users/${ann.id}/media/recent?min_timestamp=${now - 3600}&max_timestamp=${now + 3600}`, ben);
    expect((all.body.data as unknown[]).length).toBe(7);
    const none = await get(env.app, `/v1/users/${ann.id}/media/recent?max_timestamp=${now - 3600}`, ben);
    expect(none.body.data).toEqual([]);
  });

  it('the feed shows followed accounts, newest first, paged by next_url', async () => {
    const { ids } = await walk('/v1/users/self/feed?count=4', ben);
    expect(ids).toEqual(annMedia);
    const empty = await get(env.app, '/v1/users/self/feed', cat);
    expect(empty.body.data).toEqual([]);
    expect(empty.body.pagination).toEqual({});
  });

  it('media/liked lists what the viewer liked, most recent like first, paged by max_like_id', async () => {
    for (const id of [annMedia[3], annMedia[0], annMedia[5]]) {
      const res = await env.app.inject({ method: 'POST', url: `/v1/media/${id}/likes?access_token=${cat.token}` });
      expect(res.statusCode).toBe(200);
    }
    const first = await get(env.app, '/v1/users/self/media/liked?count=2', cat);
    expect((first.body.data as Array<{ id: string; user_has_liked: boolean }>).map((m) => [m.id, m.user_has_liked])).toEqual([
      [annMedia[5], true],
      [annMedia[0], true],
    ]);
    const p = first.body.pagination!;
    expect(p.next_max_like_id).toBeDefined();
    expect(new URL(p.next_url!).searchParams.get('max_like_id')).toBe(p.next_max_like_id);
    const second = await env.app.inject(pathOf(p.next_url!));
    expect(second.json().data.map((m: { id: string }) => m.id)).toEqual([annMedia[3]]);
    expect(second.json().pagination).toEqual({});
  });

  it('requested-by lists pending requests to a private account', async () => {
    const priv = await signup(env.app, 'private_pat', { isPrivate: true });
    await relate(env.app, ben, priv.id, 'follow');
    const res = await get(env.app, '/v1/users/self/requested-by', priv);
    expect((res.body.data as Array<{ id: string }>).map((u) => u.id)).toEqual([ben.id]);
    const none = await get(env.app, '/v1/users/self/requested-by', ann);
    expect(none.body.data).toEqual([]);
  });

  it('self-only endpoints need a token', async () => {
    for (const url of ['/v1/users/self/feed', '/v1/users/self/media/liked', '/v1/users/self/requested-by', '/v1/users/self/activity', '/v1/users/self']) {
      const res = await env.app.inject(url);
      expect(res.statusCode, url).toBe(401);
      expect(errorType(res)).toBe('APIRequiresAuthenticationError');
    }
  });
});

describe('activity', () => {
  it('lists likes, comments, follows and follow requests on what is yours, newest first', async () => {
    const dee = await signup(env.app, 'dee', { isPrivate: true });
    const photo = await upload(env.app, dee, { caption: 'mine' });
    await relate(env.app, ann, dee.id, 'follow'); // a request: dee is private
    await relate(env.app, dee, ann.id, 'approve');
    await env.app.inject({ method: 'POST', url: `/v1/media/${photo.id}/likes?access_token=${ann.token}` });
    const c = await env.app.inject({ method: 'POST', url: `/v1/media/${photo.id}/comments?access_token=${ann.token}`, payload: { text: 'lovely' } });
    expect(c.statusCode).toBe(200);
    await relate(env.app, cat, dee.id, 'follow'); // pending
    const res = await get(env.app, '/v1/users/self/activity', dee);
    expect(res.status).toBe(200);
    const items = res.body.data as Array<{ id: string; type: string; created_time: string; user: { id: string }; media: { id: string } | null; comment: { text: string } | null }>;
    expect(items.map((a) => [a.type, a.user.id])).toEqual([
      ['follow_request', cat.id],
      ['comment', ann.id],
      ['like', ann.id],
      ['follow', ann.id],
    ]);
    for (const a of items) expect(Object.keys(a).sort()).toEqual(['comment', 'created_time', 'id', 'media', 'type', 'user']);
    expect(items[1]!.comment).toMatchObject({ text: 'lovely', from: { id: ann.id } });
    expect(items[1]!.media!.id).toBe(photo.id);
    expect(items[2]!.media!.id).toBe(photo.id);
    expect(items[2]!.comment).toBeNull();
    expect(items[0]!.media).toBeNull();
    expect(items[0]!.created_time).toMatch(/^\d+$/);
    // Paged by max_id with next_url.
    const page = await get(env.app, '/v1/users/self/activity?count=3', dee);
    const next = await env.app.inject(pathOf(page.body.pagination!.next_url!));
    expect([...(page.body.data as Array<{ id: string }>), ...next.json().data].map((a: { id: string }) => a.id)).toEqual(items.map((a) => a.id));
  });
});
