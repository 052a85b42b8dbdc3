// The bulk path for seeding large populations: rows go straight to each logical shard's server,
// many per statement, instead of one HTTP request (and one round of caches) per row. It keeps the
// same invariants as the Store (usernames unique, both directions of every follow, counts) and runs
// in slices of the event loop (TimeSlicer), so the API keeps answering while it loads.

import { hashPassword, mintAccessTokens, tokenDigest } from '../domain/credentials.ts';
import { simError } from '../engine/errors.ts';
import { shardOf } from '../parts/ids.ts';
import type { RowSource } from '../parts/db-node.ts';
import { shardForKey } from '../parts/shard-map.ts';
import type { Topology } from '../topology.ts';

export interface SeedUser {
  username: string;
  fullName: string;
  isPrivate?: boolean;
  bio?: string;
  website?: string;
}

export interface SeededUser {
  id: string;
  username: string;
  accessToken: string;
}

const hashCache = new Map<string, Promise<string>>();
/**
 * One Argon2id hash (one random salt) for every account seeded with `password` by this process:
 * hashing a million synthetic passwords would measure the KDF, not the topology. Accounts made
 * through the API each get their own salt and hash.
 */
function sharedHash(password: string): Promise<string> {
  let h = hashCache.get(password);
  if (!h) {
    h = hashPassword(password);
    hashCache.set(password, h);
    h.catch(() => hashCache.delete(password));
  }
  return h;
}

/**
 * Creates users in bulk (all with `password`); returns their ids and access tokens, in input order.
 * The usernames are claimed first, as the Store's signups claim theirs (INSERT OR IGNORE): if one
 * is taken, by an account that existed or by a signup made while this one ran, the claims made are
 * withdrawn and it fails with SG_ERR_USERNAME_TAKEN before any user or token row is written.
 */
export async function seedUsers(t: Topology, users: readonly SeedUser[], options: { password?: string } = {}): Promise<SeededUser[]> {
  const hash = await sharedHash(options.password ?? 'scalegram');
  const slicer = t.db.slicer;
  const n = users.length;
  const seen = new Set<string>();
  const now = Math.floor(t.clock.nowMs());
  // Columns, not rows: the rows are made as they are written (a million accounts would otherwise
  // be three million small arrays and BigInts for the garbage collector to walk).
  const shardIds = new Int32Array(n);
  const nameShards = new Int32Array(n);
  const lowers: string[] = new Array(n);
  const bigIds: bigint[] = new Array(n);
  const out: SeededUser[] = new Array(n);
  for (let i = 0; i < n; i++) {
    if ((i & 1023) === 1023) await slicer.yieldIfDue();
    const u = users[i]!;
    if (!/^[A-Za-z0-9._]{1,30}$/.test(u.username)) throw simError('SG_ERR_INVALID_PARAM', `bad username ${JSON.stringify(u.username)}`, { field: 'username' });
    const lower = u.username.toLowerCase();
    if (seen.has(lower)) throw simError('SG_ERR_USERNAME_TAKEN', `username ${u.username} appears twice in the seed`);
    seen.add(lower);
    const shardId = t.store.nextUserShard();
    const id = t.store.mintId('users', shardId);
    shardIds[i] = shardId;
    nameShards[i] = shardForKey(lower, t.config.shards.logical);
    lowers[i] = lower;
    bigIds[i] = BigInt(id);
    out[i] = { id, username: u.username, accessToken: '' };
  }
  // Tokens from the CSPRNG, never from the seed; the database keeps only their digests.
  for (let from = 0; from < n; from += 1024) {
    await slicer.yieldIfDue();
    const tokens = mintAccessTokens(out.slice(from, from + 1024).map((u) => u.id));
    for (let i = 0; i < tokens.length; i++) out[from + i]!.accessToken = tokens[i]!;
  }
  const names: RowSource = {
    length: n,
    shardOf: (i) => nameShards[i]!,
    fill: (i, p, at) => {
      p[at] = nameShards[i];
      p[at + 1] = lowers[i];
      p[at + 2] = bigIds[i];
    },
  };
  const claimed = await t.db.bulkInsertSliced('usernames', ['shard_id', 'username_lower', 'user_id'], names, { conflict: 'ignore' });
  if (claimed.count < n) {
    // Fewer claims than names: some name belongs to another account. Ours go (by our user ids),
    // and what is left of our names is what others hold.
    await withdrawClaims(t, nameShards, lowers, bigIds);
    const taken = await firstClaimed(t, nameShards, lowers);
    throw simError('SG_ERR_USERNAME_TAKEN', `username ${taken ?? '(one of this seeding)'} is already taken`, { field: 'username' });
  }
  const userRows: RowSource = {
    length: n,
    shardOf: (i) => shardIds[i]!,
    fill: (i, p, at) => {
      const u = users[i]!;
      p[at] = shardIds[i];
      p[at + 1] = bigIds[i];
      p[at + 2] = u.username;
      p[at + 3] = u.fullName;
      p[at + 4] = u.bio ?? '';
      p[at + 5] = u.website ?? '';
      p[at + 6] = u.isPrivate ? 1 : 0;
      p[at + 7] = hash;
      p[at + 8] = now;
    },
  };
  await t.db.bulkInsertSliced('users', ['shard_id', 'id', 'username', 'full_name', 'bio', 'website', 'is_private', 'password_hash', 'created_ms'], userRows);
  const tokenRows: RowSource = {
    length: n,
    shardOf: (i) => shardIds[i]!,
    fill: (i, p, at) => {
      p[at] = shardIds[i];
      p[at + 1] = tokenDigest(out[i]!.accessToken);
      p[at + 2] = bigIds[i];
      p[at + 3] = now;
    },
  };
  await t.db.bulkInsertSliced('tokens', ['shard_id', 'token_hash', 'user_id', 'created_ms'], tokenRows);
  t.metrics.inc('signups', {}, n);
  return out;
}

