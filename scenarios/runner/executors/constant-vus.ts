// constant-vus: a fixed number of VUs loop iterations for `duration`; then no new iteration starts and
// running ones get gracefulStop to finish before they are interrupted.

import type { ScenarioOf } from '../options.ts';
import { launch, MAX_ITERATIONS_PER_VU_PER_MS, runVuLoops, type ExecutorDeps, type ScenarioRun } from './common.ts';

export function startConstantVus(s: ScenarioOf<'constant-vus'>, deps: ExecutorDeps, testStartMs: number): ScenarioRun {
  const held = { count: 0 };
  return launch(s, deps, testStartMs, {
    lengthMs: s.durationMs + s.gracefulStopMs,
    budget: Math.ceil(s.vus * Math.max(1, s.durationMs) * MAX_ITERATIONS_PER_VU_PER_MS),
    progress: (core) => core.timeProgress(s.durationMs),
    activeVUs: () => held.count,
    body: async (core) => {
      const loops = runVuLoops(core, deps, s.vus, held, () => () => true);
      await core.supervise(loops, s.durationMs, s.durationMs + s.gracefulStopMs);
    },
  });
}
