// TEMPORARY stand-in (replaced by the engine branch's typed-array ByteLru before commit).
export class ByteLru {
  private m = new Map<number, number>();
  bytes = 0;
  evictions = 0;
  constructor(readonly capacityBytes: number, _expectedItems?: number) {}
  get items(): number { return this.m.size; }
  get(key: number): boolean { const b = this.m.get(key); if (b === undefined) return false; this.m.delete(key); this.m.set(key, b); return true; }
  has(key: number): boolean { return this.m.has(key); }
  set(key: number, bytes: number): void {
    if (bytes > this.capacityBytes) return;
    const old = this.m.get(key); if (old !== undefined) { this.bytes -= old; this.m.delete(key); }
    this.m.set(key, bytes); this.bytes += bytes;
    for (const [k, b] of this.m) { if (this.bytes <= this.capacityBytes) break; this.m.delete(k); this.bytes -= b; this.evictions++; }
  }
  delete(key: number): boolean { const b = this.m.get(key); if (b === undefined) return false; this.m.delete(key); this.bytes -= b; return true; }
  clear(): void { this.m.clear(); this.bytes = 0; }
}
