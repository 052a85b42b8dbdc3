// `scalegram run --dashboard`: while the run lasts, the dashboard of the server it built answers on
// loopback at the URL it prints (the key buys a cookie), and its event stream starts with the whole
// topology and telemetry of that server; it closes when the run ends. `scalegram dashboard DIR`
// replays a recorded run: its telemetry up to a cursor that moves forward, and no actions. (The
// page itself is tested in a browser by dashboard-browser.test.ts.)

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { telemetryUntil } from '../dashboard/replay-source.ts';

// The runs' results, and the file pass.ts's handleSummary writes (OUT_FILE), go here.
const tmp = mkdtempSync(join(tmpdir(), 'scalegram-dashboard-run-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('scalegram run --dashboard', () => {
  it('serves the dashboard of the server under test while the run lasts, and closes it after', async () => {
    const child = spawn(process.execPath, ['bin/scalegram.mjs', 'run', 'test/fixtures/runs/pass.ts', '--quiet', '--seed', '4', '--vus', '1', '--duration', '8s', '--dashboard', '--out', join(tmp, 'run'), '-e', `OUT_FILE=${join(tmp, 'summary.json')}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no dashboard URL: ${stderr}`)), 60_000);
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /dashboard (http:\/\/127\.0\.0\.1:\d+\/\?key=[A-Za-z0-9_-]+)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    const origin = new URL(url).origin;
    expect((await fetch(`${origin}/events`)).status).toBe(401);
    const login = await fetch(url, { redirect: 'manual' });
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const events = await fetch(`${origin}/events`, { headers: { cookie } });
    expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
    // The first event: the whole state of the server the run built (its topology, seed and telemetry).
    const reader = events.body!.getReader();
    let text = '';
    while (!/\n\n/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).toMatch(/^event: whole\n/);
    const frame = JSON.parse(/^data: (.*)$/m.exec(text)![1]!) as { topology: { name: string; seed: number }; telemetry: { nowMs: number } };
    expect(frame.topology.name).toBe('2012-sharded');
    expect(frame.topology.seed).toBe(4);
    expect(frame.telemetry.nowMs).toBeGreaterThan(0);
    // The frames carry the run's own requests per route (its k6 metrics, in this process), on the topology's time axis.
    let routes: Record<string, { reqsPerS: Array<[number, number]> }> = {};
    while (!Object.values(routes).some((r) => r.reqsPerS.some(([, v]) => v > 0))) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += new TextDecoder().decode(chunk.value);
      const frames = [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as { routes?: typeof routes; telemetry: { nowMs: number } });
      routes = frames.at(-1)!.routes ?? {};
    }
    await reader.cancel();
    const [name, r] = Object.entries(routes)[0]!;
    expect(name).not.toBe('sim_admin');
    // On the topology's axis: within the run so far (a few seconds), not Unix time.
    for (const [t] of r.reqsPerS) expect(t).toBeLessThan(60_000);
    expect(await exited).toBe(0);
    // Gone with the run.
    await expect(fetch(`${origin}/`, { headers: { cookie } })).rejects.toThrow();
  }, 120_000);
});

describe('scalegram run --dashboard-port', () => {
  it('a port already taken is exit 2, naming it and the flag', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'run', 'test/fixtures/runs/pass.ts', '--quiet', '--dashboard', '--dashboard-port', String(port), '--out', join(tmp, 'taken'), '-e', `OUT_FILE=${join(tmp, 'taken.json')}`], { encoding: 'utf8', timeout: 120_000 });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`the dashboard cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\): choose another --dashboard-port`));
    } finally {
      holder.close();
    }
  }, 120_000);
});

describe('scalegram dashboard RESULT_DIR (a replay)', () => {
  it('keeps, of the recorded telemetry, the points and events up to the cursor', () => {
    const recorded = { nowMs: 3000, bucketMs: 1000, events: [{ t: 500, kind: 'cache_kill' }, { t: 2500, kind: 'cache_revive' }], caches: { hitRatio: 0.9, nodes: [{ name: 'cache-0', hitRatioOverTime: [[0, 0.5], [1000, 0.9], [2000, 0.95]] }] } };
    expect(telemetryUntil(recorded, 1000)).toEqual({ nowMs: 3000, bucketMs: 1000, events: [{ t: 500, kind: 'cache_kill' }], caches: { hitRatio: 0.9, nodes: [{ name: 'cache-0', hitRatioOverTime: [[0, 0.5], [1000, 0.9]] }] } });
  });

  it('replays a recorded run: its charts build up to the end, and it cannot act', async () => {
    const child = spawn(process.execPath, ['bin/scalegram.mjs', 'dashboard', 'test/fixtures/reports/cache-node-loss', '--speed', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let stdout = '';
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no dashboard URL: ${stdout}`)), 60_000);
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          const m = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/\?key=[A-Za-z0-9_-]+)/.exec(stdout);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
      });
      expect(stdout).toMatch(/replaying cache-node-loss \(seed 3\) at 2×/);
      const origin = new URL(url).origin;
      const cookie = (await fetch(url, { redirect: 'manual' })).headers.get('set-cookie')!.split(';')[0]!;
      const frames: Array<{ telemetry: { nowMs: number; events: unknown[] }; world: { replay: { endMs: number } } }> = [];
      const events = await fetch(`${origin}/events`, { headers: { cookie } });
      const reader = events.body!.getReader();
      let text = '';
      // The recorded run lasted 5.7 s: at 2× its replay ends within 3 s; read until a frame reaches the end.
      while (!frames.some((f) => f.telemetry.nowMs >= f.world.replay.endMs)) {
        text += new TextDecoder().decode((await reader.read()).value);
        let cut: number;
        while ((cut = text.indexOf('\n\n')) >= 0) {
          const data = /^data: (.*)$/m.exec(text.slice(0, cut));
          if (data) frames.push(JSON.parse(data[1]!) as (typeof frames)[number]);
          text = text.slice(cut + 2);
        }
      }
      await reader.cancel();
      // The cursor moves forward; the events appear as it passes them (4.2 s and 4.9 s into the run).
      const cursors = frames.map((f) => f.telemetry.nowMs);
      expect(cursors).toEqual([...cursors].sort((a, b) => a - b));
      expect(frames[0]!.telemetry.events).toHaveLength(0);
      expect(frames.at(-1)!.telemetry.events).toHaveLength(2);
      const act = await fetch(`${origin}/actions`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{"action":"cache.kill","node":"cache-0"}' });
      expect(act.status).toBe(409);
    } finally {
      child.kill('SIGTERM');
    }
  }, 60_000);

  it('refuses a directory without a result, with exit 2', () => {
    const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'dashboard', 'test/fixtures'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/result\.json/);
  });
});
