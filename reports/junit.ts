// JUnit XML, so CI systems show a run's thresholds and a comparison's verdicts as test results:
// `junitXml(result)` from a parsed result.json (one testcase per threshold) and `compareJunitXml`
// from a compare outcome (one per gated metric stat, one per threshold). Pure: strings in, XML out;
// the output validates against the Jenkins/Ant junit-10.xsd (test/fixtures/junit/junit-10.xsd).

import { formatDelta, formatFloor, formatNumber, formatPercent, formatRelative, formatValue, type CompareOutcome } from './compare.ts';

/** The parts of a result.json (format 'scalegram-result/1') JUnit needs: any parsed result.json fits. */
export interface JUnitRunInput {
  scenario?: string;
  script?: string;
  seed?: number | string;
  speed?: number;
  scale?: number;
  target?: string;
  /** ISO 8601 start of the run. */
  startedAt?: string;
  durationMs?: number;
  /** Why the run stopped early (null or absent when it ran to the end). */
  aborted?: string | null;
  thresholds?: ReadonlyArray<{ metric: string; expression: string; ok: boolean; value?: number | null; abortOnFail?: boolean }>;
}

// XML 1.0 cannot carry these even escaped: C0 controls other than tab, LF and CR, U+FFFE/U+FFFF and
// unpaired surrogates. They become U+FFFD so the document stays well-formed and the rest survives.
// eslint-disable-next-line no-control-regex
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text content: &, < and > escaped (and `]]>` cannot form). */
export function xmlText(text: string): string {
  return text.replace(NOT_XML, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** An attribute value in double quotes; tabs and line breaks as character references so parsers keep them. */
export function xmlAttr(text: string): string {
  return xmlText(text).replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;');
}

/** Seconds with millisecond precision, in the plain decimal form junit-10.xsd's SUREFIRE_TIME allows. */
function seconds(ms: number): string {
  return (Math.max(0, ms) / 1000).toFixed(3);
}

/** ISO 8601 without zone or fraction, as Ant writes it (UTC here); undefined when unreadable. */
function timestamp(iso: string | Date | undefined): string | undefined {
  if (iso === undefined) return undefined;
  const d = iso instanceof Date ? iso : new Date(iso);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString().slice(0, 19);
}

interface TestCase {
  classname: string;
  name: string;
  failure?: { message: string; type: string; detail: string };
  error?: { message: string; type: string; detail: string };
  out?: string;
}

interface Suite {
  name: string;
  timestamp?: string;
  timeMs?: number;
  properties: Array<[string, string]>;
  cases: TestCase[];
}

function attrs(pairs: Array<[string, string | number | undefined]>): string {
  return pairs
    .filter((p): p is [string, string | number] => p[1] !== undefined)
    .map(([k, v]) => ` ${k}="${xmlAttr(String(v))}"`)
    .join('');
}

function render(suite: Suite): string {
  const tests = suite.cases.length;
  const failures = suite.cases.filter((c) => c.failure).length;
  const errors = suite.cases.filter((c) => c.error).length;
  const time = suite.timeMs !== undefined ? seconds(suite.timeMs) : undefined;
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>'];
  lines.push(`<testsuites${attrs([['name', suite.name], ['tests', tests], ['failures', failures], ['errors', errors], ['time', time]])}>`);
  lines.push(`  <testsuite${attrs([['name', suite.name], ['tests', tests], ['failures', failures], ['errors', errors], ['skipped', 0], ['time', time], ['timestamp', suite.timestamp]])}>`);
  if (suite.properties.length) {
    lines.push('    <properties>');
    for (const [name, value] of suite.properties) lines.push(`      <property${attrs([['name', name], ['value', value]])}/>`);
    lines.push('    </properties>');
  }
  for (const c of suite.cases) {
    const head = `    <testcase${attrs([['classname', c.classname], ['name', c.name]])}`;
    const body: string[] = [];
    for (const [tag, f] of [['error', c.error], ['failure', c.failure]] as const) {
      if (f) body.push(`      <${tag}${attrs([['message', f.message], ['type', f.type]])}>${xmlText(f.detail)}</${tag}>`);
    }
    if (c.out) body.push(`      <system-out>${xmlText(c.out)}</system-out>`);
    lines.push(body.length ? `${head}>\n${body.join('\n')}\n    </testcase>` : `${head}/>`);
  }
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}

function observed(value: number | null | undefined): string {
  return typeof value === 'number' && Number.isFinite(value) ? formatNumber(value) : 'no value (the metric had no samples)';
}

/**
 * A run's thresholds as JUnit: one testsuite named for the scenario, one testcase per threshold
 * (classname `scalegram.<scenario>`, name `metric: expression`) that fails with the observed value.
 * A run that stopped early adds one testcase, `run`, with an error saying why.
 */
export function junitXml(result: JUnitRunInput): string {
  const scenario = result.scenario || 'scenario';
  const classname = `scalegram.${scenario}`;
  const cases: TestCase[] = (result.thresholds ?? []).map((t) => {
    const c: TestCase = { classname, name: `${t.metric}: ${t.expression}` };
    if (!t.ok) {
      const value = observed(t.value);
      c.failure = {
        message: `${t.expression} failed: observed ${value}`,
        type: 'threshold',
        detail: `threshold ${t.expression} on ${t.metric} failed: observed ${value}${t.abortOnFail ? ' (abortOnFail: the run stopped here)' : ''}`,
      };
    } else if (typeof t.value === 'number') {
      c.out = `observed ${formatNumber(t.value)}`;
    }
    return c;
  });
  if (result.aborted) {
    cases.push({ classname, name: 'run', error: { message: `the run was aborted: ${result.aborted}`, type: 'aborted', detail: `the run stopped before its scenarios finished: ${result.aborted}` } });
  }
  const properties: Array<[string, string]> = [];
  for (const key of ['script', 'seed', 'speed', 'scale', 'target'] as const) {
    const v = result[key];
    if (v !== undefined && v !== null) properties.push([key, String(v)]);
  }
  return render({ name: scenario, timestamp: timestamp(result.startedAt), timeMs: result.durationMs, properties, cases });
}

/**
 * A comparison as JUnit: one testcase per gated metric stat (failing when it regressed beyond
 * tolerance) and one per threshold NEW holds (failing when it passed in BASE and fails in NEW), and
 * one failing when NEW is not valid for conclusions, so the failures are exactly what makes
 * `scalegram compare` exit 1.
 */
export function compareJunitXml(o: CompareOutcome, opts: { timestamp?: Date | string } = {}): string {
  const scenario = o.new.scenario ?? o.base.scenario;
  const classname = `scalegram.compare${scenario ? `.${scenario}` : ''}`;
  const cases: TestCase[] = [];
  for (const r of o.rows.filter((row) => row.gated)) {
    const change = `${formatValue(r.base, r)} → ${formatValue(r.new, r)} (${formatDelta(r)}, ${formatRelative(r.relative)})`;
    const c: TestCase = { classname, name: `${r.metric} ${r.stat}` };
    if (r.verdict === 'regressed') {
      c.failure = {
        message: `${r.stat} regressed: ${change}, beyond the ${formatPercent(r.tolerance)} tolerance`,
        type: 'regression',
        detail: `${r.metric} ${r.stat}: base ${formatValue(r.base, r)}, new ${formatValue(r.new, r)}; ${r.direction}; tolerance ${formatPercent(r.tolerance)}, noise floor ${formatFloor(r)}`,
      };
    } else {
      c.out = `${r.verdict}: ${change}; tolerance ${formatPercent(r.tolerance)}`;
    }
    cases.push(c);
  }
  // A gated stat that BASE has and NEW lost fails, as it makes compare exit 1.
  for (const r of o.missing) {
    cases.push({ classname, name: `${r.metric} ${r.stat}`, failure: { message: `${r.stat} missing from new: ${r.reason}`, type: 'missing', detail: `${r.metric} ${r.stat}: base ${formatValue(r.base, r)}, no value in new (${r.reason})` } });
  }
  for (const t of o.thresholds.filter((th) => th.new !== null || th.verdict === 'missing')) {
    const c: TestCase = { classname: `${classname}.thresholds`, name: `${t.metric}: ${t.expression}` };
    const value = t.value !== undefined ? ` (observed ${formatNumber(t.value)})` : '';
    if (t.verdict === 'regressed') {
      c.failure = { message: `${t.expression} passed in base and fails in new${value}`, type: 'threshold-regression', detail: `threshold ${t.expression} on ${t.metric}: passed in base, fails in new${value}` };
    } else if (t.verdict === 'missing') {
      c.failure = { message: `${t.expression} ${String(t.base)} in base and missing from new`, type: 'threshold-missing', detail: `threshold ${t.expression} on ${t.metric}: in base, not in new` };
    } else {
      c.out = `${t.verdict}: ${t.new} in new, ${t.base ?? 'absent'} in base${value}`;
    }
    cases.push(c);
  }
  // A NEW run that served less than half its planned load measures nothing: it fails, as compare does.
  if (o.invalid.new.length) cases.push({ classname, name: 'new run valid for conclusions', failure: { message: `NEW is not valid for conclusions: ${o.invalid.new.join('; ')}`, type: 'invalid-run', detail: o.invalid.new.join('\n') } });
  const properties: Array<[string, string]> = [
    ['base', o.base.source],
    ['new', o.new.source],
    ['tolerance', formatPercent(o.options.tolerance)],
  ];
  return render({ name: `scalegram compare${scenario ? ` ${scenario}` : ''}`, timestamp: timestamp(opts.timestamp), properties, cases });
}
