// The CI example works, and fails only on a real regression: the steps of
// .github/workflows/perf-gate.yml (after the install) run here as GitHub Actions would run them —
// bash, the job's env, a step summary file — against the baseline committed in baselines/ci-gate.
//   - On unchanged code the gate passes 10 times in a row while another process keeps one core busy
//     (the figures it judges are counted or simulated, not timed).
//   - It fails when every database query gets 5 ms slower (-e SLOW_DB_MS=5): the simulated latencies
//     show it.
//   - It fails when the feed path reads media with one query per item instead of one per shard (an
//     N+1), in a copy of the repository with that one change: work_db_reads of the feed route names it.
// It runs in the parallel suite, beside the other test files: a gate that needs a quiet machine
// would not be this gate. SCALEGRAM_GATE_REPEATS lowers the 10 for a quick local loop; CI runs the
// full count.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

interface Step {
  name?: string;
  id?: string;
  run?: string;
  uses?: string;
  if?: string;
}
interface Workflow {
  permissions?: Record<string, string>;
  jobs: Record<string, { env?: Record<string, string>; steps: Step[] }>;
}

const REPO = resolve('.');
const workflow = parse(readFileSync('.github/workflows/perf-gate.yml', 'utf8')) as Workflow;
const job = workflow.jobs.gate!;
const tmp = mkdtempSync(join(tmpdir(), 'scalegram-gate-'));
const REPEATS = Number(process.env.SCALEGRAM_GATE_REPEATS ?? 10);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const runSteps = job.steps.filter((s) => s.run && s.name !== 'Install');
const stepOf = (id: string) => runSteps.find((s) => s.id === id)!;
const compareStep = runSteps.find((s) => s.run!.includes('scalegram.mjs compare'))!;

