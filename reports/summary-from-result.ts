// summary.json (k6's --summary-export shape) rebuilt from a result.json alone, so `scalegram report`
// can regenerate it like the other files: the same values the run computed live, from the metric
// snapshots (counters and rates exactly, trends from their encoded HDR histograms), the thresholds
// and the check tree the result keeps.

import { snapshotValues, type MetricSnapshot } from '../scenarios/runner/k6-metrics.ts';
import { exportFromData, scalegramOnly, summaryOptions, type SummaryData, type SummaryExport } from '../scenarios/runner/summary-export.ts';
import type { ResultDocument } from './load-result.ts';

type CheckTree = SummaryData['root_group'];

/** Extra percentiles a stats list asks for beyond avg/min/med/max/p(90)/p(95). */
function extraPercentiles(stats: readonly string[]): number[] {
  return stats.filter((s) => /^p\(/.test(s)).map((s) => Number(s.replace(/\s+/g, '').slice(2, -1))).filter((p) => p !== 90 && p !== 95);
}

export function summaryFromResult(r: ResultDocument): SummaryExport {
  const doc = r as unknown as { options?: { raw?: unknown }; metrics: { metrics: MetricSnapshot[]; declared?: string[] }; checks?: CheckTree; thresholds?: Array<{ metric: string; expression: string; ok: boolean }> };
  const opts = summaryOptions(doc.options?.raw ?? {});
  const stats = opts.summaryTrendStats;
  const extra = extraPercentiles(stats);
  const byKey = new Map(doc.metrics.metrics.map((m) => [m.key, m]));
  const metrics: SummaryData['metrics'] = {};
  const own: SummaryData['metrics'] = {};
  // Older results do not say what the script declared: their metrics all stay with k6's, as written then.
  const declared = doc.metrics.declared ? new Set(doc.metrics.declared) : null;
  const thresholded = new Set((doc.thresholds ?? []).map((t) => byKey.get(t.metric)?.name ?? t.metric.replace(/\{.*$/, '')));
  for (const key of [...byKey.keys()].sort()) {
    const s = byKey.get(key)!;
    let values = snapshotValues(s, r.testRunDurationMs ?? r.durationMs, extra);
    if (s.type === 'trend') {
      const all = values;
      values = {};
      for (const stat of stats) {
        const k = stat.replace(/\s+/g, '');
        values[stat] = k === 'count' ? s.count : (all[k] ?? 0);
      }
    }
    const mine = (doc.thresholds ?? []).filter((t) => t.metric === key);
    const m = { type: s.type, contains: s.kind, values, ...(mine.length ? { thresholds: Object.fromEntries(mine.map((t) => [t.expression, { ok: t.ok }])) } : {}) };
    if (declared && scalegramOnly(s.name, declared, thresholded)) own[key] = m;
    else metrics[key] = m;
  }
  const root: CheckTree = doc.checks ?? ({ name: '', path: '', id: 'd41d8cd98f00b204e9800998ecf8427e', groups: [], checks: [] } as unknown as CheckTree);
  return exportFromData({ root_group: root, options: opts, state: { isStdOutTTY: false, isStdErrTTY: false, testRunDurationMs: r.testRunDurationMs ?? r.durationMs }, metrics, ...(Object.keys(own).length ? { scalegram: { metrics: own } } : {}) });
}
