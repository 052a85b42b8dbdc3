// LeaseRule, Facebook's memcache leases: one token per key per 10 s while unsettled, other missers
// wait; a delete invalidates the token so a stale fill is refused; memory stays bounded; and the
// live cache (CacheCluster) applies the same rule.

import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../sim/engine/clock.ts';
import { Metrics } from '../sim/observability/metrics.ts';
import { CacheCluster } from '../sim/parts/cache-cluster.ts';
import { LeaseRule } from '../sim/parts/leases.ts';
import { resolveTopology } from '../sim/topology-config.ts';

describe('LeaseRule', () => {
  it('hands one token per key; other missers within the period wait; other keys are independent', () => {
    const r = new LeaseRule();
    expect(r.periodMs).toBe(10_000);
    expect(r.request('photo:1', 0)).toBe('fill');
    for (let t = 1; t < 10_000; t += 999) expect(r.request('photo:1', t)).toBe('wait');
    expect(r.request('photo:2', 5)).toBe('fill');
    expect(r.request(7, 5)).toBe('fill');
    expect(r.request('7', 5)).toBe('fill'); // 7 and '7' are different keys
    expect(r.granted).toBe(4);
    expect(r.waits).toBe(11);
  });

  it('a herd of 1,000 misses in one period reaches the database once', () => {
    const r = new LeaseRule(10_000);
    let fills = 0;
    for (let i = 0; i < 1_000; i++) if (r.request('hot', i * 5) === 'fill') fills++;
    expect(fills).toBe(1);
    // The same herd spread over 50 s, never settled: one token per 10 s.
    const s = new LeaseRule(10_000);
    fills = 0;
    for (let t = 0; t < 50_000; t += 50) if (s.request('hot', t) === 'fill') fills++;
    expect(fills).toBe(5);
  });

  it('the fill with a valid token may be stored, and settles it: the next miss gets a new token', () => {
    const r = new LeaseRule();
    expect(r.request('k', 0)).toBe('fill');
    expect(r.filled('k', 30)).toBe(true);
    // Stored, later evicted or deleted: a new miss is a new lease.
    expect(r.request('k', 40)).toBe('fill');
    expect(r.size).toBe(1);
  });

  it('a delete invalidates the outstanding token: the stale fill is refused, the next miss gets a new token', () => {
    const r = new LeaseRule();
    const old = r.grant('k', 0);
    expect(old).toBeGreaterThan(0);
    r.invalidate('k');
    const fresh = r.grant('k', 10);
    expect(fresh).toBeGreaterThan(old);
    // The stale fill (old token) is refused and does not settle the new token.
    expect(r.filled('k', 20, old)).toBe(false);
    expect(r.request('k', 21)).toBe('wait');
    expect(r.filled('k', 25, fresh)).toBe(true);
    expect(r.refused).toBe(1);
    // Without a token, a fill after an invalidation with no new grant is refused too.
    expect(r.request('j', 0)).toBe('fill');
    r.invalidate('j');
    expect(r.filled('j', 5)).toBe(false);
    r.invalidate('never-granted'); // harmless
  });

  it('a token nobody settles runs out after the period: a new one is handed out and the late fill is refused', () => {
    const r = new LeaseRule(10_000);
    const t1 = r.grant('k', 0);
    expect(r.request('k', 9_999)).toBe('wait');
    const t2 = r.grant('k', 10_000);
    expect(t2).toBeGreaterThan(t1);
    expect(r.filled('k', 10_500, t1)).toBe(false);
    expect(r.filled('k', 10_600, t2)).toBe(true);
    // A fill arriving after its own token ran out is refused.
    r.grant('slow', 0);
    expect(r.filled('slow', 10_000)).toBe(false);
  });

  it('forgets grants older than the period, so memory is bounded by the keys missed in the last period', () => {
    const r = new LeaseRule(1_000);
    for (let i = 0; i < 100_000; i++) r.request(i, i); // one new key per ms, never settled
    expect(r.size).toBe(1_000);
    r.request('later', 1_000_000);
    expect(r.size).toBe(1);
  });

  it('refuses a period that is not a positive number', () => {
    expect(() => new LeaseRule(0)).toThrow(RangeError);
    expect(() => new LeaseRule(Number.NaN)).toThrow(RangeError);
  });
});

describe('CacheCluster with leases decides through LeaseRule', () => {
  it('a fill still in flight after the 10 s period no longer holds the key: the next miss fills, the late value is not stored', async () => {
    const clock = new VirtualClock();
    const cc = new CacheCluster(resolveTopology({ cache: { nodes: 1, leases: true } }).cache, { clock, metrics: new Metrics(clock) });
    let releaseSlow!: () => void;
    const slowGate = new Promise<void>((r) => (releaseSlow = r));
    let calls = 0;
    const slow = cc.getOrFill('hot', async () => {
      calls++;
      await slowGate;
      return 'late';
    });
    // Within the period a second miss waits on the first fill.
    await clock.advance(9_999);
    const waiter = cc.getOrFill('hot', async () => {
      calls++;
      return 'never';
    });
    expect(calls).toBe(1);
    // After it, the token has run out: the next miss gets its own and fills.
    await clock.advance(1);
    expect(await cc.getOrFill('hot', async () => {
      calls++;
      return 'fresh';
    })).toBe('fresh');
    expect(calls).toBe(2);
    expect(cc.get('hot')).toBe('fresh');
    releaseSlow();
    expect(await slow).toBe('late');
    expect(await waiter).toBe('late');
    // The late fill's token was superseded: its value did not overwrite the fresh one.
    expect(cc.get('hot')).toBe('fresh');
  });
});
