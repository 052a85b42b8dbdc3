import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { loadTopology } from '../sim/topology-config.ts';
import { buildTopology } from '../sim/topology.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('a topology with a data dir', () => {
  it.each(['2012-sharded', '2011-vertical', '2010-single'])('%s keeps users, tokens, media, bytes, tags, feeds and the shard map across a restart', async (preset) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'scalegram-durable-'));
    dirs.push(dataDir);
    const config = loadTopology(preset, { shards: { logical: 64, physical: Math.min(4, loadTopology(preset).shards.physical) } });
    const photo = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#468' } }).jpeg().toBuffer();

    const first = await buildTopology({ config, seed: 3, dataDir, sampleEveryMs: 0 });
    const a = await first.store.createUser({ username: 'ann', password: 'secret1', fullName: 'Ann', isPrivate: false });
    const b = await first.store.createUser({ username: 'ben', password: 'secret1', fullName: 'Ben', isPrivate: false });
    await first.store.setRelationship(b.user.id, a.user.id, 'follow');
    const media = await first.store.createMedia({ userId: a.user.id, caption: 'kept #durable', filter: 'Normal', lat: null, lng: null, locationName: null, image: photo });
    await first.idle();
    const group = first.db.groups[0]!;
    const movedShard = 5;
    const target = (group.map.physicalOf(movedShard) + 1) % group.servers.length;
    if (group.servers.length > 1) await first.db.moveShard(group.name, movedShard, target);
    await first.close();

    const second = await buildTopology({ config, seed: 3, dataDir, sampleEveryMs: 0 });
    try {
      expect(await second.store.authenticate(a.accessToken)).toBe(a.user.id);
      expect((await second.store.getUser(a.user.id))?.counts).toEqual({ media: 1, follows: 0, followedBy: 1 });
      expect((await second.store.getMedia(media.id))?.caption?.text).toBe('kept #durable');
      expect((await second.store.getFeed(b.user.id, { count: 10 })).items.map((m) => m.id)).toEqual([media.id]);
      expect((await second.store.getBlob(media.images.standardResolution.key))?.bytes.length).toBeGreaterThan(100);
      expect((await second.store.getTag('durable'))?.mediaCount).toBe(1);
      if (group.servers.length > 1) expect(second.db.groups[0]!.map.physicalOf(movedShard)).toBe(target);
      // The signup counter resumes from the rows, so a new user does not collide.
      const c = await second.store.createUser({ username: 'cat', password: 'secret1', fullName: 'Cat', isPrivate: false });
      expect(c.user.id).not.toBe(a.user.id);
    } finally {
      await second.close();
    }
  });
});

describe('feed lists with a data dir and the in-process Redis', () => {
  it('are written to disk while running, so a crash (no close) keeps them up to the last snapshot', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'scalegram-feeds-'));
    dirs.push(dataDir);
    const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 }, feed: { replicas: 0 } });
    const t = await buildTopology({ config, seed: 4, dataDir, sampleEveryMs: 0, feedSnapshotEveryMs: 50 });
    const a = await t.store.createUser({ username: 'poster', password: 'secret1', fullName: 'P', isPrivate: false });
    const photo = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#123' } }).jpeg().toBuffer();
    const m = await t.store.createMedia({ userId: a.user.id, caption: null, filter: 'Normal', lat: null, lng: null, locationName: null, image: photo });
    await new Promise((r) => setTimeout(r, 150));
    // No close(): read what is on disk, as a restart after a crash would.
    const saved = JSON.parse(readFileSync(join(dataDir, 'feeds.json'), 'utf8')) as Record<string, string[]>;
    expect(saved[a.user.id]).toEqual([m.id]);
    await t.close();
  });
});
