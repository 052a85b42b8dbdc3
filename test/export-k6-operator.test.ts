// `scalegram export-k6 --k6-operator`: the YAML it writes is a ConfigMap holding the bundle byte for
// byte (and the scenario's assets under keys without '/') and a TestRun that k6-operator's own CRD
// accepts: the TestRun is validated with a real JSON-schema validator (ajv) against the
// openAPIV3Schema of k6-operator v1.6.0's TestRun CRD, a copy of which is in
// test/fixtures/k6-operator/ so the test runs offline. The bundle's open() reads the assets under
// their keys, beside the script, as the pod has them at /test: a scenario run from such a directory
// proves it without k6.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv, type AnySchemaObject, type ValidateFunction } from 'ajv';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

const tmp = mkdtempSync(join(tmpdir(), 'scalegram-k6-operator-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function exportK6(...args: string[]) {
  return spawnSync(process.execPath, ['bin/scalegram.mjs', 'export-k6', ...args], { encoding: 'utf8' });
}

interface ConfigMap {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}
interface TestRun {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: { parallelism: number; script: { configMap: { name: string; file: string } }; arguments: string };
}

/** The two documents of a manifests file, parsed strictly (a YAML error fails the test). */
function manifests(file: string): { text: string; configMap: ConfigMap; testRun: TestRun } {
  const text = readFileSync(file, 'utf8');
  const docs = parseAllDocuments(text);
  expect(Array.isArray(docs)).toBe(true);
  const list = docs as Exclude<typeof docs, { empty: true }>;
  for (const d of list) expect(d.errors, String(d.errors)).toEqual([]);
  expect(list).toHaveLength(2);
  return { text, configMap: list[0]!.toJS() as ConfigMap, testRun: list[1]!.toJS() as TestRun };
}

// The TestRun schema of the CRD, as the API server holds a TestRun to it.
const crd = parse(readFileSync('test/fixtures/k6-operator/k6.io_testruns.yaml', 'utf8')) as {
  spec: { group: string; names: { kind: string }; versions: Array<{ name: string; served: boolean; schema: { openAPIV3Schema: AnySchemaObject } }> };
};
const version = crd.spec.versions.find((v) => v.name === 'v1alpha1')!;

/**
 * A Kubernetes structural schema as JSON Schema. It already is one, with two differences: the
 * x-kubernetes-* keywords (annotations to a JSON-schema validator: list and map semantics, and
 * int-or-string, whose anyOf is written out beside it), and unknown fields, which the API server
 * drops and `kubectl create` refuses (strict field validation) — here every object that lists its
 * properties and does not say otherwise gets additionalProperties: false, so a misspelt field fails.
 */
function structural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(structural);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = k === 'default' || k === 'enum' ? v : structural(v);
  if (out.properties !== undefined && out.additionalProperties === undefined && out['x-kubernetes-preserve-unknown-fields'] !== true) out.additionalProperties = false;
  return out;
}

