// per-vu-iterations: every VU runs exactly `iterations` iterations, within maxDuration. Iterations a VU
// had not started by then are counted as dropped_iterations, as k6 does.

import type { ScenarioOf } from '../options.ts';
import { closedLoop, launch, type ExecutorDeps, type ScenarioRun } from './common.ts';

export function startPerVuIterations(s: ScenarioOf<'per-vu-iterations'>, deps: ExecutorDeps, testStartMs: number): ScenarioRun {
  const planned = s.vus * s.iterations;
  let held = 0;
  return launch(s, deps, testStartMs, {
    lengthMs: s.maxDurationMs + s.gracefulStopMs,
    budget: planned,
    progress: (core) => core.totals.iterationsCompleted / planned,
    activeVUs: () => held,
    body: async (core) => {
      const loops: Array<Promise<void>> = [];
      for (let i = 0; i < s.vus; i++) {
        const vuId = deps.vus.allocate();
        held++;
        let mine = 0;
        loops.push(
          closedLoop(core, vuId, () => mine++ < s.iterations, () => core.hardSignal).finally(() => {
            deps.vus.release(vuId);
            held--;
          }),
        );
      }
      await core.supervise(Promise.all(loops).then(() => undefined), s.maxDurationMs, s.maxDurationMs + s.gracefulStopMs);
      core.drop(planned - core.totals.iterationsStarted);
    },
  });
}
