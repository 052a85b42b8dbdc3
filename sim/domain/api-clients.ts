// Registered API clients, as v1 had them: a public client_id and a client_secret, both from the
// CSPRNG (sim/domain/credentials.ts), kept on the logical shard of a hash of the client id (as
// usernames are). The secret is shown once, at registration; it is stored because notifications
// are signed with it (HMAC needs the secret itself), and it is never logged, cached or listed.
// A user who takes a token through a client (POST /oauth/access_token with client credentials)
// authorizes it: that is what a `user` subscription of the client follows.

import type { CacheCluster } from '../parts/cache-cluster.ts';
import type { Clock } from '../engine/clock.ts';
import { randomHexId, randomSecret, secretEquals } from './credentials.ts';
import type { DatabaseCluster } from '../parts/database-cluster.ts';
import { simError } from '../engine/errors.ts';
import { isIdString, shardOf } from '../parts/ids.ts';
import type { Metrics } from '../observability/metrics.ts';
import { shardForKey } from '../parts/shard-map.ts';
import type { ApiClientRecord, ClientRegistry } from './store.ts';

/** A client id: 32 lowercase hex digits (128 random bits). */
export const CLIENT_ID_PATTERN = '^[0-9a-f]{32}$';
const CLIENT_ID_RE = new RegExp(CLIENT_ID_PATTERN);
/** Longest client name (characters). */
export const MAX_CLIENT_NAME_CHARS = 100;
/** Clients listed at most by one call (count). */
const MAX_LISTED_CLIENTS = 10_000;

export interface ApiClientsDeps {
  db: DatabaseCluster;
  cache: CacheCluster;
  clock: Clock;
  metrics: Metrics;
  logicalShards: number;
}

export class ApiClients implements ClientRegistry {
  private readonly revokeListeners: Array<(clientId: string) => Promise<void>> = [];

  constructor(private readonly d: ApiClientsDeps) {
    d.metrics.describe('api_clients_registered', 'API clients registered (count)');
    d.metrics.describe('api_client_auth_failures', 'Requests with an unknown client_id or a wrong client_secret');
  }

  private shardOfClient(clientId: string): number {
    return shardForKey(clientId, this.d.logicalShards);
  }

  async register(name: string): Promise<{ client: ApiClientRecord; secret: string }> {
    const clean = String(name ?? '').trim();
    if (clean.length === 0 || clean.length > MAX_CLIENT_NAME_CHARS || [...clean].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) {
      throw simError('SG_ERR_INVALID_PARAM', `name must be 1-${MAX_CLIENT_NAME_CHARS} printable characters`, { field: 'name' });
    }
    const clientId = randomHexId(16);
    const secret = randomSecret(24);
    const createdMs = Math.floor(this.d.clock.nowMs());
    const s = this.shardOfClient(clientId);
    await this.d.db.write('users', s, 'client.register', (sql) =>
      sql.run('INSERT INTO api_clients (shard_id, client_id, name, secret, created_ms) VALUES (?,?,?,?,?)', s, clientId, clean, secret, createdMs));
    this.d.metrics.inc('api_clients_registered');
    return { client: { clientId, name: clean, createdMs }, secret };
  }

  async list(): Promise<ApiClientRecord[]> {
    const parts = await this.d.db.scatter('users', 'client.list', (sql, shards) =>
      sql.all<{ client_id: string; name: string; created_ms: number }>('SELECT client_id, name, created_ms FROM api_clients WHERE shard_id IN (SELECT value FROM json_each(?)) ORDER BY created_ms LIMIT ?', JSON.stringify(shards), MAX_LISTED_CLIENTS));
    return parts.flat().map((r) => ({ clientId: r.client_id, name: r.name, createdMs: Number(r.created_ms) })).sort((a, b) => a.createdMs - b.createdMs || (a.clientId < b.clientId ? -1 : 1)).slice(0, MAX_LISTED_CLIENTS);
  }

  private async row(clientId: string): Promise<{ client: ApiClientRecord; secret: string } | null> {
    if (!CLIENT_ID_RE.test(clientId)) return null;
    const r = await this.d.db.read('users', this.shardOfClient(clientId), 'client.get', (sql) =>
      sql.get<{ client_id: string; name: string; secret: string; created_ms: number }>('SELECT client_id, name, secret, created_ms FROM api_clients WHERE client_id = ?', clientId), { primary: true });
    return r ? { client: { clientId: r.client_id, name: r.name, createdMs: Number(r.created_ms) }, secret: r.secret } : null;
  }

  async get(clientId: string): Promise<ApiClientRecord | null> {
    return (await this.row(clientId))?.client ?? null;
  }

  async authenticate(clientId: string, secret: string): Promise<ApiClientRecord | null> {
    const found = await this.row(clientId);
    // Compared in constant time, and against a dummy when the client is unknown, so the answer's
    // timing tells neither the secret nor whether the client exists.
    const ok = secretEquals(secret, found?.secret ?? '\u0000no-such-client');
    if (!found || !ok) {
      this.d.metrics.inc('api_client_auth_failures');
      return null;
    }
    return found.client;
  }

  /** The secret a client's notifications are signed with (null once revoked). For the notifier only. */
  async signingSecret(clientId: string): Promise<string | null> {
    return (await this.row(clientId))?.secret ?? null;
  }

  onRevoke(listener: (clientId: string) => Promise<void>): void {
    this.revokeListeners.push(listener);
  }

  async revoke(clientId: string): Promise<boolean> {
    if (!CLIENT_ID_RE.test(clientId)) return false;
    const s = this.shardOfClient(clientId);
    const removed = await this.d.db.write('users', s, 'client.revoke', async (sql) => (await sql.run('DELETE FROM api_clients WHERE client_id = ?', clientId)).changes > 0);
    if (removed) for (const l of this.revokeListeners) await l(clientId);
    return removed;
  }

  async authorize(userId: string, clientId: string): Promise<void> {
    if (!isIdString(userId) || !CLIENT_ID_RE.test(clientId)) throw simError('SG_ERR_INVALID_PARAM', 'not a user id and client id');
    const s = shardOf(userId);
    await this.d.db.write('users', s, 'client.authorize', (sql) =>
      sql.run('INSERT OR IGNORE INTO client_authorizations (shard_id, user_id, client_id, created_ms) VALUES (?,?,?,?)', s, BigInt(userId), clientId, Math.floor(this.d.clock.nowMs())), { actorId: userId });
    this.d.cache.delete('ca:' + userId);
  }

  async authorizedClients(userId: string): Promise<string[]> {
    if (!isIdString(userId) || shardOf(userId) >= this.d.logicalShards) return [];
    const raw = await this.d.cache.getOrFill('ca:' + userId, async () => {
      const ids = await this.d.db.read('users', shardOf(userId), 'client.authorized', (sql) => sql.column<string>('SELECT client_id FROM client_authorizations WHERE user_id = ?', BigInt(userId)), { avoidStale: true });
      return JSON.stringify(ids);
    });
    return raw ? (JSON.parse(raw) as string[]) : [];
  }
}
