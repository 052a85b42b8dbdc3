// `scalegram export-k6 --k6-operator`: the bundle as Kubernetes manifests for k6-operator
// (github.com/grafana/k6-operator): a ConfigMap holding the script and the scenario's assets, and a
// TestRun (k6.io/v1alpha1, as the CRD of k6-operator v1.6.0 defines it) that runs it on N pods.
//
// How the files reach k6: k6-operator mounts the ConfigMap named by spec.script.configMap as a volume
// at /test in the initializer and runner pods, one file per key, and runs `k6 run /test/<file>`. A
// ConfigMap key cannot hold '/', so './assets/photo.jpg' cannot be a file there. The TestRun could
// mount the ConfigMap a second time with `items` at /test/assets (spec.runner.volumes and
// spec.initializer.volumes take core/v1 volumes), but that nests a mount inside the read-only /test
// mount, needs the same volume on both pods, and cannot be tried without a cluster. The bundle maps the
// paths instead: each asset is the key `assets__photo.jpg`, and an `open` injected into the bundle
// (esbuild's `inject`, which replaces the unbound global `open` wherever the scenario calls it) reads
// that key beside the script. The export writes the same flattened files beside the bundle, so the
// directory it writes has the layout of the pod's /test and `k6 run DIR/<scenario>.js` works as well.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { Plugin } from 'esbuild';
import { Document, isScalar, parseAllDocuments, type Pair, type YAMLMap } from 'yaml';
import { UsageError } from './usage-error.ts';

/** The k6-operator release whose TestRun CRD the manifests follow (test/fixtures/k6-operator/). */
export const K6_OPERATOR_VERSION = 'v1.6.0';
/** Kubernetes refuses a ConfigMap whose values (data and decoded binaryData) exceed 1 MiB in total. */
export const CONFIGMAP_MAX_BYTES = 1024 * 1024;
/** Largest runner count: spec.parallelism is an int32. */
const MAX_PARALLELISM = 2 ** 31 - 1;
/** A ConfigMap key: letters, digits, '-', '_', '.', at most 253 characters (and not '.' or '..'). */
const KEY_RE = /^[-._a-zA-Z0-9]{1,253}$/;
/** A DNS-1035 label, which Service names must be (k6-operator names one `<name>-service-<i>` per runner). */
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** A DNS-1123 label: a namespace. */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A file of the scenario's assets/ folder as the pod sees it: the key it is mounted under. */
export interface PodAsset {
  /** The path the scenario opens, relative to it, with '/' separators: `assets/photo.jpg`. */
  path: string;
  /** Its ConfigMap key, a file in the pod's /test: `assets__photo.jpg`. */
  key: string;
  bytes: Buffer;
}

export interface OperatorOptions {
  /** The TestRun's name; the ConfigMap is `<name>-script`. */
  name: string;
  namespace: string | null;
  parallelism: number;
}

/** The --parallelism, --name and --namespace options, checked (a usage error names what is wrong). */
export function operatorOptions(values: { parallelism?: string; name?: string; namespace?: string }, scenario: string): OperatorOptions {
  let parallelism = 1;
  if (values.parallelism !== undefined) {
    const v = values.parallelism.trim();
    parallelism = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!(parallelism >= 1)) throw new UsageError(`--parallelism must be a whole number of runner pods, 1 or more (got "${values.parallelism}")`);
    if (parallelism > MAX_PARALLELISM) throw new UsageError(`--parallelism must be at most ${MAX_PARALLELISM}, spec.parallelism being an int32 (got ${values.parallelism})`);
  }
  // k6-operator names jobs `<name>-initializer` and `<name>-<i>`, and services `<name>-service-<i>`:
  // each must stay a 63-character label.
  const maxName = 63 - Math.max('-initializer'.length, '-service-'.length + String(parallelism).length);
  let name: string;
  if (values.name !== undefined) {
    name = values.name;
    if (!DNS1035_LABEL.test(name) || name.length > maxName) {
      throw new UsageError(
        `--name must be a Kubernetes name of at most ${maxName} characters: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit (got "${name}")`,
      );
    }
  } else {
    name = scenario.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^[^a-z]+/, '').replace(/-+$/, '').slice(0, maxName).replace(/-+$/, '');
    if (!DNS1035_LABEL.test(name)) throw new UsageError(`the scenario's file name "${scenario}" makes no Kubernetes name: give one with --name`);
  }
  const namespace = values.namespace ?? null;
  if (namespace !== null && !(DNS1123_LABEL.test(namespace) && namespace.length <= 63)) {
    throw new UsageError(`--namespace must be a Kubernetes namespace: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit (got "${namespace}")`);
  }
  return { name, namespace, parallelism };
}

