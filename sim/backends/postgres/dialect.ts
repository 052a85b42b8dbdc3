// The store's SQLite statements in Postgres's dialect, for one logical shard's schema (search_path)
// or read across several shards' schemas (scatter). Each distinct statement text is translated once
// and cached. The translator works on tokens grouped by parentheses, not on regular expressions over
// the text, and knows a closed set of constructs: anything else it finds (a function, a collation,
// LIKE, a schema-qualified table, a named parameter …) throws SG_ERR_INVALID_PARAM naming the
// statement, so a statement it does not understand fails at once instead of meaning something else.
//
// What changes, and why (SQLite → Postgres):
//   ?                                    → $1, $2 … (in order; a parameter repeated by a rewrite keeps its number)
//   INSERT OR IGNORE INTO t …            → INSERT INTO t … ON CONFLICT DO NOTHING (any unique key, as IGNORE)
//   INSERT OR REPLACE / REPLACE INTO t … → INSERT INTO t … ON CONFLICT (t's primary key) DO UPDATE SET every
//                                          other column: the listed ones to excluded.c, the others to DEFAULT
//                                          (REPLACE deletes the old row, so unlisted columns get their defaults)
//   x [NOT] IN (SELECT value FROM json_each(?))
//                                        → x = ANY($n) / x <> ALL($n), the JSON text bound as an array
//                                          (Postgres infers its element type from x: an index scan, as in SQLite)
//   … CAST(value AS INTEGER) FROM json_each(?)) → x = ANY(CAST($n AS bigint[]))
//   FROM json_each(?) AS d (an object)   → FROM json_each_text(CAST($n AS json)) AS d (key, value as text)
//   max(a, b) / min(a, b) (scalar)       → GREATEST / LEAST, NULL when an argument is NULL (as SQLite's;
//                                          GREATEST alone would skip NULLs). max(x) / min(x) stay aggregates.
//   CAST(? AS INTEGER)                   → CAST($n AS bigint) (INTEGER is 64-bit in SQLite, int4 in Postgres)
//   CAST(expr AS INTEGER)                → CAST(trunc(CAST(expr AS numeric)) AS bigint): SQLite truncates a
//                                          real, Postgres's cast would round it
//   CAST(col AS TEXT)                    → for INTEGER and TEXT columns only (a REAL's text differs)
//   rowid IN (SELECT rowid FROM t …)     → ctid IN (SELECT ctid FROM t …) in a DELETE or UPDATE of t: the
//                                          same rows, within one statement. Any other rowid throws (ctid is
//                                          neither ordered nor stable across statements).
//   a COLLATE NOCASE = b (and <, <=, …)  → lower(a) = lower(b COLLATE "C"): NOCASE folds ASCII only, as
//                                          lower() under "C" does (schema.ts indexes lower(username)).
//                                          COLLATE BINARY → COLLATE "C". NOCASE anywhere else throws.
//   a IS b / a IS NOT b (b not NULL)     → IS NOT DISTINCT FROM / IS DISTINCT FROM
//   ORDER BY x [DESC]                    → + NULLS FIRST [NULLS LAST] where x may be NULL: SQLite sorts
//                                          NULLs first ascending, Postgres last. Left off for columns
//                                          NOT NULL in every table (ids, keys), so indexes still order.
//   (SELECT …) in FROM without an alias  → (SELECT …) AS sg_subquery_N (Postgres before 16 needs one)
//   ON CONFLICT … DO UPDATE SET c = c + 1 → … SET c = t.c + 1: an unqualified column is the target
//                                          row in SQLite and ambiguous (target or excluded) in Postgres
//   SELECT expr (no alias)               → SELECT expr AS "expr as written": SQLite names such a column
//                                          by its text (count(*)), Postgres by its function (count)
//   ==                                   → =
//
// What it does not make equal, and where that shows (never silently): INSERT OR IGNORE skips NOT
// NULL and CHECK failures too, Postgres raises them; INSERT OR REPLACE over a second unique key
// (locations.place_key) deletes the other row, Postgres raises a unique violation, as it does for
// two rows of one multi-row REPLACE with the same key; CAST('12abc' AS INTEGER) is 12 in SQLite
// and an error in Postgres; integer overflow gives a REAL in SQLite and an error in Postgres.
// ORDER BY on an expression of text other than a column sorts in the database's collation.
// better-sqlite3 binds every JS number as a REAL: `SELECT ? + 1` answers a number there and an
// integer (a bigint) here; stored in an INTEGER column (all the service does with its numbers) the
// two agree.

import Database from 'better-sqlite3';
import { simError } from '../../engine/errors.ts';
import { migrateSchema, SCHEMA_SQL } from '../../domain/sql-schema.ts';

// ---- The tables, as SQLite declares them ------------------------------------------------------

export interface TableInfo {
  /** Columns in declaration order. */
  readonly columns: readonly string[];
  /** Primary key columns in key order. */
  readonly primaryKey: readonly string[];
  /** Columns that are NOT NULL (or part of the primary key, which Postgres makes NOT NULL). */
  readonly notNull: readonly string[];
}

interface SchemaInfo {
  tables: Map<string, TableInfo>;
  /** Column name → its declared type when every table with that column agrees (INTEGER, TEXT, REAL), else null. */
  typeOf: Map<string, string | null>;
  /** Column names NOT NULL (or part of a primary key) in every table that has them. */
  notNull: Set<string>;
}

let schemaInfo: SchemaInfo | null = null;

/** The SQLite schema's tables, read from SQLite itself (SCHEMA_SQL in memory), once. */
function schema(): SchemaInfo {
  if (schemaInfo) return schemaInfo;
  const db = new Database(':memory:');
  try {
    db.exec(SCHEMA_SQL);
    migrateSchema(db);
    const names = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
    const tables = new Map<string, TableInfo>();
    const typeOf = new Map<string, string | null>();
    const nullable = new Set<string>();
    const seen = new Set<string>();
    for (const name of names) {
      const cols = db.prepare(`PRAGMA table_info(${name})`).all() as Array<{ name: string; type: string; notnull: number; pk: number }>;
      tables.set(name, {
        columns: cols.map((c) => c.name),
        primaryKey: cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name),
        notNull: cols.filter((c) => c.notnull === 1 || c.pk > 0).map((c) => c.name),
      });
      for (const c of cols) {
        const type = c.type.toUpperCase();
        typeOf.set(c.name, seen.has(c.name) && typeOf.get(c.name) !== type ? null : type);
        seen.add(c.name);
        // Postgres makes every primary key column NOT NULL (schema.ts), and the service never stores a NULL key.
        if (!(c.notnull === 1 || c.pk > 0)) nullable.add(c.name);
      }
    }
    schemaInfo = { tables, typeOf, notNull: new Set([...seen].filter((c) => !nullable.has(c))) };
    return schemaInfo;
  } finally {
    db.close();
  }
}

