// One SQLite database standing in for a Postgres server. A primary records every write in a
// replication log (statement and parameters, tagged with its logical shard) that replicas and
// shard moves consume; tables and statements are the same on every node.

import Database from 'better-sqlite3';
import { ensurePrivateFile } from './data-dir.ts';
import { migrateSchema, SCHEMA_SQL } from './sql-schema.ts';

export type Row = Record<string, unknown>;

/** The query surface handed to store code inside one read or write. */
export interface Sql {
  get<T = Row>(sql: string, ...params: unknown[]): T | undefined;
  all<T = Row>(sql: string, ...params: unknown[]): T[];
  run(sql: string, ...params: unknown[]): { changes: number };
  /** The first column of every row (no row objects). */
  column<T = unknown>(sql: string, ...params: unknown[]): T[];
}

export type LogEntry =
  | { seq: number; shardId: number; atMs: number; sql: string; params: unknown[] }
  | { seq: number; shardId: number; atMs: number; table: string; columns: string[]; rows: unknown[][]; conflict: Conflict };

/** What a bulk insert does with a row whose key exists: overwrite it, or keep the old one. */
export type Conflict = 'replace' | 'ignore';

/** Something that follows a primary's log: a replica or a shard move. */
export interface LogConsumer {
  /** Called for every appended entry, in order. */
  onAppend(entry: LogEntry): void;
  /** Log position this consumer has consumed up to (exclusive). */
  position(): number;
}

export class DbNode {
  readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly plain: Sql;

  constructor(
    readonly name: string,
    source: string | Buffer | null,
  ) {
    if (Buffer.isBuffer(source) && source.length >= 20 && source[18] === 2) {
      // An image of a WAL-mode file says so in its header (bytes 18-19 = 2); an in-memory copy
      // cannot use a WAL, so mark the copy as a rollback-journal database.
      source = Buffer.from(source);
      source[18] = 1;
      source[19] = 1;
    }
    // SQLite would create the file 0644, and its -wal and -shm files take the file's mode.
    if (typeof source === 'string') ensurePrivateFile(source);
    this.db = source === null ? new Database(':memory:') : new Database(source);
    if (typeof source === 'string') {
      // Every commit is in the WAL (write()) before the statement returns, so it survives a kill
      // of the process; NORMAL syncs to disk only at checkpoints, so a power loss can roll back
      // the last commits (the database stays consistent). README, "Security and durability".
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
    }
    this.db.exec(SCHEMA_SQL);
    migrateSchema(this.db);
    this.plain = {
      get: (sql, ...params) => this.stmt(sql).get(...params) as never,
      all: (sql, ...params) => this.stmt(sql).all(...params) as never,
      run: (sql, ...params) => ({ changes: this.stmt(sql).run(...params).changes }),
      column: (sql, ...params) => this.plucked(sql).all(...params) as never,
    };
  }