/** The files under `dir/assets` (none if it does not exist), with the keys the pod has them under. */
export function podAssets(scenarioDir: string): PodAsset[] {
  const root = join(scenarioDir, 'assets');
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() || (entry.isSymbolicLink() && statSync(full).isFile())) files.push(full);
    }
  };
  try {
    if (!statSync(root).isDirectory()) return [];
  } catch {
    return [];
  }
  walk(root);
  const byKey = new Map<string, string>();
  return files.map((full) => {
    const path = relative(scenarioDir, full).split(sep).join('/');
    const key = path.split('/').join('__');
    if (!KEY_RE.test(key) || key === '.' || key === '..') {
      throw new BundleError(`the asset ${path} cannot be a ConfigMap key ("${key}"): keep asset file names to letters, digits, '-', '_' and '.'`);
    }
    const other = byKey.get(key);
    if (other !== undefined) throw new BundleError(`the assets ${other} and ${path} would both be the ConfigMap key "${key}": rename one`);
    byKey.set(key, path);
    return { path, key, bytes: readFileSync(full) };
  });
}

/** The scenario cannot be packaged for k6-operator (exit 107, as a script that cannot be bundled). */
export class BundleError extends Error {}

const OPEN_MODULE = 'scalegram:k6-operator-open';

/**
 * An esbuild plugin and the `inject` entry that make the bundle's open('./assets/x') read the
 * ConfigMap key `assets__x` beside the script. Paths that are not assets reach k6's open() as written.
 */
export function openRewrite(assets: readonly PodAsset[]): { plugin: Plugin; inject: string[] } {
  const keys = Object.fromEntries(assets.map((a) => [a.path, a.key]));
  const contents = [
    "// scalegram export-k6 --k6-operator: k6-operator mounts the ConfigMap at /test, one file per key, and a",
    "// key cannot hold '/': open('./assets/photo.jpg') reads the key assets__photo.jpg beside the script.",
    `var ASSET_KEYS = ${JSON.stringify(keys)};`,
    'export function open(path, ...rest) {',
    "  var rel = typeof path === 'string' ? path.replace(/^(?:\\.\\/)+/, '') : path;",
    "  var mapped = Object.prototype.hasOwnProperty.call(ASSET_KEYS, rel) ? './' + ASSET_KEYS[rel] : path;",
    '  return globalThis.open(mapped, ...rest);',
    '}',
    '',
  ].join('\n');
  const plugin: Plugin = {
    name: 'scalegram-k6-operator-open',
    setup(build) {
      build.onResolve({ filter: /^scalegram:k6-operator-open$/ }, (args) => ({ path: args.path, namespace: 'scalegram' }));
      build.onLoad({ filter: /.*/, namespace: 'scalegram' }, () => ({ contents, loader: 'js' }));
    },
  };
  return { plugin, inject: [OPEN_MODULE] };
}

/** A value goes in `data` when it is UTF-8 text without control characters other than tab and newlines. */
function isText(bytes: Buffer): boolean {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return false;
  }
  // eslint-disable-next-line no-control-regex
  return !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text);
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;

