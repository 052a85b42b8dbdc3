// POST /_sim/reset, as `scalegram serve` and the runner's server answer it (server/service-host.ts):
// a new world on the topology and seed asked for, behind the same port, the same keep-alive
// connections and the same admin token; requests begun before it finish on the old world; bad input
// is a 400 in the v1 envelope and leaves the old world serving; a durable server refuses.

import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../server/app.ts';
import { ServiceHost } from '../server/service-host.ts';
import { randomSecret } from '../sim/domain/credentials.ts';
import { loadTopology } from '../sim/topology-config.ts';
import { buildTopology } from '../sim/topology.ts';

const TOKEN = randomSecret();
let host: ServiceHost;
let base: string;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

interface Answer {
  status: number;
  body: Record<string, unknown>;
  socketPort: number;
}

/** One request on the keep-alive agent; `socketPort` is the client side's port: the same number means the same connection. */
function call(method: string, path: string, body?: unknown, token: string | null = TOKEN): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = httpRequest(
      `${base}${path}`,
      {
        method,
        agent,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}) },
      },
      (res) => {
        const socketPort = res.socket.localPort!;
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as Record<string, unknown>, socketPort }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

beforeAll(async () => {
  host = await ServiceHost.start({ config: loadTopology('2012-sharded'), seed: 5, app: { rateLimitPerHour: 0, adminToken: TOKEN } });
  const a = await host.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${a.port}`;
});
afterAll(async () => {
  agent.destroy();
  await host.close();
});

describe('POST /_sim/reset', () => {
  it('builds the topology and seed asked for, drops every account, and answers on the same keep-alive connection', async () => {
    const seeded = await call('POST', '/_sim/seed', { users: 40, avgFollows: 3 });
    expect(seeded.status).toBe(200);
    const before = await call('GET', '/_sim/users?limit=1');
    expect(before.body.total).toBe(40);
    const token = ((before.body.users as Array<{ access_token: string }>)[0]!).access_token;
    expect((await call('GET', `/v1/users/self?access_token=${token}`, undefined, null)).status).toBe(200);

    const old = host.topology;
    const closed = new Promise<void>((resolve) => {
      const close = old.close.bind(old);
      old.close = async () => {
        await close();
        resolve();
      };
    });
    const reset = await call('POST', '/_sim/reset', { topology: '2010-single', seed: 9 });
    expect(reset.status).toBe(200);
    // The world it replaced is closed (its databases, caches, queues and timers), once idle.
    await closed;
    expect(reset.body.generation).toBe(2);
    expect(reset.body.seed).toBe(9);
    expect((reset.body.topology as { name: string }).name).toBe('2010-single');
    expect(reset.socketPort).toBe(before.socketPort);

    const after = await call('GET', '/_sim/topology');
    expect(after.body.name).toBe('2010-single');
    expect(after.body.seed).toBe(9);
    expect(after.socketPort).toBe(before.socketPort);
    expect((await call('GET', '/_sim/users?limit=1')).body.total).toBe(0);
    // The old world's tokens name no session in the new one.
    const stale = await call('GET', `/v1/users/self?access_token=${token}`, undefined, null);
    expect(stale.status).toBe(400);
    expect((stale.body.meta as { error_type: string }).error_type).toBe('OAuthAccessTokenException');
    expect(host.generation).toBe(2);
    expect(host.topology.config.name).toBe('2010-single');
  });

  it('without a body keeps the topology and the seed: a fresh world of the same kind', async () => {
    await call('POST', '/_sim/seed', { users: 10, avgFollows: 1 });
    const reset = await call('POST', '/_sim/reset');
    expect(reset.status).toBe(200);
    expect(reset.body.seed).toBe(9);
    expect((reset.body.topology as { name: string }).name).toBe('2010-single');
    expect((await call('GET', '/_sim/users?limit=1')).body.total).toBe(0);
  });

  it('takes a topology as a scenario exports it: changes to a preset with extends', async () => {
    const reset = await call('POST', '/_sim/reset', { topology: { extends: '2012-sharded', cache: { nodes: 3, leases: true } }, seed: 11 });
    expect(reset.status).toBe(200);
    const t = (await call('GET', '/_sim/topology')).body as { cache: { leases: boolean; nodes: unknown[] }; config: { shards: { logical: number } } };
    expect(t.cache.nodes).toHaveLength(3);
    expect(t.cache.leases).toBe(true);
    expect(t.config.shards.logical).toBe(2048);
  });

  it('refuses bad input with a 400 in the v1 envelope and keeps the world it has', async () => {
    await call('POST', '/_sim/seed', { users: 5, avgFollows: 1 });
    const generation = host.generation;
    const cases: Array<[unknown, RegExp]> = [
      [{ topology: 'no-such-preset' }, /unknown topology preset "no-such-preset"/],
      // A file name is not read on a remote caller's behalf.
      [{ topology: '/etc/scalegram.json' }, /unknown topology preset/],
      [{ topology: { extends: 'nope' } }, /extends: unknown preset "nope"/],
      [{ topology: { cache: { nodes: -1 } } }, /cache\.nodes/],
      [{ seed: -1 }, /seed/],
      [{ seed: 1.5 }, /seed/],
      [{ topology: '2010-single', extra: 1 }, /extra|additional/],
      [[1, 2], /object/],
      // Not coerced: a seed is a number or absent, a topology a name or an object.
      [{ seed: null }, /seed must be an integer/],
      [{ seed: '7' }, /seed must be an integer/],
      [{ seed: [5] }, /seed must be an integer/],
      [{ seed: true }, /seed must be an integer/],
      [{ topology: 123 }, /topology must be a preset's name or an object/],
      [{ topology: null }, /topology must be a preset's name or an object/],
      [{ topology: ['2010-single'] }, /topology must be a preset's name or an object/],
    ];
    for (const [body, message] of cases) {
      const r = await call('POST', '/_sim/reset', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      const meta = r.body.meta as { error_type: string; error_message: string };
      expect(meta.error_type).toBe('APIInvalidParametersError');
      expect(meta.error_message).toMatch(message);
    }
    expect(host.generation).toBe(generation);
    expect((await call('GET', '/_sim/users?limit=1')).body.total).toBe(5);
  });

  it('needs the admin token', async () => {
    const r = await call('POST', '/_sim/reset', {}, null);
    expect(r.status).toBe(401);
    expect((r.body.meta as { error_type: string }).error_type).toBe('APIRequiresAuthenticationError');
  });

  it('a request begun before the reset finishes on the old world; the next one sees the new world', async () => {
    // A seeding runs in slices while the API answers: once some accounts exist and it has not
    // answered, it is in flight for certain.
    let answered = false;
    const seeding = fetch(`${base}/_sim/seed`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ users: 20_000, avgFollows: 5 }) }).then(async (r) => {
      answered = true;
      return { status: r.status, body: (await r.json()) as { users: number } };
    });
    while (((await call('GET', '/_sim/users?limit=1')).body.total as number) === 0) await new Promise((r) => setTimeout(r, 5));
    expect(answered, 'the seeding answered before it was seen in flight: seed more accounts').toBe(false);
    const reset = await call('POST', '/_sim/reset', { seed: 12 });
    expect(reset.status).toBe(200);
    const seeded = await seeding;
    expect(seeded.status).toBe(200);
    expect(seeded.body.users).toBe(20_000);
    // The accounts went to the world that was replaced.
    expect((await call('GET', '/_sim/users?limit=1')).body.total).toBe(0);
  });

  it('resets asked for at once are applied one after the other', async () => {
    const answers = await Promise.all([1, 2, 3].map((seed) => fetch(`${base}/_sim/reset`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ seed }) }).then((r) => r.json() as Promise<{ generation: number; seed: number }>)));
    const generations = answers.map((a) => a.generation).sort((a, b) => a - b);
    expect(generations[1]).toBe(generations[0]! + 1);
    expect(generations[2]).toBe(generations[0]! + 2);
    const last = answers.find((a) => a.generation === generations[2])!;
    expect((await call('GET', '/_sim/topology')).body.seed).toBe(last.seed);
  });
});

describe('POST /_sim/reset from the parts of a segmented run (k6-operator runs setup in every runner pod)', () => {
  const SEQUENCE = '0,1/3,2/3,1';
  const part = (segment: string, seed = 31) => call('POST', '/_sim/reset', { topology: '2010-single', seed, segment, sequence: SEQUENCE });

  it('resets once per run: the first part to ask resets, the others get its answer; setup data goes from the first to the others', async () => {
    const before = host.generation;
    const second = await part('1/3:2/3');
    expect(second.status).toBe(200);
    const round = second.body.round as { id: number; first: boolean };
    expect(round.first).toBe(true);
    expect(second.body.generation).toBe(before + 1);
    await call('POST', '/_sim/seed', { users: 7, avgFollows: 1 });

    const first = await part('0:1/3');
    expect(first.body.generation).toBe(before + 1);
    expect(first.body.round).toEqual({ id: round.id, first: false });
    // Nothing the first part to ask did was undone.
    expect((await call('GET', '/_sim/users?limit=1')).body.total).toBe(7);

    const url = `/_sim/reset/rounds/${round.id}/setup`;
    expect((await call('GET', url)).body).toEqual({ pending: true });
    expect((await call('PUT', url, { data: { tokens: ['a', 'b'] } })).status).toBe(200);
    expect((await call('GET', url)).body).toEqual({ data: { tokens: ['a', 'b'] } });

    // The third part joins the same round; then the round is whole, and the next ask is a new run.
    expect(((await part('2/3:1')).body.round as { id: number }).id).toBe(round.id);
    const next = await part('0:1/3');
    expect(next.body.generation).toBe(before + 2);
    expect((next.body.round as { id: number; first: boolean })).toEqual({ id: round.id + 1, first: true });
    expect((await call('GET', url)).status).toBe(404);
  });

  it('a part that asks twice, or a different topology or seed, begins a new round', async () => {
    const a = await part('0:1/3');
    const again = await part('0:1/3');
    expect(again.body.generation).toBe((a.body.generation as number) + 1);
    const other = await part('1/3:2/3', 32);
    expect(other.body.generation).toBe((again.body.generation as number) + 1);
    expect((other.body.round as { first: boolean }).first).toBe(true);
  });

  it("shares the first part's setup error, and refuses a malformed share or a lone segment", async () => {
    const r = await part('0:1/3', 40);
    const url = `/_sim/reset/rounds/${(r.body.round as { id: number }).id}/setup`;
    expect((await call('PUT', url, {})).status).toBe(400);
    expect((await call('PUT', url, { data: 1, error: 'x' })).status).toBe(400);
    expect((await call('PUT', url, { data: 1, eror: 'x' })).status).toBe(400);
    expect((await call('PUT', url, { error: 'seeding failed: 503' })).status).toBe(200);
    expect((await call('GET', url)).body).toEqual({ error: 'seeding failed: 503' });
    const lone = await call('POST', '/_sim/reset', { segment: '0:1/2' });
    expect(lone.status).toBe(400);
    expect((lone.body.meta as { error_message: string }).error_message).toMatch(/segment and body\/sequence go together/);
    const bad = await call('POST', '/_sim/reset', { segment: 'x', sequence: '0,1' });
    expect(bad.status).toBe(400);
  });

  it('GET /_sim/reset names the world and when it began', async () => {
    const t0 = Date.now();
    await call('POST', '/_sim/reset', { seed: 50 });
    const s = (await call('GET', '/_sim/reset')).body as { generation: number; sinceMs: number; seed: number; name: string };
    expect(s.generation).toBe(host.generation);
    expect(s.seed).toBe(50);
    expect(s.name).toBe(host.topology.config.name);
    expect(s.sinceMs).toBeGreaterThanOrEqual(t0);
  });
});

describe('POST /_sim/reset where the service cannot be replaced', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'scalegram-reset-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a server with a data dir refuses (409): its data is the user’s', async () => {
    const durable = await ServiceHost.start({ config: loadTopology('2010-single'), seed: 1, topology: { dataDir: dir }, app: { rateLimitPerHour: 0, adminToken: TOKEN } });
    try {
      const r = await durable.app.inject({ method: 'POST', url: '/_sim/reset', headers: { authorization: `Bearer ${TOKEN}` }, payload: { seed: 2 } });
      expect(r.statusCode).toBe(409);
      expect(r.json().meta.error_type).toBe('APIError');
      expect(r.json().meta.error_message).toMatch(/--data-dir/);
      expect(durable.generation).toBe(1);
      // Nor does a part of a segmented run open a round there.
      const part = await durable.app.inject({ method: 'POST', url: '/_sim/reset', headers: { authorization: `Bearer ${TOKEN}` }, payload: { segment: '0:1/2', sequence: '0,1/2,1' } });
      expect(part.statusCode).toBe(409);
      const round = await durable.app.inject({ method: 'GET', url: '/_sim/reset/rounds/1/setup', headers: { authorization: `Bearer ${TOKEN}` } });
      expect(round.statusCode).toBe(404);
    } finally {
      await durable.close();
    }
  });

  it('the per-address connection cap holds across a reset: connections the old world accepted still count', async () => {
    const capped = await ServiceHost.start({ config: loadTopology('2010-single'), seed: 1, app: { rateLimitPerHour: 0, adminToken: TOKEN, connections: { maxConnectionsPerAddress: 2 } } });
    const { port } = await capped.listen(0, '127.0.0.1');
    const sockets: Socket[] = [];
    /** Opens a connection and asks for /healthz on it (or resets): 'answered', or 'refused' when the server reset it. */
    const ask = (path = '/healthz', method = 'GET') =>
      new Promise<'answered' | 'refused'>((resolve) => {
        const socket = connect(port, '127.0.0.1');
        sockets.push(socket);
        socket.on('error', () => resolve('refused'));
        socket.on('close', () => resolve('refused'));
        socket.on('data', (d: Buffer) => {
          if (d.toString().startsWith('HTTP/1.1 200')) resolve('answered');
        });
        socket.write(`${method} ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 0\r\n\r\n`);
      });
    try {
      expect(await ask()).toBe('answered');
      expect(await ask('/_sim/reset', 'POST')).toBe('answered');
      expect(capped.generation).toBe(2);
      // Two connections are open (both kept alive), from the old world: a third is over the cap.
      expect(await ask()).toBe('refused');
    } finally {
      for (const s of sockets) s.destroy();
      await capped.close();
    }
  });

  it('an app built alone (no host) answers 501', async () => {
    const topology = await buildTopology({ config: loadTopology('2010-single'), seed: 1 });
    const app = await buildApp({ topology, adminToken: TOKEN });
    try {
      const r = await app.inject({ method: 'POST', url: '/_sim/reset', headers: { authorization: `Bearer ${TOKEN}` }, payload: {} });
      expect(r.statusCode).toBe(501);
      expect(r.json().meta.error_message).toMatch(/cannot be reset/);
    } finally {
      await app.close();
      await topology.close();
    }
  });
});
