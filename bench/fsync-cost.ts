// What power-loss durability would cost on this machine's disk: the time of one framed append
// to a file in the data dir's file system, with and without an fdatasync after it. --data-dir
// appends without one (README, "Security and durability"); an fsync per write would pay the difference.

import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AppendOnlyFile } from '../sim/parts/append-only-file.ts';

export interface AppendCost {
  /** Mean time of one append of a 200-byte frame, written with write() only (µs). */
  writeUs: number;
  /** The same with an fdatasync after each append (µs). */
  fsyncUs: number;
  appends: number;
}

/** Appends `appends` frames each way to a temporary file under `parentDir` (on the disk to measure). */
export function measureAppendCost(parentDir: string, appends = 200): AppendCost {
  const dir = mkdtempSync(join(parentDir, 'scalegram-fsync-'));
  try {
    const payload = Buffer.alloc(200, 0x61);
    const time = (fsync: boolean): number => {
      const { file } = AppendOnlyFile.open(join(dir, fsync ? 'synced' : 'written'), () => {}, { fsync });
      const t0 = performance.now();
      for (let i = 0; i < appends; i++) file.append(payload);
      const us = ((performance.now() - t0) * 1000) / appends;
      file.close();
      return us;
    };
    return { writeUs: time(false), fsyncUs: time(true), appends };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
