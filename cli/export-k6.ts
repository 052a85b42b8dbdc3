// `scalegram export-k6 <scenario>`: bundles a scenario and the files it imports into one plain
// JavaScript ES module for k6 versions that do not read TypeScript; k6's own modules stay imports.

import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parse } from './args.ts';
import { EXIT } from './exit-codes.ts';
import { UsageError } from './usage-error.ts';

const HELP = `Usage: scalegram export-k6 <scenario.ts> [--out DIR]

Writes DIR/<scenario>.js (default DIR: reports/out/k6), a single ES module that real k6 runs:
  k6 run -e BASE_URL=http://127.0.0.1:8080 -e SCALE=0.05 DIR/<scenario>.js
The scenario's assets/ folder is copied beside it, since k6's open() reads files relative to the script.
`;

export async function exportK6Command(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { out: { type: 'string' } }, true);
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  if (positionals.length !== 1) throw new UsageError('give exactly one scenario file');
  const entry = resolve(positionals[0]!);
  if (!existsSync(entry)) throw new UsageError(`no such file: ${positionals[0]}`);
  const outDir = resolve(values.out ?? 'reports/out/k6');
  mkdirSync(outDir, { recursive: true });
  const outFile = join(outDir, basename(entry).replace(/\.(ts|mts|js|mjs)$/, '') + '.js');
  let result;
  try {
    result = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    // k6 (goja/sobek) reads ES2017+ with async functions; keep syntax conservative.
    target: 'es2017',
    external: ['k6', 'k6/*'],
    outfile: outFile,
    logLevel: 'silent',
    banner: { js: `// Bundled by scalegram export-k6 from ${basename(entry)}. Run: k6 run -e BASE_URL=http://127.0.0.1:8080 ${basename(outFile)}` },
    });
  } catch (e) {
    // esbuild lists each problem (an import k6 does not have, a syntax error) with its location.
    const errors = (e as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }).errors ?? [];
    for (const err of errors) process.stderr.write(`error: ${err.location ? `${err.location.file}:${err.location.line}: ` : ''}${err.text}\n`);
    if (errors.length === 0) process.stderr.write(`error: ${(e as Error).message}\n`);
    return EXIT.SCRIPT_ERROR;
  }
  // k6 runs scripts in its own JavaScript runtime: Node's globals are not there.
  const bundle = readFileSync(outFile, 'utf8');
  const nodeisms = [...new Set([...bundle.matchAll(/\b(process\.\w+|require\(|Buffer\.|__dirname|__filename)/g)].map((m) => m[1]))];
  if (nodeisms.length) {
    process.stderr.write(`error: the bundle uses Node.js globals that k6 does not have: ${nodeisms.join(', ')}\n`);
    return EXIT.SCRIPT_ERROR;
  }
  for (const w of result.warnings) process.stderr.write(`warning: ${w.text}\n`);
  const assets = join(dirname(entry), 'assets');
  if (existsSync(assets)) cpSync(assets, join(outDir, 'assets'), { recursive: true });
  process.stdout.write(`${outFile}\n`);
  return EXIT.OK;
}
