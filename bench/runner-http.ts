// The runner's own HTTP path under load — VU loops running a k6 script's default function, loaded as
// the runner loads it (script-loader.ts: a module per VU, the sync transform), through the real k6/http
// shim into a MetricRegistry — against autocannon, same connections, on a bare Fastify route. Two
// scripts: bench/scripts/get-sync.js (written synchronously, as k6's documentation writes it) and
// bench/scripts/get-awaited.js (the same with await).
//
//   node --import tsx bench/runner-http.ts [--connections 32] [--duration 8] [--rounds 2]

import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { HttpClient } from '../scenarios/runner/http-client.ts';
import type { RuntimeExt } from '../scenarios/runner/k6/host.ts';
import { MetricRegistry } from '../scenarios/runner/k6-metrics.ts';
import { setRuntime, vuStorage, type ScenarioState, type VuState } from '../scenarios/runner/runtime.ts';
import { loadScript } from '../scenarios/runner/script-loader.ts';
import { installGlobals } from '../scenarios/runner/k6/register.ts';
import { newHistogram } from '../sim/observability/metrics.ts';

export interface RunnerHttpResult {
  reqPerS: number;
  /** Latency of `await http.get()` as the script sees it (ms). */
  p50Ms: number;
  p99Ms: number;
  /**
   * CPU of this process per request (µs, user + system, all threads): what the load generator
   * costs. Steadier than req/s on a shared machine, and it says which side is the bottleneck.
   */
  cpuUsPerReq?: number;
}

export type BenchScript = 'sync' | 'awaited';

/** The bench's scripts: one GET of __ENV.BENCH_URL per iteration. */
export const BENCH_SCRIPTS: Record<BenchScript, string> = {
  sync: fileURLToPath(new URL('./scripts/get-sync.js', import.meta.url)),
  awaited: fileURLToPath(new URL('./scripts/get-awaited.js', import.meta.url)),
};

/**
 * A runner Runtime for the benches (a metric registry, one HTTP client, checks ignored), installed,
 * with the k6 globals, and a scenario whose env holds BENCH_URL for the bench scripts.
 */
export function installBenchRuntime(url: string, vus: number, counts: { completed: number } = { completed: 0 }): { client: HttpClient; scenario: ScenarioState } {
  const client = new HttpClient();
  const runtime: RuntimeExt = {
    registry: new MetricRegistry(() => Date.now()),
    env: { BENCH_URL: url },
    nowMs: () => Date.now(),
    speed: 1,
    options: {},
    abort: () => undefined,
    baseUrl: new URL(url).origin,
    checks: { record: () => undefined },
    stats: () => ({ iterationsCompleted: counts.completed, iterationsInterrupted: 0, vusActive: vus, vusInitialized: vus, currentTestRunDurationMs: 0 }),
    httpClient: client,
  };
  setRuntime(runtime);
  // The scripts read __ENV, as a run's do.
  installGlobals();
  const scenario: ScenarioState = { name: 'bench', executor: 'constant-vus', startTimeMs: Date.now(), env: { BENCH_URL: url }, tags: { scenario: 'bench' }, progress: () => 0, iterationsStarted: 0 };
  return { client, scenario };
}

/** Drives `vus` closed loops of a bench script's iterations for `durationMs`, each VU with its own module. */
export async function benchRunnerHttp(url: string, opts: { vus: number; durationMs: number; script: BenchScript }): Promise<RunnerHttpResult> {
  const counts = { completed: 0 };
  const { client, scenario } = installBenchRuntime(url, opts.vus, counts);
  const signal = new AbortController().signal;
  const histogram = newHistogram();
  const script = loadScript(BENCH_SCRIPTS[opts.script]);
  try {
    const loop = async (id: number, until: number, record: boolean): Promise<void> => {
      let n = 0;
      const iteration = script.module(id).default as () => unknown;
      while (performance.now() < until) {
        const state: VuState = { id, iterationInInstance: n, iterationInScenario: scenario.iterationsStarted++, scenario, tags: {}, groups: [], intendedStartMs: Date.now(), startMs: Date.now(), signal };
        const t0 = performance.now();
        await vuStorage.run(state, iteration);
        if (record) {
          histogram.recordValue(Math.round((performance.now() - t0) * 1000));
          counts.completed++;
        }
        n++;
      }
    };
    // Warm-up: connections opened and the shim's code compiled before the clock starts.
    const warmUntil = performance.now() + Math.min(1000, opts.durationMs / 4);
    await Promise.all(Array.from({ length: opts.vus }, (_, i) => loop(i + 1, warmUntil, false)));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const until = t0 + opts.durationMs;
    await Promise.all(Array.from({ length: opts.vus }, (_, i) => loop(i + 1, until, true)));
    const elapsedS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return {
      reqPerS: counts.completed / elapsedS,
      p50Ms: histogram.getValueAtPercentile(50) / 1000,
      p99Ms: histogram.getValueAtPercentile(99) / 1000,
      cpuUsPerReq: (cpu.user + cpu.system) / counts.completed,
    };
  } finally {
    await client.close();
    setRuntime(null);
  }
}

