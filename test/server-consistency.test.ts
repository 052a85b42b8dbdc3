// Read-your-writes over a real socket, on the default read policy with replicas that lag: a user
// sees their own writes at once, counts stay right, and stale replica rows never settle in memcached.

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../server/app.ts';
import { ADMIN_TOKEN } from './helpers/app.ts';
import { loadTopology } from '../sim/topology-config.ts';
import { buildTopology, type Topology } from '../sim/topology.ts';
import type { FastifyInstance } from 'fastify';

let topology: Topology;
let app: FastifyInstance;
let base: string;
let photo: Buffer;

beforeAll(async () => {
  // Replicas 300 ms behind: any read of one's own write served by a replica would show.
  const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 }, database: { readPolicy: 'read-your-writes', replicaLagMs: 300 }, feed: { replicas: 0 } });
  topology = await buildTopology({ config, seed: 5, sampleEveryMs: 0 });
  app = await buildApp({ topology, rateLimitPerHour: 0, adminToken: ADMIN_TOKEN });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  photo = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#777' } }).jpeg().toBuffer();
});

afterAll(async () => {
  await app.close();
  await topology.close();
});

async function signup(username: string): Promise<{ token: string; id: string }> {
  const res = await fetch(`${base}/v1/accounts`, { method: 'POST', body: new URLSearchParams({ username, password: 'secret123', full_name: username }) });
  const body = (await res.json()) as { data: { access_token: string; user: { id: string } } };
  return { token: body.data.access_token, id: body.data.user.id };
}

async function upload(token: string): Promise<string> {
  const form = new FormData();
  form.append('photo', new Blob([new Uint8Array(photo)], { type: 'image/jpeg' }), 'p.jpg');
  form.append('caption', 'mine');
  const res = await fetch(`${base}/v1/media?access_token=${token}`, { method: 'POST', body: form });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: { id: string } }).data.id;
}

const get = async (path: string): Promise<{ data: unknown }> => (await (await fetch(`${base}${path}`)).json()) as { data: unknown };

describe('read-your-writes over HTTP with lagging replicas', () => {
  it('a user who uploads 6 photos sees counts.media 6 at once, and a follower count that matches the list', async () => {
    // A reader with no recent writes of their own, so replicas serve them (possibly stale).
    const dave = await signup('dave_ryw');
    await new Promise((r) => setTimeout(r, 400));
    const alice = await signup('alice_ryw');
    for (let i = 0; i < 6; i++) await upload(alice.token);
    expect(((await get(`/v1/users/self?access_token=${alice.token}`)).data as { counts: { media: number } }).counts.media).toBe(6);
    const fans = [await signup('fan_ryw1'), await signup('fan_ryw2'), await signup('fan_ryw3')];
    for (const f of fans) await fetch(`${base}/v1/users/${alice.id}/relationship?access_token=${f.token}`, { method: 'POST', body: new URLSearchParams({ action: 'follow' }) });
    const bob = fans[0]!;
    expect(((await get(`/v1/users/self?access_token=${bob.token}`)).data as { counts: { follows: number } }).counts.follows).toBe(1);
    // Bob reads alice's profile while the replicas still lag: whatever he sees, it must not settle
    // in memcached — after the lag everyone sees the real counts.
    await get(`/v1/users/${alice.id}?access_token=${dave.token}`);
    await new Promise((r) => setTimeout(r, 400));
    const seen = (await get(`/v1/users/${alice.id}?access_token=${dave.token}`)).data as { counts: { followed_by: number; media: number } };
    expect(seen.counts).toMatchObject({ followed_by: 3, media: 6 });
  });

  it('a comment and a like are visible to their author at once, with counts to match', async () => {
    const owner = await signup('owner_ryw');
    const carol = await signup('carol_ryw');
    const id = await upload(owner.token);
    await fetch(`${base}/v1/media/${id}/comments?access_token=${carol.token}`, { method: 'POST', body: new URLSearchParams({ text: 'first!' }) });
    await fetch(`${base}/v1/media/${id}/likes?access_token=${carol.token}`, { method: 'POST' });
    expect(((await get(`/v1/media/${id}/comments?access_token=${carol.token}`)).data as unknown[]).length).toBe(1);
    const m = (await get(`/v1/media/${id}?access_token=${carol.token}`)).data as { likes: { count: number }; comments: { count: number }; user_has_liked: boolean };
    expect(m).toMatchObject({ likes: { count: 1 }, comments: { count: 1 }, user_has_liked: true });
  });

  it('a row read from a lagging replica by someone else does not settle in memcached', async () => {
    const owner = await signup('owner_stale');
    const liker = await signup('liker_stale');
    const reader = await signup('reader_stale');
    const id = await upload(owner.token);
    await new Promise((r) => setTimeout(r, 400)); // everything so far is replicated; reader has no pending writes
    const liked = await fetch(`${base}/v1/media/${id}/likes?access_token=${liker.token}`, { method: 'POST' }); // answers null: the liker reads nothing back
    expect(liked.status).toBe(200);
    await get(`/v1/media/${id}?access_token=${reader.token}`); // a cache miss, while the replicas still lag
    await new Promise((r) => setTimeout(r, 400));
    const m = (await get(`/v1/media/${id}?access_token=${reader.token}`)).data as { likes: { count: number } };
    expect(m.likes.count).toBe(1);
  });
});
