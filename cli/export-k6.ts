// `scalegram export-k6 <scenario>`: bundles a scenario and the files it imports into one plain
// JavaScript ES module for k6 versions that do not read TypeScript; k6's own modules stay imports.
// With --k6-operator it also writes the manifests that run the bundle on Kubernetes (cli/k6-operator.ts).

import { build, type Plugin } from 'esbuild';
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_PRESET } from '../sim/topology-config.ts';
import { parse } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { BundleError, k6OperatorManifests, K6_OPERATOR_VERSION, openRewrite, operatorOptions, podAssets, type OperatorOptions, type PodAsset } from './k6-operator.ts';
import { UsageError } from './usage-error.ts';

const HELP = `Usage: scalegram export-k6 <scenario.ts> [--out DIR] [--k6-operator [--parallelism N] [--name NAME] [--namespace NS]]

Writes DIR/<scenario>.js (default DIR: reports/out/k6), a single ES module that real k6 runs:
  k6 run -e BASE_URL=http://127.0.0.1:8080 -e ADMIN_TOKEN=<token> -e SEED=7 -e SCALE=0.05 DIR/<scenario>.js
The scenario's assets/ folder is copied beside it, since k6's open() reads files relative to the script.

Its setup first resets the server to the scenario's world (POST /_sim/reset): the topology the
scenario exports (else ${DEFAULT_PRESET}; a script that exports none is reset only when given
-e ADMIN_TOKEN) and the seed -e SEED=N (else the server keeps its own); -e TOPOLOGY=<preset> applies
another preset, -e RESET=0 runs against the server as it is. The runner pods of one k6-operator run
share one reset, and the scenario's setup runs once, its data shared with every pod.

  --k6-operator      also write DIR/<scenario>-k6-operator.yaml for k6-operator (${K6_OPERATOR_VERSION}'s TestRun CRD):
                     a ConfigMap with the script and the assets (at most 1 MiB in all), and a TestRun
                     that runs it; edit its BASE_URL and ADMIN_TOKEN, then kubectl create -f it.
                     A ConfigMap key cannot hold '/': assets/photo.jpg is the key assets__photo.jpg,
                     which the bundle's open() reads instead (the same files are written beside it)
  --parallelism N    runner pods (spec.parallelism; default 1)
  --name NAME        the TestRun's name (default: the scenario's); the ConfigMap is NAME-script
  --namespace NS     put both in this namespace (default: kubectl's current one)
`;

