// Real-time subscriptions: registered clients, the hub.challenge verification, signed
// notifications received by a real HTTP callback on loopback, retries with backoff, the callback
// allowlist, and geographies. Requests are made as python-instagram 1.3.2 makes them
// (client_id and client_secret in the query, the rest as a form body; a `.json` suffix; `sig`
// parameters, repeated on GETs).

import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { callCallback, CallbackPolicy } from '../sim/domain/callbacks.ts';
import { VirtualClock } from '../sim/engine/clock.ts';
import { RETRY_BACKOFF_MS } from '../sim/domain/subscriptions.ts';
import { loadTopology } from '../sim/topology-config.ts';
import { buildTopology } from '../sim/topology.ts';
import { startCallbackServer, type CallbackServer } from './helpers/callback-server.ts';
import { errorType, get, image, makeEnv, signup, simInject, SMALL_TOPOLOGY, upload, type Account, type TestEnv } from './helpers/app.ts';

interface Client {
  client_id: string;
  client_secret: string;
}

async function registerClient(env: TestEnv, name = 'tests'): Promise<Client> {
  const res = await simInject(env.app, { method: 'POST', url: '/_sim/clients', payload: { name } });
  expect(res.statusCode).toBe(200);
  return res.json() as Client;
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'Instagram Python Client' };

/** POST /v1/subscriptions as the python client sends it. */
function subscribe(env: TestEnv, c: Client, params: Record<string, string>) {
  return env.app.inject({
    method: 'POST',
    url: `/v1/subscriptions.json?client_id=${c.client_id}&client_secret=${c.client_secret}&sig=0123abcd`,
    headers: FORM,
    payload: new URLSearchParams({ aspect: 'media', verify_token: 'my-verify-token', ...params }).toString(),
  });
}

function counter(env: TestEnv, name: string, labels: Record<string, string>): number {
  return env.topology.metrics.sum(name, labels);
}

function hmacSha1(secret: string, body: string): string {
  return createHmac('sha1', secret).update(body).digest('hex');
}

let env: TestEnv;
let cb: CallbackServer;
let client: Client;
let alice: Account;

beforeAll(async () => {
  env = await makeEnv();
  cb = await startCallbackServer();
  client = await registerClient(env);
  alice = await signup(env.app, 'rt_alice');
});
afterAll(async () => {
  await env.close();
  await cb.close();
});

describe('client credentials', () => {
  it('a subscription request without client_id and client_secret is 400 OAuthParameterException; a wrong secret or an unknown client is 400 OAuthClientException', async () => {
    const none = await env.app.inject({ method: 'GET', url: '/v1/subscriptions.json' });
    expect([none.statusCode, errorType(none)]).toEqual([400, 'OAuthParameterException']);
    const wrong = await env.app.inject({ method: 'GET', url: `/v1/subscriptions.json?client_id=${client.client_id}&client_secret=${client.client_secret}x` });
    expect([wrong.statusCode, errorType(wrong)]).toEqual([400, 'OAuthClientException']);
    const unknown = await env.app.inject({ method: 'GET', url: `/v1/subscriptions.json?client_id=${'0'.repeat(32)}&client_secret=${client.client_secret}` });
    expect([unknown.statusCode, errorType(unknown)]).toEqual([400, 'OAuthClientException']);
    // The secret is never echoed, not even in an error.
    expect(wrong.body).not.toContain(client.client_secret);
  });

  it('the admin API lists clients without their secrets, and a revoked client stops working', async () => {
    const other = await registerClient(env, 'short-lived');
    const listed = (await simInject(env.app, '/_sim/clients')).json() as { clients: Array<Record<string, string>> };
    expect(listed.clients.map((c) => c.client_id)).toEqual(expect.arrayContaining([client.client_id, other.client_id]));
    expect(JSON.stringify(listed)).not.toContain(other.client_secret);
    expect(listed.clients.every((c) => !('client_secret' in c))).toBe(true);
    const ok = await env.app.inject({ method: 'GET', url: `/v1/subscriptions.json?client_id=${other.client_id}&client_secret=${other.client_secret}` });
    expect(ok.statusCode).toBe(200);
    expect((await simInject(env.app, { method: 'DELETE', url: `/_sim/clients/${other.client_id}` })).statusCode).toBe(200);
    const after = await env.app.inject({ method: 'GET', url: `/v1/subscriptions.json?client_id=${other.client_id}&client_secret=${other.client_secret}` });
    expect([after.statusCode, errorType(after)]).toEqual([400, 'OAuthClientException']);
    expect((await simInject(env.app, { method: 'DELETE', url: `/_sim/clients/${other.client_id}` })).statusCode).toBe(404);
  });

  it('registering a client needs the admin token', async () => {
    const res = await env.app.inject({ method: 'POST', url: '/_sim/clients', payload: { name: 'x' } });
    expect(res.statusCode).toBe(401);
  });
});