/** The columns and primary key of one of the store's tables, or undefined. */
export function tableInfo(table: string): TableInfo | undefined {
  return schema().tables.get(table);
}

// ---- Tokens --------------------------------------------------------------------------------------

interface TableRef {
  name: string;
  /** An alias follows the table name (so a subquery standing in for it keeps that alias). */
  aliased: boolean;
  /** One of the store's tables (a scatter reads it from every schema). */
  known: boolean;
}

interface Tok {
  k: 'word' | 'qid' | 'str' | 'num' | 'param' | 'op' | 'raw';
  v: string;
  /** Whitespace (and comments) before it. */
  ws: string;
  /** Where the token starts and ends in the SQLite text (-1 for text the translator made). */
  from: number;
  to: number;
  /** A parameter's position (0-based). */
  idx?: number;
  /** A table reference (FROM, JOIN, INTO, UPDATE). */
  table?: TableRef;
}

interface Group {
  k: 'group';
  ws: string;
  items: Node[];
  closeWs: string;
  from: number;
  to: number;
}

type Node = Tok | Group;

const raw = (v: string, ws = ' '): Tok => ({ k: 'raw', v, ws, from: -1, to: -1 });
const word = (v: string, ws = ' '): Tok => ({ k: 'word', v, ws, from: -1, to: -1 });
const group = (items: Node[], ws = ''): Group => ({ k: 'group', ws, items, closeWs: '', from: -1, to: -1 });

/** A word token (narrowing to it on true only: a false answer may still be a word, another one). */
type WordTok = Tok & { k: 'word' };

function isWord(n: Node | undefined, ...words: string[]): n is WordTok {
  return n !== undefined && n.k === 'word' && (words.length === 0 || words.includes(n.v.toUpperCase()));
}

function isOp(n: Node | undefined, op: string): n is Tok {
  return n !== undefined && n.k === 'op' && n.v === op;
}

/**
 * Words that are syntax, not names: never a function when followed by "(", never an alias. (SQLite
 * lets some of them be column names; the store's columns that are also keywords, like `filter` and
 * `key`, are not listed here.)
 */
const KEYWORDS = new Set(
  `ABORT ALL AND AS ASC BETWEEN BY CASE CAST COLLATE CONFLICT CROSS CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DEFAULT DELETE DESC DISTINCT DO ELSE END ESCAPE
   EXCEPT EXISTS FAIL FROM FULL GLOB GROUP GROUPS HAVING IGNORE IN INDEXED INNER INSERT INTERSECT INTO IS ISNULL JOIN LEFT LIKE LIMIT MATCH NATURAL NOT NOTHING
   NOTNULL NULL NULLS OFFSET ON OR ORDER OUTER OVER PARTITION RANGE REGEXP REPLACE RETURNING RIGHT ROLLBACK ROWS SELECT SET THEN UNION UPDATE USING VALUES WHEN WHERE
   WINDOW WITH TRUE FALSE`.split(/\s+/),
);

/** SQLite constructs with no equal in Postgres here; each one throws. */
const REFUSED: Record<string, string> = {
  LIKE: 'LIKE (case-insensitive for ASCII in SQLite, case-sensitive in Postgres)',
  GLOB: 'GLOB',
  REGEXP: 'REGEXP',
  MATCH: 'MATCH',
  ESCAPE: 'ESCAPE',
  INDEXED: 'INDEXED BY / NOT INDEXED',
  WITH: 'WITH (common table expressions)',
  PRAGMA: 'PRAGMA',
  ATTACH: 'ATTACH',
  _ROWID_: 'rowid',
  OID: 'rowid',
};

/** SQLite functions that mean the same in Postgres (given the column types schema.ts declares). */
const SAME_FUNCTIONS = new Set(['count', 'row_number', 'coalesce']);

function fail(sql: string, what: string): never {
  throw simError('SG_ERR_INVALID_PARAM', `Postgres dialect: ${what} is not handled, in statement: ${sql}`, { statement: sql });
}

