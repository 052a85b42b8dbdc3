// The store's `Sql` (sim/parts/db-node.ts) over a node-postgres client: the SQLite statements the
// store issues, translated once each (dialect.ts), run in one logical shard's schema, and answered
// as better-sqlite3 answers them with safeIntegers(true): integers as bigints, reals as numbers,
// text as strings, BLOBs as Buffers, NULL as null; run() → { changes }, column() → each row's
// first column; get/all/column of a statement that returns no rows throw as better-sqlite3 does.
//
// A callback runs in one transaction (withShard): BEGIN, SET LOCAL search_path TO shard_NNNN,
// the statements, COMMIT (ROLLBACK when it throws). Reads are REPEATABLE READ READ ONLY, so a
// callback's statements see one state, as they do under the SQLite node's lock; writes are READ
// COMMITTED. A statement that fails aborts the Postgres transaction (SQLite's would carry on), so
// the callback's next statement fails too: the store's callbacks let a failed statement throw.
//
// Scatter (DatabaseCluster.scatter hands a callback every logical shard a server holds, and its
// statements filter `shard_id IN (…)` or read the whole server) runs through withShards: each of
// the store's tables a statement reads becomes `(SELECT * FROM shard_a.t UNION ALL SELECT * FROM
// shard_b.t …) AS t` over exactly the shards the callback was given, in one REPEATABLE READ
// transaction whose search_path holds no table (so a reference the rewrite missed fails). Why this
// and not views, or running per schema:
//  - The statement keeps its meaning whole: count(*), ORDER BY … LIMIT, GROUP BY and subqueries
//    apply to the union as they applied to the SQLite server's one table. Running it per schema
//    and combining would need to know how to combine each statement (sum counts, merge sorted
//    pages, re-apply limits), a second query language to get wrong.
//  - Nothing to keep in step with the shard map. Views (or a partitioned parent) over "the shards
//    this server holds" are database-wide objects that change whenever a shard arrives or leaves:
//    a per-schema migration cannot maintain them (it runs per schema under that schema's lock),
//    DROP SCHEMA … CASCADE of a moved-away shard would drop them, and during a move they would
//    show the copy on the destination before the switch. Here the union follows the shard list of
//    the very callback, so nothing is created, migrated or dropped, and the schema tests'
//    "nothing outside the shards' schemas" holds.
//  - The cost is planning: one branch per shard and table read, and Postgres plans each branch.
//    Measured once on this project's shared 2-core machine, empty tables: at 171 schemas (what
//    2012-sharded puts on a server) the start-up count took ~55 ms unprepared, ~10 ms prepared
//    once its generic plan is cached; the username search ~14 ms, ~2 ms prepared; at 256 schemas
//    the count spent ~55 ms planning and under 3 ms executing. Any design that reads every shard
//    of a server opens every shard's table (a partitioned parent could prune only when a statement
//    names its shards as constants). Scatter serves rare reads (counts at start, username search,
//    client lists); a hot scatter wants `prepared` connections or a partitioned parent.

import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Row, Sql } from '../../parts/db-node.ts';
import { simError } from '../../engine/errors.ts';
import { bindParams, translate, type Translation } from './dialect.ts';
import { shardSchema } from './schema.ts';

const byteaParser = pg.types.getTypeParser(17, 'text') as (v: string) => Buffer;
const toBigInt = (v: string) => BigInt(v);

/**
 * How each Postgres result type is read back as SQLite would answer: every integer type (and a
 * boolean, which SQLite does not have: 1 or 0) as a bigint, as safeIntegers(true) gives them;
 * float4/8 as numbers; numeric (sum of bigints, a literal like 1.5) as a bigint when it is
 * integral, else a number; bytea as a Buffer; text-like types as strings. Any other type (arrays,
 * timestamps, json …) has no SQLite counterpart: a statement answering one throws.
 */
const PARSERS = new Map<number, (v: string) => unknown>([
  [20, toBigInt], // int8
  [21, toBigInt], // int2
  [23, toBigInt], // int4
  [26, toBigInt], // oid
  [16, (v) => (v === 't' ? 1n : 0n)], // bool
  [700, parseFloat], // float4
  [701, parseFloat], // float8
  [1700, (v) => (/^-?\d+$/.test(v) ? BigInt(v) : Number(v))], // numeric
  [17, byteaParser], // bytea
  [25, (v) => v], // text
  [1043, (v) => v], // varchar
  [1042, (v) => v], // bpchar
  [19, (v) => v], // name
  [18, (v) => v], // "char"
  [705, (v) => v], // unknown (a bare string literal)
]);