describe('verification and notifications', () => {
  it('POST verifies the callback with hub.mode, hub.challenge and hub.verify_token, and answers the v1 subscription object', async () => {
    const before = cb.received.length;
    const res = await subscribe(env, client, { object: 'tag', object_id: 'sunset', callback_url: cb.url });
    expect(res.statusCode, res.body).toBe(200);
    const data = (res.json() as { data: Record<string, unknown> }).data;
    expect(data).toMatchObject({ type: 'subscription', object: 'tag', object_id: 'sunset', aspect: 'media', callback_url: cb.url });
    const verification = cb.received.slice(before);
    expect(verification).toHaveLength(1);
    expect(verification[0]!.method).toBe('GET');
    const q = new URL(verification[0]!.url, 'http://x').searchParams;
    expect(q.get('hub.mode')).toBe('subscribe');
    expect(q.get('hub.verify_token')).toBe('my-verify-token');
    expect(q.get('hub.challenge')!.length).toBeGreaterThanOrEqual(20);
  });

  it('a callback that does not echo the challenge is refused with APISubscriptionError, and nothing is stored', async () => {
    cb.echo = false;
    try {
      const res = await subscribe(env, client, { object: 'tag', object_id: 'neverstored', callback_url: cb.url });
      expect([res.statusCode, errorType(res)]).toEqual([400, 'APISubscriptionError']);
    } finally {
      cb.echo = true;
    }
    const list = await env.app.inject({ method: 'GET', url: `/v1/subscriptions.json?client_id=${client.client_id}&client_secret=${client.client_secret}&sig=a&sig=b` });
    expect(((list.json() as { data: Array<{ object_id: string }> }).data).map((s) => s.object_id)).not.toContain('neverstored');
  });

  it('a public post with the tag is POSTed to the callback as the v1 update array, signed with X-Hub-Signature (HMAC-SHA1 of the body with the client secret)', async () => {
    const before = cb.posts().length;
    const media = await upload(env.app, alice, { caption: 'Evening #sunset' });
    const posts = await cb.waitForPosts(before + 1);
    const post = posts[before]!;
    expect(post.headers['content-type']).toBe('application/json');
    expect(post.headers['x-hub-signature']).toBe(hmacSha1(client.client_secret, post.body));
    expect(post.headers['x-hub-signature']).not.toBe(hmacSha1(client.client_secret + 'x', post.body));
    const updates = JSON.parse(post.body) as Array<Record<string, unknown>>;
    expect(updates).toHaveLength(1);
    expect(updates[0]).toMatchObject({ changed_aspect: 'media', object: 'tag', object_id: 'sunset', data: { media_id: media.id } });
    expect(typeof updates[0]!.time).toBe('number');
    expect(typeof updates[0]!.subscription_id).toBe('string');
    // The callback has the POST before the notifier has its answer and counts it as sent.
    await vi.waitFor(() => expect(counter(env, 'realtime_notifications', { result: 'sent' })).toBeGreaterThanOrEqual(1), { timeout: 10_000 });
  });

  it("a private account's post with the tag is not sent (tags are public streams)", async () => {
    const hidden = await signup(env.app, 'rt_private', { isPrivate: true });
    const before = cb.posts().length;
    await upload(env.app, hidden, { caption: 'secret #sunset' });
    await env.topology.idle();
    await env.topology.subscriptions.settled();
    expect(cb.posts().length).toBe(before);
  });

  it('a user subscription follows users who authorized the client through /oauth/access_token, and no one else', async () => {
    const res = await subscribe(env, client, { object: 'user', callback_url: cb.url });
    expect(res.statusCode, res.body).toBe(200);
    expect((res.json() as { data: { object_id: unknown } }).data.object_id).toBeNull();
    const bob = await signup(env.app, 'rt_bob');
    // bob authorizes the client (the python client's exchange sends client_id and client_secret)
    const token = await env.app.inject({
      method: 'POST',
      url: '/oauth/access_token',
      payload: new URLSearchParams({ client_id: client.client_id, client_secret: client.client_secret, redirect_uri: 'None', grant_type: 'password', username: 'rt_bob', password: 'secret123' }).toString(),
    });
    expect(token.statusCode, token.body).toBe(200);
    const before = cb.posts().length;
    const carol = await signup(env.app, 'rt_carol');
    await upload(env.app, carol, { caption: 'carol never authorized' });
    const m = await upload(env.app, bob, { caption: 'bob did' });
    const posts = await cb.waitForPosts(before + 1);
    await env.topology.subscriptions.settled();
    expect(cb.posts().length).toBe(before + 1);
    const updates = JSON.parse(posts[before]!.body) as Array<Record<string, unknown>>;
    expect(updates).toEqual([expect.objectContaining({ object: 'user', object_id: bob.id, data: { media_id: m.id } })]);
    // Wrong client credentials at the token endpoint are refused, not ignored.
    const bad = await env.app.inject({ method: 'POST', url: '/oauth/access_token', payload: { client_id: client.client_id, client_secret: 'nope', grant_type: 'password', username: 'rt_bob', password: 'secret123' } });
    expect([bad.statusCode, errorType(bad)]).toEqual([400, 'OAuthClientException']);
  });

  it('a failing callback is retried with backoff until it answers 2xx (sent 1, failed 2, retried 2)', async () => {
    const c2 = await registerClient(env, 'retry');
    const res = await subscribe(env, c2, { object: 'tag', object_id: 'retrytag', callback_url: cb.url + '?who=retry' });
    expect(res.statusCode, res.body).toBe(200);
    const base = { sent: counter(env, 'realtime_notifications', { result: 'sent' }), failed: counter(env, 'realtime_notifications', { result: 'failed' }), retried: counter(env, 'realtime_notifications', { result: 'retried' }) };
    const before = cb.posts().length;
    cb.failNext(2, 503);
    const t0 = performance.now();
    await upload(env.app, alice, { caption: '#retrytag' });
    await env.topology.idle();
    await env.topology.subscriptions.settled();
    const elapsed = performance.now() - t0;
    const posts = cb.posts().slice(before);
    expect(posts).toHaveLength(3);
    // The same signed body each time.
    expect(new Set(posts.map((p) => p.body)).size).toBe(1);
    expect(posts.every((p) => p.headers['x-hub-signature'] === hmacSha1(c2.client_secret, p.body))).toBe(true);
    expect(counter(env, 'realtime_notifications', { result: 'sent' }) - base.sent).toBe(1);
    expect(counter(env, 'realtime_notifications', { result: 'failed' }) - base.failed).toBe(2);
    expect(counter(env, 'realtime_notifications', { result: 'retried' }) - base.retried).toBe(2);
    // Backoff: 0.5 s then 2 s before the third try (a lower bound only; a busy machine is slower).
    expect(elapsed).toBeGreaterThanOrEqual(RETRY_BACKOFF_MS * 5 - 50);
  });

  it('GET lists the subscriptions, DELETE by id removes one (404 for an unknown id) and object=all the rest', async () => {
    const auth = `client_id=${client.client_id}&client_secret=${client.client_secret}`;
    const list = async () => ((await env.app.inject({ method: 'GET', url: `/v1/subscriptions.json?${auth}&sig=s1&sig=s2` })).json() as { data: Array<{ id: string; object: string }> }).data;
    const all = await list();
    expect(all.map((s) => s.object).sort()).toEqual(['tag', 'user']);
    const del = await env.app.inject({ method: 'DELETE', url: `/v1/subscriptions.json?${auth}&sig=s1&id=${all[0]!.id}&sig=s2` });
    expect(del.statusCode, del.body).toBe(200);
    expect((await list()).map((s) => s.id)).toEqual([all[1]!.id]);
    const again = await env.app.inject({ method: 'DELETE', url: `/v1/subscriptions.json?${auth}&id=${all[0]!.id}` });
    expect(again.statusCode).toBe(404);
    expect((await env.app.inject({ method: 'DELETE', url: `/v1/subscriptions.json?${auth}&object=all` })).statusCode).toBe(200);
    expect(await list()).toEqual([]);
  });
});

