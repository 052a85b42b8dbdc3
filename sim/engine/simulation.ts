// The virtual clock and its event loop. Handlers are registered once and referred to by number;
// an event carries two numbers for its handler (a request's slot, a node's index, …). `run` takes
// events in time order until a horizon or an event budget, and never touches the wall clock except
// through the optional progress callback, which reports how far it got.

import { simError } from './errors.ts';
import { EventQueue } from './event-queue.ts';

export type Handler = (a: number, b: number) => void;

export interface RunOptions {
  /** Stop before the first event later than this virtual time (ms). Default: until no event is left. */
  untilMs?: number;
  /** Fail with SG_ERR_BUDGET_EXHAUSTED after this many events (count): a model that never settles cannot loop forever. */
  maxEvents?: number;
  /** Called every `progressEvery` events with the virtual time and the events processed so far. */
  onProgress?: (nowMs: number, events: number) => void;
  progressEvery?: number;
  /**
   * Return after this many events of this call (count), leaving the clock at the last event's time
   * rather than at `untilMs`: a caller that hands the event loop back between slices (the
   * dashboard's pacing) goes on with another call. Default: no limit.
   */
  stopAfter?: number;
}

export class Simulation {
  /** Virtual time (ms since the simulation started). */
  now = 0;
  /** Events processed so far (count). */
  events = 0;
  private readonly queue: EventQueue;
  private readonly handlers: Handler[] = [];

  constructor(opts: { maxPending?: number } = {}) {
    this.queue = new EventQueue(4096, opts.maxPending);
  }

  /** Registers a handler; events name it by the number returned. */
  on(handler: Handler): number {
    this.handlers.push(handler);
    return this.handlers.length - 1;
  }

  /** Schedules handler `kind` at virtual time `t` (never before now). */
  at(t: number, kind: number, a = 0, b = 0): void {
    if (!(t >= this.now)) throw simError('SG_ERR_INVALID_PARAM', `an event cannot be scheduled in the past or at an invalid time (now ${this.now} ms, asked ${t})`);
    this.queue.push(t, kind, a, b);
  }

  /** Schedules handler `kind` `delayMs` after now. */
  after(delayMs: number, kind: number, a = 0, b = 0): void {
    this.at(this.now + delayMs, kind, a, b);
  }

  get pending(): number {
    return this.queue.size;
  }

  /** Processes events in time order; returns the number processed by this call. */
  run(opts: RunOptions = {}): number {
    const until = opts.untilMs ?? Infinity;
    const maxEvents = opts.maxEvents ?? Infinity;
    const every = opts.progressEvery ?? 1_000_000;
    const q = this.queue;
    const handlers = this.handlers;
    const start = this.events;
    // The loop stops at the first of: the queue empty, the horizon, the event budget, or the next
    // progress report (then goes on): one comparison per event for the last two.
    // maxEvents counts every event of the simulation, not only this call's.
    const budgetAt = maxEvents;
    const sliceAt = opts.stopAfter === undefined ? Infinity : start + Math.max(1, opts.stopAfter);
    let nextProgress = opts.onProgress ? start + every : Infinity;
    let events = start;
    const nearest = () => Math.min(budgetAt, nextProgress, sliceAt);
    let stopAt = nearest();
    for (;;) {
      const t = q.peekTime();
      if (t > until || t === Infinity) break;
      const kind = q.take();
      this.now = t;
      // events is counted before the handler runs, so a handler reading sim.events sees itself.
      this.events = ++events;
      handlers[kind]!(q.takenA, q.takenB);
      if (events >= stopAt) {
        if (events >= nextProgress) {
          nextProgress += every;
          opts.onProgress!(this.now, events);
        }
        if (events >= budgetAt) {
          throw simError('SG_ERR_BUDGET_EXHAUSTED', `the simulation processed its budget of ${maxEvents} events without finishing (virtual time ${(this.now / 1000).toFixed(1)} s)`);
        }
        // A slice used up: the clock stays at this event (events at the same time may follow).
        if (events >= sliceAt) return events - start;
        stopAt = nearest();
      }
    }
    if (until !== Infinity && until > this.now) this.now = until;
    return events - start;
  }
}
