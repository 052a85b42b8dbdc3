import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../sim/engine/clock.ts';
import { get, makeEnv, simInject, pathOf, relate, signup, upload, uploadRequest, image, type Account, type TestEnv, type V1MediaLike } from './helpers/app.ts';

let env: TestEnv;
let me: Account;
let you: Account;
let photo: V1MediaLike;
let commentId: string;

beforeAll(async () => {
  env = await makeEnv();
  me = await signup(env.app, 'ops_me');
  you = await signup(env.app, 'ops_you');
  await relate(env.app, me, you.id, 'follow');
  photo = await upload(env.app, you, { caption: 'ops #opstag', lat: 10, lng: 20, locationName: 'Ops Place' });
  commentId = (await env.app.inject({ method: 'POST', url: `/v1/media/${photo.id}/comments?access_token=${you.token}`, payload: { text: 'hi' } })).json().data.id;
  await env.topology.idle();
});
afterAll(async () => {
  await env.close();
});

describe('ops endpoints', () => {
  it('serves a real favicon, cached, with 304 on revalidation', async () => {
    const res = await env.app.inject('/favicon.ico');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('image/x-icon');
    expect(res.headers['cache-control']).toMatch(/max-age=\d+/);
    const ico = res.rawPayload;
    expect(ico.readUInt16LE(0)).toBe(0);
    expect(ico.readUInt16LE(2)).toBe(1);
    expect(ico.readUInt16LE(4)).toBe(1);
    expect(ico.subarray(22, 26).toString('binary')).toBe('\x89PNG');
    expect(ico.readUInt32LE(14)).toBe(ico.length - 22);
    const again = await env.app.inject({ url: '/favicon.ico', headers: { 'if-none-match': res.headers.etag as string } });
    expect(again.statusCode).toBe(304);
  });

  it('GET /healthz answers ok with an uptime', async () => {
    const res = await env.app.inject('/healthz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ok', uptime_s: expect.any(Number), topology: '2012-sharded', seed: 1 });
  });

  it('GET /metrics is Prometheus text 0.0.4 with HTTP metrics labelled by route pattern', async () => {
    await env.app.inject(`/v1/users/${you.id}?access_token=${me.token}`);
    await env.app.inject('/no/such/route/12345');
    await env.app.inject('/v1/users/%E0%A4%A');
    const res = await env.app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const lines = res.body.split('\n').filter((l) => l !== '');
    const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?\})? -?(\d+(\.\d+)?([eE][-+]?\d+)?|NaN|\+Inf|-Inf)$/;
    for (const line of lines) {
      if (line.startsWith('#')) expect(line).toMatch(/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/);
      else expect(line, line).toMatch(sample);
    }
    expect(res.body).toMatch(/scalegram_http_requests_total\{method="GET",route="\/v1\/users\/:id",status="200"\} [1-9]/);
    expect(res.body).toMatch(/scalegram_http_requests_total\{method="GET",route="unmatched",status="404"\} [1-9]/);
    expect(res.body).toMatch(/scalegram_http_requests_total\{method="GET",route="unmatched",status="400"\} [1-9]/);
    expect(res.body).not.toContain(you.id); // raw URLs never become labels
    expect(res.body).toMatch(/scalegram_http_req_duration_seconds\{quantile="0.5",route="\/v1\/users\/:id"\}/);
  });

  it('GET /_sim/topology and /_sim/metrics answer JSON with the admin token', async () => {
    const topo = await simInject(env.app, '/_sim/topology');
    expect(topo.statusCode).toBe(200);
    expect(topo.json()).toMatchObject({ name: '2012-sharded', seed: 1 });
    const metrics = await simInject(env.app, '/_sim/metrics');
    const snap = metrics.json();
    expect(snap).toMatchObject({ counters: expect.any(Array), gauges: expect.any(Array), histograms: expect.any(Array) });
    expect(snap.counters.some((c: { name: string; labels: { route?: string } }) => c.name === 'http_requests' && c.labels.route === '/v1/users/:id')).toBe(true);
    expect(snap.histograms.some((h: { name: string }) => h.name === 'http_req_duration_ms')).toBe(true);
  });
});

