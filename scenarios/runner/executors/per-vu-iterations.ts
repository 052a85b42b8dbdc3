// per-vu-iterations: every VU runs exactly `iterations` iterations, within maxDuration. Iterations a VU
// had not started by then are counted as dropped_iterations, as k6 does.

import type { ScenarioOf } from '../options.ts';
import { launch, runVuLoops, type ExecutorDeps, type ScenarioRun } from './common.ts';

export function startPerVuIterations(s: ScenarioOf<'per-vu-iterations'>, deps: ExecutorDeps, testStartMs: number): ScenarioRun {
  const planned = s.vus * s.iterations;
  const held = { count: 0 };
  return launch(s, deps, testStartMs, {
    lengthMs: s.maxDurationMs + s.gracefulStopMs,
    budget: planned,
    progress: (core) => core.totals.iterationsCompleted / planned,
    activeVUs: () => held.count,
    body: async (core) => {
      // Each VU counts its own iterations.
      const loops = runVuLoops(core, deps, s.vus, held, () => {
        let mine = 0;
        return () => mine++ < s.iterations;
      });
      await core.supervise(loops, s.maxDurationMs, s.maxDurationMs + s.gracefulStopMs);
      core.drop(planned - core.totals.iterationsStarted);
    },
  });
}
