// The six calls of the official Python client of API v1 (python-instagram 1.3.2) that failed,
// made here byte for byte as that client makes them: the `.json` suffix, `access_token` first in
// the query, then the call's parameters, then `sig` (the client signs every request when it has a
// client secret; the server ignores `sig`), its User-Agent; subscriptions with client_id and
// client_secret in the query and the rest as a form body. (Found in the client's
// instagram/client.py, bind.py and oauth2.py.)

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCallbackServer, type CallbackServer } from './helpers/callback-server.ts';
import { makeEnv, relate, signup, simInject, upload, type Account, type Envelope, type TestEnv, type V1MediaLike } from './helpers/app.ts';

const UA = { 'user-agent': 'Instagram Python Client' };
const SIG = 'sig=4f1c2d9e0b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d';

let env: TestEnv;
let alice: Account;
let bob: Account;
let hidden: Account;
let cb: CallbackServer;
let client: { client_id: string; client_secret: string };
let older: V1MediaLike;

async function call(url: string): Promise<Envelope> {
  const res = await env.app.inject({ method: 'GET', url, headers: UA });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as Envelope;
}

const ids = (data: unknown) => (data as Array<{ id: string }>).map((m) => m.id);

beforeAll(async () => {
  env = await makeEnv();
  cb = await startCallbackServer();
  client = (await simInject(env.app, { method: 'POST', url: '/_sim/clients', payload: { name: 'python-instagram' } })).json() as typeof client;
  alice = await signup(env.app, 'py_alice');
  bob = await signup(env.app, 'py_bob');
  hidden = await signup(env.app, 'py_hidden', { isPrivate: true });
  // bob's post is older; a private account alice does not follow posts after it, with the same
  // tag, at the same place, so the newest item of each list is hidden from alice.
  older = await upload(env.app, bob, { caption: 'bridge #goldengate', lat: 37.8199, lng: -122.4783, locationName: 'Golden Gate Bridge' });
  await upload(env.app, hidden, { caption: 'mine #goldengate', lat: 37.8199, lng: -122.4783, locationName: 'Golden Gate Bridge' });
  const eve = await signup(env.app, 'py_eve');
  const eveMedia = await upload(env.app, eve, { caption: 'eve' });
  await env.app.inject({ method: 'POST', url: `/v1/media/${older.id}/likes?access_token=${alice.token}` });
  await env.app.inject({ method: 'POST', url: `/v1/media/${eveMedia.id}/likes?access_token=${alice.token}` });
  await relate(env.app, eve, alice.id, 'block');
  await env.topology.idle();
});
afterAll(async () => {
  await env.close();
  await cb.close();
});

