// Lists are hydrated in batches: a page costs a fixed number of store calls, however many media
// it holds (never one call per media).

import { AsyncLocalStorage } from 'node:async_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../sim/domain/store.ts';
import { get, makeEnv, relate, signup, upload, type Account, type TestEnv } from './helpers/app.ts';

let env: TestEnv;
let viewer: Account;
const calls = new Map<string, number>();
/** Calls the store makes to itself (the visibility checks of lists it fills), counted apart. */
const innerCalls = new Map<string, number>();
/** Set inside a store call, so the store's calls to itself are not counted as the server's. */
const insideStore = new AsyncLocalStorage<true>();

beforeAll(async () => {
  env = await makeEnv();
  viewer = await signup(env.app, 'batch_viewer');
  for (let i = 0; i < 5; i++) {
    const poster = await signup(env.app, `batch_poster${i}`);
    await relate(env.app, viewer, poster.id, 'follow');
    for (let j = 0; j < 4; j++) {
      const m = await upload(env.app, poster, { caption: `#batch ${i}.${j}` });
      await env.app.inject({ method: 'POST', url: `/v1/media/${m.id}/likes?access_token=${viewer.token}` });
      await env.app.inject({ method: 'POST', url: `/v1/media/${m.id}/comments?access_token=${poster.token}`, payload: { text: 'c' } });
    }
  }
  await env.topology.idle();
  // Count every store call the server makes from here on.
  const store = env.topology.store as unknown as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(store)) as Array<keyof Store>) {
    const fn = store[name];
    if (typeof fn !== 'function' || name === ('constructor' as keyof Store)) continue;
    store[name] = function (this: unknown, ...args: unknown[]) {
      if (insideStore.getStore()) {
        innerCalls.set(name, (innerCalls.get(name) ?? 0) + 1);
        return (fn as (...a: unknown[]) => unknown).apply(this, args);
      }
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return insideStore.run(true, () => (fn as (...a: unknown[]) => unknown).apply(this, args));
    };
  }
});
afterAll(async () => {
  await env.close();
});

async function callsFor(url: string): Promise<Record<string, number>> {
  calls.clear();
  innerCalls.clear();
  const res = await get(env.app, url, viewer);
  expect(res.status, url).toBe(200);
  expect((res.body.data as unknown[]).length, url).toBe(20);
  return Object.fromEntries(calls);
}

describe('batched hydration', () => {
  it('a 20-media feed page costs one call each to authenticate, getFeed, getUsers, hasLiked and blockedEitherWay', async () => {
    const res = await get(env.app, '/v1/users/self/feed?count=20', viewer);
    const media = res.body.data as Array<{ likes: { count: number; data: unknown[] }; comments: { data: unknown[] }; user_has_liked: boolean }>;
    expect(media.every((m) => m.likes.count === 1 && m.likes.data.length === 1 && m.comments.data.length === 1 && m.user_has_liked)).toBe(true);
    expect(await callsFor('/v1/users/self/feed?count=20')).toEqual({ authenticate: 1, getFeed: 1, getUsers: 1, hasLiked: 1, blockedEitherWay: 1 });
  });

  it('a 20-media tag page checks visibility once for all its owners (canViewMany, inside the store that fills the page), not per media', async () => {
    const c = await callsFor('/v1/tags/batch/media/recent?count=20');
    expect(c).toEqual({ authenticate: 1, listTagMedia: 1, getUsers: 1, hasLiked: 1, blockedEitherWay: 1 });
    expect(innerCalls.get('canViewMany')).toBe(1);
    expect(innerCalls.get('canView') ?? 0).toBe(0);
  });

  it('liked media and popular are batched the same way', async () => {
    expect(await callsFor('/v1/users/self/media/liked?count=20')).toEqual({ authenticate: 1, listLikedMedia: 1, getUsers: 1, hasLiked: 1, blockedEitherWay: 1 });
    expect(innerCalls.get('canViewMany')).toBe(1);
    expect(await callsFor('/v1/media/popular?count=20')).toEqual({ authenticate: 1, popularMedia: 1, getUsers: 1, hasLiked: 1, blockedEitherWay: 1 });
    expect(innerCalls.get('canViewMany')).toBe(1);
  });
});
