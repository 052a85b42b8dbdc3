// pgbouncer in front of a database node: a fixed number of connections, a bounded wait queue.
// Load beyond the pool shows up as waiting time, and beyond the queue budget as a reported error.

import { simError } from '../engine/errors.ts';

export class ConnectionPool {
  private inUseCount = 0;
  private readonly waiters: Array<() => void> = [];
  private waitHead = 0;
  // High-water marks since the last takePeaks(): with no service time a query holds its connection
  // only across a few microtasks, so a once-a-second look at `inUse` would nearly always see 0.
  private peakInUse = 0;
  private peakWaiting = 0;

  constructor(
    readonly name: string,
    /** Connections (count). */
    readonly size: number,
    /** Queries allowed to wait for a connection (count). */
    readonly queueLimit: number,
  ) {}

  get inUse(): number {
    return this.inUseCount;
  }
  get waiting(): number {
    return this.waiters.length - this.waitHead;
  }

  /** Most connections in use and queries waiting at once since the last call (counts); the next window starts from now. */
  takePeaks(): { inUse: number; waiting: number } {
    const peaks = { inUse: Math.max(this.peakInUse, this.inUseCount), waiting: Math.max(this.peakWaiting, this.waiting) };
    this.peakInUse = this.inUseCount;
    this.peakWaiting = this.waiting;
    return peaks;
  }

  /** Takes a connection if one is free, without waiting. */
  tryAcquire(): boolean {
    if (this.inUseCount < this.size && this.waiting === 0) {
      this.inUseCount++;
      if (this.inUseCount > this.peakInUse) this.peakInUse = this.inUseCount;
      return true;
    }
    return false;
  }

  /** Waits for a connection; SG_ERR_POOL_EXHAUSTED if the wait queue is over budget. */
  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (this.waiting >= this.queueLimit) {
      return Promise.reject(simError('SG_ERR_POOL_EXHAUSTED', `connection pool ${this.name} has ${this.waiting} queries waiting (limit ${this.queueLimit})`, { node: this.name }));
    }
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      if (this.waiting > this.peakWaiting) this.peakWaiting = this.waiting;
    });
  }

  release(): void {
    if (this.waitHead < this.waiters.length) {
      // Hand the connection straight to the next waiter: inUse stays the same.
      const next = this.waiters[this.waitHead]!;
      this.waiters[this.waitHead++] = undefined as unknown as () => void;
      if (this.waitHead > 1024 && this.waitHead * 2 > this.waiters.length) {
        this.waiters.splice(0, this.waitHead);
        this.waitHead = 0;
      }
      next();
      return;
    }
    if (this.inUseCount <= 0) throw new Error(`pool ${this.name}: release without acquire`);
    this.inUseCount--;
  }
}
