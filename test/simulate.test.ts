// `scalegram simulate` as a user runs it, through simulateRun: deterministic results (byte-identical
// apart from the wall-clock fields, which are named in one place), a different sample for another
// seed, every executor and op of a small declared scenario, and a plain k6 script refused with an
// error naming what to declare.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { ResultDocument, SimulationSection } from '../scenarios/runner/results.ts';
import { WALL_CLOCK_FIELDS } from '../scenarios/runner/virtual-run.ts';
import { reportHtml } from '../reports/report-html.ts';
import { reportMarkdown } from '../reports/report-md.ts';
import { findings } from '../reports/findings.ts';
import { formatValue, num } from '../scenarios/runner/format.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SMALL = 'test/fixtures/sim-small.ts';
const execFileP = promisify(execFile);

type SimDoc = ResultDocument & { simulation: SimulationSection };

/** `scalegram simulate` as a user runs it: exit code, output, and the result directory's documents. */
async function simulate(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string; doc: SimDoc | null; summary: unknown }> {
  const out = mkdtempSync(join(tmpdir(), 'sg-sim-'));
  let code = 0;
  let stdout: string;
  let stderr: string;
  try {
    ({ stdout, stderr } = await execFileP(process.execPath, ['bin/scalegram.mjs', 'simulate', script, '--out', out, '-q', ...args], { cwd: ROOT, timeout: 120_000 }));
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    code = x.code;
    stdout = x.stdout;
    stderr = x.stderr;
  }
  const read = (f: string) => {
    try {
      return JSON.parse(readFileSync(join(out, f), 'utf8')) as unknown;
    } catch {
      return null;
    }
  };
  return { code, stdout, stderr, doc: read('result.json') as SimDoc | null, summary: read('summary.json') };
}

function withoutWallClock(doc: unknown): string {
  const copy = JSON.parse(JSON.stringify(doc)) as Record<string, unknown>;
  for (const path of WALL_CLOCK_FIELDS) {
    const parts = path.split('.');
    let o = copy as Record<string, unknown>;
    for (const p of parts.slice(0, -1)) o = o[p] as Record<string, unknown>;
    delete o[parts[parts.length - 1]!];
  }
  return JSON.stringify(copy);
}