function tokenize(sql: string): { nodes: Node[]; params: number } {
  const root: Node[] = [];
  const stack: Group[] = [];
  let items = root;
  let params = 0;
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const wsFrom = i;
    for (;;) {
      if (i < n && /\s/.test(sql[i]!)) i++;
      else if (sql.startsWith('--', i)) {
        const e = sql.indexOf('\n', i);
        i = e < 0 ? n : e + 1;
      } else if (sql.startsWith('/*', i)) {
        const e = sql.indexOf('*/', i + 2);
        if (e < 0) fail(sql, 'an unterminated comment');
        i = e + 2;
      } else break;
    }
    const ws = sql.slice(wsFrom, i);
    if (i >= n) {
      if (stack.length) fail(sql, 'an unclosed parenthesis');
      if (ws) root.push(raw('', ws));
      break;
    }
    const c = sql[i]!;
    const from = i;
    const tok = (k: Tok['k'], v: string): Tok => ({ k, v, ws, from, to: i });
    if (c === '(') {
      i++;
      const g: Group = { k: 'group', ws, items: [], closeWs: '', from, to: -1 };
      items.push(g);
      stack.push(g);
      items = g.items;
    } else if (c === ')') {
      const g = stack.pop();
      if (!g) fail(sql, 'an unbalanced ")"');
      i++;
      g.closeWs = ws;
      g.to = i;
      items = stack.length ? stack[stack.length - 1]!.items : root;
    } else if (c === "'") {
      i++;
      for (;;) {
        const e = sql.indexOf("'", i);
        if (e < 0) fail(sql, 'an unterminated string');
        i = e + 1;
        if (sql[i] === "'") i++;
        else break;
      }
      items.push(tok('str', sql.slice(from, i)));
    } else if (c === '"') {
      i++;
      for (;;) {
        const e = sql.indexOf('"', i);
        if (e < 0) fail(sql, 'an unterminated quoted identifier');
        i = e + 1;
        if (sql[i] === '"') i++;
        else break;
      }
      const v = sql.slice(from, i);
      // SQLite matches quoted names without regard to case, Postgres exactly: only lower case is the same in both.
      if (v !== v.toLowerCase()) fail(sql, `the quoted identifier ${v} (upper case)`);
      items.push(tok('qid', v));
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      if (/^0[xX]/.test(sql.slice(i, i + 2))) fail(sql, 'a hexadecimal literal');
      const m = /^[0-9]*(\.[0-9]*)?([eE][+-]?[0-9]+)?/.exec(sql.slice(i))!;
      i += m[0].length;
      if (/[A-Za-z_]/.test(sql[i] ?? '')) fail(sql, `the number ${sql.slice(from, i + 1)}…`);
      items.push(tok('num', sql.slice(from, i)));
    } else if (c === '?') {
      i++;
      if (/[0-9]/.test(sql[i] ?? '')) fail(sql, 'a numbered parameter (?NNN)');
      items.push({ ...tok('param', '?'), idx: params++ });
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i))!;
      i += m[0].length;
      items.push(tok('word', m[0]));
    } else if (c === ':' || c === '@' || c === '$') {
      fail(sql, `a named parameter (${c}name)`);
    } else if (c === '`' || c === '[') {
      fail(sql, `an identifier quoted with ${c}`);
    } else if (c === ';') {
      i++;
      if (sql.slice(i).trim() !== '' || stack.length) fail(sql, 'more than one statement');
    } else {
      const two = sql.slice(i, i + 2);
      if (['||', '<=', '>=', '<>', '!=', '==', '<<', '>>'].includes(two)) i += 2;
      else if ('=<>+-*/%&|~,.'.includes(c)) i++;
      else fail(sql, `the character ${JSON.stringify(c)}`);
      items.push(tok('op', sql.slice(from, i)));
    }
  }
  return { nodes: root, params };
}

/** Splits nodes at top-level tokens matching `at` (the separators are dropped). */
function split(nodes: readonly Node[], at: (n: Node) => boolean): Node[][] {
  const parts: Node[][] = [[]];
  for (const n of nodes) {
    if (at(n)) parts.push([]);
    else parts[parts.length - 1]!.push(n);
  }
  return parts;
}

const isComma = (n: Node) => isOp(n, ',');

/** Nodes without the text-less tokens the tokenizer keeps for trailing whitespace. */
const solid = (nodes: readonly Node[]) => nodes.filter((n) => !(n.k === 'raw' && n.v === ''));

/** The column a node run names (`c` or `t.c`), or null. */
function columnOf(nodes: readonly Node[]): string | null {
  const s = solid(nodes);
  if (s.length === 1 && isWord(s[0]) && !KEYWORDS.has(s[0].v.toUpperCase())) return s[0].v.toLowerCase();
  if (s.length === 3 && isWord(s[0]) && isOp(s[1], '.') && isWord(s[2])) return s[2].v.toLowerCase();
  return null;
}

function render(nodes: readonly Node[], schemas: readonly string[] | null): string {
  let out = '';
  for (const n of nodes) {
    if (n.k === 'group') {
      out += `${n.ws}(${render(n.items, schemas)}${n.closeWs})`;
    } else if (n.k === 'param') {
      out += `${n.ws}$${n.idx! + 1}`;
    } else if (n.table && schemas) {
      const t = n.table.name;
      if (!n.table.known) throw simError('SG_ERR_INVALID_PARAM', `Postgres dialect: ${t} is not one of the shards' tables, so it cannot be read across schemas`);
      const union = schemas.map((s) => `SELECT * FROM ${s}.${t}`).join(' UNION ALL ');
      out += `${n.ws}(${union})${n.table.aliased ? '' : ` AS ${t}`}`;
    } else if (n.k === 'op' && n.v === '==') {
      out += `${n.ws}=`;
    } else {
      out += n.ws + n.v;
    }
  }
  return out;
}

// ---- The translation -------------------------------------------------------------------------------

export type StatementKind = 'select' | 'insert' | 'update' | 'delete';

/** One SQLite statement in Postgres's dialect. */
export interface Translation {
  /** The SQLite text it was made from. */
  readonly sqlite: string;
  /** The Postgres text, for the schema search_path names (one logical shard's). */
  readonly text: string;
  readonly kind: StatementKind;
  /** Whether it answers rows (a SELECT, or a write with RETURNING); get/all/column of one that does not throws, as better-sqlite3's do. */
  readonly returnsRows: boolean;
  /** `?` placeholders (count). */
  readonly params: number;
  /** Parameters that are JSON text in SQLite and a Postgres array here (x IN json_each(?)): bind() turns them into arrays. */
  readonly arrayParams: readonly number[];
  /**
   * Whether every result column is named as SQLite names it. False when an unaliased expression's
   * text is longer than a Postgres name (63 bytes): get and all refuse it, column() does not care.
   */
  readonly exactNames: boolean;
  /** The text reading the store's tables from every schema in `schemas` (one UNION ALL per table); reads only. */
  acrossSchemas(schemas: readonly string[]): string;
}

class Translator {
  private subqueries = 0;
  private readonly arrayParams = new Set<number>();
  private exactNames = true;
  private readonly info = schema();
  kind: StatementKind = 'select';

  constructor(private readonly sql: string) {}

  private fail(what: string): never {
    return fail(this.sql, what);
  }

