// A block hides both ways everywhere: user search, likes lists, comments, follow lists, activity,
// and the likers, commenters and counts a media object carries. Checked from both sides of the block.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, makeEnv, relate, signup, upload, type Account, type TestEnv, type V1MediaLike } from './helpers/app.ts';

let env: TestEnv;
let blocker: Account;
let blocked: Account;
let owner: Account;
let other: Account;
let photo: V1MediaLike;

const ids = (data: unknown) => (data as Array<{ id: string }>).map((u) => u.id);

beforeAll(async () => {
  env = await makeEnv();
  blocker = await signup(env.app, 'bx_blocker');
  blocked = await signup(env.app, 'bx_blocked');
  owner = await signup(env.app, 'bx_owner');
  other = await signup(env.app, 'bx_other');
  photo = await upload(env.app, owner, { caption: 'shared #bxtag' });
  for (const who of [other, blocked, blocker]) {
    await env.app.inject({ method: 'POST', url: `/v1/media/${photo.id}/likes?access_token=${who.token}` });
    await env.app.inject({ method: 'POST', url: `/v1/media/${photo.id}/comments?access_token=${who.token}`, payload: { text: `from ${who.username}` } });
    await relate(env.app, who, owner.id, 'follow');
  }
  // Both have touched the blocker's things too, before the block.
  const mine = await upload(env.app, blocker, { caption: 'mine' });
  await env.app.inject({ method: 'POST', url: `/v1/media/${mine.id}/likes?access_token=${blocked.token}` });
  await relate(env.app, blocker, blocked.id, 'block');
  await env.topology.idle();
});
afterAll(async () => {
  await env.close();
});

describe.each([
  ['the blocker', () => blocker, () => blocked],
  ['the blocked user', () => blocked, () => blocker],
])('seen by %s', (_who, me, them) => {
  it('user search leaves the other out', async () => {
    const found = ids((await get(env.app, '/v1/users/search?q=bx_&count=10', me())).body.data);
    expect(found).not.toContain(them().id);
    expect(found).toContain(other.id);
  });

  it('the likes list and the comments leave the other out', async () => {
    const likers = ids((await get(env.app, `/v1/media/${photo.id}/likes`, me())).body.data);
    expect(likers).not.toContain(them().id);
    expect(likers).toEqual(expect.arrayContaining([other.id, me().id]));
    const comments = (await get(env.app, `/v1/media/${photo.id}/comments`, me())).body.data as Array<{ from: { id: string } }>;
    expect(comments.map((c) => c.from.id)).toEqual([other.id, me().id].filter((id) => comments.some((c) => c.from.id === id)));
    expect(comments).toHaveLength(2);
  });

  it('the media object’s likers, comments and counts leave the other out', async () => {
    for (const url of [`/v1/media/${photo.id}`, '/v1/tags/bxtag/media/recent', `/v1/users/${owner.id}/media/recent`]) {
      const body = (await get(env.app, url, me())).body;
      const m = (Array.isArray(body.data) ? (body.data as unknown[])[0] : body.data) as { id: string; likes: { count: number; data: Array<{ id: string }> }; comments: { count: number; data: Array<{ from: { id: string } }> } };
      expect(m.id, url).toBe(photo.id);
      expect(m.likes.data.map((u) => u.id), url).not.toContain(them().id);
      expect(m.comments.data.map((c) => c.from.id), url).not.toContain(them().id);
      expect([m.likes.count, m.comments.count], url).toEqual([2, 2]);
    }
    // A third party still sees all three.
    const seen = (await get(env.app, `/v1/media/${photo.id}`, other)).body.data as { likes: { count: number }; comments: { count: number } };
    expect([seen.likes.count, seen.comments.count]).toEqual([3, 3]);
  });

  it('follow lists leave the other out', async () => {
    expect(ids((await get(env.app, `/v1/users/${owner.id}/followed-by`, me())).body.data)).not.toContain(them().id);
    expect(ids((await get(env.app, `/v1/users/${owner.id}/followed-by`, other)).body.data)).toContain(them().id);
  });
});

describe('activity', () => {
  it("the blocker's activity no longer shows the blocked user's like", async () => {
    const acts = (await get(env.app, '/v1/users/self/activity', blocker)).body.data as Array<{ user: { id: string } }>;
    expect(acts.map((a) => a.user.id)).not.toContain(blocked.id);
  });

  it('unblocking shows everything again', async () => {
    await relate(env.app, blocker, blocked.id, 'unblock');
    expect(ids((await get(env.app, `/v1/media/${photo.id}/likes`, blocked)).body.data)).toContain(blocker.id);
    expect(ids((await get(env.app, '/v1/users/search?q=bx_&count=10', blocker)).body.data)).toContain(blocked.id);
    const acts = (await get(env.app, '/v1/users/self/activity', blocker)).body.data as Array<{ user: { id: string } }>;
    expect(acts.map((a) => a.user.id)).toContain(blocked.id);
  });
});
