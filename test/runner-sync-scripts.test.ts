// Plain k6 scripts, written synchronously as k6's documentation writes them, run unchanged: the
// sync transform (scenarios/runner/sync-transform.ts) awaits their blocking calls, and each VU has
// its own module state (scenarios/runner/script-loader.ts).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadScript, ScriptLoadError } from '../scenarios/runner/script-loader.ts';
import { transformSyncScript } from '../scenarios/runner/sync-transform.ts';

const tmp = mkdtempSync(join(tmpdir(), 'scalegram-sync-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The CommonJS form esbuild gives a script's k6 imports (what script-loader.ts hands the transform). */
const PRELUDE = 'var import_http = __toESM(require("k6/http"));\nvar import_k6 = require("k6");\n';
const t = (body: string) => transformSyncScript(PRELUDE + body).code.slice(PRELUDE.length);

describe('the sync transform', () => {
  it('awaits a request, sleep and group in a function written synchronously, and makes it async', () => {
    expect(t('function main() { const r = import_http.default.get(u); (0, import_k6.sleep)(1); }')).toBe(
      'async function main() { const r = (await import_http.default.get(u)); (await (0, import_k6.sleep)(1)); }',
    );
    expect(t('function g() { (0, import_k6.group)("x", function () { import_http.default.post(u); }); }')).toBe(
      'async function g() { (await (0, import_k6.group)("x", async function () { (await import_http.default.post(u)); })); }',
    );
  });

  it('makes callers of a function it made async async too, through any depth and through object methods', () => {
    const out = t('function a() { return import_http.default.get(u); }\nconst b = () => a().json();\nvar api = { c() { return b(); } };\nfunction main() { check(api.c()); }');
    expect(out).toBe('async function a() { return (await import_http.default.get(u)); }\nconst b = async () => (await a()).json();\nvar api = { async c() { return (await b()); } };\nasync function main() { check((await api.c())); }');
  });

  it('follows a request into class methods, an IIFE, and a function passed to a function of the script that calls it', () => {
    expect(t('class Api { feed() { return import_http.default.get(u); } }\nfunction main(api) { return api.feed().status; }')).toBe(
      'class Api { async feed() { return (await import_http.default.get(u)); } }\nasync function main(api) { return (await api.feed()).status; }',
    );
    expect(t('function main() { (function () { import_http.default.get(u); })(); }')).toBe('async function main() { (await (async function () { (await import_http.default.get(u)); })()); }');
    expect(t('function retry(fn, n) { for (let i = 0; i < n; i++) { const r = fn(); if (r.status === 200) return r; } }\nfunction main() { return retry(() => import_http.default.get(u), 3); }')).toBe(
      'async function retry(fn, n) { for (let i = 0; i < n; i++) { const r = (await fn()); if (r.status === 200) return r; } }\nasync function main() { return (await retry(async () => (await import_http.default.get(u)), 3)); }',
    );
  });

  it('follows nested object methods, this.method(), f.call(…), reduce and Array.from(x, f)', () => {
    const out = t('var api = { v1: { health() { return import_http.default.get(u); } }, twice() { return [this.v1h(), 1]; }, v1h() { return api.v1.health(); } };\nfunction h() { return import_http.default.get(u); }\nfunction main() { return [h.call(null).status, api.twice()]; }');
    expect(out).toBe('var api = { v1: { async health() { return (await import_http.default.get(u)); } }, async twice() { return [(await this.v1h()), 1]; }, async v1h() { return (await api.v1.health()); } };\nasync function h() { return (await import_http.default.get(u)); }\nasync function main() { return [(await h.call(null)).status, (await api.twice())]; }');
    const r = transformSyncScript(PRELUDE + 'function main(a) { return [a.reduce((n, p) => n + import_http.default.get(p).status, 0), Array.from(a, (p) => import_http.default.get(p))]; }');
    expect(r.code).toContain('(await __sgReduce(a, async (n, p) => n + (await import_http.default.get(p)).status, 0))');
    expect(r.code).toContain('(await __sgFrom(a, async (p) => (await import_http.default.get(p))))');
  });

  it('leaves functions written async as they are, and promises the author chains or combines', () => {
    const src = 'async function main() { const r = import_http.default.get(u); await r; }\nfunction p() { return import_http.default.get(u).then((r) => r.status); }\nfunction q() { return Promise.all([import_http.default.get(u), import_http.default.get(v)]); }';
    expect(t(src)).toBe(src);
  });

  it('replaces an iteration whose callback requests by an awaited one that runs the callbacks in order', () => {
    const r = transformSyncScript(PRELUDE + 'function main() { users.forEach((u) => import_http.default.get(u)); return ids.map(fetchOne, self); }\nfunction fetchOne(id) { return import_http.default.get(id); }');
    expect(r.code).toContain('(await __sgForEach(users, async (u) => (await import_http.default.get(u))))');
    expect(r.code).toContain('(await __sgMap(ids, fetchOne, self))');
    expect(r.code.split('\n').length).toBe(PRELUDE.split('\n').length + 1);
  });

  it('does not touch getters, setters, constructors, generators, or code outside any function', () => {
    const src = 'var o = { get x() { return import_http.default.get(u); } };\nclass C { constructor() { import_http.default.get(u); } }\nfunction* gen() { yield import_http.default.get(u); }\nimport_http.default.get(u);';
    expect(t(src)).toBe(src);
  });

  it('runs the awaited replacements with the semantics of the array methods they replace', async () => {
    const { code } = transformSyncScript(PRELUDE + 'function f(x) { import_http.default.get(x); return x % 2 === 0; }\nfunction main(a) { return [a.map(f), a.filter(f), a.some(f), a.every(f), a.find(f), a.findIndex(f), a.flatMap((x) => [import_http.default.get(x)]), a.reduce((s, x) => s + import_http.default.get(x), 0), a.reduce((s, x) => s + \'-\' + import_http.default.get(x)), a.reduceRight((s, x, i) => s + import_http.default.get(x) * i, 0), Array.from(a, (x, i) => import_http.default.get(x) + i)]; }\nreturn main;');
    const seen: number[] = [];
    const http = { default: { get: async (x: number) => { await new Promise((r) => setTimeout(r, 3 - (x % 3))); seen.push(x); return x; } } };
    const require = (id: string) => (id === 'k6/http' ? http : {});
    const main = new Function('require', '__toESM', code)(require, (m: unknown) => m) as (a: number[]) => Promise<unknown[]>;
    const a = [1, 2, 3, 4];
    // The same results as the array methods themselves give with the same (synchronous) callbacks.
    expect(await main(a)).toEqual([a.map((x) => x % 2 === 0), [2, 4], true, false, 2, 1, [1, 2, 3, 4], 10, (a as Array<number | string>).reduce((s, x) => `${s}-${x}`), a.reduceRight((s, x, i) => s + x * i, 0), Array.from(a, (x, i) => x + i)]);
    // One after another, in order, as a VU would make them.
    expect(seen.slice(0, 4)).toEqual([1, 2, 3, 4]);
  });
});

describe('a plain k6 script under scalegram run', () => {
  it('runs unchanged with k6 semantics: blocking requests, sleep and group, module state per VU, SharedArray and open()', () => {
    const exported = join(tmp, 'export.json');
    const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'run', 'test/fixtures/runs/plain-sync/script.js', '--quiet', '--seed', '3', '--out', join(tmp, 'out'), '--summary-export', exported], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).not.toMatch(/error|warn/i);
    expect(r.status).toBe(0);
    const e = JSON.parse(readFileSync(exported, 'utf8')) as { metrics: Record<string, { thresholds?: Record<string, boolean> }>; root_group: { groups: Record<string, { checks: Record<string, { passes: number; fails: number }> }> } };
    // Every threshold of the script held (in k6's export, `true` marks a failed one).
    const verdicts = Object.values(e.metrics).flatMap((m) => Object.values(m.thresholds ?? {}));
    expect(verdicts).toHaveLength(5);
    expect(verdicts.every((failed) => failed === false)).toBe(true);
    expect(e.root_group.groups.pair!.checks['two responses']).toMatchObject({ passes: 12, fails: 0 });
  }, 120_000);

  it('reports a promise the script left un-awaited that rejects as an error of the run, not a crash, and names the line an iteration threw at', () => {
    const out = join(tmp, 'unfollowed');
    const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'run', 'test/fixtures/runs/unfollowed-call.js', '--quiet', '--seed', '1', '--out', out], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('thrown after the request (a call the script did not wait for)');
    expect(r.stderr).toMatch(/second iteration fails \(at [^)]*unfollowed-call\.js:14:\d+\)/);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { iterations: { completed: number; errors: number; errorMessages: Array<{ message: string }> } };
    expect(result.iterations.errors).toBe(2);
    expect(result.iterations.errorMessages.map((m) => m.message)).toEqual(expect.arrayContaining([expect.stringMatching(/unfollowed-call\.js:14:/), 'thrown after the request']));
  }, 120_000);

  it("answers k6/execution's scenario only inside a scenario: in setup and teardown it throws k6's error", () => {
    const exported = join(tmp, 'exec-outside.json');
    const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'run', 'test/fixtures/runs/exec-outside-scenario.js', '--quiet', '--seed', '1', '--out', join(tmp, 'exec-out'), '--summary-export', exported], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const checks = (JSON.parse(readFileSync(exported, 'utf8')) as { root_group: { checks: Record<string, { passes: number; fails: number }>; groups: Record<string, { checks: Record<string, { passes: number; fails: number }> }> } }).root_group;
    expect(checks.checks['setup: exec.scenario throws as in k6']).toMatchObject({ passes: 1, fails: 0 });
    expect(checks.checks['an iteration: exec.scenario.name is its scenario']).toMatchObject({ passes: 1, fails: 0 });
    expect(checks.groups.teardown!.checks['teardown: exec.scenario throws as in k6']).toMatchObject({ passes: 1, fails: 0 });
  }, 120_000);

  it('gives each VU its own module: init code runs once per VU, with that VU\'s __VU, and VU 0 is the init context', () => {
    const file = join(tmp, 'per-vu.js');
    writeFileSync(file, 'globalThis.__inits = (globalThis.__inits || 0) + 1;\nexport const vu = __VU;\nlet n = 0;\nexport function bump() { return ++n; }\nexport default function () {}\n');
    const script = loadScript(file);
    const a = script.module(1) as { vu: number; bump(): number };
    const b = script.module(2) as { vu: number; bump(): number };
    expect([script.module(0).vu, a.vu, b.vu]).toEqual([0, 1, 2]);
    expect([a.bump(), a.bump(), b.bump()]).toEqual([1, 2, 1]);
    expect(script.module(1)).toBe(a);
    expect((globalThis as { __inits?: number }).__inits).toBe(3);
  });

  it('names the script\'s own files and lines in a stack trace, not the bundle\'s', () => {
    writeFileSync(join(tmp, 'lib.js'), 'export function boom() {\n  null.x;\n}\n');
    writeFileSync(join(tmp, 'bad.js'), "import { boom } from './lib.js';\n\nexport default function () {\n  boom();\n}\n");
    const script = loadScript(join(tmp, 'bad.js'));
    let stack = '';
    try {
      (script.module(1).default as () => void)();
    } catch (e) {
      stack = script.mapStack((e as Error).stack!);
    }
    expect(stack).toContain(`${join(tmp, 'lib.js')}:2:`);
    expect(stack).toContain(`${join(tmp, 'bad.js')}:4:`);
  });

  it('refuses a k6 module it does not implement, a remote module and a script that does not parse, each with its code', () => {
    const load = (name: string, src: string) => {
      writeFileSync(join(tmp, name), src);
      try {
        loadScript(join(tmp, name)).module(0);
        return null;
      } catch (e) {
        return e as Error & { code?: string };
      }
    };
    expect(load('ws.js', "import ws from 'k6/ws';\nexport default function () { ws.connect('ws://x'); }\n")).toMatchObject({ code: 'SG_K6_UNSUPPORTED_MODULE', message: expect.stringContaining('k6/ws is not supported') });
    expect(load('remote.js', "import { randomItem } from 'https://jslib.k6.io/k6-utils/1.2.0/index.js';\nexport default function () { randomItem([1]); }\n")).toMatchObject({ code: 'SG_K6_REMOTE_MODULE' });
    const bad = load('bad.js', 'export default function () { let x = ; }\n');
    expect(bad).toBeInstanceOf(ScriptLoadError);
    expect(bad!.message).toMatch(/bad\.js:1:\d+: Unexpected ";"/);
  });
});
