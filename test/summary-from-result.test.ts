// summary.json rebuilt from result.json alone (what `scalegram report` writes) is byte-identical to
// the one the run computed live, on real runs kept as fixtures.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { summaryFromResult } from '../reports/summary-from-result.ts';
import type { ResultDocument } from '../reports/load-result.ts';

describe('summary.json from result.json', () => {
  for (const dir of ['test/fixtures/compare/cache-node-loss-seed3', 'test/fixtures/compare/cache-node-loss-modulo-seed4']) {
    it(`matches the run's own summary.json byte for byte (${dir.split('/').pop()})`, () => {
      const result = JSON.parse(readFileSync(`${dir}/result.json`, 'utf8')) as ResultDocument;
      expect(JSON.stringify(summaryFromResult(result), null, 2)).toBe(readFileSync(`${dir}/summary.json`, 'utf8'));
    });
  }

  it("honours the run's summaryTrendStats", () => {
    const result = JSON.parse(readFileSync('test/fixtures/compare/cache-node-loss-seed3/result.json', 'utf8')) as ResultDocument & { options: { raw: Record<string, unknown> } };
    result.options.raw = { ...result.options.raw, summaryTrendStats: ['avg', 'p(99)', 'count'] };
    const s = summaryFromResult(result);
    expect(Object.keys(s.metrics.http_req_duration!)).toEqual(['avg', 'p(99)', 'count']);
    expect(s.metrics.http_req_duration!.count).toBeGreaterThan(0);
  });
});
