// A simulation paced against the wall clock, for a teacher at the dashboard: virtual time runs at a
// chosen speed (1: real time) up to the simulator's maximum, pauses, and steps by exactly the
// virtual time asked; admin actions are taken at the current virtual time. The model itself never
// reads the wall clock: the pacer only decides how far it may go before handing the event loop back
// (the dashboard's server shares it), so a paced run without actions processes the same events in
// the same order as `model.run()` and writes the same result.

import { simError } from '../../sim/engine/errors.ts';
import type { ModelAction, VirtualModel } from '../../sim/model/model.ts';

export type PaceSpeed = number | 'max';

/** What the dashboard shows of the clock. */
export interface PacerState {
  /** Virtual time now (ms since the simulation started). */
  nowMs: number;
  /** Where the simulation ends (ms). */
  horizonMs: number;
  paused: boolean;
  /** Virtual ms per real ms asked (1: real time), or 'max'. */
  speed: PaceSpeed;
  /**
   * Virtual ms per real ms the simulator can manage at this point of the plan: the events a ms of
   * work processes ÷ the events a virtual ms holds, lately (null: not measured yet).
   */
  maxSpeed: number | null;
  /** maxSpeed is a floor: measured from small slices only (a slow pace), whose fixed cost counts. */
  maxSpeedAtLeast: boolean;
  /** The pace asked is above what the simulator manages: it runs flat out, behind the pace. */
  behind: boolean;
  /** Events processed so far (count). */
  events: number;
  done: boolean;
}

/** Slices with at least this many events measure the simulator's throughput (count). */
const MEASURED_SLICE_EVENTS = 2_000;
/** Real time one slice of simulation may hold the event loop (ms). */
const SLICE_MS = 40;
/** Events between looks at the wall clock within a slice (count). */
const EVENTS_PER_LOOK = 5_000;
/** Real time the pacer sleeps when it is ahead of the pace (ms). */
const AHEAD_SLEEP_MS = 15;
/** The fastest speed a teacher may ask for as a number (virtual ms per real ms): 'max' is the way past it. */
export const MAX_NUMERIC_SPEED = 1_000_000;
/** The slowest: a virtual second every 100 real seconds. */
export const MIN_SPEED = 0.01;

interface Pending {
  action: ModelAction;
  resolve: (at: number) => void;
  reject: (e: unknown) => void;
}

export class VirtualPacer {
  private speedAsked: PaceSpeed;
  private pausedNow: boolean;
  /** Virtual ms still to step while paused (null: no step asked). */
  private stepTo: number | null = null;
  private stepWaiters: Array<(nowMs: number) => void> = [];
  private readonly actions: Pending[] = [];
  private wake: (() => void) | null = null;
  private model: VirtualModel | null = null;
  private finished = false;
  /** Why the run was stopped before its end (Ctrl-C), or null. */
  stoppedBecause: string | null = null;
  private behindNow = false;
  /** The pace's reference: virtual time `refVirtual` at real time `refWall` (performance.now()). */
  private refWall = 0;
  private refVirtual = 0;
  /**
   * The simulator's top speed at this point of the plan, as two decayed measures: how many events a
   * real ms of work processes (from slices of at least MEASURED_SLICE_EVENTS, where a slice's fixed
   * cost does not count), and how many events a virtual ms holds (from every slice).
   */
  private workEvents = 0;
  private workMs = 0;
  /** Every slice's events and real ms of work: with a slice's fixed cost, a lower bound of the throughput. */
  private anyEvents = 0;
  private anyMs = 0;
  private planEvents = 0;
  private planMs = 0;
  private lastSliceAt = 0;

  constructor(opts: { speed?: PaceSpeed; paused?: boolean } = {}) {
    this.speedAsked = checkSpeed(opts.speed ?? 1);
    this.pausedNow = opts.paused ?? false;
  }

  state(): PacerState {
    const m = this.model;
    return {
      nowMs: m ? m.sim.now : 0,
      horizonMs: m ? m.horizonMs : 0,
      paused: this.pausedNow,
      speed: this.speedAsked,
      maxSpeed: this.maxSpeed()?.value ?? null,
      maxSpeedAtLeast: this.maxSpeed()?.atLeast ?? false,
      behind: this.behindNow && !this.pausedNow,
      events: m ? m.sim.events : 0,
      done: this.finished,
    };
  }

  /** Pauses; a step under way stops where it is (its caller gets the virtual time it reached). */
  pause(): void {
    this.ongoing();
    this.pausedNow = true;
    if (this.stepTo !== null) {
      this.stepTo = null;
      for (const w of this.stepWaiters.splice(0)) w(this.model!.sim.now);
    }
    this.poke();
  }

  /** Plays at the speed asked; a step under way is finished first (its caller gets its answer), then the pace goes on from there. */
  resume(): void {
    this.ongoing();
    this.pausedNow = false;
    this.rebase();
    this.poke();
  }

  setSpeed(speed: PaceSpeed): void {
    this.ongoing();
    this.speedAsked = checkSpeed(speed);
    this.rebase();
    this.poke();
  }

  /** The clock's controls act on a simulation under way only. */
  private ongoing(): void {
    if (this.finished) throw simError('SG_ERR_INVALID_PARAM', 'the simulation has ended: its clock no longer moves');
  }

  private maxSpeed(): { value: number; atLeast: boolean } | null {
    if (this.planMs <= 0 || this.planEvents <= 0) return null;
    const density = this.planEvents / this.planMs;
    if (this.workMs > 0.5) return { value: this.workEvents / this.workMs / density, atLeast: false };
    // Only small slices so far (a slow pace): their fixed cost counts, so the figure is a floor.
    if (this.anyMs > 0) return { value: this.anyEvents / this.anyMs / density, atLeast: true };
    return null;
  }

