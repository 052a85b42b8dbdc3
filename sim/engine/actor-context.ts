// Who a piece of work is done for, carried across awaits. The database tier reads it for
// read-your-writes routing and for attributing shard load to users, without threading an id
// through every call.

import { AsyncLocalStorage } from 'node:async_hooks';

const storage = new AsyncLocalStorage<string>();

/** Runs `fn` with `actorId` as the current actor. */
export function runAsActor<T>(actorId: string, fn: () => T): T {
  return storage.run(actorId, fn);
}

/** Makes `actorId` the actor for the rest of the current async flow (used from request hooks). */
export function enterActor(actorId: string): void {
  storage.enterWith(actorId);
}

export function currentActor(): string | undefined {
  return storage.getStore();
}
