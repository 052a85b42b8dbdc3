// What every executor shares: the deps it is given, the handle it returns, and ScenarioCore, which owns
// one scenario's counters, its stop signals, its iteration budget and its timers on the injected Clock.
//
// A scenario's life (k6's getDurationContexts): it waits for its startTime, runs its plan until the
// regular end (duration, last stage, or maxDuration), then starts nothing new and gives running
// iterations gracefulStop to finish; at the hard end it aborts their signal and counts them interrupted.

import { RealClock, type Clock } from '../../../sim/engine/clock.ts';
import { setMaxListeners } from 'node:events';
import type { ScenarioState } from '../runtime.ts';
import type { ResolvedScenario } from '../options.ts';
import type { VuPool } from '../vu-pool.ts';

export interface ExecutorDeps {
  clock: Clock;
  vus: VuPool;
  /**
   * Runs one iteration on `vuId`; never throws. `intendedStartMs` is when the executor meant it to start
   * (arrival-rate: the arrival time; closed models: the actual start). `signal` aborts when the iteration
   * must be interrupted (gracefulStop/gracefulRampDown expired, or the test aborted). Resolves when the
   * iteration ends (or is interrupted).
   */
  runIteration(vuId: number, scenario: ScenarioState, intendedStartMs: number, signal: AbortSignal): Promise<void>;
  /** Records executor metrics: 'dropped_iterations' (counter) and 'iteration_start_delay' (trend, ms) with tags {scenario}. */
  record(metric: 'dropped_iterations' | 'iteration_start_delay', value: number, tags: Record<string, string>): void;
  /** The whole test was aborted: start nothing more, interrupt running iterations at once. */
  signal: AbortSignal;
  /** Global env (k6's __ENV); the scenario's `env` is merged over it in ScenarioState.env. Optional. */
  env?: Record<string, string>;
  /** Overrides the scenario's iteration budget (count of iterations started, plus dropped for arrival-rate). */
  iterationBudget?: number;
}

export interface ScenarioTotals {
  iterationsStarted: number;
  iterationsCompleted: number;
  iterationsInterrupted: number;
  dropped: number;
}

export interface ScenarioRun {
  /** From runtime.ts; progress() in 0..1. */
  readonly state: ScenarioState;
  /** Resolves when the scenario has ended; rejects with ExecutorBudgetError if its loop ran out of budget. */
  readonly done: Promise<ScenarioTotals>;
  /** VUs active now, as k6's `vus` metric counts them: a closed-model scenario's VUs; an arrival-rate one's VUs busy in an iteration (measured with k6 v0.48). */
  activeVUs(): number;
  /** Planned length including startTime and gracefulStop (ms), for the progress line. */
  readonly plannedMs: number;
}

/** A scenario's loop ran out of budget: a bug or a clock that never advances, reported rather than hung. */
export class ExecutorBudgetError extends Error {
  readonly code = 'SG_ERR_BUDGET_EXHAUSTED';
  constructor(
    readonly scenario: string,
    readonly budget: number,
    reason: string,
  ) {
    super(`scenario ${scenario}: ${reason}`);
    this.name = 'ExecutorBudgetError';
  }
}

/**
 * For time-bounded closed models: no iteration of the real runner takes under 1 µs, so a VU starting more
 * than this many per ms of its planned time means a virtual clock is not advancing (iterations that take
 * no virtual time would otherwise loop forever).
 */
export const MAX_ITERATIONS_PER_VU_PER_MS = 1000;

/**
 * Iterations in a row one VU may run without its clock moving at all (count). On real time the clock
 * always moves between two iterations; on a virtual clock this catches iterations that take no time
 * long before the per-scenario budget would.
 */
export const MAX_ITERATIONS_WITHOUT_CLOCK_PROGRESS = 10_000;

function newController(): AbortController {
  const c = new AbortController();
  // Every running iteration may listen on its signal; that many listeners is expected, not a leak.
  setMaxListeners(0, c.signal);
  return c;
}

/**
 * Resolves true at `atMs` on `clock`, or false as soon as any of `signals` aborts. On the RealClock the
 * timer is cleared when aborted, so a finished scenario leaves no timer holding the process open; other
 * clocks have no way to cancel a sleep, so there the abandoned sleeper simply wakes to nobody.
 */