  run(): Translation {
    const lead = /^\s*([A-Za-z]+)/.exec(this.sql)?.[1]?.toUpperCase();
    if (!lead || !['SELECT', 'INSERT', 'REPLACE', 'UPDATE', 'DELETE'].includes(lead)) this.fail(lead ? `a ${lead} statement` : 'a statement that does not start with a keyword');
    const { nodes, params } = tokenize(this.sql);
    let root = nodes;
    const first = solid(root)[0];
    if (!isWord(first)) this.fail('a statement that does not start with SELECT, INSERT, REPLACE, UPDATE or DELETE');
    const verb = first.v.toUpperCase();
    if (verb === 'SELECT') this.kind = 'select';
    else if (verb === 'INSERT' || verb === 'REPLACE') this.kind = 'insert';
    else if (verb === 'UPDATE') this.kind = 'update';
    else if (verb === 'DELETE') this.kind = 'delete';
    else this.fail(`a ${verb} statement`);

    let conflict: Node[] = [];
    if (this.kind === 'insert') ({ root, conflict } = this.insertPrefix(root));
    if (this.kind === 'update' || this.kind === 'delete') {
      root = this.rowids(root);
      for (const n of root) if (isWord(n, 'ORDER', 'LIMIT')) this.fail(`${n.v} in an ${verb}`);
      if (this.kind === 'update' && isWord(solid(root)[1], 'OR')) this.fail('UPDATE OR …');
    }
    this.refuseRowid(root);
    if (this.kind === 'insert') root = this.qualifyUpsert(root);
    root = this.level(root, true);
    if (conflict.length) {
      const at = root.findIndex((n) => isWord(n, 'RETURNING'));
      root = at < 0 ? [...solid(root), ...conflict] : [...root.slice(0, at), ...conflict, ...root.slice(at)];
    }
    const returnsRows = this.kind === 'select' || root.some((n) => isWord(n, 'RETURNING'));
    const text = render(root, null).trim();
    const scattered = new Map<string, string>();
    const kind = this.kind;
    const sql = this.sql;
    return {
      sqlite: this.sql,
      text,
      kind,
      returnsRows,
      params,
      arrayParams: [...this.arrayParams].sort((a, b) => a - b),
      exactNames: this.exactNames,
      acrossSchemas(schemas) {
        if (kind !== 'select') throw simError('SG_ERR_INVALID_PARAM', `Postgres dialect: only a SELECT reads across schemas, not: ${sql}`, { statement: sql });
        if (schemas.length === 0) throw simError('SG_ERR_INVALID_PARAM', 'Postgres dialect: no schema to read across');
        const key = schemas.join(',');
        let t = scattered.get(key);
        if (t === undefined) {
          t = render(root, schemas).trim();
          // A server's shard list changes only when a shard moves: a few lists at most.
          if (scattered.size >= 16) scattered.clear();
          scattered.set(key, t);
        }
        return t;
      },
    };
  }

  /** INSERT OR IGNORE / OR REPLACE / REPLACE: the plain INSERT, and the ON CONFLICT clause to append. */
  private insertPrefix(nodes: Node[]): { root: Node[]; conflict: Node[] } {
    const s = solid(nodes);
    let mode: 'plain' | 'ignore' | 'replace' = 'plain';
    let rest: Node[];
    if (isWord(s[0], 'REPLACE')) {
      mode = 'replace';
      rest = [word('INSERT', s[0].ws), ...s.slice(1)];
    } else if (isWord(s[1], 'OR')) {
      const how = s[2];
      if (isWord(how, 'IGNORE')) mode = 'ignore';
      else if (isWord(how, 'REPLACE')) mode = 'replace';
      else this.fail(`INSERT OR ${how && 'v' in how ? how.v : '…'}`);
      rest = [s[0]!, ...s.slice(3)];
    } else rest = s;
    if (!isWord(rest[1], 'INTO') || !isWord(rest[2])) this.fail('an INSERT without INTO table');
    if (isOp(rest[3], '.')) this.fail('a schema-qualified table');
    if (isWord(rest[3], 'AS')) this.fail('an alias of the inserted table');
    const table = rest[2].v.toLowerCase();
    const hasUpsert = rest.some((n, i) => isWord(n, 'ON') && isWord(rest[i + 1], 'CONFLICT'));
    if (mode === 'plain') return { root: rest, conflict: [] };
    if (hasUpsert) this.fail(`INSERT OR ${mode.toUpperCase()} with an ON CONFLICT clause`);
    if (mode === 'ignore') return { root: rest, conflict: [raw('ON CONFLICT DO NOTHING')] };
    const info = this.info.tables.get(table);
    if (!info) this.fail(`INSERT OR REPLACE into ${table}, a table the schema does not declare (its primary key is needed)`);
    const list = rest[3]?.k === 'group' ? split(rest[3].items, isComma).map((c) => columnOf(c) ?? this.fail('a column list entry that is not a column')) : [...info.columns];
    for (const c of list) if (!info.columns.includes(c)) this.fail(`the column ${c} of ${table}`);
    const set = info.columns.filter((c) => !info.primaryKey.includes(c)).map((c) => `${c} = ${list.includes(c) ? `excluded.${c}` : 'DEFAULT'}`);
    const clause = set.length ? `ON CONFLICT (${info.primaryKey.join(', ')}) DO UPDATE SET ${set.join(', ')}` : 'ON CONFLICT DO NOTHING';
    return { root: rest, conflict: [raw(clause)] };
  }

  /** DELETE/UPDATE … WHERE rowid IN (SELECT rowid FROM the same table …): ctid for both. */
  private rowids(nodes: Node[]): Node[] {
    const s = solid(nodes);
    const target = this.kind === 'delete' ? s[2] : s[1];
    return nodes.map((n, i) => {
      const g = nodes[i + 2];
      if (!isWord(n, 'ROWID') || !isWord(nodes[i + 1], 'IN') || g?.k !== 'group') return n;
      const inner = solid(g.items);
      if (!isWord(inner[0], 'SELECT') || !isWord(inner[1], 'ROWID') || !isWord(inner[2], 'FROM') || !isWord(inner[3]) || !isWord(target) || inner[3].v.toLowerCase() !== target.v.toLowerCase()) return n;
      const ctid = (t: Tok): Tok => ({ ...t, v: 'ctid' });
      g.items = g.items.map((x) => (x === inner[1] ? ctid(x as Tok) : x));
      return ctid(n);
    });
  }

  private refuseRowid(nodes: readonly Node[]): void {
    for (const n of nodes) {
      if (n.k === 'group') this.refuseRowid(n.items);
      else if (isWord(n, 'ROWID', '_ROWID_', 'OID')) this.fail('rowid (other than DELETE/UPDATE … WHERE rowid IN (SELECT rowid FROM the same table …))');
    }
  }

