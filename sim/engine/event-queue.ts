// The discrete-event core's agenda: events ordered by virtual time, ties by the order they were
// scheduled (so a run is deterministic), in a heap over typed arrays. An event is a handler
// number and two numeric arguments — no closure and no object per event — which is what lets a
// simulation process millions of events per second.
//
// The heap is 4-ary (half the levels of a binary heap, and the four children of a node sit side
// by side in memory) and holds only (time, slot) pairs: an event's sequence number, handler and
// arguments stay in its slot, which never moves while the event waits, so a sift writes two arrays
// per level instead of five. Slots are recycled through a free stack.

import { simError } from './errors.ts';

export class EventQueue {
  /** Heap of pending events: time (ms) and the slot holding the rest of the event. */
  private heapTime: Float64Array;
  private heapSlot: Int32Array;
  /** Per slot: the scheduling sequence number (ties), handler number and arguments. */
  private slotSeq: Float64Array;
  private slotKind: Int32Array;
  private slotA: Float64Array;
  private slotB: Float64Array;
  /** Free slots (a stack); `freeTop` of them are free. */
  private freeSlots: Int32Array;
  private freeTop: number;
  private n = 0;
  private nextSeq = 0;

  /** The arguments of the event `take()` returned last. */
  takenA = 0;
  takenB = 0;

  constructor(
    initialCapacity = 1024,
    /** Events allowed to wait at once (count): a model that schedules without bound fails with SG_ERR_BUDGET_EXHAUSTED instead of exhausting memory. */
    readonly maxPending = 50_000_000,
  ) {
    const c = Math.max(16, initialCapacity);
    this.heapTime = new Float64Array(c);
    this.heapSlot = new Int32Array(c);
    this.slotSeq = new Float64Array(c);
    this.slotKind = new Int32Array(c);
    this.slotA = new Float64Array(c);
    this.slotB = new Float64Array(c);
    this.freeSlots = new Int32Array(c);
    for (let i = 0; i < c; i++) this.freeSlots[i] = c - 1 - i;
    this.freeTop = c;
  }

  get size(): number {
    return this.n;
  }

  /** The time of the next event (Infinity when empty). */
  peekTime(): number {
    return this.n === 0 ? Infinity : this.heapTime[0]!;
  }

  push(t: number, kind: number, a: number, b: number): void {
    if (this.n === this.heapTime.length) this.grow();
    const slot = this.freeSlots[--this.freeTop]!;
    const s = this.nextSeq++;
    this.slotSeq[slot] = s;
    this.slotKind[slot] = kind;
    this.slotA[slot] = a;
    this.slotB[slot] = b;
    // Sift the hole up from the end. A new event has the largest sequence number, so on equal
    // times it stays below: only a strictly later parent moves down.
    const time = this.heapTime;
    const hs = this.heapSlot;
    let i = this.n++;
    while (i > 0) {
      const p = (i - 1) >> 2;
      const pt = time[p]!;
      if (pt <= t) break;
      time[i] = pt;
      hs[i] = hs[p]!;
      i = p;
    }
    time[i] = t;
    hs[i] = slot;
  }

  /**
   * Removes the earliest event and returns its handler number (-1 when empty); its arguments are
   * left in `takenA` and `takenB`, its time is the `peekTime()` read before.
   */
  take(): number {
    if (this.n === 0) return -1;
    const slot = this.heapSlot[0]!;
    this.takenA = this.slotA[slot]!;
    this.takenB = this.slotB[slot]!;
    const kind = this.slotKind[slot]!;
    this.freeSlots[this.freeTop++] = slot;
    this.removeRoot();
    return kind;
  }

  /** Removes the earliest event into `out` ([time, kind, a, b]); false when empty. */
  pop(out: Float64Array): boolean {
    if (this.n === 0) return false;
    out[0] = this.heapTime[0]!;
    const kind = this.take();
    out[1] = kind;
    out[2] = this.takenA;
    out[3] = this.takenB;
    return true;
  }

  /** Moves the last entry into the root's place and sifts it down. */
  private removeRoot(): void {
    const last = --this.n;
    if (last === 0) return;
    const time = this.heapTime;
    const hs = this.heapSlot;
    const seq = this.slotSeq;
    const t = time[last]!;
    const slot = hs[last]!;
    const s = seq[slot]!;
    let i = 0;
    for (;;) {
      const first = 4 * i + 1;
      if (first >= last) break;
      // The earliest of up to four children (ties by sequence number).
      let c = first;
      let ct = time[first]!;
      const end = first + 4 < last ? first + 4 : last;
      for (let k = first + 1; k < end; k++) {
        const kt = time[k]!;
        if (kt < ct || (kt === ct && seq[hs[k]!]! < seq[hs[c]!]!)) {
          c = k;
          ct = kt;
        }
      }
      if (t < ct || (t === ct && s < seq[hs[c]!]!)) break;
      time[i] = ct;
      hs[i] = hs[c]!;
      i = c;
    }
    time[i] = t;
    hs[i] = slot;
  }

  private grow(): void {
    const old = this.heapTime.length;
    const c = old * 2;
    if (this.n >= this.maxPending) throw simError('SG_ERR_BUDGET_EXHAUSTED', `more than ${this.maxPending} events pending at once: the model schedules without bound`);
    const f64 = (x: Float64Array): Float64Array => {
      const y = new Float64Array(c);
      y.set(x);
      return y;
    };
    const i32 = (x: Int32Array): Int32Array => {
      const y = new Int32Array(c);
      y.set(x);
      return y;
    };
    this.heapTime = f64(this.heapTime);
    this.heapSlot = i32(this.heapSlot);
    this.slotSeq = f64(this.slotSeq);
    this.slotKind = i32(this.slotKind);
    this.slotA = f64(this.slotA);
    this.slotB = f64(this.slotB);
    // Every old slot is in use (the heap was full); the new ones are free.
    this.freeSlots = new Int32Array(c);
    for (let i = 0; i < c - old; i++) this.freeSlots[i] = c - 1 - i;
    this.freeTop = c - old;
  }
}