function testRunValidator(): ValidateFunction {
  // strictTypes off: the int-or-string quantities write `pattern` beside an anyOf of integer and
  // string, which JSON Schema applies to strings only, as Kubernetes does; the other strict checks hold.
  const ajv = new Ajv({ strict: true, strictTypes: false, allErrors: true });
  ajv.addVocabulary(['x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type', 'x-kubernetes-int-or-string', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-embedded-resource']);
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  ajv.addFormat('date-time', (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(s) && !Number.isNaN(Date.parse(s)));
  return ajv.compile(structural(version.schema.openAPIV3Schema) as AnySchemaObject);
}
const validateTestRun = testRunValidator();
const errorsOf = (v: ValidateFunction) => (v.errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join('; ');

/** The ConfigMap's keys written out as files, as the kubelet mounts them in the pod's /test. */
function mountAsVolume(cm: ConfigMap, dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const [k, v] of Object.entries(cm.data ?? {})) writeFileSync(join(dir, k), v);
  for (const [k, v] of Object.entries(cm.binaryData ?? {})) writeFileSync(join(dir, k), Buffer.from(v, 'base64'));
}

const KEY_RE = /^[-._a-zA-Z0-9]{1,253}$/;
const valueBytes = (cm: ConfigMap) =>
  Object.values(cm.data ?? {}).reduce((s, v) => s + Buffer.byteLength(v, 'utf8'), 0) + Object.values(cm.binaryData ?? {}).reduce((s, v) => s + Buffer.from(v, 'base64').length, 0);

describe('the TestRun CRD as a JSON schema', () => {
  it('is k6-operator v1.6.0’s, served as k6.io/v1alpha1 TestRun', () => {
    expect(crd.spec.group).toBe('k6.io');
    expect(crd.spec.names.kind).toBe('TestRun');
    expect(version.served).toBe(true);
    expect(readFileSync('test/fixtures/k6-operator/k6.io_testruns.yaml', 'utf8')).toMatch(/tag: +v1\.6\.0 \(commit cf0ae21f4e26b0dd0f99d763ae72e063b4384f2a/);
  });

  it("accepts k6-operator's own sample TestRun and refuses broken ones, field by field", () => {
    // config/samples/k6_v1alpha1_testrun.yaml at v1.6.0.
    const sample = { apiVersion: 'k6.io/v1alpha1', kind: 'TestRun', metadata: { name: 'testrun-sample' }, spec: { parallelism: 4, script: { configMap: { name: 'k6-test', file: 'test.js' } } } };
    expect(validateTestRun(sample), errorsOf(validateTestRun)).toBe(true);
    const broken: Array<[string, unknown]> = [
      ['parallelism as a string', { ...sample, spec: { ...sample.spec, parallelism: '4' } }],
      ['parallelism beyond int32', { ...sample, spec: { ...sample.spec, parallelism: 2 ** 31 } }],
      ['no parallelism', { ...sample, spec: { script: sample.spec.script } }],
      ['no script', { ...sample, spec: { parallelism: 4 } }],
      ['a configMap without its name', { ...sample, spec: { ...sample.spec, script: { configMap: { file: 'test.js' } } } }],
      ['a misspelt field', { ...sample, spec: { ...sample.spec, paralellism: 4 } }],
      ['arguments as a list', { ...sample, spec: { ...sample.spec, arguments: ['-e', 'A=1'] } }],
    ];
    for (const [what, doc] of broken) expect(validateTestRun(doc), what).toBe(false);
  });
});

describe('scalegram export-k6 --k6-operator', () => {
  it('writes ci-gate as a ConfigMap holding the bundle byte for byte and its photo, and a TestRun of 4 runners the CRD accepts', () => {
    const out = join(tmp, 'ci-gate');
    const r = exportK6('scenarios/ci-gate.ts', '--out', out, '--k6-operator', '--parallelism', '4');
    expect(r.status, r.stderr).toBe(0);
    const yamlFile = join(out, 'ci-gate-k6-operator.yaml');
    expect(r.stdout.trim().split('\n')).toEqual([join(out, 'ci-gate.js'), yamlFile]);
    const { text, configMap: cm, testRun: tr } = manifests(yamlFile);

    // The TestRun: valid, 4 runners, pointing at the ConfigMap's script key.
    expect(validateTestRun(tr), errorsOf(validateTestRun)).toBe(true);
    expect(tr.apiVersion).toBe('k6.io/v1alpha1');
    expect(tr.kind).toBe('TestRun');
    expect(tr.metadata.name).toBe('ci-gate');
    expect(tr.metadata.namespace).toBeUndefined();
    expect(tr.spec.parallelism).toBe(4);
    expect(tr.spec.script.configMap).toEqual({ name: cm.metadata.name, file: 'ci-gate.js' });
    // The arguments hold a server URL and token for the user to replace, each explained in a comment above them.
    expect(tr.spec.arguments).toMatch(/^-e BASE_URL=\S+ -e ADMIN_TOKEN=\S+$/);
    const comments = text.slice(text.lastIndexOf('---')).split('\n').filter((l) => /^\s*#/.test(l)).join('\n');
    expect(comments).toMatch(/# +BASE_URL +the `scalegram serve`/);
    expect(comments).toMatch(/# +ADMIN_TOKEN +that server's admin token/);
    expect(comments).toMatch(/also reads: .*SCALE/);

    // The ConfigMap: the script is the bundle's bytes, the photo its bytes, within 1 MiB.
    expect(cm.apiVersion).toBe('v1');
    expect(cm.kind).toBe('ConfigMap');
    expect(cm.metadata.name).toBe('ci-gate-script');
    const bundle = readFileSync(join(out, 'ci-gate.js'));
    expect(Buffer.from(cm.data!['ci-gate.js']!, 'utf8').equals(bundle)).toBe(true);
    expect(Object.keys(cm.binaryData!)).toEqual(['assets__photo.jpg']);
    const photo = readFileSync('scenarios/assets/photo.jpg');
    expect(Buffer.from(cm.binaryData!['assets__photo.jpg']!, 'base64').equals(photo)).toBe(true);
    for (const k of [...Object.keys(cm.data!), ...Object.keys(cm.binaryData!)]) expect(k).toMatch(KEY_RE);
    const total = valueBytes(cm);
    expect(total).toBe(bundle.length + photo.length);
    expect(total).toBeLessThanOrEqual(1024 * 1024);
    expect(text).toContain(`ConfigMap size: ${total.toLocaleString('en-US')} of the 1,048,576 bytes`);

    // The bundle opens the photo under its key, and that key is a file beside it (the pod's /test).
    const js = bundle.toString('utf8');
    expect(js).toContain('var photo = open("./assets/photo.jpg", "b")');
    expect(js).toContain('var ASSET_KEYS = { "assets/photo.jpg": "assets__photo.jpg" }');
    expect(js).toContain('globalThis.open(mapped, ...rest)');
    expect(readFileSync(join(out, 'assets__photo.jpg')).equals(photo)).toBe(true);
    // Still a module that imports only k6.
    expect([...js.matchAll(/^import .* from "([^"]+)";$/gm)].every((m) => m[1] === 'k6' || m[1]!.startsWith('k6/'))).toBe(true);
  }, 60_000);

  it('writes celebrity-post with a name and a namespace of its own', () => {
    const out = join(tmp, 'celebrity');
    const r = exportK6('scenarios/celebrity-post.ts', '--out', out, '--k6-operator', '--parallelism', '4', '--name', 'celeb-run', '--namespace', 'load-tests');
    expect(r.status, r.stderr).toBe(0);
    const { configMap: cm, testRun: tr } = manifests(join(out, 'celebrity-post-k6-operator.yaml'));
    expect(validateTestRun(tr), errorsOf(validateTestRun)).toBe(true);
    expect(tr.metadata).toMatchObject({ name: 'celeb-run', namespace: 'load-tests' });
    expect(cm.metadata).toMatchObject({ name: 'celeb-run-script', namespace: 'load-tests' });
    expect(tr.spec.parallelism).toBe(4);
    expect(tr.spec.script.configMap).toEqual({ name: 'celeb-run-script', file: 'celebrity-post.js' });
    expect(Buffer.from(cm.data!['celebrity-post.js']!, 'utf8').equals(readFileSync(join(out, 'celebrity-post.js')))).toBe(true);
    expect(Buffer.from(cm.binaryData!['assets__photo.jpg']!, 'base64').equals(readFileSync('scenarios/assets/photo.jpg'))).toBe(true);
  }, 60_000);

  it('runs one runner by default; without --k6-operator the bundle is the plain one', () => {
    const out = join(tmp, 'default');
    const r = exportK6('scenarios/launch-day.ts', '--out', out, '--k6-operator');
    expect(r.status, r.stderr).toBe(0);
    const { testRun: tr } = manifests(join(out, 'launch-day-k6-operator.yaml'));
    expect(validateTestRun(tr), errorsOf(validateTestRun)).toBe(true);
    expect(tr.spec.parallelism).toBe(1);
    const plain = join(tmp, 'plain');
    expect(exportK6('scenarios/launch-day.ts', '--out', plain).status).toBe(0);
    expect(readFileSync(join(plain, 'launch-day.js'), 'utf8')).not.toContain('ASSET_KEYS');
    expect(existsSync(join(plain, 'launch-day-k6-operator.yaml'))).toBe(false);
    expect(existsSync(join(plain, 'assets', 'photo.jpg'))).toBe(true);
  }, 60_000);

  it.each([['0'], ['-1'], ['x'], ['1.5'], ['']])('refuses --parallelism %j with exit 2 and says why, writing nothing', (value) => {
    const out = join(tmp, `bad-parallelism-${value || 'empty'}`);
    const r = exportK6('scenarios/ci-gate.ts', '--out', out, '--k6-operator', '--parallelism', value);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`scalegram export-k6: --parallelism must be a whole number of runner pods, 1 or more (got "${value}")`);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses the k6-operator options without --k6-operator, and names that Kubernetes would refuse', () => {
    const r = exportK6('scenarios/ci-gate.ts', '--out', join(tmp, 'x'), '--parallelism', '4');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--parallelism goes with --k6-operator/);
    const badName = exportK6('scenarios/ci-gate.ts', '--out', join(tmp, 'x'), '--k6-operator', '--name', 'CI_gate');
    expect(badName.status).toBe(2);
    expect(badName.stderr).toMatch(/--name must be a Kubernetes name of at most 51 characters.*\(got "CI_gate"\)/);
    const badNs = exportK6('scenarios/ci-gate.ts', '--out', join(tmp, 'x'), '--k6-operator', '--namespace', 'Load');
    expect(badNs.status).toBe(2);
    expect(badNs.stderr).toMatch(/--namespace must be a Kubernetes namespace/);
    expect(existsSync(join(tmp, 'x'))).toBe(false);
  });

  describe('a scenario with a text asset, a binary one in a subfolder, and one too large', () => {
    const dir = join(tmp, 'scenario');
    mkdirSync(join(dir, 'assets', 'sub'), { recursive: true });
    // Init code checks what open() gave it: a wrong read throws, and the run exits 107.
    writeFileSync(
      join(dir, 'assets-check.js'),
      [
        "import { check } from 'k6';",
        "const csv = open('./assets/users.csv');",
        "const bin = new Uint8Array(open('./assets/sub/data.bin', 'b'));",
        "if (csv !== 'id,name\\n1,ann\\n') throw new Error('users.csv read wrong: ' + JSON.stringify(csv));",
        "if (bin.length !== 256 || bin[255] !== 255) throw new Error('data.bin read wrong: ' + bin.length);",
        'export const options = { iterations: 1 };',
        "export default function () { check(bin, { 'data.bin read': (b) => b.length === 256 }); }",
        '',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'assets', 'users.csv'), 'id,name\n1,ann\n');
    writeFileSync(join(dir, 'assets', 'sub', 'data.bin'), Buffer.from(Array.from({ length: 256 }, (_, i) => i)));

    it('puts text in data and binary in binaryData, and the bundle reads both from the pod’s /test layout', () => {
      const out = join(tmp, 'assets-out');
      const r = exportK6(join(dir, 'assets-check.js'), '--out', out, '--k6-operator');
      expect(r.status, r.stderr).toBe(0);
      const { configMap: cm, testRun: tr } = manifests(join(out, 'assets-check-k6-operator.yaml'));
      expect(validateTestRun(tr), errorsOf(validateTestRun)).toBe(true);
      expect(Object.keys(cm.data!).sort()).toEqual(['assets-check.js', 'assets__users.csv']);
      expect(cm.data!['assets__users.csv']).toBe('id,name\n1,ann\n');
      expect(Object.keys(cm.binaryData!)).toEqual(['assets__sub__data.bin']);
      // The ConfigMap mounted as k6-operator mounts it, with nothing else: Scalegram's runner (whose
      // open() resolves paths against the script, as k6's does) runs the bundle from there.
      const pod = join(tmp, 'pod', 'test');
      mountAsVolume(cm, pod);
      const run = spawnSync(process.execPath, ['bin/scalegram.mjs', 'run', join(pod, 'assets-check.js'), '-q', '--out', join(tmp, 'pod-run')], { encoding: 'utf8' });
      expect(run.status, run.stdout + run.stderr).toBe(0);
      const summary = JSON.parse(readFileSync(join(tmp, 'pod-run', 'summary.json'), 'utf8')) as { root_group: { checks: Record<string, { passes: number; fails: number }> } };
      expect(summary.root_group.checks['data.bin read']).toMatchObject({ passes: 1, fails: 0 });
    }, 120_000);

    it('refuses, with exit 107 and nothing written, a ConfigMap over 1 MiB', () => {
      writeFileSync(join(dir, 'assets', 'big.bin'), Buffer.alloc(1024 * 1024, 7));
      const out = join(tmp, 'too-big');
      const r = exportK6(join(dir, 'assets-check.js'), '--out', out, '--k6-operator');
      rmSync(join(dir, 'assets', 'big.bin'));
      expect(r.status).toBe(107);
      expect(r.stderr).toMatch(/error: the ConfigMap would hold 1,0[45]\d,\d{3} bytes \(1\.00 MiB; largest: assets__big\.bin 1,048,576, .*\), over Kubernetes' limit of 1,048,576 bytes \(1 MiB\) per ConfigMap/);
      expect(existsSync(out)).toBe(false);
    }, 60_000);
  });
});