  /**
   * ON CONFLICT … DO UPDATE SET c = expr [WHERE …]: the target table's columns in expr qualified by
   * the table (SQLite reads an unqualified one as the existing row; Postgres finds it ambiguous).
   */
  private qualifyUpsert(nodes: Node[]): Node[] {
    const s = solid(nodes);
    const at = s.findIndex((n, i) => isWord(n, 'ON') && isWord(s[i + 1], 'CONFLICT'));
    if (at < 0) return nodes;
    if (s.slice(at + 2).some((n, i, r) => isWord(n, 'ON') && isWord(r[i + 1], 'CONFLICT'))) this.fail('more than one ON CONFLICT clause');
    let i = at + 2;
    const target = s[i]?.k === 'group';
    if (target) i++;
    if (!isWord(s[i], 'DO')) this.fail('ON CONFLICT without DO');
    if (isWord(s[i + 1], 'NOTHING')) return s;
    if (!isWord(s[i + 1], 'UPDATE') || !isWord(s[i + 2], 'SET')) this.fail('ON CONFLICT DO other than NOTHING or UPDATE SET');
    if (!target) this.fail('ON CONFLICT DO UPDATE without a conflict target');
    const table = (s[2] as Tok).v.toLowerCase();
    const info = this.info.tables.get(table);
    if (!info) this.fail(`an upsert into ${table}, a table the schema does not declare`);
    const body = i + 3;
    const end = s.findIndex((n, k) => k >= body && isWord(n, 'RETURNING'));
    const stop = end < 0 ? s.length : end;
    const out = s.slice(0, body);
    let inWhere = false;
    for (const part of split(s.slice(body, stop), isComma)) {
      const idx = out.length;
      if (idx > body) out.push({ k: 'op', v: ',', ws: '', from: -1, to: -1 });
      let k = 0;
      if (!inWhere) {
        if (!isWord(part[0]) || !isOp(part[1], '=')) this.fail('an ON CONFLICT DO UPDATE assignment that is not column = expression');
        out.push(part[0], part[1]);
        k = 2;
      }
      for (; k < part.length; k++) {
        const n = part[k]!;
        if (isWord(n, 'WHERE')) inWhere = true;
        out.push(this.qualify(n, part[k - 1], part[k + 1], table, info));
      }
    }
    return [...out, ...s.slice(stop)];
  }

  private qualify(n: Node, prev: Node | undefined, next: Node | undefined, table: string, info: TableInfo): Node {
    if (n.k === 'group') {
      if (isWord(solid(n.items)[0], 'SELECT')) this.fail('a subquery in ON CONFLICT DO UPDATE');
      return { ...n, items: n.items.map((x, j) => this.qualify(x, n.items[j - 1], n.items[j + 1], table, info)) };
    }
    if (n.k !== 'word' || isOp(prev, '.') || isOp(next, '.') || next?.k === 'group' || !info.columns.includes(n.v.toLowerCase())) return n;
    return { ...n, v: `${table}.${n.v}` };
  }

  /** One parenthesis level (the statement, or inside a group): every construct found at it, then each group within. */
  private level(input: Node[], top = false): Node[] {
    let items = this.aliasSelectLists(input);
    items = this.nullsOrder(items, this.aliases);
    items = this.collations(items);
    const out: Node[] = [];
    let fromList = false;
    for (let i = 0; i < items.length; i++) {
      const n = items[i]!;
      const next = items[i + 1];
      if (n.k === 'group') {
        out.push({ ...n, items: this.level(n.items) });
        continue;
      }
      if (n.k !== 'word') {
        out.push(n);
        if (isComma(n) && fromList && isWord(next)) i = this.tableRef(items, i + 1, out) - 1;
        continue;
      }
      const U = n.v.toUpperCase();
      if (REFUSED[U]) this.fail(REFUSED[U]);
      if ((U === 'IN' || (U === 'NOT' && isWord(next, 'IN'))) && this.jsonEachIn(U === 'NOT' ? items[i + 2] : next)) {
        const g = (U === 'NOT' ? items[i + 2] : next) as Group;
        out.push(...this.anyArray(g, U === 'NOT', n.ws));
        i += U === 'NOT' ? 2 : 1;
        continue;
      }
      if (U === 'JSON_EACH') {
        out.push(...this.jsonEachTable(items, i, out));
        i += 1;
        continue;
      }
      if (U === 'CAST' && next?.k === 'group') {
        out.push(word(n.v, n.ws), this.cast(next));
        i++;
        continue;
      }
      if (U === 'IS') {
        if (isWord(next, 'NULL') || (isWord(next, 'NOT') && isWord(items[i + 2], 'NULL'))) out.push(n);
        else if (isWord(next, 'NOT')) {
          out.push(raw('IS DISTINCT FROM', n.ws));
          i++;
        } else out.push(raw('IS NOT DISTINCT FROM', n.ws));
        continue;
      }
      if (U === 'LIMIT') {
        const clause = split(items.slice(i + 1), (x) => isWord(x, 'OFFSET'))[0]!;
        if (clause.some(isComma)) this.fail('LIMIT offset, count');
      }
      if (next?.k === 'group' && !KEYWORDS.has(U) && !isWord(items[i - 1], 'INTO') && !isWord(items[i - 1], 'AS')) {
        out.push(...this.call(n, next));
        i++;
        continue;
      }
      if (U === 'FROM' || U === 'JOIN' || U === 'INTO' || (U === 'UPDATE' && top && i === 0)) {
        out.push(n);
        fromList = U === 'FROM';
        if (next?.k === 'group' && isWord(solid(next.items)[0], 'SELECT')) {
          out.push({ ...next, items: this.level(next.items) });
          i++;
          if (!this.aliasFollows(items[i + 1])) out.push(raw(`AS sg_subquery_${++this.subqueries}`));
          continue;
        }
        if (isWord(next) && next.v.toUpperCase() !== 'JSON_EACH' && !KEYWORDS.has(next.v.toUpperCase())) i = this.tableRef(items, i + 1, out) - 1;
        continue;
      }
      if (fromList && isWord(n, 'WHERE', 'GROUP', 'ORDER', 'LIMIT', 'HAVING', 'UNION', 'EXCEPT', 'INTERSECT', 'WINDOW', 'RETURNING', 'ON', 'SET')) fromList = false;
      out.push(n);
    }
    return out;
  }

  /** Whether the node after a table or subquery is its alias. */
  private aliasFollows(n: Node | undefined): boolean {
    return isWord(n, 'AS') || (isWord(n) && !KEYWORDS.has(n.v.toUpperCase())) || n?.k === 'qid';
  }

