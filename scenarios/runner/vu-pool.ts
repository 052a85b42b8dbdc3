// The test's virtual users, as ids handed out from one pool shared by every scenario (k6's __VU).
// A VU here is only an id with a life span; the executors decide when to take and give back VUs.
//
// k6 initialises a test's VUs up front and lends them to scenarios; an arrival-rate scenario takes its
// preAllocatedVUs when it starts and grows towards maxVUs. Initialising a VU costs nothing here, so the
// pool simply hands out the lowest free id (a released one, or the next new one): ids stay dense, as k6's
// do, and a later scenario reuses the VUs an earlier one gave back.

/** Default budget on VUs alive at once: far above any planned run, low enough to stop a runaway. */
export const DEFAULT_VU_LIMIT = 1_000_000;

export class VuPool {
  private nextId = 1;
  /** Released ids, kept as a min-heap so the lowest is reused first. */
  private readonly freeIds: number[] = [];
  private readonly live = new Set<number>();
  private peak = 0;

  /** @param limit budget on VUs allocated at once (count); exceeding it throws. */
  constructor(private readonly limit = DEFAULT_VU_LIMIT) {}

  /** Takes a VU: the lowest released id, else the next new one (1-based). */
  allocate(): number {
    if (this.live.size >= this.limit) {
      throw new Error(`VU budget exhausted: ${this.limit} VUs are already allocated`);
    }
    const id = this.freeIds.length > 0 ? this.popFree() : this.nextId++;
    this.live.add(id);
    if (this.live.size > this.peak) this.peak = this.live.size;
    return id;
  }

  /** Gives a VU back. Releasing an id that is not allocated is a bug in the caller. */
  release(id: number): void {
    if (!this.live.delete(id)) throw new Error(`VU ${id} released but not allocated`);
    this.pushFree(id);
  }

  /** VUs allocated now. */
  active(): number {
    return this.live.size;
  }

  /** The most VUs allocated at once so far (k6's vus_max). */
  max(): number {
    return this.peak;
  }

  private pushFree(id: number): void {
    const h = this.freeIds;
    h.push(id);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]! <= h[i]!) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  private popFree(): number {
    const h = this.freeIds;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]! < h[m]!) m = l;
        if (r < h.length && h[r]! < h[m]!) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}
