// Shared option parsing on node:util parseArgs: unknown flags and bad values are usage errors.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { randomInt } from 'node:crypto';
import { parseSeed } from '../sim/engine/prng.ts';
import { UsageError } from './usage-error.ts';

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false) {
  const all = { ...options, help: { type: 'boolean', short: 'h' } } as const;
  try {
    return parseArgs({ args: negativeValues(argv, all), options: all, allowPositionals, strict: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const unknown = firstUnknownOption(argv, all);
      if (unknown) throw new UsageError(unknownOptionMessage(unknown, Object.keys(all)));
    }
    throw new UsageError((e as Error).message);
  }
}

/**
 * A negative number after an option that takes a value is that value: `--scale -1` is read as
 * `--scale=-1` (parseArgs calls it ambiguous), so the option's own check says what is wrong with it.
 * No option is a digit, so nothing else could be meant.
 */
function negativeValues(argv: string[], options: NonNullable<ParseArgsConfig['options']>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    const name = /^--[^=]+$/.test(a) ? a.slice(2) : /^-[^-]$/.test(a) ? Object.keys(options).find((k) => options[k]!.short === a[1]) : undefined;
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** The first option in argv that `options` does not declare, as written (`--prot`, `-x`). */
function firstUnknownOption(argv: string[], options: NonNullable<ParseArgsConfig['options']>): string | null {
  const { tokens } = parseArgs({ args: argv, options, allowPositionals: true, strict: false, tokens: true });
  for (const t of tokens) if (t.kind === 'option' && !Object.hasOwn(options, t.name)) return t.rawName;
  return null;
}

/** "unknown option --prot (did you mean --port?)" when a declared long option is close enough. */
export function unknownOptionMessage(rawName: string, known: readonly string[]): string {
  const guess = rawName.startsWith('--') ? closestOption(rawName.slice(2), known) : null;
  return guess ? `unknown option ${rawName} (did you mean --${guess}?)` : `unknown option ${rawName} (--help lists the options)`;
}

/**
 * The declared option nearest to a mistyped one: within an edit distance of a third of its length
 * (at least 1), transpositions counting once, case ignored; else the only option it is the start of
 * (`--rate` → `--rate-limit`). Ties go to the first declared.
 */
export function closestOption(typed: string, known: readonly string[]): string | null {
  const t = typed.toLowerCase();
  if (t.length === 0) return null;
  const budget = Math.max(1, Math.floor(t.length / 3));
  let best: string | null = null;
  let bestDistance = budget + 1;
  for (const k of known) {
    const d = editDistance(t, k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  if (best !== null) return best;
  const extended = t.length >= 3 ? known.filter((k) => k.toLowerCase().startsWith(t)) : [];
  return extended.length === 1 ? extended[0]! : null;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

export function intOption(value: string | undefined, name: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return def;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a whole number (got "${value}")`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max} (got ${n})`);
  return n;
}

/** The run's seed: a whole number as given, or a fresh one that is printed so the run can be replayed. */
export function seedOption(value: string | undefined): number {
  if (value === undefined) return randomInt(1, 2 ** 31);
  if (value.trim() === '') throw new UsageError('--seed must not be empty');
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`--seed must be a whole number, such as 42 (got "${value}")`);
  return parseSeed(value);
}

/** A positive number option (`def` when absent); anything else is a usage error naming it. */
export function positiveNumber(value: string | undefined, name: string, def: number): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number (got "${value}")`);
  return n;
}

/** `-e KEY=VALUE` options as an environment; a value without `=` (or without a key) is a usage error. */
export function envOption(kvs: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of kvs) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`-e expects KEY=VALUE (got "${kv}")`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return env;
}

/** The one scenario file a command takes, resolved; none, several or a missing file is a usage error. */
export function scenarioFile(positionals: readonly string[]): string {
  if (positionals.length !== 1) throw new UsageError('give exactly one scenario file (see --help)');
  const scriptPath = resolve(positionals[0]!);
  if (!existsSync(scriptPath)) throw new UsageError(`no such scenario file: ${positionals[0]}`);
  return scriptPath;
}