export function sleepUntil(clock: Clock, atMs: number, signals: readonly AbortSignal[]): Promise<boolean> {
  if (signals.some((s) => s.aborted)) return Promise.resolve(false);
  if (atMs <= clock.nowMs()) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let settled = false;
    const settle = (woke: boolean) => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      for (const s of signals) s.removeEventListener('abort', onAbort);
      resolve(woke);
    };
    const onAbort = () => settle(false);
    for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
    if (clock instanceof RealClock) {
      // Node's timers run on whole milliseconds of their own clock and may fire a fraction early; re-arm.
      const arm = () => {
        const left = atMs - clock.nowMs();
        if (left <= 0) settle(true);
        else timer = setTimeout(arm, left);
      };
      arm();
    } else {
      void clock.sleep(atMs - clock.nowMs()).then(() => settle(true));
    }
  });
}

// A closed-model loop whose iterations resolve without ever waiting (a script with no I/O) would run in
// microtasks forever and starve the timers that end it. The loop notices that no macrotask turn has passed
// during its last iterations and yields one. Detecting the turn (rather than yielding every time) keeps
// virtual-clock runs exact: an iteration that waits on the clock always spans a turn and never yields.
let macroTurn = 0;
let turnArmed = false;
function currentTurn(): number {
  if (!turnArmed) {
    turnArmed = true;
    setImmediate(() => {
      turnArmed = false;
      macroTurn++;
    });
  }
  return macroTurn;
}

/** Iterations in a row that may finish within one macrotask before the loop yields (count). */
const SYNC_ITERATIONS_BEFORE_YIELD = 64;

export class Fairness {
  private turn = currentTurn();
  private syncRuns = 0;
  /** Call after each iteration; resolves at once unless the loop has been starving the event loop. */
  afterIteration(): Promise<void> | undefined {
    const t = currentTurn();
    if (t !== this.turn) {
      this.turn = t;
      this.syncRuns = 0;
      return undefined;
    }
    if (++this.syncRuns < SYNC_ITERATIONS_BEFORE_YIELD) return undefined;
    this.syncRuns = 0;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        this.turn = currentTurn();
        resolve();
      }),
    );
  }
}

export class ScenarioCore {
  readonly state: ScenarioState;
  readonly totals: ScenarioTotals = { iterationsStarted: 0, iterationsCompleted: 0, iterationsInterrupted: 0, dropped: 0 };
  /** Clock time the scenario starts: testStartMs + startTime (its schedule is anchored here). */
  readonly startedAtMs: number;
  started = false;
  /** Set at the regular end (or a hard stop): no new iterations. */
  stopping = false;
  readonly tags: Record<string, string>;
  /** Aborted at the hard end (gracefulStop expired), on budget exhaustion, or when the test aborts. */
  private readonly hardCtl = newController();
  /** Aborted when the scenario is over, to cancel its pending timers. */
  private readonly lifeCtl = newController();
  private readonly hardStopHooks: Array<() => void> = [];
  private inflight = 0;
  private idleWaiters: Array<() => void> = [];
  private budgetError: ExecutorBudgetError | undefined;
  private readonly onTestAbort = () => this.hardStop();

  constructor(
    readonly s: ResolvedScenario,
    readonly deps: ExecutorDeps,
    /** Most iterations this scenario may start (plus drop, for arrival-rate) before it is a reported error. */
    readonly budget: number,
    plannedStartMs: number,
    progress: (core: ScenarioCore) => number,
  ) {
    this.startedAtMs = plannedStartMs;
    this.tags = { scenario: s.name };
    this.state = {
      name: s.name,
      executor: s.executor,
      startTimeMs: plannedStartMs,
      env: { ...(deps.env ?? {}), ...s.env },
      tags: { ...s.tags, scenario: s.name },
      progress: () => (this.started ? Math.min(1, Math.max(0, progress(this))) : 0),
      iterationsStarted: 0,
    };
    if (deps.signal.aborted) this.hardStop();
    else deps.signal.addEventListener('abort', this.onTestAbort, { once: true });
  }