export interface HttpPathComparison {
  connections: number;
  durationS: number;
  autocannon: RunnerHttpResult[];
  /** The synchronous script's rounds, and the awaited script's. */
  runner: Record<BenchScript, RunnerHttpResult[]>;
  /** Per script: median over rounds of runner req/s ÷ autocannon req/s, each measured beside its round's autocannon. */
  ratio: Record<BenchScript, number>;
  /** Per script: best runner req/s ÷ best autocannon req/s. */
  ratioOfBest: Record<BenchScript, number>;
}

const TARGET = fileURLToPath(new URL('./target.ts', import.meta.url));

export async function startBareTarget(): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', TARGET, 'bare'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: child.stdout! });
  const line = await new Promise<string>((resolve, reject) => {
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`bench target exited with ${code} before it was ready`)));
  });
  return { child, address: (JSON.parse(line) as { address: string }).address };
}

async function runAutocannon(url: string, connections: number, durationS: number): Promise<RunnerHttpResult> {
  const cpu0 = process.cpuUsage();
  const r = await autocannon({ url, connections, duration: durationS });
  const cpu = process.cpuUsage(cpu0);
  return { reqPerS: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99, cpuUsPerReq: (cpu.user + cpu.system) / r.requests.total };
}

/**
 * autocannon and the runner, alternately `rounds` times each, against one bare Fastify route in its
 * own process, same connection count: the "runner's HTTP path is not the bottleneck" figure.
 */
export async function compareRunnerWithAutocannon(opts: { connections: number; durationS: number; rounds: number; progress?: (msg: string) => void }): Promise<HttpPathComparison> {
  const say = opts.progress ?? (() => undefined);
  const target = await startBareTarget();
  const url = `${target.address}/`;
  try {
    // Warm the server's JIT so the first measurement is not penalised.
    await autocannon({ url, connections: opts.connections, duration: 2 });
    const ac: RunnerHttpResult[] = [];
    const rn: Record<BenchScript, RunnerHttpResult[]> = { sync: [], awaited: [] };
    for (let i = 0; i < opts.rounds; i++) {
      say(`round ${i + 1}/${opts.rounds}: autocannon …`);
      ac.push(await runAutocannon(url, opts.connections, opts.durationS));
      // Alternated, so neither script always runs right after autocannon's burst.
      for (const script of i % 2 === 0 ? (['sync', 'awaited'] as const) : (['awaited', 'sync'] as const)) {
        say(`round ${i + 1}/${opts.rounds}: runner, ${script} script …`);
        rn[script].push(await benchRunnerHttp(url, { vus: opts.connections, durationMs: opts.durationS * 1000, script }));
      }
    }
    const best = (xs: RunnerHttpResult[]) => Math.max(...xs.map((x) => x.reqPerS));
    const median = (xs: number[]) => {
      const v = [...xs].sort((a, b) => a - b);
      const mid = v.length >> 1;
      return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
    };
    const ratioOf = (s: BenchScript) => median(rn[s].map((r, i) => r.reqPerS / ac[i]!.reqPerS));
    return {
      connections: opts.connections,
      durationS: opts.durationS,
      autocannon: ac,
      runner: rn,
      ratio: { sync: ratioOf('sync'), awaited: ratioOf('awaited') },
      ratioOfBest: { sync: best(rn.sync) / best(ac), awaited: best(rn.awaited) / best(ac) },
    };
  } finally {
    await new Promise<void>((resolve) => {
      if (target.child.exitCode !== null) return resolve();
      target.child.once('exit', () => resolve());
      target.child.kill('SIGTERM');
    });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { connections: { type: 'string', default: '32' }, duration: { type: 'string', default: '8' }, rounds: { type: 'string', default: '2' } } });
  const c = await compareRunnerWithAutocannon({
    connections: Number(values.connections),
    durationS: Number(values.duration),
    rounds: Number(values.rounds),
    progress: (m) => process.stderr.write(`  ${m}\n`),
  });
  const row = (who: string, r: RunnerHttpResult) =>
    `${who.padEnd(12)} ${r.reqPerS.toFixed(0).padStart(8)} req/s   p50 ${r.p50Ms.toFixed(2)} ms   p99 ${r.p99Ms.toFixed(2)} ms   client CPU ${(r.cpuUsPerReq ?? 0).toFixed(1)} µs/req`;
  for (let i = 0; i < c.autocannon.length; i++) {
    process.stdout.write(row('autocannon', c.autocannon[i]!) + '\n' + row('sync', c.runner.sync[i]!) + '\n' + row('awaited', c.runner.awaited[i]!) + '\n');
  }
  for (const s of ['sync', 'awaited'] as const) {
    process.stdout.write(
      `runner (${s} script) / autocannon (${c.connections} connections, ${c.durationS} s, ${c.autocannon.length} rounds): median of rounds ${(c.ratio[s] * 100).toFixed(1)}%, ` +
        `best over best ${(c.ratioOfBest[s] * 100).toFixed(1)}% (target ≥ 80%)\n`,
    );
  }
}
