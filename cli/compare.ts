// `scalegram compare BASE NEW`: reads two runs (result directories or k6 summary exports), prints
// the comparison reports/compare.ts builds, optionally writes it as JUnit, and exits 1 on a
// regression beyond tolerance or a gated stat or threshold NEW lost (2 on bad input). All judgement lives in reports/compare.ts.

import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  CompareInputError,
  compareJson,
  compareMarkdown,
  compareRuns,
  compareText,
  DEFAULT_FLOORS,
  DEFAULT_TOLERANCE,
  parseCompareOptions,
  runSide,
  type RunSide,
} from '../reports/compare.ts';
import { compareJunitXml } from '../reports/junit.ts';
import { parse } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { UsageError } from './usage-error.ts';

const HELP = `Usage: scalegram compare BASE NEW [options]

Compares two runs metric by metric and exits 1 when NEW regressed beyond tolerance.
BASE and NEW are each a result directory (its summary.json; its result.json adds the scenario, seed
and threshold values) or a summary JSON file (k6 --summary-export, or handleSummary's data).
A run's work.json (in its directory, or beside a summary file given; else its result.json) adds the
work each request did, counted by the topology: compared as work_* gauges per route and job kind
(work_db_reads{route:GET /v1/users/self/feed}, work_cache_misses{…}, work_redis_commands{…},
work_jobs_queued{…}, work_response_bytes{…}, …: higher is worse; work_feed_deliveries…: a change
either way; work_requests and work_cache_waits: shown only; floors 0.2 per request, 64 bytes, 0.01
of the failed share).

A gated stat worse by more than the tolerance and the noise floor is a regression. Ratios in [0,1]
where higher is better (cache hit ratios, checks) are judged on their complement, the miss or failed
share: 95% → 86% hits is -9.5% but misses +180%, a regression. A gated stat, or a threshold, that
BASE has and NEW lacks is MISSING, also a regression (e.g. NEW ran with --summary-trend-stats
avg,p(99) and has no p(95)); metrics with no gated stat that only one run has are listed only.

Options:
  --tolerance T            relative change allowed before a worse value is a regression (default ${DEFAULT_TOLERANCE * 100}%)
  --tolerance METRIC=T     the same for one metric or sub-metric (repeatable), e.g. http_req_duration=15%
                           or 'http_req_duration{name:feed}=20%'; checks' failed share may grow by 1%
                           at most (above the ratio floor) unless given here
  --min-delta CLASS=V      noise floor: changes no larger are never regressions (repeatable); classes and
                           defaults: time=${DEFAULT_FLOORS.time}ms, ratio=${DEFAULT_FLOORS.ratio}, count=${DEFAULT_FLOORS.count}, data=${DEFAULT_FLOORS.data / 1000}kB
  --min-delta METRIC=V     the floor of one metric, in its unit (ms for times; suffixes us, ms, s, B, kB, MB)
  --stat S[,S...]          the stats gated for every metric (repeatable), replacing the defaults:
                           trends avg,p(95); counters rate; rates and gauges value
  --stat METRIC=S[,S...]   the stats gated for one metric, e.g. 'http_req_duration=p(95),max'
  --metric METRIC=DIR      which way METRIC is bad: higher-is-worse, lower-is-worse, either or none
  --gate M[,M...]          gate only these metrics (names, keys with tags, or patterns with *; repeatable),
                           e.g. 'work_*,checks,http_req_failed': every other metric is shown with its
                           verdict and never fails the comparison (nor do its thresholds); each must
                           name a metric BASE has (exit 2 otherwise)
  --markdown               print GitHub-flavoured Markdown (for a pull-request comment)
  --json                   print the comparison as JSON
  --junit FILE             also write JUnit XML: a testcase per gated stat and per threshold
  -h, --help               show this help

Exit codes: 0 no regression beyond tolerance, 1 regression (or a gated stat or threshold missing
from NEW), 2 bad usage or input.
`;

