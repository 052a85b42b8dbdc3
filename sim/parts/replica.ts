// A streaming replica: it applies its primary's log entries `lagMs` after they were written. A read
// served while entries for the same logical shard are still unapplied is stale, and is counted.
// Catching up runs in bounded slices (see time-slicer.ts): a replica that owes many entries, as after
// a bulk load, lags for real meanwhile instead of holding the event loop. It never runs while a read
// holds the node's lock (node-lock.ts): a read sees the replica as it was at its first statement.

import type { Clock } from '../engine/clock.ts';
import { DbNode, entryShards, type LogConsumer, type LogEntry, type PrimaryNode } from './db-node.ts';
import { RowCopy, type RowSink } from './row-copy.ts';
import { lockOrder } from './node-lock.ts';
import { TABLES } from '../domain/sql-schema.ts';
import type { TimeSlicer } from '../engine/time-slicer.ts';
import type Database from 'better-sqlite3';

/**
 * Real time a catch-up made on the way (before a replica read, by a sampler, when a write lands on a
 * lag-0 replica) may take (ms); the rest is applied in the background, in slices.
 */
const INLINE_CATCH_UP_MS = 1;

export class ReplicaNode extends DbNode implements LogConsumer {
  private applied = 0;
  private readonly pendingByShard = new Map<number, number>();
  private scheduled = false;
  private draining = false;
  private closed = false;
  /** A catch-up was skipped because a read held the lock (the next read catches up first). */
  private deferred = false;
  /** Entries applied since start (count). */
  appliedCount = 0;
  /** The longest a write applied since the last takePeakLagMs() waited for it (ms). */
  private peakAppliedLagMs = 0;

  constructor(
    name: string,
    private primaryNode: PrimaryNode,
    /** Delay between a write on the primary and its application here (ms). */
    public lagMs: number,
    private readonly clock: Clock,
    private readonly slicer: TimeSlicer,
    /**
     * 'image': start as a byte copy of the primary, as a base backup would (synchronous, for empty
     * or not yet serving primaries); 'empty': an empty database, filled by provision().
     */
    start: 'image' | 'empty' = 'image',
  ) {
    // An in-memory primary that is only being built is empty: an empty in-memory database is the
    // same copy, and unlike a deserialized image (SQLite's memdb, at most 1 GiB) it can grow as
    // large as its primary.
    super(name, start === 'image' && !primaryNode.db.memory ? primaryNode.serialize() : null);
    if (start === 'image') this.attach();
  }

  /**
   * A new replica of a serving primary, copied from it row by row in slices while it keeps taking
   * writes (see row-copy.ts), then following its log from the point the copy caught up to.
   */
  static async provision(name: string, primary: PrimaryNode, lagMs: number, clock: Clock, slicer: TimeSlicer): Promise<ReplicaNode> {
    const replica = new ReplicaNode(name, primary, lagMs, clock, slicer, 'empty');
    const copy = new RowCopy(primary.db, TABLES, null, replica.sink(), slicer, lockOrder([primary.lock, replica.lock]));
    try {
      await copy.run();
      // In the slice that drained the copy's last change, holding the primary's lock: the log
      // position is the copy's.
      replica.attach();
      return replica;
    } catch (e) {
      replica.close();
      throw e;
    } finally {
      await copy.close();
    }
  }

  /** Where a copy from the primary writes: straight into this node's tables, unlogged. */
  private sink(): RowSink {
    return {
      upsert: (table, columns, rows) => void this.insertRowsCounted(table, columns, rows, 'replace'),
      remove: (table, keyColumns, keys) => {
        const st = this.stmt(`DELETE FROM ${table} WHERE ${keyColumns.map((k) => `${k} = ?`).join(' AND ')}`);
        this.inTransaction(() => {
          for (const k of keys) st.run(...k);
        });
      },
    };
  }

  /** Starts following the primary's log from its end (this node holds everything before it). */
  private attach(): void {
    this.applied = this.primaryNode.logEnd;
    this.primaryNode.addConsumer(this);
  }

  get primary(): PrimaryNode {
    return this.primaryNode;
  }

  /**
   * Follows another primary that continues the same log (a replica promoted in its old primary's
   * place, ahead of this one): entries this node has applied stay applied, the rest come from it.
   */
  follow(primary: PrimaryNode): void {
    this.primaryNode.removeConsumer(this);
    this.primaryNode = primary;
    this.pendingByShard.clear();
    for (let seq = this.applied; seq < primary.logEnd; seq++) {
      const e = primary.entryAt(seq);
      if (e) this.notePending(e);
    }
    primary.addConsumer(this);
    if (this.applied < primary.logEnd) this.schedule();
  }

  position(): number {
    return this.applied;
  }

  /** Counts an entry as owed to each logical shard it writes. */
  private notePending(e: LogEntry): void {
    for (const shardId of entryShards(e)) this.pendingByShard.set(shardId, (this.pendingByShard.get(shardId) ?? 0) + 1);
  }

  onAppend(entry: LogEntry): void {
    this.notePending(entry);
    if (this.lagMs <= 0) {
      this.catchUp();
      if (this.applied < this.primaryNode.logEnd) this.schedule();
      return;
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.draining || this.closed) return;
    this.scheduled = true;
    void this.clock.sleep(this.lagMs).then(() => {
      this.scheduled = false;
      if (this.closed) return;
      void this.drain(false);
    });
  }