describe('OpenAPI', () => {
  it('/docs/json is OpenAPI 3 listing the /v1 paths with their parameters', async () => {
    const res = await env.app.inject('/docs/json');
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toBeTruthy();
    const paths = Object.keys(doc.paths);
    for (const p of [
      '/v1/accounts',
      '/oauth/access_token',
      '/v1/users/{id}',
      '/v1/users/search',
      '/v1/users/{id}/media/recent',
      '/v1/users/self/feed',
      '/v1/users/self/media/liked',
      '/v1/users/self/requested-by',
      '/v1/users/self/activity',
      '/v1/users/{id}/follows',
      '/v1/users/{id}/followed-by',
      '/v1/users/{id}/relationship',
      '/v1/media',
      '/v1/media/{id}',
      '/v1/media/shortcode/{code}',
      '/v1/media/search',
      '/v1/media/popular',
      '/v1/media/{id}/likes',
      '/v1/media/{id}/comments',
      '/v1/media/{id}/comments/{cid}',
      '/v1/tags/{name}',
      '/v1/tags/{name}/media/recent',
      '/v1/tags/search',
      '/v1/locations/{id}',
      '/v1/locations/{id}/media/recent',
      '/v1/locations/search',
      '/healthz',
      '/metrics',
      '/_sim/topology',
      '/_sim/metrics',
    ]) {
      expect(paths, p).toContain(p);
    }
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, { responses?: object; parameters?: Array<{ name: string; in: string }>; security?: unknown }>>)) {
      for (const op of Object.values(item)) {
        expect(op.responses, path).toBeDefined();
        if (path.startsWith('/v1/') && path !== '/v1/accounts') expect(op.security, path).toBeDefined();
      }
    }
    const feed = doc.paths['/v1/users/self/feed'].get;
    expect(feed.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['count', 'max_id']));
    expect(doc.components.securitySchemes.accessToken).toMatchObject({ type: 'apiKey', in: 'query', name: 'access_token' });
    expect(doc.paths['/v1/media'].post.requestBody.content['multipart/form-data']).toBeDefined();
  });

  it('/docs serves Swagger UI from the package', async () => {
    const res = await env.app.inject('/docs/');
    expect([200, 302]).toContain(res.statusCode);
    const page = res.statusCode === 302 ? await env.app.inject(res.headers.location as string) : res;
    expect(page.body).toMatch(/swagger/i);
    const asset = await env.app.inject('/docs/static/swagger-ui-bundle.js');
    expect(asset.statusCode).toBe(200);
  });
});

