// The in-process Redis's AOF: framed records cut at a torn tail, replay after a "kill" (the mock
// dropped, the files kept), rewrites that leave loadable files at every step, and the commands
// it refuses because a replay could not reproduce them.

import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { AppendOnlyFile, crc32, crc32Js, encodeFrame, FRAME_HEADER_BYTES } from '../sim/parts/append-only-file.ts';
import { RealClock } from '../sim/engine/clock.ts';
import { isSimError } from '../sim/engine/errors.ts';
import { Metrics } from '../sim/observability/metrics.ts';
import { PersistentRedis } from '../sim/parts/redis-aof.ts';
import { createRedis } from '../sim/parts/redis-client.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'scalegram-aof-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

let mockSeq = 0;
/** A fresh, empty mock node: what a restarted process starts from. */
const freshMock = (): Redis => createRedis({ name: `aof-test-${process.pid}-${++mockSeq}` });

async function openOn(dir: string, policy = {}) {
  const metrics = new Metrics(new RealClock());
  const { redis, report } = await PersistentRedis.open(dir, freshMock(), { metrics, node: 'feed-primary', policy });
  return { redis, client: redis.client, report, metrics };
}

function payloadsOf(path: string): string[] {
  const out: string[] = [];
  const { file } = AppendOnlyFile.open(path, (p) => out.push(p.toString('utf8')));
  file.close();
  return out;
}

describe('an append-only file of framed records', () => {
  it('gives back every whole frame and cuts a frame torn mid-write, then appends after the last whole one', () => {
    const path = join(tempDir(), 'log');
    const { file } = AppendOnlyFile.open(path, () => {});
    for (let i = 0; i < 100; i++) file.append(`record ${i} ` + 'x'.repeat(i * 37));
    file.close();
    const whole = statSync(path).size;
    // A kill during the next write(): its header and part of its payload reached the file.
    const torn = encodeFrame(Buffer.from('never acknowledged ' + 'y'.repeat(500)));
    appendFileSync(path, torn.subarray(0, FRAME_HEADER_BYTES + 100));
    const seen: string[] = [];
    const opened = AppendOnlyFile.open(path, (p) => seen.push(p.toString('utf8')));
    expect(seen).toHaveLength(100);
    expect(seen[99]).toBe('record 99 ' + 'x'.repeat(99 * 37));
    expect(opened.droppedBytes).toBe(FRAME_HEADER_BYTES + 100);
    expect(statSync(path).size).toBe(whole);
    opened.file.append('after the restart');
    opened.file.close();
    expect(payloadsOf(path).slice(-2)).toEqual(['record 99 ' + 'x'.repeat(99 * 37), 'after the restart']);
  });

  it('stops at a frame whose checksum fails, even when its length fits', () => {
    const path = join(tempDir(), 'log');
    const { file } = AppendOnlyFile.open(path, () => {});
    file.append('first');
    file.append('second');
    file.close();
    const bytes = readFileSync(path);
    bytes[bytes.length - 1]! ^= 0xff; // the last byte of "second"
    writeFileSync(path, bytes);
    expect(payloadsOf(path)).toEqual(['first']);
    expect(statSync(path).size).toBe(FRAME_HEADER_BYTES + 5);
  });

  it('reads frames larger than its read buffer and more of them than fit one read', () => {
    const path = join(tempDir(), 'log');
    const { file } = AppendOnlyFile.open(path, () => {});
    const big = 'z'.repeat(9 * 2 ** 20); // over two 4 MiB read chunks
    file.append(big);
    for (let i = 0; i < 5000; i++) file.append(`small ${i}`);
    file.close();
    const seen = payloadsOf(path);
    expect(seen).toHaveLength(5001);
    expect(seen[0]!.length).toBe(big.length);
    expect(seen[5000]).toBe('small 4999');
  });

  it('computes the same CRC-32 in JavaScript as zlib (the fallback for Node before 20.15)', () => {
    const data = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256));
    expect(crc32Js(Buffer.from('123456789'))).toBe(0xcbf43926); // the standard check value
    expect(crc32Js(data)).toBe(crc32(data));
  });
});

