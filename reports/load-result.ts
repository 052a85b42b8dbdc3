// The result document (result.json, format 'scalegram-result/1') as the reports read it, and the one
// place that reads it from disk: a directory or a file path in, a checked document out, or an error
// that says what was wrong with the input (never a stack trace for a bad path).

import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { RegistrySnapshot, SeriesData } from '../scenarios/runner/k6-metrics.ts';
import type { ResolvedScenario } from '../scenarios/runner/options.ts';
import type { CheckTree } from '../scenarios/runner/summary-export.ts';
import type { ThresholdResult } from '../scenarios/runner/thresholds.ts';
import type { TelemetrySnapshot } from '../sim/telemetry.ts';

export const RESULT_FORMAT = 'scalegram-result/1';
export const RESULT_FILE = 'result.json';

/** The topology as `GET /_sim/topology` describes it at the end of the run (the parts reports read). */
export interface TopologyDescription {
  name: string;
  description: string;
  seed: number;
  config: Record<string, unknown>;
  databases: Array<{
    name: string;
    families: string[];
    logicalShards: number;
    servers: Array<{ name: string; index: number; down: boolean; logicalShards: number; pool: { size: number }; ops: { reads: number; writes: number }; replicas: Array<{ name: string }> }>;
  }>;
  cache: { hashing: string; leases: boolean; nodes: Array<{ name: string; alive: boolean; onRing: boolean; items: number; bytes: number; capacityBytes: number; hits: number; misses: number; evictions: number }> };
  feed?: { backend: string; fanout: string; maxLength: number; replica: { lagMs: number } | null };
  queue?: { workers: number; depth: number; running: number; maxDepth: number };
}

/** result.json, written by scenarios/runner/results.ts. JSON drops undefined threshold values. */
export interface ResultDocument {
  format: typeof RESULT_FORMAT;
  scenario: string;
  script: string;
  seed: number;
  speed: number;
  scale: number;
  target: string;
  /** ISO time the run started (before the script loaded and setup ran). */
  startedAt: string;
  /** From the first scenario's start to the end of teardown (ms). */
  durationMs: number;
  aborted: string | null;
  /** The event loop's delay over the run (absent in older results): queueing in the harness itself. */
  harness?: { eventLoopDelayMs: { p50: number; p99: number; max: number } };
  /** errors/errorMessages: iterations that threw (absent in results written before they were recorded). */
  iterations: { completed: number; interrupted: number; dropped: number; errors?: number; errorMessages?: Array<{ message: string; scenario: string; count: number }> };
  options: { scenarios: ResolvedScenario[]; thresholds: Record<string, unknown[]>; raw?: unknown; [k: string]: unknown };
  thresholds: Array<Omit<ThresholdResult, 'value'> & { value?: number | null }>;
  /** null when the target did not answer /_sim/topology (e.g. --target a server that is not Scalegram). */
  topology: TopologyDescription | null;
  metrics: RegistrySnapshot;
  series: SeriesData;
  /** null when the target did not answer /_sim/telemetry. */
  telemetry: TelemetrySnapshot | null;
  checks: CheckTree | null;
}

/** The input is not a readable Scalegram result: the CLI prints the message and exits 2. */
export class ResultInputError extends Error {
  override name = 'ResultInputError';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks the shape the reports depend on and returns the document typed. `where` names the input
 * in messages. Optional parts (topology, telemetry, checks) may be null.
 */
export function checkResult(doc: unknown, where = 'the document'): ResultDocument {
  if (!isObject(doc)) throw new ResultInputError(`${where} is not a JSON object`);
  if (doc.format !== RESULT_FORMAT) {
    const got = doc.format === undefined ? 'no "format" field' : `format ${JSON.stringify(doc.format)}`;
    throw new ResultInputError(`${where} is not a Scalegram result (expected format "${RESULT_FORMAT}", found ${got})`);
  }
  const need = (cond: boolean, field: string) => {
    if (!cond) throw new ResultInputError(`${where}: field "${field}" is missing or malformed`);
  };
  need(typeof doc.scenario === 'string', 'scenario');
  need(typeof doc.durationMs === 'number', 'durationMs');
  need(typeof doc.speed === 'number' && typeof doc.scale === 'number', 'speed/scale');
  need(Array.isArray(doc.thresholds), 'thresholds');
  need(isObject(doc.options) && Array.isArray(doc.options.scenarios), 'options.scenarios');
  need(isObject(doc.metrics) && Array.isArray(doc.metrics.metrics), 'metrics');
  need(isObject(doc.series) && Array.isArray(doc.series.series) && typeof doc.series.bucketMs === 'number', 'series');
  need(isObject(doc.iterations), 'iterations');
  need(doc.telemetry === null || doc.telemetry === undefined || isObject(doc.telemetry), 'telemetry');
  need(doc.topology === null || doc.topology === undefined || isObject(doc.topology), 'topology');
  return { ...doc, telemetry: doc.telemetry ?? null, topology: doc.topology ?? null, checks: doc.checks ?? null } as unknown as ResultDocument;
}

/** Where a result lives: DIR/result.json for a directory, or the file itself. */
export function resultPath(input: string): { dir: string; file: string } {
  const abs = resolve(input);
  if (!existsSync(abs)) throw new ResultInputError(`${input}: no such file or directory`);
  if (statSync(abs).isDirectory()) {
    const file = join(abs, RESULT_FILE);
    if (!existsSync(file)) throw new ResultInputError(`${input} has no ${RESULT_FILE} (is it a run's result directory?)`);
    return { dir: abs, file };
  }
  if (basename(abs) !== RESULT_FILE && !abs.endsWith('.json')) throw new ResultInputError(`${input} is neither a result directory nor a result.json file`);
  return { dir: dirname(abs), file: abs };
}

/** Reads and checks a result from a directory or a result.json path. */
export function loadResult(input: string): { dir: string; file: string; result: ResultDocument } {
  const { dir, file } = resultPath(input);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ResultInputError(`cannot read ${file}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ResultInputError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  return { dir, file, result: checkResult(doc, file) };
}
