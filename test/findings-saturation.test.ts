// What a simulation says about saturation: the first resource to saturate and when, or, when none
// did, the busiest one and the load at which it would: about SATURATED_USE ÷ its peak share (its
// busiest interval grown in proportion), and at the latest SATURATED_USE ÷ its mean share.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findings, unsaturatedText } from '../reports/findings.ts';
import { simulationSection } from '../reports/report-md.ts';
import type { ResultDocument, SimulationSection } from '../scenarios/runner/results.ts';

type Resource = SimulationSection['resources'][number];
const resource = (name: string, peakUse: number, meanUse: number): Resource => ({ resource: name, servers: 1, peakUse, peakAtMs: 14 * 3_600_000 + 5 * 60_000, meanUse, refused: 0, maxWaitMs: 0, meanWaitMs: 0.5 });

function simulated(resources: Resource[], saturation: SimulationSection['saturation'] = []): ResultDocument {
  const r = JSON.parse(readFileSync('test/fixtures/reports/android-launch/result.json', 'utf8')) as ResultDocument;
  r.simulation = {
    model: 'test',
    parameters: {},
    population: { accounts: 1, signups: 0, followEdges: 0, followers: { max: 0, p99: 0, p50: 0 }, celebrities: [] },
    warm: { cold: false, keys: 0, bytes: 0, accounts: 0 },
    events: 1,
    saturation,
    resources,
    delivery: null,
    stepMs: 60_000,
    wall: { ms: 1, eventsPerS: 1, peakRssBytes: 1 },
  };
  return r;
}

describe('the saturation finding of a simulation', () => {
  it('none saturated: the busiest, and the load multiple that would saturate it (about, and at the latest), then the next', () => {
    const doc = simulated([resource('feed-primary', 0.115, 0.026), resource('app', 0.044, 0.044)]);
    const f = unsaturatedText(doc.simulation!)!;
    // report.md's simulation section says it where the saturation table would be.
    expect(simulationSection(doc.simulation!).join('\n')).toContain(f);
    expect(f).toContain('No modelled resource saturated: the busiest was feed-primary at 11.5% busy (at 14:05; 2.6% on average)');
    // 0.95 / 0.115 = 8.26; 0.95 / 0.026 = 36.5; 0.95 / 0.044 = 21.6
    // 0.95 / 0.115 = 8.26; the bound is app's: 0.95 / 0.044 = 21.6 (feed-primary's own would be 36.5).
    expect(f).toContain('At this mix, with the same work per request, feed-primary would saturate first, at about 8.3× this load if its busiest interval grows in proportion; by 22× at the latest something saturates (app\'s average interval would then be 95% busy).');
  });

  it('a steady resource whose mean alone bounds the load below the busiest one\'s peak estimate is named as the first', () => {
    const f = unsaturatedText(simulated([resource('feed-primary', 0.1, 0.01), resource('app', 0.5, 0.5)]).simulation!)!;
    expect(f).toContain('app saturates first, by 1.9× this load at the latest');
  });

  it('an idle model claims no multiple', () => {
    const f = unsaturatedText(simulated([resource('feed-primary', 0, 0)]).simulation!)!;
    expect(f).toContain('No modelled resource saturated: the busiest was feed-primary at 0% busy');
    expect(f).not.toMatch(/saturate first|at the latest/);
  });

  it('ranks below the hot shard and the slowest route among the three findings kept (the report section still has it)', () => {
    // The fixture's hot shard and slowest route outrank it.
    expect(findings(simulated([resource('feed-primary', 0.115, 0.026)])).join('\n')).not.toMatch(/No modelled resource/);
  });

  it('one saturated: it is named with its time and load, and the multiple is not', () => {
    const f = findings(simulated([resource('feed-primary', 1, 0.26)], [{ resource: 'feed-primary', atMs: 12 * 60_000, use: 1, refused: 0, reqPerS: 5914.8 }])).join('\n');
    expect(f).toContain('First to saturate: feed-primary at 00:12 of virtual time (100% busy, with the service answering 5,915 req/s)');
    expect(f).not.toMatch(/No modelled resource|saturates first/);
  });
});
