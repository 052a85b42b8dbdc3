// The thundering-herd finding (shard reads for keys another client was already filling, and what
// leases left of them), and a fan-out with nothing to deliver not reported as "0 feed entries".

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findings } from '../reports/findings.ts';
import type { ResultDocument } from '../reports/load-result.ts';

const load = (run: string) => JSON.parse(readFileSync(`test/fixtures/reports/${run}/result.json`, 'utf8')) as ResultDocument;

function withHerd(leases: boolean, herdEvents: number, herdFills: number): ResultDocument {
  const r = load('cache-node-loss');
  const c = r.telemetry!.caches;
  c.fills = 10_000;
  c.herdEvents = herdEvents;
  c.herdFills = herdFills;
  c.herdFillsPerS = [[1000, herdFills / 10], [2000, herdFills / 20]];
  r.topology!.cache.leases = leases;
  return r;
}

describe('the thundering-herd finding', () => {
  it('without leases: the herd’s shard reads, their share of the misses, their peak, and what leases do', () => {
    const f = findings(withHerd(false, 5000, 4000)).join('\n');
    expect(f).toMatch(/Thundering herd: 4,000 shard reads \(40(\.0)?% of the 10,000 misses that reached a shard\) were for keys another client was already filling, peaking at 400\/s/);
    expect(f).toMatch(/Leases \(`cache.leases: true`/);
  });

  it('with leases: how many herd misses still read the shard', () => {
    const f = findings(withHerd(true, 5000, 3)).join('\n');
    expect(f).toMatch(/Leases held the herd back: 5,000 misses found a fill of their key already in flight, and only 3 of them read the shard/);
  });

  it('says nothing below 1,000 herd events, and nothing for results that predate the herd-reads figure', () => {
    expect(findings(withHerd(false, 999, 999)).join('\n')).not.toMatch(/herd/i);
    const old = load('cache-node-loss');
    expect(findings(old).join('\n')).not.toMatch(/herd/i);
  });
});

describe('the fan-out finding', () => {
  it('does not report "0 feed entries (up to 0 followers each)" when no post had followers', () => {
    const r = load('launch-day');
    expect(r.telemetry!.fanout.deliveries).toBe(0);
    expect(findings(r).join('\n')).not.toMatch(/0 feed entries|up to 0 followers/);
  });
});
