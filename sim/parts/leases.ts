// TEMPORARY stand-in (replaced by the engine branch's LeaseRule before commit).
export class LeaseRule {
  private g = new Map<number | string, number>();
  constructor(readonly periodMs = 10_000) {}
  get size(): number { return this.g.size; }
  request(key: number | string, nowMs: number): 'fill' | 'wait' { const t = this.g.get(key); if (t !== undefined && nowMs - t < this.periodMs) return 'wait'; this.g.set(key, nowMs); return 'fill'; }
  filled(key: number | string, _nowMs: number): boolean { return this.g.delete(key) || true; }
  invalidate(key: number | string): void { this.g.delete(key); }
}
