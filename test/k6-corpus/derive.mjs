// Derives each corpus script's expected.json from what real k6 recorded beside it (k6-run.json,
// k6-summary.json, k6-output.txt and, for a handleSummary that writes a file, k6-handle-summary.json).
// Nothing here is a figure of its own: the table below only says which of the recorded figures do not
// depend on timing (so another runner must give exactly the same), and everything else is read from
// the recorded files.
//
//   node test/k6-corpus/derive.mjs            # every directory
//   node test/k6-corpus/derive.mjs throws     # only those named
//
// In k6 v0.48's summary export (--summary-export) a threshold maps to `true` when it FAILED: the
// export is made in js/summary-wrapper.js, `oldFormatMetric.thresholds[name] = !threshold.ok`.
// expected.json spells it out as "pass" / "fail".

import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

// Metrics whose presence in the export depends on timing, never on the script: k6 samples `vus` and
// `vus_max` once a second (a run shorter than that has none), and `dropped_iterations` appears only
// when an arrival-rate iteration found no free VU.
const TIMING_DEPENDENT_METRICS = ['vus', 'vus_max', 'dropped_iterations'];

// Per script, what is deterministic:
//   checks: 'exact' — every check's passes and fails are fixed numbers (iteration-count executors);
//           'outcome' — only whether a check ever passed and ever failed is fixed (time-based executors).
//   values: metric → the statistics of it that are fixed numbers.
//   atMost: metric → statistic → factor: the other runner's figure must be at most factor × k6's
//           (for a run that k6 ended early: the end is timing, that it came early is not).
//   handleSummary: the file the script's handleSummary writes (relative to the working directory; k6's
//           copy is kept as k6-handle-summary.json) and the pattern of the line it prints on stdout.
const DETERMINISTIC = {
  'shared-iterations': { checks: 'exact', values: { iterations: ['count'], http_reqs: ['count'] } },
  'per-vu-iterations': { checks: 'exact', values: { iterations: ['count'], http_reqs: ['count'], checks: ['passes', 'fails'], 'checks{check:module state is per VU}': ['passes', 'fails'] } },
  'constant-vus': { checks: 'outcome', values: { http_req_failed: ['passes', 'value'] } },
  'ramping-vus': { checks: 'outcome', values: {} },
  'constant-arrival-rate': { checks: 'outcome', values: { http_req_failed: ['passes', 'value'] } },
  'ramping-arrival-rate': { checks: 'outcome', values: { http_req_failed: ['passes', 'value'] } },
  'custom-metrics': {
    checks: 'exact',
    values: {
      iterations: ['count'],
      my_counter: ['count'],
      'my_counter{kind:even}': ['count'],
      my_gauge: ['value', 'min', 'max'],
      my_rate: ['passes', 'fails', 'value'],
      'my_rate{kind:odd}': ['passes', 'fails', 'value'],
      my_trend: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)'],
      'my_trend{kind:even}': ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)'],
    },
  },
  'no-samples': {
    checks: 'exact',
    values: {
      iterations: ['count'],
      http_reqs: ['count'],
      never_counter: ['count', 'rate'],
      never_rate: ['passes', 'fails', 'value'],
      never_trend: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)'],
      'http_req_duration{name:never}': ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)'],
    },
  },
  'checks-tagged': { checks: 'exact', values: { iterations: ['count'], checks: ['passes', 'fails', 'value'], 'checks{my_tag:x}': ['passes', 'fails', 'value'], 'checks{my_tag:y}': ['passes', 'fails', 'value'] } },
  'abort-on-fail': { checks: 'outcome', values: { http_req_failed: ['passes', 'value'] }, atMost: { iterations: { count: 2 } } },
  'exec-abort': { checks: 'exact', values: { iterations: ['count'], http_reqs: ['count'], teardown_ran: ['count'] } },
  throws: { checks: 'exact', values: { iterations: ['count'], http_reqs: ['count'], checks: ['passes', 'fails'] } },
  'setup-throws': { checks: 'exact', values: { http_reqs: ['count'] } },
  'setup-teardown-summary': {
    checks: 'exact',
    values: { iterations: ['count'], http_reqs: ['count'], teardown_calls: ['count'], checks: ['passes', 'fails'] },
    handleSummary: { file: 'handle-summary.json', stdout: /^handleSummary: .*$/m },
  },
  'shared-array-open': { checks: 'exact', values: { iterations: ['count'], http_reqs: ['count'], checks: ['passes', 'fails'] } },
  'batch-sleep': { checks: 'exact', values: { iterations: ['count'], http_reqs: ['count'], 'http_reqs{status:404}': ['count'], 'http_reqs{name:batch-missing}': ['count'], http_req_failed: ['passes', 'fails', 'value'] } },
};