describe('the .json suffix', () => {
  it('works on every GET route and answers exactly what the plain path answers', async () => {
    const t = `access_token=${me.token}`;
    const code = new URL(photo.link).pathname.split('/')[2];
    const urls = [
      '/v1/users/self',
      `/v1/users/${you.id}`,
      '/v1/users/search?q=ops',
      `/v1/users/${you.id}/media/recent`,
      '/v1/users/self/feed',
      '/v1/users/self/media/liked',
      '/v1/users/self/requested-by',
      '/v1/users/self/activity',
      `/v1/users/${you.id}/follows`,
      `/v1/users/${you.id}/followed-by`,
      `/v1/users/${you.id}/relationship`,
      `/v1/media/${photo.id}`,
      `/v1/media/shortcode/${code}`,
      '/v1/media/search?lat=10&lng=20',
      '/v1/media/popular',
      `/v1/media/${photo.id}/likes`,
      `/v1/media/${photo.id}/comments`,
      '/v1/tags/opstag',
      '/v1/tags/opstag/media/recent',
      '/v1/tags/search?q=ops',
      `/v1/locations/${photo.location!.id}`,
      `/v1/locations/${photo.location!.id}/media/recent`,
      '/v1/locations/search?lat=10&lng=20',
      '/healthz',
      '/_sim/topology',
    ];
    for (const url of urls) {
      const [path, query] = url.split('?');
      const q = query ? `?${query}&${t}` : `?${t}`;
      const inject = (u: string) => (url.startsWith('/_sim') ? simInject(env.app, u) : env.app.inject(u));
      const plain = await inject(`${path}${q}`);
      const suffixed = await inject(`${path}.json${q}`);
      expect(plain.statusCode, url).toBe(200);
      expect(suffixed.statusCode, `${url}.json`).toBe(200);
      if (!url.startsWith('/healthz') && !url.startsWith('/_sim')) expect(suffixed.json(), url).toEqual(plain.json());
    }
  });

  it('works on POST and DELETE routes, and without a query string', async () => {
    const acct = await env.app.inject({ method: 'POST', url: '/v1/accounts.json', payload: { username: 'suffix_user', password: 'secret123' } });
    expect(acct.statusCode).toBe(200);
    const tok = await env.app.inject({ method: 'POST', url: '/oauth/access_token.json', payload: 'grant_type=password&username=suffix_user&password=secret123' });
    expect(tok.statusCode).toBe(200);
    const req = uploadRequest(me.token, {}, await image());
    const up = await env.app.inject({ ...req, url: req.url.replace('/v1/media?', '/v1/media.json?') });
    expect(up.statusCode).toBe(200);
    const id = up.json().data.id;
    expect((await env.app.inject({ method: 'POST', url: `/v1/media/${id}/likes.json?access_token=${you.token}` })).statusCode).toBe(200);
    expect((await env.app.inject({ method: 'DELETE', url: `/v1/media/${id}/likes.json?access_token=${you.token}` })).statusCode).toBe(200);
    const c = await env.app.inject({ method: 'POST', url: `/v1/media/${id}/comments.json?access_token=${you.token}`, payload: { text: 'x' } });
    expect(c.statusCode).toBe(200);
    expect((await env.app.inject({ method: 'DELETE', url: `/v1/media/${id}/comments/${c.json().data.id}.json?access_token=${you.token}` })).statusCode).toBe(200);
    expect((await env.app.inject({ method: 'POST', url: `/v1/users/${you.id}/relationship.json?access_token=${me.token}`, payload: { action: 'unfollow' } })).statusCode).toBe(200);
    expect((await env.app.inject({ method: 'DELETE', url: `/v1/media/${id}.json?access_token=${me.token}` })).statusCode).toBe(200);
    expect((await env.app.inject({ method: 'DELETE', url: `/v1/media/${photo.id}/comments/${commentId}.json?access_token=${me.token}` })).statusCode).toBe(403);
    expect((await env.app.inject('/v1/users/self.json')).statusCode).toBe(401);
    expect((await env.app.inject('/docs/json')).statusCode).toBe(200);
    expect((await env.app.inject(pathOf(photo.images.thumbnail!.url))).statusCode).toBe(200);
  });
});

