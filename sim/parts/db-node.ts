// One SQLite database standing in for a Postgres server. A primary records every write in a
// replication log (statement and parameters, tagged with its logical shard) that replicas and
// shard moves consume; tables and statements are the same on every node.
//
// Store code gets the asynchronous `Sql` (as a Postgres client's would be); everything inside
// (the log, replicas applying it, bulk loads, row copies) stays synchronous on better-sqlite3. A
// callback awaits between its statements, so it holds the node's lock (node-lock.ts) from its
// first statement to its end, and a write is one explicit BEGIN … COMMIT around it.

import Database from 'better-sqlite3';
import { ensurePrivateFile } from './data-dir.ts';
import { lockOf, type NodeLock } from './node-lock.ts';
import { migrateSchema, SCHEMA_SQL } from '../domain/sql-schema.ts';

export type Row = Record<string, unknown>;

/**
 * The query surface handed to store code inside one read or write (DatabaseCluster.read, write,
 * scatter). Every statement is a promise; the callback awaits each before its end. `?` placeholders.
 */
export interface Sql {
  get<T = Row>(sql: string, ...params: unknown[]): Promise<T | undefined>;
  all<T = Row>(sql: string, ...params: unknown[]): Promise<T[]>;
  run(sql: string, ...params: unknown[]): Promise<{ changes: number }>;
  /** The first column of every row (no row objects). */
  column<T = unknown>(sql: string, ...params: unknown[]): Promise<T[]>;
}

/** The same surface, synchronous, on one SQLite node (for looking at a node directly: tests, tools). */
export interface SyncSql {
  get<T = Row>(sql: string, ...params: unknown[]): T | undefined;
  all<T = Row>(sql: string, ...params: unknown[]): T[];
  run(sql: string, ...params: unknown[]): { changes: number };
  column<T = unknown>(sql: string, ...params: unknown[]): T[];
}

export type LogEntry =
  | { seq: number; shardId: number; atMs: number; sql: string; params: unknown[] }
  | { seq: number; shardId: number; atMs: number; table: string; columns: string[]; rows: unknown[][]; conflict: Conflict }
  | {
      seq: number;
      shardId: number;
      atMs: number;
      table: string;
      columns: string[];
      conflict: Conflict;
      /**
       * A bulk load's chunk as the parameters of the multi-row statements that wrote it (each
       * holds whole rows, columns in order), so a consumer runs the same statements without
       * building rows again.
       */
      packed: unknown[][];
      /** Rows in `packed` (count). */
      rowCount: number;
      /** Every logical shard with rows here, when there are several; shardId is the first. */
      shards?: number[];
    };

/** The logical shards an entry writes to. */
export function entryShards(e: LogEntry): readonly number[] {
  return 'packed' in e && e.shards ? e.shards : [e.shardId];
}

/** Rows an entry writes (count; a statement entry counts as one). */
export function entryRows(e: LogEntry): number {
  return 'packed' in e ? e.rowCount : 'rows' in e ? e.rows.length : 1;
}

/** Writes the columns of row `i` into `params` from index `at` on (a bulk load's rows, made on demand). */
export type RowFill = (i: number, params: unknown[], at: number) => void;