  /** Applies what is due in slices (everything with `all`); re-arms the timer for entries not yet due. */
  private async drain(all: boolean): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      // Every slice comes from the shared slicer, the first one too: replicas woken together by
      // their timers take turns with each other and with a bulk load instead of adding up.
      await this.slicer.enter();
      for (let first = true; ; first = false) {
        if (!first && this.slicer.due()) await this.slicer.pause();
        if (this.closed) break;
        // A read on this node holds its lock for a few turns of the microtask queue at most.
        if (!this.lock.tryAcquire()) await this.lock.acquire();
        try {
          if (!this.closed) this.catchUpLocked(all, this.slicer.deadline());
        } finally {
          this.lock.release();
        }
        if (this.closed || !this.hasDue(all)) break;
      }
    } finally {
      this.draining = false;
    }
    if (!this.closed && this.applied < this.primaryNode.logEnd) this.schedule();
  }

  private hasDue(all: boolean): boolean {
    const e = this.primaryNode.entryAt(this.applied);
    return e !== undefined && (all || e.atMs + this.lagMs <= this.clock.nowMs());
  }

  /** Changes the lag at run time: applies what is now due and re-arms the timer for the rest. */
  setLag(lagMs: number): void {
    this.lagMs = lagMs;
    this.catchUp(lagMs <= 0, performance.now() + this.slicer.budgetMs);
    if (this.applied < this.primaryNode.logEnd) {
      // A timer armed for the old lag may sleep far longer than the new one; a second timer
      // wakes on time, and whichever fires later finds nothing due and stops.
      this.scheduled = false;
      this.schedule();
    }
  }

  /**
   * Applies entries that are at least `lagMs` old (or all of them with `all`), until none is left
   * or the clock passes `deadline` (performance.now() ms; at least one entry is applied). Applies
   * nothing while someone holds the node's lock (a read in progress): the timer, or the next read,
   * catches up instead.
   */
  catchUp(all = false, deadline = performance.now() + INLINE_CATCH_UP_MS): number {
    if (this.lock.locked) {
      this.deferred = true;
      return 0;
    }
    return this.catchUpLocked(all, deadline);
  }

  /** True when a catch-up was skipped for the lock since the last one that ran. */
  get catchUpDeferred(): boolean {
    return this.deferred;
  }

  /** catchUp for the holder of this node's lock (a read about to run, the drain). */
  catchUpLocked(all = false, deadline = performance.now() + INLINE_CATCH_UP_MS): number {
    this.deferred = false;
    const now = this.clock.nowMs();
    // Called before every replica read: nothing is made (no closure) unless an entry is due.
    if (!this.isDue(this.primaryNode.entryAt(this.applied), all, now)) return 0;
    // One transaction for the whole batch: a commit per entry would cost more than most entries.
    const n = this.inTransaction(() => {
      let k = 0;
      for (let e = this.primaryNode.entryAt(this.applied); this.isDue(e, all, now); e = this.primaryNode.entryAt(this.applied + k)) {
        if (k > 0 && performance.now() >= deadline) break;
        this.applyEntry(e);
        if (now - e.atMs > this.peakAppliedLagMs) this.peakAppliedLagMs = now - e.atMs;
        k++;
      }
      return k;
    });
    for (let k = 0; k < n; k++) {
      for (const shardId of entryShards(this.primaryNode.entryAt(this.applied + k)!)) {
        const left = (this.pendingByShard.get(shardId) ?? 1) - 1;
        if (left <= 0) this.pendingByShard.delete(shardId);
        else this.pendingByShard.set(shardId, left);
      }
    }
    this.applied += n;
    this.appliedCount += n;
    return n;
  }

  /** Whether entry `e` is to be applied at `now` (every entry with `all`). */
  private isDue(e: LogEntry | undefined, all: boolean, now: number): e is LogEntry {
    return e !== undefined && (all || e.atMs + this.lagMs <= now);
  }

  /** Applies every entry owed, due or not, in slices (after a bulk load, before answering it). */
  async catchUpAll(): Promise<void> {
    while (!this.closed && this.applied < this.primaryNode.logEnd) {
      await this.drain(true);
      if (this.draining) await this.slicer.pause();
    }
  }

  /** True when the primary has writes to this logical shard that are not applied here yet. */
  isStale(shardId: number): boolean {
    return this.pendingByShard.has(shardId);
  }

  /** Unapplied entries (count). */
  backlog(): number {
    return this.primaryNode.logEnd - this.applied;
  }

  /** Time of the oldest write not applied here, or null when caught up. */
  oldestPendingMs(): number | null {
    return this.primaryNode.entryAt(this.applied)?.atMs ?? null;
  }

  /**
   * The replication delay since the last call (ms): the longest any write applied meanwhile waited,
   * or the age of the oldest write still owed, whichever is larger. A sampler that only looked at
   * the owed write would miss a spike whenever the replica happened to be caught up at the sample.
   */
  takePeakLagMs(): number {
    const peak = Math.max(this.peakAppliedLagMs, this.currentLagMs());
    this.peakAppliedLagMs = 0;
    return peak;
  }

  /** Age of the oldest unapplied write (ms); 0 when caught up. */
  currentLagMs(): number {
    const e = this.primaryNode.entryAt(this.applied);
    return e ? Math.max(0, this.clock.nowMs() - e.atMs) : 0;
  }

  /** Stops following and hands over the open database (a replica promoted to primary). */
  release(): Database.Database {
    this.closed = true;
    this.primaryNode.removeConsumer(this);
    return this.db;
  }

  override close(): void {
    this.closed = true;
    this.primaryNode.removeConsumer(this);
    super.close();
  }
}