export async function exportK6Command(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      out: { type: 'string' },
      'k6-operator': { type: 'boolean' },
      parallelism: { type: 'string' },
      name: { type: 'string' },
      namespace: { type: 'string' },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  if (positionals.length !== 1) throw new UsageError('give exactly one scenario file');
  const entry = resolve(positionals[0]!);
  if (!existsSync(entry)) throw new UsageError(`no such file: ${positionals[0]}`);
  const scenario = basename(entry).replace(/\.(ts|mts|js|mjs)$/, '');
  let operator: OperatorOptions | null = null;
  if (values['k6-operator']) operator = operatorOptions(values, scenario);
  else {
    const given = (['parallelism', 'name', 'namespace'] as const).filter((k) => values[k] !== undefined);
    if (given.length) throw new UsageError(`${given.map((k) => `--${k}`).join(', ')} ${given.length === 1 ? 'goes' : 'go'} with --k6-operator`);
  }
  const outDir = resolve(values.out ?? 'reports/out/k6');
  const outFile = join(outDir, scenario + '.js');
  const scenarioDir = dirname(entry);

  let assets: PodAsset[] = [];
  const plugins: Plugin[] = [];
  const inject: string[] = [];
  if (operator) {
    try {
      assets = podAssets(scenarioDir);
    } catch (e) {
      if (!(e instanceof BundleError)) throw e;
      process.stderr.write(`error: ${e.message}\n`);
      return EXIT.SCRIPT_ERROR;
    }
    if (assets.length) {
      const rewrite = openRewrite(assets);
      plugins.push(rewrite.plugin);
      inject.push(...rewrite.inject);
    }
  }

  let result;
  try {
    // The scenario's own exports first, then the bundle's entry: the scenario with a setup that
    // applies its topology and seed to the target server before the scenario's own setup runs.
    const probe = await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'neutral', external: ['k6', 'k6/*'], write: false, outfile: outFile, logLevel: 'silent', metafile: true });
    const exported = Object.values(probe.metafile.outputs).flatMap((o) => o.exports);
    result = await build({
      stdin: { contents: entryWithWorld(entry, exported), resolveDir: scenarioDir, sourcefile: `${scenario}.export-k6-entry.js`, loader: 'js' },
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      // k6 (goja/sobek) reads ES2017+ with async functions; keep syntax conservative.
      target: 'es2017',
      external: ['k6', 'k6/*'],
      outfile: outFile,
      write: false,
      logLevel: 'silent',
      plugins,
      inject,
      banner: { js: `// Bundled by scalegram export-k6 from ${basename(entry)}. Run: k6 run -e BASE_URL=http://127.0.0.1:8080 -e ADMIN_TOKEN=<the server's admin token> ${basename(outFile)}\n// Its setup first resets the server to the scenario's topology (and -e SEED=N) through POST /_sim/reset; -e RESET=0 skips that.` },
    });
  } catch (e) {
    // esbuild lists each problem (an import k6 does not have, a syntax error) with its location.
    const errors = (e as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }).errors ?? [];
    for (const err of errors) process.stderr.write(`error: ${err.location ? `${err.location.file}:${err.location.line}: ` : ''}${err.text}\n`);
    if (errors.length === 0) process.stderr.write(`error: ${(e as Error).message}\n`);
    return EXIT.SCRIPT_ERROR;
  }
  // k6 runs scripts in its own JavaScript runtime: Node's globals are not there.
  const bundle = result.outputFiles[0]!.text;
  const nodeisms = [...new Set([...bundle.matchAll(/\b(process\.\w+|require\(|Buffer\.|__dirname|__filename)/g)].map((m) => m[1]))];
  if (nodeisms.length) {
    process.stderr.write(`error: the bundle uses Node.js globals that k6 does not have: ${nodeisms.join(', ')}\n`);
    return EXIT.SCRIPT_ERROR;
  }
  // Nothing is written until the manifests are known to fit.
  let manifests: string | null = null;
  if (operator) {
    try {
      manifests = k6OperatorManifests({ scenarioFile: basename(entry), scriptKey: basename(outFile), script: bundle, assets, options: operator });
    } catch (e) {
      if (!(e instanceof BundleError)) throw e;
      process.stderr.write(`error: ${e.message}\n`);
      return EXIT.SCRIPT_ERROR;
    }
  }
  for (const w of result.warnings) process.stderr.write(`warning: ${w.text}\n`);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(outFile, bundle);
  const assetsDir = join(scenarioDir, 'assets');
  if (existsSync(assetsDir)) cpSync(assetsDir, join(outDir, 'assets'), { recursive: true });
  process.stdout.write(`${outFile}\n`);
  if (manifests !== null) {
    // The pod's /test: each asset under its key, beside the script.
    for (const a of assets) writeFileSync(join(outDir, a.key), a.bytes);
    const yamlFile = join(outDir, `${scenario}-k6-operator.yaml`);
    writeFileSync(yamlFile, manifests);
    process.stdout.write(`${yamlFile}\n`);
  }
  return EXIT.OK;
}

/** Where scenarios/lib/world.ts is, from this file (cli/). */
const WORLD_MODULE = fileURLToPath(new URL('../scenarios/lib/world.ts', import.meta.url));

/**
 * The bundle's entry: everything the scenario exports, and a setup that first applies the
 * scenario's topology (its `topology` export, else the default preset, as `scalegram run` builds
 * it) and seed to the target server, then runs the scenario's own setup, once per run when the run
 * is split over runners (scenarios/lib/world.ts).
 */
export function entryWithWorld(entry: string, exported: readonly string[]): string {
  const from = JSON.stringify(entry);
  const topology = exported.includes('topology') ? 'scenario.topology' : 'null';
  return [
    `import * as scenario from ${from};`,
    `import { applyWorld, setupOnce } from ${JSON.stringify(WORLD_MODULE)};`,
    `export * from ${from};`,
    ...(exported.includes('default') ? [`export { default } from ${from};`] : []),
    // Synchronous, as k6 runs setup: an error in a synchronous setup stays k6's exit 107.
    `export function setup() {`,
    `  const round = applyWorld(${topology}, ${JSON.stringify(DEFAULT_PRESET)});`,
    exported.includes('setup') ? `  return setupOnce(round, () => scenario.setup());` : `  return undefined;`,
    `}`,
    '',
  ].join('\n');
}
