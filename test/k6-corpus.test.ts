// The k6 compatibility corpus (test/k6-corpus/, see its README): plain k6 scripts, each with what
// real k6 v0.48.0 recorded beside it and the expected.json derived from that. Every script runs
// under `scalegram run --target` against one `scalegram serve` (as k6 was run: one server, every
// script pointed at it; a run with a server of its own costs twice the CPU) and must give k6's verdicts:
// the exit code, every threshold's pass or fail, the checks, the figures that do not depend on
// timing, the set of metrics in the summary export, and what handleSummary writes.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const corpus = join(repo, 'test', 'k6-corpus');
const bin = join(repo, 'bin', 'scalegram.mjs');

/** test/k6-corpus/<name>/expected.json, as derive.mjs writes it. */
interface Expected {
  exitCode: number;
  thresholds: Record<string, Record<string, 'pass' | 'fail'>>;
  checks: Record<string, { exact: true; passes: number; fails: number } | { exact: false; passed: boolean; failed: boolean }>;
  groups: string[];
  values: Record<string, Record<string, number>>;
  atMost?: Record<string, Record<string, number>>;
  metrics: string[];
  timingDependentMetrics: string[];
  handleSummary?: { file: string; content: unknown; stdoutLine: string };
}

/** The parts of a k6-shaped summary export (--summary-export) read here. */
interface ExportGroup {
  path: string;
  groups?: Record<string, ExportGroup>;
  checks?: Record<string, { path: string; passes: number; fails: number }>;
}
interface SummaryExport {
  metrics: Record<string, Record<string, unknown> & { thresholds?: Record<string, boolean> }>;
  root_group: ExportGroup;
}

interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  exported: SummaryExport | null;
  workDir: string;
}

const cases = readdirSync(corpus, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(corpus, d.name, 'expected.json')))
  .map((d) => d.name)
  .sort();

const tmp = mkdtempSync(join(tmpdir(), 'scalegram-k6-corpus-'));

// The server every script runs against, started as the README says for load tests against
// `scalegram serve` (no rate limit, no per-address cap, long keep-alive), with an admin token the
// runs are given so they collect the topology telemetry as a run with its own server does.
const adminToken = randomBytes(24).toString('hex');
let server: ChildProcess | null = null;
let target = '';

beforeAll(async () => {
  server = spawn(process.execPath, [bin, 'serve', '--port', '0', '--seed', '1', '--rate-limit', '0', '--max-connections-per-address', '0', '--idle-timeout-ms', '65000'], {
    cwd: tmp,
    env: { ...process.env, SCALEGRAM_ADMIN_TOKEN: adminToken },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const started = server;
  target = await new Promise<string>((resolve, reject) => {
    let out = '';
    const seen = (s: string) => {
      out += s;
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    };
    started.stdout!.setEncoding('utf8').on('data', seen);
    started.stderr!.setEncoding('utf8').on('data', seen);
    started.on('exit', (code) => reject(new Error(`scalegram serve exited ${code} before listening:\n${out}`)));
  });
  startRuns();
}, 60_000);

afterAll(() => {
  server?.kill('SIGTERM');
  rmSync(tmp, { recursive: true, force: true });
});

// Runs of `scalegram run` at once: each is a Node process that spends about 3 s of CPU starting and
// then mostly waits (the scripts are short and light), so a few overlap well on two cores: the
// corpus takes about 50 s here.
const PARALLEL = 3;
let running = 0;
const waiting: Array<() => void> = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= PARALLEL) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** `scalegram run` of one corpus script, from a working directory of its own (handleSummary's files land there). */
function runScript(name: string): Promise<RunResult> {
  const workDir = join(tmp, name);
  mkdirSync(workDir, { recursive: true });
  const exportPath = join(workDir, 'summary-export.json');
  const args = [bin, 'run', join(corpus, name, 'script.js'), '--quiet', '--seed', '1', '--target', target, '-e', `ADMIN_TOKEN=${adminToken}`, '--out', join(workDir, 'result'), '--summary-export', exportPath];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      const exported = existsSync(exportPath) ? (JSON.parse(readFileSync(exportPath, 'utf8')) as SummaryExport) : null;
      resolve({ status, stdout, stderr, exported, workDir });
    });
  });
}

