// What a run leaves behind: a result directory with the resolved options, topology, seed, every
// time series and the encoded histograms (mergeable), plus the k6-shaped summary export. Pure
// builders return the documents; `writeResults` is the only part that touches the disk.

import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { RunResult } from './run.ts';

/** The full result document (result.json). */
export function resultDocument(r: RunResult): object {
  return {
    format: 'scalegram-result/1',
    scenario: r.scenario,
    script: r.scriptPath,
    seed: r.seed,
    speed: r.speed,
    scale: r.scale,
    target: r.target,
    startedAt: new Date(r.startedMs).toISOString(),
    /** When the scenarios started, after setup (null if the run ended before). */
    loadStartedAt: r.loadStartedMs === null ? null : new Date(r.loadStartedMs).toISOString(),
    durationMs: r.durationMs,
    harness: r.harness,
    aborted: r.aborted,
    iterations: r.iterations,
    options: r.options,
    thresholds: r.thresholds,
    topology: r.topology,
    metrics: r.registry.toJSON(),
    series: r.registry.series(),
    telemetry: r.telemetry,
    checks: r.checks.tree(),
  };
}

export const DEFAULT_OUT_ROOT = 'reports/out';

export function defaultOutDir(r: RunResult, root = DEFAULT_OUT_ROOT): string {
  const stamp = new Date(r.startedMs).toISOString().replace(/[:.]/g, '-');
  return join(root, `${r.scenario}-${stamp}`);
}

/**
 * Writes result.json and summary.json into `outDir` (and --summary-export). A run under the default
 * root (reports/out) also repoints reports/out/latest at it; a directory of the user's is left alone.
 */
export function writeResults(r: RunResult, outDir: string, summaryExportPath?: string, latestRoot?: string): string {
  const dir = resolve(outDir);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'result.json'), JSON.stringify(resultDocument(r)));
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(r.summary, null, 2));
  if (summaryExportPath) {
    mkdirSync(dirname(resolve(summaryExportPath)), { recursive: true });
    writeFileSync(summaryExportPath, JSON.stringify(r.summary, null, 2));
  }
  if (!latestRoot || resolve(dirname(dir)) !== resolve(latestRoot)) return dir;
  const latest = join(resolve(latestRoot), 'latest');
  try {
    rmSync(latest, { force: true });
    symlinkSync(dir, latest);
  } catch {
    // A filesystem without symlinks keeps the results; only the shortcut is missing.
  }
  return dir;
}