const SQLITE_TYPES = {
  getTypeParser(oid: number) {
    return PARSERS.get(oid) ?? ((v: string) => v);
  },
};

function statementName(text: string): string {
  return 'sg_' + createHash('sha1').update(text).digest('hex').slice(0, 30);
}

export interface PgSqlOptions {
  /**
   * Named (server-side prepared) statements, one per distinct text and connection: parsed and
   * planned once per connection. Off by default: pgbouncer in transaction mode (the topology's
   * pooler) does not keep a connection's prepared statements.
   */
  prepared?: boolean;
}

/**
 * The Sql of one callback on an open transaction: in the schema search_path names (`schemas`
 * null), or across the schemas of several logical shards (a scatter's, reads only).
 */
export class PgSql implements Sql {
  private ended = false;
  constructor(
    private readonly client: pg.ClientBase,
    private readonly schemas: readonly string[] | null,
    private readonly opts: PgSqlOptions = {},
  ) {}

  /** Refuses every statement from now on (the callback is over; its transaction committed or rolled back). */
  end(): void {
    this.ended = true;
  }

  private async query(sql: string, params: unknown[], rows: boolean): Promise<{ t: Translation; res: pg.QueryArrayResult }> {
    if (this.ended) throw new Error(`a statement ran after the end of its Postgres callback (a missing await?): ${sql}`);
    const t = translate(sql);
    if (rows && !t.returnsRows) throw new TypeError(`This statement does not return data. Use run() instead (${sql})`);
    const values = bindParams(t, params);
    const text = this.schemas ? t.acrossSchemas(this.schemas) : t.text;
    const config: pg.QueryArrayConfig = { text, values, rowMode: 'array', types: SQLITE_TYPES };
    if (this.opts.prepared) config.name = statementName(text);
    const res = await this.client.query(config);
    for (const f of res.fields) {
      if (!PARSERS.has(f.dataTypeID)) throw simError('SG_ERR_INVALID_PARAM', `Postgres answered column ${f.name} with type oid ${f.dataTypeID}, which SQLite has no counterpart for, in statement: ${sql}`);
    }
    return { t, res };
  }

  private objects(t: Translation, res: pg.QueryArrayResult, one: boolean): Row[] {
    if (!t.exactNames) throw simError('SG_ERR_INVALID_PARAM', `a result column of this statement has a name longer than Postgres keeps (63 bytes); alias it: ${t.sqlite}`);
    const names = res.fields.map((f) => f.name);
    const rows = one ? res.rows.slice(0, 1) : res.rows;
    return rows.map((r) => {
      const o: Row = {};
      for (let c = 0; c < names.length; c++) o[names[c]!] = r[c];
      return o;
    });
  }

  async get<T = Row>(sql: string, ...params: unknown[]): Promise<T | undefined> {
    const { t, res } = await this.query(sql, params, true);
    return this.objects(t, res, true)[0] as T | undefined;
  }

  async all<T = Row>(sql: string, ...params: unknown[]): Promise<T[]> {
    const { t, res } = await this.query(sql, params, true);
    return this.objects(t, res, false) as T[];
  }

  async column<T = unknown>(sql: string, ...params: unknown[]): Promise<T[]> {
    const { res } = await this.query(sql, params, true);
    return res.rows.map((r) => r[0]) as T[];
  }

  async run(sql: string, ...params: unknown[]): Promise<{ changes: number }> {
    const { t, res } = await this.query(sql, params, false);
    // better-sqlite3's run() of a SELECT reports no change; Postgres counts its rows.
    return { changes: t.kind === 'select' ? 0 : (res.rowCount ?? 0) };
  }
}

const READ = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';
const WRITE = 'BEGIN ISOLATION LEVEL READ COMMITTED';

