// Files under --data-dir hold password hashes, token hashes and everyone's photos, so they are the
// owner's only: directories 0700, files 0600, whatever the umask. Every writer here uses these helpers.

import { chmodSync, closeSync, fchmodSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Mode of every directory under a data dir (owner rwx only). */
export const DIR_MODE = 0o700;
/** Mode of every file under a data dir (owner rw only). */
export const FILE_MODE = 0o600;

/**
 * Creates `dir` (and its parents) with DIR_MODE. A `dir` that exists with another mode (made by an
 * older version, by hand, or copied under a loose umask) is tightened with everything under it:
 * every group and other bit goes. One already at DIR_MODE is not walked — this code writes nothing
 * looser, and a walk costs ~10 µs per file at every start (a million photos are millions of files).
 * Symlinks are neither followed nor changed. Returns the number of entries whose mode was tightened.
 */
export function prepareDataDir(dir: string): number {
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  if ((lstatSync(dir).mode & 0o777) === DIR_MODE) return 0;
  let tightened = 0;
  // An explicit stack, not recursion: a blob store nests a directory per media id.
  const stack = [dir];
  while (stack.length > 0) {
    const path = stack.pop()!;
    const st = lstatSync(path);
    if (st.isSymbolicLink()) continue;
    if (st.isDirectory()) {
      if ((st.mode & 0o777) !== DIR_MODE) {
        chmodSync(path, DIR_MODE);
        tightened++;
      }
      for (const name of readdirSync(path)) stack.push(join(path, name));
    } else if ((st.mode & 0o077) !== 0) {
      chmodSync(path, st.mode & 0o700);
      tightened++;
    }
  }
  return tightened;
}

/** Creates `dir` with DIR_MODE if missing (parents too); an existing one keeps its mode. */
export function makePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
}

/**
 * Makes sure `path` exists as a FILE_MODE file before a library opens it with its own default mode
 * (SQLite creates databases 0644, and gives its -wal and -shm files the database file's mode).
 */
export function ensurePrivateFile(path: string): void {
  closeSync(openSync(path, 'a', FILE_MODE));
  if ((lstatSync(path).mode & 0o077) !== 0) chmodSync(path, FILE_MODE);
}

/**
 * Writes `data` to `path` so that a reader (or a restart after a killed process) sees the old
 * contents or the new, never a mix: a FILE_MODE temp file beside it, renamed over it. No fsync:
 * atomic against a crash of the process, not of the machine (README, "Security and durability").
 */
export function writeFileAtomic(path: string, data: string | Buffer): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', FILE_MODE);
  try {
    fchmodSync(fd, FILE_MODE); // a temp file left by a crash keeps its old mode through 'w'
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
