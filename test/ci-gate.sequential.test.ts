// The CI example works: the steps of .github/workflows/perf-gate.yml (after the install) run here as
// GitHub Actions would run them — bash, the job's env, a step summary file — against the baseline
// committed in baselines/ci-gate, and pass; and the same compare step fails (exit 1, naming the
// regression) on a run whose database got slower (-e SLOW_DB_MS), so the gate can fail. Runs after the parallel
// suite (vitest.config.ts), on a quiet machine, as CI runs it.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

const workflow = parse(readFileSync('.github/workflows/perf-gate.yml', 'utf8')) as Workflow;
const job = workflow.jobs.gate!;
const tmp = mkdtempSync(join(tmpdir(), 'scalegram-gate-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function runStep(step: Step, env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-e', '-c', step.run!], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 170_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the CI performance gate (.github/workflows/perf-gate.yml)', () => {
  const runSteps = job.steps.filter((s) => s.run && s.name !== 'Install');
  const runStepOf = (id: string) => runSteps.find((s) => s.id === id)!;
  const compareStep = runSteps.find((s) => s.run!.includes('scalegram.mjs compare'))!;

  it('has the steps a gate needs: install, run, compare against the committed baseline, upload the report', () => {
    expect(job.steps.map((s) => s.uses ?? s.name)).toEqual(expect.arrayContaining(['actions/checkout@v4', 'actions/setup-node@v4', 'Install', 'actions/upload-artifact@v4']));
    expect(runStepOf('run').run).toMatch(/bin\/scalegram\.mjs run scenarios\/ci-gate\.ts --seed 1/);
    expect(compareStep.run).toMatch(/bin\/scalegram\.mjs compare baselines\/ci-gate "\$OUT"/);
    expect(existsSync('baselines/ci-gate/summary.json')).toBe(true);
    // The JUnit publishing step creates a check run: without checks: write it fails on default tokens.
    expect(workflow.permissions).toMatchObject({ contents: 'read', checks: 'write' });
  });

  it('passes on this code: thresholds hold and nothing regressed against the baseline', () => {
    const out = join(tmp, 'ok');
    const summary = join(tmp, 'step-summary.md');
    writeFileSync(summary, '');
    const env = { ...job.env, OUT: out, GITHUB_STEP_SUMMARY: summary };
    for (const step of runSteps) {
      const r = runStep(step, env);
      if (r.status !== 0) throw new Error(`step "${step.name}" exited ${r.status}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
    }
    for (const f of ['summary.json', 'result.json', 'report.html', 'report.md', 'junit.xml', 'compare-junit.xml']) expect(existsSync(join(out, f)), f).toBe(true);
    const md = readFileSync(summary, 'utf8');
    expect(md).toMatch(/no regression/i);
    expect(md).toContain('http_req_duration');
  }, 180_000);

  it('fails the compare step (exit 1) on a run whose every database query got 5 ms slower', () => {
    const out = join(tmp, 'slow');
    const run = runStep({ run: runStepOf('run').run!.replace('--seed 1', '--seed 1 -e SLOW_DB_MS=5') }, { ...job.env!, OUT: out });
    expect([0, 99]).toContain(run.status);
    const summary = join(tmp, 'slow-summary.md');
    writeFileSync(summary, '');
    const r = runStep(compareStep, { ...job.env!, OUT: out, GITHUB_STEP_SUMMARY: summary });
    expect(r.status).toBe(1);
    const md = readFileSync(summary, 'utf8');
    expect(md).toMatch(/FAIL: \d+ metric stats? regressed/);
    expect(md).toMatch(/`http_req_duration\{name:feed\}` \| (avg|p\(95\)) \|[^\n]*\*\*regressed\*\*/);
  }, 180_000);
});