describe('geographies', () => {
  it('a geography subscription has the geo-id as id and object_id; its recent media are those inside the circle, newest first, by client_id or access token', async () => {
    const res = await subscribe(env, client, { object: 'geography', lat: '48.8584', lng: '2.2945', radius: '1000', callback_url: cb.url });
    expect(res.statusCode, res.body).toBe(200);
    const geo = (res.json() as { data: { id: string; object_id: string; lat: number; radius: number } }).data;
    expect(geo.object_id).toBe(geo.id);
    expect([geo.lat, geo.radius]).toEqual([48.8584, 1000]);
    const before = cb.posts().length;
    const near1 = await upload(env.app, alice, { lat: 48.858, lng: 2.295, locationName: 'Tour Eiffel' });
    const near2 = await upload(env.app, alice, { lat: 48.86, lng: 2.293, locationName: 'Trocadéro' });
    await upload(env.app, alice, { lat: 48.8867, lng: 2.3431, locationName: 'Sacré-Cœur' }); // 4.5 km away
    await env.topology.idle();
    const posts = await cb.waitForPosts(before + 2);
    expect(posts.slice(before).map((p) => (JSON.parse(p.body) as Array<{ object: string; object_id: string }>)[0])).toEqual([
      expect.objectContaining({ object: 'geography', object_id: geo.id }),
      expect.objectContaining({ object: 'geography', object_id: geo.id }),
    ]);
    const byClient = await env.app.inject({ method: 'GET', url: `/v1/geographies/${geo.id}/media/recent.json?client_id=${client.client_id}&sig=x` });
    expect(byClient.statusCode, byClient.body).toBe(200);
    expect(((byClient.json() as { data: Array<{ id: string }> }).data).map((m) => m.id)).toEqual([near2.id, near1.id]);
    const page1 = await get(env.app, `/v1/geographies/${geo.id}/media/recent.json?count=1`, alice);
    expect((page1.body.data as Array<{ id: string }>).map((m) => m.id)).toEqual([near2.id]);
    expect(page1.body.pagination?.next_max_id).toBe(near2.id);
    const page2 = await get(env.app, `/v1/geographies/${geo.id}/media/recent.json?count=1&max_id=${near2.id}`, alice);
    expect((page2.body.data as Array<{ id: string }>).map((m) => m.id)).toEqual([near1.id]);
    expect(page2.body.pagination).toEqual({});
    // Another client cannot read it; an unknown geography is 404.
    const other = await registerClient(env, 'other');
    expect((await env.app.inject({ method: 'GET', url: `/v1/geographies/${geo.id}/media/recent?client_id=${other.client_id}` })).statusCode).toBe(404);
    expect((await get(env.app, '/v1/geographies/123456/media/recent', alice)).status).toBe(404);
    expect((await env.app.inject({ method: 'GET', url: `/v1/geographies/${geo.id}/media/recent` })).statusCode).toBe(401);
  });
});