/** Names grouped by the logical shard their claim lives on. */
function byNameShard(nameShards: Int32Array, lowers: readonly string[]): Map<number, number[]> {
  const byShard = new Map<number, number[]>();
  for (let i = 0; i < lowers.length; i++) (byShard.get(nameShards[i]!) ?? byShard.set(nameShards[i]!, []).get(nameShards[i]!)!).push(i);
  return byShard;
}

/** The first of these names that an account holds, or null. */
async function firstClaimed(t: Topology, nameShards: Int32Array, lowers: readonly string[]): Promise<string | null> {
  for (const [shardId, list] of byNameShard(nameShards, lowers)) {
    await t.db.slicer.yieldIfDue();
    const names = JSON.stringify(list.map((i) => lowers[i]));
    const hit = await t.db.read('users', shardId, 'bulk.username-check', (sql) => sql.get<{ n: string }>('SELECT username_lower AS n FROM usernames WHERE username_lower IN (SELECT value FROM json_each(?)) LIMIT 1', names), { primary: true });
    if (hit) return hit.n;
  }
  return null;
}

/** Deletes the username claims this seeding made (another account's claim of a name stays), per shard, in slices. */
async function withdrawClaims(t: Topology, nameShards: Int32Array, lowers: readonly string[], ids: readonly bigint[]): Promise<void> {
  for (const [shardId, list] of byNameShard(nameShards, lowers)) {
    await t.db.slicer.yieldIfDue();
    await t.db.write('users', shardId, 'bulk.username-withdraw', async (sql) => {
      for (const i of list) await sql.run('DELETE FROM usernames WHERE username_lower = ? AND user_id = ?', lowers[i], ids[i]);
    });
  }
}

/**
 * Adds approved follow edges source → target in bulk (both the outgoing row on the source's shard
 * and the incoming row on the target's), skipping self-follows and edges that already exist, and
 * updates follow counts. Returns the number of edges added.
 */
export async function seedFollows(t: Topology, edges: ReadonlyArray<readonly [string, string]>): Promise<number> {
  const slicer = t.db.slicer;
  const out: unknown[][] = [];
  const inc: unknown[][] = [];
  const follows = new Map<string, number>();
  const followedBy = new Map<string, number>();
  const seen = new Set<string>();
  for (let k = 0; k < edges.length; k++) {
    if ((k & 4095) === 4095) await slicer.yieldIfDue();
    const [source, target] = edges[k]!;
    if (source === target) continue;
    const key = source + '>' + target;
    if (seen.has(key)) continue;
    seen.add(key);
    const id = BigInt(t.store.mintId('follows', shardOf(source)));
    out.push([shardOf(source), BigInt(source), BigInt(target), 'approved', id]);
    inc.push([shardOf(target), BigInt(target), BigInt(source), 'approved', id]);
  }
  const added = await t.db.bulkInsertSliced('follows', ['shard_id', 'source_id', 'target_id', 'status', 'id'], out, { conflict: 'ignore', perRow: true });
  // Only edges that were new on the outgoing side get an incoming row and count.
  const fresh = inc.filter((_, i) => added.inserted[i]);
  await t.db.bulkInsertSliced('followers', ['shard_id', 'target_id', 'source_id', 'status', 'id'], fresh, { conflict: 'ignore' });
  for (let k = 0; k < fresh.length; k++) {
    if ((k & 4095) === 4095) await slicer.yieldIfDue();
    const r = fresh[k]!;
    const target = String(r[1]);
    const source = String(r[2]);
    follows.set(source, (follows.get(source) ?? 0) + 1);
    followedBy.set(target, (followedBy.get(target) ?? 0) + 1);
  }
  await t.db.bulkAdd('users', 'follows_count', follows);
  await t.db.bulkAdd('users', 'followed_by_count', followedBy);
  let k = 0;
  for (const id of [...follows.keys(), ...followedBy.keys()]) {
    if ((++k & 63) === 0) await slicer.yieldIfDue();
    t.cache.delete('u:' + id);
  }
  const sources = [...follows.keys()];
  for (let i = 0; i < sources.length; i += 100) {
    await slicer.yieldIfDue();
    await Promise.all(sources.slice(i, i + 100).map((id) => t.graph.invalidate(id)));
  }
  return fresh.length;
}
