// JUnit XML from a run's thresholds and from a comparison: the counts and failures CI reads, XML
// escaping (markup, quotes, line breaks, characters XML cannot hold), and validity against the
// Jenkins/Ant junit-10.xsd (test/fixtures/junit/junit-10.xsd) with xmllint-wasm.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateXML } from 'xmllint-wasm';
import { compareRuns, parseCompareOptions, runSide } from '../reports/compare.ts';
import { compareJunitXml, junitXml, xmlAttr, xmlText, type JUnitRunInput } from '../reports/junit.ts';

const SCHEMA = readFileSync('test/fixtures/junit/junit-10.xsd', 'utf8');
const BASE_DIR = 'test/fixtures/compare/cache-node-loss-seed3';
const NEW_DIR = 'test/fixtures/compare/cache-node-loss-modulo-seed4';
const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));

async function schemaErrors(xml: string): Promise<string[]> {
  const r = await validateXML({ xml: [{ fileName: 'junit.xml', contents: xml }], schema: [{ fileName: 'junit-10.xsd', contents: SCHEMA }] });
  return r.valid ? [] : r.errors.map((e) => e.message);
}

/** Attribute values and counts without a DOM: enough to read what CI reads. */
function attr(xml: string, element: string, name: string): string | undefined {
  const tag = new RegExp(`<${element}\\s[^>]*>`).exec(xml)?.[0];
  return tag ? new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1] : undefined;
}

const count = (xml: string, pattern: RegExp): number => (xml.match(pattern) ?? []).length;

const realResult = readJson(`${BASE_DIR}/result.json`) as JUnitRunInput;

describe('junitXml (a run)', () => {
  it('the schema itself rejects what Jenkins would (so a pass below means something)', async () => {
    const errors = await schemaErrors('<testsuites><testsuite name="x"><testcase/></testsuite></testsuites>');
    expect(errors.map((e) => e.replace(/^.*?Element/, 'Element').trim())).toEqual([
      "Element 'testsuite': The attribute 'tests' is required but missing.",
      "Element 'testsuite': The attribute 'failures' is required but missing.",
      "Element 'testsuite': The attribute 'errors' is required but missing.",
      "Element 'testcase': The attribute 'name' is required but missing.",
    ]);
    expect(await schemaErrors('<testsuites><testsuite name="x" tests="1" failures="0" errors="0" time="1e3"/></testsuites>')).toHaveLength(1);
  });

  it("writes one testcase per threshold of a real run's result.json, valid against junit-10.xsd", async () => {
    const xml = junitXml(realResult);
    expect(await schemaErrors(xml)).toEqual([]);
    expect(attr(xml, 'testsuite', 'name')).toBe('cache-node-loss');
    expect(attr(xml, 'testsuite', 'tests')).toBe('3');
    expect(attr(xml, 'testsuite', 'failures')).toBe('0');
    expect(attr(xml, 'testsuite', 'errors')).toBe('0');
    expect(attr(xml, 'testsuite', 'time')).toBe('3.022');
    expect(attr(xml, 'testsuite', 'timestamp')).toBe('2026-11-22T01:22:48');
    expect(xml).toContain('<testcase classname="scalegram.cache-node-loss" name="http_req_duration{name:feed}: p(99)&lt;1000">');
    expect(xml).toContain('<property name="seed" value="3"/>');
    expect(count(xml, /<testcase /g)).toBe(3);
  });

  it('a failed threshold is a <failure> with the observed value; an abortOnFail one says the run stopped', async () => {
    const xml = junitXml({
      scenario: 'celebrity-post',
      startedAt: '2012-04-03T12:00:00.000Z',
      durationMs: 61_000.25,
      aborted: null,
      thresholds: [
        { metric: 'http_req_duration', expression: 'p(95)<100', ok: false, value: 143.25, abortOnFail: false },
        { metric: 'fanout_lag_ms', expression: 'p(99)<5000', ok: false, value: 9800, abortOnFail: true },
        { metric: 'checks', expression: 'rate>0.99', ok: true, value: 1, abortOnFail: false },
      ],
    });
    expect(await schemaErrors(xml)).toEqual([]);
    expect(attr(xml, 'testsuite', 'tests')).toBe('3');
    expect(attr(xml, 'testsuite', 'failures')).toBe('2');
    expect(attr(xml, 'testsuite', 'time')).toBe('61.000');
    expect(xml).toContain('<failure message="p(95)&lt;100 failed: observed 143.3" type="threshold">threshold p(95)&lt;100 on http_req_duration failed: observed 143.3</failure>');
    expect(xml).toMatch(/observed 9800 \(abortOnFail: the run stopped here\)<\/failure>/);
    expect(count(xml, /<failure /g)).toBe(2);
  });

  it('an aborted run adds an errored "run" testcase; a run without thresholds is an empty, valid suite', async () => {
    const aborted = junitXml({ scenario: 'x', aborted: 'interrupted (SIGINT)', thresholds: [] });
    expect(await schemaErrors(aborted)).toEqual([]);
    expect([attr(aborted, 'testsuite', 'tests'), attr(aborted, 'testsuite', 'errors'), attr(aborted, 'testsuite', 'failures')]).toEqual(['1', '1', '0']);
    expect(aborted).toContain('<error message="the run was aborted: interrupted (SIGINT)" type="aborted">');
    const empty = junitXml({});
    expect(await schemaErrors(empty)).toEqual([]);
    expect(attr(empty, 'testsuite', 'tests')).toBe('0');
    expect(attr(empty, 'testsuite', 'timestamp')).toBeUndefined();
  });

  it('escapes markup, quotes and line breaks, and replaces characters XML 1.0 cannot hold', async () => {
    const nasty = 'a<b>&"c"\'d\'\n\tend\u0001\u001b[31m\uFFFE\uD800!';
    const xml = junitXml({
      scenario: 'say "hi" & <bye>',
      thresholds: [{ metric: `http_req_duration{name:${nasty}}`, expression: 'p(95)<1 && "x"', ok: false, value: 2 }],
    });
    expect(await schemaErrors(xml)).toEqual([]);
    expect(xml).toContain('classname="scalegram.say &quot;hi&quot; &amp; &lt;bye&gt;"');
    expect(xml).toContain('name="http_req_duration{name:a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;&#10;&#9;end\uFFFD\uFFFD[31m\uFFFD\uFFFD!}: p(95)&lt;1 &amp;&amp; &quot;x&quot;"');
    expect([...xml].filter((ch) => ch.charCodeAt(0) < 0x20 && !'\t\n\r'.includes(ch))).toEqual([]);
    expect(xmlText(']]> <![CDATA[')).toBe(']]&gt; &lt;![CDATA[');
    expect(xmlAttr('x\r\ny')).toBe('x&#13;&#10;y');
    expect(xmlText('😀 ok')).toBe('😀 ok');
  });
});

