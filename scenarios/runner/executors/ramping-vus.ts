// ramping-vus: the number of looping VUs follows the stages linearly, as k6 plans it: ramping up, VU n
// joins when the line reaches n; ramping down, VU n leaves when the line reaches n−1 (the highest first).
// A VU that leaves starts nothing new and gets gracefulRampDown to finish its iteration; at the last
// stage's end every VU stops and running iterations get gracefulStop (which also caps gracefulRampDown).

import type { ResolvedStage, ScenarioOf } from '../options.ts';
import {
  closedLoop,
  launch,
  MAX_ITERATIONS_PER_VU_PER_MS,
  type ExecutorDeps,
  type ScenarioCore,
  type ScenarioRun,
} from './common.ts';

export interface VuStep {
  /** Ms after the scenario start. */
  atMs: number;
  /** Looping VUs from then on. */
  vus: number;
}

/** The planned VU count changes, in time order (k6's getRawExecutionSteps, unsegmented). */
export function* vuSteps(startVUs: number, stages: readonly ResolvedStage[]): Generator<VuStep> {
  let from = startVUs;
  let stageStart = 0;
  for (const { durationMs: d, target: to } of stages) {
    if (to !== from) {
      if (d === 0) {
        yield { atMs: stageStart, vus: to };
      } else if (to > from) {
        for (let u = from + 1; u <= to; u++) yield { atMs: stageStart + (d * (u - from)) / (to - from), vus: u };
      } else {
        for (let u = from; u > to; u--) yield { atMs: stageStart + (d * (from - u + 1)) / (from - to), vus: u - 1 };
      }
    }
    stageStart += d;
    from = to;
  }
}

interface Slot {
  vuId: number | undefined;
  /** Aborted when this VU's current iteration must be interrupted. */
  ctl: AbortController;
  /** Whether the VU should start new iterations. */
  looping: boolean;
  /** Whether its loop is running (it may be finishing an iteration after being told to stop). */
  running: boolean;
  /** Cancels the pending gracefulRampDown deadline when the VU is brought back. */
  rampDownCtl: AbortController | undefined;
}

export function startRampingVus(s: ScenarioOf<'ramping-vus'>, deps: ExecutorDeps, testStartMs: number): ScenarioRun {
  const totalMs = s.stages.reduce((sum, st) => sum + st.durationMs, 0);
  const hardEndMs = totalMs + s.gracefulStopMs;
  const peakVUs = Math.max(s.startVUs, ...s.stages.map((st) => st.target));
  const slots: Slot[] = [];
  const loops = new Set<Promise<void>>();
  let held = 0;
  let planned = 0;

  const runSlot = async (core: ScenarioCore, slot: Slot) => {
    await closedLoop(core, slot.vuId!, () => slot.looping, () => slot.ctl.signal);
    // Synchronous from the loop's last check to here, so startSlot never sees a loop that is about to end.
    deps.vus.release(slot.vuId!);
    held--;
    slot.vuId = undefined;
    slot.running = false;
  };

  const startSlot = (core: ScenarioCore, slot: Slot) => {
    slot.rampDownCtl?.abort();
    slot.rampDownCtl = undefined;
    slot.looping = true;
    if (slot.ctl.signal.aborted) slot.ctl = new AbortController();
    if (slot.running) return; // still finishing its last iteration: it simply carries on looping
    slot.vuId = deps.vus.allocate();
    held++;
    slot.running = true;
    const loop = runSlot(core, slot);
    loops.add(loop);
    void loop.then(() => loops.delete(loop));
  };

  const stopSlot = (core: ScenarioCore, slot: Slot) => {
    slot.looping = false;
    if (!slot.running) return;
    const deadline = core.nowRel() + s.gracefulRampDownMs;
    if (deadline >= hardEndMs) return; // the scenario's own hard end comes first
    const ctl = new AbortController();
    slot.rampDownCtl = ctl;
    void core.sleepUntilRel(deadline, ctl.signal).then((due) => {
      if (due && !slot.looping && slot.running) slot.ctl.abort();
    });
  };

  const setVUs = (core: ScenarioCore, n: number) => {
    while (slots.length < n) {
      slots.push({ vuId: undefined, ctl: new AbortController(), looping: false, running: false, rampDownCtl: undefined });
    }
    for (let i = planned; i < n; i++) startSlot(core, slots[i]!);
    for (let i = planned; i > n; i--) stopSlot(core, slots[i - 1]!);
    planned = n;
  };

  return launch(s, deps, testStartMs, {
    lengthMs: hardEndMs,
    budget: Math.ceil(Math.max(1, peakVUs) * Math.max(1, totalMs) * MAX_ITERATIONS_PER_VU_PER_MS),
    progress: (core) => core.timeProgress(totalMs),
    activeVUs: () => held,
    body: async (core) => {
      core.onHardStop(() => {
        for (const slot of slots) slot.ctl.abort();
      });
      const steps = (async () => {
        setVUs(core, s.startVUs);
        for (const step of vuSteps(s.startVUs, s.stages)) {
          // Steps that fall due together (a late timer, a zero-length stage) are applied in one go.
          if (step.atMs > core.nowRel() && !(await core.sleepUntilRel(step.atMs))) return;
          if (!core.canStart) return;
          setVUs(core, step.vus);
        }
        await core.sleepUntilRel(totalMs);
      })();
      const work = (async () => {
        await steps;
        core.stopStarting();
        // Deadlines of VUs already ramping down stay armed: k6 keeps applying them during gracefulStop.
        for (const slot of slots) slot.looping = false;
        while (loops.size > 0) await Promise.all([...loops]);
      })();
      await core.supervise(work, totalMs, hardEndMs);
    },
  });
}
