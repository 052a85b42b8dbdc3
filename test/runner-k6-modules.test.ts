// The k6 module shims against a real Fastify server on a loopback port, and (in a child process, as
// the runner loads scripts) the resolution of 'k6/…' imports.

import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance } from 'fastify';
import { execFile } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient } from '../scenarios/runner/http-client.ts';
import k6, { check, group, sleep } from '../scenarios/runner/k6/k6.ts';
import { b64decode, b64encode } from '../scenarios/runner/k6/encoding.ts';
import { hmac, md5, sha1, sha256 } from '../scenarios/runner/k6/crypto.ts';
import exec from '../scenarios/runner/k6/execution.ts';
import type { RuntimeExt } from '../scenarios/runner/k6/host.ts';
import http, { type Response } from '../scenarios/runner/k6/http.ts';
import { Counter, Gauge, Rate, Trend } from '../scenarios/runner/k6/metrics.ts';
import { installGlobals } from '../scenarios/runner/k6/register.ts';
import { MetricRegistry } from '../scenarios/runner/k6-metrics.ts';
import { setRuntime, vuStorage, type ScenarioState, type Tags, type VuState } from '../scenarios/runner/runtime.ts';

const execFileP = promisify(execFile);

interface Sample {
  name: string;
  value: number;
  tags: Tags;
}

/** A registry that keeps every sample, so tests can read values and tags back. */
class RecordingRegistry {
  readonly defs = new Map<string, string>();
  readonly samples: Sample[] = [];
  define(name: string, type: string, kind = 'default'): void {
    const prev = this.defs.get(name);
    if (prev && prev !== `${type}/${kind}`) throw new Error(`redefined ${name}`);
    this.defs.set(name, `${type}/${kind}`);
  }
  add(name: string, value: number, tags: Tags): void {
    if (!this.defs.has(name)) throw new Error(`undefined metric ${name}`);
    this.samples.push({ name, value, tags: { ...tags } });
  }
  of(name: string): Sample[] {
    return this.samples.filter((s) => s.name === name);
  }
}

let app: FastifyInstance;
let base: string;
let registry: RecordingRegistry;
let checks: Array<{ path: string[]; name: string; ok: boolean }>;
let groupsEntered: string[][];
let client: HttpClient;
let aborted: string[];

function makeRuntime(overrides: Partial<RuntimeExt> = {}): RuntimeExt {
  registry = new RecordingRegistry();
  checks = [];
  groupsEntered = [];
  aborted = [];
  const rt: RuntimeExt = {
    registry: registry as never,
    env: { BASE_URL: base, GREETING: 'hi' },
    nowMs: () => Date.now(),
    speed: 1,
    options: {},
    abort: (reason) => void aborted.push(reason),
    baseUrl: base,
    checks: {
      record: (path, name, ok) => void checks.push({ path: [...path], name, ok }),
      enterGroup: (path) => void groupsEntered.push([...path]),
    },
    stats: () => ({ iterationsCompleted: 7, iterationsInterrupted: 1, vusActive: 2, vusInitialized: 4, currentTestRunDurationMs: 1234 }),
    httpClient: client,
    ...overrides,
  };
  setRuntime(rt);
  return rt;
}

const scenario: ScenarioState = {
  name: 'browse',
  executor: 'constant-arrival-rate',
  startTimeMs: 1_700_000_000_000,
  env: {},
  tags: { scenario: 'browse' },
  progress: () => 0.25,
  iterationsStarted: 10,
};

function vuState(over: Partial<VuState> = {}): VuState {
  const now = Date.now();
  return { id: 3, iterationInInstance: 4, iterationInScenario: 9, scenario, tags: {}, groups: [], intendedStartMs: now, startMs: now, signal: new AbortController().signal, ...over };
}

function inVu<T>(fn: () => T, over: Partial<VuState> = {}): T {
  return vuStorage.run(vuState(over), fn);
}

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

