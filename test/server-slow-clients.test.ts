// Clients that hold connections without finishing requests, against the server on a real port with
// short limits: trickled and stalled headers and bodies get a 408 in the v1 envelope and a close, an
// idle keep-alive connection is closed, connections over the per-address cap are reset at once,
// each counted by reason; meanwhile ordinary requests keep succeeding, and the runner's own client
// keeps working with the idle timeout it is told about.

import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpClient } from '../scenarios/runner/http-client.ts';
import { CLOSE_REASONS, type CloseReason, type ConnectionLimits } from '../server/connection-guard.ts';
import type { Topology } from '../sim/topology.ts';
import { ADMIN_HEADERS, makeEnv } from './helpers/app.ts';

interface Served {
  port: number;
  topology: Topology;
  /** Accepted connections, by client address (counted by the test, beside the server's own bookkeeping). */
  accepted: Map<string, number>;
  closed(reason: CloseReason): number;
}

const toClose: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of toClose.splice(0)) await c();
});

async function serve(connections: Partial<ConnectionLimits>): Promise<Served> {
  const { app, topology, close } = await makeEnv({ seed: 5, connections });
  const accepted = new Map<string, number>();
  app.server.on('connection', (s: Socket) => accepted.set(s.remoteAddress!, (accepted.get(s.remoteAddress!) ?? 0) + 1));
  await app.listen({ port: 0, host: '127.0.0.1' });
  toClose.push(close);
  return {
    port: (app.server.address() as { port: number }).port,
    topology,
    accepted,
    closed: (reason) => topology.metrics.value('http_connections_closed', { reason }),
  };
}

interface RawOutcome {
  /** Every byte the server sent, as latin1 text. */
  text: string;
  /** ms from the first byte written to the close. */
  closedAfterMs: number;
  /** ms from the first byte written to the first byte received (-1: none). */
  firstByteAfterMs: number;
  error: string | null;
}

/**
 * A raw client: writes `first` once connected, then `trickle` every `everyMs` while the socket is
 * open (none when trickle is empty), and resolves when the server closes. `timeoutMs` is the test's
 * own bound, far past every server limit here.
 */
function rawClient(port: number, first: string, opts: { trickle?: string; everyMs?: number; localAddress?: string; timeoutMs?: number } = {}): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let t0 = 0;
    let firstByte = -1;
    let error: string | null = null;
    let timer: NodeJS.Timeout | undefined;
    const socket = connect({ port, host: '127.0.0.1', ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) }, () => {
      t0 = performance.now();
      if (first) socket.write(first);
      if (opts.trickle) timer = setInterval(() => socket.writable && socket.write(opts.trickle!), opts.everyMs ?? 100);
    });
    socket.setTimeout(opts.timeoutMs ?? 15_000, () => socket.destroy(new Error('the test gave up waiting for the server')));
    socket.on('data', (c: Buffer) => {
      if (firstByte < 0) firstByte = performance.now() - t0;
      chunks.push(c);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedAfterMs: t0 === 0 ? 0 : performance.now() - t0, firstByteAfterMs: firstByte, error });
    });
  });
}

function envelopeOf(text: string): { status: number; headers: string; body: unknown } {
  const end = text.indexOf('\r\n\r\n');
  const head = text.slice(0, end);
  return { status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1]), headers: head, body: JSON.parse(text.slice(end + 4)) };
}

