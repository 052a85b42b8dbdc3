// Copying rows out of a live primary in bounded slices while it keeps taking writes (a shard move,
// a new replica). Temporary triggers on the source note the key of every row written, updated or
// deleted from the start of the copy on; a scan then copies the rows in rowid order, slice by slice,
// and the noted keys are copied again from the source as it is now (or deleted at the destination
// when gone), until one slice drains them all: the caller switches over in that same slice.
//
// Only current row images are ever copied, never statements, so nothing is applied twice: a
// `like_count = like_count + 1` that ran during the copy is read back as its result.
//
// Each slice holds the locks of the source and of the sink's node (node-lock.ts): a store write
// keeps its transaction open across awaits, and a slice must neither read its uncommitted rows nor
// run its own statements inside it.

import type Database from 'better-sqlite3';
import { simError } from '../engine/errors.ts';
import type { TimeSlicer } from '../engine/time-slicer.ts';
import { acquireAll, type NodeLock } from './node-lock.ts';

/** Where the copied rows go: a node's tables, directly or through its replication log. */
export interface RowSink {
  /** Writes rows (every column, in `columns` order) over any row with the same key. */
  upsert(table: string, columns: string[], rows: unknown[][]): void;
  /** Deletes the rows with these keys (values in `keyColumns` order). */
  remove(table: string, keyColumns: readonly string[], keys: unknown[][]): void;
}

/** Rows read per statement while scanning (count). */
const SCAN_ROWS = 512;
/** Noted keys read per statement while catching up (count). */
const CHANGE_ROWS = 512;
/** Slices a copy may spend catching up before giving up: writes outpace it (count; ~10 min of 10 ms slices). */
const CATCH_UP_SLICES = 60_000;

interface Tracking {
  copies: Set<RowCopy>;
  tables: string[];
}

/** The copies in progress per source connection: the triggers stay while one of them runs. */
const tracking = new WeakMap<Database.Database, Tracking>();
let nextCopyId = 1;

/** Key columns of a table, in key order (its rowid alias or its PRIMARY KEY columns). */
function keyColumns(db: Database.Database, table: string): string[] {
  const cols = db.prepare(`PRAGMA main.table_info(${table})`).all() as Array<{ name: string; pk: number }>;
  const key = cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
  if (key.length === 0 || key.length > 2) throw simError('SG_ERR_INVALID_PARAM', `table ${table} needs a primary key of one or two columns to be copied`);
  return key;
}

function install(db: Database.Database, tables: readonly string[]): void {
  db.exec(`CREATE TEMP TABLE IF NOT EXISTS sg_copy_changes (seq INTEGER PRIMARY KEY, tbl TEXT NOT NULL, shard_id INTEGER NOT NULL, k1, k2);
    CREATE TEMP TABLE IF NOT EXISTS sg_copy_scopes (copy_id INTEGER NOT NULL, shard_id INTEGER NOT NULL);`);
  for (const table of tables) {
    const [k1, k2] = keyColumns(db, table);
    const key = (row: 'NEW' | 'OLD') => `${row}.${k1}, ${k2 ? `${row}.${k2}` : 'NULL'}`;
    const note = (row: 'NEW' | 'OLD') => `INSERT INTO sg_copy_changes (tbl, shard_id, k1, k2) VALUES ('${table}', ${row}.shard_id, ${key(row)});`;
    const scoped = (row: 'NEW' | 'OLD') => `EXISTS (SELECT 1 FROM sg_copy_scopes WHERE shard_id IN (${row}.shard_id, -1))`;
    db.exec(`CREATE TEMP TRIGGER IF NOT EXISTS sg_copy_${table}_i AFTER INSERT ON main.${table} WHEN ${scoped('NEW')} BEGIN ${note('NEW')} END;
      CREATE TEMP TRIGGER IF NOT EXISTS sg_copy_${table}_u AFTER UPDATE ON main.${table} WHEN ${scoped('NEW')} OR ${scoped('OLD')} BEGIN ${note('OLD')} ${note('NEW')} END;
      CREATE TEMP TRIGGER IF NOT EXISTS sg_copy_${table}_d AFTER DELETE ON main.${table} WHEN ${scoped('OLD')} BEGIN ${note('OLD')} END;`);
  }
  // INSERT OR REPLACE then fires the delete trigger for a row it replaces through another UNIQUE key.
  db.pragma('recursive_triggers = ON');
}