function readJson(path: string, label: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`${label}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new UsageError(`${label}: ${path} is not JSON (${(e as Error).message})`);
  }
}

function isResultDocument(doc: unknown): boolean {
  return doc !== null && typeof doc === 'object' && (doc as { format?: unknown }).format === 'scalegram-result/1';
}

/** A side from a result directory, a result.json beside its summary.json, or a summary file. */
function loadSide(given: string, label: 'BASE' | 'NEW'): RunSide {
  const path = resolve(given);
  if (!existsSync(path)) throw new UsageError(`${label}: no such file or directory: ${given}`);
  let summaryPath: string;
  let resultPath: string;
  if (statSync(path).isDirectory()) {
    summaryPath = join(path, 'summary.json');
    resultPath = join(path, 'result.json');
    if (!existsSync(summaryPath)) {
      throw new UsageError(`${label}: ${given} holds no summary.json${existsSync(resultPath) ? ' (only result.json; rerun the scenario to write both)' : ' (not a result directory)'}`);
    }
  } else {
    const doc = readJson(path, label);
    if (isResultDocument(doc)) {
      summaryPath = join(dirname(path), 'summary.json');
      resultPath = path;
      if (!existsSync(summaryPath)) throw new UsageError(`${label}: ${given} is a result.json with no summary.json beside it`);
    } else {
      // A baseline kept as summary.json with its work.json beside it keeps its work figures.
      return side(given, label, doc, undefined, workBeside(path, label));
    }
  }
  let result: unknown;
  if (existsSync(resultPath)) {
    try {
      result = JSON.parse(readFileSync(resultPath, 'utf8')) as unknown;
    } catch (e) {
      process.stderr.write(`scalegram compare: ${label}: ignoring ${resultPath} (${(e as Error).message}); comparing its summary.json alone\n`);
    }
  }
  return side(given, label, readJson(summaryPath, label), result, workBeside(summaryPath, label));
}

/** The work.json in the same directory as `file` (a run's work figures), if there is one. */
function workBeside(file: string, label: string): unknown {
  const path = join(dirname(file), 'work.json');
  return existsSync(path) && path !== file ? readJson(path, label) : undefined;
}

function side(given: string, label: string, summary: unknown, result: unknown, work?: unknown): RunSide {
  try {
    return runSide(given, summary, result, work);
  } catch (e) {
    if (e instanceof CompareInputError) throw new UsageError(`${label}: ${e.message}`);
    throw e;
  }
}

export async function compareCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      tolerance: { type: 'string', multiple: true },
      'min-delta': { type: 'string', multiple: true },
      stat: { type: 'string', multiple: true },
      metric: { type: 'string', multiple: true },
      gate: { type: 'string', multiple: true },
      markdown: { type: 'boolean' },
      json: { type: 'boolean' },
      junit: { type: 'string' },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  if (positionals.length !== 2) throw new UsageError(`give BASE and NEW (got ${positionals.length} argument${positionals.length === 1 ? '' : 's'}; see --help)`);
  if (values.markdown && values.json) throw new UsageError('--markdown and --json are exclusive');
  if (values.junit === '') throw new UsageError('--junit needs a file name');
  let outcome;
  try {
    const options = parseCompareOptions({ tolerance: values.tolerance, minDelta: values['min-delta'], stat: values.stat, metric: values.metric, gate: values.gate });
    const base = loadSide(positionals[0]!, 'BASE');
    const next = loadSide(positionals[1]!, 'NEW');
    outcome = compareRuns(base, next, options);
  } catch (e) {
    if (e instanceof CompareInputError) throw new UsageError(e.message);
    throw e;
  }
  if (values.junit) {
    const file = resolve(values.junit);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, compareJunitXml(outcome, { timestamp: new Date() }));
  }
  process.stdout.write(values.markdown ? compareMarkdown(outcome) : values.json ? compareJson(outcome) : compareText(outcome));
  return outcome.passed ? EXIT.OK : EXIT.FAILED;
}
