// constant-arrival-rate: `rate` iterations per `timeUnit`, evenly spaced (k6: at rate 10 per 1s, one
// every 100 ms, the first at the start), for `duration`, on VUs from preAllocatedVUs up to maxVUs.

import type { ScenarioOf } from '../options.ts';
import type { ExecutorDeps, ScenarioRun } from './common.ts';
import { startOpenModel } from './open-model.ts';

/** Arrival i (0-based) is at i·timeUnit/rate, for every such time before `durationMs`. */
export function* constantArrivals(rate: number, timeUnitMs: number, durationMs: number): Generator<number> {
  const intervalMs = timeUnitMs / rate;
  for (let i = 0; ; i++) {
    const at = i * intervalMs;
    if (at >= durationMs) return;
    yield at;
  }
}

/** How many arrivals `constantArrivals` makes. */
export function constantArrivalCount(rate: number, timeUnitMs: number, durationMs: number): number {
  const intervalMs = timeUnitMs / rate;
  let n = Math.ceil(durationMs / intervalMs);
  // Correct floating-point rounding so that exactly the arrivals with i·interval < duration count.
  while (n > 0 && (n - 1) * intervalMs >= durationMs) n--;
  while (n * intervalMs < durationMs) n++;
  return n;
}

export function startConstantArrivalRate(s: ScenarioOf<'constant-arrival-rate'>, deps: ExecutorDeps, testStartMs: number): ScenarioRun {
  return startOpenModel(s, deps, testStartMs, {
    arrivals: () => constantArrivals(s.rate, s.timeUnitMs, s.durationMs),
    plannedArrivals: constantArrivalCount(s.rate, s.timeUnitMs, s.durationMs),
    durationMs: s.durationMs,
    preAllocatedVUs: s.preAllocatedVUs,
    maxVUs: s.maxVUs,
  });
}
