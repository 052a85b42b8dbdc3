// Jobs an acknowledged request promised (a post's fan-out, its geo indexing) are written here before
// the request is answered and cleared when they are done, so a start after a kill runs them again.
// An append-only file of begin and end frames, rewritten down to the open entries as it grows.

import { renameSync, rmSync } from 'node:fs';
import { AppendOnlyFile } from './append-only-file.ts';
import type { Metrics } from '../observability/metrics.ts';

export interface JournalEntry {
  id: number;
  kind: string;
  payload: unknown;
  /** Starts that found this entry open and ran it again (count). */
  replays: number;
}

export interface JournalOptions {
  /** Starts that may run an entry again before it is dropped as failing every time (count). */
  maxReplays: number;
  /** The file is rewritten to its open entries once it is at least this big (bytes)… */
  rewriteMinBytes: number;
  /** …and this many times its size after the last rewrite. */
  rewriteGrowth: number;
}

export const DEFAULT_JOURNAL_OPTIONS: JournalOptions = { maxReplays: 3, rewriteMinBytes: 1 << 20, rewriteGrowth: 2 };

type Frame = { b: number; k: string; p: unknown; r: number } | { e: number };

export class JobJournal {
  /** Entries the previous run left open, for the owner of each kind to run again and end. */
  readonly recovered: readonly JournalEntry[];
  private readonly open = new Map<number, JournalEntry>();
  private file: AppendOnlyFile | null;
  private nextId = 1;
  private sizeAfterRewrite = 0;

  private constructor(
    private readonly path: string | null,
    private readonly metrics: Metrics,
    private readonly options: JournalOptions,
  ) {
    metrics.describe('journal_begun', 'Jobs written to the job journal before their request was answered, by kind');
    metrics.describe('journal_recovered', 'Journal entries a start found open and ran again, by kind');
    metrics.describe('journal_abandoned', 'Journal entries dropped after failing to finish in maxReplays starts, by kind');
    metrics.describe('journal_open', 'Journal entries begun and not yet ended');
    if (!path) {
      this.file = null;
      this.recovered = [];
      return;
    }
    const found = new Map<number, JournalEntry>();
    let maxId = 0;
    const { file } = AppendOnlyFile.open(path, (payload) => {
      const f = JSON.parse(payload.toString('utf8')) as Frame;
      if ('e' in f) {
        found.delete(f.e);
      } else {
        found.set(f.b, { id: f.b, kind: f.k, payload: f.p, replays: f.r });
        maxId = Math.max(maxId, f.b);
      }
    });
    file.close();
    this.nextId = maxId + 1;
    const recovered: JournalEntry[] = [];
    for (const entry of found.values()) {
      const again = { ...entry, replays: entry.replays + 1 };
      if (again.replays > options.maxReplays) {
        metrics.inc('journal_abandoned', { kind: entry.kind });
        continue;
      }
      recovered.push(again);
      this.open.set(again.id, again);
      metrics.inc('journal_recovered', { kind: entry.kind });
    }
    this.recovered = recovered;
    // The replay counts must be on disk before anything runs again, or a crash loop never ends.
    this.file = this.rewrite();
    metrics.set('journal_open', {}, this.open.size);
  }

  /** A journal in `path` (created 0600 if missing), or one that keeps nothing when `path` is null. */
  static open(path: string | null, deps: { metrics: Metrics }, options: Partial<JournalOptions> = {}): JobJournal {
    return new JobJournal(path, deps.metrics, { ...DEFAULT_JOURNAL_OPTIONS, ...options });
  }

  /** True when entries reach a file (there is a data dir). */
  get durable(): boolean {
    return this.path !== null;
  }

  /** Entries begun and not ended. */
  get size(): number {
    return this.open.size;
  }

  /** Bytes in the file (0 without one). */
  get bytes(): number {
    return this.file?.bytes ?? 0;
  }

  /**
   * Writes the entry before returning (one write(): it survives a kill of the process from then on)
   * and returns its id for end(). `payload` must survive JSON.
   */
  begin(kind: string, payload: unknown): number {
    const id = this.nextId++;
    if (this.file) {
      const entry: JournalEntry = { id, kind, payload, replays: 0 };
      this.file.append(JSON.stringify({ b: id, k: kind, p: payload, r: 0 } satisfies Frame));
      this.open.set(id, entry);
    }
    this.metrics.inc('journal_begun', { kind });
    this.metrics.set('journal_open', {}, this.open.size);
    return id;
  }

  /** Clears an entry whose job is done (its effects are in their stores); ending twice is harmless. */
  end(id: number): void {
    if (!this.file || !this.open.delete(id)) return;
    this.file.append(JSON.stringify({ e: id } satisfies Frame));
    this.metrics.set('journal_open', {}, this.open.size);
    if (this.file.bytes >= Math.max(this.options.rewriteMinBytes, this.options.rewriteGrowth * this.sizeAfterRewrite)) {
      this.file = this.rewrite();
    }
  }

  close(): void {
    this.file?.close();
    this.file = null;
  }

  /** Writes the open entries to a new file and renames it over the journal (atomic against a kill). */
  private rewrite(): AppendOnlyFile {
    const path = this.path!;
    const tmp = `${path}.tmp`;
    rmSync(tmp, { force: true });
    const { file } = AppendOnlyFile.open(tmp, () => {});
    for (const e of this.open.values()) file.append(JSON.stringify({ b: e.id, k: e.kind, p: e.payload, r: e.replays } satisfies Frame));
    renameSync(tmp, path);
    this.file?.close();
    this.sizeAfterRewrite = file.bytes;
    return file;
  }
}
