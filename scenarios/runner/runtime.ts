// The contract between the parts of the scenario runner: the k6 module shims (scenarios/runner/k6),
// the executors (scenarios/runner/executors), the metric registry and the orchestration (run.ts).
// One run at a time per process: the runner installs a Runtime, and each iteration runs inside
// an AsyncLocalStorage scope holding its VU's state, which k6/execution and k6/http read.

import { AsyncLocalStorage } from 'node:async_hooks';
import type { MetricRegistry } from './k6-metrics.ts';

export type Tags = Record<string, string>;

/** The scenario an iteration belongs to (k6/execution's `scenario`). */
export interface ScenarioState {
  name: string;
  executor: string;
  /** Unix ms when this scenario started. */
  startTimeMs: number;
  /** Scenario-level `env` merged over the global env. */
  env: Record<string, string>;
  /** Scenario-level `tags` (plus `scenario: name`). */
  tags: Tags;
  /** Fraction of the scenario's planned duration or iterations done, 0..1. */
  progress(): number;
  /** Iterations started so far in this scenario (all VUs). */
  iterationsStarted: number;
}

/** One VU's state during one iteration (what __VU, __ITER and k6/execution report). */
export interface VuState {
  /** 1-based VU id in this instance (k6's __VU). */
  id: number;
  /** This VU's iteration count across the whole test, 0-based (k6's __ITER). */
  iterationInInstance: number;
  /** This iteration's index in its scenario (shared counter, 0-based). */
  iterationInScenario: number;
  scenario: ScenarioState;
  /** VU-level tags (k6/execution's `vu.tags`, writable by scripts); merged into every sample. */
  tags: Tags;
  /** The current group path, innermost last ([] at the root). */
  groups: string[];
  /** Unix ms at which this iteration was scheduled to start (open-model executors), else its actual start. */
  intendedStartMs: number;
  /** Unix ms at which this iteration actually started. */
  startMs: number;
  /** Aborted when this iteration must stop (gracefulStop expired, or the test was aborted). */
  signal: AbortSignal;
  /** This iteration's own Math.random stream (made on first use from the run's seed, its scenario and its index). */
  random?: { next(): number };
}

export interface Runtime {
  registry: MetricRegistry;
  /** Global env (`-e KEY=VALUE` over process env, as k6's __ENV). */
  env: Record<string, string>;
  /** Wall time source for samples (unix ms). */
  nowMs(): number;
  /** Time compression: script `sleep(s)` waits s / speed seconds. 1 = real time. */
  speed: number;
  /** The options the script exported, as resolved (durations in ms after speed and scale). */
  options: unknown;
  /** Ends the run early (k6's exec.test.abort()); the runner exits with code 108 (k6's ScriptAborted). */
  abort(reason: string): void;
  /** Base URL of the server under test (scripts read it from __ENV.BASE_URL, set by the runner). */
  baseUrl: string;
  /** Where `check` records passes and fails per group (summary-export.ts's CheckRecorder). */
  checks: { record(groupPath: string[], name: string, ok: boolean): void };
  /** Live counts for k6/execution's `instance` object. */
  stats(): { iterationsCompleted: number; iterationsInterrupted: number; vusActive: number; vusInitialized: number; currentTestRunDurationMs: number };
}

let current: Runtime | null = null;

export function setRuntime(r: Runtime | null): void {
  current = r;
}

export function getRuntime(): Runtime {
  if (!current) throw new Error('k6 modules are only usable inside a scenario run (scalegram run)');
  return current;
}

export const vuStorage = new AsyncLocalStorage<VuState>();

/** The VU running the current code, or undefined in init code, setup and teardown. */
export function currentVu(): VuState | undefined {
  return vuStorage.getStore();
}

/** Tags every sample from the current code carries: scenario tags, VU tags, and group. */
export function sampleTags(extra?: Tags): Tags {
  const vu = currentVu();
  const out: Tags = {};
  if (vu) {
    Object.assign(out, vu.scenario.tags, vu.tags);
    out.group = vu.groups.length ? '::' + vu.groups.join('::') : '';
  } else {
    out.group = '';
  }
  if (extra) Object.assign(out, extra);
  return out;
}
