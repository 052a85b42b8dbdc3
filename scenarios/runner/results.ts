// What a run leaves behind: a result directory with the resolved options, topology, seed, every
// time series and the encoded histograms (mergeable), plus the k6-shaped summary export. Pure
// builders return the documents; `writeResults` is the only part that touches the disk.

import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { TelemetrySnapshot } from '../../sim/observability/telemetry.ts';
import type { RegistrySnapshot, SeriesData } from './k6-metrics.ts';
import type { ResolvedScenario } from './options.ts';
import type { RunResult } from './run.ts';
import type { CheckTree } from './summary-export.ts';
import type { ThresholdResult } from './thresholds.ts';

export const RESULT_FORMAT = 'scalegram-result/1';

/** The topology as `GET /_sim/topology` describes it at the end of the run (the parts reports read). */
export interface TopologyDescription {
  name: string;
  description: string;
  seed: number;
  config: Record<string, unknown>;
  databases: Array<{
    name: string;
    families: string[];
    logicalShards: number;
    servers: Array<{ name: string; index: number; down: boolean; logicalShards: number; pool: { size: number }; ops: { reads: number; writes: number }; replicas: Array<{ name: string }> }>;
  }>;
  cache: { hashing: string; leases: boolean; nodes: Array<{ name: string; alive: boolean; onRing: boolean; gutter?: boolean; items: number; bytes: number; capacityBytes: number; hits: number; misses: number; evictions: number }> };
  feed?: { backend: string; fanout: string; maxLength: number; replica: { lagMs: number } | null };
  queue?: { workers: number; depth: number; running: number; maxDepth: number };
}

/** result.json, as resultDocument() builds it. JSON drops undefined threshold values. */
export interface ResultDocument {
  format: typeof RESULT_FORMAT;
  scenario: string;
  script: string;
  seed: number;
  speed: number;
  scale: number;
  target: string;
  /** ISO time the run started (before the script loaded and setup ran). */
  startedAt: string;
  /** ISO time the scenarios started, after setup (null if the run ended before; absent in older results). */
  loadStartedAt?: string | null;
  /** From the first scenario's start to the end of teardown (ms). */
  durationMs: number;
  /**
   * k6's test run duration (ms): from the start of setup to the end of teardown. Counter rates in
   * the summary divide by it, as k6's do (absent in older results and in simulations: durationMs).
   */
  testRunDurationMs?: number;
  aborted: string | null;
  /** The event loops' delay over the run (absent in older results): queueing in the harness itself. */
  harness?: HarnessSection;
  /** errors/errorMessages: iterations that threw (absent in results written before they were recorded). */
  iterations: { completed: number; interrupted: number; dropped: number; errors?: number; errorMessages?: Array<{ message: string; scenario: string; count: number }> };
  options: { scenarios: ResolvedScenario[]; thresholds: Record<string, unknown[]>; raw?: unknown; [k: string]: unknown };
  thresholds: Array<Omit<ThresholdResult, 'value'> & { value?: number | null }>;
  /** null when the target did not answer /_sim/topology (e.g. --target a server that is not Scalegram). */
  topology: TopologyDescription | null;
  metrics: RegistrySnapshot;
  series: SeriesData;
  /** null when the target did not answer /_sim/telemetry. */
  telemetry: TelemetrySnapshot | null;
  /** Live runs: operations per physical database server (`cluster/server`) when the load began, after seeding (absent in older results and simulations). */
  serverOpsAtLoadStart?: Record<string, number>;
  checks: CheckTree | null;
  /** Present when `scalegram simulate` made the result: the model and its parameters (absent in live runs). */
  simulation?: SimulationSection;
}

/** What only a simulated result has (result.json's `simulation`). */
export interface SimulationSection {
  model: string;
  /** The topology's capacities the model charged (real units; the README's resource table gives their sources). */
  parameters: Record<string, unknown>;
  population: { accounts: number; signups: number; followEdges: number; followers: { max: number; p99: number; p50: number }; celebrities: Array<{ id: number; followers: number }> };
  /** The state the caches started in: the latest photos of the `accounts` most-followed accounts (`keys`, `bytes`), or empty (`cold`). */
  warm: { cold: boolean; keys: number; bytes: number; accounts: number };
  /** Events the engine processed (count). */
  events: number;
  /** Resources in the order they first saturated (busy ≥ 95% of a step, or refusing work); atMs since the start. */
  saturation: Array<{ resource: string; atMs: number; use: number; refused: number; reqPerS: number }>;
  /** Every resource's peak and mean busy share, refusals and queue waits. */
  resources: Array<{ resource: string; servers: number; peakUse: number; peakAtMs: number; meanUse: number; refused: number; maxWaitMs: number; meanWaitMs: number }>;
  /** Fan-out delivery lag per follower (weighted by the chunks' sizes), exact to the chunking (ms). */
  delivery: { deliveries: number; p50Ms: number; p99Ms: number; maxMs: number } | null;
  /** Width of the telemetry's steps (ms). */
  stepMs: number;
  /** Wall clock and machine: the only part that differs between two simulations with one seed. */
  wall: { ms: number; eventsPerS: number; peakRssBytes: number };
}