describe('the six calls of python-instagram 1.3.2 that failed', () => {
  it('tag_recent_media(count=1, tag_name=…): one visible media though a hidden one is newer, and no next_url (nothing visible follows)', async () => {
    const body = await call(`/v1/tags/goldengate/media/recent.json?access_token=${alice.token}&count=1&${SIG}`);
    expect(ids(body.data)).toEqual([older.id]);
    expect(body.pagination).toEqual({});
  });

  it('location_recent_media(count=1, location_id=…): the same at a location', async () => {
    const body = await call(`/v1/locations/${older.location!.id}/media/recent.json?access_token=${alice.token}&count=1&${SIG}`);
    expect(ids(body.data)).toEqual([older.id]);
    expect(body.pagination).toEqual({});
  });

  it('user_liked_media(count=1): the liked media still visible, past one whose owner blocked the viewer', async () => {
    const body = await call(`/v1/users/self/media/liked.json?access_token=${alice.token}&count=1&${SIG}`);
    expect(ids(body.data)).toEqual([older.id]);
    expect(body.pagination).toEqual({});
  });

  it('location_search(foursquare_v2_id=…) and location_search(foursquare_id=…): the location carrying the id', async () => {
    const fsq2 = '4b5dca7cf964a520e5a529e3';
    const placed = await upload(env.app, bob, { lat: 40.7484, lng: -73.9857, locationName: 'Empire State Building', foursquareV2Id: fsq2, foursquareId: '1234567' });
    const v2 = await call(`/v1/locations/search.json?access_token=${alice.token}&foursquare_v2_id=${fsq2}&${SIG}`);
    expect(v2.data).toEqual([{ id: placed.location!.id, name: 'Empire State Building', latitude: 40.7484, longitude: -73.9857 }]);
    const v1 = await call(`/v1/locations/search.json?access_token=${alice.token}&foursquare_id=1234567&${SIG}`);
    expect(ids(v1.data)).toEqual([placed.location!.id]);
    expect((await call(`/v1/locations/search.json?access_token=${alice.token}&foursquare_v2_id=${'0'.repeat(24)}`)).data).toEqual([]);
  });

  it('create_subscription, list_subscriptions, delete_subscriptions (client_id and client_secret in the query, the rest a form body)', async () => {
    const auth = `client_id=${client.client_id}&client_secret=${client.client_secret}&${SIG}`;
    const created = await env.app.inject({
      method: 'POST',
      url: `/v1/subscriptions.json?${auth}`,
      headers: { ...UA, 'content-type': 'application/x-www-form-urlencoded' },
      payload: `object=tag&aspect=media&object_id=goldengate&callback_url=${encodeURIComponent(cb.url)}&verify_token=vt`,
    });
    expect(created.statusCode, created.body).toBe(200);
    const sub = (created.json() as { data: { id: string; object: string; object_id: string } }).data;
    expect([sub.object, sub.object_id]).toEqual(['tag', 'goldengate']);
    // GET carries `sig` twice (once from the auth query, once over the parameters).
    const listed = await call(`/v1/subscriptions.json?${auth}&sig=second`);
    expect(ids(listed.data)).toEqual([sub.id]);
    const del = await env.app.inject({ method: 'DELETE', url: `/v1/subscriptions.json?${auth}&object=all&sig=second`, headers: UA });
    expect(del.statusCode, del.body).toBe(200);
    expect((await call(`/v1/subscriptions.json?${auth}&sig=second`)).data).toEqual([]);
  });

  it('geography_recent_media(geography_id=…, count=…): media inside the geography, newest first, hidden ones left out', async () => {
    const created = await env.app.inject({
      method: 'POST',
      url: `/v1/subscriptions.json?client_id=${client.client_id}&client_secret=${client.client_secret}&${SIG}`,
      headers: { ...UA, 'content-type': 'application/x-www-form-urlencoded' },
      payload: `object=geography&aspect=media&lat=37.8199&lng=-122.4783&radius=1000&callback_url=${encodeURIComponent(cb.url)}&verify_token=vt`,
    });
    expect(created.statusCode, created.body).toBe(200);
    const geoId = (created.json() as { data: { id: string } }).data.id;
    const body = await call(`/v1/geographies/${geoId}/media/recent.json?access_token=${alice.token}&count=1&${SIG}`);
    expect(ids(body.data)).toEqual([older.id]);
    expect(body.pagination).toEqual({});
  });
});

describe('seeded places', () => {
  it('carry Foursquare ids from the seed (the same seed, the same ids), found by /v1/locations/search', async () => {
    const seedOnce = async () => {
      const e = await makeEnv({ seed: 7 });
      try {
        const res = await simInject(e.app, { method: 'POST', url: '/_sim/seed', payload: { users: 200, avgFollows: 2, mediaPerUser: 2, seed: 11 } });
        expect(res.statusCode, res.body).toBe(200);
        const rows = (await e.topology.db.scatter('photos', 'test.fsq', (sql) => sql.all<{ provider: string; external_id: string; location_id: bigint }>('SELECT provider, external_id, location_id FROM location_external_ids'))).flat();
        const user = await signup(e.app, 'fsq_viewer');
        const v2 = rows.find((r) => r.provider === 'foursquare_v2')!;
        const found = await e.app.inject({ method: 'GET', url: `/v1/locations/search.json?access_token=${user.token}&foursquare_v2_id=${v2.external_id}` });
        expect(((found.json() as Envelope).data as Array<{ id: string }>).map((l) => l.id)).toEqual([String(v2.location_id)]);
        return rows.map((r) => `${r.provider}:${r.external_id}`).sort();
      } finally {
        await e.close();
      }
    };
    const first = await seedOnce();
    // Every seeded place has one id of each kind.
    expect(first.filter((k) => k.startsWith('foursquare_v2:')).length).toBe(first.filter((k) => k.startsWith('foursquare:')).length);
    expect(first.length).toBeGreaterThanOrEqual(10);
    expect(first.every((k) => /^foursquare:\d+$|^foursquare_v2:[0-9a-f]{24}$/.test(k))).toBe(true);
    expect(await seedOnce()).toEqual(first);
  });
});
