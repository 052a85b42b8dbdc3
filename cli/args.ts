// Shared option parsing on node:util parseArgs: unknown flags and bad values are usage errors.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { randomInt } from 'node:crypto';
import { parseSeed } from '../sim/prng.ts';
import { UsageError } from './usage-error.ts';

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function intOption(value: string | undefined, name: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return def;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a whole number (got "${value}")`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max} (got ${n})`);
  return n;
}

/** The run's seed: as given, or a fresh one that is printed so the run can be replayed. */
export function seedOption(value: string | undefined): number {
  if (value === undefined) return randomInt(1, 2 ** 31);
  if (value.trim() === '') throw new UsageError('--seed must not be empty');
  return parseSeed(value);
}
