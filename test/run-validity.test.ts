// A run that served a fraction of its planned load, or whose operation failed for most of its
// requests, cannot end PASSED silently: the summary, both reports, the findings and the sweep say it
// is not valid for conclusions, and why (issue 10: android-launch once PASSED with 92% of its
// iterations dropped and 188 of 369 signups failed).

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findings } from '../reports/findings.ts';
import { reportHtml } from '../reports/report-html.ts';
import { reportMarkdown } from '../reports/report-md.ts';
import { keyFigures, runValidity } from '../scenarios/runner/key-figures.ts';
import type { ResultDocument } from '../scenarios/runner/results.ts';
import { resultSummaryText } from '../scenarios/runner/summary-text.ts';

const fixture = (): ResultDocument => JSON.parse(readFileSync('test/fixtures/reports/android-launch/result.json', 'utf8')) as ResultDocument;

describe('runValidity', () => {
  it('half or more of the planned iterations dropped: not valid, with the share and the counts', () => {
    expect(runValidity({ completed: 60, interrupted: 0, dropped: 40 }, [])).toEqual({ valid: true, reasons: [] });
    expect(runValidity({ completed: 80, interrupted: 0, dropped: 920 }, [])).toEqual({ valid: false, reasons: ['92% of the planned iterations were dropped (920 of 1,000), so it served a fraction of the load planned'] });
  });

  it('a route failing for most of its requests: not valid; half, too few requests, or the runner\'s own sim_ routes are not judged', () => {
    const it0 = { completed: 1000, interrupted: 0, dropped: 0 };
    expect(runValidity(it0, [{ name: 'signup', count: 369, failed: 188 }]).reasons).toEqual(['most signup requests failed (188 of 369)']);
    expect(runValidity(it0, [{ name: 'signup', count: 10, failed: 5 }]).valid).toBe(true);
    expect(runValidity(it0, [{ name: 'signup', count: 9, failed: 9 }]).valid).toBe(true);
    expect(runValidity(it0, [{ name: 'sim_admin', count: 100, failed: 100 }]).valid).toBe(true);
    expect(runValidity({ completed: 1, interrupted: 0, dropped: 9 }, [{ name: 'feed', count: 20, failed: 11 }, { name: 'like', count: 20, failed: 20 }]).reasons).toHaveLength(3);
  });
});

describe('a result that is not valid for conclusions', () => {
  // The report fixture is such a run: a live android-launch at a --speed this machine did not serve.
  const doc = fixture();
  const k = keyFigures(doc);

  it('keeps its thresholds verdict (the exit code is k6\'s) but every view says it is not valid, and why', () => {
    expect(k.passed).toBe(true);
    expect(k.validity.valid).toBe(false);
    const reason = k.validity.reasons[0]!;
    expect(reason).toBe('98.8% of the planned iterations were dropped (33,196 of 33,611), so it served a fraction of the load planned');
    expect(resultSummaryText(doc)).toContain(`⚠ NOT VALID for conclusions, whatever the thresholds say: ${reason}`);
    const md = reportMarkdown(doc);
    expect(md.split('\n').find((l) => l.startsWith('## '))).toBe(`## ⚠️ android-launch: all 4 thresholds passed; NOT VALID for conclusions: ${reason}`);
    expect(reportHtml(doc)).toContain('NOT VALID FOR CONCLUSIONS</span>');
    const f = findings(doc);
    expect(f[0]).toMatch(/^Not valid for conclusions, whatever the thresholds say: 98\.8% of the planned iterations were dropped/);
    // The ordinary dropped-iterations warning is not repeated beside it.
    expect(f.join('\n')).not.toMatch(/of planned iterations were dropped/);
  });

  it('the same run with its load served is valid, and its reports say nothing of it', () => {
    const ok = fixture();
    ok.iterations.dropped = 0;
    expect(keyFigures(ok).validity).toEqual({ valid: true, reasons: [] });
    expect(reportMarkdown(ok)).not.toMatch(/NOT VALID/);
    expect(resultSummaryText(ok)).not.toMatch(/NOT VALID/);
  });
});
