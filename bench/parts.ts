// What each part of the live topology costs on this machine, measured directly on a topology built
// by the same code `scalegram run` serves (sim/topology.ts): real queries through the database
// cluster (pool, replica catch-up, replication log), real cache-cluster gets and multigets, real
// feed-store Redis commands, an empty job through the job queue, the image resize, the blob puts and
// the password hash. `scalegram calibrate` turns these into the `capacity` costs the simulator charges.

import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { hashPassword } from '../sim/domain/credentials.ts';
import { Prng } from '../sim/engine/prng.ts';
import { encodeId, shardOf } from '../sim/parts/ids.ts';
import { renderVariants } from '../sim/parts/image-resizer.ts';
import type { TopologyConfig } from '../sim/topology-config.ts';
import { buildTopology, type BuildOptions } from '../sim/topology.ts';

export interface PartCost {
  what: string;
  samples: number;
  p50Us: number;
  p99Us: number;
}

/** The scenario photo (640×640 JPEG) every upload of the calibration workload sends. */
export const CALIBRATION_PHOTO = fileURLToPath(new URL('../scenarios/assets/photo.jpg', import.meta.url));

/** Samples per part: cheap parts many times, the resize and the hash fewer (count). */
export interface PartSamples {
  cheap: number;
  costly: number;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Runs `fn` `warm` times unmeasured, then `n` times, one at a time; p50 and p99 in µs. */
async function time(what: string, n: number, fn: (i: number) => unknown): Promise<PartCost> {
  const warm = Math.max(2, Math.ceil(n / 10));
  for (let i = 0; i < warm; i++) await fn(i);
  const us: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(warm + i);
    us.push((performance.now() - t0) * 1000);
  }
  us.sort((a, b) => a - b);
  const round = (v: number) => Math.round(v * 100) / 100;
  return { what, samples: n, p50Us: round(quantile(us, 0.5)), p99Us: round(quantile(us, 0.99)) };
}

/**
 * Measures every part, in order, reporting each name as it starts. The rows written first (users,
 * media, feed lists) come from `seed`, so a run is reproducible up to the machine's timing.
 */