  get clock(): Clock {
    return this.deps.clock;
  }
  get hardSignal(): AbortSignal {
    return this.hardCtl.signal;
  }
  get canStart(): boolean {
    return !this.stopping && !this.hardCtl.signal.aborted;
  }
  /** Ms since the scenario started. */
  nowRel(): number {
    return this.deps.clock.nowMs() - this.startedAtMs;
  }
  /** Fraction of `lengthMs` elapsed since the start. */
  timeProgress(lengthMs: number): number {
    return lengthMs <= 0 ? 1 : this.nowRel() / lengthMs;
  }

  /** Sleeps until `relMs` after the start; false if the scenario hard-stopped or ended first. */
  sleepUntilRel(relMs: number, ...extra: AbortSignal[]): Promise<boolean> {
    return sleepUntil(this.deps.clock, this.startedAtMs + relMs, [this.hardCtl.signal, this.lifeCtl.signal, ...extra]);
  }

  onHardStop(hook: () => void): void {
    this.hardStopHooks.push(hook);
  }

  stopStarting(): void {
    this.stopping = true;
  }

  /** Interrupts everything now: running iterations see their signal abort. Idempotent. */
  hardStop(): void {
    this.stopping = true;
    if (this.hardCtl.signal.aborted) return;
    this.hardCtl.abort();
    for (const hook of this.hardStopHooks) hook();
  }

  /** Charges one unit of the budget; false (and a hard stop with a reported error) when it is spent. */
  charge(): boolean {
    if (this.totals.iterationsStarted + this.totals.dropped < this.budget) return true;
    this.fail(`iteration budget of ${this.budget} exhausted (do iterations take no time on this clock?)`);
    return false;
  }

  /** Stops the scenario at once; `done` will reject with an ExecutorBudgetError giving `reason`. */
  fail(reason: string): void {
    this.budgetError ??= new ExecutorBudgetError(this.s.name, this.budget, reason);
    this.hardStop();
  }

  drop(count = 1): void {
    if (count <= 0) return;
    this.totals.dropped += count;
    this.deps.record('dropped_iterations', count, this.tags);
  }

