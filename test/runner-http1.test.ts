// The VU's raw HTTP/1.1 connection (scenarios/runner/http1-connection.ts) through HttpClient, against
// a scripted TCP server: every body framing, responses split across packets at every byte, interim
// responses, connection reuse and close, a server closing an idle connection (retried for GET, not
// for POST), malformed responses, refused connections and timeouts.

import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpClient, K6_ERROR_CODES, type RoundTripResult } from '../scenarios/runner/http-client.ts';
import { requestHead } from '../scenarios/runner/http1-connection.ts';

interface Scripted {
  server: Server;
  url: string;
  /** Requests received (head text), in order. */
  requests: string[];
  /** Connections accepted. */
  connections: () => number;
}

const servers: Server[] = [];
const sockets = new Set<Socket>();
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/**
 * A server that answers each request (read up to its blank line, plus Content-Length body) with
 * `answer(i, socket)`: bytes to write (as one string or as pieces written one by one), or null to
 * do nothing (the function may act on the socket itself).
 */
async function scripted(answer: (i: number, socket: Socket) => string | string[] | null): Promise<Scripted> {
  const requests: string[] = [];
  let conns = 0;
  const server = createServer((socket) => {
    conns++;
    sockets.add(socket);
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        requests.push(buf.slice(0, end + 4 + len));
        buf = buf.slice(end + 4 + len);
        const out = answer(requests.length - 1, socket);
        if (out === null) continue;
        const pieces = typeof out === 'string' ? [out] : out;
        void (async () => {
          for (const p of pieces) {
            socket.write(Buffer.from(p, 'latin1'));
            if (pieces.length > 1) await new Promise((r) => setTimeout(r, 2));
          }
        })();
      }
    });
    socket.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, connections: () => conns };
}

function get(client: HttpClient, url: string, opts: { method?: string; body?: string; timeoutMs?: number; lane?: number } = {}): Promise<RoundTripResult> {
  return client.roundTrip(
    { method: opts.method ?? 'GET', url: new URL(url), headers: ['user-agent', 'scalegram-test'], body: opts.body === undefined ? null : Buffer.from(opts.body), timeoutMs: opts.timeoutMs ?? 5000, keepBody: true },
    opts.lane ?? 1,
  );
}