function uninstall(db: Database.Database, tables: readonly string[]): void {
  if (!db.open) return;
  for (const table of tables) for (const op of ['i', 'u', 'd']) db.exec(`DROP TRIGGER IF EXISTS temp.sg_copy_${table}_${op}`);
  db.exec('DROP TABLE IF EXISTS temp.sg_copy_changes; DROP TABLE IF EXISTS temp.sg_copy_scopes;');
  db.pragma('recursive_triggers = OFF');
}

/** Forgets the changes every running copy has caught up on. */
function trim(db: Database.Database, t: Tracking): void {
  let min = Infinity;
  for (const c of t.copies) min = Math.min(min, c.position);
  if (Number.isFinite(min)) db.prepare('DELETE FROM temp.sg_copy_changes WHERE seq <= ?').run(min);
}

export interface RowCopyStats {
  /** Rows copied by the scan (count). */
  rowsCopied: number;
  /** Rows copied again or deleted because they were written during the copy (count). */
  changesCaughtUp: number;
  /** Slices the copy ran in (count). */
  slices: number;
}

/**
 * One copy of the rows of `tables` (of one logical shard, or all of them) from `source` to a sink.
 * run() notes changes from its start on, scans and catches up in slices, and returns in a slice
 * that has drained every noted change, with nothing left to copy, still holding the locks: the
 * caller switches over, then close() releases them.
 */
export class RowCopy {
  readonly stats: RowCopyStats = { rowsCopied: 0, changesCaughtUp: 0, slices: 0 };
  private readonly id = nextCopyId++;
  private cursor = 0;
  private started = false;
  /** The last noted change this copy has caught up on (its seq). */
  get position(): number {
    return this.cursor;
  }
  private closed = false;
  /** True while this copy holds its locks (during a slice, and from run()'s return to close()). */
  private holding = false;

  constructor(
    private readonly source: Database.Database,
    private readonly tables: readonly string[],
    /** The logical shard copied, or null for every row. */
    private readonly shardId: number | null,
    private readonly sink: RowSink,
    private readonly slicer: TimeSlicer,
    /** The locks of the source's and the sink's connections, in lockOrder (held for each slice). */
    private readonly locks: readonly NodeLock[],
    /** Rows read per statement of the scan (count). */
    private readonly scanRows: number = SCAN_ROWS,
  ) {}

  private async enter(): Promise<void> {
    await acquireAll(this.locks);
    this.holding = true;
  }

  private leave(): void {
    if (!this.holding) return;
    this.holding = false;
    for (const lock of this.locks) lock.release();
  }

  /** Ends the slice: lets go of the locks and the event loop, and takes both back. */
  private async pause(): Promise<void> {
    this.leave();
    await this.slicer.pause();
    await this.enter();
    this.stats.slices++;
    this.assertOpen();
  }

  /** Begins noting changes (with the locks held: no write is half done, none starts before the scan). */
  private start(): void {
    const db = this.source;
    let t = tracking.get(db);
    if (!t) {
      install(db, this.tables);
      t = { copies: new Set(), tables: [...this.tables] };
      tracking.set(db, t);
    } else {
      const missing = this.tables.filter((table) => !t!.tables.includes(table));
      if (missing.length > 0) install(db, missing);
      t.tables.push(...missing);
    }
    t.copies.add(this);
    this.cursor = Number((db.prepare('SELECT coalesce(max(seq), 0) AS n FROM temp.sg_copy_changes').get() as { n: number }).n);
    db.prepare('INSERT INTO temp.sg_copy_scopes (copy_id, shard_id) VALUES (?, ?)').run(this.id, this.shardId ?? -1);
    this.started = true;
  }

  /**
   * Stops noting changes for this copy (the triggers go with the last copy on the source) and lets
   * go of the locks. Call it once the copy is over, whether run() returned or threw.
   */
  async close(): Promise<void> {
    if (this.closed || !this.started) {
      this.leave();
      return;
    }
    this.closed = true;
    if (!this.holding) await this.enter();
    try {
      const db = this.source;
      const t = tracking.get(db);
      if (!t) return;
      t.copies.delete(this);
      if (!db.open) return;
      if (t.copies.size === 0) {
        tracking.delete(db);
        uninstall(db, t.tables);
        return;
      }
      db.prepare('DELETE FROM temp.sg_copy_scopes WHERE copy_id = ?').run(this.id);
      trim(db, t);
    } finally {
      this.leave();
    }
  }

  /**
   * Scans every row, then catches up on the noted changes, in slices. Returns inside a slice that
   * drained them all (nothing pending), still holding the locks: switch over, then close().
   */
  async run(): Promise<RowCopyStats> {
    await this.enter();
    try {
      if (!this.started) this.start();
      return await this.copy();
    } catch (e) {
      this.leave();
      throw e;
    }
  }