const readJson = (dir, file) => JSON.parse(readFileSync(join(here, dir, file), 'utf8'));

/** Every check of a summary-export group tree, by its path ("::group::name"). */
function checksOf(group, out = {}) {
  for (const c of Object.values(group.checks ?? {})) out[c.path] = { passes: c.passes, fails: c.fails };
  for (const g of Object.values(group.groups ?? {})) checksOf(g, out);
  return out;
}

/** Every group path of a summary-export group tree. */
function groupsOf(group, out = []) {
  for (const g of Object.values(group.groups ?? {})) {
    out.push(g.path);
    groupsOf(g, out);
  }
  return out;
}

function derive(dir) {
  const spec = DETERMINISTIC[dir];
  if (!spec) throw new Error(`${dir}: not in derive.mjs's table of what is deterministic`);
  const run = readJson(dir, 'k6-run.json');
  const summary = readJson(dir, 'k6-summary.json');

  const thresholds = {};
  for (const [metric, m] of Object.entries(summary.metrics).sort(([a], [b]) => a.localeCompare(b))) {
    if (!m.thresholds) continue;
    thresholds[metric] = Object.fromEntries(Object.entries(m.thresholds).sort(([a], [b]) => a.localeCompare(b)).map(([expr, failed]) => [expr, failed ? 'fail' : 'pass']));
  }

  const checks = {};
  for (const [path, c] of Object.entries(checksOf(summary.root_group))) {
    checks[path] = spec.checks === 'exact'
      ? { exact: true, passes: c.passes, fails: c.fails }
      : { exact: false, passed: c.passes > 0, failed: c.fails > 0 };
  }

  const values = {};
  for (const [metric, stats] of Object.entries(spec.values)) {
    const m = summary.metrics[metric];
    if (!m) throw new Error(`${dir}: ${metric} is not in k6-summary.json`);
    values[metric] = Object.fromEntries(stats.map((s) => {
      if (!(s in m)) throw new Error(`${dir}: ${metric} has no ${s} in k6-summary.json`);
      return [s, m[s]];
    }));
  }

  const atMost = {};
  for (const [metric, stats] of Object.entries(spec.atMost ?? {})) {
    atMost[metric] = Object.fromEntries(Object.entries(stats).map(([s, factor]) => [s, factor * summary.metrics[metric][s]]));
  }

  const metrics = Object.keys(summary.metrics).filter((n) => !TIMING_DEPENDENT_METRICS.includes(n)).sort();

  const expected = {
    derivedFrom: ['k6-run.json', 'k6-summary.json'],
    k6Version: run.k6Version,
    exitCode: run.exitCode,
    thresholds,
    checks,
    groups: groupsOf(summary.root_group).sort(),
    values,
    ...(Object.keys(atMost).length ? { atMost } : {}),
    metrics,
    timingDependentMetrics: TIMING_DEPENDENT_METRICS,
  };

  if (spec.handleSummary) {
    const output = readFileSync(join(here, dir, 'k6-output.txt'), 'utf8');
    const line = output.match(spec.handleSummary.stdout);
    if (!line) throw new Error(`${dir}: no handleSummary line in k6-output.txt`);
    expected.derivedFrom.push('k6-handle-summary.json', 'k6-output.txt');
    expected.handleSummary = {
      file: spec.handleSummary.file,
      content: readJson(dir, 'k6-handle-summary.json'),
      stdoutLine: line[0],
    };
  }

  writeFileSync(join(here, dir, 'expected.json'), `${JSON.stringify(expected, null, 2)}\n`);
  return expected;
}

const dirs = process.argv.length > 2
  ? process.argv.slice(2)
  : readdirSync(here, { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(join(here, d.name, 'k6-run.json'))).map((d) => d.name).sort();
for (const dir of dirs) {
  const e = derive(dir);
  const failed = Object.values(e.thresholds).flatMap((t) => Object.values(t)).filter((v) => v === 'fail').length;
  const total = Object.values(e.thresholds).flatMap((t) => Object.values(t)).length;
  console.log(`${dir}: exit ${e.exitCode}, ${total} thresholds (${failed} failed), ${Object.keys(e.checks).length} checks`);
}
