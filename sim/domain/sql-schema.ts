// The tables every physical database node holds. Each row carries its logical shard id, so a
// logical shard is a real unit of data that can be copied to another node and dropped here.

import type Database from 'better-sqlite3';
import { tokenDigest } from './credentials.ts';

/** Which table family lives on which cluster when the topology is vertically partitioned. */
export type Family = 'users' | 'photos' | 'graph';

export const TABLE_FAMILY: Record<string, Family> = {
  users: 'users',
  usernames: 'users',
  tokens: 'users',
  activity: 'users',
  api_clients: 'users',
  client_authorizations: 'users',
  subscriptions: 'users',
  subscription_index: 'users',
  media: 'photos',
  likes: 'photos',
  user_likes: 'photos',
  comments: 'photos',
  tags: 'photos',
  tag_media: 'photos',
  locations: 'photos',
  location_media: 'photos',
  location_external_ids: 'photos',
  follows: 'graph',
  followers: 'graph',
  blocks: 'graph',
  blocked_by: 'graph',
};

export const TABLES = Object.keys(TABLE_FAMILY);

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS users (
  shard_id INTEGER NOT NULL, id INTEGER PRIMARY KEY, username TEXT NOT NULL, full_name TEXT NOT NULL,
  bio TEXT NOT NULL DEFAULT '', website TEXT NOT NULL DEFAULT '', profile_picture TEXT NOT NULL DEFAULT '',
  is_private INTEGER NOT NULL DEFAULT 0, password_hash TEXT NOT NULL, created_ms INTEGER NOT NULL,
  media_count INTEGER NOT NULL DEFAULT 0, follows_count INTEGER NOT NULL DEFAULT 0, followed_by_count INTEGER NOT NULL DEFAULT 0,
  pulled_posts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS users_shard ON users(shard_id);
CREATE INDEX IF NOT EXISTS users_username ON users(username COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS usernames (shard_id INTEGER NOT NULL, username_lower TEXT PRIMARY KEY, user_id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS usernames_shard ON usernames(shard_id);
CREATE TABLE IF NOT EXISTS tokens (shard_id INTEGER NOT NULL, token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tokens_shard ON tokens(shard_id);
CREATE TABLE IF NOT EXISTS activity (
  shard_id INTEGER NOT NULL, id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, kind TEXT NOT NULL, actor_id INTEGER NOT NULL,
  media_id INTEGER, comment_id INTEGER, text TEXT, created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS activity_user ON activity(user_id, id);
CREATE INDEX IF NOT EXISTS activity_shard ON activity(shard_id);
-- Registered API clients, on the logical shard of a hash of the client id (as usernames). The
-- secret is kept because notifications are signed with it (HMAC needs the secret itself).
CREATE TABLE IF NOT EXISTS api_clients (
  shard_id INTEGER NOT NULL, client_id TEXT PRIMARY KEY, name TEXT NOT NULL, secret TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS api_clients_shard ON api_clients(shard_id);
-- Which clients a user gave a token to (POST /oauth/access_token with client credentials), on the user's shard.
CREATE TABLE IF NOT EXISTS client_authorizations (
  shard_id INTEGER NOT NULL, user_id INTEGER NOT NULL, client_id TEXT NOT NULL, created_ms INTEGER NOT NULL,
  PRIMARY KEY (user_id, client_id));
CREATE INDEX IF NOT EXISTS client_authorizations_shard ON client_authorizations(shard_id);
-- Real-time subscriptions, on their client's shard (the id is minted there).
CREATE TABLE IF NOT EXISTS subscriptions (
  shard_id INTEGER NOT NULL, id INTEGER PRIMARY KEY, client_id TEXT NOT NULL, object TEXT NOT NULL, object_id TEXT,
  aspect TEXT NOT NULL, callback_url TEXT NOT NULL, lat REAL, lng REAL, radius_m REAL, created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS subscriptions_client ON subscriptions(client_id, id);
CREATE INDEX IF NOT EXISTS subscriptions_shard ON subscriptions(shard_id);
-- Tag and location subscriptions again, on the shard of the object they watch, so a post finds them in one read.
CREATE TABLE IF NOT EXISTS subscription_index (
  shard_id INTEGER NOT NULL, object_key TEXT NOT NULL, subscription_id INTEGER NOT NULL, client_id TEXT NOT NULL,
  callback_url TEXT NOT NULL, PRIMARY KEY (object_key, subscription_id));
CREATE INDEX IF NOT EXISTS subscription_index_shard ON subscription_index(shard_id);

CREATE TABLE IF NOT EXISTS media (
  shard_id INTEGER NOT NULL, id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, caption TEXT, caption_id INTEGER,
  created_ms INTEGER NOT NULL, filter TEXT NOT NULL, tags TEXT NOT NULL, location_id INTEGER, location_name TEXT,
  lat REAL, lng REAL, like_count INTEGER NOT NULL DEFAULT 0, comment_count INTEGER NOT NULL DEFAULT 0, images TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS media_user ON media(user_id, id);
CREATE INDEX IF NOT EXISTS media_shard ON media(shard_id);
CREATE INDEX IF NOT EXISTS media_created ON media(created_ms);
CREATE TABLE IF NOT EXISTS likes (
  shard_id INTEGER NOT NULL, media_id INTEGER NOT NULL, user_id INTEGER NOT NULL, id INTEGER NOT NULL, created_ms INTEGER NOT NULL,
  PRIMARY KEY (media_id, user_id));
CREATE INDEX IF NOT EXISTS likes_media ON likes(media_id, id);
CREATE INDEX IF NOT EXISTS likes_shard ON likes(shard_id);
CREATE TABLE IF NOT EXISTS user_likes (
  shard_id INTEGER NOT NULL, user_id INTEGER NOT NULL, media_id INTEGER NOT NULL, like_id INTEGER NOT NULL,
  PRIMARY KEY (user_id, media_id));
CREATE INDEX IF NOT EXISTS user_likes_order ON user_likes(user_id, like_id);
CREATE INDEX IF NOT EXISTS user_likes_shard ON user_likes(shard_id);
CREATE TABLE IF NOT EXISTS comments (
  shard_id INTEGER NOT NULL, id INTEGER PRIMARY KEY, media_id INTEGER NOT NULL, user_id INTEGER NOT NULL, text TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS comments_media ON comments(media_id, id);
CREATE INDEX IF NOT EXISTS comments_shard ON comments(shard_id);
CREATE TABLE IF NOT EXISTS tags (shard_id INTEGER NOT NULL, name TEXT PRIMARY KEY, media_count INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS tags_shard ON tags(shard_id);
CREATE TABLE IF NOT EXISTS tag_media (shard_id INTEGER NOT NULL, tag TEXT NOT NULL, media_id INTEGER NOT NULL, PRIMARY KEY (tag, media_id));
CREATE INDEX IF NOT EXISTS tag_media_shard ON tag_media(shard_id);
CREATE TABLE IF NOT EXISTS locations (
  shard_id INTEGER NOT NULL, id INTEGER PRIMARY KEY, place_key TEXT NOT NULL UNIQUE, name TEXT NOT NULL, lat REAL NOT NULL, lng REAL NOT NULL);
CREATE INDEX IF NOT EXISTS locations_shard ON locations(shard_id);
CREATE TABLE IF NOT EXISTS location_media (
  shard_id INTEGER NOT NULL, location_id INTEGER NOT NULL, media_id INTEGER NOT NULL, created_ms INTEGER NOT NULL,
  PRIMARY KEY (location_id, media_id));
CREATE INDEX IF NOT EXISTS location_media_shard ON location_media(shard_id);
-- External ids of places (Foursquare v1 numeric and v2 hex ids), on the shard of a hash of the id.
CREATE TABLE IF NOT EXISTS location_external_ids (
  shard_id INTEGER NOT NULL, provider TEXT NOT NULL, external_id TEXT NOT NULL, location_id INTEGER NOT NULL,
  PRIMARY KEY (provider, external_id));
CREATE INDEX IF NOT EXISTS location_external_ids_shard ON location_external_ids(shard_id);

CREATE TABLE IF NOT EXISTS follows (
  shard_id INTEGER NOT NULL, source_id INTEGER NOT NULL, target_id INTEGER NOT NULL, status TEXT NOT NULL, id INTEGER NOT NULL,
  PRIMARY KEY (source_id, target_id));
CREATE INDEX IF NOT EXISTS follows_order ON follows(source_id, status, id);
CREATE INDEX IF NOT EXISTS follows_shard ON follows(shard_id);
CREATE TABLE IF NOT EXISTS followers (
  shard_id INTEGER NOT NULL, target_id INTEGER NOT NULL, source_id INTEGER NOT NULL, status TEXT NOT NULL, id INTEGER NOT NULL,
  PRIMARY KEY (target_id, source_id));
CREATE INDEX IF NOT EXISTS followers_order ON followers(target_id, status, id);
CREATE INDEX IF NOT EXISTS followers_shard ON followers(shard_id);
CREATE TABLE IF NOT EXISTS blocks (shard_id INTEGER NOT NULL, source_id INTEGER NOT NULL, target_id INTEGER NOT NULL, PRIMARY KEY (source_id, target_id));
CREATE INDEX IF NOT EXISTS blocks_shard ON blocks(shard_id);
-- Each block again on the blocked user's shard, so "who blocks me" is one read there.
CREATE TABLE IF NOT EXISTS blocked_by (shard_id INTEGER NOT NULL, target_id INTEGER NOT NULL, source_id INTEGER NOT NULL, PRIMARY KEY (target_id, source_id));
CREATE INDEX IF NOT EXISTS blocked_by_shard ON blocked_by(shard_id);
`;

/**
 * Brings a database written by an earlier version up to SCHEMA_SQL (run after it, on open):
 * access tokens were kept in plain text in `tokens.token`; they are replaced by their digests, so a
 * copy of the data dir holds no working token while every issued token keeps working.
 */
export function migrateSchema(db: Database.Database): void {
  const tokenColumns = db.prepare('PRAGMA table_info(tokens)').all() as Array<{ name: string }>;
  if (tokenColumns.some((c) => c.name === 'token')) {
    db.function('scalegram_token_digest', { deterministic: true }, (token: unknown) => tokenDigest(String(token)));
    db.transaction(() => {
      db.exec(`CREATE TABLE tokens_digests (shard_id INTEGER NOT NULL, token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, created_ms INTEGER NOT NULL);
        INSERT OR IGNORE INTO tokens_digests SELECT shard_id, scalegram_token_digest(token), user_id, created_ms FROM tokens;
        DROP TABLE tokens;
        ALTER TABLE tokens_digests RENAME TO tokens;
        CREATE INDEX IF NOT EXISTS tokens_shard ON tokens(shard_id);`);
    })();
  }
}