/** The full result document (result.json). */
export function resultDocument(r: RunResult): ResultDocument {
  return {
    format: RESULT_FORMAT,
    scenario: r.scenario,
    script: r.scriptPath,
    seed: r.seed,
    speed: r.speed,
    scale: r.scale,
    target: r.target,
    startedAt: new Date(r.startedMs).toISOString(),
    loadStartedAt: r.loadStartedMs === null ? null : new Date(r.loadStartedMs).toISOString(),
    durationMs: r.durationMs,
    ...(r.testRunDurationMs !== undefined ? { testRunDurationMs: r.testRunDurationMs } : {}),
    harness: r.harness,
    aborted: r.aborted,
    iterations: r.iterations,
    options: { ...r.options },
    thresholds: r.thresholds,
    // What /_sim/topology and /_sim/telemetry answered (null when the target did not).
    topology: r.topology as TopologyDescription | null,
    metrics: r.registry.toJSON(),
    series: r.registry.series(),
    telemetry: r.telemetry as TelemetrySnapshot | null,
    ...(r.serverOpsAtLoadStart ? { serverOpsAtLoadStart: r.serverOpsAtLoadStart } : {}),
    checks: r.checks.tree(),
  };
}

export const DEFAULT_OUT_ROOT = 'reports/out';

export function defaultOutDir(r: RunResult, root = DEFAULT_OUT_ROOT): string {
  const stamp = new Date(r.startedMs).toISOString().replace(/[:.]/g, '-');
  return join(root, `${r.scenario}-${stamp}`);
}

/**
 * The work each route and job kind did (telemetry.work), with what identifies the run: small and
 * diffable, so a CI gate's baseline can hold it beside summary.json. Null without work figures
 * (a --target that does not count them).
 */
export function workDocument(
  r: Pick<ResultDocument, 'scenario' | 'seed' | 'speed' | 'scale' | 'iterations'> & { telemetry: unknown },
  extra: Record<string, unknown> = {},
): Record<string, unknown> | null {
  const work = (r.telemetry as TelemetrySnapshot | null)?.work;
  if (!work) return null;
  // The outcomes' server-side times are this machine's: result.json keeps them, work.json does not.
  const { outcomeServerMs: _times, ...counts } = work;
  return { format: 'scalegram-work/1', scenario: r.scenario, seed: r.seed, speed: r.speed, scale: r.scale, iterations: r.iterations, ...extra, ...counts };
}

/** Writes work.json into `dir` when the run has work figures (workDocument). */
export function writeWork(dir: string, r: Parameters<typeof workDocument>[0], extra?: Record<string, unknown>): void {
  const work = workDocument(r, extra);
  if (work) writeFileSync(join(dir, 'work.json'), JSON.stringify(work, null, 2) + '\n');
}

/**
 * Writes result.json, summary.json and (when the server counted it) work.json into `outDir` (and
 * --summary-export). A run under the default root (reports/out) also repoints reports/out/latest at
 * it; a directory of the user's is left alone.
 */
export function writeResults(r: RunResult, outDir: string, summaryExportPath?: string, latestRoot?: string): string {
  const dir = resolve(outDir);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'result.json'), JSON.stringify(resultDocument(r)));
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(r.summary, null, 2));
  writeWork(dir, r);
  if (summaryExportPath) {
    mkdirSync(dirname(resolve(summaryExportPath)), { recursive: true });
    writeFileSync(summaryExportPath, JSON.stringify(r.summary, null, 2));
  }
  if (!latestRoot || resolve(dirname(dir)) !== resolve(latestRoot)) return dir;
  const latest = join(resolve(latestRoot), 'latest');
  try {
    rmSync(latest, { force: true });
    symlinkSync(dir, latest);
  } catch {
    // A filesystem without symlinks keeps the results; only the shortcut is missing.
  }
  return dir;
}

/** How late the harness's event loops ran (ms). */
export interface HarnessSection {
  /** The runner's loop (the load generator's); in process it is the server's too. */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  /** Where the server ran: a worker thread of its own (the default), the runner's thread (--in-process), or a --target. Absent in older results: in process. */
  server?: 'thread' | 'in-process' | 'target';
  /** 'real': the server the run built had its feed lists on a real Redis and its jobs on RabbitMQ (--stack real). Absent: embedded (or a --target's own). */
  stack?: 'real';
  /** The server thread's own loop, when the server ran in one. */
  serverEventLoopDelayMs?: { p50: number; p99: number; max: number };
}
