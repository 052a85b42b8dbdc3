// The bulk path for seeding large populations: rows go straight to each logical shard's server in
// one transaction per shard, instead of one HTTP request (and one round of caches) per row. It keeps
// the same invariants as the Store (usernames unique, both directions of every follow, counts).

import { hashPassword, mintAccessTokens, tokenDigest } from './credentials.ts';
import { simError } from './errors.ts';
import { shardOf } from './ids.ts';
import { shardForKey } from './shard-map.ts';
import type { Topology } from './topology.ts';

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

/** Creates users in bulk (all with `password`); returns their ids and access tokens, in input order. */
export async function seedUsers(t: Topology, users: readonly SeedUser[], options: { password?: string } = {}): Promise<SeededUser[]> {
  const hash = await sharedHash(options.password ?? 'scalegram');
  const seen = new Set<string>();
  const now = Math.floor(t.clock.nowMs());
  const userRows: unknown[][] = [];
  const nameRows: unknown[][] = [];
  const tokenRows: unknown[][] = [];
  const out: SeededUser[] = [];
  for (const u of users) {
    if (!/^[A-Za-z0-9._]{1,30}$/.test(u.username)) throw simError('SG_ERR_INVALID_PARAM', `bad username ${JSON.stringify(u.username)}`, { field: 'username' });
    const lower = u.username.toLowerCase();
    if (seen.has(lower)) throw simError('SG_ERR_USERNAME_TAKEN', `username ${u.username} appears twice in the seed`);
    seen.add(lower);
    const shardId = t.store.nextUserShard();
    const id = t.store.mintId('users', shardId);
    userRows.push([shardId, BigInt(id), u.username, u.fullName, u.bio ?? '', u.website ?? '', u.isPrivate ? 1 : 0, hash, now]);
    nameRows.push([shardForKey(lower, t.config.shards.logical), lower, BigInt(id)]);
    tokenRows.push([shardId, '', BigInt(id), now]);
    out.push({ id, username: u.username, accessToken: '' });
  }
  // Tokens from the CSPRNG, never from the seed; the database keeps only their digests.
  const tokens = mintAccessTokens(out.map((u) => u.id));
  for (let i = 0; i < out.length; i++) {
    out[i]!.accessToken = tokens[i]!;
    tokenRows[i]![1] = tokenDigest(tokens[i]!);
  }
  // Usernames first: a clash with an existing account fails before anything is written.
  const byShard = new Map<number, string[]>();
  for (const r of nameRows) {
    const list = byShard.get(r[0] as number) ?? [];
    list.push(r[1] as string);
    byShard.set(r[0] as number, list);
  }
  for (const [shardId, names] of byShard) {
    const clash = await t.db.read('users', shardId, 'bulk.username-check', (sql) => sql.get<{ username_lower: string }>('SELECT username_lower FROM usernames WHERE username_lower IN (SELECT value FROM json_each(?))', JSON.stringify(names)), { primary: true });
    if (clash) throw simError('SG_ERR_USERNAME_TAKEN', `username ${clash.username_lower} is already taken`);
  }
  t.db.bulkInsert('usernames', ['shard_id', 'username_lower', 'user_id'], nameRows, { conflict: 'ignore' });
  t.db.bulkInsert('users', ['shard_id', 'id', 'username', 'full_name', 'bio', 'website', 'is_private', 'password_hash', 'created_ms'], userRows);
  t.db.bulkInsert('tokens', ['shard_id', 'token_hash', 'user_id', 'created_ms'], tokenRows);
  t.metrics.inc('signups', {}, users.length);
  return out;
}

/**
 * Adds approved follow edges source → target in bulk (both the outgoing row on the source's shard
 * and the incoming row on the target's), skipping self-follows and edges that already exist, and
 * updates follow counts. Returns the number of edges added.
 */
export async function seedFollows(t: Topology, edges: ReadonlyArray<readonly [string, string]>): Promise<number> {
  const out: unknown[][] = [];
  const inc: unknown[][] = [];
  const follows = new Map<string, number>();
  const followedBy = new Map<string, number>();
  const seen = new Set<string>();
  for (const [source, target] of edges) {
    if (source === target) continue;
    const key = source + '>' + target;
    if (seen.has(key)) continue;
    seen.add(key);
    const id = BigInt(t.store.mintId('follows', shardOf(source)));
    out.push([shardOf(source), BigInt(source), BigInt(target), 'approved', id]);
    inc.push([shardOf(target), BigInt(target), BigInt(source), 'approved', id]);
  }
  const added = t.db.bulkInsert('follows', ['shard_id', 'source_id', 'target_id', 'status', 'id'], out, { conflict: 'ignore' });
  // Only edges that were new on the outgoing side get an incoming row and count.
  const fresh = inc.filter((_, i) => added.inserted[i]);
  t.db.bulkInsert('followers', ['shard_id', 'target_id', 'source_id', 'status', 'id'], fresh, { conflict: 'ignore' });
  for (const r of fresh) {
    const target = String(r[1]);
    const source = String(r[2]);
    follows.set(source, (follows.get(source) ?? 0) + 1);
    followedBy.set(target, (followedBy.get(target) ?? 0) + 1);
  }
  await t.db.bulkAdd('users', 'follows_count', follows);
  await t.db.bulkAdd('users', 'followed_by_count', followedBy);
  for (const id of follows.keys()) t.cache.delete('u:' + id);
  for (const id of followedBy.keys()) t.cache.delete('u:' + id);
  const sources = [...follows.keys()];
  for (let i = 0; i < sources.length; i += 10_000) await Promise.all(sources.slice(i, i + 10_000).map((id) => t.graph.invalidate(id)));
  return fresh.length;
}
