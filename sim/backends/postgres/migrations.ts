// Versioned migrations of the logical shards' schemas on one Postgres database. Each schema moves
// from the version recorded in public.scalegram_migrations to CURRENT_VERSION in one transaction,
// under a transaction-level advisory lock, so processes that migrate the same database at once
// apply each migration exactly once; running it again applies nothing.

import type pg from 'pg';
import { simError } from '../../engine/errors.ts';
import { INSTAGRAM_EPOCH_MS, SEQUENCE_BITS, SHARD_BITS } from '../../parts/ids.ts';
import { shardIdOfSchema, shardSchema, shardTablesSql } from './schema.ts';

export interface Migration {
  /** 1, 2, 3, … in the order they apply. */
  readonly version: number;
  readonly name: string;
  /** The DDL for one schema. Once released, its text never changes: a change is a new migration. */
  sql(schema: string): string;
}

/** Where each schema's applied migrations are recorded (one row per schema and version). */
export const MIGRATIONS_TABLE = 'public.scalegram_migrations';

/**
 * The advisory-lock space of these migrations (the two-key form: this class, then a key). 'SGM1'
 * as four bytes, so it is unlikely to meet another application's locks in the same database.
 */
export const MIGRATION_LOCK_CLASS = 0x53474d31;
/** The key that guards creating the record table (a shard's key is its number, 0 … 8191). */
const BOOTSTRAP_LOCK_KEY = -1;

/**
 * Instagram's `next_id()` (Instagram Engineering, "Sharding & IDs at Instagram", 2012), with this
 * project's layout and epoch from ids.ts spliced in, so the database and IdGenerator mint the same
 * kind of id: milliseconds since the epoch, then the shard, then nextval modulo 2^10. One sequence
 * per schema, not per table: the 10 bits are shared by the shard's tables.
 *
 * One change to the original: when the sequence starts a new block of 1024 (its low bits are 0),
 * the function waits for the clock's next millisecond (as Snowflake does when its sequence runs
 * out). Without it, a block that begins within the millisecond of the block before repeats that
 * millisecond with smaller low bits, so ids go backwards (and, past 1024 in one ms, repeat). The
 * wait costs at most 1 ms per 1024 ids. It is clock_timestamp(), not now(): now() is the
 * transaction's start, the same for every id a transaction mints.
 *
 * The sequence caches one value (the default): a per-session cache would hand each session its own
 * block and break the order. The range check matches encodeId's: 2^40 ms after the epoch at most,
 * so the top bit of the signed bigint stays clear.
 */
function nextIdSql(schema: string): string {
  const shardId = shardIdOfSchema(schema);
  const timeShift = SHARD_BITS + SEQUENCE_BITS;
  return `
CREATE SEQUENCE ${schema}.id_seq AS bigint;
CREATE FUNCTION ${schema}.next_id(OUT result bigint) LANGUAGE plpgsql AS $next_id$
DECLARE
  our_epoch bigint := ${INSTAGRAM_EPOCH_MS};
  shard_id int := ${shardId};
  seq_id bigint;
  now_millis bigint;
  later_millis bigint;
BEGIN
  SELECT nextval('${schema}.id_seq') % ${2 ** SEQUENCE_BITS} INTO seq_id;
  SELECT floor(extract(epoch FROM clock_timestamp()) * 1000) INTO now_millis;
  IF seq_id = 0 THEN
    -- A new block of ${2 ** SEQUENCE_BITS}: its ids must come after the last block's, so it starts on the next millisecond.
    LOOP
      later_millis := floor(extract(epoch FROM clock_timestamp()) * 1000);
      EXIT WHEN later_millis > now_millis;
    END LOOP;
    now_millis := later_millis;
  END IF;
  IF now_millis - our_epoch < 0 OR now_millis - our_epoch >= ${2 ** 40} THEN
    RAISE EXCEPTION 'clock % ms is outside the signed 64-bit id range of epoch %', now_millis, our_epoch
      USING ERRCODE = 'numeric_value_out_of_range';
  END IF;
  result := (now_millis - our_epoch) << ${timeShift};
  result := result | (shard_id << ${SEQUENCE_BITS});
  result := result | seq_id;
END;
$next_id$;
`;
}

/** Every migration, in order. Append only. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'tables',
    // IF NOT EXISTS for a schema made beforehand (by an operator, with its owner); the tables have
    // no IF NOT EXISTS, so a schema holding tables nobody recorded stops the migration.
    sql: (schema) => `CREATE SCHEMA IF NOT EXISTS ${schema};\n${shardTablesSql(schema)}`,
  },
  { version: 2, name: 'next_id', sql: nextIdSql },
];

/** The version a schema is at once migrate() has run. */
export const CURRENT_VERSION = MIGRATIONS.at(-1)!.version;

