// An exported bundle carries its scenario's world: its setup resets the target server to the
// scenario's topology and the run's seed (POST /_sim/reset) before the scenario's own setup seeds
// it. Run here with `scalegram run --target` against a server started on another topology, as real
// k6 runs it against `scalegram serve` (the README shows both).

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceHost } from '../server/service-host.ts';
import { randomSecret } from '../sim/domain/credentials.ts';
import { loadTopology } from '../sim/topology-config.ts';

const tmp = mkdtempSync(join(tmpdir(), 'scalegram-export-world-'));
const TOKEN = randomSecret();
let host: ServiceHost;
let base: string;

beforeAll(async () => {
  host = await ServiceHost.start({
    config: loadTopology('2010-single'),
    seed: 3,
    app: { rateLimitPerHour: 0, adminToken: TOKEN, connections: { maxConnectionsPerAddress: 0, idleTimeoutMs: 65_000 } },
  });
  base = `http://127.0.0.1:${(await host.listen(0, '127.0.0.1')).port}`;
  const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'export-k6', 'scenarios/ci-gate.ts', '--out', tmp], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
}, 60_000);
afterAll(async () => {
  await host.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** `scalegram run` of the ci-gate bundle against the server of this process (so not spawnSync: the server must answer meanwhile). */
function runBundle(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return runScript(join(tmp, 'ci-gate.js'), '-e', 'DURATION=1s', ...args);
}

let runs = 0;
function runScript(script: string, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const out = join(tmp, 'runs', String(++runs));
    const child = spawn(process.execPath, ['bin/scalegram.mjs', 'run', script, '--target', base, '--no-thresholds', '--out', out, '-e', `ADMIN_TOKEN=${TOKEN}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('export-k6: the bundle applies its scenario’s topology and seed at setup', () => {
  it('the bundle’s setup is the reset, then the scenario’s own setup; a scenario without a topology gets the default preset', () => {
    const js = readFileSync(join(tmp, 'ci-gate.js'), 'utf8');
    // Synchronous, as k6 runs setup (a throw in a synchronous setup stays k6's exit 107).
    expect(js).toMatch(/\nfunction setup2\(\) \{\n\s+const round = applyWorld\(topology, "2012-sharded"\);\n\s+return setupOnce\(round, \(\) => setup\(\)\);/);
    const out = join(tmp, 'android');
    expect(spawnSync(process.execPath, ['bin/scalegram.mjs', 'export-k6', 'scenarios/android-launch.ts', '--out', out], { encoding: 'utf8' }).status).toBe(0);
    expect(readFileSync(join(out, 'android-launch.js'), 'utf8')).toMatch(/applyWorld\(null, "2012-sharded"\)/);
  });

  it('a run against a server on another topology moves it to the scenario’s, with the run’s seed, and seeds it there', async () => {
    expect(host.topology.config.name).toBe('2010-single');
    const r = await runBundle('--seed', '21');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/the server now serves topology 2012-sharded with seed 21 \(generation 2\)/);
    expect(host.generation).toBe(2);
    const t = host.topology;
    expect(t.seed).toBe(21);
    // ci-gate's export: 2012-sharded with leases on.
    expect(t.config.name).toBe('2012-sharded');
    expect(t.config.cache.leases).toBe(true);
    expect(t.population.size).toBeGreaterThan(0);
  }, 120_000);

  it('under scalegram run without --target the server was built for the run: the bundle does not reset it', () => {
    const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'run', join(tmp, 'ci-gate.js'), '--quiet', '--no-thresholds', '--seed', '5', '-e', 'DURATION=1s', '--out', join(tmp, 'own')], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(/now serves topology/);
  }, 120_000);

  it('-e RESET=0 runs against the server as it is', async () => {
    const generation = host.generation;
    const r = await runBundle('--seed', '22', '-e', 'RESET=0');
    expect(r.status, r.stderr).toBe(0);
    expect(host.generation).toBe(generation);
    expect(host.topology.seed).toBe(21);
  }, 120_000);

  it('-e TOPOLOGY names another preset; a wrong admin token stops the run in setup with the reason', async () => {
    const r = await runBundle('--seed', '23', '-e', 'TOPOLOGY=2011-vertical');
    expect(r.status, r.stderr).toBe(0);
    expect(host.topology.config.name).toBe('2011-vertical');
    const refused = await runBundle('--seed', '24', '-e', `ADMIN_TOKEN=${randomSecret()}`);
    expect(refused.status).toBe(107);
    expect(refused.stderr).toMatch(/POST \/_sim\/reset\) failed: 401/);
    expect(host.topology.seed).toBe(23);
  }, 180_000);

  it('the parts of a segmented run share one reset, and the setup of the first part to ask, with its data', async () => {
    const out = join(tmp, 'segmented');
    const e = spawnSync(process.execPath, ['bin/scalegram.mjs', 'export-k6', 'test/fixtures/runs/segmented-setup.js', '--out', out], { encoding: 'utf8' });
    expect(e.status, e.stderr).toBe(0);
    const generation = host.generation;
    const part = (segment: string) => runScript(join(out, 'segmented-setup.js'), '--seed', '30', '-e', `SEGMENT=${segment}`, '--summary-export', join(out, `${segment.replace(/[:/]/g, '_')}.json`));
    const [first, second] = await Promise.all([part('0:1/2'), new Promise((r) => setTimeout(r, 300)).then(() => part('1/2:1'))]);
    expect(first.status, first.stderr).toBe(0);
    expect(second.status, second.stderr).toBe(0);
    expect(host.generation).toBe(generation + 1);
    expect(host.topology.config.name).toBe('2010-single');
    // Seeded once, by one part; the other waited for its data.
    expect(host.topology.population.size).toBe(20);
    const data = ['0_1_2', '1_2_1'].map((f) => (JSON.parse(readFileSync(join(out, `${f}.json`), 'utf8')) as { setup_data: { ranIn: string; users: number } }).setup_data);
    expect(data[0]).toEqual(data[1]);
    expect(data[0]!.users).toBe(20);
    expect(['0:1/2', '1/2:1']).toContain(data[0]!.ranIn);
  }, 120_000);
});
