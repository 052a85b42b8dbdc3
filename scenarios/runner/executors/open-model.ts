// The engine both arrival-rate executors share: start an iteration at every scheduled arrival, whatever
// the response times, on a free VU; when none is free and maxVUs is reached, the arrival is dropped
// (dropped_iterations) and not retried later. Only the arrival schedule differs between the two executors.
//
// Arrival times come from the schedule as offsets from the scenario start (t0 + i·interval, never
// accumulated sleeps), so timer lateness never drifts the plan. One timer is armed at a time, for the
// next arrival; when it fires, every arrival already due is started in that one turn, so high rates cost
// one timer per timer tick, not one per arrival. A late start is still made and its lateness is measured
// (iteration_start_delay). Deviation from k6: k6 drops the arrival that finds no free VU even while it
// initialises a new one in the background; initialising a VU here is free, so that arrival gets the new VU.

import { launch, type ExecutorDeps, type ScenarioCore, type ScenarioRun } from './common.ts';
import type { ResolvedScenario } from '../options.ts';

export interface OpenModelPlan {
  /** Arrival offsets from the scenario start (ms), non-decreasing. */
  arrivals: () => Iterator<number>;
  /** Arrivals the schedule makes before `durationMs` (count), for the budget and progress. */
  plannedArrivals: number;
  durationMs: number;
  preAllocatedVUs: number;
  maxVUs: number;
}

export function startOpenModel(
  s: ResolvedScenario & { gracefulStopMs: number },
  deps: ExecutorDeps,
  testStartMs: number,
  plan: OpenModelPlan,
): ScenarioRun {
  /** Free VUs, most recently freed last (taken first, as a warm cache would). */
  const idle: number[] = [];
  /** Every VU this scenario holds, busy or idle. */
  const mine: number[] = [];

  const schedule = async (core: ScenarioCore) => {
    const it = plan.arrivals();
    for (;;) {
      const next = it.next();
      if (next.done || next.value >= plan.durationMs) break;
      const at = next.value;
      if (at > core.nowRel() && !(await core.sleepUntilRel(at))) break;
      if (!core.canStart || !core.charge()) break;
      let vuId = idle.pop();
      if (vuId === undefined && mine.length < plan.maxVUs) {
        vuId = deps.vus.allocate();
        mine.push(vuId);
      }
      if (vuId === undefined) {
        core.drop();
        continue;
      }
      const vu = vuId;
      void core.run(vu, core.startedAtMs + at, core.hardSignal, false).then(() => idle.push(vu));
    }
    // k6's executor lasts its whole duration even when the last arrival came earlier.
    await core.sleepUntilRel(plan.durationMs);
    await core.whenIdle();
  };

  return launch(s, deps, testStartMs, {
    lengthMs: plan.durationMs + s.gracefulStopMs,
    // Arrivals are planned exactly; the margin only absorbs floating-point rounding of the last one.
    budget: plan.plannedArrivals + 2,
    progress: (core) => core.timeProgress(plan.durationMs),
    // k6 counts an arrival-rate scenario's VUs as active only while they run an iteration.
    activeVUs: () => mine.length - idle.length,
    body: async (core) => {
      try {
        for (let i = 0; i < plan.preAllocatedVUs; i++) {
          const vuId = deps.vus.allocate();
          mine.push(vuId);
          idle.push(vuId);
        }
        await core.supervise(schedule(core), plan.durationMs, plan.durationMs + s.gracefulStopMs);
      } finally {
        // supervise returns once every iteration has ended, so no VU is busy any more.
        for (const vuId of mine.splice(0)) deps.vus.release(vuId);
        idle.length = 0;
      }
    },
  });
}
