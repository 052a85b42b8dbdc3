// `scalegram report` on a result.json that passes its shape checks but holds a damaged encoded
// histogram: a usage error (exit 2) naming the file, no stack trace, and nothing written.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const tmp = mkdtempSync(join(tmpdir(), 'scalegram-damaged-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('scalegram report on a damaged result', () => {
  it('exits 2 with a message and writes nothing', () => {
    const doc = JSON.parse(readFileSync('test/fixtures/reports/cache-node-loss/result.json', 'utf8')) as { metrics: { metrics: Array<{ hdr?: string }> } };
    for (const m of doc.metrics.metrics) if (m.hdr) m.hdr = 'HISTFAAAAAAAAAAgarbage';
    writeFileSync(join(tmp, 'result.json'), JSON.stringify(doc));
    const r = spawnSync(process.execPath, ['bin/scalegram.mjs', 'report', tmp], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/could not be rendered .*damaged/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(tmp)).toEqual(['result.json']);
  });
});
