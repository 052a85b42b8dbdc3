// The result document (result.json, format 'scalegram-result/1') as the reports read it, and the one
// place that reads it from disk: a directory or a file path in, a checked document out, or an error
// that says what was wrong with the input (never a stack trace for a bad path).

import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { RESULT_FORMAT, type ResultDocument } from '../scenarios/runner/results.ts';

export { RESULT_FORMAT, type ResultDocument, type TopologyDescription } from '../scenarios/runner/results.ts';
export const RESULT_FILE = 'result.json';

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