  /** Prepared once per distinct SQL text; integers come back as bigint so 64-bit ids survive. */
  stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      if (s.reader) s.safeIntegers(true);
      this.statements.set(sql, s);
    }
    return s;
  }

  private readonly pluckedStatements = new Map<string, Database.Statement>();
  plucked(sql: string): Database.Statement {
    let s = this.pluckedStatements.get(sql);
    if (!s) {
      s = this.db.prepare(sql).pluck(true).safeIntegers(true);
      this.pluckedStatements.set(sql, s);
    }
    return s;
  }

  /** Unlogged access (reads, and replicas applying entries). */
  sql(): Sql {
    return this.plain;
  }

  /** Inserts rows in one transaction; returns which rows were written. */
  insertRows(table: string, columns: string[], rows: unknown[][], conflict: Conflict = 'replace'): boolean[] {
    if (rows.length === 0) return [];
    const st = this.stmt(insertSql(table, columns, conflict, 1));
    return this.db.transaction(() => rows.map((r) => st.run(...r).changes > 0))();
  }

  /**
   * Inserts rows in one transaction, many rows per statement (the bulk path: a fraction of the
   * per-row cost of one statement per row); returns how many rows were written, not which.
   */
  insertRowsCounted(table: string, columns: string[], rows: unknown[][], conflict: Conflict = 'replace'): number {
    if (rows.length === 0) return 0;
    const per = Math.max(1, Math.min(ROWS_PER_STATEMENT, Math.floor(MAX_PARAMS / columns.length)));
    const cols = columns.length;
    return this.db.transaction(() => {
      let changes = 0;
      let i = 0;
      if (rows.length >= per) {
        const st = this.stmt(insertSql(table, columns, conflict, per));
        const flat = new Array<unknown>(per * cols);
        for (; i + per <= rows.length; i += per) {
          for (let j = 0; j < per; j++) {
            const r = rows[i + j]!;
            for (let c = 0; c < cols; c++) flat[j * cols + c] = r[c];
          }
          changes += st.run(flat).changes;
        }
      }
      if (i < rows.length) {
        const st = this.stmt(insertSql(table, columns, conflict, 1));
        for (; i < rows.length; i++) changes += st.run(...rows[i]!).changes;
      }
      return changes;
    })();
  }

  apply(entry: LogEntry): void {
    if ('sql' in entry) this.stmt(entry.sql).run(...entry.params);
    else this.insertRows(entry.table, entry.columns, entry.rows, entry.conflict);
  }

  /** A byte image of the database (to clone a replica from its primary). */
  serialize(): Buffer {
    return this.db.serialize();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** Rows per statement on the bulk path (measured: 50 rows ≈ 0.6× the per-row cost of one each). */
const ROWS_PER_STATEMENT = 50;
/** Bound parameters per statement, well under SQLite's limit (32,766). */
const MAX_PARAMS = 30_000;

function insertSql(table: string, columns: string[], conflict: Conflict, rows: number): string {
  const tuple = `(${columns.map(() => '?').join(',')})`;
  return `INSERT OR ${conflict === 'replace' ? 'REPLACE' : 'IGNORE'} INTO ${table} (${columns.join(',')}) VALUES ${rows === 1 ? tuple : new Array<string>(rows).fill(tuple).join(',')}`;
}

export class PrimaryNode extends DbNode {
  private readonly consumers = new Set<LogConsumer>();
  private entries: LogEntry[] = [];
  /** Sequence number of entries[0]. */
  private base = 0;
  private nextSeq = 0;

  constructor(
    name: string,
    /** A file path, a database image (a promoted replica's), or null for an empty in-memory node. */
    source: string | Buffer | null,
    /** Unapplied entries allowed before writes fail (count). */
    readonly logLimit: number,
  ) {
    super(name, source);
  }

  get logEnd(): number {
    return this.nextSeq;
  }

  addConsumer(c: LogConsumer): void {
    this.consumers.add(c);
  }
  removeConsumer(c: LogConsumer): void {
    this.consumers.delete(c);
    this.trim();
  }

  /** Entries from `from` (inclusive) up to the end of the log. */
  entriesFrom(from: number): LogEntry[] {
    return this.entries.slice(Math.max(0, from - this.base));
  }
  entryAt(seq: number): LogEntry | undefined {
    return this.entries[seq - this.base];
  }
  /** True when consumers lag so far behind that new writes must be refused (checked before writing). */
  overBudget(): boolean {
    return this.consumers.size > 0 && this.backlog() >= this.logLimit;
  }
  backlog(): number {
    let min = this.nextSeq;
    for (const c of this.consumers) min = Math.min(min, c.position());
    return this.nextSeq - min;
  }

  /**
   * Runs `fn` in one transaction, logging each statement it runs against `shardId`. The log is
   * appended only on commit, so a write that throws leaves no trace for replicas either.
   */
  write<T>(shardId: number, atMs: number, fn: (sql: Sql) => T): T {
    const logging = this.consumers.size > 0;
    const pending: Array<{ sql: string; params: unknown[] } | { table: string; columns: string[]; rows: unknown[][] }> = [];
    const sql: Sql = {
      get: (text, ...params) => this.stmt(text).get(...params) as never,
      all: (text, ...params) => this.stmt(text).all(...params) as never,
      column: (text, ...params) => this.plucked(text).all(...params) as never,
      run: (text, ...params) => {
        const res = this.stmt(text).run(...params);
        if (logging && res.changes > 0) pending.push({ sql: text, params });
        return { changes: res.changes };
      },
    };
    const result = this.db.transaction(() => fn(sql))();
    for (const p of pending) this.append({ ...p, seq: 0, shardId, atMs } as LogEntry);
    return result;
  }

  /** Bulk insert of rows that all belong to `shardId`, logged as one entry. */
  /**
   * Inserts and logs rows, returning how many were written, on the bulk path when nothing needs to
   * know which rows (no log consumer, or every row is logged anyway); else as writeRows.
   */
  writeRowsCounted(shardId: number, atMs: number, table: string, columns: string[], rows: unknown[][], conflict: Conflict = 'replace'): number {
    if (this.consumers.size > 0 && conflict === 'ignore') return this.writeRows(shardId, atMs, table, columns, rows, conflict).filter(Boolean).length;
    const n = this.insertRowsCounted(table, columns, rows, conflict);
    if (this.consumers.size > 0 && rows.length > 0) this.append({ seq: 0, shardId, atMs, table, columns, rows, conflict });
    return n;
  }

  writeRows(shardId: number, atMs: number, table: string, columns: string[], rows: unknown[][], conflict: Conflict = 'replace'): boolean[] {
    const written = this.insertRows(table, columns, rows, conflict);
    if (this.consumers.size > 0) {
      const logged = conflict === 'ignore' ? rows.filter((_, i) => written[i]) : rows;
      if (logged.length > 0) this.append({ seq: 0, shardId, atMs, table, columns, rows: logged, conflict });
    }
    return written;
  }

  /** Applies another primary's entry here, logging it for this node's own consumers. */
  applyLogged(entry: LogEntry, atMs: number): void {
    this.apply(entry);
    if (this.consumers.size > 0) this.append({ ...entry, seq: 0, atMs });
  }

  private append(entry: LogEntry): void {
    entry.seq = this.nextSeq++;
    this.entries.push(entry);
    for (const c of this.consumers) c.onAppend(entry);
    if (this.entries.length > 4096) this.trim();
  }

  private trim(): void {
    let min = this.nextSeq;
    for (const c of this.consumers) min = Math.min(min, c.position());
    const drop = min - this.base;
    if (drop > 0 && (drop >= 2048 || this.consumers.size === 0)) {
      this.entries = this.entries.slice(drop);
      this.base = min;
    }
  }
}
