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

  it('with the server in its own thread, names the side that ran late: the server thread, or the load generator', () => {
    const server = load();
    server.harness = { server: 'thread', eventLoopDelayMs: { p50: 2, p99: 20, max: 80 }, serverEventLoopDelayMs: { p50: 60, p99: 240, max: 900 } };
    expect(findings(server)[0]).toBe("The server was saturated: the server thread's event loop (the whole app tier, one Node thread) ran up to 240 ms late (p99; max 900 ms) (the load generator's loop: p99 20 ms), so latencies include queueing in this machine's one server thread, not only in the simulated topology — lower --speed or --scale, or run on a faster machine.");
    const runner = load();
    runner.harness = { server: 'thread', eventLoopDelayMs: { p50: 60, p99: 150, max: 700 }, serverEventLoopDelayMs: { p50: 2, p99: 30, max: 90 } };
    expect(findings(runner)[0]).toMatch(/^The load generator was saturated: its event loop ran up to 150 ms late \(p99; max 700 ms\) \(the server thread's loop: p99 30 ms\)/);
    const quiet = load();
    quiet.harness = { server: 'thread', eventLoopDelayMs: { p50: 2, p99: 20, max: 80 }, serverEventLoopDelayMs: { p50: 3, p99: 99, max: 300 } };
    expect(findings(quiet).join('\n')).not.toMatch(/saturated/);
  });
});
