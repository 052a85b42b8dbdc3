// One logical shard's tables on real Postgres: the DDL of `sim/domain/sql-schema.ts` translated,
// for one schema per logical shard (Instagram's layout: many logical shards, each a Postgres
// schema, on each physical server). test/postgres-schema.test.ts holds the two in agreement.

import { simError } from '../../engine/errors.ts';
import { MAX_LOGICAL_SHARDS } from '../../parts/ids.ts';

/** Digits in a schema's shard number: enough for the largest logical shard the ids allow (8191). */
export const SCHEMA_DIGITS = String(MAX_LOGICAL_SHARDS - 1).length;

const SCHEMA_NAME = new RegExp(`^shard_(\\d{${SCHEMA_DIGITS}})$`);

/** The schema that holds logical shard `shardId`: 42 → `shard_0042`. */
export function shardSchema(shardId: number): string {
  if (!Number.isInteger(shardId) || shardId < 0 || shardId >= MAX_LOGICAL_SHARDS) {
    throw simError('SG_ERR_INVALID_PARAM', `logical shard ${shardId} is not an integer from 0 to ${MAX_LOGICAL_SHARDS - 1}`);
  }
  return `shard_${String(shardId).padStart(SCHEMA_DIGITS, '0')}`;
}

/**
 * The logical shard a schema name holds, the inverse of shardSchema. Anything else throws, so a
 * name that reaches DDL through here is one of ours (it is spliced into SQL, not bound).
 */
export function shardIdOfSchema(schema: string): number {
  const m = SCHEMA_NAME.exec(schema);
  const id = m ? Number(m[1]) : NaN;
  if (!(id < MAX_LOGICAL_SHARDS)) throw simError('SG_ERR_INVALID_PARAM', `${JSON.stringify(schema)} is not a logical shard's schema (shard_0000 … ${shardSchema(MAX_LOGICAL_SHARDS - 1)})`);
  return id;
}

/**
 * SQLite compares TEXT byte by byte (BINARY); Postgres's default is the database's locale, which
 * orders 'B' after 'a' under en_US. The prefix scans on usernames and tags (`>= q AND < q+1`) and
 * every text key's order rely on byte order, so every text column is pinned to "C" whatever locale
 * the cluster was created with.
 */
const TEXT = 'text COLLATE "C"';

/**
 * The tables, primary keys, unique constraints and indexes of one logical shard, in schema
 * `schema`, as SCHEMA_SQL declares them (after migrateSchema). Types: SQLite INTEGER is a 64-bit
 * integer, so ids, times in ms, counters and every column holding an id are bigint; `shard_id`
 * (13 bits) and the 0/1 flag `is_private` are integer (still read as a number and compared with 1,
 * not a boolean); TEXT is text in byte order; REAL is double precision. There is no BLOB column.
 *
 * This text is migration 1: applied databases keep what it said when they ran it, so it must not
 * change. A change to SCHEMA_SQL needs a new migration (the test fails until there is one).
 */
