// Who a piece of work is done for, and where its work is counted, carried across awaits. The
// database tier reads the actor for read-your-writes routing and for attributing shard load to
// users; every part adds the operations it performs to the scope's work counts (the route of the
// request, or the kind of the job, that caused them), without threading either through every call.

import { AsyncLocalStorage } from 'node:async_hooks';
import type { WorkCounts } from './work-counts.ts';

export interface Scope {
  actor: string | undefined;
  /** Where the operations done in this scope are counted (null: nowhere, e.g. seeding). */
  work: WorkCounts | null;
}

const storage = new AsyncLocalStorage<Scope>();

/** Runs `fn` in `scope`. */
export function runInScope<T>(scope: Scope, fn: () => T): T {
  return storage.run(scope, fn);
}

/** Runs `fn` with `actorId` as the current actor, counting its work where the current scope does. */
export function runAsActor<T>(actorId: string, fn: () => T): T {
  return storage.run({ actor: actorId, work: storage.getStore()?.work ?? null }, fn);
}

export function currentActor(): string | undefined {
  return storage.getStore()?.actor;
}

/** The work counts of the current request or job, if it is counted. */
export function currentWork(): WorkCounts | null {
  return storage.getStore()?.work ?? null;
}