describe('the callback allowlist', () => {
  it('by default a callback at a non-loopback address is refused before any connection (APISubscriptionError, counted as refused)', async () => {
    const refused = counter(env, 'realtime_verifications', { result: 'refused' });
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): refused by the policy, never connected to.
    const res = await subscribe(env, client, { object: 'tag', object_id: 'outside', callback_url: 'http://192.0.2.1:8080/hook' });
    expect([res.statusCode, errorType(res)]).toEqual([400, 'APISubscriptionError']);
    expect(counter(env, 'realtime_verifications', { result: 'refused' }) - refused).toBe(1);
  });

  it('a name is checked on the address it resolves to, and the connection goes to that address (no DNS rebinding)', async () => {
    const loopback = CallbackPolicy.loopbackOnly();
    const elsewhere = await callCallback({ method: 'GET', url: 'http://rebind.example:80/x', timeoutMs: 1000, policy: loopback, resolve: async () => ['192.0.2.7'] });
    expect(elsewhere).toMatchObject({ ok: false, reason: 'refused' });
    const mapped = await callCallback({ method: 'GET', url: 'http://[::ffff:192.0.2.7]:80/x', timeoutMs: 1000, policy: loopback });
    expect(mapped).toMatchObject({ ok: false, reason: 'refused' });
    // A made-up name that "resolves" to loopback reaches the loopback server it was checked against.
    const port = new URL(cb.url).port;
    const here = await callCallback({ method: 'GET', url: `http://rebind.example:${port}/callback?hub.challenge=abc`, timeoutMs: 5000, policy: loopback, resolve: async () => ['192.0.2.7', '127.0.0.1'] });
    expect(here).toEqual({ ok: true, status: 200, body: 'abc' });
  });

  it('a redirect is an answer, never followed', async () => {
    const { createServer } = await import('node:http');
    let hits = 0;
    const server = createServer((_req, res) => {
      hits++;
      res.writeHead(302, { location: 'http://192.0.2.9/' }).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const r = await callCallback({ method: 'POST', url: `http://127.0.0.1:${port}/`, body: '[]', timeoutMs: 5000, policy: CallbackPolicy.loopbackOnly() });
    await new Promise<void>((res) => server.close(() => res()));
    expect(r).toMatchObject({ ok: true, status: 302 });
    expect(hits).toBe(1);
  });

  it('buildApp callbackAllow replaces the default: with only 10.0.0.0/8 allowed, a loopback callback is refused', async () => {
    const narrow = await makeEnv({ callbackAllow: ['10.0.0.0/8'] });
    try {
      const c = await registerClient(narrow);
      const before = cb.received.length;
      const res = await subscribe(narrow, c, { object: 'tag', object_id: 'x', callback_url: cb.url });
      expect([res.statusCode, errorType(res)]).toEqual([400, 'APISubscriptionError']);
      expect(cb.received.length).toBe(before);
      await expect(CallbackPolicy.from(['10.0.0.0/33'])).rejects.toMatchObject({ code: 'SG_ERR_CONFIG_INVALID' });
      expect((await CallbackPolicy.from(['10.1.0.0/16', 'localhost'])).allows('127.0.0.1')).toBe(true);
      expect((await CallbackPolicy.from(['10.1.0.0/16'])).allows('10.1.200.3')).toBe(true);
      expect((await CallbackPolicy.from(['10.1.0.0/16'])).allows('10.2.0.1')).toBe(false);
    } finally {
      await narrow.close();
    }
  });
});

describe('the retry budget', () => {
  it('a callback that keeps failing is tried 4 times (0.5 s, 2 s, 8 s apart on the topology clock), then dropped and counted', async () => {
    const start = Date.now();
    const clock = new VirtualClock(start);
    const venv = await makeEnv({ clock });
    const server = await startCallbackServer();
    try {
      const c = await registerClient(venv, 'always-failing');
      expect((await subscribe(venv, c, { object: 'tag', object_id: 'doomed', callback_url: server.url })).statusCode).toBe(200);
      server.failNext(100, 500);
      const owner = await signup(venv.app, 'rt_doomed');
      await upload(venv.app, owner, { caption: '#doomed' });
      const m = (result: string) => venv.topology.metrics.sum('realtime_notifications', { result });
      for (let attempt = 1; attempt <= 4; attempt++) {
        await server.waitForPosts(attempt);
        await venv.topology.idle();
        expect(m('failed')).toBe(attempt);
        if (attempt < 4) {
          // Not a moment before its backoff: the next try waits on the clock.
          await clock.advance(RETRY_BACKOFF_MS * 4 ** (attempt - 1) - 1);
          expect(server.posts()).toHaveLength(attempt);
          await clock.advance(1);
        }
      }
      await venv.topology.subscriptions.settled();
      expect({ sent: m('sent'), failed: m('failed'), retried: m('retried'), dropped: m('dropped') }).toEqual({ sent: 0, failed: 4, retried: 3, dropped: 1 });
    } finally {
      await venv.close();
      await server.close();
    }
  });
});

describe('durability and documentation', () => {
  it('clients and subscriptions survive a restart on the same data dir, and posts after it are still delivered', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-realtime-'));
    const config = loadTopology('2012-sharded', SMALL_TOPOLOGY);
    try {
      const first = await buildTopology({ config, seed: 1, dataDir: dir, sampleEveryMs: 0 });
      const { client: c, secret } = await first.clients.register('durable');
      const sub = await first.subscriptions.create(c.clientId, { object: 'tag', objectId: 'kept', aspect: 'media', callbackUrl: cb.url, verifyToken: '', lat: null, lng: null, radiusM: null });
      await first.close();
      const second = await buildTopology({ config, seed: 1, dataDir: dir, sampleEveryMs: 0 });
      try {
        expect(await second.clients.authenticate(c.clientId, secret)).toMatchObject({ clientId: c.clientId, name: 'durable' });
        expect(await second.clients.authenticate(c.clientId, secret + 'x')).toBeNull();
        expect((await second.subscriptions.list(c.clientId)).map((s) => s.id)).toEqual([sub.id]);
        const before = cb.posts().length;
        const { user } = await second.store.createUser({ username: 'durable_poster', password: 'secret123', fullName: '', isPrivate: false });
        const m = await second.store.createMedia({ userId: user.id, caption: '#kept', filter: 'Normal', lat: null, lng: null, locationName: null, image: await image() });
        const posts = await cb.waitForPosts(before + 1);
        expect(JSON.parse(posts[before]!.body)).toEqual([expect.objectContaining({ object: 'tag', object_id: 'kept', subscription_id: sub.id, data: { media_id: m.id } })]);
        expect(posts[before]!.headers['x-hub-signature']).toBe(hmacSha1(secret, posts[before]!.body));
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the OpenAPI document describes the subscription, geography and client routes', async () => {
    const doc = (await env.app.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/v1/subscriptions'] ?? {}).sort()).toEqual(['delete', 'get', 'post']);
    expect(Object.keys(doc.paths['/v1/geographies/{id}/media/recent'] ?? {})).toEqual(['get']);
    expect(Object.keys(doc.paths['/_sim/clients'] ?? {}).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/_sim/clients/{id}'] ?? {})).toEqual(['delete']);
    const search = doc.paths['/v1/locations/search']!.get as { parameters: Array<{ name: string }> };
    expect(search.parameters.map((p) => p.name)).toEqual(expect.arrayContaining(['foursquare_id', 'foursquare_v2_id']));
  });
});
