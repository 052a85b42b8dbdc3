// The executors, one file each, behind one entry point: startScenario picks the executor a resolved
// scenario names. See common.ts for the life of a scenario and open-model.ts for arrival scheduling.

import type { ResolvedScenario } from '../options.ts';
import type { ExecutorDeps, ScenarioRun } from './common.ts';
import { startConstantArrivalRate } from './constant-arrival-rate.ts';
import { startConstantVus } from './constant-vus.ts';
import { startPerVuIterations } from './per-vu-iterations.ts';
import { startRampingArrivalRate } from './ramping-arrival-rate.ts';
import { startRampingVus } from './ramping-vus.ts';
import { startSharedIterations } from './shared-iterations.ts';

export { ExecutorBudgetError, type ExecutorDeps, type ScenarioRun, type ScenarioTotals } from './common.ts';

/** Starts the scenario at its startTime after `testStartMs` (on deps.clock); returns its handle at once. */
export function startScenario(s: ResolvedScenario, deps: ExecutorDeps, testStartMs: number): ScenarioRun {
  switch (s.executor) {
    case 'shared-iterations':
      return startSharedIterations(s, deps, testStartMs);
    case 'per-vu-iterations':
      return startPerVuIterations(s, deps, testStartMs);
    case 'constant-vus':
      return startConstantVus(s, deps, testStartMs);
    case 'ramping-vus':
      return startRampingVus(s, deps, testStartMs);
    case 'constant-arrival-rate':
      return startConstantArrivalRate(s, deps, testStartMs);
    case 'ramping-arrival-rate':
      return startRampingArrivalRate(s, deps, testStartMs);
  }
}