  /** The table name at items[at] (and its alias), marked as a table reference; returns the index after the name. */
  private tableRef(items: Node[], at: number, out: Node[]): number {
    const n = items[at] as Tok;
    if (isOp(items[at + 1], '.')) this.fail(`the schema-qualified table ${n.v}.…`);
    const name = n.v.toLowerCase();
    out.push({ ...n, table: { name, aliased: this.aliasFollows(items[at + 1]), known: this.info.tables.has(name) } });
    return at + 1;
  }

  /** (SELECT value FROM json_each(?)) or (SELECT CAST(value AS type) FROM json_each(?)). */
  private jsonEachIn(g: Node | undefined): boolean {
    if (g?.k !== 'group') return false;
    const s = solid(g.items);
    if (!isWord(s[0], 'SELECT')) return false;
    const valueOk = (isWord(s[1], 'VALUE') && s.length === 5) || (isWord(s[1], 'CAST') && s[2]?.k === 'group' && s.length === 6);
    const f = s.length - 3;
    const arg = s[f + 2];
    return valueOk && isWord(s[f], 'FROM') && isWord(s[f + 1], 'JSON_EACH') && arg?.k === 'group' && solid(arg.items).length === 1 && solid(arg.items)[0]!.k === 'param';
  }

  private anyArray(g: Group, negated: boolean, ws: string): Node[] {
    const s = solid(g.items);
    const arg = solid((s[s.length - 1] as Group).items)[0] as Tok;
    this.arrayParams.add(arg.idx!);
    const bound: Tok = { ...arg, ws: '' };
    let inner: Node[] = [bound];
    if (isWord(s[1], 'CAST')) {
      const c = solid((s[2] as Group).items);
      if (!(c.length === 3 && isWord(c[0], 'VALUE') && isWord(c[1], 'AS') && isWord(c[2]))) this.fail('json_each with a CAST other than CAST(value AS type)');
      const type = ARRAY_TYPES[c[2].v.toUpperCase()] ?? this.fail(`CAST(value AS ${c[2].v}) over json_each`);
      inner = [raw('CAST', ''), group([bound, raw(`AS ${type}`)])];
    }
    return [raw(negated ? '<> ALL' : '= ANY', ws), group(inner)];
  }

  /** FROM json_each(?) [AS] d, over a JSON object: json_each_text of the text cast to json. */
  private jsonEachTable(items: Node[], i: number, out: Node[]): Node[] {
    const n = items[i] as Tok;
    const g = items[i + 1];
    const prev = out[out.length - 1];
    if (!(isWord(prev, 'FROM', 'JOIN') || isComma(prev ?? raw(''))) || g?.k !== 'group') this.fail('json_each other than x IN (SELECT value FROM json_each(?)) or FROM json_each(?) AS alias');
    const s = solid(g.items);
    if (s.length !== 1 || s[0]!.k !== 'param') this.fail('json_each of anything but one parameter');
    const res: Node[] = [raw('json_each_text', n.ws), group([raw('CAST(', ''), { ...(s[0] as Tok), ws: '' }, raw('AS json)')])];
    if (!this.aliasFollows(items[i + 2])) res.push(raw('AS json_each'));
    return res;
  }

  private cast(g: Group): Group {
    const s = solid(g.items);
    const at = s.map((n, k) => (isWord(n, 'AS') ? k : -1)).filter((k) => k >= 0).pop();
    if (at === undefined || at === 0) this.fail('CAST without AS');
    const expr = s.slice(0, at);
    const typeWords = s.slice(at + 1);
    if (typeWords.length !== 1 || !isWord(typeWords[0])) this.fail(`CAST to ${typeWords.map((t) => ('v' in t ? t.v : '(…)')).join(' ')}`);
    const type = typeWords[0].v.toUpperCase();
    const inner = this.level(expr);
    const make = (items: Node[]): Group => ({ ...g, items });
    const col = columnOf(expr);
    if (type === 'INTEGER' || type === 'INT' || type === 'BIGINT') {
      if ((expr.length === 1 && expr[0]!.k === 'param') || (col !== null && this.info.typeOf.get(col) === 'INTEGER')) return make([...inner, raw('AS bigint')]);
      // SQLite truncates a real toward zero (CAST(1.9 AS INTEGER) = 1), Postgres rounds: through numeric, trunc is exact for both.
      return make([raw('trunc(CAST(', ''), ...inner, raw('AS numeric))'), raw('AS bigint')]);
    }
    if (type === 'TEXT') {
      if (col !== null && ['INTEGER', 'TEXT'].includes(this.info.typeOf.get(col) ?? '')) return make([...inner, raw('AS text')]);
      this.fail('CAST(… AS TEXT) of anything but an INTEGER or TEXT column (a real prints differently)');
    }
    if (type === 'REAL' || type === 'DOUBLE' || type === 'FLOAT') return make([...inner, raw('AS double precision')]);
    return this.fail(`CAST to ${type}`);
  }

  /** A function call: the same in both, max/min of several arguments, or refused. */
  private call(n: Tok, g: Group): Node[] {
    const name = n.v.toLowerCase();
    const args = split(g.items, isComma);
    if (SAME_FUNCTIONS.has(name)) return [word(name, n.ws), { ...g, items: this.level(g.items) }];
    if (name === 'ifnull' && args.length === 2) return [word('coalesce', n.ws), { ...g, items: this.level(g.items) }];
    if ((name === 'max' || name === 'min') && args.length === 1) return [word(name, n.ws), { ...g, items: this.level(g.items) }];
    if ((name === 'max' || name === 'min') && args.length > 1) {
      const fn = name === 'max' ? 'GREATEST' : 'LEAST';
      const parts = args.map((a) => this.level(a));
      const sep = (k: number, s: string) => (k > 0 ? [raw(s, '')] : []);
      const list: Node[] = parts.flatMap((p, k) => [...sep(k, ','), ...p]);
      // SQLite's max(a, b) is NULL when an argument is; GREATEST skips NULLs. Literal numbers are never NULL.
      const nullable = parts.filter((p) => !(solid(p).length === 1 && solid(p)[0]!.k === 'num'));
      for (const p of nullable) {
        const s = solid(p);
        if (s.length === 1 && s[0]!.k === 'param') this.fail(`${name}() of a bare parameter (Postgres cannot infer its type)`);
      }
      const call = [raw(`${fn}(`, ''), ...list, raw(')', '')];
      if (nullable.length === 0) return [raw('', n.ws), ...call];
      const tests: Node[] = nullable.flatMap((p, k) => [...sep(k, ' OR'), raw('(', ' '), ...p, raw(') IS NULL', '')]);
      return [raw('(CASE WHEN', n.ws), ...tests, raw('THEN NULL ELSE'), raw('', ' '), ...call, raw('END)')];
    }
    return this.fail(`the function ${n.v}()`);
  }