const ok = (body: string, extra = '') => `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

describe('raw HTTP/1.1 connection (a VU lane over plain http)', () => {
  it('sends one well-formed request with Host and Content-Length, and reads a Content-Length body', async () => {
    const s = await scripted(() => ok('hello'));
    const client = new HttpClient();
    const r = await get(client, `${s.url}/p?q=1`, { method: 'POST', body: 'a=1&b=2' });
    await client.close();
    expect(r.error).toBeNull();
    expect(r.status).toBe(200);
    expect(r.statusText).toBe('OK');
    expect(r.body!.toString()).toBe('hello');
    expect(r.rawHeaders).toEqual(['content-type', 'text/plain', 'content-length', '5']);
    expect(s.requests[0]).toBe(`POST /p?q=1 HTTP/1.1\r\nuser-agent: scalegram-test\r\nhost: ${new URL(s.url).host}\r\ncontent-length: 7\r\n\r\na=1&b=2`);
    expect(r.bytesSent).toBe(Buffer.byteLength(s.requests[0]!));
    expect(r.bytesReceived).toBe(Buffer.byteLength(ok('hello')));
    expect(r.remoteIp).toBe('127.0.0.1');
    expect(r.timings.connecting).toBeGreaterThan(0);
    expect(r.timings.duration).toBeCloseTo(r.timings.sending + r.timings.waiting + r.timings.receiving, 6);
  });

  it('reads a response split into single bytes, for every framing', async () => {
    const chunked = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\ntrailer: x\r\n\r\n';
    const bodies = [ok('split body'), chunked];
    const s = await scripted((i) => [...bodies[i % 2]!]);
    const client = new HttpClient();
    const a = await get(client, s.url);
    const b = await get(client, s.url);
    await client.close();
    expect(a.body!.toString()).toBe('split body');
    expect(b.body!.toString()).toBe('hello world');
    expect(b.bytesReceived).toBe(chunked.length);
    expect(s.connections()).toBe(1);
  });

  it('reuses the connection across exchanges, and reads bodies delimited by close', async () => {
    const s = await scripted((i, socket) => {
      if (i < 2) return ok(`n${i}`);
      socket.end(Buffer.from('HTTP/1.0 200 OK\r\n\r\nuntil close'));
      return null;
    });
    const client = new HttpClient();
    expect((await get(client, s.url)).body!.toString()).toBe('n0');
    expect((await get(client, s.url)).body!.toString()).toBe('n1');
    expect(s.connections()).toBe(1);
    const c = await get(client, s.url);
    expect(c.error).toBeNull();
    expect(c.body!.toString()).toBe('until close');
    await client.close();
  });

  it('has no body for HEAD, 204 and 304, skips 1xx, and closes after Connection: close', async () => {
    const s = await scripted((i) =>
      [
        'HTTP/1.1 200 OK\r\ncontent-length: 999\r\n\r\n',
        'HTTP/1.1 204 No Content\r\n\r\n',
        'HTTP/1.1 304 Not Modified\r\ncontent-length: 12\r\n\r\n',
        'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n' + ok('final'),
        ok('bye', 'connection: close\r\n'),
        ok('new connection'),
      ][i]!,
    );
    const client = new HttpClient();
    const head = await get(client, s.url, { method: 'HEAD' });
    expect([head.status, head.body!.length]).toEqual([200, 0]);
    expect((await get(client, s.url)).status).toBe(204);
    expect((await get(client, s.url)).status).toBe(304);
    const interim = await get(client, s.url);
    expect([interim.status, interim.body!.toString()]).toEqual([200, 'final']);
    expect(s.connections()).toBe(1);
    expect((await get(client, s.url)).body!.toString()).toBe('bye');
    expect((await get(client, s.url)).body!.toString()).toBe('new connection');
    expect(s.connections()).toBe(2);
    await client.close();
  });

  it('retries a GET once on a new connection when the server closed the idle one, but not a POST', async () => {
    const s = await scripted((i, socket) => {
      // The second and fourth requests arrive on a connection the server then drops unanswered.
      if (i === 1 || i === 3) {
        socket.destroy();
        return null;
      }
      return ok(`r${i}`);
    });
    const client = new HttpClient();
    expect((await get(client, s.url)).body!.toString()).toBe('r0');
    const retried = await get(client, s.url);
    expect(retried.error).toBeNull();
    expect(retried.body!.toString()).toBe('r2');
    expect(s.connections()).toBe(2);
    const post = await get(client, s.url, { method: 'POST', body: 'x' });
    expect(post.status).toBe(0);
    expect(post.error!.code).toBe(K6_ERROR_CODES.generic);
    expect(s.requests).toHaveLength(4);
    await client.close();
  });

  it('fails malformed responses with an error and a fresh connection next time', async () => {
    const s = await scripted((i) => ['SMTP ready\r\n\r\n', 'HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', ok('fine')][i]!);
    const client = new HttpClient();
    for (const want of ['bad status line', 'bad Content-Length', 'bad chunk size']) {
      const r = await get(client, s.url);
      expect(r.status).toBe(0);
      expect(r.error!.message).toContain(want);
    }
    expect((await get(client, s.url)).body!.toString()).toBe('fine');
    expect(s.connections()).toBe(4);
    await client.close();
  });

  it('reports a refused connection as k6 1212 and a timeout as 1050, closing the connection', async () => {
    const s = await scripted((i) => (i === 0 ? null : ok('late')));
    const client = new HttpClient();
    const t = await get(client, s.url, { timeoutMs: 100 });
    expect(t.error).toEqual({ code: K6_ERROR_CODES.requestTimeout, message: 'request timeout' });
    const next = await get(client, s.url);
    expect(next.body!.toString()).toBe('late');
    expect(s.connections()).toBe(2);
    const port = (s.server.address() as AddressInfo).port;
    await client.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((r) => s.server.close(r));
    servers.splice(servers.indexOf(s.server), 1);
    const fresh = new HttpClient();
    const refused = await get(fresh, `http://127.0.0.1:${port}/`);
    expect(refused.error!.code).toBe(K6_ERROR_CODES.tcpDialRefused);
    await fresh.close();
  });

  it('stops at the signal like the pooled path, and refuses header injection', async () => {
    const s = await scripted(() => null);
    const client = new HttpClient();
    const ac = new AbortController();
    const p = client.roundTrip({ method: 'GET', url: new URL(s.url), headers: [], body: null, timeoutMs: 0, keepBody: true, signal: ac.signal }, 1);
    setTimeout(() => ac.abort(new Error('stop')), 30);
    const r = await p;
    expect(r.aborted).toBe(true);
    expect(() => requestHead('GET', '/', 'h', ['x-evil', 'a\r\nhost: b'], null)).toThrow(/invalid header/);
    const bad = await client.roundTrip({ method: 'GET', url: new URL(s.url), headers: ['x', 'a\nb'], body: null, timeoutMs: 0, keepBody: true }, 1);
    expect(bad.error!.code).toBe(K6_ERROR_CODES.invalidUrl);
    await client.close();
  });

  it('times out long timeouts through the connection sweep, and a signal aborts only exchanges that listen to it', async () => {
    const s = await scripted((i) => (i === 0 || i === 2 ? null : ok('fine')));
    const client = new HttpClient();
    const t0 = performance.now();
    const slow = await get(client, s.url, { timeoutMs: 1100 });
    const took = performance.now() - t0;
    expect(slow.error).toEqual({ code: K6_ERROR_CODES.requestTimeout, message: 'request timeout' });
    expect(took).toBeGreaterThanOrEqual(1090);
    expect(took).toBeLessThan(1600);
    // The lane's connection is registered with the first signal; a request under a second signal
    // must not be aborted by the first one, and must be by its own.
    const first = new AbortController();
    const second = new AbortController();
    const a = await client.roundTrip({ method: 'GET', url: new URL(s.url), headers: [], body: null, timeoutMs: 0, keepBody: true, signal: first.signal }, 7);
    expect(a.aborted).toBe(false);
    const pending = client.roundTrip({ method: 'GET', url: new URL(s.url), headers: [], body: null, timeoutMs: 0, keepBody: true, signal: second.signal }, 7);
    first.abort(new Error('the other scenario stopped'));
    const settled = await Promise.race([pending.then(() => 'settled'), new Promise((r) => setTimeout(() => r('waiting'), 50))]);
    expect(settled).toBe('waiting');
    second.abort(new Error('stop'));
    expect((await pending).aborted).toBe(true);
    await client.close();
  });

  it("keeps an idle connection for a minute, but not past a second short of the server's Keep-Alive timeout", async () => {
    const quiet = await scripted(() => ok('a'));
    const hinted = await scripted(() => ok('b', 'keep-alive: timeout=2\r\n'));
    const client = new HttpClient();
    await get(client, quiet.url, { lane: 1 });
    await get(client, hinted.url, { lane: 1 });
    await new Promise((r) => setTimeout(r, 1200));
    expect((await get(client, quiet.url, { lane: 1 })).body!.toString()).toBe('a');
    expect((await get(client, hinted.url, { lane: 1 })).body!.toString()).toBe('b');
    expect(quiet.connections()).toBe(1);
    expect(hinted.connections()).toBe(2);
    await client.close();
  });
});
