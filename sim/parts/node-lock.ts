// One lock per SQLite connection. A store callback awaits between its statements, so other code can
// run in the middle of it; the callback holds its node's lock from its first statement to its end,
// and so does anything else that touches the connection across an await (a copy's slice, a
// replica's catch-up): no statement of anyone else runs inside an open transaction, and a read
// sees no half-applied write. Waiters are served first come, first served.

import type Database from 'better-sqlite3';

const RESOLVED: Promise<void> = Promise.resolve();
let nextId = 0;

export class NodeLock {
  /** Takes locks in one order when several are held at once (acquireAll): no two holders deadlock. */
  readonly id = nextId++;
  private held = false;
  private readonly waiters: Array<() => void> = [];

  /** True while someone holds it (also while it is being handed to the next waiter). */
  get locked(): boolean {
    return this.held;
  }

  /** Callers waiting for it (count). */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Takes the lock if it is free (the fast path: no promise); false when someone holds it. */
  tryAcquire(): boolean {
    if (this.held) return false;
    this.held = true;
    return true;
  }

  /** Resolves once the caller holds the lock. */
  acquire(): Promise<void> {
    if (!this.held) {
      this.held = true;
      return RESOLVED;
    }
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /**
   * Hands the lock to the first waiter (it stays held, so nobody can take it before the waiter
   * runs), or frees it.
   */
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.held = false;
  }
}

/** The lock of a connection: a replica promoted to primary keeps its connection, and so its lock. */
const locks = new WeakMap<Database.Database, NodeLock>();

export function lockOf(db: Database.Database): NodeLock {
  let lock = locks.get(db);
  if (!lock) locks.set(db, (lock = new NodeLock()));
  return lock;
}

/** Takes every lock, in id order. */
export async function acquireAll(list: readonly NodeLock[]): Promise<void> {
  for (const lock of list) if (!lock.tryAcquire()) await lock.acquire();
}

/** Locks in id order, each once. */
export function lockOrder(list: readonly NodeLock[]): NodeLock[] {
  return [...new Set(list)].sort((a, b) => a.id - b.id);
}

/** Runs synchronous work on a connection while holding its lock. */
export async function withLock<T>(lock: NodeLock, fn: () => T): Promise<T> {
  if (!lock.tryAcquire()) await lock.acquire();
  try {
    return fn();
  } finally {
    lock.release();
  }
}
