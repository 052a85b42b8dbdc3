// `scalegram sweep`: the grid and its validation (exit codes 2 and 104 before any run), the
// topology's utilisation section (pool high-water marks, cache bytes, queue), the report as a pure
// function of fixture results (golden sweep.md), and two real small sweeps through the CLI — one
// whose rows must differ with the number of cache nodes, one with a crash, a threshold failure and
// a Ctrl-C.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../cli/main.ts';
import { expandGrid, loadPointResult, parseVary, pointTopology, typeDimensions, crashReport } from '../cli/sweep.ts';
import { costCompare, routeName, sweepReport, type SweepDocument, type SweepInput, type SweepPointInput } from '../reports/sweep.ts';
import { VirtualClock } from '../sim/engine/clock.ts';
import { buildTopology, type Topology } from '../sim/topology.ts';
import { loadTopology, type TopologyInput } from '../sim/topology-config.ts';

const tmp = mkdtempSync(join(tmpdir(), 'scalegram-sweep-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const FIXTURES = 'test/fixtures/sweep';

/** Runs `scalegram sweep …` in process; returns the exit code and what it printed. */
async function sweepInProcess(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  try {
    const code = await main(['sweep', ...args]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('the grid', () => {
  it('is the cartesian product, the first --vary outermost, each point named and typed by the schema', () => {
    const dims = typeDimensions(parseVary(['cache.nodes=3,6', 'cache.leases=false,true', 'shards.strategy=range,modulo']));
    expect(dims).toEqual([
      { path: 'cache.nodes', values: [3, 6] },
      { path: 'cache.leases', values: [false, true] },
      { path: 'shards.strategy', values: ['range', 'modulo'] },
    ]);
    const grid = expandGrid(dims);
    expect(grid).toHaveLength(8);
    expect(grid[0]).toEqual({ index: 1, name: '1_cache.nodes=3_cache.leases=false_shards.strategy=range', values: { 'cache.nodes': 3, 'cache.leases': false, 'shards.strategy': 'range' }, label: 'cache.nodes=3 cache.leases=false shards.strategy=range' });
    expect(grid[1]!.values).toEqual({ 'cache.nodes': 3, 'cache.leases': false, 'shards.strategy': 'modulo' });
    expect(grid[7]!.values).toEqual({ 'cache.nodes': 6, 'cache.leases': true, 'shards.strategy': 'modulo' });
    // Names sort in run order when there are ten or more points.
    expect(expandGrid(typeDimensions(parseVary(['cache.nodes=1,2,3,4,5,6,7,8,9,10,11,12'])))[0]!.name).toBe('01_cache.nodes=1');
  });

  it("sets each point's values deep in the base topology and keeps everything else", () => {
    const base = loadTopology('2011-vertical');
    const [point] = expandGrid(typeDimensions(parseVary(['cache.nodes=12', 'database.poolSize=8'])));
    const t = pointTopology(base, point!);
    expect(t.cache.nodes).toBe(12);
    expect(t.database.poolSize).toBe(8);
    expect(t.database.partitioning).toBe('vertical');
    expect(t.cache.capacityBytes).toBe(base.cache.capacityBytes);
    expect(t.queue.workers).toBe(50);
    expect(t.name).toBe('2011-vertical cache.nodes=12 database.poolSize=8');
    expect(base.cache.nodes).toBe(3); // the base is not changed
  });

  it('orders points by cost: the first dimension decides, numbers ascending, false before true, names as given', () => {
    const dims = typeDimensions(parseVary(['cache.nodes=12,3', 'cache.hashing=modulo,ketama', 'cache.leases=true,false']));
    const cmp = costCompare(dims);
    const sorted = expandGrid(dims)
      .map((p) => p.values)
      .sort(cmp)
      .map((v) => `${String(v['cache.nodes'])}/${String(v['cache.hashing'])}/${String(v['cache.leases'])}`);
    expect(sorted.slice(0, 3)).toEqual(['3/modulo/false', '3/modulo/true', '3/ketama/false']);
    expect(sorted[7]).toBe('12/ketama/true');
  });

  // Exit 2 is bad usage (syntax); 104 is a field or value the topology schema refuses (named).
  const cases: Array<[string, string[], number, RegExp]> = [
    ['no --vary', [], 2, /at least one --vary/],
    ['no "="', ['--vary', 'cache.nodes'], 2, /PATH=V1,V2/],
    ['an empty value', ['--vary', 'cache.nodes=3,,6'], 2, /empty value/],
    ['a path that is not dotted words', ['--vary', 'cache..nodes=3'], 2, /not a dotted field path/],
    ['the same path twice', ['--vary', 'cache.nodes=3', '--vary', 'cache.nodes=6'], 2, /given twice/],
    ['a value listed twice', ['--vary', 'cache.nodes=3,3.0'], 2, /listed twice/],
    ['a grid over the budget', ['--vary', `cache.nodes=${Array.from({ length: 17 }, (_, i) => i + 1).join(',')}`, '--vary', `shards.physical=${Array.from({ length: 16 }, (_, i) => i + 1).join(',')}`], 2, /272 points .* at most 256/],
    ['the topology name', ['--vary', 'name=a,b'], 2, /names each point/],
    ['an unknown field', ['--vary', 'cache.nodez=3'], 104, /cache\.nodez: no such field \(fields of cache: nodes, capacityBytes/],
    ['an unknown section', ['--vary', 'caches.nodes=3'], 104, /caches\.nodes: no such field \(top-level fields: .*cache/],
    ['a section instead of a field', ['--vary', 'cache=3'], 104, /cache: is a section/],
    ['a field below a value', ['--vary', 'cache.nodes.count=3'], 104, /cache\.nodes is a value/],
    ['a word for a number', ['--vary', 'cache.nodes=three'], 104, /cache\.nodes: expected a whole number \(got "three"\)/],
    ['a name not in the list', ['--vary', 'cache.hashing=ketama,rendezvous'], 104, /cache\.hashing: expected one of ketama, modulo \(got "rendezvous"\)/],
    ['a word for a boolean', ['--vary', 'cache.leases=yes'], 104, /cache\.leases: expected true or false/],
    ['a value out of range', ['--vary', 'cache.nodes=-1,3'], 104, /cache\.nodes: Expected integer to be greater or equal to 0 \(got -1\), in the point cache\.nodes=-1/],
    ['a fraction for an integer', ['--vary', 'database.poolSize=2.5'], 104, /database\.poolSize: Expected integer/],
    ['more servers than logical shards', ['--vary', 'shards.logical=8', '--vary', 'shards.physical=4,16'], 104, /shards\.physical \(16\) exceeds shards\.logical \(8\)/],
    ['an unknown base topology', ['--topology', '2013-cloud', '--vary', 'cache.nodes=3'], 104, /unknown topology "2013-cloud"/],
  ];
  it.each(cases)('refuses %s before any run', async (_what, args, code, message) => {
    const out = join(tmp, 'refused');
    const r = await sweepInProcess('scenarios/cache-node-loss.ts', '--topology', '2012-sharded', ...args, '--out', out);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(code);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a missing scenario, bad numbers and an --out directory that already holds files (exit 2)', async () => {
    expect((await sweepInProcess('scenarios/nope.ts', '--vary', 'cache.nodes=3')).code).toBe(2);
    expect((await sweepInProcess('scenarios/cache-node-loss.ts', '--vary', 'cache.nodes=3', '--speed', '0')).stderr).toMatch(/--speed must be a positive number/);
    const used = join(tmp, 'used');
    mkdirSync(used, { recursive: true });
    writeFileSync(join(used, 'keep.txt'), 'mine');
    const r = await sweepInProcess('scenarios/cache-node-loss.ts', '--topology', '2012-sharded', '--vary', 'cache.nodes=3', '--out', used);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/already holds files/);
    expect(readdirSync(used)).toEqual(['keep.txt']);
    const file = join(used, 'keep.txt');
    const f = await sweepInProcess('scenarios/cache-node-loss.ts', '--topology', '2012-sharded', '--vary', 'cache.nodes=3', '--out', file);
    expect(f.code).toBe(2);
    expect(f.stderr).toMatch(/is a file, not a directory/);
    expect(readFileSync(file, 'utf8')).toBe('mine');
  });

  it('--dry-run prints every point with its topology and run command, and writes nothing', async () => {
    const out = join(tmp, 'dry');
    const r = await sweepInProcess('scenarios/cache-node-loss.ts', '--topology', '2011-vertical', '--vary', 'cache.nodes=1,2', '--vary', 'database.poolSize=4,8', '--seed', '9', '--speed', '50', '-e', 'READ_RATE=10', '--dry-run', '--out', out);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/grid: cache\.nodes = 1, 2 × database\.poolSize = 4, 8 → 4 points/);
    expect(r.stdout).toContain(`[4/4] cache.nodes=2 database.poolSize=8\n  topology file: ${join(out, 'topologies', '4_cache.nodes=2_database.poolSize=8.json')}`);
    expect(r.stdout).toContain(`run: scalegram run scenarios/cache-node-loss.ts --topology ${join(out, 'topologies', '1_cache.nodes=1_database.poolSize=4.json')} --seed 9 --speed 50 --scale 1 -e READ_RATE=10`);
    expect(r.stdout.match(/"partitioning": "vertical"/g)).toHaveLength(4);
    expect(r.stdout.match(/"poolSize": 8/g)).toHaveLength(2);
    expect(existsSync(out)).toBe(false);
  });

  it("takes the scenario's exported topology as the base, evaluated with the run's -e values", () => {
    const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'sweep', 'scenarios/cache-node-loss.ts', '--vary', 'cache.nodes=2', '-e', 'HASHING=modulo', '--seed', '1', '--dry-run'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/on 2012-sharded \(exported by the scenario\)/);
    expect(r.stdout).toMatch(/"hashing": "modulo"/);
    expect(r.stdout).toMatch(/"nodes": 2/);
  }, 60_000);

  it("keeps a crashed run's message and the stack under it, not the stack's last frame alone", () => {
    const stderr = 'scalegram run: setup failed: Error: boom\n    at setup (x.ts:1:1)\n    at async main (y.ts:2:2)\n';
    expect(crashReport(stderr)).toEqual({ text: stderr.trimEnd(), line: 'setup failed: Error: boom' });
    expect(crashReport('node: bad option\n').line).toBe('node: bad option');
  });
});

describe('utilisation', () => {
  const open: Topology[] = [];
  afterEach(async () => {
    for (const t of open.splice(0)) await t.close();
  });
  async function small(over: TopologyInput, clock: VirtualClock): Promise<Topology> {
    const config = loadTopology('2012-sharded', { shards: { logical: 16, physical: 2 }, database: { replicas: 1, readPolicy: 'primary', ...over.database }, cache: { nodes: 2, ...over.cache }, feed: { replicas: 0 }, queue: over.queue ?? {} });
    const t = await buildTopology({ config, seed: 5, clock, sampleEveryMs: 0 });
    open.push(t);
    return t;
  }

  it("a burst of queries shows as the pool's high-water mark, waiting included, even when later samples see an idle pool", async () => {
    const clock = new VirtualClock(1_600_000_000_000);
    const t = await small({ database: { poolSize: 2, poolQueueLimit: 10 } }, clock);
    const shard = t.db.groups[0]!.map.shardsOn(1)[0]!;
    const insert = (i: number) => t.db.write('users', shard, 'test.insert', (sql) => sql.run('INSERT INTO tokens (shard_id, token_hash, user_id, created_ms) VALUES (?,?,?,?)', shard, `digest${i}`, i, 0));
    const opsBefore = t.telemetry().utilisation.servers.find((s) => s.name === 'db-1')!.peakOpsPerS; // start-up queries
    // Five at once on a pool of two: two hold connections, three wait.
    await Promise.all([0, 1, 2, 3, 4].map(insert));
    t.sample(); // idle now: a plain look would see 0 in use
    const u = t.telemetry().utilisation;
    const db1 = u.servers.find((s) => s.name === 'db-1')!;
    expect(db1).toMatchObject({ poolSize: 2, poolPeakInUse: 2, poolUse: 1, poolPeakWaiting: 3, poolQueueUse: 0.3 });
    expect(db1.nodes.map((n) => [n.name, n.role, n.peakInUse])).toEqual([
      ['db-1', 'primary', 2],
      ['db-1-r1', 'replica', 0],
    ]);
    expect(u.servers.find((s) => s.name === 'db-0')!.poolPeakInUse).toBeLessThan(2); // start-up queries, one at a time
    expect(u.busiestServer).toBe('db-1');
    // The next second is idle: its point says so, the run's peak stays.
    await clock.advance(1000);
    t.sample();
    const later = t.telemetry().utilisation.servers.find((s) => s.name === 'db-1')!;
    expect(later.nodes[0]!.useOverTime).toEqual([
      [0, 1],
      [1000, 0],
    ]);
    expect(later.poolPeakInUse).toBe(2);
    expect(later.peakOpsPerS).toBe(opsBefore + 5);
    expect(later.peakOpsAtMs).toBe(0);
    // Since the idle second: no peak.
    expect(t.telemetry({ sinceMs: 1000 }).utilisation.servers.find((s) => s.name === 'db-1')!.poolPeakInUse).toBe(0);
  });

  it('cache bytes count against capacityBytes per node, and the queue against its workers and depth', async () => {
    const clock = new VirtualClock(1_600_000_000_000);
    const t = await small({ cache: { capacityBytes: 4096 }, queue: { workers: 2, maxDepth: 100 } }, clock);
    for (let i = 0; i < 400; i++) t.cache.set(`k${i}`, 'x'.repeat(40));
    const u = t.telemetry().utilisation;
    expect(u.caches.map((c) => c.name)).toEqual(['cache-0', 'cache-1']);
    for (const c of u.caches) {
      expect(c.capacityBytes).toBe(4096);
      expect(c.peakBytes).toBeGreaterThan(4096 - 50); // full to within one value
      expect(c.peakBytes).toBeLessThanOrEqual(4096);
      expect(c.use).toBeCloseTo(c.peakBytes / 4096, 4);
      expect(c.evictions).toBeGreaterThan(50);
    }
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    t.queue.register('sweep-test', () => gate);
    const jobs = Array.from({ length: 7 }, () => t.queue.submit('sweep-test', {}));
    await new Promise((r) => setImmediate(r));
    release();
    await Promise.all(jobs);
    expect(t.telemetry().utilisation.queue).toEqual({ workers: 2, peakRunning: 2, workerUse: 1, maxDepth: 100, peakDepth: 5, depthUse: 0.05 });
  });
});

/** A fixture sweep (plan.json and trimmed point results) as the report's input. */
/**
 * A sweep fixture's plan and its points' results. `served`: the grid-2d runs were made at a --speed
 * this machine did not serve (each dropped 60–72% of its iterations, which makes it not valid for
 * conclusions); the tests of the grid's verdicts take most of their load as served (under half dropped).
 */
function fixtureInput(name: string, options: { served?: boolean } = {}): SweepInput {
  const dir = join(FIXTURES, name);
  const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as Omit<SweepInput, 'points'> & { points: Array<Omit<SweepPointInput, 'result' | 'summary'>> };
  return {
    ...plan,
    points: plan.points.map((p) => {
      const read = existsSync(join(dir, p.name, 'result.json')) ? loadPointResult(join(dir, p.name)) : null;
      if (read && 'error' in read) throw new Error(read.error);
      // Nine dropped for every ten served at most: under half dropped, still enough to be warned about.
      const it = read?.result.iterations;
      if (read && it && options.served) read.result.iterations = { ...it, dropped: Math.min(it.dropped, Math.floor(0.9 * (it.completed + it.interrupted))) };
      return { ...p, result: read?.result ?? null, summary: read?.summary ?? null };
    }),
  };
}

function golden(name: string, text: string): string {
  const file = join(FIXTURES, name, 'sweep.md');
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, text);
  return readFileSync(file, 'utf8');
}

describe('the report (pure, from fixture results)', () => {
  it('two varied fields: a grid of verdicts, the cheapest point meeting every threshold highlighted (golden sweep.md)', () => {
    const { document: doc, markdown, html } = sweepReport(fixtureInput('grid-2d', { served: true }));
    expect(markdown).toBe(golden('grid-2d', markdown));
    // Only the 3-node, 1 MiB point held: 16 KiB caches drop the hit ratio, and with one node the
    // scenario's kill of cache-2 (which does not exist) is a failed request.
    expect(doc.rows.map((r) => [r.label, r.status])).toEqual([
      ['cache.nodes=1 cache.capacityBytes=16384', 'failed'],
      ['cache.nodes=1 cache.capacityBytes=1048576', 'failed'],
      ['cache.nodes=3 cache.capacityBytes=16384', 'failed'],
      ['cache.nodes=3 cache.capacityBytes=1048576', 'passed'],
    ]);
    expect(doc.cheapest).toBe('4_cache.nodes=3_cache.capacityBytes=1048576');
    expect(doc.rows[2]!.failedThresholds).toEqual(['cache_hit_rate min>0.3']);
    expect(doc.rows[0]!.utilisation!.cache).toMatchObject({ capacityBytes: 16384, use: 1 });
    expect(doc.rows[3]!.utilisation!.cache!.use).toBeLessThan(0.5);
    expect(markdown).toMatch(/\| cache\.nodes ↓ \/ cache\.capacityBytes → \| 16384 \| 1048576 \|/);
    // Self-contained HTML: inline CSS and SVG, nothing fetched, no script.
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toMatch(/<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(html.replaceAll('http://www.w3.org/2000/svg', '')).not.toMatch(/https?:\/\/|<script|<link|@import|url\(/);
    expect(html).toMatch(/<td class="passed cheapest">/);
  });

  it('a point whose iterations threw (its scenario did not run as written) is marked and never the cheapest', () => {
    const input = fixtureInput('grid-2d', { served: true });
    const passing = input.points.find((p) => p.status === 'passed')!;
    passing.result!.iterations = { ...passing.result!.iterations, errors: 2, errorMessages: [{ message: '/_sim/cache/cache-2/kill failed: 400', scenario: 'kill', count: 1 }] };
    const { document: doc, markdown } = sweepReport(input);
    expect(doc.cheapest).toBeNull();
    const row = doc.rows.find((r) => r.name === passing.name)!;
    expect(row.iterationErrors).toEqual({ count: 2, first: 'kill: /_sim/cache/cache-2/kill failed: 400' });
    expect(markdown).toMatch(/⚠ 2 iterations threw: kill: \/_sim\/cache\/cache-2\/kill failed: 400/);
  });

  it('a simulated point where a resource saturated is flagged with the resource and its time, and never the cheapest', () => {
    const input = fixtureInput('grid-2d', { served: true });
    const passing = input.points.find((p) => p.status === 'passed')!;
    passing.result!.simulation = { saturation: [{ resource: 'feed-primary', atMs: 12 * 60_000, use: 1, refused: 0 }] };
    const { document: doc, markdown, text } = sweepReport(input);
    expect(doc.cheapest).toBeNull();
    expect(doc.rows.find((r) => r.name === passing.name)!.saturated).toEqual({ resource: 'feed-primary', atMs: 720_000 });
    expect(doc.rows.filter((r) => r.saturated !== null)).toHaveLength(1);
    expect(markdown).toMatch(/✓ ⚠ saturated: feed-primary at 00:12/);
    expect(markdown).toContain('**No configuration met every threshold without saturating a resource** (1 passed their thresholds while feed-primary saturated; 4 of 4 points ran to the end).');
    expect(text).toContain('No configuration met every threshold without saturating a resource');
  });

  it('a point whose run is not valid for conclusions (most of its iterations dropped) is flagged and never the cheapest', () => {
    const input = fixtureInput('grid-2d', { served: true });
    const passing = input.points.find((p) => p.status === 'passed')!;
    const it0 = passing.result!.iterations;
    passing.result!.iterations = { ...it0, dropped: 3 * (it0.completed + it0.interrupted) };
    const { document: doc, markdown, html } = sweepReport(input);
    expect(doc.cheapest).toBeNull();
    const row = doc.rows.find((r) => r.name === passing.name)!;
    expect(row.invalid).toHaveLength(1);
    expect(row.invalid[0]).toMatch(/^75% of the planned iterations were dropped/);
    expect(doc.rows.filter((r) => r.invalid.length > 0)).toHaveLength(1);
    expect(markdown).toMatch(/✓ ⚠ not valid for conclusions: 75% of the planned iterations were dropped/);
    expect(markdown).toContain('**No configuration met every threshold in a run valid for conclusions** (1 passed their thresholds in a run that was not:');
    expect(html).toMatch(/<td class="passed invalid">/);
  });

  it('a live point whose harness saturated (event loop ≥ 100 ms late at p99) is flagged and never the cheapest; a quiet loop is not', () => {
    const input = fixtureInput('grid-2d', { served: true });
    const passing = input.points.find((p) => p.status === 'passed')!;
    passing.result!.harness = { eventLoopDelayMs: { p99: 340, max: 2100 } };
    for (const p of input.points.filter((q) => q !== passing && q.result)) p.result!.harness = { eventLoopDelayMs: { p99: 99, max: 400 } };
    const { document: doc, markdown, html } = sweepReport(input);
    expect(doc.cheapest).toBeNull();
    expect(doc.rows.find((r) => r.name === passing.name)!.harnessSaturated).toEqual({ p99Ms: 340, maxMs: 2100 });
    expect(doc.rows.filter((r) => r.harnessSaturated !== null)).toHaveLength(1);
    expect(markdown).toMatch(/✓ ⚠ harness saturated: event loop 340 ms late at p99/);
    expect(markdown).toContain('**No configuration met every threshold on a harness that kept up** (1 passed their thresholds while an event loop of the harness');
    expect(html).toMatch(/<td class="passed invalid">/);
  });

  it('one varied field: a table; a crashed point keeps its message, and the sweep.json rows carry every figure (golden sweep.md)', () => {
    const { document: doc, markdown } = sweepReport(fixtureInput('table-1d'));
    expect(markdown).toBe(golden('table-1d', markdown));
    const [crashed, refused, queued] = doc.rows as [SweepDocument['rows'][0], SweepDocument['rows'][0], SweepDocument['rows'][0]];
    expect(crashed).toMatchObject({ status: 'crashed', exitCode: 107, figures: null, utilisation: null });
    expect(crashed.error).toMatch(/^scalegram run: setup failed: Error: setup refuses database\.poolQueueLimit=5/);
    expect(refused.status).toBe('failed');
    expect(refused.failedThresholds).toEqual(['http_req_failed rate<0.01']);
    expect(refused.figures!.errorRate!).toBeGreaterThan(0.05);
    expect(queued.status).toBe('passed');
    expect(queued.figures!.errorRate).toBe(0);
    expect(queued.utilisation!.server!.poolPeakWaiting).toBeGreaterThan(0); // the queue is what saved it
    expect(doc.cheapest).toBe(queued.name);
    expect(Object.keys(queued.figures!).sort()).toEqual(['cacheHitRatio', 'droppedIterations', 'droppedShare', 'errorRate', 'fanoutLagP99Ms', 'httpP95Ms', 'httpReqPerS', 'iterations', 'replicaLagMaxMs', 'routes', 'serverSkew', 'shardSkew', 'staleReads']);
    expect(queued.figures!.routes.map((r) => r.name).sort()).toEqual(['signup', 'sim_topology']);
    expect(queued.rerun).toBe(`scalegram run test/fixtures/sweep/service-time.ts --topology reports/out/table-1d/topologies/3_database.poolQueueLimit=1000.json --seed 5 --speed 1 --scale 1 -e CRASH_AT_QUEUE=5`);
    expect(markdown).toMatch(/\| database\.poolQueueLimit \| verdict \|/);
  });

  it('lines untagged URLs up across points by dropping the origin each run served on', () => {
    expect(routeName('http://127.0.0.1:41234/v1/users/self/feed')).toBe('/v1/users/self/feed');
    expect(routeName('https://example.com')).toBe('/');
    expect(routeName('feed')).toBe('feed');
  });
});

/** Starts `scalegram sweep` as a user would; resolves with its exit code and output. */
function sweepChild(args: string[], onStderr?: (text: string, kill: (sig: NodeJS.Signals) => void) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, ['bin/scalegram.mjs', 'sweep', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      onStderr?.(stderr, (sig) => child.kill(sig));
    });
    child.once('error', reject);
    child.once('close', (code) => resolveRun({ code, stdout, stderr }));
  });
}

describe('scalegram sweep, end to end', () => {
  it('cache-node-loss on 3 and 6 cache nodes: two runs with one seed, their topologies, results and a report whose rows differ as they should', async () => {
    const out = join(tmp, 'cnl');
    const r = await sweepChild(['scenarios/cache-node-loss.ts', '--vary', 'cache.nodes=3,6', '--seed', '3', '--speed', '800', '--scale', '0.01', '-e', 'READ_RATE=30', '--out', out]);
    expect(r.stderr).toMatch(/\[1\/2\] cache\.nodes=3 … done in [\d.]+ s, thresholds [✓✗]/);
    expect(r.stderr).toMatch(/\[2\/2\] cache\.nodes=6 … done in/);
    expect(r.stdout).toMatch(/report: .*sweep\.html/);
    expect(readdirSync(out).sort()).toEqual(['1_cache.nodes=3', '2_cache.nodes=6', 'sweep.html', 'sweep.json', 'sweep.md', 'topologies']);
    const doc = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')) as SweepDocument;
    expect(r.code).toBe(doc.cheapest ? 0 : 1);
    expect(doc.rows.map((x) => x.status).every((s) => s === 'passed' || s === 'failed')).toBe(true);
    for (const [i, nodes] of [3, 6].entries()) {
      const row = doc.rows[i]!;
      const topo = JSON.parse(readFileSync(join(out, row.topologyFile), 'utf8')) as { cache: { nodes: number; hashing: string }; shards: { physical: number } };
      expect(topo.cache.nodes).toBe(nodes);
      expect(topo.cache.hashing).toBe('ketama'); // the rest is the scenario's base
      expect(topo.shards.physical).toBe(12);
      const result = JSON.parse(readFileSync(join(out, row.resultDir, 'result.json'), 'utf8')) as { seed: number; topology: { config: { cache: { nodes: number } } }; telemetry: { utilisation: { caches: unknown[] } } };
      expect(result.seed).toBe(3);
      expect(result.topology.config.cache.nodes).toBe(nodes);
      expect(result.telemetry.utilisation.caches).toHaveLength(nodes);
      expect(row.figures!.httpReqPerS!).toBeGreaterThan(0);
      expect(row.figures!.routes.map((x) => x.name)).toContain('feed');
      expect(row.utilisation!.server!.poolSize).toBe(32);
      expect(existsSync(join(out, row.resultDir, 'run.log'))).toBe(true);
    }
    // Half the nodes hold about twice the keys each: the fullest node of 3 holds more than that of 6.
    const [three, six] = doc.rows.map((x) => x.utilisation!.cache!.peakBytes) as [number, number];
    expect(three).toBeGreaterThan(1.2 * six);
    const md = readFileSync(join(out, 'sweep.md'), 'utf8');
    expect(md).toMatch(/\| cache\.nodes \| verdict \| http p95 ms \| busiest server \| busiest cache node \|/);
    expect(readFileSync(join(out, 'sweep.html'), 'utf8')).toMatch(/<svg/);
  }, 90_000);

  it('a crash is recorded and the sweep goes on, a threshold failure is a result, and Ctrl-C keeps the finished points', async () => {
    const out = join(tmp, 'pool');
    let sent = false;
    const r = await sweepChild(['test/fixtures/sweep/service-time.ts', '--vary', 'database.poolQueueLimit=5,0,1000', '--seed', '5', '-e', 'CRASH_AT_QUEUE=5', '--out', out], (text, kill) => {
      if (!sent && text.includes('[3/3]')) {
        sent = true;
        kill('SIGINT');
      }
    });
    expect(r.stderr).toMatch(/\[1\/3\] database\.poolQueueLimit=5 … crashed in [\d.]+ s \(exit 107\): setup failed: Error: setup refuses/);
    expect(r.stderr).toMatch(/\[2\/3\] database\.poolQueueLimit=0 … done in [\d.]+ s, thresholds ✗ \(http_req_failed rate<0\.01\)/);
    expect(r.stderr).toMatch(/interrupted/);
    expect(r.code).toBe(105);
    const doc = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')) as SweepDocument;
    expect(doc.rows.map((x) => x.status)).toEqual(['crashed', 'failed', 'interrupted']);
    expect(doc.rows[0]!.error).toMatch(/setup refuses database\.poolQueueLimit=5/);
    expect(doc.rows[1]!.failedThresholds).toEqual(['http_req_failed rate<0.01']);
    expect(doc.rows[1]!.figures!.errorRate!).toBeGreaterThan(0.01);
    expect(doc.cheapest).toBeNull();
    expect(readFileSync(join(out, 'sweep.md'), 'utf8')).toMatch(/### database\.poolQueueLimit=1000 — interrupted/);
  }, 90_000);
});
