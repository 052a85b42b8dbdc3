// The logical shards' Postgres schemas against a real Postgres (SCALEGRAM_PG_URL, default the local
// postgres database): every table, column, key and index SQLite declares, versioned migrations that
// run once even from two processes at once, and next_id() minting ids in ids.ts's layout. Each run
// works in databases of its own, dropped afterwards. Skipped with a warning when Postgres is down,
// except under CI=true.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { SCHEMA_SQL, migrateSchema } from '../sim/domain/sql-schema.ts';
import { IdGenerator, MAX_LOGICAL_SHARDS, decodeId, encodeId, shardOf } from '../sim/parts/ids.ts';
import { RealClock } from '../sim/engine/clock.ts';
import { isSimError } from '../sim/engine/errors.ts';
import { CURRENT_VERSION, MIGRATIONS, MIGRATIONS_TABLE, migrate, schemaVersions } from '../sim/backends/postgres/migrations.ts';
import { shardIdOfSchema, shardSchema } from '../sim/backends/postgres/schema.ts';

const url = process.env.SCALEGRAM_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const mustRun = process.env.CI === 'true';

/** Null when Postgres answers a query within a second, else why not. */
async function probe(): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on('error', () => {}); // the failure is reported below, not as an unhandled 'error' event
  let connected = false;
  try {
    await client.connect();
    connected = true;
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return (err as Error).message || String(err);
  } finally {
    if (connected) await client.end().catch(() => {});
  }
}

const unreachable = await probe();
if (unreachable !== null && !mustRun) console.warn(`Postgres not reachable at ${url} (${unreachable}); skipping real-Postgres schema tests`);

/** `url` with another database name. */
function databaseUrl(name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

describe('shard schema names', () => {
  it('names shard N shard_NNNN, 4 digits for the 8192 shards 13 id bits allow, and reads the name back', () => {
    expect(shardSchema(0)).toBe('shard_0000');
    expect(shardSchema(42)).toBe('shard_0042');
    expect(shardSchema(MAX_LOGICAL_SHARDS - 1)).toBe('shard_8191');
    for (const id of [0, 7, 42, 999, 1000, 8191]) expect(shardIdOfSchema(shardSchema(id))).toBe(id);
    for (const bad of [-1, 8192, 1.5, NaN]) expect(() => shardSchema(bad)).toThrow(/logical shard/);
    for (const bad of ['shard_8192', 'shard_42', 'shard_00042', 'public', 'shard_0001; DROP SCHEMA public', 'Shard_0001']) {
      let err: unknown;
      try {
        shardIdOfSchema(bad);
      } catch (e) {
        err = e;
      }
      expect(isSimError(err), bad).toBe(true);
    }
  });
});

// ---- What SQLite declares, and what Postgres holds, in one shape -------------------------------

interface ColumnShape {
  name: string;
  /** SQLite's declared type: INTEGER, TEXT, REAL or BLOB (Postgres types mapped back). */
  type: string;
  notNull: boolean;
  /** The default as SQL text ('0', "''"), or null. */
  default: string | null;
}

interface TableShape {
  columns: ColumnShape[];
  primaryKey: string[];
  /** Unique constraints other than the primary key, each its columns, sorted. */
  unique: string[][];
  /** Named indexes: their key columns, an expression where SQLite had a collation. */
  indexes: Record<string, { unique: boolean; columns: string[] }>;
}

type SchemaShape = Record<string, TableShape>;

/** A fresh in-memory SQLite database as db-node.ts opens one: SCHEMA_SQL, then migrateSchema. */
function sqliteShape(): SchemaShape {
  const db = new Database(':memory:');
  try {
    db.exec(SCHEMA_SQL);
    migrateSchema(db);
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
    const shape: SchemaShape = {};
    for (const table of tables) {
      const cols = db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string; type: string; notnull: number; dflt_value: string | null; pk: number }>;
      const indexList = db.prepare(`PRAGMA index_list(${table})`).all() as Array<{ name: string; unique: number; origin: string }>;
      const keyColumns = (index: string) =>
        (db.prepare(`PRAGMA index_xinfo(${index})`).all() as Array<{ name: string | null; key: number; coll: string }>)
          .filter((c) => c.key === 1)
          .map((c) => {
            if (c.coll === 'BINARY') return c.name!;
            // NOCASE folds ASCII letters; its Postgres form is lower() under "C" (schema.ts).
            return c.coll === 'NOCASE' ? `lower(${c.name})` : `${c.name} COLLATE ${c.coll}`;
          });
      const indexes: TableShape['indexes'] = {};
      for (const ix of indexList.filter((i) => i.origin === 'c')) indexes[ix.name] = { unique: ix.unique === 1, columns: keyColumns(ix.name) };
      shape[table] = {
        columns: cols.map((c) => ({
          name: c.name,
          type: c.type.toUpperCase(),
          // SQLite lets a PRIMARY KEY column other than INTEGER hold NULL (a bug it keeps for old
          // files); Postgres makes every key column NOT NULL, which is what the service assumes.
          notNull: c.notnull === 1 || c.pk > 0,
          default: c.dflt_value,
        })),
        primaryKey: cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name),
        unique: indexList.filter((i) => i.origin === 'u').map((i) => keyColumns(i.name)).sort(),
        indexes,
      };
    }
    return shape;
  } finally {
    db.close();
  }
}

