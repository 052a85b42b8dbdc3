// Files under --data-dir hold password and token hashes and everyone's photos: after writes of
// every kind, every directory under it is 0700 and every file 0600 (SQLite's -wal and -shm, blobs,
// the Redis AOF and snapshot, the job journal, the shard maps), whatever the umask.

import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { prepareDataDir } from '../sim/parts/data-dir.ts';
import { loadTopology } from '../sim/topology-config.ts';
import { buildTopology } from '../sim/topology.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Every entry under `root` (root included) as [path relative to root, 'dir' | 'file', mode bits]. */
function listModes(root: string): Array<[string, 'dir' | 'file', number]> {
  const out: Array<[string, 'dir' | 'file', number]> = [];
  const walk = (path: string) => {
    const st = lstatSync(path);
    out.push([relative(root, path) || '.', st.isDirectory() ? 'dir' : 'file', st.mode & 0o777]);
    if (st.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
  };
  walk(root);
  return out;
}

const loose = (entries: Array<[string, 'dir' | 'file', number]>) => entries.filter(([, kind, mode]) => mode !== (kind === 'dir' ? 0o700 : 0o600));

describe('a data dir', () => {
  it('holds only 0700 directories and 0600 files after writes of every kind, even under umask 000', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'scalegram-modes-'));
    dirs.push(parent);
    const dataDir = join(parent, 'data');
    const umask = process.umask(0);
    try {
      const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 } });
      const t = await buildTopology({ config, seed: 8, dataDir, sampleEveryMs: 0, aofCheckEveryMs: 0 });
      const a = await t.store.createUser({ username: 'ann', password: 'secret1', fullName: 'A', isPrivate: false });
      const b = await t.store.createUser({ username: 'ben', password: 'secret1', fullName: 'B', isPrivate: true });
      await t.store.setRelationship(b.user.id, a.user.id, 'follow');
      await t.store.login('ben', 'secret1');
      const photo = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#468' } }).jpeg().toBuffer();
      const m = await t.store.createMedia({ userId: a.user.id, caption: 'here #modes', filter: 'Normal', lat: 48.85, lng: 2.35, locationName: 'Paris', image: photo });
      await t.store.like(m.id, b.user.id);
      await t.store.createMedia({ userId: a.user.id, caption: null, filter: 'Normal', lat: null, lng: null, locationName: null, image: photo });
      await t.idle();
      const group = t.db.groups[0]!;
      await t.db.moveShard(group.name, 5, (group.map.physicalOf(5) + 1) % group.servers.length); // rewrites the shard map
      await t.rewriteAof(); // a snapshot and a new AOF generation
      await t.faults.failPrimary('db-1'); // its promoted replica's image replaces the file
      await t.store.like(m.id, a.user.id);

      // While it runs: the SQLite -wal and -shm files exist now.
      const running = listModes(dataDir);
      const names = running.map(([p]) => p);
      for (const expected of ['jobs.journal', 'redis/dump.jsonl', 'redis/appendonly.1.aof', 'geo.sqlite', 'geo.sqlite-wal', 'geo.sqlite-shm', 'db/db-0.sqlite', 'db/db-0.sqlite-wal', 'db/db-0.sqlite-shm', 'db/db-1.sqlite', 'shard-map-main.json']) {
        expect(names).toContain(expected);
      }
      expect(names.filter((p) => p.startsWith('blobs/objects/') && p.endsWith('.jpg'))).toHaveLength(6);
      expect(running.length).toBeGreaterThan(40);
      expect(loose(running)).toEqual([]);

      await t.close();
      expect(loose(listModes(dataDir))).toEqual([]);
    } finally {
      process.umask(umask);
    }
  });

  it('is tightened on start, with everything under it, when it exists with a looser mode', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'scalegram-loose-'));
    dirs.push(dataDir);
    mkdirSync(join(dataDir, 'blobs', 'objects', 'media'), { recursive: true });
    writeFileSync(join(dataDir, 'blobs', 'objects', 'media', 'old.jpg'), 'bytes');
    writeFileSync(join(dataDir, 'notes.txt'), 'left by an operator');
    chmodSync(join(dataDir, 'blobs', 'objects', 'media', 'old.jpg'), 0o644);
    chmodSync(join(dataDir, 'notes.txt'), 0o666);
    for (const d of [dataDir, join(dataDir, 'blobs'), join(dataDir, 'blobs', 'objects'), join(dataDir, 'blobs', 'objects', 'media')]) chmodSync(d, 0o755);
    expect(loose(listModes(dataDir)).length).toBe(6);
    expect(prepareDataDir(dataDir)).toBe(6);
    expect(loose(listModes(dataDir))).toEqual([]);
    // An owner's execute bit survives; only group and other bits go.
    chmodSync(join(dataDir, 'notes.txt'), 0o755);
    chmodSync(dataDir, 0o750);
    expect(prepareDataDir(dataDir)).toBe(2);
    expect(lstatSync(join(dataDir, 'notes.txt')).mode & 0o777).toBe(0o700);
    // A dir already at 0700 is not walked (nothing this code writes is looser): the cost stays flat.
    chmodSync(join(dataDir, 'notes.txt'), 0o644);
    expect(prepareDataDir(dataDir)).toBe(0);
  });
});