beforeAll(async () => {
  app = Fastify();
  // Every body arrives raw, so tests see the exact bytes sent; multipart goes through a real parser.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  await app.register(multipart);
  app.get('/hello', async (_req, reply) => reply.header('x-ratelimit-remaining', '99').send({ hello: 'world', data: [{ id: 'a1', tags: ['x', 'y'] }, { id: 'b2', tags: [] }], 'dot.key': 1 }));
  app.get('/status/:code', async (req, reply) => reply.code(Number((req.params as { code: string }).code)).send({ code: Number((req.params as { code: string }).code) }));
  app.get('/redirect', async (_req, reply) => reply.redirect('/hello', 302));
  app.get('/slow', async () => {
    await new Promise((r) => setTimeout(r, 400));
    return { slow: true };
  });
  app.get('/gzip', async (_req, reply) => reply.header('content-encoding', 'gzip').type('application/json').send(gzipSync(Buffer.from('{"zipped":true}'))));
  app.get('/bytes', async (_req, reply) => reply.type('application/octet-stream').send(Buffer.from([0, 1, 2, 253, 254, 255])));
  app.post('/echo', async (req) => ({
    contentType: req.headers['content-type'] ?? null,
    userAgent: req.headers['user-agent'] ?? null,
    body: Buffer.isBuffer(req.body) ? (req.body as Buffer).toString('utf8') : null,
  }));
  app.post('/upload', async (req) => {
    const fields: Record<string, string> = {};
    const files: Record<string, { filename: string; mimetype: string; sha256: string; bytes: number }> = {};
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        const buf = await part.toBuffer();
        files[part.fieldname] = { filename: part.filename, mimetype: part.mimetype, sha256: createHash('sha256').update(buf).digest('hex'), bytes: buf.length };
      } else {
        fields[part.fieldname] = String(part.value);
      }
    }
    return { fields, files };
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  client = new HttpClient();
});

afterAll(async () => {
  setRuntime(null);
  await client.close();
  await app.close();
});

afterEach(() => {
  http.setResponseCallback(http.expectedStatuses({ min: 200, max: 399 }));
});