const PG_TO_SQLITE_TYPE: Record<string, string> = { bigint: 'INTEGER', integer: 'INTEGER', text: 'TEXT', 'double precision': 'REAL', bytea: 'BLOB' };

interface PgColumn {
  table_name: string;
  column_name: string;
  data_type: string;
  is_nullable: string;
  column_default: string | null;
  collation_name: string | null;
}

async function postgresColumns(pool: pg.Pool, schema: string): Promise<PgColumn[]> {
  const { rows } = await pool.query<PgColumn>(
    `SELECT table_name::text, column_name::text, data_type::text, is_nullable::text, column_default::text, collation_name::text
       FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position`,
    [schema],
  );
  return rows;
}

async function postgresShape(pool: pg.Pool, schema: string): Promise<SchemaShape> {
  const { rows: tables } = await pool.query<{ t: string }>(
    "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1",
    [schema],
  );
  const columns = await postgresColumns(pool, schema);
  const { rows: constraints } = await pool.query<{ t: string; kind: string; cols: string[] }>(
    `SELECT r.relname::text AS t, c.contype::text AS kind,
            array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[] AS cols
       FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
      WHERE n.nspname = $1`,
    [schema],
  );
  const { rows: indexes } = await pool.query<{ t: string; name: string; uniq: boolean; cols: string[] }>(
    `SELECT t.relname::text AS t, i.relname::text AS name, x.indisunique AS uniq,
            array(SELECT pg_get_indexdef(x.indexrelid, k, true) FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k)::text[] AS cols
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = $1 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)`,
    [schema],
  );
  const shape: SchemaShape = {};
  for (const { t } of tables) {
    const own: TableShape['indexes'] = {};
    for (const ix of indexes.filter((i) => i.t === t)) own[ix.name] = { unique: ix.uniq, columns: ix.cols };
    shape[t] = {
      columns: columns
        .filter((c) => c.table_name === t)
        .map((c) => ({
          name: c.column_name,
          type: PG_TO_SQLITE_TYPE[c.data_type] ?? `unmapped ${c.data_type}`,
          notNull: c.is_nullable === 'NO',
          // Postgres shows a default with its cast: ''::text.
          default: c.column_default === null ? null : c.column_default.replace(/::[a-z ]+$/, ''),
        })),
      primaryKey: constraints.find((c) => c.t === t && c.kind === 'p')?.cols ?? [],
      unique: constraints.filter((c) => c.t === t && c.kind === 'u').map((c) => c.cols).sort(),
      indexes: own,
    };
  }
  return shape;
}

