// An LRU cache by bytes over integer keys, for the simulator's memcached nodes: what the live
// cache's lru-cache (maxSize in bytes) decides, for millions of items without an object per item.
// Keys are non-negative integers below 2^53 (an id, or a key's memoised hash); the cache keeps
// only sizes, not values — the simulator needs to know whether a read hits, not what it reads.
//
// Layout: items live in slots of one typed array, four numbers per slot side by side (key, bytes,
// prev, next: a doubly linked list from most to least recently used), so touching an item reads
// one cache line, not four; an open-addressing table (linear probing, at most half full) maps a
// key to its slot, each entry holding the slot and the key's hash, so probing and deletes by
// backward shift (no tombstones to clean up) never read the slots. Both grow by doubling. At a
// million items the simulator's lookups are memory-bound: this layout is what keeps them fast.
//
// With `{ ttl: true }` each item also carries an expiry time (the gutter pool's short-lived values,
// as lru-cache's `ttl` does it): an expired item is a miss and is dropped when it is next read;
// until then it holds its bytes, as lru-cache's does without ttlAutopurge.

/** Capacity or size that is not a finite number ≥ 0. */
function checkBytes(what: string, v: number): void {
  if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${what} must be a finite number of bytes ≥ 0 (got ${v})`);
}

/** A 32-bit mix of an integer key below 2^53 (both halves, then murmur3's finaliser). */
function mix(key: number): number {
  const lo = key >>> 0;
  const hi = (key / 4294967296) >>> 0;
  let h = lo ^ Math.imul(hi ^ 0x5bd1e995, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const NONE = -1;
/** Numbers per slot in `rec`: key, bytes, prev, next. */
const W = 4;
const KEY = 0;
const SIZE = 1;
const PREV = 2;
const NEXT = 3;

export class ByteLru {
  /** Per slot, side by side: the key, its size (bytes), and the list links (slot numbers, NONE at the ends). */
  private rec: Float64Array;
  private slots: number;
  /** Slots never used start at `fresh`; freed ones are chained through NEXT from `freeHead`. */
  private fresh = 0;
  private freeHead = NONE;
  /** Most and least recently used slots. */
  private head = NONE;
  private tail = NONE;
  /** Pairs (slot + 1, the key's hash); slot + 1 = 0 marks an empty entry. Linear probing; a power-of-two number of pairs. */
  private table: Int32Array;
  private mask: number;
  private count = 0;
  private used = 0;

  /** Per slot, the time the item expires (same unit as the `now` given to get): only with `{ ttl: true }`. */
  private expires: Float64Array | null;

  /** Items evicted to make room (count); deletes and replaced items are not evictions. */
  evictions = 0;

  constructor(
    /** The most bytes held at once (bytes). */
    readonly capacityBytes: number,
    /** Items expected (count): the initial room; it grows past it. */
    expectedItems = 1024,
    options: { ttl?: boolean } = {},
  ) {
    checkBytes('capacityBytes', capacityBytes);
    const slots = Math.max(16, Math.ceil(expectedItems));
    this.slots = slots;
    this.rec = new Float64Array(slots * W);
    this.expires = options.ttl ? new Float64Array(slots) : null;
    let t = 32;
    while (t < slots * 2) t *= 2;
    this.table = new Int32Array(t * 2);
    this.mask = t - 1;
  }

  /** Items held (count). */
  get items(): number {
    return this.count;
  }

  /** Bytes held (bytes). */
  get bytes(): number {
    return this.used;
  }

  /**
   * True when `key` is held, and it becomes the most recently used. With expiries, an item whose
   * expiry is before `now` is dropped and reads as a miss (at its expiry it still hits, as in
   * lru-cache, where an item is stale once its age exceeds its ttl).
   */
  get(key: number, now = 0): boolean {
    const slot = this.find(key);
    if (slot === NONE) return false;
    if (this.expires !== null && this.expires[slot]! < now) {
      this.remove(slot);
      return false;
    }
    this.toFront(slot);
    return true;
  }

  /** True when `key` is held (its recency is left alone). */
  has(key: number): boolean {
    return this.find(key) !== NONE;
  }

  /** The size of `key` (bytes), or -1 when it is not held; recency is left alone. */
  sizeOf(key: number): number {
    const slot = this.find(key);
    return slot === NONE ? -1 : this.rec[slot * W + SIZE]!;
  }

  /**
   * Stores `key` with `bytes` as the most recently used item (an update replaces its size), then
   * evicts the least recently used items until the bytes held fit the capacity. An item larger
   * than the whole capacity is not stored, and an older copy of it is dropped (as lru-cache does).
   * With expiries, the item expires at `expiresAt` (never, by default).
   */
  set(key: number, bytes: number, expiresAt = Infinity): void {
    checkBytes('bytes', bytes);
    if (!(key >= 0 && key <= Number.MAX_SAFE_INTEGER && Math.floor(key) === key)) throw new RangeError(`ByteLru keys are integers in [0, 2^53) (got ${key})`);
    const h = mix(key);
    let slot = this.findHashed(key, h);
    if (bytes > this.capacityBytes) {
      if (slot !== NONE) this.remove(slot);
      return;
    }
    if (slot !== NONE) {
      this.used += bytes - this.rec[slot * W + SIZE]!;
      this.rec[slot * W + SIZE] = bytes;
      this.toFront(slot);
    } else {
      slot = this.allocate();
      this.rec[slot * W + KEY] = key;
      this.rec[slot * W + SIZE] = bytes;
      this.linkFront(slot);
      this.insert(h, slot);
      this.count++;
      this.used += bytes;
    }
    if (this.expires !== null) this.expires[slot] = expiresAt;
    while (this.used > this.capacityBytes) {
      // The item just set fits by itself, so the tail is never it while others remain.
      this.remove(this.tail);
      this.evictions++;
    }
  }

  /** Removes `key`; true when it was held. */
  delete(key: number): boolean {
    const slot = this.find(key);
    if (slot === NONE) return false;
    this.remove(slot);
    return true;
  }

  /** Drops every item (evictions are not counted; the room already grown is kept). */
  clear(): void {
    this.table.fill(0);
    this.fresh = 0;
    this.freeHead = NONE;
    this.head = NONE;
    this.tail = NONE;
    this.count = 0;
    this.used = 0;
  }

  /** Keys from most to least recently used (for tests and reports; O(items)). */
  keysByRecency(): number[] {
    const out: number[] = [];
    for (let s = this.head; s !== NONE; s = this.rec[s * W + NEXT]!) out.push(this.rec[s * W + KEY]!);
    return out;
  }

  private find(key: number): number {
    return this.findHashed(key, mix(key));
  }

  private findHashed(key: number, h: number): number {
    const table = this.table;
    const mask = this.mask;
    const hash = h | 0;
    let i = h & mask;
    for (;;) {
      const e = table[2 * i]!;
      if (e === 0) return NONE;
      if (table[2 * i + 1] === hash && this.rec[(e - 1) * W + KEY] === key) return e - 1;
      i = (i + 1) & mask;
    }
  }

  private insert(h: number, slot: number): void {
    if (2 * (this.count + 1) > this.mask + 1) this.rehash((this.mask + 1) * 2);
    const table = this.table;
    const mask = this.mask;
    let i = h & mask;
    while (table[2 * i] !== 0) i = (i + 1) & mask;
    table[2 * i] = slot + 1;
    table[2 * i + 1] = h | 0;
  }

  /** Unlinks and frees `slot`, and removes its key from the table by backward shift. */
  private remove(slot: number): void {
    const table = this.table;
    const mask = this.mask;
    let i = mix(this.rec[slot * W + KEY]!) & mask;
    while (table[2 * i] !== slot + 1) i = (i + 1) & mask;
    // Backward shift: move later entries of the probe run into the hole when their home allows.
    for (;;) {
      table[2 * i] = 0;
      let j = i;
      for (;;) {
        j = (j + 1) & mask;
        const e = table[2 * j]!;
        if (e === 0) break;
        const home = table[2 * j + 1]! & mask;
        // The entry at j may move to i unless its home lies cyclically in (i, j].
        const stays = i <= j ? i < home && home <= j : i < home || home <= j;
        if (!stays) {
          table[2 * i] = e;
          table[2 * i + 1] = table[2 * j + 1]!;
          i = j;
          break;
        }
      }
      if (table[2 * j] === 0) break;
    }
    this.unlink(slot);
    this.count--;
    this.used -= this.rec[slot * W + SIZE]!;
    this.rec[slot * W + NEXT] = this.freeHead;
    this.freeHead = slot;
  }

  private allocate(): number {
    if (this.freeHead !== NONE) {
      const s = this.freeHead;
      this.freeHead = this.rec[s * W + NEXT]!;
      return s;
    }
    if (this.fresh === this.slots) this.growSlots();
    return this.fresh++;
  }

  private growSlots(): void {
    this.slots *= 2;
    const rec = new Float64Array(this.slots * W);
    rec.set(this.rec);
    this.rec = rec;
    if (this.expires !== null) {
      const expires = new Float64Array(this.slots);
      expires.set(this.expires);
      this.expires = expires;
    }
  }

  private rehash(size: number): void {
    const table = new Int32Array(size * 2);
    const mask = size - 1;
    const old = this.table;
    for (let k = 0; k < old.length; k += 2) {
      const e = old[k]!;
      if (e === 0) continue;
      const h = old[k + 1]!;
      let i = h & mask;
      while (table[2 * i] !== 0) i = (i + 1) & mask;
      table[2 * i] = e;
      table[2 * i + 1] = h;
    }
    this.table = table;
    this.mask = mask;
  }

  private linkFront(slot: number): void {
    const rec = this.rec;
    rec[slot * W + PREV] = NONE;
    rec[slot * W + NEXT] = this.head;
    if (this.head !== NONE) rec[this.head * W + PREV] = slot;
    this.head = slot;
    if (this.tail === NONE) this.tail = slot;
  }

  private unlink(slot: number): void {
    const rec = this.rec;
    const p = rec[slot * W + PREV]!;
    const n = rec[slot * W + NEXT]!;
    if (p !== NONE) rec[p * W + NEXT] = n;
    else this.head = n;
    if (n !== NONE) rec[n * W + PREV] = p;
    else this.tail = p;
  }

  private toFront(slot: number): void {
    if (this.head === slot) return;
    this.unlink(slot);
    this.linkFront(slot);
  }
}