describe('scalegram simulate', () => {
  it('gives a byte-identical result.json for one seed (wall-clock fields aside) and another sample for another seed', async () => {
    const [a, b, c] = await Promise.all([simulate(SMALL, ['--seed', '7']), simulate(SMALL, ['--seed', '7']), simulate(SMALL, ['--seed', '8'])]);
    expect(a.code).toBe(0);
    expect(withoutWallClock(a.doc)).toBe(withoutWallClock(b.doc));
    expect(JSON.stringify(a.summary)).toBe(JSON.stringify(b.summary));
    expect(withoutWallClock(c.doc)).not.toBe(withoutWallClock(a.doc));
    expect(a.doc!.simulation.wall.ms).toBeGreaterThanOrEqual(0);
  }, 120_000); // three simulations at once: about 12 s on a quiet machine, more beside other work

  it('shows the Simulation section in report.md and report.html, every resource in the HTML, the 12 busiest in the markdown', async () => {
    const a = await simulate(SMALL, ['--seed', '7']);
    expect(a.code).toBe(0);
    const doc = a.doc!;
    const html = reportHtml(doc);
    const md = reportMarkdown(doc);
    expect(html).toContain('<section id="simulation"><h2>Simulation</h2>');
    expect(html).toContain('href="#simulation"');
    expect(md).toContain('### Simulation');
    const names = doc.simulation.resources.map((x) => x.resource);
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) expect(html).toContain(`<td>${n}</td>`);
    const from = md.indexOf('### Simulation');
    const next = md.indexOf('\n### ', from + 1);
    const section = md.slice(from, next < 0 ? undefined : next);
    const shown = names.filter((n) => section.includes(`| ${n} |`)).length;
    expect(shown).toBe(Math.min(12, names.length));
    if (names.length > 12) expect(section).toContain(`The 12 busiest of ${names.length} resources`);
    // No wall clock, so no --speed: the headers say "virtual time" instead.
    expect(md.split('\n').find((l) => l.startsWith('Seed 7'))).toMatch(/^Seed 7 · scale 1 · .* of virtual time \(simulated\)/);
    expect(html).not.toContain('<span>speed <b>');
    expect(html).toContain('seconds of virtual time since the scenarios started');
  });

  it('runs every executor of the plan: arrivals on k6 spacing, closed loops, a shared iteration, the admin action at its scenario time', async () => {
    const doc = (await simulate(SMALL, ['--seed', '1'])).doc!;
    const count = (name: string) => doc.series.series.filter((s) => s.metric === 'http_reqs' && s.tags.name === name && Object.keys(s.tags).length === 1).reduce((a, s) => a + s.count.reduce((x, y) => x + y, 0), 0);
    // 5 signups/s for 120 s, each a signup and three follows.
    expect(count('signup')).toBe(600);
    expect(count('follow')).toBe(1800);
    // Ramping 10 → 60/s over 60 s, then 60/s for 60 s: 2,100 + 3,600 iterations, 70% of them a feed read.
    const reads = count('feed') + count('user_media');
    expect(reads).toBe(2100 + 3600);
    expect(count('feed') / reads).toBeGreaterThan(0.66);
    expect(count('feed') / reads).toBeLessThan(0.74);
    // Three VUs upload back to back with a 1 s sleep: about 3 × 120 / (1 + upload time) uploads.
    expect(count('upload')).toBeGreaterThan(200);
    expect(count('upload')).toBeLessThan(360);
    const kill = doc.telemetry!.events.find((e) => e.kind === 'cache_kill')!;
    expect(kill.t).toBe(60_000);
    expect(doc.simulation.model).toBe('scalegram-virtual/1');
    expect(doc.target).toBe('simulated');
    expect(doc.iterations.dropped).toBe(0);
  });

  it('scales populations and rates with --scale, never capacities or thresholds', async () => {
    const [full, half] = await Promise.all([simulate(SMALL, ['--seed', '1']), simulate(SMALL, ['--seed', '1', '--scale', '0.5'])]);
    expect(half.doc!.simulation.population.accounts).toBe(10_000);
    expect(full.doc!.simulation.population.accounts).toBe(20_000);
    expect(half.doc!.simulation.parameters).toEqual(full.doc!.simulation.parameters);
    expect(half.doc!.options.thresholds).toEqual(full.doc!.options.thresholds);
    expect(half.doc!.simulation.population.signups).toBe(300);
  });

  it('stores a fill on the node serving its key when it returns: the gutter after a kill that leaves the ring as it was, the owner again after the revive', async () => {
    // The timeline is in the fixture: the kill and the revive land while shard reads are in flight.
    const doc = (await simulate('test/fixtures/sim-gutter-timing.ts', ['--seed', '1', '--cold'])).doc!;
    expect(doc.telemetry!.events.map((e) => [e.kind, e.t])).toEqual([
      ['cache_kill', 1000],
      ['cache_revive', 5500],
    ]);
    const node = (name: string) => doc.telemetry!.caches.nodes.find((n) => n.name === name)!;
    // The gutter's one hit is B's token, which A's read, returned after the kill, put there; the
    // lookups of reads B and C that started while cache-0 was down (token, user, photo each) went to
    // the gutter: 6. cache-0's hits are D's token and the photos of C and D (the fills of reads
    // that returned after the revive) and the owners' user objects of C and D (filled after it too).
    expect(node('gutter-0')).toMatchObject({ hits: 1, misses: 5, fills: 5 });
    expect(node('cache-0')).toMatchObject({ hits: 5, misses: 9, fills: 9, dead: 0, toGutter: 6 });
  });

  it('a gutter node killed too: the finding counts its dead lookups apart and names the kill; the node table shows when each node was down and its lookups sent to the gutter', async () => {
    const doc = (await simulate('test/fixtures/sim-gutter-kill.ts', ['--seed', '1'])).doc!;
    const c = doc.telemetry!.caches;
    const node = (name: string) => c.nodes.find((n) => n.name === name)!;
    const g = c.gutter!;
    const gutter = node('gutter-0');
    expect(gutter.dead).toBeGreaterThan(100);
    expect(node('cache-1')).toMatchObject({ dead: 0, toGutter: g.lookups });
    expect(g.lookups).toBe(gutter.hits + gutter.misses + gutter.dead);
    const text = findings(doc).find((f) => f.startsWith('The gutter pool'))!;
    expect(text).toBe(
      `The gutter pool (1 node, values kept 10 s) answered ${num(g.lookups - gutter.dead)} of the ${num(g.lookups)} lookups of a down node's keys: ${num(g.hits)} hits (${formatValue(g.hits / (g.lookups - gutter.dead), 'ratio')}), each a shard read saved. ` +
        `The other ${num(gutter.dead)} found the gutter down too (gutter-0 killed (${num(doc.telemetry!.events.find((e) => e.detail.node === 'gutter-0')!.detail.itemsLost as number)} items lost) at 30s) and fell through to the shards, as all ${num(g.lookups)} would have without it; ${num(g.fills)} misses of a down node's keys read a shard in all.`,
    );
    const md = reportMarkdown(doc);
    expect(md).toContain(`| cache-1 | alive (down 10s–50s) | ${formatValue(node('cache-1').hitRatio!, 'ratio')} | ${num(node('cache-1').hits)} | ${num(node('cache-1').misses)} | ${num(g.lookups)}, to the gutter |`);
    expect(md).toContain(`| gutter-0 | gutter (down 30s–40s) | ${formatValue(gutter.hitRatio!, 'ratio')} | ${num(gutter.hits)} | ${num(gutter.misses)} | ${num(gutter.dead)} |`);
    expect(md).toContain('| cache-0 | alive | ');
    const html = reportHtml(doc);
    expect(html).toContain(`<td>cache-1</td><td>alive (down 10s–50s)</td>`);
    expect(html).toContain(`<td class="r">${num(g.lookups)}, to the gutter</td>`);
  });

  it('cache-node-loss refuses a LEASES or REMOVE_FROM_RING other than true or false, naming the option, with exit 107', async () => {
    const runs = await Promise.all(['LEASES=yes', 'REMOVE_FROM_RING=1', 'LEASES=TRUE'].map((e) => simulate('scenarios/cache-node-loss.ts', ['--scale', '0.01', '-e', e])));
    for (const [i, [name, value]] of [
      ['LEASES', 'yes'],
      ['REMOVE_FROM_RING', '1'],
      ['LEASES', 'TRUE'],
    ].entries()) {
      expect(runs[i]!.code).toBe(107);
      expect(runs[i]!.stderr).toContain(`${name} must be true or false (got "${value}")`);
      expect(runs[i]!.doc).toBeNull();
    }
  });

  it('refuses a plain k6 script, naming what to declare', async () => {
    const r = await simulate('test/fixtures/plain-k6.js', ['--seed', '1']);
    expect(r.code).toBe(104);
    expect(r.stderr).toMatch(/cannot be simulated: it exports no `work` declarations \(steps for "default"\)/);
    expect(r.stderr).toMatch(/export const population/);
    expect(r.doc).toBeNull();
  });

  it('reports an unknown --topology before starting, in one line, with exit 104', async () => {
    const r = await simulate(SMALL, ['--topology', 'nope']);
    expect(r.code).toBe(104);
    expect(r.stderr).toBe('scalegram simulate: unknown topology "nope": use a preset (2010-single, 2011-vertical, 2012-sharded) or a .json file\n');
    expect(r.doc).toBeNull();
  });
});