describe('the in-process Redis with an AOF', () => {
  it('replays every acknowledged write after a kill, with no snapshot ever written', async () => {
    const dir = tempDir();
    const first = await openOn(dir);
    const c = first.client;
    await c.lpush('feed:1', 'a');
    await Promise.all(['b', 'c', 'd'].map((id) => c.lpush('feed:1', id)));
    await c.ltrim('feed:1', 0, 2);
    await c.lrem('feed:1', 0, 'c');
    await c.rpush('feed:2', 'x', 'y');
    await c.del('feed:2');
    await c.sadd('s', 'm1', 'm2', 'm3');
    await c.srem('s', 'm2');
    await c.hset('h', { f1: 'v1', f2: 'v2' });
    await c.set('str', 'value');
    await c.zadd('z', 2, 'two', 1, 'one');
    const before = { list: await c.lrange('feed:1', 0, -1), set: (await c.smembers('s')).sort(), hash: await c.hgetall('h'), str: await c.get('str'), z: await c.zrange('z', 0, -1, 'WITHSCORES') };
    expect(before.list).toEqual(['d', 'b']);
    // No close(): the process "dies" here; a new process starts from an empty mock and the files.
    const second = await openOn(dir);
    const r = second.client;
    expect(await r.lrange('feed:1', 0, -1)).toEqual(before.list);
    expect(await r.exists('feed:2')).toBe(0);
    expect((await r.smembers('s')).sort()).toEqual(before.set);
    expect(await r.hgetall('h')).toEqual(before.hash);
    expect(await r.get('str')).toBe('value');
    expect(await r.zrange('z', 0, -1, 'WITHSCORES')).toEqual(before.z);
    expect(second.report.replayedCommands).toBe(13);
  });

  it('has written a command to the file by the time its reply arrives, in one frame per turn', async () => {
    const dir = tempDir();
    const { client } = await openOn(dir);
    const pushes = Array.from({ length: 500 }, (_, i) => client.lpush(`feed:${i}`, 'm'));
    await pushes[0];
    // The first reply let through already needed all 500 (issued in the same turn) on disk.
    const aof = readdirSync(dir).find((n) => n.endsWith('.aof'))!;
    const written = payloadsOf(join(dir, aof)).map((p) => JSON.parse(p) as string[][]);
    expect(written).toHaveLength(1);
    expect(written[0]).toHaveLength(500);
    expect(written[0]![499]).toEqual(['lpush', 'feed:499', 'm']);
    await Promise.all(pushes);
  });

  it('drops a torn last frame on start: the writes in it were never acknowledged', async () => {
    const dir = tempDir();
    const first = await openOn(dir);
    await first.client.lpush('feed:1', 'kept');
    const aof = join(dir, readdirSync(dir).find((n) => n.endsWith('.aof'))!);
    const torn = encodeFrame(Buffer.from(JSON.stringify([['lpush', 'feed:1', 'torn']])));
    appendFileSync(aof, torn.subarray(0, torn.length - 3));
    const second = await openOn(dir);
    expect(await second.client.lrange('feed:1', 0, -1)).toEqual(['kept']);
    expect(second.report.droppedBytes).toBe(torn.length - 3);
  });

  it('after a rewrite loads the snapshot plus the new generation, and deletes the old generation', async () => {
    const dir = tempDir();
    const first = await openOn(dir);
    for (let i = 0; i < 50; i++) await first.client.lpush('feed:1', `m${i}`);
    await first.redis.rewrite();
    await first.client.lpush('feed:1', 'after');
    expect(readdirSync(dir).sort()).toEqual(['appendonly.1.aof', 'dump.jsonl']);
    const second = await openOn(dir);
    expect(second.report.snapshotKeys).toBe(1);
    expect(second.report.replayedCommands).toBe(1);
    expect(await second.client.llen('feed:1')).toBe(51);
    expect(await second.client.lindex('feed:1', 0)).toBe('after');
  });

  it('loads the same data from the files a rewrite leaves at each step, so a kill anywhere in it loses nothing', async () => {
    const dir = tempDir();
    const first = await openOn(dir);
    for (let i = 0; i < 20; i++) await first.client.rpush('feed:1', `m${i}`);
    await first.redis.rewrite(); // generation 1, snapshot at 20 entries
    for (let i = 20; i < 30; i++) await first.client.rpush('feed:1', `m${i}`);
    const expected = await first.client.lrange('feed:1', 0, -1);

    // Killed after the switch to generation 2 but before the new snapshot was renamed into place:
    // the old snapshot (generation 1), generation 1's AOF and an empty generation 2.
    const midway = tempDir();
    for (const name of readdirSync(dir)) writeFileSync(join(midway, name), readFileSync(join(dir, name)));
    writeFileSync(join(midway, 'appendonly.2.aof'), '');
    writeFileSync(join(midway, 'dump.jsonl.tmp'), '{"format":"scalegram-redis-dump","version":1,"generation":2}\n["feed:1","list",["half'); // torn temp snapshot
    expect(await (await openOn(midway)).client.lrange('feed:1', 0, -1)).toEqual(expected);

    // Killed after the rename but before generation 1 was deleted: it must not be replayed again.
    await first.redis.rewrite();
    writeFileSync(join(dir, 'appendonly.1.aof'), readFileSync(join(midway, 'appendonly.1.aof')));
    const after = await openOn(dir);
    expect(await after.client.lrange('feed:1', 0, -1)).toEqual(expected);
    expect(readdirSync(dir)).not.toContain('appendonly.1.aof');
  });

  it('holds writes issued during a rewrite and applies them after it, in order, into the new generation', async () => {
    const dir = tempDir();
    const first = await openOn(dir);
    await first.client.rpush('l', 'a');
    const rewriting = first.redis.rewrite();
    const held = [first.client.rpush('l', 'b'), first.client.rpush('l', 'c'), first.client.lrem('l', 0, 'a')];
    await Promise.all([rewriting, ...held]);
    expect(await first.client.lrange('l', 0, -1)).toEqual(['b', 'c']);
    const second = await openOn(dir);
    expect(await second.client.lrange('l', 0, -1)).toEqual(['b', 'c']);
    expect(second.report.snapshotKeys).toBe(1);
  });

  it('rewrites when the policy says so: at the minimum size and the growth over the last snapshot', async () => {
    const dir = tempDir();
    const { redis, client } = await openOn(dir, { rewriteMinBytes: 2000, rewriteGrowth: 1 });
    let writes = 0;
    while (!redis.rewriteDue()) {
      await client.rpush('l', `entry-${writes++}`);
      if (writes > 10_000) throw new Error('never due');
    }
    expect(redis.aofBytes).toBeGreaterThanOrEqual(2000);
    expect(redis.aofBytes).toBeLessThan(2100);
    await redis.rewrite();
    expect(redis.aofBytes).toBe(0);
    expect(redis.rewriteDue()).toBe(false);
  });

  it('refuses commands a replay could not reproduce, without running them', async () => {
    const { client } = await openOn(tempDir());
    await client.set('k', 'v');
    const refused = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return isSimError(err, 'SG_ERR_INVALID_PARAM');
      }
      return false;
    };
    expect(refused(() => client.expire('k', 10))).toBe(true);
    expect(refused(() => client.multi())).toBe(true);
    expect(refused(() => client.spop('s'))).toBe(true);
    expect(refused(() => client.call('set', 'k', 'other'))).toBe(true);
    expect(await client.ttl('k')).toBe(-1);
    expect(await client.get('k')).toBe('v');
  });

  it('writes a snapshot on close, so the next start replays nothing', async () => {
    const dir = tempDir();
    const first = await openOn(dir);
    await first.client.rpush('l', 'a', 'b');
    await first.redis.close();
    const second = await openOn(dir);
    expect(second.report).toEqual({ snapshotKeys: 1, replayedCommands: 0, droppedBytes: 0 });
    expect(await second.client.lrange('l', 0, -1)).toEqual(['a', 'b']);
    const modes = readdirSync(dir).map((n) => statSync(join(dir, n)).mode & 0o777);
    expect(modes.every((m) => m === 0o600)).toBe(true);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('keeps a file with a bad frame in the middle readable up to that frame (and says how much it cut)', async () => {
    const dir = tempDir();
    const first = await openOn(dir);
    await first.client.rpush('l', 'a');
    await first.client.rpush('l', 'b');
    const aof = join(dir, 'appendonly.0.aof');
    const size = statSync(aof).size;
    const bytes = readFileSync(aof);
    bytes[size - 2]! ^= 0x01; // damage the second frame
    writeFileSync(aof, bytes);
    const second = await openOn(dir);
    expect(await second.client.lrange('l', 0, -1)).toEqual(['a']);
    expect(second.report.droppedBytes).toBe(size - statSync(aof).size);
    expect(second.report.droppedBytes).toBeGreaterThan(0);
  });
});
