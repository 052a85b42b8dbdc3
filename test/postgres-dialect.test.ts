// The query layer for Postgres (sim/backends/postgres/dialect.ts, pg-sql.ts), proven on the
// service's own statements: a realistic workload runs on the embedded (SQLite) topology through
// the HTTP app and the store, every callback's statements are recorded at DatabaseCluster (its
// tap) with their logical shard, parameters and results, then the same sequence is replayed on
// the machine's Postgres (SCALEGRAM_PG_URL, default the local postgres database), each callback
// one transaction in its shard's schema (a scatter's across its server's shards), and every
// result must equal SQLite's: rows, bigint ids, changes. Last, every table of every shard must
// hold the same rows on both. The run works in a database of its own, dropped afterwards. The
// dialect's own checks need no Postgres; the rest is skipped with a warning when Postgres is
// down, except under CI=true.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, scryptSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { isSimError } from '../sim/engine/errors.ts';
import { bindParams, tableInfo, translate } from '../sim/backends/postgres/dialect.ts';
import { migrate } from '../sim/backends/postgres/migrations.ts';
import { PgSql, withShard, withShards } from '../sim/backends/postgres/pg-sql.ts';
import { DbNode, insertSql, type Row, type Sql } from '../sim/parts/db-node.ts';
import type { SqlTap, TapBulk, TapScope } from '../sim/parts/database-cluster.ts';
import { TABLES, TABLE_FAMILY } from '../sim/domain/sql-schema.ts';
import { shardOf } from '../sim/parts/ids.ts';
import { generatePopulation, seedPopulation } from '../sim/workload/population.ts';
import { seedUsers } from '../sim/workload/bulk-loader.ts';
import { startCallbackServer, type CallbackServer } from './helpers/callback-server.ts';
import { get, makeEnv, pathOf, relate, signup, simInject, upload, type Account, type TestEnv } from './helpers/app.ts';

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
if (unreachable !== null && !mustRun) console.warn(`Postgres not reachable at ${url} (${unreachable}); skipping the real-Postgres equivalence tests`);