/**
 * Where a transaction left the WAL, read in the same round trips as its BEGIN or COMMIT (no extra
 * one): a write's `pg_current_wal_insert_lsn()` just after its COMMIT (at or past its commit
 * record: a later commit of another session can only make it larger, so a read compared with it
 * errs towards "stale"), null when the transaction wrote nothing (no transaction id: no commit
 * record, nothing a replica could lack); or a replica read's `pg_last_wal_replay_lsn()` in the
 * statement that takes its snapshot. The position is read just after the snapshot, so a commit
 * replayed in between (microseconds) is counted as seen: such a read is missed as stale. Reading it
 * before would need a round trip of its own (a statement before BEGIN opens an implicit transaction
 * that BEGIN ISOLATION LEVEL then refuses).
 */
export interface WalPosition {
  lsn: string | null;
}

/**
 * One callback's transaction on a pooled connection: BEGIN and the search_path in one round trip,
 * `fn`, then COMMIT, or ROLLBACK when it rejects. A connection whose ROLLBACK failed is closed, not
 * pooled again. With `position`, the WAL position is read with BEGIN (reads) or COMMIT (writes).
 */
async function inTransaction<T>(pool: pg.Pool, begin: string, searchPath: string, schemas: readonly string[] | null, fn: (sql: PgSql) => Promise<T>, opts: PgSqlOptions, position?: WalPosition): Promise<T> {
  const client = await pool.connect();
  const sql = new PgSql(client, schemas, opts);
  const write = begin === WRITE;
  let broken = false;
  // A checked-out client's connection can end under it (a server stopped, a failover): pg-pool
  // listens for that only on idle clients, and an 'error' event nobody hears ends the process. The
  // query under way fails as well, which is what the caller sees.
  const onError = () => {
    broken = true;
  };
  client.on('error', onError);
  try {
    if (position && !write) {
      // This SELECT takes the snapshot (REPEATABLE READ: at the transaction's first statement), then reads the position.
      const res = (await client.query(`${begin}; SET LOCAL search_path TO ${searchPath}; SELECT pg_last_wal_replay_lsn()::text AS lsn`)) as unknown as pg.QueryResult[];
      position.lsn = (res[2]?.rows[0]?.lsn as string | null | undefined) ?? null;
    } else {
      await client.query(`${begin}; SET LOCAL search_path TO ${searchPath}`);
    }
    let out: T;
    try {
      out = await fn(sql);
    } finally {
      sql.end();
    }
    if (position && write) {
      const res = (await client.query('SELECT pg_current_xact_id_if_assigned()::text AS x; COMMIT; SELECT pg_current_wal_insert_lsn()::text AS lsn')) as unknown as pg.QueryResult[];
      const wrote = res[0]?.rows[0]?.x != null;
      position.lsn = wrote ? ((res[2]?.rows[0]?.lsn as string | undefined) ?? null) : null;
    } else {
      await client.query('COMMIT');
    }
    return out;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw e;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

/**
 * Runs `fn` in one transaction in logical shard `shardId`'s schema: a read is REPEATABLE READ READ
 * ONLY (one snapshot, as under the SQLite node's lock), a write READ COMMITTED; COMMIT when `fn`
 * resolves, ROLLBACK when it rejects. `position` receives the WAL position (see WalPosition).
 */
export function withShard<T>(pool: pg.Pool, shardId: number, access: 'read' | 'write', fn: (sql: PgSql) => Promise<T>, opts: PgSqlOptions = {}, position?: WalPosition): Promise<T> {
  return inTransaction(pool, access === 'read' ? READ : WRITE, shardSchema(shardId), null, fn, opts, position);
}

/**
 * Runs a scatter callback's reads across the schemas of `shardIds` (the logical shards one server
 * holds), in one REPEATABLE READ READ ONLY transaction whose search_path has no table of the
 * store's; see the top of this file.
 */
export function withShards<T>(pool: pg.Pool, shardIds: readonly number[], fn: (sql: PgSql) => Promise<T>, opts: PgSqlOptions = {}, position?: WalPosition): Promise<T> {
  if (shardIds.length === 0) return Promise.reject(simError('SG_ERR_INVALID_PARAM', 'a scatter over no logical shard'));
  return inTransaction(pool, READ, 'pg_catalog', shardIds.map(shardSchema), fn, opts, position);
}