  /** `a COLLATE NOCASE op b` / `a op b COLLATE NOCASE` → lower() on both sides; COLLATE BINARY → "C". */
  private collations(items: Node[]): Node[] {
    const at = items.findIndex((n) => isWord(n, 'COLLATE'));
    if (at < 0) return items;
    const name = items[at + 1];
    if (!name || (name.k !== 'word' && name.k !== 'qid')) this.fail('COLLATE without a name');
    const coll = name.v.replace(/"/g, '').toUpperCase();
    if (coll === 'BINARY') return this.collations([...items.slice(0, at), raw('COLLATE "C"', items[at]!.ws), ...items.slice(at + 2)]);
    if (coll !== 'NOCASE') this.fail(`COLLATE ${name.v}`);
    const OPS = ['=', '==', '<>', '!=', '<', '<=', '>', '>='];
    // The operand ending just before index `end` (exclusive): a column, t.c, a parameter or a string.
    const before = (end: number): number => (isWord(items[end - 1]) && isOp(items[end - 2], '.') && isWord(items[end - 3]) ? end - 3 : end - 1);
    const after = (start: number): number => (isWord(items[start]) && isOp(items[start + 1], '.') && isWord(items[start + 2]) ? start + 3 : start + 1);
    const operand = (from: number, to: number): boolean => {
      const s = items.slice(from, to);
      return s.length === 3 || (s.length === 1 && ['word', 'param', 'str'].includes(s[0]!.k));
    };
    const lower = (from: number, to: number): Node[] => {
      const s = items.slice(from, to);
      const col = columnOf(s);
      const ws = s[0]!.ws;
      const bare = s.map((x, k) => (k === 0 ? { ...x, ws: '' } : x));
      if (col !== null && this.info.typeOf.get(col) === 'TEXT') return [raw('lower(', ws), ...bare, raw(')', '')];
      if (col !== null) this.fail(`COLLATE NOCASE on ${col}, which is not a TEXT column`);
      return [raw('lower(', ws), ...bare, raw('COLLATE "C")')];
    };
    let a0: number, a1: number, op: number, b0: number, b1: number;
    if (OPS.some((o) => isOp(items[at + 2], o))) {
      a1 = at;
      a0 = before(at);
      op = at + 2;
      b0 = at + 3;
      b1 = after(b0);
    } else {
      b1 = at;
      b0 = before(at);
      op = b0 - 1;
      a1 = op;
      a0 = before(op);
    }
    if (!OPS.some((o) => isOp(items[op], o)) || !operand(a0, a1) || !operand(b0, b1)) this.fail('COLLATE NOCASE other than in a comparison of two simple operands');
    const end = b1 === at ? at + 2 : b1;
    const rewritten = [...items.slice(0, a0), ...lower(a0, a1), items[op]!, ...lower(b0, b1), ...items.slice(end)];
    return this.collations(rewritten);
  }

  /**
   * The tables a level reads (after FROM, JOIN and commas in a FROM list), or null when one of its
   * sources is not one of the store's tables (a subquery, json_each).
   */
  private levelTables(items: readonly Node[]): TableInfo[] | null {
    const found: TableInfo[] = [];
    let from = false;
    for (let i = 0; i < items.length; i++) {
      const n = items[i]!;
      const source = isWord(n, 'FROM', 'JOIN') || (from && isComma(n));
      if (isWord(n, 'FROM')) from = true;
      else if (isWord(n, 'WHERE', 'GROUP', 'ORDER', 'LIMIT', 'HAVING', 'WINDOW', 'ON', 'SET', 'UNION', 'EXCEPT', 'INTERSECT')) from = false;
      if (!source) continue;
      const t = items[i + 1];
      const info = isWord(t) ? this.info.tables.get(t.v.toLowerCase()) : undefined;
      if (!info || isOp(items[i + 2], '.')) return null;
      found.push(info);
    }
    return found.length ? found : null;
  }

  /**
   * Whether a column can never be NULL: NOT NULL in the tables the level reads that have it, or,
   * when those are not known, in every table that has a column of that name.
   */
  private notNull(col: string, tables: readonly TableInfo[] | null): boolean {
    if (tables === null) return this.info.notNull.has(col);
    const having = tables.filter((t) => t.columns.includes(col));
    return having.length > 0 && having.every((t) => t.notNull.includes(col));
  }

  /** Aliases defined by the SELECT lists of the level last passed to aliasSelectLists. */
  private aliases = new Set<string>();

  /**
   * Each unaliased expression of a SELECT list at this level gets its SQLite name as an alias (the
   * expression's text as written); columns, t.*, * and aliased items are left as they are.
   */
  private aliasSelectLists(items: Node[]): Node[] {
    this.aliases = new Set();
    const out = [...items];
    for (let i = out.length - 1; i >= 0; i--) {
      if (!isWord(out[i], 'SELECT')) continue;
      let start = i + 1;
      if (isWord(out[start], 'DISTINCT', 'ALL')) start++;
      let end = start;
      const STOP = ['FROM', 'WHERE', 'GROUP', 'ORDER', 'LIMIT', 'UNION', 'EXCEPT', 'INTERSECT', 'WINDOW', 'HAVING'];
      while (end < out.length && !isWord(out[end], ...STOP)) end++;
      const inserts: Array<[number, Node]> = [];
      let k = start;
      for (const item of split(out.slice(start, end), isComma)) {
        const itemEnd = k + item.length;
        k = itemEnd + 1;
        const s = solid(item);
        if (s.length === 0) continue;
        const last = s[s.length - 1]!;
        const prev = s[s.length - 2];
        if (s.length === 1 && isOp(last, '*')) continue;
        if (s.length === 3 && isOp(last, '*') && isOp(prev, '.')) continue;
        if (columnOf(s) !== null) continue;
        if (prev && isWord(prev, 'AS')) {
          this.aliases.add(('v' in last ? last.v : '').toLowerCase().replace(/"/g, ''));
          continue;
        }
        if (prev && (last.k === 'qid' || (isWord(last) && !KEYWORDS.has(last.v.toUpperCase()))) && prev.k !== 'op' && !isWord(prev, 'AS')) {
          this.aliases.add(('v' in last ? last.v : '').toLowerCase().replace(/"/g, ''));
          continue;
        }
        const from = s[0]!.from;
        const to = last.to;
        if (from < 0 || to < 0) continue;
        const name = this.sql.slice(from, to);
        // Postgres cuts names at 63 bytes (NAMEDATALEN): such a column cannot carry SQLite's name.
        if (Buffer.byteLength(name) > 63) {
          this.exactNames = false;
          continue;
        }
        this.aliases.add(name.toLowerCase());
        inserts.push([itemEnd, raw(`AS "${name.replace(/"/g, '""')}"`)]);
      }
      for (const [at, node] of inserts.reverse()) out.splice(at, 0, node);
    }
    return out;
  }

  /** ORDER BY terms that may be NULL get SQLite's NULL placement (first ascending, last descending). */
  private nullsOrder(items: Node[], aliases: ReadonlySet<string>): Node[] {
    const out = [...items];
    const tables = this.levelTables(items);
    for (let i = out.length - 2; i >= 0; i--) {
      if (!isWord(out[i], 'ORDER') || !isWord(out[i + 1], 'BY')) continue;
      let end = i + 2;
      const STOP = ['LIMIT', 'OFFSET', 'ROWS', 'RANGE', 'GROUPS', 'UNION', 'EXCEPT', 'INTERSECT', 'RETURNING', 'WINDOW'];
      while (end < out.length && !isWord(out[end], ...STOP)) end++;
      const inserts: Array<[number, Node]> = [];
      let k = i + 2;
      for (const term of split(out.slice(i + 2, end), isComma)) {
        const termEnd = k + term.length;
        k = termEnd + 1;
        const s = solid(term);
        if (s.length === 0) continue;
        if (s.some((n) => isWord(n, 'NULLS'))) continue;
        let body = s;
        let desc = false;
        if (isWord(body[body.length - 1], 'ASC', 'DESC')) {
          desc = isWord(body[body.length - 1], 'DESC');
          body = body.slice(0, -1);
        }
        if (body.some((n) => isWord(n, 'COLLATE'))) this.fail('ORDER BY … COLLATE');
        const col = columnOf(body);
        if (col !== null && !aliases.has(col) && this.notNull(col, tables)) continue;
        // After the term's last node, before any trailing whitespace-only token.
        let at = termEnd;
        while (at > termEnd - term.length && out[at - 1]?.k === 'raw' && (out[at - 1] as Tok).v === '') at--;
        inserts.push([at, raw(desc ? 'NULLS LAST' : 'NULLS FIRST')]);
      }
      for (const [at, node] of inserts.reverse()) out.splice(at, 0, node);
    }
    return out;
  }
}

const ARRAY_TYPES: Record<string, string> = { INTEGER: 'bigint[]', INT: 'bigint[]', BIGINT: 'bigint[]', TEXT: 'text[]', REAL: 'double precision[]' };

/** Distinct statements translated (and refusals) kept at most; past it the cache starts again. */
const CACHE_LIMIT = 10_000;
const cache = new Map<string, Translation | Error>();

/**
 * The Postgres form of one SQLite statement, translated once per distinct text (refusals are
 * remembered too). Throws SG_ERR_INVALID_PARAM, naming the statement, for what it does not handle.
 */
export function translate(sql: string): Translation {
  let t = cache.get(sql);
  if (t === undefined) {
    try {
      t = new Translator(sql).run();
    } catch (e) {
      t = e as Error;
    }
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(sql, t);
  }
  if (t instanceof Error) throw t;
  return t;
}

/**
 * The values of one run of `t` as node-postgres binds them, checked as better-sqlite3 checks them:
 * the right count, and only numbers, strings, bigints, Buffers and null (undefined binds NULL).
 * A JSON parameter of `x IN (SELECT value FROM json_each(?))` becomes the array json_each would
 * walk: an array's elements, an object's values, a scalar alone; true and false as 1 and 0 (SQLite
 * reads JSON booleans as integers), nested arrays and objects as their JSON text.
 */
export function bindParams(t: Translation, params: readonly unknown[]): unknown[] {
  if (params.length !== t.params) {
    throw new RangeError(`${params.length < t.params ? 'Too few' : 'Too many'} parameter values were provided (${params.length} for ${t.params}), in statement: ${t.sqlite}`);
  }
  const out = new Array<unknown>(params.length);
  for (let k = 0; k < params.length; k++) {
    const p = params[k];
    if (p === undefined || p === null) out[k] = null;
    else if (typeof p === 'bigint') out[k] = p.toString();
    else if (typeof p === 'number') out[k] = Number.isNaN(p) ? null : p;
    else if (typeof p === 'string' || Buffer.isBuffer(p)) out[k] = p;
    else throw new TypeError(`SQLite3 can only bind numbers, strings, bigints, buffers, and null (parameter ${k + 1} of: ${t.sqlite})`);
  }
  for (const k of t.arrayParams) out[k] = jsonEachValues(out[k], t);
  return out;
}

function jsonEachValues(p: unknown, t: Translation): unknown[] {
  if (typeof p !== 'string') throw simError('SG_ERR_INVALID_PARAM', `json_each needs JSON text, got ${p === null ? 'NULL' : typeof p}, in statement: ${t.sqlite}`);
  let v: unknown;
  try {
    v = JSON.parse(p);
  } catch {
    throw simError('SG_ERR_INVALID_PARAM', `malformed JSON for json_each, in statement: ${t.sqlite}`);
  }
  const list = Array.isArray(v) ? v : v !== null && typeof v === 'object' ? Object.values(v) : [v];
  return list.map((e) => (e === true ? 1 : e === false ? 0 : e !== null && typeof e === 'object' ? JSON.stringify(e) : e));
}