function runStep(step: Step, env: Record<string, string>, cwd = REPO): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-e', '-c', step.run!], { cwd, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 240_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the workflow's steps after the install (the scenario's, with `extraArgs`), in `cwd`; returns each step's outcome and the job summary. */
function gate(name: string, opts: { extraArgs?: string; cwd?: string } = {}): { steps: Record<string, ReturnType<typeof runStep>>; summary: string } {
  const out = join(tmp, name);
  const summary = join(tmp, `${name}-summary.md`);
  writeFileSync(summary, '');
  const env = { ...job.env, OUT: out, GITHUB_STEP_SUMMARY: summary };
  const steps: Record<string, ReturnType<typeof runStep>> = {};
  for (const step of runSteps) {
    const script = opts.extraArgs ? step.run!.replace('--seed 1', `--seed 1 ${opts.extraArgs}`) : step.run!;
    steps[step.id ?? step.name!] = runStep({ run: script }, env, opts.cwd);
  }
  return { steps, summary: readFileSync(summary, 'utf8') };
}

function failure(name: string, r: ReturnType<typeof runStep>): string {
  return `step "${name}" exited ${r.status}:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`;
}

describe('the CI performance gate (.github/workflows/perf-gate.yml)', () => {
  it('has the steps a gate needs: install, a live run, a simulated run, compare against the committed baselines, upload the report', () => {
    expect(job.steps.map((s) => s.uses ?? s.name)).toEqual(expect.arrayContaining(['actions/checkout@v4', 'actions/setup-node@v4', 'Install', 'actions/upload-artifact@v4']));
    expect(stepOf('run').run).toMatch(/bin\/scalegram\.mjs run scenarios\/ci-gate\.ts --seed 1 --no-thresholds/);
    expect(stepOf('simulate').run).toMatch(/bin\/scalegram\.mjs simulate scenarios\/ci-gate\.ts --seed 1/);
    expect(compareStep.run).toMatch(/compare baselines\/ci-gate\/live "\$OUT\/live" --gate 'work_\*,checks,http_req_failed'/);
    expect(compareStep.run).toMatch(/compare baselines\/ci-gate\/simulated "\$OUT\/simulated"/);
    for (const f of ['live/summary.json', 'live/work.json', 'simulated/summary.json', 'simulated/work.json']) expect(existsSync(join('baselines/ci-gate', f)), f).toBe(true);
    // The JUnit publishing step creates a check run: without checks: write it fails on default tokens.
    expect(workflow.permissions).toMatchObject({ contents: 'read', checks: 'write' });
  });

  it(`passes ${REPEATS} times in a row on unchanged code while another process keeps one core busy`, async () => {
    const busy: ChildProcess = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    try {
      for (let i = 0; i < REPEATS; i++) {
        const { steps, summary } = gate(`ok-${i}`);
        for (const [name, r] of Object.entries(steps)) if (r.status !== 0) throw new Error(`run ${i + 1} of ${REPEATS}: ${failure(name, r)}`);
        expect(summary).toMatch(/no regression/i);
        if (i === 0) {
          for (const f of ['live/summary.json', 'live/work.json', 'live/report.html', 'simulated/summary.json', 'simulated/report.html', 'compare-live-junit.xml', 'compare-simulated-junit.xml']) {
            expect(existsSync(join(tmp, 'ok-0', f)), f).toBe(true);
          }
          expect(summary).toContain('work_db_reads{route:GET /v1/users/self/feed}');
          expect(summary).toContain('http_req_duration{name:feed}');
        }
      }
    } finally {
      busy.kill('SIGKILL');
    }
  }, REPEATS * 120_000);

  it('fails (exit 1) when every database query is 5 ms slower, naming the simulated latencies', () => {
    const { steps, summary } = gate('slow', { extraArgs: '-e SLOW_DB_MS=5' });
    expect(steps.run!.status, failure('run', steps.run!)).toBe(0);
    expect([0, 99]).toContain(steps.simulate!.status);
    const compare = steps[compareStep.name!]!;
    expect(compare.status, failure('compare', compare)).toBe(1);
    // The step summary holds the live comparison, then the simulated one.
    const heads = [...summary.matchAll(/^### .*(PASS|FAIL)/gm)].map((m) => m.index);
    expect(heads).toHaveLength(2);
    // The work counted live may move too (slower fills overlap more), but the latencies say it first.
    const simulated = summary.slice(heads[1]);
    expect(simulated).toMatch(/FAIL: \d+ metric stats? regressed/);
    expect(simulated).toMatch(/\| `http_req_duration` \| avg \|[^\n]*\*\*regressed\*\*/);
    expect(simulated).toMatch(/`http_req_duration\{name:upload\}` \| (avg|p\(95\)) \|[^\n]*\*\*regressed\*\*/);
  }, 240_000);

  it('fails (exit 1) when the feed path reads media with one query per item instead of one per shard (an N+1), naming the figure', () => {
    const copy = join(tmp, 'n-plus-one');
    cpSync(REPO, copy, { recursive: true, filter: (src) => !/[/\\](node_modules|\.git|reports[/\\]out)$/.test(src) });
    symlinkSync(join(REPO, 'node_modules'), join(copy, 'node_modules'), 'dir');
    const file = join(copy, 'sim/domain/photo-store.ts');
    // In getMediaMany's fill (the feed's media), the loop over the misses grouped by logical shard
    // becomes a loop over the misses one by one: a query per media item.
    const source = readFileSync(file, 'utf8');
    const perShard = 'for (const [shardId, list] of this.groupByShard(missing.map((k) => k.slice(2)))) {';
    const perItem = 'for (const [shardId, list] of missing.map((k) => [this.validShard(k.slice(2))!, [k.slice(2)]] as const)) {';
    const fn = source.indexOf('async getMediaMany(');
    const at = source.indexOf(perShard, fn);
    expect(fn, 'getMediaMany').toBeGreaterThan(0);
    expect(at, "getMediaMany's fill, read per shard").toBeGreaterThan(fn);
    expect(source.indexOf('\n  async ', fn + 1), 'the loop is inside getMediaMany').toBeGreaterThan(at);
    writeFileSync(file, source.slice(0, at) + perItem + source.slice(at + perShard.length));
    const { steps, summary } = gate('n-plus-one', { cwd: copy });
    expect(steps.run!.status, failure('run', steps.run!)).toBe(0);
    expect(steps.simulate!.status, failure('simulate', steps.simulate!)).toBe(0);
    const compare = steps[compareStep.name!]!;
    expect(compare.status, failure('compare', compare)).toBe(1);
    expect(summary).toMatch(/`work_db_reads\{route:GET \/v1\/users\/self\/feed\}` \| value \|[^\n]*\*\*regressed\*\*/);
  }, 240_000);
});
