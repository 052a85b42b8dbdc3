// `scalegram report DIR` as a user runs it: regenerates the reports of a fixture run (report.md
// byte for byte the golden), accepts the path of a result.json, and exits 2 with a message naming
// the problem for a missing directory, one without result.json, bad JSON or a non-Scalegram file.

import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const tmp = mkdtempSync(join(tmpdir(), 'scalegram-report-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function report(...args: string[]) {
  return spawnSync(process.execPath, ['bin/scalegram.mjs', 'report', ...args], { encoding: 'utf8', timeout: 60_000 });
}

function fixtureCopy(run: string): string {
  const dir = join(tmp, run);
  mkdirSync(dir, { recursive: true });
  copyFileSync(join('test/fixtures/reports', run, 'result.json'), join(dir, 'result.json'));
  return dir;
}

describe('scalegram report', () => {
  it('regenerates report.md identical to the golden, report.html and junit.xml, and prints their paths', () => {
    const dir = fixtureCopy('cache-node-loss');
    const r = report(dir);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${join(dir, 'report.md')}\n${join(dir, 'report.html')}\n${join(dir, 'junit.xml')}\n${join(dir, 'summary.json')}\n`);
    expect(readFileSync(join(dir, 'junit.xml'), 'utf8')).toMatch(/<testsuite name="cache-node-loss"[\s\S]*<testcase classname="scalegram.cache-node-loss" name="cache_hit_rate: min&gt;0.3"/);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toBe(readFileSync('test/fixtures/reports/cache-node-loss/expected-report.md', 'utf8'));
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toMatch(/^<!doctype html>[\s\S]*data-plot="latency-feed"[\s\S]*<\/html>\n$/);
  }, 60_000);

  it('accepts the path of a result.json and writes beside it', () => {
    const dir = fixtureCopy('hash-vs-range');
    const r = report(join(dir, 'result.json'));
    expect(r.status).toBe(0);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toBe(readFileSync('test/fixtures/reports/hash-vs-range/expected-report.md', 'utf8'));
  }, 60_000);

  it('exits 2 with a clear message when there is no result to read', () => {
    const missing = report(join(tmp, 'nope'));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe(`scalegram report: ${join(tmp, 'nope')}: no such file or directory\n`);

    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    const none = report(empty);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain(`${empty} has no result.json`);

    const usage = report();
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('give exactly one result directory or result.json');
  }, 60_000);

  it('exits 2 for a file that is not valid JSON or not a Scalegram result, writing nothing', () => {
    const bad = join(tmp, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'result.json'), '{"format": "scalegram-res');
    const r1 = report(bad);
    expect(r1.status).toBe(2);
    expect(r1.stderr).toMatch(/result\.json is not valid JSON/);

    // A k6 summary export (summary.json) is a different document.
    writeFileSync(join(bad, 'result.json'), JSON.stringify({ root_group: { name: '', groups: {}, checks: {} }, metrics: { http_reqs: { count: 10, rate: 2 } } }));
    const r2 = report(bad);
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/is not a Scalegram result \(expected format "scalegram-result\/1", found no "format" field\)/);
    expect(spawnSync('ls', [bad], { encoding: 'utf8' }).stdout.trim()).toBe('result.json');
  }, 60_000);
});
