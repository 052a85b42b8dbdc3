// A resource with `servers` identical servers and one first-come-first-served queue with a budget:
// a pgbouncer pool, a Postgres server's cores, a memcached node, a worker pool. A visit's service
// time is known when it arrives, so under FCFS its start and end follow at once from the servers'
// free times (a min-heap): one event per visit, not three, and queueing exactly as the queue would
// produce it. Visits must arrive in time order (the simulation's event loop guarantees it).
//
// The queue is also accounted as a counting process (area under the number waiting), so Little's
// law (Lq = λ·Wq) is a check of two independent tallies, and utilisation comes from the busy time.

import { simError } from './errors.ts';

export class Resource {
  /** Earliest free time of each server (min-heap). */
  private readonly free: Float64Array;
  /** Start times of the visits still waiting (FCFS start times never decrease), as a ring buffer. */
  private waiting: Float64Array;
  /** waiting.length − 1 (the length is a power of two). */
  private mask: number;
  private head = 0;
  private count = 0;
  /** Time up to which the waiting area is accounted. */
  private areaAt = 0;

  arrivals = 0;
  rejected = 0;
  /** Sum of waits in the queue (ms) and of service times (ms) of admitted visits. */
  waitSumMs = 0;
  busySumMs = 0;
  maxWaitMs = 0;
  maxQueue = 0;
  /** ∫ (visits waiting) dt (ms·visits). */
  queueAreaMs = 0;

  constructor(
    readonly name: string,
    readonly servers: number,
    /** Visits allowed to wait at once before new ones are refused (count). */
    readonly queueLimit: number,
  ) {
    if (!Number.isInteger(servers) || servers < 1) throw simError('SG_ERR_CONFIG_INVALID', `resource ${name}: servers must be a positive integer (got ${servers})`);
    if (!(queueLimit >= 0)) throw simError('SG_ERR_CONFIG_INVALID', `resource ${name}: queueLimit must be ≥ 0 (got ${queueLimit})`);
    this.free = new Float64Array(servers);
    let size = 16;
    while (size < 1024 && size < queueLimit) size *= 2;
    this.waiting = new Float64Array(size);
    this.mask = size - 1;
  }

  /** Visits waiting at `now` (count). */
  queued(now: number): number {
    this.advance(now);
    return this.count;
  }

  /** How long the server a visit arriving at `now` would take has been idle (ms; 0 when every server is busy). */
  idleFor(now: number): number {
    return Math.max(0, now - this.free[0]!);
  }

  /** Servers busy at `now` (count). */
  busy(now: number): number {
    let n = 0;
    for (let i = 0; i < this.servers; i++) if (this.free[i]! > now) n++;
    return n;
  }

  /**
   * A visit arriving at `now` that needs `serviceMs` of one server: returns the time it ends, or
   * -1 when the queue is at its budget (the visit is refused and counted).
   */
  admit(now: number, serviceMs: number): number {
    if (now > this.areaAt) {
      if (this.count === 0) this.areaAt = now;
      else this.advance(now);
    }
    this.arrivals++;
    const free = this.free;
    const earliest = free[0]!;
    let start = now;
    if (earliest > now) {
      if (this.count >= this.queueLimit) {
        this.rejected++;
        return -1;
      }
      start = earliest;
      this.pushWaiting(start);
      const wait = start - now;
      this.waitSumMs += wait;
      if (wait > this.maxWaitMs) this.maxWaitMs = wait;
    }
    const end = start + serviceMs;
    this.busySumMs += serviceMs;
    const n = this.servers;
    if (n === 1) {
      free[0] = end;
      return end;
    }
    // Replace the root (the server taken) and sift down.
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && free[c + 1]! < free[c]!) c++;
      if (free[c]! >= end) break;
      free[i] = free[c]!;
      i = c;
    }
    free[i] = end;
    return end;
  }

  /** Takes every server out until `untilMs` (a dead node, a failover): visits arriving meanwhile wait. */
  holdUntil(untilMs: number): void {
    for (let i = 0; i < this.servers; i++) if (this.free[i]! < untilMs) this.free[i] = untilMs;
  }

  /** Accounts the waiting area up to `now`, dropping visits that have started. */
  private advance(now: number): void {
    if (now <= this.areaAt) return;
    let t = this.areaAt;
    const w = this.waiting;
    const mask = this.mask;
    let head = this.head;
    let count = this.count;
    let area = this.queueAreaMs;
    while (count > 0 && w[head]! <= now) {
      const s = w[head]!;
      area += count * (s - t);
      t = s;
      head = (head + 1) & mask;
      count--;
    }
    this.queueAreaMs = area + count * (now - t);
    this.head = head;
    this.count = count;
    this.areaAt = now;
  }

  private pushWaiting(start: number): void {
    if (this.count === this.waiting.length) {
      const old = this.waiting;
      const bigger = new Float64Array(old.length * 2);
      for (let i = 0; i < this.count; i++) bigger[i] = old[(this.head + i) & this.mask]!;
      this.waiting = bigger;
      this.mask = bigger.length - 1;
      this.head = 0;
    }
    this.waiting[(this.head + this.count) & this.mask] = start;
    this.count++;
    if (this.count > this.maxQueue) this.maxQueue = this.count;
  }
}