  /**
   * Pauses, then advances virtual time by exactly `ms` (less only where the simulation ends);
   * resolves with the virtual time reached. Steps asked while one is under way add up; a play
   * pressed meanwhile takes effect once the step is done.
   */
  step(ms: number): Promise<number> {
    if (!(Number.isFinite(ms) && ms > 0)) return Promise.reject(simError('SG_ERR_INVALID_PARAM', `a step must be a positive number of virtual ms (got ${ms})`));
    if (this.finished || !this.model) return Promise.reject(simError('SG_ERR_INVALID_PARAM', this.finished ? 'the simulation has ended' : 'the simulation has not started'));
    this.pausedNow = true;
    this.stepTo = Math.min(this.model.horizonMs, (this.stepTo ?? this.model.sim.now) + ms);
    const p = new Promise<number>((resolve) => this.stepWaiters.push(resolve));
    this.poke();
    return p;
  }

  /**
   * Ends the simulation at the current virtual time, before its plan's end (Ctrl-C): the result is
   * the plan so far, marked as aborted, as k6 ends a run it is told to stop.
   */
  stop(reason: string): void {
    if (this.finished) return;
    this.stoppedBecause = reason;
    this.poke();
  }

  /** Takes an admin action at the current virtual time (between two events); resolves with that time. */
  act(action: ModelAction): Promise<number> {
    if (this.finished) return Promise.reject(simError('SG_ERR_INVALID_PARAM', 'the simulation has ended: there is nothing left to act on'));
    const p = new Promise<number>((resolve, reject) => this.actions.push({ action, resolve, reject }));
    this.poke();
    return p;
  }

  /** Runs the model's plan to its end at the pace asked (begin, advances, end); returns the events processed. */
  async drive(model: VirtualModel): Promise<number> {
    this.model = model;
    model.begin();
    const horizon = model.horizonMs;
    this.rebase();
    for (;;) {
      this.takeActions(model);
      if (this.stoppedBecause !== null) break;
      if (this.pausedNow && this.stepTo === null) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      const stepping = this.stepTo !== null;
      const flatOut = stepping || this.speedAsked === 'max';
      const paced = this.refVirtual + (this.speedAsked === 'max' ? Infinity : this.speedAsked) * (performance.now() - this.refWall);
      const target = Math.min(horizon, stepping ? this.stepTo! : flatOut ? horizon : paced);
      const start = performance.now();
      const v0 = model.sim.now;
      const e0 = model.sim.events;
      let reached = false;
      // One slice: advance towards the target until it is reached or the slice is used up.
      for (;;) {
        const n = model.advance(target, EVENTS_PER_LOOK);
        if (n < EVENTS_PER_LOOK) {
          reached = true;
          break;
        }
        if (performance.now() - start >= SLICE_MS) break;
      }
      const spent = performance.now() - start;
      // The simulator's top speed here: events per real ms of work (slices with enough events for
      // their fixed cost not to count) ÷ events per virtual ms of the plan, over the last few
      // seconds of real time (a quiet stretch of the plan goes faster than its peak).
      const decay = Math.exp(-(start - this.lastSliceAt) / 3000);
      this.lastSliceAt = start;
      const events = model.sim.events - e0;
      this.planEvents = this.planEvents * decay + events;
      this.planMs = this.planMs * decay + (model.sim.now - v0);
      this.workEvents *= decay;
      this.workMs *= decay;
      this.anyEvents = this.anyEvents * decay + events;
      this.anyMs = this.anyMs * decay + spent;
      if (events >= MEASURED_SLICE_EVENTS) {
        this.workEvents += events;
        this.workMs += spent;
      }
      this.behindNow = !reached && !flatOut;
      // Behind the pace, the debt is not carried: the pace goes on from where the simulator is (a
      // peak slower than the pace asked is not followed by a dash through the quiet that comes next).
      if (this.behindNow) this.rebase();
      if (reached && target >= horizon) break;
      if (stepping && reached) {
        this.stepTo = null;
        const waiters = this.stepWaiters.splice(0);
        for (const w of waiters) w(model.sim.now);
        // Played meanwhile: the pace starts from here.
        if (!this.pausedNow) this.rebase();
        continue;
      }
      // Hand the event loop back: at once when behind, else until the pace has moved on.
      if (reached && !flatOut) await sleep(AHEAD_SLEEP_MS);
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.finished = true;
    this.takeActions(model);
    for (const w of this.stepWaiters.splice(0)) w(model.sim.now);
    return model.end();
  }

  private takeActions(model: VirtualModel): void {
    for (const p of this.actions.splice(0)) {
      if (this.finished) {
        p.reject(simError('SG_ERR_INVALID_PARAM', 'the simulation has ended: there is nothing left to act on'));
        continue;
      }
      try {
        model.act(p.action);
        p.resolve(model.sim.now);
      } catch (e) {
        p.reject(e);
      }
    }
  }

  private rebase(): void {
    this.refWall = performance.now();
    this.refVirtual = this.model ? this.model.sim.now : 0;
  }

  private poke(): void {
    this.wake?.();
  }
}

function checkSpeed(s: PaceSpeed): PaceSpeed {
  if (s === 'max') return s;
  if (typeof s !== 'number' || !Number.isFinite(s) || s < MIN_SPEED || s > MAX_NUMERIC_SPEED) throw simError('SG_ERR_INVALID_PARAM', `a speed is a number of virtual seconds per real second from ${MIN_SPEED} to ${MAX_NUMERIC_SPEED.toLocaleString('en-US')}, or "max" (got ${JSON.stringify(s)})`);
  return s;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
