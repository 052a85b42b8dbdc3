// Credentials: every secret comes from the CSPRNG, not the seed; the databases hold only digests of
// access tokens and Argon2id hashes of passwords (OWASP parameters); hashes of an older kind are
// upgraded at login; data dirs written before token digests are migrated without losing a session.

import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ARGON2ID, hashPassword, mintAccessToken, mintAccessTokens, randomSecret, secretEquals, tokenDigest, verifyPassword } from '../sim/domain/credentials.ts';
import { DbNode } from '../sim/parts/db-node.ts';
import { shardOf } from '../sim/parts/ids.ts';
import { loadTopology } from '../sim/topology-config.ts';
import { buildTopology, type Topology } from '../sim/topology.ts';
import { seedUsers } from '../sim/workload/bulk-loader.ts';

const dirs: string[] = [];
const tops: Topology[] = [];
afterEach(async () => {
  for (const t of tops.splice(0)) await t.close().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const SMALL = { shards: { logical: 64, physical: 4 }, feed: { replicas: 0 } };

async function topology(seed: number, dataDir?: string): Promise<Topology> {
  const t = await buildTopology({ config: loadTopology('2012-sharded', SMALL), seed, sampleEveryMs: 0, ...(dataDir ? { dataDir } : {}) });
  tops.push(t);
  return t;
}

function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

describe('access tokens', () => {
  it('are the user id and 128 bits from the CSPRNG: the same seed and the same signups never give the same token', async () => {
    const a = await topology(7);
    const b = await topology(7);
    const ua = await a.store.createUser({ username: 'same', password: 'secret1', fullName: 'S', isPrivate: false });
    const ub = await b.store.createUser({ username: 'same', password: 'secret1', fullName: 'S', isPrivate: false });
    expect(ua.accessToken).toMatch(new RegExp(`^${ua.user.id}\\.[0-9a-f]{32}$`));
    expect(ub.accessToken).not.toBe(ua.accessToken);
    // A token of one server is worthless on another built from the same seed.
    expect(await b.store.authenticate(ua.accessToken)).toBeNull();
    expect(await a.store.authenticate(ua.accessToken)).toBe(ua.user.id);
    const many = mintAccessTokens(['1', '2', '3']);
    expect(new Set(many.map((t) => t.split('.')[1])).size).toBe(3);
    expect(mintAccessToken('9')).toMatch(/^9\.[0-9a-f]{32}$/);
  });

  it('are stored only as SHA-256 digests: the data dir holds no token, and a digest copied from it is no token', async () => {
    const dir = tmp('scalegram-cred-');
    const t = await topology(3, dir);
    const made = await t.store.createUser({ username: 'carol', password: 'secret123', fullName: 'Carol', isPrivate: false });
    const logged = await t.store.login('carol', 'secret123');
    const seeded = await seedUsers(t, [{ username: 'seeded_1', fullName: 'S' }]);
    const tokens = [made.accessToken, logged.accessToken, seeded[0]!.accessToken];
    const stored = t.db.groups[0]!.servers.flatMap((s) => s.primary.sql().column<string>('SELECT token_hash FROM tokens'));
    expect(stored).toHaveLength(3);
    for (const token of tokens) expect(stored).toContain(tokenDigest(token));
    await t.close();
    tops.splice(0);
    // No file under the data dir contains any token's secret part, in any encoding SQLite keeps text.
    for (const file of filesUnder(dir)) {
      const bytes = readFileSync(file);
      for (const token of tokens) expect(bytes.includes(Buffer.from(token.split('.')[1]!)), `${file} holds a token`).toBe(false);
    }
    const again = await topology(3, dir);
    expect(await again.store.authenticate(made.accessToken)).toBe(made.user.id);
    expect(await again.store.authenticate(logged.accessToken)).toBe(made.user.id);
    expect(await again.store.authenticate(seeded[0]!.accessToken)).toBe(seeded[0]!.id);
    // What an attacker reads from the files does not authenticate.
    const digest = tokenDigest(made.accessToken);
    expect(await again.store.authenticate(digest)).toBeNull();
    expect(await again.store.authenticate(`${made.user.id}.${digest}`)).toBeNull();
    expect(await again.store.authenticate(`${made.user.id}.${digest.slice(0, 32)}`)).toBeNull();
  });

  it('an older data dir with plain-text tokens is migrated to digests on open, and its sessions keep working', () => {
    const dir = tmp('scalegram-migrate-');
    const file = join(dir, 'old.sqlite');
    const old = new Database(file);
    old.exec('CREATE TABLE tokens (shard_id INTEGER NOT NULL, token TEXT PRIMARY KEY, user_id INTEGER NOT NULL, created_ms INTEGER NOT NULL)');
    old.prepare('INSERT INTO tokens VALUES (?,?,?,?)').run(3, '17.0123456789abcdef0123456789abcdef', 17, 5);
    old.prepare('INSERT INTO tokens VALUES (?,?,?,?)').run(4, '18.fedcba9876543210fedcba9876543210', 18, 6);
    old.close();
    const node = new DbNode('db-x', file);
    const rows = node.sql().all<{ shard_id: bigint; token_hash: string; user_id: bigint; created_ms: bigint }>('SELECT * FROM tokens ORDER BY user_id');
    expect(rows).toEqual([
      { shard_id: 3n, token_hash: tokenDigest('17.0123456789abcdef0123456789abcdef'), user_id: 17n, created_ms: 5n },
      { shard_id: 4n, token_hash: tokenDigest('18.fedcba9876543210fedcba9876543210'), user_id: 18n, created_ms: 6n },
    ]);
    const columns = node.sql().all<{ name: string }>('PRAGMA table_info(tokens)').map((c) => c.name);
    expect(columns).toEqual(['shard_id', 'token_hash', 'user_id', 'created_ms']);
    node.db.close();
    // Opening it again changes nothing.
    const reopened = new DbNode('db-x', file);
    expect(reopened.sql().all('SELECT token_hash FROM tokens')).toHaveLength(2);
    reopened.db.close();
  });
});

describe('passwords', () => {
  it('are Argon2id at OWASP parameters (m=19 MiB, t=2, p=1) with a fresh 16-byte salt per account', async () => {
    const t = await topology(5);
    await t.store.createUser({ username: 'p1', password: 'same-password', fullName: 'P', isPrivate: false });
    await t.store.createUser({ username: 'p2', password: 'same-password', fullName: 'P', isPrivate: false });
    const hashes = t.db.groups[0]!.servers.flatMap((s) => s.primary.sql().all<{ password_hash: string }>('SELECT password_hash FROM users').map((r) => r.password_hash));
    expect(hashes).toHaveLength(2);
    for (const h of hashes) expect(h).toMatch(new RegExp(`^\\$argon2id\\$v=19\\$m=${ARGON2ID.memoryCostKiB},t=${ARGON2ID.timeCost},p=${ARGON2ID.parallelism}\\$[A-Za-z0-9+/]{22}\\$[A-Za-z0-9+/]{43}$`));
    expect(hashes[0]).not.toBe(hashes[1]);
    expect(ARGON2ID).toMatchObject({ memoryCostKiB: 19_456, timeCost: 2, parallelism: 1 });
    // Signup and login work is app-tier time, recorded per operation.
    await t.store.login('p1', 'same-password');
    await expect(t.store.login('p1', 'wrong-password')).rejects.toMatchObject({ code: 'SG_ERR_INVALID_CREDENTIALS' });
    const histograms = t.metrics.snapshot().histograms.filter((h) => h.name === 'password_hash_ms');
    const count = (op: string) => histograms.find((h) => h.labels.op === op)?.count ?? 0;
    expect(count('hash')).toBe(2);
    expect(count('verify')).toBe(2);
  });

  it('verify rejects a wrong password and a damaged hash without throwing', async () => {
    const h = await hashPassword('correct horse');
    expect(await verifyPassword('correct horse', h)).toEqual({ ok: true, rehash: false });
    expect(await verifyPassword('Correct horse', h)).toEqual({ ok: false, rehash: false });
    expect(await verifyPassword('correct horse', h.slice(0, -5))).toEqual({ ok: false, rehash: false });
    expect(await verifyPassword('correct horse', 'plain')).toEqual({ ok: false, rehash: false });
  });

  it('a scrypt hash from an older data dir logs in once and is replaced by an Argon2id hash', async () => {
    const t = await topology(6);
    const u = await t.store.createUser({ username: 'legacy', password: 'old-secret', fullName: 'L', isPrivate: false });
    const legacy = 'scrypt$0011223344556677$' + (await import('node:crypto')).scryptSync('old-secret', '0011223344556677', 32, { N: 1024, r: 8, p: 1 }).toString('hex');
    await t.db.write('users', shardOf(u.user.id), 'test.legacy', (sql) => sql.run('UPDATE users SET password_hash = ? WHERE id = ?', legacy, BigInt(u.user.id)));
    await expect(t.store.login('legacy', 'wrong-secret')).rejects.toMatchObject({ code: 'SG_ERR_INVALID_CREDENTIALS' });
    const row = () => t.db.serverFor('users', shardOf(u.user.id)).primary.sql().get<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = ?', BigInt(u.user.id))!.password_hash;
    expect(row()).toBe(legacy);
    await t.store.login('legacy', 'old-secret');
    expect(row()).toMatch(/^\$argon2id\$/);
    await t.store.login('legacy', 'old-secret');
  });

  it('seeded accounts share one precomputed hash per password (and seeding states it), and log in with it', async () => {
    const t = await topology(8);
    const seeded = await seedUsers(t, [{ username: 's_a', fullName: 'A' }, { username: 's_b', fullName: 'B' }], { password: 'seeded-pass' });
    const hashes = t.db.groups[0]!.servers.flatMap((s) => s.primary.sql().all<{ password_hash: string }>('SELECT password_hash FROM users').map((r) => r.password_hash));
    expect(new Set(hashes).size).toBe(1);
    expect(hashes[0]).toMatch(/^\$argon2id\$/);
    const logged = await t.store.login('s_b', 'seeded-pass');
    expect(logged.user.id).toBe(seeded[1]!.id);
  });
});

describe('other secrets', () => {
  it('random secrets are 256-bit base64url and compare in constant time by digest', () => {
    const a = randomSecret();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(randomSecret()).not.toBe(a);
    expect(secretEquals(a, a)).toBe(true);
    expect(secretEquals(a, a + 'x')).toBe(false);
    expect(secretEquals('', a)).toBe(false);
    expect(createHash('sha256').update(a).digest('hex')).toHaveLength(64);
  });
});
