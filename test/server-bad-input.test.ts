// Every kind of bad request, table-driven: each must be answered with the v1 envelope, meta.code
// equal to the HTTP status, the expected error_type, and never a 5xx.

import type { InjectOptions } from 'fastify';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { image, makeEnv, multipart, relate, signup, upload, uploadRequest, type Account, type TestEnv, type V1MediaLike } from './helpers/app.ts';

let env: TestEnv;
let me: Account;
let you: Account;
let photo: V1MediaLike;
let commentId: string;

const SQL = ["' OR 1=1 --", '"; DROP TABLE users; --', "1; DELETE FROM media WHERE '1'='1", "admin'/*", '%', '_', '\\', '\u0000', '😀'];
const BAD_COUNTS = ['-1', '0', 'abc', '1000000000', '1.5', '', '1e3', '1e400', 'Infinity', 'NaN', '-0.5'];
const BAD_IDS = ['abc', '-1', '99999999999999999999999', '9223372036854775808', '1.0', '0x1f', ' 1', "1'--"];

type Case = { name: string; req: InjectOptions; type: string | null | Array<string | null> };

beforeAll(async () => {
  env = await makeEnv();
  me = await signup(env.app, 'bad_me');
  you = await signup(env.app, 'bad_you');
  await relate(env.app, me, you.id, 'follow');
  photo = await upload(env.app, you, { caption: 'target #badtag', lat: 1, lng: 1, locationName: 'Somewhere' });
  commentId = (await env.app.inject({ method: 'POST', url: `/v1/media/${photo.id}/comments?access_token=${you.token}`, payload: { text: 'c' } })).json().data.id;
});
afterAll(async () => {
  await env.close();
});