export async function measureParts(config: TopologyConfig, seed: number, samples: PartSamples, onPart: (name: string) => void = () => {}, backends?: Pick<BuildOptions, 'redisUrl' | 'amqpUrl' | 'memcached' | 'postgres'>): Promise<Record<string, PartCost>> {
  const topology = await buildTopology({ config, seed, ...backends });
  const rng = new Prng(seed).fork('calibrate-parts');
  const out: Record<string, PartCost> = {};
  try {
    const { db, cache, feeds, queue, blobs } = topology;
    const logical = config.shards.logical;
    const users: bigint[] = [];
    const nowMs = Date.now();
    for (let i = 0; i < 200; i++) users.push(encodeId(nowMs - 1000 + i, rng.int(0, logical - 1), i % 1024, config.idEpochMs));
    const insertUser = (id: bigint, tag: string) =>
      db.write('users', shardOf(id), 'calibrate.user', (sql) =>
        sql.run('INSERT INTO users (shard_id, id, username, full_name, password_hash, created_ms) VALUES (?, ?, ?, ?, ?, ?)', shardOf(id), id, `cal${tag}`, `Calibration ${tag}`, 'x', nowMs),
      );

    onPart('queryMs.write');
    out['queryMs.write'] = await time('INSERT one users row on its primary (logged for the replica)', samples.cheap, (i) => insertUser(users[i % users.length]! + BigInt(1 << 23) * BigInt(i + 1), `w${i}`));
    for (const [i, id] of users.entries()) await insertUser(id, String(i));
    // 40 media rows for each of the first 20 users: a page of 20 is a real range scan.
    for (let u = 0; u < 20; u++) {
      const owner = users[u]!;
      for (let k = 0; k < 40; k++) {
        const mediaId = encodeId(nowMs - 100_000 + k, shardOf(owner), (u * 40 + k) % 1024, config.idEpochMs) + BigInt(u) * BigInt(1 << 30);
        await db.write('photos', shardOf(owner), 'calibrate.media', (sql) =>
          sql.run('INSERT OR IGNORE INTO media (shard_id, id, user_id, created_ms, filter, tags, images) VALUES (?, ?, ?, ?, ?, ?, ?)', shardOf(owner), mediaId, owner, nowMs, 'Normal', '[]', '{}'),
        );
      }
    }
    onPart('queryMs.pkRead');
    out['queryMs.pkRead'] = await time('SELECT a users row by primary key (replica by the read policy)', samples.cheap, (i) => {
      const id = users[i % users.length]!;
      return db.read('users', shardOf(id), 'calibrate.pk', (sql) => sql.get('SELECT * FROM users WHERE id = ?', id));
    });
    onPart('queryMs.rangeRead');
    out['queryMs.rangeRead'] = await time("SELECT a page of 20 of a user's media by index range", samples.cheap, (i) => {
      const owner = users[i % 20]!;
      return db.read('photos', shardOf(owner), 'calibrate.range', (sql) => sql.all('SELECT * FROM media WHERE user_id = ? ORDER BY id DESC LIMIT 20', owner));
    });

    // Cache: 20 objects of the modelled media size, then one-key gets and 20-key multigets of them.
    const value = 'x'.repeat(config.capacity.objectBytes.media);
    const keys = Array.from({ length: 400 }, (_, i) => `m:cal${i}`);
    // On real memcached (--stack real) a lookup is a round trip to the node's process, and a set is
    // timed until the node answers it (the cluster itself sends sets without waiting).
    const tier = topology.memcached;
    const setOnNode = (k: string) => tier!.node(cache.nodeFor(k)!).set(k, value, 0);
    if (tier) for (const k of keys) await setOnNode(k);
    else for (const k of keys) cache.set(k, value);
    onPart('cache.get');
    out['cache.get'] = await time('memcached get of one key', samples.cheap, (i) => (tier ? cache.fetch(keys[i % keys.length]!) : cache.get(keys[i % keys.length]!)));
    onPart('cache.getMany20');
    out['cache.getMany20'] = await time('memcached multiget of 20 keys (ketama spreads them over the nodes)', samples.cheap, (i) => {
      const start = (i * 20) % (keys.length - 20);
      const batch = keys.slice(start, start + 20);
      return tier ? cache.fetchMany(batch) : cache.getMany(batch);
    });
    onPart('cache.set');
    out['cache.set'] = await time('memcached set of one media object', samples.cheap, (i) => (tier ? setOnNode(keys[i % keys.length]!) : cache.set(keys[i % keys.length]!, value)));

    // Feed store: lists of 20 entries, then LRANGE pages of them.
    const listUsers = users.slice(0, 50).map(String);
    for (let k = 0; k < 20; k++) await feeds.push(listUsers, String(encodeId(nowMs + k, 0, k, config.idEpochMs)));
    onPart('redis.lrange');
    out['redis.lrange'] = await time('feed-store LRANGE of a 20-entry page', samples.cheap, (i) => feeds.range(listUsers[i % listUsers.length]!, 20));
    // A fan-out chunk's deliveries: one media id pushed onto 1,000 followers' lists, as the chunk
    // job does it (the feed store's pipelined LPUSHes, its replica's, its counters), a new id each time.
    const followers = Array.from({ length: 1000 }, (_, i) => String(encodeId(nowMs - 2000 + i, i % logical, i % 1024, config.idEpochMs)));
    onPart('redis.push1000');
    out['redis.push1000'] = await time("a fan-out chunk's push of one media id onto 1,000 feed lists", samples.costly, (i) => feeds.push(followers, String(encodeId(nowMs + 100 + i, 0, i % 1024, config.idEpochMs))));

    queue.register('calibrate-noop', async () => {});
    onPart('job.empty');
    out['job.empty'] = await time('an empty job: queued, taken by a worker, finished', samples.cheap, () => queue.submit('calibrate-noop', null));

    const photo = readFileSync(CALIBRATION_PHOTO);
    onPart('image.resize');
    out['image.resize'] = await time('the 150/306/612 px JPEGs of the 640×640 scenario photo (sharp)', samples.costly, () => renderVariants(photo));
    const variants = await renderVariants(photo);
    onPart('blob.put3');
    out['blob.put3'] = await time('blob-store puts of the three sizes', samples.cheap, async (i) => {
      for (const size of [150, 306, 612] as const) await blobs.put(`cal/${i % 50}_${size}.jpg`, variants[size], 'image/jpeg');
    });
    onPart('password.hash');
    out['password.hash'] = await time('one Argon2id password hash', samples.costly, (i) => hashPassword(`calibrate-${i}`));
  } finally {
    await topology.close();
  }
  return out;
}
