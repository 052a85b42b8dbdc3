// The machine and the commit a measurement was made on, as a calibration profile records them and
// as `simulate --calibration` and `validate` compare them with where they run.

import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Commit, Machine } from '../sim/calibration.ts';

/** The repository this command runs from (not the caller's working directory). */
const REPO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function machineIdentity(): Machine {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    nodeVersion: process.version,
    hostname: hostname(),
    platform: `${process.platform}-${process.arch}`,
  };
}

/** git rev-parse HEAD and whether tracked files have changes; "unknown" outside a git checkout. */
export function commitIdentity(dir = REPO_DIR): Commit {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { sha: /^[0-9a-f]{40}$/.test(sha) ? sha : 'unknown', dirty: status.trim() !== '' };
  } catch {
    return { sha: 'unknown', dirty: false };
  }
}

/** Set (to 1) in the environment of a `simulate` that `validate` runs: validate has said the profile's warnings once. */
export const CALIBRATION_WARNED = 'SCALEGRAM_CALIBRATION_WARNED';

/** What changes without changing what a profile measured. */
const NOT_CODE = ['calibration', '*.md', 'docs', 'test', 'baselines', '.github', 'vitest.config.ts'];

/**
 * Whether the code at HEAD is the code at `sha`: the same commit, or commits between them that
 * change only what the service does not run: calibration profiles, prose, tests and CI files
 * (calibration/, *.md, docs/, test/, baselines/, .github/, vitest.config.ts). Null when git cannot tell.
 */
export function sameCodeAs(sha: string, dir = REPO_DIR): boolean | null {
  if (!/^[0-9a-f]{40}$/.test(sha)) return null;
  try {
    execFileSync('git', ['diff', '--quiet', sha, 'HEAD', '--', '.', ...NOT_CODE.map((p) => `:(exclude)${p}`)], { cwd: dir, stdio: 'ignore' });
    return true;
  } catch (e) {
    return (e as { status?: number }).status === 1 ? false : null;
  }
}

/** Where a profile's warnings are judged from: this machine, this commit, and whether its code is the profile's. */
export function hereFor(profileSha: string): { machine: Machine; commit: Commit; sameCode?: boolean } {
  const same = sameCodeAs(profileSha);
  return { machine: machineIdentity(), commit: commitIdentity(), ...(same === null ? {} : { sameCode: same }) };
}
