// Facebook's memcache leases (Nishtala et al., "Scaling Memcache at Facebook", NSDI 2013, §3.2.1),
// as a rule both modes can apply: on a miss, memcached hands the client a lease token for the key
// at most once per `periodMs` (10 s); other clients that miss the key meanwhile are told to wait
// and retry, so a hot key's miss reaches the database once, not once per reader (the thundering
// herd). A delete of the key invalidates the outstanding token, so a fill that read the old value
// is not stored (the stale set).
//
// Here a token is settled by its fill (`filled`) or by a delete (`invalidate`): after that the next
// miss is a new miss (the value was stored and then evicted or deleted) and gets a new token. A
// token nobody settles lasts `periodMs`; then the next miss gets a new one, and a late fill with the
// old token is refused, as memcached refuses a set with a token it no longer holds. Memory is
// bounded by the grants of the last `periodMs`: older ones are forgotten as time moves on.

export type LeaseKey = number | string;

interface Grant {
  token: number;
  atMs: number;
}

export class LeaseRule {
  /** Outstanding grants by key, in the order they were made (so the oldest are first). */
  private readonly grants = new Map<LeaseKey, Grant>();
  private nextToken = 1;

  /** Tokens handed out (count). */
  granted = 0;
  /** Misses told to wait because a token for the key was outstanding (count). */
  waits = 0;
  /** Fills refused because their token was invalidated or ran out (count). */
  refused = 0;

  constructor(
    /** How long a token holds a key before another may be handed out (ms); Facebook used 10 s. */
    readonly periodMs = 10_000,
  ) {
    if (!(periodMs > 0) || !Number.isFinite(periodMs)) throw new RangeError(`periodMs must be a finite number > 0 (got ${periodMs})`);
  }

  /** Outstanding grants held in memory (count). */
  get size(): number {
    return this.grants.size;
  }

  /** A miss on `key` at `nowMs`: 'fill' when it gets the key's token, 'wait' when another holds it. */
  request(key: LeaseKey, nowMs: number): 'fill' | 'wait' {
    return this.grant(key, nowMs) > 0 ? 'fill' : 'wait';
  }

  /** The same decision as `request`, returning the token (> 0) or 0 for "wait". */
  grant(key: LeaseKey, nowMs: number): number {
    this.forget(nowMs);
    const g = this.grants.get(key);
    if (g && nowMs - g.atMs < this.periodMs) {
      this.waits++;
      return 0;
    }
    // Delete first, so the key moves to the end of the map's order (the newest grant).
    if (g) this.grants.delete(key);
    const token = this.nextToken++;
    this.grants.set(key, { token, atMs: nowMs });
    this.granted++;
    return token;
  }

  /**
   * The fill of `key` is ready to be stored at `nowMs`: true when its token still holds (it may be
   * stored), false when a delete invalidated it or it ran out. Settles the token either way. With
   * `token`, only that token is checked (a fill must not settle a newer token than its own).
   */
  filled(key: LeaseKey, nowMs: number, token?: number): boolean {
    this.forget(nowMs);
    const g = this.grants.get(key);
    const ok = g !== undefined && (token === undefined || g.token === token) && nowMs - g.atMs < this.periodMs;
    if (ok) this.grants.delete(key);
    else this.refused++;
    return ok;
  }

  /**
   * A fill that failed gives its token back, so the next miss gets one at once instead of waiting
   * out the period (a newer token for the key is left alone).
   */
  release(key: LeaseKey, token: number): void {
    if (this.grants.get(key)?.token === token) this.grants.delete(key);
  }

  /** A delete of `key`: its outstanding token (if any) no longer allows a fill to be stored. */
  invalidate(key: LeaseKey): void {
    this.grants.delete(key);
  }

  /** Forgets everything (a node restarting empty). */
  clear(): void {
    this.grants.clear();
  }

  /** Drops grants older than the period: they allow nothing any more. */
  private forget(nowMs: number): void {
    for (const [key, g] of this.grants) {
      if (nowMs - g.atMs < this.periodMs) break;
      this.grants.delete(key);
    }
  }
}
