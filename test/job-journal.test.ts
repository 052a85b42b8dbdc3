// The job journal: what a start finds open is exactly what was begun and not ended, a torn last
// entry is dropped, the file is rewritten down to the open entries, and an entry that keeps
// failing is dropped after its replay budget instead of looping forever.

import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame } from '../sim/parts/append-only-file.ts';
import { RealClock } from '../sim/engine/clock.ts';
import { JobJournal } from '../sim/parts/job-journal.ts';
import { Metrics } from '../sim/observability/metrics.ts';

const dirs: string[] = [];
function journalPath(): string {
  const d = mkdtempSync(join(tmpdir(), 'scalegram-journal-'));
  dirs.push(d);
  return join(d, 'jobs.journal');
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const open = (path: string, options = {}) => {
  const metrics = new Metrics(new RealClock());
  return { journal: JobJournal.open(path, { metrics }, options), metrics };
};

describe('the job journal', () => {
  it('hands the next start every entry begun and not ended, with its payload, and nothing else', () => {
    const path = journalPath();
    const { journal } = open(path);
    const ids = Array.from({ length: 10 }, (_, i) => journal.begin(i % 2 ? 'fanout' : 'geo-index', { mediaId: String(1000 + i), n: i }));
    for (const id of ids.filter((_, i) => i % 3 === 0)) journal.end(id);
    journal.end(ids[0]!); // twice: harmless
    // No close(): killed.
    const next = open(path).journal;
    expect(next.recovered.map((e) => e.payload)).toEqual([1, 2, 4, 5, 7, 8].map((i) => ({ mediaId: String(1000 + i), n: i })));
    expect(next.recovered.map((e) => e.kind)).toEqual(['fanout', 'geo-index', 'geo-index', 'fanout', 'fanout', 'geo-index']);
    expect(next.recovered.every((e) => e.replays === 1)).toBe(true);
    expect(next.size).toBe(6);
    // New ids never collide with the recovered ones.
    expect(ids).not.toContain(next.begin('fanout', {}));
  });

  it('drops a torn last entry: a request that died while journaling was never answered', () => {
    const path = journalPath();
    const { journal } = open(path);
    journal.begin('fanout', { mediaId: '1' });
    const torn = encodeFrame(Buffer.from(JSON.stringify({ b: 2, k: 'fanout', p: { mediaId: '2' }, r: 0 })));
    appendFileSync(path, torn.subarray(0, torn.length - 1));
    expect(open(path).journal.recovered.map((e) => e.id)).toEqual([1]);
  });

  it('rewrites itself down to the open entries once it has grown past its threshold', () => {
    const path = journalPath();
    const { journal } = open(path, { rewriteMinBytes: 4096, rewriteGrowth: 2 });
    const kept = journal.begin('fanout', { mediaId: 'kept' });
    let maxBytes = 0;
    for (let i = 0; i < 2000; i++) {
      journal.end(journal.begin('fanout', { mediaId: String(i), pad: 'x'.repeat(50) }));
      maxBytes = Math.max(maxBytes, statSync(path).size);
    }
    // 2000 begin+end pairs are ~200 KB unrewritten; the file never grew much past the threshold.
    expect(maxBytes).toBeLessThan(4096 + 200);
    expect(open(path).journal.recovered.map((e) => e.id)).toEqual([kept]);
  });

  it('runs an entry again on at most maxReplays starts, then drops it and counts it', () => {
    const path = journalPath();
    open(path).journal.begin('fanout', { mediaId: 'crashes every time' });
    const seen: number[] = [];
    for (let start = 1; start <= 4; start++) {
      const { journal, metrics } = open(path, { maxReplays: 3 });
      seen.push(journal.recovered.length);
      if (start === 4) expect(metrics.value('journal_abandoned', { kind: 'fanout' })).toBe(1);
      // Each start dies before ending the entry.
    }
    expect(seen).toEqual([1, 1, 1, 0]);
  });

  it('keeps nothing and writes nothing without a path', () => {
    const metrics = new Metrics(new RealClock());
    const journal = JobJournal.open(null, { metrics });
    const id = journal.begin('fanout', { mediaId: '1' });
    journal.end(id);
    expect([journal.durable, journal.size, journal.bytes, journal.recovered.length]).toEqual([false, 0, 0, 0]);
    expect(metrics.value('journal_begun', { kind: 'fanout' })).toBe(1);
  });

  it('is a 0600 file', () => {
    const path = journalPath();
    open(path).journal.begin('fanout', {});
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});
