// The teaching dashboard's web server: one page (dashboard/page/), its assets (uPlot from the
// package, nothing from a CDN), a server-sent-events stream of frames once a second, and the
// actions its buttons ask for. Bound to loopback by default. Opening the printed URL (with its key,
// from the CSPRNG, as notebook servers print theirs) gives the browser a session cookie; the page
// acts through this server, which holds the admin token: the page never sees it. Several viewers
// may watch at once: one frame is read per second and sent to each.

import { randomSecret, secretEquals } from '../sim/domain/credentials.ts';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { DashboardInputError, type DashboardAction, type DashboardFrame } from './admin-source.ts';

/** Where frames come from: a live service's admin API (admin-source.ts), or a recorded run (replay-source.ts), which cannot act. */
export interface DashboardSource {
  frame(opts?: { whole?: boolean }): Promise<DashboardFrame>;
  act?(a: DashboardAction): Promise<{ status: number; body: unknown }>;
}

const COOKIE = 'sg_dashboard';
/** Largest body of POST /actions (bytes). */
const ACTION_BODY_LIMIT = 4096;

const require = createRequire(import.meta.url);
const page = (name: string) => fileURLToPath(new URL(`./page/${name}`, import.meta.url));
/** Every file the page loads, by path: read once, at start. */
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: page('index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: page('app.js'), type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: page('style.css'), type: 'text/css; charset=utf-8' },
  '/uPlot.iife.min.js': { file: require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/uPlot.min.css': { file: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

export interface DashboardOptions {
  source: DashboardSource;
  /** Default 0: a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** How often a frame is read and sent (ms; default 1000). */
  everyMs?: number;
}

export interface Dashboard {
  /** The URL to open, with its key. */
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  const key = randomSecret();
  const sessions = new Set<string>();
  const viewers = new Set<ServerResponse>();
  const files = Object.fromEntries(Object.entries(ASSETS).map(([path, a]) => [path, { body: readFileSync(a.file), type: a.type }]));
  const source = o.source;

  const headers = {
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  };

  const session = (req: IncomingMessage): boolean => {
    const m = /(?:^|;\s*)sg_dashboard=([A-Za-z0-9_-]+)/.exec(req.headers.cookie ?? '');
    return m !== null && sessions.has(m[1]!);
  };
  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer) => {
    res.writeHead(status, { ...headers, 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, body: unknown) => send(res, status, 'application/json; charset=utf-8', JSON.stringify(body));

  const server = createServer((req, res) => {
    void handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) json(res, 500, { error: (e as Error).message });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    // The printed URL: its key buys a session cookie, and the key leaves the address bar.
    const given = url.searchParams.get('key');
    if (req.method === 'GET' && url.pathname === '/' && given !== null) {
      if (!secretEquals(given, key)) return send(res, 403, 'text/plain; charset=utf-8', 'This key is not this dashboard’s: open the URL scalegram printed.\n');
      const id = randomSecret();
      sessions.add(id);
      res.writeHead(303, { ...headers, location: '/', 'set-cookie': `${COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/` });
      res.end();
      return;
    }
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204, headers);
      res.end();
      return;
    }
    if (!session(req)) return send(res, 401, 'text/plain; charset=utf-8', 'Open the dashboard with the URL scalegram printed (it carries a key).\n');
    const asset = req.method === 'GET' ? files[url.pathname] : undefined;
    if (asset) return send(res, 200, asset.type, asset.body);
    if (req.method === 'GET' && url.pathname === '/events') return watch(res);
    if (req.method === 'POST' && url.pathname === '/actions') return act(req, res);
    return json(res, 404, { error: `no ${req.method} ${url.pathname} here` });
  }

  /** A viewer: the whole telemetry so far first, then each frame. */
  async function watch(res: ServerResponse): Promise<void> {
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
    viewers.add(res);
    res.on('close', () => viewers.delete(res));
    try {
      const first = await source.frame({ whole: true });
      res.write(`event: whole\ndata: ${JSON.stringify(first)}\n\n`);
    } catch (e) {
      res.write(`event: problem\ndata: ${JSON.stringify({ message: (e as Error).message })}\n\n`);
    }
  }

  async function act(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Same-origin only (the cookie is SameSite=Strict too), JSON only.
    if (req.headers.origin !== undefined && req.headers.origin !== `http://${req.headers.host}`) return json(res, 403, { error: 'cross-origin actions are refused' });
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return json(res, 400, { error: 'send the action as JSON' });
    let text = '';
    for await (const chunk of req) {
      text += (chunk as Buffer).toString();
      if (text.length > ACTION_BODY_LIMIT) return json(res, 400, { error: `an action is at most ${ACTION_BODY_LIMIT} bytes` });
    }
    let action: DashboardAction;
    try {
      action = JSON.parse(text) as DashboardAction;
    } catch {
      return json(res, 400, { error: 'the body is not JSON' });
    }
    if (action === null || typeof action !== 'object' || Array.isArray(action) || typeof action.action !== 'string') return json(res, 400, { error: 'an action is a JSON object with an "action" name: {"action": "cache.kill", "node": "cache-2"}' });
    if (!source.act) return json(res, 409, { error: 'a replay shows what happened: it cannot act' });
    try {
      const answer = await source.act(action);
      // What the service refused (4xx) is the user's to change, and says why; anything else is the service's failing.
      const status = answer.status === 200 ? 200 : answer.status >= 400 && answer.status < 500 ? answer.status : 502;
      json(res, status, { action, answer, ...(status !== 200 ? { error: refusal(answer.body) } : {}) });
    } catch (e) {
      if (e instanceof DashboardInputError) return json(res, 400, { error: e.message });
      throw e;
    }
  }

  // One frame a second for every viewer; none read while nobody watches.
  let busy = false;
  const timer = setInterval(() => {
    if (viewers.size === 0 || busy) return;
    busy = true;
    source
      .frame()
      .then((f) => {
        const line = `event: frame\ndata: ${JSON.stringify(f)}\n\n`;
        for (const v of viewers) v.write(line);
      })
      .catch((e: unknown) => {
        const line = `event: problem\ndata: ${JSON.stringify({ message: (e as Error).message })}\n\n`;
        for (const v of viewers) v.write(line);
      })
      .finally(() => (busy = false));
  }, o.everyMs ?? 1000);
  timer.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  const hostPart = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    url: `http://${hostPart}:${a.port}/?key=${key}`,
    server,
    close: async () => {
      clearInterval(timer);
      for (const v of viewers) v.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}

/** The message of a refusal from the admin API (the v1 envelope's error_message), or the answer as text. */
function refusal(body: unknown): string {
  const meta = (body as { meta?: { error_message?: unknown } } | null)?.meta;
  if (meta && typeof meta.error_message === 'string') return meta.error_message;
  return typeof body === 'string' ? body.slice(0, 300) : JSON.stringify(body).slice(0, 300);
}