  private async copy(): Promise<RowCopyStats> {
    const slicer = this.slicer;
    for (const table of this.tables) {
      let after: bigint = -(2n ** 63n);
      const scan = this.source
        .prepare(`SELECT rowid, * FROM main.${table} WHERE ${this.shardId === null ? '' : 'shard_id = ? AND '}rowid > ? ORDER BY rowid LIMIT ${Math.max(1, Math.floor(this.scanRows))}`)
        .raw(true)
        .safeIntegers(true);
      const columns = scan.columns().slice(1).map((c) => c.name);
      for (;;) {
        if (slicer.due()) await this.pause();
        const rows = (this.shardId === null ? scan.all(after) : scan.all(this.shardId, after)) as unknown[][];
        if (rows.length === 0) break;
        after = rows[rows.length - 1]![0] as bigint;
        for (const r of rows) r.shift();
        this.sink.upsert(table, columns, rows);
        this.stats.rowsCopied += rows.length;
        if (rows.length < this.scanRows) break;
      }
    }
    for (let slices = 0; ; slices++) {
      if (slices > CATCH_UP_SLICES) throw simError('SG_ERR_BUDGET_EXHAUSTED', `a copy could not catch up with the writes to its rows in ${CATCH_UP_SLICES} slices`);
      if (this.catchUpUntil(slicer.deadline())) return this.stats;
      await this.pause();
    }
  }

  private assertOpen(): void {
    if (!this.source.open) throw simError('SG_ERR_SHARD_MOVE', 'the source of a copy was closed while it ran');
  }

  /** Copies noted changes until none is left (true) or the deadline passes (false). */
  private catchUpUntil(deadline: number): boolean {
    const db = this.source;
    const read = db.prepare(`SELECT seq, tbl, shard_id, k1, k2 FROM temp.sg_copy_changes WHERE seq > ? ORDER BY seq LIMIT ${CHANGE_ROWS}`).safeIntegers(true);
    for (;;) {
      const batch = read.all(this.cursor) as Array<{ seq: bigint; tbl: string; shard_id: bigint; k1: unknown; k2: unknown }>;
      if (batch.length === 0) return true;
      // The newest image of each key, once per batch, whatever happened to it meanwhile.
      const byTable = new Map<string, Map<string, unknown[]>>();
      for (const c of batch) {
        if (this.shardId !== null && Number(c.shard_id) !== this.shardId) continue;
        let keys = byTable.get(c.tbl);
        if (!keys) byTable.set(c.tbl, (keys = new Map()));
        keys.set(`${typeof c.k1}:${String(c.k1)}|${typeof c.k2}:${String(c.k2)}`, c.k2 === null ? [c.k1] : [c.k1, c.k2]);
      }
      for (const [table, keys] of byTable) this.recopy(table, [...keys.values()]);
      this.cursor = Number(batch[batch.length - 1]!.seq);
      const t = tracking.get(db);
      if (t) trim(db, t);
      if (batch.length < CHANGE_ROWS) return true;
      if (performance.now() >= deadline) return false;
    }
  }

  private readonly lookups = new Map<string, { keyCols: string[]; get: Database.Statement; columns: string[] }>();

  /** Copies the current source rows with these keys, and deletes at the sink those that are gone. */
  private recopy(table: string, keys: unknown[][]): void {
    const db = this.source;
    let lookup = this.lookups.get(table);
    if (!lookup) {
      const keyCols = keyColumns(db, table);
      const get = db.prepare(`SELECT * FROM main.${table} WHERE ${keyCols.map((k) => `${k} = ?`).join(' AND ')}`).raw(true).safeIntegers(true);
      this.lookups.set(table, (lookup = { keyCols, get, columns: get.columns().map((c) => c.name) }));
    }
    const { keyCols, get, columns } = lookup;
    const shardCol = columns.indexOf('shard_id');
    const present: unknown[][] = [];
    const gone: unknown[][] = [];
    for (const key of keys) {
      const row = get.get(...key) as unknown[] | undefined;
      if (row && (this.shardId === null || Number(row[shardCol]) === this.shardId)) present.push(row);
      else gone.push(key);
    }
    if (gone.length > 0) this.sink.remove(table, keyCols, gone);
    if (present.length > 0) this.sink.upsert(table, columns, present);
    this.stats.changesCaughtUp += keys.length;
  }
}