/** A decimal id from Postgres, decoded with ids.ts. */
function decoded(id: string) {
  return { id: BigInt(id), ...decodeId(id) };
}

describe.skipIf(unreachable !== null && !mustRun)(`real Postgres at ${url}`, () => {
  // Everything this run creates lives in these two databases, dropped afterwards.
  const dbName = `sgtest_${process.pid}_${randomBytes(4).toString('hex')}`;
  const raceDbName = `${dbName}_race`;
  const shards = [0, 1, 2, 42, 1000, 4095, 4096, MAX_LOGICAL_SHARDS - 1];
  let admin: pg.Client;
  let pool: pg.Pool;
  const racePools: pg.Pool[] = [];

  function newPool(database: string): pg.Pool {
    const p = new pg.Pool({ connectionString: databaseUrl(database), max: 2 });
    p.on('error', () => {}); // an idle connection ended by the server; the next query reconnects
    return p;
  }

  beforeAll(async () => {
    if (unreachable !== null) throw new Error(`Postgres not reachable at ${url} and CI=true requires it: ${unreachable}`);
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
    for (const name of [dbName, raceDbName]) await admin.query(`CREATE DATABASE ${name}`);
    pool = newPool(dbName);
    racePools.push(newPool(raceDbName), newPool(raceDbName));
  });

  afterAll(async () => {
    if (unreachable !== null || !admin) return;
    await Promise.all([pool, ...racePools].filter(Boolean).map((p) => p.end()));
    for (const name of [dbName, raceDbName]) {
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
      await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    }
    const { rows } = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_database WHERE datname IN ($1, $2)', [dbName, raceDbName]);
    expect(rows[0]!.n).toBe(0);
    await admin.end();
  });

  it('migrating 8 shards creates, in every schema, every table, column, key and index the SQLite schema declares', async () => {
    const { applied } = await migrate(pool, shards);
    expect(applied).toEqual(shards.flatMap((s) => MIGRATIONS.map((m) => ({ schema: shardSchema(s), version: m.version }))));
    expect(await schemaVersions(pool, shards)).toEqual(shards.map((s) => ({ schema: shardSchema(s), version: CURRENT_VERSION })));

    const expected = sqliteShape();
    expect(Object.keys(expected).length).toBeGreaterThanOrEqual(21);
    for (const s of shards) {
      const schema = shardSchema(s);
      // One comparison, so a table, column or index SQLite has and Postgres lacks (or the reverse) fails here.
      expect(await postgresShape(pool, schema), schema).toEqual(expected);

      // The type mapping itself: 13-bit shard numbers and the 0/1 flag as integer, every other
      // integer (ids, ms, counters) as bigint; text in byte order as SQLite's BINARY compares.
      for (const c of await postgresColumns(pool, schema)) {
        const where = `${schema}.${c.table_name}.${c.column_name}`;
        if (c.column_name === 'shard_id' || c.column_name === 'is_private') expect(c.data_type, where).toBe('integer');
        else if (c.data_type === 'integer') expect.fail(`${where} is integer; ids, times and counters are bigint`);
        if (c.data_type === 'text') expect(c.collation_name, where).toBe('C');
      }
    }
    // Nothing was put outside the shards' schemas but the record table.
    const { rows: stray } = await pool.query<{ t: string }>(
      `SELECT table_schema || '.' || table_name AS t FROM information_schema.tables
        WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_schema !~ '^shard_[0-9]{4}$'`,
    );
    expect(stray.map((r) => r.t)).toEqual([MIGRATIONS_TABLE]);
  });

  it('migrating again applies nothing; versions are reported per schema (0 for one never migrated)', async () => {
    expect(await migrate(pool, shards)).toEqual({ applied: [] });
    expect(await migrate(pool, [shards[3]!, shards[3]!])).toEqual({ applied: [] });
    expect(await schemaVersions(pool)).toEqual(shards.map((s) => ({ schema: shardSchema(s), version: CURRENT_VERSION })));
    expect(await schemaVersions(pool, [42, 5])).toEqual([
      { schema: 'shard_0042', version: CURRENT_VERSION },
      { schema: 'shard_0005', version: 0 },
    ]);
    const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${MIGRATIONS_TABLE}`);
    expect(rows[0]!.n).toBe(shards.length * CURRENT_VERSION);
  });

  it('a schema whose migration fails is left as it was, and a schema migrated by newer code stops the migration', async () => {
    // A table nobody recorded: migration 1 fails on it, and its whole transaction rolls back.
    await pool.query('CREATE SCHEMA shard_0009; CREATE TABLE shard_0009.media (x integer)');
    await expect(migrate(pool, [9])).rejects.toThrow(/already exists/);
    const { rows: left } = await pool.query<{ t: string }>("SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = 'shard_0009'");
    expect(left.map((r) => r.t)).toEqual(['media']);
    expect(await schemaVersions(pool, [9])).toEqual([{ schema: 'shard_0009', version: 0 }]);
    await pool.query('DROP SCHEMA shard_0009 CASCADE');

    // A record from the future: nothing is applied to it.
    const future = CURRENT_VERSION + 1;
    const record = [...MIGRATIONS.map((m) => ({ version: m.version, name: m.name })), { version: future, name: 'future' }];
    await pool.query(`INSERT INTO ${MIGRATIONS_TABLE} (schema_name, version, name) SELECT 'shard_0010', v, n FROM unnest($1::int[], $2::text[]) AS u(v, n)`, [
      record.map((r) => r.version),
      record.map((r) => r.name),
    ]);
    const err = await migrate(pool, [10]).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isSimError(err, 'SG_ERR_CONFIG_INVALID'), String(err)).toBe(true);
    expect(String(err)).toMatch(/newer than this code/);
    expect(await schemaVersions(pool, [10])).toEqual([{ schema: 'shard_0010', version: future }]);
    await pool.query(`DELETE FROM ${MIGRATIONS_TABLE} WHERE schema_name = 'shard_0010'`);
  });

  it('two processes migrating a fresh database at once apply each migration exactly once', async () => {
    const [a, b] = racePools as [pg.Pool, pg.Pool];
    const raceShards = [0, 1, 2, 3, 4, 5, 6, 7];
    // Opposite orders, so they meet on every schema's lock; both race to create the record table.
    const [ra, rb] = await Promise.all([migrate(a, raceShards), migrate(b, [...raceShards].reverse())]);
    const key = (x: { schema: string; version: number }) => `${x.schema}@${x.version}`;
    const both = [...ra.applied, ...rb.applied].map(key).sort();
    expect(both).toEqual(raceShards.flatMap((s) => MIGRATIONS.map((m) => key({ schema: shardSchema(s), version: m.version }))).sort());
    const { rows } = await a.query<{ schema_name: string; version: number; n: number }>(
      `SELECT schema_name, version, count(*)::int AS n FROM ${MIGRATIONS_TABLE} GROUP BY 1, 2 ORDER BY 1, 2`,
    );
    expect(rows.length).toBe(raceShards.length * CURRENT_VERSION);
    expect(rows.every((r) => r.n === 1)).toBe(true);
    expect(await schemaVersions(b, raceShards)).toEqual(raceShards.map((s) => ({ schema: shardSchema(s), version: CURRENT_VERSION })));
    expect(await migrate(a, raceShards)).toEqual({ applied: [] });
  });

  it('next_id() in schema N mints ids of shard N at the time now, strictly increasing over 2,000 calls', async () => {
    for (const shard of [42, MAX_LOGICAL_SHARDS - 1]) {
      const schema = shardSchema(shard);
      const before = Date.now();
      const ids: string[] = [];
      // 1,000 calls a query each, then 1,000 in one query: fast enough that many share a
      // millisecond, and the sequence's first wrap (1023 → 0) falls among them.
      for (let i = 0; i < 1000; i++) ids.push((await pool.query<{ id: string }>(`SELECT ${schema}.next_id()::text AS id`)).rows[0]!.id);
      const { rows } = await pool.query<{ id: string }>(`SELECT ${schema}.next_id()::text AS id FROM generate_series(1, 1000) AS n ORDER BY n`);
      ids.push(...rows.map((r) => r.id));
      const after = Date.now();
      expect(ids.length).toBe(2000);

      const d = ids.map(decoded);
      for (const [i, x] of d.entries()) {
        expect(x.shardId).toBe(shard);
        expect(shardOf(ids[i]!)).toBe(shard); // the decimal-string path the service routes by
        expect(x.sequence).toBe((i + 1) % 1024); // the fresh sequence starts at 1
        expect(x.timestampMs).toBeGreaterThanOrEqual(before - 2000);
        expect(x.timestampMs).toBeLessThanOrEqual(after + 2000);
        if (i > 0) expect(x.id > d[i - 1]!.id, `id ${i} (${ids[i]}) after ${ids[i - 1]}`).toBe(true);
      }
      expect(Math.abs(d[0]!.timestampMs - before)).toBeLessThan(2000);
    }
  });

  it("next_id()'s ids have IdGenerator's layout: same shard bits, time bits within 2 s, and encodeId rebuilds them", async () => {
    const gen = new IdGenerator(() => new RealClock().nowMs());
    for (const shard of [0, 1000, 4096]) {
      const schema = shardSchema(shard);
      const fromDb = (await pool.query<{ id: string }>(`SELECT ${schema}.next_id()::text AS id`)).rows[0]!.id;
      const fromJs = gen.next('media', shard);
      const db = decodeId(fromDb);
      const js = decodeId(fromJs);
      expect(db.shardId).toBe(js.shardId);
      expect(db.shardId).toBe(shard);
      expect(Math.abs(db.timestampMs - js.timestampMs)).toBeLessThan(2000);
      // The same three fields through the project's own encoder give back the database's id bit for bit.
      expect(encodeId(db.timestampMs, db.shardId, db.sequence)).toBe(BigInt(fromDb));
      // Same bit positions: the shard sits in bits 10–22 of both.
      expect((BigInt(fromDb) >> 10n) & 0x1fffn).toBe((fromJs >> 10n) & 0x1fffn);
    }
  });

  it('the sequence wraps within its 10 bits: the shard and time bits stay whole, and ids keep increasing', async () => {
    for (const shard of [0, 1000]) {
      const schema = shardSchema(shard);
      // Far along the sequence (2^45), so any bit of nextval above the low 10 leaking into the id
      // would show in the shard or time bits.
      await pool.query(`SELECT setval('${schema}.id_seq', $1::bigint)`, [String(2n ** 45n - 3n)]);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await pool.query<{ id: string }>(`SELECT ${schema}.next_id()::text AS id`)).rows[0]!.id);
      const { rows } = await pool.query<{ id: string }>(`SELECT ${schema}.next_id()::text AS id FROM generate_series(1, 2048) AS n ORDER BY n`);
      ids.push(...rows.map((r) => r.id));
      const now = Date.now();
      const d = ids.map(decoded);
      expect(d.slice(0, 5).map((x) => x.sequence)).toEqual([1022, 1023, 0, 1, 2]);
      for (const [i, x] of d.entries()) {
        expect(x.shardId).toBe(shard);
        expect(x.sequence).toBe((1022 + i) % 1024);
        expect(Math.abs(x.timestampMs - now)).toBeLessThan(2000);
        if (i > 0) expect(x.id > d[i - 1]!.id, `id ${i} (${ids[i]}) after ${ids[i - 1]}`).toBe(true);
      }
    }
  });
});
