// Long admin work (seeding, shard moves, replica copies and catch-up) runs in slices of real time
// with the event loop handed back between them, so API requests keep being answered meanwhile.
//
// A task calls `due()` between small units of work and `await pause()` when it says so. Waiting
// tasks get the loop in turn, first come first served, one slice per turn of the event loop: however
// many tasks run at once, the loop is never held for more than one slice (plus one unit of work)
// before timers and sockets are served. Slices are measured with performance.now(), not the
// topology's Clock: what is bounded is the real event loop, also under a virtual clock.

/** Real time one slice of background work may hold the event loop (ms). */
export const SLICE_MS = 10;

export class TimeSlicer {
  /** When the slice now running began (performance.now() ms), or null before the first one. */
  private sliceStartMs: number | null = null;
  private readonly waiting: Array<() => void> = [];
  private pumping = false;
  /** Slices handed out (count): each one a turn of the event loop given back first. */
  slices = 0;

  constructor(
    /** Real time per slice (ms). */
    readonly budgetMs: number = SLICE_MS,
  ) {}

  /** True when the slice running now has used its budget: the caller should `await pause()` before more work. */
  due(): boolean {
    const now = performance.now();
    if (this.sliceStartMs === null) {
      this.sliceStartMs = now;
      return false;
    }
    return now - this.sliceStartMs >= this.budgetMs;
  }

  /**
   * For work that starts by itself (a timer fired): begins a slice at once when the slicer is idle
   * (nobody queued, no slice begun lately, so the loop has had turns since), else waits its turn.
   * A replica woken on a quiet server applies at once; replicas woken together take turns.
   */
  async enter(): Promise<void> {
    const now = performance.now();
    if (!this.pumping && (this.sliceStartMs === null || now - this.sliceStartMs >= 2 * this.budgetMs)) {
      this.sliceStartMs = now;
      return;
    }
    if (this.due()) await this.pause();
  }

  /** The performance.now() time at which the slice running now ends (for work that stops itself). */
  deadline(): number {
    if (this.sliceStartMs === null) this.sliceStartMs = performance.now();
    return this.sliceStartMs + this.budgetMs;
  }

  /** Hands the event loop back; resolves when this task's next slice begins (after every task queued before it). */
  pause(): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      if (!this.pumping) {
        this.pumping = true;
        setImmediate(this.pump);
      }
    });
  }

  /** `await pause()` only when the slice is used up (the common check in a loop). */
  async yieldIfDue(): Promise<void> {
    if (this.due()) await this.pause();
  }

  /** Runs a generator to its end, pausing between its steps whenever a slice is used up. */
  async run<T>(steps: Generator<unknown, T>): Promise<T> {
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      if (this.due()) await this.pause();
    }
  }

  // One waiting task per turn of the event loop (setImmediate runs after the loop has polled
  // sockets and run due timers), so requests that arrived during a slice are answered first.
  private readonly pump = (): void => {
    const next = this.waiting.shift();
    this.sliceStartMs = performance.now();
    this.slices++;
    if (this.waiting.length > 0) setImmediate(this.pump);
    else this.pumping = false;
    next?.();
  };
}

/** Runs a generator to its end at once (the synchronous twin of TimeSlicer.run). */
export function runToEnd<T>(steps: Generator<unknown, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}
