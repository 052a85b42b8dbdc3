// shared-iterations: a fixed number of iterations shared by a fixed set of VUs, first come first served,
// within maxDuration. Iterations no VU got to start by then are counted as dropped_iterations, as k6 does.

import type { ScenarioOf } from '../options.ts';
import { closedLoop, launch, type ExecutorDeps, type ScenarioRun } from './common.ts';

export function startSharedIterations(s: ScenarioOf<'shared-iterations'>, deps: ExecutorDeps, testStartMs: number): ScenarioRun {
  let held = 0;
  let claimed = 0;
  return launch(s, deps, testStartMs, {
    lengthMs: s.maxDurationMs + s.gracefulStopMs,
    budget: s.iterations,
    progress: (core) => core.totals.iterationsCompleted / s.iterations,
    activeVUs: () => held,
    body: async (core) => {
      const loops: Array<Promise<void>> = [];
      for (let i = 0; i < s.vus; i++) {
        const vuId = deps.vus.allocate();
        held++;
        loops.push(
          closedLoop(core, vuId, () => claimed < s.iterations && ++claimed > 0, () => core.hardSignal).finally(() => {
            deps.vus.release(vuId);
            held--;
          }),
        );
      }
      await core.supervise(Promise.all(loops).then(() => undefined), s.maxDurationMs, s.maxDurationMs + s.gracefulStopMs);
      core.drop(s.iterations - core.totals.iterationsStarted);
    },
  });
}
