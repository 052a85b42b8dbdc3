// `scalegram serve` as a user starts it, in a child process: a port already in use is one line and
// exit 2; the banner shows the address the socket is really bound to, and binding off loopback
// prints a warning naming what the network can reach.

import { spawn, spawnSync } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { boundUrl, exposureWarning, isLoopback, listenErrorMessage } from '../cli/listen.ts';

/** Starts serve, waits for its topology summary (printed after the banner), then stops it with SIGTERM. */
async function serveUntilReady(args: string[]): Promise<{ stdout: string; healthz: number; exitCode: number | null }> {
  const child = spawn(process.execPath, ['bin/scalegram.mjs', 'serve', '--port', '0', '--seed', '1', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start in 60 s: ${stdout}${stderr}`)), 60_000);
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (/\n {2}storage /.test(stdout)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', () => reject(new Error(`serve exited: ${stdout}${stderr}`)));
    });
    const port = Number(/listening on http:\/\/[^ ]+:(\d+) /.exec(stdout)?.[1]);
    const healthz = (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
    child.kill('SIGTERM');
    return { stdout, healthz, exitCode: await exited };
  } finally {
    child.kill('SIGKILL');
  }
}

describe('scalegram serve: where it listens', () => {
  it('a port already in use: one line naming the port and --port, exit 2, no stack trace', async () => {
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as AddressInfo).port;
    try {
      const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'serve', '--port', String(port)], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^scalegram serve: port ${port} is already in use on 127\\.0\\.0\\.1; choose another with --port`));
      expect(r.stdout).toBe('');
    } finally {
      await new Promise((r) => holder.close(r));
    }
  }, 60_000);

  it('on 0.0.0.0 the banner says 0.0.0.0 and a warning names the v1 API, /_sim, /metrics and /docs', async () => {
    const r = await serveUntilReady(['--host', '0.0.0.0']);
    expect(r.stdout).toMatch(/^scalegram: listening on http:\/\/0\.0\.0\.0:\d+ {2}\(API http:\/\/0\.0\.0\.0:\d+\/v1,/);
    const warning = r.stdout.split('\n').find((l) => l.includes('WARNING'));
    expect(warning).toBeDefined();
    for (const exposed of ['0.0.0.0', 'v1 API', '/_sim', '/metrics', '/docs', '--host 127.0.0.1']) expect(warning).toContain(exposed);
    expect(r.healthz).toBe(200);
    expect(r.exitCode).toBe(0);
  }, 90_000);

  it('on loopback the banner says 127.0.0.1 and there is no warning', async () => {
    const r = await serveUntilReady(['--host', '127.0.0.1']);
    expect(r.stdout).toMatch(/^scalegram: listening on http:\/\/127\.0\.0\.1:\d+ /);
    expect(r.stdout).not.toMatch(/WARNING/);
    expect(r.healthz).toBe(200);
    expect(r.exitCode).toBe(0);
  }, 90_000);
});

describe('addresses and listen errors', () => {
  it('loopback is 127.0.0.0/8, ::1 and their IPv4-mapped form; wildcards and others warn', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) {
      expect(isLoopback(a)).toBe(true);
      expect(exposureWarning({ address: a, family: 'IPv4', port: 1 })).toBeNull();
    }
    for (const a of ['0.0.0.0', '::', '192.168.1.20', '10.0.0.1', '::ffff:10.0.0.1']) {
      expect(isLoopback(a)).toBe(false);
      expect(exposureWarning({ address: a, family: 'IPv4', port: 8080 })).toContain(`${a}`);
    }
    expect(boundUrl({ address: '::', family: 'IPv6', port: 8080 })).toBe('http://[::]:8080');
    expect(boundUrl({ address: '0.0.0.0', family: 'IPv4', port: 8080 })).toBe('http://0.0.0.0:8080');
  });

  it('names the option to change for each way a bind fails, and leaves other errors alone', () => {
    expect(listenErrorMessage({ code: 'EADDRINUSE' }, '127.0.0.1', 8080)).toMatch(/port 8080 .*--port/);
    expect(listenErrorMessage({ code: 'EACCES' }, '127.0.0.1', 80)).toMatch(/port 80 .*below 1024.*--port/);
    expect(listenErrorMessage({ code: 'EADDRNOTAVAIL' }, '10.9.9.9', 8080)).toMatch(/10\.9\.9\.9.*--host/);
    expect(listenErrorMessage({ code: 'EMFILE' }, '127.0.0.1', 8080)).toBeNull();
    expect(listenErrorMessage(new Error('x'), '127.0.0.1', 8080)).toBeNull();
  });
});
