import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, makeEnv, relate, signup, upload, type Account, type TestEnv, type V1MediaLike } from './helpers/app.ts';

let env: TestEnv;
let priv: Account; // private account
let friend: Account; // approved follower
let pending: Account; // requested, not approved
let stranger: Account;
let secret: V1MediaLike;

const ids = (data: unknown) => (data as Array<{ id: string }>).map((x) => x.id);

beforeAll(async () => {
  env = await makeEnv();
  priv = await signup(env.app, 'priv_owner', { isPrivate: true });
  friend = await signup(env.app, 'priv_friend');
  pending = await signup(env.app, 'priv_pending');
  stranger = await signup(env.app, 'priv_stranger');
  await relate(env.app, friend, priv.id, 'follow');
  await relate(env.app, priv, friend.id, 'approve');
  await relate(env.app, pending, priv.id, 'follow');
  secret = await upload(env.app, priv, { caption: 'hidden #privtag', lat: 48.8584, lng: 2.2945, locationName: 'Tour Eiffel' });
  await env.app.inject({ method: 'POST', url: `/v1/media/${secret.id}/likes?access_token=${friend.token}` });
  await env.topology.idle();
});
afterAll(async () => {
  await env.close();
});

describe('a private account', () => {
  it('shows its media to approved followers and itself only', async () => {
    for (const who of [priv, friend]) {
      expect((await get(env.app, `/v1/media/${secret.id}`, who)).status).toBe(200);
      expect(ids((await get(env.app, `/v1/users/${priv.id}/media/recent`, who)).body.data)).toEqual([secret.id]);
    }
    for (const who of [pending, stranger]) {
      for (const url of [`/v1/media/${secret.id}`, `/v1/media/shortcode/${new URL(secret.link).pathname.split('/')[2]}`, `/v1/users/${priv.id}/media/recent`, `/v1/media/${secret.id}/likes`, `/v1/media/${secret.id}/comments`]) {
        const res = await get(env.app, url, who);
        expect(res.status, `${url} by ${who.username}`).toBe(403);
        expect(res.body.meta.error_type).toBe('APINotAllowedError');
        expect(res.body.data).toBeUndefined();
      }
    }
  });

  it('refuses likes and comments from those who cannot see it', async () => {
    for (const [method, url, payload] of [
      ['POST', `/v1/media/${secret.id}/likes`, undefined],
      ['DELETE', `/v1/media/${secret.id}/likes`, undefined],
      ['POST', `/v1/media/${secret.id}/comments`, { text: 'let me in' }],
    ] as const) {
      const res = await env.app.inject({ method, url: `${url}?access_token=${stranger.token}`, ...(payload ? { payload } : {}) });
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(res.json().meta.error_type).toBe('APINotAllowedError');
    }
    const media = (await get(env.app, `/v1/media/${secret.id}`, priv)).body.data as { likes: { count: number }; comments: { count: number } };
    expect(media.likes.count).toBe(1);
    expect(media.comments.count).toBe(0);
  });

  it('reaches only approved followers’ feeds', async () => {
    expect(ids((await get(env.app, '/v1/users/self/feed', friend)).body.data)).toEqual([secret.id]);
    expect(ids((await get(env.app, '/v1/users/self/feed', pending)).body.data)).toEqual([]);
    expect(ids((await get(env.app, '/v1/users/self/feed', stranger)).body.data)).toEqual([]);
  });

  it('stays out of tag, location, geo-search and popular lists for those who cannot see it', async () => {
    const lists = ['/v1/tags/privtag/media/recent', `/v1/locations/${secret.location!.id}/media/recent`, '/v1/media/search?lat=48.8584&lng=2.2945', '/v1/media/popular?count=100'];
    for (const url of lists) {
      expect(ids((await get(env.app, url, friend)).body.data), `${url} by friend`).toContain(secret.id);
      expect(ids((await get(env.app, url, priv)).body.data), `${url} by owner`).toContain(secret.id);
      for (const who of [pending, stranger]) expect(ids((await get(env.app, url, who)).body.data), `${url} by ${who.username}`).not.toContain(secret.id);
    }
  });

  it('drops out of a former follower’s lists after an unfollow', async () => {
    const ex = await signup(env.app, 'priv_ex');
    await relate(env.app, ex, priv.id, 'follow');
    await relate(env.app, priv, ex.id, 'approve');
    await env.app.inject({ method: 'POST', url: `/v1/media/${secret.id}/likes?access_token=${ex.token}` });
    expect(ids((await get(env.app, '/v1/users/self/media/liked', ex)).body.data)).toEqual([secret.id]);
    await relate(env.app, ex, priv.id, 'unfollow');
    expect(ids((await get(env.app, '/v1/users/self/media/liked', ex)).body.data)).toEqual([]);
    expect((await get(env.app, `/v1/media/${secret.id}`, ex)).status).toBe(403);
  });
});