/** Rows made on demand, so a bulk load need not hold all of its rows (as arrays) at once. */
export interface RowSource {
  readonly length: number;
  /** The logical shard of row i (its first column). */
  shardOf(i: number): number;
  /** Writes row i's columns (shard_id first) into params from index `at` on. */
  fill: RowFill;
}

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
  /** Held by whoever uses the connection across an await (a store callback, a copy's slice, a catch-up). */
  readonly lock: NodeLock;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly plain: SyncSql;
  /** The asynchronous surface of reads: unlogged, never ended (one for every read of this node). */
  private readonly reads: NodeSql;
  /** better-sqlite3's transaction wrapper, made once: making one per call cost more than a small write. */
  private readonly txn: (fn: () => unknown) => unknown;

  constructor(
    readonly name: string,
    /** A file path, a database image, null for an empty in-memory database, or an open connection to adopt (a promoted replica's). */
    source: string | Buffer | null | Database.Database,
  ) {
    if (source instanceof Database) {
      this.db = source;
      this.lock = lockOf(this.db);
      this.plain = this.plainSql();
      this.reads = new NodeSql(this, false);
      this.txn = this.db.transaction((fn: () => unknown) => fn());
      return;
    }
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
    this.lock = lockOf(this.db);
    this.plain = this.plainSql();
    this.reads = new NodeSql(this, false);
    this.txn = this.db.transaction((fn: () => unknown) => fn());
  }

  /**
   * Runs `fn` in one transaction, as db.transaction(fn)() does. Internal work is synchronous and
   * never nests; a transaction already open is a store write's (PrimaryNode.begin), held open across
   * its awaits: joining it (as a savepoint) would commit or roll back with that write, so it throws.
   */
  protected inTransaction<T>(fn: () => T): T {
    if (this.db.inTransaction) throw new Error(`${this.name}: a transaction is open on this connection (its lock is not held)`);
    return this.txn(fn) as T;
  }

  private plainSql(): SyncSql {
    return {
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

  /** Bulk insert statements by columns list (the same array on every call of a load), then table, conflict and rows. */
  private readonly bulkStatements = new WeakMap<readonly string[], Map<string, Database.Statement>>();

  /** The prepared INSERT of `rows` rows of `columns` (its text is built once, not per statement run). */
  protected insertStmt(table: string, columns: string[], conflict: Conflict, rows: number): Database.Statement {
    let byKey = this.bulkStatements.get(columns);
    if (!byKey) this.bulkStatements.set(columns, (byKey = new Map()));
    const key = `${table}:${conflict}:${rows}`;
    let st = byKey.get(key);
    if (!st) byKey.set(key, (st = this.stmt(insertSql(table, columns, conflict, rows))));
    return st;
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

  /** Unlogged synchronous access, for looking at a node directly (tests, tools). */
  sql(): SyncSql {
    return this.plain;
  }

  /** The asynchronous surface of a read (DatabaseCluster.read): unlogged; the caller holds the lock. */
  readSql(): Sql {
    return this.reads;
  }

  /**
   * Inserts rows[from …] in one transaction, one statement per row, until the rows run out or the
   * clock passes `deadline` (performance.now() ms; at least one row is written); returns, for each
   * row it got to, whether it was written.
   */
  insertRows(table: string, columns: string[], rows: readonly unknown[][], conflict: Conflict = 'replace', from = 0, deadline = Infinity): boolean[] {
    if (from >= rows.length) return [];
    return this.inTransaction(() => this.insertEach(table, columns, arrayFill(rows), from, rows.length, conflict, deadline, null));
  }

  /**
   * Inserts rows in one transaction, many rows per statement (the bulk path: a fraction of the
   * per-row cost of one statement per row); returns how many rows were written, not which.
   */
  insertRowsCounted(table: string, columns: string[], rows: readonly unknown[][], conflict: Conflict = 'replace'): number {
    if (rows.length === 0) return 0;
    return this.inTransaction(() => this.insertMany(table, columns, arrayFill(rows), 0, rows.length, conflict, Infinity, null).changes);
  }

  /**
   * One statement per row for rows from..to-1 (exclusive; `fill` writes each one's columns),
   * stopping once the clock passes `deadline` (checked every 64 rows); returns whether each row it
   * got to was written, and adds each row's parameters to `keep` when given. Runs in the caller's
   * transaction.
   */
  protected insertEach(table: string, columns: string[], fill: RowFill, from: number, to: number, conflict: Conflict, deadline: number, keep: unknown[][] | null): boolean[] {
    const st = this.insertStmt(table, columns, conflict, 1);
    const written: boolean[] = [];
    let params = new Array<unknown>(columns.length);
    for (let k = from; k < to; k++) {
      if (keep) keep.push((params = new Array<unknown>(columns.length)));
      fill(k, params, 0);
      written.push(st.run(params).changes > 0);
      if ((k & 63) === 63 && performance.now() >= deadline) break;
    }
    return written;
  }

  /**
   * The bulk path: rows from..to-1 (exclusive; `fill` writes each one's columns), many rows per
   * statement, stopping once the clock passes `deadline` (checked after every statement; at least
   * one runs). Returns the first row not inserted and the rows written, and adds each statement's
   * parameters to `keep` when given (see the `packed` log entry). Runs in the caller's transaction.
   */
  protected insertMany(table: string, columns: string[], fill: RowFill, from: number, to: number, conflict: Conflict, deadline: number, keep: unknown[][] | null): { next: number; changes: number } {
    const per = rowsPerStatement(columns.length);
    const cols = columns.length;
    let changes = 0;
    let k = from;
    let shared: unknown[] | null = null;
    while (k < to) {
      const n = Math.min(per, to - k);
      let params: unknown[];
      if (keep) keep.push((params = new Array<unknown>(n * cols)));
      else params = n === per ? (shared ??= new Array<unknown>(n * cols)) : new Array<unknown>(n * cols);
      for (let j = 0; j < n; j++) fill(k + j, params, j * cols);
      changes += this.insertStmt(table, columns, conflict, n).run(params).changes;
      k += n;
      if (performance.now() >= deadline) break;
    }
    return { next: k, changes };
  }

  /** Applies one log entry in the caller's transaction. */
  protected applyEntry(entry: LogEntry): void {
    if ('sql' in entry) this.stmt(entry.sql).run(...entry.params);
    else if ('packed' in entry) {
      const cols = entry.columns.length;
      for (const params of entry.packed) this.insertStmt(entry.table, entry.columns, entry.conflict, params.length / cols).run(params);
    } else this.insertMany(entry.table, entry.columns, arrayFill(entry.rows), 0, entry.rows.length, entry.conflict, Infinity, null);
  }

  apply(entry: LogEntry): void {
    this.inTransaction(() => this.applyEntry(entry));
  }

  /** A byte image of the database (to clone a replica from its primary). */
  serialize(): Buffer {
    return this.db.serialize();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** Rows per statement on the bulk path (measured: 50 rows ≈ 0.6× the per-row cost of one each; 100–200 gain ~1% more). */
const ROWS_PER_STATEMENT = 50;
/** Bound parameters per statement, well under SQLite's limit (32,766). */
const MAX_PARAMS = 30_000;

function rowsPerStatement(columns: number): number {
  return Math.max(1, Math.min(ROWS_PER_STATEMENT, Math.floor(MAX_PARAMS / columns)));
}

/** The RowFill of rows held as arrays. */
function arrayFill(rows: readonly unknown[][]): RowFill {
  return (i, params, at) => {
    const r = rows[i]!;
    for (let c = 0; c < r.length; c++) params[at + c] = r[c];
  };
}

export function insertSql(table: string, columns: readonly string[], conflict: Conflict, rows: number): string {
  const tuple = `(${columns.map(() => '?').join(',')})`;
  return `INSERT OR ${conflict === 'replace' ? 'REPLACE' : 'IGNORE'} INTO ${table} (${columns.join(',')}) VALUES ${rows === 1 ? tuple : new Array<string>(rows).fill(tuple).join(',')}`;
}

/**
 * The Sql of a node: every statement runs when called (better-sqlite3 is synchronous) and its
 * promise is already settled. One per store write (PrimaryNode.begin) keeps the statements that
 * change rows for the log (when it has consumers) and refuses statements once its transaction has
 * ended; each node has one more for its reads. A class, not an object of closures: one is made per
 * write, and the TypeScript loader names every closure it makes (a defineProperty each).
 */
class NodeSql implements Sql {
  readonly pending: Array<{ sql: string; params: unknown[] }> = [];
  private ended = false;
  constructor(
    private readonly node: DbNode,
    private readonly logging: boolean,
  ) {}

  /** Refuses every statement from now on (its transaction has committed or rolled back). */
  end(): void {
    this.ended = true;
  }

  private check(): void {
    if (this.ended) throw new Error(`${this.node.name}: a statement ran after the end of its write's callback (a missing await?)`);
  }

  async get<T = Row>(text: string, ...params: unknown[]): Promise<T | undefined> {
    this.check();
    return this.node.stmt(text).get(...params) as T | undefined;
  }
  async all<T = Row>(text: string, ...params: unknown[]): Promise<T[]> {
    this.check();
    return this.node.stmt(text).all(...params) as T[];
  }
  async column<T = unknown>(text: string, ...params: unknown[]): Promise<T[]> {
    this.check();
    return this.node.plucked(text).all(...params) as T[];
  }
  async run(text: string, ...params: unknown[]): Promise<{ changes: number }> {
    this.check();
    const res = this.node.stmt(text).run(...params);
    if (this.logging && res.changes > 0) this.pending.push({ sql: text, params });
    return { changes: res.changes };
  }
}

export class PrimaryNode extends DbNode {
  private readonly consumers = new Set<LogConsumer>();
  private entries: LogEntry[] = [];
  /** Sequence number of entries[0]. */
  private base = 0;
  private nextSeq = 0;

  constructor(
    name: string,
    /** A file path, a database image, null for an empty in-memory node, or a promoted replica's open connection. */
    source: string | Buffer | null | Database.Database,
    /** Unapplied entries allowed before writes fail (count). */
    readonly logLimit: number,
  ) {
    super(name, source);
  }

  /**
   * Continues another primary's log numbering from `nextSeq`, holding its entries from `from` on
   * (a promoted replica: the other replicas, behind it on the same log, keep following it).
   */
  continueLog(entries: readonly LogEntry[], from: number, nextSeq: number): void {
    this.entries = entries.filter((e) => e.seq >= from && e.seq < nextSeq);
    this.base = from;
    this.nextSeq = nextSeq;
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
   * Opens a store write's transaction (BEGIN) and returns its Sql; the caller awaits its callback
   * over that Sql, then commit() (COMMIT, then the statements that changed rows are logged against
   * their logical shard) or, when it throws, rollback(): the log is appended only on commit, so a
   * write that throws leaves no trace for replicas either. The caller holds this node's lock from
   * before begin() until after commit() or rollback(): nothing else may run on the connection while
   * the transaction is open (DatabaseCluster.write).
   */
  begin(): Sql {
    const sql = new NodeSql(this, this.consumers.size > 0);
    (this.beginStmt ??= this.db.prepare('BEGIN')).run();
    return sql;
  }

  /** Commits the transaction of `sql` (begin()'s), then logs its statements against `shardId`; rolls back and throws if COMMIT fails. */
  commit(sql: Sql, shardId: number, atMs: number): void {
    const s = sql as NodeSql;
    s.end();
    try {
      (this.commitStmt ??= this.db.prepare('COMMIT')).run();
    } catch (e) {
      this.rollback(sql);
      throw e;
    }
    for (const p of s.pending) this.append({ ...p, seq: 0, shardId, atMs } as LogEntry);
  }

  /** Rolls the transaction of `sql` (begin()'s) back, logging nothing: its callback threw. */
  rollback(sql: Sql): void {
    (sql as NodeSql).end();
    // A failed COMMIT, or an error SQLite answers with a rollback of its own, may have ended it already.
    if (this.db.open && this.db.inTransaction) (this.rollbackStmt ??= this.db.prepare('ROLLBACK')).run();
  }

  private beginStmt: Database.Statement | undefined;
  private commitStmt: Database.Statement | undefined;
  private rollbackStmt: Database.Statement | undefined;

  /**
   * Runs `sql` once per parameter list in one transaction and logs the runs that changed rows,
   * synchronously (a copy's deletes at its destination, a moved shard's rows leaving its source);
   * returns the rows changed. The caller holds this node's lock.
   */
  writeEach(shardId: number, atMs: number, sql: string, paramLists: readonly unknown[][]): number {
    const st = this.stmt(sql);
    const logged: Array<{ sql: string; params: unknown[] }> = [];
    const logging = this.consumers.size > 0;
    const changes = this.inTransaction(() => {
      let n = 0;
      for (const params of paramLists) {
        const c = st.run(...params).changes;
        if (logging && c > 0) logged.push({ sql, params });
        n += c;
      }
      return n;
    });
    for (const p of logged) this.append({ ...p, seq: 0, shardId, atMs } as LogEntry);
    return changes;
  }

  /**
   * Inserts rows that all belong to `shardId` on the bulk path and logs them as one entry; returns
   * how many were written. Every row is logged, also under `ignore`: a consumer applies the entry
   * at the same point of the log, to the same rows, so it keeps and skips the same ones.
   */
  writeRowsCounted(shardId: number, atMs: number, table: string, columns: string[], rows: unknown[][], conflict: Conflict = 'replace'): number {
    if (rows.length === 0) return 0;
    const changes = this.inTransaction(() => this.insertMany(table, columns, arrayFill(rows), 0, rows.length, conflict, Infinity, null).changes);
    if (this.consumers.size > 0) this.append({ seq: 0, shardId, atMs, table, columns, rows, conflict });
    return changes;
  }

  /**
   * The sliced bulk path: rows from..to-1 (`fill` writes each one's columns; rows of any logical
   * shards held here, best in key order), in one transaction until the rows run out or the clock
   * passes `deadline` (performance.now() ms), then logged as one packed entry naming its logical
   * shards. With `perRow`, one statement per row and `written` says which rows were written (else
   * many rows per statement).
   */
  writeBulk(atMs: number, table: string, columns: string[], fill: RowFill, from: number, to: number, conflict: Conflict, deadline: number, perRow: boolean): { next: number; changes: number; written: boolean[] | null } {
    const keep: unknown[][] | null = this.consumers.size > 0 ? [] : null;
    const r = this.inTransaction(() => {
      if (!perRow) return { ...this.insertMany(table, columns, fill, from, to, conflict, deadline, keep), written: null };
      const written = this.insertEach(table, columns, fill, from, to, conflict, deadline, keep);
      return { next: from + written.length, changes: written.filter(Boolean).length, written };
    });
    if (keep && r.next > from) {
      // One entry in the order written, so a replica's B-trees grow at their ends as the primary's did.
      const cols = columns.length;
      const shards = new Set<number>();
      for (const params of keep) for (let at = 0; at < params.length; at += cols) shards.add(Number(params[at]));
      const list = [...shards];
      this.append({ seq: 0, shardId: list[0]!, atMs, table, columns, conflict, packed: keep, rowCount: r.next - from, ...(list.length > 1 ? { shards: list } : {}) });
    }
    return r;
  }

  /** Inserts rows that all belong to `shardId` and logs the written ones; returns which were written. */
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
