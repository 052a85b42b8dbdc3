// ramping-arrival-rate: the arrival rate moves linearly from stage to stage, from startRate, as in k6.
// Arrival n (1-based) happens when the area under the rate curve reaches n (k6's RampingArrivalRate.cal).

import type { ResolvedStage, ScenarioOf } from '../options.ts';
import type { ExecutorDeps, ScenarioRun } from './common.ts';
import { startOpenModel } from './open-model.ts';

/**
 * Arrival offsets (ms) for a rate that goes linearly from `startRate` to each stage's target over the
 * stage (rates are per `timeUnitMs`). Within a ramp from rate a to b over D, the area up to x is
 * a·x + (b−a)·x²/(2D); solving area = n − done gives the closed form below (k6's, with its fractional
 * carry-over between stages).
 */
export function* rampingArrivals(startRate: number, timeUnitMs: number, stages: readonly ResolvedStage[]): Generator<number> {
  let from = startRate / timeUnitMs;
  let stageStart = 0;
  let doneSoFar = 0;
  let endCount = 0;
  let n = 1;
  for (const stage of stages) {
    const to = stage.target / timeUnitMs;
    const d = stage.durationMs;
    if (from !== to) {
      endCount += d * ((to - from) / 2 + from);
      for (; n <= endCount; n++) {
        const x = (from * d - Math.sqrt(Math.max(0, d * (from * from * d + 2 * (n - doneSoFar) * (to - from))))) / (from - to);
        yield stageStart + x;
      }
    } else {
      endCount += d * to;
      for (; n <= endCount; n++) yield stageStart + (n - doneSoFar) / to;
    }
    doneSoFar = endCount;
    from = to;
    stageStart += d;
  }
}

/** Area under the rate curve: the number of arrivals the stages plan (may be fractional). */
export function rampingArrivalArea(startRate: number, timeUnitMs: number, stages: readonly ResolvedStage[]): number {
  let from = startRate;
  let area = 0;
  for (const stage of stages) {
    area += (stage.durationMs * (from + stage.target)) / 2 / timeUnitMs;
    from = stage.target;
  }
  return area;
}

export function startRampingArrivalRate(s: ScenarioOf<'ramping-arrival-rate'>, deps: ExecutorDeps, testStartMs: number): ScenarioRun {
  const durationMs = s.stages.reduce((sum, st) => sum + st.durationMs, 0);
  return startOpenModel(s, deps, testStartMs, {
    arrivals: () => rampingArrivals(s.startRate, s.timeUnitMs, s.stages),
    plannedArrivals: Math.floor(rampingArrivalArea(s.startRate, s.timeUnitMs, s.stages) + 1e-9),
    durationMs,
    preAllocatedVUs: s.preAllocatedVUs,
    maxVUs: s.maxVUs,
  });
}