describe('k6/http requests', () => {
  it('a GET answers status, canonical headers, the body as text, and json() with path selectors', async () => {
    makeRuntime();
    const res = await inVu(() => http.get(`${base}/hello`));
    expect(res.status).toBe(200);
    expect(res.status_text).toBe('200 OK');
    expect(res.proto).toBe('HTTP/1.1');
    expect(res.error).toBe('');
    expect(res.error_code).toBe(0);
    expect(res.headers['Content-Type']).toBe('application/json; charset=utf-8');
    expect(res.headers['X-Ratelimit-Remaining']).toBe('99');
    expect(typeof res.body).toBe('string');
    expect(res.url).toBe(`${base}/hello`);
    expect(res.remote_ip).toBe('127.0.0.1');
    expect(res.request.method).toBe('GET');
    expect(res.request.headers['User-Agent']).toHaveLength(1);
    expect(res.json('hello')).toBe('world');
    expect(res.json('data.1.id')).toBe('b2');
    expect(res.json('data.0.tags.1')).toBe('y');
    expect(res.json('data.#')).toBe(2);
    expect(res.json('data.#.id')).toEqual(['a1', 'b2']);
    expect(res.json('dot\\.key')).toBe(1);
    expect(res.json('data.5.id')).toBeUndefined();
    expect(res.json('nope.deeper')).toBeUndefined();
    expect((res.json() as { hello: string }).hello).toBe('world');
  });

  it('a POST sends a string as is, an object as a key-sorted urlencoded form, and keeps a content type the script set', async () => {
    makeRuntime();
    const json = await inVu(() => http.post(`${base}/echo`, JSON.stringify({ a: 1 }), { headers: { 'Content-Type': 'application/json' } }));
    expect(json.json()).toMatchObject({ contentType: 'application/json', body: '{"a":1}' });
    const form = await inVu(() => http.post(`${base}/echo`, { z: 'last one', a: 'first&', list: ['1', '2'] as unknown as string }));
    expect(form.json()).toMatchObject({ contentType: 'application/x-www-form-urlencoded', body: 'a=first%26&list=1&list=2&z=last+one' });
    const put = await inVu(() => http.request('POST', `${base}/echo`, new Uint8Array([104, 105]), { headers: { 'User-Agent': 'mine' } }));
    expect(put.json()).toMatchObject({ body: 'hi', userAgent: 'mine', contentType: null });
  });

  it('http.file bodies go as multipart, and the server receives the exact bytes of a binary JPEG', async () => {
    makeRuntime();
    const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#c83' } }).jpeg({ quality: 90 }).toBuffer();
    const arrayBuffer = jpeg.buffer.slice(jpeg.byteOffset, jpeg.byteOffset + jpeg.byteLength) as ArrayBuffer;
    const res = await inVu(() =>
      http.post(`${base}/upload`, { caption: 'sunset "at" the pier #nofilter', photo: http.file(arrayBuffer, 'photo.jpg', 'image/jpeg'), raw: http.file(jpeg) }),
    );
    expect(res.status).toBe(200);
    const want = createHash('sha256').update(jpeg).digest('hex');
    const got = res.json() as { fields: Record<string, string>; files: Record<string, { filename: string; mimetype: string; sha256: string; bytes: number }> };
    expect(got.fields.caption).toBe('sunset "at" the pier #nofilter');
    expect(got.files.photo).toEqual({ filename: 'photo.jpg', mimetype: 'image/jpeg', sha256: want, bytes: jpeg.length });
    expect(got.files.raw!.sha256).toBe(want);
    expect(got.files.raw!.mimetype).toBe('application/octet-stream');
    expect(res.request.headers['Content-Type']![0]).toMatch(/^multipart\/form-data; boundary=[0-9a-f]{60}$/);
  });

  it('timings are non-negative, duration is sending + waiting + receiving, and a new connection is charged connecting once', async () => {
    // A client of its own, so the first request has to connect.
    const rt = makeRuntime({ httpClient: new HttpClient() });
    try {
      const first = await inVu(() => http.get(`${base}/slow`));
      const second = await inVu(() => http.get(`${base}/hello`));
      for (const t of [first.timings, second.timings]) {
        for (const v of Object.values(t)) expect(v).toBeGreaterThanOrEqual(0);
        expect(t.duration).toBeCloseTo(t.sending + t.waiting + t.receiving, 6);
        expect(t.tls_handshaking).toBe(0);
      }
      expect(first.timings.connecting).toBeGreaterThan(0);
      expect(second.timings.connecting).toBe(0);
      // The server holds /slow for 400 ms before answering: that is time to first byte.
      expect(first.timings.waiting).toBeGreaterThanOrEqual(380);
      expect(first.timings.duration).toBeLessThan(2000);
    } finally {
      await rt.httpClient!.close();
    }
  });

  it('each request records the http_req_* samples with k6 tags; a name tag replaces the URL in both url and name', async () => {
    makeRuntime();
    const late = Date.now();
    await inVu(() => http.get(`${base}/hello?id=1`, { tags: { name: 'hello', route: 'v1' } }), { tags: { tier: 'gold' }, intendedStartMs: late - 50, startMs: late });
    await inVu(() => http.get(`${base}/hello?id=2`));
    const durations = registry.of('http_req_duration');
    expect(durations).toHaveLength(2);
    expect(durations[0]!.tags).toEqual({
      scenario: 'browse', tier: 'gold', group: '', route: 'v1', name: 'hello', url: 'hello', method: 'GET', status: '200', proto: 'HTTP/1.1', expected_response: 'true',
    });
    expect(durations[1]!.tags.name).toBe(`${base}/hello?id=2`);
    expect(durations[1]!.tags.url).toBe(`${base}/hello?id=2`);
    for (const m of ['http_reqs', 'http_req_blocked', 'http_req_connecting', 'http_req_tls_handshaking', 'http_req_sending', 'http_req_waiting', 'http_req_receiving', 'http_req_failed', 'http_req_intended_duration']) {
      expect(registry.of(m), m).toHaveLength(2);
    }
    expect(registry.defs.get('http_req_duration')).toBe('trend/time');
    expect(registry.defs.get('http_reqs')).toBe('counter/default');
    // Intended duration carries the iteration's 50 ms of lateness.
    const intended = registry.of('http_req_intended_duration');
    expect(intended[0]!.value - durations[0]!.value).toBeCloseTo(50, 6);
    expect(intended[1]!.value).toBeCloseTo(durations[1]!.value, 6);
    // data_* carry the VU's tags only (k6's connection samples), and count real bytes.
    const sent = registry.of('data_sent');
    expect(sent[0]!.tags).toEqual({ scenario: 'browse', tier: 'gold', group: '' });
    expect(sent[0]!.value).toBeGreaterThan(40);
    expect(registry.of('data_received')[0]!.value).toBeGreaterThan(100);
  });

  it('http.url names the request by its template', async () => {
    makeRuntime();
    const id = 'a1';
    await inVu(() => http.get(http.url`${base}/hello?id=${id}`));
    expect(registry.of('http_reqs')[0]!.tags.name).toBe('${}/hello?id=${}');
  });

  it('http_req_failed and expected_response follow the expected statuses, per request or for the run; null turns them off', async () => {
    makeRuntime();
    await inVu(() => http.get(`${base}/status/404`));
    await inVu(() => http.get(`${base}/status/404`, { responseCallback: http.expectedStatuses(200, { min: 400, max: 404 }) }));
    http.setResponseCallback(http.expectedStatuses(201));
    await inVu(() => http.get(`${base}/status/200`));
    http.setResponseCallback(null);
    const last = await inVu(() => http.get(`${base}/status/500`));
    expect(last.error_code).toBe(1500);
    expect(registry.of('http_req_failed').map((s) => s.value)).toEqual([1, 0, 1]);
    const reqs = registry.of('http_reqs');
    expect(reqs.map((s) => s.tags.expected_response)).toEqual(['false', 'true', 'false', undefined]);
    expect(reqs[0]!.tags.error_code).toBe('1404');
    expect(() => http.setResponseCallback((() => true) as never)).toThrow(expect.objectContaining({ code: 'SG_K6_UNSUPPORTED' }));
  });

  it('a closed port gives status 0 and error_code 1212 without throwing, and counts as a failed request', async () => {
    makeRuntime();
    const port = await closedPort();
    const res = await inVu(() => http.get(`http://127.0.0.1:${port}/x`, { tags: { name: 'nowhere' } }));
    expect(res.status).toBe(0);
    expect(res.error_code).toBe(1212);
    expect(res.error).toBe('dial: connection refused');
    expect(res.body).toBeNull();
    const [failed] = registry.of('http_req_failed');
    expect(failed!.value).toBe(1);
    expect(failed!.tags).toMatchObject({ status: '0', error_code: '1212', error: 'dial: connection refused', expected_response: 'false', name: 'nowhere' });
    expect(failed!.tags.proto).toBeUndefined();
    await expect(inVu(() => http.get(`http://127.0.0.1:${port}/x`, { throw: true }))).rejects.toMatchObject({ code: 'SG_K6_REQUEST_FAILED' });
  });

  it('a request slower than its timeout ends with error_code 1050', async () => {
    makeRuntime();
    const t0 = performance.now();
    const res = await inVu(() => http.get(`${base}/slow`, { timeout: '100ms' }));
    expect(res.status).toBe(0);
    expect(res.error_code).toBe(1050);
    expect(performance.now() - t0).toBeLessThan(350);
    await expect(inVu(() => http.get(`${base}/slow`, { timeout: 'soon' }))).rejects.toMatchObject({ code: 'SG_K6_BAD_ARGUMENT' });
  });

  it('redirects are followed and every hop is measured; redirects: 0 stops at the first answer', async () => {
    makeRuntime();
    const res = await inVu(() => http.get(`${base}/redirect`));
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${base}/hello`);
    expect(registry.of('http_reqs').map((s) => s.tags.status)).toEqual(['302', '200']);
    const stopped = await inVu(() => http.get(`${base}/redirect`, { redirects: 0 }));
    expect(stopped.status).toBe(302);
    expect(stopped.headers.Location).toBe('/hello');
  });

  it('responseType none keeps no body, binary gives an ArrayBuffer, and a gzip answer is decoded', async () => {
    makeRuntime();
    const none = await inVu(() => http.get(`${base}/hello`, { responseType: 'none' }));
    expect(none.body).toBeNull();
    expect(registry.of('data_received')[0]!.value).toBeGreaterThan(100);
    const bin = await inVu(() => http.get(`${base}/bytes`, { responseType: 'binary' }));
    expect([...new Uint8Array(bin.body as ArrayBuffer)]).toEqual([0, 1, 2, 253, 254, 255]);
    const zipped = await inVu(() => http.get(`${base}/gzip`, { headers: { 'Accept-Encoding': 'gzip' } }));
    expect(zipped.json('zipped')).toBe(true);
  });

  it('http.batch runs requests together and answers in the shape it was given', async () => {
    makeRuntime();
    const list = (await inVu(() => http.batch([`${base}/hello`, ['GET', `${base}/status/201`], { method: 'POST', url: `${base}/echo`, body: 'x' }]))) as Response[];
    expect(list.map((r) => r.status)).toEqual([200, 201, 200]);
    const named = (await inVu(() => http.batch({ a: `${base}/status/202`, b: `${base}/status/203` }))) as Record<string, Response>;
    expect([named.a!.status, named.b!.status]).toEqual([202, 203]);
  });

  it('an aborted iteration stops a request and a sleep at once, and records no sample', async () => {
    makeRuntime();
    const ac = new AbortController();
    const t0 = performance.now();
    const req = inVu(() => http.get(`${base}/slow`), { signal: ac.signal });
    const nap = inVu(() => sleep(5), { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('gracefulStop')), 30);
    await expect(req).rejects.toThrow('gracefulStop');
    await expect(nap).rejects.toThrow();
    expect(performance.now() - t0).toBeLessThan(300);
    expect(registry.of('http_reqs')).toHaveLength(0);
  });

  it('feeds a real MetricRegistry: counts, and the expected_response sub-metric', async () => {
    const real = new MetricRegistry(() => Date.now());
    makeRuntime({ registry: real as never });
    for (let i = 0; i < 3; i++) await inVu(() => http.get(`${base}/hello`, { tags: { name: 'hello' } }));
    await inVu(() => http.get(`${base}/status/503`));
    expect(real.values('http_reqs').count).toBe(4);
    expect(real.values('http_req_failed').passes).toBe(1);
    // The 503 is not an expected response, so the sub-metric's max is a 200's duration at most.
    expect(real.stat('http_req_duration{expected_response:true}', 'max')).toBeGreaterThan(0);
    expect(real.stat('http_req_duration{expected_response:true}', 'max')).toBeLessThanOrEqual(real.stat('http_req_duration', 'max'));
  });
});

describe('k6: check, group, sleep, fail', () => {
  it('check() records a checks sample per condition, with the check tag, into the run\'s check tree', async () => {
    makeRuntime();
    const res = await inVu(() => http.get(`${base}/hello`));
    const all = inVu(() => check(res, { 'status is 200': (r) => r.status === 200, 'has no error': (r) => r.error_code === 0, 'is teapot': (r) => r.status === 418 }, { kind: 'api' }));
    expect(all).toBe(false);
    const samples = registry.of('checks');
    expect(samples.map((s) => [s.tags.check, s.value])).toEqual([['status is 200', 1], ['has no error', 1], ['is teapot', 0]]);
    expect(samples[0]!.tags).toEqual({ scenario: 'browse', group: '', kind: 'api', check: 'status is 200' });
    expect(checks).toEqual([
      { path: [], name: 'status is 200', ok: true },
      { path: [], name: 'has no error', ok: true },
      { path: [], name: 'is teapot', ok: false },
    ]);
    expect(inVu(() => k6.check(1, { 'one is truthy': true }))).toBe(true);
  });

  it('check() given an un-awaited request fails its checks (a checks threshold cannot pass on them) and says why', () => {
    makeRuntime();
    const pending = inVu(() => http.get(`${base}/hello`));
    expect(() => inVu(() => check(pending, { ok: () => true }))).toThrow(/check\(\) was given a Promise \(SG_K6_NOT_AWAITED\): the value comes from a request the runner could not make wait/);
    expect(() => inVu(() => check(pending, { ok: () => true }))).toThrow(expect.objectContaining({ code: 'SG_K6_NOT_AWAITED' }));
    expect(registry.of('checks').map((x) => x.value)).toEqual([0, 0]);
    return pending;
  });

  it('nested groups tag samples with their path, sync and async, and record group_duration', async () => {
    makeRuntime();
    const result = await inVu(() =>
      group('a', async () => {
        await http.get(`${base}/hello`, { tags: { name: 'in-a' } });
        const inner = group('b', () => {
          check(1, { 'inside b': () => true });
          return 'b done';
        });
        await group('c', async () => {
          await sleep(0.01);
          await http.get(`${base}/hello`, { tags: { name: 'in-c' } });
        });
        return inner;
      }),
    );
    expect(result).toBe('b done');
    expect(registry.of('http_reqs').map((s) => [s.tags.name, s.tags.group])).toEqual([['in-a', '::a'], ['in-c', '::a::c']]);
    expect(checks).toEqual([{ path: ['a', 'b'], name: 'inside b', ok: true }]);
    expect(registry.of('checks')[0]!.tags.group).toBe('::a::b');
    const durations = registry.of('group_duration');
    expect(durations.map((s) => s.tags.group)).toEqual(['::a::b', '::a::c', '::a']);
    expect(durations[1]!.value).toBeGreaterThanOrEqual(9);
    expect(durations[2]!.value).toBeGreaterThanOrEqual(durations[1]!.value);
    expect(groupsEntered).toEqual([['a'], ['a', 'b'], ['a', 'c']]);
    expect(() => inVu(() => group('x::y', () => 1))).toThrow(expect.objectContaining({ code: 'SG_K6_BAD_ARGUMENT' }));
  });

  it('concurrent async groups in one iteration keep their own paths', async () => {
    makeRuntime();
    await inVu(() =>
      Promise.all([
        group('left', async () => http.get(`${base}/slow`, { tags: { name: 'left' } })),
        group('right', async () => http.get(`${base}/hello`, { tags: { name: 'right' } })),
      ]),
    );
    const byName = Object.fromEntries(registry.of('http_reqs').map((s) => [s.tags.name, s.tags.group]));
    expect(byName).toEqual({ left: '::left', right: '::right' });
  });

  it('sleep(1) at speed 100 takes about 10 ms', async () => {
    makeRuntime({ speed: 100 });
    const t0 = performance.now();
    await inVu(() => sleep(1));
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(9);
    expect(ms).toBeLessThan(60);
  });

  it('fail() throws with its message and a code', () => {
    makeRuntime();
    expect(() => k6.fail('bad data')).toThrow(expect.objectContaining({ code: 'SG_K6_FAIL', message: 'bad data' }));
  });
});

describe('k6/metrics', () => {
  it('Counter, Gauge, Rate and Trend declare their type and add samples with the VU tags plus their own', () => {
    makeRuntime();
    const uploads = new Counter('uploads');
    const depth = new Gauge('queue_depth');
    const ok = new Rate('upload_ok');
    const lag = new Trend('feed_lag', true);
    inVu(
      () => {
        uploads.add(2, { kind: 'photo' });
        depth.add(17);
        ok.add(true);
        ok.add(0);
        ok.add(5);
        lag.add(12.5, { shard: 7 as unknown as string });
      },
      { tags: { tier: 'gold' } },
    );
    expect([...registry.defs].filter(([n]) => ['uploads', 'queue_depth', 'upload_ok', 'feed_lag'].includes(n))).toEqual([
      ['uploads', 'counter/default'],
      ['queue_depth', 'gauge/default'],
      ['upload_ok', 'rate/default'],
      ['feed_lag', 'trend/time'],
    ]);
    expect(registry.of('uploads')[0]).toEqual({ name: 'uploads', value: 2, tags: { scenario: 'browse', tier: 'gold', group: '', kind: 'photo' } });
    expect(registry.of('upload_ok').map((s) => s.value)).toEqual([1, 0, 1]);
    expect(registry.of('feed_lag')[0]!.tags.shard).toBe('7');
    expect(() => inVu(() => new Counter('too_late'))).toThrow(expect.objectContaining({ code: 'SG_K6_WRONG_CONTEXT' }));
    expect(() => uploads.add(Number.NaN)).toThrow(expect.objectContaining({ code: 'SG_K6_BAD_ARGUMENT' }));
  });
});

describe('k6/execution and the globals', () => {
  it('reports the VU, its scenario and the instance inside a VU scope; vu.tags writes reach later samples', async () => {
    makeRuntime();
    const seen = await inVu(async () => {
      exec.vu.tags.cohort = 'android';
      exec.vu.metrics.metadata.trace = 'abc';
      await http.get(`${base}/hello`);
      return {
        vu: exec.vu.idInInstance,
        vuInTest: exec.vu.idInTest,
        iterInInstance: exec.vu.iterationInInstance,
        iterInScenario: exec.vu.iterationInScenario,
        cohort: exec.vu.tags.cohort,
        scenarioTag: exec.vu.tags.scenario,
        name: exec.scenario.name,
        executor: exec.scenario.executor,
        startTime: exec.scenario.startTime,
        progress: exec.scenario.progress,
        scenarioIter: exec.scenario.iterationInTest,
        completed: exec.instance.iterationsCompleted,
        interrupted: exec.instance.iterationsInterrupted,
        active: exec.instance.vusActive,
        initialized: exec.instance.vusInitialized,
        runMs: exec.instance.currentTestRunDuration,
      };
    });
    expect(seen).toEqual({
      vu: 3, vuInTest: 3, iterInInstance: 4, iterInScenario: 4, cohort: 'android', scenarioTag: 'browse',
      name: 'browse', executor: 'constant-arrival-rate', startTime: 1_700_000_000_000, progress: 0.25, scenarioIter: 9,
      completed: 7, interrupted: 1, active: 2, initialized: 4, runMs: 1234,
    });
    expect(registry.of('http_reqs')[0]!.tags.cohort).toBe('android');
    expect(() => inVu(() => (exec.vu.tags.bad = {} as never))).toThrow(expect.objectContaining({ code: 'SG_K6_BAD_ARGUMENT' }));
    expect(() => exec.vu.idInInstance).toThrow(expect.objectContaining({ code: 'SG_K6_WRONG_CONTEXT' }));
    expect(exec.test.options).toEqual({});
  });

  it('exec.test.abort() ends the run through the Runtime and stops the iteration', () => {
    makeRuntime();
    expect(() => inVu(() => exec.test.abort('capacity reached'))).toThrow(expect.objectContaining({ code: 'SG_K6_TEST_ABORTED' }));
    expect(aborted).toEqual(['capacity reached']);
  });

  it('__VU, __ITER and __ENV read the current VU and the run\'s env', () => {
    makeRuntime();
    installGlobals();
    const g = globalThis as unknown as { __VU: number; __ITER: number; __ENV: Record<string, string> };
    expect(inVu(() => [g.__VU, g.__ITER], { id: 12, iterationInInstance: 34 })).toEqual([12, 34]);
    expect([g.__VU, g.__ITER]).toEqual([0, 0]);
    expect(g.__ENV.GREETING).toBe('hi');
    expect(g.__ENV.BASE_URL).toBe(base);
  });

  it('open() reads a file relative to the calling file, as text or (\'b\') bytes, in init code only', () => {
    makeRuntime();
    installGlobals();
    const open = (globalThis as unknown as { open: (path: string, mode?: 'b') => string | ArrayBuffer }).open;
    expect(open('./fixtures/scripts/uses-ws.ts') as string).toContain("from 'k6/ws'");
    const bytes = open('./fixtures/scripts/uses-ws.ts', 'b') as ArrayBuffer;
    expect(bytes).toBeInstanceOf(ArrayBuffer);
    expect(Buffer.from(bytes).toString('utf8')).toContain("from 'k6/ws'");
    expect(() => inVu(() => open('./fixtures/scripts/uses-ws.ts'))).toThrow(expect.objectContaining({ code: 'SG_K6_WRONG_CONTEXT' }));
  });
});

describe('k6/encoding and k6/crypto', () => {
  it('base64 variants and hashes match reference values', () => {
    expect(b64encode('hello?>')).toBe('aGVsbG8/Pg==');
    expect(b64encode('hello?>', 'rawstd')).toBe('aGVsbG8/Pg');
    expect(b64encode('hello?>', 'url')).toBe('aGVsbG8_Pg==');
    expect(b64encode('hello?>', 'rawurl')).toBe('aGVsbG8_Pg');
    expect(b64decode('aGVsbG8_Pg', 'rawurl', 's')).toBe('hello?>');
    expect(new Uint8Array(b64decode('AAH/') as ArrayBuffer)).toEqual(new Uint8Array([0, 1, 255]));
    expect(md5('hello world!', 'hex')).toBe('fc3ff98e8c6a0d3087d515c0473f8677');
    expect(sha1('hello world!', 'hex')).toBe('430ce34d020724ed75a196dfc2ad67c77772d169');
    expect(sha256('hello world!', 'hex')).toBe('7509e5bda0c762d2bac7f90d758b5b2263fa01ccbc542ab5e3df163be08e6ca9');
    expect(hmac('sha256', 'a secret', 'my data', 'hex')).toBe(createHmac('sha256', 'a secret').update('my data').digest('hex'));
    expect(sha256(new Uint8Array([1, 2, 3]).buffer as ArrayBuffer, 'base64')).toBe(createHash('sha256').update(Buffer.from([1, 2, 3])).digest('base64'));
  });
});

describe('resolution of k6 modules (a fresh process, as the runner loads scripts)', () => {
  const driver = fileURLToPath(new URL('./fixtures/scripts/load-script.ts', import.meta.url));
  const script = (name: string) => fileURLToPath(new URL(`./fixtures/scripts/${name}`, import.meta.url));
  const run = async (name: string) => {
    const { stdout } = await execFileP(process.execPath, ['--import', 'tsx', driver, script(name), base], { cwd: fileURLToPath(new URL('..', import.meta.url)), timeout: 30_000 });
    return JSON.parse(stdout.trim().split('\n').pop()!) as { ok: boolean; code?: string; message?: string; result?: Record<string, unknown>; samples?: Sample[]; checks?: unknown[] };
  };

  it('a script importing k6, k6/http, k6/metrics and k6/execution by name loads after registerK6Modules() and runs in the runner\'s Runtime', async () => {
    const out = await run('get-hello.ts');
    expect(out.ok).toBe(true);
    expect(out.result).toEqual({ status: 200, hello: 'world', ok: true, vu: 3, iter: 5, scenario: 'fixture' });
    const names = out.samples!.map((s) => s.name);
    expect(names).toContain('http_req_duration');
    expect(names).toContain('hellos');
    expect(out.samples!.find((s) => s.name === 'http_reqs')!.tags).toMatchObject({ name: 'hello', group: '::visit', scenario: 'fixture' });
    expect(out.checks).toEqual([{ path: ['visit'], name: 'status is 200', ok: true }]);
  });

  it('a k6 module the runner does not implement fails at import with SG_K6_UNSUPPORTED_MODULE', async () => {
    const out = await run('uses-ws.ts');
    expect(out.ok).toBe(false);
    expect(out.code).toBe('SG_K6_UNSUPPORTED_MODULE');
    expect(out.message).toMatch(/^k6\/ws is not supported by Scalegram's runner/);
  });
});
