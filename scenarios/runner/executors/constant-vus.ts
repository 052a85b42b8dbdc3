// constant-vus: a fixed number of VUs loop iterations for `duration`; then no new iteration starts and
// running ones get gracefulStop to finish before they are interrupted.

import type { ScenarioOf } from '../options.ts';
import { closedLoop, launch, MAX_ITERATIONS_PER_VU_PER_MS, type ExecutorDeps, type ScenarioRun } from './common.ts';

export function startConstantVus(s: ScenarioOf<'constant-vus'>, deps: ExecutorDeps, testStartMs: number): ScenarioRun {
  let held = 0;
  return launch(s, deps, testStartMs, {
    lengthMs: s.durationMs + s.gracefulStopMs,
    budget: Math.ceil(s.vus * Math.max(1, s.durationMs) * MAX_ITERATIONS_PER_VU_PER_MS),
    progress: (core) => core.timeProgress(s.durationMs),
    activeVUs: () => held,
    body: async (core) => {
      const loops: Array<Promise<void>> = [];
      for (let i = 0; i < s.vus; i++) {
        const vuId = deps.vus.allocate();
        held++;
        loops.push(
          closedLoop(core, vuId, () => true, () => core.hardSignal).finally(() => {
            deps.vus.release(vuId);
            held--;
          }),
        );
      }
      await core.supervise(Promise.all(loops).then(() => undefined), s.durationMs, s.durationMs + s.gracefulStopMs);
    },
  });
}