function databaseUrl(name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

function invalidParam(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(isSimError(e, 'SG_ERR_INVALID_PARAM'), String(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected SG_ERR_INVALID_PARAM');
}

// ---- The SQL strings in the code ------------------------------------------------------------------

/** Where the store's statements are written (each handed to sql.get/all/run/column). */
const SOURCES = ['sim/domain', 'sim/workload', 'sim/parts/database-cluster.ts', 'bench/parts.ts'];

interface CodeStatement {
  file: string;
  text: string;
  /** Matches the texts it makes at run time (a template's ${…} parts match anything). */
  pattern: RegExp;
  template: boolean;
}

function sourceFiles(): string[] {
  const out: string[] = [];
  for (const s of SOURCES) {
    if (s.endsWith('.ts')) out.push(s);
    else for (const f of readdirSync(s).filter((x) => x.endsWith('.ts')).sort()) out.push(`${s}/${f}`);
  }
  return out;
}

/** Every string literal passed first to sql.get / all / run / column in SOURCES, deduplicated. */
function codeStatements(): CodeStatement[] {
  const re = /\bsql\.(?:get|all|run|column)\s*(?:<[^>]*>)?\(\s*(['"`])((?:\\.|(?!\1)[\s\S])*)\1/g;
  const seen = new Map<string, CodeStatement>();
  for (const file of sourceFiles()) {
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(re)) {
      const text = m[2]!;
      if (seen.has(text)) continue;
      const template = m[1] === '`' && text.includes('${');
      const pattern = new RegExp(
        '^' +
          text
            .split(/\$\{[^}]*\}/)
            .map((p) => p.replace(/[.*+?^$()|[\]\\{}]/g, '\\$&'))
            .join('(.+?)') +
          '$',
      );
      seen.set(text, { file, text, pattern, template });
    }
  }
  return [...seen.values()];
}

// ---- The dialect, without Postgres ----------------------------------------------------------------

describe('the Postgres dialect', () => {
  it('translates every SQL string literal the code hands to its Sql, once per distinct text', () => {
    const all = codeStatements();
    expect(all.length).toBeGreaterThan(80);
    for (const s of all.filter((x) => !x.template)) {
      const t = translate(s.text);
      expect(t.text, s.text).not.toMatch(/\?|json_each\(|INSERT OR|max\(0/i);
      expect(translate(s.text)).toBe(t); // cached: the same object
    }
  });

  it('writes the constructs SQLite and Postgres spell differently as Postgres spells them', () => {
    const cases: Array<[string, string]> = [
      ['SELECT * FROM users WHERE id = ? AND username = ?', 'SELECT * FROM users WHERE id = $1 AND username = $2'],
      ['INSERT OR IGNORE INTO blocks (shard_id, source_id, target_id) VALUES (?,?,?)', 'INSERT INTO blocks (shard_id, source_id, target_id) VALUES ($1,$2,$3) ON CONFLICT DO NOTHING'],
      [
        'INSERT OR REPLACE INTO tags (shard_id,name) VALUES (?,?),(?,?)',
        'INSERT INTO tags (shard_id,name) VALUES ($1,$2),($3,$4) ON CONFLICT (name) DO UPDATE SET shard_id = excluded.shard_id, media_count = DEFAULT',
      ],
      ['REPLACE INTO blocks VALUES (?,?,?)', 'INSERT INTO blocks VALUES ($1,$2,$3) ON CONFLICT (source_id, target_id) DO UPDATE SET shard_id = excluded.shard_id'],
      ['SELECT count(*) AS n FROM users WHERE shard_id IN (SELECT value FROM json_each(?))', 'SELECT count(*) AS n FROM users WHERE shard_id = ANY($1)'],
      ['SELECT id FROM likes WHERE user_id NOT IN (SELECT CAST(value AS INTEGER) FROM json_each(?))', 'SELECT id FROM likes WHERE user_id <> ALL(CAST($1 AS bigint[]))'],
      ['UPDATE media SET like_count = max(0, like_count - 1) WHERE id = ?', 'UPDATE media SET like_count = (CASE WHEN ( like_count - 1) IS NULL THEN NULL ELSE GREATEST(0, like_count - 1) END) WHERE id = $1'],
      ['SELECT max(id) AS m, min(created_ms) AS c FROM media', 'SELECT max(id) AS m, min(created_ms) AS c FROM media'],
      ['SELECT max(1, 2) AS m', 'SELECT GREATEST(1, 2) AS m'],
      ['SELECT CAST(target_id AS TEXT) FROM blocks', 'SELECT CAST(target_id AS text) AS "CAST(target_id AS TEXT)" FROM blocks'],
      ['SELECT count(*) FROM users', 'SELECT count(*) AS "count(*)" FROM users'],
      ['SELECT * FROM likes WHERE media_id = CAST(? AS INTEGER)', 'SELECT * FROM likes WHERE media_id = CAST($1 AS bigint)'],
      ['SELECT CAST(lat AS INTEGER) AS l FROM media', 'SELECT CAST(trunc(CAST(lat AS numeric)) AS bigint) AS l FROM media'],
      ['DELETE FROM media WHERE rowid IN (SELECT rowid FROM media WHERE shard_id = ? LIMIT 1000)', 'DELETE FROM media WHERE ctid IN (SELECT ctid FROM media WHERE shard_id = $1 LIMIT 1000)'],
      ['SELECT id FROM users WHERE username = ? COLLATE NOCASE', 'SELECT id FROM users WHERE lower(username) = lower($1 COLLATE "C")'],
      ['SELECT id FROM users WHERE username COLLATE NOCASE >= ?', 'SELECT id FROM users WHERE lower(username) >= lower($1 COLLATE "C")'],
      ['SELECT id FROM media WHERE caption IS ? AND location_id IS NOT ? AND lat IS NULL AND lng IS NOT NULL', 'SELECT id FROM media WHERE caption IS NOT DISTINCT FROM $1 AND location_id IS DISTINCT FROM $2 AND lat IS NULL AND lng IS NOT NULL'],
      ['SELECT id FROM media ORDER BY caption, location_id DESC, id DESC', 'SELECT id FROM media ORDER BY caption NULLS FIRST, location_id DESC NULLS LAST, id DESC'],
      ['SELECT * FROM (SELECT * FROM comments ORDER BY id DESC LIMIT ?) ORDER BY id', 'SELECT * FROM (SELECT * FROM comments ORDER BY id DESC LIMIT $1) AS sg_subquery_1 ORDER BY id'],
      ['INSERT INTO tags (shard_id, name, media_count) VALUES (?,?,1) ON CONFLICT(name) DO UPDATE SET media_count = media_count + 1', 'INSERT INTO tags (shard_id, name, media_count) VALUES ($1,$2,1) ON CONFLICT(name) DO UPDATE SET media_count = tags.media_count + 1'],
      [
        'UPDATE users SET media_count = media_count + CAST(d.value AS INTEGER) FROM json_each(?) AS d WHERE users.id = CAST(d.key AS INTEGER)',
        'UPDATE users SET media_count = media_count + CAST(trunc(CAST(d.value AS numeric)) AS bigint) FROM json_each_text(CAST($1 AS json)) AS d WHERE users.id = CAST(trunc(CAST(d.key AS numeric)) AS bigint)',
      ],
      ['SELECT id FROM users WHERE id == ?;', 'SELECT id FROM users WHERE id = $1'],
    ];
    for (const [sqlite, postgres] of cases) expect(translate(sqlite).text, sqlite).toBe(postgres);
    // A scatter's read: every table it reads, as the union of the shards' schemas.
    expect(translate('SELECT m.user_id AS owner FROM comments c JOIN media m ON m.id = c.media_id WHERE c.id = ?').acrossSchemas(['shard_0001', 'shard_0002'])).toBe(
      'SELECT m.user_id AS owner FROM (SELECT * FROM shard_0001.comments UNION ALL SELECT * FROM shard_0002.comments) c JOIN (SELECT * FROM shard_0001.media UNION ALL SELECT * FROM shard_0002.media) m ON m.id = c.media_id WHERE c.id = $1',
    );
    expect(translate('SELECT count(*) AS n FROM users WHERE shard_id IN (SELECT value FROM json_each(?))').acrossSchemas(['shard_0007'])).toBe(
      'SELECT count(*) AS n FROM (SELECT * FROM shard_0007.users) AS users WHERE shard_id = ANY($1)',
    );
    expect(invalidParam(() => translate('DELETE FROM users WHERE id = ?').acrossSchemas(['shard_0001']))).toMatch(/only a SELECT/);
    // The tables the translator knows are SQLite's own.
    expect(tableInfo('likes')).toMatchObject({ primaryKey: ['media_id', 'user_id'] });
  });

  it('refuses, naming the statement, what it does not handle, including the copy machinery that is SQLite-only', () => {
    const refused: Array<[string, RegExp]> = [
      ["SELECT * FROM users WHERE username LIKE 'a%'", /LIKE/],
      ['SELECT rowid, * FROM main.media WHERE rowid > ? ORDER BY rowid LIMIT 512', /rowid/],
      ['SELECT * FROM main.media WHERE id = ?', /schema-qualified/],
      ['DELETE FROM temp.sg_copy_changes WHERE seq <= ?', /schema-qualified/],
      ['SELECT coalesce(max(seq), 0) AS n FROM temp.sg_copy_changes', /schema-qualified/],
      ["CREATE TEMP TRIGGER IF NOT EXISTS sg_copy_media_i AFTER INSERT ON main.media BEGIN SELECT 1; END", /a CREATE statement/],
      ['SELECT * FROM users WHERE id = :id', /named parameter/],
      ['SELECT * FROM users WHERE id = ?1', /numbered parameter/],
      ['SELECT abs(id) AS a FROM users', /function abs/],
      ['SELECT id FROM users ORDER BY username COLLATE NOCASE', /COLLATE/],
      ['SELECT id FROM users WHERE username COLLATE RTRIM = ?', /COLLATE RTRIM/],
      ['SELECT CAST(lat AS TEXT) FROM media', /CAST/],
      ['SELECT id FROM users LIMIT 5, 10', /LIMIT offset, count/],
      ['INSERT OR ABORT INTO blocks VALUES (?,?,?)', /INSERT OR ABORT/],
      ['SELECT 1; SELECT 2', /more than one statement/],
      ['SELECT "ID" FROM users', /upper case/],
      ['WITH x AS (SELECT 1) SELECT * FROM x', /WITH/],
      ['SELECT max(0, ?) AS m', /bare parameter/],
    ];
    for (const [sql, why] of refused) {
      const msg = invalidParam(() => translate(sql));
      expect(msg, sql).toMatch(why);
      expect(msg, sql).toContain(sql);
    }
    // A refusal is remembered, and thrown again.
    expect(() => translate(refused[0]![0])).toThrow(/LIKE/);
  });

  it('binds as better-sqlite3 binds: counts and types checked, a json_each parameter as the array json_each walks', () => {
    const t = translate('SELECT * FROM users WHERE id IN (SELECT CAST(value AS INTEGER) FROM json_each(?)) AND username = ?');
    expect(bindParams(t, ['["1","2"]', 'a'])).toEqual([['1', '2'], 'a']);
    expect(bindParams(t, ['{"a":1,"b":true}', 5n])).toEqual([[1, 1], '5']);
    expect(bindParams(t, ['7', undefined])).toEqual([[7], null]);
    expect(bindParams(t, ['[[1],{"x":null},false,null]', Buffer.from('x')])).toEqual([['[1]', '{"x":null}', 0, null], Buffer.from('x')]);
    expect(() => bindParams(t, ['[]'])).toThrow(RangeError);
    expect(() => bindParams(t, ['[]', 'a', 'b'])).toThrow(/Too many/);
    expect(() => bindParams(t, ['[]', true])).toThrow(TypeError);
    expect(invalidParam(() => bindParams(t, ['[1', 'a']))).toMatch(/malformed JSON/);
    expect(invalidParam(() => bindParams(t, [3, 'a']))).toMatch(/needs JSON text/);
  });
});

// ---- The recording ---------------------------------------------------------------------------------

interface Statement {
  method: 'get' | 'all' | 'run' | 'column';
  sql: string;
  params: unknown[];
  result?: unknown;
  error?: string;
}

type Unit = { type: 'callback'; scope: TapScope; statements: Statement[]; outcome: 'ok' | 'threw' | 'running' } | { type: 'bulk'; bulk: TapBulk };

/** A copy of a result that later mutations by the store (push, reverse) do not reach. */
function snapshot(method: Statement['method'], r: unknown): unknown {
  if (method === 'get') return r === undefined ? undefined : { ...(r as Row) };
  if (method === 'all') return (r as Row[]).map((x) => ({ ...x }));
  if (method === 'column') return [...(r as unknown[])];
  return { ...(r as { changes: number }) };
}

class RecordingSql implements Sql {
  constructor(
    private readonly inner: Sql,
    private readonly unit: Statement[],
  ) {}
  private async rec<T>(method: Statement['method'], sql: string, params: unknown[], run: () => Promise<T>): Promise<T> {
    const s: Statement = { method, sql, params: [...params] };
    this.unit.push(s);
    try {
      const r = await run();
      s.result = snapshot(method, r);
      return r;
    } catch (e) {
      s.error = String(e);
      throw e;
    }
  }
  get<T = Row>(sql: string, ...p: unknown[]): Promise<T | undefined> {
    return this.rec('get', sql, p, () => this.inner.get<T>(sql, ...p));
  }
  all<T = Row>(sql: string, ...p: unknown[]): Promise<T[]> {
    return this.rec('all', sql, p, () => this.inner.all<T>(sql, ...p));
  }
  column<T = unknown>(sql: string, ...p: unknown[]): Promise<T[]> {
    return this.rec('column', sql, p, () => this.inner.column<T>(sql, ...p));
  }
  run(sql: string, ...p: unknown[]): Promise<{ changes: number }> {
    return this.rec('run', sql, p, () => this.inner.run(sql, ...p));
  }
}

/** The tap: each callback a unit, in the order callbacks began (per node, the order they ran). */
class Recorder implements SqlTap {
  readonly units: Unit[] = [];
  async callback<T>(scope: TapScope, sql: Sql, fn: (sql: Sql) => Promise<T>): Promise<T> {
    const unit: Unit = { type: 'callback', scope, statements: [], outcome: 'running' };
    this.units.push(unit);
    try {
      const out = await fn(new RecordingSql(sql, unit.statements));
      unit.outcome = 'ok';
      return out;
    } catch (e) {
      unit.outcome = 'threw';
      throw e;
    }
  }
  bulk(b: TapBulk): void {
    this.units.push({ type: 'bulk', bulk: { ...b, rows: b.rows.map((r) => [...r]), inserted: b.inserted && [...b.inserted] } });
  }
}

// ---- Comparing results --------------------------------------------------------------------------------

function show(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : Buffer.isBuffer(x) ? `hex:${x.toString('hex')}` : x));
}

/** The statement's top-level ORDER BY columns (inner parentheses removed), or null when it has none. */
function orderKeys(sql: string): string[] | null {
  let t = sql;
  while (/\([^()]*\)/.test(t)) t = t.replace(/\([^()]*\)/g, '');
  const m = /\bORDER\s+BY\s+(.*?)(?:\s+LIMIT\b.*)?$/is.exec(t);
  if (!m) return null;
  return m[1]!.split(',').map((term) => term.trim().split(/\s+/)[0]!.replace(/^.*\./, ''));
}

type Verdict = 'equal' | 'unordered' | 'ties' | 'limited';

/**
 * Whether Postgres answered what SQLite answered. Equal, or: the same rows in another order where
 * the statement orders none (no top-level ORDER BY); rows whose ORDER BY keys come in the same
 * sequence (rows tied on the keys may come in either order, or differ at a LIMIT); or, unordered
 * and cut by a LIMIT it reached, as many rows. Anything else is a mismatch (null).
 */
function verdict(s: Statement, pgResult: unknown): Verdict | null {
  const a = s.result;
  const b = pgResult;
  if (show(a) === show(b)) return 'equal';
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return null;
  const keys = orderKeys(s.sql);
  const sorted = (x: unknown[]) => x.map(show).sort().join('\n');
  if (keys === null) {
    if (sorted(a) === sorted(b)) return 'unordered';
    return /\bLIMIT\b/i.test(s.sql) ? 'limited' : null;
  }
  if (s.method === 'column') return null;
  const rowsA = a as Row[];
  const rowsB = b as Row[];
  if (!keys.every((k) => rowsA.every((r) => k in r))) return null;
  const seq = (rows: Row[]) => rows.map((r) => show(keys.map((k) => r[k]))).join('\n');
  return seq(rowsA) === seq(rowsB) ? 'ties' : null;
}

// ---- The workload and its replay ----------------------------------------------------------------

describe.skipIf(unreachable !== null && !mustRun)(`the service's statements on real Postgres at ${url}`, () => {
  const dbName = `sgtest_dialect_${process.pid}_${randomBytes(4).toString('hex')}`;
  const LOGICAL = 64;
  /** A logical shard beyond the topology's 64, for constructs the service's statements do not use. */
  const SPARE_SHARD = 100;
  let admin: pg.Client;
  let pool: pg.Pool;
  let env: TestEnv;
  let cb: CallbackServer;
  const recorder = new Recorder();
  const replay = {
    statements: 0,
    verdicts: new Map<Verdict, number>(),
    examples: new Map<Verdict, string[]>(),
    mismatches: [] as string[],
    covered: new Set<string>(),
    bulkTexts: new Set<string>(),
  };

  beforeAll(async () => {
    if (unreachable !== null) throw new Error(`Postgres not reachable at ${url} and CI=true requires it: ${unreachable}`);
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    pool = new pg.Pool({ connectionString: databaseUrl(dbName), max: 4 });
    pool.on('error', () => {});
    await migrate(pool, [...Array.from({ length: LOGICAL }, (_, s) => s), SPARE_SHARD]);
    // Hybrid fan-out with a low threshold: accounts with 3 followers post by pull (pulled_posts, and
    // their followers' feeds read their recent media), the others by push.
    env = await makeEnv({ topology: { feed: { replicas: 0, fanout: 'hybrid', hybridThreshold: 3 } } });
    cb = await startCallbackServer();
  }, 120_000);

  afterAll(async () => {
    sqlite.close();
    if (unreachable !== null || !admin) return;
    await env?.close();
    await cb?.close();
    await pool?.end();
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [dbName]);
    await admin.query(`DROP DATABASE IF EXISTS ${dbName}`);
    const { rows } = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_database WHERE datname = $1', [dbName]);
    expect(rows[0]!.n).toBe(0);
    await admin.end();
  });

  /** Runs a statement on a fresh SQLite node's tables and on the spare shard's schema; both answers. */
  const sqlite = new DbNode('constructs', null);
  async function both(method: 'get' | 'all' | 'run' | 'column', sql: string, ...params: unknown[]): Promise<[unknown, unknown]> {
    const a = (sqlite.sql() as unknown as Record<string, (s: string, ...p: unknown[]) => unknown>)[method]!(sql, ...params);
    const b = await withShard(pool, SPARE_SHARD, 'write', (s) => (s as unknown as Record<string, (s: string, ...p: unknown[]) => Promise<unknown>>)[method]!(sql, ...params));
    return [a, b];
  }

  it('constructs beyond the service statements answer alike: REPLACE resets unlisted columns, max() of a NULL, NULLs in ORDER BY, NOCASE, truncating casts, IS, rowid deletes, json_each of objects and scalars', async () => {
    const checks: Array<['get' | 'all' | 'run' | 'column', string, unknown[]]> = [
      ['run', 'INSERT INTO users (shard_id, id, username, full_name, password_hash, created_ms, media_count) VALUES (?,?,?,?,?,?,?)', [SPARE_SHARD, 1n, 'Ann', 'A', 'x', 1, 5]],
      ['run', 'INSERT OR REPLACE INTO users (shard_id, id, username, full_name, password_hash, created_ms) VALUES (?,?,?,?,?,?)', [SPARE_SHARD, 1n, 'ANN', 'A2', 'y', 2]],
      ['get', 'SELECT * FROM users WHERE id = ?', [1n]],
      ['run', 'REPLACE INTO users (shard_id, id, username, full_name, password_hash, created_ms, bio) VALUES (?,?,?,?,?,?,?),(?,?,?,?,?,?,?)', [SPARE_SHARD, 2n, 'bob', 'B', 'z', 3, 'hi', SPARE_SHARD, 3n, 'Éve', 'E', 'z', 3, 'yo']],
      ['all', 'SELECT id, username FROM users WHERE username = ? COLLATE NOCASE ORDER BY id', ['ann']],
      ['all', 'SELECT id FROM users WHERE username COLLATE NOCASE = ? ORDER BY id', ['éve']],
      ['all', 'SELECT id FROM users WHERE username COLLATE NOCASE = ? ORDER BY id', ['Éve']],
      // (A bigint: better-sqlite3 binds a JS number as a REAL, so `created_ms + 1` would be a REAL in SQLite.)
      ['all', 'SELECT id, max(media_count, created_ms + ?) AS m, min(created_ms, 2) AS c FROM users ORDER BY id', [1n]],
      ['get', 'SELECT max(0, NULL) AS a, min(1, NULL) AS b, max(id) AS c, count(*), count(bio) AS d FROM users', []],
      ['run', 'INSERT INTO media (shard_id, id, user_id, caption, created_ms, filter, tags, images, location_id, lat) VALUES (?,?,?,?,?,?,?,?,?,?)', [SPARE_SHARD, 10n, 1n, null, 1, 'N', '[]', '{}', null, -1.9]],
      ['run', 'INSERT INTO media (shard_id, id, user_id, caption, created_ms, filter, tags, images, location_id, lat) VALUES (?,?,?,?,?,?,?,?,?,?)', [SPARE_SHARD, 11n, 1n, 'b', 1, 'N', '[]', '{}', 7n, 2.9]],
      ['run', 'INSERT INTO media (shard_id, id, user_id, caption, created_ms, filter, tags, images, location_id, lat) VALUES (?,?,?,?,?,?,?,?,?,?)', [SPARE_SHARD, 12n, 1n, 'a', 1, 'N', '[]', '{}', null, null]],
      ['all', 'SELECT id, caption FROM media ORDER BY caption, id', []],
      ['all', 'SELECT id FROM media ORDER BY location_id DESC, id DESC', []],
      ['all', 'SELECT id, CAST(lat AS INTEGER) AS l, CAST(? AS INTEGER) AS p FROM media ORDER BY id', ['42']],
      ['all', 'SELECT id FROM media WHERE caption IS ? ORDER BY id', [null]],
      ['all', 'SELECT id FROM media WHERE caption IS NOT ? ORDER BY id', ['a']],
      ['all', 'SELECT id FROM media WHERE id IN (SELECT CAST(value AS INTEGER) FROM json_each(?)) ORDER BY id', ['{"x":"10","y":12}']],
      ['all', 'SELECT id FROM media WHERE id IN (SELECT value FROM json_each(?))', ['11']],
      ['run', 'UPDATE media SET like_count = like_count + CAST(d.value AS INTEGER) FROM json_each(?) AS d WHERE media.id = CAST(d.key AS INTEGER)', ['{"10":2,"12":"3.7"}']],
      ['all', 'SELECT id, like_count FROM media ORDER BY id', []],
      ['all', 'SELECT * FROM (SELECT id, caption FROM media ORDER BY id DESC LIMIT ?) ORDER BY id', [2]],
      ['run', 'DELETE FROM media WHERE rowid IN (SELECT rowid FROM media WHERE shard_id = ? LIMIT 2)', [SPARE_SHARD]],
      ['get', 'SELECT count(*) AS n FROM media', []],
      ['run', 'SELECT id FROM users', []],
    ];
    for (const [method, sql, params] of checks) {
      const [a, b] = await both(method, sql, ...params);
      expect(show(b), `${sql} ${show(params)}`).toBe(show(a));
    }
    // What SQLite refuses, Postgres refuses too, with better-sqlite3's words.
    await expect(withShard(pool, SPARE_SHARD, 'read', (s) => s.get('DELETE FROM users WHERE id = ?', 1n))).rejects.toThrow(/does not return data/);
    expect(() => sqlite.sql().get('DELETE FROM users WHERE id = ?', 1n)).toThrow(/does not return data/);
    // A statement after the end of its callback is refused.
    let kept: PgSql | null = null;
    await withShard(pool, SPARE_SHARD, 'read', async (s) => {
      kept = s;
    });
    await expect(kept!.get('SELECT 1 AS x')).rejects.toThrow(/after the end/);
    // A write that throws leaves nothing behind.
    await expect(
      withShard(pool, SPARE_SHARD, 'write', async (s) => {
        await s.run('DELETE FROM users');
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(await withShard(pool, SPARE_SHARD, 'read', (s) => s.get('SELECT count(*) AS n FROM users'))).toEqual({ n: 3n });
  });

  it('records a realistic workload on the embedded topology: signups, logins, uploads, follows, likes, comments, feeds, searches, blocks, clients, subscriptions, deletes, a seeded population, a shard move', async () => {
    const { app, topology } = env;
    const { store, db } = topology;
    db.tap = recorder;
    const ok = (res: { statusCode: number; body: string }, what: string) => expect(res.statusCode, `${what}: ${res.body}`).toBeLessThan(300);

    await store.init(); // user.count and block.count across every server
    await topology.subscriptions.init(); // subscription.count across every server
    const client = (await simInject(app, { method: 'POST', url: '/_sim/clients', payload: { name: 'equivalence' } })).json() as { client_id: string; client_secret: string };
    const spare = (await simInject(app, { method: 'POST', url: '/_sim/clients', payload: { name: 'short-lived' } })).json() as { client_id: string; client_secret: string };
    ok(await simInject(app, '/_sim/clients'), 'list clients');

    const names = ['ann', 'Bob.Smith', 'carol_c', 'dave', 'erin', 'frank', 'gus', 'hana'];
    const users: Record<string, Account> = {};
    for (const n of names) users[n] = await signup(app, n, { isPrivate: n === 'dave' });
    const [ann, bob, carol, dave, erin, frank, gus, hana] = names.map((n) => users[n]!) as [Account, Account, Account, Account, Account, Account, Account, Account];
    // A taken name (any case) is refused after its claim fails.
    expect((await app.inject({ method: 'POST', url: '/v1/accounts', payload: { username: 'ANN', password: 'secret123', full_name: 'x' } })).statusCode).toBe(400);
    // Logins: by password, and by password with the client's credentials (which authorizes it).
    ok(await app.inject({ method: 'POST', url: '/oauth/access_token', payload: { grant_type: 'password', username: 'bob.smith', password: 'secret123' } }), 'login');
    ok(
      await app.inject({
        method: 'POST',
        url: '/oauth/access_token',
        payload: new URLSearchParams({ client_id: client.client_id, client_secret: client.client_secret, grant_type: 'password', username: 'carol_c', password: 'secret123' }).toString(),
      }),
      'login with client',
    );
    expect((await app.inject({ method: 'POST', url: '/oauth/access_token', payload: { grant_type: 'password', username: 'nobody', password: 'secret123' } })).statusCode).toBe(400);
    // A password hash of the kind older data dirs hold (scrypt) is replaced at the next login.
    const salt = 'c2FsdHNhbHQ';
    const old = `scrypt$${salt}$${scryptSync('secret123', salt, 32, { N: 1024, r: 8, p: 1 }).toString('hex')}`;
    await db.write('users', shardOf(users.hana!.id), 'test.old-hash', (sql) => sql.run('UPDATE users SET password_hash = ? WHERE id = ?', old, BigInt(users.hana!.id)));
    ok(await app.inject({ method: 'POST', url: '/oauth/access_token', payload: { grant_type: 'password', username: 'hana', password: 'secret123' } }), 'login with an old hash');

    // The graph: public follows, a private account's requests (approved, ignored), an unfollow.
    for (const [who, target] of [
      [bob, ann],
      [carol, ann],
      [ann, bob],
      [gus, ann],
      [hana, carol],
      [frank, bob],
    ] as const)
      await relate(app, who, target.id, 'follow');
    await relate(app, ann, dave.id, 'follow');
    await relate(app, erin, dave.id, 'follow');
    ok(await get(app, '/v1/users/self/requested-by', dave).then((r) => r.res), 'requested-by');
    await relate(app, dave, ann.id, 'approve');
    await relate(app, dave, erin.id, 'ignore');
    await relate(app, frank, bob.id, 'unfollow');
    ok((await get(app, `/v1/users/${dave.id}/relationship`, ann)).res, 'relationship');

    // Subscriptions (the callback answers the hub challenge): tag, user, geography.
    const subscribe = (c: typeof client, params: Record<string, string>) =>
      app.inject({
        method: 'POST',
        url: `/v1/subscriptions.json?client_id=${c.client_id}&client_secret=${c.client_secret}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ aspect: 'media', verify_token: 't', callback_url: cb.url, ...params }).toString(),
      });
    ok(await subscribe(client, { object: 'tag', object_id: 'sunset' }), 'tag subscription');
    ok(await subscribe(client, { object: 'user' }), 'user subscription');
    const geo = (await subscribe(client, { object: 'geography', lat: '48.8584', lng: '2.2945', radius: '1000' })).json() as { data: { id: string } };

    // Uploads: captions with tags, places by name and by Foursquare ids, a private account's photo.
    const media: string[] = [];
    media.push((await upload(app, ann, { caption: 'Sunset at the beach #sunset #beach', lat: 48.858, lng: 2.295, locationName: 'Tour Eiffel', foursquareId: '12345', foursquareV2Id: '4b0588f4f964a520a5d422e3' })).id);
    media.push((await upload(app, ann, { caption: 'again #sunset', lat: 48.858, lng: 2.295, locationName: 'Tour Eiffel' })).id);
    const placed = (await upload(app, bob, { caption: 'lunch #food #Sunset', foursquareId: '12345' })) as { id: string; location: { id: string } | null; link: string };
    media.push(placed.id);
    media.push((await upload(app, dave, { caption: 'private #sunset' })).id);
    media.push((await upload(app, carol, { caption: 'no tags here' })).id);
    const locationId = placed.location?.id;
    expect(locationId).toBeTruthy();
    ok(await subscribe(client, { object: 'location', object_id: locationId! }), 'location subscription');
    media.push((await upload(app, ann, { caption: '#sunset three', lat: 48.86, lng: 2.293, locationName: 'Trocadéro' })).id);
    await topology.idle();

    // Likes and comments, their lists and counts, unlikes, a deleted comment.
    for (const who of [bob, carol, gus, hana]) ok(await app.inject({ method: 'POST', url: `/v1/media/${media[0]}/likes?access_token=${who.token}` }), 'like');
    ok(await app.inject({ method: 'POST', url: `/v1/media/${media[2]}/likes?access_token=${ann.token}` }), 'like');
    ok(await app.inject({ method: 'POST', url: `/v1/media/${media[3]}/likes?access_token=${ann.token}` }), 'like private');
    ok(await app.inject({ method: 'DELETE', url: `/v1/media/${media[0]}/likes?access_token=${gus.token}` }), 'unlike');
    const comments: string[] = [];
    for (const [who, text] of [
      [bob, 'nice #sunset'],
      [carol, 'wow @ann'],
      [ann, 'thanks'],
    ] as const) {
      const res = await app.inject({ method: 'POST', url: `/v1/media/${media[0]}/comments?access_token=${who.token}`, payload: { text } });
      ok(res, 'comment');
      comments.push((res.json() as { data: { id: string } }).data.id);
    }
    ok(await app.inject({ method: 'DELETE', url: `/v1/media/${media[0]}/comments/${comments[1]}?access_token=${carol.token}` }), 'delete comment');
    ok(await app.inject({ method: 'POST', url: `/v1/media/${media[2]}/comments?access_token=${carol.token}`, payload: { text: 'kept' } }), 'comment');
    await topology.idle();

    // Reads of every kind.
    const reads = [
      [`/v1/users/self/feed`, bob],
      [`/v1/users/self/feed?count=1`, ann],
      [`/v1/users/${ann.id}`, bob],
      [`/v1/users/${ann.id}/media/recent?count=1`, bob],
      [`/v1/users/${ann.id}/media/recent`, carol],
      [`/v1/users/${dave.id}/media/recent`, ann],
      [`/v1/users/self/media/liked`, ann],
      [`/v1/users/self/media/liked?count=1`, bob],
      [`/v1/users/self/activity`, ann],
      [`/v1/users/${ann.id}/follows`, bob],
      [`/v1/users/${ann.id}/followed-by`, bob],
      [`/v1/users/${ann.id}/followed-by?count=1`, gus],
      [`/v1/users/search?q=b`, ann],
      [`/v1/users/search?q=Bob`, carol],
      [`/v1/media/${media[0]}`, bob],
      [`/v1/media/${media[0]}/likes`, bob],
      [`/v1/media/${media[0]}/comments`, bob],
      [`/v1/media/popular`, bob],
      [`/v1/media/search?lat=48.858&lng=2.295&distance=2000`, bob],
      [`/v1/tags/sunset`, bob],
      [`/v1/tags/sunset/media/recent`, bob],
      [`/v1/tags/sunset/media/recent?count=1`, carol],
      [`/v1/tags/search?q=s`, bob],
      [`/v1/locations/${locationId}`, bob],
      [`/v1/locations/${locationId}/media/recent`, bob],
      [`/v1/locations/search?lat=48.858&lng=2.295`, bob],
      [`/v1/locations/search?foursquare_id=12345`, bob],
      [`/v1/locations/search?foursquare_v2_id=4b0588f4f964a520a5d422e3`, bob],
      [`/v1/geographies/${geo.data.id}/media/recent`, ann],
    ] as const;
    for (const [path, who] of reads) ok((await get(app, path, who)).res, path);
    // A private account's photos, to one it did not approve: refused.
    expect((await get(app, `/v1/users/${dave.id}/media/recent`, erin)).status).toBe(403);
    const code = /\/p\/([^/]+)\//.exec(placed.link)?.[1];
    ok((await get(app, `/v1/media/shortcode/${code}`, ann)).res, 'shortcode');
    // A next page, by its next_url.
    const first = await get(app, `/v1/users/${ann.id}/media/recent?count=1`, bob);
    expect(first.body.pagination?.next_url).toBeTruthy();
    ok(await app.inject({ method: 'GET', url: pathOf(first.body.pagination!.next_url!) }), 'next page');
    ok(await app.inject({ method: 'GET', url: `/v1/subscriptions.json?client_id=${client.client_id}&client_secret=${client.client_secret}` }), 'list subscriptions');

    // Blocks both ways, what they hide, an unblock; then blocked_by rows lost and backfilled at start.
    await relate(app, erin, frank.id, 'block');
    await relate(app, hana, ann.id, 'block');
    await relate(app, erin, bob.id, 'block');
    for (const path of [`/v1/media/${media[0]}`, `/v1/media/${media[0]}/likes`, `/v1/media/${media[0]}/comments`, `/v1/users/${ann.id}/followed-by`, `/v1/users/search?q=b`, `/v1/tags/sunset/media/recent`]) {
      ok((await get(app, path, erin)).res, `${path} by a blocker`);
    }
    ok((await get(app, `/v1/users/search?q=e`, frank)).res, 'search by the blocked');
    await get(app, `/v1/users/${ann.id}/media/recent`, hana); // hana blocks ann: refused, whatever the answer
    await relate(app, erin, frank.id, 'unblock');
    await relate(app, gus, bob.id, 'block');
    const t = shardOf(bob.id);
    await db.write('graph', t, 'test.lose-blocked-by', (sql) => sql.run('DELETE FROM blocked_by WHERE target_id = ? AND source_id = ?', BigInt(bob.id), BigInt(gus.id)));
    await store.init(); // counts differ: the backfill reads blocks and writes blocked_by

    // Subscriptions removed by id and by object; a client revoked.
    const subs = (await app.inject({ method: 'GET', url: `/v1/subscriptions.json?client_id=${client.client_id}&client_secret=${client.client_secret}` })).json() as { data: Array<{ id: string; object: string }> };
    ok(await app.inject({ method: 'DELETE', url: `/v1/subscriptions.json?client_id=${client.client_id}&client_secret=${client.client_secret}&id=${subs.data.find((s) => s.object === 'tag')!.id}` }), 'unsubscribe by id');
    ok(await app.inject({ method: 'DELETE', url: `/v1/subscriptions.json?client_id=${client.client_id}&client_secret=${client.client_secret}&object=user` }), 'unsubscribe by object');
    ok(await simInject(app, { method: 'DELETE', url: `/_sim/clients/${spare.client_id}` }), 'revoke');

    // A photo with likes, comments, tags and a place deleted by its owner.
    ok(await app.inject({ method: 'DELETE', url: `/v1/media/${media[0]}?access_token=${ann.token}` }), 'delete media');
    await topology.idle();

    // The bulk paths: a seeded population (users, follows, media, tags, places, counters), and a
    // seeding that finds a name taken (its claims withdrawn).
    await seedPopulation(topology, generatePopulation(7, { users: 60, avgFollows: 4 }), { mediaPerUser: 2 });
    await expect(seedUsers(topology, [{ username: 'newbie1', fullName: 'N' }, { username: 'Gus', fullName: 'G' }])).rejects.toThrow(/taken/);

    // The calibration bench's statements (bench/parts.ts), as it runs them: a user of its own, its media (twice: ignored).
    const id = BigInt(store.mintId('users', 5));
    await db.write('users', shardOf(id), 'calibrate.user', (sql) => sql.run('INSERT INTO users (shard_id, id, username, full_name, password_hash, created_ms) VALUES (?, ?, ?, ?, ?, ?)', shardOf(id), id, 'calx', 'Calibration x', 'x', Date.now()));
    const mid = BigInt(store.mintId('media', shardOf(id)));
    for (let k = 0; k < 2; k++) {
      await db.write('photos', shardOf(mid), 'calibrate.media', (sql) =>
        sql.run('INSERT OR IGNORE INTO media (shard_id, id, user_id, created_ms, filter, tags, images) VALUES (?, ?, ?, ?, ?, ?, ?)', shardOf(id), mid, id, Date.now(), 'Normal', '[]', '{}'),
      );
    }
    await db.read('users', shardOf(id), 'calibrate.pk', (sql) => sql.get('SELECT * FROM users WHERE id = ?', id));
    await db.read('photos', shardOf(id), 'calibrate.range', (sql) => sql.all('SELECT * FROM media WHERE user_id = ? ORDER BY id DESC LIMIT 20', id));

    // A logical shard moves to another server; the scatters then see the new shard lists.
    const group = db.groupByName('main');
    const moving = shardOf(ann.id);
    const from = group.map.physicalOf(moving);
    await db.moveShard('main', moving, (from + 1) % group.servers.length);
    await store.init();
    ok((await get(app, '/v1/users/search?q=a', bob)).res, 'search after the move');
    ok(await simInject(app, '/_sim/clients'), 'list clients after the move');
    ok((await get(app, `/v1/users/self/feed`, bob)).res, 'feed after the move');
    await topology.idle();
    await topology.subscriptions.settled();
    db.tap = null;

    const callbacks = recorder.units.filter((u) => u.type === 'callback');
    expect(callbacks.length).toBeGreaterThan(300);
    expect(callbacks.every((u) => u.outcome !== 'running')).toBe(true);
    expect(recorder.units.some((u) => u.type === 'bulk')).toBe(true);
  }, 120_000);

  it('replays every recorded statement on Postgres, each callback a transaction in its shard’s schema (a scatter across its server’s), with SQLite’s results', async () => {
    const note = (v: Verdict, s: Statement) => {
      replay.verdicts.set(v, (replay.verdicts.get(v) ?? 0) + 1);
      const list = replay.examples.get(v) ?? [];
      if (list.length < 3 && v !== 'equal') list.push(s.sql);
      replay.examples.set(v, list);
    };
    const ROLLBACK = new Error('the SQLite callback threw: roll back');
    for (const u of recorder.units) {
      if (u.type === 'bulk') {
        await replayBulk(u.bulk);
        continue;
      }
      const run = async (sql: PgSql) => {
        for (const s of u.statements) {
          replay.statements++;
          let got: unknown;
          let error: string | undefined;
          try {
            got = snapshot(s.method, await (sql as unknown as Record<string, (q: string, ...p: unknown[]) => Promise<unknown>>)[s.method]!(s.sql, ...s.params));
          } catch (e) {
            error = String(e);
          }
          const where = `${u.scope.op} ${u.scope.kind} on shard ${u.scope.shardId}: ${s.method} ${s.sql} ${show(s.params)}`;
          if (s.error !== undefined || error !== undefined) {
            // Both refused it (a constraint, say): the callback ended there on SQLite.
            if (s.error !== undefined && error !== undefined) continue;
            replay.mismatches.push(`${where}\n  SQLite: ${s.error ?? show(s.result)}\n  Postgres: ${error ?? show(got)}`);
            throw ROLLBACK;
          }
          const v = verdict(s, got);
          if (v === null) replay.mismatches.push(`${where}\n  SQLite:   ${show(s.result)}\n  Postgres: ${show(got)}`);
          else {
            note(v, s);
            replay.covered.add(s.sql);
          }
        }
        if (u.outcome === 'threw') throw ROLLBACK;
      };
      const done = u.scope.op === 'scatter' ? withShards(pool, u.scope.shardIds!, run) : withShard(pool, u.scope.shardId, u.scope.op === 'write' ? 'write' : 'read', run);
      await done.catch((e: unknown) => {
        if (e !== ROLLBACK) replay.mismatches.push(`${u.scope.op} ${u.scope.kind} on shard ${u.scope.shardId}: ${String(e)}`);
      });
    }
    expect(replay.mismatches, replay.mismatches.slice(0, 10).join('\n\n')).toEqual([]);
    expect(replay.statements).toBeGreaterThan(500);
  }, 300_000);

  /** A bulk insert again, on Postgres: its rows by logical shard, in the bulk path's own statements. */
  async function replayBulk(b: TapBulk): Promise<void> {
    const byShard = new Map<number, number[]>();
    b.rows.forEach((r, i) => {
      const s = Number(r[0]);
      (byShard.get(s) ?? byShard.set(s, []).get(s)!).push(i);
    });
    let changes = 0;
    const mismatch = (what: string) => replay.mismatches.push(`bulk ${b.table} (${b.conflict}): ${what}`);
    for (const [shard, idx] of byShard) {
      await withShard(pool, shard, 'write', async (sql) => {
        if (b.inserted) {
          const one = insertSql(b.table, b.columns, b.conflict, 1);
          replay.bulkTexts.add(one);
          for (const i of idx) {
            const c = (await sql.run(one, ...b.rows[i]!)).changes;
            changes += c;
            if (c > 0 !== b.inserted[i]) mismatch(`row ${i} written ${c > 0} on Postgres, ${b.inserted[i]} on SQLite`);
          }
          return;
        }
        for (let k = 0; k < idx.length; k += 50) {
          const chunk = idx.slice(k, k + 50);
          const text = insertSql(b.table, b.columns, b.conflict, chunk.length);
          replay.bulkTexts.add(text);
          changes += (await sql.run(text, ...chunk.flatMap((i) => b.rows[i]!))).changes;
        }
      });
    }
    if (changes !== b.changes) mismatch(`${changes} rows written on Postgres, ${b.changes} on SQLite`);
  }

  it('leaves every table of every logical shard with the same rows on both, and no row in another shard’s schema', async () => {
    const { db } = env.topology;
    const diffs: string[] = [];
    let rows = 0;
    for (const table of TABLES) {
      const info = tableInfo(table)!;
      const q = `SELECT * FROM ${table} WHERE shard_id = ? ORDER BY ${info.primaryKey.join(', ')}`;
      for (let s = 0; s < LOGICAL; s++) {
        const a = db.serverFor(TABLE_FAMILY[table]!, s).primary.sql().all(q, s);
        const [b, stray] = await withShard(pool, s, 'read', async (sql) => [await sql.all(q, s), await sql.get<{ n: bigint }>(`SELECT count(*) AS n FROM ${table} WHERE shard_id <> ?`, s)] as const);
        rows += a.length;
        if (show(a) !== show(b)) diffs.push(`${table} shard ${s}: SQLite ${a.length} rows, Postgres ${b.length}; first SQLite ${show(a.find((r, i) => show(r) !== show(b[i])))}, Postgres ${show(b.find((r, i) => show(r) !== show(a[i])))}`);
        if (stray!.n !== 0n) diffs.push(`${table} in shard_${s}: ${stray!.n} rows of other shards`);
      }
    }
    expect(diffs, diffs.slice(0, 10).join('\n')).toEqual([]);
    expect(rows).toBeGreaterThan(1000);
  }, 120_000);

  it('answers the telemetry lookups (straight on the node) alike', async () => {
    const { db } = env.topology;
    const checked: string[] = [];
    for (const table of ['users', 'media', 'comments', 'likes', 'activity', 'follows', 'followers']) {
      const family = TABLE_FAMILY[table]!;
      for (let s = 0; s < LOGICAL; s++) {
        const node = db.serverFor(family, s).primary;
        const row = node.sql().get<{ id: bigint }>(`SELECT id FROM ${table} WHERE shard_id = ? ORDER BY id LIMIT 1`, s);
        if (!row) continue;
        const lookups: Record<string, [string, unknown[]]> = {
          users: ['SELECT id AS owner FROM users WHERE id = ?', [row.id]],
          media: ['SELECT user_id AS owner FROM media WHERE id = ?', [row.id]],
          comments: ['SELECT m.user_id AS owner FROM comments c JOIN media m ON m.id = c.media_id WHERE c.id = ?', [row.id]],
          likes: ['SELECT m.user_id AS owner FROM likes l JOIN media m ON m.id = l.media_id WHERE l.shard_id = ? AND l.id = ?', [s, row.id]],
          activity: ['SELECT user_id AS owner FROM activity WHERE id = ?', [row.id]],
          follows: ['SELECT source_id AS owner FROM follows WHERE shard_id = ? AND id = ?', [s, row.id]],
          followers: ['SELECT target_id AS owner FROM followers WHERE shard_id = ? AND id = ?', [s, row.id]],
        };
        const [q, params] = lookups[table]!;
        const a = node.sql().get(q, ...params);
        const b = await withShard(pool, s, 'read', (sql) => sql.get(q, ...params));
        expect(show(b), `${q} ${show(params)}`).toBe(show(a));
        checked.push(table);
        break;
      }
    }
    expect(new Set(checked).size).toBe(7);
  });

  it('reports which of the code’s SQL strings the replay covered', () => {
    const code = codeStatements();
    const covered = code.filter((c) => [...replay.covered].some((t) => c.pattern.test(t)));
    const missing = code.filter((c) => !covered.includes(c));
    const unmatched = [...replay.covered].filter((t) => !code.some((c) => c.pattern.test(t)));
    console.log(
      [
        `Postgres equivalence: ${replay.statements} statements replayed (${[...replay.verdicts].map(([v, n]) => `${n} ${v}`).join(', ')}), ${replay.covered.size} distinct texts, plus ${replay.bulkTexts.size} distinct bulk-insert texts`,
        `code SQL strings covered: ${covered.length} of ${code.length}`,
        ...missing.map((m) => `  not covered: ${m.file}: ${m.text}`),
        ...[...replay.examples].filter(([v]) => v !== 'equal').map(([v, ex]) => `  ${v}, e.g.: ${ex.join(' | ')}`),
        ...unmatched.map((t) => `  recorded, not a literal in the code: ${t}`),
      ].join('\n'),
    );
    expect(covered.length).toBeGreaterThan(code.length * 0.85);
  });
});
