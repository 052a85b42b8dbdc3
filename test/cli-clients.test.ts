// `scalegram clients register|list|revoke` against a child `scalegram serve`: the secret is
// printed once by register and appears nowhere else (not in list, not in the server's output), the
// credentials work for /v1/subscriptions, and a revoked client is refused.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', 'bin', 'scalegram.mjs');
const ADMIN = 'cli-clients-admin-token-0123';
/** Child processes start tsx and build a topology: generous, since a busy 2-core machine is slow. */
const START_TIMEOUT_MS = 60_000;

let server: ChildProcess;
let base = '';
let serverOutput = '';

beforeAll(async () => {
  server = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--seed', '1', '--admin-token', ADMIN, '--rate-limit', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  server.stderr!.on('data', (d: Buffer) => (serverOutput += d.toString()));
  base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${serverOutput}`)), START_TIMEOUT_MS);
    server.stdout!.on('data', (d: Buffer) => {
      serverOutput += d.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(serverOutput);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    server.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${serverOutput}`)));
  });
}, START_TIMEOUT_MS + 5000);

afterAll(async () => {
  if (server.exitCode === null) {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
});

function cli(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, [BIN, 'clients', ...args], { env: { ...process.env, ...env }, timeout: START_TIMEOUT_MS });
}

describe('scalegram clients', () => {
  it('register prints a client_id and client_secret once; list shows the client without it; revoke ends it', async () => {
    const reg = await cli(['register', '--url', base, '--name', 'myapp'], { SCALEGRAM_ADMIN_TOKEN: ADMIN });
    const clientId = /client_id:\s+([0-9a-f]{32})/.exec(reg.stdout)?.[1];
    const secret = /client_secret:\s+(\S+)/.exec(reg.stdout)?.[1];
    expect(clientId).toBeDefined();
    expect(secret!.length).toBeGreaterThanOrEqual(32);

    const sub = await fetch(`${base}/v1/subscriptions?client_id=${clientId}&client_secret=${secret}`);
    expect(sub.status).toBe(200);
    expect(await sub.json()).toEqual({ meta: { code: 200 }, data: [] });

    const list = await cli(['list', '--url', base, '--admin-token', ADMIN]);
    expect(list.stdout).toContain(clientId);
    expect(list.stdout).toContain('myapp');
    expect(list.stdout).not.toContain(secret);
    expect(serverOutput).not.toContain(secret);

    const revoked = await cli(['revoke', clientId!, '--url', base, '--admin-token', ADMIN]);
    expect(revoked.stdout).toContain(`revoked ${clientId}`);
    const after = await fetch(`${base}/v1/subscriptions?client_id=${clientId}&client_secret=${secret}`);
    expect(after.status).toBe(400);
    expect(((await after.json()) as { meta: { error_type: string } }).meta.error_type).toBe('OAuthClientException');
  }, START_TIMEOUT_MS * 4);

  it('without the admin token it is a usage error (exit 2); with a wrong one the server refuses (exit 1)', async () => {
    const env = { SCALEGRAM_ADMIN_TOKEN: '' };
    await expect(cli(['register', '--url', base, '--name', 'x'], env)).rejects.toMatchObject({ code: 2 });
    const wrong = cli(['register', '--url', base, '--name', 'x', '--admin-token', 'wrong-token-0123456789']);
    await expect(wrong).rejects.toMatchObject({ code: 1 });
    await expect(wrong).rejects.toMatchObject({ stderr: expect.stringContaining('HTTP 401') });
  }, START_TIMEOUT_MS * 3);
});