describe('rate limits', () => {
  let limited: TestEnv;
  let clock: VirtualClock;
  let a: Account;
  let b: Account;
  beforeAll(async () => {
    clock = new VirtualClock(1_700_000_000_000);
    limited = await makeEnv({ rateLimitPerHour: 3, clock });
    a = await signup(limited.app, 'rl_a');
    b = await signup(limited.app, 'rl_b');
  });
  afterAll(async () => {
    await limited.close();
  });
  const call = (who: Account | null, url = '/v1/users/self', remoteAddress = '10.0.0.1') =>
    limited.app.inject({ url: who ? `${url}?access_token=${who.token}` : url, remoteAddress });

  it('counts per user in a fixed hourly window, then answers OAuthRateLimitException (429)', async () => {
    // Start at the top of an hour: the window is fixed.
    await clock.advance(3_600_000 - (clock.nowMs() % 3_600_000));
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await call(a);
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-ratelimit-limit']).toBe('3');
      remaining.push(res.headers['x-ratelimit-remaining'] as string);
    }
    expect(remaining).toEqual(['2', '1', '0']);
    const over = await call(a);
    expect(over.statusCode).toBe(429);
    expect(over.json()).toEqual({ meta: { code: 429, error_type: 'OAuthRateLimitException', error_message: expect.any(String) } });
    expect(over.headers['x-ratelimit-limit']).toBe('3');
    expect(over.headers['x-ratelimit-remaining']).toBe('0');
    expect((await call(a, '/v1/no/such/route')).statusCode).toBe(429);
    // Health, metrics and image bytes carry the headers but are neither counted nor refused.
    const health = await call(a, '/healthz');
    expect(health.statusCode).toBe(200);
    expect(health.headers['x-ratelimit-remaining']).toBe('0');
    expect((await call(b)).statusCode).toBe(200); // another token has its own budget
    await clock.advance(3_600_000);
    const fresh = await call(a);
    expect(fresh.statusCode).toBe(200);
    expect(fresh.headers['x-ratelimit-remaining']).toBe('2');
  });

  it('counts anonymous API requests per client IP, errors and 404s included', async () => {
    await clock.advance(3_600_000);
    const r1 = await call(null, '/v1/users/self', '10.9.9.9');
    expect(r1.statusCode).toBe(401);
    expect(r1.headers['x-ratelimit-remaining']).toBe('2');
    const r2 = await call(null, '/v1/nope', '10.9.9.9');
    expect(r2.statusCode).toBe(404);
    expect(r2.headers['x-ratelimit-remaining']).toBe('1');
    const r3 = await limited.app.inject({ url: '/v1/users/%E0%A4%A', remoteAddress: '10.9.9.9' });
    expect(r3.statusCode).toBe(400);
    expect(r3.headers['x-ratelimit-remaining']).toBe('0');
    expect((await call(null, '/v1/users/self', '10.9.9.9')).statusCode).toBe(429);
    expect((await call(null, '/healthz', '10.9.9.9')).statusCode).toBe(200);
    expect((await call(null, '/v1/users/self', '10.9.9.10')).statusCode).toBe(401);
  });

  it('every token of one user draws on the same budget: logging in again buys no requests', async () => {
    await clock.advance(3_600_000 - (clock.nowMs() % 3_600_000));
    const login = await limited.app.inject({ method: 'POST', url: '/oauth/access_token', payload: { grant_type: 'password', username: 'rl_a', password: 'secret123' }, remoteAddress: '10.0.0.2' });
    expect(login.statusCode).toBe(200);
    const second: Account = { ...a, token: (login.json() as { access_token: string }).access_token };
    expect(second.token).not.toBe(a.token);
    expect((await call(a)).headers['x-ratelimit-remaining']).toBe('2');
    expect((await call(second)).headers['x-ratelimit-remaining']).toBe('1');
    expect((await call(a)).headers['x-ratelimit-remaining']).toBe('0');
    expect((await call(second)).statusCode).toBe(429);
    expect((await call(b)).statusCode).toBe(200);
  });

  it('tokens that name no session draw on the client address: guessing tokens is throttled', async () => {
    await clock.advance(3_600_000);
    const guess = (n: number) => limited.app.inject({ url: `/v1/users/self?access_token=${a.id}.${n.toString(16).padStart(32, '0')}`, remoteAddress: '10.7.7.7' });
    const statuses: number[] = [];
    for (let n = 0; n < 5; n++) statuses.push((await guess(n)).statusCode);
    expect(statuses).toEqual([400, 400, 400, 429, 429]);
    // The user whose id the guesses carried keeps their own budget, from that address too.
    expect((await call(a, '/v1/users/self', '10.7.7.7')).statusCode).toBe(200);
  });

  it('sends the headers on every response when unlimited', async () => {
    for (const url of ['/healthz', '/nope', '/favicon.ico', '/v1/users/self', `/v1/users/self?access_token=${me.token}`, '/metrics', '/docs/json', pathOf(photo.images.thumbnail!.url)]) {
      const res = await env.app.inject(url);
      expect(res.headers['x-ratelimit-limit'], url).toBe('2147483647');
      expect(res.headers['x-ratelimit-remaining'], url).toBe('2147483647');
    }
  });
});

describe('user-facing details', () => {
  it('a trailing slash is accepted', async () => {
    expect((await get(env.app, '/v1/users/self/', me)).status).toBe(200);
  });

  it('uploads show up in the feed of a follower and in geo search once the queue is idle', async () => {
    await relate(env.app, me, you.id, 'follow');
    const m = await upload(env.app, you, { caption: 'later', lat: 10.0001, lng: 20.0001, locationName: 'Ops Place' });
    await env.topology.idle();
    expect(((await get(env.app, '/v1/users/self/feed?count=1', me)).body.data as Array<{ id: string }>)[0]!.id).toBe(m.id);
    expect(((await get(env.app, '/v1/media/search?lat=10&lng=20', me)).body.data as Array<{ id: string }>).map((x) => x.id)).toContain(m.id);
  });
});