  /**
   * Runs one iteration on `vuId` and resolves when it ends. `scheduledMs` is when it should have started:
   * the arrival time (open model, passed on as intendedStartMs) or when the VU became free (closed model,
   * whose intendedStartMs is the actual start). Records iteration_start_delay for every started iteration.
   */
  async run(vuId: number, scheduledMs: number, signal: AbortSignal, closed: boolean): Promise<void> {
    if (!this.canStart || signal.aborted || !this.charge()) return;
    this.totals.iterationsStarted++;
    this.state.iterationsStarted++;
    const startMs = this.deps.clock.nowMs();
    this.deps.record('iteration_start_delay', Math.max(0, startMs - scheduledMs), this.tags);
    this.inflight++;
    try {
      await this.deps.runIteration(vuId, this.state, closed ? startMs : scheduledMs, signal);
    } catch {
      // runIteration promises not to throw; if it does, the iteration still ended.
    } finally {
      this.inflight--;
      if (signal.aborted) this.totals.iterationsInterrupted++;
      else this.totals.iterationsCompleted++;
      if (this.inflight === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  /** Resolves when no iteration of this scenario is running. */
  whenIdle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Runs `work` (which ends when the executor has nothing left to run) against the scenario's timeline:
   * at `regularEndRel` nothing new starts, at `hardEndRel` running iterations are interrupted.
   */
  async supervise(work: Promise<void>, regularEndRel: number, hardEndRel: number): Promise<void> {
    const timeline = (async () => {
      if (!(await this.sleepUntilRel(regularEndRel))) return;
      this.stopStarting();
      if (!(await this.sleepUntilRel(hardEndRel))) return;
      this.hardStop();
    })();
    await work;
    await this.whenIdle();
    this.lifeCtl.abort();
    await timeline;
  }

  /**
   * Waits for the planned start; false if the test was aborted first. The schedule stays anchored at the
   * planned start even when the process wakes late, so scenarios stay aligned with each other and a late
   * start shows up as iteration_start_delay instead of shifting the plan.
   */
  async waitForStart(): Promise<boolean> {
    const due = await sleepUntil(this.deps.clock, this.startedAtMs, [this.hardCtl.signal]);
    this.started = due && !this.hardCtl.signal.aborted;
    return this.started;
  }

  /** Starts at once (synchronously) when the planned start has come; so a caller sees its VUs right away. */
  startIfDue(): boolean {
    if (this.hardCtl.signal.aborted || this.deps.clock.nowMs() < this.startedAtMs) return false;
    this.started = true;
    return true;
  }

  /** Ends the scenario: cancels its timers and returns its totals, or throws the budget error. */
  finish(): ScenarioTotals {
    this.stopping = true;
    this.lifeCtl.abort();
    this.deps.signal.removeEventListener('abort', this.onTestAbort);
    if (this.budgetError) throw this.budgetError;
    return { ...this.totals };
  }
}

export interface ExecutorPlan {
  /** Scenario length after its start: regular duration plus gracefulStop (ms). */
  lengthMs: number;
  budget: number;
  progress(core: ScenarioCore): number;
  activeVUs(): number;
  /** Runs the scenario once it has started; resolves when it is over. */
  body(core: ScenarioCore): Promise<void>;
}

/** Starts a scenario at `testStartMs + startTimeMs` and runs `plan.body` then. */
export function launch(s: ResolvedScenario, deps: ExecutorDeps, testStartMs: number, plan: ExecutorPlan): ScenarioRun {
  const core = new ScenarioCore(s, deps, deps.iterationBudget ?? plan.budget, testStartMs + s.startTimeMs, plan.progress);
  const done = (async () => {
    // An async function runs synchronously up to its first await: a scenario that is due starts now.
    if (core.startIfDue() || (await core.waitForStart())) {
      try {
        await plan.body(core);
      } catch (err) {
        // A bug or an exhausted VU budget: stop what runs, let it settle, then report.
        core.hardStop();
        await core.whenIdle();
        try {
          core.finish();
        } catch {
          // The original error is the one to report.
        }
        throw err;
      }
    }
    return core.finish();
  })();
  return { state: core.state, done, activeVUs: plan.activeVUs, plannedMs: s.startTimeMs + plan.lengthMs };
}

/**
 * The loop one closed-model VU runs: claim an iteration with `next()`, run it, repeat, until the scenario
 * stops starting or `next()` says there is no more work. `signal` is read each time round, so a caller
 * may replace the VU's signal between iterations (ramping-vus does).
 */
export async function closedLoop(core: ScenarioCore, vuId: number, next: () => boolean, signal: () => AbortSignal): Promise<void> {
  const fair = new Fairness();
  let readyMs = core.clock.nowMs();
  let stalled = 0;
  while (core.canStart && !signal().aborted && next()) {
    const before = readyMs;
    await core.run(vuId, readyMs, signal(), true);
    readyMs = core.clock.nowMs();
    if (readyMs !== before) stalled = 0;
    else if (++stalled >= MAX_ITERATIONS_WITHOUT_CLOCK_PROGRESS) {
      core.fail(`VU ${vuId} ran ${stalled} iterations without the clock moving (do iterations take no time on this clock?)`);
      return;
    }
    const pause = fair.afterIteration();
    if (pause) await pause;
  }
}

/**
 * The closed-model executors' VUs: `vus` VUs from the pool, each looping iterations while the
 * predicate `mayStart()` made for it says yes; each VU goes back to the pool when its loop ends.
 * `held.count` follows how many VUs the scenario holds.
 */
export function runVuLoops(core: ScenarioCore, deps: ExecutorDeps, vus: number, held: { count: number }, mayStart: () => () => boolean): Promise<void> {
  const loops: Array<Promise<void>> = [];
  for (let i = 0; i < vus; i++) {
    const vuId = deps.vus.allocate();
    held.count++;
    loops.push(
      closedLoop(core, vuId, mayStart(), () => core.hardSignal).finally(() => {
        deps.vus.release(vuId);
        held.count--;
      }),
    );
  }
  return Promise.all(loops).then(() => undefined);
}
