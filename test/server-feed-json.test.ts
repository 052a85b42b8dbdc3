// The feed answers bytes it puts together from each media's remembered JSON (MediaJsonMemo and
// pagedJson): they must be exactly the bytes the route's response schema would write for the same
// page, whether the JSON was remembered or made again after a like, a comment or a block.

import { Type } from '@sinclair/typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PagedEnvelopeSchema } from '../server/envelope.ts';
import { MediaSchema } from '../server/schemas.ts';
import { makeEnv, relate, signup, upload, type Account, type TestEnv } from './helpers/app.ts';

let env: TestEnv;
let ann: Account;
let ben: Account;
let cat: Account;
const annMedia: string[] = [];
/** A bare Fastify app whose one route answers any body through the feed's response schema. */
let reference: FastifyInstance;

beforeAll(async () => {
  env = await makeEnv();
  ann = await signup(env.app, 'ann', { fullName: 'Ann "Quoted" Arbor\u00e9' });
  ben = await signup(env.app, 'ben');
  cat = await signup(env.app, 'cat');
  await relate(env.app, ben, ann.id, 'follow');
  annMedia.push((await upload(env.app, ann, { caption: 'Golden Gate at dusk #SF #bridge', lat: 37.8199, lng: -122.4783, locationName: 'Golden Gate Bridge', filter: 'Valencia' })).id);
  annMedia.push((await upload(env.app, ann, { caption: 'line\nbreak "quotes" \\ and \u2028 #x' })).id);
  annMedia.push((await upload(env.app, ann)).id);
  await env.topology.idle();
  reference = Fastify();
  reference.post('/', { schema: { response: { 200: PagedEnvelopeSchema(Type.Array(MediaSchema)) } } }, async (request) => request.body);
  await reference.ready();
});
afterAll(async () => {
  await reference.close();
  await env.close();
});

async function post(url: string, who: Account, payload?: Record<string, string>): Promise<void> {
  const res = await env.app.inject({ method: 'POST', url: `${url}?access_token=${who.token}`, ...(payload ? { payload } : {}) });
  expect(res.statusCode, res.body).toBe(200);
}

/** The feed's body, checked against what the response schema writes for the same page. */
async function feedBody(query = ''): Promise<string> {
  const res = await env.app.inject(`/v1/users/self/feed?access_token=${ben.token}${query}`);
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
  const schema = await reference.inject({ method: 'POST', url: '/', payload: res.body, headers: { 'content-type': 'application/json' } });
  expect(res.body).toBe(schema.body);
  expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.body));
  return res.body;
}

describe('GET /v1/users/self/feed as remembered JSON', () => {
  it('answers the bytes the response schema writes, the same again when nothing changed', async () => {
    const first = await feedBody();
    const page = JSON.parse(first) as { data: Array<{ id: string; location: unknown }>; pagination: unknown };
    expect(page.data.map((m) => m.id)).toEqual([...annMedia].reverse());
    expect(page.data[2]!.location).toMatchObject({ name: 'Golden Gate Bridge' });
    expect(page.pagination).toEqual({});
    expect(await feedBody()).toBe(first);
  });

  it('shows likes, comments and the viewer’s own like as soon as they change', async () => {
    await post(`/v1/media/${annMedia[0]}/likes`, cat);
    await post(`/v1/media/${annMedia[0]}/comments`, cat, { text: 'lovely "light"' });
    await post(`/v1/media/${annMedia[1]}/likes`, ben);
    const page = JSON.parse(await feedBody()) as { data: Array<{ id: string; user_has_liked: boolean; likes: { count: number; data: Array<{ id: string }> }; comments: { count: number } }> };
    const byId = new Map(page.data.map((m) => [m.id, m]));
    expect(byId.get(annMedia[0]!)!.likes).toMatchObject({ count: 1, data: [{ id: cat.id }] });
    expect(byId.get(annMedia[0]!)!.comments.count).toBe(1);
    expect(byId.get(annMedia[0]!)!.user_has_liked).toBe(false);
    expect(byId.get(annMedia[1]!)!.user_has_liked).toBe(true);
    await env.app.inject({ method: 'DELETE', url: `/v1/media/${annMedia[1]}/likes?access_token=${ben.token}` });
    const after = JSON.parse(await feedBody()) as typeof page;
    expect(after.data.find((m) => m.id === annMedia[1])!.user_has_liked).toBe(false);
  });

  it('leaves out the likes and comments of a user the viewer blocked, and pages by next_url', async () => {
    await relate(env.app, ben, cat.id, 'block');
    const page = JSON.parse(await feedBody()) as { data: Array<{ id: string; likes: { count: number; data: unknown[] }; comments: { count: number; data: unknown[] } }> };
    const m = page.data.find((x) => x.id === annMedia[0])!;
    expect(m.likes).toEqual({ count: 0, data: [] });
    expect(m.comments).toEqual({ count: 0, data: [] });
    const paged = JSON.parse(await feedBody('&count=2')) as { data: unknown[]; pagination: { next_url?: string; next_max_id?: string } };
    expect(paged.data).toHaveLength(2);
    expect(paged.pagination.next_max_id).toBe(annMedia[1]);
    expect(paged.pagination.next_url).toContain(`max_id=${annMedia[1]}`);
  });
});