/** The `-e` variables a bundle reads (`__ENV.X`), the runner's own aside. */
export function envKeys(script: string): string[] {
  const keys = new Set<string>();
  for (const m of script.matchAll(/__ENV(?:\.([A-Za-z_]\w*)|\[\s*["']([A-Za-z_]\w*)["']\s*\])/g)) keys.add((m[1] ?? m[2])!);
  keys.delete('SCALEGRAM_RUNNER');
  return [...keys].sort();
}

export interface ManifestInput {
  /** The scenario's file name, for comments: `ci-gate.ts`. */
  scenarioFile: string;
  /** The bundle's file name, its ConfigMap key: `ci-gate.js`. */
  scriptKey: string;
  script: string;
  assets: readonly PodAsset[];
  options: OperatorOptions;
}

/**
 * The YAML file: a ConfigMap (the script and the assets) and a TestRun that runs it. Throws a
 * BundleError when the ConfigMap would exceed Kubernetes' 1 MiB.
 */
export function k6OperatorManifests(input: ManifestInput): string {
  const { options: o, scriptKey, script, assets } = input;
  const configMapName = `${o.name}-script`;
  if (assets.some((a) => a.key === scriptKey)) throw new BundleError(`the asset key "${scriptKey}" is the script's own: rename the asset`);

  const data: Record<string, string> = { [scriptKey]: script };
  const binaryData: Record<string, string> = {};
  const sizes: Array<[string, number]> = [[scriptKey, Buffer.byteLength(script, 'utf8')]];
  for (const a of assets) {
    if (isText(a.bytes)) data[a.key] = a.bytes.toString('utf8');
    else binaryData[a.key] = a.bytes.toString('base64');
    sizes.push([a.key, a.bytes.length]);
  }
  const total = sizes.reduce((s, [, n]) => s + n, 0);
  if (total > CONFIGMAP_MAX_BYTES) {
    const largest = [...sizes].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, n]) => `${k} ${n.toLocaleString('en-US')}`).join(', ');
    throw new BundleError(
      `the ConfigMap would hold ${total.toLocaleString('en-US')} bytes (${mib(total)}; largest: ${largest}), over Kubernetes' limit of ` +
        `${CONFIGMAP_MAX_BYTES.toLocaleString('en-US')} bytes (1 MiB) per ConfigMap: make the scenario's assets smaller, or put them on a volume the TestRun mounts (spec.runner.volumes)`,
    );
  }

  const metadata = (name: string) => ({ name, ...(o.namespace !== null ? { namespace: o.namespace } : {}), labels: { 'app.kubernetes.io/managed-by': 'scalegram', 'scalegram/scenario': o.name } });
  const configMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: metadata(configMapName),
    data,
    ...(Object.keys(binaryData).length ? { binaryData } : {}),
  };
  const testRun = {
    apiVersion: 'k6.io/v1alpha1',
    kind: 'TestRun',
    metadata: metadata(o.name),
    spec: {
      parallelism: o.parallelism,
      script: { configMap: { name: configMapName, file: scriptKey } },
      arguments: '-e BASE_URL=http://scalegram:8080 -e ADMIN_TOKEN=REPLACE_WITH_THE_ADMIN_TOKEN',
    },
  };

  const stringifyOptions = { lineWidth: 0, blockQuote: 'literal' as const };
  const cmDoc = new Document(configMap);
  const trDoc = new Document(testRun);
  const spec = trDoc.get('spec', true) as YAMLMap;
  const argumentsPair = spec.items.find((p: Pair) => isScalar(p.key) && p.key.value === 'arguments')!;
  const others = envKeys(script).filter((k) => k !== 'BASE_URL' && k !== 'ADMIN_TOKEN');
  (argumentsPair.key as { commentBefore?: string }).commentBefore = [
    ' EDIT BEFORE APPLYING: the arguments k6 runs with, as `k6 run <arguments> /test/' + scriptKey + '`.',
    '   BASE_URL     the `scalegram serve` the runner pods reach (a Service address, with its port)',
    '   ADMIN_TOKEN  that server\'s admin token (it printed it at start, or took it from',
    '                --admin-token / $SCALEGRAM_ADMIN_TOKEN); the scenario seeds and reads /_sim with it',
    ...(others.length ? [`   the scenario also reads: ${others.join(', ')} (add -e KEY=VALUE to set one)`] : []),
    ' k6-operator runs these through `sh -c`: keep values free of spaces and shell characters.',
    ' To keep the token out of this file, drop -e ADMIN_TOKEN=… and give the runner pods an env var from',
    ' a Secret instead (spec.runner.env: [{name: ADMIN_TOKEN, valueFrom: {secretKeyRef: …}}]):',
    ' k6 passes the environment to __ENV.',
  ].join('\n');
  const parallelismPair = spec.items.find((p: Pair) => isScalar(p.key) && p.key.value === 'parallelism')!;
  (parallelismPair.key as { commentBefore?: string }).commentBefore =
    ' Runner pods; k6-operator gives each an execution segment of the load, and runs setup() once, on\n the first runner, handing its data to all (so the population is seeded once).';

  const header = [
    `# ${input.scenarioFile} for k6-operator (github.com/grafana/k6-operator), made by \`scalegram export-k6 --k6-operator\`.`,
    `# Two documents: the ConfigMap ${configMapName} (the bundled script, and the scenario's assets/ files`,
    `# under keys without '/': assets/photo.jpg is assets__photo.jpg, which the bundle's open() reads), and`,
    `# the TestRun ${o.name} (k6.io/v1alpha1, as k6-operator ${K6_OPERATOR_VERSION}'s CRD defines it; k6-operator`,
    `# mounts the ConfigMap at /test in every runner pod and runs k6 on /test/${scriptKey}).`,
    `# ConfigMap size: ${total.toLocaleString('en-US')} of the ${CONFIGMAP_MAX_BYTES.toLocaleString('en-US')} bytes Kubernetes allows.`,
    '#',
    '# 1. Edit the TestRun\'s `arguments` below (BASE_URL, ADMIN_TOKEN).',
    `# 2. kubectl create -f ${input.scenarioFile.replace(/\.(ts|mts|js|mjs)$/, '')}-k6-operator.yaml`,
    '#    (`kubectl apply` keeps a copy of each object in an annotation limited to 256 KiB: for a script or',
    '#    assets larger than that use `kubectl apply --server-side`, or create as above.)',
    `# 3. kubectl get testrun ${o.name} -w   (the stages: initialization … started … finished)`,
    `#    To run it again: kubectl delete testrun ${o.name}, then create the TestRun again.`,
  ].join('\n');

  const text = `${header}\n${cmDoc.toString(stringifyOptions)}---\n${trDoc.toString(stringifyOptions)}`;
  // The script and assets must come back byte for byte (the YAML library picks each string's style).
  const back = parseAllDocuments(text).map((d) => d.toJSON() as { data?: Record<string, string>; binaryData?: Record<string, string> });
  const cm = back[0];
  const exact = cm?.data?.[scriptKey] === script && assets.every((a) => (cm.data?.[a.key] !== undefined ? Buffer.from(cm.data[a.key]!, 'utf8') : Buffer.from(cm.binaryData?.[a.key] ?? '', 'base64')).equals(a.bytes));
  if (!exact) throw new Error('internal error: the ConfigMap YAML does not give back the script and assets it was made from');
  return text;
}
