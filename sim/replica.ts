// A streaming replica: it applies its primary's log entries `lagMs` after they were written. A read
// served while entries for the same logical shard are still unapplied is stale, and is counted.

import type { Clock } from './clock.ts';
import { DbNode, type LogConsumer, type LogEntry, type PrimaryNode } from './db-node.ts';

export class ReplicaNode extends DbNode implements LogConsumer {
  private applied: number;
  private readonly pendingByShard = new Map<number, number>();
  private scheduled = false;
  private closed = false;
  /** Entries applied since start (count). */
  appliedCount = 0;

  constructor(
    name: string,
    readonly primary: PrimaryNode,
    /** Delay between a write on the primary and its application here (ms). */
    public lagMs: number,
    private readonly clock: Clock,
  ) {
    // A replica starts as a byte copy of its primary, as a base backup would.
    super(name, primary.serialize());
    this.applied = primary.logEnd;
    primary.addConsumer(this);
  }

  position(): number {
    return this.applied;
  }

  onAppend(entry: LogEntry): void {
    this.pendingByShard.set(entry.shardId, (this.pendingByShard.get(entry.shardId) ?? 0) + 1);
    if (this.lagMs <= 0) {
      this.catchUp();
      return;
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    void this.clock.sleep(this.lagMs).then(() => {
      this.scheduled = false;
      if (this.closed) return;
      this.catchUp();
      if (this.applied < this.primary.logEnd) this.schedule();
    });
  }

  /** Changes the lag at run time: applies what is now due and re-arms the timer for the rest. */
  setLag(lagMs: number): void {
    this.lagMs = lagMs;
    this.catchUp();
    if (this.applied < this.primary.logEnd && this.lagMs > 0) {
      // A timer armed for the old lag may sleep far longer than the new one; a second timer
      // wakes on time, and whichever fires later finds nothing due and stops.
      this.scheduled = false;
      this.schedule();
    } else if (this.lagMs <= 0) {
      this.catchUp(true);
    }
  }

  /** Applies every entry that is at least `lagMs` old (or all of them with `all`). */
  catchUp(all = false): number {
    const now = this.clock.nowMs();
    let n = 0;
    for (;;) {
      const e = this.primary.entryAt(this.applied);
      if (!e || (!all && e.atMs + this.lagMs > now)) break;
      this.apply(e);
      this.applied++;
      n++;
      const left = (this.pendingByShard.get(e.shardId) ?? 1) - 1;
      if (left <= 0) this.pendingByShard.delete(e.shardId);
      else this.pendingByShard.set(e.shardId, left);
    }
    this.appliedCount += n;
    return n;
  }

  /** True when the primary has writes to this logical shard that are not applied here yet. */
  isStale(shardId: number): boolean {
    return this.pendingByShard.has(shardId);
  }

  /** Unapplied entries (count). */
  backlog(): number {
    return this.primary.logEnd - this.applied;
  }

  /** Time of the oldest write not applied here, or null when caught up. */
  oldestPendingMs(): number | null {
    return this.primary.entryAt(this.applied)?.atMs ?? null;
  }

  /** Age of the oldest unapplied write (ms); 0 when caught up. */
  currentLagMs(): number {
    const e = this.primary.entryAt(this.applied);
    return e ? Math.max(0, this.clock.nowMs() - e.atMs) : 0;
  }

  override close(): void {
    this.closed = true;
    this.primary.removeConsumer(this);
    super.close();
  }
}
