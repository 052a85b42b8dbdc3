import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorType, get, makeEnv, pathOf, relate, signup, upload, type Account, type TestEnv } from './helpers/app.ts';

let env: TestEnv;
beforeAll(async () => {
  env = await makeEnv();
});
afterAll(async () => {
  await env.close();
});

async function relationship(who: Account, targetId: string) {
  const res = await get(env.app, `/v1/users/${targetId}/relationship`, who);
  expect(res.status).toBe(200);
  return res.body.data as Record<string, unknown>;
}

describe('relationships', () => {
  it('follow and unfollow a public account; the Relationship object has exactly three keys', async () => {
    const a = await signup(env.app, 'rel_a');
    const b = await signup(env.app, 'rel_b');
    expect(await relationship(a, b.id)).toEqual({ outgoing_status: 'none', incoming_status: 'none', target_user_is_private: false });
    const res = await relate(env.app, a, b.id, 'follow');
    expect(res.json()).toEqual({ meta: { code: 200 }, data: { outgoing_status: 'follows', incoming_status: 'none', target_user_is_private: false } });
    expect(await relationship(b, a.id)).toEqual({ outgoing_status: 'none', incoming_status: 'followed_by', target_user_is_private: false });
    const form = await env.app.inject({ method: 'POST', url: `/v1/users/${b.id}/relationship?access_token=${a.token}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'action=unfollow' });
    expect(form.json().data.outgoing_status).toBe('none');
  });

  it('a private account turns follows into requests until approved; ignore drops the request', async () => {
    const p = await signup(env.app, 'rel_private', { isPrivate: true });
    const f1 = await signup(env.app, 'rel_fan1');
    const f2 = await signup(env.app, 'rel_fan2');
    expect((await relate(env.app, f1, p.id, 'follow')).json().data).toEqual({ outgoing_status: 'requested', incoming_status: 'none', target_user_is_private: true });
    await relate(env.app, f2, p.id, 'follow');
    expect(await relationship(p, f1.id)).toMatchObject({ incoming_status: 'requested_by' });
    await relate(env.app, p, f1.id, 'approve');
    await relate(env.app, p, f2.id, 'ignore');
    expect(await relationship(f1, p.id)).toMatchObject({ outgoing_status: 'follows' });
    expect(await relationship(f2, p.id)).toMatchObject({ outgoing_status: 'none' });
    const approveAgain = await env.app.inject({ method: 'POST', url: `/v1/users/${f2.id}/relationship?access_token=${p.token}`, payload: { action: 'approve' } });
    expect(approveAgain.statusCode).toBe(400);
    expect(errorType(approveAgain)).toBe('APIInvalidParametersError');
  });

  it('block shows as blocked_by_you, ends follows both ways, and a blocked user cannot follow', async () => {
    const x = await signup(env.app, 'rel_x');
    const y = await signup(env.app, 'rel_y');
    await relate(env.app, x, y.id, 'follow');
    await relate(env.app, y, x.id, 'follow');
    expect((await relate(env.app, x, y.id, 'block')).json().data).toEqual({ outgoing_status: 'none', incoming_status: 'blocked_by_you', target_user_is_private: false });
    expect(await relationship(y, x.id)).toEqual({ outgoing_status: 'none', incoming_status: 'none', target_user_is_private: false });
    const follow = await env.app.inject({ method: 'POST', url: `/v1/users/${x.id}/relationship?access_token=${y.token}`, payload: { action: 'follow' } });
    expect(follow.statusCode).toBe(403);
    expect(errorType(follow)).toBe('APINotAllowedError');
    await relate(env.app, x, y.id, 'unblock');
    expect(await relationship(x, y.id)).toMatchObject({ incoming_status: 'none' });
    await relate(env.app, y, x.id, 'follow');
  });

  it('refuses unknown actions, missing actions, unknown users and oneself', async () => {
    const a = await signup(env.app, 'rel_bad');
    const b = await signup(env.app, 'rel_bad2');
    for (const payload of [{ action: 'befriend' }, {}, { action: ['follow', 'block'] }, { action: "'; DROP TABLE follows; --" }]) {
      const res = await env.app.inject({ method: 'POST', url: `/v1/users/${b.id}/relationship?access_token=${a.token}`, payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(errorType(res)).toBe('APIInvalidParametersError');
    }
    const unknown = await env.app.inject({ method: 'POST', url: `/v1/users/4242424242/relationship?access_token=${a.token}`, payload: { action: 'follow' } });
    expect(unknown.statusCode).toBe(404);
    expect(errorType(unknown)).toBe('APINotFoundError');
    const self = await env.app.inject({ method: 'POST', url: `/v1/users/self/relationship?access_token=${a.token}`, payload: { action: 'follow' } });
    expect(errorType(self)).toBe('APIInvalidParametersError');
    const getUnknown = await get(env.app, '/v1/users/4242424242/relationship', a);
    expect(getUnknown.body.meta.error_type).toBe('APINotFoundError');
  });
});

describe('follows and followed-by', () => {
  let star: Account;
  const fans: Account[] = [];
  beforeAll(async () => {
    star = await signup(env.app, 'list_star');
    for (let i = 0; i < 7; i++) {
      const f = await signup(env.app, `list_fan${i}`);
      fans.push(f);
      await relate(env.app, f, star.id, 'follow');
      await relate(env.app, star, f.id, 'follow');
    }
  });

  it('followed-by pages with cursor and next_url, newest follower first, no duplicates and no gaps', async () => {
    const seen: string[] = [];
    let url: string | undefined = `/v1/users/${star.id}/followed-by?count=3&access_token=${fans[0]!.token}`;
    let pages = 0;
    while (url) {
      const res = await env.app.inject(url);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      seen.push(...body.data.map((u: { id: string }) => u.id));
      for (const u of body.data) expect(Object.keys(u).sort()).toEqual(['full_name', 'id', 'profile_picture', 'username']);
      if (body.pagination.next_url) {
        expect(body.pagination.next_cursor).toBeDefined();
        expect(new URL(body.pagination.next_url).searchParams.get('cursor')).toBe(body.pagination.next_cursor);
        url = pathOf(body.pagination.next_url);
      } else {
        expect(body.pagination).toEqual({});
        url = undefined;
      }
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(fans.map((f) => f.id).reverse());
  });

  it('follows lists who a user follows, also for self', async () => {
    const res = await get(env.app, '/v1/users/self/follows?count=100', star);
    expect((res.body.data as Array<{ id: string }>).map((u) => u.id).sort()).toEqual(fans.map((f) => f.id).sort());
    expect(res.body.pagination).toEqual({});
    const other = await get(env.app, `/v1/users/${fans[0]!.id}/follows`, star);
    expect((other.body.data as Array<{ id: string }>).map((u) => u.id)).toEqual([star.id]);
  });

  it('answers 404 for an unknown user and 400 for bad cursors and counts', async () => {
    expect((await get(env.app, '/v1/users/777777777/follows', star)).body.meta.error_type).toBe('APINotFoundError');
    for (const q of ['cursor=abc', 'cursor=-5', 'count=0', 'count=101', 'count=x']) {
      const res = await get(env.app, `/v1/users/${star.id}/followed-by?${q}`, star);
      expect(res.status, q).toBe(400);
      expect(res.body.meta.error_type).toBe('APIInvalidParametersError');
    }
  });

  it('a private account shows its lists to approved followers and itself only', async () => {
    const priv = await signup(env.app, 'list_private', { isPrivate: true });
    const follower = await signup(env.app, 'list_ok');
    const stranger = await signup(env.app, 'list_stranger');
    const pending = await signup(env.app, 'list_pending');
    await relate(env.app, follower, priv.id, 'follow');
    await relate(env.app, priv, follower.id, 'approve');
    await relate(env.app, pending, priv.id, 'follow');
    await upload(env.app, priv, { caption: 'private' });
    for (const path of ['follows', 'followed-by', 'media/recent']) {
      for (const who of [stranger, pending]) {
        const res = await get(env.app, `/v1/users/${priv.id}/${path}`, who);
        expect(res.status, `${path} by ${who.username}`).toBe(403);
        expect(res.body.meta.error_type).toBe('APINotAllowedError');
      }
      expect((await get(env.app, `/v1/users/${priv.id}/${path}`, follower)).status).toBe(200);
      expect((await get(env.app, `/v1/users/${priv.id}/${path}`, priv)).status).toBe(200);
    }
    // The profile itself stays public, as on Instagram.
    expect((await get(env.app, `/v1/users/${priv.id}`, stranger)).status).toBe(200);
  });
});
