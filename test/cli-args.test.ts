// Unknown command-line options: every command parses through cli/args.ts `parse`, which answers a
// mistyped option with the declared option closest to it ("did you mean --port?") and exit 2. Three
// commands are run as child processes (each costs seconds); the distance is tested on its own.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { closestOption, editDistance, unknownOptionMessage } from '../cli/args.ts';

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/scalegram.mjs', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('edit distance and the closest option', () => {
  it('counts insertions, deletions, substitutions and adjacent swaps once each', () => {
    expect(editDistance('port', 'port')).toBe(0);
    expect(editDistance('prot', 'port')).toBe(1);
    expect(editDistance('sed', 'seed')).toBe(1);
    expect(editDistance('seeds', 'seed')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('suggests an option within a third of the typed length, or the only one it starts, and nothing farther', () => {
    const serve = ['port', 'host', 'topology', 'seed', 'data-dir', 'redis-url', 'rate-limit', 'help'];
    expect(closestOption('prot', serve)).toBe('port');
    expect(closestOption('Port', serve)).toBe('port');
    expect(closestOption('topolgy', serve)).toBe('topology');
    expect(closestOption('data_dir', serve)).toBe('data-dir');
    expect(closestOption('datadir', serve)).toBe('data-dir');
    expect(closestOption('rate', serve)).toBe('rate-limit');
    expect(closestOption('hlep', serve)).toBe('help');
    // 'r' starts rate-limit and redis-url, and is too short to guess from.
    expect(closestOption('r', serve)).toBeNull();
    expect(closestOption('verbose', serve)).toBeNull();
    expect(closestOption('quiet', serve)).toBeNull();
    expect(unknownOptionMessage('--prot', serve)).toBe('unknown option --prot (did you mean --port?)');
    expect(unknownOptionMessage('--verbose', serve)).not.toMatch(/did you mean/);
    // Short options are not guessed at: one letter is close to every other letter.
    expect(unknownOptionMessage('-x', ['e', 'q'])).not.toMatch(/did you mean/);
  });
});

describe('unknown options, as a user meets them', () => {
  it.each([
    [['serve', '--prot', '8080'], '--prot', '--port'],
    [['run', 'scenarios/ci-gate.ts', '--sed', '3'], '--sed', '--seed'],
    [['compare', 'a', 'b', '--tolerence', '5%'], '--tolerence', '--tolerance'],
  ])('scalegram %j: exit 2 and "did you mean"', (args, typed, meant) => {
    const r = cli(...args);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([`scalegram ${args[0]}: unknown option ${typed} (did you mean ${meant}?)`]);
    expect(r.stdout).toBe('');
  }, 60_000);

  it('an option close to none is still refused with exit 2, without a guess', () => {
    const r = cli('compare', 'a', 'b', '--verbose');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown option --verbose/);
    expect(r.stderr).not.toMatch(/did you mean/);
  }, 60_000);
});

describe('bad option values, as a user meets them', () => {
  it.each([
    [['simulate', 'scenarios/ci-gate.ts', '--seed', 'abc'], '--seed must be a whole number, such as 42 (got "abc")'],
    [['serve', '--seed', '12x'], '--seed must be a whole number, such as 42 (got "12x")'],
    [['run', 'scenarios/ci-gate.ts', '--seed', '-5'], '--seed must be a whole number, such as 42 (got "-5")'],
    // A negative number is the option's value, not an "ambiguous" argument: the option's own check answers.
    [['simulate', 'scenarios/ci-gate.ts', '--scale', '-1'], '--scale must be a positive number (got "-1")'],
    [['run', 'scenarios/ci-gate.ts', '--speed', '-.5'], '--speed must be a positive number (got "-.5")'],
  ])('scalegram %j: exit 2 and one line naming the option', (args, message) => {
    const r = cli(...args);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([`scalegram ${args[0]}: ${message}`]);
    expect(r.stdout).toBe('');
  }, 60_000);
});