describe('blocks', () => {
  let blocker: Account;
  let blocked: Account;
  let blockerPhoto: V1MediaLike;
  let blockedPhoto: V1MediaLike;
  beforeAll(async () => {
    blocker = await signup(env.app, 'blk_blocker');
    blocked = await signup(env.app, 'blk_blocked');
    await relate(env.app, blocked, blocker.id, 'follow');
    await relate(env.app, blocker, blocked.id, 'follow');
    blockerPhoto = await upload(env.app, blocker, { caption: 'mine #blocktag' });
    blockedPhoto = await upload(env.app, blocked, { caption: 'theirs #blocktag' });
    await env.topology.idle();
    expect(ids((await get(env.app, '/v1/users/self/feed', blocked)).body.data)).toContain(blockerPhoto.id);
    await relate(env.app, blocker, blocked.id, 'block');
  });

  it('hide each one’s media from the other, both ways', async () => {
    for (const [who, photo, ownerId] of [
      [blocked, blockerPhoto, blocker.id],
      [blocker, blockedPhoto, blocked.id],
    ] as const) {
      expect((await get(env.app, `/v1/media/${photo.id}`, who)).body.meta.error_type).toBe('APINotAllowedError');
      expect((await get(env.app, `/v1/users/${ownerId}/media/recent`, who)).body.meta.error_type).toBe('APINotAllowedError');
      expect((await get(env.app, `/v1/users/${ownerId}/followed-by`, who)).body.meta.error_type).toBe('APINotAllowedError');
      expect(ids((await get(env.app, '/v1/tags/blocktag/media/recent', who)).body.data)).toEqual([who === blocked ? blockedPhoto.id : blockerPhoto.id]);
      expect(ids((await get(env.app, '/v1/users/self/feed', who)).body.data)).not.toContain(photo.id);
      const like = await env.app.inject({ method: 'POST', url: `/v1/media/${photo.id}/likes?access_token=${who.token}` });
      expect(like.json().meta.error_type).toBe('APINotAllowedError');
    }
  });

  it('and are lifted by unblock', async () => {
    await relate(env.app, blocker, blocked.id, 'unblock');
    expect((await get(env.app, `/v1/media/${blockerPhoto.id}`, blocked)).status).toBe(200);
    expect((await get(env.app, `/v1/media/${blockedPhoto.id}`, blocker)).status).toBe(200);
  });
});

describe('nobody changes another’s things', () => {
  it('deleting others’ media or comments, or changing a relationship for someone else, is refused', async () => {
    const a = await signup(env.app, 'own_a');
    const b = await signup(env.app, 'own_b');
    const c = await signup(env.app, 'own_c');
    const m = await upload(env.app, a, { caption: 'a’s photo' });
    const comment = (await env.app.inject({ method: 'POST', url: `/v1/media/${m.id}/comments?access_token=${b.token}`, payload: { text: 'b was here' } })).json().data.id;
    const attempts = [
      { method: 'DELETE' as const, url: `/v1/media/${m.id}?access_token=${c.token}` },
      { method: 'DELETE' as const, url: `/v1/media/${m.id}?access_token=${b.token}` },
      { method: 'DELETE' as const, url: `/v1/media/${m.id}/comments/${comment}?access_token=${c.token}` },
      { method: 'DELETE' as const, url: `/v1/media/${m.id}/comments/${m.caption ? (m.caption as { id: string }).id : '1'}?access_token=${c.token}` },
    ];
    for (const req of attempts) {
      const res = await env.app.inject(req);
      expect([403, 404], req.url).toContain(res.statusCode);
      if (res.statusCode === 403) expect(res.json().meta.error_type).toBe('APINotAllowedError');
    }
    expect((await env.app.inject(attempts[0]!)).statusCode).toBe(403);
    expect((await env.app.inject(attempts[2]!)).statusCode).toBe(403);
    expect((await get(env.app, `/v1/media/${m.id}`, a)).status).toBe(200);
    expect(((await get(env.app, `/v1/media/${m.id}/comments`, a)).body.data as unknown[]).length).toBe(1);
    // Unlike of someone else's like only ever removes the viewer's own like.
    await env.app.inject({ method: 'POST', url: `/v1/media/${m.id}/likes?access_token=${b.token}` });
    await env.app.inject({ method: 'DELETE', url: `/v1/media/${m.id}/likes?access_token=${c.token}` });
    expect(ids((await get(env.app, `/v1/media/${m.id}/likes`, a)).body.data)).toEqual([b.id]);
  });
});