describe('compareJunitXml (a comparison)', () => {
  const real = () =>
    compareRuns(runSide(BASE_DIR, readJson(`${BASE_DIR}/summary.json`), readJson(`${BASE_DIR}/result.json`)), runSide(NEW_DIR, readJson(`${NEW_DIR}/summary.json`), readJson(`${NEW_DIR}/result.json`)), parseCompareOptions({}));

  it('has one testcase per gated stat and per threshold, failing exactly where compare fails', async () => {
    const o = real();
    const xml = compareJunitXml(o, { timestamp: new Date('2026-01-02T03:04:05.678Z') });
    expect(await schemaErrors(xml)).toEqual([]);
    const gated = o.rows.filter((r) => r.gated).length;
    expect(attr(xml, 'testsuite', 'tests')).toBe(String(gated + o.missing.length + o.thresholds.filter((t) => t.new !== null || t.verdict === 'missing').length));
    expect(attr(xml, 'testsuite', 'failures')).toBe(String(o.regressions));
    expect(attr(xml, 'testsuite', 'timestamp')).toBe('2026-01-02T03:04:05');
    expect(attr(xml, 'testsuite', 'name')).toBe('scalegram compare cache-node-loss');
    expect(xml).toContain(
      '<testcase classname="scalegram.compare.cache-node-loss" name="shard_skew p(95)">\n      <failure message="p(95) regressed: 6.38 → 7.178 (+0.7978, +12.5%), beyond the 10% tolerance" type="regression">',
    );
    expect(xml).toContain('<testcase classname="scalegram.compare.cache-node-loss.thresholds" name="cache_hit_rate: min&gt;0.3">');
  });

  it('a threshold newly failing is a failure; the same run with a looser tolerance has none', async () => {
    const base = readJson(`${BASE_DIR}/summary.json`) as { metrics: Record<string, { thresholds?: Record<string, boolean> }> };
    const failing = structuredClone(base);
    failing.metrics.http_req_failed!.thresholds!['rate<0.01'] = true;
    const o = compareRuns(runSide('base', base), runSide('new', failing), parseCompareOptions({}));
    const xml = compareJunitXml(o);
    expect(await schemaErrors(xml)).toEqual([]);
    expect(attr(xml, 'testsuite', 'failures')).toBe('1');
    expect(xml).toContain('<failure message="rate&lt;0.01 passed in base and fails in new" type="threshold-regression">');
    const loose = compareJunitXml(compareRuns(runSide('b', base), runSide('n', base), parseCompareOptions({ tolerance: ['50%'] })));
    expect(attr(loose, 'testsuite', 'failures')).toBe('0');
  });

  describe('scalegram compare --junit FILE', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'scalegram-junit-'));
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));

    it('writes the JUnit file (creating its directory) whatever the verdict, and still exits 1 on a regression', async () => {
      const file = join(tmp, 'ci', 'compare.xml');
      const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'compare', BASE_DIR, NEW_DIR, '--junit', file], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status).toBe(1);
      const xml = readFileSync(file, 'utf8');
      expect(await schemaErrors(xml)).toEqual([]);
      expect(attr(xml, 'testsuite', 'failures')).toBe('5');
    });
  });
});
