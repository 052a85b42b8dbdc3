// An LRU cache by bytes over integer keys, for the simulator's memcached nodes: what the live
// cache's lru-cache (maxSize in bytes) decides, for millions of items without an object per item.
// Keys are non-negative integers below 2^53 (an id, or a key's memoised hash); the cache keeps
// only sizes, not values — the simulator needs to know whether a read hits, not what it reads.
//
// Layout: items live in slots of typed arrays (key, bytes, prev, next: a doubly linked list from
// most to least recently used); an open-addressing table (linear probing, at most half full) maps
// a key to its slot, with deletes by backward shift, so there are no tombstones to clean up. Both
// grow by doubling.

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

export class ByteLru {
  /** Per slot: the key, its size (bytes), and the list links (slot numbers, NONE at the ends). */
  private keys: Float64Array;
  private sizes: Float64Array;
  private prev: Int32Array;
  private next: Int32Array;
  /** Slots never used start at `fresh`; freed ones are chained through `next` from `freeHead`. */
  private fresh = 0;
  private freeHead = NONE;
  /** Most and least recently used slots. */
  private head = NONE;
  private tail = NONE;
  /** key → slot + 1 (0: empty), linear probing; its length is a power of two. */
  private table: Int32Array;
  private mask: number;
  private count = 0;
  private used = 0;

  /** Items evicted to make room (count); deletes and replaced items are not evictions. */
  evictions = 0;

  constructor(
    /** The most bytes held at once (bytes). */
    readonly capacityBytes: number,
    /** Items expected (count): the initial room; it grows past it. */
    expectedItems = 1024,
  ) {
    checkBytes('capacityBytes', capacityBytes);
    const slots = Math.max(16, Math.ceil(expectedItems));
    this.keys = new Float64Array(slots);
    this.sizes = new Float64Array(slots);
    this.prev = new Int32Array(slots);
    this.next = new Int32Array(slots);
    let t = 32;
    while (t < slots * 2) t *= 2;
    this.table = new Int32Array(t);
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

  /** True when `key` is held, and it becomes the most recently used. */
  get(key: number): boolean {
    const slot = this.find(key);
    if (slot === NONE) return false;
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
    return slot === NONE ? -1 : this.sizes[slot]!;
  }

  /**
   * Stores `key` with `bytes` as the most recently used item (an update replaces its size), then
   * evicts the least recently used items until the bytes held fit the capacity. An item larger
   * than the whole capacity is not stored, and an older copy of it is dropped (as lru-cache does).
   */
  set(key: number, bytes: number): void {
    checkBytes('bytes', bytes);
    if (!(key >= 0 && key <= Number.MAX_SAFE_INTEGER && Math.floor(key) === key)) throw new RangeError(`ByteLru keys are integers in [0, 2^53) (got ${key})`);
    let slot = this.find(key);
    if (bytes > this.capacityBytes) {
      if (slot !== NONE) this.remove(slot);
      return;
    }
    if (slot !== NONE) {
      this.used += bytes - this.sizes[slot]!;
      this.sizes[slot] = bytes;
      this.toFront(slot);
    } else {
      slot = this.allocate();
      this.keys[slot] = key;
      this.sizes[slot] = bytes;
      this.linkFront(slot);
      this.insert(key, slot);
      this.count++;
      this.used += bytes;
    }
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
    for (let s = this.head; s !== NONE; s = this.next[s]!) out.push(this.keys[s]!);
    return out;
  }

  private find(key: number): number {
    const table = this.table;
    const mask = this.mask;
    const keys = this.keys;
    let i = mix(key) & mask;
    for (;;) {
      const e = table[i]!;
      if (e === 0) return NONE;
      if (keys[e - 1] === key) return e - 1;
      i = (i + 1) & mask;
    }
  }

  private insert(key: number, slot: number): void {
    if (2 * (this.count + 1) > this.table.length) this.rehash(this.table.length * 2);
    const table = this.table;
    const mask = this.mask;
    let i = mix(key) & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = slot + 1;
  }

  /** Unlinks and frees `slot`, and removes its key from the table by backward shift. */
  private remove(slot: number): void {
    const table = this.table;
    const mask = this.mask;
    const keys = this.keys;
    let i = mix(keys[slot]!) & mask;
    while (table[i] !== slot + 1) i = (i + 1) & mask;
    // Backward shift: move later entries of the probe run into the hole when their home allows.
    for (;;) {
      table[i] = 0;
      let j = i;
      for (;;) {
        j = (j + 1) & mask;
        const e = table[j]!;
        if (e === 0) break;
        const home = mix(keys[e - 1]!) & mask;
        // The entry at j may move to i unless its home lies cyclically in (i, j].
        const stays = i <= j ? i < home && home <= j : i < home || home <= j;
        if (!stays) {
          table[i] = e;
          i = j;
          break;
        }
      }
      if (table[j] === 0) break;
    }
    this.unlink(slot);
    this.count--;
    this.used -= this.sizes[slot]!;
    this.next[slot] = this.freeHead;
    this.freeHead = slot;
  }

  private allocate(): number {
    if (this.freeHead !== NONE) {
      const s = this.freeHead;
      this.freeHead = this.next[s]!;
      return s;
    }
    if (this.fresh === this.keys.length) this.growSlots();
    return this.fresh++;
  }

  private growSlots(): void {
    const n = this.keys.length * 2;
    const f = (a: Float64Array) => {
      const b = new Float64Array(n);
      b.set(a);
      return b;
    };
    const g = (a: Int32Array) => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.keys = f(this.keys);
    this.sizes = f(this.sizes);
    this.prev = g(this.prev);
    this.next = g(this.next);
  }

  private rehash(size: number): void {
    const table = new Int32Array(size);
    const mask = size - 1;
    for (let s = this.head; s !== NONE; s = this.next[s]!) {
      let i = mix(this.keys[s]!) & mask;
      while (table[i] !== 0) i = (i + 1) & mask;
      table[i] = s + 1;
    }
    this.table = table;
    this.mask = mask;
  }

  private linkFront(slot: number): void {
    this.prev[slot] = NONE;
    this.next[slot] = this.head;
    if (this.head !== NONE) this.prev[this.head] = slot;
    this.head = slot;
    if (this.tail === NONE) this.tail = slot;
  }

  private unlink(slot: number): void {
    const p = this.prev[slot]!;
    const n = this.next[slot]!;
    if (p !== NONE) this.next[p] = n;
    else this.head = n;
    if (n !== NONE) this.prev[n] = p;
    else this.tail = p;
  }

  private toFront(slot: number): void {
    if (this.head === slot) return;
    this.unlink(slot);
    this.linkFront(slot);
  }
}
