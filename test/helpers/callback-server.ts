// A real-time subscriber on loopback for tests: answers the hub.challenge verification (or not,
// as told), records every notification POST with its headers and body, and can fail a number of
// POSTs first (to exercise retries).

import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface CallbackServer {
  url: string;
  received: Received[];
  /** Notification POSTs (verification GETs excluded). */
  posts(): Received[];
  /** Answer the next `n` POSTs with `status` instead of 200. */
  failNext(n: number, status?: number): void;
  /** When false, verification GETs are answered with something other than the challenge. */
  echo: boolean;
  /** Resolves once `n` POSTs have arrived (polling every 10 ms, up to `timeoutMs`). */
  waitForPosts(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startCallbackServer(): Promise<CallbackServer> {
  const received: Received[] = [];
  let failing = 0;
  let failStatus = 500;
  const state = { echo: true };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.method === 'GET') {
        const challenge = new URL(req.url ?? '/', 'http://x').searchParams.get('hub.challenge') ?? '';
        res.end(state.echo ? challenge : 'not-the-challenge');
        return;
      }
      if (failing > 0) {
        failing--;
        res.statusCode = failStatus;
        res.end('try later');
        return;
      }
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const posts = () => received.filter((r) => r.method === 'POST');
  return {
    url: `http://127.0.0.1:${port}/callback`,
    received,
    posts,
    failNext(n, status = 500) {
      failing = n;
      failStatus = status;
    },
    get echo() {
      return state.echo;
    },
    set echo(v: boolean) {
      state.echo = v;
    },
    async waitForPosts(n, timeoutMs = 20_000) {
      for (let waited = 0; posts().length < n; waited += 10) {
        if (waited > timeoutMs) throw new Error(`expected ${n} notification POSTs, got ${posts().length} in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return posts();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