export function shardTablesSql(schema: string): string {
  shardIdOfSchema(schema);
  const s = schema;
  return `
CREATE TABLE ${s}.users (
  shard_id integer NOT NULL, id bigint PRIMARY KEY, username ${TEXT} NOT NULL, full_name ${TEXT} NOT NULL,
  bio ${TEXT} NOT NULL DEFAULT '', website ${TEXT} NOT NULL DEFAULT '', profile_picture ${TEXT} NOT NULL DEFAULT '',
  is_private integer NOT NULL DEFAULT 0, password_hash ${TEXT} NOT NULL, created_ms bigint NOT NULL,
  media_count bigint NOT NULL DEFAULT 0, follows_count bigint NOT NULL DEFAULT 0, followed_by_count bigint NOT NULL DEFAULT 0,
  pulled_posts bigint NOT NULL DEFAULT 0);
CREATE INDEX users_shard ON ${s}.users (shard_id);
-- SQLite's COLLATE NOCASE folds ASCII letters only; so does lower() under "C", so this expression
-- index answers lower(username) = lower($1) exactly as the NOCASE index answered username = ?.
CREATE INDEX users_username ON ${s}.users (lower(username));
CREATE TABLE ${s}.usernames (shard_id integer NOT NULL, username_lower ${TEXT} PRIMARY KEY, user_id bigint NOT NULL);
CREATE INDEX usernames_shard ON ${s}.usernames (shard_id);
-- Access tokens as their SHA-256 digests only: migrateSchema's plain-text tokens never existed here.
CREATE TABLE ${s}.tokens (shard_id integer NOT NULL, token_hash ${TEXT} PRIMARY KEY, user_id bigint NOT NULL, created_ms bigint NOT NULL);
CREATE INDEX tokens_shard ON ${s}.tokens (shard_id);
CREATE TABLE ${s}.activity (
  shard_id integer NOT NULL, id bigint PRIMARY KEY, user_id bigint NOT NULL, kind ${TEXT} NOT NULL, actor_id bigint NOT NULL,
  media_id bigint, comment_id bigint, text ${TEXT}, created_ms bigint NOT NULL);
CREATE INDEX activity_user ON ${s}.activity (user_id, id);
CREATE INDEX activity_shard ON ${s}.activity (shard_id);
CREATE TABLE ${s}.api_clients (
  shard_id integer NOT NULL, client_id ${TEXT} PRIMARY KEY, name ${TEXT} NOT NULL, secret ${TEXT} NOT NULL, created_ms bigint NOT NULL);
CREATE INDEX api_clients_shard ON ${s}.api_clients (shard_id);
CREATE TABLE ${s}.client_authorizations (
  shard_id integer NOT NULL, user_id bigint NOT NULL, client_id ${TEXT} NOT NULL, created_ms bigint NOT NULL,
  PRIMARY KEY (user_id, client_id));
CREATE INDEX client_authorizations_shard ON ${s}.client_authorizations (shard_id);
CREATE TABLE ${s}.subscriptions (
  shard_id integer NOT NULL, id bigint PRIMARY KEY, client_id ${TEXT} NOT NULL, object ${TEXT} NOT NULL, object_id ${TEXT},
  aspect ${TEXT} NOT NULL, callback_url ${TEXT} NOT NULL, lat double precision, lng double precision, radius_m double precision,
  created_ms bigint NOT NULL);
CREATE INDEX subscriptions_client ON ${s}.subscriptions (client_id, id);
CREATE INDEX subscriptions_shard ON ${s}.subscriptions (shard_id);
CREATE TABLE ${s}.subscription_index (
  shard_id integer NOT NULL, object_key ${TEXT} NOT NULL, subscription_id bigint NOT NULL, client_id ${TEXT} NOT NULL,
  callback_url ${TEXT} NOT NULL, PRIMARY KEY (object_key, subscription_id));
CREATE INDEX subscription_index_shard ON ${s}.subscription_index (shard_id);

CREATE TABLE ${s}.media (
  shard_id integer NOT NULL, id bigint PRIMARY KEY, user_id bigint NOT NULL, caption ${TEXT}, caption_id bigint,
  created_ms bigint NOT NULL, filter ${TEXT} NOT NULL, tags ${TEXT} NOT NULL, location_id bigint, location_name ${TEXT},
  lat double precision, lng double precision, like_count bigint NOT NULL DEFAULT 0, comment_count bigint NOT NULL DEFAULT 0,
  images ${TEXT} NOT NULL);
CREATE INDEX media_user ON ${s}.media (user_id, id);
CREATE INDEX media_shard ON ${s}.media (shard_id);
CREATE INDEX media_created ON ${s}.media (created_ms);
CREATE TABLE ${s}.likes (
  shard_id integer NOT NULL, media_id bigint NOT NULL, user_id bigint NOT NULL, id bigint NOT NULL, created_ms bigint NOT NULL,
  PRIMARY KEY (media_id, user_id));
CREATE INDEX likes_media ON ${s}.likes (media_id, id);
CREATE INDEX likes_shard ON ${s}.likes (shard_id);
CREATE TABLE ${s}.user_likes (
  shard_id integer NOT NULL, user_id bigint NOT NULL, media_id bigint NOT NULL, like_id bigint NOT NULL,
  PRIMARY KEY (user_id, media_id));
CREATE INDEX user_likes_order ON ${s}.user_likes (user_id, like_id);
CREATE INDEX user_likes_shard ON ${s}.user_likes (shard_id);
CREATE TABLE ${s}.comments (
  shard_id integer NOT NULL, id bigint PRIMARY KEY, media_id bigint NOT NULL, user_id bigint NOT NULL, text ${TEXT} NOT NULL,
  created_ms bigint NOT NULL);
CREATE INDEX comments_media ON ${s}.comments (media_id, id);
CREATE INDEX comments_shard ON ${s}.comments (shard_id);
CREATE TABLE ${s}.tags (shard_id integer NOT NULL, name ${TEXT} PRIMARY KEY, media_count bigint NOT NULL DEFAULT 0);
CREATE INDEX tags_shard ON ${s}.tags (shard_id);
CREATE TABLE ${s}.tag_media (shard_id integer NOT NULL, tag ${TEXT} NOT NULL, media_id bigint NOT NULL, PRIMARY KEY (tag, media_id));
CREATE INDEX tag_media_shard ON ${s}.tag_media (shard_id);
CREATE TABLE ${s}.locations (
  shard_id integer NOT NULL, id bigint PRIMARY KEY, place_key ${TEXT} NOT NULL UNIQUE, name ${TEXT} NOT NULL,
  lat double precision NOT NULL, lng double precision NOT NULL);
CREATE INDEX locations_shard ON ${s}.locations (shard_id);
CREATE TABLE ${s}.location_media (
  shard_id integer NOT NULL, location_id bigint NOT NULL, media_id bigint NOT NULL, created_ms bigint NOT NULL,
  PRIMARY KEY (location_id, media_id));
CREATE INDEX location_media_shard ON ${s}.location_media (shard_id);
CREATE TABLE ${s}.location_external_ids (
  shard_id integer NOT NULL, provider ${TEXT} NOT NULL, external_id ${TEXT} NOT NULL, location_id bigint NOT NULL,
  PRIMARY KEY (provider, external_id));
CREATE INDEX location_external_ids_shard ON ${s}.location_external_ids (shard_id);

CREATE TABLE ${s}.follows (
  shard_id integer NOT NULL, source_id bigint NOT NULL, target_id bigint NOT NULL, status ${TEXT} NOT NULL, id bigint NOT NULL,
  PRIMARY KEY (source_id, target_id));
CREATE INDEX follows_order ON ${s}.follows (source_id, status, id);
CREATE INDEX follows_shard ON ${s}.follows (shard_id);
CREATE TABLE ${s}.followers (
  shard_id integer NOT NULL, target_id bigint NOT NULL, source_id bigint NOT NULL, status ${TEXT} NOT NULL, id bigint NOT NULL,
  PRIMARY KEY (target_id, source_id));
CREATE INDEX followers_order ON ${s}.followers (target_id, status, id);
CREATE INDEX followers_shard ON ${s}.followers (shard_id);
CREATE TABLE ${s}.blocks (shard_id integer NOT NULL, source_id bigint NOT NULL, target_id bigint NOT NULL, PRIMARY KEY (source_id, target_id));
CREATE INDEX blocks_shard ON ${s}.blocks (shard_id);
CREATE TABLE ${s}.blocked_by (shard_id integer NOT NULL, target_id bigint NOT NULL, source_id bigint NOT NULL, PRIMARY KEY (target_id, source_id));
CREATE INDEX blocked_by_shard ON ${s}.blocked_by (shard_id);
`;
}
