import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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

describe('a topology with a data dir that is never closed (a killed process)', () => {
  const photoOf = (colour: string) => sharp({ create: { width: 32, height: 32, channels: 3, background: colour } }).jpeg().toBuffer();

  it('keeps every feed entry written before the kill, with no snapshot ever taken', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'scalegram-feeds-'));
    dirs.push(dataDir);
    const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 } });
    const t = await buildTopology({ config, seed: 4, dataDir, sampleEveryMs: 0, aofCheckEveryMs: 0 });
    const poster = await t.store.createUser({ username: 'poster', password: 'secret1', fullName: 'P', isPrivate: false });
    const fans = await Promise.all(Array.from({ length: 5 }, (_, i) => t.store.createUser({ username: `fan${i}`, password: 'secret1', fullName: 'F', isPrivate: false })));
    for (const f of fans) await t.store.setRelationship(f.user.id, poster.user.id, 'follow');
    const posts = [];
    for (let i = 0; i < 3; i++) posts.push(await t.store.createMedia({ userId: poster.user.id, caption: null, filter: 'Normal', lat: null, lng: null, locationName: null, image: await photoOf('#123') }));
    await t.idle();
    expect(readdirSync(join(dataDir, 'redis'))).not.toContain('dump.jsonl');
    // No close(): a new topology on the same directory starts from the files alone (a fresh mock).
    const after = await buildTopology({ config, seed: 4, dataDir, sampleEveryMs: 0, aofCheckEveryMs: 0 });
    try {
      const newestFirst = posts.map((p) => p.id).reverse();
      for (const f of fans) expect((await after.store.getFeed(f.user.id, { count: 10 })).items.map((m) => m.id)).toEqual(newestFirst);
      expect((await after.store.getFeed(poster.user.id, { count: 10 })).items.map((m) => m.id)).toEqual(newestFirst);
    } finally {
      await after.close();
    }
  });

  it('takes in the feeds.json of a data dir from before the AOF, once, then keeps its lists in the AOF', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'scalegram-legacy-'));
    dirs.push(dataDir);
    writeFileSync(join(dataDir, 'feeds.json'), JSON.stringify({ '1001': ['30', '20'], '1002': ['20'] }));
    const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 } });
    const t = await buildTopology({ config, seed: 4, dataDir, sampleEveryMs: 0, aofCheckEveryMs: 0 });
    try {
      expect(await t.feeds.dump()).toEqual({ '1001': ['30', '20'], '1002': ['20'] });
      expect(readdirSync(dataDir)).not.toContain('feeds.json');
      expect(readdirSync(join(dataDir, 'redis'))).toContain('dump.jsonl');
      expect(await t.feeds.range('1001', 10)).toEqual(['30', '20']); // the replica has them too
    } finally {
      await t.close();
    }
  });

  it('finishes a fan-out the journal still promises, once per follower, in id order, and indexes the post', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'scalegram-journal-'));
    dirs.push(dataDir);
    // A replica lag far longer than the test: the restarted server must have caught its replica up
    // with the replayed deliveries before it answers, not after the lag.
    const config = loadTopology('2012-sharded', { shards: { logical: 64, physical: 4 }, feed: { chunkSize: 2, replicaLagMs: 60_000 } });
    const t = await buildTopology({ config, seed: 5, dataDir, sampleEveryMs: 0, aofCheckEveryMs: 0 });
    const poster = await t.store.createUser({ username: 'poster', password: 'secret1', fullName: 'P', isPrivate: false });
    const fans = await Promise.all(Array.from({ length: 5 }, (_, i) => t.store.createUser({ username: `fan${i}`, password: 'secret1', fullName: 'F', isPrivate: false })));
    for (const f of fans) await t.store.setRelationship(f.user.id, poster.user.id, 'follow');
    const older = await t.store.createMedia({ userId: poster.user.id, caption: null, filter: 'Normal', lat: null, lng: null, locationName: null, image: await photoOf('#234') });
    const located = await t.store.createMedia({ userId: poster.user.id, caption: null, filter: 'Normal', lat: 48.85, lng: 2.35, locationName: 'Paris', image: await photoOf('#345') });
    const newer = await t.store.createMedia({ userId: poster.user.id, caption: null, filter: 'Normal', lat: null, lng: null, locationName: null, image: await photoOf('#456') });
    await t.idle();
    // The state a kill leaves mid-fan-out of `located`: two followers reached, three not, and
    // neither the fan-out nor the geo indexing ended in the journal.
    const missed = fans.slice(2).map((f) => f.user.id);
    await t.feeds.remove(missed, located.id);
    t.geo!.removeMedia(located.id);
    t.journal.begin('fanout', { mediaId: located.id, ownerId: poster.user.id, postedMs: located.createdMs });
    t.journal.begin('geo-index', { mediaId: located.id, lat: 48.85, lng: 2.35, createdMs: located.createdMs });
    t.journal.begin('fanout', { mediaId: '1234567890123', ownerId: poster.user.id, postedMs: 0 }); // a post deleted since

    const after = await buildTopology({ config, seed: 5, dataDir, sampleEveryMs: 0, aofCheckEveryMs: 0 });
    try {
      const expected = [newer.id, located.id, older.id];
      for (const f of fans) expect((await after.store.getFeed(f.user.id, { count: 10 })).items.map((m) => m.id)).toEqual(expected);
      expect(after.metrics.sum('fanout_deliveries')).toBe(3);
      expect(after.journal.size).toBe(0);
      expect((await after.store.searchMedia({ lat: 48.85, lng: 2.35, distanceM: 1000, count: 10 })).map((m) => m.id)).toEqual([located.id]);
    } finally {
      await after.close();
    }
    // Closed cleanly: the journal is empty and the next start replays nothing.
    const third = await buildTopology({ config, seed: 5, dataDir, sampleEveryMs: 0 });
    try {
      expect(third.journal.recovered).toHaveLength(0);
    } finally {
      await third.close();
    }
  });
});
