// The admin API (/_sim/*) is closed without its bearer token: every route, every method, unknown
// paths and percent-encoded spellings of the prefix answer 401 in the v1 envelope; the token comes
// from the CSPRNG at start (printed once) or from the operator, and `scalegram run --target` takes
// it as -e ADMIN_TOKEN.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../server/app.ts';
import { ADMIN_HEADERS, ADMIN_TOKEN, makeEnv, simInject, type TestEnv } from './helpers/app.ts';

let env: TestEnv;
beforeAll(async () => {
  env = await makeEnv();
});
afterAll(async () => {
  await env.close();
});

/** Every admin operation the OpenAPI document lists, with a concrete URL. */
async function adminOperations(): Promise<Array<{ method: string; url: string }>> {
  const doc = (await env.app.inject('/docs/json')).json() as { paths: Record<string, Record<string, unknown>> };
  const ops: Array<{ method: string; url: string }> = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    if (!path.startsWith('/_sim')) continue;
    const url = path.replace('{node}', 'cache-1').replace('{id}', '1');
    for (const method of Object.keys(item)) ops.push({ method: method.toUpperCase(), url });
  }
  return ops;
}

describe('the admin API without its token', () => {
  it('answers 401 APIRequiresAuthenticationError with WWW-Authenticate on every /_sim operation, and runs none of them', async () => {
    const ops = await adminOperations();
    expect(ops.length).toBeGreaterThanOrEqual(18);
    const faultsBefore = (await simInject(env.app, '/_sim/faults')).json() as { faults: unknown[] };
    for (const op of ops) {
      for (const headers of [{}, { authorization: 'Bearer wrong-token-wrong-token' }, { authorization: ADMIN_TOKEN }, { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` }]) {
        const res = await env.app.inject({ method: op.method as 'GET' | 'POST', url: op.url, headers, ...(op.method === 'POST' ? { payload: {} } : {}) });
        expect(res.statusCode, `${op.method} ${op.url} ${JSON.stringify(headers)}`).toBe(401);
        expect(res.json()).toEqual({ meta: { code: 401, error_type: 'APIRequiresAuthenticationError', error_message: expect.stringContaining('admin token') } });
        expect(res.headers['www-authenticate']).toBe('Bearer realm="scalegram-admin"');
      }
    }
    // Nothing was killed, failed or moved by the refused requests.
    expect(((await simInject(env.app, '/_sim/faults')).json() as { faults: unknown[] }).faults).toEqual(faultsBefore.faults);
    const failures = (await simInject(env.app, '/_sim/metrics')).json() as { counters: Array<{ name: string; value: number }> };
    expect(failures.counters.find((c) => c.name === 'admin_auth_failures')?.value).toBe(ops.length * 4);
  });

  it('the OpenAPI document says every /_sim operation needs the admin bearer token', async () => {
    const doc = (await env.app.inject('/docs/json')).json() as { components: { securitySchemes: Record<string, unknown> }; paths: Record<string, Record<string, { security?: unknown }>> };
    expect(doc.components.securitySchemes.adminToken).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!path.startsWith('/_sim')) continue;
      for (const op of Object.values(item)) expect(op.security, path).toEqual([{ adminToken: [] }]);
    }
  });

  it('answers every operation with the token (no 401)', async () => {
    for (const op of await adminOperations()) {
      if (op.method !== 'GET') continue;
      const res = await env.app.inject({ method: 'GET', url: op.url, headers: ADMIN_HEADERS });
      expect(res.statusCode, op.url).not.toBe(401);
    }
  });

  it.each(['/_sim/topology.json', '/%5Fsim/topology', '/%5fsim/users', '/_sim%2Ftopology', '/x/../_sim/topology', '/_sim/no-such-thing', '/_sim'])('%s is closed too', async (url) => {
    const res = await env.app.inject(url);
    expect(res.statusCode).toBe(401);
    const opened = await env.app.inject({ url, headers: ADMIN_HEADERS });
    expect(opened.statusCode).not.toBe(401);
  });

  it('the seeded roster and its tokens are admin-only', async () => {
    await simInject(env.app, { method: 'POST', url: '/_sim/seed', payload: { users: 20, avgFollows: 2, sample: 5 } });
    expect((await env.app.inject('/_sim/users')).statusCode).toBe(401);
    const roster = (await simInject(env.app, '/_sim/users?limit=5')).json() as { users: Array<{ access_token: string }> };
    expect(roster.users).toHaveLength(5);
    expect(roster.users[0]!.access_token).toMatch(/^\d+\.[0-9a-f]{32}$/);
  });

  it('the v1 API is not affected by the admin token: an admin token is no access token', async () => {
    expect((await env.app.inject({ url: '/v1/users/self', headers: ADMIN_HEADERS })).statusCode).toBe(400);
    expect((await env.app.inject('/healthz')).statusCode).toBe(200);
  });

  it('buildApp refuses an admin token shorter than 16 characters', async () => {
    await expect(buildApp({ topology: env.topology, adminToken: 'short' })).rejects.toThrow(/at least 16/);
  });
});

// -------------------------------------------------------------------------------- the CLI

interface Served {
  child: ChildProcess;
  url: string;
  stdout: string;
}

function serve(args: string[], extraEnv: Record<string, string> = {}): Promise<Served> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/scalegram.mjs', 'serve', '--port', '0', '--topology', 'test/fixtures/small-topology.json', ...args], {
      env: { ...process.env, ...extraEnv, SCALEGRAM_ADMIN_TOKEN: extraEnv.SCALEGRAM_ADMIN_TOKEN ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${stdout}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const url = /http:\/\/[0-9.:[\]a-z]+:\d+/.exec(stdout)?.[0];
      if (url && /admin token:/.test(stdout) && stdout.endsWith('\n')) {
        clearTimeout(timer);
        resolve({ child, url, stdout });
      }
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${stdout}${stderr}`)));
  });
}

function stop(s: Served): Promise<void> {
  return new Promise((resolve) => {
    s.child.removeAllListeners('exit');
    s.child.once('exit', () => resolve());
    s.child.kill('SIGTERM');
  });
}

describe('scalegram serve and the admin token', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'scalegram-admin-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('generates a new token at every start (never from --seed), prints it once, and only it opens /_sim', async () => {
    const a = await serve(['--seed', '5']);
    const b = await serve(['--seed', '5']);
    try {
      const tokenOf = (s: Served) => /admin token: (\S+)/.exec(s.stdout)![1]!;
      expect(tokenOf(a)).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(tokenOf(b)).not.toBe(tokenOf(a));
      expect(a.stdout.split(tokenOf(a)).length - 1).toBe(1);
      expect((await fetch(`${a.url}/_sim/topology`)).status).toBe(401);
      expect((await fetch(`${a.url}/_sim/topology`, { headers: { authorization: `Bearer ${tokenOf(b)}` } })).status).toBe(401);
      const ok = await fetch(`${a.url}/_sim/topology`, { headers: { authorization: `Bearer ${tokenOf(a)}` } });
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { seed: number }).seed).toBe(5);

      // `run --target` takes it as -e ADMIN_TOKEN: setup seeds through /_sim and the run passes.
      const run = (extra: string[]) =>
        spawnSync(process.execPath, ['bin/scalegram.mjs', 'run', 'test/fixtures/runs/pass.ts', '--quiet', '--target', a.url, '--out', join(tmp, `run-${extra.length}`), '-e', `OUT_FILE=${join(tmp, `o-${extra.length}.json`)}`, ...extra], {
          encoding: 'utf8',
          timeout: 120_000,
          env: { ...process.env, SCALEGRAM_ADMIN_TOKEN: '' },
        });
      const withToken = run(['-e', `ADMIN_TOKEN=${tokenOf(a)}`]);
      // Word-bounded: the run prints a random seed, and a seed such as 1354012719 holds the digits 401.
      expect(withToken.stderr).not.toMatch(/\b401\b/);
      expect(withToken.status).toBe(0);
      const without = run([]);
      expect(without.status).toBe(107);
      expect(without.stderr).toMatch(/setup failed/);
      // A script that needs no admin call still runs; the runner says once why it has no telemetry.
      const telemetryless = spawnSync(process.execPath, ['bin/scalegram.mjs', 'run', 'test/fixtures/runs/fail-threshold.ts', '--quiet', '--target', a.url, '--out', join(tmp, 'no-admin')], {
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, SCALEGRAM_ADMIN_TOKEN: '' },
      });
      expect(telemetryless.status).toBe(99);
      expect(telemetryless.stderr.match(/pass -e ADMIN_TOKEN=/g)).toHaveLength(1);
    } finally {
      await Promise.all([stop(a), stop(b)]);
    }
  }, 240_000);

  it('takes the operator’s token from SCALEGRAM_ADMIN_TOKEN without echoing it, and refuses a short one', async () => {
    const chosen = 'operator-chosen-token-0123456789';
    const s = await serve([], { SCALEGRAM_ADMIN_TOKEN: chosen });
    try {
      expect(s.stdout).not.toContain(chosen);
      expect(s.stdout).toMatch(/admin token: as given by SCALEGRAM_ADMIN_TOKEN/);
      expect((await fetch(`${s.url}/_sim/scalars`, { headers: { authorization: `Bearer ${chosen}` } })).status).toBe(200);
    } finally {
      await stop(s);
    }
    const short = spawnSync(process.execPath, ['bin/scalegram.mjs', 'serve', '--port', '0', '--admin-token', 'tooshort'], { encoding: 'utf8', timeout: 60_000 });
    expect(short.status).toBe(2);
    expect(short.stderr).toMatch(/at least 16 characters \(--admin-token\)/);
  }, 120_000);
});
