// Every secret the service holds: access tokens, password hashes, the admin token, API client
// secrets. All of them come from node:crypto's CSPRNG — never from the run's seeded Prng, the ids or
// the clock — so the seed that replays a simulated world cannot replay anyone's credentials.
//
// Access tokens are stored only as a SHA-256 digest (a token is 128 random bits, so a fast hash is
// enough: copying the data dir yields no working token). Passwords are hashed with Argon2id at
// OWASP's first recommended setting (m = 19 MiB, t = 2, p = 1), on libuv's thread pool, off the
// event loop.

import { hash as argon2Hash, verify as argon2Verify, type Algorithm } from '@node-rs/argon2';
import nodeCrypto, { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * Argon2id parameters: OWASP Password Storage Cheat Sheet (2024–2026), the first of its equivalent
 * settings: memory 19 MiB (in KiB), 2 passes, 1 lane, a 16-byte random salt, a 32-byte hash.
 */
export const ARGON2ID = Object.freeze({ memoryCostKiB: 19_456, timeCost: 2, parallelism: 1, saltBytes: 16, outputBytes: 32 });

/** Random bytes in an access token after the user id (128 bits, as hex). */
const TOKEN_SECRET_BYTES = 16;

/**
 * A new access token for `userId`: the id (so the token names its logical shard, as v1's
 * `<user id>.<hex>` tokens did) and 128 bits from the CSPRNG.
 */
export function mintAccessToken(userId: string): string {
  return `${userId}.${randomBytes(TOKEN_SECRET_BYTES).toString('hex')}`;
}

/** Many tokens at once (seeding): one CSPRNG call, the same format as mintAccessToken. */
export function mintAccessTokens(userIds: readonly string[]): string[] {
  const pool = randomBytes(TOKEN_SECRET_BYTES * userIds.length).toString('hex');
  const width = TOKEN_SECRET_BYTES * 2;
  return userIds.map((id, i) => `${id}.${pool.slice(i * width, (i + 1) * width)}`);
}

/** What the database keeps of an access token: its SHA-256, hex. */
export function tokenDigest(token: string): string {
  return sha256Hex(token);
}

// Every API request digests its token: crypto.hash (Node ≥ 20.12) skips the Hash object that
// createHash builds for one update; engines allow 20.6, so fall back.
const sha256Hex: (text: string) => string = typeof nodeCrypto.hash === 'function' ? (text) => nodeCrypto.hash('sha256', text, 'hex') : (text) => createHash('sha256').update(text).digest('hex');

/** A random secret of `bytes` bytes as base64url (admin tokens, API client secrets). */
export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** A random hex id (API client ids): public, but unguessable so ids cannot be enumerated. */
export function randomHexId(bytes = 16): string {
  return randomBytes(bytes).toString('hex');
}

/** Equality of two secrets in time independent of where they differ (digests of equal length). */
export function secretEquals(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Argon2id of `password` with a fresh random salt, as a PHC string (`$argon2id$v=19$m=…`). */
export function hashPassword(password: string): Promise<string> {
  return argon2Hash(password, {
    // Algorithm.Argon2id: a const enum in the package's types, which isolated modules cannot inline.
    algorithm: 2 as Algorithm,
    memoryCost: ARGON2ID.memoryCostKiB,
    timeCost: ARGON2ID.timeCost,
    parallelism: ARGON2ID.parallelism,
    outputLen: ARGON2ID.outputBytes,
    salt: randomBytes(ARGON2ID.saltBytes),
  });
}

export interface PasswordCheck {
  ok: boolean;
  /** The stored hash is of an older, weaker kind: store a new hash of the (correct) password. */
  rehash: boolean;
}

/**
 * Checks `password` against a stored hash: an Argon2id PHC string, or the scrypt (N = 1024) hashes
 * of data dirs written before Argon2id, which verify once and ask to be replaced.
 */
export async function verifyPassword(password: string, stored: string): Promise<PasswordCheck> {
  if (stored.startsWith('$argon2')) {
    // A damaged stored hash is a failed check, not an error.
    const ok = await argon2Verify(stored, password).catch(() => false);
    return { ok, rehash: ok && !stored.startsWith(`$argon2id$v=19$m=${ARGON2ID.memoryCostKiB},t=${ARGON2ID.timeCost},p=${ARGON2ID.parallelism}$`) };
  }
  const [kind, salt, hex] = stored.split('$');
  if (kind !== 'scrypt' || !salt || !hex || !/^[0-9a-f]{64}$/.test(hex)) return { ok: false, rehash: false };
  const key = await new Promise<Buffer>((resolve, reject) => scrypt(password, salt, 32, { N: 1024, r: 8, p: 1 }, (err, k) => (err ? reject(err) : resolve(k))));
  const ok = timingSafeEqual(key, Buffer.from(hex, 'hex'));
  return { ok, rehash: ok };
}