interface Recorded {
  version: number;
  name: string;
}

async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let ok = false;
  // Its connection may end under it (a server stopped): the query fails, and the event is heard.
  const onError = () => undefined;
  client.on('error', onError);
  try {
    const out = await fn(client);
    ok = true;
    return out;
  } finally {
    client.off('error', onError);
    // A connection whose work failed is closed rather than handed back in an unknown state.
    client.release(!ok);
  }
}

/**
 * Runs `fn` in a READ COMMITTED transaction that holds advisory lock (class, `key`) until it ends.
 * READ COMMITTED because each statement after the lock must see what the previous holder
 * committed; under REPEATABLE READ the snapshot would predate the wait.
 */
async function lockedTransaction<T>(pool: pg.Pool, key: number, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return withClient(pool, async (client) => {
    await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1::int4, $2::int4)', [MIGRATION_LOCK_CLASS, key]);
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  });
}

/** Creates the record table unless it exists; under a lock, as CREATE … IF NOT EXISTS races. */
async function ensureRecordTable(pool: pg.Pool): Promise<void> {
  await lockedTransaction(pool, BOOTSTRAP_LOCK_KEY, async (client) => {
    const { rows } = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [MIGRATIONS_TABLE]);
    if (rows[0]?.t != null) return;
    await client.query(`CREATE TABLE ${MIGRATIONS_TABLE} (
      schema_name text NOT NULL, version integer NOT NULL, name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (schema_name, version))`);
  });
}

/**
 * What the record says of `schema`, checked against MIGRATIONS: a prefix of them, by the same
 * names. Anything else means the database was migrated by other code (newer, or with a migration
 * renamed or reordered), and this code stops rather than guess.
 */
function checkRecorded(schema: string, recorded: readonly Recorded[]): void {
  recorded.forEach((r, i) => {
    const known = MIGRATIONS[i];
    if (known && known.version === r.version && known.name === r.name) return;
    throw simError(
      'SG_ERR_CONFIG_INVALID',
      known
        ? `${schema} records migration ${r.version} '${r.name}' where this code has ${known.version} '${known.name}'`
        : `${schema} is at migration ${r.version} '${r.name}', newer than this code (${CURRENT_VERSION})`,
      { schema, recorded: r.version, current: CURRENT_VERSION },
    );
  });
}

/**
 * Brings the schema of each logical shard in `shardIds` to CURRENT_VERSION, creating it if need
 * be. Each schema migrates in one transaction (all its pending migrations or none), holding the
 * advisory lock of its shard number, so a second process waits and then finds nothing to do.
 * Returns the migrations this call applied, in order.
 */
export async function migrate(pool: pg.Pool, shardIds: readonly number[]): Promise<{ applied: Array<{ schema: string; version: number }> }> {
  const schemas = shardIds.map(shardSchema); // all checked before any DDL runs
  await ensureRecordTable(pool);
  const applied: Array<{ schema: string; version: number }> = [];
  for (const [i, schema] of schemas.entries()) {
    const done = await lockedTransaction(pool, shardIds[i]!, async (client) => {
      const { rows } = await client.query<Recorded>(`SELECT version, name FROM ${MIGRATIONS_TABLE} WHERE schema_name = $1 ORDER BY version`, [schema]);
      checkRecorded(schema, rows);
      const pending = MIGRATIONS.slice(rows.length);
      for (const m of pending) {
        await client.query(m.sql(schema));
        await client.query(`INSERT INTO ${MIGRATIONS_TABLE} (schema_name, version, name) VALUES ($1, $2, $3)`, [schema, m.version, m.name]);
      }
      return pending.map((m) => ({ schema, version: m.version }));
    });
    applied.push(...done);
  }
  return { applied };
}

/**
 * The version each schema is at (0: not migrated). With `shardIds`, those shards' schemas in that
 * order; without, every schema the record table names, in name order.
 */
export async function schemaVersions(pool: pg.Pool, shardIds?: readonly number[]): Promise<Array<{ schema: string; version: number }>> {
  const wanted = shardIds?.map(shardSchema);
  const { rows: exists } = await pool.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [MIGRATIONS_TABLE]);
  const at = new Map<string, number>();
  if (exists[0]?.t != null) {
    const { rows } = await pool.query<{ schema_name: string; version: number }>(
      `SELECT schema_name, max(version) AS version FROM ${MIGRATIONS_TABLE} ${wanted ? 'WHERE schema_name = ANY($1)' : ''} GROUP BY schema_name ORDER BY schema_name`,
      wanted ? [wanted] : [],
    );
    for (const r of rows) at.set(r.schema_name, r.version);
  }
  return (wanted ?? [...at.keys()]).map((schema) => ({ schema, version: at.get(schema) ?? 0 }));
}
