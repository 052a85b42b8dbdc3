// `scalegram simulate --dashboard` from the command line: Ctrl-C before the end ends the simulation
// where it is, writes the result so far marked as aborted, and exits 105 (k6's ExternalAbort); its
// options are checked before any work (a taken port included), each refusal exit 2 with the option
// named. The page itself is tested in a browser by dashboard-simulate.test.ts.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const tmp = mkdtempSync(join(tmpdir(), 'scalegram-sim-dashboard-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const simulate = (args: string[]) => spawnSync(process.execPath, ['bin/scalegram.mjs', 'simulate', 'scenarios/cache-node-loss.ts', '--scale', '0.02', '--seed', '5', '-q', ...args], { encoding: 'utf8', timeout: 120_000 });

describe('scalegram simulate --dashboard (command line)', () => {
  it('Ctrl-C before the end writes the result so far, marked as aborted, and exits 105', async () => {
    const out = join(tmp, 'interrupted');
    const child = spawn(process.execPath, ['bin/scalegram.mjs', 'simulate', 'scenarios/cache-node-loss.ts', '--scale', '0.02', '--seed', '5', '--out', out, '-q', '--dashboard', '--dashboard-speed', '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no dashboard URL: ${stderr}`)), 90_000);
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/dashboard http/.test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGINT');
    expect(await exited).toBe(105);
    expect(stderr).toMatch(/SIGINT: ending the simulation at \d\d:\d\d:\d\d of virtual time; writing the result so far/);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { aborted: string | null; durationMs: number };
    expect(result.aborted).toBe('interrupted (SIGINT)');
    // 60× for about 1.5 s: somewhere past the start, well before the end (27 min).
    expect(result.durationMs).toBeGreaterThan(0);
    expect(result.durationMs).toBeLessThan(20 * 60_000);
    expect(existsSync(join(out, 'report.html'))).toBe(true);
  }, 150_000);

  it('refuses bad dashboard options with exit 2, naming them, before any work', async () => {
    for (const [args, message] of [
      [['--dashboard', '--dashboard-speed', 'fast'], /--dashboard-speed must be a number .* or "max" \(got "fast"\)/],
      [['--dashboard', '--dashboard-speed', '0'], /--dashboard-speed must be a number of virtual seconds per real second from 0\.01/],
      [['--paused'], /--paused goes with --dashboard/],
      [['--dashboard-speed', '10'], /--dashboard-speed goes with --dashboard/],
    ] as const) {
      const r = simulate([...args]);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      const r = simulate(['--dashboard', '--dashboard-port', String(port), '--out', join(tmp, 'taken')]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/--dashboard-port/);
      // Said before the simulation began: no banner, nothing written.
      expect(r.stderr).not.toMatch(/in virtual time/);
      expect(existsSync(join(tmp, 'taken'))).toBe(false);
    } finally {
      holder.close();
    }
  }, 150_000);
});