function cases(): Case[] {
  const t = `access_token=${me.token}`;
  const INV = 'APIInvalidParametersError';
  const out: Case[] = [];
  const add = (name: string, req: InjectOptions, type: Case['type']) => out.push({ name, req, type });

  // Bodies that do not parse, or are the wrong shape or type.
  const json = { 'content-type': 'application/json' };
  add('malformed JSON', { method: 'POST', url: '/v1/accounts', headers: json, payload: '{"username": "x", ' }, INV);
  add('JSON with a trailing comma', { method: 'POST', url: `/v1/media/${photo.id}/comments?${t}`, headers: json, payload: '{"text": "x",}' }, INV);
  add('empty JSON body', { method: 'POST', url: '/v1/accounts', headers: json, payload: '' }, INV);
  for (const body of ['null', '[]', '"a string"', '123', 'true', '[{"username":"x"}]']) add(`JSON ${body}`, { method: 'POST', url: '/v1/accounts', headers: json, payload: body }, INV);
  add('__proto__ in JSON', { method: 'POST', url: '/v1/accounts', headers: json, payload: '{"username":"protouser","password":"secret123","__proto__":{"isAdmin":true}}' }, INV);
  add('constructor.prototype in JSON', { method: 'POST', url: '/v1/accounts', headers: json, payload: '{"username":"ctor","password":"secret123","constructor":{"prototype":{"x":1}}}' }, INV);
  add('JSON over the body limit', { method: 'POST', url: '/v1/accounts', headers: json, payload: JSON.stringify({ username: 'big', password: 'secret123', bio: 'x'.repeat(2 * 1024 * 1024) }) }, INV);
  add('a form over the body limit', { method: 'POST', url: '/oauth/access_token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=password&username=' + 'x'.repeat(2 * 1024 * 1024) }, INV);
  add('malformed form encoding', { method: 'POST', url: '/v1/accounts', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'username=%E0%A4%A&password=%%%' }, INV);
  add('text/plain', { method: 'POST', url: '/v1/accounts', headers: { 'content-type': 'text/plain' }, payload: 'username=x&password=secret123' }, INV);
  add('application/xml', { method: 'POST', url: `/v1/media/${photo.id}/comments?${t}`, headers: { 'content-type': 'application/xml' }, payload: '<text>hi</text>' }, INV);
  add('application/octet-stream upload', { method: 'POST', url: `/v1/media?${t}`, headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from([0xff, 0xd8, 0xff, 0xe0]) }, INV);
  add('an unparseable Content-Type', { method: 'POST', url: '/v1/accounts', headers: { 'content-type': ';;;/' }, payload: 'x' }, INV);
  add('multipart without a boundary to a JSON route', { method: 'POST', url: '/v1/accounts', headers: { 'content-type': 'multipart/form-data' }, payload: 'x' }, INV);
  add('multipart to the comments route', { method: 'POST', url: `/v1/media/${photo.id}/comments?${t}`, ...multipart({ text: 'hello' }) }, INV);
  add('an invalid Content-Length', { method: 'POST', url: '/v1/accounts', headers: { ...json, 'content-length': 'abc' }, payload: '{}' }, INV);

  // URLs.
  add('bad percent-encoding in a path param', { method: 'GET', url: `/v1/users/%E0%A4%A?${t}` }, INV);
  add('bad percent-encoding in a tag', { method: 'GET', url: `/v1/tags/%E0%A4%A/media/recent?${t}` }, INV);
  add('bad percent-encoding in the query', { method: 'GET', url: `/v1/users/search?q=%E0%A4%A&${t}` }, [null, INV]);
  add('a 600-character path param', { method: 'GET', url: `/v1/users/${'1'.repeat(600)}?${t}` }, INV);
  add('a NUL byte in a path param', { method: 'GET', url: `/v1/users/1%00?${t}` }, INV);
  add('an unknown route', { method: 'GET', url: `/v1/nothing/here?${t}` }, 'APINotFoundError');
  add('an unknown route without a token', { method: 'GET', url: '/v2/users/self' }, 'APINotFoundError');
  add('an unsupported method', { method: 'PUT', url: `/v1/users/self?${t}` }, 'APINotFoundError');
  add('PATCH on media', { method: 'PATCH', url: `/v1/media/${photo.id}?${t}`, payload: {} }, 'APINotFoundError');
  add('OPTIONS', { method: 'OPTIONS', url: '/v1/users/self' }, 'APINotFoundError');
  add('the root', { method: 'GET', url: '/' }, 'APINotFoundError');
  add('double slashes', { method: 'GET', url: `//v1//users//self?${t}` }, 'APINotFoundError');
  add('a path traversal', { method: 'GET', url: `/v1/../../etc/passwd?${t}` }, 'APINotFoundError');

  // Tokens.
  add('no token', { method: 'GET', url: '/v1/users/self/feed' }, 'APIRequiresAuthenticationError');
  add('no token on POST', { method: 'POST', url: `/v1/media/${photo.id}/likes` }, 'APIRequiresAuthenticationError');
  add('no token on DELETE', { method: 'DELETE', url: `/v1/media/${photo.id}` }, 'APIRequiresAuthenticationError');
  for (const tok of [...SQL, 'x'.repeat(1000), '1.2.3', '99999999999999999999999.abc']) {
    add(`token ${JSON.stringify(tok).slice(0, 20)}`, { method: 'GET', url: `/v1/users/self?access_token=${encodeURIComponent(tok)}` }, 'OAuthAccessTokenException');
  }
  add('a Bearer header with SQL', { method: 'GET', url: '/v1/users/self', headers: { authorization: "Bearer ' OR 1=1 --" } }, 'OAuthAccessTokenException');

  // Counts, ids and cursors on every list.
  const lists = [
    `/v1/users/${you.id}/media/recent`,
    '/v1/users/self/feed',
    '/v1/users/self/media/liked',
    '/v1/users/self/activity',
    `/v1/users/${you.id}/follows`,
    `/v1/users/${you.id}/followed-by`,
    '/v1/tags/badtag/media/recent',
    `/v1/locations/${photo.location!.id}/media/recent`,
    '/v1/media/popular',
    `/v1/media/${photo.id}/likes`,
    `/v1/media/${photo.id}/comments`,
  ];
  for (const url of lists) for (const c of BAD_COUNTS) add(`count=${c} on ${url}`, { method: 'GET', url: `${url}?count=${encodeURIComponent(c)}&${t}` }, INV);
  for (const url of lists.slice(0, 4)) for (const id of BAD_IDS) add(`max_id=${id} on ${url}`, { method: 'GET', url: `${url}?max_id=${encodeURIComponent(id)}&${t}` }, INV);
  for (const id of BAD_IDS) {
    add(`min_id=${id}`, { method: 'GET', url: `/v1/users/self/media/recent?min_id=${encodeURIComponent(id)}&${t}` }, INV);
    add(`cursor=${id}`, { method: 'GET', url: `/v1/users/self/follows?cursor=${encodeURIComponent(id)}&${t}` }, INV);
    add(`max_tag_id=${id}`, { method: 'GET', url: `/v1/tags/badtag/media/recent?max_tag_id=${encodeURIComponent(id)}&${t}` }, INV);
    add(`max_like_id=${id}`, { method: 'GET', url: `/v1/users/self/media/liked?max_like_id=${encodeURIComponent(id)}&${t}` }, INV);
    for (const path of ['/v1/users/%s', '/v1/users/%s/media/recent', '/v1/users/%s/follows', '/v1/users/%s/relationship', '/v1/media/%s', '/v1/media/%s/likes', '/v1/media/%s/comments', '/v1/locations/%s', '/v1/locations/%s/media/recent']) {
      add(`id ${id} in ${path}`, { method: 'GET', url: `${path.replace('%s', encodeURIComponent(id))}?${t}` }, INV);
    }
    add(`DELETE media ${id}`, { method: 'DELETE', url: `/v1/media/${encodeURIComponent(id)}?${t}` }, INV);
    add(`DELETE comment ${id}`, { method: 'DELETE', url: `/v1/media/${photo.id}/comments/${encodeURIComponent(id)}?${t}` }, INV);
    add(`POST like ${id}`, { method: 'POST', url: `/v1/media/${encodeURIComponent(id)}/likes?${t}` }, INV);
    add(`POST relationship ${id}`, { method: 'POST', url: `/v1/users/${encodeURIComponent(id)}/relationship?${t}`, payload: { action: 'follow' } }, INV);
  }
  for (const [q, v] of [['min_timestamp', '-1'], ['max_timestamp', 'abc'], ['max_timestamp', '1e400'], ['min_timestamp', '99999999999999']]) {
    add(`${q}=${v}`, { method: 'GET', url: `/v1/users/self/media/recent?${q}=${v}&${t}` }, INV);
  }
  add('repeated count', { method: 'GET', url: `/v1/users/self/feed?count=1&count=2&${t}` }, INV);
  for (const [lat, lng, d] of [['NaN', '0', '10'], ['Infinity', '0', '10'], ['0', '-Infinity', '10'], ['', '', ''], ['0', '0', '-5'], ['0', '0', '1e9'], ['1,2', '0', '10']]) {
    add(`media/search lat=${lat} lng=${lng} distance=${d}`, { method: 'GET', url: `/v1/media/search?lat=${lat}&lng=${lng}&distance=${d}&${t}` }, INV);
    add(`locations/search lat=${lat} lng=${lng} distance=${d}`, { method: 'GET', url: `/v1/locations/search?lat=${lat}&lng=${lng}&distance=${d}&${t}` }, INV);
  }
  add('media/search without lat', { method: 'GET', url: `/v1/media/search?lng=0&${t}` }, INV);
  add('locations/search without anything', { method: 'GET', url: `/v1/locations/search?${t}` }, INV);
  add('users/search without q', { method: 'GET', url: `/v1/users/search?${t}` }, INV);
  add('users/search with an empty q', { method: 'GET', url: `/v1/users/search?q=&${t}` }, INV);
  add('users/search with a 500-character q', { method: 'GET', url: `/v1/users/search?q=${'a'.repeat(500)}&${t}` }, INV);
  add('tags/search without q', { method: 'GET', url: `/v1/tags/search?${t}` }, INV);
  add('a shortcode too long', { method: 'GET', url: `/v1/media/shortcode/${'A'.repeat(40)}?${t}` }, INV);

  // SQL-looking strings in every string parameter. Searches may answer 200 (with nothing), others 400 or 404.
  for (const s of SQL) {
    const e = encodeURIComponent(s);
    add(`users/search q=${s}`, { method: 'GET', url: `/v1/users/search?q=${e}&${t}` }, [null, INV]);
    add(`tags/search q=${s}`, { method: 'GET', url: `/v1/tags/search?q=${e}&${t}` }, [null, INV]);
    add(`tag name ${s}`, { method: 'GET', url: `/v1/tags/${e}?${t}` }, [INV, 'APINotFoundError']);
    add(`tag media ${s}`, { method: 'GET', url: `/v1/tags/${e}/media/recent?${t}` }, [INV, null]);
    add(`shortcode ${s}`, { method: 'GET', url: `/v1/media/shortcode/${e}?${t}` }, [INV, 'APINotFoundError']);
    add(`user id ${s}`, { method: 'GET', url: `/v1/users/${e}?${t}` }, INV);
    add(`cdn key ${s}`, { method: 'GET', url: `/cdn/${e}` }, 'APINotFoundError');
    add(`action ${s}`, { method: 'POST', url: `/v1/users/${you.id}/relationship?${t}`, payload: { action: s } }, INV);
    add(`username ${s}`, { method: 'POST', url: '/v1/accounts', payload: { username: s, password: 'secret123' } }, /^[A-Za-z0-9._]+$/.test(s) ? null : INV);
    add(`oauth username ${s}`, { method: 'POST', url: '/oauth/access_token', payload: `grant_type=password&username=${e}&password=${e}` }, [INV, 'OAuthException']);
    add(`oauth grant ${s}`, { method: 'POST', url: '/oauth/access_token', payload: `grant_type=${e}&username=a&password=b` }, [INV, 'OAuthException']);
    add(`comment text ${s}`, { method: 'POST', url: `/v1/media/${photo.id}/comments?${t}`, payload: { text: s } }, [null, INV]);
    add(`password ${s}`, { method: 'POST', url: '/v1/accounts', payload: { username: `sqlpw${out.length}`, password: s.padEnd(6, 'x'), full_name: s, bio: s, website: s } }, [null, INV]);
  }
  // Wrong types in JSON bodies.
  // (JSON scalars are coerced as form values are, so `true` would be the text "true".)
  for (const text of [{ a: 1 }, [], null, ['a', 'b']]) add(`comment text ${JSON.stringify(text)}`, { method: 'POST', url: `/v1/media/${photo.id}/comments?${t}`, payload: { text } }, INV);
  for (const action of [{ a: 1 }, [], null, 7]) add(`action ${JSON.stringify(action)}`, { method: 'POST', url: `/v1/users/${you.id}/relationship?${t}`, payload: { action } }, INV);
  add('is_private as an object', { method: 'POST', url: '/v1/accounts', payload: { username: 'typed', password: 'secret123', is_private: { x: 1 } } }, INV);

  // Authorisation: other people's things.
  add("delete someone else's media", { method: 'DELETE', url: `/v1/media/${photo.id}?${t}` }, 'APINotAllowedError');
  add("delete someone else's comment", { method: 'DELETE', url: `/v1/media/${photo.id}/comments/${commentId}?${t}` }, 'APINotAllowedError');
  add('delete a comment of another media', { method: 'DELETE', url: `/v1/media/${photo.id}/comments/123?${t}` }, 'APINotFoundError');
  return out;
}