// Every run, started once the server listens (at most PARALLEL at a time) and asserted one by one.
const runs = new Map<string, Promise<RunResult>>();
function startRuns() {
  for (const name of cases) {
    const run = slot(() => runScript(name));
    run.catch(() => undefined); // asserted (and reported) by the case's own test
    runs.set(name, run);
  }
}

/** Every check of an export's group tree by path ("::group::name"), and every group path. */
function walk(group: ExportGroup, checks: Record<string, { passes: number; fails: number }> = {}, groups: string[] = []) {
  for (const c of Object.values(group.checks ?? {})) checks[c.path] = { passes: c.passes, fails: c.fails };
  for (const g of Object.values(group.groups ?? {})) {
    groups.push(g.path);
    walk(g, checks, groups);
  }
  return { checks, groups };
}

// Scalegram's own metrics (the runner's lateness measures and the topology telemetry) are under the
// export's `scalegram` key, apart from k6's: the metric names must be exactly k6's.

/** Rounded, so a percentile computed in another order (85.49999999999999 against 85.5) compares equal. */
const round = (v: unknown) => (typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : v);

describe('k6 compatibility corpus: scalegram run gives the verdicts real k6 v0.48.0 recorded', () => {
  it('has scripts to run', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });


  for (const name of cases) {
    it(name, async () => {
      const expected = JSON.parse(readFileSync(join(corpus, name, 'expected.json'), 'utf8')) as Expected;
      const r = await runs.get(name)!;
      const context = `${name}: scalegram run exited ${r.status}\n${r.stderr.slice(-3000)}`;

      expect.soft(r.status, context).toBe(expected.exitCode);

      // k6 writes the summary export whatever the exit code (a setup that threw too).
      expect(r.exported, `${context}\nno summary export was written`).not.toBeNull();
      const exported = r.exported!;

      const thresholds: Record<string, Record<string, 'pass' | 'fail'>> = {};
      for (const metric of Object.keys(expected.thresholds)) {
        const got = exported.metrics[metric]?.thresholds ?? {};
        thresholds[metric] = Object.fromEntries(Object.entries(got).map(([expr, failed]) => [expr, failed ? 'fail' : 'pass']));
      }
      expect.soft(thresholds, `${name}: thresholds (pass/fail)`).toEqual(expected.thresholds);

      const tree = walk(exported.root_group);
      const checks = Object.fromEntries(Object.entries(tree.checks).map(([path, c]) => [
        path,
        expected.checks[path]?.exact === false ? { exact: false, passed: c.passes > 0, failed: c.fails > 0 } : { exact: true, passes: c.passes, fails: c.fails },
      ]));
      expect.soft(checks, `${name}: checks`).toEqual(expected.checks);
      expect.soft(tree.groups.sort(), `${name}: groups`).toEqual(expected.groups);

      const values: Record<string, Record<string, unknown>> = {};
      const wanted: Record<string, Record<string, unknown>> = {};
      for (const [metric, stats] of Object.entries(expected.values)) {
        values[metric] = Object.fromEntries(Object.keys(stats).map((s) => [s, round(exported.metrics[metric]?.[s])]));
        wanted[metric] = Object.fromEntries(Object.entries(stats).map(([s, v]) => [s, round(v)]));
      }
      expect.soft(values, `${name}: figures that do not depend on timing`).toEqual(wanted);

      for (const [metric, stats] of Object.entries(expected.atMost ?? {})) {
        for (const [s, bound] of Object.entries(stats)) {
          expect.soft(exported.metrics[metric]?.[s] as number, `${name}: ${metric} ${s} at most ${bound}`).toBeLessThanOrEqual(bound);
        }
      }

      const names = Object.keys(exported.metrics).filter((m) => !expected.timingDependentMetrics.includes(m)).sort();
      expect.soft(names, `${name}: metrics in the summary export`).toEqual(expected.metrics);

      if (expected.handleSummary) {
        const file = join(r.workDir, expected.handleSummary.file);
        expect.soft(existsSync(file), `${name}: handleSummary wrote ${expected.handleSummary.file}`).toBe(true);
        if (existsSync(file)) expect.soft(JSON.parse(readFileSync(file, 'utf8')), `${name}: ${expected.handleSummary.file}`).toEqual(expected.handleSummary.content);
        expect.soft(r.stdout, `${name}: handleSummary's stdout`).toContain(expected.handleSummary.stdoutLine);
      }
    }, 180_000);
  }
});
