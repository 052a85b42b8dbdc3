// A run whose event loop ran late (server and load generator share it in process) says so first:
// its latencies include queueing in the harness, not only in the simulated topology.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findings } from '../reports/findings.ts';
import type { ResultDocument } from '../reports/load-result.ts';

const load = () => JSON.parse(readFileSync('test/fixtures/reports/cache-node-loss/result.json', 'utf8')) as ResultDocument;

describe('the harness-saturation finding', () => {
  it('leads when the event loop ran ≥ 100 ms late at p99', () => {
    const r = load();
    r.harness = { eventLoopDelayMs: { p50: 30, p99: 180, max: 2300 } };
    const f = findings(r);
    expect(f[0]).toMatch(/^The harness was saturated: .* 180 ms late \(p99; max 2,300 ms\)/);
  });

  it('is absent for a quiet loop, and for results that predate the measurement', () => {
    const quiet = load();
    quiet.harness = { eventLoopDelayMs: { p50: 1, p99: 12, max: 40 } };
    expect(findings(quiet).join('\n')).not.toMatch(/harness was saturated/);
    expect(findings(load()).join('\n')).not.toMatch(/harness was saturated/);
  });
});