describe('bad input never produces a 5xx', () => {
  it('answers every bad request in the v1 envelope with the expected error_type', async () => {
    const all = cases();
    expect(all.length).toBeGreaterThan(300);
    const failures: string[] = [];
    for (const c of all) {
      const res = await env.app.inject(c.req);
      let body: { meta?: { code?: unknown; error_type?: unknown; error_message?: unknown } } | undefined;
      try {
        body = res.json();
      } catch {
        body = undefined;
      }
      const wanted = Array.isArray(c.type) ? c.type : [c.type];
      const problems: string[] = [];
      if (res.statusCode >= 500) problems.push(`status ${res.statusCode}`);
      if (!body?.meta) problems.push('no envelope');
      else {
        if (body.meta.code !== res.statusCode) problems.push(`meta.code ${String(body.meta.code)} ≠ ${res.statusCode}`);
        const type = res.statusCode === 200 ? null : body.meta.error_type;
        if (!wanted.includes(type as string | null)) problems.push(`error_type ${String(type)} (wanted ${wanted.join('|')})`);
        if (res.statusCode !== 200 && typeof body.meta.error_message !== 'string') problems.push('no error_message');
      }
      if (res.headers['x-ratelimit-limit'] === undefined || res.headers['x-ratelimit-remaining'] === undefined) problems.push('no rate-limit headers');
      if (problems.length) failures.push(`${c.name}: ${problems.join(', ')} — ${res.body.slice(0, 160)}`);
    }
    expect(failures).toEqual([]);
  });

  it('survives huge and non-image uploads, and the server still works afterwards', async () => {
    const max = env.topology.config.blobs.maxUploadBytes;
    const reqs = [
      uploadRequest(me.token, {}, Buffer.alloc(max + 1, 0xff)),
      uploadRequest(me.token, {}, Buffer.concat([await image(), Buffer.alloc(max)])),
      uploadRequest(me.token, { caption: 'x'.repeat(20_000) }, await image()),
      uploadRequest(me.token, {}, Buffer.from('%PDF-1.4 not an image')),
      uploadRequest(me.token, {}, Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')),
    ];
    for (const req of reqs) {
      const res = await env.app.inject(req);
      expect(res.statusCode).toBe(400);
      expect(res.json().meta.error_type).toBe('APIInvalidParametersError');
    }
    const many = multipart(Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}`, 'v'])), [{ field: 'photo', filename: 'p.jpg', contentType: 'image/jpeg', bytes: await image() }]);
    const res = await env.app.inject({ method: 'POST', url: `/v1/media?access_token=${me.token}`, ...many });
    expect(res.statusCode).toBe(400);
    expect((await env.app.inject(uploadRequest(me.token, { caption: 'still fine' }, await image()))).statusCode).toBe(200);
  });
});

describe('malformed HTTP', () => {
  /** Writes raw bytes to a real socket and returns what comes back (the parser is bypassed by inject). */
  async function raw(port: number, bytes: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
      socket.setTimeout(5000, () => socket.destroy(new Error('timeout')));
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    });
  }

  it('requests the HTTP parser rejects still get the envelope and the rate-limit headers', async () => {
    const server = await makeEnv({ rateLimitPerHour: 100 });
    try {
      await server.app.listen({ port: 0, host: '127.0.0.1' });
      const port = (server.app.server.address() as { port: number }).port;
      for (const [bytes, status] of [
        ['THIS IS NOT HTTP\r\n\r\n', 400],
        ['GET /v1/users/self HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n', 400],
        [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
      ] as const) {
        const res = await raw(port, bytes);
        const [head, body] = res.split('\r\n\r\n');
        expect(head).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
        expect(head).toMatch(/\r\nX-Ratelimit-Limit: 100\r\n/i);
        expect(head).toMatch(/\r\nX-Ratelimit-Remaining: \d+\r\n/i);
        expect(JSON.parse(body!)).toEqual({ meta: { code: status, error_type: 'APIInvalidParametersError', error_message: expect.any(String) } });
      }
      const ok = await raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      expect(ok).toMatch(/^HTTP\/1.1 200 /);
    } finally {
      await server.close();
    }
  });
});
