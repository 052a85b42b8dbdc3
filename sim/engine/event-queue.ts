// The discrete-event core's agenda: events ordered by virtual time, ties by the order they were
// scheduled (so a run is deterministic), in a binary heap over typed arrays. An event is a handler
// number and two numeric arguments — no closure and no object per event — which is what lets a
// simulation process millions of events per second.

import { simError } from './errors.ts';

export class EventQueue {
  private time: Float64Array;
  private seq: Float64Array;
  private kind: Int32Array;
  private argA: Float64Array;
  private argB: Float64Array;
  private n = 0;
  private nextSeq = 0;

  constructor(
    initialCapacity = 1024,
    /** Events allowed to wait at once (count): a model that schedules without bound fails with SG_ERR_BUDGET_EXHAUSTED instead of exhausting memory. */
    readonly maxPending = 50_000_000,
  ) {
    const c = Math.max(16, initialCapacity);
    this.time = new Float64Array(c);
    this.seq = new Float64Array(c);
    this.kind = new Int32Array(c);
    this.argA = new Float64Array(c);
    this.argB = new Float64Array(c);
  }

  get size(): number {
    return this.n;
  }

  /** The time of the next event (Infinity when empty). */
  peekTime(): number {
    return this.n === 0 ? Infinity : this.time[0]!;
  }

  push(t: number, kind: number, a: number, b: number): void {
    if (this.n === this.time.length) this.grow();
    const s = this.nextSeq++;
    // Sift the hole up from the end.
    let i = this.n++;
    const time = this.time;
    const seq = this.seq;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = time[p]!;
      if (pt < t || (pt === t && seq[p]! < s)) break;
      this.move(p, i);
      i = p;
    }
    time[i] = t;
    seq[i] = s;
    this.kind[i] = kind;
    this.argA[i] = a;
    this.argB[i] = b;
  }

  /** Removes the earliest event into `out` ([time, kind, a, b]); false when empty. */
  pop(out: Float64Array): boolean {
    if (this.n === 0) return false;
    out[0] = this.time[0]!;
    out[1] = this.kind[0]!;
    out[2] = this.argA[0]!;
    out[3] = this.argB[0]!;
    const last = --this.n;
    if (last === 0) return true;
    const t = this.time[last]!;
    const s = this.seq[last]!;
    const k = this.kind[last]!;
    const a = this.argA[last]!;
    const b = this.argB[last]!;
    const time = this.time;
    const seq = this.seq;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= last) break;
      const r = c + 1;
      if (r < last && (time[r]! < time[c]! || (time[r] === time[c] && seq[r]! < seq[c]!))) c = r;
      const ct = time[c]!;
      if (t < ct || (t === ct && s < seq[c]!)) break;
      this.move(c, i);
      i = c;
    }
    time[i] = t;
    seq[i] = s;
    this.kind[i] = k;
    this.argA[i] = a;
    this.argB[i] = b;
    return true;
  }

  private move(from: number, to: number): void {
    this.time[to] = this.time[from]!;
    this.seq[to] = this.seq[from]!;
    this.kind[to] = this.kind[from]!;
    this.argA[to] = this.argA[from]!;
    this.argB[to] = this.argB[from]!;
  }

  private grow(): void {
    const c = this.time.length * 2;
    if (this.n >= this.maxPending) throw simError('SG_ERR_BUDGET_EXHAUSTED', `more than ${this.maxPending} events pending at once: the model schedules without bound`);
    const g = <T extends Float64Array | Int32Array>(old: T, make: (n: number) => T): T => {
      const x = make(c);
      x.set(old);
      return x;
    };
    this.time = g(this.time, (n) => new Float64Array(n));
    this.seq = g(this.seq, (n) => new Float64Array(n));
    this.kind = g(this.kind, (n) => new Int32Array(n));
    this.argA = g(this.argA, (n) => new Float64Array(n));
    this.argB = g(this.argB, (n) => new Float64Array(n));
  }
}