/** An ordinary request on a connection of its own (Connection: close), from `localAddress`. */
function ordinary(port: number, path: string, localAddress = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false, localAddress, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('timeout', () => req.destroy(new Error('ordinary request timed out')));
    req.on('error', reject);
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('slow clients', () => {
  it('trickled or stalled headers and bodies get a 408 and a close, an idle connection is closed, each counted, while ordinary requests succeed', async () => {
    // Short limits so the test takes seconds; every bound below is a lower bound (timers never fire
    // early) or a generous upper one, so a busy machine cannot fail it.
    const limits = { headersTimeoutMs: 1000, requestTimeoutMs: 1500, idleTimeoutMs: 1000, maxConnectionsPerAddress: 0 };
    const s = await serve(limits);
    for (const reason of CLOSE_REASONS) expect(s.closed(reason)).toBe(0);

    let open = 0;
    let ordinaryWhileOpen = 0;
    const failures: string[] = [];
    let stop = false;
    const slow = async (p: Promise<RawOutcome>) => {
      open++;
      try {
        return await p;
      } finally {
        open--;
      }
    };
    const outcomes = Promise.all([
      // A header line every 100 ms, never the blank line: bytes keep coming, the deadline still passes.
      slow(rawClient(s.port, 'GET /v1/media/popular HTTP/1.1\r\nHost: x\r\n', { trickle: 'X-Slow: 1\r\n', everyMs: 100 })),
      // A body of 1000 announced bytes, one byte every 100 ms.
      slow(rawClient(s.port, 'POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nusername=', { trickle: 'a', everyMs: 100 })),
      // The same, stalled after 10 bytes.
      slow(rawClient(s.port, 'POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nusername=b')),
      // One complete request, then nothing.
      slow(rawClient(s.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')),
    ]);
    const traffic = (async () => {
      await sleep(20);
      while (!stop) {
        try {
          const status = await ordinary(s.port, '/healthz');
          if (status !== 200) failures.push(`status ${status}`);
          else if (open === 4) ordinaryWhileOpen++;
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    })();
    const [header, trickledBody, stalledBody, idle] = await outcomes;
    stop = true;
    await traffic;

    expect(failures).toEqual([]);
    expect(ordinaryWhileOpen).toBeGreaterThan(0);

    const headerAnswer = envelopeOf(header.text);
    expect(headerAnswer.status).toBe(408);
    expect(headerAnswer.headers).toMatch(/\r\nConnection: close(\r\n|$)/i);
    expect(headerAnswer.body).toEqual({ meta: { code: 408, error_type: 'APIInvalidParametersError', error_message: expect.stringMatching(/headers/) } });
    expect(header.closedAfterMs).toBeGreaterThanOrEqual(limits.headersTimeoutMs * 0.95);
    for (const body of [trickledBody, stalledBody]) {
      const answer = envelopeOf(body.text);
      expect(answer.status).toBe(408);
      expect(answer.body).toEqual({ meta: { code: 408, error_type: 'APIInvalidParametersError', error_message: expect.stringMatching(/body/) } });
      expect(body.closedAfterMs).toBeGreaterThanOrEqual(limits.requestTimeoutMs * 0.95);
    }
    // The idle connection got its one answer, with the idle limit announced, and nothing after it.
    expect(idle.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(idle.text).toMatch(/\r\nKeep-Alive: timeout=1\r\n/i);
    expect(idle.text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(idle.closedAfterMs - idle.firstByteAfterMs).toBeGreaterThanOrEqual(limits.idleTimeoutMs * 0.95);
    for (const o of [header, trickledBody, stalledBody, idle]) expect(o.closedAfterMs).toBeLessThan(10_000);

    expect(Object.fromEntries(CLOSE_REASONS.map((r) => [r, s.closed(r)]))).toEqual({ header_timeout: 1, body_timeout: 2, idle_timeout: 1, address_cap: 0 });
    // The same counts in both views of the metrics.
    const prom = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
    expect(prom).toContain('scalegram_http_connections_closed_total{reason="header_timeout"} 1');
    expect(prom).toContain('scalegram_http_connections_closed_total{reason="body_timeout"} 2');
    expect(prom).toContain('scalegram_http_connections_closed_total{reason="idle_timeout"} 1');
    expect(prom).toContain('scalegram_http_connections_closed_total{reason="address_cap"} 0');
    const simMetrics = (await (await fetch(`http://127.0.0.1:${s.port}/_sim/metrics`, { headers: ADMIN_HEADERS })).json()) as { counters: Array<{ name: string; labels: Record<string, string>; value: number }> };
    const snap = simMetrics.counters.filter((c) => c.name === 'http_connections_closed');
    expect(Object.fromEntries(snap.map((c) => [c.labels.reason, c.value]))).toEqual({ header_timeout: 1, body_timeout: 2, idle_timeout: 1, address_cap: 0 });
  }, 30_000);

  it('connections over the per-address cap are reset at once and counted, other addresses are served, and a freed slot is reused', async () => {
    // Long timeouts: the held connections must outlive the test however slow the machine is.
    const s = await serve({ maxConnectionsPerAddress: 3, headersTimeoutMs: 60_000, requestTimeoutMs: 60_000, idleTimeoutMs: 60_000 });
    // Three kept-alive connections from 127.0.0.1, each with an answered request: the cap is full.
    const held: Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const socket = connect(s.port, '127.0.0.1');
      held.push(socket);
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.once('data', () => resolve());
        socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      });
    }
    toClose.unshift(async () => {
      for (const h of held) h.destroy();
    });

    const refused = await Promise.all(Array.from({ length: 4 }, () => rawClient(s.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')));
    for (const r of refused) {
      expect(r.text).toBe('');
      // Reset before or after the client saw its connect; never a 15 s wait for the test's own bound.
      expect(r.closedAfterMs).toBeLessThan(5000);
      expect(r.error === null || r.error === 'ECONNRESET').toBe(true);
    }
    expect(s.closed('address_cap')).toBe(4);

    // Another address is not affected by 127.0.0.1's cap.
    expect(await ordinary(s.port, '/healthz', '127.0.0.2')).toBe(200);
    expect(s.accepted.get('127.0.0.2')).toBe(1);

    // One held connection closes; the server frees its slot when it sees the close, so the next
    // connection from 127.0.0.1 is served (attempts that beat the close are refused, and counted).
    held[0]!.destroy();
    let attempts = 0;
    let served = false;
    while (!served && attempts < 50) {
      attempts++;
      try {
        served = (await ordinary(s.port, '/healthz')) === 200;
      } catch {
        await sleep(20);
      }
    }
    expect(served).toBe(true);
    expect(s.closed('address_cap')).toBe(4 + attempts - 1);
    for (const reason of ['header_timeout', 'body_timeout', 'idle_timeout'] as const) expect(s.closed(reason)).toBe(0);
  }, 30_000);

  it("the runner's HTTP/1.1 client follows the server's announced idle timeout: it reconnects instead of reusing a connection the server is about to close", async () => {
    // The server announces timeout=2 and closes after 2 s (Node 20 adds a second); the runner
    // reuses an idle connection only up to a second short of the announced time (1 s here).
    const s = await serve({ idleTimeoutMs: 2000, maxConnectionsPerAddress: 0 });
    const client = new HttpClient();
    toClose.unshift(() => client.close());
    const base = `http://127.0.0.1:${s.port}`;
    const send = (method: string, path: string, body?: string) =>
      client.roundTrip({ method, url: new URL(base + path), headers: body ? ['content-type', 'application/x-www-form-urlencoded'] : [], body: body ? Buffer.from(body) : null, timeoutMs: 10_000, keepBody: true }, 1);

    const first = await send('GET', '/healthz');
    expect(first.error).toBeNull();
    const raw = first.rawHeaders ?? [];
    const announced = raw.flatMap((h, i) => (i % 2 === 0 && h.toLowerCase() === 'keep-alive' ? [raw[i + 1]] : []));
    expect(announced).toEqual(['timeout=2']);
    // Right away: the same connection (900 ms of slack before the runner's own 1 s limit).
    await sleep(100);
    expect((await send('GET', '/healthz')).status).toBe(200);
    expect(s.accepted.get('127.0.0.1')).toBe(1);
    // Idle past the runner's limit but not the server's: a POST (never retried) goes on a new connection.
    await sleep(1200);
    const signup = await send('POST', '/v1/accounts', 'username=lane&password=secret123&full_name=Lane');
    expect(signup.error).toBeNull();
    expect(signup.status).toBe(200);
    expect(s.accepted.get('127.0.0.1')).toBe(2);
    // Idle past the server's close: again a new connection, and no error.
    await sleep(3300);
    expect(s.closed('idle_timeout')).toBe(1);
    const late = await send('POST', '/v1/accounts', 'username=late&password=secret123&full_name=Late');
    expect(late.error).toBeNull();
    expect(late.status).toBe(200);
    expect(s.accepted.get('127.0.0.1')).toBe(3);
  }, 30_000);
});
