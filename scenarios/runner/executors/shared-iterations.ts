// shared-iterations: a fixed number of iterations shared by a fixed set of VUs, first come first served,
// within maxDuration. Iterations no VU got to start by then are counted as dropped_iterations, as k6 does.

import type { ScenarioOf } from '../options.ts';
import { launch, runVuLoops, type ExecutorDeps, type ScenarioRun } from './common.ts';

export function startSharedIterations(s: ScenarioOf<'shared-iterations'>, deps: ExecutorDeps, testStartMs: number): ScenarioRun {
  const held = { count: 0 };
  let claimed = 0;
  return launch(s, deps, testStartMs, {
    lengthMs: s.maxDurationMs + s.gracefulStopMs,
    budget: s.iterations,
    progress: (core) => core.totals.iterationsCompleted / s.iterations,
    activeVUs: () => held.count,
    body: async (core) => {
      const loops = runVuLoops(core, deps, s.vus, held, () => () => claimed < s.iterations && ++claimed > 0);
      await core.supervise(loops, s.maxDurationMs, s.maxDurationMs + s.gracefulStopMs);
      core.drop(s.iterations - core.totals.iterationsStarted);
    },
  });
}
