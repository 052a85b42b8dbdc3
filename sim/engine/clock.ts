// Time comes into every simulated component through this interface, so the same code can run on
// real time (serving HTTP) or on virtual time (deterministic replays).

export interface Clock {
  /** Milliseconds since the unix epoch (may be fractional). */
  nowMs(): number;
  /** Resolves after `ms` milliseconds of this clock's time. */
  sleep(ms: number): Promise<void>;
}

/** The wall clock. The only place in `sim/` allowed to read real time. */
export class RealClock implements Clock {
  private readonly originMs = performance.timeOrigin;
  nowMs(): number {
    return this.originMs + performance.now();
  }
  sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}

interface Sleeper {
  atMs: number;
  seq: number;
  resolve: () => void;
}

/** Time that moves only when told to; sleepers wake in deadline order. */
export class VirtualClock implements Clock {
  private now: number;
  private seq = 0;
  private sleepers: Sleeper[] = [];

  constructor(startMs = 1_350_000_000_000) {
    this.now = startMs;
  }
  nowMs(): number {
    return this.now;
  }
  sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.sleepers.push({ atMs: this.now + ms, seq: this.seq++, resolve });
      this.sleepers.sort((a, b) => a.atMs - b.atMs || a.seq - b.seq);
    });
  }
  /** Moves time forward by `ms`, waking every sleeper whose deadline passed, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.now + ms;
    while (this.sleepers.length > 0 && this.sleepers[0]!.atMs <= target) {
      const s = this.sleepers.shift()!;
      this.now = s.atMs;
      s.resolve();
      // Let the woken task run before waking the next one.
      await new Promise((r) => setImmediate(r));
    }
    this.now = target;
  }
}
